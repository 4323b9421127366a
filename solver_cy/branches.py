"""Branch physics of the bus-branch model: per-unit 2x2 admittances of every branch (lines,
pandapower's two- and three-winding transformer models with tap changers, impedances, xward
branches, impedance switches) and the bus shunts (shunts, wards, xwards).

:func:`fill_admittances` keeps the per-unit branch parameters in a dict handed in by the model
cache (model_cache.py), which empties it when a branch table's admittance column, its rows or a
network value changed; a topology change that only moves branch ends between buses of the same
voltage, or switches branches, reuses them.
"""
from __future__ import annotations

import math

import numpy as np

from gridtape.errors import SchemaError

from .chartables import TRAFO_EXTRAS, column, line_temperature_factor, shunt_step_values, with_char_table
from .inject import bus_sums, shunt_ysh
from .modelopts import as_model_options
from .topology import Topology
from .trafos import trafo3w_as_trafos, trafo_branch_values
from .ybus import masked_admittances, same_end_kv

SWITCH_RX_RATIO = 2.0
#: the branch kinds whose parameters fill_admittances keeps (impedance switches are topology)
BRANCH_KINDS = ("line", "trafo", "trafo3w", "impedance", "xward")


def fill_admittances(world, topo: Topology, trafo_model="t", cache: dict | None = None) -> np.ndarray:
    """Fill the branch admittances of ``topo.branches``; return the bus shunt vector ysh (p.u.).

    ``cache`` (a dict kept by the caller between calls) holds the per-unit branch parameters of
    the last call and their key: model options, branch tables and the base voltages at the branch
    ends (the model cache clears it when a column they read or a network value changes).  A topology change that only moves branch ends between buses of
    the same voltage, or switches branches, reuses them; only the status-dependent part is redone."""
    br = topo.branches
    sn = world.sn_mva
    trafo_model = as_model_options(trafo_model)
    key = _param_key(topo, trafo_model) if cache is not None else None
    if key is not None and cache.get("key") == key and same_end_kv(topo.base_kv, br.f, br.t, *cache["kv"]):
        x, ratio, shift, bad_if_on, y_on, r = cache["params"]
    else:
        r, x, g, b, g_asym, b_asym, r_asym, x_asym, ratio, shift = _branch_params(world, topo, trafo_model)
        with np.errstate(divide="ignore", invalid="ignore"):
            zf, zt = 1 / (r + 1j * x), 1 / (r + r_asym + 1j * (x + x_asym))
            bad_if_on = ~np.isfinite(r + x) | (r == 0) & (x == 0)
            # the 2x2 admittances of every branch as if it were in service
            bcf = g + 1j * b
            bct = g + g_asym + 1j * (b + b_asym)
            tap = ratio * np.exp(1j * np.pi / 180 * shift)
            y_on = ((zf + bcf / 2) / (tap * np.conj(tap)), -zf / np.conj(tap), -zt / tap, zt + bct / 2)
        if key is not None:
            cache["key"] = key
            cache["kv"] = (topo.base_kv[br.f], topo.base_kv[br.t])
            cache["params"] = (x, ratio, shift, bad_if_on, y_on, r)
    # a branch out of service contributes nothing (zeros), one in service must have an impedance
    k, y = masked_admittances(np.ascontiguousarray(br.status, bool), bad_if_on, y_on)
    if k >= 0:
        kind, row = _owner(br, k)
        raise SchemaError("branch has zero or undefined series impedance", table=kind,
                          row=int(world[kind].ids[row]) if kind != "switch" else int(world["switch"].ids[row]))
    br.yff, br.yft, br.ytf, br.ytt = y
    br.x, br.ratio, br.shift_deg, br.r = x, ratio, shift, r
    return _bus_shunts(world, topo, trafo_model) / sn


def _param_key(topo, opts):
    """What the kept branch parameters depend on besides the columns the model cache watches, or
    None when they are not kept (impedance switches: their z_ohm is a topology column)."""
    br = topo.branches
    if "switch" in br.slices:
        return None
    return (opts, tuple(br.slices.items()))


