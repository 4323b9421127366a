"""Polar Newton-Raphson power flow over KLU, plus a DC power-flow helper.

KLU is not linked: at import we dlopen nbklu's extension module (which exports
SuiteSparse's int32 KLU entry points) and dlsym the functions we need.

Internal unknown order: buses in index order, each non-fixed bus contributing
Va (and Vm if PQ); equation P_i sits at the row of Va_i and Q_i at the row of
Vm_i.  The Jacobian is kept in CSR with every row in Ybus row order, so it is
filled by one sequential pass over Ybus.  KLU sees that CSR as the CSC of J^T,
so we solve with klu_tsolve.
"""
import numpy as np
from libc.math cimport sqrt, sin, cos, atan2, fabs, isfinite, M_PI, NAN, ceil, log
from libc.stdint cimport int32_t
from libc.string cimport memcpy
from posix.dlfcn cimport dlopen, dlsym, dlerror, RTLD_NOW, RTLD_LOCAL
# Textual include: setup.py names the module gridtape.solver_cy.newton while the
# sources live in solver_cy/, so a (relative) cimport of klu.pxd cannot resolve.
include "klu.pxd"

# a chord step (old LU factors) must cut the mismatch at least this much for the next to be one
cdef double CHORD_RATE = 0.1
# a chord step that grows the mismatch more than this is undone
cdef double CHORD_GROWTH = 2.0
# chord steps go on only while the observed rate reaches the tolerance within this many more
cdef int CHORD_LEFT = 5


cdef inline double _steps_left(double norm, double rate, double tol) noexcept nogil:
    """Chord steps still needed from ``norm`` to ``tol`` at contraction ``rate`` per step."""
    if rate <= 0.0:
        return 1.0
    return ceil(log(tol / norm) / log(rate))


def chord_rate(value=None):
    """The contraction a chord step must reach for the next step to be one too (get, or set)."""
    global CHORD_RATE
    if value is not None:
        if not 0.0 < value < 1.0:
            raise ValueError("the chord rate is a factor in (0, 1)")
        CHORD_RATE = value
    return CHORD_RATE


# KLU's block triangular form: off.  A power-flow Jacobian is one strongly connected block per
# island, so the BTF search only adds to every analysis (IEEE118 -12 %, PEGASE1354 -19 %)
cdef int KLU_BTF = 0


def klu_btf(value=None):
    """Whether new solvers let KLU look for a block triangular form (get, or set)."""
    global KLU_BTF
    if value is not None:
        KLU_BTF = 1 if value else 0
    return bool(KLU_BTF)


# ---------------------------------------------------------------- KLU binding
cdef KluApi _klu
cdef void *_klu_handle = NULL


cdef void *_sym(void *handle, bytes name) except NULL:
    cdef void *p = dlsym(handle, name)
    if p == NULL:
        raise ImportError(f"nbklu does not export {name.decode()}")
    return p


def _load_klu():
    """dlopen nbklu._ext (already imported, so this only bumps its refcount)."""
    global _klu_handle
    import nbklu._ext
    path = nbklu._ext.__file__.encode()
    _klu_handle = dlopen(path, RTLD_NOW | RTLD_LOCAL)
    if _klu_handle == NULL:
        raise ImportError(f"dlopen({path!r}) failed: {(<bytes>dlerror()).decode()}")
    _klu.defaults = <klu_defaults_f>_sym(_klu_handle, b"klu_defaults")
    _klu.analyze = <klu_analyze_f>_sym(_klu_handle, b"klu_analyze")
    _klu.factor = <klu_factor_f>_sym(_klu_handle, b"klu_factor")
    _klu.refactor = <klu_refactor_f>_sym(_klu_handle, b"klu_refactor")
    _klu.solve = <klu_solve_f>_sym(_klu_handle, b"klu_solve")
    _klu.tsolve = <klu_solve_f>_sym(_klu_handle, b"klu_tsolve")
    _klu.free_symbolic = <klu_free_f>_sym(_klu_handle, b"klu_free_symbolic")
    _klu.free_numeric = <klu_free_f>_sym(_klu_handle, b"klu_free_numeric")
    _klu.rcond = <klu_rcond_f>_sym(_klu_handle, b"klu_rcond")
    _klu.ss_free = <ss_free_f>_sym(_klu_handle, b"SuiteSparse_free")


_load_klu()


# nbklu 0.3's KLU build releases everything a Numeric/Symbolic owns in
# klu_free_numeric/klu_free_symbolic except the top-level struct, and leaves the
# handle unchanged; likewise klu_factor, when it halts on a singular matrix,
# returns that half-released struct instead of NULL.  Upstream KLU frees the
# struct and NULLs the handle.  These helpers are correct for both.
cdef inline void _release_numeric(void **num, klu_common *c) noexcept nogil:
    if num[0] != NULL:
        _klu.free_numeric(num, c)
        if num[0] != NULL:
            _klu.ss_free(num[0])
            num[0] = NULL


cdef inline void _release_symbolic(void **sym, klu_common *c) noexcept nogil:
    if sym[0] != NULL:
        _klu.free_symbolic(sym, c)
        if sym[0] != NULL:
            _klu.ss_free(sym[0])
            sym[0] = NULL


