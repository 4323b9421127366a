"""Queries over ``events``: SQL for log/history filters and the DataFrames they return."""
from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pyarrow as pa

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
        out[m] = t.column(f"{side}_s").to_numpy()[m]
    return out


def frame(t: pa.Table) -> pd.DataFrame:
    """The DataFrame of an ``events`` Arrow table (rows already ordered)."""
    ts = t.column("ts_ns").to_numpy()
    eid, valid = numpy_col(t.column("eid"), 0)
    data = {"seq": t.column("seq").to_numpy(), "tx": t.column("tx").to_numpy(),
            "time": pd.to_datetime(ts, unit="ns", utc=True)}
    for c in _TEXT:
        data[c] = t.column(c).to_numpy()
    data["eid"] = pd.arrays.IntegerArray(eid.astype(np.int64), ~valid)
    data["old"], data["new"] = _values(t, "old"), _values(t, "new")
    data["ts_ns"] = ts
    data["hash"] = t.column("hash").to_numpy()
    return pd.DataFrame({c: data[c] for c in FRAME_COLUMNS}, index=pd.RangeIndex(len(ts)))
