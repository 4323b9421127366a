"""Pictures of a study's history (matplotlib, the optional ``plot`` extra: ``pip install "gridtape[plot]"``).

- :func:`plot_history`: one input cell or result value against seq, each transaction annotated
  with its author and message, diverged points marked;
- :func:`plot_profiles`: the voltage profiles of two points side by side;
- :func:`plot_loadability`: the loadability (the largest factor on every load that still converges,
  gridtape.explain.loadability) at each tag and the head;
- :func:`plot_timeseries`: one output of a time series against its steps, limits and diverged
  steps marked (also ``TimeSeriesResult.plot``).

Figures are built with ``matplotlib.figure.Figure`` (no pyplot, no GUI backend needed); ``path=``
writes a PNG.
"""
from __future__ import annotations

import numpy as np

from gridtape.errors import DependencyError

MAX_POINTS = 200  # points solved for a result field (evenly sampled beyond it)


def _figure(**kw):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise DependencyError('plots need matplotlib: pip install "gridtape[plot]"', field="matplotlib") from None
    return Figure(**kw)


def _save(fig, path, dpi=90):
    if path is not None:
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return fig


def _tx_labels(study, pts):
    """(seq -> "author: message") for the last event of each point's transaction."""
    log = study.log()
    last = log.drop_duplicates("tx", keep="last").set_index("seq")
    return {int(s): f"{last.author.get(s) or '?'}: {last.message.get(s) or ''}" for s in pts if s in last.index}


def history_values(study, kind, eid, field, points=None):
    """``(seqs, values, converged)`` of ``kind`` ``eid`` ``field`` at each point of history: an input
    column read from the world at each point, or a result column (``res_<kind>``) from a solve
    (then ``converged`` says whether it converged; None for inputs)."""
    pts = np.asarray(study.points() if points is None else points, dtype=np.int64)
    first = study.at(int(pts[0]))
    t = first.world[kind]
    is_input = field in t.cols or field in t.extra
    if not is_input and len(pts) > MAX_POINTS:
        pts = pts[np.unique(np.linspace(0, len(pts) - 1, MAX_POINTS).astype(int))]
    from .progress import progress

    vals, conv = [], []
    for s in progress(pts, total=len(pts), desc=f"{kind} {eid} {field}"):
        g = first if s == pts[0] else study.at(int(s))
        tab = g.world[kind]
        if int(eid) not in tab.positions:
            vals.append(np.nan)
            conv.append(None)
            continue
        if is_input:
            col = tab.cols[field] if field in tab.cols else tab.extra[field]
            v = col[tab.positions[int(eid)]]
            vals.append(float(v) if v is not None else np.nan)
            conv.append(None)
        else:
            ok = g.solve().converged
            conv.append(ok)
            vals.append(float(g.result(kind)[field].get(int(eid), np.nan)) if ok else np.nan)
    return pts, np.asarray(vals, dtype=float), conv


