"""Checks every pandapower-shaped reader (JSON, CSV-zip, from_pandapower) makes on a net's tables
before they reach the schema: what the schema's coercion cannot see (ids and integers beyond
int64, column names), network values, empty optional cells, and the pandapower features gridtape
does not model (issue 15's rule: a table, column or option that would change the power flow is
refused by name when its value differs from the neutral one; docs/model-notes.md lists them).
"""
from __future__ import annotations

import math

import numpy as np

from gridtape.errors import SchemaError, UnsupportedError

from .schema import BOOL, F8, I8, KINDS


_I64_MAX = 2 ** 63 - 1


def check_frame(df, kind, file=None) -> None:
    """What the schema's coercion cannot see in a pandapower table: ids that are not integers
    within int64 (a fractional or huge index is never truncated or wrapped), column names that
    are not unique text, and numbers in numeric schema columns beyond int64 / float range.
    SchemaError naming the table, row (id) and field."""
    import pandas as pd

    cols = list(df.columns)
    for c in cols:
        if not isinstance(c, str):
            raise SchemaError(f"column name {c!r} is not text", file=file, table=kind, field=str(c))
    if len(set(cols)) != len(cols):
        dup = next(c for c in cols if cols.count(c) > 1)
        raise SchemaError(f"duplicate column {dup!r}", file=file, table=kind, field=dup)
    idx = df.index.to_numpy()
    if idx.dtype.kind == "i":
        ids = idx
    elif idx.dtype.kind == "u":
        big = idx > _I64_MAX
        if big.any():
            raise SchemaError("id beyond int64", file=file, table=kind, row=int(idx[np.argmax(big)]))
        ids = idx.astype(np.int64)
    else:
        ids = None
        for v in idx.tolist():
            if not integral(v):
                raise SchemaError(f"id {v!r} is not an integer within int64", file=file, table=kind,
                                  row=v if isinstance(v, (int, float, str)) else repr(v))
    spec = KINDS[kind]
    for c in cols:
        if c not in spec or spec[c].dtype not in (F8, I8):
            continue
        vals = df[c].to_numpy()
        if vals.dtype != object:
            if spec[c].dtype == I8 and vals.dtype.kind in "fu":
                big = np.abs(vals.astype(float)) >= 2.0 ** 63
                if big.any():
                    i = int(np.argmax(big))
                    rid = int(ids[i]) if ids is not None else idx[i]
                    raise SchemaError(f"not an integer within int64: {vals[i]!r}", file=file, table=kind,
                                      row=rid, field=c)
            continue
        inferred = pd.api.types.infer_dtype(vals, skipna=True)  # a C loop: which types are there
        if spec[c].dtype == I8:
            if inferred in ("empty", "boolean"):
                continue
            if inferred == "floating":  # NaN and fractions are the schema's to refuse; |v| >= 2**63 is ours
                big = np.flatnonzero(np.abs(vals.astype(float)) >= 2.0 ** 63)
                bad = int(big[0]) if len(big) else None
            else:
                bad = next((i for i, v in enumerate(vals.tolist()) if not _short_text(v) and not _in_range(v, True)),
                           None)
        elif inferred in ("string", "floating", "empty", "boolean"):
            continue  # only a Python int can be beyond a float (text is parsed to inf by the schema)
        else:
            bad = next((i for i, v in enumerate(vals.tolist()) if type(v) is int and not _in_range(v, False)), None)
        if bad is not None:
            rid = int(ids[bad]) if ids is not None else idx[bad]
            raise SchemaError(f"number out of range: {vals[bad]!r}", file=file, table=kind, row=rid, field=c)


def encodable(v) -> bool:
    """False for text that cannot be written as UTF-8 (a lone surrogate, as JSON's \\ud800 gives)."""
    if type(v) is not str:
        return True
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_encodable(df, kind, file=None) -> None:
    """SchemaError naming the first cell of ``df`` (any object column) holding text that is not
    valid Unicode: the journal and the writers could not store it, so it never enters a world."""
    for c in df.columns:
        vals = df[c].to_numpy()
        if vals.dtype != object:
            continue
        bad = next((i for i, v in enumerate(vals.tolist()) if not encodable(v)), None)
        if bad is not None:
            raise SchemaError(f"text that is not valid Unicode (a lone surrogate): {vals[bad]!r}", file=file,
                              table=kind, row=_id(df.index[bad]), field=str(c))


