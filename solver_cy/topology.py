"""The topology of the bus-branch model (see docs/model-notes.md): internal bus numbering (fused
bus-bus switches, auxiliary buses of trafo3w star points, xwards, open branch switches and
branches at out-of-service buses), the branch list in pandapower's order, connectivity
(unsupplied islands) and bus types, computed by one kernel (topo.build_core).

Internal buses keep the world's bus *row* order first, then auxiliary buses; buses that are
out of service, merged into another bus, or unsupplied have type NONE and take no part.

The columns are validated before the kernel reads them (the world already refuses dangling
references on checked writes); a column the kernel still refuses is named in the error.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gridtape.errors import BadReferenceError, SchemaError, TopologyError
from gridtape.world.schema import SWITCH_ET_KIND, spec

from .modelopts import as_model_options
from .topo import ELEM_KINDS, Refused, build_core

PQ, PV, REF, NONE = 1, 2, 3, 4
Q_LIM_DEFAULT = 1e9

#: the kernel's code of each switch element type (0: bus-bus; 1, 2, 3: line, trafo, trafo3w end)
_ET_CODE = {et: i for i, et in enumerate(SWITCH_ET_KIND)}
_BRANCH_OF_CODE = {i: kind for i, kind in enumerate(SWITCH_ET_KIND.values())}
_EMPTY_ROWS = np.zeros(0, np.int64)
_EMPTY_CODES = np.zeros(0, np.int8)


@dataclass
class Branches:
    """All branches of the model in pandapower's order: line, trafo, trafo3w (hv, mv, lv), impedance,
    xward, switch.  ``slices[kind]`` gives each kind's range."""

    f: np.ndarray
    t: np.ndarray
    status: np.ndarray
    slices: dict
    rows: dict  # kind -> world rows (positions in the element table) of its branches
    # per-unit parameters (filled by branches.fill_admittances)
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
    elem_bus_row: dict = field(default_factory=dict)  # kind -> world bus row of each element
    _ebus: dict = field(default_factory=dict)

    def elem_bus(self, kind) -> np.ndarray:
        """Internal bus (int64) of every element of ``kind`` (made once per topology)."""
        b = self._ebus.get(kind)
        if b is None:
            b = self._ebus[kind] = np.ascontiguousarray(self.lookup[self.elem_bus_row[kind]], dtype=np.int64)
        return b


def build_topology(world, opts=None) -> Topology:
    """The topology of ``world`` (tests/reference/topology.py holds the reference it equals).
    With ``opts`` (modelopts.ModelOptions) ``neglect_open_switch_branches``, a line or trafo with
    an open switch, or the trafo3w winding with one, is out of service instead of hanging at an
    auxiliary bus (pandapower's option).  A closed bus-bus switch joins its buses only when both
    are in service (pandapower's build_bus)."""
    neglect = opts is not None and as_model_options(opts).neglect_open_switch_branches
    if neglect:
        world = _open_switch_branches_out(world)
    tabs = world.tables
    bus = tabs["bus"]
    if not len(bus):
        raise TopologyError("the network has no bus", table="bus")
    cols, row_map = _kernel_columns(world)
    sw = tabs["switch"]
    fuse_a = fuse_b = swi_a = swi_b = so_el = so_bus = _EMPTY_ROWS
    so_kind = _EMPTY_CODES
    imp_sw = None
    if len(sw):
        c = sw.cols
        code = np.array([_ET_CODE.get(e, -1) for e in c["et"]], dtype=np.int8)
        closed = c["closed"]
        is_bb = code == 0
        sb = _ref_rows(world, "switch", "bus", c["bus"])
        joins = is_bb & closed
        if joins.any():  # pandapower joins two buses only when both are in service
            bus_is = bus.cols["in_service"]
            eb = np.zeros(len(sw), np.int64)
            eb[joins] = _ref_rows(world, "switch", "element", c["element"][joins], joins)
            joins &= bus_is[sb] & bus_is[eb]
        fuse = joins & (c["z_ohm"] <= 0)
        imp_sw = joins & (c["z_ohm"] > 0)
        if fuse.any():
            fuse_a, fuse_b = sb[fuse], eb[fuse]
        if imp_sw.any():
            swi_a, swi_b = sb[imp_sw], eb[imp_sw]
        so = np.flatnonzero(~closed & ~is_bb & (code > 0))
        if len(so):
            el = np.array([tabs[_BRANCH_OF_CODE[k]].positions.get(int(e), -1)
                           for k, e in zip(code[so].tolist(), c["element"][so].tolist())], dtype=np.int64)
            keep = el >= 0
            so_kind, so_el, so_bus = code[so][keep], el[keep], sb[so][keep]
            if neglect:  # an open trafo3w switch takes out only its winding (kernel code 4)
                so_kind = np.where(so_kind == 3, 4, so_kind).astype(np.int8)
    try:
        out = (build_core(cols, row_map, fuse_a, fuse_b, swi_a, swi_b, so_kind, so_el, so_bus) if len(sw)
               else build_core(cols, row_map))
    except Refused as e:
        _name_refused(world, str(e))
        raise SchemaError(f"the topology kernel refused column {e}", field=str(e)) from None
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
                    dict(zip(ELEM_KINDS, out["active"])))
    topo.elem_bus_row.update(zip(ELEM_KINDS, out["elem_rows"]))
    topo.ref, topo.pv, topo.pq = out["ref"], out["pv"], out["pq"]
    return topo


