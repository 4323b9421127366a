"""Element handles: ``grid.bus(5).vm_pu``, ``grid.load(bus=5).p_mw = 60``.

Reading a schema column gives the world's current value; writing validates it through the schema
registry and marks what the next solve must rebuild (injection writes stay incremental).
Result columns (vm_pu of a bus, p_from_mw of a line, ...) are read-only.
"""
from __future__ import annotations

import numpy as np

from gridtape.errors import SchemaError


class Handle:
    __slots__ = ("_grid", "_kind", "_id")

    def __init__(self, grid, kind: str, eid: int):
        object.__setattr__(self, "_grid", grid)
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_id", eid)

    @property
    def id(self) -> int:
        return self._id

    @property
    def kind(self) -> str:
        return self._kind

    def __getattr__(self, name):
        world = self._grid.world
        t = world[self._kind]
        if name in t.spec:
            return t.get(self._id, name)
        res = self._grid.post_process().get(self._kind)
        if res is not None and name in res.columns:
            return float(res.at[self._id, name])
        raise AttributeError(f"{self._kind} has no field {name!r}")

    def __setattr__(self, name, value):
        g = self._grid
        if name not in g._world.tables[self._kind].spec.by_name:
            res_cols = g.post_process().get(self._kind) if g.last_report else None
            why = "is a read-only result" if res_cols is not None and name in res_cols.columns else "is not a field"
            raise SchemaError(f"{name!r} {why} of {self._kind} {self._id}", table=self._kind, row=self._id,
                              field=name)
        g._write(self._kind, self._id, name, value)

    def __eq__(self, other):
        return isinstance(other, Handle) and (self._grid, self._kind, self._id) == (other._grid, other._kind, other._id)

    def __hash__(self):
        return hash((id(self._grid), self._kind, self._id))

    def __repr__(self):
        return f"<{self._kind} {self._id}>"


def find_by_bus(grid, kind, bus):
    t = grid.world[kind]
    hits = np.flatnonzero(t.cols["bus"] == int(bus))
    return Handle(grid, kind, int(t.ids[hits[0]])) if len(hits) else None


def find_all_by_bus(grid, kind, bus):
    t = grid.world[kind]
    return [Handle(grid, kind, int(i)) for i in t.ids[t.cols["bus"] == int(bus)]]


def find_branch(grid, kind, fcol, tcol, a, b):
    t = grid.world[kind]
    c = t.cols
    hits = np.flatnonzero(((c[fcol] == int(a)) & (c[tcol] == int(b))) | ((c[fcol] == int(b)) & (c[tcol] == int(a))))
    return Handle(grid, kind, int(t.ids[hits[0]])) if len(hits) else None
