"""The reference implementation of solver_cy/topology.py's build_topology (numpy, element kind by
kind).  Used only by the tests that hold the topology kernel to it."""
from __future__ import annotations

import numpy as np

from gridtape.errors import TopologyError
from gridtape.solver_cy.topology import NONE, PQ, PV, REF, Branches, Topology
from gridtape.solver_cy.ybus import reachable


def _reachable(nb, f, t, start):
    return reachable(nb, np.ascontiguousarray(f, np.int64), np.ascontiguousarray(t, np.int64),
                     np.ascontiguousarray(start, np.int64))


def build_topology_py(world) -> Topology:
    """The topology of ``world`` (equal to gridtape.solver_cy.topology.build_topology)."""
    bus = world["bus"]
    nwb = len(bus)
    if nwb == 0:
        raise TopologyError("the network has no bus", table="bus")
    bus_pos = bus.positions
    bus_is = bus.cols["in_service"].copy()

    def rows_of(kind, col):
        return bus.rows(world[kind].cols[col])

    # --- fuse closed bus-bus switches without impedance -----------------------------------
    lookup = np.arange(nwb, dtype=np.int64)
    sw = world["switch"]
    sw_closed = sw.cols["closed"]
    sw_et = sw.cols["et"]
    is_bb = np.array([e == "b" for e in sw_et], dtype=bool) if len(sw) else np.zeros(0, bool)
    both_in = np.zeros(len(sw), bool)  # a switch joins two buses only when both are in service
    for i in np.flatnonzero(is_bb & sw_closed):
        both_in[i] = bus_is[bus_pos[int(sw.cols["bus"][i])]] and bus_is[bus_pos[int(sw.cols["element"][i])]]
    fuse = is_bb & sw_closed & both_in & (sw.cols["z_ohm"] <= 0)
    imp_sw = is_bb & sw_closed & both_in & (sw.cols["z_ohm"] > 0)
    if fuse.any():
        sb = rows_of("switch", "bus")
        eb = np.fromiter((bus_pos[int(e)] for e in sw.cols["element"][fuse].tolist()), np.int64)
        lookup = _fuse(lookup, sb[fuse], eb)

    base_kv = list(bus.cols["vn_kv"])
    btype = np.full(nwb, PQ, dtype=np.int8)
    btype[~bus_is] = NONE
    merged = lookup != np.arange(nwb)
    btype[merged] = NONE

    def new_bus(kv, typ=PQ):
        base_kv.append(kv)
        return len(base_kv) - 1

    # --- branches in pandapower's order ---------------------------------------------------
    f_l, t_l, st_l, slices, rows = [], [], [], {}, {}

    def add(kind, f, t, status, r):
        start = sum(len(a) for a in f_l)
        f_l.append(np.asarray(f, np.int64))
        t_l.append(np.asarray(t, np.int64))
        st_l.append(np.asarray(status, bool))
        slices[kind] = (start, start + len(f))
        rows[kind] = np.asarray(r, np.int64)

    line = world["line"]
    if len(line):
        add("line", lookup[rows_of("line", "from_bus")], lookup[rows_of("line", "to_bus")],
            line.cols["in_service"], np.arange(len(line)))
    trafo = world["trafo"]
    if len(trafo):
        add("trafo", lookup[rows_of("trafo", "hv_bus")], lookup[rows_of("trafo", "lv_bus")],
            trafo.cols["in_service"], np.arange(len(trafo)))
    aux = {}
    t3 = world["trafo3w"]
    xw = world["xward"]
    # aux buses: xward first, then trafo3w (pandapower's order)
    if len(xw):
        xb = lookup[rows_of("xward", "bus")]
        aux["xward"] = np.array([new_bus(base_kv[b]) for b in xb], dtype=np.int64)
    if len(t3):
        hv = lookup[rows_of("trafo3w", "hv_bus")]
        aux["trafo3w"] = np.array([new_bus(base_kv[b]) for b in hv], dtype=np.int64)
        a = aux["trafo3w"]
        mv = lookup[rows_of("trafo3w", "mv_bus")]
        lv = lookup[rows_of("trafo3w", "lv_bus")]
        ins = t3.cols["in_service"]
        r = np.arange(len(t3))
        add("trafo3w", np.concatenate([hv, a, a]), np.concatenate([a, mv, lv]), np.tile(ins, 3),
            np.tile(r, 3))
    imp = world["impedance"]
    if len(imp):
        add("impedance", lookup[rows_of("impedance", "from_bus")], lookup[rows_of("impedance", "to_bus")],
            imp.cols["in_service"], np.arange(len(imp)))
    if len(xw):
        add("xward", lookup[rows_of("xward", "bus")], aux["xward"], xw.cols["in_service"], np.arange(len(xw)))
    if imp_sw.any():
        sb = lookup[rows_of("switch", "bus")[imp_sw]]
        eb = lookup[np.fromiter((bus_pos[int(e)] for e in sw.cols["element"][imp_sw].tolist()), np.int64)]
        add("switch", sb, eb, np.ones(len(sb), bool), np.flatnonzero(imp_sw))
    f = np.concatenate(f_l) if f_l else np.zeros(0, np.int64)
    t = np.concatenate(t_l) if t_l else np.zeros(0, np.int64)
    status = np.concatenate(st_l) if st_l else np.zeros(0, bool)
    nbw = len(base_kv)
    btype = np.concatenate([btype, np.full(nbw - nwb, PQ, np.int8)])
    if "xward" in aux:
        btype[aux["xward"][~xw.cols["in_service"]]] = NONE
    if "trafo3w" in aux:
        btype[aux["trafo3w"][~t3.cols["in_service"]]] = NONE

    # --- open switches at branch ends: the branch end moves to a new auxiliary bus --------
    if len(sw):
        open_br = ~sw_closed & ~is_bb
        for i in np.flatnonzero(open_br):
            et, el, b = sw_et[i], int(sw.cols["element"][i]), bus_pos[int(sw.cols["bus"][i])]
            k = _branch_index_at(world, slices, et, el, b)
            if k is None:
                continue
            pos, end = k
            nb_ = new_bus(base_kv[lookup[b]])
            btype = np.append(btype, np.int8(PQ))
            if end == 0:
                f[pos] = nb_
            else:
                t[pos] = nb_

    # --- lines at out-of-service buses: the in-service line keeps an auxiliary end --------
    if "line" in slices and (btype[:nwb] == NONE).any():
        s0, s1 = slices["line"]
        oos_world = ~bus_is
        fr, to = rows_of("line", "from_bus"), rows_of("line", "to_bus")
        for j in np.flatnonzero(line.cols["in_service"]):
            a, b = oos_world[fr[j]], oos_world[to[j]]
            if a and b:
                continue
            if a or b:
                nb_ = new_bus(base_kv[lookup[fr[j] if a else to[j]]])
                btype = np.append(btype, np.int8(PQ))
                if a:
                    f[s0 + j] = nb_
                else:
                    t[s0 + j] = nb_

    nb = len(base_kv)
    base_kv = np.asarray(base_kv, dtype=float)

    # --- slack buses and connectivity ------------------------------------------------------
    eg = world["ext_grid"]
    gen = world["gen"]
    eg_bus = lookup[rows_of("ext_grid", "bus")] if len(eg) else np.zeros(0, np.int64)
    gen_bus = lookup[rows_of("gen", "bus")] if len(gen) else np.zeros(0, np.int64)
    eg_on = eg.cols["in_service"] & (btype[eg_bus] != NONE) if len(eg) else np.zeros(0, bool)
    gen_on = gen.cols["in_service"] & (btype[gen_bus] != NONE) if len(gen) else np.zeros(0, bool)
    slack_bus = np.concatenate([eg_bus[eg_on], gen_bus[gen_on & gen.cols["slack"]]]) if len(gen) else eg_bus[eg_on]
    btype[slack_bus] = REF
    br_on = status & (btype[f] != NONE) & (btype[t] != NONE)
    supplied = _reachable(nb, f[br_on], t[br_on], np.unique(slack_bus))
    btype[(btype != NONE) & ~supplied] = NONE
    br_on &= (btype[f] != NONE) & (btype[t] != NONE)

    # --- element activity (in service and at a supplied bus) ------------------------------
    active, elem_rows = {}, {}
    for kind in ("load", "sgen", "storage", "shunt", "ward", "xward", "gen", "ext_grid"):
        tab = world[kind]
        if len(tab):
            elem_rows[kind] = rows_of(kind, "bus")
            active[kind] = tab.cols["in_service"] & (btype[lookup[elem_rows[kind]]] != NONE)
        else:
            elem_rows[kind] = np.zeros(0, np.int64)
            active[kind] = np.zeros(0, bool)
    if len(xw):
        active["xward"] &= btype[aux["xward"]] != NONE
    gen_act = active["gen"]
    pv_bus = gen_bus[gen_act]
    btype[pv_bus[btype[pv_bus] != REF]] = PV
    if len(xw):
        xa = aux["xward"][active["xward"]]
        btype[xa] = PV
    if not (btype == REF).any():
        raise TopologyError("no slack: the network needs an in-service ext_grid or a gen with slack=True",
                            table="ext_grid")
    branches = Branches(f.astype(np.int32), t.astype(np.int32), br_on, slices, rows)
    topo = Topology(nb, nwb, lookup, base_kv, btype, branches, aux, active)
    topo.elem_bus_row.update(elem_rows)
    topo.ref = np.flatnonzero(btype == REF).astype(np.int32)
    topo.pv = np.flatnonzero(btype == PV).astype(np.int32)
    topo.pq = np.flatnonzero(btype == PQ).astype(np.int32)
    return topo


