"""res_switch as pandapower fills it (results_branch._get_switch_results):

- a closed bus-bus switch with ``z_ohm > 0`` is a branch: its current (the larger end) and both
  ends' P and Q;
- a line switch reports the line's ``i_ka``; a trafo switch the current of the trafo side it sits
  on (``i_hv_ka`` / ``i_lv_ka``); trafo3w switches and fused bus-bus switches NaN;
- an open switch ``i_ka = 0``;
- ``loading_percent = i_ka / in_ka * 100``.
"""
from __future__ import annotations

import numpy as np

COLUMNS = ["i_ka", "loading_percent", "p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar"]


def switch_columns(world, branches, sf, st, i_f, i_t, res_line, res_trafo) -> dict:
    """The res_switch columns (arrays in switch row order).  ``branches``: the model's branch
    table (``slices["switch"]`` / ``rows["switch"]``: the impedance switches' branches and switch
    rows); ``sf``, ``st``: branch end powers (MVA); ``i_f``, ``i_t``: branch end currents (kA);
    ``res_line``, ``res_trafo``: the result tables (indexed by element id)."""
    sw = world["switch"]
    n = len(sw)
    c = sw.cols
    nan = np.full(n, np.nan)
    i_ka, pf, qf, pt, qt = nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy()
    if "switch" in branches.slices:
        s0, s1 = branches.slices["switch"]
        rows = branches.rows["switch"]
        a, b = i_f[s0:s1], i_t[s0:s1]
        i_ka[rows] = np.where(np.isnan(a) | np.isnan(b), np.nan, np.maximum(a, b))
        pf[rows], qf[rows] = sf[s0:s1].real, sf[s0:s1].imag
        pt[rows], qt[rows] = st[s0:s1].real, st[s0:s1].imag
    et = c["et"]
    el = c["element"]
    m = np.flatnonzero(et == "l")
    if len(m) and res_line is not None and len(res_line):
        i_ka[m] = res_line["i_ka"].reindex(el[m]).to_numpy(float)
    m = np.flatnonzero(et == "t")
    if len(m) and res_trafo is not None and len(res_trafo):
        tr = world["trafo"]
        pos = tr.rows(el[m])
        hv = tr.cols["hv_bus"][pos] == c["bus"][m]
        lv = ~hv & (tr.cols["lv_bus"][pos] == c["bus"][m])
        ihv = res_trafo["i_hv_ka"].reindex(el[m]).to_numpy(float)
        ilv = res_trafo["i_lv_ka"].reindex(el[m]).to_numpy(float)
        i_ka[m[hv]] = ihv[hv]
        i_ka[m[lv]] = ilv[lv]
    i_ka[~c["closed"]] = 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        loading = i_ka / c["in_ka"] * 100.0
    return {"i_ka": i_ka, "loading_percent": loading, "p_from_mw": pf, "q_from_mvar": qf, "p_to_mw": pt,
            "q_to_mvar": qt}
