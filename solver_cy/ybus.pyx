"""Ybus assembly kernels: a fixed CSR pattern built once, values refilled in place."""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport qsort


cnp.import_array()


cdef int _cmp_int32(const void *a, const void *b) noexcept nogil:
    cdef int32_t x = (<const int32_t *>a)[0]
    cdef int32_t y = (<const int32_t *>b)[0]
    return (x > y) - (x < y)


cdef inline int32_t _find(const int32_t *idx, int32_t lo, int32_t hi, int32_t col) noexcept nogil:
    """Position of col in the sorted slice idx[lo:hi] (binary search; -1 if absent)."""
    cdef int32_t mid, end = hi
    while lo < hi:
        mid = (lo + hi) >> 1
        if idx[mid] < col:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < end and idx[lo] == col else -1


def ybus_pattern(int nb, const int32_t[::1] f, const int32_t[::1] t):
    """CSR pattern of Ybus (sorted columns, every diagonal present) and position maps.

    Returns (indptr, indices, pos_ff, pos_ft, pos_tf, pos_tt, pos_diag), all int32.  Work arrays
    are numpy arrays read through raw pointers (no typed-memoryview conversions per array: this
    runs once per new topology, where those conversions cost more than the loops).
    """
    cdef Py_ssize_t nbr = f.shape[0], k
    cdef int32_t i, a, b, p, start, end
    if t.shape[0] != nbr:
        raise ValueError("f and t must have the same length")
    if nb < 0:
        raise ValueError("nb must be >= 0")
    for k in range(nbr):
        if f[k] < 0 or f[k] >= nb or t[k] < 0 or t[k] >= nb:
            raise ValueError(f"branch {k} has a bus index outside 0..{nb - 1}")

    # raw (possibly duplicated) column lists per row: diagonal + both branch ends
    cnt_a = np.ones(nb + 1, dtype=np.int32)
    rp_a = np.zeros(nb + 1, dtype=np.int32)
    cdef int32_t *cnt = _i32(cnt_a)
    cdef int32_t *rp = _i32(rp_a)
    cnt[nb] = 0
    for k in range(nbr):
        if f[k] != t[k]:
            cnt[f[k]] += 1
            cnt[t[k]] += 1
    for i in range(nb):
        rp[i + 1] = rp[i] + cnt[i]
    raw_a = np.empty(max(rp[nb], 1), dtype=np.int32)
    fill_a = rp_a[:nb].copy()
    cdef int32_t *raw = _i32(raw_a)
    cdef int32_t *fill = _i32(fill_a)
    for i in range(nb):
        raw[fill[i]] = i
        fill[i] += 1
    for k in range(nbr):
        a = f[k]
        b = t[k]
        if a != b:
            raw[fill[a]] = b
            fill[a] += 1
            raw[fill[b]] = a
            fill[b] += 1

    # sort and deduplicate each row in place, then compact
    indptr_a = np.zeros(nb + 1, dtype=np.int32)
    cdef int32_t *indptr = _i32(indptr_a)
    cdef int32_t nnz = 0
    with nogil:
        for i in range(nb):
            start = rp[i]
            end = rp[i + 1]
            if end - start > 1:
                qsort(&raw[start], end - start, sizeof(int32_t), _cmp_int32)
            for p in range(start, end):
                if p == start or raw[p] != raw[p - 1]:
                    raw[nnz] = raw[p]
                    nnz += 1
            indptr[i + 1] = nnz
    indices = raw_a[:nnz].copy()
    cdef const int32_t *ind = raw

    pdiag_a = np.empty(nb, dtype=np.int32)
    pff_a = np.empty(nbr, dtype=np.int32)
    pft_a = np.empty(nbr, dtype=np.int32)
    ptf_a = np.empty(nbr, dtype=np.int32)
    ptt_a = np.empty(nbr, dtype=np.int32)
    cdef int32_t *pdiag = _i32(pdiag_a)
    cdef int32_t *pff = _i32(pff_a)
    cdef int32_t *pft = _i32(pft_a)
    cdef int32_t *ptf = _i32(ptf_a)
    cdef int32_t *ptt = _i32(ptt_a)
    with nogil:
        for i in range(nb):
            pdiag[i] = _find(ind, indptr[i], indptr[i + 1], i)
        for k in range(nbr):
            a = f[k]
            b = t[k]
            pff[k] = pdiag[a]
            ptt[k] = pdiag[b]
            pft[k] = _find(ind, indptr[a], indptr[a + 1], b)
            ptf[k] = _find(ind, indptr[b], indptr[b + 1], a)
    return indptr_a, indices, pff_a, pft_a, ptf_a, ptt_a, pdiag_a


