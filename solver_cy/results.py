"""Result tables with pandapower's columns, units, signs and index, from a solved Engine.

Everything here is post-processing: per-unit bus voltages and branch flows are turned into the
element tables (res_bus, res_line, ...).  Unsupplied buses read NaN; a diverged solve gives NaN
everywhere (never numbers of an earlier solve).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import model as M
from .flows import branch_flows, bus_injection
from .modelopts import as_model_options

SQRT3 = np.sqrt(3.0)

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
    """Every result table of a converged solve, as {kind: DataFrame}."""
    w = engine.world
    topo, inj = engine.topo, engine.inj
    sn = w.sn_mva
    V = engine.V
    vm = np.abs(V)
    va = np.rad2deg(np.angle(V)) if engine.algorithm != "dc" else np.rad2deg(engine.va_dc)
    kv = topo.base_kv
    br = topo.branches
    Vz = np.where(np.isfinite(V), V, 0)
    sf, st, _, _ = branch_flows(br.f, br.t, br.yff, br.yft, br.ytf, br.ytt, Vz)
    if engine.algorithm == "dc":
        # DC flows: P = b (va_f - va_t - shift), lossless, no reactive power
        with np.errstate(divide="ignore", invalid="ignore"):
            bb = np.where(br.status, 1.0 / br.x, 0.0) / br.ratio
        ang = np.nan_to_num(engine.va_dc)
        p = bb * (ang[br.f] - ang[br.t] - np.deg2rad(br.shift_deg))
        sf, st = p.astype(complex), -p.astype(complex)
    sf = sf * sn
    st = st * sn
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

    def elem_bus(kind):
        return topo.elem_bus_row[kind]

    def add_bus(kind, p, q):
        rows = elem_bus(kind)
        np.add.at(bus_p, rows, np.nan_to_num(p))
        np.add.at(bus_q, rows, np.nan_to_num(q))

    # --- bus voltages ---------------------------------------------------------------------
    bvm = vm[lookup]
    bva = va[lookup]
    # --- PQ elements ----------------------------------------------------------------------
    for kind, sign in (("load", 1.0), ("sgen", -1.0), ("storage", 1.0)):
        tab = w[kind]
        if not len(tab):
            out[kind] = _frame(kind, idx(kind), {})
            continue
        c = tab.cols
        act = topo.active[kind]
        p = c["p_mw"] * c["scaling"] * act
        q = c["q_mvar"] * c["scaling"] * act
        if kind == "sgen":
            from .qlim import sgen_setpoints

            eff = sgen_setpoints(w, getattr(engine, "_qlim_active", False), getattr(engine, "_plims_active", False))
            if eff is not None:
                p = eff[0] * c["scaling"] * act
                q = eff[1] * c["scaling"] * act
        if kind == "load" and engine.solve_options.get("voltage_depend_loads", True) and engine.algorithm != "dc":
            u = np.nan_to_num(vm[lookup[elem_bus(kind)]])
            cz_p, ci_p = c["const_z_p_percent"] / 100, c["const_i_p_percent"] / 100
            cz_q, ci_q = c["const_z_q_percent"] / 100, c["const_i_q_percent"] / 100
            p = p * (1 - cz_p - ci_p + ci_p * u + cz_p * u * u)
            q = q * (1 - cz_q - ci_q + ci_q * u + cz_q * u * u)
        out[kind] = _frame(kind, idx(kind), {"p_mw": p, "q_mvar": q})
        add_bus(kind, sign * p, sign * q)
    # --- shunts, wards, xwards -----------------------------------------------------------
    if len(w["shunt"]):
        c = w["shunt"].cols
        b = lookup[elem_bus("shunt")]
        u = np.nan_to_num(vm[b])
        v_ratio = (kv[b] / c["vn_kv"]) ** 2
        act = topo.active["shunt"]
        p_step, q_step = M.shunt_step_values(w)
        p = u * u * p_step * act * v_ratio * c["step"]
        q = u * u * q_step * act * v_ratio * c["step"]
        out["shunt"] = _frame("shunt", idx("shunt"), {"p_mw": p, "q_mvar": q, "vm_pu": np.nan_to_num(vm[b])})
        add_bus("shunt", p, q)
    else:
        out["shunt"] = _frame("shunt", idx("shunt"), {})
    for kind in ("ward", "xward"):
        tab = w[kind]
        if not len(tab):
            out[kind] = _frame(kind, idx(kind), {})
            continue
        c = tab.cols
        b = lookup[elem_bus(kind)]
        u = np.nan_to_num(vm[b])
        act = topo.active[kind]
        p = c["ps_mw"] * act + u * u * c["pz_mw"] * act
        q = c["qs_mvar"] * act + u * u * c["qz_mvar"] * act
        cols = {"p_mw": p, "q_mvar": q, "vm_pu": np.nan_to_num(vm[b])}
        if kind == "xward":
            s0, s1 = br.slices["xward"]
            pb, qb = sf[s0:s1].real, sf[s0:s1].imag
            p = p + pb - _xward_slack_share(engine)
            cols["p_mw"] = p
            cols["q_mvar"] = q + qb
            a = topo.aux["xward"]
            cols["va_internal_degree"] = va[a]
            cols["vm_internal_pu"] = vm[a]
            add_bus(kind, p, q + qb)
        else:
            add_bus(kind, p, q)
        out[kind] = _frame(kind, idx(kind), cols)
    # --- generators (pfsoln) --------------------------------------------------------------
    g = inj.gens
    pg, qg = _gen_pq(engine)
    if engine.algorithm == "dc" and len(g["bus"]):
        from .dc_results import dc_machine_power

        on = br.status
        pdc = (sf.real / sn)[on]
        spec = (inj.s0 + inj.si + inj.sz).real
        pg = dc_machine_power(g, br.f[on], br.t[on], pdc, spec, engine.ysh.real, topo.nb, sn)
    for kind, code in (("ext_grid", 0), ("gen", 1)):
        n = len(w[kind])
        p = np.zeros(n)
        q = np.zeros(n)
        m = g["kind"] == code
        p[g["row"][m]] = pg[m]
        q[g["row"][m]] = qg[m]
        cols = {"p_mw": p, "q_mvar": q}
        if kind == "gen":
            act = topo.active["gen"]
            b = lookup[elem_bus("gen")] if n else np.zeros(0, np.int64)
            cols["vm_pu"] = np.where(act, vm[b], 0.0)
            cols["va_degree"] = np.where(act, va[b], 0.0)
        out[kind] = _frame(kind, idx(kind), cols)
        if n:
            add_bus(kind, -p, -q)
    oos = ~w["bus"].cols["in_service"]
    bus_p[oos] = np.nan
    bus_q[oos] = np.nan
    out["bus"] = _frame("bus", idx("bus"), {"vm_pu": bvm, "va_degree": bva, "p_mw": bus_p, "q_mvar": bus_q})
    # --- branches -------------------------------------------------------------------------
    out["line"] = _frame("line", idx("line"), {})
    if "line" in br.slices:
        s0, s1 = br.slices["line"]
        c = w["line"].cols
        f, t = br.f[s0:s1], br.t[s0:s1]
        i_ka = np.fmax(i_f[s0:s1], i_t[s0:s1])
        i_ka = np.where(np.isnan(i_f[s0:s1]) | np.isnan(i_t[s0:s1]), np.nan, i_ka)
        i_max = c["max_i_ka"] * c["df"] * c["parallel"]
        with np.errstate(invalid="ignore", divide="ignore"):
            loading = np.where(i_max != 0, i_ka / i_max, np.inf) * 100
        out["line"] = _frame("line", idx("line"), {
            "p_from_mw": sf[s0:s1].real, "q_from_mvar": sf[s0:s1].imag, "p_to_mw": st[s0:s1].real,
            "q_to_mvar": st[s0:s1].imag, "pl_mw": sf[s0:s1].real + st[s0:s1].real,
            "ql_mvar": sf[s0:s1].imag + st[s0:s1].imag, "i_from_ka": i_f[s0:s1], "i_to_ka": i_t[s0:s1],
            "i_ka": i_ka, "vm_from_pu": vm[f], "va_from_degree": va[f], "vm_to_pu": vm[t], "va_to_degree": va[t],
            "loading_percent": loading})
        if as_model_options(engine.trafo_model).line_temperature:
            base_r = kv[f] ** 2 / sn
            out["line"]["r_ohm_per_km"] = br.r[s0:s1] * base_r * c["parallel"] / c["length_km"]
    out["trafo"] = _frame("trafo", idx("trafo"), {})
    if "trafo" in br.slices:
        s0, s1 = br.slices["trafo"]
        c = w["trafo"].cols
        f, t = br.f[s0:s1], br.t[s0:s1]
        if power_loading:
            ld = np.vstack([np.abs(sf[s0:s1]), np.abs(st[s0:s1])]) / c["sn_mva"] * 100
        else:
            ld = np.vstack([i_f[s0:s1] * c["vn_hv_kv"], i_t[s0:s1] * c["vn_lv_kv"]]) * SQRT3 / c["sn_mva"] * 100
        with np.errstate(invalid="ignore"):
            loading = np.max(ld, axis=0) / c["parallel"] / c["df"]
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
    from .switch_results import switch_columns

    out["switch"] = _frame("switch", idx("switch"), switch_columns(w, br, sf, st, i_f, i_t, out["line"],
                                                                    out["trafo"]) if len(w["switch"]) else {})
    if not branch_analysis:
        for k in ("line", "trafo", "trafo3w"):
            out[k] = out[k].drop(columns=["loading_percent"])
    if engine.algorithm == "dc":
        from .dc_results import blank_dc_columns

        blank_dc_columns(out)
    return out


def _xward_slack_share(engine):
    """The part of its island's slack power (MW) each xward takes under distributed slack."""
    w = engine.world
    out = np.zeros(len(w["xward"]))
    plan = getattr(engine, "slack_plan", None)
    if plan is None:
        return out
    g = engine.inj.gens
    m = (g["kind"] == 2) & (plan.gen_share != 0)
    isl = plan.island[plan.wbus[m]]
    out[g["row"][m]] = plan.gen_share[m] * engine.ps[isl] * w.sn_mva
    return out


