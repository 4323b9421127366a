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
include "encode.pxi"

MAGIC = b"GTJ2"
HEADER_SIZE = HEAD + PHEAD


def encode(list buf, int64_t seq, int64_t tx, int64_t last_ts, author, bytes prev):
    """The frame of the buffered events as :func:`encode_frame` builds it for a flush:
    ``(frame, n, last_seq, last_tx, last_ts, last_hash)``."""
    return encode_frame(buf, seq, tx, last_ts, author, prev)


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
