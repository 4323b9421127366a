# The result kernels over a chunk of solves of one model (a study's steps) and the one line /
# trafo loading formula; a textual include of resk.pyx (it uses _Ac, _ac_args, _ac_one, GenSplit,
# _gen_one and ptr.pxi from there).  The arguments are checked once per chunk, the loops over the
# steps run without the GIL.


def ac_steps(Vs_in, rows_in, f_in, t_in, yff_in, yft_in, ytf_in, ytt_in, indptr, indices, ydata, double sn,
             out, sbus_buses=None, polar=None):
    """:func:`ac_arrays` of many solves of one model at once (a study's chunk of steps): the
    voltages ``Vs_in`` (steps x buses) of the steps ``rows_in`` (int64) into the rows of ``out``
    = (vm, va, sf, st, sbus), each (len(rows) x buses or branches), C-contiguous.
    ``sbus_buses`` (int64, optional): the only buses whose column of sbus is written (a study
    needs the injections at generator buses alone).  ``polar`` (optional): ``(VM, VA)``, the
    magnitudes and angles (rad) the solver holds for ``Vs`` (its shape, float64), taken instead
    of computing |V| and arg V (NaN rows for NaN voltages).  The arguments are checked once, the
    loop over the steps runs without the GIL."""
    cdef _Ac a
    cdef Py_ssize_t nb = _size(indptr) - 1, k = _size(rows_in), n, j
    _ac_args(&a, nb, f_in, t_in, yff_in, yft_in, ytf_in, ytt_in, indptr, indices, ydata)
    cdef Py_ssize_t nbr = a.nbr
    if k < 0 or _size(Vs_in) < 0:
        raise ValueError("ac_steps: inconsistent arrays")
    n = _size(Vs_in) // nb if nb else 0
    cdef const double complex *V = <const double complex *>_ptr(Vs_in, cnp.NPY_COMPLEX128, n * nb, "Vs")
    cdef const int64_t *rows = <const int64_t *>_ptr(rows_in, cnp.NPY_INT64, k, "rows")
    for j in range(k):
        if not 0 <= rows[j] < n:
            raise ValueError("ac_steps: step out of range")
    cdef double *vm = <double *>_ptr(out[0], cnp.NPY_DOUBLE, k * nb, "out vm")
    cdef double *va = <double *>_ptr(out[1], cnp.NPY_DOUBLE, k * nb, "out va")
    cdef double complex *sf = <double complex *>_ptr(out[2], cnp.NPY_COMPLEX128, k * nbr, "out sf")
    cdef double complex *st = <double complex *>_ptr(out[3], cnp.NPY_COMPLEX128, k * nbr, "out st")
    cdef double complex *sb = <double complex *>_ptr(out[4], cnp.NPY_COMPLEX128, k * nb, "out sbus")
    cdef const int64_t *sbr = NULL
    cdef Py_ssize_t nsb = -1
    if sbus_buses is not None:
        nsb = _size(sbus_buses)
        sbr = <const int64_t *>_ptr(sbus_buses, cnp.NPY_INT64, nsb, "sbus_buses")
        for j in range(nsb):
            if not 0 <= sbr[j] < nb:
                raise ValueError("ac_steps: sbus bus out of range")
    cdef const double *pm = NULL
    cdef const double *pa = NULL
    if polar is not None:
        pm = <const double *>_ptr(polar[0], cnp.NPY_DOUBLE, n * nb, "polar vm")
        pa = <const double *>_ptr(polar[1], cnp.NPY_DOUBLE, n * nb, "polar va")
    with nogil:
        for j in range(k):
            _ac_one(nb, nbr, V + rows[j] * nb, a.f, a.t, a.yff, a.yft, a.ytf, a.ytt, a.yp, a.yi, a.y, sn,
                    vm + j * nb, va + j * nb, sf + j * nbr, st + j * nbr, sb + j * nb, sbr, nsb,
                    NULL if pm == NULL else pm + rows[j] * nb, NULL if pa == NULL else pa + rows[j] * nb)
    return out


def gen_steps(GenSplit s not None, sbus_in, pd_in, qd_in, p_in, out):
    """:func:`gen_pq` (AC, no generator held at a limit) of ``k`` solves of one model at once: the
    rows of ``sbus_in`` (k x buses), ``pd_in``, ``qd_in`` (k x buses), ``p_in`` (k x generators)
    into ``out`` = (pg, qg), each k x generators, C-contiguous."""
    cdef Py_ssize_t ng = s.ng, nb = s.nb, k = _size(sbus_in) // nb if nb else 0, j
    cdef const double complex *sb = <const double complex *>_ptr(sbus_in, cnp.NPY_COMPLEX128, k * nb, "sbus")
    cdef const double *pd = <const double *>_ptr(pd_in, cnp.NPY_DOUBLE, k * nb, "pd")
    cdef const double *qd = <const double *>_ptr(qd_in, cnp.NPY_DOUBLE, k * nb, "qd")
    cdef const double *ps = <const double *>_ptr(p_in, cnp.NPY_DOUBLE, k * ng, "p_set")
    cdef double *p = <double *>_ptr(out[0], cnp.NPY_DOUBLE, k * ng, "out pg")
    cdef double *q = <double *>_ptr(out[1], cnp.NPY_DOUBLE, k * ng, "out qg")
    with nogil:
        for j in range(k):
            _gen_one(s, sb + j * nb, pd + j * nb, qd + j * nb, ps + j * ng, NULL, False, p + j * ng, q + j * ng)
    return out


