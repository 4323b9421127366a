"""Connectivity of a world, as the strategies need it (which edits keep every bus fed)."""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from gridtape.world.schema import BUS_REFS

BRANCH_ENDS = {"line": ("from_bus", "to_bus"), "trafo": ("hv_bus", "lv_bus"), "impedance": ("from_bus", "to_bus"),
               "trafo3w": ("hv_bus", "mv_bus", "lv_bus")}
SWITCH_ET = {"line": "l", "trafo": "t", "trafo3w": "t3"}


def islands(world):
    """(component label per bus row, bus-row mask of the components that hold a slack)."""
    b = world["bus"]
    n = len(b)
    live = b.cols["in_service"].copy()
    sw = world["switch"]
    a, c = [], []
    for kind, ends in BRANCH_ENDS.items():
        t = world[kind]
        if not len(t):
            continue
        on = t.cols["in_service"].copy()
        if len(sw):  # an open switch on a branch cuts it
            et = SWITCH_ET[kind] if kind in SWITCH_ET else None
            cut = sw.cols["element"][(sw.cols["et"] == et) & ~sw.cols["closed"]]
            on &= ~np.isin(t.ids, cut)
        for k in range(1, len(ends)):
            a.append(b.rows(t.cols[ends[0]][on]))
            c.append(b.rows(t.cols[ends[k]][on]))
    if len(sw):
        bb = (sw.cols["et"] == "b") & sw.cols["closed"]
        a.append(b.rows(sw.cols["bus"][bb]))
        c.append(b.rows(sw.cols["element"][bb]))
    a = np.concatenate(a) if a else np.zeros(0, np.int64)
    c = np.concatenate(c) if c else np.zeros(0, np.int64)
    keep = live[a] & live[c] if len(a) else np.zeros(0, bool)
    g = coo_matrix((np.ones(int(keep.sum())), (a[keep], c[keep])), shape=(n, n))
    _, label = connected_components(g, directed=False)
    slack_rows = []
    for kind, mask in (("ext_grid", None), ("gen", "slack")):
        t = world[kind]
        if len(t):
            m = t.cols["in_service"] & (t.cols[mask] if mask else True)
            slack_rows.append(b.rows(t.cols["bus"][m]))
    rows = np.concatenate(slack_rows) if slack_rows else np.zeros(0, np.int64)
    rows = rows[live[rows]]
    fed = np.isin(label, label[rows])
    return label, fed


def connected(world) -> bool:
    """Whether every in-service bus reaches an in-service slack (ext_grid or slack gen)."""
    _, fed = islands(world)
    return bool(fed[world["bus"].cols["in_service"]].all())


def split_candidates(world) -> dict:
    """bus id -> its connections [(kind, id, field)] for buses with two or more connections and no
    switch (a split moves some of them to a new bus)."""
    sw = world["switch"]
    busy = set()
    if len(sw):
        busy = set(sw.cols["bus"].tolist()) | set(sw.cols["element"][sw.cols["et"] == "b"].tolist())
    ends = {}
    for kind, cols in BUS_REFS.items():
        if kind == "switch":
            continue
        t = world[kind]
        for f in cols:
            for eid, bus in zip(t.ids.tolist(), t.cols[f].tolist()):
                if bus not in busy:
                    ends.setdefault(bus, []).append((kind, eid, f))
    return {bus: e for bus, e in ends.items() if len(e) >= 2}
