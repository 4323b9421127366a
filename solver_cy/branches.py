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

from .inject import bus_sums, shunt_ysh
from .topology import Topology
from .ybus import masked_admittances, same_end_kv

SWITCH_RX_RATIO = 2.0
#: the branch kinds whose parameters fill_admittances keeps (impedance switches are topology)
BRANCH_KINDS = ("line", "trafo", "trafo3w", "impedance", "xward")


def fill_admittances(world, topo: Topology, trafo_model: str = "t", cache: dict | None = None) -> np.ndarray:
    """Fill the branch admittances of ``topo.branches``; return the bus shunt vector ysh (p.u.).

    ``cache`` (a dict the model cache empties when a branch table's admittance column, its rows
    or a network value changed) holds the per-unit branch parameters of the last call, the
    trafo model and branch slices they were made for and the base voltages at the branch ends.
    A topology change that only moves branch ends between buses of the same voltage, or
    switches branches, reuses them; only the status-dependent part is redone."""
    br = topo.branches
    sn = world.sn_mva
    key = _param_key(topo, trafo_model) if cache is not None else None
    if key is not None and cache.get("key") == key and same_end_kv(topo.base_kv, br.f, br.t, *cache["kv"]):
        x, ratio, shift, bad_if_on, y_on = cache["params"]
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
            cache["params"] = (x, ratio, shift, bad_if_on, y_on)
    # a branch out of service contributes nothing (zeros), one in service must have an impedance
    k, y = masked_admittances(np.ascontiguousarray(br.status, bool), bad_if_on, y_on)
    if k >= 0:
        kind, row = _owner(br, k)
        raise SchemaError("branch has zero or undefined series impedance", table=kind,
                          row=int(world[kind].ids[row]) if kind != "switch" else int(world["switch"].ids[row]))
    br.yff, br.yft, br.ytf, br.ytt = y
    br.x, br.ratio, br.shift_deg = x, ratio, shift
    return _bus_shunts(world, topo) / sn


def _param_key(topo, trafo_model):
    """What the kept branch parameters depend on besides the columns the model cache watches, or
    None when they are not kept (impedance switches: their z_ohm is a topology column)."""
    br = topo.branches
    if "switch" in br.slices:
        return None
    return (trafo_model, tuple(br.slices.items()))


def _branch_params(world, topo, trafo_model):
    """Per-unit r, x, g, b, g_asym, b_asym, r_asym, x_asym, ratio, shift of every branch,
    whatever its status."""
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
            x[s0:s1] = c["x_ohm_per_km"] * ln / base_r / par
            b[s0:s1] = 2 * world.f_hz * math.pi * c["c_nf_per_km"] * 1e-9 * base_r * ln * par
            g[s0:s1] = c["g_us_per_km"] * 1e-6 * base_r * ln * par
        if "trafo" in br.slices:
            s0, s1 = br.slices["trafo"]
            c = world["trafo"].cols
            td = {k: c[k] for k in c}
            out = _trafo_branch_values(td, kv[br.f[s0:s1]], kv[br.t[s0:s1]], sn, trafo_model)
            r[s0:s1], x[s0:s1], g[s0:s1], b[s0:s1], g_asym[s0:s1], b_asym[s0:s1], ratio[s0:s1], shift[s0:s1] = out
        if "trafo3w" in br.slices:
            s0, s1 = br.slices["trafo3w"]
            td = _trafo3w_as_trafos(world["trafo3w"].cols)
            out = _trafo_branch_values(td, kv[br.f[s0:s1]], kv[br.t[s0:s1]], sn, trafo_model)
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
            rz = SWITCH_RX_RATIO / math.sqrt(1 + SWITCH_RX_RATIO ** 2)
            xz = 1 / math.sqrt(1 + SWITCH_RX_RATIO ** 2)
            r[s0:s1] = z / base_r * rz
            x[s0:s1] = z / base_r * xz

    return r, x, g, b, g_asym, b_asym, r_asym, x_asym, ratio, shift


def _owner(br, k):
    for kind, (s0, s1) in br.slices.items():
        if s0 <= k < s1:
            return kind, int(br.rows[kind][k - s0])
    raise IndexError(k)


