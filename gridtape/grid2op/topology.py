"""Where every element sits in grid2op's ``topo_vect``, and the backend's topo_vect, line status
and shunt buses read from the world's bus / in_service columns."""
from __future__ import annotations

import numpy as np
from grid2op.dtypes import dt_int

#: the tables a topo_vect action writes (codes 0-4 of the planner's ``ins``) and, per position
#: code, the (table, column) of its bus: one-bus elements, then branch ends
TOPO_TABLES = ("load", "gen", "storage", "line", "trafo")
TOPO_CODES = (("load", "bus"), ("gen", "bus"), ("storage", "bus"), ("line", "from_bus"), ("line", "to_bus"),
              ("trafo", "hv_bus"), ("trafo", "lv_bus"))
TOPO_COLUMNS = ((0,), (1,), (2,), (3, 4), (5, 6))  # per table: the position codes of its bus columns


class Layout:
    """The grid's fixed layout as the planner and :class:`TopoVect` read it: substations and busbar
    ids, the powerlines' split into lines and transformers, grid2op's topo_vect positions and
    substation ids of every element, and per topo_vect position the table code (TOPO_CODES), the
    row and the substation (Python lists, for loops over a few positions)."""

    def __init__(self, bk, n_sub, n_pp_line, bus_ids, row_of_bus):
        self.n_sub = n_sub
        self.n_pp_line = n_pp_line  # powerlines 0..n_pp_line-1 are lines, the rest transformers
        self.n_line, self.n_shunt, self.n_storage, self.dim_topo = bk.n_line, bk.n_shunt, bk.n_storage, bk.dim_topo
        self.bus_ids = bus_ids
        self.bus_ids_list = bus_ids.tolist()
        self.row_of_bus = row_of_bus
        self.pos = {k: np.asarray(getattr(bk, f"{k}_pos_topo_vect"), dtype=np.int64)
                    for k in ("load", "gen", "storage", "line_or", "line_ex")}
        self.subid = {k: np.asarray(getattr(bk, f"{k}_to_subid"), dtype=np.int64)
                      for k in ("load", "gen", "storage", "line_or", "line_ex", "shunt")}
        dim = self.dim_topo
        code = np.full(dim, -1, dtype=np.int64)
        row = np.full(dim, -1, dtype=np.int64)
        sub = np.full(dim, -1, dtype=np.int64)
        line = np.arange(self.n_line)
        is_tr = line >= n_pp_line
        for end, k_line, k_tr in (("line_or", 3, 5), ("line_ex", 4, 6)):
            pos = self.pos[end]
            code[pos] = np.where(is_tr, k_tr, k_line)
            row[pos] = np.where(is_tr, line - n_pp_line, line)
            sub[pos] = self.subid[end]
        for k, kind in enumerate(("load", "gen", "storage")):
            pos = self.pos[kind]
            if len(pos):
                code[pos] = k
                row[pos] = np.arange(len(pos))
                sub[pos] = self.subid[kind]
        self.pos_code, self.pos_row, self.pos_sub = code.tolist(), row.tolist(), sub.tolist()
        # the other way round (for TopoVect.update): each element's topo_vect positions
        self.or_pos, self.ex_pos = self.pos["line_or"].tolist(), self.pos["line_ex"].tolist()
        self.elem_pos = {k: self.pos[k].tolist() for k in ("load", "gen", "storage")}
        # topo_vect positions of the bus columns TopoVect.refresh gathers (branch origins,
        # extremities, loads, generators, storage units)
        self.gather_pos = np.concatenate([self.pos[k] for k in ("line_or", "line_ex", "load", "gen", "storage")]
                                         ).astype(np.intp)

    def bus_id(self, sub, local):
        """The bus id of busbar ``local`` (1..n) of substation ``sub`` (arrays or ints)."""
        return self.bus_ids[sub + (local - 1) * self.n_sub]


class TopoVect:
    """grid2op's view of the topology: ``vect`` (busbar 1..n of every element, -1 when off),
    ``line_status`` and ``shunt_bus``, kept equal to the world's bus / in_service columns."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.vect = np.full(layout.dim_topo, -1, dtype=dt_int)
        self.shunt_bus = np.full(layout.n_shunt, -1, dtype=dt_int)
        self.line_status = np.zeros(layout.n_line, dtype=bool)

    def copy(self):
        out = TopoVect.__new__(TopoVect)
        out.layout = self.layout  # constants
        out.vect, out.shunt_bus, out.line_status = self.vect.copy(), self.shunt_bus.copy(), self.line_status.copy()
        return out

    def refresh(self, world):
        """Everything from the world's columns: every bus column gathered in one array (branch
        origins, extremities, loads, generators, storage units, shunts), in place into topo_vect's
        order."""
        lay = self.layout
        line, trafo, load, gen, sto, sh = (world[k].cols for k in ("line", "trafo", "load", "gen", "storage", "shunt"))
        status = np.concatenate((line["in_service"], trafo["in_service"]))
        bus = np.concatenate((line["from_bus"], trafo["hv_bus"], line["to_bus"], trafo["lv_bus"],
                              load["bus"], gen["bus"], sto["bus"], sh["bus"]))
        on = np.concatenate((status, status, load["in_service"], gen["in_service"], sto["in_service"],
                             sh["in_service"]))
        local = lay.row_of_bus[bus]
        local //= lay.n_sub
        local += 1
        local[~on] = -1
        pos = lay.gather_pos
        n = len(pos)
        self.vect[pos] = local[:n]
        self.shunt_bus[:] = local[n:]
        self.line_status[:] = status

    def update(self, world, writes):
        """:meth:`refresh` for the elements of ``writes`` only (bus / in_service writes of loads,
        generators, storage units and branches; plan entries)."""
        lay = self.layout
        tabs = world.tables
        tv, row_of, n_sub, nl = self.vect, lay.row_of_bus, lay.n_sub, lay.n_pp_line
        done = set()
        for kind, _, rows, _, _ in writes:
            c = tabs[kind].cols
            for r in rows.tolist():
                if (kind, r) in done:
                    continue
                done.add((kind, r))
                on = c["in_service"][r]
                if kind in ("line", "trafo"):
                    i = r if kind == "line" else r + nl
                    a, b = ("from_bus", "to_bus") if kind == "line" else ("hv_bus", "lv_bus")
                    tv[lay.or_pos[i]] = row_of[c[a][r]] // n_sub + 1 if on else -1
                    tv[lay.ex_pos[i]] = row_of[c[b][r]] // n_sub + 1 if on else -1
                    self.line_status[i] = on
                else:
                    tv[lay.elem_pos[kind][r]] = row_of[c["bus"][r]] // n_sub + 1 if on else -1

    def line_off(self, i):
        """Powerline ``i`` switched off."""
        self.vect[self.layout.or_pos[i]] = -1
        self.vect[self.layout.ex_pos[i]] = -1
        self.line_status[i] = False
