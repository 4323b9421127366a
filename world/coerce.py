"""The validation layer of every write: a value (or many) checked against one schema column and
converted to its dtype, or a SchemaError naming the table, row (id) and field.  Nothing here
writes; world/changes.py calls it before it writes anything."""
from __future__ import annotations

import math

import numpy as np

from gridtape.errors import SchemaError

from .schema import BOOL, F8, I8, STR, Column

def coerce_column(col: Column, values, *, table: str, file=None, ids=None) -> np.ndarray:
    """Validate and convert ``values`` to ``col``'s dtype; SchemaError naming the first bad row."""
    n = len(values)

    def bad(i, why):
        row = None if ids is None else int(ids[i])
        raise SchemaError(f"{why}: {values[i]!r}", file=file, table=table, row=row, field=col.name)

    if col.dtype == STR:
        out = np.empty(n, dtype=object)
        for i, v in enumerate(values):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                out[i] = None
            elif isinstance(v, (str, np.str_)):
                out[i] = str(v)
            elif isinstance(v, (bool, np.bool_, int, np.integer, float, np.floating)):
                out[i] = str(v)
            else:
                bad(i, "not a string")
            if col.choices is not None and out[i] is not None and out[i] not in col.choices:
                bad(i, f"must be one of {col.choices}")
        return out
    arr = np.asarray(values)
    if col.dtype == BOOL:
        if arr.dtype == np.bool_:
            return arr.astype(bool, copy=True)
        out = np.empty(n, dtype=bool)
        for i, v in enumerate(arr.tolist()):
            if isinstance(v, (bool, np.bool_)):
                out[i] = bool(v)
            elif isinstance(v, (int, float)) and v in (0, 1):
                out[i] = bool(v)
            elif isinstance(v, str) and v.strip().lower() in ("true", "false", "1", "0"):
                out[i] = v.strip().lower() in ("true", "1")
            else:
                bad(i, "not a boolean")
        return out
    if arr.dtype == object or arr.dtype.kind in "USb":
        try:
            arr = np.array([_num(v) for v in arr.tolist()], dtype=float)
        except (TypeError, ValueError):
            for i, v in enumerate(arr.tolist()):
                try:
                    _num(v)
                except (TypeError, ValueError):
                    bad(i, "not a number")
            raise
    if arr.dtype.kind not in "biuf":
        raise SchemaError(f"column of dtype {arr.dtype} is not numeric", file=file, table=table, field=col.name)
    f = arr.astype(float)
    nan = np.isnan(f)
    if nan.any() and not col.nan_ok:
        bad(int(np.argmax(nan)), "NaN is not allowed")
    ok = ~nan
    if col.lo is not None and (f[ok] < col.lo).any():
        bad(int(np.flatnonzero(ok & (f < col.lo))[0]), f"must be >= {col.lo}")
    if col.hi is not None and (f[ok] > col.hi).any():
        bad(int(np.flatnonzero(ok & (f > col.hi))[0]), f"must be <= {col.hi}")
    if col.dtype == I8:
        if not np.isfinite(f).all() or (f != np.round(f)).any():
            bad(int(np.flatnonzero(~np.isfinite(f) | (f != np.round(f)))[0]), "not an integer")
        return arr.astype(np.int64, copy=True)
    return f.astype(np.float64, copy=True)


def _num(v):
    if v is None:
        return math.nan
    if isinstance(v, str):
        s = v.strip()
        return math.nan if s == "" or s.lower() == "nan" else float(s)
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    return float(v)


def default_column(col: Column, n: int) -> np.ndarray:
    if col.dtype == STR:
        out = np.empty(n, dtype=object)
        out[:] = col.default
        return out
    return np.full(n, col.default, dtype=col.np_dtype)


