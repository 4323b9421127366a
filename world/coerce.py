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
                if not out[i].isascii():
                    try:
                        out[i].encode("utf-8")
                    except UnicodeEncodeError:
                        bad(i, "not encodable as UTF-8 text")
            elif isinstance(v, (bool, np.bool_, int, np.integer, float, np.floating)):
                out[i] = str(v)
            else:
                bad(i, "not a string")
            if col.choices is not None and out[i] is not None and out[i] not in col.choices:
                bad(i, f"must be one of {col.choices}")
        return out
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        arr = np.empty(n, dtype=object)
        arr[:] = list(values)
    if arr.ndim != 1:  # a list where one value belongs
        arr = np.empty(n, dtype=object)
        arr[:] = list(values)
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
    if arr.dtype.kind == "b":  # True is not 1 MW: a flag where a number belongs is a mistake
        bad(0, "a boolean is not a number")
    if col.dtype == I8:
        return _ints(col, arr, bad)
    if arr.dtype == object or arr.dtype.kind in "US":
        vals = arr.tolist()
        out = np.empty(n, dtype=np.float64)
        for i, v in enumerate(vals):
            if isinstance(v, (bool, np.bool_)):
                bad(i, "a boolean is not a number")
            try:
                out[i] = _num(v)
            except (TypeError, ValueError, OverflowError):
                bad(i, "not a number")
        arr = out
    if arr.dtype.kind not in "biuf":
        bad(0, f"not a number (dtype {arr.dtype})")
    f = arr.astype(float)
    nan = np.isnan(f)
    if nan.any() and not col.nan_ok:
        bad(int(np.argmax(nan)), "NaN is not allowed")
    out_of = ~nan & ((f < col.vmin) | (f > col.vmax))
    if out_of.any():
        i = int(np.flatnonzero(out_of)[0])
        bad(i, col.bound_error(f[i]))
    return f.astype(np.float64, copy=True)


_I64 = 2 ** 63


def _ints(col, arr, bad) -> np.ndarray:
    """An int64 column's values, never through float: integral numbers within int64 and the bounds."""
    n = len(arr)
    if arr.dtype.kind in "iu":
        if arr.dtype.kind == "u" and n and int(arr.max()) >= _I64:
            bad(int(np.argmax(arr)), "out of the int64 range")
        out = arr.astype(np.int64)
    elif arr.dtype.kind == "f":
        bad_at = ~np.isfinite(arr) | (arr != np.round(arr)) | (np.abs(arr) >= float(_I64))
        if bad_at.any():
            i = int(np.flatnonzero(bad_at)[0])
            bad(i, "NaN is not allowed" if arr[i] != arr[i] else "not an integer within the int64 range")
        out = arr.astype(np.int64)
    else:
        out = np.empty(n, dtype=np.int64)
        for i, v in enumerate(arr.tolist()):
            if isinstance(v, (bool, np.bool_)):
                bad(i, "a boolean is not a number")
            if isinstance(v, str):
                s = v.strip()
                try:
                    v = int(s)
                except ValueError:
                    try:
                        v = float(s)
                    except ValueError:
                        bad(i, "not a number")
            if isinstance(v, float):
                if not (math.isfinite(v) and v.is_integer()):
                    bad(i, "NaN is not allowed" if v != v else "not an integer")
                v = int(v)
            if v is None:
                bad(i, "NaN is not allowed")
            if not isinstance(v, int):
                bad(i, "not an integer")
            if not -_I64 <= v < _I64:
                bad(i, "out of the int64 range")
            out[i] = v
    out_of = (out < col.vmin) | (out > col.vmax) if n else np.zeros(0, bool)
    if out_of.any():
        i = int(np.flatnonzero(out_of)[0])
        bad(i, col.bound_error(float(out[i])))
    return out


def _num(v):
    if v is None:
        return math.nan
    if isinstance(v, str):
        s = v.strip()
        return math.nan if s == "" or s.lower() == "nan" else float(s)
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
    lo, hi = f.min(), f.max()  # NaN propagates into both
    if lo != lo:
        if not col.nan_ok:
            return None
        ok = f[~np.isnan(f)]
        if not len(ok):
            return f
        lo, hi = ok.min(), ok.max()
    if lo < col.vmin or hi > col.vmax:
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
        if -2 ** 63 <= int(eid) < 2 ** 63:
            return int(eid)
    elif isinstance(eid, (float, np.floating)) and math.isfinite(eid) and float(eid).is_integer():
        if abs(eid) < 2.0 ** 63:
            return int(eid)
    raise BadReferenceError(f"no {kind} with id {eid!r} (ids are integers)", table=kind, field=field)
