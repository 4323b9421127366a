"""The replay tail: the world events after a starting point, fetched from DuckDB as Arrow columns
and applied as vectorized changes.

Materializing a point of history reads a snapshot and then replays the events after it (the tail:
up to about two ``checkpoint_every`` events).  Most tails are only ``set`` events of numbers into
float columns (handle writes, ``grid.set``, time series): then only each cell's last value
matters, and DuckDB computes it (``arg_max(new_f, seq)`` per cell, the journal's floor query); the
cells become one SetCol per (kind, field).  Any other tail is fetched as its events in seq order:
runs of ``set`` events become changes straight from the typed Arrow columns (``kind``/``field``
dictionary codes, ``eid``, ``new_f``; each cell's last value, one SetCol per (kind, field): the
grouping of replay/events.py), and every other event (add, remove, network, load) goes through
replay/events.py's decoding, in seq order.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gridtape.journal import db, query
from gridtape.journal.rows import FLOAT
from gridtape.world.changes import SetCol, apply
from gridtape.world.schema import F8, KINDS

from .events import WORLD_EVENTS, _values, apply_events

#: the ``events`` columns a replay of events reads
TAIL_COLUMNS = ("seq", "event", "kind", "eid", "field", "vtype_new", "new_f", "new_i", "new_s", "info")
_FRAME_COLUMNS = ("seq", "event", "kind", "eid", "field", "new", "info")


class Tail:
    """The world events of a seq range, in one of two forms: ``cells`` (an Arrow table of each
    written cell's last value: kind, field, eid, new_f) when every event of the range is a ``set``
    of a number into a float column (the common tail: DuckDB keeps only the last write of each
    cell), else ``events`` (an Arrow table of the events, columns TAIL_COLUMNS, in seq order)."""

    __slots__ = ("cells", "events")

    def __init__(self, cells=None, events=None):
        self.cells, self.events = cells, events

    def __len__(self):
        t = self.cells if self.cells is not None else self.events
        return 0 if t is None else t.num_rows


def fetch_tail(j, since: int, until: int) -> Tail:
    """The world events of journal ``j`` with ``since <= seq <= until``."""
    src = j._source()
    events = ", ".join(f"'{e}'" for e in WORLD_EVENTS)
    where = f"FROM {src} AS e WHERE seq >= ? AND seq <= ? AND event IN ({events})"
    params = [int(since), int(until)]
    cells = db.fetch(j._con, f"SELECT kind, field, eid, arg_max(new_f, seq) AS new_f, "
                             f"bool_and(coalesce(event = 'set' AND vtype_new = {FLOAT}, false)) AS plain {where} "
                             "GROUP BY kind, field, eid", params)
    if not cells.num_rows:
        return Tail(events=cells.slice(0, 0))
    if pc.all(cells.column("plain")).as_py() and all(
            _is_float(k, f) for k, f in _pairs(cells)):
        return Tail(cells=cells)
    t = db.fetch(j._con, f"SELECT {', '.join(TAIL_COLUMNS)} {where} ORDER BY seq", params)
    return Tail(events=query.in_seq_order(t))


def apply_tail(world, tail: Tail, get_blob=None):
    """Apply ``tail`` (:func:`fetch_tail`) to ``world``; returns the resulting world (a new object
    when a ``load`` event replaced it)."""
    if not len(tail):
        return world
    if tail.cells is not None:
        apply(world, cell_changes(tail.cells))
        return world
    t = tail.events
    n = t.num_rows
    is_set = _codes_equal(t.column("event"), "set")
    if is_set.all():
        apply(world, set_changes(t))
        return world
    # stretches of sets (vectorized) and of other events (decoded), in seq order
    cut = np.flatnonzero(is_set[1:] != is_set[:-1]) + 1
    for a, b in zip([0] + cut.tolist(), cut.tolist() + [n]):
        part = t.slice(a, b - a)
        if is_set[a]:
            apply(world, set_changes(part))
        else:
            world = apply_events(world, query.frame(part, _FRAME_COLUMNS), get_blob)
    return world


def cell_changes(cells: pa.Table) -> list:
    """One SetCol per (kind, field) of a table of cells' last values (:class:`Tail`)."""
    kinds, kcode = _codes(cells.column("kind"))
    fields, fcode = _codes(cells.column("field"))
    key = kcode * (len(fields) + 1) + fcode
    eid, _ = db.numpy_col(cells.column("eid"), 0)
    eid = eid.astype(np.int64, copy=False)
    vals = _floats(cells.column("new_f"))
    if len(key) > 1 and not (key[1:] == key[:-1]).all():
        order = np.argsort(key, kind="stable")
        key, eid, vals = key[order], eid[order], vals[order]
    cut = np.flatnonzero(key[1:] != key[:-1]) + 1
    out = []
    for a, b in zip([0] + cut.tolist(), cut.tolist() + [len(key)]):
        kind, field = _name(kinds, fields, key[a], len(fields) + 1)
        out.append(SetCol(kind, eid[a:b], field, vals[a:b]))
    return out


def _name(kinds, fields, k, nf):
    return kinds[int(k) // nf], fields[int(k) % nf]


def _pairs(cells):
    """The distinct (kind, field) pairs of a cells table."""
    kinds, kcode = _codes(cells.column("kind"))
    fields, fcode = _codes(cells.column("field"))
    key = np.unique(kcode * (len(fields) + 1) + fcode)
    return [_name(kinds, fields, k, len(fields) + 1) for k in key]


def _is_float(kind, field) -> bool:
    col = KINDS[kind].by_name.get(field) if kind in KINDS else None
    return col is not None and col.dtype == F8


def set_changes(t: pa.Table) -> list:
    """One SetCol per (kind, field) of a run of ``set`` events, with each cell's last value."""
    kinds, kcode = _codes(t.column("kind"))
    fields, fcode = _codes(t.column("field"))
    key = kcode * (len(fields) + 1) + fcode
    n = len(key)
    cut = np.flatnonzero(key[1:] != key[:-1]) + 1
    starts, ends = [0] + cut.tolist(), cut.tolist() + [n]
    spans = {}
    for a, b in zip(starts, ends):  # stretches of one (kind, field): one grid.set is one stretch
        spans.setdefault(int(key[a]), []).append((a, b))
    eid, _ = db.numpy_col(t.column("eid"), 0)
    eid = eid.astype(np.int64, copy=False)
    vt = t.column("vtype_new").to_numpy()
    out = []
    for k, parts in spans.items():
        a0 = parts[0][0]
        kind, field = kinds[kcode[a0]], fields[fcode[a0]]
        idx = np.concatenate([np.arange(a, b) for a, b in parts]) if len(parts) > 1 else None
        sl = slice(parts[0][0], parts[0][1])
        ids = eid[sl] if idx is None else eid[idx]
        keep = _last_writes(ids)
        if keep is not None:
            ids = ids[keep]
            idx = (np.arange(sl.start, sl.stop) if idx is None else idx)[keep]
        out.append(SetCol(kind, ids, field, _new_values(t, kind, field, vt, sl if idx is None else idx)))
    return out


def _last_writes(ids):
    """Positions keeping each id's last write (in order), or None when every id is written once."""
    if len(ids) < 2:
        return None
    s = np.sort(ids)
    if not (s[1:] == s[:-1]).any():
        return None
    rev = ids[::-1]
    _, first = np.unique(rev, return_index=True)
    return np.sort(len(ids) - 1 - first)


def _new_values(t, kind, field, vt, idx):
    """The recorded new values at ``idx`` for column (kind, field): float64 read from the typed
    columns when the column is a float one and every value a number, else as replay/events.py
    decodes them."""
    col = KINDS[kind].by_name.get(field) if kind in KINDS else None
    v = vt[idx]
    if col is not None and col.dtype == F8 and (v == FLOAT).all():
        return _floats(t.column("new_f"))[idx]
    rows = t.take(pa.array(np.arange(len(vt))[idx]))
    return _values(kind, field, query.frame(rows, ("seq", "new"))["new"].to_numpy(dtype=object))


def _floats(col):
    vals, _ = db.numpy_col(col, 0.0)
    return vals.astype(np.float64, copy=False)


def _codes(col):
    """A text column as (distinct values, int64 codes); NULL is the last code."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    d = pc.dictionary_encode(col)
    uniq = d.dictionary.to_pylist()
    codes = d.indices.fill_null(len(uniq)).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return uniq + [None], codes


def _codes_equal(col, value) -> np.ndarray:
    """Whether each row of text column ``col`` equals ``value`` (a bool array, NULL: False)."""
    uniq, codes = _codes(col)
    hit = np.array([u == value for u in uniq], dtype=bool)
    return hit[codes]
