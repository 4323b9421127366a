"""Result kernels: a solve's voltages -> the result arrays (solver_cy/result_arrays.py).

Every kernel returns new arrays, or fills the arrays of its ``out`` tuple (checked) and returns
those.

Each formula stands here once: bus voltages in polar form, branch flows (AC from the branch
admittances, DC from the branch susceptances), bus injections, pandapower's generator P/Q split
(pfsoln) and the P/Q of one-bus elements (loads with constant-current / constant-impedance
shares, static set-points, shunts, wards), and the line / trafo loading (resk_steps.pxi, with the
kernels that run the AC results and the generator split over a chunk of solves: a study's
steps).  Everything in MW / MVAr / degrees.  The result tables (results.py) and the grid2op
adapter's buffers (g2o.fill_buffers) read these arrays.
"""
import numpy as np
cimport numpy as cnp
from libc.math cimport atan2, cos, floor, hypot, isfinite, isnan, sin, sqrt, M_PI, NAN
from libc.stdint cimport int32_t, int64_t

cnp.import_array()

include "ptr.pxi"

cdef double DEG = 180.0 / M_PI


cdef inline double complex _fin(double complex v) noexcept nogil:
    return v if (isfinite(v.real) and isfinite(v.imag)) else 0.0


cdef void _ac_one(Py_ssize_t nb, Py_ssize_t nbr, const double complex *V, const int32_t *f,
                  const int32_t *t, const double complex *yff, const double complex *yft,
                  const double complex *ytf, const double complex *ytt, const int32_t *yp,
                  const int32_t *yi, const double complex *y, double sn, double *vm, double *va,
                  double complex *sf, double complex *st, double complex *sb,
                  const int64_t *sbr=NULL, Py_ssize_t nsb=-1, const double *pm=NULL,
                  const double *pa=NULL) noexcept nogil:
    """The AC results of one solve's voltages (see ac_arrays; arguments checked by the caller).
    ``sbr``: the ``nsb`` buses whose injection is wanted (the others of ``sb`` are not written;
    NULL: every bus).  ``pm``, ``pa``: the magnitudes and angles (rad) the solver holds for V, taken
    instead of |V| and arg V (the angle wrapped into (-180, 180] degrees as arg gives it; NaN
    where V is NaN)."""
    cdef Py_ssize_t i, k, q, r
    cdef double complex vf, vt, a, b, acc
    cdef double x
    if pm != NULL:
        for i in range(nb):
            if isnan(V[i].real) or isnan(V[i].imag):  # as |V| and arg V of a NaN voltage
                vm[i] = NAN
                va[i] = NAN
                continue
            vm[i] = pm[i]
            x = pa[i]
            if isfinite(x) and not (-M_PI < x <= M_PI):
                x = x - 2.0 * M_PI * floor((x + M_PI) / (2.0 * M_PI))
                if x <= -M_PI:
                    x = x + 2.0 * M_PI
            va[i] = x * DEG
    for i in range(nb if pm == NULL else 0):
        vm[i] = hypot(V[i].real, V[i].imag)
        va[i] = atan2(V[i].imag, V[i].real) * DEG
    for k in range(nbr):
        vf = _fin(V[f[k]])
        vt = _fin(V[t[k]])
        a = yff[k] * vf + yft[k] * vt
        b = ytf[k] * vf + ytt[k] * vt
        sf[k] = vf * a.conjugate() * sn
        st[k] = vt * b.conjugate() * sn
    for r in range(nb if sbr == NULL else nsb):
        i = r if sbr == NULL else sbr[r]
        acc = 0
        for q in range(yp[i], yp[i + 1]):
            acc = acc + y[q] * _fin(V[yi[q]])
        sb[i] = _fin(V[i]) * acc.conjugate() * sn


include "resk_ac.pxi"


