# cython: language_level=3
"""Segment frames: the flushed events as bytes, and their columns (with the hash chain) for ingest.

A flush turns the buffered events into one *frame*, in C (encode.pxi): it numbers the rows,
writes them in the canonical byte layout journal/chain.py defines (that pure-Python module is
the reference the tests hold this one to), and closes the frame with a 64-bit checksum
(XXH3-64, from the xxhash package).  It hashes nothing: the hash chain
``blake2b(canonical + previous hash)`` is computed with our own BLAKE2b (blake2b.h) when the
frame is ingested, by :func:`decode`, with the GIL released (in the mover thread; no library
computes a 16-byte BLAKE2b without the GIL: docs/journal.md has the numbers).  A flush is one
pass over the events plus one ``os.write``::

    b"GTJ4" | uint32 payload length | payload
    payload = uint32 n | int64 first_seq, last_seq, last_tx, last_ts | n rows
              | uint64 XXH3-64 of the whole frame with these 8 bytes taken as zeros

A row is either *full*, its canonical bytes (flag byte bit 7 clear), or a *repeat row* (bit 7
set) of 27 bytes: the flag byte, eid as int64, vtype_old as int8, the old value's 8 bytes (the
double if vtype_old is float, the int64 if int or bool, else zero), vtype_new and the new
value likewise.  A repeat row's seq is the previous row's plus one, its tx, ts_ns and its eight
texts are the previous row's; its canonical bytes are rebuilt from these (flag bit 7 cleared).
A ``record_many`` call writes its first row full and the rest as repeat rows, so a 150-row
transaction is about 4 KB instead of 22 KB.  The first row of a frame is always full.

gridtape 0.4 wrote ``GTJ3`` frames: the same, but the checksum is our own (sum64.h) over the
frame's bytes before it.  gridtape 0.3 wrote ``GTJ2`` frames, which carry the hashes instead
of a checksum::

    b"GTJ2" | uint32 payload length | payload
    payload = uint32 n | int64 first_seq, last_seq, last_tx, last_ts | 16-byte hash before
              the first row | n canonical (full) rows | n 16-byte hashes

Both are still read (a segment an older version left behind is resumed).  :func:`scan` tells a
whole frame of any kind from a torn or damaged one (GTJ4/GTJ3: the checksum and the row walk;
GTJ2: the rows re-walked and the hashes re-derived).  :func:`decode` turns frames into
Arrow-ready column buffers (no Python object per row) and their hashes, chained from the hash
before them.
"""
include "encode.pxi"

from xxhash import xxh3_64 as _xxh3_64

cdef extern from "blake2b.h":
    ctypedef struct gt_b2b:
        pass
    void gt_b2b_init(gt_b2b* s, size_t outlen) nogil
    void gt_b2b_update(gt_b2b* s, const uint8_t* p, size_t n) nogil
    void gt_b2b_final(gt_b2b* s, uint8_t* out) nogil

MAGIC = b"GTJ4"
OLD_MAGICS = (b"GTJ3", b"GTJ2")  # gridtape 0.4 (hand-written checksum), 0.3 (hashes in the frame)
_ZERO_SUM = bytes(8)
HEADER_SIZE = HEAD + PHEAD3


def encode(list buf, int64_t seq, int64_t tx, int64_t last_ts, author):
    """The frame of the buffered events as :func:`encode_frame` builds it for a flush:
    ``(frame, n, last_seq, last_tx, last_ts)``."""
    return encode_frame(buf, seq, tx, last_ts, author)


def checksum(data):
    """The GTJ4 frame checksum of a whole frame ``data`` (bytes-like): XXH3-64 of its bytes with
    the last 8 (the checksum's own slot) taken as zeros."""
    mv = memoryview(data).cast("B")
    h = _xxh3_64()
    h.update(mv[:len(mv) - SUMLEN])
    h.update(_ZERO_SUM)
    return h.intdigest()


def sum64(data):
    """The GTJ3 frame checksum of ``data`` (bytes-like; for reading gridtape 0.4 segments, tests
    and tools)."""
    cdef const uint8_t[::1] v = memoryview(data).cast("B")
    if v.shape[0] == 0:
        return gt_sum64(NULL, 0)
    return gt_sum64(&v[0], v.shape[0])


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


