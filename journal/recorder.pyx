# cython: language_level=3
"""The write side of the journal, in C: recording, transactions and ``flush()``.

Every handle write and every solve records an event and every solve flushes, so these are on
the hot path of every parameter loop.  ``record()`` checks the argument types inline (the
plain types a row can hold as they are: str/None text, int64/None element id,
None/float/int64/bool/str values) and appends one tuple to the buffer; anything else goes to
journal/args.py (numpy scalars, dict info, bad types), which converts or raises JournalError
naming the field.  ``flush()`` encodes the buffer as one frame (journal/frames.pyx; no hashing:
the chain is computed at ingest), appends it to the segment with one ``write(2)``, keeps the
frame for the next ingest and moves the numbering on.

:class:`Recorder` is complete on its own (an in-memory recorder whose flushed frames pile up
in ``_mirror``); :class:`gridtape.journal.Journal` derives from it and adds the files, the
DuckDB side and the queries through the hook protocol documented on the class.
"""
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.errno cimport EINTR, errno
from libc.math cimport floor, isinf, isnan, llround, log10, pow
from libc.stdint cimport int64_t
from libc.string cimport memcpy, strlen

include "encode.pxi"

from ..errors import JournalError, ReadOnlyError
from .args import checked, info_text, many_item
from .buffer import Refuse, Tx, count, drop_unencodable
from .columns import Typed, _consts
from .rows import plain_text

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object s)


cdef extern from "<unistd.h>" nogil:
    ssize_t write(int fd, const void* buf, size_t n)
    int fsync(int fd)


cdef extern from "Python.h":
    long long PyLong_AsLongLongAndOverflow(object v, int* overflow) except? -1


cdef extern from "<time.h>" nogil:
    ctypedef long time_t

    cdef struct timespec:
        time_t tv_sec
        long tv_nsec

    int clock_gettime(int clk, timespec* ts)
    int CLOCK_REALTIME


cdef inline int64_t now_ns() noexcept:
    """Wall-clock ns since the epoch, the clock ``time.time_ns()`` reads."""
    cdef timespec t
    clock_gettime(CLOCK_REALTIME, &t)
    return <int64_t>t.tv_sec * 1000000000 + t.tv_nsec


include "fastargs.pxi"
include "solve_info.pxi"