def ac_arrays(V_in, AcIndex ix not None, yff_in, yft_in, ytf_in, ytt_in, ydata, double sn, out=None, polar=None):
    """AC results of the voltages ``V_in`` (NaN at unsupplied buses) on the model of ``ix``:
    ``(vm, va, sf, st, sbus)``: magnitudes (p.u.) and angles (degrees), NaN where V is; the
    complex power (MVA) entering every branch at its from and to end and injected at every bus,
    with unsupplied buses at 0 V.  ``polar`` (optional): ``(vm, va)``, the magnitudes and angles
    (rad) the solver holds for ``V_in`` (NewtonSolver.polar), taken instead of |V| and arg V."""
    cdef _Ac a = ix.a
    cdef Py_ssize_t nb = a.nb, nbr = a.nbr
    _ac_values(&a, yff_in, yft_in, ytf_in, ytt_in, ydata)
    cdef const double complex *V = <const double complex *>_ptr(V_in, cnp.NPY_COMPLEX128, nb, "V")
    cdef const double *pm = NULL
    cdef const double *pa = NULL
    if polar is not None:
        pm = <const double *>_ptr(polar[0], cnp.NPY_DOUBLE, nb, "polar vm")
        pa = <const double *>_ptr(polar[1], cnp.NPY_DOUBLE, nb, "polar va")
    vm_a, va_a = _out(out, 0, nb, cnp.NPY_DOUBLE), _out(out, 1, nb, cnp.NPY_DOUBLE)
    sf_a, st_a = _out(out, 2, nbr, cnp.NPY_COMPLEX128), _out(out, 3, nbr, cnp.NPY_COMPLEX128)
    sb_a = _out(out, 4, nb, cnp.NPY_COMPLEX128)
    cdef double *vm = <double *>cnp.PyArray_DATA(<cnp.ndarray>vm_a)
    cdef double *va = <double *>cnp.PyArray_DATA(<cnp.ndarray>va_a)
    cdef double complex *sf = <double complex *>cnp.PyArray_DATA(<cnp.ndarray>sf_a)
    cdef double complex *st = <double complex *>cnp.PyArray_DATA(<cnp.ndarray>st_a)
    cdef double complex *sb = <double complex *>cnp.PyArray_DATA(<cnp.ndarray>sb_a)
    with nogil:
        _ac_one(nb, nbr, V, a.f, a.t, a.yff, a.yft, a.ytf, a.ytt, a.yp, a.yi, a.y, sn, vm, va, sf, st, sb,
                NULL, -1, pm, pa)
    return vm_a, va_a, sf_a, st_a, sb_a


def dc_arrays(V_in, f_in, t_in, status, x_in, ratio_in, shift_in, ysh_in, double sn, out=None, va_in=None):
    """DC results of the angles of ``V_in`` (NaN at unsupplied buses): ``(vm, va, sf, st, sbus)``
    as :func:`ac_arrays`, with pandapower's rundcpp conventions: magnitudes 1 p.u., lossless
    branch flows ``P = (va_f - va_t - shift) /
    (x ratio)`` of in-service branches, no reactive power, bus P from the flows and the bus
    shunts' conductance (``ysh``, p.u.).  ``va_in``: the angles (rad) to use instead of those of
    ``V_in`` (rundcpp's unwrapped ones; phase shifters can take them beyond +-180 degrees)."""
    cdef Py_ssize_t nb = _size(V_in), nbr = _size(f_in), i, k
    if nb < 0 or nbr < 0:
        raise ValueError("dc_arrays: inconsistent arrays")
    cdef const double complex *V = <const double complex *>_ptr(V_in, cnp.NPY_COMPLEX128, nb, "V")
    cdef const int32_t *f = <const int32_t *>_ptr(f_in, cnp.NPY_INT32, nbr, "f")
    cdef const int32_t *t = <const int32_t *>_ptr(t_in, cnp.NPY_INT32, nbr, "t")
    cdef const unsigned char *on = <const unsigned char *>_ptr(status, cnp.NPY_BOOL, nbr, "status")
    cdef const double *x = <const double *>_ptr(x_in, cnp.NPY_DOUBLE, nbr, "x")
    cdef const double *ratio = <const double *>_ptr(ratio_in, cnp.NPY_DOUBLE, nbr, "ratio")
    cdef const double *shift = <const double *>_ptr(shift_in, cnp.NPY_DOUBLE, nbr, "shift")
    cdef const double complex *ysh = <const double complex *>_ptr(ysh_in, cnp.NPY_COMPLEX128, nb, "ysh")
    cdef const double *ua = NULL if va_in is None else <const double *>_ptr(va_in, cnp.NPY_DOUBLE, nb, "va")
    for k in range(nbr):
        if not (0 <= f[k] < nb and 0 <= t[k] < nb):
            raise ValueError("dc_arrays: branch bus out of range")
    vm_a, va_a = _out(out, 0, nb, cnp.NPY_DOUBLE), _out(out, 1, nb, cnp.NPY_DOUBLE)
    sf_a, st_a = _out(out, 2, nbr, cnp.NPY_COMPLEX128), _out(out, 3, nbr, cnp.NPY_COMPLEX128)
    sb_a = _out(out, 4, nb, cnp.NPY_COMPLEX128)
    cdef double *vm = <double *>cnp.PyArray_DATA(<cnp.ndarray>vm_a)
    cdef double *va = <double *>cnp.PyArray_DATA(<cnp.ndarray>va_a)
    cdef double complex *sf = <double complex *>cnp.PyArray_DATA(<cnp.ndarray>sf_a)
    cdef double complex *st = <double complex *>cnp.PyArray_DATA(<cnp.ndarray>st_a)
    cdef double complex *sb = <double complex *>cnp.PyArray_DATA(<cnp.ndarray>sb_a)
    cdef double p, af, at
    with nogil:
        for i in range(nb):
            if isfinite(V[i].real) and isfinite(V[i].imag):
                vm[i] = 1.0
                va[i] = (atan2(V[i].imag, V[i].real) if ua == NULL else ua[i]) * DEG
            else:
                vm[i] = NAN
                va[i] = NAN
            sb[i] = ysh[i].real * sn
        for k in range(nbr):
            if on[k]:
                if ua != NULL:
                    af = ua[f[k]] if isfinite(ua[f[k]]) else 0.0
                    at = ua[t[k]] if isfinite(ua[t[k]]) else 0.0
                else:
                    af = atan2(V[f[k]].imag, V[f[k]].real) if isfinite(V[f[k]].real) else 0.0
                    at = atan2(V[t[k]].imag, V[t[k]].real) if isfinite(V[t[k]].real) else 0.0
                p = (af - at - shift[k] / DEG) / x[k] / ratio[k] * sn
            else:
                p = 0.0
            sf[k] = p
            st[k] = -p
            sb[f[k]] = sb[f[k]] + p
            sb[t[k]] = sb[t[k]] - p
    return vm_a, va_a, sf_a, st_a, sb_a


