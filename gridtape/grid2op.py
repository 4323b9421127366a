"""gridtape as a grid2op backend.

``GridtapeBackend`` plugs gridtape's engine into grid2op (``grid2op.make(env, backend=GridtapeBackend())``):

- the grid is the environment's pandapower JSON, read into a :class:`~gridtape.world.World`; each
  substation gets ``n_busbar_per_sub`` buses (the extra busbars are buses ``n_sub .. k*n_sub-1``,
  numbered as PandaPowerBackend numbers them), all in service: an empty busbar is just unsupplied;
- ``apply_action`` turns grid2op's backend action into world writes (injections, storage power,
  shunts, busbar moves, disconnections).  They are planned first and committed in one place
  (:meth:`GridtapeBackend._commit`), one journal transaction per call when a journal is given.
  Only topology and voltage set-points that differ are written (and, journaled, only changed
  injections), so an injection-only step leaves the topology untouched and the next solve is
  incremental; a topology step's solve starts from the previous voltages;
- ``runpf`` solves and reads bus voltages and branch flows straight from the engine's arrays
  (no DataFrame per step).  A diverged or islanded grid returns ``(False, exc)`` with a grid2op
  ``DivergingPowerflow`` / ``IslandedGrid`` and leaves every result at NaN.

Units are grid2op's: MW, MVAr, kV, A, degrees.  See docs/grid2op.md.
"""
from __future__ import annotations

import copy
import json

import numpy as np
from grid2op.Backend import Backend
from grid2op.dtypes import dt_float, dt_int
from grid2op.Exceptions import BackendError, DivergingPowerflow, IslandedGrid

from gridtape.errors import CaseError, GridtapeError
from gridtape.grid import PowerGrid
from gridtape.solver_cy import model as M
from gridtape.solver_cy.engine import MODEL_CACHE
from gridtape.solver_cy.flows import branch_flows, bus_injection
from gridtape.solver_cy.g2o import InjPack, LinePack, ac_results, inj_results, model_arrays, plan_column, slack_table
from gridtape.world.io_json import read_pandapower_json

SQRT3 = np.sqrt(3.0)

#: (kind, column) pairs apply_action may write; reset restores exactly these
WRITTEN = (("load", "p_mw"), ("load", "q_mvar"), ("load", "bus"), ("load", "in_service"),
           ("gen", "p_mw"), ("gen", "vm_pu"), ("gen", "bus"), ("gen", "in_service"),
           ("storage", "p_mw"), ("storage", "bus"), ("storage", "in_service"),
           ("shunt", "p_mw"), ("shunt", "q_mvar"), ("shunt", "bus"), ("shunt", "in_service"),
           ("line", "from_bus"), ("line", "to_bus"), ("line", "in_service"),
           ("trafo", "hv_bus"), ("trafo", "lv_bus"), ("trafo", "in_service"))

#: the tables a topo_vect action writes (codes 0-4 of _plan_topology_small's ``ins``) and, per
#: position code, the (table, column) of its bus: one-bus elements, then branch ends
TOPO_TABLES = ("load", "gen", "storage", "line", "trafo")
TOPO_CODES = (("load", "bus"), ("gen", "bus"), ("storage", "bus"), ("line", "from_bus"), ("line", "to_bus"),
              ("trafo", "hv_bus"), ("trafo", "lv_bus"))
TOPO_COLUMNS = ((0,), (1,), (2,), (3, 4), (5, 6))  # per table: the position codes of its bus columns
#: above this many positions set by one action, the vectorized planning (a reset sets them all)
SMALL_TOPO = 48

#: results live in two float32 buffers: "line" (rows p, q, v, a, theta; columns: the origin ends of
#: every powerline, then the extremity ends) and "inj" (rows p, q, v, theta; columns: generators,
#: loads, storage units, shunts).  The getters hand out copies of rows of these groups.
INJ_GROUPS = ("gen", "load", "storage", "shunt")


# ------------------------------------------------------------------------------------------------
# reading a grid2op grid
# ------------------------------------------------------------------------------------------------
def read_grid2op_json(path):
    """The World of a grid2op environment's ``grid.json``.

    grid2op's grids were written by pandapower 2 and carry ``tap_side = false`` on transformers
    without a tap changer; that reads as "no tap side" (None), which is what pandapower makes of it.
    An in-service ext_grid becomes a slack generator (grid2op models the slack as a generator),
    appended after the file's generators, of slack weight 1 + the ext_grid's; xwards are refused
    (grid2op does not model them)."""
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    net = doc.get("_object", {}) if isinstance(doc, dict) else {}
    for kind in ("trafo", "trafo3w"):
        tab = net.get(kind)
        if isinstance(tab, dict) and isinstance(tab.get("_object"), str):
            raw = json.loads(tab["_object"])
            cols = raw.get("columns", [])
            if "tap_side" in cols:
                j = cols.index("tap_side")
                for row in raw.get("data", []):
                    if not isinstance(row[j], str):
                        row[j] = None
                tab["_object"] = json.dumps(raw)
    world = read_pandapower_json(json.dumps(doc))
    if len(world["xward"]):
        raise CaseError("xward elements are not supported by GridtapeBackend (grid2op does not model them)",
                        file=str(path), table="xward")
    _ext_grid_to_slack_gen(world)
    return world


def _ext_grid_to_slack_gen(world):
    eg = world["ext_grid"]
    if not len(eg):
        return
    on = eg.cols["in_service"]
    k = int(on.sum())
    # PandaPowerBackend keeps the ext_grid and adds a slack generator of weight 1 at its bus: under
    # distributed slack that bus weighs 1 + the ext_grid's weight
    wt = 1.0 + np.nan_to_num(eg.cols["slack_weight"][on])
    # no reactive limits (NaN: +-1e9, not the gen table's default of +-inf, whose range is NaN)
    world.add("gen", {"bus": eg.cols["bus"][on], "p_mw": np.zeros(k), "vm_pu": eg.cols["vm_pu"][on],
                      "slack": np.ones(k, bool), "slack_weight": wt,
                      "min_q_mvar": np.full(k, np.nan), "max_q_mvar": np.full(k, np.nan)})
    world.remove("ext_grid", eg.ids.copy())


def _journal_arg(journal):
    """PowerGrid's ``journal`` argument for the backend's: None / False = off, True = in memory,
    else a journal file path or a :class:`gridtape.journal.Journal`."""
    if journal is None or journal is False:
        return False
    return None if journal is True else journal


def _names(tab, fmt):
    """Element names as PandaPowerBackend makes them: the name column, or ``fmt(row)``."""
    names = tab.cols["name"]
    if len(names) and all(n is not None for n in names):
        return np.array([str(n) for n in names])
    return np.array([fmt(i) for i in range(len(tab))])


