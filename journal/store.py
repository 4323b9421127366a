"""The Journal: a Recorder (journal/recorder.pyx) with files, DuckDB and queries.

Life of an event: ``record()`` appends a tuple to an in-memory buffer (no checks beyond the
types, no hashing); ``flush()`` numbers the buffered rows and appends them as one
checksummed frame to ``<path>.seg`` (one ``os.write``; ``sync="fsync"`` also fsyncs); once
flush returns they survive a SIGKILL.  When ``ingest_every`` events are waiting, the mover
(journal/mover.py, the journal's one thread) chains their hashes, inserts them into DuckDB in
one transaction and empties their segment while flushes go on into the other segment file
(``<path>.seg2``); every query, ``ingest()``, ``head_hash`` and close wait for it and move the
rest in the foreground.  A journal closed while the interpreter shuts down leaves its flushed
events in the segment files (the next open moves them).  See docs/journal.md.
"""
from __future__ import annotations

import hashlib
import os
import sys

import numpy as np
import pyarrow as pa

from ..errors import JournalCorruptError, JournalError, ReadOnlyError
from . import ack, db, query, shared
from .args import author_name
from .chain import ZERO
from .mover import Mover, track
from .recorder import Recorder
from .rows import plain_eid, plain_text
from .segment import Segment
from .verify import Checker

