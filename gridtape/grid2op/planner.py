"""apply_action's planner: a grid2op backend action turned into world writes.

A plan is a list of ``(kind, column, rows, values, checked)`` writes (rows: int64 row positions,
None for every row; values of the column's dtype, float64 for set-points).  ``checked`` writes
carry values from grid2op (set-points) and go through the world's validation; the others carry
values the backend derives itself (its busbar ids, in_service flags, the grid's initial values).
Only cells whose value changes are planned, but for the set-points that move every step when no
journal records them (``every``: an equal value costs an incremental solve, no more)."""
from __future__ import annotations

import numpy as np

from gridtape.solver_cy.g2o import plan_column

from .topology import TOPO_CODES, TOPO_COLUMNS, TOPO_TABLES, Layout

#: above this many positions set by one action, the vectorized planning (a reset sets them all)
SMALL_TOPO = 48


def plan_values(plan, t, kind, col, store, divide=None, every=False):
    """The entries of a grid2op ValueStore marked changed whose value differs from the column
    (``every``: all entries marked changed), in one kernel pass (``g2o.plan_column``).  Values of
    unchanged entries are meaningless; they are masked out, never read.  ``divide`` (float32, as
    grid2op's backends divide voltage set-points by kV) is applied before the kernel.  Arrays the
    kernel does not take as they are (it checks dtypes and layout first) are converted for it."""
    ch, vals = store.changed, store.values
    if divide is not None:
        if not np.count_nonzero(ch):
            return
        vals = vals / divide
    column = t.cols[col]
    r = plan_column(ch, vals, None, column, every)
    if r is NotImplemented:
        r = plan_column(np.ascontiguousarray(ch, dtype=np.bool_), np.ascontiguousarray(vals, dtype=np.float64), None,
                        column, every)
        if r is NotImplemented:
            raise TypeError(f"{kind}.{col}: not a float64 column")
    if r is not None:
        plan.append((kind, col, r[0], r[1], True))


def plan_dict(plan, t, kind, col, d, dtype):
    """:func:`plan_diff` of ``{row: value}`` (rows ascending, as the masks give them)."""
    item = t.cols[col].item  # Python scalars: cheaper to compare than numpy ones
    rows = [r for r, v in d.items() if item(r) != v]
    if rows:
        rows.sort()
        plan.append((kind, col, np.array(rows, dtype=np.int64), np.array([d[r] for r in rows], dtype=dtype), False))


def plan_diff(plan, t, kind, col, rows, vals, checked=False):
    """Write ``vals`` at ``rows`` where they differ from the column (unchecked by default: values
    the backend derives itself)."""
    cur = t.cols[col][rows]
    vals = vals.astype(cur.dtype, copy=False)
    d = cur != vals
    if d.any():
        plan.append((kind, col, rows[d], vals[d], checked))


def plan_reset(world, initial):
    """The writes that give the columns of ``initial`` ({(kind, column): values}) those values."""
    plan = []
    for (kind, col), init in initial.items():
        t = world[kind]
        if len(t):
            plan_diff(plan, t, kind, col, np.arange(len(t)), init)
    return plan


