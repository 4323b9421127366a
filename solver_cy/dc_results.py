"""What ``pandapower.rundcpp`` writes that an AC result path would not (docs/model-notes.md,
"DC power flow"): the bus voltage magnitudes it reports (its initial ones: 1 p.u., the
set-points at ext_grid, gen and xward buses) and the columns it leaves NaN (the reference
machines' P from the DC balance comes from resk.gen_pq on the DC bus powers)."""
from __future__ import annotations

import numpy as np

#: result columns rundcpp leaves NaN
DC_NAN = {"bus": ("q_mvar",), "load": ("q_mvar",), "sgen": ("q_mvar",), "storage": ("q_mvar",),
          "shunt": ("q_mvar", "vm_pu"), "ward": ("q_mvar", "vm_pu"), "xward": ("q_mvar", "vm_pu"),
          "ext_grid": ("q_mvar",), "gen": ("q_mvar",)}


def dc_voltage_magnitudes(vm_set: np.ndarray) -> np.ndarray:
    """rundcpp's bus magnitudes: 1 p.u., the voltage set-point where a bus has one."""
    return np.where(np.isnan(vm_set), 1.0, vm_set)


def blank_dc_columns(tables: dict) -> dict:
    """``tables`` with the columns rundcpp does not fill set to NaN (in place)."""
    for kind, cols in DC_NAN.items():
        df = tables.get(kind)
        if df is not None and len(df):
            for c in cols:
                if c in df.columns:
                    df[c] = np.nan
    return tables
