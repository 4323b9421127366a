"""Topology kernel: the internal bus numbering, branch list, connectivity and bus types of the
bus-branch model in one pass over the world's raw columns (topology.build_topology calls it;
tests/reference/topology.py holds the reference it must equal; the assembly from the checked
columns is in topo_assemble.pxi), and the start voltages after a topology change (warm_voltage.pxi).

Columns are read straight from the tables' column dicts (no per-column Python work); every
bus id is mapped to its bus row here.  Any surprise (a column of another dtype or length, a bus
id without a bus) raises :class:`Refused` with the column's name, and the caller names the bad
row (topology._name_refused); there is no other implementation to fall back to."""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int8_t, int32_t, int64_t
from libc.math cimport isfinite, isnan, atan2, cos, sin, sqrt, M_PI

cnp.import_array()

cdef enum:
    PQ = 1
    PV = 2
    REF = 3
    NONE = 4

#: element kinds whose activity is returned, in this order
ELEM_KINDS = ("load", "sgen", "storage", "shunt", "ward", "xward", "gen", "ext_grid")


class Refused(Exception):
    """The kernel cannot take this column (its name is the message)."""


cdef const void *_col(dict cols, str name, int typenum, Py_ssize_t n) except? NULL:
    a = cols.get(name)
    if a is None or not cnp.PyArray_Check(a):
        raise Refused(name)
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_IS_C_CONTIGUOUS(arr) \
            or cnp.PyArray_SIZE(arr) != n:
        raise Refused(name)
    return cnp.PyArray_DATA(arr)


cdef Py_ssize_t _len(dict cols) except -1:
    a = cols.get("in_service")
    if a is None or not cnp.PyArray_Check(a):
        raise Refused("in_service")
    return cnp.PyArray_SIZE(<cnp.ndarray>a)


cdef class _Rows:
    """Bus id -> bus row: identity (ids 0..n-1 in row order) or a dense table (-1: no bus)."""
    cdef const int64_t *map
    cdef Py_ssize_t nmap, nwb

    cdef object rows(self, dict cols, str name, Py_ssize_t n):
        """A new int64 array: the bus rows of column ``name``."""
        cdef const int64_t *src = <const int64_t *>_col(cols, name, cnp.NPY_INT64, n)
        out = np.empty(n, dtype=np.int64)
        cdef int64_t *dst = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>out)
        cdef Py_ssize_t k
        cdef int64_t v
        for k in range(n):
            v = src[k]
            if self.map != NULL:
                if v < 0 or v >= self.nmap:
                    raise Refused(name)
                v = self.map[v]
            if v < 0 or v >= self.nwb:
                raise Refused(name)
            dst[k] = v
        return out


cdef inline const int64_t *_p64(object a):
    return <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>a)


cdef inline const unsigned char *_pb(object a):
    return <const unsigned char *>cnp.PyArray_DATA(<cnp.ndarray>a)


cdef inline Py_ssize_t _root(Py_ssize_t *p, Py_ssize_t x) noexcept nogil:
    while p[x] != x:
        p[x] = p[p[x]]
        x = p[x]
    return x


cdef inline void _union(Py_ssize_t *p, Py_ssize_t x, Py_ssize_t y) noexcept nogil:
    """Merge the sets of x and y; the smaller root becomes the root."""
    x = _root(p, x)
    y = _root(p, y)
    if x < y:
        p[y] = x
    elif y < x:
        p[x] = y


#: what a network without switches passes (acquired once: a typed-memoryview argument costs a
#: buffer acquisition per call, more than this kernel's loops on a small grid)
cdef const int64_t[::1] _NO_ROWS = np.zeros(0, dtype=np.int64)
cdef const int8_t[::1] _NO_CODES = np.zeros(0, dtype=np.int8)


