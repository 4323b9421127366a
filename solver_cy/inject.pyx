"""Injection kernels: per-bus sums of element powers and the assembly of the specified complex
power, one pass each, for the incremental path (a write of one column of one kind).

Arguments are checked numpy arrays read through their data pointers: on a 14-bus case a
memoryview per argument would cost more than the arithmetic.  ``chunk_rows``: a study chunk's
injection rows from its profiled values (solver_cy/batch.py), without the GIL; ``first_conflict``:
pandapower's test of the voltage set-points at one bus (setpoint_conflicts.find)."""
cimport numpy as cnp
from libc.stdint cimport int64_t
from libc.math cimport fabs, isfinite, isinf
from libc.string cimport memcpy
import numpy as np

cnp.import_array()


cdef inline char *_data(cnp.ndarray a, int typenum, Py_ssize_t n, str name) except NULL:
    if (cnp.PyArray_TYPE(a) != typenum or cnp.PyArray_NDIM(a) != 1 or not cnp.PyArray_IS_C_CONTIGUOUS(a)
            or cnp.PyArray_DIM(a, 0) != n):
        raise ValueError(f"{name} must be a contiguous 1-d array of {n} entries of the kernel's dtype")
    return <char *>cnp.PyArray_DATA(a)


cdef inline cnp.ndarray _zeros(Py_ssize_t n, int typenum):
    cdef cnp.npy_intp dim = n
    return cnp.PyArray_ZEROS(1, &dim, typenum, 0)


def bus_sums(cnp.ndarray bus, cnp.ndarray p, cnp.ndarray q, cnp.ndarray w, cnp.ndarray scaling,
             Py_ssize_t nb):
    """(P, Q) per bus: sum over elements k of ``p[k] * w[k] * scaling[k]`` at ``bus[k]`` (and the
    same for ``q``); ``w`` folds in-service and sign, ``scaling`` may be None.  Elements whose
    weight is zero (out of service) are skipped."""
    cdef Py_ssize_t n = cnp.PyArray_DIM(bus, 0), k
    cdef const int64_t *b = <const int64_t *>_data(bus, cnp.NPY_INT64, n, "bus")
    cdef const double *pp = <const double *>_data(p, cnp.NPY_DOUBLE, n, "p")
    cdef const double *qq = <const double *>_data(q, cnp.NPY_DOUBLE, n, "q")
    cdef const double *ww = <const double *>_data(w, cnp.NPY_DOUBLE, n, "w")
    cdef const double *sc = NULL
    if scaling is not None:
        sc = <const double *>_data(scaling, cnp.NPY_DOUBLE, n, "scaling")
    for k in range(n):
        if not 0 <= b[k] < nb:
            raise ValueError("bus index outside 0..nb-1")
    P_a = _zeros(nb, cnp.NPY_DOUBLE)
    Q_a = _zeros(nb, cnp.NPY_DOUBLE)
    cdef double *P = <double *>cnp.PyArray_DATA(P_a)
    cdef double *Q = <double *>cnp.PyArray_DATA(Q_a)
    cdef double f
    with nogil:
        for k in range(n):
            f = ww[k]
            if sc != NULL:
                f = sc[k] * f
            if f != 0.0:
                P[b[k]] += pp[k] * f
                Q[b[k]] += qq[k] * f
    return P_a, Q_a


def gen_sums(cnp.ndarray rows, cnp.ndarray p, cnp.ndarray scaling, cnp.ndarray gbus,
             Py_ssize_t offset, Py_ssize_t nb):
    """Generator P in pfsoln order (one entry per entry of ``gbus``; ``p[rows] * scaling[rows]``
    from ``offset`` on, zeros elsewhere) and its per-bus sum over ``gbus``."""
    cdef Py_ssize_t n = cnp.PyArray_DIM(rows, 0), m = cnp.PyArray_DIM(p, 0)
    cdef Py_ssize_t ng = cnp.PyArray_DIM(gbus, 0), k
    cdef const int64_t *r = <const int64_t *>_data(rows, cnp.NPY_INT64, n, "rows")
    cdef const double *pp = <const double *>_data(p, cnp.NPY_DOUBLE, m, "p")
    cdef const double *sc = <const double *>_data(scaling, cnp.NPY_DOUBLE, m, "scaling")
    cdef const int64_t *gb = <const int64_t *>_data(gbus, cnp.NPY_INT64, ng, "gbus")
    if offset < 0 or offset + n > ng:
        raise ValueError("generator rows do not fit the generator table")
    for k in range(n):
        if not 0 <= r[k] < m:
            raise ValueError("generator row outside the table")
    for k in range(ng):
        if not 0 <= gb[k] < nb:
            raise ValueError("bus index outside 0..nb-1")
    g_a = _zeros(ng, cnp.NPY_DOUBLE)
    s_a = _zeros(nb, cnp.NPY_DOUBLE)
    cdef double *g = <double *>cnp.PyArray_DATA(g_a)
    cdef double *s = <double *>cnp.PyArray_DATA(s_a)
    with nogil:
        for k in range(n):
            g[offset + k] = pp[r[k]] * sc[r[k]]
        for k in range(ng):
            s[gb[k]] += g[k]
    return g_a, s_a


