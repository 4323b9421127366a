"""The Journal: buffered recording, transactions, flush to the segment, ingest into DuckDB, queries.

Life of an event: ``record()`` appends a tuple to an in-memory buffer (no checks beyond the
types, no hashing); ``flush()`` numbers the buffered rows and appends them as one
checksummed frame to ``<path>.seg`` (one ``os.write``; ``sync="fsync"`` also fsyncs); once
flush returns they survive a SIGKILL.  When ``ingest_every`` events are waiting, a background
thread (the mover) chains their hashes, inserts them into DuckDB in one transaction and empties
their segment while flushes go on into the other segment file (``<path>.seg2``); every query,
``ingest()``, ``head_hash`` and close wait for it and move the rest in the foreground.  A
journal closed while the interpreter shuts down leaves its flushed events in the segment
files (the next open moves them).  See docs/journal.md.
"""
from __future__ import annotations

import atexit
import getpass
import hashlib
import json
import os
import sys
import threading
import weakref
from time import time_ns

import numpy as np
import pyarrow as pa

from ..errors import JournalCorruptError, JournalError, ReadOnlyError
from . import buffer, db, frames, query
from .buffer import Many, Tx
from .chain import ZERO
from .columns import eid_array, typed_array
from .rows import plain, plain_eid, plain_text, utf8_ok
from .recorder import Recorder
from .segment import Segment
from .verify import Checker

_OPEN = weakref.WeakSet()  # journals to flush at interpreter exit
SEGMENTS = (".seg", ".seg2")  # the writer flushes into one while the mover empties the other


def _info(v):
    """info as stored: None, a str, or compact JSON of a dict/list."""
    if v is None or isinstance(v, str):
        return plain_text(v, "info")
    if isinstance(v, (dict, list, tuple)):
        try:
            return json.dumps(v, separators=(",", ":"), default=_json_default)
        except (TypeError, ValueError) as e:
            raise JournalError(f"info is not JSON-serializable: {e}", table="events", field="info") from None
    raise JournalError(f"info must be a str, a dict or None, not {type(v).__name__}", table="events", field="info")


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON-serializable")


def _checked(event, kind, eid, field, old, new, info):
    """record() arguments converted to plain types (numpy scalars, dict info) or JournalError."""
    return (plain_text(event, "event", required=True), plain_text(kind, "kind"), plain_eid(eid),
            plain_text(field, "field"), plain(old, "old"), plain(new, "new"), _info(info))


class _Refuse:
    """Stands in for the buffer of a closed or read-only journal: appending raises."""
    __slots__ = ("error",)

    def __init__(self, error):
        self.error = error

    def append(self, _row):
        raise self.error[0](self.error[1], file=self.error[2])


