"""Queries over ``events``: SQL for log/history filters and the DataFrames they return."""
from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import JournalError
from .db import numpy_col
from .rows import BOOL, FLOAT, INT, STR

#: DataFrame columns of log()/history()/tx_events()
FRAME_COLUMNS = ("seq", "tx", "time", "author", "message", "event", "kind", "eid", "field",
                 "old", "new", "info", "ts_ns", "hash")
_TEXT = ("author", "message", "event", "kind", "field", "info")


def _bound(v, name):
    """``("seq", int)`` or ``("ts_ns", int)`` for a since/until argument."""
    if isinstance(v, (bool, np.bool_)):
        raise JournalError("a bound is a seq (int) or a time (datetime or ISO string), not a bool",
                           table="events", field=name)
    if isinstance(v, (int, np.integer)):
        return "seq", int(v)
    if isinstance(v, (str, datetime.datetime, datetime.date, np.datetime64, pd.Timestamp)):
        try:
            t = pd.Timestamp(v)
        except (ValueError, TypeError) as e:
            raise JournalError(f"cannot read {v!r} as a time: {e}", table="events", field=name) from None
        if t is pd.NaT:
            raise JournalError("a bound cannot be NaT", table="events", field=name)
        t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
        return "ts_ns", int(t.value)
    raise JournalError(f"a bound is a seq (int) or a time (datetime or ISO string), not {type(v).__name__}",
                       table="events", field=name)


def _texts(v, name):
    vals = [v] if isinstance(v, str) else list(v) if isinstance(v, (list, tuple, set, frozenset)) else None
    if vals is None or not vals or not all(isinstance(x, str) for x in vals):
        raise JournalError("expects a str or a non-empty list of str", table="events", field=name)
    return vals


def log_where(since=None, until=None, author=None, kind=None, event=None, tx=None):
    """``(where_sql, params)`` for the log() filters."""
    where, params = [], []
    for v, op, name in ((since, ">=", "since"), (until, "<=", "until")):
        if v is not None:
            col, x = _bound(v, name)
            where.append(f"{col} {op} ?")
            params.append(x)
    for v, col in ((author, "author"), (kind, "kind"), (event, "event")):
        if v is not None:
            vals = _texts(v, col)
            where.append(f"{col} IN ({', '.join('?' * len(vals))})")
            params.extend(vals)
    if tx is not None:
        if isinstance(tx, (bool, np.bool_)) or not isinstance(tx, (int, np.integer)):
            raise JournalError("tx must be an int", table="events", field="tx")
        where.append("tx = ?")
        params.append(int(tx))
    return (" WHERE " + " AND ".join(where)) if where else "", params


#: the ``events`` columns each DataFrame column is built from
SOURCES = {"seq": ("seq",), "tx": ("tx",), "time": ("ts_ns",), "author": ("author",), "message": ("message",),
           "event": ("event",), "kind": ("kind",), "eid": ("eid",), "field": ("field",),
           "old": ("vtype_old", "old_f", "old_i", "old_s"), "new": ("vtype_new", "new_f", "new_i", "new_s"),
           "info": ("info",), "ts_ns": ("ts_ns",), "hash": ("hash",)}


def columns_sql(columns) -> tuple[tuple, str]:
    """The DataFrame columns asked for (all of them for None, in FRAME_COLUMNS order) and the SQL
    list of the ``events`` columns they need (``seq`` always: rows are ordered by it)."""
    if columns is None:
        return FRAME_COLUMNS, "*"
    asked = [columns] if isinstance(columns, str) else list(columns) if isinstance(columns, (list, tuple)) else None
    if not asked or any(c not in SOURCES for c in asked):
        raise JournalError(f"columns must be a non-empty list of {', '.join(FRAME_COLUMNS)}", table="events",
                           field="columns")
    need = ["seq"]
    for c in asked:
        need += [x for x in SOURCES[c] if x not in need]
    return tuple(c for c in FRAME_COLUMNS if c in asked), ", ".join(need)


def in_seq_order(t: pa.Table) -> pa.Table:
    """``t`` ordered by seq.  Queries leave out ORDER BY (DuckDB keeps the insertion order, which
    is seq order in a journal: rows are only ever appended in seq order), so this only checks,
    and sorts if a scan ever came back otherwise."""
    seq = t.column("seq").to_numpy()
    if len(seq) > 1 and not (seq[1:] > seq[:-1]).all():
        t = t.take(pa.array(np.argsort(seq, kind="stable")))
    return t


def _text(col) -> np.ndarray:
    """A text column as an object array whose equal values share one str (through a dictionary:
    one str object per distinct value instead of one per row)."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    n = len(col)
    if n == 0 or col.null_count == n:
        return np.full(n, None, dtype=object)
    d = pc.dictionary_encode(col)
    uniq = d.dictionary.to_numpy(zero_copy_only=False)
    if len(uniq) * 2 > n:  # mostly distinct: the plain conversion is as cheap
        return col.to_numpy(zero_copy_only=False)
    vals = np.empty(len(uniq) + 1, dtype=object)
    vals[:-1] = uniq
    return vals[d.indices.fill_null(len(uniq)).to_numpy(zero_copy_only=False)]


def _values(t: pa.Table, side: str) -> np.ndarray:
    """Decoded old/new values as an object array of Python objects."""
    vt = t.column(f"vtype_{side}").to_numpy()
    f, _ = numpy_col(t.column(f"{side}_f"), 0.0)
    i, _ = numpy_col(t.column(f"{side}_i"), 0)
    out = np.full(len(vt), None, dtype=object)
    for code, src in ((FLOAT, f), (INT, i)):
        m = vt == code
        if m.any():
            out[m] = src[m].astype(object)
    m = vt == BOOL
    if m.any():
        out[m] = (i[m] != 0).astype(object)
    m = vt == STR
    if m.any():
        out[m] = _text(t.column(f"{side}_s"))[m]
    return out


def frame(t: pa.Table, columns=FRAME_COLUMNS) -> pd.DataFrame:
    """The DataFrame of an ``events`` Arrow table (rows already ordered) with ``columns``.

    The object columns (texts, values, hashes) are written into one 2-D object array that
    becomes the frame's single object block as it is (pandas would otherwise copy them all
    once more to consolidate them: about half the time of a large log); the typed columns are
    inserted beside it."""
    n = t.num_rows
    obj_cols = [c for c in columns if c not in _TYPED_COLUMNS]
    obj = np.empty((len(obj_cols), n), dtype=object)
    for k, c in enumerate(obj_cols):
        if c in ("old", "new"):
            obj[k] = _values(t, c)
        elif c == "hash":
            obj[k] = t.column("hash").to_numpy()
        else:
            obj[k] = _text(t.column(c))
    df = pd.DataFrame(obj.T, columns=obj_cols, index=pd.RangeIndex(n), dtype=object, copy=False)
    for pos, c in enumerate(columns):
        if c not in _TYPED_COLUMNS:
            continue
        if c == "time":
            v = pd.to_datetime(t.column("ts_ns").to_numpy(), unit="ns", utc=True)
        elif c == "eid":
            eid, valid = numpy_col(t.column("eid"), 0)
            v = pd.arrays.IntegerArray(eid.astype(np.int64), ~valid)
        else:
            v = t.column(c).to_numpy()
        df.insert(pos, c, v)
    return df


_TYPED_COLUMNS = ("seq", "tx", "time", "eid", "ts_ns")
