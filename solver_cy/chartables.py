"""pandapower's characteristic tables and pass-through columns as the branch physics read them:
a column of a table (schema column or pass-through extra), the look-up of a characteristic
table row by (id, step), the shunt step tables, line temperatures and the trafo3w loss side
(docs/model-notes.md)."""
from __future__ import annotations

import numpy as np

from gridtape.errors import SchemaError

#: pandapower 3 transformer columns read from the table (schema column or pass-through extra) with
#: their neutral values: the leakage split and the second tap changer
TRAFO_EXTRAS = {"leakage_resistance_ratio_hv": 0.5, "leakage_reactance_ratio_hv": 0.5, "tap2_pos": np.nan,
                "tap2_neutral": np.nan, "tap2_step_percent": np.nan, "tap2_step_degree": np.nan,
                "tap2_side": None, "tap2_changer_type": None}

#: the characteristic-table kinds (a write to one of them re-reads the kept branch parameters)
CHAR_KINDS = ("trafo_characteristic_table", "shunt_characteristic_table", "q_capability_curve_table")


def column(t, name, default=None):
    """Column ``name`` of table ``t`` as an array: the schema column, else the pass-through extra
    (None / NaN / pandas NA cells as ``default``), else ``default`` everywhere."""
    if name in t.cols:
        return t.cols[name]
    if default is None:
        default = TRAFO_EXTRAS.get(name)
    v = t.extra.get(name)
    n = len(t)
    if isinstance(default, float) or isinstance(default, bool):
        out = np.full(n, default, dtype=float if isinstance(default, float) else bool)
        if v is not None:
            for i, e in enumerate(v.tolist()):
                if _missing(e):
                    continue
                out[i] = e
        return out
    out = np.full(n, default, dtype=object)
    if v is not None:
        for i, e in enumerate(v.tolist()):
            if not _missing(e):
                out[i] = e
    return out


def char_table(world, name):
    """The characteristic table ``name`` (trafo_characteristic_table, shunt_characteristic_table,
    q_capability_curve_table) as ``{column: array}``, or None when the network has none."""
    t = world[name]
    return dict(t.cols) if len(t) else None


def with_char_table(world, t, td, kind, vk_cols):
    """Put the tap-dependency table and flags of transformer table ``t`` into ``td`` and replace
    the short-circuit voltages of the rows with ``tap_dependency_table`` by the table's values at
    their tap position."""
    dep = column(t, "tap_dependency_table", False).astype(bool)
    if not dep.any():
        return
    table = char_table(world, "trafo_characteristic_table")
    if table is None:
        raise unsupported("tap_dependency_table is set but the network has no trafo_characteristic_table",
                           table=kind, field="tap_dependency_table")
    ids = column(t, "id_characteristic_table", np.nan)
    if np.isnan(ids[dep]).any():
        raise SchemaError("tap_dependency_table is set without an id_characteristic_table", table=kind,
                          field="id_characteristic_table")
    pos = t.cols["tap_pos"]
    for c in vk_cols:
        v = table_values(table, ids, pos, dep, c, kind)
        td[c] = np.where(dep, v, td[c])
    td["tap_dependency_table"] = dep
    td["id_characteristic_table"] = ids
    td["_char_table"] = table
    td["_kind"] = kind


