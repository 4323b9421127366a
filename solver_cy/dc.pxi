# The DC power flow of newton.pyx (textual include).
# --------------------------------------------------------------------- DC
def dc_solve(const int32_t[::1] indptr, const int32_t[::1] indices,
             const double[::1] bdata, const double[::1] p, const int32_t[::1] ref,
             double[::1] va):
    """Solve B[n,n] va[n] = p[n] - B[n,r] va[r] for the non-ref buses n (va in/out).

    B is CSR (nb x nb).  Returns False (va untouched) if the reduced B is singular
    or the solution is not finite."""
    _klu_ready()
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

