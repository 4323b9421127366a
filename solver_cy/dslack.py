"""Distributed slack: which buses share each island's slack power, and in what proportion.

pandapower's convention (``runpp(distributed_slack=True)``): every in-service ext_grid, gen and
xward with a non-zero ``slack_weight`` takes part; the weights of an island are normalised to sum
to 1 and summed per bus (an xward's weight sits at the xward's own bus).  The Newton unknowns gain
one slack power per island; the island keeps one reference angle (its first REF bus) and every
other REF bus of the island becomes a PV bus.  Islands without any weight keep a plain slack.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from gridtape.errors import SchemaError, SolverError

from . import topology as M

_TABLES = ("ext_grid", "gen", "xward")  # generator-table kinds 0, 1, 2
_tokens = itertools.count(1)


@dataclass
class SlackPlan:
    token: int  # identifies the plan (solver caches key on it)
    weight: np.ndarray  # normalised slack weight per internal bus (sum 1 per island)
    island: np.ndarray  # int32 per bus: index of its distributed-slack island, -1 for none
    dsref: np.ndarray  # int32 reference bus of each distributed-slack island
    fixed_ref: np.ndarray  # int32 REF buses of islands without weights (plain slacks)
    demoted: np.ndarray  # int32 REF buses that become PV buses
    gen_share: np.ndarray  # normalised weight per generator-table row
    wbus: np.ndarray  # bus of each generator-table row carrying its weight (xward: its own bus)


def _islands(topo):
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    br = topo.branches
    on = br.status
    nb = topo.nb
    a = coo_matrix((np.ones(int(on.sum())), (br.f[on], br.t[on])), shape=(nb, nb))
    return connected_components(a, directed=False)[1]


def slack_plan(world, topo, gens) -> SlackPlan:
    """The distributed-slack plan of a model; raises on weights that cannot be normalised."""
    nb = topo.nb
    kind, raw = gens["kind"], gens["weight"]
    bad = ~np.isfinite(raw)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        tab = _TABLES[kind[k]]
        raise SchemaError("slack_weight must be finite for distributed slack", table=tab,
                          row=int(world[tab].ids[gens["row"][k]]), field="slack_weight")
    wbus = gens["bus"].copy()
    xw = kind == 2
    if xw.any():
        wbus[xw] = topo.lookup[topo.elem_bus_row["xward"][gens["row"][xw]]]
    if not (raw != 0).any():
        raise SolverError("distributed_slack=True but every slack_weight of the in-service ext_grids, gens "
                          "and xwards is zero", table="gen", field="slack_weight")
    label = _islands(topo)
    tot = np.bincount(label[wbus], raw, minlength=nb)
    anyw = np.bincount(label[wbus], raw != 0, minlength=nb) > 0
    for c in np.flatnonzero(anyw):
        if tot[c] <= 1e-8 * np.abs(raw[label[wbus] == c]).sum():
            k = int(np.flatnonzero((label[wbus] == c) & (raw != 0))[0])
            tab = _TABLES[kind[k]]
            raise SchemaError("the slack weights of an island sum to zero or less; distributed slack needs a "
                              "positive total per island", table=tab, row=int(world[tab].ids[gens["row"][k]]),
                              field="slack_weight")
    share = np.where(anyw[label[wbus]], raw / np.where(tot[label[wbus]] != 0, tot[label[wbus]], 1.0), 0.0)
    weight = np.bincount(wbus, share, minlength=nb)
    ref = topo.ref
    comps = np.flatnonzero(anyw)
    island = np.full(nb, -1, np.int32)
    dsref, demoted = [], []
    for j, c in enumerate(comps):
        island[label == c] = j
        r = ref[label[ref] == c]  # sorted: the first REF bus keeps the angle reference
        if not len(r):
            raise SolverError("an island with slack weights has no reference bus", table="bus")
        dsref.append(r[0])
        demoted.extend(r[1:])
    island[topo.bus_type == M.NONE] = -1
    fixed = ref[~anyw[label[ref]]]
    i32 = (lambda a: np.asarray(a, dtype=np.int32))
    return SlackPlan(next(_tokens), weight, island, i32(dsref), i32(fixed), i32(sorted(demoted)), share, wbus)


def initial_slack(plan: SlackPlan, inj) -> np.ndarray:
    """pandapower's starting slack powers: the island's load minus its scheduled generation (p.u.)."""
    s = (inj.s0 + inj.si + inj.sz).real
    on = plan.island >= 0
    return -np.bincount(plan.island[on], s[on], minlength=len(plan.dsref))
