# KLU (SuiteSparse 2.x, int32 API) declarations, bound at run time with dlsym.
#
# The struct below must match SuiteSparse's `klu_common` field for field; it
# is checked by tests/test_kernels.py (klu_defaults values, singular status).
# klu_symbolic / klu_numeric are opaque: we only pass their pointers around.
from libc.stdint cimport int32_t

cdef enum:
    KLU_OK = 0
    KLU_SINGULAR = 1
    KLU_OUT_OF_MEMORY = -2
    KLU_INVALID = -3
    KLU_TOO_LARGE = -4

cdef struct klu_common:
    double tol
    double memgrow
    double initmem_amd
    double initmem
    double maxwork
    int btf
    int ordering
    int scale
    void *user_order        # int32_t (*)(int32_t, int32_t*, int32_t*, int32_t*, klu_common*)
    void *user_data
    int halt_if_singular
    int status
    int nrealloc
    int32_t structural_rank
    int32_t numerical_rank
    int32_t singular_col
    int32_t noffdiag
    double flops
    double rcond
    double condest
    double rgrowth
    double work
    size_t memusage
    size_t mempeak

# Function-pointer table (filled once per process by newton.pyx).
ctypedef int (*klu_defaults_f)(klu_common *) noexcept nogil
ctypedef void *(*klu_analyze_f)(int32_t, int32_t *, int32_t *, klu_common *) noexcept nogil
ctypedef void *(*klu_factor_f)(int32_t *, int32_t *, double *, void *, klu_common *) noexcept nogil
ctypedef int (*klu_refactor_f)(int32_t *, int32_t *, double *, void *, void *,
                               klu_common *) noexcept nogil
ctypedef int (*klu_solve_f)(void *, void *, int32_t, int32_t, double *,
                            klu_common *) noexcept nogil
ctypedef int (*klu_free_f)(void **, klu_common *) noexcept nogil
ctypedef int (*klu_rcond_f)(void *, void *, klu_common *) noexcept nogil
ctypedef void *(*ss_free_f)(void *) noexcept nogil

cdef struct KluApi:
    klu_defaults_f defaults
    klu_analyze_f analyze
    klu_factor_f factor
    klu_refactor_f refactor
    klu_solve_f solve
    klu_solve_f tsolve
    klu_free_f free_symbolic
    klu_free_f free_numeric
    klu_rcond_f rcond
    ss_free_f ss_free       # SuiteSparse_free (see klu_release in newton.pyx)
