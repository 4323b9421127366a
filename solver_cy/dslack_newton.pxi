# Distributed-slack Newton-Raphson of newton.pyx (textual include).
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
        self.runs += 1
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


