# The encoder of journal frames, included by frames.pyx (the codec, for tools and tests) and
# by recorder.pyx (whose flush calls encode_frame directly, in C).  See frames.pyx for the
# frame layout (GTJ4) and journal/chain.py for the canonical row bytes.  A flush hashes
# nothing: the frame carries a 64-bit checksum (XXH3-64 of the xxhash package) and the hash
# chain is computed when the frame is ingested (frames.pyx decode, in the mover thread,
# without the GIL).
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.long cimport PyLong_AsLongLong
from libc.stdint cimport int8_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy, memset

import numpy as np
cimport numpy as cnp

cnp.import_array()

from .buffer import Many
from .rows import TextError

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size)  # NULL + exception on failure
    void PyErr_Clear()

cdef extern from "sum64.h":  # the checksum of GTJ3 frames (gridtape 0.4), still read
    uint64_t gt_sum64(const uint8_t* p, size_t n) nogil

from xxhash import xxh3_64_intdigest as _xxh3  # the checksum of GTJ4 frames

DEF FIXED = 67          # flags, seq, tx, ts, eid, vtype_old, old_f, old_i, vtype_new, new_f, new_i
DEF HEAD = 8            # magic, payload length
DEF PHEAD = 52          # GTJ2: n, first_seq, last_seq, last_tx, last_ts, prev hash
DEF PHEAD3 = 36         # GTJ3/GTJ4: n, first_seq, last_seq, last_tx, last_ts
DEF SUMLEN = 8          # GTJ3/GTJ4: the checksum after the rows
DEF REPEAT = 0x80       # GTJ3/GTJ4 flag bit: a repeat row (see frames.pyx)
DEF RFIXED = 27         # a repeat row: flags, eid, vtype_old, old (8 bytes), vtype_new, new (8 bytes)
DEF NTEXT = 8           # author, message, event, kind, field, old_s, new_s, info
DEF NONE = 0
DEF FLOAT = 1
DEF INT = 2
DEF BOOL = 3
DEF STR = 4
TEXT_COLUMNS = ("author", "message", "event", "kind", "field", "old_s", "new_s", "info")


cdef uint32_t NULL_LEN = 0xFFFFFFFFU  # the length written for a NULL text


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


cdef inline void close_row(Enc* e) noexcept:
    e.seq += 1
    e.n += 1


cdef int put_repeat(Enc* e, int64_t ev, int vto, double fo, int64_t io, int vtn, double fn, int64_t in_) except -1:
    """A repeat row: the next seq, the previous row's tx, ts and texts, this element and values."""
    cdef char* p
    reserve(&e.rows, RFIXED)
    p = e.rows.p + e.rows.n
    p[0] = <char>(REPEAT | 1 | vflags(vto, 1) | vflags(vtn, 3))
    put8(p + 1, ev)
    p[9] = <char>vto
    if vto == FLOAT:
        putd(p + 10, fo)
    else:
        put8(p + 10, io if (vto == INT or vto == BOOL) else 0)
    p[18] = <char>vtn
    if vtn == FLOAT:
        putd(p + 19, fn)
    else:
        put8(p + 19, in_ if (vtn == INT or vtn == BOOL) else 0)
    e.rows.n += RFIXED
    close_row(e)
    return 0


cdef int put_row(Enc* e, int64_t tx, int64_t ts, object author, object message, object event, object kind,
                 object eid, object field, object old, object new, object info) except -1:
    cdef int vto = NONE, vtn = NONE
    cdef double fo = 0.0, fn = 0.0
    cdef int64_t io = 0, in_ = 0
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
    close_row(e)
    return 0


cdef inline const char* col(object a, int typenum, Py_ssize_t m, list keep) except NULL:
    """The data of a typed column (journal/columns.py makes them contiguous arrays of the right
    dtype; anything else is converted, the copy kept alive in ``keep``)."""
    cdef cnp.ndarray arr
    if not (type(a) is np.ndarray and cnp.PyArray_TYPE(<cnp.ndarray>a) == typenum
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>a)):
        a = np.ascontiguousarray(a, cnp.PyArray_DescrFromType(typenum))
        keep.append(a)
    arr = <cnp.ndarray>a
    if cnp.PyArray_SIZE(arr) < m:
        raise ValueError("a record_many column is shorter than its ids")
    return <const char*>cnp.PyArray_DATA(arr)


