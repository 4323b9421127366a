# Newton-Raphson kernels of newton.pyx (textual include): mismatch, Jacobian, polar form, update.
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


# an angle step below this (rad) turns the old voltage by a short series for sin / cos instead
# of a sincos call (the series' error, d^8 / 8!, is below a tenth of an ulp here; the voltage's
# phase carries a few ulps from the step before, as sincos of the summed angle does)
cdef double SMALL_TURN = 1.0 / 32.0


cdef bint _update(int nb, const int32_t *iva, const int32_t *ivm, const double *dx,
                  double *va, double *vm, double *inv_vm, double *v) noexcept nogil:
    """x -= dx for every non-fixed bus and rebuild V; False if dx is not finite."""
    cdef int i, r
    cdef double d, a, m, d2, sd, cd, c0, s0, w
    cdef bint turn
    for i in range(nb):
        r = iva[i]
        if r < 0:
            continue
        d = dx[r]
        if not isfinite(d):
            return False
        w = inv_vm[i]  # 1 / |V| before the step
        va[i] -= d
        turn = fabs(d) < SMALL_TURN
        r = ivm[i]
        if r >= 0:
            d = dx[r]
            if not isfinite(d):
                return False
            vm[i] -= d
            if vm[i] < 0.0:  # same point, as pandapower's abs()/angle() re-split does
                vm[i] = -vm[i]
                va[i] += M_PI
                turn = False
            inv_vm[i] = 1.0 / vm[i]
        m = vm[i]
        if turn:
            # V = m (cos(a - d), sin(a - d)) from the old unit phasor (cos a, sin a) = V / |V|
            d = dx[iva[i]]
            d2 = d * d
            sd = d * (1.0 - d2 / 6.0 * (1.0 - d2 / 20.0 * (1.0 - d2 / 42.0)))
            cd = 1.0 - d2 / 2.0 * (1.0 - d2 / 12.0 * (1.0 - d2 / 30.0))
            c0 = v[2 * i] * w
            s0 = v[2 * i + 1] * w
            v[2 * i] = m * (c0 * cd + s0 * sd)
            v[2 * i + 1] = m * (s0 * cd - c0 * sd)
            continue
        a = va[i]  # locals: lets the compiler fuse sin/cos into one sincos call
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


