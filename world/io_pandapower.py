"""Conversion between a :class:`World` and a pandapower net, and the pandapower-table
normalisation every pandapower-shaped reader shares (the native JSON reader uses it too).

pandapower itself is imported lazily, only by :func:`from_pandapower` / :func:`to_pandapower`;
the helpers in this module work on plain ``{table name: DataFrame}`` dicts.
"""
from __future__ import annotations

import math

import numpy as np

from gridtape.errors import DependencyError, SchemaError, UnsupportedError

from .pp_checks import (check_curve_objects, check_encodable, check_frame, check_unmodelled, check_user_pf_options, empty_cells,
                        encodable, fill_empty_columns, integral, network_value)
from .schema import BOOL, F8, I8, KIND_ORDER, KINDS, STR, UNSUPPORTED_TABLES
from .world import World, world_from_frames

#: columns pandapower 3 carries outside the schema that its power flow reads; they are filled
#: with these defaults (value, pandas dtype) whenever a written net would otherwise lack them
PP_ONLY_COLUMNS = {
    "bus": {"geo": (None, "object")},
    "line": {"geo": (None, "object")},
    "trafo": {"id_characteristic_table": (None, "Int64"), "tap_dependency_table": (False, "bool")},
    "trafo3w": {"id_characteristic_table": (None, "Int64"), "tap_dependency_table": (False, "bool")},
    "sgen": {"id_q_capability_characteristic": (None, "Int64"), "reactive_capability_curve": (False, "bool"),
             "curve_style": (None, "object")},
    "gen": {"id_q_capability_characteristic": (None, "Int64"), "reactive_capability_curve": (False, "bool"),
            "curve_style": (None, "object")},
    "shunt": {"id_characteristic_table": (None, "Int64"), "step_dependency_table": (False, "bool")},
}

#: pandas dtype name of each schema dtype, as pandapower stores it
PANDAS_DTYPES = {F8: "float64", I8: "int64", BOOL: "bool", STR: "object"}

#: integer columns pandapower 3 stores as uint32 (the others are int64)
PP_UINT32 = {
    "line": ("from_bus", "to_bus", "parallel"), "trafo": ("hv_bus", "lv_bus", "parallel"),
    "trafo3w": ("hv_bus", "mv_bus", "lv_bus"), "load": ("bus",), "gen": ("bus",), "ext_grid": ("bus",),
    "shunt": ("bus", "max_step"), "ward": ("bus",), "xward": ("bus",), "impedance": ("from_bus", "to_bus"),
}


def _version_tuple(v):
    """'2.13.1' -> (2, 13, 1); None or garbage -> None."""
    if v is None:
        return None
    out = []
    for part in str(v).split("."):
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        out.append(int(digits))
    return tuple(out) if out else None