def assemble(list parts, cnp.ndarray sg, double sn):
    """s0 = (sg - sum(P) - j sum(Q)) / sn over ``parts`` = [(P, Q), ...] (MW, MVAr, load
    convention), with the totals.  Returns (s0, pd, qd, bad): ``bad`` is the first bus whose s0 is
    not finite, or -1."""
    cdef Py_ssize_t nb = cnp.PyArray_DIM(sg, 0), i, bad = -1
    cdef const double *g = <const double *>_data(sg, cnp.NPY_DOUBLE, nb, "sg")
    pd_a = _zeros(nb, cnp.NPY_DOUBLE)
    qd_a = _zeros(nb, cnp.NPY_DOUBLE)
    s0_a = _zeros(nb, cnp.NPY_CDOUBLE)
    cdef double *pd = <double *>cnp.PyArray_DATA(pd_a)
    cdef double *qd = <double *>cnp.PyArray_DATA(qd_a)
    cdef double *s0 = <double *>cnp.PyArray_DATA(s0_a)
    cdef const double *P
    cdef const double *Q
    for part in parts:
        P = <const double *>_data(part[0], cnp.NPY_DOUBLE, nb, "P")
        Q = <const double *>_data(part[1], cnp.NPY_DOUBLE, nb, "Q")
        with nogil:
            for i in range(nb):
                pd[i] += P[i]
                qd[i] += Q[i]
    with nogil:
        for i in range(nb):
            s0[2 * i] = (g[i] - pd[i]) / sn
            s0[2 * i + 1] = -qd[i] / sn
            if bad < 0 and not (isfinite(s0[2 * i]) and isfinite(s0[2 * i + 1])):
                bad = i
    return s0_a, pd_a, qd_a, bad


def shunt_ysh(cnp.ndarray lookup, cnp.ndarray rows, cnp.ndarray kv, cnp.ndarray vn_kv, cnp.ndarray step,
              cnp.ndarray active, cnp.ndarray p, cnp.ndarray q, Py_ssize_t nb):
    """Bus shunt admittance (MW / MVAr at 1 p.u., complex G - jB) of the shunts: per shunt k at
    internal bus ``lookup[rows[k]]``, ``(p[k] - j q[k]) * step[k] * (kv[bus] / vn_kv[k])**2`` when
    ``active[k]`` (the sums of model._bus_shunts' shunt part in one pass, no temporaries)."""
    cdef Py_ssize_t n = cnp.PyArray_DIM(rows, 0), nl = cnp.PyArray_DIM(lookup, 0), k, r
    cdef const int64_t *lk = <const int64_t *>_data(lookup, cnp.NPY_INT64, nl, "lookup")
    cdef const int64_t *rw = <const int64_t *>_data(rows, cnp.NPY_INT64, n, "rows")
    cdef const double *kvb = <const double *>_data(kv, cnp.NPY_DOUBLE, nb, "kv")
    cdef const double *vn = <const double *>_data(vn_kv, cnp.NPY_DOUBLE, n, "vn_kv")
    cdef const double *st = <const double *>_data(step, cnp.NPY_DOUBLE, n, "step")
    cdef const unsigned char *on = <const unsigned char *>_data(active, cnp.NPY_BOOL, n, "active")
    cdef const double *pp = <const double *>_data(p, cnp.NPY_DOUBLE, n, "p")
    cdef const double *qq = <const double *>_data(q, cnp.NPY_DOUBLE, n, "q")
    cdef Py_ssize_t b
    for k in range(n):
        r = rw[k]
        if not 0 <= r < nl or not 0 <= lk[r] < nb:
            raise ValueError("shunt bus outside the model")
    out_a = _zeros(nb, cnp.NPY_COMPLEX128)
    cdef double *out = <double *>cnp.PyArray_DATA(out_a)  # interleaved re, im
    cdef double f
    with nogil:
        for k in range(n):
            if not on[k]:
                continue
            b = lk[rw[k]]
            f = kvb[b] / vn[k]
            f = f * f * st[k]
            out[2 * b] += pp[k] * f
            out[2 * b + 1] -= qq[k] * f
    return out_a