cdef class Recorder:
    """Records events into a buffer and flushes them as frames.

    State: ``_auto`` (the list where events outside a transaction go; a refusing stand-in,
    :class:`buffer.Refuse`, once closed or read-only), ``_buf`` (the buffer's chunks, see
    journal/buffer.py), ``_pending`` (None, or the open transaction's items), ``_mirror`` (the
    flushed frames not yet taken by an owner, ``_mirror_rows`` rows), the numbering
    (``_next_seq``, ``_next_tx``, ``_last_ts`` of the flushed rows, ``_durable``).

    Hook protocol, for the owner of the frames (the Journal):

    * ``_seg`` / ``_seg_fd``: where flush appends a frame (an object with ``size`` and
      ``failed(errno)``, and its file descriptor), or None / -1 to keep frames in memory only;
    * ``_seg_slot`` and ``_ack_bind(map)``: after a frame is written (and fsynced), flush stores
      its last seq and the segment's new length into slot ``_seg_slot`` of the acknowledgement
      record (journal/ack.py), a shared memory map: no system call;
    * ``_ingest_due()``: called by :meth:`flush`, after the frame is written, when
      ``_mirror_rows`` reaches ``ingest_every``.  The default does nothing: a bare Recorder
      keeps every frame in ``_mirror``;
    * ``path``: named in errors.
    """
    cdef public object _auto, _pending, _buf, _mirror, author, _seg, path, _tx_author, _tx_message
    cdef public object clock  # None: the wall clock; else a callable returning ns (tests, replays)
    cdef public int64_t _next_seq, _next_tx, _last_ts, _durable, _mirror_rows, ingest_every
    cdef public bint closed, read_only, sync_fsync
    cdef public int _seg_fd  # the segment's file descriptor, -1 for none (in memory, read-only, closed)
    cdef public int _seg_slot  # which pair of the acknowledgement record the segment's flushes store
    cdef int64_t* _ackp  # the record's (seq, length) pairs, NULL for none
    cdef object _ack_view  # the memoryview that keeps the map exported while _ackp points into it

    def __init__(self, author=None, *, clock=None, ingest_every=65536, sync_fsync=False):
        self.author, self.clock, self.ingest_every, self.sync_fsync = author, clock, ingest_every, sync_fsync
        self._auto = []
        self._buf = [self._auto]
        self._pending = self._tx_author = self._tx_message = self._seg = self.path = None
        self._mirror = []
        self._mirror_rows = self._next_seq = self._next_tx = self._last_ts = 0
        self._durable = -1
        self._seg_fd = -1
        self._seg_slot = 0
        self._ackp = NULL
        self._ack_view = None
        self.closed = self.read_only = False

    def _ack_bind(self, m):
        """Store acknowledgements into ``m`` (a writable map of journal/ack.py's record) from now
        on, or nowhere (None; releases the map so that it can be closed)."""
        cdef unsigned char[::1] v
        self._ackp = NULL
        self._ack_view = None
        if m is not None:
            v = m
            self._ack_view = v
            self._ackp = <int64_t*>&v[32]

    def _ingest_due(self):
        """Hook: ``ingest_every`` flushed rows wait in ``_mirror``.  A bare Recorder keeps them."""

    # --- state ------------------------------------------------------------------------------------
    def _open(self):
        if self.closed:
            raise JournalError("the journal is closed", file=self.path)

    def _writable(self):
        if self.closed:
            raise JournalError("the journal is closed", file=self.path)
        if self.read_only:
            raise ReadOnlyError("the journal is open read-only", file=self.path)

    def _refuse(self, error, message):
        """From now on every record() raises ``error(message)`` (closed or read-only)."""
        self._auto = Refuse((error, message, self.path))
        self._buf = [[]] if self.closed else []

    @property
    def next_seq(self):
        """The seq the next buffered row will get."""
        if len(<list>self._buf) == 1:
            return self._next_seq + len(self._buf[0])
        return self._next_seq + count(self._buf)[0]

    @property
    def next_tx(self):
        if len(<list>self._buf) == 1:
            return self._next_tx + len(self._buf[0])
        return self._next_tx + count(self._buf)[1]

    @property
    def last_seq(self):
        """The seq of the last recorded row (buffered or not), -1 if none."""
        return self.next_seq - 1

    @property
    def durable_seq(self):
        """The last seq that has been flushed (-1 if none)."""
        return self._durable

    @property
    def in_transaction(self):
        return self._pending is not None

    # --- recording --------------------------------------------------------------------------------
    def record_solve(self, bint converged, long iterations, double mismatch, double runtime_ms, str rebuild,
                     str algorithm, bint distributed_slack, str version):
        """Record a solve event (new = converged) with its details as compact JSON in info.

        Formatted here because it runs at every solve: iterations, the final mismatch (5
        significant digits), the runtime in ms (to the microsecond), the rebuild level, the
        algorithm, ``"distributed_slack":true`` when used, and the gridtape version.  ``rebuild``,
        ``algorithm`` and ``version`` are plain ASCII names (no JSON escaping needed)."""
        cdef char out[512]
        cdef int at = 0
        cdef long long us
        cdef bytes lv = rebuild.encode("ascii"), al = algorithm.encode("ascii"), vs = version.encode("ascii")
        if len(lv) + len(al) + len(vs) > 300 or b'"' in lv + al + vs or b"\\" in lv + al + vs:
            raise ValueError("rebuild, algorithm and version must be short plain names")
        at = put_str(out, at, '{"converged":true,"iterations":' if converged else '{"converged":false,"iterations":')
        at = put_uint(out, at, <unsigned long long>(iterations if iterations > 0 else 0), 1)
        at = put_str(out, at, ',"mismatch":')
        at = put_sci(out, at, mismatch)
        at = put_str(out, at, ',"runtime_ms":')
        us = llround(runtime_ms * 1000.0) if runtime_ms > 0 and runtime_ms < 1e15 else 0
        at = put_uint(out, at, <unsigned long long>(us // 1000), 1)
        out[at] = 46
        at = put_uint(out, at + 1, <unsigned long long>(us % 1000), 3)
        at = put_str(out, at, ',"rebuild":"')
        at = put_str(out, at, lv)
        at = put_str(out, at, '","algorithm":"')
        at = put_str(out, at, al)
        at = put_str(out, at, '",' if not distributed_slack else '","distributed_slack":true,')
        at = put_str(out, at, '"version":"')
        at = put_str(out, at, vs)
        at = put_str(out, at, '"}')
        info = PyUnicode_DecodeASCII(out, at, NULL)
        p = self._pending
        if p is None:
            a = self._auto
            row = (now_ns() if self.clock is None else self.clock(), "solve", None, None, None, None,
                   True if converged else False, info)
            if type(a) is list:
                (<list>a).append(row)
            else:
                a.append(row)
        else:
            (<list>p).append(("solve", None, None, None, None, True if converged else False, info))

    def flush(self):
        """Make every buffered event durable (one frame appended); returns durable_seq."""
        if self.closed:
            self._open()
        buf = self._buf
        if self.read_only or (len(<list>buf) == 1 and not self._auto):
            return self._durable
        try:
            frame, n, seq, tx, ts = encode_frame(buf, self._next_seq, self._next_tx, self._last_ts, self.author)
        except TextError as e:
            self._unencodable(e)  # raises JournalError
            raise
        if n:
            if self._seg_fd >= 0:
                self._append(frame, seq)
            (<list>self._mirror).append(frame)
            self._mirror_rows += n
            self._next_seq, self._next_tx, self._last_ts = seq + 1, tx + 1, ts
            self._durable = seq
        auto = []
        self._auto = auto
        self._buf = [auto]
        if self._mirror_rows >= self.ingest_every:
            self._ingest_due()
        return self._durable

    cdef int _append(self, bytes frame, int64_t seq) except -1:
        """One frame onto the segment, then its acknowledgement (last seq, segment length) into
        the record; a failed write is cut back by the Segment, which raises."""
        cdef const char* p = frame
        cdef Py_ssize_t n = len(frame), done = 0, w
        cdef int64_t size
        while done < n:
            w = write(self._seg_fd, p + done, n - done)
            if w < 0:
                if errno == EINTR:
                    continue
                self._seg.failed(errno)
            done += w
        if self.sync_fsync and fsync(self._seg_fd) != 0:
            self._seg.failed(errno)
        size = self._seg.size + n
        self._seg.size = size
        if self._ackp != NULL:
            self._ackp[2 * self._seg_slot + 1] = size
            self._ackp[2 * self._seg_slot] = seq
        return 0

    def record_many(self, event, kind, eids, field, olds, news):
        """One event per element of ``eids`` (with ``olds[k]``/``news[k]``, arrays or None).

        Outside a transaction the events form one transaction of their own, closed by a
        commit row like any multi-event transaction; inside one they join it.  The ids and
        values are copied.  Here in C for the common arguments (str texts, an int64 id array,
        float64/int64/bool value arrays or None); anything else goes through the Journal's
        journal/args.py, which converts it or raises JournalError naming the field.
        """
        cdef Py_ssize_t n
        if (self.closed or self.read_only or type(event) is not str or not is_text(kind) or not is_text(field)
                or type(eids) is not np.ndarray or cnp.PyArray_NDIM(<cnp.ndarray>eids) != 1
                or cnp.PyArray_TYPE(<cnp.ndarray>eids) != cnp.NPY_INT64
                or not (is_utf8(event) and is_utf8(kind) and is_utf8(field))):
            return self._record_converted(event, kind, eids, field, olds, news)
        n = cnp.PyArray_DIM(<cnp.ndarray>eids, 0)
        old = typed_copy(olds, n)
        new = typed_copy(news, n) if old is not None else None
        if new is None:
            return self._record_converted(event, kind, eids, field, olds, news)
        if n == 0:
            return
        item = Many(event, kind, cnp.PyArray_Cast(<cnp.ndarray>eids, cnp.NPY_INT64), field, old, new)
        p = self._pending
        if p is not None:
            (<list>p).append(item)
        else:
            self._push(Tx(now_ns() if self.clock is None else self.clock(), self.author, None, [item], None))

    def record(self, event, kind=None, eid=None, field=None, old=None, new=None, info=None):
        """Record one event: a one-event transaction, or part of the open one.  Buffered, not flushed."""
        if not (type(event) is str and is_text(kind) and is_eid(eid) and is_text(field) and is_value(old)
                and is_value(new) and is_text(info)):
            event, kind, eid, field, old, new, info = checked(event, kind, eid, field, old, new, info)
        p = self._pending
        if p is None:
            a = self._auto
            row = (now_ns() if self.clock is None else self.clock(), event, kind, eid, field, old, new, info)
            if type(a) is list:
                (<list>a).append(row)
            else:
                a.append(row)
        else:
            (<list>p).append((event, kind, eid, field, old, new, info))

    def _record_converted(self, event, kind, eids, field, olds, news):
        """record_many for any arguments: converted (journal/args.py) or JournalError."""
        self._writable()
        item = many_item(event, kind, eids, field, olds, news)
        if item is None:
            return
        if self._pending is not None:
            (<list>self._pending).append(item)
        else:
            self._push(Tx(now_ns() if self.clock is None else self.clock(), self.author, None, [item], None))

    cdef _push(self, tx):
        """A whole transaction into the buffer; later events go to a new list after it."""
        (<list>self._buf).append(tx)
        self._auto = []
        (<list>self._buf).append(self._auto)

    def _unencodable(self, e):
        """A str record() let through cannot be encoded (lone surrogate): drop the events holding
        it, keep the others buffered, raise JournalError naming the column."""
        self._buf = drop_unencodable(self._buf)
        self._auto = self._buf[len(self._buf) - 1]
        raise JournalError(f"text {e}; the events holding such text were dropped, the others stay buffered",
                           file=self.path, table="events", field=e.field) from None

    # --- transactions -----------------------------------------------------------------------------
    def begin(self, author=None, message=None):
        """Open a transaction; returns its tx number.  Its events reach the buffer at commit."""
        if self.closed or self.read_only:
            self._writable()
        if self._pending is not None:
            raise JournalError("a transaction is already open (transactions do not nest)", file=self.path)
        if author is None:
            author = self.author
        elif type(author) is not str or not is_utf8(author):
            author = plain_text(author, "author")
        if message is not None and (type(message) is not str or not is_utf8(message)):
            message = plain_text(message, "message")
        self._tx_author, self._tx_message = author, message
        self._pending = []
        return self.next_tx

    def commit(self, info=None):
        """Close the transaction with a ``commit`` row, flush, and return that row's seq."""
        if self.closed or self.read_only:
            self._writable()
        if self._pending is None:
            raise JournalError("commit without begin", file=self.path)
        if not is_text(info) or not is_utf8(info):
            info = info_text(info)
        tx = Tx(now_ns() if self.clock is None else self.clock(), self._tx_author, self._tx_message,
                self._pending, info)
        self._pending = None
        self._push(tx)
        return self.flush()

    def rollback(self):
        """Drop the open transaction's events; no seq or tx number is used up."""
        if self.closed or self.read_only:
            self._writable()
        if self._pending is None:
            raise JournalError("rollback without begin", file=self.path)
        self._pending = None

    def transaction(self, author=None, message=None, info=None):
        """``with j.transaction(...):`` commits on success, rolls back on an exception."""
        return _TxContext(self, author, message, info)


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
