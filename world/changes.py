"""The change vocabulary: every change to a world is one of four values, and this module is the only
code that writes a world's table columns.

Changes (plain values; build them, hand a list to :func:`apply`)
-------------------------------------------------------------------
``SetCol(kind, ids, field, values)``
    column ``field`` of the ``kind`` elements ``ids`` takes ``values`` (one per id, or one scalar
    for all).  A single cell is the one-id case.  ``field`` may also name one of the table's
    pass-through ``extra`` columns (stored as given, not validated).
``AddRows(kind, columns, ids=None, extra=None)``
    new rows at the end of the table; ``columns`` maps schema column -> values (one per row;
    missing columns take their defaults, a required one missing is an error); ``ids`` None: the
    table's next free ids.  ``extra`` maps extra column -> values (others get None).
``RemoveRows(kind, ids)``
    the rows of ``ids`` go (ids are never reused: ``next_id`` does not move).
``SetNetwork(field, value)``
    a network value: ``sn_mva`` or ``f_hz`` (finite, > 0) or ``name`` (text).

Applying
--------
``apply(world, changes, *, check=True, file=None) -> Applied``
    Validates the whole list first, each change against the world as the earlier changes of the
    list leave it (ids exist or are free, values fit their column, references point at elements
    that exist, switch elements exist for their ``et``).  If any change is bad it raises
    (SchemaError / BadReferenceError naming file, table, id and field) and nothing is written.
    Then writes the changes in order and marks every dirty set
    (``World.watch()``), and returns an :class:`Applied`:

    - ``applied.done``: the changes as applied, each carrying what it replaced: a SetCol has
      ``ids`` (int64), ``values`` (as stored, the column's dtype) and ``old``; an AddRows has
      its ``ids`` and every column; a RemoveRows has the removed rows' ``columns``/``extra`` and
      their row positions; a SetNetwork has ``old``.
    - ``applied.inverse()``: the changes that undo them exactly (values, row order, ``next_id``
      and extra columns), latest first: ``apply(world, applied.inverse(), check=False)`` gives
      the world back.
    - ``applied.events()``: what a journal records, one tuple per event run:
      ``("set", kind, ids, field, old, new)`` (arrays), ``("add"|"remove", kind, eid, row_json)``
      and ``("network", field, old, new)``.

    ``check=False`` trusts the values (they were read from a world: an inverse, a snapshot);
    ids, row counts and structure are still checked.

Fast paths (the same SetCol, without building change objects)
---------------------------------------------------------------
``set_cell(world, kind, eid, field, value) -> (old, new)``
    one cell, as Python scalars (``new`` as stored).  Handles write through it.
``apply_set(world, kind, ids, field, values) -> (old, new)``
    one column for many ids, old and new as arrays (``new`` may be the caller's float64 array:
    copy it if you keep it and the caller may change it).  A float column's values go through the
    one-pass kernel (world/colwrite.pyx); anything else through :mod:`world.coerce`.
``apply_set_rows(world, kind, rows, field, values, *, check=True) -> old``
    the same at row positions (an int64 array, or None for every row) for callers that hold row
    positions (the grid2op adapter).  ``check=False``: the values are already valid and of the
    column's dtype (the caller derived them from the world).
Each marks the dirty sets as :func:`apply` does.  The inverse of a fast
set is ``SetCol(kind, ids, field, old)``.
"""
from __future__ import annotations

import json
import math

import numpy as np

from gridtape.errors import BadReferenceError, SchemaError

from .coerce import _column, _fast_floats, coerce_column, int_ids, one_id
from .colwrite import write_floats
from .schema import BOOL, F8, I8, STR, SWITCH_ET_KIND

_I8 = np.dtype(np.int64)  # (compared by identity: numpy's int64 dtype is a singleton)

NETWORK_FIELDS = ("sn_mva", "f_hz", "name")


class SetCol:
    __slots__ = ("kind", "ids", "field", "values", "old", "_rows")

    def __init__(self, kind, ids, field, values, old=None):
        self.kind, self.ids, self.field, self.values, self.old, self._rows = kind, ids, field, values, old, None

    def inverse(self):
        return SetCol(self.kind, self.ids, self.field, self.old)

    def __repr__(self):
        return f"SetCol({self.kind!r}, {self.ids!r}, {self.field!r}, {self.values!r})"


