# The KLU binding of newton.pyx (textual include: one extension module, one binding state).
#
# KLU is not linked: at import we dlopen nbklu's extension module (which exports SuiteSparse's
# int32 KLU entry points) and dlsym the functions we need.  nbklu documents only its Python
# API, not these C symbols nor the klu_common layout (klu.pxd is a hand copy of SuiteSparse's),
# so the binding refuses to load (ImportError) unless (1) the installed nbklu is a version it
# was verified against (NBKLU_VERIFIED, pinned in pyproject.toml) and (2) klu_defaults through
# this binding fills klu_common with the very values nbklu's own documented Python API
# (nbklu._ext.Common().defaults()) reports, field by field: a layout that moved shows here
# instead of as memory corruption.
from posix.dlfcn cimport dlopen, dlsym, dlerror, RTLD_NOW, RTLD_LOCAL
from libc.string cimport memset

#: nbklu versions this binding was verified against (struct layout, symbols, release semantics)
NBKLU_VERIFIED = ("0.3.0",)

cdef KluApi _klu
cdef void *_klu_handle = NULL


cdef void *_sym(void *handle, bytes name) except NULL:
    cdef void *p = dlsym(handle, name)
    if p == NULL:
        raise ImportError(f"nbklu does not export {name.decode()}")
    return p


def _load_klu():
    """dlopen nbklu._ext (already imported, so this only bumps its refcount), after checking
    its version; then check the klu_common layout (_check_layout)."""
    global _klu_handle
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("nbklu")
    except PackageNotFoundError:
        raise ImportError("gridtape needs nbklu (pip install 'nbklu==0.3.0')") from None
    if v not in NBKLU_VERIFIED:
        raise ImportError(f"gridtape's KLU binding was verified against nbklu {', '.join(NBKLU_VERIFIED)} only; "
                          f"nbklu {v} is installed (its private C layout may differ: refusing to load). "
                          f"Install nbklu=={NBKLU_VERIFIED[len(NBKLU_VERIFIED) - 1]}.")  # (no wraparound here)
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
    _check_layout()


def _check_layout():
    """klu_defaults through this binding must give the klu_common nbklu's Python API reports."""
    import nbklu._ext
    cdef klu_common c
    memset(&c, 0xA5, sizeof(klu_common))  # (a field klu_defaults does not set cannot match by chance)
    if _klu.defaults(&c) != 1:
        raise ImportError("nbklu's klu_defaults failed")
    ref = nbklu._ext.Common()
    ref.defaults()
    ours = dict(tol=c.tol, memgrow=c.memgrow, initmem_amd=c.initmem_amd, initmem=c.initmem, maxwork=c.maxwork,
                btf=c.btf, ordering=c.ordering, scale=c.scale, halt_if_singular=c.halt_if_singular,
                status=c.status, nrealloc=c.nrealloc, structural_rank=c.structural_rank,
                numerical_rank=c.numerical_rank, noffdiag=c.noffdiag, flops=c.flops, rcond=c.rcond,
                condest=c.condest, rgrowth=c.rgrowth, work=c.work, memusage=c.memusage, mempeak=c.mempeak)
    bad = [k for k, v in ours.items() if getattr(ref, k) != v]
    if bad:
        raise ImportError(f"nbklu's klu_common differs from the layout gridtape was built for ({', '.join(bad)}): "
                          "refusing to load")


try:
    _load_klu()
    _KLU_ERROR = None
except ImportError as e:  # raised at the end of newton.pyx; every solver refuses too (_klu_ready)
    _KLU_ERROR = str(e)


def _klu_ready():
    """Raise ImportError when the KLU binding refused to load (its reason)."""
    if _KLU_ERROR is not None:
        raise ImportError(_KLU_ERROR)


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
    _klu_ready()
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


