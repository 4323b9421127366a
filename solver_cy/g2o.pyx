"""Kernels of the grid2op backend (gridtape.grid2op): the per-model constants of its result
buffers (:func:`model_arrays`), the copy of a solve's result arrays into its float32 buffers
(:class:`BufferPack`, :func:`fill_buffers`) and the planning of its value stores
(:func:`plan_column`).

(LinePack / ac_results / InjPack / inj_results / slack_table: the adapter's former result path,
kept only until it has moved to fill_buffers; they are to be deleted then.)"""
import numpy as np
cimport numpy as cnp
from libc.math cimport atan2, hypot, isfinite, M_PI
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

cnp.import_array()


include "ptr.pxi"


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


def slack_table(ref):
    """The slack buses of a generator split (``_gen_split``'s ``ref``: (bus, generators, slack ones,
    fixed ones, shares or None) per bus) as arrays: bus, mode (0 nothing, 1 one generator takes the
    bus balance, 2 the slack generators share it equally, 3 by weight), then the slack (or single)
    generators and the fixed ones as CSR (pointers, indices) and the shares along the slack ones."""
    nref = len(ref)
    rbus, rmode = np.empty(nref, np.int64), np.zeros(nref, np.int32)
    rsp, rfp = np.zeros(nref + 1, np.int64), np.zeros(nref + 1, np.int64)
    rsl, rfx, rshare = [], [], []
    for j, (rb, at, slack, fixed, share) in enumerate(ref):
        rbus[j] = rb
        if len(at) == 1:
            rmode[j], sl, fx, sh = 1, at[:1], at[:0], np.zeros(1)
        elif len(slack):
            rmode[j], sl, fx = (2 if share is None else 3), slack, fixed
            sh = np.zeros(len(slack)) if share is None else np.asarray(share, dtype=float)
        else:
            sl, fx, sh = at[:0], at[:0], np.zeros(0)
        rsl.append(np.asarray(sl, np.int64))
        rfx.append(np.asarray(fx, np.int64))
        rshare.append(sh)
        rsp[j + 1] = rsp[j] + len(sl)
        rfp[j + 1] = rfp[j] + len(fx)
    return (rbus, rmode, rsp, rfp, np.concatenate(rsl) if rsl else np.zeros(0, np.int64),
            np.concatenate(rfx) if rfx else np.zeros(0, np.int64), np.concatenate(rshare) if rshare else np.zeros(0))


