"""The one place where the grid2op backend writes its world: a plan (see planner.py) applied
through the world's change vocabulary (``world/changes.py``) and, journaled, recorded as one
transaction of what the vocabulary applied."""
from __future__ import annotations

from gridtape.world.changes import SetCol, apply, apply_set_rows


def commit(grid, plan, message):
    """Apply ``plan`` to ``grid``'s world: each entry ``(kind, column, rows, values, checked)`` is
    one column change at row positions, applied by ``changes.apply_set_rows`` (the vocabulary's
    SetCol at row positions; ``checked``: values from grid2op, validated; the others are values
    the backend derived from the world itself: its busbar ids, in_service flags, the grid's
    initial values).  Journaled, one transaction ``message`` recording each change as applied
    (ids, old values as the write returned them, new values), counted by the grid's history (an
    automatic checkpoint falls due by event count).  A change that raises is undone
    with the inverse of the ones before it (``changes.apply``) and the transaction rolled back:
    world and journal are as they were."""
    if not plan:
        return
    w = grid.world
    j = grid.journal
    tx = None if j is None else j.begin(message=message)
    done = []
    n = 1  # events: the sets and the commit
    try:
        for kind, col, rows, vals, checked in plan:
            old = apply_set_rows(w, kind, rows, col, vals, check=checked)
            done.append((kind, col, rows, old))
            if j is not None:
                t = w[kind]
                j.record_many("set", kind, t.ids if rows is None else t.ids[rows], col, old, vals)
                n += len(old)
    except BaseException:
        if done:
            tabs = w.tables
            apply(w, [SetCol(kind, tabs[kind].ids if rows is None else tabs[kind].ids[rows], col, old)
                      for kind, col, rows, old in reversed(done)], check=False)
        if j is not None:
            j.rollback()
        raise
    finally:
        grid._changed()
    if j is not None:
        j.commit()
        grid._pushed_tx(tx)
        grid._history.committed(n)  # automatic checkpoints fall due by event count