# ----------------------------------------------------------------------------------- scanning
cdef inline int64_t get8(const char* p) noexcept nogil:
    cdef int64_t v
    memcpy(&v, p, 8)
    return v


cdef inline uint32_t get4(const char* p) noexcept nogil:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v


cdef Py_ssize_t walk_row(const char* p, Py_ssize_t off, Py_ssize_t end, bint v3) noexcept nogil:
    """End offset of the row at ``off``, or -1 if it does not fit before ``end`` (``v3``: a
    GTJ3 frame, where a row may be a repeat row)."""
    cdef int k
    cdef uint32_t ln
    cdef uint8_t flags
    if end - off < 1:
        return -1
    flags = <uint8_t>p[off]
    if flags & REPEAT:
        if not v3 or end - off < RFIXED or flags & 0x60:
            return -1
        return off + RFIXED
    if flags & 0xE0 or end - off < FIXED:
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
    """The frame (GTJ3 or GTJ2) at byte ``off`` of ``data`` if it is whole, else None.

    Returns ``(end, n, first_seq, last_seq, last_tx, last_ts, prev_hash, last_hash)``; the two
    hashes are None for a GTJ3 frame (its rows are hashed at ingest).
    """
    cdef const uint8_t[::1] v = memoryview(data).cast("B")
    cdef Py_ssize_t size = v.shape[0], plen, end, rows_end, pos, nxt = -1, k, last_row, rows_at
    cdef uint32_t n
    cdef const char* p
    cdef bint v3, v4 = False
    cdef uint8_t h[16]
    cdef uint64_t sm
    cdef int64_t seq, tx = 0, ts = 0
    cdef gt_b2b s
    if size - off < HEAD + 4:
        return None
    p = <const char*>&v[0]
    if memcmp(p + off, <const char*>b"GTJ4", 4) == 0:
        v3 = v4 = True
    elif memcmp(p + off, <const char*>b"GTJ3", 4) == 0:
        v3 = True
    elif memcmp(p + off, <const char*>b"GTJ2", 4) == 0:
        v3 = False
    else:
        return None
    plen = get4(p + off + 4)
    end = off + HEAD + plen
    n = get4(p + off + 8)
    if end > size or n == 0:
        return None
    if v3:
        if plen < PHEAD3 + SUMLEN:
            return None
        memcpy(&sm, p + end - SUMLEN, SUMLEN)
        if v4:
            if checksum(memoryview(data).cast("B")[off:end]) != sm:
                return None
        elif gt_sum64(<const uint8_t*>p + off, end - SUMLEN - off) != sm:
            return None
        rows_end = end - SUMLEN
        rows_at = off + HEAD + PHEAD3
    else:
        if plen < PHEAD or <Py_ssize_t>n * 16 > plen - PHEAD:
            return None
        rows_end = end - 16 * <Py_ssize_t>n
        rows_at = off + HEAD + PHEAD
        memcpy(h, p + off + 44, 16)
    pos = rows_at
    last_row = pos
    seq = get8(p + off + 12) - 1
    with nogil:
        for k in range(n):
            last_row = pos
            nxt = walk_row(p, pos, rows_end, v3)
            if nxt < 0 or (k == 0 and <uint8_t>p[pos] & REPEAT):
                nxt = -1
                break
            if <uint8_t>p[pos] & REPEAT:
                seq += 1
            else:
                if get8(p + pos + 1) != seq + 1:
                    nxt = -1
                    break
                seq = get8(p + pos + 1)
                tx = get8(p + pos + 9)
                ts = get8(p + pos + 17)
            if not v3:
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
    if get8(p + off + 20) != seq or get8(p + off + 28) != tx or get8(p + off + 36) != ts:
        return None
    if v3:
        return end, n, get8(p + off + 12), seq, tx, ts, None, None
    return end, n, get8(p + off + 12), seq, tx, ts, bytes(v[off + 44:off + 60]), bytes(v[end - 16:end])


