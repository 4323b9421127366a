"""numpy references of the grid2op adapter's kernel paths (gridtape/grid2op), used only by the tests
that compare the kernels with them (tests/test_grid2op_fastpaths.py, tests/test_grid2op_dslack.py):

- :func:`plan_values` for ``planner.plan_values`` (``g2o.plan_column``);
- :func:`new_model` for ``ResultCopy._new_model`` (``g2o.model_arrays``);
- :func:`fetch` for ``ResultCopy.fetch`` of an AC flow (``g2o.ac_results`` and ``g2o.inj_results``),
  and :class:`NumpyFetchBackend`, a backend reading its results that way.
"""
from __future__ import annotations

import numpy as np

from gridtape.grid2op import GridtapeBackend
from gridtape.grid2op.results import ResultCopy, islanded_message, slack_shares
from gridtape.solver_cy.flows import branch_flows, bus_injection

SQRT3 = np.sqrt(3.0)


def plan_values(plan, t, kind, col, store, divide=None, every=False):
    """``planner.plan_values`` in numpy."""
    ch = store.changed
    k = np.count_nonzero(ch)
    if not k:
        return
    vals = store.values if divide is None else store.values / divide
    if every:
        if k == len(ch):  # every row: the world writes the whole column without a lookup
            plan.append((kind, col, None, vals.astype(np.float64), True))
        else:
            rows = ch.nonzero()[0]
            plan.append((kind, col, rows, vals[rows].astype(np.float64), True))
        return
    d = t.cols[col] != vals
    d &= ch
    rows = d.nonzero()[0]
    if len(rows):
        plan.append((kind, col, rows, vals[rows].astype(np.float64), True))


def new_model(rc, grid, topo) -> dict:
    """``ResultCopy._new_model``'s arrays in numpy (the keys the kernel fills)."""
    st = rc._static(grid)
    w = grid.world
    br = topo.branches
    sel = st["sel"]
    n = len(sel)
    b2 = np.concatenate((br.f[:n], br.t[:n])).astype(np.int64)
    act = topo.active
    groups = ("gen", "load", "storage", "shunt")
    eb = topo.lookup[np.concatenate([topo.elem_bus_row[g] for g in groups])]
    eon = np.concatenate([act[g] for g in groups])
    on = np.concatenate((w["line"].cols["in_service"], w["trafo"].cols["in_service"]))
    on2 = np.concatenate((on, on))
    kv2 = topo.base_kv[b2]
    return {"sel": sel, "none": grid._engine._none, "b2": b2, "kv2_on": kv2 * on2, "amp_den": kv2 * (SQRT3 / 1000.0),
            "off2": 1.0 - on2, "eb": eb, "eon": eon.astype(float),
            "bus": {g: eb[sl] for g, sl in rc.out.inj_slices.items()},
            "islanded": islanded_message(w, topo, sel, on, eon)}


def fetch(rc: ResultCopy, grid, mc, is_dc):
    """``rc.fetch`` in numpy for an AC flow (a DC flow has only the numpy copy)."""
    if is_dc:
        rc._fetch_dc(grid, mc)
        return
    eng = grid._engine
    sn = grid.world.sn_mva
    topo = eng.topo
    br = topo.branches
    V = eng.V.copy()
    V[mc["none"]] = 0.0
    va = np.arctan2(V.imag, V.real)
    va *= 180.0 / np.pi
    vm = np.abs(V)
    sf, st, _, _ = branch_flows(br.f, br.t, br.yff, br.yft, br.ytf, br.ytt, V)
    S = bus_injection(eng.indptr, eng.indices, eng.ydata, V) * sn
    n = len(mc["sel"])
    s = np.concatenate((sf[:n], st[:n])) * sn
    b2 = mc["b2"]
    vmb = vm[b2]
    L = rc.out.buf["line"]
    L[0], L[1], L[2] = s.real, s.imag, vmb * mc["kv2_on"]
    L[3] = np.abs(s) / (vmb * mc["amp_den"] + mc["off2"])
    L[4] = va[b2]
    vkv = vm * topo.base_kv
    E = rc.out.buf["inj"]
    E[2] = vkv[mc["eb"]] * mc["eon"]
    E[3] = va[mc["eb"]] * mc["eon"]
    # generators: Q of each bus split by reactive range (pfsoln), P at the set-points but at slack buses
    G = rc.out.grp["gen"]
    gs = mc["gen_ds"] if rc.dist_slack else mc["gen"]
    gb = gs["bus"]
    qtot = S.imag[gb] + eng.inj.qd[gb]
    q = gs["qmin"] + (qtot - gs["qmn"]) * gs["scale"]
    same = gs["same"]
    q[same] = qtot[same] / gs["cnt"][same]
    G[1] = 0.0
    G[1, gs["rows"]] = q
    c = grid.world["gen"].cols
    G[0] = slack_shares(c["p_mw"] * c["scaling"] * mc["act"]["gen"], gs["ref"], S.real + eng.inj.pd)
    rc._loads(grid.world, mc, vm, vkv, False)


class NumpyCopy(ResultCopy):
    """A result copy that always reads results by :func:`fetch`."""

    def fetch(self, grid, mc, is_dc):
        fetch(self, grid, mc, is_dc)
        return bool(np.isfinite(self.out.buf["line"]).all())


class NumpyFetchBackend(GridtapeBackend):
    """A GridtapeBackend whose results are always read by the numpy reference."""

    _result_copy = NumpyCopy