def _trafo_branch_values(td, kv_hv_bus, kv_lv_bus, sn_net, trafo_model):
    """pandapower's two-winding transformer model on a dict of columns ``td`` (trafo or the
    three equivalent trafos of trafo3w).  Returns r, x, g, b, g_asym, b_asym, ratio, shift."""
    vnh = td["vn_hv_kv"].astype(float).copy()
    vnl = td["vn_lv_kv"].astype(float).copy()
    shift = td["shift_degree"].astype(float).copy()
    _apply_taps(td, vnh, vnl, shift)
    ratio = (vnh / vnl) / (kv_hv_bus / kv_lv_bus)
    par = td["parallel"].astype(float)
    sn_t = td["sn_mva"]
    tap_lv = (vnl / kv_lv_bus) ** 2 * sn_net
    z_sc = td["vk_percent"] / 100.0 / sn_t * tap_lv
    r_sc = td["vkr_percent"] / 100.0 / sn_t * tap_lv
    x_sc = np.sign(z_sc) * np.sqrt(z_sc ** 2 - r_sc ** 2)
    r = r_sc / par
    x = x_sc / par
    # magnetising admittance
    base_z = kv_lv_bus ** 2 / sn_net
    vn_lv_rated = td["vn_lv_kv"]
    pfe_mw = td["pfe_kw"] * 1e-3
    ym = td["i0_percent"] / 100.0 * sn_t
    b_sq = ym ** 2 - pfe_mw ** 2
    b_sq = np.where(b_sq < 0, 0.0, b_sq)
    b_mva = -np.sqrt(b_sq)
    scale = base_z * par / (vnl / vn_lv_rated) ** 2 / vn_lv_rated ** 2
    g = pfe_mw * scale
    b = b_mva * scale
    g_asym = np.zeros_like(g)
    b_asym = np.zeros_like(b)
    if trafo_model == "t":
        r, x, g, b, g_asym, b_asym = _wye_delta(r, x, g, b)
    elif trafo_model != "pi":
        raise SchemaError(f"unknown trafo_model {trafo_model!r} (use 't' or 'pi')", field="trafo_model")
    return r, x, g, b, g_asym, b_asym, ratio, shift


def _apply_taps(td, vnh, vnl, shift):
    """Adjust rated voltages and shift to the tap position (pandapower's tap changer types)."""
    pos = td["tap_pos"]
    types = td["tap_changer_type"]
    sides = td["tap_side"]
    for side, vn, direction in (("hv", vnh, 1.0), ("lv", vnl, -1.0)):
        at_side = np.array([s == side for s in sides], dtype=bool)
        if not at_side.any():
            continue
        ideal = at_side & np.array([t == "Ideal" for t in types], dtype=bool)
        cplx = at_side & np.array([t in ("Ratio", "Symmetrical") for t in types], dtype=bool)
        diff = pos - td["tap_neutral"]
        step_pct = td["tap_step_percent"]
        step_deg = td["tap_step_degree"]
        if ideal.any():
            deg_set = np.nan_to_num(step_deg[ideal], nan=0) != 0
            pct_set = np.nan_to_num(step_pct[ideal], nan=0) != 0
            if (deg_set & pct_set).any():
                raise SchemaError("both tap_step_degree and tap_step_percent set for an ideal phase shifter",
                                  table="trafo", field="tap_step_degree")
            d = diff[ideal]
            with np.errstate(invalid="ignore"):
                add = np.where(deg_set, direction * d * step_deg[ideal],
                               direction * 2 * np.rad2deg(np.arcsin(d * step_pct[ideal] / 200.0)))
            shift[ideal] += add
        if cplx.any():
            steps = np.nan_to_num(step_pct[cplx] * diff[cplx] / 100.0, nan=0)
            ang = np.deg2rad(np.nan_to_num(step_deg[cplx], nan=0))
            u1 = vn[cplx]
            du = u1 * steps
            vn[cplx] = np.sqrt((u1 + du * np.cos(ang)) ** 2 + (du * np.sin(ang)) ** 2)
            shift[cplx] += np.rad2deg(np.arctan(direction * du * np.sin(ang) / (u1 + du * np.cos(ang))))


def _wye_delta(r, x, g, b):
    """T model (leakage split half/half, magnetising branch at the middle) to an equivalent pi."""
    r, x, g, b = r.copy(), x.copy(), g.copy(), b.copy()
    g_asym = np.zeros_like(g)
    b_asym = np.zeros_like(b)
    k = (g != 0) | (b != 0)
    if k.any():
        za = r[k] * 0.5 + 1j * x[k] * 0.5
        zb = za
        zc = 1 / (g[k] + 1j * b[k])
        zsum = za * zb + za * zc + zb * zc
        zab = zsum / zc
        zac = zsum / zb
        zbc = zsum / za
        r[k] = zab.real
        x[k] = zab.imag
        yf = 1 / zac
        yt = 1 / zbc
        g[k] = yf.real * 2
        b[k] = yf.imag * 2
        g_asym[k] = 2 * yt.real - g[k]
        b_asym[k] = 2 * yt.imag - b[k]
    return r, x, g, b, g_asym, b_asym


