"""Kernel of the grid2op backend (gridtape.grid2op.GridtapeBackend._fetch): an AC power flow's
bus voltages, branch results and one-bus element voltages in one pass, written into the
backend's float32 result buffers.  Its reference is the numpy path of ``_fetch`` (kept for DC
flows and branch lists that do not start with the lines and transformers)."""
import numpy as np
cimport numpy as cnp
from libc.math cimport atan2, hypot, isfinite, M_PI
from libc.stdint cimport int32_t, int64_t

cnp.import_array()


cdef const void *_ptr(object a, int typenum, Py_ssize_t n, str what) except NULL:
    """Data pointer of ``a``: a C-contiguous array of dtype ``typenum`` with ``n`` elements (n < 0:
    any size); ValueError otherwise.  (Raw pointers, not typed memoryviews: the backend calls
    these kernels once per step or per topology, where buffer acquisitions cost more than the
    loops.)"""
    if not cnp.PyArray_Check(a):
        raise ValueError(f"{what}: not an array")
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_IS_C_CONTIGUOUS(arr) \
            or (n >= 0 and cnp.PyArray_SIZE(arr) != n):
        raise ValueError(f"{what}: wrong dtype, layout or size")
    if cnp.PyArray_SIZE(arr) == 0:
        return <const void *>&_EMPTY
    return cnp.PyArray_DATA(arr)


cdef double _EMPTY = 0.0


cdef Py_ssize_t _size(object a):
    return cnp.PyArray_SIZE(<cnp.ndarray>a) if cnp.PyArray_Check(a) else -1


cdef class LinePack:
    """The constants of one model that ``ac_results`` reads (branch ends, result factors, element
    buses and the result buffers), checked once when the model is new: a kernel call then takes
    no more than the voltages.  ``admittances`` re-points the branch admittances (the engine
    replaces those arrays when admittance values change).  The arrays are held (``_keep``)."""
    cdef const int64_t *none
    cdef const int64_t *b2
    cdef const int64_t *eb
    cdef const int32_t *f
    cdef const int32_t *t
    cdef const double complex *yff
    cdef const double complex *yft
    cdef const double complex *ytf
    cdef const double complex *ytt
    cdef const double *kv2_on
    cdef const double *amp_den
    cdef const double *off2
    cdef const double *base_kv
    cdef const double *eon
    cdef float *lbuf
    cdef float *ebuf
    cdef Py_ssize_t nb, n, ne, nnone
    cdef object _keep, _y
    cdef readonly object yff_obj

    def __init__(self, none, f, t, b2, kv2_on, amp_den, off2, lbuf, base_kv, eb, eon, ebuf):
        cdef Py_ssize_t nb = _size(base_kv), n2, n, ne = _size(eb), i
        if nb < 0 or ne < 0 or not cnp.PyArray_Check(lbuf) or not cnp.PyArray_Check(ebuf) \
                or cnp.PyArray_NDIM(<cnp.ndarray>lbuf) != 2 or cnp.PyArray_NDIM(<cnp.ndarray>ebuf) != 2:
            raise ValueError("LinePack: inconsistent arrays")
        n2 = cnp.PyArray_DIM(<cnp.ndarray>lbuf, 1)
        n = n2 // 2
        if cnp.PyArray_DIM(<cnp.ndarray>lbuf, 0) != 5 or n2 != 2 * n \
                or cnp.PyArray_DIM(<cnp.ndarray>ebuf, 0) != 4 or cnp.PyArray_DIM(<cnp.ndarray>ebuf, 1) != ne:
            raise ValueError("LinePack: inconsistent buffers")
        if _size(f) < n or _size(t) < n:
            raise ValueError("LinePack: fewer branches than lines")
        self.none = <const int64_t *>_ptr(none, cnp.NPY_INT64, -1, "none")
        self.nnone = _size(none)
        self.f = <const int32_t *>_ptr(f, cnp.NPY_INT32, -1, "f")
        self.t = <const int32_t *>_ptr(t, cnp.NPY_INT32, -1, "t")
        self.b2 = <const int64_t *>_ptr(b2, cnp.NPY_INT64, n2, "b2")
        self.kv2_on = <const double *>_ptr(kv2_on, cnp.NPY_DOUBLE, n2, "kv2_on")
        self.amp_den = <const double *>_ptr(amp_den, cnp.NPY_DOUBLE, n2, "amp_den")
        self.off2 = <const double *>_ptr(off2, cnp.NPY_DOUBLE, n2, "off2")
        self.lbuf = <float *>_ptr(lbuf, cnp.NPY_FLOAT32, 5 * n2, "line buffer")
        self.base_kv = <const double *>_ptr(base_kv, cnp.NPY_DOUBLE, nb, "base_kv")
        self.eb = <const int64_t *>_ptr(eb, cnp.NPY_INT64, ne, "eb")
        self.eon = <const double *>_ptr(eon, cnp.NPY_DOUBLE, ne, "eon")
        self.ebuf = <float *>_ptr(ebuf, cnp.NPY_FLOAT32, 4 * ne, "element buffer")
        for i in range(self.nnone):
            if not 0 <= self.none[i] < nb:
                raise ValueError("LinePack: bus index out of range")
        for i in range(n2):
            if not 0 <= self.b2[i] < nb:
                raise ValueError("LinePack: bus index out of range")
        for i in range(n):
            if not (0 <= self.f[i] < nb and 0 <= self.t[i] < nb):
                raise ValueError("LinePack: bus index out of range")
        for i in range(ne):
            if not 0 <= self.eb[i] < nb:
                raise ValueError("LinePack: bus index out of range")
        self._keep = (none, f, t, b2, kv2_on, amp_den, off2, lbuf, base_kv, eb, eon, ebuf)
        self.nb, self.n, self.ne = nb, n, ne
        self.yff_obj = None

    def admittances(self, yff, yft, ytf, ytt):
        """Point at the branch admittances (``yff`` is kept to compare identities with)."""
        cdef Py_ssize_t n = self.n
        if _size(yff) < n or _size(yft) < n or _size(ytf) < n or _size(ytt) < n:
            raise ValueError("LinePack: fewer admittances than lines")
        self.yff = <const double complex *>_ptr(yff, cnp.NPY_COMPLEX128, -1, "yff")
        self.yft = <const double complex *>_ptr(yft, cnp.NPY_COMPLEX128, -1, "yft")
        self.ytf = <const double complex *>_ptr(ytf, cnp.NPY_COMPLEX128, -1, "ytf")
        self.ytt = <const double complex *>_ptr(ytt, cnp.NPY_COMPLEX128, -1, "ytt")
        self._y = (yff, yft, ytf, ytt)
        self.yff_obj = yff


