"""The float column write of the hot path (a handle or vectorized write of loads, productions,
set-points): check every value and copy the old ones out in one pass, then write.  All or
nothing: when a value is out of range (or NaN where NaN is not allowed) nothing is written and
the caller's generic path names the bad row."""
cimport numpy as cnp
from libc.stdint cimport int64_t
from libc.math cimport isnan

cnp.import_array()


cdef inline bint _is_f8_vector(object a):
    return (type(a) is cnp.ndarray and cnp.PyArray_TYPE(<cnp.ndarray>a) == cnp.NPY_DOUBLE
            and cnp.PyArray_NDIM(<cnp.ndarray>a) == 1 and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>a))


def write_floats(object arr, object rows, object values, double lo, double hi, bint nan_ok):
    """``arr[rows] = values`` for a float64 column ``arr`` (``rows`` None: every row; else an
    int64 array of row positions) and float64 ``values`` of the same length.  Returns the old
    values, or None when the fast path does not apply or a value is invalid (nothing written)."""
    if not (_is_f8_vector(arr) and _is_f8_vector(values)):
        return None
    cdef cnp.ndarray a = arr, v = values
    cdef Py_ssize_t m = cnp.PyArray_DIM(a, 0), n, k
    cdef const int64_t *r = NULL
    if rows is None:
        n = m
    else:
        if not (type(rows) is cnp.ndarray and cnp.PyArray_TYPE(<cnp.ndarray>rows) == cnp.NPY_INT64
                and cnp.PyArray_NDIM(<cnp.ndarray>rows) == 1
                and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>rows)):
            return None
        n = cnp.PyArray_DIM(<cnp.ndarray>rows, 0)
        r = <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>rows)
    if cnp.PyArray_DIM(v, 0) != n:
        return None
    cdef double *dst = <double *>cnp.PyArray_DATA(a)
    cdef const double *src = <const double *>cnp.PyArray_DATA(v)
    cdef double x
    for k in range(n):
        x = src[k]
        if isnan(x):
            if not nan_ok:
                return None
        elif x < lo or x > hi:
            return None
        if r != NULL and not 0 <= r[k] < m:
            return None
    cdef cnp.npy_intp dim = n
    old_a = cnp.PyArray_EMPTY(1, &dim, cnp.NPY_DOUBLE, 0)
    cdef double *old = <double *>cnp.PyArray_DATA(old_a)
    if r == NULL:
        for k in range(n):
            old[k] = dst[k]
            dst[k] = src[k]
    else:
        for k in range(n):  # old values first: a row written twice reports its original value
            old[k] = dst[r[k]]
        for k in range(n):
            dst[r[k]] = src[k]
    return old_a
