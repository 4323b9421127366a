# cython: language_level=3
"""The hot front of the journal: ``record()`` and ``flush()`` in C.

Every handle write and every solve records an event and every solve flushes, so these two are
on the hot path of every parameter loop.  ``record()`` checks the argument types inline (the
plain types a row can hold as they are: str/None text, int64/None element id,
None/float/int64/bool/str values) and appends one tuple to the buffer; anything else goes to
the Journal's ``_checked`` (numpy scalars, dict info, bad types), which converts or raises
JournalError naming the field.  ``flush()`` encodes the buffer as one frame
(journal/frames.pyx), appends it to the segment with one ``write(2)``, and moves the numbering
on.  :class:`gridtape.journal.Journal` derives from :class:`Recorder` and does the rest.
"""
from libc.errno cimport EINTR, errno
from libc.stdint cimport int64_t

from .frames import TextError, encode


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


cdef inline bint is_int64(object v):
    cdef int overflow = 0
    PyLong_AsLongLongAndOverflow(v, &overflow)
    return overflow == 0


cdef inline bint is_text(object v):
    return v is None or type(v) is str


cdef inline bint is_eid(object v):
    return v is None or (type(v) is int and is_int64(v))


cdef inline bint is_value(object v):
    t = type(v)
    return v is None or t is float or t is str or t is bool or (t is int and is_int64(v))


cdef class Recorder:
    """Holds the buffer ``record()`` appends to: ``_auto`` (events outside a transaction; a
    refusing stand-in when the journal is closed or read-only) and ``_pending`` (None, or the
    open transaction's events)."""
    cdef public object _auto, _pending, _buf, _mirror, _last_hash, author, _seg
    cdef public object clock  # None: the wall clock; else a callable returning ns (tests, replays)
    cdef public int64_t _next_seq, _next_tx, _last_ts, _durable, _mirror_rows, ingest_every
    cdef public bint closed, read_only, sync_fsync
    cdef public int _seg_fd  # the segment's file descriptor, -1 for none (in memory, read-only, closed)

    def flush(self):
        """Make every buffered event durable (one frame appended); returns durable_seq."""
        if self.closed:
            self._open()
        buf = self._buf
        if self.read_only or (len(<list>buf) == 1 and not self._auto):
            return self._durable
        try:
            frame, n, seq, tx, ts, last = encode(buf, self._next_seq, self._next_tx, self._last_ts, self.author,
                                                 self._last_hash)
        except TextError as e:
            self._unencodable(e)
            raise
        if n:
            if self._seg_fd >= 0:
                self._append(frame)
            (<list>self._mirror).append(frame)
            self._mirror_rows += n
            self._next_seq, self._next_tx, self._last_ts, self._last_hash = seq + 1, tx + 1, ts, last
            self._durable = seq
        auto = []
        self._auto = auto
        self._buf = [auto]
        if self._mirror_rows >= self.ingest_every:
            self._ingest()
        return self._durable

    cdef int _append(self, bytes frame) except -1:
        """One frame onto the segment; a failed write is cut back by the Segment, which raises."""
        cdef const char* p = frame
        cdef Py_ssize_t n = len(frame), done = 0, w
        while done < n:
            w = write(self._seg_fd, p + done, n - done)
            if w < 0:
                if errno == EINTR:
                    continue
                self._seg.failed(errno)
            done += w
        if self.sync_fsync and fsync(self._seg_fd) != 0:
            self._seg.failed(errno)
        self._seg.size += n
        return 0

    def record(self, event, kind=None, eid=None, field=None, old=None, new=None, info=None):
        """Record one event: a one-event transaction, or part of the open one.  Buffered, not flushed."""
        if not (type(event) is str and is_text(kind) and is_eid(eid) and is_text(field) and is_value(old)
                and is_value(new) and is_text(info)):
            event, kind, eid, field, old, new, info = self._checked(event, kind, eid, field, old, new, info)
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