def plot_history(study, kind, eid, field, path=None, ax=None, annotate=True):
    """``field`` of ``kind`` ``eid`` against seq (an input column, or a result column such as
    ``("bus", 85, "vm_pu")``, solved at each point); transactions annotated with author and message;
    points that do not converge marked with a red x.  Returns the figure."""
    fig = _figure(figsize=(8, 4)) if ax is None else ax.figure
    ax = ax or fig.add_subplot()
    pts, vals, conv = history_values(study, kind, eid, field)
    ax.step(pts, vals, where="post", marker="o", ms=4, color="#1f5fa8")
    bad = [s for s, c in zip(pts, conv) if c is False]
    if bad:
        lo = np.nanmin(vals) if np.isfinite(vals).any() else 0.0
        ax.plot(bad, [lo] * len(bad), "x", color="#c00", ms=9, mew=2, label="does not converge")
        ax.legend(loc="best", fontsize=8)
    if annotate:
        labels = _tx_labels(study, pts)
        for k, (s, v) in enumerate(zip(pts, vals)):
            text = labels.get(int(s))
            if text:
                y = v if np.isfinite(v) else (np.nanmin(vals) if np.isfinite(vals).any() else 0.0)
                ax.annotate(text[:40], (s, y), xytext=(3, 6 + 9 * (k % 3)), textcoords="offset points",
                            fontsize=7, rotation=20, color="#444")
    ax.margins(y=0.3)
    ax.set_xlabel("seq")
    ax.set_ylabel(f"{kind} {eid} {field}")
    ax.set_title(f"{kind} {eid} {field} through history", fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_profiles(a, b, labels=("before", "after"), path=None):
    """The bus voltage magnitudes of two grids (points of history), side by side, by bus id; each
    grid is solved if it was not.  A grid that does not converge is drawn empty with a note."""
    fig = _figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, g, label in zip(axes, (a, b), labels):
        rep = g.last_report or g.solve()
        if rep.converged:
            vm = g.res_bus.vm_pu.sort_index()
            ax.plot(vm.index.to_numpy(), vm.to_numpy(), ".", ms=4, color="#1f5fa8")
            i = vm.idxmin()
            ax.annotate(f"bus {i}: {vm[i]:.3f}", (i, vm[i]), xytext=(5, -12), textcoords="offset points", fontsize=8)
        else:
            ax.text(0.5, 0.5, f"does not converge\n({rep.iterations} iterations)", ha="center", va="center",
                    transform=ax.transAxes, color="#c00")
        seq = getattr(g, "study_seq", None)
        ax.set_title(f"{label}" + (f" (seq {seq})" if seq is not None else ""), fontsize=10)
        ax.set_xlabel("bus")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("vm (p.u.)")
    return _save(fig, path)


def plot_loadability(study, points=None, path=None):
    """The loadability of each point (gridtape.explain.loadability: the largest factor on every
    load that still converges) against seq; default points: the tags and the head."""
    from gridtape.explain import loadability

    if points is None:
        tags = study.log(event="tag")
        points = sorted({*tags.seq.tolist(), study.head})
        names = dict(zip(tags.seq.tolist(), tags.message.tolist()))
    else:
        names = {}
    from .progress import progress

    xs, ks = [], []
    for s in progress(points, total=len(points), desc="loadability"):
        xs.append(int(s))
        ks.append(loadability(study.world_at(int(s))))
    fig = _figure(figsize=(8, 3.2))
    ax = fig.add_subplot()
    ax.plot(xs, ks, "o-", color="#1f5fa8")
    for x, k in zip(xs, ks):
        ax.annotate(names.get(x, "head" if x == study.head else str(x)), (x, k), xytext=(4, 4),
                    textcoords="offset points", fontsize=8)
    ax.axhline(1.0, color="#c00", lw=1, ls="--")
    ax.set_xlabel("seq")
    ax.set_ylabel("load factor that converges")
    ax.set_title("loadability through history", fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_timeseries(result, kind, column, ids=None, limit=None, top=6, path=None):
    """One output of a time series (``result[kind, column]``, steps x element ids) against the
    step index: the ``ids`` given, else the ``top`` elements with the largest peak; ``limit`` (a
    number or a (low, high) pair, e.g. 100 for loading_percent or (0.95, 1.05) for vm_pu) drawn as
    dashed lines; steps that did not converge shaded.  Returns the figure."""
    frame = result.result(kind, column)
    fig = _figure(figsize=(9, 3.8))
    ax = fig.add_subplot()
    if ids is None:
        peak = frame.max(axis=0, skipna=True).fillna(-np.inf)
        ids = list(peak.sort_values(ascending=False).index[:top])
    x = np.arange(len(frame)) if not len(frame.index) else frame.index
    for i in ids:
        ax.plot(x, frame[i].to_numpy(dtype=float), lw=1.0, label=f"{kind} {i}")
    if limit is not None:
        for v in (limit if isinstance(limit, (tuple, list)) else (limit,)):
            ax.axhline(float(v), ls="--", lw=1.0, color="#c00")
    bad = ~result.converged.to_numpy(dtype=bool)
    if bad.any():
        for k in np.flatnonzero(bad):
            ax.axvspan(x[k], x[min(k + 1, len(x) - 1)], color="#c00", alpha=0.15, lw=0)
    ax.set_xlabel(frame.index.name or "step")
    ax.set_ylabel(f"{kind} {column}")
    ax.set_title(f"{kind} {column}: {len(frame)} steps" + (f", {int(bad.sum())} not converged" if bad.any() else ""),
                 fontsize=10)
    ax.legend(loc="best", fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, path)