cdef int put_many(Enc* e, int64_t tx, int64_t ts, object author, object message, item) except -1:
    """The rows of one record_many call (journal/buffer.py Many: typed old/new columns): the
    first as a full row, each next one as a repeat row when neither it nor the row before holds
    a str value (their texts are the same)."""
    cdef list keep = []
    eids_a = item.eids
    cdef Py_ssize_t k, m = len(eids_a)
    cdef bint plain, prev_plain = False
    if m == 0:
        return 0
    o, nw = item.old, item.new
    cdef const int64_t* eids = <const int64_t*>col(eids_a, cnp.NPY_INT64, m, keep)
    cdef const int8_t* vto = <const int8_t*>col(o[0], cnp.NPY_INT8, m, keep)
    cdef const double* fo = <const double*>col(o[1], cnp.NPY_FLOAT64, m, keep)
    cdef const int64_t* io = <const int64_t*>col(o[3], cnp.NPY_INT64, m, keep)
    cdef const int8_t* vtn = <const int8_t*>col(nw[0], cnp.NPY_INT8, m, keep)
    cdef const double* fn = <const double*>col(nw[1], cnp.NPY_FLOAT64, m, keep)
    cdef const int64_t* in_ = <const int64_t*>col(nw[3], cnp.NPY_INT64, m, keep)
    so, sn = o[5], nw[5]
    event, kind, field = item.event, item.kind, item.field
    # the texts every row of the call shares (author ... field, and for rows without str values
    # the three NULLs after them), encoded once and copied
    cdef Buf tail
    cdef Py_ssize_t shared
    tail.p, tail.n, tail.cap = NULL, 0, 0
    try:
        put_text(&tail, author, 0)
        put_text(&tail, message, 1)
        put_text(&tail, event, 2)
        put_text(&tail, kind, 3)
        put_text(&tail, field, 4)
        shared = tail.n
        put_text(&tail, None, 5)
        put_text(&tail, None, 6)
        put_text(&tail, None, 7)
        for k in range(m):
            plain = vto[k] != STR and vtn[k] != STR
            if plain and prev_plain:
                put_repeat(e, eids[k], vto[k], fo[k], io[k], vtn[k], fn[k], in_[k])
                continue
            prev_plain = plain
            put_fixed(e, tx, ts, True, eids[k], vto[k], fo[k], io[k], vtn[k], fn[k], in_[k])
            if plain:
                reserve(&e.rows, tail.n)
                memcpy(e.rows.p + e.rows.n, tail.p, tail.n)
                e.rows.n += tail.n
            else:
                reserve(&e.rows, shared)
                memcpy(e.rows.p + e.rows.n, tail.p, shared)
                e.rows.n += shared
                put_text(&e.rows, so[k] if vto[k] == STR else None, 5)
                put_text(&e.rows, sn[k] if vtn[k] == STR else None, 6)
                put_text(&e.rows, None, 7)
            close_row(e)
    finally:
        free(tail.p)
    return 0


cdef Enc g_enc          # the encoder's buffers, kept between flushes (no malloc per flush)
cdef bint g_busy = False  # set while g_enc is in use (a finalizer flushing during an encode gets its own)


cdef tuple encode_frame(list buf, int64_t seq, int64_t tx, int64_t last_ts, object author):
    """The GTJ3 frame of the buffered events (journal/buffer.py layout), numbered from seq/tx,
    ts made non-decreasing from last_ts.

    Returns ``(frame, n, last_seq, last_tx, last_ts)``; ``(None, 0, ...)`` when the buffer
    holds no event.  Raises TextError (naming the column) for text that is not UTF-8.
    """
    global g_busy
    cdef Enc local
    cdef Enc* e
    cdef bint mine = not g_busy
    cdef int64_t ts, t
    cdef Py_ssize_t plen
    cdef char* p
    cdef uint64_t sm
    if mine:
        e = &g_enc
        g_busy = True
    else:
        memset(&local, 0, sizeof(Enc))
        e = &local
    e.rows.n = 0
    e.n = 0
    e.seq = seq
    ts = last_ts
    try:
        reserve(&e.rows, HEAD + PHEAD3)
        e.rows.n = HEAD + PHEAD3
        for chunk in buf:
            if type(chunk) is list:
                for row in <list>chunk:
                    t = row[0]
                    if t > ts:
                        ts = t
                    put_row(e, tx, ts, author, None, row[1], row[2], row[3], row[4], row[5], row[6], row[7])
                    tx += 1
                continue
            t = chunk.ts
            if t > ts:
                ts = t
            a, m = chunk.author, chunk.message
            for it in chunk.items:
                if type(it) is Many:
                    put_many(e, tx, ts, a, m, it)
                else:
                    put_row(e, tx, ts, a, m, it[0], it[1], it[2], it[3], it[4], it[5], it[6])
            put_row(e, tx, ts, a, m, "commit", None, None, None, None, None, chunk.info)
            tx += 1
        if e.n == 0:
            return None, 0, seq - 1, tx - 1, last_ts
        reserve(&e.rows, SUMLEN)
        p = e.rows.p
        plen = e.rows.n + SUMLEN - HEAD
        memcpy(p, <const char*>b"GTJ4", 4)
        (<uint32_t*>(p + 4))[0] = <uint32_t>plen
        (<uint32_t*>(p + 8))[0] = <uint32_t>e.n
        put8(p + 12, seq)
        put8(p + 20, e.seq - 1)
        put8(p + 28, tx - 1)
        put8(p + 36, ts)
        memset(p + e.rows.n, 0, SUMLEN)  # the checksum covers the frame with its own slot zeroed
        e.rows.n += SUMLEN
        frame = PyBytes_FromStringAndSize(p, e.rows.n)
        sm = _xxh3(frame)
        memcpy(PyBytes_AS_STRING(frame) + e.rows.n - SUMLEN, &sm, SUMLEN)  # still ours alone
        return frame, e.n, e.seq - 1, tx - 1, ts
    finally:
        if mine:
            g_busy = False
            if e.rows.cap > (1 << 22):  # do not hold on to a big flush's memory
                free(e.rows.p)
                memset(e, 0, sizeof(Enc))
        else:
            free(local.rows.p)
