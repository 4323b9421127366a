"""gridtape as a grid2op backend.

``GridtapeBackend`` plugs gridtape's engine into grid2op (``grid2op.make(env, backend=GridtapeBackend())``):

- the grid is the environment's pandapower JSON, read into a :class:`~gridtape.world.World`; each
  substation gets ``n_busbar_per_sub`` buses (the extra busbars are buses ``n_sub .. k*n_sub-1``,
  as PandaPowerBackend numbers them);
- ``apply_action`` turns grid2op's backend action into world writes (injections, storage power,
  shunts, busbar moves, disconnections) that are planned first and committed in one place
  (:meth:`GridtapeBackend._commit`): one journal transaction per call when a journal is given;
- an injection-only step writes injection columns only, so the next solve is incremental; a
  topology step writes ``bus`` / ``in_service`` columns and the engine rebuilds its model;
- ``runpf`` solves and reads bus voltages and branch flows straight from the engine's arrays
  (no DataFrame per step).  A diverged or islanded grid returns ``(False, exc)`` with a grid2op
  ``DivergingPowerflow`` / ``IslandedGrid`` and leaves every result at NaN.

Units are grid2op's: MW, MVAr, kV, A, degrees.
"""
from __future__ import annotations

import contextlib
import copy
import inspect
import json
import os

import numpy as np
from grid2op.Backend import Backend
from grid2op.dtypes import dt_float, dt_int
from grid2op.Exceptions import BackendError, DivergingPowerflow, IslandedGrid

from gridtape.errors import DependencyError, GridtapeError
from gridtape.grid import PowerGrid
from gridtape.solver_cy import model as M
from gridtape.solver_cy.flows import branch_flows
from gridtape.solver_cy.results import _gen_pq
from gridtape.world.io_json import read_pandapower_json

SQRT3 = np.sqrt(3.0)

#: (kind, column) pairs apply_action may write; reset restores exactly these
WRITTEN = (("load", "p_mw"), ("load", "q_mvar"), ("load", "bus"), ("load", "in_service"),
           ("gen", "p_mw"), ("gen", "vm_pu"), ("gen", "bus"), ("gen", "in_service"),
           ("storage", "p_mw"), ("storage", "bus"), ("storage", "in_service"),
           ("shunt", "p_mw"), ("shunt", "q_mvar"), ("shunt", "bus"), ("shunt", "in_service"),
           ("line", "from_bus"), ("line", "to_bus"), ("line", "in_service"),
           ("trafo", "hv_bus"), ("trafo", "lv_bus"), ("trafo", "in_service"))


# ------------------------------------------------------------------------------------------------
# reading a grid2op grid
# ------------------------------------------------------------------------------------------------
def read_grid2op_json(path):
    """The World of a grid2op environment's ``grid.json``.

    grid2op's grids were written by pandapower 2 and carry ``tap_side = false`` on transformers
    without a tap changer; that reads as "no tap side" (None), which is what pandapower does with it.
    An ext_grid is turned into a slack generator when no generator is a slack (grid2op models the
    slack as a generator)."""
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
    _ext_grid_to_slack_gen(world)
    return world


def _ext_grid_to_slack_gen(world):
    eg, gen = world["ext_grid"], world["gen"]
    if not len(eg) or (len(gen) and gen.cols["slack"].any()):
        return
    on = eg.cols["in_service"]
    world.add("gen", {"bus": eg.cols["bus"][on], "p_mw": np.zeros(int(on.sum())), "vm_pu": eg.cols["vm_pu"][on],
                      "slack": np.ones(int(on.sum()), bool), "slack_weight": np.ones(int(on.sum()))})
    world.remove("ext_grid", eg.ids.copy())