# ------------------------------------------------------------------------------------------------
# the backend
# ------------------------------------------------------------------------------------------------
class GridtapeBackend(Backend):
    """A grid2op backend on gridtape's Newton-Raphson engine.

    ``GridtapeBackend(detailed_infos_for_cascading_failures=False, can_be_copied=True, *,
    dist_slack=False, max_iter=10, tol=1e-8, journal=None)``.  ``dist_slack``: PandaPowerBackend's
    option of that name, pandapower's ``runpp(distributed_slack=True)``: every in-service generator
    with a non-zero ``slack_weight`` in the grid file takes its share of the slack power, and its P
    is its set-point plus that share (AC only: a DC power flow keeps the single slack, as
    PandaPowerBackend's ``rundcpp`` does).  ``journal`` (off by default, for speed): a journal
    file path, a :class:`gridtape.journal.Journal`, or True for an in-memory one.  Journaled, the
    grid as loaded is the journal's load event, every ``apply_action`` is one transaction
    ("apply_action <n>", author "grid2op"), every ``runpf`` a solve event and every ``reset`` a
    "reset" transaction.  Copies of the backend (forecasts, ``obs.simulate``) and backends grid2op
    re-creates from its keyword arguments are never journaled.
    ``backend.grid`` is the :class:`~gridtape.PowerGrid` it drives.
    """

    shunts_data_available = True

    def __init__(self, detailed_infos_for_cascading_failures: bool = False, can_be_copied: bool = True, *,
                 dist_slack: bool = False, max_iter: int = 10, tol: float = 1e-8, journal=None):
        Backend.__init__(self, detailed_infos_for_cascading_failures=detailed_infos_for_cascading_failures,
                         can_be_copied=can_be_copied, dist_slack=bool(dist_slack), max_iter=max_iter, tol=tol)
        self.can_output_theta = True
        self._dist_slack = bool(dist_slack)
        self._max_iter = int(max_iter)
        self._tol = float(tol)
        self._journal = journal  # deliberately not in _my_kwargs: re-created backends are not journaled
        self._n_apply = 0
        self._tc = None  # per-model cache of the current model (see _model_cache)
        self._tcs = {}  # per-model caches of the last topologies, by id of the engine's topology
        self._gsplits = {}  # generator result constants by generator placement (see _gen_split)
        self._st = None  # per-grid constants of the results (see _static)
        self._topo_pos = None  # topo_vect positions of the gathered bus columns
        self._diverged = False
        self.div_exception = None

    @property
    def grid(self) -> PowerGrid:
        """The gridtape PowerGrid this backend drives."""
        return self._grid

    # --- loading -------------------------------------------------------------------------------
    def load_grid(self, path, filename=None):
        self.can_handle_more_than_2_busbar()
        self.can_handle_detachment()
        world = read_grid2op_json(self.make_complete_path(path, filename))
        self._n_sub = len(world["bus"])
        self._add_busbars(world)
        self._describe(world)
        self._index_topo_positions()
        self._st = self._topo_pos = self._tc = None
        self._tcs, self._gsplits = {}, {}
        self._grid = PowerGrid(world=world, max_iteration=self._max_iter, tolerance_mva=self._tol,
                               distributed_slack=self._dist_slack, journal=_journal_arg(self._journal),
                               author="grid2op")
        self._initial = {(k, c): world[k].cols[c].copy() for k, c in WRITTEN}
        self._alloc_results()
        self._refresh_topo_vect()
        if not self.runpf(is_dc=False)[0]:
            self.runpf(is_dc=True)
        self._initial_results = self._results_state()

    def _add_busbars(self, world):
        """Busbars 2..n of every substation become buses after the original ones.  Every bus is in
        service (an empty busbar is merely unsupplied), so moving elements never writes buses."""
        bus = world["bus"]
        n_sub = self._n_sub
        if not bus.cols["in_service"].all():
            world.set_values("bus", bus.ids, "in_service", True)
        vn, names = bus.cols["vn_kv"].copy(), bus.cols["name"].copy()
        for _ in range(self.n_busbar_per_sub - 1):
            world.add("bus", {"vn_kv": vn, "name": names, "in_service": np.ones(n_sub, bool)})
        self._bus_ids = world["bus"].ids.copy()  # bus row r is busbar r // n_sub + 1 of substation r % n_sub
        row_of = np.full(int(self._bus_ids.max()) + 1, -1, dtype=np.int64)
        row_of[self._bus_ids] = np.arange(len(self._bus_ids))
        self._row_of_bus = row_of

    def _describe(self, world):
        """Fill grid2op's GridObjects attributes, elements placed in PandaPowerBackend's order."""
        line, trafo, gen, load, sto, sh = (world[k] for k in ("line", "trafo", "gen", "load", "storage", "shunt"))
        row, n_sub, nl = self._row_of_bus, self._n_sub, len(line)
        self._n_pp_line = nl
        self.n_sub = n_sub
        self.name_sub = np.array([f"sub_{i}" for i in world["bus"].ids[:n_sub]])
        self.n_line = nl + len(trafo)
        fb, tb, hv, lv = line.cols["from_bus"], line.cols["to_bus"], trafo.cols["hv_bus"], trafo.cols["lv_bus"]
        ln = _names(line, lambda i: f"{fb[i]}_{tb[i]}_{i}")
        tn = _names(trafo, lambda i: "{}_{}_{}".format(*sorted((str(hv[i]), str(lv[i]))), i + nl))
        self.name_line = np.concatenate([ln, tn]) if len(tn) else ln
        self.n_gen, self.n_load, self.n_storage = len(gen), len(load), len(sto)
        self.name_gen = _names(gen, lambda i: f"gen_{gen.cols['bus'][i]}_{i}")
        self.name_load = _names(load, lambda i: f"load_{load.cols['bus'][i]}_{i}")
        if self.n_storage == 0:
            self.set_no_storage()
        else:
            self.name_storage = _names(sto, lambda i: f"storage_{sto.cols['bus'][i]}_{i}")
        used = np.zeros(n_sub, dtype=dt_int)

        def place(subs):
            pos = np.zeros(len(subs), dtype=dt_int)
            for i, s in enumerate(subs.tolist()):
                pos[i] = used[s]
                used[s] += 1
            return pos

        or_sub = row[np.concatenate([fb, hv])].astype(dt_int)
        ex_sub = row[np.concatenate([tb, lv])].astype(dt_int)
        # origin then extremity of each branch, then generators, loads, storage units
        both = place(np.column_stack([or_sub, ex_sub]).reshape(-1)).reshape(-1, 2)
        self.line_or_to_subid, self.line_ex_to_subid = or_sub, ex_sub
        self.line_or_to_sub_pos, self.line_ex_to_sub_pos = both[:, 0].copy(), both[:, 1].copy()
        self.gen_to_subid = row[gen.cols["bus"]].astype(dt_int)
        self.gen_to_sub_pos = place(self.gen_to_subid)
        self.load_to_subid = row[load.cols["bus"]].astype(dt_int)
        self.load_to_sub_pos = place(self.load_to_subid)
        if self.n_storage:
            self.storage_to_subid = row[sto.cols["bus"]].astype(dt_int)
            self.storage_to_sub_pos = place(self.storage_to_subid)
        self.sub_info = used.copy()
        self.dim_topo = int(used.sum())
        self.n_shunt = len(sh)
        self.shunt_to_subid = row[sh.cols["bus"]].astype(dt_int)
        self.name_shunt = np.array([f"shunt_{sh.cols['bus'][i]}_{i}" for i in range(len(sh))]).astype(str)
        kv = world["bus"].cols["vn_kv"]
        self._sh_vnkv = kv[self.shunt_to_subid].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.thermal_limit_a = (1000.0 * np.concatenate([
                line.cols["max_i_ka"], trafo.cols["sn_mva"] / (SQRT3 * trafo.cols["vn_hv_kv"])])).astype(dt_float)
        self._gen_kv = kv[self.gen_to_subid].astype(dt_float)  # grid2op's kV / p.u. factor (float32)
        self._compute_pos_big_topo()

    def _alloc_results(self):
        sizes = (self.n_gen, self.n_load, self.n_storage, self.n_shunt)
        self._buf = {"line": np.full((5, 2 * self.n_line), np.nan, dtype=dt_float),
                     "inj": np.full((4, sum(sizes)), np.nan, dtype=dt_float)}
        ends = np.cumsum((0,) + sizes)
        self._inj_slices = {g: slice(int(ends[i]), int(ends[i + 1])) for i, g in enumerate(INJ_GROUPS)}
        self._inj_sizes = [int(ends[i + 1] - ends[i]) for i in range(len(INJ_GROUPS))]
        self._bind_views()
        self._topo_vect = np.full(self.dim_topo, -1, dtype=dt_int)
        self._shunt_bus = np.full(self.n_shunt, -1, dtype=dt_int)
        self._line_status = np.zeros(self.n_line, dtype=bool)

    def _bind_views(self):
        """``self._grp[group]``: (rows, elements) views of the buffers; ``self._res[name]``: rows."""
        L = self._buf["line"]
        n = L.shape[1] // 2
        self._grp = {"or": L[:, :n], "ex": L[:, n:]}
        self._grp.update({g: self._buf["inj"][:, sl] for g, sl in self._inj_slices.items()})
        res = {}
        for i, name in enumerate(("p", "q", "v", "a", "theta")):
            res[f"{name}_or"], res[f"{name}_ex"] = self._grp["or"][i], self._grp["ex"][i]
        for g, pre in (("gen", "prod_"), ("load", "load_"), ("storage", "storage_")):
            for i, q in enumerate(("p", "q", "v")):
                res[pre + q] = self._grp[g][i]
            res[g + "_theta"] = self._grp[g][3]
        self._res = res
        # the getters' rows, bound once (grid2op calls some getters several times a step)
        self._rows = {g: tuple(self._grp[g][i] for i in range(3)) for g in ("gen", "load", "storage", "shunt")}
        self._rows["or"] = tuple(res[f"{q}_or"] for q in ("p", "q", "v", "a"))
        self._rows["ex"] = tuple(res[f"{q}_ex"] for q in ("p", "q", "v", "a"))

    # --- actions --------------------------------------------------------------------------------
    def apply_action(self, backend_action) -> None:
        """Plan the world writes of one grid2op backend action, then commit them together."""
        cls = type(self)
        _, (prod_p, prod_v, load_p, load_q, storage), topo, shunts = backend_action()
        w = self._grid.world
        tabs = w.tables
        plan = []
        # unjournaled, the set-points that move every step are written without comparing first
        # (an equal value costs an incremental solve, no more); journaled, only changes are recorded
        every = self._grid.journal is None
        _plan_values(plan, tabs["gen"], "gen", "p_mw", prod_p, every=every)
        _plan_values(plan, tabs["gen"], "gen", "vm_pu", prod_v, self._gen_kv)
        _plan_values(plan, tabs["load"], "load", "p_mw", load_p, every=every)
        _plan_values(plan, tabs["load"], "load", "q_mvar", load_q, every=every)
        if cls.n_storage:
            _plan_values(plan, tabs["storage"], "storage", "p_mw", storage, every=every)
        n_inj = len(plan)
        shunt_moved = False
        if shunts is not None:
            sh_p, sh_q, sh_bus = shunts
            _plan_values(plan, tabs["shunt"], "shunt", "p_mw", sh_p)
            _plan_values(plan, tabs["shunt"], "shunt", "q_mvar", sh_q)
            n_inj = len(plan)
            if np.count_nonzero(sh_bus.changed):
                self._plan_elements(plan, w, "shunt", sh_bus.changed, sh_bus.values, cls.shunt_to_subid)
                shunt_moved = len(plan) > n_inj
        c = topo.changed.nonzero()[0]  # the topo_vect positions the action sets
        small = len(c) <= SMALL_TOPO
        if not small:
            self._plan_topology(plan, w, topo.changed, topo.values)
        elif len(c):
            self._plan_topology_small(plan, w, c.tolist(), topo.values[c].tolist())
        self._n_apply += 1
        self._commit(plan, "apply_action", self._n_apply)
        if len(plan) > n_inj:  # a bus or in_service column was written
            if small and not shunt_moved:
                self._update_topo_vect(plan[n_inj:])
            else:
                self._refresh_topo_vect()

    def _plan_topology(self, plan, w, ch, vals):
        """Busbar moves and disconnections of a topo_vect action, vectorized (any size)."""
        cls = type(self)
        for kind, pos, subs in (("load", cls.load_pos_topo_vect, cls.load_to_subid),
                                ("gen", cls.gen_pos_topo_vect, cls.gen_to_subid),
                                ("storage", cls.storage_pos_topo_vect, cls.storage_to_subid)):
            if len(pos):
                self._plan_elements(plan, w, kind, ch[pos], vals[pos], subs)
        self._plan_branches(plan, w, ch, vals)

    def _plan_topology_small(self, plan, w, pos, loc):
        """:meth:`_plan_topology` for an action that sets a few positions (a substation's
        elements, as agents' actions do): the same writes in the same order, from a loop over
        those positions (Python lists) instead of masks over every element."""
        code, row, sub = self._pos_code, self._pos_row, self._pos_sub
        bus_ids, n_sub = self._bus_ids_list, self._n_sub
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
                _plan_dict(plan, w[kind], kind, "in_service", d, bool)
            for k in TOPO_COLUMNS[t]:
                d = buses.get(k)
                if d:
                    _plan_dict(plan, w[kind], kind, TOPO_CODES[k][1], d, np.int64)

    def _index_topo_positions(self):
        """Per topo_vect position: the table code (TOPO_CODES), the row and the substation, as
        Python lists (for :meth:`_plan_topology_small`)."""
        cls = type(self)
        nl = self._n_pp_line
        code = np.full(self.dim_topo, -1, dtype=np.int64)
        row = np.full(self.dim_topo, -1, dtype=np.int64)
        sub = np.full(self.dim_topo, -1, dtype=np.int64)
        line = np.arange(self.n_line)
        is_tr = line >= nl
        for pos, subs, k_line, k_tr in ((cls.line_or_pos_topo_vect, cls.line_or_to_subid, 3, 5),
                                        (cls.line_ex_pos_topo_vect, cls.line_ex_to_subid, 4, 6)):
            code[pos] = np.where(is_tr, k_tr, k_line)
            row[pos] = np.where(is_tr, line - nl, line)
            sub[pos] = subs
        for k, pos, subs in ((0, cls.load_pos_topo_vect, cls.load_to_subid),
                             (1, cls.gen_pos_topo_vect, cls.gen_to_subid),
                             (2, cls.storage_pos_topo_vect, cls.storage_to_subid)):
            if len(pos):
                code[pos] = k
                row[pos] = np.arange(len(pos))
                sub[pos] = subs
        self._pos_code, self._pos_row, self._pos_sub = code.tolist(), row.tolist(), sub.tolist()
        self._bus_ids_list = self._bus_ids.tolist()
        # the other way round (for _update_topo_vect): each element's topo_vect positions
        self._or_pos, self._ex_pos = cls.line_or_pos_topo_vect.tolist(), cls.line_ex_pos_topo_vect.tolist()
        self._elem_pos = {"load": cls.load_pos_topo_vect.tolist(), "gen": cls.gen_pos_topo_vect.tolist(),
                          "storage": cls.storage_pos_topo_vect.tolist()}

    def _plan_elements(self, plan, w, kind, changed, local, subs) -> bool:
        """Busbar moves (local bus >= 1) and disconnections (-1) of one-bus elements."""
        if not np.count_nonzero(changed):
            return False
        rows = np.flatnonzero(changed)
        loc = local[rows]
        on = loc > 0
        t = w[kind]
        _plan_diff(plan, t, kind, "in_service", rows, on)
        if on.any():
            r = rows[on]
            _plan_diff(plan, t, kind, "bus", r, self._bus_ids[subs[r] + (loc[on] - 1) * self._n_sub])
        return True

    def _plan_branches(self, plan, w, changed, local) -> bool:
        """Busbar moves of branch ends: a branch with an end set to -1 is switched off, a branch
        with an end set to a busbar is switched on."""
        cls = type(self)
        or_pos, ex_pos = cls.line_or_pos_topo_vect, cls.line_ex_pos_topo_vect
        or_ch, ex_ch = changed[or_pos], changed[ex_pos]
        any_ch = or_ch | ex_ch
        if not any_ch.any():
            return False
        or_v, ex_v = local[or_pos], local[ex_pos]
        off = (or_ch & (or_v < 0)) | (ex_ch & (ex_v < 0))
        nl, n_sub = self._n_pp_line, self._n_sub
        for kind, lo, hi, f_col, t_col in (("line", 0, nl, "from_bus", "to_bus"),
                                           ("trafo", nl, cls.n_line, "hv_bus", "lv_bus")):
            sel = np.flatnonzero(any_ch[lo:hi]) + lo
            if not len(sel):
                continue
            t = w[kind]
            _plan_diff(plan, t, kind, "in_service", sel - lo, ~off[sel])
            for col, ch_, v, subs in ((f_col, or_ch, or_v, cls.line_or_to_subid),
                                      (t_col, ex_ch, ex_v, cls.line_ex_to_subid)):
                m = sel[ch_[sel] & (v[sel] > 0)]
                if len(m):
                    _plan_diff(plan, t, kind, col, m - lo, self._bus_ids[subs[m] + (v[m] - 1) * n_sub])
        return True

    def _commit(self, plan, message, n=None):
        """The one place where the backend writes its world.  A plan entry is ``(kind, column,
        rows, values, checked)`` (rows: row positions, None for every row; values of the column's
        dtype): checked entries (values from grid2op) go through ``world.write_rows_checked``
        (set_values' validation), the others (values the backend derived itself: busbar ids,
        in_service flags, the initial grid) through the trusted ``world.write_rows``.  Journaled,
        one transaction of one ``record_many`` per written column (the old values are the ones the
        write returns, the new ones the planned values).  A write that raises undoes the ones
        before it and the transaction."""
        if not plan:
            return
        g = self._grid
        w = g.world
        j = g.journal
        if j is None:
            for kind, col, rows, vals, checked in plan:
                if checked:
                    w.write_rows_checked(kind, rows, col, vals)
                else:
                    w.write_rows(kind, rows, col, vals)
            g._changed()
            return
        tx = j.begin(message=message if n is None else f"{message} {n}")
        done = []
        try:
            for kind, col, rows, vals, checked in plan:
                t = w[kind]
                ids = t.ids if rows is None else t.ids[rows]
                old = w.write_rows_checked(kind, rows, col, vals) if checked else w.write_rows(kind, rows, col, vals)
                done.append((kind, col, rows, old))
                j.record_many("set", kind, ids, col, old, vals)
        except BaseException:
            for kind, col, rows, old in reversed(done):
                w.write_rows(kind, rows, col, old)
            j.rollback()
            raise
        finally:
            g._changed()
        j.commit()
        g._pushed_tx(tx)

    def _disconnect_line(self, id_):
        """Switch powerline ``id_`` off (grid2op's overflow protections call this): its
        in_service cell written directly, journaled as one action, without a full apply_action."""
        id_ = int(id_)
        if not 0 <= id_ < self.n_line:
            raise BackendError(f"no powerline {id_} (the grid has {self.n_line})")
        nl = self._n_pp_line
        kind, r = ("line", id_) if id_ < nl else ("trafo", id_ - nl)
        t = self._grid.world[kind]
        plan = []
        if t.cols["in_service"][r]:
            plan.append((kind, "in_service", np.array([r]), np.zeros(1, dtype=bool), False))
        self._n_apply += 1
        self._commit(plan, "apply_action", self._n_apply)
        self._topo_vect[self.line_or_pos_topo_vect[id_]] = -1
        self._topo_vect[self.line_ex_pos_topo_vect[id_]] = -1
        self._line_status[id_] = False

    def _update_topo_vect(self, writes):
        """:meth:`_refresh_topo_vect` for the elements of ``writes`` only (bus / in_service writes
        of loads, generators, storage units and branches; plan entries)."""
        tabs = self._grid.world.tables
        tv, row_of, n_sub = self._topo_vect, self._row_of_bus, self._n_sub
        done = set()
        for kind, _, rows, _, _ in writes:
            c = tabs[kind].cols
            for r in rows.tolist():
                if (kind, r) in done:
                    continue
                done.add((kind, r))
                on = c["in_service"][r]
                if kind in ("line", "trafo"):
                    i = r if kind == "line" else r + self._n_pp_line
                    a, b = ("from_bus", "to_bus") if kind == "line" else ("hv_bus", "lv_bus")
                    tv[self._or_pos[i]] = row_of[c[a][r]] // n_sub + 1 if on else -1
                    tv[self._ex_pos[i]] = row_of[c[b][r]] // n_sub + 1 if on else -1
                    self._line_status[i] = on
                else:
                    tv[self._elem_pos[kind][r]] = row_of[c["bus"][r]] // n_sub + 1 if on else -1

    def _refresh_topo_vect(self):
        """topo_vect, line status and shunt buses from the world's bus / in_service columns: every
        column gathered in one array (branch origins, extremities, loads, generators, storage
        units, shunts), in place into topo_vect's order."""
        w = self._grid.world
        tabs = [w[k] for k in ("line", "trafo", "load", "gen", "storage", "shunt")]
        line, trafo, load, gen, sto, sh = (t.cols for t in tabs)
        status = np.concatenate((line["in_service"], trafo["in_service"]))
        bus = np.concatenate((line["from_bus"], trafo["hv_bus"], line["to_bus"], trafo["lv_bus"],
                              load["bus"], gen["bus"], sto["bus"], sh["bus"]))
        on = np.concatenate((status, status, load["in_service"], gen["in_service"], sto["in_service"],
                             sh["in_service"]))
        local = self._row_of_bus[bus]
        local //= self._n_sub
        local += 1
        local[~on] = -1
        pos = self._topo_pos
        if pos is None:
            pos = self._topo_pos = np.concatenate((self.line_or_pos_topo_vect, self.line_ex_pos_topo_vect,
                                                   self.load_pos_topo_vect, self.gen_pos_topo_vect,
                                                   self.storage_pos_topo_vect)).astype(np.intp)
        n = len(pos)
        self._topo_vect[pos] = local[:n]
        self._shunt_bus[:] = local[n:]
        self._line_status[:] = status

    # --- power flow -----------------------------------------------------------------------------
    def runpf(self, is_dc: bool = False):
        # after a success, start from the last voltages (also across a topology change, as grid2op's
        # other backends do); after a failure, from the engine's initial guess
        init = "results" if self._grid._engine.converged and not self._diverged else None
        self._diverged = False
        try:
            # distributed slack is AC only: DC keeps the single slack (PandaPowerBackend's rundcpp)
            rep = self._grid.solve(algorithm="dc" if is_dc else "nr", init=init,
                                   distributed_slack=self._dist_slack and not is_dc)
            if not rep.converged and init is not None and not is_dc:  # the warm start did not do
                rep = self._grid.solve(init="auto")
        except (GridtapeError, ArithmeticError, ValueError, RuntimeError, np.linalg.LinAlgError) as e:
            return self._fail(BackendError(f"gridtape could not solve the grid: {e}"), e)
        self.comp_time += rep.runtime_ms / 1000.0
        if not rep.converged:
            return self._fail(DivergingPowerflow(
                f"Newton-Raphson did not converge in {rep.iterations} iterations (mismatch {rep.mismatch:.3g})"))
        mc = self._model_cache()
        if mc["islanded"]:
            return self._fail(IslandedGrid(mc["islanded"]))
        if not self._fetch(mc, is_dc):
            return self._fail(DivergingPowerflow("non-finite branch results"))
        return True, None

    def _fail(self, exc, cause=None):
        """No result survives a failed power flow: every result is NaN, topo_vect reads -1."""
        if cause is not None:
            exc.__cause__ = cause
        self.div_exception = exc
        for buf in self._buf.values():
            buf[:] = np.nan
        self._diverged = True
        return False, exc

    def _model_cache(self) -> dict:
        """Index arrays of the engine's current model, rebuilt when the engine changed its topology
        (a new ``topo`` object; the engine keeps the models of its last topologies, and so does
        this cache: a topology seen before finds its arrays).  Everything here is a function of
        the topology and of columns the backend never writes: the backend is the only writer of
        its world and never writes generator limits, slack flags or weights, scaling, load models
        or shunt ratings; what depends on those alone is computed once (:meth:`_static`).  The
        admittance values (shunt p/q writes) are read live by :meth:`_fetch`."""
        topo = self._grid._engine.topo
        mc = self._tc
        if mc is not None and mc["topo"] is topo:
            return mc
        mcs = self._tcs
        mc = mcs.pop(id(topo), None)  # the entry holds its topo: the id cannot have been reused
        if mc is None or mc["topo"] is not topo:
            mc = self._new_model_cache(topo)
            while len(mcs) >= MODEL_CACHE:
                mcs.pop(next(iter(mcs)))
        mcs[id(topo)] = mc  # most recently used last
        self._tc = mc
        return mc

    def _new_model_cache(self, topo) -> dict:
        st = self._static()
        if st["sel"] is None:  # a branch list not led by the lines and transformers
            return self._new_model_cache_numpy(topo)
        w = self._grid.world
        tabs = w.tables
        br = topo.branches
        act = topo.active
        sel = st["sel"]
        b2, kv2_on, amp_den, off2, eb, eon, suspect = model_arrays(
            topo.lookup, topo.base_kv, br.f, br.t, len(sel), tuple([topo.elem_bus_row[g] for g in INJ_GROUPS]),
            tuple([act[g] for g in INJ_GROUPS]), tuple([tabs[g].cols["in_service"] for g in INJ_GROUPS]),
            tabs["line"].cols["in_service"], tabs["trafo"].cols["in_service"], br.status)
        islanded = ""
        if suspect:  # the message (and the check itself) from the reference
            on = np.concatenate((tabs["line"].cols["in_service"], tabs["trafo"].cols["in_service"]))
            islanded = _islanded(w, topo, sel, on, eon.astype(bool))
        return self._model_cache_dict(topo, st, sel, True, b2, kv2_on, amp_den, off2, eb, eon, islanded)

    def _new_model_cache_numpy(self, topo) -> dict:
        """:meth:`_new_model_cache` in numpy (its reference, and the path of branch lists not
        led by the lines and transformers)."""
        st = self._static()
        w = self._grid.world
        br = topo.branches
        if st["sel"] is not None:  # lines then trafos lead the branch list
            sel = st["sel"]
            n = len(sel)
            b2 = np.concatenate((br.f[:n], br.t[:n])).astype(np.int64)  # int64: int32 fancy indexing is slow
        else:
            sel = np.concatenate([np.arange(*br.slices[k]) for k in ("line", "trafo") if k in br.slices]
                                 or [np.zeros(0, np.int64)])
            b2 = np.concatenate((br.f[sel], br.t[sel])).astype(np.int64)
        act = topo.active
        # the buses and activity of every one-bus element (INJ_GROUPS order) in one gather each
        eb = topo.lookup[np.concatenate([topo.elem_bus_row[g] for g in INJ_GROUPS])]
        eon = np.concatenate([act[g] for g in INJ_GROUPS])
        on = np.concatenate((w["line"].cols["in_service"], w["trafo"].cols["in_service"]))
        on2 = np.concatenate((on, on))
        kv2 = topo.base_kv[b2]
        prefix = st["sel"] is not None or bool(np.array_equal(sel, np.arange(len(sel))))
        return self._model_cache_dict(topo, st, sel, prefix, b2, kv2 * on2, kv2 * (SQRT3 / 1000.0), 1.0 - on2,
                                      eb, eon.astype(float), _islanded(w, topo, sel, on, eon))

    def _model_cache_dict(self, topo, st, sel, prefix, b2, kv2_on, amp_den, off2, eb, eon, islanded) -> dict:
        act = topo.active
        bus = {g: eb[sl] for g, sl in self._inj_slices.items()}
        mc = {"topo": topo, "sel": sel, "none": self._grid._engine._none,  # the model's NONE buses
              "prefix": prefix, "b2": b2, "kv2_on": kv2_on, "amp_den": amp_den, "off2": off2,
              "act": act, "bus": bus, "islanded": islanded, "zip": st["zip"], "eb": eb, "eon": eon,
              "shunt_k": st["shunt_k"] * act["shunt"] if st["shunt_k"] is not None else None,
              "gen": self._gen_split(topo, bus["gen"], act["gen"], False)}
        if self._dist_slack:  # AC solves share the slack (DC ones keep "gen")
            mc["gen_ds"] = self._gen_split(topo, bus["gen"], act["gen"], True)
        return mc

    def _gen_split(self, topo, gen_bus, on, distributed):
        """:func:`_gen_split`, kept by where the generators are: a topology that moves no
        generator (nor changes which of their buses are slack buses) reuses the last ones."""
        key = (gen_bus.tobytes(), on.tobytes(), (topo.bus_type[gen_bus] == M.REF).tobytes(), topo.nb, distributed)
        cache = self._gsplits
        out = cache.get(key)
        if out is None:
            if len(cache) >= 4 * MODEL_CACHE:
                cache.clear()
            out = cache[key] = _gen_split(self._grid.world, topo, gen_bus, on, self._static(), distributed)
        return out

    def _static(self) -> dict:
        """What the results need that no backend write changes (computed at the first solve)."""
        st = self._st
        if st is not None:
            return st
        w = self._grid.world
        load, sh, c = w["load"].cols, w["shunt"].cols, w["gen"].cols
        nl, nt = len(w["line"]), len(w["trafo"])
        sl = self._grid._engine.topo.branches.slices
        prefix = sl.get("line", (0, 0)) == (0, nl) and sl.get("trafo", (nl, nl)) == (nl, nl + nt)
        self._st = st = {
            "zip": any(load[k].any() for k in ("const_z_p_percent", "const_i_p_percent",
                                               "const_z_q_percent", "const_i_q_percent")),
            "shunt_k": sh["step"] / sh["vn_kv"] ** 2 if len(sh) else None,
            "sel": np.arange(nl + nt) if prefix else None,  # lines then trafos lead the branch list
            "qmin": np.nan_to_num(c["min_q_mvar"], nan=-M.Q_LIM_DEFAULT),
            "qmax": np.nan_to_num(c["max_q_mvar"], nan=M.Q_LIM_DEFAULT)}
        return st

    def _fetch(self, mc, is_dc) -> bool:
        """Every grid2op result from the engine's voltages and admittances (no DataFrames);
        False when a line result is not finite.  An AC flow on a branch list led by the lines and
        transformers takes one kernel pass (g2o.ac_results); :meth:`_fetch_numpy` is its
        reference and the path of DC flows."""
        if is_dc or not mc["prefix"]:
            self._fetch_numpy(mc, is_dc)
            return bool(np.isfinite(self._buf["line"]).all())
        eng = self._grid._engine
        sn = self._grid.world.sn_mva
        topo = eng.topo
        br = topo.branches
        pack = mc.get("pack")
        if pack is None:
            pack = mc["pack"] = LinePack(mc["none"], br.f, br.t, mc["b2"], mc["kv2_on"], mc["amp_den"], mc["off2"],
                                         self._buf["line"], topo.base_kv, mc["eb"], mc["eon"], self._buf["inj"])
        if pack.yff_obj is not br.yff:  # new admittance arrays (a shunt or branch parameter write)
            pack.admittances(br.yff, br.yft, br.ytf, br.ytt)
        V, vm, _, vkv, finite = ac_results(pack, eng.V, sn)
        ipack = mc.get("ipack")
        if ipack is None:
            act = mc["act"]
            ipack = mc["ipack"] = InjPack(self._buf["inj"], topo.nb, tuple(self._inj_sizes),
                                          mc["gen_ds"] if self._dist_slack else mc["gen"], act["gen"], act["load"],
                                          mc["bus"]["shunt"], mc["shunt_k"], not mc["zip"])
        tabs = self._grid.world.tables
        inj = eng.inj
        g, ld, sto, sh = tabs["gen"].cols, tabs["load"].cols, tabs["storage"].cols, tabs["shunt"].cols
        # generators, loads, storage and shunts in one kernel pass (_fetch_gens, _fetch_loads: the reference)
        inj_results(ipack, V, eng.indptr, eng.indices, eng.ydata, inj.qd, inj.pd, sn, g["p_mw"], g["scaling"],
                    ld["p_mw"], ld["q_mvar"], ld["scaling"], sto["p_mw"], sto["q_mvar"], sh["p_mw"], sh["q_mvar"],
                    vkv)
        if mc["zip"]:
            self._fetch_loads(mc, vm, vkv, False)
        return finite

    def _fetch_numpy(self, mc, is_dc):
        """:meth:`_fetch` in numpy."""
        eng = self._grid._engine
        sn = self._grid.world.sn_mva
        topo = eng.topo
        br = topo.branches
        V = eng.V.copy()
        V[mc["none"]] = 0.0  # unsupplied buses (NaN in the engine) read 0
        va = np.arctan2(V.imag, V.real)
        va *= 180.0 / np.pi
        if is_dc:  # set-point magnitudes, 1 p.u. elsewhere (as pandapower's rundcpp reports them)
            vm = np.where(np.isnan(eng.inj.vm_set), 1.0, eng.inj.vm_set)
            vm[mc["none"]] = 0.0
            with np.errstate(divide="ignore", invalid="ignore"):
                bb = np.where(br.status, 1.0 / br.x, 0.0) / br.ratio
            p = bb * np.deg2rad(va[br.f] - va[br.t] - br.shift_deg) * sn
            sf, st = p.astype(complex), -p.astype(complex)
            nb = topo.nb
            pbus = np.bincount(br.f, p, nb) - np.bincount(br.t, p, nb) + eng.ysh.real * sn
            qbus = np.zeros(nb)
        else:
            vm = np.abs(V)
            sf, st, _, _ = branch_flows(br.f, br.t, br.yff, br.yft, br.ytf, br.ytt, V)
            S = bus_injection(eng.indptr, eng.indices, eng.ydata, V)
            S *= sn
            pbus, qbus = S.real, S.imag
        n = len(mc["sel"])
        if mc["prefix"]:
            s = np.concatenate((sf[:n], st[:n]))
        else:
            s = np.concatenate((sf[mc["sel"]], st[mc["sel"]]))
        if not is_dc:
            s *= sn
        b2 = mc["b2"]
        vmb = vm[b2]
        L = self._buf["line"]  # rows p, q, v, a, theta; columns origin sides then extremity sides
        L[0] = s.real
        L[1] = s.imag
        L[2] = vmb * mc["kv2_on"]
        a = np.abs(s)
        a /= vmb * mc["amp_den"] + mc["off2"]  # a switched-off line carries 0 A
        L[3] = a
        L[4] = va[b2]
        vkv = vm * topo.base_kv
        I = self._buf["inj"]  # noqa: E741  (rows p, q, v, theta of every one-bus element)
        eb, eon = mc["eb"], mc["eon"]
        I[2] = vkv[eb] * eon
        I[3] = va[eb] * eon
        self._fetch_gens(mc, eng, pbus, qbus, is_dc)
        self._fetch_loads(mc, vm, vkv, is_dc)

    def _fetch_gens(self, mc, eng, pbus, qbus, is_dc):
        """Generator P and Q: set-point P, the slack's P and every Q from the bus balance
        (pandapower's pfsoln: a bus's Q shared among its generators by reactive range)."""
        G = self._grp["gen"]
        gs = mc["gen_ds"] if self._dist_slack and not is_dc else mc["gen"]
        inj = eng.inj
        c = self._grid.world["gen"].cols
        gb = gs["bus"]
        qtot = qbus[gb] + inj.qd[gb]
        q = gs["qmin"] + (qtot - gs["qmn"]) * gs["scale"]
        if gs["any_same"]:
            same = gs["same"]
            q[same] = qtot[same] / gs["cnt"][same]
        if gs["all"]:
            G[1] = q
        else:
            G[1] = 0.0
            G[1, gs["rows"]] = q
        p = c["p_mw"] * c["scaling"]
        p *= mc["act"]["gen"]
        for rb, at, slack, fixed, share in gs["ref"]:
            p_bus = pbus[rb] + inj.pd[rb]
            if len(at) == 1:
                p[at[0]] = p_bus
            elif len(slack) and share is None:  # no weights: the slack generators share equally
                p[slack] = (p_bus - p[fixed].sum()) / len(slack)
            elif len(slack):
                p[slack] += (p_bus - p[fixed].sum() - p[slack].sum()) * share
        G[0] = p
        if is_dc:
            G[1] = 0.0

    def _fetch_loads(self, mc, vm, vkv, is_dc):
        """P and Q of loads, storage units and shunts."""
        w = self._grid.world
        b, act = mc["bus"], mc["act"]
        D = self._grp["load"]
        c = w["load"].cols
        on = act["load"]
        sc = c["scaling"] * on
        if mc["zip"]:
            u = vm[b["load"]]
            zp, ip = c["const_z_p_percent"] / 100, c["const_i_p_percent"] / 100
            zq, iq = c["const_z_q_percent"] / 100, c["const_i_q_percent"] / 100
            D[0] = c["p_mw"] * sc * (1 - zp - ip + ip * u + zp * u * u)
            D[1] = c["q_mvar"] * sc * (1 - zq - iq + iq * u + zq * u * u)
        else:
            D[0] = c["p_mw"] * sc
            D[1] = c["q_mvar"] * sc
        if is_dc:
            D[1] = 0.0
        S_ = self._grp["storage"]
        if S_.shape[1]:  # set-points: grid2op checks that a detached unit asks for no power
            c = w["storage"].cols
            S_[0] = c["p_mw"]
            S_[1] = 0.0 if is_dc else c["q_mvar"]
        if mc["shunt_k"] is not None:
            H = self._grp["shunt"]
            c = w["shunt"].cols
            vb = vkv[b["shunt"]]
            k = vb * vb * mc["shunt_k"]  # vm^2 (bus kV / shunt kV)^2 steps
            H[0] = k * c["p_mw"]
            H[1] = k * c["q_mvar"]  # also in DC, as pandapower reports it

    def _results_state(self):
        return {k: v.copy() for k, v in self._buf.items()}, self._diverged

    # --- getters --------------------------------------------------------------------------------
    def generators_info(self):
        p, q, v = self._rows["gen"]
        return p.copy(), q.copy(), v.copy()

    def loads_info(self):
        p, q, v = self._rows["load"]
        return p.copy(), q.copy(), v.copy()

    def lines_or_info(self):
        p, q, v, a = self._rows["or"]
        return p.copy(), q.copy(), v.copy(), a.copy()

    def lines_ex_info(self):
        p, q, v, a = self._rows["ex"]
        return p.copy(), q.copy(), v.copy(), a.copy()

    def storages_info(self):
        p, q, v = self._rows["storage"]
        return p.copy(), q.copy(), v.copy()

    def shunt_info(self):
        p, q, v = self._rows["shunt"]
        return p.copy(), q.copy(), v.copy(), self._shunt_bus.copy()

    def get_theta(self):
        r = self._res
        return (r["theta_or"].copy(), r["theta_ex"].copy(), r["load_theta"].copy(), r["gen_theta"].copy(),
                r["storage_theta"].copy())

    def get_topo_vect(self):
        if self._diverged:
            return np.full(len(self._topo_vect), -1, dtype=dt_int)
        return self._topo_vect.copy()

    def get_line_status(self):
        if self._diverged:
            return np.zeros(len(self._line_status), dtype=bool)
        return self._line_status.copy()

    def get_line_flow(self):
        return self._res["a_or"].copy()

    def sub_from_bus_id(self, bus_id):
        return int(bus_id) % self._n_sub

    # --- lifecycle ------------------------------------------------------------------------------
    def reset(self, path=None, grid_filename=None):
        """Back to the grid as loaded: the columns apply_action wrote are restored (one "reset"
        transaction) and so are the results of the initial power flow."""
        w = self._grid.world
        plan = []
        for (kind, col), init in self._initial.items():
            t = w[kind]
            if len(t):
                _plan_diff(plan, t, kind, col, np.arange(len(t)), init)
        self._commit(plan, "reset")
        self._n_apply = 0
        self._refresh_topo_vect()
        bufs, self._diverged = self._initial_results
        for k, v in bufs.items():
            self._buf[k][:] = v
        self.comp_time = 0.0

    def copy(self):
        """A deep copy with its own world and engine (never journaled), keeping every option.
        The instance's attributes are deep-copied, not the instance: grid2op's pickling hook on
        the class cannot rebuild a backend loaded outside an environment."""
        skip = ("_grid", "_tc", "_tcs", "_gsplits", "_journal", "_res", "_grp", "_rows")
        out = type(self).__new__(type(self))
        out.__dict__.update(copy.deepcopy({k: v for k, v in self.__dict__.items() if k not in skip}))
        out._tc = out._journal = None
        out._tcs, out._gsplits = {}, {}
        out._bind_views()
        out._grid = PowerGrid(world=self._grid.world.copy(), max_iteration=self._max_iter, tolerance_mva=self._tol,
                              distributed_slack=self._dist_slack, journal=False)
        return out

    def close(self):
        """Flush and close the journal (if any) and drop the grid."""
        if self._grid is not None:
            self._grid.close()
        self._grid = None
        self._tc = None
        self._tcs, self._gsplits = {}, {}