def chunk_rows(tuple values, cnp.ndarray col_base, cnp.ndarray indptr, cnp.ndarray indices, cnp.ndarray data,
               cnp.ndarray slot_code, cnp.ndarray slot_bus, tuple base_rows, tuple out, cnp.ndarray delta):
    """The injection rows of a chunk of study steps (solver_cy/batch.py's map ``x = x0 + M (v - b)``).

    ``values``: one (steps x columns) float64 C-contiguous array per profiled entry, their columns
    in the map's column order, ``col_base`` (one per column) the base values ``b``.  ``indptr``,
    ``indices``, ``data`` (int64, int64, float64): the CSR rows of ``M`` for the slots of ``x``
    any value moves; ``slot_code`` (int64, one per slot): 0..5 for the real / imaginary part of
    s0, si, sz (-1: another array: pd, qd, generator p), ``slot_bus`` its bus.  Writes, per step,
    ``delta[step, slot] = (M (v - b))[slot]`` and, for each of s0, si, sz whose entry of ``out`` is
    a (steps x buses) complex array (None: skipped), the row ``base_rows[k] + delta`` (its slots
    added to the base row, each once)."""
    cdef Py_ssize_t ne = len(values), n = cnp.PyArray_DIM(delta, 0) if cnp.PyArray_NDIM(delta) == 2 else -1
    cdef Py_ssize_t ns = cnp.PyArray_DIM(indptr, 0) - 1, ncol = cnp.PyArray_DIM(col_base, 0)
    cdef Py_ssize_t nb = cnp.PyArray_DIM(<cnp.ndarray>base_rows[0], 0), e, i, r, p, c, w
    cdef int k
    if n < 0 or ns < 0 or cnp.PyArray_DIM(delta, 1) != ns or len(base_rows) != 3 or len(out) != 3:
        raise ValueError("chunk_rows: inconsistent arrays")
    cdef const int64_t *ip = <const int64_t *>_data(indptr, cnp.NPY_INT64, ns + 1, "indptr")
    cdef Py_ssize_t nnz = ip[ns] if ns >= 0 else 0
    if ip[0] != 0 or nnz < 0:
        raise ValueError("chunk_rows: bad indptr")
    for r in range(ns):
        if ip[r + 1] < ip[r]:
            raise ValueError("chunk_rows: bad indptr")
    cdef const int64_t *ix = <const int64_t *>_data(indices, cnp.NPY_INT64, nnz, "indices")
    cdef const double *dx = <const double *>_data(data, cnp.NPY_DOUBLE, nnz, "data")
    cdef const int64_t *code = <const int64_t *>_data(slot_code, cnp.NPY_INT64, ns, "slot_code")
    cdef const int64_t *sbus = <const int64_t *>_data(slot_bus, cnp.NPY_INT64, ns, "slot_bus")
    cdef const double *cb = <const double *>_data(col_base, cnp.NPY_DOUBLE, ncol, "col_base")
    for p in range(nnz):
        if not 0 <= ix[p] < ncol:
            raise ValueError("chunk_rows: column index out of range")
    for r in range(ns):
        if code[r] > 5 or (code[r] >= 0 and not 0 <= sbus[r] < nb):
            raise ValueError("chunk_rows: slot out of range")
    if not (cnp.PyArray_IS_C_CONTIGUOUS(delta) and cnp.PyArray_TYPE(delta) == cnp.NPY_DOUBLE):
        raise ValueError("chunk_rows: delta must be a C-contiguous float64 array")
    cdef double *dl = <double *>cnp.PyArray_DATA(delta)
    cdef const double *bases[3]
    cdef double *rows[3]
    cdef cnp.ndarray a
    for k in range(3):
        bases[k] = <const double *>_data(<cnp.ndarray>base_rows[k], cnp.NPY_COMPLEX128, nb, "base row")
        rows[k] = NULL
        if out[k] is not None:
            a = <cnp.ndarray>out[k]
            if (cnp.PyArray_TYPE(a) != cnp.NPY_COMPLEX128 or cnp.PyArray_NDIM(a) != 2 or not cnp.PyArray_IS_C_CONTIGUOUS(a)
                    or cnp.PyArray_DIM(a, 0) != n or cnp.PyArray_DIM(a, 1) != nb):
                raise ValueError("chunk_rows: an output is not a C-contiguous complex (steps x buses) array")
            rows[k] = <double *>cnp.PyArray_DATA(a)
    # the value columns: where each entry's block starts and how wide it is
    wa, sa = np.empty(max(ne, 1), np.intp), np.empty(max(ne, 1), np.uintp)
    cdef Py_ssize_t *width = <Py_ssize_t *>cnp.PyArray_DATA(<cnp.ndarray>wa)
    cdef size_t *src = <size_t *>cnp.PyArray_DATA(<cnp.ndarray>sa)
    w = 0
    for e in range(ne):
        a = <cnp.ndarray>values[e]
        if (cnp.PyArray_TYPE(a) != cnp.NPY_DOUBLE or cnp.PyArray_NDIM(a) != 2 or not cnp.PyArray_IS_C_CONTIGUOUS(a)
                or cnp.PyArray_DIM(a, 0) != n):
            raise ValueError("chunk_rows: values must be C-contiguous float64 (steps x columns) arrays")
        width[e] = cnp.PyArray_DIM(a, 1)
        src[e] = <size_t>cnp.PyArray_DATA(a)
        w += width[e]
    if w != ncol:
        raise ValueError("chunk_rows: the values' columns do not match col_base")
    d_a = np.empty(max(ncol, 1))
    cdef double *d = <double *>cnp.PyArray_DATA(<cnp.ndarray>d_a)
    cdef double v
    cdef const double *s
    with nogil:
        for i in range(n):
            c = 0
            for e in range(ne):  # this step's values less their base, in column order
                s = <const double *>src[e] + i * width[e]
                for p in range(width[e]):
                    d[c] = s[p] - cb[c]
                    c += 1
            for k in range(3):
                if rows[k] != NULL:
                    memcpy(rows[k] + 2 * i * nb, bases[k], 2 * nb * sizeof(double))
            for r in range(ns):
                v = 0.0
                for p in range(ip[r], ip[r + 1]):
                    v += dx[p] * d[ix[p]]
                dl[i * ns + r] = v
                if code[r] >= 0 and rows[code[r] >> 1] != NULL:
                    rows[code[r] >> 1][2 * (i * nb + sbus[r]) + (code[r] & 1)] += v


