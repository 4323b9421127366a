"""The one place where the grid2op backend writes its world: a plan (see planner.py) applied as
world writes and, journaled, recorded as one transaction."""
from __future__ import annotations


def _write(world, kind, rows, col, vals, checked):
    """One planned write; returns the old values.  Checked entries (values from grid2op) go
    through the world's validation (``write_rows_checked``: ``set_values``' checks at row
    positions); the others (values the backend derived itself: busbar ids, in_service flags, the
    initial grid) through the trusted ``write_rows``.  Both move the world's counters and mark
    its dirty sets as ``set_values`` does."""
    if checked:
        return world.write_rows_checked(kind, rows, col, vals)
    return world.write_rows(kind, rows, col, vals)


def commit(grid, plan, message):
    """Write ``plan`` to ``grid``'s world.  Journaled, one transaction ``message`` of one
    ``record_many`` per written column (the old values are the ones the write returns, the new
    ones the planned values).  A write that raises undoes the ones before it (and the transaction
    is rolled back): world and journal are as they were."""
    if not plan:
        return
    w = grid.world
    j = grid.journal
    tx = None if j is None else j.begin(message=message)
    done = []
    try:
        for kind, col, rows, vals, checked in plan:
            old = _write(w, kind, rows, col, vals, checked)
            done.append((kind, col, rows, old))
            if j is not None:
                t = w[kind]
                j.record_many("set", kind, t.ids if rows is None else t.ids[rows], col, old, vals)
    except BaseException:
        for kind, col, rows, old in reversed(done):
            w.write_rows(kind, rows, col, old)
        if j is not None:
            j.rollback()
        raise
    finally:
        grid._changed()
    if j is not None:
        j.commit()
        grid._pushed_tx(tx)
