# Decoding frames into Arrow-ready column buffers with their hash chain (included by
# frames.pyx, after the scanner: it uses get4/get8 and the BLAKE2b declarations there).  See
# frames.pyx for the frame layouts.

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
