"""Kernels of the grid2op backend (gridtape.grid2op): the per-model constants of its result
buffers (:func:`model_arrays`), the copy of a solve's result arrays into its float32 buffers
(:class:`BufferPack`, :func:`fill_buffers`) and the planning of its value stores
(:func:`plan_column`)."""
import numpy as np
cimport numpy as cnp
from libc.math cimport isfinite, sqrt
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

cnp.import_array()


include "ptr.pxi"


def model_arrays(lookup, base_kv, f, t, Py_ssize_t n, tuple elem_rows, tuple active, tuple in_service,
                 line_on, trafo_on, status):
    """The per-model arrays of the backend's results (GridtapeBackend._new_model_cache_numpy is
    the reference), for a branch list led by the n lines and transformers:
    ``(b2, kv2_on, amp_den, off2, eb, eon, suspect)``: the buses of the origin then extremity
    ends (int64), their kV times in service, kV * sqrt(3) / 1000, 1 - in service; the internal
    bus (int64) and activity (float) of every one-bus element (the groups of ``elem_rows`` /
    ``active`` / ``in_service`` in order: world bus rows, bool, bool); and whether an element or
    a line is in service without being active in the model (the grid may be split)."""
    cdef Py_ssize_t nwb = _size(lookup), nb = _size(base_kv), nl = _size(line_on), nt = _size(trafo_on)
    cdef Py_ssize_t n2 = 2 * n, ne = 0, g, i, k, m, off
    cdef int ng = len(elem_rows)
    if nwb < 0 or nb < 0 or nl < 0 or nt < 0 or nl + nt != n or _size(f) < n or _size(t) < n \
            or _size(status) < n or len(active) != ng or len(in_service) != ng:
        raise ValueError("model_arrays: inconsistent arrays")
    for g in range(ng):
        m = _size(elem_rows[g])
        if m < 0 or _size(active[g]) != m or _size(in_service[g]) != m:
            raise ValueError("model_arrays: inconsistent element arrays")
        ne += m
    cdef const int64_t *lk = <const int64_t *>_ptr(lookup, cnp.NPY_INT64, nwb, "lookup")
    cdef const double *kv = <const double *>_ptr(base_kv, cnp.NPY_DOUBLE, nb, "base_kv")
    cdef const int32_t *pf = <const int32_t *>_ptr(f, cnp.NPY_INT32, -1, "f")
    cdef const int32_t *pt = <const int32_t *>_ptr(t, cnp.NPY_INT32, -1, "t")
    cdef const unsigned char *lon = <const unsigned char *>_ptr(line_on, cnp.NPY_BOOL, nl, "line in_service")
    cdef const unsigned char *ton = <const unsigned char *>_ptr(trafo_on, cnp.NPY_BOOL, nt, "trafo in_service")
    cdef const unsigned char *st = <const unsigned char *>_ptr(status, cnp.NPY_BOOL, -1, "status")
    b2_a = np.empty(n2, dtype=np.int64)
    kv2_a = np.empty(n2)
    amp_a = np.empty(n2)
    off_a = np.empty(n2)
    eb_a = np.empty(ne, dtype=np.int64)
    eon_a = np.empty(ne)
    cdef int64_t *b2 = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>b2_a)
    cdef double *kv2 = <double *>cnp.PyArray_DATA(<cnp.ndarray>kv2_a)
    cdef double *amp = <double *>cnp.PyArray_DATA(<cnp.ndarray>amp_a)
    cdef double *of = <double *>cnp.PyArray_DATA(<cnp.ndarray>off_a)
    cdef int64_t *eb = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>eb_a)
    cdef double *eon = <double *>cnp.PyArray_DATA(<cnp.ndarray>eon_a)
    cdef const int64_t *rows
    cdef const unsigned char *act
    cdef const unsigned char *ins
    cdef bint suspect = False, on
    cdef double k2, c = 1.7320508075688772 / 1000.0  # np.sqrt(3.0) / 1000.0
    for k in range(n):
        if not (0 <= pf[k] < nb and 0 <= pt[k] < nb):
            raise ValueError("model_arrays: bus index out of range")
        on = lon[k] if k < nl else ton[k - nl]
        if on and not st[k]:
            suspect = True
        b2[k] = pf[k]
        b2[k + n] = pt[k]
        for i in range(k, n2, n):  # the origin end, then the extremity end
            k2 = kv[b2[i]]
            kv2[i] = k2 * (1.0 if on else 0.0)
            amp[i] = k2 * c
            of[i] = 1.0 - (1.0 if on else 0.0)
    off = 0
    for g in range(ng):
        m = _size(elem_rows[g])
        rows = <const int64_t *>_ptr(elem_rows[g], cnp.NPY_INT64, m, "element rows")
        act = <const unsigned char *>_ptr(active[g], cnp.NPY_BOOL, m, "active")
        ins = <const unsigned char *>_ptr(in_service[g], cnp.NPY_BOOL, m, "in_service")
        for i in range(m):
            if not 0 <= rows[i] < nwb or not 0 <= lk[rows[i]] < nb:
                raise ValueError("model_arrays: bus index out of range")
            eb[off + i] = lk[rows[i]]
            eon[off + i] = 1.0 if act[i] else 0.0
            if ins[i] and not act[i]:
                suspect = True
        off += m
    return b2_a, kv2_a, amp_a, off_a, eb_a, eon_a, suspect