def _gen_pq(engine):
    """P and Q of every generator in the engine's generator table (pfsoln semantics)."""
    topo, inj = engine.topo, engine.inj
    g = inj.gens
    sn = engine.world.sn_mva
    if not len(g["bus"]):
        return np.zeros(0), np.zeros(0)
    Vz = np.where(np.isfinite(engine.V), engine.V, 0)
    S = bus_injection(engine.indptr, engine.indices, engine.ydata, Vz)
    limited = getattr(engine, "q_limited", None) if getattr(engine, "_qlim_active", False) else None
    qg = engine._gen_q(Vz, limited, getattr(engine, "q_fixed", None) if limited is not None else None)
    pg = g["p"].copy()
    gb = g["bus"]
    ref_bus = gb[topo.bus_type[gb] == M.REF]
    ref_gen = g["slack"]
    plan = getattr(engine, "slack_plan", None)
    if plan is not None:
        # pfsoln with distributed slack: weighted buses and generators count as slack ones
        ref_bus = np.concatenate([ref_bus, gb[plan.weight[gb] != 0]])
        ref_gen = ref_gen | (g["weight"] != 0)
    for rb in np.unique(ref_bus):
        at = np.flatnonzero(gb == rb)
        p_bus = S[rb].real * sn + inj.pd[rb]
        slack = at[ref_gen[at]]
        fixed = at[~ref_gen[at]]
        if len(at) == 1:
            pg[at[0]] = p_bus
            continue
        if not len(slack):
            continue
        p_ext = p_bus - pg[fixed].sum()
        w = g["weight"][slack]
        if w.sum() > 0:
            pg[slack] = pg[slack] + (p_ext - pg[slack].sum()) * w / w.sum()
        else:
            pg[slack] = p_ext / len(slack)
    return pg, qg


def _frame(kind, index, cols):
    df = pd.DataFrame(index=index, columns=COLUMNS[kind], dtype=float)
    for k, v in cols.items():
        df[k] = np.asarray(v, dtype=float)
    return df
