"""Ybus assembly kernels: a fixed CSR pattern built once, values refilled in place."""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport qsort, malloc, free
from libc.string cimport memcpy


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

    Returns (indptr, indices, pos_ff, pos_ft, pos_tf, pos_tt, pos_diag), all int32.  The work
    arrays are one malloc'd block and the five position maps views of one array: this runs once
    per new topology, where every numpy allocation costs more than the loops on small grids.
    """
    if t.shape[0] != f.shape[0]:
        raise ValueError("f and t must have the same length")
    if nb < 0:
        raise ValueError("nb must be >= 0")
    return _pattern(nb, f.shape[0], &f[0] if f.shape[0] else NULL, &t[0] if t.shape[0] else NULL)


cdef tuple _pattern(int nb, Py_ssize_t nbr, const int32_t *f, const int32_t *t):
    cdef Py_ssize_t k
    cdef int32_t i, a, b, p, start, end, nraw
    for k in range(nbr):
        if f[k] < 0 or f[k] >= nb or t[k] < 0 or t[k] >= nb:
            raise ValueError(f"branch {k} has a bus index outside 0..{nb - 1}")
    # work block: cnt (nb + 1) | rp (nb + 1) | fill (nb) | raw (nb + 2 nbr)
    cdef int32_t *work = <int32_t *>malloc((4 * nb + 2 + 2 * nbr + 1) * sizeof(int32_t))
    if work == NULL:
        raise MemoryError()
    cdef int32_t *cnt = work
    cdef int32_t *rp = cnt + nb + 1
    cdef int32_t *fill = rp + nb + 1
    cdef int32_t *raw = fill + nb
    indptr_a = np.zeros(nb + 1, dtype=np.int32)
    cdef int32_t *indptr = _i32(indptr_a)
    cdef int32_t nnz = 0
    with nogil:
        # raw (possibly duplicated) column lists per row: diagonal + both branch ends
        for i in range(nb):
            cnt[i] = 1
        for k in range(nbr):
            if f[k] != t[k]:
                cnt[f[k]] += 1
                cnt[t[k]] += 1
        rp[0] = 0
        for i in range(nb):
            rp[i + 1] = rp[i] + cnt[i]
            fill[i] = rp[i]
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
    indices_a = np.empty(nnz, dtype=np.int32)
    cdef int32_t *ind = _i32(indices_a)
    if nnz:
        memcpy(ind, raw, nnz * sizeof(int32_t))
    free(work)
    # the position maps: pff | pft | ptf | ptt (nbr each) | pdiag (nb), views of one array
    pos_a = np.empty(4 * nbr + nb, dtype=np.int32)
    cdef int32_t *pff = _i32(pos_a)
    cdef int32_t *pft = pff + nbr
    cdef int32_t *ptf = pft + nbr
    cdef int32_t *ptt = ptf + nbr
    cdef int32_t *pdiag = ptt + nbr
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
    return (indptr_a, indices_a, pos_a[:nbr], pos_a[nbr:2 * nbr], pos_a[2 * nbr:3 * nbr],
            pos_a[3 * nbr:4 * nbr], pos_a[4 * nbr:])


def ybus_build(int nb, cnp.ndarray f, cnp.ndarray t, cnp.ndarray yff, cnp.ndarray yft, cnp.ndarray ytf,
               cnp.ndarray ytt, cnp.ndarray ysh):
    """:func:`ybus_pattern` then :func:`ybus_fill` into a new data array, in one call:
    (indptr, indices, (pos_ff, pos_ft, pos_tf, pos_tt, pos_diag), data)."""
    cdef Py_ssize_t nbr = cnp.PyArray_DIM(f, 0), k
    cdef const int32_t *ff = <const int32_t *>_arr(f, cnp.NPY_INT32, nbr, "f")
    cdef const int32_t *tt = <const int32_t *>_arr(t, cnp.NPY_INT32, nbr, "t")
    cdef const double complex *a = <const double complex *>_arr(yff, cnp.NPY_COMPLEX128, nbr, "yff")
    cdef const double complex *b = <const double complex *>_arr(yft, cnp.NPY_COMPLEX128, nbr, "yft")
    cdef const double complex *c = <const double complex *>_arr(ytf, cnp.NPY_COMPLEX128, nbr, "ytf")
    cdef const double complex *d = <const double complex *>_arr(ytt, cnp.NPY_COMPLEX128, nbr, "ytt")
    cdef const double complex *sh = <const double complex *>_arr(ysh, cnp.NPY_COMPLEX128, nb, "ysh")
    pat = _pattern(nb, nbr, ff, tt)
    cdef cnp.ndarray pos_a = <cnp.ndarray>(pat[2].base)
    cdef const int32_t *pff = <const int32_t *>cnp.PyArray_DATA(pos_a)
    cdef const int32_t *pft = pff + nbr
    cdef const int32_t *ptf = pft + nbr
    cdef const int32_t *ptt = ptf + nbr
    cdef const int32_t *pdiag = ptt + nbr
    cdef cnp.npy_intp nnz = cnp.PyArray_DIM(<cnp.ndarray>pat[1], 0)
    data_a = cnp.PyArray_ZEROS(1, &nnz, cnp.NPY_COMPLEX128, 0)
    cdef double complex *data = <double complex *>cnp.PyArray_DATA(<cnp.ndarray>data_a)
    with nogil:
        for k in range(nbr):
            data[pff[k]] += a[k]
            data[pft[k]] += b[k]
            data[ptf[k]] += c[k]
            data[ptt[k]] += d[k]
        for k in range(nb):
            data[pdiag[k]] += sh[k]
    return pat[0], pat[1], pat[2:], data_a


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


cdef inline char *_arr(cnp.ndarray a, int typenum, Py_ssize_t n, str name) except NULL:
    if (cnp.PyArray_TYPE(a) != typenum or cnp.PyArray_NDIM(a) != 1 or not cnp.PyArray_IS_C_CONTIGUOUS(a)
            or cnp.PyArray_DIM(a, 0) != n):
        raise ValueError(f"{name} must be a contiguous 1-d array of {n} entries of the kernel's dtype")
    return <char *>cnp.PyArray_DATA(a)


def same_end_kv(cnp.ndarray kv, cnp.ndarray f, cnp.ndarray t, cnp.ndarray kvf, cnp.ndarray kvt):
    """True when every branch end sits at a bus of the same base voltage as recorded in
    ``kvf`` / ``kvt`` (per-unit branch parameters depend on nothing else of the topology)."""
    cdef Py_ssize_t n = cnp.PyArray_DIM(f, 0), nb = cnp.PyArray_DIM(kv, 0), k
    if cnp.PyArray_DIM(kvf, 0) != n:
        return False
    cdef const double *v = <const double *>_arr(kv, cnp.NPY_DOUBLE, nb, "kv")
    cdef const int32_t *ff = <const int32_t *>_arr(f, cnp.NPY_INT32, n, "f")
    cdef const int32_t *tt = <const int32_t *>_arr(t, cnp.NPY_INT32, n, "t")
    cdef const double *a = <const double *>_arr(kvf, cnp.NPY_DOUBLE, n, "kvf")
    cdef const double *b = <const double *>_arr(kvt, cnp.NPY_DOUBLE, n, "kvt")
    for k in range(n):
        if not (0 <= ff[k] < nb and 0 <= tt[k] < nb) or v[ff[k]] != a[k] or v[tt[k]] != b[k]:
            return False
    return True


def masked_admittances(cnp.ndarray on, cnp.ndarray bad_if_on, tuple y_on):
    """(first bad branch or -1, (yff, yft, ytf, ytt)): the in-service admittances ``y_on`` with
    zeros where ``on`` is False (the arrays of ``y_on`` themselves when every branch is on); a bad
    branch is one in service whose ``bad_if_on`` is set (no series impedance)."""
    cdef Py_ssize_t n = cnp.PyArray_DIM(on, 0), k, i
    cdef const unsigned char *o = <const unsigned char *>_arr(on, cnp.NPY_BOOL, n, "on")
    cdef const unsigned char *bad = <const unsigned char *>_arr(bad_if_on, cnp.NPY_BOOL, n, "bad_if_on")
    cdef bint all_on = True
    for k in range(n):
        if o[k]:
            if bad[k]:
                return k, None
        else:
            all_on = False
    if all_on:
        return -1, y_on
    cdef const double complex *src
    cdef double complex *dst
    out = []
    for i in range(4):
        src = <const double complex *>_arr(y_on[i], cnp.NPY_COMPLEX128, n, "y_on")
        a = np.empty(n, dtype=complex)
        dst = <double complex *>cnp.PyArray_DATA(<cnp.ndarray>a)
        for k in range(n):
            dst[k] = src[k] if o[k] else 0.0
        out.append(a)
    return -1, tuple(out)