def shunt_step_values(world):
    """The shunts' ``p_mw`` / ``q_mvar`` per step: the columns, or for a shunt with
    ``step_dependency_table`` its shunt_characteristic_table row at its step divided by the step
    (pandapower's shunt step tables: the row is the total at that step)."""
    sh = world["shunt"]
    c = sh.cols
    if "step_dependency_table" not in c:
        ext = sh.extra.get("step_dependency_table")
        if ext is None:
            return c["p_mw"], c["q_mvar"]  # (the common case, on the result path of every solve)
        try:
            if not any(ext.tolist()):  # every cell False, 0 or None (as pandapower 3 nets carry it)
                return c["p_mw"], c["q_mvar"]
        except (TypeError, ValueError):  # a cell with no truth value (pandas NA): read exactly below
            pass
    dep = column(sh, "step_dependency_table", False).astype(bool)
    if not dep.any():
        return c["p_mw"], c["q_mvar"]
    table = char_table(world, "shunt_characteristic_table")
    if table is None:
        raise unsupported("step_dependency_table is set but the network has no shunt_characteristic_table",
                           table="shunt", field="step_dependency_table")
    ids = column(sh, "id_characteristic_table", np.nan)
    step = c["step"].astype(float)
    if (step[dep] == 0).any():
        raise unsupported("a shunt with a step table at step 0 (pandapower divides by the step)", table="shunt",
                           field="step")
    q = table_values(table, ids, step, dep, "q_mvar", "shunt")
    p = table_values(table, ids, step, dep, "p_mw", "shunt")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(dep, p / step, c["p_mw"]), np.where(dep, q / step, c["q_mvar"])


def _missing(e) -> bool:
    if e is None or type(e).__name__ == "NAType":
        return True
    return isinstance(e, float) and e != e


def line_temperature_factor(line):
    """``1 + alpha (temperature_degree_celsius - 20)`` per line (runpp's
    consider_line_temperature; alpha NaN reads 0, no alpha column 4e-3 as pandapower assumes);
    SchemaError without the temperature column."""
    if "temperature_degree_celsius" not in line.cols and "temperature_degree_celsius" not in line.extra:
        raise SchemaError("consider_line_temperature needs line temperatures", table="line",
                          field="temperature_degree_celsius")
    temp = column(line, "temperature_degree_celsius", np.nan)
    if "alpha" not in line.cols and "alpha" not in line.extra:
        alpha = 4e-3
    else:
        alpha = np.nan_to_num(column(line, "alpha", np.nan), nan=0.0)
    return 1 + alpha * (temp - 20)


def table_values(table, ids, steps, mask, col, kind="trafo"):
    """pandapower's look-up of characteristic-table column ``col`` for the rows ``mask`` of an
    element table with ``ids`` (``id_characteristic_table``) at ``steps`` (``tap_pos`` / ``step``):
    the table rows matching an (id, step) of the masked rows, and for each id the last of them in
    table order (pandapower keys its result by id alone, so elements that share an id at different
    steps all get that row).  Returns an array with NaN outside ``mask``; an element whose
    (id, step) has no row is refused (pandapower would use 1 for every value)."""
    out = np.full(len(ids), np.nan)
    m = np.flatnonzero(mask)
    if not len(m):
        return out
    tid, tstep, tval = table["id_characteristic"], table["step"], table[col]
    wanted = set(zip(ids[m].tolist(), steps[m].tolist()))
    last = {}
    for r, key in enumerate(zip(tid.tolist(), tstep.tolist())):
        if key in wanted:
            last[key[0]] = tval[r]
    have = {k for k in zip(tid.tolist(), tstep.tolist())}
    for i in m.tolist():
        key = (ids[i], steps[i])
        if key not in have:
            raise unsupported(f"no row of the characteristic table for id {ids[i]!r} at step {steps[i]!r}",
                               table=f"{kind}_characteristic_table", field="step")
        out[i] = last[ids[i]]
    return out


def unsupported(message, **where):
    from gridtape import errors

    cls = getattr(errors, "UnsupportedError", errors.SchemaError)
    return cls(message, **where)


def trafo3w_loss_side(t3, opts) -> np.ndarray:
    """Which branch of each trafo3w carries its iron losses: the ``loss_side`` column where the
    table has it, else the runpp option ``trafo3w_losses`` (docs/model-notes.md)."""
    n = len(t3)
    if "loss_side" in t3.cols or "loss_side" in t3.extra:
        side = column(t3, "loss_side", opts.trafo3w_losses)
        return np.array([str(v).lower() for v in side.tolist()], dtype=object)
    return np.full(n, opts.trafo3w_losses, dtype=object)