def _short_text(v) -> bool:
    """Text that cannot hold a number beyond int64 (at most 15 characters, no exponent)."""
    return type(v) is str and len(v) < 16 and "e" not in v and "E" not in v


def _in_range(v, is_int) -> bool:
    """False for a number an int64 column (``is_int``) or a float column cannot hold."""
    if is_int and isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            return True  # not a number at all: the schema's coercion names it
    if isinstance(v, int) and not isinstance(v, bool):
        if is_int:
            return abs(v) <= _I64_MAX
        try:
            float(v)
        except OverflowError:
            return False
    if is_int and isinstance(v, float) and math.isfinite(v):
        return abs(v) < 2.0 ** 63
    return True


def integral(v) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, (int, np.integer)):
        return -_I64_MAX - 1 <= int(v) <= _I64_MAX
    if isinstance(v, (float, np.floating)):
        return math.isfinite(v) and float(v).is_integer() and abs(v) < 2.0 ** 63
    return False


def fill_empty_columns(kind: str) -> tuple:
    """The columns of ``kind`` whose empty cells (None, NaN, an empty CSV field) read as the schema
    default: boolean and integer columns with a default that the power flow does not read
    (``affects == "none"``: ``controllable``, ``current_source``, ``max_step``).  pandapower gives
    the same power flow for an empty cell there; in a column the power flow reads, pandapower
    fails or gives another answer for an empty cell (see docs/model-notes.md), so an empty cell
    stays a SchemaError."""
    return tuple(c.name for c in KINDS[kind].columns
                 if c.affects == "none" and c.dtype in (BOOL, I8) and c.default is not None)


def empty_cells(series) -> np.ndarray:
    """Boolean mask of the missing cells of a column (None, NaN, pd.NA, or blank text)."""
    m = series.isna().to_numpy()
    if series.dtype == object:
        m = m | np.fromiter((isinstance(v, str) and not v.strip() for v in series.to_numpy()), bool, len(series))
    return m



