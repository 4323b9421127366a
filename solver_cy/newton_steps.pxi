# The Newton-Raphson run of one solve (NewtonSolver.solve's body) and the step loop of a study's
# chunk (solve_steps); a textual include of newton.pyx, after the NewtonSolver class.


cdef bint _nr_run(NewtonSolver s, const double *y, const double *ps0, const double *psi,
                  const double *psz, double *v, double tol, int max_iter, bint reuse,
                  int *it_out, double *norm_out) noexcept nogil:
    """Newton-Raphson from ``v`` (updated in place) on solver ``s``: see NewtonSolver.solve."""
    cdef int nb = s.nb, it = 0
    cdef double norm = 0.0, prev
    cdef bint ok = True, moved
    cdef bint chord = reuse and s.num != NULL and s.chord_wait == 0
    if reuse and s.chord_wait > 0:
        s.chord_wait -= 1
    cdef double *bak = &s.vb[0]
    cdef double *va = &s.va[0]
    cdef double *vm = &s.vm[0]
    cdef double *ivm_ = &s.inv_vm[0]
    cdef double *S = &s.S[0]
    cdef double *F = &s.F[0]
    cdef const int32_t *iva = &s.iva[0]
    cdef const int32_t *ivm = &s.ivm[0]
    cdef const int32_t *yp = &s.yp[0]
    cdef const int32_t *yi = &s.yi[0]
    s.runs += 1
    _polar(nb, v, vm, va, ivm_)
    norm = _mismatch(nb, yp, yi, y, v, vm, ps0, psi, psz, iva, ivm, S, F)
    while isfinite(norm) and not norm < tol and it < max_iter:
        it += 1
        if chord:
            prev = norm
            memcpy(bak, v, 2 * nb * sizeof(double))
            _klu.tsolve(s.sym, s.num, s.n_jac, 1, F, &s.common)
            moved = _update(nb, iva, ivm, F, va, vm, ivm_, v)
            if moved:
                norm = _mismatch(nb, yp, yi, y, v, vm, ps0, psi, psz, iva, ivm, S, F)
            # Newton's own first step may grow the max-norm mismatch (case300: 1.7x):
            # up to CHORD_GROWTH times is kept, and Newton goes on from there
            if moved and isfinite(norm) and norm < CHORD_GROWTH * prev:
                s.n_reused += 1
                # go on with chord steps only if they contract fast enough to reach the
                # tolerance within CHORD_LEFT more steps (and the iteration budget):
                # linear convergence at 0.08 per step would take ten, Newton three
                chord = norm <= CHORD_RATE * prev and (
                    norm < tol or _steps_left(norm, norm / prev, tol) <= min(CHORD_LEFT, max_iter - it))
                if chord:
                    s.chord_backoff = 0
                continue
            # the old factors led astray: back to where the step started, Newton on
            memcpy(v, bak, 2 * nb * sizeof(double))
            _polar(nb, v, vm, va, ivm_)
            norm = _mismatch(nb, yp, yi, y, v, vm, ps0, psi, psz, iva, ivm, S, F)
            chord = False
            it -= 1
            # where old factors lead astray once they tend to again (a hard case, big
            # steps): skip the next 1, 2, 4, ... 64 solves' attempts
            s.chord_backoff = 1 if s.chord_backoff == 0 else min(2 * s.chord_backoff, 64)
            s.chord_wait = s.chord_backoff
            continue
        _jacobian(nb, yp, yi, y, v, ivm_, vm, S, psi, psz, s.load_jacobian, iva, ivm, iva, &s.jp[0], &s.jx[0])
        if not s._factor():
            ok = False
            break
        _klu.tsolve(s.sym, s.num, s.n_jac, 1, F, &s.common)
        if not _update(nb, iva, ivm, F, va, vm, ivm_, v):
            ok = False
            break
        norm = _mismatch(nb, yp, yi, y, v, vm, ps0, psi, psz, iva, ivm, S, F)
    it_out[0] = it
    norm_out[0] = norm
    return ok and isfinite(norm) and norm < tol