def normalize_pp_tables(tables: dict, *, file=None, format_version=None, check_text=True) -> dict:
    """Pick the element tables out of a pandapower net's tables and bring older layouts up to
    pandapower 3 (the renames and additions pandapower's own ``convert_format`` makes).

    ``tables`` maps table name -> DataFrame (any other value is ignored).  Returns
    ``{kind: DataFrame}`` for the schema kinds; a non-empty unsupported table raises SchemaError.
    The input frames are not modified.
    """
    import pandas as pd

    fv = _version_tuple(format_version)
    old = fv is not None and fv < (3, 0, 0)
    out = {}
    for key, df in tables.items():
        if not isinstance(df, pd.DataFrame):
            if key in KINDS or key in UNSUPPORTED_TABLES:
                raise SchemaError(f"element table {key!r} is not a table ({type(df).__name__})", file=file,
                                  table=key)
            continue
        if key in UNSUPPORTED_TABLES:
            if len(df):
                raise UnsupportedError(f"pandapower table {key!r} ({len(df)} rows) is not modelled by gridtape",
                                       file=file, table=key)
            continue
        if key not in KINDS:
            continue  # results, costs, geodata, controllers, ...: not part of the power-flow input
        check_frame(df, key, file)
        if check_text:
            check_encodable(df, key, file)
        out[key] = df
    if fv is not None and fv < (2, 0, 0):
        from gridtape.errors import CaseError

        raise CaseError(f"pandapower format {format_version} (before 2.0, kW units) is not supported; "
                        "load and re-save it with pandapower first", file=file)

    def edit(kind):
        out[kind] = out[kind].copy()
        return out[kind]

    # --- pandapower 2 / old 3.x column names ---------------------------------------------
    load = out.get("load")
    if load is not None:
        cols = set(load.columns)
        if "const_z_percent" in cols or "const_i_percent" in cols:
            df = edit("load")
            for old_name, new_p, new_q in (("const_z_percent", "const_z_p_percent", "const_z_q_percent"),
                                           ("const_i_percent", "const_i_p_percent", "const_i_q_percent")):
                if old_name in cols:
                    if new_p not in cols:
                        df[new_p] = df[old_name]
                    if new_q not in cols:
                        df[new_q] = df[old_name]
                    del df[old_name]
    line = out.get("line")
    if line is not None and "imax_ka" in line.columns and "max_i_ka" not in line.columns:
        edit("line").rename(columns={"imax_ka": "max_i_ka"}, inplace=True)
    gen = out.get("gen")
    if gen is not None and ("qmin_mvar" in gen.columns or "qmax_mvar" in gen.columns):
        edit("gen").rename(columns={"qmin_mvar": "min_q_mvar", "qmax_mvar": "max_q_mvar"}, inplace=True)
    for kind in ("gen", "sgen"):
        df = out.get(kind)
        if df is not None and "id_q_capability_curve_characteristic" in df.columns:
            edit(kind).rename(columns={"id_q_capability_curve_characteristic": "id_q_capability_characteristic"},
                              inplace=True)
    imp = out.get("impedance")
    if imp is not None and "r_pu" in imp.columns and "rft_pu" not in imp.columns:
        df = edit("impedance")
        df["rft_pu"] = df["rtf_pu"] = df["r_pu"]
        df["xft_pu"] = df["xtf_pu"] = df["x_pu"]
        del df["r_pu"], df["x_pu"]
    # --- columns pandapower adds with a value that differs from the schema default ----------
    shunt = out.get("shunt")
    if shunt is not None and len(shunt) and "vn_kv" not in shunt.columns:
        bus = out.get("bus")
        if bus is not None and "vn_kv" in bus.columns:
            vn = dict(zip(bus.index.tolist(), bus["vn_kv"].tolist()))
            edit("shunt")["vn_kv"] = [vn.get(b, math.nan) if integral(b) else math.nan
                                      for b in shunt["bus"].tolist()]
    sgen = out.get("sgen")
    if sgen is not None and len(sgen) and "current_source" not in sgen.columns and "type" in sgen.columns:
        edit("sgen")["current_source"] = [t != "motor" for t in sgen["type"].tolist()]
    t3 = out.get("trafo3w")
    if t3 is not None and len(t3) and "tap_step_degree" not in t3.columns:
        edit("trafo3w")["tap_step_degree"] = 0.0
    # --- empty optional cells the power flow does not read: the schema default -----------------
    for kind in list(out):
        cols = [c for c in fill_empty_columns(kind) if c in out[kind].columns]
        empty = {c: empty_cells(out[kind][c]) for c in cols}
        empty = {c: m for c, m in empty.items() if m.any()}
        if empty:
            df = edit(kind)
            for c, m in empty.items():
                vals = df[c].to_numpy(dtype=object, copy=True)
                vals[m] = KINDS[kind][c].default
                df[c] = vals
    check_unmodelled(out, file)
    # --- pandapower 2 phase-shifter flag -> tap_changer_type (pandapower's convert_trafo_pst_logic)
    for kind in ("trafo", "trafo3w"):
        df = out.get(kind)
        if df is None or not len(df):
            continue
        if old or "tap_changer_type" not in df.columns:
            df = edit(kind)
            if kind == "trafo" and "tap_changer_type" not in df.columns:
                df["tap_changer_type"] = None
            if "tap_step_degree" in df.columns or "tap_step_percent" in df.columns:
                df["tap_changer_type"] = _pst_logic(df)
            if "tap_phase_shifter" in df.columns:
                del df["tap_phase_shifter"]
        # pandapower 3 writes the text 'nan' for a trafo3w without a tap changer; runpp applies no
        # tap for it, as for an empty cell
        for col in ("tap_changer_type", "tap2_changer_type"):
            if col in df.columns and df[col].dtype == object:
                vals = df[col].to_numpy(dtype=object)
                nan_text = np.array([isinstance(v, str) and v.strip().lower() == "nan" for v in vals.tolist()], bool)
                if nan_text.any():
                    df = edit(kind)
                    vals = vals.copy()
                    vals[nan_text] = None
                    df[col] = vals
    return out