cdef class GenSplit:
    """pfsoln's split of the bus balances among the generators of the engine's generator table
    (made by gensplit.make_split, checked once here).  Q: the generators counted (``on``) at a
    bus share its Q by reactive range, ``qmin + (Q - sum qmin) / sum range * range``, or equally
    when the ranges sum to nothing (``same``).  P: the set-points, and at each slack bus the bus
    balance: taken by a lone generator (mode 1), shared equally by the slack generators after
    the fixed ones (mode 2) or moved onto them by share (mode 3)."""
    cdef readonly Py_ssize_t ng, nb, non, nref
    cdef const int64_t *on
    cdef const int64_t *bus
    cdef const double *qmin
    cdef const double *qmn
    cdef const double *den
    cdef const double *rng
    cdef const double *cnt
    cdef const unsigned char *same
    cdef const int64_t *rbus
    cdef const int32_t *rmode
    cdef const int64_t *rsp
    cdef const int64_t *rsl
    cdef const double *rshare
    cdef const int64_t *rfp
    cdef const int64_t *rfx
    cdef object _keep

    def __init__(self, Py_ssize_t ng, Py_ssize_t nb, on, bus, qmin, qmn, den, rng, cnt, same,
                 rbus, rmode, rsp, rfp, rsl, rfx, rshare):
        cdef Py_ssize_t m = _size(on), nref = _size(rbus), j
        if m < 0 or nref < 0 or ng < 0 or nb < 0:
            raise ValueError("GenSplit: inconsistent arrays")
        self.ng, self.nb, self.non, self.nref = ng, nb, m, nref
        self.on = <const int64_t *>_ptr(on, cnp.NPY_INT64, m, "on")
        self.bus = <const int64_t *>_ptr(bus, cnp.NPY_INT64, ng, "bus")
        self.qmin = <const double *>_ptr(qmin, cnp.NPY_DOUBLE, m, "qmin")
        self.qmn = <const double *>_ptr(qmn, cnp.NPY_DOUBLE, m, "qmn")
        self.den = <const double *>_ptr(den, cnp.NPY_DOUBLE, m, "den")
        self.rng = <const double *>_ptr(rng, cnp.NPY_DOUBLE, m, "rng")
        self.cnt = <const double *>_ptr(cnt, cnp.NPY_DOUBLE, m, "cnt")
        self.same = <const unsigned char *>_ptr(same, cnp.NPY_BOOL, m, "same")
        self.rbus = <const int64_t *>_ptr(rbus, cnp.NPY_INT64, nref, "rbus")
        self.rmode = <const int32_t *>_ptr(rmode, cnp.NPY_INT32, nref, "rmode")
        self.rsp = <const int64_t *>_ptr(rsp, cnp.NPY_INT64, nref + 1, "rsp")
        self.rfp = <const int64_t *>_ptr(rfp, cnp.NPY_INT64, nref + 1, "rfp")
        self.rsl = <const int64_t *>_ptr(rsl, cnp.NPY_INT64, -1, "rsl")
        self.rfx = <const int64_t *>_ptr(rfx, cnp.NPY_INT64, -1, "rfx")
        self.rshare = <const double *>_ptr(rshare, cnp.NPY_DOUBLE, _size(rsl), "rshare")
        for j in range(ng):
            if not 0 <= self.bus[j] < nb:
                raise ValueError("GenSplit: generator bus out of range")
        for j in range(m):
            if not 0 <= self.on[j] < ng:
                raise ValueError("GenSplit: generator index out of range")
        if self.rsp[0] != 0 or self.rfp[0] != 0 or self.rsp[nref] != _size(rsl) or self.rfp[nref] != _size(rfx):
            raise ValueError("GenSplit: inconsistent slack table")
        for j in range(nref):
            if not (0 <= self.rbus[j] < nb and self.rsp[j] <= self.rsp[j + 1] and self.rfp[j] <= self.rfp[j + 1]
                    and 0 <= self.rmode[j] <= 3):
                raise ValueError("GenSplit: inconsistent slack table")
        for j in range(_size(rsl)):
            if not 0 <= self.rsl[j] < ng:
                raise ValueError("GenSplit: slack index out of range")
        for j in range(_size(rfx)):
            if not 0 <= self.rfx[j] < ng:
                raise ValueError("GenSplit: slack index out of range")
        self._keep = (on, bus, qmin, qmn, den, rng, cnt, same, rbus, rmode, rsp, rfp, rsl, rfx, rshare)