def first_conflict(cnp.ndarray bus, cnp.ndarray v, Py_ssize_t nb):
    """pandapower's test of the set-points at one bus (setpoint_conflicts.find): -1 when no bus
    holds two of the elements (``bus``: int64 in 0..nb-1, the elements in pandapower's order),
    else the first element whose value ``v[k]`` is not close to the first value at its bus as
    numpy.isclose judges (``|a - f| <= 1e-8 + 1e-5 |f|``, infinities equal only to themselves, NaN
    to nothing, itself included), -1 when there is none."""
    cdef Py_ssize_t n = cnp.PyArray_DIM(bus, 0), k, f
    cdef const int64_t *b = <const int64_t *>_data(bus, cnp.NPY_INT64, n, "bus")
    cdef const double *x = <const double *>_data(v, cnp.NPY_DOUBLE, n, "v")
    for k in range(n):
        if not 0 <= b[k] < nb:
            raise ValueError("first_conflict: bus out of range")
    if n < 2:
        return -1
    first_a = np.full(nb, -1, dtype=np.int64)
    cdef int64_t *first = <int64_t *>cnp.PyArray_DATA(first_a)
    cdef bint twice = False
    cdef double a, r
    for k in range(n):
        if first[b[k]] < 0:
            first[b[k]] = k
        else:
            twice = True
    if not twice:
        return -1
    for k in range(n):
        a = x[k]
        r = x[first[b[k]]]
        if isinf(a) or isinf(r):
            if a != r:
                return k
        elif not fabs(a - r) <= 1e-8 + 1e-5 * fabs(r):  # (NaN: not close)
            return k
    return -1
