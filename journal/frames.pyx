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


include "decode.pxi"
