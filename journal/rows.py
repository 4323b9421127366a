"""The row layout of the ``events`` table and the typing of old/new values.

A journal row is an 18-tuple in :data:`COLUMNS` order (the hash, the 19th column, is kept
apart).  An old or new value is stored typed, so that a float64 comes back with the same
bits (``-0.0``, ``inf``, every ``nan``) and an int64, a bool, a str and ``None`` come back
as themselves:

======  =========  ===============================
vtype   meaning    column holding the value
======  =========  ===============================
0       None       (all three NULL)
1       float      ``old_f`` / ``new_f`` (DOUBLE)
2       int        ``old_i`` / ``new_i`` (BIGINT)
3       bool       ``old_i`` / ``new_i`` (0 or 1)
4       str        ``old_s`` / ``new_s`` (VARCHAR)
======  =========  ===============================
"""
from __future__ import annotations

import numpy as np

from ..errors import JournalError

#: the columns of ``events``, in table order
COLUMNS = ("seq", "tx", "ts_ns", "author", "message", "event", "kind", "eid", "field",
           "vtype_old", "old_f", "old_i", "old_s", "vtype_new", "new_f", "new_i", "new_s",
           "info", "hash")
NCOL = len(COLUMNS) - 1  # columns of a row tuple (hash excluded)

#: DuckDB type of each column
SQL_TYPES = {"seq": "BIGINT NOT NULL", "tx": "BIGINT NOT NULL", "ts_ns": "BIGINT NOT NULL",
             "author": "VARCHAR", "message": "VARCHAR", "event": "VARCHAR NOT NULL", "kind": "VARCHAR",
             "eid": "BIGINT", "field": "VARCHAR",
             "vtype_old": "TINYINT NOT NULL", "old_f": "DOUBLE", "old_i": "BIGINT", "old_s": "VARCHAR",
             "vtype_new": "TINYINT NOT NULL", "new_f": "DOUBLE", "new_i": "BIGINT", "new_s": "VARCHAR",
             "info": "VARCHAR", "hash": "BLOB NOT NULL"}

NONE, FLOAT, INT, BOOL, STR = 0, 1, 2, 3, 4
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

_NT = type(None)
_TYPED = {_NT: (NONE, None, None, None)}  # constant result for None

#: Python types a value may have without conversion (int needs a range check, so it is not here)
PLAIN_VALUE_TYPES = (_NT, float, str, bool)


def typed(v, field="old"):
    """Split one old/new value into ``(vtype, f, i, s)``; raise JournalError(field=...) on others."""
    t = type(v)
    if t is float:
        return FLOAT, v, None, None
    if v is None:
        return NONE, None, None, None
    if t is str:
        return STR, None, None, v
    if t is bool:
        return BOOL, None, int(v), None
    if t is int:
        if INT64_MIN <= v <= INT64_MAX:
            return INT, None, v, None
        raise JournalError(f"integer {v} does not fit in int64", table="events", field=field)
    return typed(plain(v, field), field)


def plain(v, field):
    """A numpy scalar as its Python type; anything that is not a journal scalar raises."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        v = int(v)
        if INT64_MIN <= v <= INT64_MAX:
            return v
        raise JournalError(f"integer {v} does not fit in int64", table="events", field=field)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, str):
        return _text_value(v, field)
    if v is None:
        return None
    raise JournalError(f"a journal value must be None, float, int, bool or str, not {type(v).__name__}",
                       table="events", field=field)


class TextError(ValueError):
    """A text cell a flush cannot store (not encodable as UTF-8); ``field`` names its column."""

    def __init__(self, field, why):
        super().__init__(why)
        self.field = field


def utf8_ok(s) -> bool:
    """Whether a str can be stored (DuckDB and the hash need UTF-8; a lone surrogate cannot be)."""
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _text_value(s, field):
    if not utf8_ok(s):
        raise JournalError(f"{s!r} cannot be stored: not encodable as UTF-8", table="events", field=field)
    return str(s)


def plain_text(v, field, required=False):
    """A str column argument (event, kind, field, info, author, message)."""
    if v is None and not required:
        return None
    if isinstance(v, str):
        return _text_value(v, field)
    raise JournalError(f"must be a str{'' if required else ' or None'}, not {type(v).__name__}",
                       table="events", field=field)


def plain_eid(v):
    """An element id: int64 or None."""
    if v is None:
        return None
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        v = int(v)
        if INT64_MIN <= v <= INT64_MAX:
            return v
    raise JournalError(f"an element id must be an int64 or None, not {v!r}", table="events", field="eid")


def make_row(seq, tx, ts, author, message, event, kind, eid, field, old, new, info):
    """One row tuple in COLUMNS order from already checked arguments."""
    vo, fo, io, so = typed(old, "old")
    vn, fn, in_, sn = typed(new, "new")
    return (seq, tx, ts, author, message, event, kind, eid, field, vo, fo, io, so, vn, fn, in_, sn, info)
