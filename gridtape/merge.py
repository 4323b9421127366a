"""Revert any transaction, cherry-pick one from another branch, merge a branch: ``PowerGrid``'s
``revert``, ``cherry_pick`` and ``merge`` (this module's :class:`Merging`, a base of PowerGrid).

Each builds three worlds, lets :func:`gridtape.replay.merge.three_way` decide what to change
and where it conflicts, and applies the changes as ONE new edit transaction through the grid's
one write path (world/changes.py ``apply``, recorded like any edit; undo() takes it back).  The
transaction ends with a marker event naming what it came from:

- ``revert``       ``{"tx", "seq"}``: the reverted transaction and its last seq;
- ``cherry-pick``  ``{"tx", "seq", "from"}``: the picked transaction and its journal;
- ``merge``        ``{"branch", "path", "ours": {"seq", "tx"}, "theirs": {"seq", "tx"}, "base"}``:
  both parents (the head of each side) and the merge base.

A conflict raises before anything is written (world, results and journal as they were).
"""
from __future__ import annotations

import json
import operator
import os

from gridtape.errors import JournalError, MergeConflictError, RevertConflictError

SHOWN = 12  # conflicts listed in an error message


class Merging:
    """The history verbs of PowerGrid that write: revert, cherry_pick, merge."""

    def revert(self, tx: int, *, force: bool = False, message: str | None = None, author: str | None = None):
        """Undo transaction ``tx`` (any one, not only the latest) with a new transaction that
        applies its inverse: cells back to the values before ``tx``, elements it added removed,
        elements it removed added again (same ids and values).  A later transaction that changed
        the same cell or element (to something else than ``tx`` left) is a conflict:
        RevertConflictError lists them and nothing changes; ``force=True`` reverts anyway (a
        reference left pointing at a missing element is refused even then).  Returns the new
        transaction's id (None when there is nothing to change)."""
        from gridtape.replay.merge import three_way

        j = _ready(self, "revert()")
        ev, last, msg = _transaction(j, tx)
        before, after = _around(j, ev)
        plan, conflicts = three_way(after, self._world, before, force=force)
        text = message or (f"Revert {int(tx)}: {msg}" if msg else f"Revert {int(tx)}")
        return _land(self, j, plan, conflicts, RevertConflictError, f"revert of tx {int(tx)}", "revert",
                     {"tx": int(tx), "seq": last}, text, author, since=last)

    def cherry_pick(self, tx: int, source=None, *, force: bool = False, message: str | None = None,
                    author: str | None = None):
        """Apply what transaction ``tx`` of ``source`` (a branch name, a journal path, a Study, a
        Journal or a PowerGrid; None: this journal) changed, as a new transaction here.  A cell
        it changed whose value here differs from the one ``tx`` found (and from the one it left),
        an element it removed that was changed here, an id it added that exists here with other
        values: conflicts (MergeConflictError; ``force=True`` takes the picked values).
        Returns the new transaction's id (None when there is nothing to change)."""
        from gridtape.replay.merge import three_way

        j = _ready(self, "cherry_pick()")
        src, name, close = _source(j, source)
        try:
            ev, last, msg = _transaction(src, tx)
            before, after = _around(src, ev)
        finally:
            if close:
                src.close()
        plan, conflicts = three_way(before, self._world, after, force=force)
        text = message or f"{msg or ''} (cherry-picked from tx {int(tx)} of {name})".lstrip()
        return _land(self, j, plan, conflicts, MergeConflictError, f"cherry-pick of tx {int(tx)} of {name}",
                     "cherry-pick", {"tx": int(tx), "seq": last, "from": src.path}, text, author, since=None)

    def merge(self, branch, *, force: bool = False, message: str | None = None, author: str | None = None):
        """Merge ``branch`` (a branch name of this journal, a journal path, a Study, a Journal or a
        PowerGrid) into this grid: three-way on cells and elements against the merge base (the
        fork point, or the last merge between the two).  One side changed a cell: it is taken;
        both changed it to the same value: fine; differently: a conflict; removed on one side and
        written on the other, or added on both with the same id and other values: conflicts
        (MergeConflictError; ``force=True`` takes the branch's side).  One transaction whose
        ``merge`` event names both parents.  Returns its id (None when nothing is to merge)."""
        from gridtape.replay.materialize import materialize
        from gridtape.replay.merge import three_way

        from .merge_base import head_of, merge_base

        j = _ready(self, "merge()")
        if j.path is None:
            raise JournalError("merge() needs a file journal (branches are journal files)", field="journal")
        src, name, close = _source(j, branch)
        try:
            if src.path is None or os.path.realpath(src.path) == os.path.realpath(j.path):
                raise JournalError("merge() needs another journal (a branch, or the parent)", field="branch")
            base, desc, since = merge_base(j, src)
            theirs = materialize(src)[0]
            head = head_of(src)
        finally:
            if close:
                src.close()
        plan, conflicts = three_way(base, self._world, theirs, force=force)
        ours = head_of(j)
        info = {"branch": name, "path": src.path, "ours": ours, "theirs": head, "base": desc}
        return _land(self, j, plan, conflicts, MergeConflictError, f"merge of {name}", "merge", info,
                     message or f"Merge branch {name}", author, since=since)