# ------------------------------------------------------------------------------------------------
# planning: a plan is a list of (kind, column, ids, values) writes
# ------------------------------------------------------------------------------------------------
def _plan_values(plan, t, kind, col, store, divide=None, every=False):
    """The entries of a grid2op ValueStore marked changed whose value differs from the column
    (``every``: all entries marked changed).  Values of unchanged entries are meaningless; they
    are masked out, never read.  These values come from outside: they are written through the
    checked ``world.set_values``."""
    r = plan_column(store.changed, store.values, divide, t.cols[col], every)  # one kernel pass
    if r is not NotImplemented:
        if r is not None:
            plan.append((kind, col, r[0], r[1], True))
        return
    _plan_values_numpy(plan, t, kind, col, store, divide, every)


def _plan_values_numpy(plan, t, kind, col, store, divide=None, every=False):
    """:func:`_plan_values` in numpy (its reference, and the path of other dtypes)."""
    ch = store.changed
    k = np.count_nonzero(ch)  # (much cheaper than ch.any() on small arrays)
    if not k:
        return
    vals = store.values if divide is None else store.values / divide  # float32, as grid2op's backends
    if every:
        if k == len(ch):  # every row: the world writes the whole column without a lookup
            plan.append((kind, col, None, vals.astype(np.float64), True))
        else:
            rows = ch.nonzero()[0]
            plan.append((kind, col, rows, vals[rows].astype(np.float64), True))
        return
    d = t.cols[col] != vals
    d &= ch
    rows = d.nonzero()[0]
    if len(rows):
        plan.append((kind, col, rows, vals[rows].astype(np.float64), True))