def plan_column(changed, values, divide, column, bint every):
    """The world write of one grid2op value store (apply_action's ``_plan_values``): ``None``
    when nothing is to be written, else ``(rows, vals)`` with ``rows`` the int64 positions (None:
    the whole column) and ``vals`` float64.  A row is written when the store marks it changed
    and (unless ``every``) its value, ``values[k] / divide[k]`` (``divide`` may be None), differs
    from ``column[k]`` (a NaN always differs: the checked write refuses it).  Values are
    converted to float64 before dividing, as numpy's promotion does.  NotImplemented when the
    arrays are not the dtypes this kernel takes (the caller's numpy path then)."""
    cdef Py_ssize_t n = _size(changed), k, m = 0
    if n < 0 or _size(column) != n or _size(values) != n or (divide is not None and _size(divide) != n):
        return NotImplemented
    cdef cnp.ndarray ch_a = <cnp.ndarray>changed, v_a = <cnp.ndarray>values, c_a = <cnp.ndarray>column
    if cnp.PyArray_TYPE(ch_a) != cnp.NPY_BOOL or cnp.PyArray_TYPE(c_a) != cnp.NPY_DOUBLE or \
            not (cnp.PyArray_TYPE(v_a) == cnp.NPY_FLOAT or cnp.PyArray_TYPE(v_a) == cnp.NPY_DOUBLE) or \
            not (cnp.PyArray_IS_C_CONTIGUOUS(ch_a) and cnp.PyArray_IS_C_CONTIGUOUS(v_a)
                 and cnp.PyArray_IS_C_CONTIGUOUS(c_a)):
        return NotImplemented
    cdef const double *dv = NULL
    if divide is not None:
        if not (cnp.PyArray_Check(divide) and cnp.PyArray_TYPE(<cnp.ndarray>divide) == cnp.NPY_DOUBLE
                and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>divide)):
            return NotImplemented
        dv = <const double *>cnp.PyArray_DATA(<cnp.ndarray>divide)
    if n == 0:
        return None
    cdef const unsigned char *ch = <const unsigned char *>cnp.PyArray_DATA(ch_a)
    cdef const double *col = <const double *>cnp.PyArray_DATA(c_a)
    cdef const float *vf = NULL
    cdef const double *vd = NULL
    if cnp.PyArray_TYPE(v_a) == cnp.NPY_FLOAT:
        vf = <const float *>cnp.PyArray_DATA(v_a)
    else:
        vd = <const double *>cnp.PyArray_DATA(v_a)
    cdef double x
    cdef int64_t *rw = <int64_t *>malloc(n * sizeof(int64_t))
    cdef double *xv = <double *>malloc(n * sizeof(double))
    if rw == NULL or xv == NULL:
        free(rw)
        free(xv)
        raise MemoryError()
    for k in range(n):
        if not ch[k]:
            continue
        x = <double>vf[k] if vf != NULL else vd[k]
        if dv != NULL:
            x = x / dv[k]
        if every or not (col[k] == x):
            rw[m] = k
            xv[m] = x
            m += 1
    cdef cnp.npy_intp dim = m
    cdef Py_ssize_t i
    try:
        if m == 0:
            return None
        vals = cnp.PyArray_EMPTY(1, &dim, cnp.NPY_DOUBLE, 0)
        memcpy(cnp.PyArray_DATA(<cnp.ndarray>vals), xv, m * sizeof(double))
        if every and m == n:
            return None, vals
        rows = cnp.PyArray_EMPTY(1, &dim, cnp.NPY_INT64, 0)
        memcpy(cnp.PyArray_DATA(<cnp.ndarray>rows), rw, m * sizeof(int64_t))
        return rows, vals
    finally:
        free(rw)
        free(xv)