cdef void _gen_one(GenSplit s, const double complex *sb, const double *pd, const double *qd,
                   const double *ps, const double *qo, bint q_zero, double *p, double *q) noexcept nogil:
    """pfsoln's split of one solve (see gen_pq; arguments checked by the caller)."""
    cdef Py_ssize_t j, m, a, b, s0, s1, f0, f1
    cdef double x, bal, fixed, tot
    for j in range(s.ng):
        q[j] = 0.0
        p[j] = ps[j]
    if not q_zero:
        for m in range(s.non):
            j = s.on[m]
            b = s.bus[j]
            x = sb[b].imag + qd[b]
            if qo != NULL:
                x = x - qo[b]
            q[j] = x / s.cnt[m] if s.same[m] else s.qmin[m] + (x - s.qmn[m]) / s.den[m] * s.rng[m]
    for j in range(s.nref):
        if s.rmode[j] == 0:
            continue
        b = s.rbus[j]
        bal = sb[b].real + pd[b]
        s0, s1, f0, f1 = s.rsp[j], s.rsp[j + 1], s.rfp[j], s.rfp[j + 1]
        if s.rmode[j] == 1:
            p[s.rsl[s0]] = bal
            continue
        fixed = 0.0
        for m in range(f0, f1):
            fixed = fixed + p[s.rfx[m]]
        if s.rmode[j] == 2:
            for m in range(s0, s1):
                p[s.rsl[m]] = (bal - fixed) / (s1 - s0)
        else:
            tot = 0.0
            for m in range(s0, s1):
                tot = tot + p[s.rsl[m]]
            for m in range(s0, s1):
                a = s.rsl[m]
                p[a] = p[a] + (bal - fixed - tot) * s.rshare[m]


def gen_pq(GenSplit s not None, sbus_in, pd_in, qd_in, p_set, qoff_in, bint q_zero, out=None):
    """``(pg, qg)`` (MW, MVAr) of every generator-table entry from the bus injections ``sbus``
    (MVA), the bus loads ``pd`` / ``qd`` (MW, MVAr) and the P set-points ``p_set``.  ``qoff``
    (MVAr per bus, or None): Q already taken at the bus by generators outside ``on`` (held at a
    limit); entries outside ``on`` read Q 0.  ``q_zero``: no reactive power (DC)."""
    cdef Py_ssize_t ng = s.ng, nb = s.nb
    cdef const double complex *sb = <const double complex *>_ptr(sbus_in, cnp.NPY_COMPLEX128, nb, "sbus")
    cdef const double *pd = <const double *>_ptr(pd_in, cnp.NPY_DOUBLE, nb, "pd")
    cdef const double *qd = <const double *>_ptr(qd_in, cnp.NPY_DOUBLE, nb, "qd")
    cdef const double *ps = <const double *>_ptr(p_set, cnp.NPY_DOUBLE, ng, "p_set")
    cdef const double *qo = NULL
    if qoff_in is not None:
        qo = <const double *>_ptr(qoff_in, cnp.NPY_DOUBLE, nb, "qoff")
    pg_a, qg_a = _out(out, 0, ng, cnp.NPY_DOUBLE), _out(out, 1, ng, cnp.NPY_DOUBLE)
    cdef double *p = <double *>cnp.PyArray_DATA(<cnp.ndarray>pg_a)
    cdef double *q = <double *>cnp.PyArray_DATA(<cnp.ndarray>qg_a)
    with nogil:
        _gen_one(s, sb, pd, qd, ps, qo, q_zero, p, q)
    return pg_a, qg_a