# ----------------------------------------------------------------------------------- decoding
cdef struct Out:
    int64_t* seq
    int64_t* tx
    int64_t* ts
    int64_t* eid
    int8_t* vto
    double* fo
    int64_t* io
    int8_t* vtn
    double* fn
    int64_t* in_
    uint8_t* vbm      # 5 validity bitmaps of nbm bytes: eid, old_f, old_i, new_f, new_i
    uint8_t* tbm      # NTEXT validity bitmaps of nbm bytes
    int64_t* toff     # NTEXT offset arrays of N + 1
    uint8_t* tptr[NTEXT]
    uint8_t* hashes
    Py_ssize_t nbm
    Py_ssize_t N
    int64_t vnull[5]
    int64_t tnull[NTEXT]


cdef inline void frame_rows(const char* p, Py_ssize_t* pos, Py_ssize_t* rows_end, bint* v3) noexcept nogil:
    """Where the rows of the frame at ``p`` start and end, and whether it is GTJ3."""
    v3[0] = p[3] == 52 or p[3] == 51  # b"GTJ4", b"GTJ3" (same rows; only the checksum differs)
    if v3[0]:
        pos[0] = HEAD + PHEAD3
        rows_end[0] = HEAD + <Py_ssize_t>get4(p + 4) - SUMLEN
    else:
        pos[0] = HEAD + PHEAD
        rows_end[0] = HEAD + <Py_ssize_t>get4(p + 4) - 16 * <Py_ssize_t>get4(p + 8)


cdef void text_sizes(const char** fp, Py_ssize_t nfr, int64_t* tsize, Py_ssize_t* total) noexcept nogil:
    """Rows and text bytes per column of the frames (a repeat row counts its full row's texts)."""
    cdef Py_ssize_t fi, pos, rows_end, N = 0
    cdef int k
    cdef uint32_t ln
    cdef int64_t last[NTEXT]
    cdef bint v3
    cdef const char* p
    memset(last, 0, sizeof(last))
    for fi in range(nfr):
        p = fp[fi]
        frame_rows(p, &pos, &rows_end, &v3)
        N += get4(p + 8)
        while pos < rows_end:
            if <uint8_t>p[pos] & REPEAT:
                for k in range(NTEXT):
                    tsize[k] += last[k]
                pos += RFIXED
                continue
            pos += FIXED
            for k in range(NTEXT):
                ln = get4(p + pos)
                pos += 4
                if ln == NULL_LEN:
                    last[k] = 0
                else:
                    last[k] = ln
                    tsize[k] += ln
                    pos += ln
    total[0] = N


