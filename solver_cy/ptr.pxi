# Raw-pointer argument checks shared by the result kernels (textual include: the kernels are
# called once per solve or per grid2op step, where typed-memoryview acquisition costs more than
# the loops).  Needs ``cimport numpy as cnp`` and ``cnp.import_array()`` in the including module.

cdef double _EMPTY = 0.0


cdef const void *_ptr(object a, int typenum, Py_ssize_t n, str what) except NULL:
    """Data pointer of ``a``: a C-contiguous array of dtype ``typenum`` with ``n`` elements (n < 0:
    any size); ValueError otherwise."""
    if not cnp.PyArray_Check(a):
        raise ValueError(f"{what}: not an array")
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_IS_C_CONTIGUOUS(arr) \
            or (n >= 0 and cnp.PyArray_SIZE(arr) != n):
        raise ValueError(f"{what}: wrong dtype, layout or size")
    if cnp.PyArray_SIZE(arr) == 0:
        return <const void *>&_EMPTY
    return cnp.PyArray_DATA(arr)


cdef Py_ssize_t _size(object a):
    return cnp.PyArray_SIZE(<cnp.ndarray>a) if cnp.PyArray_Check(a) else -1


cdef object _new(Py_ssize_t n, int typenum):
    cdef cnp.npy_intp dim = n
    return cnp.PyArray_EMPTY(1, &dim, typenum, 0)


cdef object _out(object out, int i, Py_ssize_t n, int typenum):
    """``out[i]`` (checked: C-contiguous, dtype ``typenum``, ``n`` elements) or, with ``out`` None,
    a new array."""
    if out is None:
        return _new(n, typenum)
    a = out[i]
    _ptr(a, typenum, n, "out")
    return a
