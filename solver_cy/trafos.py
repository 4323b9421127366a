"""pandapower's transformer models: two-winding trafos with one or two tap changers (formulas or
a tap-dependency table), the T model's leakage split, and a trafo3w as three two-winding trafos
with its iron losses on the loss side (docs/model-notes.md)."""
from __future__ import annotations

import numpy as np

from gridtape.errors import SchemaError

from .chartables import table_values, trafo3w_loss_side, unsupported, with_char_table

def trafo_branch_values(td, kv_hv_bus, kv_lv_bus, sn_net, trafo_model):
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
        n = len(r)
        rr = td.get("leakage_resistance_ratio_hv")
        xr = td.get("leakage_reactance_ratio_hv")
        r, x, g, b, g_asym, b_asym = _wye_delta(r, x, g, b, np.full(n, 0.5) if rr is None else rr,
                                                np.full(n, 0.5) if xr is None else xr)
    elif trafo_model != "pi":
        raise SchemaError(f"unknown trafo_model {trafo_model!r} (use 't' or 'pi')", field="trafo_model")
    return r, x, g, b, g_asym, b_asym, ratio, shift


def _apply_taps(td, vnh, vnl, shift):
    """Adjust rated voltages and shift to the tap positions (pandapower's tap changer types): the
    first tap changer, then the second (``tap2_*``, never from a table)."""
    _apply_tap(td, vnh, vnl, shift, "tap")
    if td.get("tap2_pos") is not None:
        _apply_tap(td, vnh, vnl, shift, "tap2")


def _apply_tap(td, vnh, vnl, shift, t):
    pos = td[f"{t}_pos"]
    types = td[f"{t}_changer_type"]
    sides = td[f"{t}_side"]
    table = td.get("_char_table") if t == "tap" else None
    dep = np.asarray(td.get("tap_dependency_table", np.zeros(len(pos), bool)), dtype=bool) if table is not None \
        else np.zeros(len(pos), bool)
    if dep.any():
        ids = td["id_characteristic_table"]
        star = td.get("_tap_at_star")
        for side, vn, direction in (("hv", vnh, 1.0), ("lv", vnl, -1.0)):
            m = dep & np.array([s == side for s in sides], dtype=bool)
            if not m.any():
                continue
            ratio = table_values(table, ids, pos, m, "voltage_ratio", td.get("_kind", "trafo"))
            ang = table_values(table, ids, pos, m, "angle_deg", td.get("_kind", "trafo"))
            if star is not None:
                ms = m & star
                ratio[ms] = 1 / ratio[ms]
                ang[ms] = -ang[ms]
            vn[m] = vn[m] * ratio[m]
            shift[m] += direction * ang[m]
    for side, vn, direction in (("hv", vnh, 1.0), ("lv", vnl, -1.0)):
        at_side = np.array([s == side for s in sides], dtype=bool) & ~dep
        if not at_side.any():
            continue
        ideal = at_side & np.array([t == "Ideal" for t in types], dtype=bool)
        cplx = at_side & np.array([t in ("Ratio", "Symmetrical") for t in types], dtype=bool)
        diff = pos - td[f"{t}_neutral"]
        step_pct = td[f"{t}_step_percent"]
        step_deg = td[f"{t}_step_degree"]
        if ideal.any():
            deg_set = np.nan_to_num(step_deg[ideal], nan=0) != 0
            pct_set = np.nan_to_num(step_pct[ideal], nan=0) != 0
            if (deg_set & pct_set).any():
                raise SchemaError("both tap_step_degree and tap_step_percent set for an ideal phase shifter",
                                  table=td.get("_kind", "trafo"), field="tap_step_degree")
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


def _wye_delta(r, x, g, b, rr, xr):
    """T model (leakage split ``rr`` / ``xr`` on the hv side, the rest on the lv side, magnetising
    branch between them) to an equivalent pi."""
    r, x, g, b = r.copy(), x.copy(), g.copy(), b.copy()
    g_asym = np.zeros_like(g)
    b_asym = np.zeros_like(b)
    k = (g != 0) | (b != 0)
    if k.any():
        za = r[k] * rr[k] + 1j * x[k] * xr[k]
        zb = r[k] * (1 - rr[k]) + 1j * x[k] * (1 - xr[k])
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


def trafo3w_as_trafos(t3, opts, world=None):
    """The three equivalent two-winding trafos (hv, mv, lv order, stacked) of each trafo3w."""
    c = dict(t3.cols)
    n = len(c["vn_hv_kv"])
    tab = {"_kind": "trafo3w"}  # (errors name the table)
    if world is not None:
        with_char_table(world, t3, c, "trafo3w", ("vk_hv_percent", "vkr_hv_percent", "vk_mv_percent",
                                                   "vkr_mv_percent", "vk_lv_percent", "vkr_lv_percent"))
        for k in ("tap_dependency_table", "id_characteristic_table"):
            if k in c:
                tab[k] = np.tile(c[k], 3)
        if "_char_table" in c:
            tab.update(_char_table=c["_char_table"], _kind="trafo3w", _tap_at_star=np.tile(c["tap_at_star_point"], 3))
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
    loss = trafo3w_loss_side(t3, opts)
    on = [loss == s for s in ("hv", "mv", "lv")]
    shift_mv, shift_lv = (c["shift_mv_degree"], c["shift_lv_degree"]) if opts.voltage_angles else (zeros, zeros)
    td = {
        "vn_hv_kv": np.tile(c["vn_hv_kv"], 3),
        "vn_lv_kv": np.concatenate([c["vn_hv_kv"], c["vn_mv_kv"], c["vn_lv_kv"]]),
        "sn_mva": sn.reshape(-1),
        "vk_percent": vk_s.reshape(-1),
        "vkr_percent": vkr_s.reshape(-1),
        "pfe_kw": np.concatenate([np.where(m, c["pfe_kw"], 0) for m in on]),
        "i0_percent": np.concatenate([np.where(m, c["i0_percent"], 0) for m in on]),
        "shift_degree": np.concatenate([zeros, shift_mv, shift_lv]),
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
    td.update(tab)
    return td