class AddRows:
    __slots__ = ("kind", "columns", "ids", "extra", "at", "next_id")

    def __init__(self, kind, columns, ids=None, extra=None, *, at=None, next_id=None):
        self.kind, self.columns, self.ids, self.extra = kind, columns, ids, extra
        self.at = at  # row positions the rows take (an exact inverse of a removal); None: appended
        self.next_id = next_id  # as applied: the table's next_id before the rows came

    def inverse(self):
        return RemoveRows(self.kind, self.ids, next_id=self.next_id)

    def rows_json(self):
        return _rows_json(self.columns, len(self.ids))

    def __repr__(self):
        return f"AddRows({self.kind!r}, ids={self.ids!r})"


class RemoveRows:
    __slots__ = ("kind", "ids", "next_id", "rows", "columns", "extra")

    def __init__(self, kind, ids, *, next_id=None):
        self.kind, self.ids = kind, ids
        self.next_id = next_id  # the table's next_id after the removal (None: unchanged)
        self.rows = self.columns = self.extra = None  # as applied: positions and values removed

    def inverse(self):
        return AddRows(self.kind, self.columns, self.ids, self.extra, at=self.rows)

    def rows_json(self):
        return _rows_json(self.columns, len(self.ids))

    def __repr__(self):
        return f"RemoveRows({self.kind!r}, {self.ids!r})"


class SetNetwork:
    __slots__ = ("field", "value", "old")

    def __init__(self, field, value, old=None):
        self.field, self.value, self.old = field, value, old

    def inverse(self):
        return SetNetwork(self.field, self.old)

    def __repr__(self):
        return f"SetNetwork({self.field!r}, {self.value!r})"


class Applied:
    """What :func:`apply` did: ``done`` (the changes as applied), :meth:`inverse`, :meth:`events`."""

    __slots__ = ("done",)

    def __init__(self, done):
        self.done = done

    def inverse(self) -> list:
        return [c.inverse() for c in reversed(self.done)]

    def events(self):
        for c in self.done:
            if type(c) is SetCol:
                yield ("set", c.kind, c.ids, c.field, c.old, c.values)
            elif type(c) is SetNetwork:
                yield ("network", c.field, c.old, c.value)
            else:
                ev = "add" if type(c) is AddRows else "remove"
                for eid, row in zip(c.ids.tolist(), c.rows_json()):
                    yield (ev, c.kind, eid, row)

    def __len__(self):
        return len(self.done)


def row_json(values: dict) -> str:
    """One row's values as compact JSON (floats round-trip exactly; NaN and inf allowed): the
    ``info`` of add and remove events."""
    return json.dumps(values, separators=(",", ":"))


def _rows_json(columns, n):
    cols = [(k, v.tolist()) for k, v in columns.items()]
    return [row_json({k: v[i] for k, v in cols}) for i in range(n)]


# --- dirty sets ------------------------------------------------------------------------------------
def _note_set(w, kind, name, affects=""):
    """A column was written: the dirty sets."""
    w._wrote(kind, name)


def _note_rows(w, kind):
    w._mark_rows(kind)


# --- the fast paths ----------------------------------------------------------------------------------
def set_cell(w, kind, eid, name, value):
    """One cell: validate, write, mark; ``(old, new)`` as Python scalars (``new`` as stored)."""
    t = w.tables.get(kind)
    if t is None:
        t = w[kind]
    col = t.spec.by_name.get(name) or _column(t, name)
    pos = t._pos
    r = (pos if pos is not None else t.positions).get(eid) if type(eid) is int else None
    if r is None:
        r = t.row(_eid(eid, kind, name))
    tv = type(value)
    if col.dtype == F8 and (tv is float or tv is int or tv is np.float64):
        v = float(value)
        if v != v:
            if not col.nan_ok:
                raise SchemaError(f"NaN is not allowed: {value!r}", table=kind, row=eid, field=name)
        elif v < col.vmin or v > col.vmax:
            coerce_column(col, [value], table=kind, ids=[eid])  # raises, naming the bound
        new = v
    else:
        v = coerce_column(col, [value], table=kind, ids=[eid])[0]
        if col.ref:
            _check_refs(w, col.ref, [v], kind, name, [eid])
        if kind == "switch" and name in ("et", "element"):
            _check_switch_cells(w, t, [r], name, [v])
        new = None
    arr = t.cols[name]
    old = arr.item(r)  # (a Python scalar; a str column's object as stored)
    arr[r] = v
    w._wrote(kind, name)
    if new is None:
        new = arr.item(r)
    return old, new


