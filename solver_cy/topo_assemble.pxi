# The assembly of the topology from the validated columns: topo.pyx's _assemble (textual include;
# build_core checks the columns and calls it).
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


