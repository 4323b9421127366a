"""The mover: flushed frames into DuckDB, and the journal's one thread and its shutdown.

When ``ingest_every`` flushed events wait, :meth:`Mover.due` (the Recorder's ``_ingest_due``
hook) hands them to a thread, which decodes the frames, chains their hashes from the last row
in DuckDB (in C, without the GIL), inserts them in one DuckDB transaction through its own
cursor and empties their segment file, while later flushes go into the other segment file.  If
the thread is still busy, the events keep waiting (up to eight batches, then the flush waits).
Queries, ``ingest()`` and ``close()`` call :meth:`Mover.ingest`: wait for the thread, then move
the rest in the foreground.  A batch the thread failed to move stays durable in its segment and
goes back in front of the waiting frames; its error is raised at the next hand-over.

The Mover is the only owner of a journal's thread, and :meth:`Mover.stop` the only way it ends:
``Journal.close()`` calls it, and so does the interpreter-exit hook of this module (every open
journal is flushed at exit, a running move is let finish, no new one starts).  It keeps no
reference to its journal (the journal passes itself), so a journal is freed as soon as its
owner drops it.
"""
from __future__ import annotations

import atexit
import threading
import weakref

from ..errors import JournalError
from . import db
from .chain import ZERO

_OPEN = weakref.WeakSet()  # writable journals, flushed at interpreter exit
MAX_WAITING = 8  # batches that may wait while the thread is busy before a flush waits for it


class Mover:
    """Moves one journal's flushed frames into DuckDB; ``chain`` is the hash of the last row
    there (read-only journals: of the segment's tail)."""

    def __init__(self, path, background=True):
        self.path = path
        self.background = bool(background)  # False: move inside the flush that crosses the threshold
        self.chain = ZERO
        self._thread = None  # the running move, if any
        self._moved = None  # what it left: (True, last hash) or (False, (frames, rows, exception))

    # --- for tests and tools -----------------------------------------------------------------------
    def is_alive(self) -> bool:
        """Whether a move is running in the thread."""
        t = self._thread
        return t is not None and t.is_alive()

    def join(self):
        """Wait for the running move (its result is taken by the next settle)."""
        t = self._thread
        if t is not None:
            t.join()

    # --- moving ----------------------------------------------------------------------------------
    def ingest(self, j):
        """Move every flushed frame of ``j`` into DuckDB (one transaction, in the foreground) after
        waiting for the thread (a batch it could not move is retried here), then empty the
        segment files."""
        self.settle(j, raise_error=False)
        if j._mirror:
            table, last = db.frames_table(j._mirror, self.chain)
            db.insert(j._con, table, self.path)
            self.chain = last
            j._mirror, j._mirror_rows = [], 0
        for seg in j._segs:
            if seg.size:
                seg.truncate(0)

    def due(self, j):
        """``ingest_every`` events wait (called by flush): hand them to the thread, which inserts
        them while later flushes go to the other segment file; or, when moving in the foreground
        or when the thread is still busy with a batch and too many wait, move them here."""
        t = self._thread
        if t is not None:
            if t.is_alive() and j._mirror_rows < MAX_WAITING * j.ingest_every:
                return
            self.settle(j)
        if not self.background:
            return self.ingest(j)
        other = None
        if j._segs:
            other = j._segs[1] if j._seg is j._segs[0] else j._segs[0]
            if other.size:  # still holds a batch that was not moved: do it all here
                return self.ingest(j)
        batch, rows, seg = j._mirror, j._mirror_rows, j._seg
        j._mirror, j._mirror_rows = [], 0
        if other is not None:
            j._seg, j._seg_fd, j._seg_slot = other, other.fd, j._segs.index(other)
        con = j._con.cursor()  # its own connection to the database, made in this thread
        self._thread = threading.Thread(target=self._move, args=(con, batch, rows, seg, self.chain),
                                        name="gridtape-journal-mover")
        self._thread.start()

    def _move(self, con, batch, rows, seg, prev):
        """The thread: one batch of frames hashed (chained on ``prev``) and inserted into DuckDB
        (its own cursor), then ``seg`` emptied."""
        try:
            try:
                table, last = db.frames_table(batch, prev)
                db.insert(con, table, self.path)
            finally:
                con.close()
            self._moved = (True, last)  # in DuckDB: the chain goes on from it, even if the truncate fails
            if seg is not None:
                seg.truncate(0)
        except BaseException as e:  # noqa: BLE001 - handed to the journal's thread by settle()
            if self._moved is None:
                self._moved = (False, (batch, rows, e))

    def settle(self, j, raise_error=True):
        """Wait for the thread.  A batch it failed to move goes back in front of the frames
        waiting in ``j`` (still durable in its segment file); its error is raised unless
        ``raise_error`` is off."""
        t = self._thread
        if t is None:
            return
        t.join()
        self._thread = None
        res, self._moved = self._moved, None
        if res is None:
            return
        moved, got = res
        if moved:
            self.chain = got
            return
        batch, rows, e = got
        j._mirror[:0] = batch
        j._mirror_rows += rows
        if raise_error:
            if isinstance(e, JournalError):
                raise e
            raise JournalError(f"cannot move events into DuckDB: {e}", file=self.path, table="events") from e

    # --- the one shutdown path -------------------------------------------------------------------
    def stop(self, j):
        """No new thread from now on; wait for a running move and take its result (errors are
        left to the foreground move that follows, if any).  ``j`` leaves the exit registry."""
        self.background = False
        try:
            self.settle(j, raise_error=False)
        finally:
            _OPEN.discard(j)


def track(j):
    """Flush ``j`` (and stop its mover) at interpreter exit if it is still open then."""
    _OPEN.add(j)


def _at_exit():
    for j in list(_OPEN):
        mover = j._mover
        mover.background = False  # no new thread at exit
        try:
            j.flush()
        except Exception:  # noqa: BLE001 - at exit, flush what can be flushed
            pass
        try:
            mover.stop(j)  # let a running move finish its transaction
        except Exception:  # noqa: BLE001
            pass


atexit.register(_at_exit)