def _trafo3w_as_trafos(c):
    """The three equivalent two-winding trafos (hv, mv, lv order, stacked) of each trafo3w."""
    n = len(c["vn_hv_kv"])
    sn = np.stack([c["sn_hv_mva"], c["sn_mv_mva"], c["sn_lv_mva"]])
    vk = np.stack([c["vk_hv_percent"], c["vk_mv_percent"], c["vk_lv_percent"]])
    vkr = np.stack([c["vkr_hv_percent"], c["vkr_mv_percent"], c["vkr_lv_percent"]])

    def to_bus(z):  # short-circuit voltages of the pairs, referred to the hv rating
        return sn[0] * np.array([z[0] / np.minimum(sn[0], sn[1]), z[1] / np.minimum(sn[1], sn[2]),
                                 z[2] / np.minimum(sn[0], sn[2])])

    def delta_to_star(z):
        return 0.5 * sn / sn[0] * np.array([z[0] + z[2] - z[1], z[1] + z[0] - z[2], z[2] + z[1] - z[0]])

    vk_d, vkr_d = to_bus(vk), to_bus(vkr)
    vki_d = np.sqrt(vk_d ** 2 - vkr_d ** 2)
    vkr_s = delta_to_star(vkr_d)
    vki_s = delta_to_star(vki_d)
    vk_s = np.sign(vki_s) * np.sqrt(vki_s ** 2 + vkr_s ** 2)
    if (vk_s == 0).any():
        raise SchemaError("equivalent transformer with zero impedance", table="trafo3w", field="vk_hv_percent")
    zeros = np.zeros(n)
    nan = np.full(n, np.nan)
    hv_loss = np.ones(n, bool)  # pandapower's default trafo3w_losses = "hv"
    td = {
        "vn_hv_kv": np.tile(c["vn_hv_kv"], 3),
        "vn_lv_kv": np.concatenate([c["vn_hv_kv"], c["vn_mv_kv"], c["vn_lv_kv"]]),
        "sn_mva": sn.reshape(-1),
        "vk_percent": vk_s.reshape(-1),
        "vkr_percent": vkr_s.reshape(-1),
        "pfe_kw": np.concatenate([np.where(hv_loss, c["pfe_kw"], 0), zeros, zeros]),
        "i0_percent": np.concatenate([np.where(hv_loss, c["i0_percent"], 0), zeros, zeros]),
        "shift_degree": np.concatenate([zeros, c["shift_mv_degree"], c["shift_lv_degree"]]),
        "parallel": np.ones(3 * n),
    }
    side = c["tap_side"]
    star = c["tap_at_star_point"]
    taps = {k: [] for k in ("tap_pos", "tap_neutral", "tap_step_percent", "tap_step_degree")}
    tap_side, tap_type = [], []
    for s in ("hv", "mv", "lv"):
        m = np.array([v == s for v in side], dtype=bool)
        for k in taps:
            taps[k].append(np.where(m, c[k], nan))
        ts = np.array([None] * n, dtype=object)
        ts[m] = "hv" if s == "hv" else "lv"
        if (m & star).any():
            ms = m & star
            # as pandapower: an unset tap_step_degree (NaN) makes the star-point tap inert
            tt = c["tap_step_percent"][ms] * np.exp(1j * np.deg2rad(c["tap_step_degree"][ms]))
            d = c["tap_pos"][ms] - c["tap_neutral"][ms]
            tc = 100 * tt / (100 + tt * d)
            taps["tap_step_percent"][-1][ms] = np.abs(tc)
            taps["tap_step_degree"][-1][ms] = np.rad2deg(np.angle(tc)) - 180
            ts[ms] = "lv" if s == "hv" else "hv"
        tap_side.append(ts)
        tap_type.append(c["tap_changer_type"])
    td.update({k: np.concatenate(v) for k, v in taps.items()})
    td["tap_side"] = np.concatenate(tap_side)
    td["tap_changer_type"] = np.concatenate(tap_type)
    return td


def _bus_shunts(world, topo) -> np.ndarray:
    """Bus shunt admittance in MW/MVAr at 1 p.u. (GS + j BS), from shunts, wards and xwards."""
    nb = topo.nb
    tabs = world.tables
    sh = tabs["shunt"]
    ysh = None
    if len(sh):  # (bus kV / shunt kV)^2 * step * (p - j q) per active shunt, in one kernel pass
        c = sh.cols
        ysh = shunt_ysh(topo.lookup, np.ascontiguousarray(topo.elem_bus_row["shunt"], np.int64), topo.base_kv,
                        c["vn_kv"], c["step"], topo.active["shunt"], c["p_mw"], c["q_mvar"], nb)
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
    return ysh
