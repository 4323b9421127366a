"""Topology kernel: the internal bus numbering, branch list, connectivity and bus types of the
bus-branch model in one pass over the world's raw columns (topology.build_topology calls it;
tests/reference/topology.py holds the reference it must equal), and the start voltages after a
topology change (warm_voltage.pxi).

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


cdef dict _assemble(Py_ssize_t nwb, const unsigned char *bus_is, const double *vn,
                    Py_ssize_t nl, const int64_t *lf, const int64_t *lt, const unsigned char *lon,
                    Py_ssize_t ntr, const int64_t *tf, const int64_t *tt, const unsigned char *ton,
                    Py_ssize_t n3, const int64_t *hv, const int64_t *mv, const int64_t *lv,
                    const unsigned char *t3on,
                    Py_ssize_t ni, const int64_t *imf, const int64_t *imt, const unsigned char *imon,
                    Py_ssize_t nx, const int64_t *xwb, const unsigned char *xwon,
                    Py_ssize_t ng, const int64_t *gb, const unsigned char *gon, const unsigned char *gslack,
                    Py_ssize_t neg, const int64_t *egb, const unsigned char *egon,
                    const int64_t[::1] fuse_a, const int64_t[::1] fuse_b,
                    const int64_t[::1] swi_a, const int64_t[::1] swi_b,
                    const int8_t[::1] so_kind, const int64_t[::1] so_el, const int64_t[::1] so_bus,
                    list elem_rows, list elem_on):
    cdef Py_ssize_t i, j, k, a, b, r, pos, nb, n_extra = 0
    cdef Py_ssize_t s_t3 = nl + ntr, s_imp = nl + ntr + 3 * n3
    cdef Py_ssize_t s_xw = s_imp + ni, s_sw = s_xw + nx, nsi = swi_a.shape[0], nso = so_kind.shape[0]
    cdef Py_ssize_t nbr = s_sw + nsi
    cdef bint any_oos = False
    # --- bus fusion: every bus maps to the smallest row of its fused set
    lookup_a = np.arange(nwb, dtype=np.int64)
    cdef int64_t *lookup = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>lookup_a)
    cdef Py_ssize_t[::1] par
    if fuse_a.shape[0]:
        par = np.arange(nwb, dtype=np.intp)
        for k in range(fuse_a.shape[0]):
            _union(&par[0], fuse_a[k], fuse_b[k])
        for i in range(nwb):
            lookup[i] = _root(&par[0], i)
    for i in range(nwb):
        if not bus_is[i]:
            any_oos = True
            break
    # --- auxiliary buses: xward, trafo3w star points, open switch ends, line ends at oos buses
    for k in range(nso):
        if 1 <= so_kind[k] <= 3:
            n_extra += 1
    if any_oos:
        for j in range(nl):
            if lon[j] and (not bus_is[lf[j]]) != (not bus_is[lt[j]]):
                n_extra += 1
    nb = nwb + nx + n3 + n_extra
    kv_a = np.empty(nb, dtype=np.float64)
    bt_a = np.empty(nb, dtype=np.int8)
    cdef double *kv = <double *>cnp.PyArray_DATA(<cnp.ndarray>kv_a)
    cdef int8_t *bt = <int8_t *>cnp.PyArray_DATA(<cnp.ndarray>bt_a)
    for i in range(nwb):
        kv[i] = vn[i]
        bt[i] = NONE if (not bus_is[i] or lookup[i] != i) else PQ
    axw_a = np.empty(nx, dtype=np.int64)
    at3_a = np.empty(n3, dtype=np.int64)
    cdef int64_t *axw = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>axw_a)
    cdef int64_t *at3 = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>at3_a)
    cdef Py_ssize_t nxt = nwb
    for k in range(nx):
        axw[k] = nxt
        kv[nxt] = vn[lookup[xwb[k]]]
        bt[nxt] = PQ if xwon[k] else NONE
        nxt += 1
    for k in range(n3):
        at3[k] = nxt
        kv[nxt] = vn[lookup[hv[k]]]
        bt[nxt] = PQ if t3on[k] else NONE
        nxt += 1
    # --- branches in pandapower's order: line, trafo, trafo3w (hv, mv, lv), impedance, xward, switch
    f_a = np.empty(nbr, dtype=np.int32)
    t_a = np.empty(nbr, dtype=np.int32)
    on_a = np.empty(nbr, dtype=bool)
    cdef int32_t *f = <int32_t *>cnp.PyArray_DATA(<cnp.ndarray>f_a)
    cdef int32_t *t = <int32_t *>cnp.PyArray_DATA(<cnp.ndarray>t_a)
    cdef unsigned char *on = <unsigned char *>cnp.PyArray_DATA(<cnp.ndarray>on_a)
    for k in range(nl):
        f[k] = lookup[lf[k]]
        t[k] = lookup[lt[k]]
        on[k] = lon[k]
    for k in range(ntr):
        f[nl + k] = lookup[tf[k]]
        t[nl + k] = lookup[tt[k]]
        on[nl + k] = ton[k]
    for k in range(n3):
        f[s_t3 + k] = lookup[hv[k]]
        t[s_t3 + k] = at3[k]
        f[s_t3 + n3 + k] = at3[k]
        t[s_t3 + n3 + k] = lookup[mv[k]]
        f[s_t3 + 2 * n3 + k] = at3[k]
        t[s_t3 + 2 * n3 + k] = lookup[lv[k]]
        on[s_t3 + k] = t3on[k]
        on[s_t3 + n3 + k] = t3on[k]
        on[s_t3 + 2 * n3 + k] = t3on[k]
    for k in range(ni):
        f[s_imp + k] = lookup[imf[k]]
        t[s_imp + k] = lookup[imt[k]]
        on[s_imp + k] = imon[k]
    for k in range(nx):
        f[s_xw + k] = lookup[xwb[k]]
        t[s_xw + k] = axw[k]
        on[s_xw + k] = xwon[k]
    for k in range(nsi):
        f[s_sw + k] = lookup[swi_a[k]]
        t[s_sw + k] = lookup[swi_b[k]]
        on[s_sw + k] = 1
    # --- open switches at branch ends: the end moves to a new auxiliary bus
    for k in range(nso):
        r = so_el[k]
        b = so_bus[k]
        if so_kind[k] == 1:
            pos, j = r, (1 if lt[r] == b else 0)
        elif so_kind[k] == 2:
            pos, j = nl + r, (0 if tf[r] == b else 1)
        elif so_kind[k] == 3:
            if hv[r] == b:
                pos, j = s_t3 + r, 0
            elif mv[r] == b:
                pos, j = s_t3 + n3 + r, 1
            else:
                pos, j = s_t3 + 2 * n3 + r, 1
        elif so_kind[k] == 4:  # neglect_open_switch_branches: only this winding is out
            on[s_t3 + (0 if hv[r] == b else n3 if mv[r] == b else 2 * n3) + r] = 0
            continue
        else:
            continue
        kv[nxt] = vn[lookup[b]]
        bt[nxt] = PQ
        if j == 0:
            f[pos] = nxt
        else:
            t[pos] = nxt
        nxt += 1
    # --- in-service lines with one end at an out-of-service bus keep an auxiliary end there
    if any_oos:
        for j in range(nl):
            if not lon[j]:
                continue
            a = not bus_is[lf[j]]
            b = not bus_is[lt[j]]
            if a == b:
                continue
            kv[nxt] = vn[lookup[lf[j] if a else lt[j]]]
            bt[nxt] = PQ
            if a:
                f[j] = nxt
            else:
                t[j] = nxt
            nxt += 1
    # --- slack buses, then the buses they reach through in-service branches
    for k in range(neg):
        b = lookup[egb[k]]
        if egon[k] and bt[b] != NONE:
            bt[b] = REF
    for k in range(ng):
        b = lookup[gb[k]]
        if gon[k] and gslack[k] and bt[b] != NONE:
            bt[b] = REF
    par = np.arange(nb, dtype=np.intp)
    cdef Py_ssize_t *p = &par[0] if nb else NULL
    for k in range(nbr):
        if on[k] and bt[f[k]] != NONE and bt[t[k]] != NONE:
            _union(p, f[k], t[k])
    mark_a = np.zeros(nb, dtype=np.uint8)
    cdef unsigned char *mark = <unsigned char *>cnp.PyArray_DATA(<cnp.ndarray>mark_a)
    for i in range(nb):
        if bt[i] == REF:
            mark[_root(p, i)] = 1
    for i in range(nb):
        if bt[i] != NONE and not mark[_root(p, i)]:
            bt[i] = NONE
    for k in range(nbr):
        if on[k] and (bt[f[k]] == NONE or bt[t[k]] == NONE):
            on[k] = 0
    # --- element activity (in service, at a supplied bus); generators make PV buses
    active = []
    cdef const int64_t *eb
    cdef const unsigned char *eis
    cdef unsigned char *act
    for kind in range(8):
        n = len(elem_rows[kind])
        eb = _p64(elem_rows[kind])
        eis = _pb(elem_on[kind])
        out = np.empty(n, dtype=bool)
        act = <unsigned char *>cnp.PyArray_DATA(<cnp.ndarray>out)
        for k in range(n):
            act[k] = eis[k] and bt[lookup[eb[k]]] != NONE
        active.append(out)
    cdef unsigned char *xact = <unsigned char *>cnp.PyArray_DATA(<cnp.ndarray>active[5])
    for k in range(nx):
        if xact[k] and bt[axw[k]] == NONE:
            xact[k] = 0
    cdef unsigned char *gact = <unsigned char *>cnp.PyArray_DATA(<cnp.ndarray>active[6])
    for k in range(ng):
        if gact[k]:
            b = lookup[gb[k]]
            if bt[b] != REF:
                bt[b] = PV
    for k in range(nx):
        if xact[k]:
            bt[axw[k]] = PV
    # --- bus classes
    cdef Py_ssize_t cnt[5]
    cnt[:] = [0, 0, 0, 0, 0]
    for i in range(nb):
        cnt[bt[i]] += 1
    ref_a = np.empty(cnt[REF], dtype=np.int32)
    pv_a = np.empty(cnt[PV], dtype=np.int32)
    pq_a = np.empty(cnt[PQ], dtype=np.int32)
    cdef int32_t *cref = <int32_t *>cnp.PyArray_DATA(<cnp.ndarray>ref_a)
    cdef int32_t *cpv = <int32_t *>cnp.PyArray_DATA(<cnp.ndarray>pv_a)
    cdef int32_t *cpq = <int32_t *>cnp.PyArray_DATA(<cnp.ndarray>pq_a)
    cnt[:] = [0, 0, 0, 0, 0]
    for i in range(nb):
        if bt[i] == REF:
            cref[cnt[REF]] = i
        elif bt[i] == PV:
            cpv[cnt[PV]] = i
        elif bt[i] == PQ:
            cpq[cnt[PQ]] = i
        cnt[bt[i]] += 1
    return {"lookup": lookup_a, "base_kv": kv_a, "bus_type": bt_a, "f": f_a, "t": t_a, "on": on_a,
            "aux_xward": axw_a, "aux_trafo3w": at3_a, "sizes": (nl, ntr, n3, ni, nx),
            "elem_rows": elem_rows, "active": active, "ref": ref_a, "pv": pv_a, "pq": pq_a}


include "warm_voltage.pxi"