def _floats(series) -> np.ndarray:
    """A column as floats, anything that is not a number as NaN (the schema refuses it later)."""
    import pandas as pd

    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _pst_logic(df):
    """tap_changer_type as pandapower 3 derives it for a pandapower 2 transformer table."""
    n = len(df)
    nanv = np.full(n, np.nan)
    deg = _floats(df["tap_step_degree"]) if "tap_step_degree" in df else nanv
    pct = _floats(df["tap_step_percent"]) if "tap_step_percent" in df else nanv
    prev = df["tap_changer_type"].to_numpy(dtype=object) if "tap_changer_type" in df else np.full(n, None, object)
    out = prev.copy()
    pct_ok = ~np.isnan(pct) & (pct != 0)
    deg_ok = ~np.isnan(deg) & (deg != 0)
    out[~deg_ok & ~pct_ok] = None
    out[(deg != 90) & pct_ok] = "Ratio"
    out[(deg == 90) & pct_ok] = "Symmetrical"
    out[deg_ok & ~pct_ok] = "Ideal"
    return out


def world_from_pp_tables(tables: dict, *, sn_mva=1.0, f_hz=50.0, name="", file=None, strict=False,
                         format_version=None, user_pf_options=None, check_text=True, curve_objects=False) -> World:
    """A World from a pandapower net's tables (see :func:`normalize_pp_tables`).

    ``sn_mva`` and ``f_hz`` must be finite positive numbers (SchemaError naming the field, table
    ``"network"``); a caller passes pandapower's defaults (1.0, 50.0) when the net lacks them.
    ``user_pf_options`` (the net's own runpp options) are kept as ``world.pf_options``; PowerGrid
    applies them (gridtape.options) and names an unmodelled one."""
    sn = network_value(sn_mva, "sn_mva", file)
    f = network_value(f_hz, "f_hz", file)
    pf_options = check_user_pf_options(user_pf_options, file)
    frames = normalize_pp_tables(tables, file=file, format_version=format_version, check_text=check_text)
    check_curve_objects(frames, curve_objects, file)
    name = _name(name)
    if check_text and not encodable(name):
        raise SchemaError(f"text that is not valid Unicode (a lone surrogate): {name!r}", file=file,
                          table="network", field="name")
    world = world_from_frames(frames, sn_mva=sn, f_hz=f, name=name, file=file, strict=strict)
    if pf_options:
        world.pf_options = pf_options
    return world


def _name(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v)


def world_frames(world: World, *, pp_columns=True) -> dict:
    """``{kind: (DataFrame, {column: pandas dtype name})}`` for every non-empty table of ``world``:
    the schema columns, the pass-through extras and (``pp_columns``) the pandapower-only columns
    of :data:`PP_ONLY_COLUMNS` that are missing.  Columns are plain numpy / object arrays; the dtype
    map says what pandapower would store."""
    import pandas as pd

    out = {}
    for kind in KIND_ORDER:
        t = world[kind]
        if not len(t):
            continue
        data, dtypes = {}, {}
        for c in t.spec.columns:
            data[c.name] = t.cols[c.name]
            dtypes[c.name] = "uint32" if c.name in PP_UINT32.get(kind, ()) else PANDAS_DTYPES[c.dtype]
        pp_only = PP_ONLY_COLUMNS.get(kind, {})
        for name, values in t.extra.items():
            if name in data:
                continue
            data[name] = values
            dtypes[name] = pp_only[name][1] if name in pp_only else infer_dtype(values)
        if pp_columns:
            for name, (default, dtype) in pp_only.items():
                if name not in data:
                    arr = np.empty(len(t), dtype=object)
                    arr[:] = default
                    data[name] = arr
                    dtypes[name] = dtype
        df = pd.DataFrame(data, index=pd.Index(t.ids.copy(), dtype=np.int64))
        out[kind] = (df, dtypes)
    return out