def _names(tab, fmt):
    """Element names as PandaPowerBackend makes them: the name column, or ``fmt`` per row."""
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
    max_iter=10, tol=1e-8, journal=None)``.  ``journal`` is handed to ``PowerGrid(journal=...)``
    so that every ``apply_action`` becomes one transaction ("apply_action <n>"); it is off by
    default, and copies of the backend (forecasts, ``obs.simulate``) are never journaled.
    """

    shunts_data_available = True

    def __init__(self, detailed_infos_for_cascading_failures: bool = False, can_be_copied: bool = True, *,
                 max_iter: int = 10, tol: float = 1e-8, journal=None):
        Backend.__init__(self, detailed_infos_for_cascading_failures=detailed_infos_for_cascading_failures,
                         can_be_copied=can_be_copied, max_iter=max_iter, tol=tol)
        self.can_output_theta = True
        self._max_iter = int(max_iter)
        self._tol = float(tol)
        self._journal = journal  # deliberately not in _my_kwargs: re-created backends are not journaled
        self._n_apply = 0
        self._tc = None  # per-topology cache (see _topology_cache)
        self._diverged = False
        self.div_exception = None

    # --- loading -------------------------------------------------------------------------------
    def load_grid(self, path, filename=None):
        self.can_handle_more_than_2_busbar()
        self.can_handle_detachment()
        world = read_grid2op_json(self.make_complete_path(path, filename))
        n_sub = len(world["bus"])
        self._n_sub = n_sub
        self._add_busbars(world, n_sub)
        self._describe(world, n_sub)
        kwargs = {} if self._journal is None else {"journal": self._journal}
        if kwargs and "journal" not in inspect.signature(PowerGrid).parameters:
            raise DependencyError("this gridtape has no journal yet: PowerGrid takes no journal keyword")
        self._grid = PowerGrid(world=world, max_iteration=self._max_iter, tolerance_mva=self._tol, **kwargs)
        self._initial = {(k, c): world[k].cols[c].copy() for k, c in WRITTEN}
        self._alloc_results()
        self._refresh_topo_vect()
        ok, _ = self.runpf(is_dc=False)
        if not ok:
            self.runpf(is_dc=True)
        self._initial_results = self._results_state()

    def _add_busbars(self, world, n_sub):
        """Busbars 2..n of every substation become buses after the original ones; all buses are in
        service (an empty busbar is simply unsupplied) so that moving elements never writes buses."""
        bus = world["bus"]
        if not bus.cols["in_service"].all():
            world.set_values("bus", bus.ids, "in_service", True)
        vn, names = bus.cols["vn_kv"].copy(), bus.cols["name"].copy()
        for _ in range(self.n_busbar_per_sub - 1):
            world.add("bus", {"vn_kv": vn, "name": names, "in_service": np.ones(n_sub, bool)})
        self._bus_ids = world["bus"].ids.copy()
        row_of = np.full(int(self._bus_ids.max()) + 1, -1, dtype=np.int64)
        row_of[self._bus_ids] = np.arange(len(self._bus_ids))
        self._row_of_bus = row_of

    def _describe(self, world, n_sub):
        """Fill grid2op's GridObjects attributes in PandaPowerBackend's element order."""
        line, trafo, gen, load, sto, sh = (world[k] for k in ("line", "trafo", "gen", "load", "storage", "shunt"))
        row = self._row_of_bus
        nl = len(line)
        self._n_pp_line = nl
        self.n_sub = n_sub
        self.name_sub = np.array([f"sub_{i}" for i in world["bus"].ids[:n_sub]])
        self.n_line = nl + len(trafo)
        fb, tb = line.cols["from_bus"], line.cols["to_bus"]
        hv, lv = trafo.cols["hv_bus"], trafo.cols["lv_bus"]
        ln = _names(line, lambda i: f"{fb[i]}_{tb[i]}_{i}")
        tn = _names(trafo, lambda i: "{}_{}_{}".format(*sorted((str(hv[i]), str(lv[i]))), i + nl))
        self.name_line = np.concatenate([ln, tn]) if len(tn) else ln
        self.n_gen, self.n_load = len(gen), len(load)
        self.name_gen = _names(gen, lambda i: f"gen_{gen.cols['bus'][i]}_{i}")
        self.name_load = _names(load, lambda i: f"load_{load.cols['bus'][i]}_{i}")
        self.n_storage = len(sto)
        if self.n_storage == 0:
            self.set_no_storage()
        else:
            self.name_storage = _names(sto, lambda i: f"storage_{sto.cols['bus'][i]}_{i}")
        or_sub = row[np.concatenate([fb, hv])].astype(dt_int)
        ex_sub = row[np.concatenate([tb, lv])].astype(dt_int)
        gen_sub = row[gen.cols["bus"]].astype(dt_int)
        load_sub = row[load.cols["bus"]].astype(dt_int)
        sto_sub = row[sto.cols["bus"]].astype(dt_int)
        used = np.zeros(n_sub, dtype=dt_int)

        def place(subs, pos=None):
            pos = np.zeros(len(subs), dtype=dt_int) if pos is None else pos
            for i, s in enumerate(subs.tolist()):
                pos[i] = used[s]
                used[s] += 1
            return pos

        or_pos = np.zeros(self.n_line, dtype=dt_int)
        ex_pos = np.zeros(self.n_line, dtype=dt_int)
        for i in range(self.n_line):  # origin then extremity of each branch, as PandaPowerBackend
            or_pos[i] = used[or_sub[i]]
            used[or_sub[i]] += 1
            ex_pos[i] = used[ex_sub[i]]
            used[ex_sub[i]] += 1
        self.line_or_to_subid, self.line_ex_to_subid = or_sub, ex_sub
        self.line_or_to_sub_pos, self.line_ex_to_sub_pos = or_pos, ex_pos
        self.gen_to_subid, self.gen_to_sub_pos = gen_sub, place(gen_sub)
        self.load_to_subid, self.load_to_sub_pos = load_sub, place(load_sub)
        if self.n_storage:
            self.storage_to_subid, self.storage_to_sub_pos = sto_sub, place(sto_sub)
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
        self._gen_kv = kv[gen_sub].astype(np.float64)
        self._compute_pos_big_topo()

    def _alloc_results(self):
        cls = self  # during load_grid the grid2op attributes are still on the instance
        nan = lambda n: np.full(n, np.nan, dtype=dt_float)  # noqa: E731
        nl, ng, nd, ns, nsh = cls.n_line, cls.n_gen, cls.n_load, cls.n_storage, cls.n_shunt
        self._res = {k: nan(nl) for k in ("p_or", "q_or", "v_or", "a_or", "p_ex", "q_ex", "v_ex", "a_ex",
                                          "theta_or", "theta_ex")}
        self._res.update({k: nan(ng) for k in ("prod_p", "prod_q", "prod_v", "gen_theta")})
        self._res.update({k: nan(nd) for k in ("load_p", "load_q", "load_v", "load_theta")})
        self._res.update({k: nan(ns) for k in ("storage_p", "storage_q", "storage_v", "storage_theta")})
        self._res.update({k: nan(nsh) for k in ("shunt_p", "shunt_q", "shunt_v")})
        self._topo_vect = np.full(cls.dim_topo, -1, dtype=dt_int)
        self._shunt_bus = np.full(nsh, -1, dtype=dt_int)
        self._line_status = np.zeros(nl, dtype=bool)

    # --- actions --------------------------------------------------------------------------------
    def apply_action(self, backend_action) -> None:
        """Plan the world writes of one grid2op backend action, then commit them together."""
        cls = type(self)
        active_bus, (prod_p, prod_v, load_p, load_q, storage), topo, shunts = backend_action()
        w = self._grid.world
        plan = []
        _plan_values(plan, w, "gen", "p_mw", prod_p)
        _plan_values(plan, w, "gen", "vm_pu", prod_v, self._gen_kv)
        _plan_values(plan, w, "load", "p_mw", load_p)
        _plan_values(plan, w, "load", "q_mvar", load_q)
        if cls.n_storage:
            _plan_values(plan, w, "storage", "p_mw", storage)
        moved = False
        if shunts is not None:
            sh_p, sh_q, sh_bus = shunts
            _plan_values(plan, w, "shunt", "p_mw", sh_p)
            _plan_values(plan, w, "shunt", "q_mvar", sh_q)
            moved |= self._plan_elements(plan, w, "shunt", sh_bus.changed, sh_bus.values, cls.shunt_to_subid)
        ch = topo.changed
        if ch.any():
            vals = topo.values
            for kind, pos, subs in (("load", cls.load_pos_topo_vect, cls.load_to_subid),
                                    ("gen", cls.gen_pos_topo_vect, cls.gen_to_subid),
                                    ("storage", cls.storage_pos_topo_vect, cls.storage_to_subid)):
                if len(pos):
                    moved |= self._plan_elements(plan, w, kind, ch[pos], vals[pos], subs)
            moved |= self._plan_branches(plan, w, ch, vals)
        self._n_apply += 1
        self._commit(plan, f"apply_action {self._n_apply}")
        if moved:
            self._refresh_topo_vect()

    def _plan_elements(self, plan, w, kind, changed, local, subs) -> bool:
        """Busbar moves (local bus >= 1) and disconnections (-1) of one-bus elements."""
        if not changed.any():
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
        """Busbar moves of branch ends; a branch with an end set to -1 is switched off, a branch
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

    def _commit(self, plan, message):
        """The one place where the backend writes the world (one journal transaction)."""
        if not plan:
            return
        w = self._grid.world
        with self._transaction(message):
            for kind, col, ids, vals in plan:
                w.set_values(kind, ids, col, vals)

    def _transaction(self, message):
        if self._journal is None:
            return contextlib.nullcontext()
        return self._grid.edit(message=message)

    def _refresh_topo_vect(self):
        """topo_vect and line status from the world's bus / in_service columns."""
        cls = self  # instance or class attributes: also called from load_grid
        w = self._grid.world
        n_sub, row = self._n_sub, self._row_of_bus
        tv = self._topo_vect

        def local(tab, col):
            return (row[tab.cols[col]] // n_sub + 1).astype(dt_int)

        line, trafo = w["line"], w["trafo"]
        status = np.concatenate([line.cols["in_service"], trafo.cols["in_service"]])
        for pos, bus in ((cls.line_or_pos_topo_vect, np.concatenate([local(line, "from_bus"), local(trafo, "hv_bus")])),
                         (cls.line_ex_pos_topo_vect, np.concatenate([local(line, "to_bus"), local(trafo, "lv_bus")]))):
            tv[pos] = np.where(status, bus, -1)
        for kind, pos in (("load", cls.load_pos_topo_vect), ("gen", cls.gen_pos_topo_vect),
                          ("storage", cls.storage_pos_topo_vect)):
            t = w[kind]
            if len(t):
                tv[pos] = np.where(t.cols["in_service"], local(t, "bus"), -1)
        sh = w["shunt"]
        if len(sh):
            self._shunt_bus[:] = np.where(sh.cols["in_service"], local(sh, "bus"), -1)
        self._line_status[:] = status

    # --- power flow -----------------------------------------------------------------------------
    def runpf(self, is_dc: bool = False):
        self._diverged = False
        try:
            rep = self._grid.solve(algorithm="dc" if is_dc else "nr")
        except (GridtapeError, ArithmeticError, ValueError, RuntimeError, np.linalg.LinAlgError) as e:
            return self._fail(BackendError(f"gridtape could not solve the grid: {e}"), e)
        self.comp_time += rep.runtime_ms / 1000.0
        if not rep.converged:
            return self._fail(DivergingPowerflow(
                f"Newton-Raphson did not converge in {rep.iterations} iterations (mismatch {rep.mismatch:.3g})"))
        tc = self._topology_cache()
        if tc["islanded"]:
            return self._fail(IslandedGrid(tc["islanded"]))
        self._fetch(tc, is_dc)
        if not np.isfinite(self._res["p_or"]).all():
            return self._fail(DivergingPowerflow("non-finite branch flows"))
        return True, None

    def _fail(self, exc, cause=None):
        if cause is not None:
            exc.__cause__ = cause
        self.div_exception = exc
        for arr in self._res.values():
            arr[:] = np.nan
        self._diverged = True
        return False, exc

    def _topology_cache(self) -> dict:
        """Index arrays of the engine's current model (rebuilt when the topology changes)."""
        eng = self._grid._engine
        topo = eng.topo
        tc = self._tc
        if tc is not None and tc["topo"] is topo:
            return tc
        w = self._grid.world
        br = topo.branches
        idx = [np.arange(*br.slices[k]) for k in ("line", "trafo") if k in br.slices]
        sel = np.concatenate(idx) if idx else np.zeros(0, np.int64)
        b = {k: topo.lookup[topo.elem_bus_row[k]] for k in ("load", "gen", "storage", "shunt")}
        islanded = ""
        for kind in ("load", "gen", "storage", "shunt"):
            bad = w[kind].cols["in_service"] & ~topo.active[kind]
            if bad.any():
                islanded = f"{kind} {np.flatnonzero(bad).tolist()} on a bus not connected to the slack"
                break
        line_on = np.concatenate([w["line"].cols["in_service"], w["trafo"].cols["in_service"]])
        if not islanded and (line_on & ~br.status[sel]).any():
            islanded = f"line {np.flatnonzero(line_on & ~br.status[sel]).tolist()} in an island without slack"
        load = w["load"].cols
        zip_load = any(load[c].any() for c in ("const_z_p_percent", "const_i_p_percent",
                                               "const_z_q_percent", "const_i_q_percent"))
        gsel = None  # generator rows of the engine's generator table, filled per solve
        self._tc = tc = {"topo": topo, "sel": sel, "contiguous": bool(np.array_equal(sel, np.arange(len(sel)))),
                         "none": np.flatnonzero(topo.bus_type == M.NONE), "bus": b, "islanded": islanded,
                         "line_on": line_on, "zip": zip_load, "gsel": gsel,
                         "act": {k: topo.active[k] for k in ("load", "gen", "storage", "shunt")}}
        return tc

    def _fetch(self, tc, is_dc):
        """Every grid2op result array from the engine's voltages (no DataFrames)."""
        eng = self._grid._engine
        w = self._grid.world
        res = self._res
        sn = w.sn_mva
        topo = eng.topo
        V = eng.V.copy()
        V[tc["none"]] = 0.0
        va = np.angle(V, deg=True)
        if is_dc:
            vm = np.where(np.isnan(eng.inj.vm_set), 1.0, eng.inj.vm_set)
            vm[tc["none"]] = 0.0
        else:
            vm = np.abs(V)
        vkv = vm * topo.base_kv
        br = topo.branches
        f, t = br.f, br.t
        if is_dc:
            with np.errstate(divide="ignore", invalid="ignore"):
                bb = np.where(br.status, 1.0 / br.x, 0.0) / br.ratio
            p = bb * np.deg2rad(va[f] - va[t] - br.shift_deg) * sn
            sf, st = p.astype(complex), -p.astype(complex)
        else:
            sf, st, _, _ = branch_flows(f, t, br.yff, br.yft, br.ytf, br.ytt, V)
            sf *= sn
            st *= sn
        if not tc["contiguous"]:
            sel = tc["sel"]
            sf, st, f, t = sf[sel], st[sel], f[sel], t[sel]
        elif len(sf) != len(tc["sel"]):
            n = len(tc["sel"])
            sf, st, f, t = sf[:n], st[:n], f[:n], t[:n]
        on = tc["line_on"]
        for side, s, b in (("or", sf, f), ("ex", st, t)):
            v = np.where(on, vkv[b], 0.0)
            res["p_" + side][:] = s.real
            res["q_" + side][:] = 0.0 if is_dc else s.imag
            res["v_" + side][:] = v
            with np.errstate(divide="ignore", invalid="ignore"):
                res["a_" + side][:] = np.where(v > 0, np.abs(s) / (SQRT3 * v) * 1000.0, 0.0)
            res["theta_" + side][:] = va[b]
        self._fetch_injections(tc, w, vm, va, vkv, is_dc)

    def _fetch_injections(self, tc, w, vm, va, vkv, is_dc):
        res = self._res
        b, act = tc["bus"], tc["act"]
        # generators (pfsoln: set-point P, slack P and every Q from the bus balance)
        g = self._grid._engine.inj.gens
        pg, qg = _gen_pq(self._grid._engine)
        m = g["kind"] == 1
        rows = g["row"][m]
        for key, vals in (("prod_p", pg[m]), ("prod_q", qg[m])):
            res[key][:] = 0.0
            res[key][rows] = vals
        if is_dc:
            res["prod_q"][:] = 0.0
        on = act["gen"]
        res["prod_v"][:] = np.where(on, vkv[b["gen"]], 0.0)
        res["gen_theta"][:] = np.where(on, va[b["gen"]], 0.0)
        # loads
        c = w["load"].cols
        on = act["load"]
        p = c["p_mw"] * c["scaling"] * on
        q = c["q_mvar"] * c["scaling"] * on
        if tc["zip"]:
            u = vm[b["load"]]
            zp, ip = c["const_z_p_percent"] / 100, c["const_i_p_percent"] / 100
            zq, iq = c["const_z_q_percent"] / 100, c["const_i_q_percent"] / 100
            p = p * (1 - zp - ip + ip * u + zp * u * u)
            q = q * (1 - zq - iq + iq * u + zq * u * u)
        res["load_p"][:] = p
        res["load_q"][:] = 0.0 if is_dc else q
        res["load_v"][:] = np.where(on, vkv[b["load"]], 0.0)
        res["load_theta"][:] = np.where(on, va[b["load"]], 0.0)
        # storage units: their set-points (grid2op checks a detached unit asks for no power)
        if len(w["storage"]):
            c = w["storage"].cols
            on = act["storage"]
            res["storage_p"][:] = c["p_mw"]
            res["storage_q"][:] = 0.0 if is_dc else c["q_mvar"]
            res["storage_v"][:] = np.where(on, vkv[b["storage"]], 0.0)
            res["storage_theta"][:] = np.where(on, va[b["storage"]], 0.0)
        # shunts
        if len(w["shunt"]):
            c = w["shunt"].cols
            on = act["shunt"]
            bs = b["shunt"]
            k = vm[bs] ** 2 * (self._grid._engine.topo.base_kv[bs] / c["vn_kv"]) ** 2 * c["step"] * on
            res["shunt_p"][:] = k * c["p_mw"]
            res["shunt_q"][:] = 0.0 if is_dc else k * c["q_mvar"]
            res["shunt_v"][:] = np.where(on, vkv[bs], 0.0)

    def _results_state(self):
        return ({k: v.copy() for k, v in self._res.items()}, self._diverged)

    # --- getters --------------------------------------------------------------------------------
    def _get(self, *keys):
        r = self._res
        return tuple(r[k].copy() for k in keys)

    def generators_info(self):
        return self._get("prod_p", "prod_q", "prod_v")

    def loads_info(self):
        return self._get("load_p", "load_q", "load_v")

    def lines_or_info(self):
        return self._get("p_or", "q_or", "v_or", "a_or")

    def lines_ex_info(self):
        return self._get("p_ex", "q_ex", "v_ex", "a_ex")

    def storages_info(self):
        return self._get("storage_p", "storage_q", "storage_v")

    def shunt_info(self):
        p, q, v = self._get("shunt_p", "shunt_q", "shunt_v")
        return p, q, v, self._shunt_bus.copy()

    def get_theta(self):
        return self._get("theta_or", "theta_ex", "load_theta", "gen_theta", "storage_theta")

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
        transaction) and the results of the initial power flow are restored."""
        w = self._grid.world
        plan = []
        for (kind, col), init in self._initial.items():
            t = w[kind]
            if len(t):
                _plan_diff(plan, t, kind, col, np.arange(len(t)), init)
        self._commit(plan, "reset")
        self._n_apply = 0
        self._refresh_topo_vect()
        res, self._diverged = self._initial_results
        for k, v in res.items():
            self._res[k][:] = v
        self.comp_time = 0.0

    def copy(self):
        """A deep copy with its own world and engine (never journaled)."""
        grid, tc, journal = self._grid, self._tc, self._journal
        self._grid, self._tc, self._journal = None, None, None
        try:
            res = copy.deepcopy(self)
        finally:
            self._grid, self._tc, self._journal = grid, tc, journal
        res._grid = PowerGrid(world=grid.world.copy(), max_iteration=self._max_iter, tolerance_mva=self._tol)
        return res

    def close(self):
        self._grid = None
        self._tc = None

    @property
    def grid(self) -> PowerGrid:
        """The gridtape PowerGrid this backend drives."""
        return self._grid


# ------------------------------------------------------------------------------------------------
# planning helpers: a plan is a list of (kind, column, ids, values) writes
# ------------------------------------------------------------------------------------------------
def _plan_values(plan, w, kind, col, store, divide=None):
    """The changed entries of a grid2op ValueStore that differ from the world's column."""
    ch = store.changed
    if not ch.any():
        return
    rows = np.flatnonzero(ch)
    vals = store.values[rows].astype(np.float64)
    if divide is not None:
        vals = vals / divide[rows]
    _plan_diff(plan, w[kind], kind, col, rows, vals)


def _plan_diff(plan, t, kind, col, rows, vals):
    cur = t.cols[col][rows]
    d = cur != vals
    if d.any():
        plan.append((kind, col, t.ids[rows[d]], vals[d]))
