"""Notebook and terminal forms of grids, solve reports, studies, bisect results and history frames.

``_repr_html_`` bodies are compact HTML (a caption and small tables, inline styles only, no
scripts, images or external assets, a few kB at most); the text forms fit 80 columns.
:func:`install` attaches them to the classes (replay's classes cannot import the face, so the
face gives them their forms when ``gridtape`` is imported).
"""
from __future__ import annotations

import html

import numpy as np
import pandas as pd

from .reprs import WIDTH, bisect_text, iso, readable_log, transactions

ROWS = 8  # rows of a table in an HTML repr
STYLE = "border-collapse:collapse;font-size:90%"
CELL = "padding:1px 6px;text-align:left"


def _e(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return ""
    if isinstance(v, float):
        return html.escape(f"{v:.6g}")
    return html.escape(str(v))


def _table(df: pd.DataFrame, rows: int = ROWS, tail: bool = False) -> str:
    shown = df.tail(rows) if tail else df.head(rows)
    head = "".join(f'<th style="{CELL}">{_e(c)}</th>' for c in shown.columns)
    body = "".join("<tr>" + "".join(f'<td style="{CELL}">{_e(v)}</td>' for v in row) + "</tr>"
                   for row in shown.itertuples(index=False))
    more = ""
    if len(df) > rows:
        more = f"<tr><td colspan=\"{len(df.columns)}\" style=\"{CELL}\">&hellip; {len(df) - rows} more " \
               f"{'before' if tail else 'after'}</td></tr>"
    if tail:
        body = more + body
    else:
        body = body + more
    return f'<table style="{STYLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _block(title: str, *parts: str) -> str:
    return f'<div><b>{html.escape(title)}</b>{"".join(parts)}</div>'


def _kv(pairs) -> str:
    return _table(pd.DataFrame([(k, v) for k, v in pairs if v is not None], columns=["", ""]), rows=30)


# --- SolveReport ------------------------------------------------------------------------------------
def report_text(rep) -> str:
    state = "converged" if rep.converged else "diverged"
    return (f"<SolveReport {state} in {rep.iterations} iterations, mismatch {rep.mismatch:.2g}, "
            f"{rep.runtime_ms:.2f} ms, {rep.rebuild}, {rep.algorithm}>")


def report_html(rep) -> str:
    color = "#060" if rep.converged else "#a00"
    return (f'<div><b style="color:{color}">{"converged" if rep.converged else "diverged"}</b> in '
            f"{rep.iterations} iterations &middot; mismatch {rep.mismatch:.2g} &middot; "
            f"{rep.runtime_ms:.2f} ms &middot; rebuild {_e(rep.rebuild)} &middot; {_e(rep.algorithm)}</div>")


# --- PowerGrid ------------------------------------------------------------------------------------------
def grid_html(grid) -> str:
    w = grid.world
    counts = {k: v for k, v in w.counts().items() if v}
    pairs = [("case", grid.case_path or "(in memory)"),
             ("elements", ", ".join(f"{v} {k}" for k, v in counts.items())),
             ("sn_mva", w.sn_mva)]
    j = grid.journal
    if j is not None:
        pairs.append(("journal", f"{j.path or '(in memory)'}, {j.next_seq} events"))
    seq = getattr(grid, "study_seq", None)
    if seq is not None:
        pairs.append(("point of history", f"seq {seq} (read-only)"))
    rep = grid.last_report
    parts = [_kv(pairs)]
    if rep is None:
        parts.append("<div>not solved yet</div>")
    else:
        parts.append(report_html(rep))
        if rep.converged:
            vm = grid.res_bus.vm_pu
            parts.append(f"<div>vm {vm.min():.4f} &hellip; {vm.max():.4f} p.u. (min at bus {_e(vm.idxmin())})</div>")
    return _block("PowerGrid", *parts)


# --- Study ---------------------------------------------------------------------------------------------
def _tags(study) -> pd.DataFrame:
    t = study.log(event="tag")
    return pd.DataFrame({"tag": t["message"], "seq": t["seq"], "time": [iso(x, ms=False) for x in t["time"]],
                         "author": t["author"]})


def _recent(study, events: int = 400) -> pd.DataFrame:
    return study.log(since=max(0, study.head - events))


def _guarded(form):
    """A repr that never raises on a closed study: it says so instead."""
    def wrapped(study):
        from gridtape.errors import GridtapeError

        try:
            return form(study)
        except GridtapeError as e:
            text = f"<Study {study.path or '(in memory)'}: {e.message}>"
            return html.escape(text) if form is study_html else text

    wrapped.__doc__ = form.__doc__
    return wrapped


def study_text(study) -> str:
    log = _recent(study)
    tags = ", ".join(_tags(study)["tag"].astype(str).tolist()) or "none"
    first = f"<Study {study.path or '(in memory)'}: {study.head + 1} events, head seq {study.head}>"
    lines = [first if len(first) <= WIDTH else first[: WIDTH - 2] + "~>", f"  tags: {tags}"[:WIDTH]]
    from .reprs import oneline

    tx = transactions(log)
    lines += ["  " + s for s in oneline(tx.tail(5), width=WIDTH - 2)]
    return "\n".join(lines)


def study_html(study) -> str:
    log = _recent(study)
    tx = transactions(log)
    last = f" &middot; last at {iso(log.time.iloc[-1], ms=False)}" if len(log) else ""
    parts = [f"<div>{_e(study.path or '(in memory)')}: {study.head + 1} events, head seq {study.head}{last}</div>"]
    parts.append(_block("recent transactions",
                        _table(tx[["tx", "seq", "time", "author", "what", "solve", "message"]], tail=True)))
    tags = _tags(study)
    if len(tags):
        parts.append(_block("tags", _table(tags)))
    br = study.branches()
    if len(br):
        br = br.assign(created=[iso(t, ms=False) for t in br["created"]])
        parts.append(_block("branches", _table(br[["name", "seq", "path", "author"]])))
    return _block("Study", *parts)


# --- BisectResult ------------------------------------------------------------------------------------------
def bisect_repr(res) -> str:
    return f"<BisectResult tx {res.tx} (seq {res.seq}) by {res.author}: {res.message!r}>"[:WIDTH]


def bisect_html(res) -> str:
    parts = [f"<div>first bad point: seq {res.seq}, tx {res.tx} by {_e(res.author)}: "
             f"<i>{_e(res.message)}</i></div>",
             f"<div>last good point: seq {res.good_seq} ({res.materializations} points solved)</div>"]
    if res.diff is not None and len(res.diff):
        parts.append(diff_html(res.diff))
    return _block("bisect", *parts)


# --- frames ------------------------------------------------------------------------------------------------
def log_html(log: pd.DataFrame, rows: int = 12) -> str:
    """A log frame (``study.log()``) in a notebook: readable columns, the last rows."""
    r = readable_log(log)
    cols = [c for c in ("seq", "tx", "time", "author", "message", "event", "kind", "eid", "field", "old", "new",
                        "iterations", "mismatch") if c in r.columns]
    return _block(f"log: {len(log)} events", _table(r[cols], rows=rows, tail=True))


def diff_html(d: pd.DataFrame, rows: int = 12) -> str:
    """A diff frame (``gridtape.diff``) in a notebook, adds and removes summarized."""
    from .reprs import _short

    view = d.assign(old=[_short(v, 40) for v in d["old"]], new=[_short(v, 40) for v in d["new"]])
    return _block(f"diff: {len(d)} changes", _table(view, rows=rows))


def _study_plot(study, kind, eid, field, **kw):
    """``study.plot("bus", 85, "vm_pu")``: :func:`gridtape.plot.plot_history` (the ``plot`` extra)."""
    from .plot import plot_history

    return plot_history(study, kind, eid, field, **kw)


def install() -> None:
    """Give the classes their forms (called once when ``gridtape`` is imported)."""
    from gridtape.grid import PowerGrid, SolveReport
    from gridtape.replay.study import BisectResult, Study

    PowerGrid._repr_html_ = grid_html
    SolveReport._repr_html_ = report_html
    SolveReport.__repr__ = report_text
    Study._repr_html_ = _guarded(study_html)
    Study.__repr__ = _guarded(study_text)
    Study.plot = _study_plot
    BisectResult._repr_html_ = bisect_html
    BisectResult.__repr__ = bisect_repr
    BisectResult.__str__ = bisect_text
