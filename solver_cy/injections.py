"""The injection layer of the bus-branch model: specified complex power per bus (constant,
current and impedance parts), voltage set-points and the generator table, refreshed per write.

The engine keeps one cache per topology; each contributing kind's bus sums are recomputed only
when that kind's columns were written (the world's write stamps), so an incremental solve after a
load write redoes the loads' sums and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridtape.errors import SchemaError

from .model import Q_LIM_DEFAULT, Topology, _bus_rows


@dataclass
class Injections:
    s0: np.ndarray  # constant-power part of the specified injection (p.u., generation positive)
    si: np.ndarray  # constant-current part (multiplied by |V|)
    sz: np.ndarray  # constant-impedance part (multiplied by |V|^2)
    pd: np.ndarray  # bus load P (MW, load convention, all PQ elements), as pandapower's PD
    qd: np.ndarray
    vm_set: np.ndarray  # voltage magnitude set-point per bus (NaN where none)
    va_set: np.ndarray  # angle set-point (degree) at ext_grid buses (NaN where none)
    gens: dict  # generator table for result extraction (pfsoln order: ext_grid, gen, xward)


PQ_KINDS = (("load", 1.0, "p_mw", "q_mvar", True), ("sgen", -1.0, "p_mw", "q_mvar", True),
            ("storage", 1.0, "p_mw", "q_mvar", True), ("ward", 1.0, "ps_mw", "qs_mvar", False),
            ("xward", 1.0, "ps_mw", "qs_mvar", False))


def _pq_part(world, topo, kind, sign, pcol, qcol, scaled):
    """Bus sums (MW, MVAr, load convention) of one kind of PQ element."""
    tab = world[kind]
    b = _bus_rows(world, topo, kind)
    w = topo.active[kind] * sign
    if scaled:
        w = tab.cols["scaling"] * w
    nb = topo.nb
    return (np.bincount(b, tab.cols[pcol] * w, minlength=nb),
            np.bincount(b, tab.cols[qcol] * w, minlength=nb))


def _zi_part(world, topo):
    """Per-bus averaged constant-current and constant-impedance shares of the loads, or None."""
    load = world["load"]
    c = load.cols
    zp, ip, zq, iq = c["const_z_p_percent"], c["const_i_p_percent"], c["const_z_q_percent"], c["const_i_q_percent"]
    over = (zp + ip > 100) | (zq + iq > 100)
    if over.any():
        k = int(np.flatnonzero(over)[0])
        raise SchemaError("const_z + const_i percentages exceed 100", table="load", row=int(load.ids[k]),
                          field="const_z_p_percent")
    act = topo.active["load"]
    if not (zp[act].any() or ip[act].any() or zq[act].any() or iq[act].any()):
        return None
    nb = topo.nb
    b = _bus_rows(world, topo, "load")[act]
    cnt = np.bincount(b, minlength=nb).astype(float)
    cnt[cnt == 0] = 1
    # pandapower averages the loads' percentages per bus
    return tuple(np.bincount(b, col[act] / 100.0, minlength=nb) / cnt for col in (ip, zp, iq, zq))


def _gen_static(world, topo):
    """The generator table (pfsoln order: ext_grid, gen, xward) without the set-points: bus, Q
    limits, kind, row, slack flag and weight.  Depends on topology and on those columns only."""
    g_bus, g_qmin, g_qmax, g_kind, g_row, g_w, g_slack = [], [], [], [], [], [], []
    eg = world["ext_grid"]
    if len(eg):
        act = topo.active["ext_grid"]
        k = int(act.sum())
        g_bus.append(_bus_rows(world, topo, "ext_grid")[act]); g_qmin.append(np.zeros(k)); g_qmax.append(np.zeros(k))
        g_kind.append(np.zeros(k, np.int8)); g_row.append(np.flatnonzero(act))
        g_w.append(eg.cols["slack_weight"][act]); g_slack.append(np.ones(k, bool))
    gen = world["gen"]
    if len(gen):
        act = topo.active["gen"]
        g_bus.append(_bus_rows(world, topo, "gen")[act])
        g_qmin.append(np.nan_to_num(gen.cols["min_q_mvar"][act], nan=-Q_LIM_DEFAULT))
        g_qmax.append(np.nan_to_num(gen.cols["max_q_mvar"][act], nan=Q_LIM_DEFAULT))
        g_kind.append(np.ones(int(act.sum()), np.int8)); g_row.append(np.flatnonzero(act))
        g_w.append(gen.cols["slack_weight"][act]); g_slack.append(gen.cols["slack"][act])
    xw = world["xward"]
    if len(xw):
        act = topo.active["xward"]
        k = int(act.sum())
        g_bus.append(topo.aux["xward"][act]); g_qmin.append(np.full(k, -Q_LIM_DEFAULT))
        g_qmax.append(np.full(k, Q_LIM_DEFAULT)); g_kind.append(np.full(k, 2, np.int8))
        g_row.append(np.flatnonzero(act)); g_w.append(xw.cols["slack_weight"][act]); g_slack.append(np.zeros(k, bool))
    cat = (lambda a, dt: np.concatenate(a).astype(dt) if a else np.zeros(0, dt))
    return {"bus": cat(g_bus, np.int64), "qmin": cat(g_qmin, float), "qmax": cat(g_qmax, float),
            "kind": cat(g_kind, np.int8), "row": cat(g_row, np.int64), "weight": cat(g_w, float),
            "slack": cat(g_slack, bool)}


def _gen_part(world, topo, static):
    """Voltage set-points, generator P (pfsoln order) and the bus sums of generation."""
    nb = topo.nb
    vm_set = np.full(nb, np.nan)
    va_set = np.full(nb, np.nan)
    ps = []
    eg = world["ext_grid"]
    if len(eg):
        act = topo.active["ext_grid"]
        b = _bus_rows(world, topo, "ext_grid")[act]
        vm_set[b] = eg.cols["vm_pu"][act]
        va_set[b] = eg.cols["va_degree"][act]
        ps.append(np.zeros(len(b)))
    gen = world["gen"]
    if len(gen):
        act = topo.active["gen"]
        c = gen.cols
        vm_set[_bus_rows(world, topo, "gen")[act]] = c["vm_pu"][act]
        ps.append(c["p_mw"][act] * c["scaling"][act])
    xw = world["xward"]
    if len(xw):
        act = topo.active["xward"]
        vm_set[topo.aux["xward"][act]] = xw.cols["vm_pu"][act]
        ps.append(np.zeros(int(act.sum())))
    gens = dict(static)
    gens["p"] = (ps[0] if len(ps) == 1 else np.concatenate(ps)) if ps else np.zeros(0)
    sg = np.bincount(gens["bus"], gens["p"], minlength=nb)
    return vm_set, va_set, gens, sg


def _injection_plan(world):
    """Which kinds contribute, and the (kind, column) write stamps each partial sum depends on."""
    pq = []
    for kind, sign, pcol, qcol, scaled in PQ_KINDS:
        if len(world[kind]):
            cols = (pcol, qcol, "scaling") if scaled else (pcol, qcol)
            pq.append((kind, sign, pcol, qcol, scaled, tuple((kind, c) for c in cols)))
    zi = tuple(("load", c) for c in ("const_z_p_percent", "const_i_p_percent", "const_z_q_percent",
                                     "const_i_q_percent")) if len(world["load"]) else ()
    gen_static = (("gen", "min_q_mvar"), ("gen", "max_q_mvar"), ("gen", "slack"), ("gen", "slack_weight"),
                  ("ext_grid", "slack_weight"), ("xward", "slack_weight"))
    gen_dynamic = (("gen", "p_mw"), ("gen", "scaling"), ("gen", "vm_pu"), ("ext_grid", "vm_pu"),
                   ("ext_grid", "va_degree"), ("xward", "vm_pu"))
    return pq, zi, (gen_static, gen_dynamic)


def fill_injections(world, topo: Topology, cache: dict | None = None) -> Injections:
    """Specified injections of every bus.  ``cache`` (kept by the engine per topology) holds each
    kind's partial sums keyed by the world's per-kind write counter, so an incremental solve after
    a load write recomputes the loads' sums only."""
    if cache is None:
        cache = {}
    cv = world.col_version
    t_all = world._tick_all
    nb = topo.nb
    sn = world.sn_mva
    plan = cache.get("plan")
    if plan is None:
        plan = cache["plan"] = _injection_plan(world)
    pq, zi_keys, gen_keys = plan
    pd = qd = None
    for kind, sign, pcol, qcol, scaled, keys in pq:
        key = max([t_all] + [cv.get(k, 0) for k in keys])
        hit = cache.get(kind)
        if hit is None or hit[0] != key:
            hit = cache[kind] = (key, _pq_part(world, topo, kind, sign, pcol, qcol, scaled))
        p, q = hit[1]
        pd, qd = (p, q) if pd is None else (pd + p, qd + q)
    if pd is None:
        pd = qd = np.zeros(nb)
    zi = None
    if zi_keys:
        key = max([t_all] + [cv.get(k, 0) for k in zi_keys])
        hit = cache.get("zi")
        if hit is None or hit[0] != key:
            hit = cache["zi"] = (key, _zi_part(world, topo))
        zi = hit[1]
    skeys, dkeys = gen_keys
    key = max([t_all] + [cv.get(k, 0) for k in skeys])
    hit = cache.get("gen_static")
    if hit is None or hit[0] != key:
        hit = cache["gen_static"] = (key, _gen_static(world, topo))
        cache.pop("gen", None)
    static = hit[1]
    key = max([t_all] + [cv.get(k, 0) for k in dkeys])
    hit = cache.get("gen")
    if hit is None or hit[0] != key:
        hit = cache["gen"] = (key, _gen_part(world, topo, static))
    vm_set, va_set, gens, sg = hit[1]
    if zi is None:
        s0 = np.empty(nb, dtype=complex)
        s0.real = sg - pd
        s0.imag = qd
        s0.imag *= -1.0
        if sn != 1.0:
            s0 /= sn
        zero = cache.get("zero")
        if zero is None or len(zero) != nb:
            zero = cache["zero"] = np.zeros(nb, dtype=complex)
        si = sz = zero
    else:
        ci_p, cz_p, ci_q, cz_q = zi
        s0 = (sg - (pd * (1 - ci_p - cz_p) + 1j * qd * (1 - ci_q - cz_q))) / sn
        si = -(pd * ci_p + 1j * qd * ci_q) / sn
        sz = -(pd * cz_p + 1j * qd * cz_q) / sn
    if not np.isfinite(s0).all():
        raise SchemaError("non-finite injection", table="bus", row=int(np.flatnonzero(~np.isfinite(s0))[0]))
    return Injections(s0, si, sz, pd, qd, vm_set, va_set, gens)