cdef class InjPack:
    """The constants of one model that ``inj_results`` reads: where the generators, loads, storage
    units and shunts sit in the element buffer, the generators' pfsoln split (the on ones, their
    buses and Q-range shares) and, per slack bus, how its generators share the bus balance.
    ``GridtapeBackend._fetch_gens`` / ``_fetch_loads`` are the reference."""
    cdef float *E
    cdef Py_ssize_t ne, nb, ng, nl, ns, nsh, og, ol, osg, osh, ngon, nref
    cdef const int64_t *grow
    cdef const int64_t *gbus
    cdef const double *qmin
    cdef const double *qmn
    cdef const double *scale
    cdef const double *cnt
    cdef const unsigned char *same
    cdef const unsigned char *gact
    cdef const unsigned char *lact
    cdef const int64_t *rbus
    cdef const int32_t *rmode
    cdef const int64_t *rsp
    cdef const int64_t *rsl
    cdef const double *rshare
    cdef const int64_t *rfp
    cdef const int64_t *rfx
    cdef const int64_t *shbus
    cdef const double *shk
    cdef bint all_on, loads
    cdef double *p
    cdef object _keep

    def __cinit__(self):
        self.p = NULL

    def __dealloc__(self):
        free(self.p)

    def __init__(self, ebuf, Py_ssize_t nb, tuple sizes, gs, gact, lact, shbus, shk, bint loads):
        """``sizes``: (gens, loads, storage units, shunts) in the buffer's column order; ``gs``:
        the backend's generator split (``_gen_split``); ``shk``: shunt factors times activity (or
        None); ``loads``: whether load P/Q are plain set-points (no voltage-dependent part)."""
        cdef Py_ssize_t j, k, m
        if not cnp.PyArray_Check(ebuf) or cnp.PyArray_NDIM(<cnp.ndarray>ebuf) != 2 \
                or cnp.PyArray_DIM(<cnp.ndarray>ebuf, 0) != 4 or len(sizes) != 4:
            raise ValueError("InjPack: inconsistent buffer")
        self.ng, self.nl, self.ns, self.nsh = sizes
        self.ne = cnp.PyArray_DIM(<cnp.ndarray>ebuf, 1)
        if self.ng + self.nl + self.ns + self.nsh != self.ne or nb < 0:
            raise ValueError("InjPack: group sizes do not fill the buffer")
        self.nb = nb
        self.og, self.ol = 0, self.ng
        self.osg, self.osh = self.ng + self.nl, self.ng + self.nl + self.ns
        self.E = <float *>_ptr(ebuf, cnp.NPY_FLOAT32, 4 * self.ne, "element buffer")
        rows, gb = gs["rows"], gs["bus"]
        m = _size(rows)
        self.ngon = m
        self.grow = <const int64_t *>_ptr(rows, cnp.NPY_INT64, m, "rows")
        self.gbus = <const int64_t *>_ptr(gb, cnp.NPY_INT64, m, "gen bus")
        self.qmin = <const double *>_ptr(gs["qmin"], cnp.NPY_DOUBLE, m, "qmin")
        self.qmn = <const double *>_ptr(gs["qmn"], cnp.NPY_DOUBLE, m, "qmn")
        self.scale = <const double *>_ptr(gs["scale"], cnp.NPY_DOUBLE, m, "scale")
        self.cnt = <const double *>_ptr(gs["cnt"], cnp.NPY_DOUBLE, m, "cnt")
        self.same = <const unsigned char *>_ptr(gs["same"], cnp.NPY_BOOL, m, "same")
        self.all_on = bool(gs["all"])
        self.gact = <const unsigned char *>_ptr(gact, cnp.NPY_BOOL, self.ng, "gen active")
        self.lact = <const unsigned char *>_ptr(lact, cnp.NPY_BOOL, self.nl, "load active")
        for k in range(m):
            if not (0 <= self.grow[k] < self.ng and 0 <= self.gbus[k] < nb):
                raise ValueError("InjPack: generator index out of range")
        tab = gs.get("slack_table")  # made with the split (kept per generator placement)
        if tab is None:
            tab = slack_table(gs["ref"])
        rbus, rmode, rsp, rfp, rsl_a, rfx_a, rsh_a = tab
        nref = _size(rbus)
        self.nref = nref
        self.rbus = <const int64_t *>_ptr(rbus, cnp.NPY_INT64, nref, "rbus")
        self.rmode = <const int32_t *>_ptr(rmode, cnp.NPY_INT32, nref, "rmode")
        self.rsp = <const int64_t *>_ptr(rsp, cnp.NPY_INT64, nref + 1, "rsp")
        self.rfp = <const int64_t *>_ptr(rfp, cnp.NPY_INT64, nref + 1, "rfp")
        self.rsl = <const int64_t *>_ptr(rsl_a, cnp.NPY_INT64, -1, "rsl")
        self.rfx = <const int64_t *>_ptr(rfx_a, cnp.NPY_INT64, -1, "rfx")
        self.rshare = <const double *>_ptr(rsh_a, cnp.NPY_DOUBLE, -1, "rshare")
        if self.rsp[0] != 0 or self.rfp[0] != 0 or self.rsp[nref] != _size(rsl_a) \
                or self.rfp[nref] != _size(rfx_a) or _size(rsh_a) != _size(rsl_a):
            raise ValueError("InjPack: inconsistent slack table")
        for j in range(nref):
            if not (0 <= self.rbus[j] < nb and self.rsp[j] <= self.rsp[j + 1] and self.rfp[j] <= self.rfp[j + 1]):
                raise ValueError("InjPack: slack index out of range")
        for j in range(_size(rsl_a)):
            if not 0 <= self.rsl[j] < self.ng:
                raise ValueError("InjPack: slack index out of range")
        for j in range(_size(rfx_a)):
            if not 0 <= self.rfx[j] < self.ng:
                raise ValueError("InjPack: slack index out of range")
        self.shbus = <const int64_t *>_ptr(shbus, cnp.NPY_INT64, self.nsh, "shunt bus")
        for k in range(self.nsh):
            if not 0 <= self.shbus[k] < nb:
                raise ValueError("InjPack: shunt bus out of range")
        self.shk = NULL if shk is None else <const double *>_ptr(shk, cnp.NPY_DOUBLE, self.nsh, "shunt factor")
        self.loads = loads
        self.p = <double *>malloc(max(self.ng, 1) * sizeof(double))
        if self.p == NULL:
            raise MemoryError()
        self._keep = (ebuf, rows, gb, gs, gact, lact, rbus, rmode, rsp, rfp, rsl_a, rfx_a, rsh_a, shbus, shk)


