# The argument checks of the recorder's fast path, included by recorder.pyx: the plain types a
# row holds as they are (str/None text, int64/None element id, None/float/int64/bool/str
# values, float64/int64/bool value arrays).  Anything else goes to journal/args.py.

cdef inline bint is_int64(object v):
    cdef int overflow = 0
    PyLong_AsLongLongAndOverflow(v, &overflow)
    return overflow == 0


cdef inline bint is_text(object v):
    return v is None or type(v) is str


cdef inline bint is_eid(object v):
    return v is None or (type(v) is int and is_int64(v))


cdef inline bint is_utf8(object s):
    """A text argument (None or str) the flush can encode (a lone surrogate cannot be)."""
    cdef Py_ssize_t size
    if s is None or PyUnicode_IS_ASCII(s):
        return True
    if PyUnicode_AsUTF8AndSize(s, &size) == NULL:
        PyErr_Clear()
        return False
    return True


cdef object typed_copy(object a, Py_ssize_t n):
    """record_many's old/new argument as typed columns (journal/columns.py typed_array) when it
    is None or a 1-D float64, int64 or bool array of n values (the values copied); else None."""
    cdef int t
    zf, zi, no, nones, codes = _consts(n)
    if a is None:
        return Typed((codes[NONE], zf, no, zi, no, nones))
    if type(a) is not np.ndarray or cnp.PyArray_NDIM(<cnp.ndarray>a) != 1 or cnp.PyArray_DIM(<cnp.ndarray>a, 0) != n:
        return None
    t = cnp.PyArray_TYPE(<cnp.ndarray>a)
    if t == cnp.NPY_FLOAT64:
        return Typed((codes[FLOAT], cnp.PyArray_Cast(<cnp.ndarray>a, cnp.NPY_FLOAT64), None, zi, no, nones))
    if t == cnp.NPY_INT64:
        return Typed((codes[INT], zf, no, cnp.PyArray_Cast(<cnp.ndarray>a, cnp.NPY_INT64), None, nones))
    if t == cnp.NPY_BOOL:
        return Typed((codes[BOOL], zf, no, cnp.PyArray_Cast(<cnp.ndarray>a, cnp.NPY_INT64), None, nones))
    return None


cdef inline bint is_value(object v):
    t = type(v)
    return v is None or t is float or t is str or t is bool or (t is int and is_int64(v))