def _plan_dict(plan, t, kind, col, d, dtype):
    """:func:`_plan_diff` of ``{row: value}`` (rows ascending, as the masks give them)."""
    item = t.cols[col].item  # Python scalars: cheaper to compare than numpy ones
    rows = [r for r, v in d.items() if item(r) != v]
    if rows:
        rows.sort()
        plan.append((kind, col, np.array(rows, dtype=np.int64), np.array([d[r] for r in rows], dtype=dtype), False))


def _plan_diff(plan, t, kind, col, rows, vals, checked=False):
    """Write ``vals`` at ``rows`` where they differ from the column.  Unchecked (the default) for
    values the backend derives itself (bus ids of its own busbars, in_service flags, the grid's
    initial values): ``world.write_rows``, no validation."""
    cur = t.cols[col][rows]
    vals = vals.astype(cur.dtype, copy=False)
    d = cur != vals
    if d.any():
        plan.append((kind, col, rows[d], vals[d], checked))


# ------------------------------------------------------------------------------------------------
# per-model helpers
# ------------------------------------------------------------------------------------------------
def _islanded(w, topo, sel, line_on, eon) -> str:
    """Why the grid is split ('' when it is not): an in-service element on a bus the slack does
    not reach (pandapower leaves such a bus at NaN and grid2op calls it a game over).  ``eon``:
    whether each element of INJ_GROUPS (in that order) is active in ``topo``."""
    ins = np.concatenate([w[k].cols["in_service"] for k in INJ_GROUPS])
    if (ins > eon).any():  # in service but not active
        start = 0
        for kind in INJ_GROUPS:
            n = len(w[kind])
            bad = ins[start:start + n] > eon[start:start + n]
            if bad.any():
                return f"{kind} {np.flatnonzero(bad).tolist()} on a bus not connected to the slack"
            start += n
    bad = line_on > topo.branches.status[sel]
    if bad.any():
        return f"powerline {np.flatnonzero(bad).tolist()} in an island without slack"
    return ""