cdef inline void *_factor_or_null(int32_t *ap, int32_t *ai, double *ax, void *sym,
                                  klu_common *c) noexcept nogil:
    """klu_factor; NULL unless it succeeded with a non-singular matrix."""
    cdef void *num = _klu.factor(ap, ai, ax, sym, c)
    if c.status != KLU_OK:
        if num != NULL:  # contents already released by KLU (see above)
            _klu.ss_free(num)
        return NULL
    return num

def klu_info(indptr=None, indices=None, data=None):
    """klu_common fields after klu_defaults (and, if a CSC matrix is given, after
    klu_analyze + klu_factor + klu_rcond on it).  For layout tests and diagnostics."""
    cdef klu_common c
    cdef void *sym = NULL
    cdef void *num = NULL
    cdef int32_t[::1] ap, ai
    cdef double[::1] ax
    _klu.defaults(&c)
    c.user_order = NULL
    if indptr is not None:
        ap = np.ascontiguousarray(indptr, dtype=np.int32)
        ai = np.ascontiguousarray(indices, dtype=np.int32)
        ax = np.ascontiguousarray(data, dtype=np.float64)
        sym = _klu.analyze(<int32_t>(ap.shape[0] - 1), &ap[0], &ai[0], &c)
        if sym != NULL:
            num = _factor_or_null(&ap[0], &ai[0], &ax[0], sym, &c)
            if num != NULL:
                _klu.rcond(sym, num, &c)
                _release_numeric(&num, &c)
            _release_symbolic(&sym, &c)
    return dict(tol=c.tol, memgrow=c.memgrow, initmem_amd=c.initmem_amd, initmem=c.initmem,
                maxwork=c.maxwork, btf=c.btf, ordering=c.ordering, scale=c.scale,
                halt_if_singular=c.halt_if_singular, status=c.status, nrealloc=c.nrealloc,
                structural_rank=c.structural_rank, numerical_rank=c.numerical_rank,
                singular_col=c.singular_col, noffdiag=c.noffdiag, flops=c.flops,
                rcond=c.rcond, condest=c.condest, rgrowth=c.rgrowth, work=c.work,
                memusage=c.memusage, mempeak=c.mempeak, size=sizeof(klu_common))


# ------------------------------------------------------------- NR kernels
cdef double _mismatch(int nb, const int32_t *yp, const int32_t *yi, const double *y,
                      const double *v, const double *vm, const double *s0,
                      const double *si, const double *sz, const int32_t *iva,
                      const int32_t *ivm, double *S, double *F) noexcept nogil:
    """S_i = V_i conj((Y V)_i) and F for every non-fixed bus; returns max|F| (NaN if
    any entry is not finite)."""
    cdef int i, k, p, r
    cdef double ir, ii, yr, yim, vr, vi, sr, sim, m, norm = 0.0
    cdef bint bad = False
    for i in range(nb):
        r = iva[i]
        if r < 0:
            continue
        ir = 0.0
        ii = 0.0
        for p in range(yp[i], yp[i + 1]):
            k = yi[p]
            yr = y[2 * p]
            yim = y[2 * p + 1]
            vr = v[2 * k]
            vi = v[2 * k + 1]
            ir = ir + yr * vr - yim * vi
            ii = ii + yr * vi + yim * vr
        vr = v[2 * i]
        vi = v[2 * i + 1]
        sr = vr * ir + vi * ii
        sim = vi * ir - vr * ii
        S[2 * i] = sr
        S[2 * i + 1] = sim
        m = vm[i]
        sr = sr - (s0[2 * i] + (si[2 * i] + sz[2 * i] * m) * m)
        F[r] = sr
        if not fabs(sr) <= norm:
            norm = fabs(sr)
            bad = bad or not isfinite(sr)
        r = ivm[i]
        if r >= 0:
            sim = sim - (s0[2 * i + 1] + (si[2 * i + 1] + sz[2 * i + 1] * m) * m)
            F[r] = sim
            if not fabs(sim) <= norm:
                norm = fabs(sim)
                bad = bad or not isfinite(sim)
    return NAN if bad else norm


cdef void _jacobian(int nb, const int32_t *yp, const int32_t *yi, const double *y,
                    const double *v, const double *ivm_, const double *vm, const double *S,
                    const double *si, const double *sz, bint load_jac,
                    const int32_t *iva, const int32_t *ivm, const int32_t *ica,
                    const int32_t *jp, double *jx) noexcept nogil:
    """Fill J (CSR, internal order) in one sequential pass over Ybus.

    ``iva``/``ivm`` give each bus's P/Q row, ``ica`` the column of its angle (the same array
    as ``iva`` except for distributed-slack references, whose P row has no angle column).
    Entries of a row past the Ybus-derived ones (the slack-power column) are left alone.

    For Y_ik != 0, with a = V_i conj(Y_ik V_k):  dS_i/dVa_k = -j a,
    dS_i/dVm_k = a/|V_k|;  the diagonal adds j S_i and S_i/|V_i| and, for
    voltage-dependent injections, -(si + 2 sz |V_i|) to dS_i/d|V_i|."""
    cdef int i, k, p, ra, rq, pP, pQ, cq
    cdef double vr, vi, yr, yim, wr, wi, ar, ai, dar, dai, dmr, dmi, inv
    for i in range(nb):
        ra = iva[i]
        if ra < 0:
            continue
        rq = ivm[i]
        pP = jp[ra]
        pQ = jp[rq] if rq >= 0 else 0
        vr = v[2 * i]
        vi = v[2 * i + 1]
        for p in range(yp[i], yp[i + 1]):
            k = yi[p]
            if ica[k] < 0:
                continue
            yr = y[2 * p]
            yim = y[2 * p + 1]
            wr = yr * v[2 * k] - yim * v[2 * k + 1]
            wi = yr * v[2 * k + 1] + yim * v[2 * k]
            ar = vr * wr + vi * wi
            ai = vi * wr - vr * wi
            inv = ivm_[k]
            dar = ai
            dai = -ar
            dmr = ar * inv
            dmi = ai * inv
            if k == i:
                dar = dar - S[2 * i + 1]
                dai = dai + S[2 * i]
                dmr = dmr + S[2 * i] * inv
                dmi = dmi + S[2 * i + 1] * inv
                if load_jac:
                    dmr = dmr - (si[2 * i] + 2.0 * sz[2 * i] * vm[i])
                    dmi = dmi - (si[2 * i + 1] + 2.0 * sz[2 * i + 1] * vm[i])
            cq = ivm[k]
            jx[pP] = dar
            pP += 1
            if cq >= 0:
                jx[pP] = dmr
                pP += 1
            if rq >= 0:
                jx[pQ] = dai
                pQ += 1
                if cq >= 0:
                    jx[pQ] = dmi
                    pQ += 1