cdef inline double _u(const double *vm, int64_t b) noexcept nogil:
    return vm[b] if isfinite(vm[b]) else 0.0


def element_pq(int code, eb_in, act_in, vm_in, base_kv, c0, c1, c2=None, c3=None, c4=None, c5=None,
               c6=None, out=None):
    """P and Q (MW, MVAr) of the rows of one one-bus element table at their internal buses
    ``eb`` (unsupplied: |V| read as 0), active rows only (``act``):

    - code 0, load: ``c0..c6`` = p_mw, q_mvar, scaling, const_z_p, const_i_p, const_z_q,
      const_i_q (percent): ``p sc (1 - z - i + i |V| + z |V|^2)``;
    - code 1, set-points (sgen, storage): p_mw, q_mvar, scaling: ``p sc``;
    - code 2, shunt: p_mw, q_mvar, vn_kv, step: ``|V|^2 p (kV_bus / vn_kv)^2 step``;
    - code 3, ward / xward: ps_mw, qs_mvar, pz_mw, qz_mvar: ``ps + |V|^2 pz``."""
    cdef Py_ssize_t n = _size(eb_in), nb = _size(vm_in), i
    if n < 0 or nb < 0 or not 0 <= code <= 3:
        raise ValueError("element_pq: inconsistent arrays")
    cdef const int64_t *eb = <const int64_t *>_ptr(eb_in, cnp.NPY_INT64, n, "element bus")
    cdef const unsigned char *act = <const unsigned char *>_ptr(act_in, cnp.NPY_BOOL, n, "active")
    cdef const double *vm = <const double *>_ptr(vm_in, cnp.NPY_DOUBLE, nb, "vm")
    cdef const double *kv = <const double *>_ptr(base_kv, cnp.NPY_DOUBLE, nb, "base_kv")
    cols = (c0, c1, c2, c3, c4, c5, c6)
    cdef int need = (7, 3, 4, 4)[code], j
    cdef const double *c[7]
    for j in range(7):
        c[j] = NULL
        if j < need:
            c[j] = <const double *>_ptr(cols[j], cnp.NPY_DOUBLE, n, "element column")
    for i in range(n):
        if not 0 <= eb[i] < nb:
            raise ValueError("element_pq: bus index out of range")
    p_a, q_a = _out(out, 0, n, cnp.NPY_DOUBLE), _out(out, 1, n, cnp.NPY_DOUBLE)
    cdef double *p = <double *>cnp.PyArray_DATA(<cnp.ndarray>p_a)
    cdef double *q = <double *>cnp.PyArray_DATA(<cnp.ndarray>q_a)
    cdef double u, a, zp, ip, zq, iq, r
    with nogil:
        for i in range(n):
            if not act[i]:
                p[i] = 0.0
                q[i] = 0.0
                continue
            u = _u(vm, eb[i])
            if code == 0:
                a = c[2][i]
                zp, ip, zq, iq = c[3][i] / 100, c[4][i] / 100, c[5][i] / 100, c[6][i] / 100
                p[i] = c[0][i] * a * (1 - zp - ip + ip * u + zp * u * u)
                q[i] = c[1][i] * a * (1 - zq - iq + iq * u + zq * u * u)
            elif code == 1:
                p[i] = c[0][i] * c[2][i]
                q[i] = c[1][i] * c[2][i]
            elif code == 2:
                r = kv[eb[i]] / c[2][i]
                a = u * u * r * r * c[3][i]
                p[i] = c[0][i] * a
                q[i] = c[1][i] * a
            else:
                p[i] = c[0][i] + u * u * c[2][i]
                q[i] = c[1][i] + u * u * c[3][i]
    return p_a, q_a


include "resk_steps.pxi"