cdef class BufferPack:
    """The constants of one model that :func:`fill_buffers` reads, checked once when the model is
    new: the backend's float32 buffers ``lbuf`` (5 x 2n: rows p, q, v, a, theta; columns the
    origin ends of its n powerlines, then their extremity ends) and ``ebuf`` (4 x ne: rows p, q,
    v, theta; columns ``sizes`` = (generators, loads, storage units, shunts) in that order);
    ``sel``: the model branch of each powerline (int64, n); ``b2``, ``kv2_on``, ``amp_den``,
    ``off2``, ``eb``, ``eon``: as :func:`model_arrays` returns them; ``base_kv``: the model's
    base voltages.  The arrays are held."""
    cdef float *L
    cdef float *E
    cdef const int64_t *sel
    cdef const int64_t *b2
    cdef const double *kv2_on
    cdef const double *amp_den
    cdef const double *off2
    cdef const int64_t *eb
    cdef const double *eon
    cdef const double *base_kv
    cdef readonly Py_ssize_t n, ne, nb, nbr, ng, nl, ns, nsh
    cdef object _keep

    def __init__(self, lbuf, ebuf, tuple sizes, sel, b2, kv2_on, amp_den, off2, eb, eon, base_kv, Py_ssize_t nbr):
        cdef Py_ssize_t i, nb = _size(base_kv)
        if not cnp.PyArray_Check(lbuf) or not cnp.PyArray_Check(ebuf) or nb < 0 or nbr < 0 or len(sizes) != 4 \
                or cnp.PyArray_NDIM(<cnp.ndarray>lbuf) != 2 or cnp.PyArray_NDIM(<cnp.ndarray>ebuf) != 2 \
                or cnp.PyArray_DIM(<cnp.ndarray>lbuf, 0) != 5 or cnp.PyArray_DIM(<cnp.ndarray>ebuf, 0) != 4:
            raise ValueError("BufferPack: inconsistent buffers")
        self.n = cnp.PyArray_DIM(<cnp.ndarray>lbuf, 1) // 2
        self.ne = cnp.PyArray_DIM(<cnp.ndarray>ebuf, 1)
        self.ng, self.nl, self.ns, self.nsh = sizes
        if 2 * self.n != cnp.PyArray_DIM(<cnp.ndarray>lbuf, 1) or self.ng + self.nl + self.ns + self.nsh != self.ne \
                or min(sizes) < 0:
            raise ValueError("BufferPack: inconsistent buffers")
        self.nb, self.nbr = nb, nbr
        self.L = <float *>_ptr(lbuf, cnp.NPY_FLOAT32, 10 * self.n, "line buffer")
        self.E = <float *>_ptr(ebuf, cnp.NPY_FLOAT32, 4 * self.ne, "element buffer")
        self.sel = <const int64_t *>_ptr(sel, cnp.NPY_INT64, self.n, "sel")
        self.b2 = <const int64_t *>_ptr(b2, cnp.NPY_INT64, 2 * self.n, "b2")
        self.kv2_on = <const double *>_ptr(kv2_on, cnp.NPY_DOUBLE, 2 * self.n, "kv2_on")
        self.amp_den = <const double *>_ptr(amp_den, cnp.NPY_DOUBLE, 2 * self.n, "amp_den")
        self.off2 = <const double *>_ptr(off2, cnp.NPY_DOUBLE, 2 * self.n, "off2")
        self.eb = <const int64_t *>_ptr(eb, cnp.NPY_INT64, self.ne, "eb")
        self.eon = <const double *>_ptr(eon, cnp.NPY_DOUBLE, self.ne, "eon")
        self.base_kv = <const double *>_ptr(base_kv, cnp.NPY_DOUBLE, nb, "base_kv")
        for i in range(self.n):
            if not 0 <= self.sel[i] < nbr:
                raise ValueError("BufferPack: branch index out of range")
        for i in range(2 * self.n):
            if not 0 <= self.b2[i] < nb:
                raise ValueError("BufferPack: bus index out of range")
        for i in range(self.ne):
            if not 0 <= self.eb[i] < nb:
                raise ValueError("BufferPack: bus index out of range")
        self._keep = (lbuf, ebuf, sel, b2, kv2_on, amp_den, off2, eb, eon, base_kv)


cdef inline double _z(double x) noexcept nogil:
    return x if isfinite(x) else 0.0