cdef inline void _polar(int nb, const double *v, double *vm, double *va, double *inv_vm) noexcept nogil:
    """Magnitude, angle and inverse magnitude of every bus voltage."""
    cdef int i
    for i in range(nb):
        vm[i] = sqrt(v[2 * i] * v[2 * i] + v[2 * i + 1] * v[2 * i + 1])
        va[i] = atan2(v[2 * i + 1], v[2 * i])
        inv_vm[i] = 1.0 / vm[i]


cdef bint _update(int nb, const int32_t *iva, const int32_t *ivm, const double *dx,
                  double *va, double *vm, double *inv_vm, double *v) noexcept nogil:
    """x -= dx for every non-fixed bus and rebuild V; False if dx is not finite."""
    cdef int i, r
    cdef double d, a, m
    for i in range(nb):
        r = iva[i]
        if r < 0:
            continue
        d = dx[r]
        if not isfinite(d):
            return False
        va[i] -= d
        r = ivm[i]
        if r >= 0:
            d = dx[r]
            if not isfinite(d):
                return False
            vm[i] -= d
            if vm[i] < 0.0:  # same point, as pandapower's abs()/angle() re-split does
                vm[i] = -vm[i]
                va[i] += M_PI
            inv_vm[i] = 1.0 / vm[i]
        a = va[i]  # locals: lets the compiler fuse sin/cos into one sincos call
        m = vm[i]
        v[2 * i] = m * cos(a)
        v[2 * i + 1] = m * sin(a)
    return True


def _classify(const int32_t[::1] indptr, const int32_t[::1] indices, groups):
    """Bus class codes (0 for buses in no group) after checking the Ybus CSR arrays and that
    the groups ((name, int32 buses, nonzero code), ...) are in range and disjoint."""
    cdef int nb = indptr.shape[0] - 1, i, p, k, b
    cdef const int32_t[::1] a
    if nb < 0 or indptr[0] != 0 or indptr[nb] != indices.shape[0]:
        raise ValueError("inconsistent Ybus CSR arrays")
    cls_a = np.zeros(nb, dtype=np.int32)
    cdef int32_t[::1] cls = cls_a
    for name, arr, code in groups:
        a = arr
        for k in range(a.shape[0]):
            if a[k] < 0 or a[k] >= nb:
                raise ValueError(f"{name} bus index outside 0..{nb - 1}")
        for k in range(a.shape[0]):
            b = a[k]
            if cls[b] != 0:
                raise ValueError(f"{name} buses overlap another class or repeat")
            cls[b] = code
    for i in range(nb):
        if indptr[i + 1] < indptr[i]:
            raise ValueError("indptr must be non-decreasing")
        for p in range(indptr[i], indptr[i + 1]):
            if indices[p] < 0 or indices[p] >= nb:
                raise ValueError("Ybus column index outside 0..nb-1")
            if p > indptr[i] and indices[p] <= indices[p - 1]:
                raise ValueError("Ybus column indices must be sorted and unique per row")
    return cls_a


