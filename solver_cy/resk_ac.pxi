# The model arrays of the AC result kernels (resk.pyx, textual include): their checks, once per
# call (_ac_args: ac_steps) or once per model (AcIndex: ac_arrays, which then checks only the sizes
# of the admittances it is given).

cdef struct _Ac:
    Py_ssize_t nb, nbr, ny
    const int32_t *f
    const int32_t *t
    const int32_t *yp
    const int32_t *yi
    const double complex *yff
    const double complex *yft
    const double complex *ytf
    const double complex *ytt
    const double complex *y


cdef int _ac_index(_Ac *a, Py_ssize_t nb, f_in, t_in, indptr, indices) except -1:
    """Check the index arrays of the AC result kernels (branch ends, Ybus pattern) and take their
    pointers."""
    cdef Py_ssize_t nbr = _size(f_in), ny = _size(indices), i, k, q
    if nb < 0 or nbr < 0 or ny < 0 or _size(indptr) != nb + 1:
        raise ValueError("ac_arrays: inconsistent arrays")
    a.nb, a.nbr, a.ny = nb, nbr, ny
    a.f = <const int32_t *>_ptr(f_in, cnp.NPY_INT32, nbr, "f")
    a.t = <const int32_t *>_ptr(t_in, cnp.NPY_INT32, nbr, "t")
    a.yp = <const int32_t *>_ptr(indptr, cnp.NPY_INT32, nb + 1, "indptr")
    a.yi = <const int32_t *>_ptr(indices, cnp.NPY_INT32, ny, "indices")
    for k in range(nbr):
        if not (0 <= a.f[k] < nb and 0 <= a.t[k] < nb):
            raise ValueError("ac_arrays: branch bus out of range")
    if a.yp[0] != 0 or a.yp[nb] > ny:
        raise ValueError("ac_arrays: inconsistent Ybus arrays")
    for i in range(nb):
        if a.yp[i + 1] < a.yp[i]:
            raise ValueError("ac_arrays: inconsistent Ybus arrays")
    for q in range(a.yp[nb]):
        if not 0 <= a.yi[q] < nb:
            raise ValueError("ac_arrays: Ybus column out of range")
    return 0


cdef int _ac_values(_Ac *a, yff_in, yft_in, ytf_in, ytt_in, ydata) except -1:
    """Check the admittances of the AC result kernels against the index arrays of ``a``."""
    a.yff = <const double complex *>_ptr(yff_in, cnp.NPY_COMPLEX128, a.nbr, "yff")
    a.yft = <const double complex *>_ptr(yft_in, cnp.NPY_COMPLEX128, a.nbr, "yft")
    a.ytf = <const double complex *>_ptr(ytf_in, cnp.NPY_COMPLEX128, a.nbr, "ytf")
    a.ytt = <const double complex *>_ptr(ytt_in, cnp.NPY_COMPLEX128, a.nbr, "ytt")
    a.y = <const double complex *>_ptr(ydata, cnp.NPY_COMPLEX128, a.ny, "ydata")
    return 0


cdef int _ac_args(_Ac *a, Py_ssize_t nb, f_in, t_in, yff_in, yft_in, ytf_in, ytt_in, indptr, indices,
                  ydata) except -1:
    """Check the model arrays of the AC result kernels (branch ends and admittances, Ybus) and
    take their pointers."""
    _ac_index(a, nb, f_in, t_in, indptr, indices)
    return _ac_values(a, yff_in, yft_in, ytf_in, ytt_in, ydata)


cdef class AcIndex:
    """The index arrays of one model's AC results, checked once (:func:`ac_arrays` then checks
    only the sizes of what it is given per solve): ``nb`` buses, the branch ends ``f``, ``t`` and
    the Ybus pattern ``indptr``, ``indices`` (int32, C-contiguous).  The arrays are held; they
    must not be written while this object lives (a model's never are)."""
    cdef _Ac a
    cdef readonly Py_ssize_t nb, nbr
    cdef object _keep

    def __init__(self, Py_ssize_t nb, f, t, indptr, indices):
        _ac_index(&self.a, nb, f, t, indptr, indices)
        self.nb, self.nbr = nb, self.a.nbr
        self._keep = (f, t, indptr, indices)