def build_core(dict tabs, row_map, fuse_a_=None, fuse_b_=None, swi_a_=None, swi_b_=None, so_kind_=None,
               so_el_=None, so_bus_=None):
    """The topology of the world whose tables' column dicts are ``tabs`` (kind -> cols).

    ``row_map``: None when the bus ids are their rows, else an int64 id -> row table (-1: no
    bus).  ``fuse_a/fuse_b``: bus rows fused by closed zero-impedance bus-bus switches;
    ``swi_a/swi_b``: bus rows joined by closed bus-bus switches with impedance; ``so_*``: open
    branch switches (kind 1 line, 2 trafo, 3 trafo3w: the end moves to an auxiliary bus; kind 4
    trafo3w with neglect_open_switch_branches: that winding is out of service; element row; bus
    row).

    Returns a dict: lookup, base_kv, bus_type, f, t, on, aux_xward, aux_trafo3w, sizes (line,
    trafo, trafo3w, impedance, xward rows), elem_rows and active (lists in ELEM_KINDS order),
    ref, pv, pq.  The switch arrays may all be left out (None): no switches."""
    cdef const int64_t[::1] fuse_a = _NO_ROWS, fuse_b = _NO_ROWS, swi_a = _NO_ROWS, swi_b = _NO_ROWS
    cdef const int64_t[::1] so_el = _NO_ROWS, so_bus = _NO_ROWS
    cdef const int8_t[::1] so_kind = _NO_CODES
    if not (fuse_a_ is None and fuse_b_ is None and swi_a_ is None and swi_b_ is None and so_kind_ is None
            and so_el_ is None and so_bus_ is None):
        fuse_a, fuse_b, swi_a, swi_b = fuse_a_, fuse_b_, swi_a_, swi_b_
        so_kind, so_el, so_bus = so_kind_, so_el_, so_bus_
    cdef dict bus = tabs["bus"]
    cdef Py_ssize_t nwb = _len(bus)
    cdef _Rows R = _Rows()
    R.nwb = nwb
    if row_map is not None:
        R.map = _p64(row_map)
        R.nmap = cnp.PyArray_SIZE(<cnp.ndarray>row_map)
    cdef const unsigned char *bus_is = <const unsigned char *>_col(bus, "in_service", cnp.NPY_BOOL, nwb)
    cdef const double *vn = <const double *>_col(bus, "vn_kv", cnp.NPY_DOUBLE, nwb)
    cdef dict c
    # --- the columns, bus ids mapped to rows
    c = tabs["line"]
    cdef Py_ssize_t nl = _len(c)
    lf_a, lt_a = R.rows(c, "from_bus", nl), R.rows(c, "to_bus", nl)
    cdef const int64_t *lf = _p64(lf_a)
    cdef const int64_t *lt = _p64(lt_a)
    cdef const unsigned char *lon = <const unsigned char *>_col(c, "in_service", cnp.NPY_BOOL, nl)
    c = tabs["trafo"]
    cdef Py_ssize_t ntr = _len(c)
    tf_a, tt_a = R.rows(c, "hv_bus", ntr), R.rows(c, "lv_bus", ntr)
    cdef const int64_t *tf = _p64(tf_a)
    cdef const int64_t *tt = _p64(tt_a)
    cdef const unsigned char *ton = <const unsigned char *>_col(c, "in_service", cnp.NPY_BOOL, ntr)
    c = tabs["trafo3w"]
    cdef Py_ssize_t n3 = _len(c)
    hv_a, mv_a, lv_a = R.rows(c, "hv_bus", n3), R.rows(c, "mv_bus", n3), R.rows(c, "lv_bus", n3)
    cdef const int64_t *hv = _p64(hv_a)
    cdef const int64_t *mv = _p64(mv_a)
    cdef const int64_t *lv = _p64(lv_a)
    cdef const unsigned char *t3on = <const unsigned char *>_col(c, "in_service", cnp.NPY_BOOL, n3)
    c = tabs["impedance"]
    cdef Py_ssize_t ni = _len(c)
    if_a, it_a = R.rows(c, "from_bus", ni), R.rows(c, "to_bus", ni)
    cdef const int64_t *imf = _p64(if_a)
    cdef const int64_t *imt = _p64(it_a)
    cdef const unsigned char *imon = <const unsigned char *>_col(c, "in_service", cnp.NPY_BOOL, ni)
    elem_rows, elem_on = [], []
    cdef Py_ssize_t n
    for kind in ELEM_KINDS:
        c = tabs[kind]
        n = _len(c)
        elem_rows.append(R.rows(c, "bus", n))
        _col(c, "in_service", cnp.NPY_BOOL, n)
        elem_on.append(c["in_service"])
    cdef Py_ssize_t nx = len(elem_rows[5]), ng = len(elem_rows[6]), neg = len(elem_rows[7])
    cdef const int64_t *xwb = _p64(elem_rows[5])
    cdef const unsigned char *xwon = _pb(elem_on[5])
    cdef const int64_t *gb = _p64(elem_rows[6])
    cdef const unsigned char *gon = _pb(elem_on[6])
    cdef const unsigned char *gslack = <const unsigned char *>_col(tabs["gen"], "slack", cnp.NPY_BOOL, ng)
    cdef const int64_t *egb = _p64(elem_rows[7])
    cdef const unsigned char *egon = _pb(elem_on[7])
    cdef Py_ssize_t nsi = swi_a.shape[0], nso = so_kind.shape[0], k
    if fuse_b.shape[0] != fuse_a.shape[0] or swi_b.shape[0] != nsi or so_el.shape[0] != nso \
            or so_bus.shape[0] != nso:
        raise ValueError("switch arrays differ in length")
    for k in range(fuse_a.shape[0]):
        if not (0 <= fuse_a[k] < nwb and 0 <= fuse_b[k] < nwb):
            raise Refused("switch")
    for k in range(nsi):
        if not (0 <= swi_a[k] < nwb and 0 <= swi_b[k] < nwb):
            raise Refused("switch")
    for k in range(nso):
        if not 0 <= so_bus[k] < nwb or so_el[k] < 0 or \
                so_el[k] >= (nl if so_kind[k] == 1 else ntr if so_kind[k] == 2 else n3):
            raise Refused("switch")
    return _assemble(nwb, bus_is, vn, nl, lf, lt, lon, ntr, tf, tt, ton, n3, hv, mv, lv, t3on,
                     ni, imf, imt, imon, nx, xwb, xwon, ng, gb, gon, gslack, neg, egb, egon,
                     fuse_a, fuse_b, swi_a, swi_b, so_kind, so_el, so_bus, elem_rows, elem_on)


include "topo_assemble.pxi"
include "warm_voltage.pxi"