cdef class NewtonSolver:
    """Newton-Raphson (polar) for one Ybus pattern and one set of bus classes.

    Unknowns [Va(pv), Va(pq), Vm(pq)], equations [P(pv), P(pq), Q(pq)] (stored in
    an interleaved per-bus order internally).  Buses in neither pv nor pq are held
    at their given V.  KLU symbolic analysis is done once here; the first solve
    factors, later iterations and solves refactor with the same pivot order.
    """
    cdef readonly int nb, n_jac, nnz_jac
    cdef readonly int n_factor, n_refactor, n_reused
    cdef readonly int chord_wait, chord_backoff  # solves to skip reuse after undone chord steps
    cdef public bint load_jacobian
    cdef object _vbak  # V before a chord step (solve reuse), allocated on first use
    cdef int32_t[::1] yp, yi, iva, ivm, ica, jp, ji
    cdef double[::1] jx, F, va, vm, inv_vm, S
    cdef object _pv, _pq, _ref
    cdef klu_common common
    cdef void *sym
    cdef void *num
    cdef double rcond_factor

    def __cinit__(self):
        self.sym = NULL
        self.num = NULL

    def __init__(self, const int32_t[::1] indptr, const int32_t[::1] indices,
                 const int32_t[::1] ref, const int32_t[::1] pv, const int32_t[::1] pq):
        cls = _classify(indptr, indices, (("ref", ref, 3), ("pv", pv, 1), ("pq", pq, 2)))
        self._ref = np.array(ref, dtype=np.int32)
        self._pv = np.array(pv, dtype=np.int32)
        self._pq = np.array(pq, dtype=np.int32)
        self._setup(indptr, indices, cls, None, None)

    cdef _setup(self, const int32_t[::1] indptr, const int32_t[::1] indices,
                const int32_t[::1] cl, const int32_t[::1] xisl, const int32_t[::1] dsref):
        """Unknown numbering, Jacobian pattern, workspaces and KLU analysis.

        ``cl``: 1 pv, 2 pq, 3 fixed, 4 distributed-slack reference (P row, no angle column;
        its slot is its island's slack-power unknown).  ``xisl[i] >= 0`` gives bus i's P row
        one more entry, in the slack-power column of island ``xisl[i]`` (``dsref[xisl[i]]``)."""
        cdef int nb = indptr.shape[0] - 1, ny = indices.shape[0], i, k, p, c, cnt, nnz
        cdef int32_t pos, start
        cdef const int32_t *ap = &indptr[0]
        cdef const int32_t *ai = &indices[0] if ny else NULL
        cdef const int32_t *cls = &cl[0] if nb else NULL
        cdef const int32_t *xi = NULL if xisl is None else &xisl[0]
        cdef int32_t[::1] ib, jib
        cdef double[::1] db
        cdef int32_t *yp
        cdef int32_t *iva
        cdef int32_t *ivm
        cdef int32_t *ica
        cdef int32_t *jp
        cdef int32_t *ji
        cdef double *d
        self.nb = nb
        # the int32 arrays in one block: yp (nb+1) | yi (ny) | iva, ivm, ica (nb each) | jp (<= 2nb+1)
        ib = np.empty(6 * nb + 2 + ny, dtype=np.int32)
        yp = &ib[0]
        iva = yp + nb + 1 + ny
        ivm = iva + nb
        ica = ivm + nb
        jp = ica + nb
        memcpy(yp, ap, (nb + 1) * sizeof(int32_t))
        if ny:
            memcpy(yp + nb + 1, ai, ny * sizeof(int32_t))
        c = 0
        for i in range(nb):
            iva[i] = -1
            ivm[i] = -1
            if cls[i] == 1 or cls[i] == 2 or cls[i] == 4:
                iva[i] = c
                c += 1
                if cls[i] == 2:
                    ivm[i] = c
                    c += 1
        self.n_jac = c
        if nb:
            memcpy(ica, iva, nb * sizeof(int32_t))
        if dsref is not None:
            for i in range(dsref.shape[0]):
                ica[dsref[i]] = -1

        # Jacobian CSR pattern, rows in Ybus row order; P row of bus i: Ybus-derived entries,
        # then (if xisl[i] >= 0) the slack-power entry; Q row: the Ybus-derived entries
        for i in range(c + 1):
            jp[i] = 0
        for i in range(nb):
            if iva[i] < 0:
                continue
            cnt = 0
            k = -1
            for p in range(ap[i], ap[i + 1]):
                cnt += (ica[ai[p]] >= 0) + (ivm[ai[p]] >= 0)
                if ai[p] == i:
                    k = p
            if k < 0 and cls[i] != 4:
                raise ValueError(f"Ybus has no diagonal entry for pv/pq bus {i}")
            jp[iva[i] + 1] = cnt + (1 if xi != NULL and xi[i] >= 0 else 0)
            if ivm[i] >= 0:
                jp[ivm[i] + 1] = cnt
        for i in range(c):
            jp[i + 1] += jp[i]
        nnz = jp[c]
        self.nnz_jac = nnz
        jib = np.empty(max(nnz, 1), dtype=np.int32)
        ji = &jib[0]
        for i in range(nb):
            if iva[i] < 0:
                continue
            start = jp[iva[i]]
            pos = start
            for p in range(ap[i], ap[i + 1]):
                k = ai[p]
                if ica[k] >= 0:
                    ji[pos] = ica[k]
                    pos += 1
                if ivm[k] >= 0:
                    ji[pos] = ivm[k]
                    pos += 1
            if ivm[i] >= 0:  # the Q row has the P row's columns (without the slack-power entry)
                memcpy(ji + jp[ivm[i]], ji + start, (pos - start) * sizeof(int32_t))
            if xi != NULL and xi[i] >= 0:
                ji[pos] = iva[dsref[xi[i]]]
        self.yp = ib[0:nb + 1]
        self.yi = ib[nb + 1:nb + 1 + ny]
        self.iva = ib[nb + 1 + ny:2 * nb + 1 + ny]
        self.ivm = ib[2 * nb + 1 + ny:3 * nb + 1 + ny]
        if dsref is None:  # (an if statement: a conditional expression of memoryviews miscounts)
            self.ica = self.iva
        else:
            self.ica = ib[3 * nb + 1 + ny:4 * nb + 1 + ny]
        self.jp = ib[4 * nb + 1 + ny:4 * nb + 2 + ny + c]
        self.ji = jib

        # the float64 work arrays in one block: F (max(c, 1)) | va, vm, inv_vm (nb each) | S (2nb)
        self.jx = np.zeros(max(nnz, 1))
        k = max(c, 1)
        db = np.empty(k + 5 * nb)
        d = &db[0]
        for i in range(k):
            d[i] = 0.0
        for i in range(nb):
            d[k + i] = 0.0
            d[k + nb + i] = 1.0
            d[k + 2 * nb + i] = 1.0
            d[k + 3 * nb + 2 * i] = 0.0
            d[k + 3 * nb + 2 * i + 1] = 0.0
        self.F = db[0:k]
        self.va = db[k:k + nb]
        self.vm = db[k + nb:k + 2 * nb]
        self.inv_vm = db[k + 2 * nb:k + 3 * nb]
        self.S = db[k + 3 * nb:k + 5 * nb]
        self.load_jacobian = True

        _klu.defaults(&self.common)
        self.common.btf = KLU_BTF
        if c > 0:
            self.sym = _klu.analyze(c, &self.jp[0], &self.ji[0], &self.common)
            if self.sym == NULL:
                raise MemoryError(f"klu_analyze failed (status {self.common.status})")

    def __dealloc__(self):
        _release_numeric(&self.num, &self.common)
        _release_symbolic(&self.sym, &self.common)

    cdef void _check(self, Py_ssize_t ny, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t n2,
                     Py_ssize_t nv) except *:
        if ny != self.yi.shape[0]:
            raise ValueError("ydata must have one entry per Ybus nonzero")
        if n0 != self.nb or n1 != self.nb or n2 != self.nb or nv != self.nb:
            raise ValueError("s0, si, sz and V must have one entry per bus")

    cdef bint _factor(self) noexcept nogil:
        """Numeric factorization of J: refactor if possible, else a fresh klu_factor."""
        cdef int ok
        if self.num != NULL:
            ok = _klu.refactor(&self.jp[0], &self.ji[0], &self.jx[0], self.sym,
                               self.num, &self.common)
            if ok and self.common.status == KLU_OK:
                _klu.rcond(self.sym, self.num, &self.common)
                # the old pivot order went bad (tiny pivot): refactor from scratch
                if isfinite(self.common.rcond) and \
                        self.common.rcond >= 1e-6 * self.rcond_factor:
                    self.n_refactor += 1
                    return True
            _release_numeric(&self.num, &self.common)
        self.num = _factor_or_null(&self.jp[0], &self.ji[0], &self.jx[0], self.sym,
                                   &self.common)
        if self.num == NULL:
            return False
        _klu.rcond(self.sym, self.num, &self.common)
        self.rcond_factor = self.common.rcond
        self.n_factor += 1
        return True

    def solve(self, const double complex[::1] ydata, const double complex[::1] s0,
              const double complex[::1] si, const double complex[::1] sz,
              double complex[::1] V, double tol, int max_iter, bint reuse=False):
        """Newton-Raphson from V (updated in place).  Returns (converged, iterations, norm).

        ``reuse``: start with the LU factors this solver holds from its previous solve (a chord
        step, no Jacobian and no refactorization) for as long as each step cuts the mismatch at
        least tenfold (CHORD_RATE); a step that cuts it less hands over to Newton, a step that
        grows it more than twofold (CHORD_GROWTH) is undone (and not counted).  Meant for warm starts after a small change of the
        injections on unchanged admittances, where the old Jacobian is close to the new one;
        the answer meets the same tolerance either way."""
        self._check(ydata.shape[0], s0.shape[0], si.shape[0], sz.shape[0], V.shape[0])
        cdef int nb = self.nb, i, it = 0
        cdef double norm = 0.0, prev
        cdef bint ok = True, moved
        if nb == 0:
            return True, 0, 0.0
        cdef bint chord = reuse and self.num != NULL and self.chord_wait == 0
        if reuse and self.chord_wait > 0:
            self.chord_wait -= 1
        cdef double[::1] vb
        cdef double *bak = NULL
        if chord:
            if self._vbak is None:
                self._vbak = np.empty(2 * nb)
            vb = self._vbak
            bak = &vb[0]
        cdef const double *y = <const double *>&ydata[0] if ydata.shape[0] else NULL
        cdef const double *ps0 = <const double *>&s0[0]
        cdef const double *psi = <const double *>&si[0]
        cdef const double *psz = <const double *>&sz[0]
        cdef double *v = <double *>&V[0]
        cdef double *va = &self.va[0]
        cdef double *vm = &self.vm[0]
        cdef double *ivm_ = &self.inv_vm[0]
        cdef double *S = &self.S[0]
        cdef double *F = &self.F[0]
        cdef const int32_t *iva = &self.iva[0]
        cdef const int32_t *ivm = &self.ivm[0]
        with nogil:
            _polar(nb, v, vm, va, ivm_)
            norm = _mismatch(nb, &self.yp[0], &self.yi[0], y, v, vm, ps0, psi, psz,
                             iva, ivm, S, F)
            while isfinite(norm) and not norm < tol and it < max_iter:
                it += 1
                if chord:
                    prev = norm
                    memcpy(bak, v, 2 * nb * sizeof(double))
                    _klu.tsolve(self.sym, self.num, self.n_jac, 1, F, &self.common)
                    moved = _update(nb, iva, ivm, F, va, vm, ivm_, v)
                    if moved:
                        norm = _mismatch(nb, &self.yp[0], &self.yi[0], y, v, vm, ps0, psi, psz,
                                         iva, ivm, S, F)
                    # Newton's own first step may grow the max-norm mismatch (case300: 1.7x):
                    # up to CHORD_GROWTH times is kept, and Newton goes on from there
                    if moved and isfinite(norm) and norm < CHORD_GROWTH * prev:
                        self.n_reused += 1
                        # go on with chord steps only if they contract fast enough to reach the
                        # tolerance within CHORD_LEFT more steps (and the iteration budget):
                        # linear convergence at 0.08 per step would take ten, Newton three
                        chord = norm <= CHORD_RATE * prev and (
                            norm < tol or _steps_left(norm, norm / prev, tol) <= min(CHORD_LEFT, max_iter - it))
                        if chord:
                            self.chord_backoff = 0
                        continue
                    # the old factors led astray: back to where the step started, Newton on
                    memcpy(v, bak, 2 * nb * sizeof(double))
                    _polar(nb, v, vm, va, ivm_)
                    norm = _mismatch(nb, &self.yp[0], &self.yi[0], y, v, vm, ps0, psi, psz,
                                     iva, ivm, S, F)
                    chord = False
                    it -= 1
                    # where old factors lead astray once they tend to again (a hard case, big
                    # steps): skip the next 1, 2, 4, ... 64 solves' attempts
                    self.chord_backoff = 1 if self.chord_backoff == 0 else min(2 * self.chord_backoff, 64)
                    self.chord_wait = self.chord_backoff
                    continue
                _jacobian(nb, &self.yp[0], &self.yi[0], y, v, ivm_, vm, S, psi, psz,
                          self.load_jacobian, iva, ivm, iva, &self.jp[0], &self.jx[0])
                if not self._factor():
                    ok = False
                    break
                _klu.tsolve(self.sym, self.num, self.n_jac, 1, F, &self.common)
                if not _update(nb, iva, ivm, F, va, vm, ivm_, v):
                    ok = False
                    break
                norm = _mismatch(nb, &self.yp[0], &self.yi[0], y, v, vm, ps0, psi, psz,
                                 iva, ivm, S, F)
        converged = ok and isfinite(norm) and norm < tol
        return bool(converged), it, float(norm)

    def mismatch(self, const double complex[::1] ydata, const double complex[::1] s0,
                 const double complex[::1] si, const double complex[::1] sz,
                 const double complex[::1] V):
        """F = [Re mis(pv), Re mis(pq), Im mis(pq)] at V (pandapower's order)."""
        self._check(ydata.shape[0], s0.shape[0], si.shape[0], sz.shape[0], V.shape[0])
        np.asarray(self.vm)[:] = np.abs(np.asarray(V))
        _mismatch(self.nb, &self.yp[0], &self.yi[0],
                  <const double *>&ydata[0] if ydata.shape[0] else NULL,
                  <const double *>&V[0], &self.vm[0], <const double *>&s0[0],
                  <const double *>&si[0], <const double *>&sz[0], &self.iva[0],
                  &self.ivm[0], &self.S[0], &self.F[0])
        return np.asarray(self.F)[:self.n_jac][self.unknown_order]

    def jacobian(self, const double complex[::1] ydata, const double complex[::1] si,
                 const double complex[::1] sz, const double complex[::1] V):
        """J at V as a scipy CSR matrix in pandapower's row/column order."""
        import scipy.sparse as sp
        zero = np.zeros(self.nb, dtype=np.complex128)
        NewtonSolver.mismatch(self, ydata, zero, si, sz, V)
        np.asarray(self.inv_vm)[:] = 1.0 / np.asarray(self.vm)
        _jacobian(self.nb, &self.yp[0], &self.yi[0],
                  <const double *>&ydata[0] if ydata.shape[0] else NULL,
                  <const double *>&V[0], &self.inv_vm[0], &self.vm[0], &self.S[0],
                  <const double *>&si[0], <const double *>&sz[0], self.load_jacobian,
                  &self.iva[0], &self.ivm[0], &self.ica[0], &self.jp[0], &self.jx[0])
        n = self.n_jac
        J = sp.csr_matrix((np.array(self.jx[:self.nnz_jac]), np.array(self.ji[:self.nnz_jac]),
                           np.array(self.jp)), shape=(n, n))
        o = self.unknown_order
        return J[o][:, o].tocsr()

    @property
    def unknown_order(self):
        """Internal index of each pandapower-ordered unknown [Va(pv), Va(pq), Vm(pq)]."""
        iva = np.asarray(self.iva)
        ivm = np.asarray(self.ivm)
        return np.concatenate([iva[self._pv], iva[self._pq], ivm[self._pq]]).astype(np.intp)