cdef inline double _bus_s(const int32_t *yp, const int32_t *yi, const double complex *y,
                          const double complex *V, Py_ssize_t b, bint imag) noexcept nogil:
    """P (or Q) of bus b, p.u.: V_b conj(sum_k Y_bk V_k)."""
    cdef double complex acc = 0
    cdef Py_ssize_t q
    for q in range(yp[b], yp[b + 1]):
        acc = acc + y[q] * V[yi[q]]
    acc = V[b] * acc.conjugate()
    return acc.imag if imag else acc.real


def inj_results(InjPack k, V_in, indptr, indices, ydata, qd_in, pd_in, double sn, gen_p, gen_sc,
                load_p, load_q, load_sc, st_p, st_q, sh_p, sh_q, vkv_in):
    """Rows 0, 1 (P, Q) of the element buffer after an AC power flow: generator Q from each bus's
    balance split by reactive range, generator P at the set-points and at slack buses from the
    balance, loads (unless voltage-dependent: ``InjPack.loads``), storage set-points and shunt
    P/Q at the bus voltage (``vkv_in``, kV).  ``V_in``: the voltages with unsupplied buses at 0."""
    cdef Py_ssize_t nb = k.nb, ng = k.ng, nl = k.nl, ns = k.ns, nsh = k.nsh, ne = k.ne, j, m, a
    cdef Py_ssize_t ny = _size(indices)
    if _size(indptr) != nb + 1 or ny < 0 or _size(ydata) != ny:
        raise ValueError("inj_results: inconsistent Ybus arrays")
    cdef const int32_t *yp = <const int32_t *>_ptr(indptr, cnp.NPY_INT32, nb + 1, "indptr")
    cdef const int32_t *yi = <const int32_t *>_ptr(indices, cnp.NPY_INT32, ny, "indices")
    cdef const double complex *y = <const double complex *>_ptr(ydata, cnp.NPY_COMPLEX128, ny, "ydata")
    cdef const double complex *V = <const double complex *>_ptr(V_in, cnp.NPY_COMPLEX128, nb, "V")
    cdef const double *qd = <const double *>_ptr(qd_in, cnp.NPY_DOUBLE, nb, "qd")
    cdef const double *pd = <const double *>_ptr(pd_in, cnp.NPY_DOUBLE, nb, "pd")
    cdef const double *gp = <const double *>_ptr(gen_p, cnp.NPY_DOUBLE, ng, "gen p_mw")
    cdef const double *gsc = <const double *>_ptr(gen_sc, cnp.NPY_DOUBLE, ng, "gen scaling")
    cdef const double *lp = <const double *>_ptr(load_p, cnp.NPY_DOUBLE, nl, "load p_mw")
    cdef const double *lq = <const double *>_ptr(load_q, cnp.NPY_DOUBLE, nl, "load q_mvar")
    cdef const double *lsc = <const double *>_ptr(load_sc, cnp.NPY_DOUBLE, nl, "load scaling")
    cdef const double *sp = <const double *>_ptr(st_p, cnp.NPY_DOUBLE, ns, "storage p_mw")
    cdef const double *sq = <const double *>_ptr(st_q, cnp.NPY_DOUBLE, ns, "storage q_mvar")
    cdef const double *hp = <const double *>_ptr(sh_p, cnp.NPY_DOUBLE, nsh, "shunt p_mw")
    cdef const double *hq = <const double *>_ptr(sh_q, cnp.NPY_DOUBLE, nsh, "shunt q_mvar")
    cdef const double *vkv = <const double *>_ptr(vkv_in, cnp.NPY_DOUBLE, nb, "vkv")
    for j in range(ny):
        if not 0 <= yi[j] < nb:
            raise ValueError("inj_results: Ybus column out of range")
    for j in range(nb):
        if not 0 <= yp[j] <= yp[j + 1] <= ny:
            raise ValueError("inj_results: inconsistent Ybus arrays")
    cdef float *G = k.E + k.og
    cdef float *D = k.E + k.ol
    cdef float *S = k.E + k.osg
    cdef float *H = k.E + k.osh
    cdef double *p = k.p
    cdef double q, bal, fixed, tot, vb, f
    cdef Py_ssize_t b, s0, s1, f0, f1
    with nogil:
        # generator Q: each bus's balance, split by reactive range (equally where the ranges sum to 0)
        if not k.all_on:
            for j in range(ng):
                G[ne + j] = 0.0
        for j in range(k.ngon):
            b = k.gbus[j]
            q = _bus_s(yp, yi, y, V, b, True) * sn + qd[b]
            if k.same[j]:
                q = q / k.cnt[j]
            else:
                q = k.qmin[j] + (q - k.qmn[j]) * k.scale[j]
            G[ne + k.grow[j]] = <float>q
        # generator P: the set-points, and at slack buses the bus balance
        for j in range(ng):
            p[j] = gp[j] * gsc[j] * (1.0 if k.gact[j] else 0.0)
        for j in range(k.nref):
            if k.rmode[j] == 0:
                continue
            b = k.rbus[j]
            bal = _bus_s(yp, yi, y, V, b, False) * sn + pd[b]
            s0, s1, f0, f1 = k.rsp[j], k.rsp[j + 1], k.rfp[j], k.rfp[j + 1]
            if k.rmode[j] == 1:
                p[k.rsl[s0]] = bal
                continue
            fixed = 0.0
            for m in range(f0, f1):
                fixed = fixed + p[k.rfx[m]]
            if k.rmode[j] == 2:
                for m in range(s0, s1):
                    p[k.rsl[m]] = (bal - fixed) / (s1 - s0)
            else:
                tot = 0.0
                for m in range(s0, s1):
                    tot = tot + p[k.rsl[m]]
                for m in range(s0, s1):
                    a = k.rsl[m]
                    p[a] = p[a] + (bal - fixed - tot) * k.rshare[m]
        for j in range(ng):
            G[j] = <float>p[j]
        if k.loads:
            for j in range(nl):
                f = lsc[j] * (1.0 if k.lact[j] else 0.0)
                D[j] = <float>(lp[j] * f)
                D[ne + j] = <float>(lq[j] * f)
        for j in range(ns):
            S[j] = <float>sp[j]
            S[ne + j] = <float>sq[j]
        if k.shk != NULL:
            for j in range(nsh):
                vb = vkv[k.shbus[j]]
                f = vb * vb * k.shk[j]
                H[j] = <float>(f * hp[j])
                H[ne + j] = <float>(f * hq[j])


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


def fill_buffers(BufferPack k, vm_in, va_in, sf_in, st_in, gen_pos, gen_p, gen_q, load_p, load_q, sto_p, sto_q,
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
            L[3 * n2 + i] = <float>(hypot(s.real, s.imag) / (x * k.amp_den[i] + k.off2[i]))
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