def solve_steps(NewtonSolver s, const double complex[::1] ydata, const double complex[:, ::1] S0,
                const double complex[:, ::1] SI, const double complex[:, ::1] SZ,
                double complex[::1] V, const double complex[::1] v0, bint warm,
                double complex[:, ::1] Vs, unsigned char[::1] ok, int32_t[::1] its, double[::1] norms,
                Py_ssize_t start, double tol, int max_iter, bint reuse, bint independent,
                double[:, ::1] VM=None, double[:, ::1] VA=None):
    """Solve the steps ``start`` .. of a chunk on ``s``: step i's injections are row i of ``S0``
    and of ``SI`` / ``SZ`` (or their one row, for every step), its voltages go to row i of ``Vs``
    (only when it converges), its status to ``ok``, ``its``, ``norms``.  ``V``: the working
    voltages; a step starts from them when ``warm`` (chained, after a converged step), else from
    ``v0`` (with the solver's factors as a chord start only when ``independent``).  Chained
    (not ``independent``): a step that does not converge makes the next start from ``v0``.
    Independent: every step starts from ``v0`` and from the solver's state: a step that left it
    (a refactorization, a chord back-off, a divergence) is followed by ``s.restore()`` when the
    solver keeps one (NewtonSolver.keep); the loop stops after a step that left a state that
    cannot be restored (new pivot order, no factors) or, without a kept state, after any step that
    left it or did not converge, so the caller can make the state again.  ``VM``, ``VA`` (optional, the shape of ``Vs``): a converged
    step's magnitudes and angles (rad, not wrapped) as the solver holds them; a bus whose
    magnitude is not an unknown (PV, fixed) reads its magnitude in ``v0``.  Returns ``(next
    step, warm)``."""
    cdef Py_ssize_t n = S0.shape[0], nb = s.nb, i = start
    cdef Py_ssize_t si_step = nb if SI.shape[0] > 1 else 0, sz_step = nb if SZ.shape[0] > 1 else 0
    if S0.shape[1] != nb or SI.shape[1] != nb or SZ.shape[1] != nb or V.shape[0] != nb or v0.shape[0] != nb \
            or Vs.shape[0] != n or Vs.shape[1] != nb or ok.shape[0] != n or its.shape[0] != n \
            or norms.shape[0] != n or (si_step and SI.shape[0] != n) or (sz_step and SZ.shape[0] != n):
        raise ValueError("solve_steps: inconsistent arrays")
    if (VM is None) != (VA is None) or (VM is not None and (VM.shape[0] != n or VM.shape[1] != nb
                                                           or VA.shape[0] != n or VA.shape[1] != nb)):
        raise ValueError("solve_steps: inconsistent arrays")
    s._check(ydata.shape[0], nb, nb, nb, nb)
    if not 0 <= start <= n:
        raise ValueError("solve_steps: start out of range")
    if nb == 0:  # nothing to solve: every step converges at once (as solve says)
        for i in range(start, n):
            ok[i], its[i], norms[i] = 1, 0, 0.0
        return n, not independent
    if n == start:
        return start, warm
    cdef const double *y = <const double *>&ydata[0] if ydata.shape[0] else NULL
    cdef const double *p0 = <const double *>&S0[0, 0]
    cdef const double *pi = <const double *>&SI[0, 0]
    cdef const double *pz = <const double *>&SZ[0, 0]
    cdef double *v = <double *>&V[0]
    cdef const double *pv0 = <const double *>&v0[0]
    cdef double *out = <double *>&Vs[0, 0]
    cdef double *om = NULL
    cdef double *oa = NULL
    cdef double[::1] vm0
    cdef Py_ssize_t b
    if VM is not None:
        om, oa = &VM[0, 0], &VA[0, 0]
        # a bus of fixed magnitude reads the magnitude it starts from: a chained series restarts
        # each step from the last one's voltages, whose magnitudes carry the round-off of the
        # steps before (an ulp or two), and an output at a set-point must not drift off it
        vm0 = np.empty(nb)
        for b in range(nb):
            vm0[b] = sqrt(v0[b].real * v0[b].real + v0[b].imag * v0[b].imag)
    cdef int nf = s.n_factor, nr = s.n_refactor, it = 0
    cdef double norm = 0.0
    cdef bint c, r
    cdef const int32_t *fixed = &s.ivm[0]  # < 0: the bus's magnitude is not an unknown
    cdef const double *pm0 = &vm0[0] if om != NULL else NULL
    with nogil:
        while i < n:
            r = reuse
            if not warm:
                memcpy(v, pv0, 2 * nb * sizeof(double))
                r = reuse and independent
            c = _nr_run(s, y, p0 + 2 * i * nb, pi + 2 * i * si_step, pz + 2 * i * sz_step, v, tol, max_iter,
                        r, &it, &norm)
            ok[i], its[i], norms[i] = c, it, norm
            if c:
                memcpy(out + 2 * i * nb, v, 2 * nb * sizeof(double))
                if om != NULL:
                    memcpy(om + i * nb, &s.vm[0], nb * sizeof(double))
                    memcpy(oa + i * nb, &s.va[0], nb * sizeof(double))
                    for b in range(nb):
                        if fixed[b] < 0:
                            om[i * nb + b] = pm0[b]
            i += 1
            if independent:
                warm = False
                if s.kept:  # back to the kept state in place, when a step left it
                    if s._left() and not s._restore():
                        break
                elif not c or s.n_factor != nf or s.n_refactor != nr or s.chord_backoff or s.chord_wait:
                    break
            else:
                warm = c
    return i, warm