# ------------------------------------------------------- distributed slack
cdef double _slack_terms(int n, double *F, int nw, const int32_t *w_row, const double *w_val,
                         const int32_t *w_isl, const double *ps) noexcept nogil:
    """F_P(i) -= w_i ps(island of i) for every weighted bus; returns max|F| (NaN if any
    entry is not finite)."""
    cdef int m, r
    cdef double norm = 0.0
    cdef bint bad = False
    for m in range(nw):
        F[w_row[m]] -= w_val[m] * ps[w_isl[m]]
    for r in range(n):
        if not fabs(F[r]) <= norm:
            norm = fabs(F[r])
            bad = bad or not isfinite(F[r])
    return NAN if bad else norm


cdef class DistributedSlackSolver(NewtonSolver):
    """Newton-Raphson where each island's slack power is shared by weighted buses.

    Per island j one more unknown, the island's slack power ps_j (p.u., generation
    positive), and one more equation, the P balance of the island's reference bus
    ``dsref[j]`` (whose angle stays fixed).  Bus i's P equation reads
    P_i(V) - P_spec,i - w_i ps_j = 0 with the normalised bus weights w (sum 1 per island).
    Internally ps_j takes the unknown slot of its reference bus, so the slack-power column
    and the reference's P row sit in the Jacobian pattern built once here; the column's
    values (-w_i) are constant and laid into J once.  ``ref`` buses stay fully fixed
    (islands without weights keep a plain slack).
    """
    cdef int32_t[::1] w_row, w_isl, ps_row
    cdef double[::1] w_val
    cdef readonly object dsref

    def __init__(self, const int32_t[::1] indptr, const int32_t[::1] indices,
                 const int32_t[::1] ref, const int32_t[::1] pv, const int32_t[::1] pq,
                 const int32_t[::1] dsref, const double[::1] weight, const int32_t[::1] island):
        cls = _classify(indptr, indices, (("ref", ref, 3), ("pv", pv, 1), ("pq", pq, 2),
                                          ("dsref", dsref, 4)))
        nb = indptr.shape[0] - 1
        w = np.array(weight, dtype=np.float64)
        isl = np.array(island, dtype=np.int32)
        ds = np.array(dsref, dtype=np.int32)
        if w.shape[0] != nb or isl.shape[0] != nb:
            raise ValueError("weight and island must have one entry per bus")
        if not np.isfinite(w).all():
            raise ValueError("slack weights must be finite")
        has = w != 0
        if np.any(isl[has] < 0) or np.any(isl >= len(ds)):
            raise ValueError("every weighted bus needs an island index in 0..len(dsref)-1")
        if np.any((cls == 0) & has) or np.any((cls == 3) & has):
            raise ValueError("weighted buses must be pv, pq or dsref buses")
        if np.any(isl[ds] != np.arange(len(ds))):
            raise ValueError("island[dsref[j]] must be j")
        self._ref = np.array(ref, dtype=np.int32)
        self._pv = np.array(pv, dtype=np.int32)
        self._pq = np.array(pq, dtype=np.int32)
        self.dsref = ds
        xisl = np.where(has | (cls == 4), isl, -1).astype(np.int32)
        self._setup(indptr, indices, cls, xisl, ds)
        iva = np.asarray(self.iva)
        rows = np.flatnonzero(has)
        self.w_row = iva[rows].astype(np.int32)
        self.w_val = w[rows]
        self.w_isl = isl[rows]
        self.ps_row = iva[ds].astype(np.int32)
        jp, jx = np.asarray(self.jp), np.asarray(self.jx)
        ext = np.flatnonzero(xisl >= 0)
        jx[jp[iva[ext] + 1] - 1] = -w[ext]  # constant: dF_P(i)/dps = -w_i

    def solve(self, const double complex[::1] ydata, const double complex[::1] s0,
              const double complex[::1] si, const double complex[::1] sz,
              double complex[::1] V, double[::1] ps, double tol, int max_iter):
        """Newton-Raphson from V and the island slack powers ps (both updated in place).
        Returns (converged, iterations, norm)."""
        self._check(ydata.shape[0], s0.shape[0], si.shape[0], sz.shape[0], V.shape[0])
        if ps.shape[0] != self.ps_row.shape[0]:
            raise ValueError("ps must have one entry per distributed-slack island")
        cdef int nb = self.nb, i, j, it = 0, n = self.n_jac
        cdef int nw = self.w_row.shape[0], nisl = self.ps_row.shape[0]
        cdef double norm = 0.0, d
        cdef bint ok = True
        if nb == 0 or n == 0:
            return True, 0, 0.0
        cdef const double *y = <const double *>&ydata[0] if ydata.shape[0] else NULL
        cdef const double *ps0 = <const double *>&s0[0]
        cdef const double *psi = <const double *>&si[0]
        cdef const double *psz = <const double *>&sz[0]
        cdef double *v = <double *>&V[0]
        cdef double *va = &self.va[0]
        cdef double *vm = &self.vm[0]
        cdef double *ivm_ = &self.inv_vm[0]
        cdef double *S = &self.S[0]
        cdef double *F = &self.F[0]
        cdef double *pps = &ps[0]
        cdef const int32_t *iva = &self.iva[0]
        cdef const int32_t *ivm = &self.ivm[0]
        cdef const int32_t *ica = &self.ica[0]
        cdef const int32_t *wr = &self.w_row[0] if nw else NULL
        cdef const int32_t *wi = &self.w_isl[0] if nw else NULL
        cdef const double *wv = &self.w_val[0] if nw else NULL
        cdef const int32_t *pr = &self.ps_row[0]
        with nogil:
            for i in range(nb):
                vm[i] = sqrt(v[2 * i] * v[2 * i] + v[2 * i + 1] * v[2 * i + 1])
                va[i] = atan2(v[2 * i + 1], v[2 * i])
                ivm_[i] = 1.0 / vm[i]
            _mismatch(nb, &self.yp[0], &self.yi[0], y, v, vm, ps0, psi, psz, iva, ivm, S, F)
            norm = _slack_terms(n, F, nw, wr, wv, wi, pps)
            while isfinite(norm) and not norm < tol and it < max_iter:
                it += 1
                _jacobian(nb, &self.yp[0], &self.yi[0], y, v, ivm_, vm, S, psi, psz,
                          self.load_jacobian, iva, ivm, ica, &self.jp[0], &self.jx[0])
                if not self._factor():
                    ok = False
                    break
                _klu.tsolve(self.sym, self.num, n, 1, F, &self.common)
                for j in range(nisl):  # take the slack steps out; the references' angles stay
                    d = F[pr[j]]
                    if not isfinite(d):
                        ok = False
                    pps[j] -= d
                    F[pr[j]] = 0.0
                if not ok or not _update(nb, iva, ivm, F, va, vm, ivm_, v):
                    ok = False
                    break
                _mismatch(nb, &self.yp[0], &self.yi[0], y, v, vm, ps0, psi, psz, iva, ivm, S, F)
                norm = _slack_terms(n, F, nw, wr, wv, wi, pps)
        converged = ok and isfinite(norm) and norm < tol
        return bool(converged), it, float(norm)

    def mismatch(self, const double complex[::1] ydata, const double complex[::1] s0,
                 const double complex[::1] si, const double complex[::1] sz,
                 const double complex[::1] V, const double[::1] ps):
        """F = [P mis(dsref), P mis(pv), P mis(pq), Q mis(pq)] at (V, ps), with the weighted
        slack terms (pandapower's order)."""
        NewtonSolver.mismatch(self, ydata, s0, si, sz, V)
        nw = self.w_row.shape[0]
        _slack_terms(self.n_jac, &self.F[0], nw, &self.w_row[0] if nw else NULL,
                     &self.w_val[0] if nw else NULL, &self.w_isl[0] if nw else NULL, &ps[0])
        return np.asarray(self.F)[:self.n_jac][self.unknown_order]

    @property
    def unknown_order(self):
        """Internal index of each pandapower-ordered unknown [ps, Va(pv), Va(pq), Vm(pq)]."""
        iva = np.asarray(self.iva)
        ivm = np.asarray(self.ivm)
        return np.concatenate([iva[self.dsref], iva[self._pv], iva[self._pq],
                               ivm[self._pq]]).astype(np.intp)