def branch_loading(vm_in, sf_in, st_in, Py_ssize_t s0, f_in, t_in, cf_in, ct_in, bint by_v, out):
    """Loading (percent) of ``m`` branches (the model's branches ``s0`` .. ``s0 + m``) for ``k``
    solves: ``out`` (k x m) = ``max(|s_f| / |v_f| c_f, |s_t| / |v_t| c_t)`` from the magnitudes
    ``vm_in`` (k x buses) and the flows ``sf_in``, ``st_in`` (k x branches, MVA); without ``by_v``
    |S| is not divided by |V| (a power loading).  NaN when either end is (numpy's maximum).  The
    one loading formula (result_arrays.branch_loading: the result tables and the studies)."""
    cdef Py_ssize_t m = _size(f_in), k, nb, nbr, i, j
    if m < 0 or _size(out) < 0:
        raise ValueError("branch_loading: inconsistent arrays")
    k = _size(out) // m if m else 0
    if k * m != _size(out) or (k and (_size(vm_in) % k or _size(sf_in) % k)):
        raise ValueError("branch_loading: inconsistent arrays")
    nb = _size(vm_in) // k if k else 0
    nbr = _size(sf_in) // k if k else 0
    if s0 < 0 or s0 + m > nbr and k:
        raise ValueError("branch_loading: branch slice out of range")
    cdef const double *vm = <const double *>_ptr(vm_in, cnp.NPY_DOUBLE, k * nb, "vm")
    cdef const double complex *sf = <const double complex *>_ptr(sf_in, cnp.NPY_COMPLEX128, k * nbr, "sf")
    cdef const double complex *st = <const double complex *>_ptr(st_in, cnp.NPY_COMPLEX128, k * nbr, "st")
    cdef const int32_t *f = <const int32_t *>_ptr(f_in, cnp.NPY_INT32, m, "f")
    cdef const int32_t *t = <const int32_t *>_ptr(t_in, cnp.NPY_INT32, m, "t")
    cdef const double *cf = <const double *>_ptr(cf_in, cnp.NPY_DOUBLE, m, "c_f")
    cdef const double *ct = <const double *>_ptr(ct_in, cnp.NPY_DOUBLE, m, "c_t")
    cdef double *o = <double *>_ptr(out, cnp.NPY_DOUBLE, k * m, "out")
    for j in range(m):
        if not (0 <= f[j] < nb and 0 <= t[j] < nb):
            raise ValueError("branch_loading: branch bus out of range")
    cdef double a, b
    cdef const double complex *xf
    cdef const double complex *xt
    cdef const double *v
    with nogil:
        for i in range(k):
            xf = sf + i * nbr + s0
            xt = st + i * nbr + s0
            v = vm + i * nb
            for j in range(m):
                a = sqrt(xf[j].real * xf[j].real + xf[j].imag * xf[j].imag)
                b = sqrt(xt[j].real * xt[j].real + xt[j].imag * xt[j].imag)
                if by_v:
                    a = a / v[f[j]]
                    b = b / v[t[j]]
                a = a * cf[j]
                b = b * ct[j]
                o[i * m + j] = a if (isnan(a) or a >= b) else b
    return out


def take_steps(src, cols_in, good_in, dest):
    """``dest[good[i], j] = src[i, cols[j]]`` (0 where ``cols[j] < 0``) for the ``k`` rows of
    ``src`` (k x w, float64, or complex128 whose real part is taken) into ``dest`` (n x m
    float64), ``cols`` (m) and ``good`` (k) int64: a chunk's converged steps' result columns
    picked into the study's output rows, without the GIL."""
    cdef Py_ssize_t m = _size(cols_in), k = _size(good_in), n, w, i, j, st
    if m < 0 or k < 0 or not cnp.PyArray_Check(src) or not cnp.PyArray_Check(dest) \
            or cnp.PyArray_NDIM(<cnp.ndarray>src) != 2 or cnp.PyArray_NDIM(<cnp.ndarray>dest) != 2 \
            or cnp.PyArray_DIM(<cnp.ndarray>dest, 1) != m or cnp.PyArray_DIM(<cnp.ndarray>src, 0) != k:
        raise ValueError("take_steps: inconsistent arrays")
    n = cnp.PyArray_DIM(<cnp.ndarray>dest, 0)
    w = cnp.PyArray_DIM(<cnp.ndarray>src, 1)
    st = 2 if cnp.PyArray_TYPE(<cnp.ndarray>src) == cnp.NPY_COMPLEX128 else 1
    cdef const double *s = <const double *>_ptr(src, cnp.NPY_COMPLEX128 if st == 2 else cnp.NPY_DOUBLE, k * w, "src")
    cdef const int64_t *c = <const int64_t *>_ptr(cols_in, cnp.NPY_INT64, m, "cols")
    cdef const int64_t *g = <const int64_t *>_ptr(good_in, cnp.NPY_INT64, k, "good")
    cdef double *o = <double *>_ptr(dest, cnp.NPY_DOUBLE, n * m, "dest")
    for j in range(m):
        if c[j] >= w:
            raise ValueError("take_steps: column out of range")
    for i in range(k):
        if not 0 <= g[i] < n:
            raise ValueError("take_steps: row out of range")
    cdef const double *row
    cdef double *to
    with nogil:
        for i in range(k):
            row = s + i * w * st
            to = o + g[i] * m
            for j in range(m):
                to[j] = row[c[j] * st] if c[j] >= 0 else 0.0
    return dest