cdef void fill(const char** fp, Py_ssize_t nfr, Out* o, uint8_t* h, bint chain) noexcept nogil:
    """Decode the rows of the frames into ``o`` and chain their hashes on ``h`` (16 bytes, in:
    the hash before the first row, out: the last row's).  GTJ2 frames carry their hashes.
    ``chain`` off (benchmarks only) skips the hashing of GTJ3 rows."""
    cdef Py_ssize_t fi, pos, rows_end, nxt, i = 0, k8
    cdef int k
    cdef uint32_t ln
    cdef uint8_t flags, bit
    cdef bint v3, rep
    cdef const char* p
    cdef const char* tp[NTEXT]  # the texts of the last full row
    cdef uint32_t tl[NTEXT]
    cdef const char* tsec = NULL  # its canonical text section
    cdef Py_ssize_t tsec_n = 0
    cdef int64_t tpos[NTEXT]
    cdef char cf[FIXED]  # a repeat row's canonical fixed part
    cdef int64_t seq = 0, tx = 0, ts = 0, z = 0
    cdef gt_b2b s
    memset(tpos, 0, sizeof(tpos))
    for k in range(NTEXT):
        tl[k] = NULL_LEN
        tp[k] = NULL
        o.toff[k * (o.N + 1)] = 0
    for fi in range(nfr):
        p = fp[fi]
        frame_rows(p, &pos, &rows_end, &v3)
        k8 = 0
        while pos < rows_end:
            flags = <uint8_t>p[pos]
            rep = (flags & REPEAT) != 0
            flags &= 0x1F
            if rep:
                seq += 1
                o.eid[i] = get8(p + pos + 1)
                o.vto[i] = <int8_t>p[pos + 9]
                o.vtn[i] = <int8_t>p[pos + 18]
                if o.vto[i] == FLOAT:
                    memcpy(&o.fo[i], p + pos + 10, 8)
                    o.io[i] = 0
                else:
                    o.fo[i] = 0.0
                    o.io[i] = get8(p + pos + 10)
                if o.vtn[i] == FLOAT:
                    memcpy(&o.fn[i], p + pos + 19, 8)
                    o.in_[i] = 0
                else:
                    o.fn[i] = 0.0
                    o.in_[i] = get8(p + pos + 19)
                nxt = pos + RFIXED
            else:
                seq = get8(p + pos + 1)
                tx = get8(p + pos + 9)
                ts = get8(p + pos + 17)
                o.eid[i] = get8(p + pos + 25)
                o.vto[i] = <int8_t>p[pos + 33]
                memcpy(&o.fo[i], p + pos + 34, 8)
                o.io[i] = get8(p + pos + 42)
                o.vtn[i] = <int8_t>p[pos + 50]
                memcpy(&o.fn[i], p + pos + 51, 8)
                o.in_[i] = get8(p + pos + 59)
                nxt = pos + FIXED
                tsec = p + nxt
                for k in range(NTEXT):
                    ln = get4(p + nxt)
                    nxt += 4
                    tl[k] = ln
                    tp[k] = p + nxt
                    if ln != NULL_LEN:
                        nxt += ln
                tsec_n = (p + nxt) - tsec
            o.seq[i] = seq
            o.tx[i] = tx
            o.ts[i] = ts
            bit = <uint8_t>(1 << (i & 7))
            for k in range(5):
                if flags & (1 << k):
                    o.vbm[k * o.nbm + (i >> 3)] |= bit
                else:
                    o.vnull[k] += 1
            for k in range(NTEXT):
                if tl[k] == NULL_LEN:
                    o.tnull[k] += 1
                else:
                    o.tbm[k * o.nbm + (i >> 3)] |= bit
                    memcpy(o.tptr[k] + tpos[k], tp[k], tl[k])
                    tpos[k] += tl[k]
                o.toff[k * (o.N + 1) + i + 1] = tpos[k]
            if v3 and chain:
                gt_b2b_init(&s, 16)
                if rep:  # the canonical bytes: the fixed part rebuilt, then the full row's texts
                    cf[0] = <char>flags
                    memcpy(cf + 1, &seq, 8)
                    memcpy(cf + 9, &tx, 8)
                    memcpy(cf + 17, &ts, 8)
                    memcpy(cf + 25, &o.eid[i], 8)
                    cf[33] = <char>o.vto[i]
                    memcpy(cf + 34, &o.fo[i], 8)
                    memcpy(cf + 42, &o.io[i], 8)
                    cf[50] = <char>o.vtn[i]
                    memcpy(cf + 51, &o.fn[i], 8)
                    memcpy(cf + 59, &o.in_[i], 8)
                    gt_b2b_update(&s, <const uint8_t*>cf, FIXED)
                    gt_b2b_update(&s, <const uint8_t*>tsec, tsec_n)
                else:
                    gt_b2b_update(&s, <const uint8_t*>p + pos, nxt - pos)
                gt_b2b_update(&s, h, 16)
                gt_b2b_final(&s, h)
            elif not v3:
                memcpy(h, p + rows_end + 16 * k8, 16)
            memcpy(o.hashes + 16 * i, h, 16)
            k8 += 1
            i += 1
            pos = nxt


