"""What changed in a world since a consumer last looked: the dirty set.

A consumer of world columns (the solver's model cache, the grid2op adapter's caches) asks the
world for a :class:`Dirty` with :meth:`World.watch` and reads it before it reuses anything it
derived.  Every applied change marks every live watcher:

- ``cols``: the ``(kind, column)`` pairs whose values were written;
- ``rows``: the kinds whose rows were added or removed (ids, row order and every column of that
  kind are then to be re-read);
- ``network``: the network-wide values (``sn_mva``, ``f_hz``) changed.

The consumer clears what it has handled (``clear()``).  A watcher that is no longer referenced
stops being marked (the world holds it weakly).
"""
from __future__ import annotations


class Dirty:
    """One consumer's record of what changed since it last cleared it."""

    __slots__ = ("cols", "rows", "network", "__weakref__")

    def __init__(self, everything: bool = True, kinds=()):
        self.cols: set = set()
        self.rows: set = set(kinds) if everything else set()
        self.network = bool(everything)

    def __bool__(self) -> bool:
        return bool(self.cols or self.rows or self.network)

    def kinds(self) -> set:
        """Every kind with a written column or changed rows."""
        return self.rows | {k for k, _ in self.cols}

    def touches(self, keys) -> bool:
        """Whether any ``(kind, column)`` of ``keys`` was written, or any of their kinds' rows
        changed, or a network value changed."""
        if self.network:
            return True
        cols, rows = self.cols, self.rows
        for k in keys:
            if k in cols or k[0] in rows:
                return True
        return False

    def clear(self) -> None:
        self.cols.clear()
        self.rows.clear()
        self.network = False

    def __repr__(self):
        return f"Dirty(cols={sorted(self.cols)}, rows={sorted(self.rows)}, network={self.network})"
