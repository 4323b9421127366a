"""One journal file, one DuckDB database in this process: its writer and readers share it.

DuckDB opens a file once per process with one configuration: a read-write database and a
read-only one of the same file cannot be open side by side, while connections (cursors) of one
database can.  So this process keeps one entry per journal file: the writer (at most one) and
the readers.

* A reader opened while this process writes the journal reads through a cursor of the writer's
  connection and *follows* the writer: before each query (and when asked for ``next_seq``,
  ``last_seq``, ``durable_seq``, ``head_hash``) the writer's flushed events are moved into DuckDB
  and the reader takes the writer's numbering, so it sees every committed (flushed) event and
  nothing still buffered or in an open transaction.
* A writer opened while readers of this process hold the journal read-only: the readers let go
  of their files (after checking that no other process holds the journal), the writer opens, and
  the readers follow it.  If the writer cannot open, the readers take their files back.
* A writer that closes has moved everything into DuckDB; its readers then open the files
  read-only on their own (as if they had been opened after it).
* A second writer in this process is refused (JournalLockedError naming the first).

Other processes are kept out by the locks as before (journal/segment.py, journal/db.py).
"""
from __future__ import annotations

import os
import sys
import weakref

from ..errors import JournalError, JournalLockedError
from .segment import holders

_FILES = {}  # realpath of the journal -> _Entry


class _Entry:
    def __init__(self):
        self.writer = None  # weakref to the open writer
        self.readers = weakref.WeakSet()

    def open_writer(self):
        w = self.writer() if self.writer is not None else None
        return w if w is not None and not w.closed else None


def _key(path):
    return os.path.realpath(path)


def open_journal(j):
    """Open ``j`` (a Journal with a path, not yet open): its own files, or the writer's DuckDB."""
    key = _key(j.path)
    entry = _FILES.setdefault(key, _Entry())
    w = entry.open_writer()
    if j.read_only:
        if w is not None:
            _follow_writer(j, w)
            follow(j)
        else:
            j._attach()
        entry.readers.add(j)
        return
    if w is not None:
        raise JournalLockedError("the journal is held by a writer in this process (a PowerGrid or Journal "
                                 "opened on it and not closed); one journal takes one writer: close() that "
                                 "one first, or open this one read-only (gridtape.open(path))", file=j.path)
    readers = [r for r in entry.readers if not r.closed and r._link is None]
    if readers:
        others = holders(j.path + ".seg", os.getpid())
        if others:  # refuse before the readers let go of anything
            raise JournalLockedError(others[0], file=j.path)
        for r in readers:
            r._detach()
    try:
        j._attach()
    except BaseException:
        for r in readers:
            _reopen(r)
        raise
    entry.writer = weakref.ref(j)
    for r in readers:
        _follow_writer(r, j)


def _follow_writer(r, w):
    """Reader ``r`` reads through a cursor of writer ``w``'s connection from now on."""
    r._segs, r._seg, r._tail = [], None, None
    r._con = w._con.cursor()
    r._link = weakref.ref(w)


def follow(r):
    """Bring reader ``r`` up to its writer: the writer's flushed events into DuckDB, its numbering
    and hash chain copied.  A writer gone without close(): ``r`` opens the files on its own."""
    w = r._link()
    if w is None or w.closed:
        return _reopen(r)
    w._mover.ingest(w)
    r._next_seq, r._next_tx, r._last_ts, r._durable = w._next_seq, w._next_tx, w._last_ts, w._durable
    r._mover.chain = w._mover.chain


def _reopen(r):
    """Reader ``r`` opens the journal's files read-only on its own (its writer closed, or could
    not open); if even that fails, ``r`` is closed and says why."""
    if r._con is not None and r._link is not None:
        try:
            r._con.close()
        except Exception:  # noqa: BLE001 - a cursor of a connection already closed
            pass
        r._con = None
    r._link = None
    try:
        r._attach()
    except Exception as e:  # noqa: BLE001 - the reader reports it at its next use
        r.closed = True
        r._refuse(JournalError, f"the journal is closed: reopening it read-only failed: {e}")


def closed(j):
    """``j`` closed: forget it; a writer's readers open the files on their own."""
    entry = _FILES.get(_key(j.path)) if j.path is not None else None
    if entry is None:
        return
    entry.readers.discard(j)
    if entry.writer is not None and entry.writer() is j:
        entry.writer = None
        if not sys.is_finalizing():
            for r in list(entry.readers):
                if not r.closed and r._link is not None and r._link() is j:
                    _reopen(r)
    if entry.writer is None and not len(entry.readers):
        _FILES.pop(_key(j.path), None)
