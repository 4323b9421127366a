"""Why a point of history breaks: the margin of the breaking change, where Newton's mismatch sits,
and which of the changed elements is at fault.

``explain(bisect_result, study)`` (``gridtape bisect --explain``) answers three questions about the
transaction bisect found:

1. **The margin**: the largest fraction λ of the breaking change at which the predicate (default:
   the AC power flow converges) still holds.  Every changed float cell is interpolated between
   its value at the good point and at the bad one; an added element is added with its p/q
   (``p_mw``, ``q_mvar``, ``sn_mva`` stay) scaled by λ; changes that cannot be interpolated
   (switching, removal, integer and text cells) are applied whole at every λ.  Found by
   bisection on λ from a cold start at each probe, as a fresh grid would solve it.
2. **Where**: the buses carrying the largest power mismatch at the last Newton iterate of the
   first bad point (S_spec - V conj(Ybus V), on the engine's own Ybus and injections).
3. **Who**: the elements the transaction touched, each with its electrical distance (the
   shortest path by |z| = 1/|Y_ij| over the branches of the bad point's Ybus) to those buses
   and whether the point holds without that element's change; named in that order (the
   changes whose absence restores the point first, then the nearest).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .reprs import WIDTH, _short, change_line

log = logging.getLogger("gridtape.explain")
BUS_FIELDS = ("bus", "from_bus", "to_bus", "hv_bus", "lv_bus", "mv_bus")
SCALED = ("p_mw", "q_mvar")  # what lambda scales on an added element
MAX_ALONE = 12  # leave-one-out solves at most (one per changed element)


@dataclass
class Explanation:
    margin: float  # the largest fraction of the change at which the predicate holds
    resolution: float  # the bisection's final bracket width
    full_holds: bool  # the whole change applied from scratch still holds (then the start matters)
    buses: pd.DataFrame  # bus, mismatch_pu, dp_pu, dq_pu, vm_pu (last iterate), largest first
    elements: pd.DataFrame  # kind, id, buses, change, distance_pu, nearest, without_it_holds, continuous
    diff: pd.DataFrame  # the breaking change
    at_margin: dict = field(default_factory=dict)  # (kind, id, field) -> value at the margin
    targets: dict = field(default_factory=dict)  # (kind, id, field) -> value of the full change
    zero_holds: bool = True  # the good point plus the change's discrete parts holds
    seconds: float = 0.0

    def named(self) -> list[tuple[str, int]]:
        """(kind, id) of the changed elements in the order the explanation names them."""
        return [(k, int(i)) for k, i in zip(self.elements["kind"], self.elements["id"])]

    def headline(self) -> str:
        if not len(self.elements):
            return "the breaking transaction changed nothing in the world"
        top = self.elements.iloc[0]
        where = top.buses.replace(", ", "-")
        what = f"{_article(top)} {top.kind} {int(top.id)}" + (f" at bus {where}" if where else "")
        if self.full_holds:
            return f"{what}: the change alone holds from a cold start; the failure depends on the starting point"
        if self.margin <= 0 and not self.zero_holds:
            return f"{what}: no fraction of the change holds (a switching step, or the rest of the change fails)"
        cells = [f"{f} up to {v:.4g} of {self.targets[(k, i, f)]:.4g}" for (k, i, f), v in self.at_margin.items()
                 if k == top.kind and i == int(top.id)]
        at = f" ({', '.join(cells)})" if cells else ""
        if self.margin <= 0:
            return f"{what}: less than {self.resolution:.1%} of the change holds{at}"
        past = 1.0 / self.margin - 1.0
        past_text = f"{past:.0%}" if past < 10 else f"{1.0 / self.margin:.0f} times"
        share = f"{self.margin:.0%}" if self.margin >= 0.01 else f"{self.margin:.2%}"
        return f"{what} is {past_text} past what the network carries: {share} of the change holds{at}"

    def lines(self, width: int = WIDTH) -> list[str]:
        out = ["why: " + self.headline()]
        if len(self.buses):
            top = ", ".join(f"bus {int(b)} ({m:.2g})" for b, m in zip(self.buses.bus[:3], self.buses.mismatch_pu[:3]))
            out.append(f"  largest mismatch at the last Newton iterate (p.u.): {top}")
        for r in self.elements.head(5).itertuples(index=False):
            near = "" if not np.isfinite(r.distance_pu) else f"; at mismatch bus {r.nearest}" if r.distance_pu == 0 \
                else f"; |z| {r.distance_pu:.3g} p.u. from bus {r.nearest}"
            alone = {True: "; without it: holds", False: "; without it: still fails"}.get(r.without_it_holds, "")
            out.append(f"  {r.change}{near}{alone}")
        if len(self.elements) > 5:
            out.append(f"  ... and {len(self.elements) - 5} more changed elements")
        import textwrap

        return [w for line in out for w in textwrap.wrap(line, width, subsequent_indent="      ")]

    def __str__(self):
        return "\n".join(self.lines())

    def as_dict(self) -> dict:
        return {"margin": self.margin, "resolution": self.resolution, "full_holds": self.full_holds,
                "zero_holds": self.zero_holds,
                "headline": self.headline(), "seconds": self.seconds,
                "buses": self.buses.to_dict("records"),
                "elements": self.elements.drop(columns=["continuous"]).to_dict("records"),
                "at_margin": [{"kind": k, "id": i, "field": f, "value": v} for (k, i, f), v in self.at_margin.items()]}


def _cell_text(r) -> str:
    if r.change == "set":
        return f"{r.field} {_short(r.old)} -> {_short(r.new)}"
    return change_line(r).split(" ", 1)[0] + ("ed" if r.change == "add" else "d")


def _article(row) -> str:
    return "the new" if ": added" in row.change else "the removed" if ": removed" in row.change else "the"


def _is_float(v) -> bool:
    return isinstance(v, (float, np.floating)) and not isinstance(v, bool)


class _Scaled:
    """The good point plus the breaking change at a fraction λ: ``at(λ)`` is a fresh grid (a cold
    start, as a new user's grid would solve it)."""

    def __init__(self, before_world, d: pd.DataFrame, grid_kwargs=None):
        from gridtape.grid import PowerGrid

        sets = d[d.change == "set"]
        cont = np.array([_is_float(o) and _is_float(n) and np.isfinite(o) and np.isfinite(n)
                         and k != "network" for k, o, n in zip(sets.kind, sets.old, sets.new)], dtype=bool)
        self.cont = sets[cont]
        self.kwargs = dict(grid_kwargs or {})
        g = PowerGrid(world=before_world.copy(), journal=False, **self.kwargs)
        rest = d.drop(index=self.cont.index)
        rest = rest[~rest["field"].astype(str).str.startswith("@")]  # column-list and order rows: no cell
        g.apply(rest)  # the discrete parts whole; adds at full power for now
        self.base = g.world
        adds = d[d.change == "add"]
        self.adds = [(k, int(i), f, float(new[f])) for k, i, new in zip(adds.kind, adds.id, adds.new)
                     for f in SCALED if isinstance(new, dict) and _is_float(new.get(f)) and np.isfinite(new[f])]

    def values(self, lam: float) -> dict:
        out = {(k, int(i), f): float(o) + lam * (float(n) - float(o))
               for k, i, f, o, n in zip(self.cont.kind, self.cont.id, self.cont.field, self.cont.old, self.cont.new)}
        out.update({(k, i, f): lam * v for k, i, f, v in self.adds})
        return out

    def at(self, lam: float):
        from gridtape.grid import PowerGrid

        g = PowerGrid(world=self.base.copy(), journal=False, **self.kwargs)
        for (k, i, f), v in self.values(lam).items():
            g.set(k, [i], f, [v])
        return g

    @property
    def continuous(self) -> bool:
        return bool(len(self.cont) or self.adds)


def margin(before_world, d: pd.DataFrame, predicate=None, resolution: float = 0.004, grid_kwargs=None):
    """The largest λ in [0, 1] at which ``predicate`` holds on the good point plus λ times the
    change ``d`` (a diff frame), by bisection to ``resolution``.  Returns ``(λ, scaled)``; λ is 0
    when it fails already at λ = 0 and 1 when it holds at λ = 1."""
    pred = predicate or _converges
    s = _Scaled(before_world, d, grid_kwargs)
    s.zero_holds = bool(pred(s.at(0.0)))
    if not s.continuous or not s.zero_holds:
        return 0.0, s
    if pred(s.at(1.0)):
        return 1.0, s
    lo, hi = 0.0, 1.0
    from .progress import bar

    with bar(total=int(np.ceil(np.log2(1.0 / resolution))), desc="margin") as b:
        while hi - lo > resolution:
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if pred(s.at(mid)) else (lo, mid)
            b.update()
    return lo, s


def _converges(g) -> bool:
    return g.solve().converged


def loadability(world, hi: float = 4.0, resolution: float = 0.01, predicate=None) -> float:
    """The largest factor k in [0, hi] such that every load's p and q times k still converges
    (bisection from a cold start; 0 when even k = 0 fails, ``hi`` when all of [0, hi] holds)."""
    from gridtape.grid import PowerGrid

    pred = predicate or _converges
    ld = world["load"]
    ids, p, q = ld.ids.copy(), ld.cols["p_mw"].copy(), ld.cols["q_mvar"].copy()

    def ok(k):
        g = PowerGrid(world=world.copy(), journal=False)
        if len(ids):
            g.set("load", ids, "p_mw", p * k)
            g.set("load", ids, "q_mvar", q * k)
        return bool(pred(g))

    if ok(hi):
        return hi
    lo, up = 0.0, hi
    if not ok(lo):
        return 0.0
    while up - lo > resolution:
        mid = 0.5 * (lo + up)
        lo, up = (mid, up) if ok(mid) else (lo, mid)
    return lo


# --- the engine's last iterate ----------------------------------------------------------------------
def last_iterate(grid):
    """``(V, Ybus (csr), S_spec, pv, pq, bus_ids)`` of the grid's last Newton run, internal bus
    order; ``bus_ids[i]`` is a world bus id of internal bus i.  None when the engine does not
    expose them (read defensively: the engine is free to change its internals)."""
    import scipy.sparse as sp

    eng = getattr(grid, "_engine", None)
    try:
        V = np.asarray(eng.V, dtype=complex)
        inj, topo = eng.inj, eng.topo
        nb = len(V)
        Y = sp.csr_matrix((np.asarray(eng.ydata), np.asarray(eng.indices), np.asarray(eng.indptr)), shape=(nb, nb))
        vm = np.abs(V)
        s_spec = np.asarray(inj.s0) + (np.asarray(inj.si) + np.asarray(inj.sz) * vm) * vm
        pv, pq = np.asarray(topo.pv), np.asarray(topo.pq)
        lookup = np.asarray(topo.lookup)
        ids = np.full(nb, -1, dtype=np.int64)
        wb = grid.world["bus"].ids
        ids[lookup[::-1]] = np.asarray(wb)[::-1]  # the first world bus of each internal bus
    except (AttributeError, TypeError, ValueError):
        return None
    return V, Y, s_spec, pv, pq, ids


def mismatch_buses(grid, top: int = 5) -> pd.DataFrame:
    """The buses with the largest |ΔS| at the grid's last Newton iterate (P only at PV buses)."""
    cols = ["bus", "mismatch_pu", "dp_pu", "dq_pu", "vm_pu"]
    it = last_iterate(grid)
    if it is None:
        return pd.DataFrame(columns=cols)
    V, Y, s_spec, pv, pq, ids = it
    with np.errstate(all="ignore"):
        dS = V * np.conj(Y @ V) - s_spec
    dp, dq = np.zeros(len(V)), np.zeros(len(V))
    dp[pv], dp[pq], dq[pq] = dS.real[pv], dS.real[pq], dS.imag[pq]
    mag = np.hypot(dp, dq)
    mag[~np.isfinite(mag)] = np.inf
    order = np.argsort(-mag, kind="stable")[:top]
    order = order[mag[order] > 0]
    return pd.DataFrame({"bus": ids[order], "mismatch_pu": mag[order], "dp_pu": dp[order], "dq_pu": dq[order],
                         "vm_pu": np.abs(V[order])}, columns=cols)


def _distances(grid, sources_bus_ids, target_bus_ids):
    """Shortest |z| path lengths (p.u.) from each source bus to the nearest target: (dist, nearest)."""
    from scipy.sparse.csgraph import dijkstra

    it = last_iterate(grid)
    n = len(sources_bus_ids)
    if it is None or not len(target_bus_ids):
        return np.full(n, np.inf), [None] * n
    _, Y, _, _, _, ids = it
    try:
        lookup = np.asarray(grid._engine.topo.lookup)  # world bus row -> internal bus (see last_iterate)
    except AttributeError:
        return np.full(n, np.inf), [None] * n
    pos = grid.world["bus"].positions
    G = Y.tocoo()
    off = (G.row != G.col) & (np.abs(G.data) > 0)
    import scipy.sparse as sp

    W = sp.csr_matrix((1.0 / np.abs(G.data[off]), (G.row[off], G.col[off])), shape=Y.shape)
    tgt = np.array([lookup[pos[int(b)]] for b in target_bus_ids if int(b) in pos], dtype=np.int64)
    dist, nearest = np.full(n, np.inf), [None] * n
    src = [[lookup[pos[int(b)]] for b in bs if int(b) in pos] for bs in sources_bus_ids]
    flat = sorted({s for bs in src for s in bs})
    if not flat or not len(tgt):
        return dist, nearest
    D = dijkstra(W, directed=False, indices=flat)
    row = {s: k for k, s in enumerate(flat)}
    for e, bs in enumerate(src):
        for s in bs:
            d = D[row[s]][tgt]
            j = int(np.argmin(d))
            if d[j] < dist[e]:
                dist[e], nearest[e] = float(d[j]), int(ids[tgt[j]])
    return dist, nearest


def _element_buses(world_a, world_b, kind, eid, rows) -> list[int]:
    for r in rows.itertuples(index=False):
        for v in (r.new, r.old):
            if isinstance(v, dict):
                return [int(v[f]) for f in BUS_FIELDS if f in v and v[f] is not None and v[f] == v[f]]
    for w in (world_b, world_a):
        if w is not None and kind in w.tables and int(eid) in w[kind].positions:
            t = w[kind]
            p = t.positions[int(eid)]
            if kind == "bus":
                return [int(eid)]
            return [int(t.cols[f][p]) for f in BUS_FIELDS if f in t.cols]
    return []


def explain(res, study, predicate=None, top: int = 5, resolution: float = 0.004) -> Explanation:
    """Explain a bisect result (see the module docstring).  ``predicate`` is the one bisect used
    (default: the AC power flow converges)."""
    import time

    from gridtape.replay.study import materialize

    t0 = time.perf_counter()
    pred = predicate or _converges
    d = res.diff
    first = int(res.events.seq.iloc[0])
    before = materialize(study.journal, first - 1)[0]
    after = study.at(res.seq)
    after.solve()
    buses = mismatch_buses(after, top)
    lam, scaled = margin(before, d, pred, resolution)
    full_holds = lam >= 1.0
    at_margin = scaled.values(lam) if lam < 1 and scaled.zero_holds else {}

    groups = list(d[d.id.notna()].groupby(["kind", "id"], sort=False))
    elems = []
    for (kind, eid), rows in groups:
        bs = _element_buses(before, after.world, kind, eid, rows)
        text = f"{kind} {int(eid)}" + (f" (bus {'-'.join(map(str, bs))})" if bs and kind != "bus" else "") + ": " \
            + ", ".join(_cell_text(r) for r in rows.itertuples(index=False))
        elems.append(dict(kind=kind, id=int(eid), buses=", ".join(map(str, bs)), change=text, _buses=bs,
                          continuous=any(_is_float(o) and _is_float(n) for o, n in zip(rows.old, rows.new))
                          or (rows.change == "add").any()))
    dist, nearest = _distances(after, [e["_buses"] for e in elems], list(buses.bus))
    holds = [None] * len(elems)
    if 1 < len(elems) <= MAX_ALONE:
        for k, ((kind, eid), rows) in enumerate(groups):
            rest = d.drop(index=rows.index)
            g = _Scaled(before, rest).at(1.0)
            holds[k] = bool(pred(g))
    table = pd.DataFrame([{**{k: v for k, v in e.items() if k != "_buses"}, "distance_pu": dist[k],
                           "nearest": nearest[k], "without_it_holds": holds[k]} for k, e in enumerate(elems)],
                         columns=["kind", "id", "buses", "change", "distance_pu", "nearest", "without_it_holds",
                                  "continuous"])
    if len(table):
        key = np.where(table.without_it_holds.astype(object).eq(True), 0, 1)
        table = table.assign(_k=key).sort_values(["_k", "distance_pu"], kind="stable").drop(columns="_k")
        table = table.reset_index(drop=True)
    ex = Explanation(lam, resolution if lam < 1 and scaled.zero_holds else 0.0, full_holds, buses, table, d,
                     at_margin, scaled.values(1.0), scaled.zero_holds, time.perf_counter() - t0)
    log.debug("explained tx %s in %.3f s: margin %.4f, %d changed elements", res.tx, ex.seconds, lam, len(table))
    return ex