def _open_switch_branches_out(world):
    """A shallow view of ``world`` whose lines / trafos with an open switch are out of service
    (the tables are not copied; only the in_service columns that change are).  An open trafo3w
    switch takes out only its winding (pandapower sets that one branch's status to 0)."""
    import copy

    sw = world["switch"]
    if not len(sw):
        return world
    c = sw.cols
    view = copy.copy(world)
    view.tables = dict(world.tables)
    branch_sw = (~c["closed"]) & ((c["et"] == "l") | (c["et"] == "t"))  # trafo3w: build_topology
    if not branch_sw.any():
        return world
    s2 = copy.copy(sw)  # the open branch switches read closed: no auxiliary bus at the branch end
    s2.cols = {**c, "closed": c["closed"] | branch_sw}  # the view's own dict: the world is not written
    view.tables["switch"] = s2
    for et, kind in (("l", "line"), ("t", "trafo")):
        m = (~c["closed"]) & (c["et"] == et)
        t = world[kind]
        if not m.any() or not len(t):
            continue
        pos = np.array([t.positions[e] for e in c["element"][m].tolist() if e in t.positions], dtype=np.int64)
        if not len(pos):
            continue
        t2 = copy.copy(t)
        on = t.cols["in_service"].copy()
        on[pos] = False
        t2.cols = {**t.cols, "in_service": on}
        view.tables[kind] = t2
    return view


def _kernel_columns(world):
    """The column dicts the kernel reads and its bus id -> row map: None when the bus ids are
    their rows, a dense int64 table when they are not too sparse, else (sparse ids) the bus
    columns are handed over already mapped to rows."""
    tabs = world.tables
    cols = {k: t.cols for k, t in tabs.items()}
    bus = tabs["bus"]
    if bus._dense():
        return cols, None
    ids = bus.ids
    top = int(ids.max())
    if ids.min() >= 0 and top <= 8 * len(ids) + 1024:
        m = np.full(top + 1, -1, np.int64)
        m[ids] = np.arange(len(ids))
        return cols, m
    for kind, t in tabs.items():
        refs = [c.name for c in t.spec.refs if c.ref == "bus"]
        if refs and len(t) and kind != "switch":
            cols[kind] = dict(t.cols)
            cols[kind].update({name: _ref_rows(world, kind, name, t.cols[name]) for name in refs})
    return cols, None


def _ref_rows(world, kind, name, values, mask=None):
    """Bus rows of the bus ids ``values`` of column ``name`` of ``kind``; a missing bus is named."""
    bus = world["bus"]
    pos = bus.positions
    out = np.empty(len(values), np.int64)
    for i, v in enumerate(np.asarray(values).tolist()):
        r = pos.get(int(v))
        if r is None:
            rows = np.flatnonzero(mask) if mask is not None else np.arange(len(values))
            raise BadReferenceError(f"refers to missing bus {int(v)}", table=kind,
                                    row=int(world[kind].ids[rows[i]]), field=name)
        out[i] = r
    return out


def _name_refused(world, name):
    """Raise an error naming the row the topology kernel refused (column ``name``): a bus
    reference to no bus, or a column of the wrong dtype or length."""
    for kind, t in world.tables.items():
        sp = spec(kind)
        for c in sp.columns:
            if c.name != name or c.name not in t.cols:
                continue
            arr = t.cols[c.name]
            if arr.dtype != c.np_dtype or len(arr) != len(t.ids):
                raise SchemaError(f"column has dtype {arr.dtype} and {len(arr)} rows; expected {c.np_dtype} "
                                  f"and {len(t.ids)}", table=kind, field=c.name)
            if c.ref == "bus" and len(t):
                _ref_rows(world, kind, c.name, arr)