class Journal(Recorder):
    """An append-only, hash-chained log of events in DuckDB.

    ``Journal(path)`` opens or creates ``path`` (DuckDB) and ``path + ".seg"`` (the segment);
    ``Journal()`` keeps everything in memory.  ``read_only=True`` opens an existing journal
    without writing anything.  ``sync="fsync"`` makes every flush survive a power loss,
    ``"os"`` (default) a process kill.
    """

    def __init__(self, path=None, *, read_only=False, sync="os", ingest_every=65536, author=None, clock=None,
                 background=True):
        if sync not in ("os", "fsync"):
            raise JournalError(f"sync must be 'os' or 'fsync', not {sync!r}", field="sync")
        if isinstance(ingest_every, bool) or not isinstance(ingest_every, (int, np.integer)) or ingest_every < 1:
            raise JournalError(f"ingest_every must be a positive int, not {ingest_every!r}", field="ingest_every")
        if clock is not None and not callable(clock):
            raise JournalError(f"clock must be a callable returning ns since the epoch, not {clock!r}", field="clock")
        self.clock = clock
        self.path = None if path is None else os.fspath(path)
        self.read_only = bool(read_only)
        self.sync = sync
        self.sync_fsync = sync == "fsync"
        self.ingest_every = int(ingest_every)
        self.background = bool(background)  # ingest in a thread (the mover) instead of inside flush
        self._mover = None  # the running mover thread, if any
        self._moved = None  # what the last mover left: (True, last hash) or (False, (frames, rows, exception))
        self._chain = ZERO  # the hash of the last row in DuckDB (read-only: of the segment's tail)
        self._segs = []  # writer: both segment files; the active one is self._seg
        self.author = plain_text(author, "author") if author is not None else _user()
        if self.author is not None and not utf8_ok(self.author):
            self.author = self.author.encode("utf-8", "replace").decode("utf-8")
        self.closed = True
        self._con = self._seg = None
        self._pending = None  # list of items while a transaction is open
        self._tx_author = self._tx_message = None
        self._mirror, self._mirror_rows = [], 0  # flushed frames not yet in DuckDB
        self._tail = None  # read-only: the segment's rows not in DuckDB, as an Arrow table
        if self.path is None and self.read_only:
            raise JournalError("an in-memory journal cannot be read-only", field="read_only")
        if self.path is not None:
            for suffix in SEGMENTS:
                self._segs.append(Segment(self.path + suffix, self.read_only, self.path))
            self._seg = self._segs[0]
        try:
            self._con = db.connect(self.path, self.read_only)
            if not self.read_only:
                db.create(self._con, self.path)
            db.check(self._con, self.path)
            self._resume()
        except BaseException:
            if self._con is not None:
                self._con.close()
            for seg in self._segs:
                seg.close()
            raise
        self.closed = False
        self._seg_fd = -1 if self._seg is None or self.read_only else self._seg.fd
        if self.read_only:
            self._auto = _Refuse((ReadOnlyError, "the journal is open read-only", self.path))
        else:
            self._auto = []
            _OPEN.add(self)
        self._buf = [] if self.read_only else [self._auto]

    # --- opening ----------------------------------------------------------------------------------
    def _resume(self):
        """Continue numbering after the last row (DuckDB, then the segment tail)."""
        last = db.last_row(self._con)
        self._next_seq, self._next_tx, self._last_ts, self._chain = \
            (0, 0, 0, ZERO) if last is None else (last[0] + 1, last[1] + 1, last[2], bytes(last[3]))
        head = self._chain  # GTJ2 frames (gridtape 0.3) carry their hashes: they must chain on it
        found, size = [], 0
        for seg in self._segs:  # frames of both segment files, in seq order
            got, good, n = seg.read()
            if good < n and not self.read_only:
                seg.truncate(good, fsync=self.sync == "fsync")  # a torn, never acknowledged frame
            found += got
            size += n
        found.sort(key=lambda f: f[0][0])
        for (first, last_seq, last_tx, last_ts, prev, last, n), frame in found:
            if last_seq < self._next_seq:
                continue  # already moved into DuckDB before a crash emptied the segment
            if first != self._next_seq or (prev is not None and prev != head):
                raise JournalCorruptError(f"segment frame starts at seq {first} (expected {self._next_seq}) or "
                                          "does not chain on the previous row", file=self.path, row=self._next_seq)
            head = last  # None after a GTJ3 frame: a GTJ2 frame cannot follow one
            self._append_mirror(frame, n, last_seq, last_tx, last_ts)
        self._durable = self._next_seq - 1
        if self.read_only:
            self._tail, self._chain = db.frames_table(self._mirror, self._chain)
            self._con.register("_gt_tail", self._tail)
        elif found or size:
            self._ingest()

    # --- recording --------------------------------------------------------------------------------
    def _now(self) -> int:
        return time_ns() if self.clock is None else self.clock()

    # record() is Recorder.record (journal/recorder.pyx): the hot path, in C
    @staticmethod
    def _checked(event, kind, eid, field, old, new, info):
        """record() arguments converted to plain types (numpy scalars, dict info) or JournalError."""
        return _checked(event, kind, eid, field, old, new, info)

    # record_many() is Recorder.record_many (journal/recorder.pyx) for the common arguments
    def _record_many(self, event, kind, eids, field, olds, news):
        """record_many for any arguments: converted (lists, numpy scalars, other dtypes, object
        arrays) or JournalError naming the field."""
        self._writable()
        event, kind, field = plain_text(event, "event", True), plain_text(kind, "kind"), plain_text(field, "field")
        ids = eid_array(eids)
        n = len(ids)
        item = Many(event, kind, ids, field, typed_array(olds, "old", n), typed_array(news, "new", n))
        if n == 0:
            return
        if self._pending is not None:
            self._pending.append(item)
        else:
            self._push(Tx(self._now(), self.author, None, [item], None))

    def _push(self, tx):
        self._buf.append(tx)
        self._auto = []
        self._buf.append(self._auto)

    # --- transactions -----------------------------------------------------------------------------
    def begin(self, author=None, message=None) -> int:
        """Open a transaction; returns its tx number.  Its events reach the buffer at commit."""
        self._writable()
        if self._pending is not None:
            raise JournalError("a transaction is already open (transactions do not nest)", file=self.path)
        author = self.author if author is None else plain_text(author, "author")
        message = plain_text(message, "message")
        self._tx_author, self._tx_message = author, message
        self._pending = []
        return self.next_tx

    @property
    def in_transaction(self) -> bool:
        return self._pending is not None

    def commit(self, info=None) -> int:
        """Close the transaction with a ``commit`` row, flush, and return that row's seq."""
        self._writable()
        if self._pending is None:
            raise JournalError("commit without begin", file=self.path)
        tx = Tx(self._now(), self._tx_author, self._tx_message, self._pending, _info(info))
        self._pending = None
        self._push(tx)
        return self.flush()

    def rollback(self):
        """Drop the open transaction's events; no seq or tx number is used up."""
        self._writable()
        if self._pending is None:
            raise JournalError("rollback without begin", file=self.path)
        self._pending = None

    def transaction(self, author=None, message=None, info=None):
        """``with j.transaction(...):`` commits on success, rolls back on an exception."""
        return _TxContext(self, author, message, info)

    # --- flushing ---------------------------------------------------------------------------------
    # flush() is Recorder.flush (journal/recorder.pyx): encode one frame, write it, move on
    def _unencodable(self, e):
        """A str record() let through cannot be encoded (lone surrogate): drop the events holding
        it, keep the others buffered, raise JournalError naming the column."""
        self._buf = buffer.drop_unencodable(self._buf)
        self._auto = self._buf[-1]
        raise JournalError(f"text {e}; the events holding such text were dropped, the others stay buffered",
                           file=self.path, table="events", field=e.field) from None

    def _append_mirror(self, frame, n, seq, tx, ts):
        """Count a flushed frame's rows as durable and keep the frame for the next ingest."""
        self._mirror.append(frame)
        self._mirror_rows += n
        self._next_seq, self._next_tx, self._last_ts = seq + 1, tx + 1, ts
        self._durable = seq

    def _ingest(self):
        """Move every flushed event into DuckDB (one transaction, in the foreground; their hashes
        chained on the last row's there), then empty the segment files.  Waits for the mover
        first; a batch it could not move is retried here."""
        self._settle(raise_error=False)
        if self._mirror:
            table, last = db.frames_table(self._mirror, self._chain)
            db.insert(self._con, table, self.path)
            self._chain = last
            self._mirror, self._mirror_rows = [], 0
        for seg in self._segs:
            if seg.size:
                seg.truncate(0)

    def _ingest_due(self):
        """``ingest_every`` events wait (called by flush): hand them to a mover thread, which
        inserts them while later flushes go to the other segment file; or, when the mover is
        off or still busy with the previous batch, move them here (the mover: only up to eight
        batches behind)."""
        m = self._mover
        if m is not None:
            if m.is_alive() and self._mirror_rows < 8 * self.ingest_every:
                return
            self._settle()
        if not self.background:
            return self._ingest()
        other = None
        if self._segs:
            other = self._segs[1] if self._seg is self._segs[0] else self._segs[0]
            if other.size:  # still holds a batch that was not moved: do it all here
                return self._ingest()
        batch, rows, seg = self._mirror, self._mirror_rows, self._seg
        self._mirror, self._mirror_rows = [], 0
        if other is not None:
            self._seg, self._seg_fd = other, other.fd
        con = self._con.cursor()  # its own connection to the database, made in this thread
        self._mover = threading.Thread(target=self._move, args=(con, batch, rows, seg, self._chain),
                                       name="gridtape-journal-mover")
        self._mover.start()

    def _move(self, con, batch, rows, seg, prev):
        """The mover thread: one batch of frames hashed (chained on ``prev``) and inserted into
        DuckDB (its own cursor), then ``seg`` emptied."""
        try:
            try:
                table, last = db.frames_table(batch, prev)
                db.insert(con, table, self.path)
            finally:
                con.close()
            self._moved = (True, last)  # in DuckDB: the chain goes on from it, even if the truncate fails
            if seg is not None:
                seg.truncate(0)
        except BaseException as e:  # noqa: BLE001 - handed to the foreground by _settle
            if self._moved is None:
                self._moved = (False, (batch, rows, e))

    def _settle(self, raise_error=True):
        """Wait for the mover.  A batch it failed to move goes back in front of the ones waiting
        (still durable in its segment file); its error is raised unless ``raise_error`` is off."""
        m = self._mover
        if m is None:
            return
        m.join()
        self._mover = None
        res, self._moved = self._moved, None
        if res is None:
            return
        moved, got = res
        if moved:
            self._chain = got
            return
        batch, rows, e = got
        self._mirror[:0] = batch
        self._mirror_rows += rows
        if raise_error:
            if isinstance(e, JournalError):
                raise e
            raise JournalError(f"cannot move events into DuckDB: {e}", file=self.path, table="events") from e

    def ingest(self):
        """Flush, then move everything flushed into DuckDB."""
        self._writable()
        self.flush()
        self._ingest()

    # --- closing ----------------------------------------------------------------------------------
    def close(self):
        """Flush, ingest and close (an open transaction is dropped).  Idempotent.

        While the interpreter shuts down (a journal closed from a finalizer after the atexit
        hooks ran), the flushed events are left in the segment files, durable, for the next
        open to move: DuckDB cannot take an Arrow table then (it imports modules)."""
        if self.closed:
            return
        try:
            if not self.read_only:
                self._pending = None
                self.flush()
                if not sys.is_finalizing():
                    try:
                        self._ingest()
                    except ImportError:  # "sys.meta_path is None, Python is likely shutting down"
                        if self.path is None:
                            raise
        finally:
            self._settle(raise_error=False)
            self.closed = True
            self._seg_fd = -1
            _OPEN.discard(self)
            self._auto = _Refuse((JournalError, "the journal is closed", self.path))
            self._buf = [[]]
            self._con.close()
            for seg in self._segs:
                seg.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if not self.closed and not self.read_only:
                self.flush()
        except Exception:  # noqa: BLE001 - nothing sensible to do in a finalizer
            pass

    def __repr__(self):
        where = self.path or "memory"
        state = "closed" if self.closed else ("read-only" if self.read_only else "open")
        return f"<Journal {where} {state} next_seq={self.next_seq if not self.closed else '?'}>"

    # --- state ------------------------------------------------------------------------------------
    @property
    def next_seq(self) -> int:
        """The seq the next buffered row will get."""
        if len(self._buf) == 1:
            return self._next_seq + len(self._buf[0])
        return self._next_seq + buffer.count(self._buf)[0]

    @property
    def next_tx(self) -> int:
        if len(self._buf) == 1:
            return self._next_tx + len(self._buf[0])
        return self._next_tx + buffer.count(self._buf)[1]

    @property
    def last_seq(self) -> int:
        """The seq of the last recorded row (buffered or not), -1 if none."""
        return self.next_seq - 1

    @property
    def durable_seq(self) -> int:
        """The last seq that has been flushed (-1 if none)."""
        return self._durable

    @property
    def head_hash(self) -> str:
        """Hex hash of the last flushed row: note it somewhere to detect a cut-off tail later.
        (Hashes are computed at ingest, so this flushes and ingests first, as queries do.)"""
        if not self.closed and not self.read_only:
            self.flush()
            self._ingest()
        return self._chain.hex()

    def _open(self):
        if self.closed:
            raise JournalError("the journal is closed", file=self.path)

    def _writable(self):
        self._open()
        if self.read_only:
            raise ReadOnlyError("the journal is open read-only", file=self.path)

    # --- blobs ------------------------------------------------------------------------------------
    def put_blob(self, data, name=None) -> str:
        """Store ``data`` once (by sha256) in its own DuckDB transaction; returns the sha256 hex."""
        self._writable()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise JournalError(f"a blob is bytes, not {type(data).__name__}", table="blobs", field="data")
        data = bytes(data)
        name = plain_text(name, "name")
        sha = hashlib.sha256(data).hexdigest()
        try:
            self._con.execute("INSERT INTO blobs SELECT ?, ?, ?, ? WHERE NOT EXISTS "
                              "(SELECT 1 FROM blobs WHERE sha256 = ?)", [sha, name, len(data), data, sha])
        except Exception as e:  # duckdb.Error
            raise JournalError(f"cannot store the blob: {e}", file=self.path, table="blobs") from None
        return sha

    def get_blob(self, sha) -> bytes:
        self._open()
        got = db.one(self._con, "SELECT data FROM blobs WHERE sha256 = ?", [str(sha)])
        if got is None:
            raise JournalError(f"no blob {sha!r}", file=self.path, table="blobs", field="sha256")
        return bytes(got[0])

    # --- queries ----------------------------------------------------------------------------------
    def _source(self) -> str:
        """The events relation, brought up to date (flush + ingest, or the read-only tail)."""
        self._open()
        if self.read_only:
            return "(SELECT * FROM events UNION ALL SELECT * FROM _gt_tail)"
        self.flush()
        self._ingest()
        return "events"

    def _select(self, where="", params=()):
        src = self._source()
        return query.frame(db.fetch(self._con, f"SELECT * FROM {src} AS e{where} ORDER BY seq", params))

    def log(self, since=None, until=None, author=None, kind=None, event=None, tx=None):
        """Events ordered by seq.  ``since``/``until`` (inclusive) are seqs (int) or times
        (datetime, Timestamp or ISO string; naive means UTC); the others match a value or a list."""
        where, params = query.log_where(since, until, author, kind, event, tx)
        return self._select(where, params)

    def history(self, kind, eid, field):
        """Every event on cell (kind, eid, field): the ones naming the field, and the ones on the
        whole element (field NULL: add, remove, ...), ordered by seq."""
        kind, field = plain_text(kind, "kind", True), plain_text(field, "field", True)
        return self._select(" WHERE kind = ? AND eid = ? AND (field = ? OR field IS NULL)",
                            [kind, plain_eid(eid), field])

    def tx_events(self, tx):
        """The rows of transaction ``tx`` (its commit row last)."""
        return self.log(tx=tx)

    def count(self) -> int:
        src = self._source()
        return int(db.one(self._con, f"SELECT count(*) FROM {src}")[0])

    def meta(self) -> dict:
        self._open()
        return db.meta(self._con)

    # --- verification -----------------------------------------------------------------------------
    def verify(self, batch=262144) -> int:
        """Check every row: seq gap-free from 0, ts non-decreasing, tx numbering and commit rows,
        hash chain.  Returns the number of rows; raises JournalCorruptError(row=first bad seq)."""
        src = self._source()
        state = Checker(self.path)
        for rb in db.batches(self._con, f"SELECT * FROM {src} ORDER BY seq", batch):
            state.check(pa.Table.from_batches([rb]))
        state.finish()
        return state.n


class _TxContext:
    def __init__(self, j, author, message, info):
        self.j, self.author, self.message, self.info = j, author, message, info

    def __enter__(self):
        return self.j.begin(self.author, self.message)

    def __exit__(self, et, ev, tb):
        if et is None:
            self.j.commit(self.info)
        elif self.j.in_transaction:
            self.j.rollback()


def _user():
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _flush_all():
    for j in list(_OPEN):
        try:
            j.background = False  # no new mover at exit
            j.flush()
        except Exception:  # noqa: BLE001 - at exit, flush what can be flushed
            pass
        try:
            j._settle(raise_error=False)  # let a running mover finish its transaction
        except Exception:  # noqa: BLE001
            pass


atexit.register(_flush_all)
