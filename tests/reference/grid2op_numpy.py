"""numpy references of the grid2op adapter's kernel paths (gridtape/grid2op), used only by the tests
that compare the kernels with them (tests/test_grid2op_fastpaths.py, tests/test_grid2op_dslack.py):

- :func:`plan_values` for ``planner.plan_values`` (``g2o.plan_column``);
- :func:`new_model` for ``ResultCopy._new_model`` (``g2o.model_arrays``);
- :func:`fetch` for ``ResultCopy.fetch`` of an AC flow (the solver's result arrays and
  ``g2o.fill_buffers``), from the engine's voltages with numpy and the generator split of
  ``reference.results``; and :class:`NumpyFetchBackend`, a backend reading its results that way.
"""
from __future__ import annotations

import numpy as np

from gridtape.grid2op import GridtapeBackend
from gridtape.grid2op.results import ResultCopy, islanded_message

from .results import gen_pq_reference

SQRT3 = np.sqrt(3.0)
GROUPS = ("gen", "load", "storage", "shunt")


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
    """``ResultCopy._new_model``'s index arrays in numpy."""
    w = grid.world
    br = topo.branches
    n = len(w["line"]) + len(w["trafo"])
    sel = np.arange(n)
    b2 = np.concatenate((br.f[:n], br.t[:n])).astype(np.int64)
    act = topo.active
    eb = topo.lookup[np.concatenate([topo.elem_bus_row[g] for g in GROUPS])]
    eon = np.concatenate([act[g] for g in GROUPS])
    on = np.concatenate((w["line"].cols["in_service"], w["trafo"].cols["in_service"]))
    on2 = np.concatenate((on, on))
    kv2 = topo.base_kv[b2]
    return {"sel": sel, "none": grid._engine._none, "b2": b2, "kv2_on": kv2 * on2, "amp_den": kv2 * (SQRT3 / 1000.0),
            "off2": 1.0 - on2, "eb": eb, "eon": eon.astype(float),
            "bus": {g: eb[sl] for g, sl in rc.out.inj_slices.items()},
            "islanded": islanded_message(w, topo, sel, on, eon)}


def fetch(rc: ResultCopy, grid, mc, is_dc):
    """``rc.fetch`` in numpy for an AC flow (a DC flow is left to ``rc.fetch``)."""
    if is_dc:
        rc.fetch(grid, mc, is_dc)
        return
    eng = grid._engine
    w = grid.world
    sn = w.sn_mva
    topo = eng.topo
    br = topo.branches
    V = eng.V.copy()
    V[mc["none"]] = 0.0
    va = np.arctan2(V.imag, V.real)
    va *= 180.0 / np.pi
    vm = np.abs(V)
    vf, vt = V[br.f], V[br.t]
    sf = vf * np.conj(br.yff * vf + br.yft * vt)
    st = vt * np.conj(br.ytf * vf + br.ytt * vt)
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
    grp = rc.out.grp
    pg, qg = gen_pq_reference(eng)  # pfsoln's split, in the engine's generator table order
    pos = eng.inj.gens["gen_pos"]
    grp["gen"][0] = np.where(pos >= 0, pg[pos], 0.0)
    grp["gen"][1] = np.where(pos >= 0, qg[pos], 0.0)
    act, bus = topo.active, mc["bus"]
    c = w["load"].cols
    u = vm[bus["load"]]
    sc = c["scaling"] * act["load"]
    zp, ip = c["const_z_p_percent"] / 100, c["const_i_p_percent"] / 100
    zq, iq = c["const_z_q_percent"] / 100, c["const_i_q_percent"] / 100
    grp["load"][0] = c["p_mw"] * sc * (1 - zp - ip + ip * u + zp * u * u)
    grp["load"][1] = c["q_mvar"] * sc * (1 - zq - iq + iq * u + zq * u * u)
    c = w["storage"].cols
    grp["storage"][0], grp["storage"][1] = c["p_mw"], c["q_mvar"]
    c = w["shunt"].cols
    if len(c["p_mw"]):
        vb = vkv[bus["shunt"]]
        k = vb * vb * c["step"] / c["vn_kv"] ** 2 * act["shunt"]
        grp["shunt"][0], grp["shunt"][1] = k * c["p_mw"], k * c["q_mvar"]


class NumpyCopy(ResultCopy):
    """A result copy that always reads results by :func:`fetch`."""

    def fetch(self, grid, mc, is_dc):
        if is_dc:
            return super().fetch(grid, mc, is_dc)
        fetch(self, grid, mc, is_dc)
        return bool(np.isfinite(self.out.buf["line"]).all())


class NumpyFetchBackend(GridtapeBackend):
    """A GridtapeBackend whose results are always read by the numpy reference."""

    _result_copy = NumpyCopy
