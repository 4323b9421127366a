"""Journal events decoded into changes (world/changes.py) and applied with the one ``apply``.

The event vocabulary that changes a world:

- ``load``    the world is replaced by the case stored as a blob (``info["blob"]``, a case zip);
- ``set``     one cell: ``kind``, ``eid``, ``field`` get ``new`` (a SetCol);
- ``add``     ``kind`` ``eid`` is added with the column values of ``info`` (JSON; an AddRows);
- ``remove``  ``kind`` ``eid`` is removed (``info`` keeps its values, for undo and diff; a RemoveRows);
- ``network`` a network value (``field`` sn_mva or f_hz) gets ``new`` (a SetNetwork).

Every other event (commit, undo and redo markers, solve, snapshot, tag) leaves the world as it is:
an undo or redo is itself recorded as the compensating set/add/remove events.

Replaying is vectorized: within a run of ``set`` events only the last value of each cell matters,
and each (kind, field) of the run becomes one SetCol; consecutive adds of one kind become one
AddRows.  Undo and redo (:func:`tx_changes`) keep every event (the journal records each).
"""
from __future__ import annotations

import json

import numpy as np

from gridtape.world.changes import AddRows, RemoveRows, SetCol, SetNetwork, apply
from gridtape.world.schema import F8, KINDS

WORLD_EVENTS = ("load", "set", "add", "remove", "network")


def _blob_world(get_blob, info):
    from .archive import world_from_zip_bytes

    meta = json.loads(info)
    return world_from_zip_bytes(get_blob(meta["blob"]))


def _int(v):
    try:
        return None if v is None or v != v else int(v)
    except TypeError:  # pandas.NA
        return None


def apply_events(world, events, get_blob=None):
    """Apply ``events`` (a journal ``log()`` DataFrame, ordered by seq) to ``world`` and return the
    resulting world (a new object when a ``load`` event replaced it).  ``get_blob(sha)`` returns
    the bytes of a stored case (needed for ``load`` events)."""
    if events is None or not len(events):
        return world
    ev = events["event"].to_numpy(dtype=object)
    keep = np.isin(ev, WORLD_EVENTS)
    if not keep.any():
        return world
    events = events[keep]
    ev = ev[keep]
    cols = [events[c].to_numpy(dtype=object) for c in ("kind", "eid", "field", "new", "info")]
    loads = np.flatnonzero(ev == "load")
    start = 0
    for i in list(loads) + [len(ev)]:
        if i > start:
            apply(world, replay_changes(ev[start:i], *(c[start:i] for c in cols)))
        if i < len(ev):
            if get_blob is None:
                raise ValueError("a load event needs get_blob")
            world = _blob_world(get_blob, cols[4][i])
        start = i + 1
    return world


def replay_changes(ev, kinds, eids, fields, news, infos) -> list:
    """The changes of a run of world events (no ``load``), grouped for speed: within a run of
    sets only each cell's last value, one SetCol per (kind, field); consecutive adds of one kind
    as one AddRows."""
    out = []
    n = len(ev)
    i = 0
    while i < n:
        e = ev[i]
        j = i + 1
        if e == "set":
            while j < n and ev[j] == "set":
                j += 1
            out += _set_run(kinds[i:j], eids[i:j], fields[i:j], news[i:j])
        elif e == "add":
            while j < n and ev[j] == "add" and kinds[j] == kinds[i]:
                j += 1
            out.append(_adds(kinds[i], eids[i:j], infos[i:j]))
        elif e == "remove":
            while j < n and ev[j] == "remove" and kinds[j] == kinds[i]:
                j += 1
            out.append(RemoveRows(kinds[i], np.asarray([int(x) for x in eids[i:j]], dtype=np.int64)))
        elif e == "network":
            out.append(SetNetwork(fields[i], news[i]))
        i = j
    return out


def _set_run(kinds, eids, fields, news):
    """One SetCol per (kind, field) of a run of set events, with each cell's last value."""
    n = len(kinds)
    cut = np.flatnonzero((kinds[1:] != kinds[:-1]) | (fields[1:] != fields[:-1])) + 1
    starts = np.concatenate([[0], cut]).tolist()
    ends = cut.tolist() + [n]
    parts = {}
    for a, b in zip(starts, ends):  # stretches of one (kind, field): one grid.set is one stretch
        parts.setdefault((kinds[a], fields[a]), []).append((a, b))
    out = []
    for (k, f), spans in parts.items():
        idx = np.concatenate([np.arange(a, b) for a, b in spans]) if len(spans) > 1 else np.arange(*spans[0])
        ids = eids[idx].astype(np.int64)
        vals = news[idx]
        if len(np.unique(ids)) != len(ids):  # later writes of a cell win
            rev = ids[::-1]
            _, first = np.unique(rev, return_index=True)
            keep = np.sort(len(ids) - 1 - first)
            ids, vals = ids[keep], vals[keep]
        out.append(SetCol(k, ids, f, _values(k, f, vals)))
    return out


def _values(kind, field, vals):
    """Recorded values as an array: float64 for a float column whose values all are numbers (the
    fast path of apply), else objects (validated and converted by apply)."""
    col = KINDS[kind].by_name.get(field) if kind in KINDS else None
    if col is not None and col.dtype == F8:
        try:
            return np.asarray(vals, dtype=object).astype(np.float64)
        except (TypeError, ValueError):
            pass
    out = np.empty(len(vals), dtype=object)
    out[:] = list(vals)
    return out


def _adds(kind, eids, infos):
    rows = [json.loads(x) for x in infos]
    names = list(rows[0]) if rows else []
    cols = {}
    for name in names:
        col = np.empty(len(rows), dtype=object)
        col[:] = [r.get(name) for r in rows]
        cols[name] = col
    return AddRows(kind, cols, np.asarray([int(x) for x in eids], dtype=np.int64))


def tx_changes(events, inverse: bool) -> list:
    """The changes of one recorded transaction (``journal.tx_events(tx)``), or of its inverse
    (latest first, old values): what undo and redo apply.  Consecutive sets of one (kind, field)
    on distinct ids form one SetCol; each event stays one event when recorded again."""
    ev = events[events["event"].isin(("set", "add", "remove", "network"))]
    rows = list(ev[["event", "kind", "eid", "field", "old", "new", "info"]].itertuples(index=False, name=None))
    if inverse:
        rows = rows[::-1]
    out = []
    run = None  # (kind, field, ids, values, seen) of the SetCol being built
    for event, kind, eid, field, old, new, info in rows:
        eid = _int(eid)
        if event == "set":
            v = old if inverse else new
            if run is not None and run[0] == kind and run[1] == field and eid not in run[4]:
                run[2].append(eid)
                run[3].append(v)
                run[4].add(eid)
                continue
            run = (kind, field, [eid], [v], {eid})
            out.append(run)
            continue
        run = None
        if event == "network":
            out.append(SetNetwork(field, old if inverse else new))
        elif (event == "add") != inverse:  # add, or the inverse of a remove
            out.append(_adds(kind, [eid], [info]))
        else:
            out.append(RemoveRows(kind, np.asarray([eid], dtype=np.int64)))
    return [SetCol(c[0], np.asarray(c[2], dtype=np.int64), c[1], _values(c[0], c[1], c[3])) if type(c) is tuple else c
            for c in out]
