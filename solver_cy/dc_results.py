"""What ``pandapower.rundcpp`` writes that an AC result path would not (docs/model-notes.md,
"DC power flow"): the bus voltage magnitudes it reports (its initial ones: 1 p.u., the
set-points at ext_grid, gen and xward buses), the reference machines' P from the DC balance, and
the columns it leaves NaN."""
from __future__ import annotations

import numpy as np

#: result columns rundcpp leaves NaN
DC_NAN = {"bus": ("q_mvar",), "load": ("q_mvar",), "sgen": ("q_mvar",), "storage": ("q_mvar",),
          "shunt": ("q_mvar", "vm_pu"), "ward": ("q_mvar", "vm_pu"), "xward": ("q_mvar", "vm_pu"),
          "ext_grid": ("q_mvar",), "gen": ("q_mvar",)}


def dc_voltage_magnitudes(vm_set: np.ndarray) -> np.ndarray:
    """rundcpp's bus magnitudes: 1 p.u., the voltage set-point where a bus has one."""
    return np.where(np.isnan(vm_set), 1.0, vm_set)


def dc_machine_power(gens, f, t, p_flow, p_spec, g_shunt, nb, sn_mva) -> np.ndarray:
    """P (MW) of every machine of the generator table after a DC power flow: the set-points, and
    for the reference machines (ext_grids, slack gens) the set-point plus their equal share of
    their bus's DC imbalance (branch flows out + shunt conductance - specified injection).
    ``p_flow``: DC flow of each in-service branch at its from end (p.u.; the to end is its
    negative); ``p_spec``, ``g_shunt``: per bus, p.u."""
    pg = np.asarray(gens["p"], dtype=float).copy()
    ref = np.flatnonzero(np.asarray(gens["slack"], dtype=bool))
    if not len(ref):
        return pg
    out = np.bincount(f, p_flow, nb) - np.bincount(t, p_flow, nb)
    mism = out + g_shunt - p_spec
    gb = np.asarray(gens["bus"], dtype=np.int64)[ref]
    cnt = np.bincount(gb, minlength=nb)
    pg[ref] += mism[gb] * sn_mva / cnt[gb]
    return pg


def blank_dc_columns(tables: dict) -> dict:
    """``tables`` with the columns rundcpp does not fill set to NaN (in place)."""
    for kind, cols in DC_NAN.items():
        df = tables.get(kind)
        if df is not None and len(df):
            for c in cols:
                if c in df.columns:
                    df[c] = np.nan
    return tables
