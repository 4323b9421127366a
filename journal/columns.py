"""Rows in columns (:class:`Cols`, what verify reads back from DuckDB) and the typed columns
of ``record_many`` arguments.

:class:`Cols` holds numbers in numpy arrays (a NULL slot holds 0 and is False in ``valid``)
and text in Python lists (None for NULL).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..errors import JournalError
from .rows import BOOL, COLUMNS, FLOAT, INT, INT64_MAX, NONE, STR, _text_value, plain, plain_eid

NUMERIC = {"seq": np.int64, "tx": np.int64, "ts_ns": np.int64, "eid": np.int64, "vtype_old": np.int8,
           "old_f": np.float64, "old_i": np.int64, "vtype_new": np.int8, "new_f": np.float64, "new_i": np.int64}
NULLABLE = ("eid", "old_f", "old_i", "new_f", "new_i")
TEXT = ("author", "message", "event", "kind", "field", "old_s", "new_s", "info")
_CODE = {type(None): NONE, float: FLOAT, int: INT, bool: BOOL, str: STR}


class Typed(tuple):
    """A column of old or new values, typed: ``(vtype, f, f_valid, i, i_valid, s)`` (numpy arrays,
    valid arrays None when all valid, ``s`` a list)."""
    __slots__ = ()


class Cols:
    """``n`` rows: ``num[name]`` numpy arrays, ``valid[name]`` bool arrays (nullable numbers; None =
    all valid), ``text[name]`` lists."""
    __slots__ = ("n", "num", "valid", "text")

    def __init__(self, n, num, valid, text):
        self.n, self.num, self.valid, self.text = n, num, valid, text

    def is_valid(self, name):
        v = self.valid.get(name)
        return np.ones(self.n, bool) if v is None else v

    # --- building ---------------------------------------------------------------------------------
    @classmethod
    def from_rows(cls, rows):
        """From row tuples (COLUMNS order, hash excluded)."""
        n = len(rows)
        by = dict(zip(COLUMNS, list(zip(*rows)) or [()] * (len(COLUMNS) - 1)))
        num, valid = {}, {}
        for name, dt in NUMERIC.items():
            num[name], valid[name] = int_or_float(by[name], dt, n)
        return cls(n, num, valid, {name: list(by[name]) for name in TEXT})

    @classmethod
    def from_arrow(cls, t: pa.Table):
        num, valid = {}, {}
        for name, dt in NUMERIC.items():
            a = t.column(name).combine_chunks()
            valid[name] = None if a.null_count == 0 else a.is_valid().to_numpy(zero_copy_only=False)
            num[name] = a.fill_null(0).to_numpy(zero_copy_only=False).astype(dt, copy=False)
        text = {name: t.column(name).to_numpy().tolist() for name in TEXT}
        return cls(t.num_rows, num, valid, text)


def int_or_float(vals, dt, n):
    """A sequence of Python numbers or None as ``(array, valid)`` (valid None when no None)."""
    if None not in vals:
        return np.array(vals, dtype=dt) if n else np.zeros(0, dt), None
    valid = np.fromiter((v is not None for v in vals), bool, n)
    return np.array([0 if v is None else v for v in vals], dtype=dt), valid


def typed_columns(vals, n):
    """Plain old/new values (None, float, int, bool, str) as ``(vtype, f, f_valid, i, i_valid, s)``."""
    codes = np.fromiter(map(_CODE.__getitem__, map(type, vals)), np.int8, n)
    if n and (codes == FLOAT).all():
        return Typed((codes, np.array(vals, dtype=np.float64), None, np.zeros(n, np.int64), np.zeros(n, bool),
                      [None] * n))
    obj = np.empty(n, dtype=object)
    obj[:] = vals
    f, i = np.zeros(n, np.float64), np.zeros(n, np.int64)
    fm, im, sm = codes == FLOAT, (codes == INT) | (codes == BOOL), codes == STR
    if fm.any():
        f[fm] = obj[fm].astype(np.float64)
    if im.any():
        i[im] = obj[im].astype(np.int64)
    s = np.where(sm, obj, None).tolist() if sm.any() else [None] * n
    return Typed((codes, f, fm, i, im, s))


def typed_lists(typed, n):
    """A typed tuple as four row-wise lists ``(vtype, f, i, s)`` with None for NULL (small flushes)."""
    vt, f, fv, i, iv, s = typed
    fl = f.tolist() if fv is None else [x if ok else None for x, ok in zip(f.tolist(), fv.tolist())]
    il = i.tolist() if iv is None else [x if ok else None for x, ok in zip(i.tolist(), iv.tolist())]
    return vt.tolist(), fl, il, list(s)


# --- record_many arguments ----------------------------------------------------------------------

_CONSTS: dict = {}  # n -> read-only (zeros f8, zeros i8, False mask, None list, {code: vtype column})


def _consts(n):
    """Shared read-only constant columns of length n (record_many's NULL halves: no allocation per call)."""
    got = _CONSTS.get(n)
    if got is None:
        if len(_CONSTS) > 256:
            _CONSTS.clear()
        zf, zi, no = np.zeros(n, np.float64), np.zeros(n, np.int64), np.zeros(n, bool)
        codes = {c: np.full(n, c, np.int8) for c in (NONE, FLOAT, INT, BOOL, STR)}
        for arr in (zf, zi, no, *codes.values()):
            arr.flags.writeable = False
        got = _CONSTS[n] = (zf, zi, no, (None,) * n, codes)
    return got


def typed_array(a, field, n):
    """The typed columns ``(vtype, f, f_valid, i, i_valid, s)`` of ``n`` values: the values are
    copied, the constant halves are shared read-only arrays.

    ``a`` may be None (all None), a numpy array of float/int/bool/str, or a sequence; valid
    arrays are None when every slot is valid.
    """
    zf, zi, no, nones, codes = _consts(n)
    if a is None:
        return Typed((codes[NONE], zf, no, zi, no, nones))
    arr = np.asarray(a)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise JournalError(f"needs {n} values, got shape {arr.shape}", table="events", field=field)
    k = arr.dtype.kind
    if k == "f":
        return Typed((codes[FLOAT], arr.astype(np.float64), None, zi, no, nones))
    if k in "iu":
        if k == "u" and n and arr.max() > INT64_MAX:
            raise JournalError("an unsigned value does not fit in int64", table="events", field=field)
        return Typed((codes[INT], zf, no, arr.astype(np.int64), None, nones))
    if k == "b":
        return Typed((codes[BOOL], zf, no, arr.astype(np.int64), None, nones))
    if k == "U":
        vals = arr.tolist()
        _text_value("\x00".join(vals), field)
        return Typed((codes[STR], zf, no, zi, no, vals))
    if k == "O":
        return typed_columns([plain(v, field) for v in arr.tolist()], n)
    raise JournalError(f"unsupported dtype {arr.dtype}", table="events", field=field)


def eid_array(a):
    """Element ids of record_many as a new int64 array (no None)."""
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise JournalError(f"element ids must be one-dimensional, got shape {arr.shape}", table="events",
                           field="eid")
    k = arr.dtype.kind
    if k == "O":
        return np.array([plain_eid(v) if v is not None else _no_none() for v in arr.tolist()], np.int64)
    if k not in "iu" or (k == "u" and arr.size and arr.max() > INT64_MAX):
        if arr.size == 0:
            return np.zeros(0, np.int64)
        raise JournalError(f"element ids must be integers, not {arr.dtype}", table="events", field="eid")
    return arr.astype(np.int64)


def _no_none():
    raise JournalError("record_many needs an id for every event", table="events", field="eid")