cdef inline int32_t *_i32(cnp.ndarray a):
    """Data pointer of a C-contiguous int32 array this module made."""
    return <int32_t *>cnp.PyArray_DATA(a)


def ybus_fill(double complex[::1] data,
              const int32_t[::1] pos_ff, const int32_t[::1] pos_ft,
              const int32_t[::1] pos_tf, const int32_t[::1] pos_tt,
              const int32_t[::1] pos_diag,
              const double complex[::1] yff, const double complex[::1] yft,
              const double complex[::1] ytf, const double complex[::1] ytt,
              const double complex[::1] ysh):
    """data[:] = 0, then add each branch's 2x2 block and the bus shunts (p.u.)."""
    cdef Py_ssize_t nbr = pos_ff.shape[0], nb = pos_diag.shape[0], k, nnz = data.shape[0]
    for n in (pos_ft.shape[0], pos_tf.shape[0], pos_tt.shape[0], yff.shape[0],
              yft.shape[0], ytf.shape[0], ytt.shape[0]):
        if n != nbr:
            raise ValueError("branch arrays must all have the same length")
    if ysh.shape[0] != nb:
        raise ValueError("ysh must have one entry per bus (len(pos_diag))")
    for k in range(nbr):
        if not (0 <= pos_ff[k] < nnz and 0 <= pos_ft[k] < nnz
                and 0 <= pos_tf[k] < nnz and 0 <= pos_tt[k] < nnz):
            raise ValueError(f"branch {k}: position outside data")
    for k in range(nb):
        if not 0 <= pos_diag[k] < nnz:
            raise ValueError(f"bus {k}: diagonal position outside data")
    with nogil:
        for k in range(nnz):
            data[k] = 0
        for k in range(nbr):
            data[pos_ff[k]] += yff[k]
            data[pos_ft[k]] += yft[k]
            data[pos_tf[k]] += ytf[k]
            data[pos_tt[k]] += ytt[k]
        for k in range(nb):
            data[pos_diag[k]] += ysh[k]


cdef inline Py_ssize_t _root(Py_ssize_t *parent, Py_ssize_t x) noexcept nogil:
    while parent[x] != x:
        parent[x] = parent[parent[x]]  # path halving
        x = parent[x]
    return x


def reachable(Py_ssize_t nb, const int64_t[::1] f, const int64_t[::1] t, const int64_t[::1] start):
    """Boolean mask of the buses connected to any bus of ``start`` through the branches (f, t)
    (union-find; the branches are undirected)."""
    cdef Py_ssize_t n = f.shape[0], k, a, b
    if t.shape[0] != n:
        raise ValueError("f and t must have the same length")
    for k in range(n):
        if f[k] < 0 or f[k] >= nb or t[k] < 0 or t[k] >= nb:
            raise ValueError(f"branch {k} has a bus index outside 0..{nb - 1}")
    for k in range(start.shape[0]):
        if start[k] < 0 or start[k] >= nb:
            raise ValueError(f"start bus {start[k]} outside 0..{nb - 1}")
    parent_arr = np.arange(nb, dtype=np.intp)
    out = np.zeros(nb, dtype=bool)
    cdef Py_ssize_t[::1] parent = parent_arr
    cdef unsigned char[::1] mark = np.zeros(nb, dtype=np.uint8)
    cdef unsigned char[::1] o = out.view(np.uint8)
    if nb == 0:
        return out
    cdef Py_ssize_t *p = &parent[0]
    with nogil:
        for k in range(n):
            a = _root(p, f[k])
            b = _root(p, t[k])
            if a != b:
                if a < b:
                    p[b] = a
                else:
                    p[a] = b
        for k in range(start.shape[0]):
            mark[_root(p, start[k])] = 1
        for k in range(nb):
            o[k] = mark[_root(p, k)]
    return out