def fill_buffers(BufferPack k not None, vm_in, va_in, sf_in, st_in, gen_pos, gen_p, gen_q, load_p, load_q, sto_p, sto_q,
                 sh_p, sh_q, bint dc):
    """Copy one solve's result arrays (result_arrays.ResultArrays: ``vm``, ``va``, ``sf``,
    ``st``, ``gen_p``, ``gen_q``, ``element("load")``, ``element("shunt")``) into the pack's
    float32 buffers; return whether every line value is finite.

    Unsupplied buses (NaN magnitude or angle) read 0.  Lines: P, Q at both ends, V (kV, 0 when
    switched off), current (A, 0 when switched off), angle.  Elements: V (kV) and angle where
    active (0 elsewhere); generators' P, Q through ``gen_pos`` (each gen row's entry of the
    generator table, -1: none, reads 0); loads', storage units' (``sto_p``, ``sto_q``: what the
    backend reports for them) and shunts' P, Q.  ``dc``: loads, generators and storage units
    report no Q.  ``vm``: the caller's magnitudes (the result arrays' in AC)."""
    cdef Py_ssize_t nb = k.nb, n = k.n, n2 = 2 * k.n, ne = k.ne, nbr = k.nbr, ng = k.ng, nl = k.nl
    cdef Py_ssize_t ns = k.ns, nsh = k.nsh, ngt = _size(gen_p), i, j, c
    cdef const double *vm = <const double *>_ptr(vm_in, cnp.NPY_DOUBLE, nb, "vm")
    cdef const double *va = <const double *>_ptr(va_in, cnp.NPY_DOUBLE, nb, "va")
    cdef const double complex *sf = <const double complex *>_ptr(sf_in, cnp.NPY_COMPLEX128, nbr, "sf")
    cdef const double complex *st = <const double complex *>_ptr(st_in, cnp.NPY_COMPLEX128, nbr, "st")
    cdef const int64_t *gpos = <const int64_t *>_ptr(gen_pos, cnp.NPY_INT64, ng, "gen_pos")
    cdef const double *gp = <const double *>_ptr(gen_p, cnp.NPY_DOUBLE, ngt, "gen_p")
    cdef const double *gq = <const double *>_ptr(gen_q, cnp.NPY_DOUBLE, ngt, "gen_q")
    cdef const double *lp = <const double *>_ptr(load_p, cnp.NPY_DOUBLE, nl, "load p")
    cdef const double *lq = <const double *>_ptr(load_q, cnp.NPY_DOUBLE, nl, "load q")
    cdef const double *sp = <const double *>_ptr(sto_p, cnp.NPY_DOUBLE, ns, "storage p")
    cdef const double *sq = <const double *>_ptr(sto_q, cnp.NPY_DOUBLE, ns, "storage q")
    cdef const double *hp = <const double *>_ptr(sh_p, cnp.NPY_DOUBLE, nsh, "shunt p")
    cdef const double *hq = <const double *>_ptr(sh_q, cnp.NPY_DOUBLE, nsh, "shunt q")
    for i in range(ng):
        if not -1 <= gpos[i] < ngt:
            raise ValueError("fill_buffers: generator position out of range")
    cdef float *L = k.L
    cdef float *E = k.E
    cdef double complex s
    cdef double x
    cdef int64_t b
    cdef bint finite = True
    with nogil:
        for i in range(n2):
            j = k.sel[i % n] if n else 0
            s = sf[j] if i < n else st[j]
            b = k.b2[i]
            x = _z(vm[b])
            L[i] = <float>s.real
            L[n2 + i] = <float>s.imag
            L[2 * n2 + i] = <float>(x * k.kv2_on[i])
            # |S| as resk.branch_loading takes it (hypot's care for overflow costs as much as the
            # rest of this loop, and no power in MVA comes near it)
            L[3 * n2 + i] = <float>(sqrt(s.real * s.real + s.imag * s.imag) / (x * k.amp_den[i] + k.off2[i]))
            L[4 * n2 + i] = <float>_z(va[b])
            if finite and not (isfinite(L[i]) and isfinite(L[n2 + i]) and isfinite(L[2 * n2 + i])
                               and isfinite(L[3 * n2 + i]) and isfinite(L[4 * n2 + i])):
                finite = False
        for i in range(ne):
            b = k.eb[i]
            E[2 * ne + i] = <float>(_z(vm[b]) * k.base_kv[b] * k.eon[i])
            E[3 * ne + i] = <float>(_z(va[b]) * k.eon[i])
        for i in range(ng):
            j = gpos[i]
            E[i] = <float>(gp[j] if j >= 0 else 0.0)
            E[ne + i] = <float>(gq[j] if j >= 0 and not dc else 0.0)
        c = ng
        for i in range(nl):
            E[c + i] = <float>lp[i]
            E[ne + c + i] = <float>(0.0 if dc else lq[i])
        c = ng + nl
        for i in range(ns):
            E[c + i] = <float>sp[i]
            E[ne + c + i] = <float>(0.0 if dc else sq[i])
        c = ng + nl + ns
        for i in range(nsh):
            E[c + i] = <float>hp[i]
            E[ne + c + i] = <float>hq[i]
    return finite