def _fuse(lookup, a, b):
    parent = {}

    def find(x):
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    for x, y in zip(a.tolist(), b.tolist()):
        rx, ry = find(x), find(y)
        if rx != ry:
            parent[max(rx, ry)] = min(rx, ry)
    out = lookup.copy()
    for x in parent:
        out[x] = find(x)
    return out



def _branch_index_at(world, slices, et, el, bus_row):
    """(branch position, end) of the branch end of element ``el`` at world bus row ``bus_row``."""
    bus_id = int(world["bus"].ids[bus_row])
    if et == "l":
        tab, kind = world["line"], "line"
        if kind not in slices or el not in tab.positions:
            return None
        r = tab.positions[el]
        end = 1 if int(tab.cols["to_bus"][r]) == bus_id else 0
        return slices[kind][0] + r, end
    if et == "t":
        tab, kind = world["trafo"], "trafo"
        if kind not in slices or el not in tab.positions:
            return None
        r = tab.positions[el]
        end = 0 if int(tab.cols["hv_bus"][r]) == bus_id else 1
        return slices[kind][0] + r, end
    if et == "t3":
        tab, kind = world["trafo3w"], "trafo3w"
        if kind not in slices or el not in tab.positions:
            return None
        r, n = tab.positions[el], len(tab)
        s0 = slices[kind][0]
        if int(tab.cols["hv_bus"][r]) == bus_id:
            return s0 + r, 0
        if int(tab.cols["mv_bus"][r]) == bus_id:
            return s0 + n + r, 1
        return s0 + 2 * n + r, 1
    return None