# --- the steps ---------------------------------------------------------------------------------------
def _ready(grid, what):
    grid._check_writable()
    j = grid._history.need(what)
    if grid._editor is not None:
        raise JournalError(f"{what} inside an edit block: commit the block first")
    if j.in_transaction:
        raise JournalError(f"{what} inside an open journal transaction: commit it first", file=j.path)
    return j


def _transaction(j, tx):
    """The world events of transaction ``tx`` of journal ``j``, its last seq and its message."""
    from gridtape.replay.events import WORLD_EVENTS

    try:
        if isinstance(tx, bool):
            raise TypeError
        tx = operator.index(tx)
    except TypeError:
        raise JournalError(f"a transaction is an int, not {tx!r}", file=j.path, field="tx") from None
    ev = j.tx_events(int(tx))
    if not len(ev):
        raise JournalError(f"no transaction {int(tx)}", file=j.path, field="tx")
    if (ev["event"] == "load").any():
        raise JournalError(f"transaction {int(tx)} loads a case: there is nothing before it to go back to",
                           file=j.path, field="tx")
    world = ev[ev["event"].isin(WORLD_EVENTS)]
    if not len(world):
        what = ", ".join(sorted(set(ev["event"]) - {"commit"})) or "nothing"
        raise JournalError(f"transaction {int(tx)} changes nothing in the world ({what})", file=j.path, field="tx")
    msg = ev["message"].iloc[-1]
    return world, int(ev["seq"].iloc[-1]), (None if msg is None or msg != msg else str(msg))


def _around(j, ev):
    """The worlds just before and just after a transaction's events ``ev``."""
    from gridtape.replay.events import apply_events
    from gridtape.replay.materialize import materialize

    before = materialize(j, int(ev["seq"].iloc[0]) - 1)[0]
    after = apply_events(before.copy(), ev, j.get_blob)
    return before, after


def _source(j, source):
    """``(journal, name, close)`` of what a cherry-pick or merge reads from."""
    from gridtape.journal import Journal

    if source is None:
        return j, "this journal", False
    if isinstance(source, Journal):
        return source, _name(source.path), False
    inner = getattr(source, "journal", None)
    if isinstance(inner, Journal):  # a Study or a PowerGrid
        return inner, _name(inner.path), False
    if not isinstance(source, (str, os.PathLike)):
        raise JournalError(f"a branch is a name, a journal path, a Study, a Journal or a PowerGrid, not "
                           f"{type(source).__name__}", field="branch")
    from .merge_base import branch_path

    path, name = branch_path(j, os.fspath(source))
    if os.path.realpath(path) == os.path.realpath(j.path or ""):
        return j, name, False
    return Journal(path, read_only=True), name, True


def _name(path):
    return "this journal" if path is None else os.path.basename(str(path))


def _land(grid, j, plan, conflicts, error, what, marker, info, message, author, since):
    """Raise the conflicts, or apply the plan's changes as one transaction ending with ``marker``."""
    from gridtape.replay.diff import to_changes
    from gridtape.replay.merge import dangling
    from gridtape.world.changes import apply

    from .editor import GridEditor

    w = grid._world
    if not conflicts and len(plan):
        changes = to_changes(w, plan, check=False)
        scratch = w.copy()
        try:
            apply(scratch, changes, check=False)
        except (ValueError, LookupError) as e:  # an id taken or gone: the plan does not fit (a bug)
            raise error(f"{what} does not apply: {e}", file=j.path) from e
        known = {(c.kind, c.id, c.field) for c in dangling(w)}
        conflicts = [c for c in dangling(scratch) if (c.kind, c.id, c.field) not in known]
    if conflicts:
        _attribute(j, conflicts, since)
        lines = [str(c) for c in conflicts[:SHOWN]]
        more = f"\n  ... {len(conflicts) - SHOWN} more" if len(conflicts) > SHOWN else ""
        hint = "" if all(c.what == "reference" for c in conflicts) else "; force=True (--force) takes the incoming side"
        raise error(f"{what}: {len(conflicts)} conflict(s), nothing changed{hint}:\n  " + "\n  ".join(lines) + more,
                    conflicts=conflicts, file=j.path)
    if not len(plan):
        return None
    ed = GridEditor(grid, author, message)
    with ed:
        ed._apply(changes)
        j.record(marker, None, None, None, None, None, json.dumps(info, separators=(",", ":")))
        ed.events += 1
    return ed.tx


def _attribute(j, conflicts, since, limit=100):
    """Name the transaction of this journal that last changed each conflicting cell or element
    (after seq ``since`` when given)."""
    from gridtape.replay.events import WORLD_EVENTS

    for c in conflicts[:limit]:
        try:
            if c.kind == "network":
                h = j.log(event="network")
                h = h[h["field"] == c.field]
            else:
                h = j.history(c.kind, int(c.id), c.field)
        except (JournalError, ValueError, TypeError):
            continue
        h = h[h["event"].isin(WORLD_EVENTS)]
        if since is not None:
            h = h[h["seq"] > since]
        if len(h):
            c.tx = int(h["tx"].iloc[-1])
