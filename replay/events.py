"""Replaying journal events onto a world.

The event vocabulary that changes a world:

- ``load``    the world is replaced by the case stored as a blob (``info["blob"]``, a case zip);
- ``set``     one cell: ``kind``, ``eid``, ``field`` get ``new``;
- ``add``     ``kind`` ``eid`` is added with the column values of ``info`` (JSON);
- ``remove``  ``kind`` ``eid`` is removed (``info`` keeps its values, for undo and diff);
- ``network`` a network value (``field`` sn_mva or f_hz) gets ``new``.

Every other event (commit, undo and redo markers, solve, snapshot, tag) leaves the world as it is:
an undo or redo is itself recorded as the compensating set/add/remove events.

Runs of ``set`` events are applied vectorized: within a run only the last value of each cell
matters, and it is written with one ``World.set_values`` per (kind, field).
"""
from __future__ import annotations

import json

import numpy as np

WORLD_EVENTS = ("load", "set", "add", "remove", "network")


def _blob_world(get_blob, info):
    from .archive import world_from_zip_bytes

    meta = json.loads(info)
    return world_from_zip_bytes(get_blob(meta["blob"]))


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
    kinds = events["kind"].to_numpy(dtype=object)
    eids = events["eid"].to_numpy(dtype=object)
    fields = events["field"].to_numpy(dtype=object)
    news = events["new"].to_numpy(dtype=object)
    infos = events["info"].to_numpy(dtype=object)
    n = len(ev)
    i = 0
    while i < n:
        e = ev[i]
        if e == "set":
            j = i
            while j < n and ev[j] == "set":
                j += 1
            _apply_sets(world, kinds[i:j], eids[i:j], fields[i:j], news[i:j])
            i = j
            continue
        if e == "load":
            if get_blob is None:
                raise ValueError("a load event needs get_blob")
            world = _blob_world(get_blob, infos[i])
        elif e == "add":
            values = json.loads(infos[i])
            world.add(kinds[i], {k: [v] for k, v in values.items()}, ids=[int(eids[i])])
        elif e == "remove":
            world.remove(kinds[i], [int(eids[i])])
        elif e == "network":
            setattr(world, fields[i], float(news[i]))
            world.bump("topo")
        i += 1
    return world


def _apply_sets(world, kinds, eids, fields, news):
    if len(kinds) == 1:
        world.set_value(kinds[0], int(eids[0]), fields[0], news[0])
        return
    last = {}
    for k, e, f, v in zip(kinds, eids, fields, news):
        last[(k, f, int(e))] = v  # later writes of a cell win
    groups = {}
    for (k, f, e), v in last.items():
        g = groups.setdefault((k, f), ([], []))
        g[0].append(e)
        g[1].append(v)
    for (k, f), (ids, vals) in groups.items():
        world.set_values(k, np.asarray(ids, dtype=np.int64), f, vals)
