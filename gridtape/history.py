"""A grid's history: its journal's lifecycle (open, close, finalizer, exit), the undo and redo
stacks, tags, snapshots and the automatic checkpoints.  ``PowerGrid`` keeps one
:class:`History` (``grid._history``) and delegates its history methods to it.

Automatic checkpoints fall due by event count wherever the grid commits events (a write, a
``set``, an edit block's commit, undo/redo, a solve), never inside an open edit block or journal
transaction.  A due checkpoint copies the world and has it written by the background writer
(replay/background.py), or writes it at once with ``checkpoint_background=False``.  When the next
one falls due while one is still being written, the one in flight is waited for and recorded
first (back-pressure on the writer): the replay tail stays within about two ``checkpoint_every``
of the last recorded snapshot whatever the workload.  A writer that does not finish within
:attr:`History.settle_timeout` seconds is not waited for again until it finishes (a stalled disk
must not freeze the study).
"""
from __future__ import annotations

import json
import os
import weakref
import time
from array import array

from gridtape.errors import JournalError


def open_journal(journal, author, read_only):
    """The Journal of ``PowerGrid(journal=...)``: None (``False``), the one given, a new in-memory
    one (``None`` or ``True``), or the file at a path (str or os.PathLike)."""
    if journal is False:
        return None
    from gridtape.journal import Journal

    if isinstance(journal, Journal):
        return journal
    if journal is None or journal is True:
        return Journal(None, read_only=read_only, author=author)
    if not isinstance(journal, (str, os.PathLike)):
        raise JournalError(f"journal must be a path, a Journal, True/None (in memory) or False (none): "
                           f"{journal!r}", field="journal")
    return Journal(os.fspath(journal), read_only=read_only, author=author)


