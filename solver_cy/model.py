"""The bus-branch model: world columns -> per-unit branches, bus shunts, injections and bus types,
with pandapower's element models (see docs/model-notes.md).

The model is built in three layers so that a write only redoes what it must:

- :func:`build_topology` (``topo``): internal bus numbering (fused bus-bus switches, auxiliary
  buses of trafo3w star points, xwards, open branch switches and branches at out-of-service
  buses), the branch list, connectivity (unsupplied islands), bus types;
- :func:`fill_admittances` (``adm``): per-branch 2x2 admittances and bus shunts;
- :func:`~.injections.fill_injections` (``inj``, in injections.py): specified complex power (constant, I and Z parts) and
  voltage set-points.

Internal buses keep the world's bus *row* order first, then auxiliary buses; buses that are
out of service, merged into another bus, or unsupplied have type NONE and take no part.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gridtape.errors import SchemaError, TopologyError

from .inject import bus_sums, shunt_ysh
from .modelopts import as_model_options
from .ybus import masked_admittances, same_end_kv
from .topo import Fallback, build_core  # the topology kernel (its reference: build_topology_py)

PQ, PV, REF, NONE = 1, 2, 3, 4
SWITCH_RX_RATIO = 2.0

#: pandapower 3 transformer columns read from the table (schema column or pass-through extra) with
#: their neutral values: the leakage split and the second tap changer
TRAFO_EXTRAS = {"leakage_resistance_ratio_hv": 0.5, "leakage_reactance_ratio_hv": 0.5, "tap2_pos": np.nan,
                "tap2_neutral": np.nan, "tap2_step_percent": np.nan, "tap2_step_degree": np.nan,
                "tap2_side": None, "tap2_changer_type": None}


def column(t, name, default=None):
    """Column ``name`` of table ``t`` as an array: the schema column, else the pass-through extra
    (None / NaN / pandas NA cells as ``default``), else ``default`` everywhere."""
    if name in t.cols:
        return t.cols[name]
    if default is None:
        default = TRAFO_EXTRAS.get(name)
    v = t.extra.get(name)
    n = len(t)
    if isinstance(default, float) or isinstance(default, bool):
        out = np.full(n, default, dtype=float if isinstance(default, float) else bool)
        if v is not None:
            for i, e in enumerate(v.tolist()):
                if _missing(e):
                    continue
                out[i] = e
        return out
    out = np.full(n, default, dtype=object)
    if v is not None:
        for i, e in enumerate(v.tolist()):
            if not _missing(e):
                out[i] = e
    return out


def char_table(world, name):
    """The characteristic table ``name`` (trafo_characteristic_table, shunt_characteristic_table,
    q_capability_curve_table) as ``{column: array}``, or None when the network has none."""
    t = world[name]
    return dict(t.cols) if len(t) else None


def _with_char_table(world, t, td, kind, vk_cols):
    """Put the tap-dependency table and flags of transformer table ``t`` into ``td`` and replace
    the short-circuit voltages of the rows with ``tap_dependency_table`` by the table's values at
    their tap position."""
    dep = column(t, "tap_dependency_table", False).astype(bool)
    if not dep.any():
        return
    table = char_table(world, "trafo_characteristic_table")
    if table is None:
        raise _unsupported("tap_dependency_table is set but the network has no trafo_characteristic_table",
                           table=kind, field="tap_dependency_table")
    ids = column(t, "id_characteristic_table", np.nan)
    if np.isnan(ids[dep]).any():
        raise SchemaError("tap_dependency_table is set without an id_characteristic_table", table=kind,
                          field="id_characteristic_table")
    pos = t.cols["tap_pos"]
    for c in vk_cols:
        v = table_values(table, ids, pos, dep, c, kind)
        td[c] = np.where(dep, v, td[c])
    td["tap_dependency_table"] = dep
    td["id_characteristic_table"] = ids
    td["_char_table"] = table
    td["_kind"] = kind


def shunt_step_values(world):
    """The shunts' ``p_mw`` / ``q_mvar`` per step: the columns, or for a shunt with
    ``step_dependency_table`` its shunt_characteristic_table row at its step divided by the step
    (pandapower's shunt step tables: the row is the total at that step)."""
    sh = world["shunt"]
    c = sh.cols
    dep = column(sh, "step_dependency_table", False).astype(bool)
    if not dep.any():
        return c["p_mw"], c["q_mvar"]
    table = char_table(world, "shunt_characteristic_table")
    if table is None:
        raise _unsupported("step_dependency_table is set but the network has no shunt_characteristic_table",
                           table="shunt", field="step_dependency_table")
    ids = column(sh, "id_characteristic_table", np.nan)
    step = c["step"].astype(float)
    if (step[dep] == 0).any():
        raise _unsupported("a shunt with a step table at step 0 (pandapower divides by the step)", table="shunt",
                           field="step")
    q = table_values(table, ids, step, dep, "q_mvar", "shunt")
    p = table_values(table, ids, step, dep, "p_mw", "shunt")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(dep, p / step, c["p_mw"]), np.where(dep, q / step, c["q_mvar"])


def _missing(e) -> bool:
    if e is None or type(e).__name__ == "NAType":
        return True
    return isinstance(e, float) and e != e


def line_temperature_factor(line):
    """``1 + alpha (temperature_degree_celsius - 20)`` per line (runpp's
    consider_line_temperature; alpha NaN reads 0, no alpha column 4e-3 as pandapower assumes);
    SchemaError without the temperature column."""
    if "temperature_degree_celsius" not in line.cols and "temperature_degree_celsius" not in line.extra:
        raise SchemaError("consider_line_temperature needs line temperatures", table="line",
                          field="temperature_degree_celsius")
    temp = column(line, "temperature_degree_celsius", np.nan)
    if "alpha" not in line.cols and "alpha" not in line.extra:
        alpha = 4e-3
    else:
        alpha = np.nan_to_num(column(line, "alpha", np.nan), nan=0.0)
    return 1 + alpha * (temp - 20)
Q_LIM_DEFAULT = 1e9


@dataclass
class Branches:
    """All branches of the model in pandapower's order: line, trafo, trafo3w (hv, mv, lv), impedance,
    xward, switch.  ``slices[kind]`` gives each kind's range."""

    f: np.ndarray
    t: np.ndarray
    status: np.ndarray
    slices: dict
    rows: dict  # kind -> world rows (positions in the element table) of its branches
    # per-unit parameters (filled by fill_admittances)
    yff: np.ndarray = None
    yft: np.ndarray = None
    ytf: np.ndarray = None
    ytt: np.ndarray = None
    x: np.ndarray = None
    ratio: np.ndarray = None
    shift_deg: np.ndarray = None
    r: np.ndarray = None


@dataclass
class Topology:
    nb: int  # internal buses
    n_world_bus: int
    lookup: np.ndarray  # world bus row -> internal bus (for merged buses: the representative)
    base_kv: np.ndarray
    bus_type: np.ndarray  # PQ/PV/REF/NONE per internal bus
    branches: Branches
    aux: dict  # "trafo3w" / "xward" -> internal aux bus per element row
    active: dict  # kind -> bool mask per element row: in service and at a supplied bus
    ref: np.ndarray = None
    pv: np.ndarray = None
    pq: np.ndarray = None
    gen_rows: dict = field(default_factory=dict)
    elem_bus_row: dict = field(default_factory=dict)  # kind -> world bus row of each element (cached)


# ------------------------------------------------------------------------------------------
# topology
# ------------------------------------------------------------------------------------------
def _in_service(world, kind):
    t = world[kind]
    return t.cols["in_service"].copy() if "in_service" in t.spec else np.ones(len(t), bool)


_ELEM_KINDS = ("load", "sgen", "storage", "shunt", "ward", "xward", "gen", "ext_grid")
_ET_CODE = {"b": 0, "l": 1, "t": 2, "t3": 3}
_EMPTY_ROWS = np.zeros(0, np.int64)
_EMPTY_CODES = np.zeros(0, np.int8)


def build_topology(world, opts=None) -> Topology:
    """The topology of ``world`` (kernel topo.build_core over the raw columns; equal to
    :func:`build_topology_py`, the reference implementation).  With ``opts``
    (modelopts.ModelOptions) ``neglect_open_switch_branches``, a line or transformer with an open
    switch is out of service instead of hanging at an auxiliary bus (pandapower's option)."""
    if opts is not None and as_model_options(opts).neglect_open_switch_branches:
        world = _open_switch_branches_out(world)
    try:
        topo = _build_topology_fast(world)
    except KeyError:  # a dangling switch reference: the reference path names it
        topo = None
    return build_topology_py(world) if topo is None else topo


def _open_switch_branches_out(world):
    """A shallow view of ``world`` whose lines / trafos / trafo3ws with an open switch are out of
    service (the tables are not copied; only the in_service columns that change are)."""
    import copy

    sw = world["switch"]
    if not len(sw):
        return world
    c = sw.cols
    view = copy.copy(world)
    view.tables = dict(world.tables)
    branch_sw = (~c["closed"]) & (c["et"] != "b")
    if not branch_sw.any():
        return world
    s2 = copy.copy(sw)  # the open branch switches read closed: no auxiliary bus at the branch end
    s2.cols = dict(c)
    s2.cols["closed"] = c["closed"] | branch_sw
    view.tables["switch"] = s2
    for et, kind in (("l", "line"), ("t", "trafo"), ("t3", "trafo3w")):
        m = (~c["closed"]) & (c["et"] == et)
        t = world[kind]
        if not m.any() or not len(t):
            continue
        pos = np.array([t.positions[e] for e in c["element"][m].tolist() if e in t.positions], dtype=np.int64)
        if not len(pos):
            continue
        t2 = copy.copy(t)
        t2.cols = dict(t.cols)
        on = t.cols["in_service"].copy()
        on[pos] = False
        t2.cols["in_service"] = on
        view.tables[kind] = t2
    return view


def _build_topology_fast(world):
    tabs = world.tables
    bus = tabs["bus"]
    row_map = _bus_row_map(bus) if len(bus) else False
    if row_map is False:
        return None
    sw = tabs["switch"]
    fuse_a = fuse_b = swi_a = swi_b = so_el = so_bus = _EMPTY_ROWS
    so_kind = _EMPTY_CODES
    imp_sw = None
    if len(sw):
        c = sw.cols
        code = np.array([_ET_CODE.get(e, -1) for e in c["et"]], dtype=np.int8)
        closed = c["closed"]
        is_bb = code == 0
        fuse = is_bb & closed & (c["z_ohm"] <= 0)
        imp_sw = is_bb & closed & (c["z_ohm"] > 0)
        sb = bus.rows(c["bus"])
        bus_pos = bus.positions
        if fuse.any():
            fuse_a = sb[fuse]
            fuse_b = np.fromiter((bus_pos[int(e)] for e in c["element"][fuse].tolist()), np.int64)
        if imp_sw.any():
            swi_a = sb[imp_sw]
            swi_b = np.fromiter((bus_pos[int(e)] for e in c["element"][imp_sw].tolist()), np.int64)
        so = np.flatnonzero(~closed & ~is_bb & (code > 0))
        if len(so):
            kinds = {1: tabs["line"], 2: tabs["trafo"], 3: tabs["trafo3w"]}
            el = np.array([kinds[int(k)].positions.get(int(e), -1)
                           for k, e in zip(code[so].tolist(), c["element"][so].tolist())], dtype=np.int64)
            keep = el >= 0
            so_kind, so_el, so_bus = code[so][keep], el[keep], sb[so][keep]
    try:
        cols = {k: t.cols for k, t in tabs.items()}
        out = (build_core(cols, row_map, fuse_a, fuse_b, swi_a, swi_b, so_kind, so_el, so_bus) if len(sw)
               else build_core(cols, row_map))
    except Fallback:
        return None
    btype = out["bus_type"]
    if not len(out["ref"]):
        raise TopologyError("no slack: the network needs an in-service ext_grid or a gen with slack=True",
                            table="ext_grid")
    slices, brows, start = {}, {}, 0
    nl, ntr, n3, ni, nx = out["sizes"]
    for kind, n in (("line", nl), ("trafo", ntr), ("trafo3w", 3 * n3), ("impedance", ni), ("xward", nx),
                    ("switch", len(swi_a))):
        if n:
            slices[kind] = (start, start + n)
            brows[kind] = (np.flatnonzero(imp_sw) if kind == "switch" else
                           np.tile(np.arange(n3), 3) if kind == "trafo3w" else np.arange(n))
            start += n
    aux = {}
    if nx:
        aux["xward"] = out["aux_xward"]
    if n3:
        aux["trafo3w"] = out["aux_trafo3w"]
    topo = Topology(len(btype), len(bus), out["lookup"], out["base_kv"], btype,
                    Branches(out["f"], out["t"], out["on"], slices, brows), aux,
                    dict(zip(_ELEM_KINDS, out["active"])))
    topo.elem_bus_row.update(zip(_ELEM_KINDS, out["elem_rows"]))
    topo.ref, topo.pv, topo.pq = out["ref"], out["pv"], out["pq"]
    return topo


def _key_columns():
    from gridtape.world.schema import KINDS, spec

    out = []
    for kind in KINDS:
        sp = spec(kind)
        cols = [c.name for c in sp.columns if c.affects == "topo" or (kind == "bus" and c.name == "vn_kv")]
        out.append((kind, tuple(cols), tuple(sp[c].dtype == "str" for c in cols)))
    return tuple(out)


_KEY_COLUMNS = None


def topology_key(world) -> bytes:
    """Everything :func:`build_topology` reads, as bytes: per kind its row count, the identity of
    its ids array and the columns that affect the topology (plus the buses' nominal voltages).
    Equal keys mean equal topologies as long as the ids arrays are the very ones they were (add
    and remove replace a table's ids array, writes never do): the engine checks that before it
    uses a cached model (engine._same_rows holds the arrays, so their ids are not reused)."""
    global _KEY_COLUMNS
    if _KEY_COLUMNS is None:
        _KEY_COLUMNS = _key_columns()
    tabs = world.tables
    parts = []
    for kind, cols, is_str in _KEY_COLUMNS:
        t = tabs[kind]
        n = len(t.ids)
        parts.append(n.to_bytes(8, "little"))
        if not n:
            continue
        parts.append(id(t.ids).to_bytes(8, "little"))
        c = t.cols
        for name, s in zip(cols, is_str):
            parts.append(repr(c[name].tolist()).encode() if s else c[name].tobytes())
    return b"".join(parts)


_ROW_MAPS: dict = {}


def _bus_row_map(bus):
    """None when the bus ids are 0..n-1 in row order (an id is its row), else a dense id -> row
    table (-1: no bus; kept per ids array), or False when the ids are too sparse for one."""
    if bus._dense():
        return None
    ids = bus.ids
    hit = _ROW_MAPS.get(id(ids))
    if hit is None or hit[0] is not ids:
        if len(_ROW_MAPS) > 16:
            _ROW_MAPS.clear()
        top = int(ids.max())
        if ids.min() < 0 or top > 8 * len(ids) + 1024:
            hit = (ids, False)
        else:
            m = np.full(top + 1, -1, np.int64)
            m[ids] = np.arange(len(ids))
            hit = (ids, m)
        _ROW_MAPS[id(ids)] = hit
    return hit[1]


def build_topology_py(world) -> Topology:
    """The reference implementation of :func:`build_topology` (numpy, element kind by kind)."""
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
    fuse = is_bb & sw_closed & (sw.cols["z_ohm"] <= 0)
    imp_sw = is_bb & sw_closed & (sw.cols["z_ohm"] > 0)
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


def _reachable(nb, f, t, start):
    """Buses connected to a bus of ``start`` (union-find kernel in ybus.pyx)."""
    from .ybus import reachable

    return reachable(nb, np.ascontiguousarray(f, np.int64), np.ascontiguousarray(t, np.int64),
                     np.ascontiguousarray(start, np.int64))


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


# ------------------------------------------------------------------------------------------
# admittances
# ------------------------------------------------------------------------------------------
def fill_admittances(world, topo: Topology, trafo_model="t", cache: dict | None = None) -> np.ndarray:
    """Fill the branch admittances of ``topo.branches``; return the bus shunt vector ysh (p.u.).

    ``cache`` (a dict kept by the caller between calls) holds the per-unit branch parameters of
    the last call and their key: admittance counter, network values, branch tables and the base
    voltages at the branch ends.  A topology change that only moves branch ends between buses of
    the same voltage, or switches branches, reuses them; only the status-dependent part is redone."""
    br = topo.branches
    sn = world.sn_mva
    trafo_model = as_model_options(trafo_model)
    key = _param_key(world, topo, trafo_model) if cache is not None else None
    if key is not None and cache.get("key") == key and same_end_kv(topo.base_kv, br.f, br.t, *cache["kv"]):
        x, ratio, shift, bad_if_on, y_on, r = cache["params"]
    else:
        r, x, g, b, g_asym, b_asym, r_asym, x_asym, ratio, shift = _branch_params(world, topo, trafo_model)
        with np.errstate(divide="ignore", invalid="ignore"):
            zf, zt = 1 / (r + 1j * x), 1 / (r + r_asym + 1j * (x + x_asym))
            bad_if_on = ~np.isfinite(r + x) | (r == 0) & (x == 0)
            # the 2x2 admittances of every branch as if it were in service
            bcf = g + 1j * b
            bct = g + g_asym + 1j * (b + b_asym)
            tap = ratio * np.exp(1j * np.pi / 180 * shift)
            y_on = ((zf + bcf / 2) / (tap * np.conj(tap)), -zf / np.conj(tap), -zt / tap, zt + bct / 2)
        if key is not None:
            cache["key"] = key
            cache["kv"] = (topo.base_kv[br.f], topo.base_kv[br.t])
            cache["params"] = (x, ratio, shift, bad_if_on, y_on, r)
    # a branch out of service contributes nothing (zeros), one in service must have an impedance
    k, y = masked_admittances(np.ascontiguousarray(br.status, bool), bad_if_on, y_on)
    if k >= 0:
        kind, row = _owner(br, k)
        raise SchemaError("branch has zero or undefined series impedance", table=kind,
                          row=int(world[kind].ids[row]) if kind != "switch" else int(world["switch"].ids[row]))
    br.yff, br.yft, br.ytf, br.ytt = y
    br.x, br.ratio, br.shift_deg, br.r = x, ratio, shift, r
    return _bus_shunts(world, topo, trafo_model) / sn


_BRANCH_KINDS = ("line", "trafo", "trafo3w", "impedance", "xward")


def _param_key(world, topo, trafo_model):
    """What the branch parameters depend on, or None when they are not cacheable (impedance
    switches: their z_ohm is a topology column)."""
    br = topo.branches
    if "switch" in br.slices:
        return None
    t = world.tables
    tabs = tuple([(t[k], t[k].ids) for k in _BRANCH_KINDS])
    return (world.adm_version, world.sn_mva, world.f_hz, trafo_model, tuple(br.slices.items()), _Same(tabs))


class _Same:
    """Compares equal to another _Same holding the very same objects (tables and id arrays)."""
    __slots__ = ("objs",)

    def __init__(self, objs):
        self.objs = objs

    def __eq__(self, other):
        return isinstance(other, _Same) and len(self.objs) == len(other.objs) and all(
            a is c and b is d for (a, b), (c, d) in zip(self.objs, other.objs))

    __hash__ = None


def _branch_params(world, topo, opts):
    """Per-unit r, x, g, b, g_asym, b_asym, r_asym, x_asym, ratio, shift of every branch,
    whatever its status (``opts``: modelopts.ModelOptions)."""
    trafo_model = opts.trafo_model
    br = topo.branches
    n = len(br.f)
    r = np.zeros(n)
    x = np.zeros(n)
    g = np.zeros(n)
    b = np.zeros(n)
    g_asym = np.zeros(n)
    b_asym = np.zeros(n)
    r_asym = np.zeros(n)
    x_asym = np.zeros(n)
    ratio = np.ones(n)
    shift = np.zeros(n)
    sn = world.sn_mva
    kv = topo.base_kv
    with np.errstate(divide="ignore", invalid="ignore"):
        if "line" in br.slices:
            s0, s1 = br.slices["line"]
            c = world["line"].cols
            base_r = kv[br.f[s0:s1]] ** 2 / sn
            par = c["parallel"].astype(float)
            ln = c["length_km"]
            r[s0:s1] = c["r_ohm_per_km"] * ln / base_r / par
            if opts.line_temperature:
                r[s0:s1] *= line_temperature_factor(world["line"])
            x[s0:s1] = c["x_ohm_per_km"] * ln / base_r / par
            b[s0:s1] = 2 * world.f_hz * math.pi * c["c_nf_per_km"] * 1e-9 * base_r * ln * par
            g[s0:s1] = c["g_us_per_km"] * 1e-6 * base_r * ln * par
        if "trafo" in br.slices:
            s0, s1 = br.slices["trafo"]
            t = world["trafo"]
            c = t.cols
            td = {k: c[k] for k in c}
            for k in TRAFO_EXTRAS:
                td[k] = column(t, k)
            _with_char_table(world, t, td, "trafo", ("vk_percent", "vkr_percent"))
            if not opts.voltage_angles:
                td["shift_degree"] = np.zeros(len(t))
            out = _trafo_branch_values(td, kv[br.f[s0:s1]], kv[br.t[s0:s1]], sn, trafo_model)
            r[s0:s1], x[s0:s1], g[s0:s1], b[s0:s1], g_asym[s0:s1], b_asym[s0:s1], ratio[s0:s1], shift[s0:s1] = out
        if "trafo3w" in br.slices:
            s0, s1 = br.slices["trafo3w"]
            td = _trafo3w_as_trafos(world["trafo3w"], opts, world)
            out = _trafo_branch_values(td, kv[br.f[s0:s1]], kv[br.t[s0:s1]], sn, trafo_model)
            r[s0:s1], x[s0:s1], g[s0:s1], b[s0:s1], g_asym[s0:s1], b_asym[s0:s1], ratio[s0:s1], shift[s0:s1] = out
        if "impedance" in br.slices:
            s0, s1 = br.slices["impedance"]
            c = world["impedance"].cols
            si = c["sn_mva"]
            r[s0:s1] = c["rft_pu"] / si * sn
            x[s0:s1] = c["xft_pu"] / si * sn
            r_asym[s0:s1] = c["rtf_pu"] / si * sn - r[s0:s1]
            x_asym[s0:s1] = c["xtf_pu"] / si * sn - x[s0:s1]
            g[s0:s1] = 2 * c["gf_pu"] * si / sn
            b[s0:s1] = 2 * c["bf_pu"] * si / sn
            g_asym[s0:s1] = 2 * c["gt_pu"] * si / sn - g[s0:s1]
            b_asym[s0:s1] = 2 * c["bt_pu"] * si / sn - b[s0:s1]
        if "xward" in br.slices:
            s0, s1 = br.slices["xward"]
            c = world["xward"].cols
            base_r = kv[br.f[s0:s1]] ** 2 / sn
            r[s0:s1] = c["r_ohm"] / base_r
            x[s0:s1] = c["x_ohm"] / base_r
        if "switch" in br.slices:
            s0, s1 = br.slices["switch"]
            z = world["switch"].cols["z_ohm"][br.rows["switch"]]
            base_r = kv[br.f[s0:s1]] ** 2 / sn
            rx = opts.switch_rx_ratio
            rz = rx / math.sqrt(1 + rx ** 2)
            xz = 1 / math.sqrt(1 + rx ** 2)
            r[s0:s1] = z / base_r * rz
            x[s0:s1] = z / base_r * xz

    return r, x, g, b, g_asym, b_asym, r_asym, x_asym, ratio, shift


def _owner(br, k):
    for kind, (s0, s1) in br.slices.items():
        if s0 <= k < s1:
            return kind, int(br.rows[kind][k - s0])
    raise IndexError(k)


def _trafo_branch_values(td, kv_hv_bus, kv_lv_bus, sn_net, trafo_model):
    """pandapower's two-winding transformer model on a dict of columns ``td`` (trafo or the
    three equivalent trafos of trafo3w).  Returns r, x, g, b, g_asym, b_asym, ratio, shift."""
    vnh = td["vn_hv_kv"].astype(float).copy()
    vnl = td["vn_lv_kv"].astype(float).copy()
    shift = td["shift_degree"].astype(float).copy()
    _apply_taps(td, vnh, vnl, shift)
    ratio = (vnh / vnl) / (kv_hv_bus / kv_lv_bus)
    par = td["parallel"].astype(float)
    sn_t = td["sn_mva"]
    tap_lv = (vnl / kv_lv_bus) ** 2 * sn_net
    z_sc = td["vk_percent"] / 100.0 / sn_t * tap_lv
    r_sc = td["vkr_percent"] / 100.0 / sn_t * tap_lv
    x_sc = np.sign(z_sc) * np.sqrt(z_sc ** 2 - r_sc ** 2)
    r = r_sc / par
    x = x_sc / par
    # magnetising admittance
    base_z = kv_lv_bus ** 2 / sn_net
    vn_lv_rated = td["vn_lv_kv"]
    pfe_mw = td["pfe_kw"] * 1e-3
    ym = td["i0_percent"] / 100.0 * sn_t
    b_sq = ym ** 2 - pfe_mw ** 2
    b_sq = np.where(b_sq < 0, 0.0, b_sq)
    b_mva = -np.sqrt(b_sq)
    scale = base_z * par / (vnl / vn_lv_rated) ** 2 / vn_lv_rated ** 2
    g = pfe_mw * scale
    b = b_mva * scale
    g_asym = np.zeros_like(g)
    b_asym = np.zeros_like(b)
    if trafo_model == "t":
        n = len(r)
        rr = td.get("leakage_resistance_ratio_hv")
        xr = td.get("leakage_reactance_ratio_hv")
        r, x, g, b, g_asym, b_asym = _wye_delta(r, x, g, b, np.full(n, 0.5) if rr is None else rr,
                                                np.full(n, 0.5) if xr is None else xr)
    elif trafo_model != "pi":
        raise SchemaError(f"unknown trafo_model {trafo_model!r} (use 't' or 'pi')", field="trafo_model")
    return r, x, g, b, g_asym, b_asym, ratio, shift


def _apply_taps(td, vnh, vnl, shift):
    """Adjust rated voltages and shift to the tap positions (pandapower's tap changer types): the
    first tap changer, then the second (``tap2_*``, never from a table)."""
    _apply_tap(td, vnh, vnl, shift, "tap")
    if td.get("tap2_pos") is not None:
        _apply_tap(td, vnh, vnl, shift, "tap2")


def table_values(table, ids, steps, mask, col, kind="trafo"):
    """pandapower's look-up of characteristic-table column ``col`` for the rows ``mask`` of an
    element table with ``ids`` (``id_characteristic_table``) at ``steps`` (``tap_pos`` / ``step``):
    the table rows matching an (id, step) of the masked rows, and for each id the last of them in
    table order (pandapower keys its result by id alone, so elements that share an id at different
    steps all get that row).  Returns an array with NaN outside ``mask``; an element whose
    (id, step) has no row is refused (pandapower would use 1 for every value)."""
    out = np.full(len(ids), np.nan)
    m = np.flatnonzero(mask)
    if not len(m):
        return out
    tid, tstep, tval = table["id_characteristic"], table["step"], table[col]
    wanted = set(zip(ids[m].tolist(), steps[m].tolist()))
    last = {}
    for r, key in enumerate(zip(tid.tolist(), tstep.tolist())):
        if key in wanted:
            last[key[0]] = tval[r]
    have = {k for k in zip(tid.tolist(), tstep.tolist())}
    for i in m.tolist():
        key = (ids[i], steps[i])
        if key not in have:
            raise _unsupported(f"no row of the characteristic table for id {ids[i]!r} at step {steps[i]!r}",
                               table=f"{kind}_characteristic_table", field="step")
        out[i] = last[ids[i]]
    return out


def _unsupported(message, **where):
    from gridtape import errors

    cls = getattr(errors, "UnsupportedError", errors.SchemaError)
    return cls(message, **where)


def _apply_tap(td, vnh, vnl, shift, t):
    pos = td[f"{t}_pos"]
    types = td[f"{t}_changer_type"]
    sides = td[f"{t}_side"]
    table = td.get("_char_table") if t == "tap" else None
    dep = np.asarray(td.get("tap_dependency_table", np.zeros(len(pos), bool)), dtype=bool) if table is not None \
        else np.zeros(len(pos), bool)
    if dep.any():
        ids = td["id_characteristic_table"]
        star = td.get("_tap_at_star")
        for side, vn, direction in (("hv", vnh, 1.0), ("lv", vnl, -1.0)):
            m = dep & np.array([s == side for s in sides], dtype=bool)
            if not m.any():
                continue
            ratio = table_values(table, ids, pos, m, "voltage_ratio", td.get("_kind", "trafo"))
            ang = table_values(table, ids, pos, m, "angle_deg", td.get("_kind", "trafo"))
            if star is not None:
                ms = m & star
                ratio[ms] = 1 / ratio[ms]
                ang[ms] = -ang[ms]
            vn[m] = vn[m] * ratio[m]
            shift[m] += direction * ang[m]
    for side, vn, direction in (("hv", vnh, 1.0), ("lv", vnl, -1.0)):
        at_side = np.array([s == side for s in sides], dtype=bool) & ~dep
        if not at_side.any():
            continue
        ideal = at_side & np.array([t == "Ideal" for t in types], dtype=bool)
        cplx = at_side & np.array([t in ("Ratio", "Symmetrical") for t in types], dtype=bool)
        diff = pos - td[f"{t}_neutral"]
        step_pct = td[f"{t}_step_percent"]
        step_deg = td[f"{t}_step_degree"]
        if ideal.any():
            deg_set = np.nan_to_num(step_deg[ideal], nan=0) != 0
            pct_set = np.nan_to_num(step_pct[ideal], nan=0) != 0
            if (deg_set & pct_set).any():
                raise SchemaError("both tap_step_degree and tap_step_percent set for an ideal phase shifter",
                                  table="trafo", field="tap_step_degree")
            d = diff[ideal]
            with np.errstate(invalid="ignore"):
                add = np.where(deg_set, direction * d * step_deg[ideal],
                               direction * 2 * np.rad2deg(np.arcsin(d * step_pct[ideal] / 200.0)))
            shift[ideal] += add
        if cplx.any():
            steps = np.nan_to_num(step_pct[cplx] * diff[cplx] / 100.0, nan=0)
            ang = np.deg2rad(np.nan_to_num(step_deg[cplx], nan=0))
            u1 = vn[cplx]
            du = u1 * steps
            vn[cplx] = np.sqrt((u1 + du * np.cos(ang)) ** 2 + (du * np.sin(ang)) ** 2)
            shift[cplx] += np.rad2deg(np.arctan(direction * du * np.sin(ang) / (u1 + du * np.cos(ang))))


def _wye_delta(r, x, g, b, rr, xr):
    """T model (leakage split ``rr`` / ``xr`` on the hv side, the rest on the lv side, magnetising
    branch between them) to an equivalent pi."""
    r, x, g, b = r.copy(), x.copy(), g.copy(), b.copy()
    g_asym = np.zeros_like(g)
    b_asym = np.zeros_like(b)
    k = (g != 0) | (b != 0)
    if k.any():
        za = r[k] * rr[k] + 1j * x[k] * xr[k]
        zb = r[k] * (1 - rr[k]) + 1j * x[k] * (1 - xr[k])
        zc = 1 / (g[k] + 1j * b[k])
        zsum = za * zb + za * zc + zb * zc
        zab = zsum / zc
        zac = zsum / zb
        zbc = zsum / za
        r[k] = zab.real
        x[k] = zab.imag
        yf = 1 / zac
        yt = 1 / zbc
        g[k] = yf.real * 2
        b[k] = yf.imag * 2
        g_asym[k] = 2 * yt.real - g[k]
        b_asym[k] = 2 * yt.imag - b[k]
    return r, x, g, b, g_asym, b_asym


def trafo3w_loss_side(t3, opts) -> np.ndarray:
    """Which branch of each trafo3w carries its iron losses: the ``loss_side`` column where the
    table has it, else the runpp option ``trafo3w_losses`` (docs/model-notes.md)."""
    n = len(t3)
    if "loss_side" in t3.cols or "loss_side" in t3.extra:
        side = column(t3, "loss_side", opts.trafo3w_losses)
        return np.array([str(v).lower() for v in side.tolist()], dtype=object)
    return np.full(n, opts.trafo3w_losses, dtype=object)


def _trafo3w_as_trafos(t3, opts, world=None):
    """The three equivalent two-winding trafos (hv, mv, lv order, stacked) of each trafo3w."""
    c = dict(t3.cols)
    n = len(c["vn_hv_kv"])
    tab = {}
    if world is not None:
        _with_char_table(world, t3, c, "trafo3w", ("vk_hv_percent", "vkr_hv_percent", "vk_mv_percent",
                                                   "vkr_mv_percent", "vk_lv_percent", "vkr_lv_percent"))
        for k in ("tap_dependency_table", "id_characteristic_table"):
            if k in c:
                tab[k] = np.tile(c[k], 3)
        if "_char_table" in c:
            tab.update(_char_table=c["_char_table"], _kind="trafo3w", _tap_at_star=np.tile(c["tap_at_star_point"], 3))
    sn = np.stack([c["sn_hv_mva"], c["sn_mv_mva"], c["sn_lv_mva"]])
    vk = np.stack([c["vk_hv_percent"], c["vk_mv_percent"], c["vk_lv_percent"]])
    vkr = np.stack([c["vkr_hv_percent"], c["vkr_mv_percent"], c["vkr_lv_percent"]])

    def to_bus(z):  # short-circuit voltages of the pairs, referred to the hv rating
        return sn[0] * np.array([z[0] / np.minimum(sn[0], sn[1]), z[1] / np.minimum(sn[1], sn[2]),
                                 z[2] / np.minimum(sn[0], sn[2])])

    def delta_to_star(z):
        return 0.5 * sn / sn[0] * np.array([z[0] + z[2] - z[1], z[1] + z[0] - z[2], z[2] + z[1] - z[0]])

    vk_d, vkr_d = to_bus(vk), to_bus(vkr)
    vki_d = np.sqrt(vk_d ** 2 - vkr_d ** 2)
    vkr_s = delta_to_star(vkr_d)
    vki_s = delta_to_star(vki_d)
    vk_s = np.sign(vki_s) * np.sqrt(vki_s ** 2 + vkr_s ** 2)
    if (vk_s == 0).any():
        raise SchemaError("equivalent transformer with zero impedance", table="trafo3w", field="vk_hv_percent")
    zeros = np.zeros(n)
    nan = np.full(n, np.nan)
    loss = trafo3w_loss_side(t3, opts)
    on = [loss == s for s in ("hv", "mv", "lv")]
    shift_mv, shift_lv = (c["shift_mv_degree"], c["shift_lv_degree"]) if opts.voltage_angles else (zeros, zeros)
    td = {
        "vn_hv_kv": np.tile(c["vn_hv_kv"], 3),
        "vn_lv_kv": np.concatenate([c["vn_hv_kv"], c["vn_mv_kv"], c["vn_lv_kv"]]),
        "sn_mva": sn.reshape(-1),
        "vk_percent": vk_s.reshape(-1),
        "vkr_percent": vkr_s.reshape(-1),
        "pfe_kw": np.concatenate([np.where(m, c["pfe_kw"], 0) for m in on]),
        "i0_percent": np.concatenate([np.where(m, c["i0_percent"], 0) for m in on]),
        "shift_degree": np.concatenate([zeros, shift_mv, shift_lv]),
        "parallel": np.ones(3 * n),
    }
    side = c["tap_side"]
    star = c["tap_at_star_point"]
    taps = {k: [] for k in ("tap_pos", "tap_neutral", "tap_step_percent", "tap_step_degree")}
    tap_side, tap_type = [], []
    for s in ("hv", "mv", "lv"):
        m = np.array([v == s for v in side], dtype=bool)
        for k in taps:
            taps[k].append(np.where(m, c[k], nan))
        ts = np.array([None] * n, dtype=object)
        ts[m] = "hv" if s == "hv" else "lv"
        if (m & star).any():
            ms = m & star
            # as pandapower: an unset tap_step_degree (NaN) makes the star-point tap inert
            tt = c["tap_step_percent"][ms] * np.exp(1j * np.deg2rad(c["tap_step_degree"][ms]))
            d = c["tap_pos"][ms] - c["tap_neutral"][ms]
            tc = 100 * tt / (100 + tt * d)
            taps["tap_step_percent"][-1][ms] = np.abs(tc)
            taps["tap_step_degree"][-1][ms] = np.rad2deg(np.angle(tc)) - 180
            ts[ms] = "lv" if s == "hv" else "hv"
        tap_side.append(ts)
        tap_type.append(c["tap_changer_type"])
    td.update({k: np.concatenate(v) for k, v in taps.items()})
    td["tap_side"] = np.concatenate(tap_side)
    td["tap_changer_type"] = np.concatenate(tap_type)
    td.update(tab)
    return td


def _bus_rows(world, topo, kind):
    """Internal bus of each element of ``kind`` (bus columns are topology: cached per topology)."""
    return topo.lookup[topo.elem_bus_row[kind]]


def _bus_shunts(world, topo, opts=None) -> np.ndarray:
    """Bus shunt admittance in MW/MVAr at 1 p.u. (GS + j BS), from shunts, wards and xwards, and
    with ``trafo3w_losses="star"`` the trafo3w iron losses at their star points."""
    nb = topo.nb
    tabs = world.tables
    sh = tabs["shunt"]
    ysh = None
    if len(sh):  # (bus kV / shunt kV)^2 * step * (p - j q) per active shunt, in one kernel pass
        c = sh.cols
        p_step, q_step = shunt_step_values(world)
        ysh = shunt_ysh(topo.lookup, np.ascontiguousarray(topo.elem_bus_row["shunt"], np.int64), topo.base_kv,
                        c["vn_kv"], c["step"], topo.active["shunt"], p_step, q_step, nb)
    gs = bs = None
    for kind in ("ward", "xward"):
        tab = tabs[kind]
        if len(tab):
            b = _bus_rows(world, topo, kind)
            p, q = bus_sums(np.ascontiguousarray(b, dtype=np.int64), tab.cols["pz_mw"], tab.cols["qz_mvar"],
                            topo.active[kind].astype(np.float64), None, nb)
            gs, bs = (p, q) if gs is None else (gs + p, bs + q)
    if ysh is None:
        ysh = np.zeros(nb, dtype=complex)
    if gs is not None:
        ysh.real += gs
        ysh.imag -= bs
    t3 = tabs["trafo3w"]
    if opts is not None and opts.trafo3w_losses == "star" and len(t3) and "trafo3w" in topo.aux:
        # pandapower adds them for every trafo3w whatever its loss_side (docs/model-notes.md)
        c = t3.cols
        pfe = c["pfe_kw"] * 1e-3
        q = (c["sn_hv_mva"] * c["i0_percent"] / 100.0) ** 2 - pfe ** 2
        q = np.sqrt(np.where(q < 0, 0.0, q))
        a = topo.aux["trafo3w"]
        vr = (topo.base_kv[a] / c["vn_hv_kv"]) ** 2
        ok = a >= 0
        np.add.at(ysh, a[ok], (pfe * vr - 1j * q * vr)[ok])
    return ysh
