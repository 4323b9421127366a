# cython: language_level=3
"""Segment frames: the flushed events as bytes, their hash chain, and their columns for ingest.

A flush turns the buffered events into one *frame*, in C: it numbers the rows, writes each
row's canonical bytes (journal/chain.py defines them; that pure-Python module is the
reference the tests hold this one to), and chains ``blake2b(canonical + previous hash)`` with
our own BLAKE2b (blake2b.h).  The frame is what the segment file stores and what the journal
keeps until ingest, so a flush is one pass over the events plus one ``os.write``::

    b"GTJ2" | uint32 payload length | payload
    payload = uint32 n | int64 first_seq, last_seq, last_tx, last_ts | 16-byte hash before
              the first row | n canonical rows | n 16-byte hashes

A frame checks itself: :func:`scan` re-walks its rows and re-derives its hashes from the hash
it starts from, so a torn or damaged frame is told apart from a whole one without a checksum.
:func:`decode` turns frames into Arrow-ready column buffers (no Python object per row).
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.long cimport PyLong_AsLongLong
from libc.stdint cimport int8_t, int64_t, uint8_t, uint32_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcmp, memcpy, memset

import numpy as np

from .buffer import Many

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size)  # NULL + exception on failure
    void PyErr_Clear()

cdef extern from "blake2b.h":
    ctypedef struct gt_b2b:
        pass
    void gt_b2b_init(gt_b2b* s, size_t outlen) nogil
    void gt_b2b_update(gt_b2b* s, const uint8_t* p, size_t n) nogil
    void gt_b2b_final(gt_b2b* s, uint8_t* out) nogil

MAGIC = b"GTJ2"
DEF FIXED = 67          # flags, seq, tx, ts, eid, vtype_old, old_f, old_i, vtype_new, new_f, new_i
DEF HEAD = 8            # magic, payload length
DEF PHEAD = 52          # n, first_seq, last_seq, last_tx, last_ts, prev hash
DEF NTEXT = 8           # author, message, event, kind, field, old_s, new_s, info
DEF NONE = 0
DEF FLOAT = 1
DEF INT = 2
DEF BOOL = 3
DEF STR = 4
HEADER_SIZE = HEAD + PHEAD
TEXT_COLUMNS = ("author", "message", "event", "kind", "field", "old_s", "new_s", "info")


class TextError(ValueError):
    """A text cell that cannot be stored (not encodable as UTF-8); ``field`` names its column."""

    def __init__(self, field, why):
        super().__init__(why)
        self.field = field
cdef uint32_t NULL_LEN = 0xFFFFFFFFU  # the length written for a NULL text


def blake2b(data, int digest_size=16):
    """BLAKE2b of ``data`` (bytes-like) with our implementation (for tests and tools)."""
    cdef const uint8_t[::1] v = memoryview(data).cast("B")
    cdef uint8_t out[64]
    cdef gt_b2b s
    if not 1 <= digest_size <= 64:
        raise ValueError("digest_size must be 1..64")
    gt_b2b_init(&s, digest_size)
    if v.shape[0]:
        gt_b2b_update(&s, &v[0], v.shape[0])
    gt_b2b_final(&s, out)
    return PyBytes_FromStringAndSize(<char*>out, digest_size)


# ----------------------------------------------------------------------------------- encoding
cdef struct Buf:
    char* p
    Py_ssize_t n
    Py_ssize_t cap


cdef int reserve(Buf* b, Py_ssize_t extra) except -1:
    cdef Py_ssize_t cap
    cdef char* p
    if b.n + extra <= b.cap:
        return 0
    cap = max(2 * b.cap, b.n + extra, 512)
    p = <char*>realloc(b.p, cap)
    if p == NULL:
        raise MemoryError()
    b.p, b.cap = p, cap
    return 0


cdef struct Enc:
    Buf rows
    Buf hashes
    uint8_t prev[16]
    int64_t seq
    int64_t n


cdef inline void put8(char* p, int64_t v) noexcept:
    memcpy(p, &v, 8)


cdef inline void putd(char* p, double v) noexcept:
    memcpy(p, &v, 8)


cdef int text_error(int col) except -1:
    PyErr_Clear()
    raise TextError(TEXT_COLUMNS[col], "not encodable as UTF-8 (a lone surrogate?)")


cdef int put_text(Buf* b, object s, int col) except -1:
    cdef Py_ssize_t size
    cdef const char* u
    cdef uint32_t k
    if s is None:
        reserve(b, 4)
        k = NULL_LEN
        memcpy(b.p + b.n, &k, 4)
        b.n += 4
        return 0
    if type(s) is not str:
        raise TypeError(f"journal text {TEXT_COLUMNS[col]} must be str or None, not {type(s).__name__}")
    u = PyUnicode_AsUTF8AndSize(s, &size)
    if u == NULL:
        text_error(col)
    if size >= NULL_LEN:
        raise ValueError("journal text longer than 4 GiB")
    reserve(b, 4 + size)
    k = <uint32_t>size
    memcpy(b.p + b.n, &k, 4)
    memcpy(b.p + b.n + 4, u, size)
    b.n += 4 + size
    return 0


cdef object split(object v, int* vt, double* f, int64_t* i):
    """A plain old/new value as (vtype, f, i); returns the str for STR, else None."""
    t = type(v)
    if t is float:
        vt[0] = FLOAT
        f[0] = PyFloat_AS_DOUBLE(v)
    elif v is None:
        vt[0] = NONE
    elif t is bool:
        vt[0] = BOOL
        i[0] = 1 if v is True else 0
    elif t is int:
        vt[0] = INT
        i[0] = PyLong_AsLongLong(v)
    elif t is str:
        vt[0] = STR
        return v
    else:
        raise TypeError(f"a journal value must be None, float, int, bool or str, not {t.__name__}")
    return None


cdef inline uint8_t vflags(int vt, int shift) noexcept:
    if vt == FLOAT:
        return 1 << shift
    if vt == INT or vt == BOOL:
        return 2 << shift
    return 0


cdef int put_fixed(Enc* e, int64_t tx, int64_t ts, bint has_eid, int64_t ev, int vto, double fo, int64_t io,
                   int vtn, double fn, int64_t in_) except -1:
    cdef char* p
    cdef uint8_t flags = vflags(vto, 1) | vflags(vtn, 3) | (1 if has_eid else 0)
    if not has_eid:
        ev = 0
    reserve(&e.rows, FIXED)
    p = e.rows.p + e.rows.n
    p[0] = <char>flags
    put8(p + 1, e.seq)
    put8(p + 9, tx)
    put8(p + 17, ts)
    put8(p + 25, ev)
    p[33] = <char>vto
    putd(p + 34, fo if vto == FLOAT else 0.0)
    put8(p + 42, io if (vto == INT or vto == BOOL) else 0)
    p[50] = <char>vtn
    putd(p + 51, fn if vtn == FLOAT else 0.0)
    put8(p + 59, in_ if (vtn == INT or vtn == BOOL) else 0)
    e.rows.n += FIXED
    return 0


cdef int close_row(Enc* e, Py_ssize_t start) except -1:
    """Chain the row written from ``start``: hash = blake2b(row bytes + previous hash)."""
    cdef gt_b2b s
    gt_b2b_init(&s, 16)
    gt_b2b_update(&s, <uint8_t*>e.rows.p + start, e.rows.n - start)
    gt_b2b_update(&s, e.prev, 16)
    gt_b2b_final(&s, e.prev)
    reserve(&e.hashes, 16)
    memcpy(e.hashes.p + e.hashes.n, e.prev, 16)
    e.hashes.n += 16
    e.seq += 1
    e.n += 1
    return 0


cdef int put_row(Enc* e, int64_t tx, int64_t ts, object author, object message, object event, object kind,
                 object eid, object field, object old, object new, object info) except -1:
    cdef int vto = NONE, vtn = NONE
    cdef double fo = 0.0, fn = 0.0
    cdef int64_t io = 0, in_ = 0
    cdef Py_ssize_t start = e.rows.n
    so = split(old, &vto, &fo, &io)
    sn = split(new, &vtn, &fn, &in_)
    put_fixed(e, tx, ts, eid is not None, 0 if eid is None else PyLong_AsLongLong(eid), vto, fo, io, vtn, fn, in_)
    put_text(&e.rows, author, 0)
    put_text(&e.rows, message, 1)
    put_text(&e.rows, event, 2)
    put_text(&e.rows, kind, 3)
    put_text(&e.rows, field, 4)
    put_text(&e.rows, so, 5)
    put_text(&e.rows, sn, 6)
    put_text(&e.rows, info, 7)
    close_row(e, start)
    return 0


cdef int put_many(Enc* e, int64_t tx, int64_t ts, object author, object message, item) except -1:
    """The rows of one record_many call (journal/buffer.py Many: typed old/new columns)."""
    cdef const int64_t[::1] eids = item.eids
    cdef Py_ssize_t k, m = eids.shape[0], start
    cdef const int8_t[::1] vto, vtn
    cdef const double[::1] fo, fn
    cdef const int64_t[::1] io, in_
    o, nw = item.old, item.new
    vto, fo, io = np.ascontiguousarray(o[0], np.int8), np.ascontiguousarray(o[1], np.float64), \
        np.ascontiguousarray(o[3], np.int64)
    vtn, fn, in_ = np.ascontiguousarray(nw[0], np.int8), np.ascontiguousarray(nw[1], np.float64), \
        np.ascontiguousarray(nw[3], np.int64)
    so, sn = o[5], nw[5]
    event, kind, field = item.event, item.kind, item.field
    for k in range(m):
        start = e.rows.n
        put_fixed(e, tx, ts, True, eids[k], vto[k], fo[k], io[k], vtn[k], fn[k], in_[k])
        put_text(&e.rows, author, 0)
        put_text(&e.rows, message, 1)
        put_text(&e.rows, event, 2)
        put_text(&e.rows, kind, 3)
        put_text(&e.rows, field, 4)
        put_text(&e.rows, so[k] if vto[k] == STR else None, 5)
        put_text(&e.rows, sn[k] if vtn[k] == STR else None, 6)
        put_text(&e.rows, None, 7)
        close_row(e, start)
    return 0


def encode(list buf, int64_t seq, int64_t tx, int64_t last_ts, author, bytes prev):
    """The frame of the buffered events (journal/buffer.py layout), numbered from seq/tx, ts made
    non-decreasing from last_ts, chained on ``prev``.

    Returns ``(frame, n, last_seq, last_tx, last_ts, last_hash)``; ``(None, 0, ...)`` when the
    buffer holds no event.  Raises TextError (naming the column) for text that is not UTF-8.
    """
    cdef Enc e
    cdef int64_t ts, t
    cdef Py_ssize_t plen
    cdef char* p
    if len(prev) != 16:
        raise ValueError("prev must be 16 bytes")
    memset(&e, 0, sizeof(Enc))
    memcpy(e.prev, PyBytes_AS_STRING(prev), 16)
    e.seq = seq
    ts = last_ts
    try:
        reserve(&e.rows, HEAD + PHEAD)
        e.rows.n = HEAD + PHEAD
        for chunk in buf:
            if type(chunk) is list:
                for row in <list>chunk:
                    t = row[0]
                    if t > ts:
                        ts = t
                    put_row(&e, tx, ts, author, None, row[1], row[2], row[3], row[4], row[5], row[6], row[7])
                    tx += 1
                continue
            t = chunk.ts
            if t > ts:
                ts = t
            a, m = chunk.author, chunk.message
            for it in chunk.items:
                if type(it) is Many:
                    put_many(&e, tx, ts, a, m, it)
                else:
                    put_row(&e, tx, ts, a, m, it[0], it[1], it[2], it[3], it[4], it[5], it[6])
            put_row(&e, tx, ts, a, m, "commit", None, None, None, None, None, chunk.info)
            tx += 1
        if e.n == 0:
            return None, 0, seq - 1, tx - 1, last_ts, prev
        reserve(&e.rows, e.hashes.n)
        memcpy(e.rows.p + e.rows.n, e.hashes.p, e.hashes.n)
        e.rows.n += e.hashes.n
        p = e.rows.p
        plen = e.rows.n - HEAD
        memcpy(p, <const char*>b"GTJ2", 4)
        (<uint32_t*>(p + 4))[0] = <uint32_t>plen
        (<uint32_t*>(p + 8))[0] = <uint32_t>e.n
        put8(p + 12, seq)
        put8(p + 20, e.seq - 1)
        put8(p + 28, tx - 1)
        put8(p + 36, ts)
        memcpy(p + 44, PyBytes_AS_STRING(prev), 16)
        frame = PyBytes_FromStringAndSize(p, e.rows.n)
        return frame, e.n, e.seq - 1, tx - 1, ts, PyBytes_FromStringAndSize(<char*>e.prev, 16)
    finally:
        free(e.rows.p)
        free(e.hashes.p)


# ----------------------------------------------------------------------------------- scanning
cdef inline int64_t get8(const char* p) noexcept nogil:
    cdef int64_t v
    memcpy(&v, p, 8)
    return v


cdef inline uint32_t get4(const char* p) noexcept nogil:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v


cdef Py_ssize_t walk_row(const char* p, Py_ssize_t off, Py_ssize_t end) noexcept nogil:
    """End offset of the row at ``off``, or -1 if it does not fit before ``end``."""
    cdef int k
    cdef uint32_t ln
    if end - off < FIXED:
        return -1
    off += FIXED
    for k in range(NTEXT):
        if end - off < 4:
            return -1
        ln = get4(p + off)
        off += 4
        if ln != NULL_LEN:
            if end - off < ln:
                return -1
            off += ln
    return off


def scan(data, Py_ssize_t off=0):
    """The frame at byte ``off`` of ``data`` if it is whole and its hashes re-derive, else None.

    Returns ``(end, n, first_seq, last_seq, last_tx, last_ts, prev_hash, last_hash)``.
    """
    cdef const uint8_t[::1] v = memoryview(data).cast("B")
    cdef Py_ssize_t size = v.shape[0], plen, end, rows_end, pos, nxt = -1, k, last_row
    cdef uint32_t n
    cdef const char* p
    cdef uint8_t h[16]
    cdef gt_b2b s
    if size - off < HEAD + PHEAD:
        return None
    p = <const char*>&v[0]
    if memcmp(p + off, <const char*>b"GTJ2", 4) != 0:
        return None
    plen = get4(p + off + 4)
    end = off + HEAD + plen
    n = get4(p + off + 8)
    if plen < PHEAD or end > size or n == 0 or <Py_ssize_t>n * 16 > plen - PHEAD:
        return None
    rows_end = end - 16 * <Py_ssize_t>n
    memcpy(h, p + off + 44, 16)
    pos = off + HEAD + PHEAD
    last_row = pos
    with nogil:
        for k in range(n):
            last_row = pos
            nxt = walk_row(p, pos, rows_end)
            if nxt < 0:
                break
            gt_b2b_init(&s, 16)
            gt_b2b_update(&s, <const uint8_t*>p + pos, nxt - pos)
            gt_b2b_update(&s, h, 16)
            gt_b2b_final(&s, h)
            if memcmp(h, p + rows_end + 16 * k, 16) != 0:
                nxt = -1
                break
            pos = nxt
    if nxt < 0 or pos != rows_end:
        return None
    # the header's numbers are the first and last rows' (seq, then tx and ts of the last row)
    if (get8(p + off + 12) != get8(p + off + HEAD + PHEAD + 1) or get8(p + off + 20) != get8(p + last_row + 1)
            or get8(p + off + 28) != get8(p + last_row + 9) or get8(p + off + 36) != get8(p + last_row + 17)):
        return None
    return (end, n, get8(p + off + 12), get8(p + off + 20), get8(p + off + 28), get8(p + off + 36),
            bytes(v[off + 44:off + 60]), bytes(v[end - 16:end]))


# ----------------------------------------------------------------------------------- decoding
def decode(frames):
    """Columns of the rows of ``frames`` (whole frames, as :func:`encode` made them, in order).

    Returns ``(n, num, valid, text, hashes)``: ``num`` maps seq, tx, ts_ns, eid, vtype_old,
    old_f, old_i, vtype_new, new_f, new_i to numpy arrays; ``valid`` maps eid, old_f, old_i,
    new_f, new_i to Arrow validity bitmaps (uint8 arrays, bit set = valid) with their null
    counts; ``text`` maps the 8 text columns to ``(bitmap, null_count, int64 offsets, uint8
    data)``; ``hashes`` is the n*16 hash bytes.  Frames are trusted (scan() checked them).
    """
    cdef Py_ssize_t N = 0, i, k, pos, rows_end, fi
    cdef int64_t tsize[NTEXT]
    cdef uint32_t ln, nf
    cdef const char* p
    memset(tsize, 0, sizeof(tsize))
    frames = [f if type(f) is bytes else bytes(f) for f in frames]
    for f in frames:
        p = PyBytes_AS_STRING(f)
        nf = get4(p + 8)
        rows_end = HEAD + get4(p + 4) - 16 * <Py_ssize_t>nf
        pos = HEAD + PHEAD
        while pos < rows_end:
            pos += FIXED
            for k in range(NTEXT):
                ln = get4(p + pos)
                pos += 4
                if ln != NULL_LEN:
                    tsize[k] += ln
                    pos += ln
        N += nf
    seq, tx, ts, eid = (np.empty(N, np.int64) for _ in range(4))
    vto, vtn = np.empty(N, np.int8), np.empty(N, np.int8)
    fo, fn = np.empty(N, np.float64), np.empty(N, np.float64)
    io, in_ = np.empty(N, np.int64), np.empty(N, np.int64)
    nbm = (N + 7) // 8
    vbm = np.zeros((5, nbm), np.uint8)   # eid, old_f, old_i, new_f, new_i
    tbm = np.zeros((NTEXT, nbm), np.uint8)
    toff = np.empty((NTEXT, N + 1), np.int64)
    tdata = [np.empty(tsize[k], np.uint8) for k in range(NTEXT)]
    hashes = np.empty(16 * N, np.uint8)
    cdef int64_t[::1] c_seq = seq, c_tx = tx, c_ts = ts, c_eid = eid, c_io = io, c_in = in_
    cdef int8_t[::1] c_vto = vto, c_vtn = vtn
    cdef double[::1] c_fo = fo, c_fn = fn
    cdef uint8_t[:, ::1] c_vbm = vbm, c_tbm = tbm
    cdef int64_t[:, ::1] c_toff = toff
    cdef uint8_t[::1] c_hash = hashes
    cdef uint8_t* tptr[NTEXT]
    cdef int64_t tpos[NTEXT]
    cdef int64_t vnull[5]
    cdef int64_t tnull[NTEXT]
    cdef uint8_t flags, bit
    cdef uint8_t[::1] td
    for k in range(NTEXT):
        td = tdata[k]
        tptr[k] = &td[0] if tsize[k] else NULL
        tpos[k] = 0
        tnull[k] = 0
        c_toff[k, 0] = 0
    memset(vnull, 0, sizeof(vnull))
    i = 0
    for f in frames:
        p = PyBytes_AS_STRING(f)
        nf = get4(p + 8)
        rows_end = HEAD + get4(p + 4) - 16 * <Py_ssize_t>nf
        memcpy(&c_hash[16 * i], p + rows_end, 16 * nf)
        pos = HEAD + PHEAD
        while pos < rows_end:
            flags = <uint8_t>p[pos]
            c_seq[i] = get8(p + pos + 1)
            c_tx[i] = get8(p + pos + 9)
            c_ts[i] = get8(p + pos + 17)
            c_eid[i] = get8(p + pos + 25)
            c_vto[i] = <int8_t>p[pos + 33]
            memcpy(&c_fo[i], p + pos + 34, 8)
            c_io[i] = get8(p + pos + 42)
            c_vtn[i] = <int8_t>p[pos + 50]
            memcpy(&c_fn[i], p + pos + 51, 8)
            c_in[i] = get8(p + pos + 59)
            bit = <uint8_t>(1 << (i & 7))
            for k in range(5):
                if flags & (1 << k):
                    c_vbm[k, i >> 3] |= bit
                else:
                    vnull[k] += 1
            pos += FIXED
            for k in range(NTEXT):
                ln = get4(p + pos)
                pos += 4
                if ln == NULL_LEN:
                    tnull[k] += 1
                else:
                    c_tbm[k, i >> 3] |= bit
                    memcpy(tptr[k] + tpos[k], p + pos, ln)
                    tpos[k] += ln
                    pos += ln
                c_toff[k, i + 1] = tpos[k]
            i += 1
    names = ("eid", "old_f", "old_i", "new_f", "new_i")
    num = {"seq": seq, "tx": tx, "ts_ns": ts, "eid": eid, "vtype_old": vto, "old_f": fo, "old_i": io,
           "vtype_new": vtn, "new_f": fn, "new_i": in_}
    valid = {names[k]: (vbm[k], vnull[k]) for k in range(5)}
    tnames = TEXT_COLUMNS
    text = {tnames[k]: (tbm[k], tnull[k], toff[k], tdata[k]) for k in range(NTEXT)}
    return N, num, valid, text, hashes.tobytes()