def decode(frames, bytes prev=None, bint chain=True):
    """Columns of the rows of ``frames`` (whole frames, GTJ3 or GTJ2, in seq order) and their
    hash chain, computed from ``prev`` (the hash of the row before the first; 16 zero bytes for
    None) with the GIL released.

    Returns ``(n, num, valid, text, hashes)``: ``num`` maps seq, tx, ts_ns, eid, vtype_old,
    old_f, old_i, vtype_new, new_f, new_i to numpy arrays; ``valid`` maps eid, old_f, old_i,
    new_f, new_i to Arrow validity bitmaps (uint8 arrays, bit set = valid) with their null
    counts; ``text`` maps the 8 text columns to ``(bitmap, null_count, int64 offsets, uint8
    data)``; ``hashes`` is the n*16 hash bytes (the last 16: the new head of the chain).
    Frames are trusted (scan() checked them, or this process's flush made them).  ``chain=False``
    (for benchmarks: what the hashing costs) leaves every GTJ3 row's hash equal to ``prev``.
    """
    cdef Py_ssize_t N = 0, nfr, fi, k
    cdef int64_t tsize[NTEXT]
    cdef uint8_t h[16]
    cdef Out o
    cdef const char** fp
    if prev is None:
        prev = bytes(16)
    if len(prev) != 16:
        raise ValueError("prev must be 16 bytes")
    memcpy(h, PyBytes_AS_STRING(prev), 16)
    memset(tsize, 0, sizeof(tsize))
    frames = [f if type(f) is bytes else bytes(f) for f in frames]
    nfr = len(frames)
    fp = <const char**>malloc(max(nfr, 1) * sizeof(char*))
    if fp == NULL:
        raise MemoryError()
    try:
        for fi in range(nfr):
            fp[fi] = PyBytes_AS_STRING(frames[fi])
        with nogil:
            text_sizes(fp, nfr, tsize, &N)
        seq, tx, ts, eid = (np.empty(N, np.int64) for _ in range(4))
        vto, vtn = np.empty(N, np.int8), np.empty(N, np.int8)
        fo, fn = np.empty(N, np.float64), np.empty(N, np.float64)
        io, in_ = np.empty(N, np.int64), np.empty(N, np.int64)
        nbm = (N + 7) // 8
        vbm = np.zeros((5, max(nbm, 1)), np.uint8)   # eid, old_f, old_i, new_f, new_i
        tbm = np.zeros((NTEXT, max(nbm, 1)), np.uint8)
        toff = np.empty((NTEXT, N + 1), np.int64)
        tdata = [np.empty(max(tsize[k], 1), np.uint8) for k in range(NTEXT)]
        hashes = np.empty(max(16 * N, 1), np.uint8)
        o.N, o.nbm = N, max(nbm, 1)
        o.seq, o.tx, o.ts, o.eid = _i64(seq), _i64(tx), _i64(ts), _i64(eid)
        o.vto, o.vtn = _i8(vto), _i8(vtn)
        o.fo, o.fn = _f64(fo), _f64(fn)
        o.io, o.in_ = _i64(io), _i64(in_)
        o.vbm, o.tbm, o.hashes = _u8(vbm), _u8(tbm), _u8(hashes)
        o.toff = _i64(toff)
        for k in range(NTEXT):
            o.tptr[k] = _u8(tdata[k])
            o.tnull[k] = 0
        memset(o.vnull, 0, sizeof(o.vnull))
        with nogil:
            fill(fp, nfr, &o, h, chain)
    finally:
        free(fp)
    names = ("eid", "old_f", "old_i", "new_f", "new_i")
    num = {"seq": seq, "tx": tx, "ts_ns": ts, "eid": eid, "vtype_old": vto, "old_f": fo, "old_i": io,
           "vtype_new": vtn, "new_f": fn, "new_i": in_}
    valid = {names[k]: (vbm[k, :nbm], o.vnull[k]) for k in range(5)}
    text = {TEXT_COLUMNS[k]: (tbm[k, :nbm], o.tnull[k], toff[k], tdata[k][:tsize[k]]) for k in range(NTEXT)}
    return N, num, valid, text, hashes[:16 * N].tobytes()


cdef inline int64_t* _i64(a):
    cdef int64_t[::1] v = a.reshape(-1)
    return &v[0] if v.shape[0] else NULL


cdef inline int8_t* _i8(a):
    cdef int8_t[::1] v = a
    return &v[0] if v.shape[0] else NULL


cdef inline double* _f64(a):
    cdef double[::1] v = a
    return &v[0] if v.shape[0] else NULL


cdef inline uint8_t* _u8(a):
    cdef uint8_t[::1] v = a.reshape(-1)
    return &v[0]