def _branch_params(world, topo, opts):
    """Per-unit r, x, g, b, g_asym, b_asym, r_asym, x_asym, ratio, shift of every branch,
    whatever its status (``opts``: modelopts.ModelOptions)."""
    trafo_model = opts.trafo_model
    br = topo.branches
    n = len(br.f)
    r = np.zeros(n)
    x = np.zeros(n)
    g = np.zeros(n)
    b = np.zeros(n)
    g_asym = np.zeros(n)
    b_asym = np.zeros(n)
    r_asym = np.zeros(n)
    x_asym = np.zeros(n)
    ratio = np.ones(n)
    shift = np.zeros(n)
    sn = world.sn_mva
    kv = topo.base_kv
    with np.errstate(divide="ignore", invalid="ignore"):
        if "line" in br.slices:
            s0, s1 = br.slices["line"]
            c = world["line"].cols
            base_r = kv[br.f[s0:s1]] ** 2 / sn
            par = c["parallel"].astype(float)
            ln = c["length_km"]
            r[s0:s1] = c["r_ohm_per_km"] * ln / base_r / par
            if opts.line_temperature:
                r[s0:s1] *= line_temperature_factor(world["line"])
            x[s0:s1] = c["x_ohm_per_km"] * ln / base_r / par
            b[s0:s1] = 2 * world.f_hz * math.pi * c["c_nf_per_km"] * 1e-9 * base_r * ln * par
            g[s0:s1] = c["g_us_per_km"] * 1e-6 * base_r * ln * par
        if "trafo" in br.slices:
            s0, s1 = br.slices["trafo"]
            t = world["trafo"]
            c = t.cols
            td = {k: c[k] for k in c}
            for k in TRAFO_EXTRAS:
                td[k] = column(t, k)
            with_char_table(world, t, td, "trafo", ("vk_percent", "vkr_percent"))
            if not opts.voltage_angles:
                td["shift_degree"] = np.zeros(len(t))
            out = trafo_branch_values(td, kv[br.f[s0:s1]], kv[br.t[s0:s1]], sn, trafo_model)
            r[s0:s1], x[s0:s1], g[s0:s1], b[s0:s1], g_asym[s0:s1], b_asym[s0:s1], ratio[s0:s1], shift[s0:s1] = out
        if "trafo3w" in br.slices:
            s0, s1 = br.slices["trafo3w"]
            td = trafo3w_as_trafos(world["trafo3w"], opts, world)
            out = trafo_branch_values(td, kv[br.f[s0:s1]], kv[br.t[s0:s1]], sn, trafo_model)
            r[s0:s1], x[s0:s1], g[s0:s1], b[s0:s1], g_asym[s0:s1], b_asym[s0:s1], ratio[s0:s1], shift[s0:s1] = out
        if "impedance" in br.slices:
            s0, s1 = br.slices["impedance"]
            c = world["impedance"].cols
            si = c["sn_mva"]
            r[s0:s1] = c["rft_pu"] / si * sn
            x[s0:s1] = c["xft_pu"] / si * sn
            r_asym[s0:s1] = c["rtf_pu"] / si * sn - r[s0:s1]
            x_asym[s0:s1] = c["xtf_pu"] / si * sn - x[s0:s1]
            g[s0:s1] = 2 * c["gf_pu"] * si / sn
            b[s0:s1] = 2 * c["bf_pu"] * si / sn
            g_asym[s0:s1] = 2 * c["gt_pu"] * si / sn - g[s0:s1]
            b_asym[s0:s1] = 2 * c["bt_pu"] * si / sn - b[s0:s1]
        if "xward" in br.slices:
            s0, s1 = br.slices["xward"]
            c = world["xward"].cols
            base_r = kv[br.f[s0:s1]] ** 2 / sn
            r[s0:s1] = c["r_ohm"] / base_r
            x[s0:s1] = c["x_ohm"] / base_r
        if "switch" in br.slices:
            s0, s1 = br.slices["switch"]
            z = world["switch"].cols["z_ohm"][br.rows["switch"]]
            base_r = kv[br.f[s0:s1]] ** 2 / sn
            rx = opts.switch_rx_ratio
            rz = rx / math.sqrt(1 + rx ** 2)
            xz = 1 / math.sqrt(1 + rx ** 2)
            r[s0:s1] = z / base_r * rz
            x[s0:s1] = z / base_r * xz

    return r, x, g, b, g_asym, b_asym, r_asym, x_asym, ratio, shift


def _owner(br, k):
    for kind, (s0, s1) in br.slices.items():
        if s0 <= k < s1:
            return kind, int(br.rows[kind][k - s0])
    raise IndexError(k)


def _bus_shunts(world, topo, opts=None) -> np.ndarray:
    """Bus shunt admittance in MW/MVAr at 1 p.u. (GS + j BS), from shunts, wards and xwards, and
    with ``trafo3w_losses="star"`` the trafo3w iron losses at their star points."""
    nb = topo.nb
    tabs = world.tables
    sh = tabs["shunt"]
    ysh = None
    if len(sh):  # (bus kV / shunt kV)^2 * step * (p - j q) per active shunt, in one kernel pass
        c = sh.cols
        p_step, q_step = shunt_step_values(world)
        ysh = shunt_ysh(topo.lookup, np.ascontiguousarray(topo.elem_bus_row["shunt"], np.int64), topo.base_kv,
                        c["vn_kv"], c["step"], topo.active["shunt"], p_step, q_step, nb)
    gs = bs = None
    for kind in ("ward", "xward"):
        tab = tabs[kind]
        if len(tab):
            b = topo.elem_bus(kind)
            p, q = bus_sums(b, tab.cols["pz_mw"], tab.cols["qz_mvar"],
                            topo.active[kind].astype(np.float64), None, nb)
            gs, bs = (p, q) if gs is None else (gs + p, bs + q)
    if ysh is None:
        ysh = np.zeros(nb, dtype=complex)
    if gs is not None:
        ysh.real += gs
        ysh.imag -= bs
    t3 = tabs["trafo3w"]
    if opts is not None and opts.trafo3w_losses == "star" and len(t3) and "trafo3w" in topo.aux:
        # pandapower adds them for every trafo3w whatever its loss_side (docs/model-notes.md)
        c = t3.cols
        pfe = c["pfe_kw"] * 1e-3
        q = (c["sn_hv_mva"] * c["i0_percent"] / 100.0) ** 2 - pfe ** 2
        q = np.sqrt(np.where(q < 0, 0.0, q))
        a = topo.aux["trafo3w"]
        vr = (topo.base_kv[a] / c["vn_hv_kv"]) ** 2
        ok = a >= 0
        np.add.at(ysh, a[ok], (pfe * vr - 1j * q * vr)[ok])
    return ysh