def infer_dtype(values) -> str:
    """The pandas dtype name a pass-through column of Python values should get."""
    vals = [v for v in values if not _is_missing(v)]
    if len(vals) == len(values) and vals and all(isinstance(v, (bool, np.bool_)) for v in vals):
        return "bool"
    if vals and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in vals):
        return "int64" if len(vals) == len(values) else "Int64"
    if vals and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
                    for v in vals):
        return "float64"
    if not vals and any(isinstance(v, (float, np.floating)) for v in values):
        return "float64"  # all NaN
    return "object"


def _is_missing(v) -> bool:
    if v is None:
        return True
    if isinstance(v, (float, np.floating)) and math.isnan(v):
        return True
    try:
        import pandas as pd

        return v is pd.NA
    except ImportError:  # pragma: no cover
        return False


def _require_pandapower():
    try:
        import pandapower  # noqa: F401
    except ImportError as e:
        raise DependencyError("pandapower is needed for this conversion: pip install pandapower") from e
    return pandapower


def from_pandapower(net, *, strict=False) -> World:
    """A World holding ``net``'s element tables (ids = pandapower's index), sn_mva, f_hz and name.

    Unknown columns are kept as pass-through extras (SchemaError when ``strict``); tables of
    kinds gridtape does not model raise SchemaError when they are not empty."""
    import pandas as pd

    tables = {k: v for k, v in net.items() if isinstance(k, str) and not k.startswith("_")
              and (isinstance(v, pd.DataFrame) or k in KINDS or k in UNSUPPORTED_TABLES)}
    return world_from_pp_tables(tables, sn_mva=net.get("sn_mva", 1.0), f_hz=net.get("f_hz", 50.0),
                                name=net.get("name", ""), strict=strict,
                                format_version=net.get("format_version"),
                                user_pf_options=net.get("user_pf_options"),
                                curve_objects=len(net.get("q_capability_characteristic", ())) > 0)


def to_pandapower(world: World):
    """A pandapower net equal to ``world``: every element table with pandapower's columns and
    dtypes (ids as index), extras written back, sn_mva, f_hz and name."""
    pp = _require_pandapower()
    import pandas as pd

    net = pp.create_empty_network(name=world.name or "", f_hz=world.f_hz, sn_mva=world.sn_mva)
    for kind, (df, dtypes) in world_frames(world).items():
        empty = net[kind] if kind in net else pd.DataFrame()
        order = [c for c in empty.columns if c in df.columns] + [c for c in df.columns if c not in empty.columns]
        new = pd.DataFrame(index=df.index)
        for c in order:
            target = str(empty[c].dtype) if c in empty.columns else dtypes[c]
            new[c] = _cast(df[c].to_numpy(), target, dtypes.get(c, "object"))
        net[kind] = new
    return net


def _cast(values, target, fallback):
    import pandas as pd

    for dtype in (target, fallback):
        if dtype == "object":
            out = np.empty(len(values), dtype=object)
            out[:] = [None if _is_missing(v) else v for v in values]
            return out
        try:
            if dtype in ("Int64", "Int32", "UInt32"):
                return pd.array([None if _is_missing(v) else int(v) for v in values], dtype=dtype)
            if dtype == "bool":
                if any(_is_missing(v) for v in values):
                    continue
                return np.asarray(values).astype(bool)
            if dtype.startswith(("int", "uint")):
                arr = np.asarray(values)
                if arr.dtype == object and any(_is_missing(v) for v in values):
                    continue
                return arr.astype(dtype)
            return np.asarray([np.nan if _is_missing(v) else v for v in values], dtype=dtype)
        except (TypeError, ValueError, OverflowError):
            continue
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out