# --------------------------------------------------------------------- DC
def dc_solve(const int32_t[::1] indptr, const int32_t[::1] indices,
             const double[::1] bdata, const double[::1] p, const int32_t[::1] ref,
             double[::1] va):
    """Solve B[n,n] va[n] = p[n] - B[n,r] va[r] for the non-ref buses n (va in/out).

    B is CSR (nb x nb).  Returns False (va untouched) if the reduced B is singular
    or the solution is not finite."""
    cdef int nb = indptr.shape[0] - 1, i, k, q, c, r, n = 0
    if nb < 0 or p.shape[0] != nb or va.shape[0] != nb:
        raise ValueError("p and va must have len(indptr) - 1 entries")
    if indptr[0] != 0 or indptr[nb] > indices.shape[0] or bdata.shape[0] != indices.shape[0]:
        raise ValueError("inconsistent CSR arrays")
    cdef int32_t[::1] new = np.zeros(max(nb, 1), dtype=np.int32)
    for i in range(ref.shape[0]):
        if not 0 <= ref[i] < nb:
            raise ValueError("ref bus index outside 0..nb-1")
        new[ref[i]] = -1
    for i in range(nb):
        if new[i] == 0:
            new[i] = n
            n += 1
    if n == 0:
        return True
    cdef int32_t[::1] sp_ = np.zeros(n + 1, dtype=np.int32)
    cdef int32_t[::1] si_ = np.empty(max(indptr[nb], 1), dtype=np.int32)
    cdef double[::1] sx = np.empty(max(indptr[nb], 1))
    cdef double[::1] rhs = np.empty(n)
    for i in range(nb):
        r = new[i]
        if r < 0:
            continue
        rhs[r] = p[i]
        for q in range(indptr[i], indptr[i + 1]):
            k = indices[q]
            if not 0 <= k < nb:
                raise ValueError("column index outside 0..nb-1")
            c = new[k]
            if c < 0:
                rhs[r] -= bdata[q] * va[k]
            else:
                si_[sp_[r + 1] + sp_[r]] = c
                sx[sp_[r + 1] + sp_[r]] = bdata[q]
                sp_[r + 1] += 1
        sp_[r + 1] += sp_[r]
    cdef klu_common com
    cdef void *sym
    cdef void *num = NULL
    cdef bint ok = False
    _klu.defaults(&com)
    sym = _klu.analyze(n, &sp_[0], &si_[0], &com)
    if sym == NULL:
        return False
    num = _factor_or_null(&sp_[0], &si_[0], &sx[0], sym, &com)
    if num != NULL:
        ok = _klu.tsolve(sym, num, n, 1, &rhs[0], &com) != 0
        _release_numeric(&num, &com)
    _release_symbolic(&sym, &com)
    for i in range(n):
        ok = ok and isfinite(rhs[i])
    if ok:
        for i in range(nb):
            if new[i] >= 0:
                va[i] = rhs[new[i]]
    return bool(ok)
