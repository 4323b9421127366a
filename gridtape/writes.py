"""The grid's write path: every change to a grid's world goes through world/changes.py (the one
``apply``, or its fast single-cell / single-column sets), then the edit block, the results and the
journal hear of it.  ``PowerGrid`` inherits these methods."""
from __future__ import annotations

from gridtape.errors import JournalError
from gridtape.world import World
from gridtape.world.changes import AddRows, RemoveRows, SetNetwork, apply, apply_set, set_cell
from gridtape.world.coerce import int_ids


class Writes:
    """The write methods of PowerGrid (handles, ``set``, edit blocks, ``apply(diff)``, loads)."""

    # --- the write path: every change goes through world/changes.py, then the journal --------------
    def _write(self, kind, eid, name, value):
        """One cell (handles call this): validated and written by ``changes.set_cell``, then the
        edit block, the results and the journal hear of it."""
        j = self._journal
        if self._read_only or (j is not None and j.closed):
            self._check_writable()
        old, new = set_cell(self._world, kind, eid, name, value)
        self._results = None
        ed = self._editor
        if ed is not None:
            ed.done.append((kind, [eid], name, [old]))
            if j is not None:
                j.record("set", kind, eid, name, old, new)
                ed.events += 1
        elif j is not None:
            j.record("set", kind, eid, name, old, new)
            h = self._history
            if h._done is not None:
                h.pushed(j.next_tx - 1)
            h.counted += 1
            if h.counted >= h.look_at:
                h.look()

    def set(self, kind: str, ids, field: str, values):
        """Vectorized write of one column for many elements (sweeps, time series): validated as a
        whole (nothing is written if any value is bad), one event per element, one transaction.
        ``set(kind, field, ids, values)`` (field before ids) is accepted too."""
        if isinstance(ids, str) and not isinstance(field, str):
            ids, field = field, ids
        self._check_writable()
        ids = int_ids(ids, kind, field)
        old, new = apply_set(self._world, kind, ids, field, values)
        self._results = None
        ed = self._editor
        if ed is not None:
            ed.done.append((kind, ids, field, old))
        j = self._journal
        if j is not None and len(ids):
            j.record_many("set", kind, ids, field, old, new)
            if ed is not None:
                ed.events += len(ids)
            else:
                h = self._history
                if h._done is not None:  # (next_tx counts the buffer: only when the stack is built)
                    h.pushed(j.next_tx - 1)
                h.committed(len(ids) + 1)

    def _apply(self, changes, record=True, check=True):
        """A list of changes (world/changes.py) through the one ``apply``: validated as a whole,
        written, recorded in the journal (inside the open edit block; ``record=False``: the caller
        records something else, a load) and kept by the edit block for its rollback."""
        self._check_writable()
        done = apply(self._world, changes, check=check)
        self._results = None
        ed = self._editor
        if ed is not None:
            ed.done.append(done)
        j = self._journal
        if j is not None and record:
            n = record_applied(j, done)
            if ed is not None:
                ed.events += n
        return done

    def edit(self, author: str | None = None, message: str | None = None):
        """``with grid.edit(author=..., message=...) as e:`` -- an atomic transaction (GridEditor)."""
        from .editor import GridEditor

        return GridEditor(self, author, message)

    def get_parquet_case(self) -> bytes:
        """The world (every element table and column) as an in-memory ZIP of Parquet files."""
        from gridtape.replay.archive import case_zip_bytes

        return case_zip_bytes(self._world)

    def get_parquet_results(self) -> bytes:
        """Every result table (res_bus, res_line, ...) as an in-memory ZIP of Parquet files."""
        from gridtape.replay.archive import results_zip_bytes

        res = self.post_process()
        rep = self._last
        meta = {"converged": rep.converged, "iterations": rep.iterations, "algorithm": rep.algorithm,
                "rebuild": rep.rebuild}
        return results_zip_bytes({f"res_{k}": v for k, v in res.items()}, meta)

    def load_parquet_case(self, zip_bytes) -> None:
        """Replace the world with the one of ``get_parquet_case()`` bytes (checked first: nothing
        changes if they are damaged).  Recorded as a load event."""
        from gridtape.replay.archive import world_from_zip_bytes

        self._check_writable()
        if self._editor is not None:
            raise JournalError("load_parquet_case() inside an edit block")
        h = self._history
        if h._bg is not None:
            h._settle_checkpoint()  # its event goes before the load event
        new = world_from_zip_bytes(zip_bytes)
        self._apply(replace_world(self._world, new), record=False, check=False)
        self._results = None
        self._last = None
        self._engine.invalidate()
        if self._journal is not None:
            h.record_load(self._world, "parquet", data=zip_bytes)
            h.committed(2)

    def apply(self, diff) -> None:
        """Turn this grid's world into the other side of ``diff`` (``gridtape.diff(a, b)``), as one
        journaled edit transaction (the diff's changes through the one ``apply``)."""
        from gridtape.replay.diff import to_changes

        with self.edit(message="apply diff") as e:
            e._apply(to_changes(self._world, diff, check=False, lenient=True))


def record_applied(j, done) -> int:
    """Record what ``apply`` did (``Applied.events()``) in journal ``j``; returns the event count."""
    n = 0
    for ev in done.events():
        e = ev[0]
        if e == "set":
            j.record_many("set", ev[1], ev[2], ev[3], ev[4], ev[5])
            n += len(ev[2])
        elif e == "network":
            j.record("network", "network", None, ev[1], ev[2], ev[3])
            n += 1
        else:
            j.record(e, ev[1], ev[2], None, None, None, ev[3])
            n += 1
    return n


def replace_world(w: World, new: World) -> list:
    """The changes that turn ``w`` into ``new`` wholesale (a case loaded into a grid): every row
    removed, every row of ``new`` added (with its extra columns and next id), the network values."""
    out = [SetNetwork(f, getattr(new, f)) for f in ("sn_mva", "f_hz", "name")]
    for kind, t in w.tables.items():
        nt = new.tables[kind]
        if len(t) or len(nt) or t.next_id != nt.next_id:
            out.append(RemoveRows(kind, t.ids.copy(), next_id=0))
            out.append(AddRows(kind, dict(nt.cols), nt.ids, dict(nt.extra)))
            if nt.next_id > (int(nt.ids.max()) + 1 if len(nt.ids) else 0):
                out.append(RemoveRows(kind, [], next_id=nt.next_id))
    return out