class Planner:
    """Plans the world writes of grid2op backend actions on a grid of layout ``layout``;
    ``gen_kv``: the generators' kV / p.u. factors (float32)."""

    def __init__(self, layout: Layout, gen_kv):
        self.layout = layout
        self.gen_kv = gen_kv

    def action(self, backend_action, world, every):
        """``(plan, n_inj, small, shunt_moved)``: the writes (set-points first, ``n_inj`` of them,
        then bus / in_service writes), whether the topology part was planned position by position
        (:meth:`topology_small`) and whether a shunt was moved."""
        _, (prod_p, prod_v, load_p, load_q, storage), topo, shunts = backend_action()
        tabs = world.tables
        plan = []
        plan_values(plan, tabs["gen"], "gen", "p_mw", prod_p, every=every)
        plan_values(plan, tabs["gen"], "gen", "vm_pu", prod_v, self.gen_kv)
        plan_values(plan, tabs["load"], "load", "p_mw", load_p, every=every)
        plan_values(plan, tabs["load"], "load", "q_mvar", load_q, every=every)
        if self.layout.n_storage:
            plan_values(plan, tabs["storage"], "storage", "p_mw", storage, every=every)
        n_inj = len(plan)
        shunt_moved = False
        if shunts is not None:
            sh_p, sh_q, sh_bus = shunts
            plan_values(plan, tabs["shunt"], "shunt", "p_mw", sh_p)
            plan_values(plan, tabs["shunt"], "shunt", "q_mvar", sh_q)
            n_inj = len(plan)
            if np.count_nonzero(sh_bus.changed):
                self.elements(plan, world, "shunt", sh_bus.changed, sh_bus.values)
                shunt_moved = len(plan) > n_inj
        c = topo.changed.nonzero()[0]  # the topo_vect positions the action sets
        small = len(c) <= SMALL_TOPO
        if not small:
            self.topology(plan, world, topo.changed, topo.values)
        elif len(c):
            self.topology_small(plan, world, c.tolist(), topo.values[c].tolist())
        return plan, n_inj, small, shunt_moved

    def topology(self, plan, w, ch, vals):
        """Busbar moves and disconnections of a topo_vect action, vectorized (any size)."""
        pos = self.layout.pos
        for kind in ("load", "gen", "storage"):
            p = pos[kind]
            if len(p):
                self.elements(plan, w, kind, ch[p], vals[p])
        self.branches(plan, w, ch, vals)

    def topology_small(self, plan, w, pos, loc):
        """:meth:`topology` for an action that sets a few positions (a substation's elements, as
        agents' actions do): the same writes in the same order, from a loop over those positions
        (Python lists) instead of masks over every element."""
        lay = self.layout
        code, row, sub = lay.pos_code, lay.pos_row, lay.pos_sub
        bus_ids, n_sub = lay.bus_ids_list, lay.n_sub
        ins = ({}, {}, {}, {}, {})  # per table (TOPO_TABLES): row -> in_service
        buses = {}  # (table, column) -> {row: bus id}
        off = ({}, {})  # per branch table: row -> an end of the branch set to -1
        for p, v in zip(pos, loc):
            k, r = code[p], row[p]
            if k < 3:  # load, gen, storage
                ins[k][r] = v > 0
            else:  # a branch end: codes 3, 4 line origin / extremity, 5, 6 trafo hv / lv
                t = 3 + (k >= 5)
                o = off[t - 3]
                o[r] = o.get(r, False) or v < 0
            if v > 0:
                d = buses.get(k)
                if d is None:
                    d = buses[k] = {}
                d[r] = bus_ids[sub[p] + (v - 1) * n_sub]
        for t in (3, 4):
            for r, o in off[t - 3].items():
                ins[t][r] = not o
        for t, kind in enumerate(TOPO_TABLES):
            d = ins[t]
            if d:
                plan_dict(plan, w[kind], kind, "in_service", d, bool)
            for k in TOPO_COLUMNS[t]:
                d = buses.get(k)
                if d:
                    plan_dict(plan, w[kind], kind, TOPO_CODES[k][1], d, np.int64)

    def elements(self, plan, w, kind, changed, local) -> bool:
        """Busbar moves (local bus >= 1) and disconnections (-1) of one-bus elements."""
        if not np.count_nonzero(changed):
            return False
        rows = np.flatnonzero(changed)
        loc = local[rows]
        on = loc > 0
        t = w[kind]
        plan_diff(plan, t, kind, "in_service", rows, on)
        if on.any():
            r = rows[on]
            plan_diff(plan, t, kind, "bus", r, self.layout.bus_id(self.layout.subid[kind][r], loc[on]))
        return True

    def branches(self, plan, w, changed, local) -> bool:
        """Busbar moves of branch ends: a branch with an end set to -1 is switched off, a branch
        with an end set to a busbar is switched on."""
        lay = self.layout
        or_pos, ex_pos = lay.pos["line_or"], lay.pos["line_ex"]
        or_ch, ex_ch = changed[or_pos], changed[ex_pos]
        any_ch = or_ch | ex_ch
        if not any_ch.any():
            return False
        or_v, ex_v = local[or_pos], local[ex_pos]
        off = (or_ch & (or_v < 0)) | (ex_ch & (ex_v < 0))
        nl = lay.n_pp_line
        for kind, lo, hi, f_col, t_col in (("line", 0, nl, "from_bus", "to_bus"),
                                           ("trafo", nl, lay.n_line, "hv_bus", "lv_bus")):
            sel = np.flatnonzero(any_ch[lo:hi]) + lo
            if not len(sel):
                continue
            t = w[kind]
            plan_diff(plan, t, kind, "in_service", sel - lo, ~off[sel])
            for col, ch_, v, subs in ((f_col, or_ch, or_v, lay.subid["line_or"]),
                                      (t_col, ex_ch, ex_v, lay.subid["line_ex"])):
                m = sel[ch_[sel] & (v[sel] > 0)]
                if len(m):
                    plan_diff(plan, t, kind, col, m - lo, lay.bus_id(subs[m], v[m]))
        return True

    def line_off(self, w, i):
        """The write that switches powerline ``i`` off (none when it is off already)."""
        nl = self.layout.n_pp_line
        kind, r = ("line", i) if i < nl else ("trafo", i - nl)
        if w[kind].cols["in_service"][r]:
            return [(kind, "in_service", np.array([r], dtype=np.int64), np.zeros(1, dtype=bool), False)]
        return []
