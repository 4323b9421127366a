"""Result tables with pandapower's columns, units, signs and index, from a solve's result arrays
(result_arrays.ResultArrays): nothing here computes physics, it lays the arrays out as the
element tables (res_bus, res_line, ...) and derives currents and loadings.  Unsupplied buses read NaN; a diverged solve gives NaN
everywhere (never numbers of an earlier solve).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .dc_results import blank_dc_columns
from .modelopts import as_model_options
from .result_arrays import SQRT3, branch_loading, loading_constants
from .switch_results import switch_columns


COLUMNS = {
    "bus": ["vm_pu", "va_degree", "p_mw", "q_mvar"],
    "line": ["p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar", "pl_mw", "ql_mvar", "i_from_ka", "i_to_ka",
             "i_ka", "vm_from_pu", "va_from_degree", "vm_to_pu", "va_to_degree", "loading_percent"],
    "trafo": ["p_hv_mw", "q_hv_mvar", "p_lv_mw", "q_lv_mvar", "pl_mw", "ql_mvar", "i_hv_ka", "i_lv_ka",
              "vm_hv_pu", "va_hv_degree", "vm_lv_pu", "va_lv_degree", "loading_percent"],
    "trafo3w": ["p_hv_mw", "q_hv_mvar", "p_mv_mw", "q_mv_mvar", "p_lv_mw", "q_lv_mvar", "pl_mw", "ql_mvar",
                "i_hv_ka", "i_mv_ka", "i_lv_ka", "vm_hv_pu", "va_hv_degree", "vm_mv_pu", "va_mv_degree",
                "vm_lv_pu", "va_lv_degree", "va_internal_degree", "vm_internal_pu", "loading_percent"],
    "impedance": ["p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar", "pl_mw", "ql_mvar", "i_from_ka",
                  "i_to_ka"],
    "gen": ["p_mw", "q_mvar", "va_degree", "vm_pu"],
    "ext_grid": ["p_mw", "q_mvar"],
    "load": ["p_mw", "q_mvar"],
    "sgen": ["p_mw", "q_mvar"],
    "storage": ["p_mw", "q_mvar"],
    "shunt": ["p_mw", "q_mvar", "vm_pu"],
    "ward": ["p_mw", "q_mvar", "vm_pu"],
    "xward": ["p_mw", "q_mvar", "vm_pu", "va_internal_degree", "vm_internal_pu"],
    "switch": ["i_ka", "loading_percent", "p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar"],
}


def empty_tables(world) -> dict:
    """All-NaN result tables (for a diverged or not-yet-run solve)."""
    return {k: pd.DataFrame(np.nan, index=pd.Index(world[k].ids), columns=cols) for k, cols in COLUMNS.items()}


def compute(engine, branch_analysis: bool = True) -> dict:
    """Every result table of the engine's converged solve, as {kind: DataFrame}, from its result
    arrays (``engine.results()``, result_arrays.ResultArrays)."""
    res = engine.results()
    w, topo = res.world, res.topo
    vm, va = res.vm, res.va
    dc = res.algorithm == "dc"
    if dc:  # rundcpp reports its start magnitudes (set-points) and the unwrapped DC angles
        vm = np.abs(engine.V)
    kv = topo.base_kv
    br = topo.branches
    sf, st = res.sf, res.st
    with np.errstate(invalid="ignore", divide="ignore"):
        i_f = np.abs(sf) / (vm[br.f] * kv[br.f]) / SQRT3
        i_t = np.abs(st) / (vm[br.t] * kv[br.t]) / SQRT3
    out = {}
    power_loading = engine.solve_options.get("trafo_loading", "current") == "power"
    bus_p = np.zeros(topo.n_world_bus)
    bus_q = np.zeros(topo.n_world_bus)
    lookup = topo.lookup

    def idx(kind):
        return pd.Index(w[kind].ids)

    def add_bus(kind, p, q):
        rows = topo.elem_bus_row[kind]
        np.add.at(bus_p, rows, np.nan_to_num(p))
        np.add.at(bus_q, rows, np.nan_to_num(q))

    # --- one-bus elements -------------------------------------------------------------------
    for kind, sign in (("load", 1.0), ("sgen", -1.0), ("storage", 1.0), ("shunt", 1.0), ("ward", 1.0)):
        if not len(w[kind]):
            out[kind] = _frame(kind, idx(kind), {})
            continue
        p, q = res.element(kind)
        cols = {"p_mw": p, "q_mvar": q}
        if kind == "load" and not dc:
            p, q = cols["p_mw"], cols["q_mvar"] = _dead_loads_nan(engine, res, p, q)
        if kind in ("shunt", "ward"):
            cols["vm_pu"] = np.nan_to_num(vm[topo.elem_bus(kind)])  # de-energised: 0 (pandapower)
        out[kind] = _frame(kind, idx(kind), cols)
        add_bus(kind, sign * p, sign * q)
    if len(w["xward"]):
        p, q = res.element("xward")
        s0, s1 = br.slices["xward"]
        a = topo.aux["xward"]
        p = p + sf[s0:s1].real - _xward_slack_share(res)
        q = q + sf[s0:s1].imag
        out["xward"] = _frame("xward", idx("xward"), {"p_mw": p, "q_mvar": q, "vm_pu": np.nan_to_num(vm[topo.elem_bus("xward")]),
                                                      "va_internal_degree": va[a], "vm_internal_pu": vm[a]})
        add_bus("xward", p, q)
    else:
        out["xward"] = _frame("xward", idx("xward"), {})
    # --- generators (pfsoln) --------------------------------------------------------------
    for kind in ("ext_grid", "gen"):
        n = len(w[kind])
        p, q = res.element(kind)
        cols = {"p_mw": p, "q_mvar": q}
        if kind == "gen":
            act = topo.active["gen"]
            b = topo.elem_bus("gen")
            cols["vm_pu"] = np.where(act, vm[b], 0.0)
            cols["va_degree"] = np.where(act, va[b], 0.0)
        if kind == "ext_grid" and n and not w["ext_grid"].cols["in_service"].any():
            # pandapower fills res_ext_grid only when an ext_grid is in service (a slack gen is
            # the reference): NaN otherwise (results_gen._get_gen_results)
            cols["p_mw"] = cols["q_mvar"] = np.full(n, np.nan)
        out[kind] = _frame(kind, idx(kind), cols)
        if n:
            add_bus(kind, -p, -q)
    oos = ~w["bus"].cols["in_service"]
    bus_p[oos] = np.nan
    bus_q[oos] = np.nan
    if "load" in out and len(w["load"]):  # a load reading NaN makes its bus's sum NaN (pandapower)
        nan_at = topo.elem_bus_row["load"][np.isnan(out["load"]["p_mw"].to_numpy())]
        bus_p[nan_at] = np.nan
        bus_q[nan_at] = np.nan
    out["bus"] = _frame("bus", idx("bus"), {"vm_pu": vm[lookup], "va_degree": va[lookup], "p_mw": bus_p,
                                            "q_mvar": bus_q})
    # --- branches -------------------------------------------------------------------------
    out["line"] = _frame("line", idx("line"), {})
    if "line" in br.slices:
        s0, s1 = br.slices["line"]
        c = w["line"].cols
        f, t = br.f[s0:s1], br.t[s0:s1]
        i_ka = np.fmax(i_f[s0:s1], i_t[s0:s1])
        i_ka = np.where(np.isnan(i_f[s0:s1]) | np.isnan(i_t[s0:s1]), np.nan, i_ka)
        loading = branch_loading(vm, sf, st, loading_constants(w, topo, "line"))
        out["line"] = _frame("line", idx("line"), {
            "p_from_mw": sf[s0:s1].real, "q_from_mvar": sf[s0:s1].imag, "p_to_mw": st[s0:s1].real,
            "q_to_mvar": st[s0:s1].imag, "pl_mw": sf[s0:s1].real + st[s0:s1].real,
            "ql_mvar": sf[s0:s1].imag + st[s0:s1].imag, "i_from_ka": i_f[s0:s1], "i_to_ka": i_t[s0:s1],
            "i_ka": i_ka, "vm_from_pu": vm[f], "va_from_degree": va[f], "vm_to_pu": vm[t], "va_to_degree": va[t],
            "loading_percent": loading})
        if as_model_options(engine.trafo_model).line_temperature:
            out["line"]["r_ohm_per_km"] = br.r[s0:s1] * kv[f] ** 2 / w.sn_mva * c["parallel"] / c["length_km"]
    out["trafo"] = _frame("trafo", idx("trafo"), {})
    if "trafo" in br.slices:
        s0, s1 = br.slices["trafo"]
        c = w["trafo"].cols
        f, t = br.f[s0:s1], br.t[s0:s1]
        loading = branch_loading(vm, sf, st, loading_constants(w, topo, "trafo", power_loading))
        out["trafo"] = _frame("trafo", idx("trafo"), {
            "p_hv_mw": sf[s0:s1].real, "q_hv_mvar": sf[s0:s1].imag, "p_lv_mw": st[s0:s1].real,
            "q_lv_mvar": st[s0:s1].imag, "pl_mw": sf[s0:s1].real + st[s0:s1].real,
            "ql_mvar": sf[s0:s1].imag + st[s0:s1].imag, "i_hv_ka": i_f[s0:s1], "i_lv_ka": i_t[s0:s1],
            "vm_hv_pu": vm[f], "va_hv_degree": va[f], "vm_lv_pu": vm[t], "va_lv_degree": va[t],
            "loading_percent": loading})
    out["trafo3w"] = _frame("trafo3w", idx("trafo3w"), {})
    if "trafo3w" in br.slices:
        s0, _ = br.slices["trafo3w"]
        n = len(w["trafo3w"])
        h, m_, l_ = slice(s0, s0 + n), slice(s0 + n, s0 + 2 * n), slice(s0 + 2 * n, s0 + 3 * n)
        c = w["trafo3w"].cols
        if power_loading:
            ld = np.vstack([np.abs(sf[h]) / c["sn_hv_mva"], np.abs(st[m_]) / c["sn_mv_mva"],
                            np.abs(st[l_]) / c["sn_lv_mva"]]) * 100
        else:
            ld = np.vstack([i_f[h] * c["vn_hv_kv"] / c["sn_hv_mva"], i_t[m_] * c["vn_mv_kv"] / c["sn_mv_mva"],
                            i_t[l_] * c["vn_lv_kv"] / c["sn_lv_mva"]]) * SQRT3 * 100
        with np.errstate(invalid="ignore"):
            loading = np.max(ld, axis=0)
        ph, pm, pl = sf[h], st[m_], st[l_]
        out["trafo3w"] = _frame("trafo3w", idx("trafo3w"), {
            "p_hv_mw": ph.real, "q_hv_mvar": ph.imag, "p_mv_mw": pm.real, "q_mv_mvar": pm.imag,
            "p_lv_mw": pl.real, "q_lv_mvar": pl.imag, "pl_mw": ph.real + pm.real + pl.real,
            "ql_mvar": ph.imag + pm.imag + pl.imag, "i_hv_ka": i_f[h], "i_mv_ka": i_t[m_], "i_lv_ka": i_t[l_],
            "vm_hv_pu": vm[br.f[h]], "va_hv_degree": va[br.f[h]], "vm_mv_pu": vm[br.t[m_]],
            "va_mv_degree": va[br.t[m_]], "vm_lv_pu": vm[br.t[l_]], "va_lv_degree": va[br.t[l_]],
            "va_internal_degree": va[br.t[h]], "vm_internal_pu": vm[br.t[h]], "loading_percent": loading})
    out["impedance"] = _frame("impedance", idx("impedance"), {})
    if "impedance" in br.slices:
        s0, s1 = br.slices["impedance"]
        out["impedance"] = _frame("impedance", idx("impedance"), {
            "p_from_mw": sf[s0:s1].real, "q_from_mvar": sf[s0:s1].imag, "p_to_mw": st[s0:s1].real,
            "q_to_mvar": st[s0:s1].imag, "pl_mw": sf[s0:s1].real + st[s0:s1].real,
            "ql_mvar": sf[s0:s1].imag + st[s0:s1].imag, "i_from_ka": i_f[s0:s1], "i_to_ka": i_t[s0:s1]})
    out["switch"] = _frame("switch", idx("switch"), switch_columns(w, br, sf, st, i_f, i_t, out["line"], out["trafo"])
                           if len(w["switch"]) else {})
    if not branch_analysis:
        for k in ("line", "trafo", "trafo3w"):
            out[k] = out[k].drop(columns=["loading_percent"])
    if dc:
        blank_dc_columns(out)
    return out


def _dead_loads_nan(engine, res, p, q):
    """runpp's res_load with voltage-dependent loads (results_bus.write_voltage_dependend_load_results):
    each load's P and Q are multiplied by its bus voltage terms, NaN at a bus without a voltage
    (out of service or unsupplied), so every load there reads NaN, in service or not.  pandapower
    takes that path when the AC power flow uses voltage-dependent loads: ``voltage_depend_loads``
    and some load (in service or not) with a non-zero const_z / const_i percentage, or a stored
    ``voltage_depend_loads=True`` (its stored options override that test)."""
    o = engine.solve_options
    if not o.get("voltage_depend_loads", True):
        return p, q
    dead = np.isnan(res.vm[res.topo.elem_bus("load")])
    if not dead.any():
        return p, q
    c = res.world["load"].cols
    if not (o.get("voltage_depend_loads_stored") or any(
            c[k].any() for k in ("const_z_p_percent", "const_i_p_percent", "const_z_q_percent", "const_i_q_percent"))):
        return p, q
    return np.where(dead, np.nan, p), np.where(dead, np.nan, q)


def _xward_slack_share(res):
    """The part of its island's slack power (MW) each xward takes under distributed slack."""
    w = res.world
    out = np.zeros(len(w["xward"]))
    plan = res.plan
    if plan is None:
        return out
    g = res.gens
    m = (g["kind"] == 2) & (plan.gen_share != 0)
    isl = plan.island[plan.wbus[m]]
    out[g["row"][m]] = plan.gen_share[m] * res.ps[isl] * w.sn_mva
    return out


def _frame(kind, index, cols):
    df = pd.DataFrame(index=index, columns=COLUMNS[kind], dtype=float)
    for k, v in cols.items():
        df[k] = np.array(v, dtype=float)  # a copy: the result arrays are the model's buffers
    return df