SEGMENTS = (".seg", ".seg2")  # the writer flushes into one while the mover empties the other


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
        Recorder.__init__(self, author_name(author), clock=clock, ingest_every=int(ingest_every),
                          sync_fsync=sync == "fsync")
        self.path = None if path is None else os.fspath(path)
        self.read_only = bool(read_only)
        self.sync = sync
        self._mover = Mover(self.path, background)  # the journal's thread and its shutdown
        self._segs = []  # writer: both segment files; the active one is self._seg
        self.closed = True
        self._con = None
        self._tail = None  # read-only: the segment's rows not in DuckDB, as an Arrow table
        self._ack = None  # writer: the map of the acknowledgement record (journal/ack.py)
        if self.path is None and self.read_only:
            raise JournalError("an in-memory journal cannot be read-only", field="read_only")
        self._link = None  # a reader of a journal this process writes: weakref to that writer
        if self.path is None:
            self._attach()
        else:
            shared.open_journal(self)  # its own files, or the writer's DuckDB in this process
        self.closed = False
        if self.read_only:
            self._refuse(ReadOnlyError, "the journal is open read-only")
        else:
            track(self)

    # --- opening ----------------------------------------------------------------------------------
    def _attach(self):
        """Open this journal's own files: lock the segments, connect DuckDB, resume the numbering
        (and, for a writer, start the acknowledgement record).  Leaves nothing open on failure."""
        self._segs, self._seg, self._con, self._link = [], None, None, None
        try:
            had_segs = new = False
            if self.path is not None:
                had_segs = any(os.path.exists(self.path + suffix) for suffix in SEGMENTS)
                new = not self.read_only and not os.path.exists(self.path)
                for suffix in SEGMENTS:
                    self._segs.append(Segment(self.path + suffix, self.read_only, self.path))
                self._seg = self._segs[0]
            self._con = db.connect(self.path, self.read_only)
            if not self.read_only:
                db.hold_checkpoint(self._con, self.path)  # no byte of DuckDB's files changes until _resume's checks pass
                meta = None
                if new:  # its record first, then the journal, marked as keeping one, in one transaction
                    meta = db.new_meta()
                    self._start_ack(meta["created"])
                    meta[ack.MARK] = "1"
                db.create(self._con, self.path, meta)
            db.check(self._con, self.path)
            meta = db.meta(self._con)
            created, marked = meta.get("created"), meta.get(ack.MARK) == "1"
            self._resume(created, marked and had_segs)
            if self.path is not None and not self.read_only and not new:  # both segments are empty now
                self._start_ack(created)
                if not marked:  # the record exists now: from here on the journal must have one
                    db.set_meta(self._con, ack.MARK, "1", self.path)
        except BaseException:
            self._detach()
            raise
        self._seg_fd = -1 if self._seg is None or self.read_only else self._seg.fd

    def _start_ack(self, created):
        """Write this writer's acknowledgement record (both segments empty) and map it."""
        try:
            self._ack = ack.create(self.path, created, self.sync == "fsync", [(self._durable, 0), (-1, 0)])
        except OSError as e:
            raise JournalError(f"cannot write the acknowledgement record: {e.strerror}",
                               file=self.path + ack.SUFFIX) from None
        self._seg_slot = 0
        self._ack_bind(self._ack)

    def _detach(self):
        """Close this journal's connection and files (its own, or its cursor of a writer's)."""
        self._seg_fd = -1
        if self._con is not None:
            self._con.close()
            self._con = None
        for seg in self._segs:
            seg.close()
        self._segs, self._seg, self._tail, self._link = [], None, None, None
        if self._ack is not None:
            self._ack_bind(None)
            try:
                self._ack.flush()  # msync: the record as durable as the frames
            except OSError:
                pass
            self._ack.close()
            self._ack = None

    def _resume(self, created=None, must_ack=False):
        """Continue numbering after the last row (DuckDB, then the segment tail); the events
        found must reach the acknowledgement record's seq (journal/ack.py), whose file must be
        whole (and there, ``must_ack``: the journal keeps one and has segment files)."""
        last = db.last_row(self._con)
        mv = self._mover
        self._next_seq, self._next_tx, self._last_ts, mv.chain = \
            (0, 0, 0, ZERO) if last is None else (last[0] + 1, last[1] + 1, last[2], bytes(last[3]))
        head = mv.chain  # GTJ2 frames (gridtape 0.3) carry their hashes: they must chain on it
        reads = [(seg,) + seg.read() for seg in self._segs]  # reads only: decide before any change
        found = sorted((f for r in reads for f in r[1]), key=lambda f: f[0][0])
        size = sum(r[3] for r in reads)
        torn = [r for r in reads if r[2] < r[3]]
        for seg, got, good, n, first in torn:  # a tear is only the newest append, acknowledged by no one
            newer = [f for r in reads if r[0] is not seg for f in r[1]]
            if len(torn) > 1 or (got and newer and max(f[0][1] for f in newer) > got[-1][0][1]):
                self._torn_damage(seg, good, "acknowledged frames follow it in the other segment")
        for (first, last_seq, last_tx, last_ts, prev, last, n), frame in found:
            if last_seq < self._next_seq:
                continue  # already moved into DuckDB before a crash emptied the segment
            if first != self._next_seq or (prev is not None and prev != head):
                for seg, got, good, n_, tfirst in torn:
                    self._torn_damage(seg, good, f"the frames after it (from seq {first}) need the seqs it held")
                raise JournalCorruptError(f"segment frame starts at seq {first} (expected {self._next_seq}) or "
                                          "does not chain on the previous row", file=self.path, row=self._next_seq)
            head = last  # None after a GTJ3 frame: a GTJ2 frame cannot follow one
            self._append_mirror(frame, n, last_seq, last_tx, last_ts)
        for seg, got, good, n, first in torn:
            if first is not None and first != self._next_seq:
                self._torn_damage(seg, good, f"its header names seq {first}, the next append is seq {self._next_seq}")
        acked, fault = ack.read(self.path, created) if self.path is not None else (None, None)
        if fault is not None and (must_ack or fault not in (ack.MISSING, ack.FOREIGN)):
            self._ack_damage(fault)
        if acked is not None and acked.binding() and acked.seq >= self._next_seq:
            seg, got, good, n, first = reads[acked.slot]
            raise JournalCorruptError(
                f"acknowledged events are missing: the segment was acknowledged up to seq {acked.seq} at "
                f"{acked.slots[acked.slot][1]} bytes ({os.path.basename(self.path + ack.SUFFIX)}), it holds {n} "
                f"bytes and the events found end at seq {self._next_seq - 1}; the file was truncated; nothing "
                "was changed (`gridtape recover` salvages every frame that verifies)",
                file=seg.path, row=self._next_seq, offset=good)
        if not self.read_only:
            if self.path is not None:
                db.release_checkpoint(self._con)  # the checks passed: changes may reach the files
            for seg, got, good, n, first in torn:
                seg.truncate(good, fsync=self.sync == "fsync")  # a torn, never acknowledged append
        self._durable = self._next_seq - 1
        if self.read_only:
            self._tail, mv.chain = db.frames_table(self._mirror, mv.chain)
            self._con.register("_gt_tail", self._tail)
        elif found or size:
            mv.ingest(self)

    def _ack_damage(self, fault):
        name = os.path.basename(self.path + ack.SUFFIX)
        raise JournalCorruptError(
            f"damaged acknowledgement record {name}: {fault}; without it acknowledged events cut off "
            f"the segments cannot be told from a clean end (the journal keeps one: meta {ack.MARK!r}); nothing "
            "was changed (`gridtape recover` salvages every event that verifies; a copy of a journal takes all "
            "its files: .duckdb, .wal, .seg, .seg2, .ack)", file=self.path + ack.SUFFIX, row=self._next_seq)

    def _torn_damage(self, seg, offset, why):
        raise JournalCorruptError(f"damaged frame at byte {offset} of the segment: cut short, but it is not the "
                                  f"newest append ({why}); nothing was changed (`gridtape recover` salvages every "
                                  "frame that verifies)", file=seg.path, row=self._next_seq, offset=offset)

    # --- flushing and ingest ----------------------------------------------------------------------
    # record(), record_many(), record_solve(), begin(), commit(), rollback(), flush(): Recorder
    def _append_mirror(self, frame, n, seq, tx, ts):
        """Count a flushed frame's rows as durable and keep the frame for the next ingest."""
        self._mirror.append(frame)
        self._mirror_rows += n
        self._next_seq, self._next_tx, self._last_ts = seq + 1, tx + 1, ts
        self._durable = seq

    def _ingest(self):
        """Move every flushed event into DuckDB now (waiting for the mover first)."""
        self._mover.ingest(self)

    def _ingest_due(self):
        """The Recorder's hook: ``ingest_every`` flushed events wait; the mover takes them."""
        self._mover.due(self)

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
            self._mover.stop(self)
            self.closed = True
            self._refuse(JournalError, "the journal is closed")
            self._detach()
            shared.closed(self)

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

    # --- state (next_tx, in_transaction: Recorder) -----------------------------------------------
    # a reader of a journal this process writes follows the writer's flushed events (shared.follow)
    @property
    def next_seq(self):
        """The seq the next buffered row will get."""
        if self._link is not None:
            shared.follow(self)
        return Recorder.next_seq.__get__(self)

    @property
    def last_seq(self):
        """The seq of the last recorded row (buffered or not), -1 if none."""
        return self.next_seq - 1

    @property
    def durable_seq(self):
        """The last seq that has been flushed (-1 if none)."""
        if self._link is not None:
            shared.follow(self)
        return self._durable

    def _open(self):
        Recorder._open(self)
        if self._link is not None:
            shared.follow(self)

    @property
    def head_hash(self) -> str:
        """Hex hash of the last flushed row: note it somewhere to detect a cut-off tail later.
        (Hashes are computed at ingest, so this flushes and ingests first, as queries do.)"""
        if not self.closed and not self.read_only:
            self.flush()
            self._ingest()
        elif self._link is not None:
            shared.follow(self)
        return self._mover.chain.hex()

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
            if self._tail is None or not self._tail.num_rows:  # none: following a writer (above)
                return "events"
            return "(SELECT * FROM events UNION ALL SELECT * FROM _gt_tail)"
        self.flush()
        self._ingest()
        return "events"

    def _select(self, where="", params=(), columns=None):
        columns, sql = query.columns_sql(columns)
        src = self._source()
        t = db.fetch(self._con, f"SELECT {sql} FROM {src} AS e{where}", params)
        return query.frame(query.in_seq_order(t), columns)

    def log(self, since=None, until=None, author=None, kind=None, event=None, tx=None, columns=None):
        """Events ordered by seq.  ``since``/``until`` (inclusive) are seqs (int) or times
        (datetime, Timestamp or ISO string; naive means UTC); the others match a value or a list.
        ``columns`` (a list of the DataFrame's column names) fetches and decodes only those:
        replaying a tail needs ``["seq", "event", "kind", "eid", "field", "new", "info"]``."""
        where, params = query.log_where(since, until, author, kind, event, tx)
        return self._select(where, params, columns)

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

    @staticmethod
    def recover(path, out=None, *, in_place=False) -> dict:
        """Salvage every event of a damaged journal that verifies into a new journal (``out``,
        default ``<path>.recovered``; ``in_place=True``: under ``path`` after renaming its files to
        ``*.damaged-<time>`` backups) and write a report of what was lost to
        ``<out>.recovery.json``; returns the report (journal/recover.py)."""
        from .recover import recover
        return recover(path, out, in_place=in_place)

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
