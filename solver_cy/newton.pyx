"""Polar Newton-Raphson power flow over KLU, plus a DC power-flow helper.

One extension module in rooms (textual includes): klu_binding.pxi (the KLU binding),
nr_kernels.pxi (mismatch, Jacobian, update), this file (NewtonSolver), dslack_newton.pxi
(DistributedSlackSolver), dc.pxi (dc_solve), newton_steps.pxi (a solve's Newton run, a study
chunk's step loop).

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


include "klu_binding.pxi"
include "nr_kernels.pxi"


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
    # the magnitudes and angles (rad, not wrapped) of the last iterate (numpy views of vm, va)
    # and a count of the runs that wrote them: a caller that keeps ``runs`` with the voltages a
    # run returned knows ``polar`` still belongs to them while the count is unchanged
    cdef readonly object polar
    cdef readonly unsigned long long runs
    cdef int32_t[::1] yp, yi, iva, ivm, ica, jp, ji
    cdef double[::1] jx, F, va, vm, inv_vm, S, vb  # vb: V before a chord step (solve reuse)
    cdef object _pv, _pq, _ref
    cdef klu_common common
    cdef void *sym
    cdef void *num
    cdef double rcond_factor
    # the kept state (keep / _restore): the Jacobian values of the kept factors, the number of
    # fresh factorizations then (a later one changed the pivot order: no restoring), chord state
    cdef double[::1] kjx
    cdef int k_factor, k_refactor, k_wait, k_backoff
    cdef bint kept

    def __cinit__(self, *args, **kwargs):
        self.sym = NULL
        self.num = NULL
        _klu_ready()

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

        # the float64 work arrays in one block: F (max(c, 1)) | va, vm, inv_vm (nb each) | S, vb (2nb each)
        self.jx = np.zeros(max(nnz, 1))
        k = max(c, 1)
        dba = np.empty(k + 7 * nb + 1)
        db = dba
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
        self.vb = db[k + 5 * nb:k + 7 * nb + 1]
        self.polar = (dba[k + nb:k + 2 * nb], dba[k:k + nb])
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

    def keep(self):
        """Keep the solver's state (its LU factors and chord state) so that :meth:`restore` can
        bring it back after solves that refactored it: the factors are made again here by a
        refactorization of the Jacobian they were last made from, so the kept factors and every
        restored copy are the same bits.  Right after a solve that factored (not one that ended
        on chord steps); False when the solver holds no factors."""
        if self.num == NULL or self.nnz_jac == 0:
            self.kept = False
            return False
        self.kjx = np.array(self.jx, copy=True)
        self.k_factor, self.k_wait, self.k_backoff = self.n_factor, self.chord_wait, self.chord_backoff
        self.kept = True
        return bool(self._restore())

    def restore(self):
        """Bring back the state kept by :meth:`keep`; False (nothing changed) when it cannot be:
        nothing kept, or a fresh factorization since chose another pivot order."""
        cdef bint ok
        with nogil:
            ok = self._restore()
        return bool(ok)

    cdef bint _restore(self) noexcept nogil:
        if not self.kept or self.num == NULL or self.n_factor != self.k_factor:
            return False
        if not _klu.refactor(&self.jp[0], &self.ji[0], &self.kjx[0], self.sym, self.num, &self.common) \
                or self.common.status != KLU_OK:
            _release_numeric(&self.num, &self.common)
            self.kept = False
            return False
        self.chord_wait, self.chord_backoff = self.k_wait, self.k_backoff
        self.k_refactor = self.n_refactor
        return True

    cdef bint _left(self) noexcept nogil:
        """Whether the solver left its kept state (always, when none is kept)."""
        return not self.kept or self.num == NULL or self.n_factor != self.k_factor \
            or self.n_refactor != self.k_refactor or self.chord_wait != self.k_wait \
            or self.chord_backoff != self.k_backoff

    @property
    def left_kept(self):
        """Whether solves since :meth:`keep` (or the last :meth:`restore`) changed the solver's
        factors or chord state (True when nothing is kept)."""
        return bool(self._left())

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
        if self.nb == 0:
            return True, 0, 0.0
        cdef int it = 0
        cdef double norm = 0.0
        cdef bint c
        cdef const double *y = <const double *>&ydata[0] if ydata.shape[0] else NULL
        with nogil:
            c = _nr_run(self, y, <const double *>&s0[0], <const double *>&si[0], <const double *>&sz[0],
                        <double *>&V[0], tol, max_iter, reuse, &it, &norm)
        return bool(c), it, float(norm)

    def mismatch(self, const double complex[::1] ydata, const double complex[::1] s0,
                 const double complex[::1] si, const double complex[::1] sz,
                 const double complex[::1] V):
        """F = [Re mis(pv), Re mis(pq), Im mis(pq)] at V (pandapower's order)."""
        self._check(ydata.shape[0], s0.shape[0], si.shape[0], sz.shape[0], V.shape[0])
        self.runs += 1
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



include "dslack_newton.pxi"
include "dc.pxi"
include "newton_steps.pxi"


if _KLU_ERROR is not None:
    raise ImportError(_KLU_ERROR)