class History:
    """One grid's journal, undo/redo stacks, snapshots and checkpoints."""

    #: the longest a due checkpoint waits for the one still being written (seconds)
    settle_timeout = 5.0

    def __init__(self, grid, journal, *, snapshots, checkpoint_every, checkpoint_background):
        from gridtape.replay.materialize import snapshot_dir

        # weakly: the grid owns its history; no cycle, so dropping the grid finalizes it at once,
        # while its journal is still whole (a cycle would let the journal be finalized first)
        self._grid_ref = weakref.ref(grid)
        self.journal = journal
        self.snapshots = snapshots if snapshots is not None else snapshot_dir(None if journal is None else journal.path)
        self.checkpoint_every = int(checkpoint_every)
        self.checkpoint_background = bool(checkpoint_background)
        self.checkpoint_error = None  # what the last failed background checkpoint raised
        self._bg = None  # the checkpoint in flight (replay.background.BackgroundSnapshot)
        self._stalled = None  # a checkpoint in flight that did not finish within settle_timeout
        self._ckpt_seq = 0 if journal is None else journal.next_seq
        self._snap_id = None
        self._done = None  # undo stack of transaction ids (built from the journal when first needed)
        self._undone = None  # redo stack
        self.counted = 0  # events committed (counted by the grid: cheap), and when to look again
        self.look_at = self.checkpoint_every

    # --- journal lifecycle -------------------------------------------------------------------------
    def need(self, what):
        if self.journal is None:
            raise JournalError(f"{what} needs a journal (this grid was made with journal=False)")
        return self.journal

    def record_load(self, world, source, extra=None, data=None):
        from gridtape.replay.archive import case_zip_bytes

        j = self.journal
        sha = j.put_blob(case_zip_bytes(world) if data is None else bytes(data), name=source)
        info = {"blob": sha, "source": source, "buses": len(world["bus"]), **(extra or {})}
        j.begin(message=f"load {source}" if source else "load")
        j.record("load", None, None, None, None, None, json.dumps(info, separators=(",", ":")))
        j.commit()
        self._done = self._undone = None

    def close(self):
        """Wait for and record the checkpoint in flight, then close the journal."""
        try:
            if self._bg is not None:
                self._settle_checkpoint()  # may raise a CheckpointWarning turned into an error
        finally:
            if self.journal is not None:
                self.journal.close()
            if self._bg is not None:  # it could not be recorded (an open transaction): forget it
                self._settle_checkpoint()

    @property
    def _grid(self):
        return self._grid_ref()

    def finalize(self):
        """The grid's finalizer: a checkpoint in flight is waited for and recorded."""
        if self._bg is not None:
            try:
                self._settle_checkpoint()
            except Exception:  # noqa: BLE001 - nothing sensible to do in a finalizer
                pass

    # --- undo / redo -------------------------------------------------------------------------------
    def stacks(self):
        if self._done is None:
            self._done, self._undone = undo_stacks(self.journal)
        return self._done, self._undone

    def pushed(self, tx):
        """A new edit transaction ``tx`` was committed: it goes on the undo stack, redo is cleared."""
        if self._done is not None:
            self._done.append(tx)
            if self._undone:
                self._undone = array("q")

    def step(self, marker, author):
        """Undo or redo the latest transaction: its recorded changes (inverted for undo) applied
        as one new transaction that ends with the marker event."""
        from gridtape.replay.events import tx_changes

        g = self._grid
        g._check_writable()
        j = self.need(f"{marker}()")
        done, undone = self.stacks()
        src, dst = (done, undone) if marker == "undo" else (undone, done)
        if not src:
            return None
        tx = src[-1]
        changes = tx_changes(j.tx_events(tx), inverse=marker == "undo")
        from .editor import GridEditor

        ed = GridEditor(g, author, f"{marker} tx {tx}")
        ed._internal = True
        with ed:
            ed._apply(changes)
            j.record(marker, None, None, None, None, None, json.dumps({"tx": int(tx)}, separators=(",", ":")))
        src.pop()
        dst.append(tx)
        return tx

    # --- tags and snapshots ------------------------------------------------------------------------
    def tag(self, name, author=None) -> int:
        self._grid._check_writable()
        j = self.need("tag()")
        if self._grid._editor is not None:
            raise JournalError("tag() inside an edit block: commit the block first")
        if not isinstance(name, str) or not name.strip():
            from gridtape.errors import SchemaError

            raise SchemaError(f"a tag is named by a non-empty text, not {name!r}", file=j.path, field="tag")
        old = j.log(event="tag", columns=["seq", "message"])
        old = old.seq[old.message == name]
        if len(old):  # a tag names one point (as git refuses an existing tag): no silent move
            from gridtape.replay.materialize import tx_end

            raise JournalError(f"tag {name!r} already exists (seq {tx_end(j, int(old.max()))})", file=j.path,
                               field="tag")
        j.begin(author=author, message=name)
        j.record("tag", None, None, None, None, None, json.dumps({"name": name}))
        seq = j.commit()
        self.committed(2)
        return seq

    def snapshot(self, message=None, author=None):
        from gridtape.replay.snapshot import write_snapshot
        from gridtape.replay.materialize import _resolve

        g = self._grid
        g._check_writable()
        j = self.need("snapshot()")
        if g._editor is not None:
            raise JournalError("snapshot() inside an edit block: commit the block first")
        if not self.snapshots:
            raise JournalError("no snapshot directory: give PowerGrid(..., snapshots=DIR) for an in-memory journal",
                               field="snapshots")
        if self._bg is not None:
            self._settle_checkpoint()
        if j.in_transaction:
            raise JournalError("snapshot() inside an open journal transaction: commit it first", file=j.path)
        j.flush()
        covers = j.last_seq
        m = write_snapshot(g.world, _resolve(self.snapshots, j.path), parent=self._snap_id,
                           seq=covers, author=author or j.author, message=message)
        self._record_snapshot(j, m, covers, author, message)
        self._ckpt_seq = j.next_seq
        return m

    def _record_snapshot(self, j, m, covers, author, message):
        """The journal's ``snapshot`` event for the written snapshot ``m`` of the world at ``covers``."""
        where = self.snapshots
        if j.path is not None and not ("://" in where) and os.path.isabs(where):
            rel = os.path.relpath(where, os.path.dirname(os.path.abspath(j.path)))
            where = rel if not rel.startswith("..") else where
        info = json.dumps({"id": m.snapshot_id, "dir": where, "covers": covers, "manifest": m.digest},
                          separators=(",", ":"))
        j.begin(author=author, message=message or "snapshot")
        j.record("snapshot", None, None, None, None, None, info)
        j.commit()
        self._snap_id = m.snapshot_id

    # --- automatic checkpoints ---------------------------------------------------------------------
    def committed(self, n, solve=False):
        """``n`` events were committed (outside an edit block): look whether a checkpoint is due."""
        self.counted += n
        if solve or self.counted >= self.look_at:
            self.look(solve)

    def look(self, solve=False):
        """Settle a finished checkpoint; start the next one when it is due (back-pressure: the
        one in flight is waited for first).  A due checkpoint prefers to cover a solve (the world
        a study looks at): other commits take it once it is an eighth of an interval overdue (so
        the tail stays within ``2 * every + every // 8`` events and one commit)."""
        g, j = self._grid, self.journal
        every = self.checkpoint_every
        step = max(1, every // 8)
        self.look_at = self.counted + step
        if j is None or g._read_only or g._editor is not None or j.in_transaction or not self.snapshots:
            return
        bg = self._bg
        if bg is not None and bg.done():
            self._settle_checkpoint()
        behind = j.flush() + 1 - self._ckpt_seq
        due = every if solve or self._bg is not None else every + step
        if behind < due:
            if self._bg is None:
                self.look_at = self.counted + max(1, due - behind)
            return
        if not self.checkpoint_background:
            self.snapshot(message="checkpoint")
        else:
            bg = self._bg
            if bg is not None:
                if bg is self._stalled or not _finishes(bg, self.settle_timeout):
                    self._stalled = bg  # try again when it has finished
                    return
                self._settle_checkpoint()
                if self._bg is not None:
                    return
            self._start_checkpoint(j)
        self.look_at = self.counted + step

    def _start_checkpoint(self, j):
        """An automatic checkpoint off the main thread: copy the world now (the journal's last seq
        is what it covers), write it in a thread; :meth:`_settle_checkpoint` records it later."""
        from gridtape.replay import background
        from gridtape.replay.materialize import _resolve

        covers = j.last_seq
        self._bg = background.BackgroundSnapshot(
            background.frozen_copy(self._grid.world), _resolve(self.snapshots, j.path), covers=covers,
            parent=self._snap_id, author=j.author, message="checkpoint")
        self._ckpt_seq = covers + 1
        background.settle_at_exit(self)

    def wait_checkpoint(self):
        bg = self._bg
        if bg is None:
            return None
        self._settle_checkpoint()
        self.look_at = self.counted  # an overdue one starts at the next commit
        return bg.manifest if self._bg is None else None

    def _settle_checkpoint(self):
        """Wait for the background checkpoint; record its ``snapshot`` event (main thread) when the
        journal is open and outside a transaction, or warn (CheckpointWarning) if the write failed."""
        bg = self._bg
        j = self.journal
        bg.wait()
        if bg.error is None and j is not None and not j.closed and (j.in_transaction
                                                                    or self._grid._editor is not None):
            return  # recorded at the next commit, snapshot() or close()
        from gridtape.replay import background

        self._bg = self._stalled = None
        background.forget(self)
        if bg.error is not None:
            import warnings

            from gridtape.errors import CheckpointWarning

            self.checkpoint_error = bg.error
            warnings.warn(CheckpointWarning(
                f"the automatic checkpoint of the world at seq {bg.covers} could not be written to "
                f"{bg.directory}: {bg.error!r}; the journal records nothing for it"), stacklevel=4)
        elif j is not None and not j.closed and not j.read_only:
            self._record_snapshot(j, bg.manifest, bg.covers, None, "checkpoint")


def _finishes(bg, timeout) -> bool:
    """Whether the background checkpoint ``bg`` is done within ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not bg.done():
        if time.monotonic() > end:
            return False
        time.sleep(0.001)
    return True


def undo_stacks(j):
    """The undo and redo stacks of a journal's history: edit transactions in order, minus the
    ones undone (and not redone) since."""
    done, undone = array("q"), array("q")
    if j is None:
        return done, undone
    log = j.log()
    if not len(log):
        return done, undone
    edits = log[log["event"].isin(("set", "add", "remove", "network", "undo", "redo", "load"))]
    for tx, grp in edits.groupby("tx", sort=True):
        evs = set(grp["event"])
        if "load" in evs:
            done, undone = array("q"), array("q")  # a new case: nothing before it can be undone
        elif "undo" in evs:
            t = json.loads(grp[grp["event"] == "undo"]["info"].iloc[0])["tx"]
            if done and done[-1] == t:
                done.pop()
            undone.append(t)
        elif "redo" in evs:
            t = json.loads(grp[grp["event"] == "redo"]["info"].iloc[0])["tx"]
            if undone and undone[-1] == t:
                undone.pop()
            done.append(t)
        else:
            done.append(int(tx))
            undone = array("q")
    return done, undone