def _fast_floats(col: Column, values, shape):
    """The common case of a float write (numeric array or scalar, all valid) without the generic
    per-value checks; None sends the caller to :func:`coerce_column` (which names the bad row)."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        return None
    if arr.dtype.kind not in "fiu" or (arr.shape != shape and arr.ndim != 0):
        return None
    f = arr.astype(np.float64) if arr.shape == shape else np.full(shape, arr, dtype=np.float64)
    if not len(f):
        return f
    if col.lo is None and col.hi is None:
        t = f.sum()  # NaN anywhere (or inf - inf) makes the sum NaN: then check each value
        if t == t or col.nan_ok:
            return f
        return None if np.isnan(f).any() else f
    lo, hi = f.min(), f.max()  # NaN propagates into both
    if lo != lo:
        if not col.nan_ok:
            return None
        ok = f[~np.isnan(f)]
        if not len(ok):
            return f
        lo, hi = ok.min(), ok.max()
    if (col.lo is not None and lo < col.lo) or (col.hi is not None and hi > col.hi):
        return None
    return f


def _column(t: Table, name: str) -> Column:
    try:
        return t.spec[name]
    except KeyError:
        raise SchemaError(f"{t.kind} has no column {name!r}", table=t.kind, field=name) from None




def new_rows(sp, columns: dict, ids, live, next_id: int, *, check: bool = True, file=None):
    """New rows of kind ``sp`` (a KindSpec): ``(ids, cols)`` with ids as int64 (None: from
    ``next_id`` on; given ones unique, >= 0, not in ``live``) and every schema column validated and
    converted (a missing one its default; a required one missing is an error).  ``check=False``
    only converts (values read from a world)."""
    kind = sp.name
    unknown = [k for k in columns if k not in sp]
    if unknown:
        raise SchemaError(f"unknown column {unknown[0]!r}", table=kind, field=unknown[0], file=file)
    lens = {len(v) for v in columns.values()}
    if ids is not None:
        lens.add(len(ids))
    if len(lens) > 1:
        raise SchemaError("columns (and ids) differ in length", table=kind, file=file)
    n = lens.pop() if lens else 0
    if ids is None:
        ids = np.arange(next_id, next_id + n, dtype=np.int64)
    else:
        ids = int_ids(ids, kind, file=file)
        if len(np.unique(ids)) != n:
            dup = ids[np.flatnonzero(np.diff(np.sort(ids)) == 0)[0]]
            raise SchemaError("duplicate id", table=kind, row=int(dup), file=file)
        if n and ids.min() < 0:
            raise SchemaError("negative id", table=kind, row=int(ids[ids < 0][0]), file=file)
        for e in ids.tolist():
            if e in live:
                raise SchemaError("id already in use", table=kind, row=e, file=file)
    cols = {}
    for col in sp.columns:
        if col.name in columns:
            v = columns[col.name]
            cols[col.name] = (coerce_column(col, v, table=kind, file=file, ids=ids) if check
                              else np.asarray(v, dtype=col.np_dtype).copy())
        elif col.required:
            raise SchemaError("missing required column", table=kind, field=col.name, file=file)
        else:
            cols[col.name] = default_column(col, n)
    return ids, cols


def int_ids(ids, kind, field=None, file=None) -> np.ndarray:
    """Ids as a 1-d int64 array; fractional, non-finite or out-of-range ids are refused (never
    truncated)."""
    from gridtape.errors import BadReferenceError

    a = np.asarray(ids)
    if a.ndim != 1:
        a = a.reshape(-1)
    if a.dtype.kind in "iu":
        if a.dtype.kind == "u" and len(a) and a.max() > np.iinfo(np.int64).max:
            raise BadReferenceError(f"no {kind} with id {int(a.max())}", table=kind, field=field, file=file)
        return a.astype(np.int64, copy=False)
    if not len(a):
        return np.empty(0, dtype=np.int64)
    if a.dtype.kind == "f":
        ok = np.isfinite(a) & (a == np.round(a)) & (np.abs(a) < 2.0 ** 63)
        if not ok.all():
            bad = a[np.flatnonzero(~ok)[0]]
            raise BadReferenceError(f"no {kind} with id {bad!r} (ids are integers)", table=kind, field=field,
                                    file=file)
        return a.astype(np.int64)
    return np.array([one_id(e, kind, field) for e in a.tolist()], dtype=np.int64)


def one_id(eid, kind, field=None) -> int:
    """An element id as an int; a fractional or non-numeric id is refused."""
    from gridtape.errors import BadReferenceError

    if isinstance(eid, (int, np.integer)) and not isinstance(eid, (bool, np.bool_)):
        return int(eid)
    if isinstance(eid, (float, np.floating)) and math.isfinite(eid) and float(eid).is_integer():
        return int(eid)
    raise BadReferenceError(f"no {kind} with id {eid!r} (ids are integers)", table=kind, field=field)