def _gen_split(w, topo, gen_bus, on, st, distributed=False):
    """Constant parts of pfsoln's generator results (the grid's only generators are ``gen`` rows:
    ext_grids were turned into generators, xwards refused).

    Q: each bus's Q goes to its generators by reactive range, ``qmin + (Q - sum qmin) * range /
    sum range``, or equally when the ranges sum to nothing.  P: at each slack bus the bus balance
    minus the fixed generators, shared among the slack generators by slack weight.  With
    ``distributed`` slack, every generator with a non-zero weight counts as a slack one and its bus
    as a slack bus (pfsoln under ``runpp(distributed_slack=True)``): a weighted generator alone at
    its bus takes the bus balance, i.e. its set-point plus its share of the island's slack power."""
    c = w["gen"].cols
    rows = np.flatnonzero(on)
    gb = gen_bus[rows]
    nb = topo.nb
    qmin = st["qmin"][rows]
    qmax = st["qmax"][rows]
    qmn = np.bincount(gb, qmin, nb)[gb]
    qmx = np.bincount(gb, qmax, nb)[gb]
    is_slack = c["slack"]
    ref_bus = set(gb[topo.bus_type[gb] == M.REF].tolist())
    if distributed:
        is_slack = is_slack | (c["slack_weight"] != 0)
        ref_bus |= set(gb[is_slack[rows]].tolist())
    ref = []
    for rb in sorted(ref_bus):
        at = rows[gb == rb]
        slack = at[is_slack[at]]
        fixed = at[~is_slack[at]]
        wt = c["slack_weight"][slack]
        ref.append((rb, at, slack, fixed, wt / wt.sum() if wt.sum() > 0 else None))
    same = (qmn == qmx) | (len(rows) == 1)  # pfsoln leaves a lone generator's Q unsplit
    return {"rows": rows, "all": len(rows) == len(on), "bus": gb, "qmin": qmin, "qmn": qmn,
            "scale": (qmax - qmin) / (qmx - qmn + np.finfo(float).eps),
            "same": same, "any_same": bool(same.any()),
            "cnt": np.bincount(gb, minlength=nb)[gb].astype(float), "ref": ref,
            "slack_table": slack_table(ref)}  # ``ref`` as arrays, for the results kernel