def network_value(v, field, file=None) -> float:
    """A network-wide number (sn_mva, f_hz) as a float: finite and > 0, else SchemaError."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating, str)):
        raise SchemaError(f"not a number: {v!r}", file=file, table="network", field=field)
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        raise SchemaError(f"not a number: {v!r}", file=file, table="network", field=field) from None
    if not (math.isfinite(f) and f > 0):
        raise SchemaError(f"must be a finite positive number: {v!r}", file=file, table="network", field=field)
    return f




# ------------------------------------------------------------------------------------------------
# pandapower features gridtape does not model (refused by name when not neutral)
# ------------------------------------------------------------------------------------------------
def _truthy(values) -> np.ndarray:
    """True where a flag cell is set (True, 1, "True"); None / NaN / False / "" are not set."""
    out = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if isinstance(v, str):
            out[i] = v.strip().lower() in ("true", "1")
        elif isinstance(v, (bool, np.bool_, int, np.integer, float, np.floating)):
            out[i] = bool(v) and not (isinstance(v, (float, np.floating)) and math.isnan(v))
    return out


def _num(df, col) -> np.ndarray:
    import pandas as pd

    if col not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _text(df, col) -> np.ndarray:
    if col not in df.columns:
        return np.full(len(df), "", dtype=object)
    return np.array(["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip()
                     for v in df[col].tolist()], dtype=object)


def _flag(col):
    return lambda df: _truthy(df[col].tolist())


def _empty(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def _flags(tables, col, what, when="always"):
    """Registry rows for a flag column (neutral: False / empty) of each of ``tables``."""
    return tuple((t, col, what, "False", _flag(col), when) for t in tables)


#: (table, column, what it is, neutral value, is_active(df) -> bool mask, when): the pandapower
#: columns that change runpp's answer and that gridtape does not model.  ``when`` "always": the
#: readers refuse a non-neutral value; "qlim": it changes the answer only with Q limits enforced
#: (kept as a pass-through column; :func:`unmodelled_in_world` names it for a solve with qlim).
#: Modelled since issue 15 (docs/model-notes.md): tap_dependency_table with
#: trafo_characteristic_table, tap2_*, the leakage split, trafo3w loss_side, shunt
#: step_dependency_table, reactive capability curves, user_pf_options.
UNMODELLED = (
    *_flags(("trafo", "trafo3w"), "tap_dependent_impedance", "pandapower 2 tap-dependent impedance (characteristic)"),
)


def _first_active(kind, df, when):
    for table, col, what, neutral, active, w in UNMODELLED:
        if table != kind or w != when or col not in df.columns or not len(df):
            continue
        mask = active(df)
        if mask.any():
            i = int(np.argmax(mask))
            return col, what, neutral, df.index[i], df[col].iloc[i]
    return None


def check_unmodelled(frames: dict, file=None) -> None:
    """UnsupportedError naming the table, row (id) and column of the first pandapower feature in
    ``frames`` ({kind: DataFrame}) that gridtape does not model and that is set to a value other
    than its neutral one (the "always" entries of :data:`UNMODELLED`)."""
    for kind, df in frames.items():
        hit = _first_active(kind, df, "always")
        if hit:
            col, what, neutral, eid, value = hit
            raise UnsupportedError(f"{what} is not modelled by gridtape: {col} = {value!r} (neutral: {neutral})",
                                   file=file, table=kind, row=_id(eid), field=col)


def unmodelled_in_world(world, *, qlim: bool) -> None:
    """For a solve: UnsupportedError when the world's pass-through columns hold a feature that
    changes the answer under these options (today: reactive capability curves with ``qlim``)."""
    if not qlim:
        return
    import pandas as pd

    for table, col, what, neutral, active, when in UNMODELLED:
        if when != "qlim":
            continue
        t = world[table]
        if not len(t) or col not in t.extra:
            continue
        df = pd.DataFrame({col: t.extra[col]}, index=t.ids)
        mask = active(df)
        if mask.any():
            i = int(np.argmax(mask))
            raise UnsupportedError(f"{what} are not modelled by gridtape with Q limits enforced: {col} = "
                                   f"{df[col].iloc[i]!r} (neutral: {neutral})", table=table, row=int(t.ids[i]),
                                   field=col)


def check_user_pf_options(options, file=None) -> dict:
    """``net.user_pf_options`` (the net's own runpp options, applied to every solve where the call
    does not pass the option; PowerGrid checks their names and values, gridtape.options) as a
    dict; SchemaError when it is not a mapping of option names."""
    if options is None:
        return {}
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise SchemaError(f"user_pf_options is not a mapping of option names: {options!r}", file=file,
                          table="user_pf_options")
    return dict(options)


def check_curve_objects(frames: dict, has_objects: bool, file=None) -> None:
    """pandapower applies reactive capability curves only through the objects
    ``create_q_capability_characteristics_object`` stores in ``net.q_capability_characteristic``;
    a net whose gens / sgens flag curves and that holds the q_capability_curve_table but not those
    objects gets no curves in runpp.  gridtape models the curves from the table, so it refuses
    that net (UnsupportedError naming the table) rather than differ."""
    tab = frames.get("q_capability_curve_table")
    if has_objects or tab is None or not len(tab):
        return
    for kind in ("gen", "sgen"):
        df = frames.get(kind)
        if df is not None and "reactive_capability_curve" in df.columns and len(df):
            mask = _truthy(df["reactive_capability_curve"].tolist())
            if mask.any():
                raise UnsupportedError(
                    "reactive capability curves without pandapower's characteristic objects (runpp ignores the "
                    "curves then): create them with pandapower.control.util.auxiliary."
                    "create_q_capability_characteristics_object(net)", file=file, table="q_capability_characteristic",
                    row=_id(df.index[int(np.argmax(mask))]), field="reactive_capability_curve")


def _id(v):
    try:
        return int(v)
    except (TypeError, ValueError, OverflowError):
        return v