def apply_set(w, kind, ids, name, values):
    """One column for many ids: validate all, write, mark; ``(old, new)`` arrays."""
    t = w.tables.get(kind)
    if t is None:
        t = w[kind]
    col = t.spec.by_name.get(name) or _column(t, name)
    if type(ids) is not np.ndarray or ids.dtype is not _I8:
        ids = _ids(ids, kind, name)
    rows = None if ids is t.ids else t.rows(ids)
    if col.dtype == F8 and col.ref is None:
        old = write_floats(t.cols[name], rows, values, col.vmin, col.vmax, col.nan_ok)
        if old is not None:
            w._wrote(kind, name)
            return old, values
    new = _coerce_many(w, t, col, ids, rows, values)
    old = _put(t.cols[name], rows, new)
    w._wrote(kind, name)
    return old, new


def apply_set_rows(w, kind, rows, name, values, *, check=True):
    """:func:`apply_set` at row positions ``rows`` (int64 array; None: every row); returns old."""
    t = w.tables[kind]
    col = t.spec.by_name.get(name) or _column(t, name)
    arr = t.cols[name]
    if check:
        if col.dtype == F8 and col.ref is None:
            old = write_floats(arr, rows, values, col.vmin, col.vmax, col.nan_ok)
            if old is not None:
                w._wrote(kind, name)
                return old
        return apply_set(w, kind, t.ids if rows is None else t.ids[rows], name, values)[0]
    old = _put(arr, rows, values)
    w._wrote(kind, name)
    return old


def _put(arr, rows, new):
    """``arr[rows] = new`` (``rows`` None: every row); returns the old values (a row written twice
    reports its original value)."""
    if rows is None:
        old = arr.copy()
        arr[:] = new
    else:
        old = arr[rows]
        arr[rows] = new
    return old


def _coerce_many(w, t, col, ids, rows, values):
    kind, name = t.kind, col.name
    new = _fast_floats(col, values, ids.shape) if col.dtype == F8 else None
    if new is None:
        try:
            vals = np.broadcast_to(np.asarray(values, dtype=object if col.dtype == STR else None), ids.shape)
        except (ValueError, TypeError):
            raise SchemaError(f"{len(ids)} ids but values of another shape", table=kind, field=name) from None
        new = coerce_column(col, vals, table=kind, ids=ids)
    if col.ref:
        _check_refs(w, col.ref, new, kind, name, ids)
    if t.kind == "switch" and name in ("et", "element"):
        _check_switch_cells(w, t, np.arange(len(t.ids)) if rows is None else rows, name, new)
    return new


def _eid(eid, kind, name):
    return one_id(eid, kind, name)


def _ids(ids, kind, name=None):
    return int_ids(ids, kind, name)


def _check_refs(w, target, values, kind, name, ids, live=None, file=None):
    known = w[target].positions if live is None else live
    vals = np.asarray(values).tolist()
    for i, v in enumerate(vals):
        if int(v) not in known:
            row = None if ids is None else int(np.asarray(ids)[i])
            raise BadReferenceError(f"refers to missing {target} {int(v)}", file=file, table=kind,
                                    row=row if row is not None else i, field=name)


def check_switch_elements(w, ets, elements, ids, file=None, live=None):
    """Every switch ``element`` refers to an existing element of the kind its ``et`` names."""
    for i, (et, el) in enumerate(zip(ets, elements)):
        target = SWITCH_ET_KIND.get(et)
        if target is None:
            continue
        known = w[target].positions if live is None or target not in live else live[target]
        if int(el) not in known:
            row = i if ids is None else int(np.asarray(ids)[i])
            raise BadReferenceError(f"switch element refers to missing {target} {int(el)}", file=file,
                                    table="switch", row=row, field="element")


def _check_switch_cells(w, t, rows, name, new):
    """A write of switch ``et`` or ``element`` at ``rows``: the pair must still refer to something."""
    rows = np.asarray(rows, dtype=np.int64)
    et = np.asarray(new, dtype=object) if name == "et" else t.cols["et"][rows]
    el = np.asarray(new) if name == "element" else t.cols["element"][rows]
    check_switch_elements(w, et.tolist(), el.tolist(), t.ids[rows])


from .apply import apply  # noqa: E402  (the list path, built on the definitions above)

__all__ = ["SetCol", "AddRows", "RemoveRows", "SetNetwork", "Applied", "apply", "set_cell", "apply_set",
           "apply_set_rows", "row_json", "NETWORK_FIELDS", "check_switch_elements"]
