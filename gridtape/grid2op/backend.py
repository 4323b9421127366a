"""``GridtapeBackend``: the grid2op Backend API over the adapter's rooms (reader, planner, commit,
topology, result copy)."""
from __future__ import annotations

import copy

import numpy as np
from grid2op.Backend import Backend
from grid2op.dtypes import dt_int
from grid2op.Exceptions import BackendError, DivergingPowerflow, IslandedGrid

from gridtape.errors import GridtapeError
from gridtape.grid import PowerGrid

from .buffers import Buffers
from .commit import commit
from .planner import Planner, plan_reset
from .reader import add_busbars, describe, gen_kv, journal_arg, read_grid2op_json
from .results import ResultCopy
from .topology import Layout, TopoVect

#: (kind, column) pairs apply_action may write; reset restores exactly these
WRITTEN = (("load", "p_mw"), ("load", "q_mvar"), ("load", "bus"), ("load", "in_service"),
           ("gen", "p_mw"), ("gen", "vm_pu"), ("gen", "bus"), ("gen", "in_service"),
           ("storage", "p_mw"), ("storage", "bus"), ("storage", "in_service"),
           ("shunt", "p_mw"), ("shunt", "q_mvar"), ("shunt", "bus"), ("shunt", "in_service"),
           ("line", "from_bus"), ("line", "to_bus"), ("line", "in_service"),
           ("trafo", "hv_bus"), ("trafo", "lv_bus"), ("trafo", "in_service"))


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
    #: the result copy's class (tests put their reference copy here)
    _result_copy = ResultCopy

    def __init__(self, detailed_infos_for_cascading_failures: bool = False, can_be_copied: bool = True, *,
                 dist_slack: bool = False, max_iter: int = 10, tol: float = 1e-8, journal=None):
        Backend.__init__(self, detailed_infos_for_cascading_failures=detailed_infos_for_cascading_failures,
                         can_be_copied=can_be_copied, dist_slack=bool(dist_slack), max_iter=max_iter, tol=tol)
        self.can_output_theta = True
        self._dist_slack = bool(dist_slack)
        self._max_iter = int(max_iter)
        self._tol = float(tol)
        self._journal = journal  # deliberately not in _my_kwargs: re-created backends are not journaled
        self._grid = None
        self._n_apply = 0
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
        n_sub, bus_ids, row_of_bus = add_busbars(world, self.n_busbar_per_sub)
        self._n_sub = n_sub
        describe(self, world, n_sub, row_of_bus)
        self._layout = Layout(self, n_sub, len(world["line"]), bus_ids, row_of_bus)
        self._planner = Planner(self._layout, gen_kv(world, self.gen_to_subid))
        self._topo = TopoVect(self._layout)
        self._grid = PowerGrid(world=world, max_iteration=self._max_iter, tolerance_mva=self._tol,
                               distributed_slack=self._dist_slack, journal=journal_arg(self._journal),
                               author="grid2op")
        self._initial = {(k, c): world[k].cols[c].copy() for k, c in WRITTEN}
        self._out = Buffers(self.n_line, (self.n_gen, self.n_load, self.n_storage, self.n_shunt))
        self._copy = self._result_copy(self._out)
        self._bind_rows()
        self._topo.refresh(world)
        if not self.runpf(is_dc=False)[0]:
            self.runpf(is_dc=True)
        self._initial_results = self._out.state(), self._diverged

    def _bind_rows(self):
        self._rows, self._res = self._out.rows, self._out.res

    # --- actions -------------------------------------------------------------------------------
    def apply_action(self, backend_action) -> None:
        """Plan the world writes of one grid2op backend action, then commit them together."""
        w = self._grid.world
        # unjournaled, the set-points that move every step are written without comparing first;
        # journaled, only changes are recorded
        plan, n_inj, small, shunt_moved = self._planner.action(backend_action, w, self._grid.journal is None)
        self._n_apply += 1
        self._commit(plan, "apply_action", self._n_apply)
        if len(plan) > n_inj:  # a bus or in_service column was written
            if small and not shunt_moved:
                self._topo.update(w, plan[n_inj:])
            else:
                self._topo.refresh(w)

    def _commit(self, plan, message, n=None):
        """Write ``plan`` (commit.py) as one transaction ``message`` (``message n``)."""
        commit(self._grid, plan, message if n is None else f"{message} {n}")

    def _disconnect_line(self, id_):
        """Switch powerline ``id_`` off (grid2op's overflow protections call this): its
        in_service cell written directly, journaled as one action, without a full apply_action."""
        id_ = int(id_)
        if not 0 <= id_ < self.n_line:
            raise BackendError(f"no powerline {id_} (the grid has {self.n_line})")
        self._n_apply += 1
        self._commit(self._planner.line_off(self._grid.world, id_), "apply_action", self._n_apply)
        self._topo.line_off(id_)

    # --- power flow ----------------------------------------------------------------------------
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
            if rep.converged:
                mc = self._copy.model(self._grid)
        except (GridtapeError, ArithmeticError, ValueError, RuntimeError, np.linalg.LinAlgError) as e:
            return self._fail(BackendError(f"gridtape could not solve the grid: {e}"), e)
        self.comp_time += rep.runtime_ms / 1000.0
        if not rep.converged:
            return self._fail(DivergingPowerflow(
                f"Newton-Raphson did not converge in {rep.iterations} iterations (mismatch {rep.mismatch:.3g})"))
        if mc["islanded"]:
            return self._fail(IslandedGrid(mc["islanded"]))
        if not self._copy.fetch(self._grid, mc, is_dc):
            return self._fail(DivergingPowerflow("non-finite branch results"))
        return True, None

    def _fail(self, exc, cause=None):
        """No result survives a failed power flow: every result is NaN, topo_vect reads -1."""
        if cause is not None:
            exc.__cause__ = cause
        self.div_exception = exc
        self._out.nan()
        self._diverged = True
        return False, exc

    # --- getters -------------------------------------------------------------------------------
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
        return p.copy(), q.copy(), v.copy(), self._topo.shunt_bus.copy()

    def get_theta(self):
        r = self._res
        return (r["theta_or"].copy(), r["theta_ex"].copy(), r["load_theta"].copy(), r["gen_theta"].copy(),
                r["storage_theta"].copy())

    def get_topo_vect(self):
        if self._diverged:
            return np.full(len(self._topo.vect), -1, dtype=dt_int)
        return self._topo.vect.copy()

    def get_line_status(self):
        if self._diverged:
            return np.zeros(len(self._topo.line_status), dtype=bool)
        return self._topo.line_status.copy()

    def get_line_flow(self):
        return self._res["a_or"].copy()

    def sub_from_bus_id(self, bus_id):
        return int(bus_id) % self._n_sub

    # --- lifecycle -----------------------------------------------------------------------------
    def reset(self, path=None, grid_filename=None):
        """Back to the grid as loaded: the columns apply_action wrote are restored (one "reset"
        transaction) and so are the results of the initial power flow."""
        w = self._grid.world
        self._commit(plan_reset(w, self._initial), "reset")
        self._n_apply = 0
        self._topo.refresh(w)
        bufs, self._diverged = self._initial_results
        self._out.restore(bufs)
        self.comp_time = 0.0

    def copy(self):
        """A deep copy with its own world and engine (never journaled), keeping every option.
        The instance's attributes are copied, not the instance: grid2op's pickling hook on the
        class cannot rebuild a backend loaded outside an environment."""
        skip = ("_grid", "_journal", "_out", "_copy", "_topo", "_rows", "_res", "_layout", "_planner",
                "_initial", "_initial_results")
        out = type(self).__new__(type(self))
        out.__dict__.update(copy.deepcopy({k: v for k, v in self.__dict__.items() if k not in skip}))
        out._journal = None
        if self._grid is None:
            out._grid = None
            return out
        # constants, shared: the layout, the planner, the initial values and results (never written)
        out._layout, out._planner, out._initial = self._layout, self._planner, self._initial
        out._initial_results = self._initial_results
        out._topo = self._topo.copy()
        out._out = self._out.copy()
        out._grid = PowerGrid(world=self._grid.world.copy(), max_iteration=self._max_iter, tolerance_mva=self._tol,
                              distributed_slack=self._dist_slack, journal=False)
        out._copy = self._result_copy(out._out)
        out._bind_rows()
        return out

    def close(self):
        """Flush and close the journal (if any) and drop the grid."""
        if self._grid is not None:
            self._grid.close()
        self._grid = None