def ac_results(LinePack p, V_in, double sn):
    """Fill the pack's line buffer (rows p, q, v, a, theta; columns the origin ends of branches
    0..n-1, then their extremity ends, n = the buffer's width / 2) and rows 2, 3 (v, theta) of
    its element buffer; return ``(V, vm, va, vkv, finite)``: the voltages with the pack's
    ``none`` buses at 0, their magnitudes (p.u.), angles (degrees) and magnitudes in kV, and
    whether every value written to the line buffer is finite."""
    cdef Py_ssize_t nb = p.nb, n = p.n, n2 = 2 * p.n, ne = p.ne, i, j, k
    if p.yff_obj is None:
        raise ValueError("ac_results: the pack has no admittances")
    cdef const double complex *vin = <const double complex *>_ptr(V_in, cnp.NPY_COMPLEX128, nb, "V")
    V_a = np.empty(nb, dtype=np.complex128)
    vm_a = np.empty(nb)
    va_a = np.empty(nb)
    vkv_a = np.empty(nb)
    cdef double complex *V = <double complex *>cnp.PyArray_DATA(<cnp.ndarray>V_a)
    cdef double *vm = <double *>cnp.PyArray_DATA(<cnp.ndarray>vm_a)
    cdef double *va = <double *>cnp.PyArray_DATA(<cnp.ndarray>va_a)
    cdef double *vkv = <double *>cnp.PyArray_DATA(<cnp.ndarray>vkv_a)
    cdef const int64_t *none = p.none
    cdef const int64_t *b2 = p.b2
    cdef const int64_t *eb = p.eb
    cdef const int32_t *f = p.f
    cdef const int32_t *t = p.t
    cdef const double complex *yff = p.yff
    cdef const double complex *yft = p.yft
    cdef const double complex *ytf = p.ytf
    cdef const double complex *ytt = p.ytt
    cdef const double *kv2_on = p.kv2_on
    cdef const double *amp_den = p.amp_den
    cdef const double *off2 = p.off2
    cdef const double *base_kv = p.base_kv
    cdef const double *eon = p.eon
    cdef float *L = p.lbuf
    cdef float *E = p.ebuf
    cdef double complex vf, vt, a, b, s
    cdef double deg = 180.0 / M_PI, x
    cdef bint finite = True
    with nogil:
        for i in range(nb):
            V[i] = vin[i]
        for i in range(p.nnone):
            V[none[i]] = 0.0  # unsupplied buses (NaN in the engine) read 0
        for i in range(nb):
            vm[i] = hypot(V[i].real, V[i].imag)
            va[i] = atan2(V[i].imag, V[i].real) * deg
            vkv[i] = vm[i] * base_kv[i]
        for k in range(n):
            vf = V[f[k]]
            vt = V[t[k]]
            a = yff[k] * vf + yft[k] * vt
            b = ytf[k] * vf + ytt[k] * vt
            for j in range(2):
                s = (vf * a.conjugate()) if j == 0 else (vt * b.conjugate())
                s = s * sn
                i = k + j * n
                L[i] = <float>s.real                       # row 0: p
                L[n2 + i] = <float>s.imag                  # row 1: q
                x = vm[b2[i]]
                L[2 * n2 + i] = <float>(x * kv2_on[i])     # row 2: v (kV)
                L[3 * n2 + i] = <float>(hypot(s.real, s.imag) / (x * amp_den[i] + off2[i]))  # row 3: A (off: 0)
                L[4 * n2 + i] = <float>va[b2[i]]           # row 4: theta
                if finite and not (isfinite(L[i]) and isfinite(L[n2 + i]) and isfinite(L[2 * n2 + i])
                                   and isfinite(L[3 * n2 + i]) and isfinite(L[4 * n2 + i])):
                    finite = False
        for i in range(ne):
            E[2 * ne + i] = <float>(vkv[eb[i]] * eon[i])
            E[3 * ne + i] = <float>(va[eb[i]] * eon[i])
    return V_a, vm_a, va_a, vkv_a, finite


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
