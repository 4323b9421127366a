"""The solve engine of one world: runs Newton-Raphson (or the DC power flow) on the current model
of its model cache (model_cache.py, which alone decides what a solve rebuilds: "full",
"admittance", "incremental" or "none") and hands out the solve's result arrays
(result_arrays.py).  The engine reads world columns only; it never imports the journal.
"""
from __future__ import annotations

import numpy as np

from gridtape.errors import SchemaError

from . import start
from .connectivity import refusal as connectivity_refusal
from .dslack import initial_slack, slack_plan
from .gensplit import make_split
from .model_cache import MODEL_CACHE, ModelCache  # noqa: F401  (MODEL_CACHE: the adapter's size)
from .modelopts import as_model_options
from .newton import DistributedSlackSolver, NewtonSolver
from .result_arrays import ResultArrays, compute_arrays
from .setpoint_conflicts import refusal
from .topology import REF

INITS = start.INITS


class Engine:
    """Power-flow state of one world.  ``solve`` returns (converged, iterations, norm, level)."""

    def __init__(self, world, trafo_model: str = "t"):
        self.world = world
        self.trafo_model = trafo_model
        self.cache = ModelCache(world, trafo_model)
        self.model = None
        self.topo = None
        self.inj = None
        self.V = None  # last iterate (internal bus order); NaN at NONE buses after a solve
        self.converged = False
        self.solved = False  # a solve has run on the current model
        self.iterations = 0
        self.norm = float("nan")
        self.algorithm = "nr"
        self.slack_plan = None  # the distributed-slack plan of the last solve (None: plain slack)
        self.ps = None  # slack power per distributed-slack island (p.u.)
        self._ps_token = None
        self._pinned = None
        self._v_prev = None  # converged voltages kept across a topology change
        self._none = np.zeros(0, np.int64)
        self._qlim = None  # (limited, fixed_q) of the last solve's Q-limit enforcement
        self._results = None
        self._polar = None  # (V, solver, solver.runs): the solver's magnitudes and angles belong to V
        self.solve_options = {}  # runpp options of the injections and results (configure)
        self._inj_eff = self._inj_base = self._eff_sig = None
        self._qlim_active = self._plims_active = False
        self._plain_inj = True
        self._iwamoto = False  # algorithm="iwamoto_nr" (configure)
        self.va_dc = None  # rundcpp's unwrapped angles (rad) of the last DC solve
        # warm incremental solves may start from the previous solve's LU factors (NewtonSolver.solve reuse)
        self.reuse_lu = True

    # --- model upkeep ------------------------------------------------------------------
    def level(self) -> str | None:
        lvl = self.cache.level()
        return None if lvl == "none" else lvl

    def prepare(self, setpoints=False) -> str:
        """Bring the model up to the world (model_cache.ModelCache.prepare); return the level.
        ``setpoints``: refuse voltage set-points that disagree at one bus (as runpp does, not
        rundcpp; setpoint_conflicts) before the engine takes the new model, so the last solve's
        voltages and model stay as they were."""
        old = self.model
        lvl = self.cache.prepare()
        m = self.cache.model
        if setpoints and m.inj_state.conflict is not None:
            err = refusal(m.inj_state.conflict, bool(self.solve_options.get("voltage_angles", True)))
            if err is not None:
                raise err
        if self.solve_options.get("check_connectivity") is False:  # (connectivity.py)
            neglect = as_model_options(self.trafo_model).neglect_open_switch_branches
            err = connectivity_refusal(self.world, m.topo, neglect)
            if err is not None:
                raise err
        if m is old and lvl != "full":  # same model: only the injections (and Ybus values) moved
            self.inj, self.ysh = m.inj_state.inj, m.ysh
            return lvl
        self.model = m
        self.topo, self.ysh, self.ydata = m.topo, m.ysh, m.ydata
        self.indptr, self.indices, self.pos, self._none = m.indptr, m.indices, m.pos, m.none
        self.inj = m.inj_state.inj
        if m is not old or lvl == "full":
            # a converged iterate can start the next solve (init="results") if the bus set stays
            self._v_prev = self.V if self.converged and self.V is not None else None
            self.V = None
        return lvl

    @property
    def q_limited(self):
        return None if self._qlim is None else self._qlim[0]

    @property
    def q_fixed(self):
        return None if self._qlim is None else self._qlim[1]

    def _newton(self, pv, pq, plan=None):
        m = self.model
        if plan is None:
            if pv is self.topo.pv and pq is self.topo.pq and m.solvers and m.solvers[0][0][0] == "base":
                return m.solvers[0][1]  # the model's own bus types (every solve without Q limits)
            key = ("base" if pv is self.topo.pv and pq is self.topo.pq else "nr", pv, pq)
            return m.solver(key, lambda: NewtonSolver(self.indptr, self.indices, self.topo.ref, pv, pq))
        return m.solver(("ds", plan.token, pv, pq), lambda: DistributedSlackSolver(
            self.indptr, self.indices, plan.fixed_ref, np.union1d(pv, plan.demoted).astype(np.int32), pq,
            plan.dsref, plan.weight, plan.island))

    def _slack_plan(self):
        """The distributed-slack plan, kept while the topology and the generator table stay."""
        return self.model.derive("slack_plan", lambda: slack_plan(self.world, self.topo, self.inj.gens))

    def gen_split(self, plan=None):
        """The model's generator split (gensplit.make_split) with or without distributed slack."""
        if plan is None:
            return self.model.derive("split", self._plain_split)
        return self.model.derive("split_ds", lambda: make_split(self.inj.gens, self.topo.bus_type, self.topo.nb, plan))

    def _plain_split(self):
        """make_split without a slack plan, shared by the models of one generator placement (the
        same generator table arrays, bus types at their buses and bus count: a topology change
        that moves no generator), kept in the model cache's shared values (dropped with them)."""
        g, topo = self.inj.gens, self.topo
        arrays = (g["bus"], g["qmin"], g["qmax"], g["slack"], g["weight"])  # what make_split reads of g
        key = (topo.bus_type[g["bus"]].tobytes(), topo.nb)
        splits = self.cache.shared.setdefault("splits", [])
        for k, a, split in splits:
            if k == key and all(x is y for x, y in zip(a, arrays)):
                return split
        split = make_split(g, topo.bus_type, topo.nb)
        if len(splits) >= 16:
            del splits[0]
        splits.append((key, arrays, split))
        return split

    def _run(self, solver, plan, s0, V, tol, max_iter, warm=False, pv=None, pq=None):
        """One Newton run; with a slack plan the island slack powers start from pandapower's
        guess (or, on a warm start, from the last converged ones) and are kept in ``self.ps``.
        With ``algorithm="iwamoto_nr"`` (configure) the damped Newton of solver_cy.iwamoto."""
        inj = self.inj
        if plan is None:
            if self.solve_options.get("algorithm") == "iwamoto_nr":
                from .iwamoto import iwamoto_solve

                return iwamoto_solve(solver, self.indptr, self.indices, self.ydata, s0, inj.si, inj.sz, V,
                                     self.topo.pv if pv is None else pv, self.topo.pq if pq is None else pq,
                                     tol, max_iter)
            return solver.solve(self.ydata, s0, inj.si, inj.sz, V, tol, max_iter)
        ps = self.ps
        if not (warm and self.converged and ps is not None and self._ps_token == plan.token):
            ps = initial_slack(plan, inj)
        ps = ps.copy()
        out = solver.solve(self.ydata, s0, inj.si, inj.sz, V, ps, tol, max_iter)
        self.ps, self._ps_token = ps, plan.token
        return out

    # --- initial voltages ----------------------------------------------------------------
    def initial_voltage(self, init: str, v_init=None) -> np.ndarray:
        if v_init is not None:
            return start.given_start(self, v_init)
        nb = self.topo.nb
        if init == "results":
            if self.converged and self.V is not None and len(self.V) == nb:
                return start.warm_start(self)
            if self.V is None and self._v_prev is not None:
                prev = start.after_topology_change(self)
                if prev is not None:  # after a topology change: the last converged voltages, re-pinned
                    return prev
                init = "auto"  # the last voltages do not fit the new model: pandapower's start instead
            elif self.V is not None and len(self.V) == nb:
                return start.last_iterate(self)
            init = "auto"  # no earlier voltages: pandapower's init="results" without res_bus is "auto"
        if init in ("flat", "auto", "dc"):
            v0 = self.model.v0
            V = v0.get(init)
            if V is None:  # same model, same injections: same starting point
                V = v0[init] = start.pandapower_start(self, init)
            return V.copy()
        return start.pandapower_start(self, init)

    def dc_angles(self, va0: np.ndarray) -> np.ndarray:
        return start.dc_angles(self, va0)

    # --- solving -------------------------------------------------------------------------
    def configure(self, model_options=None, **solve_options):
        """Set the runpp options of the next solves: ``model_options`` (modelopts.ModelOptions: a
        change rebuilds the model) and the injection / result options (``voltage_angles``,
        ``voltage_depend_loads``, ``enforce_p_lims``, ``trafo_loading``, ``algorithm``, ...)."""
        if model_options is not None:
            mo = as_model_options(model_options)
            if mo != as_model_options(self.trafo_model):
                self.trafo_model = self.cache.trafo_model = mo
                self.cache._reset()
        self.solve_options.update(solve_options)
        o = self.solve_options
        # no option changes the injections: the effective injections are the model's own
        self._plain_inj = not o.get("enforce_p_lims", False) and bool(o.get("voltage_angles", True)) and \
            bool(o.get("voltage_depend_loads", True))
        self._iwamoto = o.get("algorithm") == "iwamoto_nr"

    def _effective_injections(self, qlim):
        from .effective import effective_injections

        effective_injections(self, qlim)

    def solve(self, init="auto", tol=1e-8, max_iter=10, qlim=False, v_init=None, distributed_slack=False,
              fallback="auto"):
        """``init`` None: a warm start from the last converged voltages of the current model (after
        the upkeep), else ``fallback``."""
        level = self.prepare(setpoints=True)
        if qlim or not self._plain_inj or self._eff_sig is not None:
            self._effective_injections(qlim)
        elif self.inj is not self._inj_eff:  # the plain case after a plain solve: the model's own
            self._inj_eff = self._inj_base = self.inj
        self._results = None
        self._polar = None
        if init is None:
            init = "results" if (self.V is not None and self.converged) else fallback
        topo, inj = self.topo, self.inj
        warm = init == "results" and v_init is None and self.converged and self.V is not None and \
            len(self.V) == topo.nb
        if warm:
            V = start.warm_start(self)
        elif init not in INITS:
            raise SchemaError(f"unknown init {init!r}; use one of {INITS}", field="init")
        else:
            V = self.initial_voltage(init, v_init)
        pv, pq = topo.pv, topo.pq
        s0 = inj.s0
        plan = self._slack_plan() if distributed_slack else None
        solver = self._newton(pv, pq, plan)
        self._qlim = None
        if plan is None and self._iwamoto:
            conv, it, norm = self._run(solver, None, s0, V, tol, max_iter)
        elif plan is None:
            # a warm start on unchanged admittances may begin with the last solve's LU factors
            conv, it, norm = solver.solve(self.ydata, s0, inj.si, inj.sz, V, tol, max_iter,
                                          warm and self.reuse_lu and level in ("incremental", "none"))
            if conv and not qlim:  # the results may take the solver's own polar form of V
                self._polar = (V, solver, solver.runs)
        else:
            conv, it, norm = self._run(solver, plan, s0, V, tol, max_iter, warm)
        self.slack_plan = plan
        if qlim:  # pandapower checks the limits even after a first run that did not converge
            conv, it, norm, V = self._enforce_q_limits(V, tol, max_iter, conv, it, norm, plan)
        if len(self._none):
            V[self._none] = np.nan
        # distributed slack moves the angles of demoted references: re-pin on the next warm start
        self._pinned = inj.vm_set if conv and not qlim and (plan is None or not len(plan.demoted)) else None
        self.V = V
        self.converged, self.iterations, self.norm = bool(conv), int(it), float(norm)
        self.algorithm = "nr"
        self.solved = True
        self._qlim_active = bool(qlim)
        return self.converged, self.iterations, self.norm, level

    def _enforce_q_limits(self, V, tol, max_iter, conv, it, norm, plan=None):
        """pandapower's enforce_q_lims (solver_cy.qlim.enforce_q_limits)."""
        from .qlim import enforce_q_limits

        topo, inj = self.topo, self.inj

        def run(pv, pq, s0, V):
            return self._run(self._newton(pv, pq, plan), plan, s0, V, tol, max_iter, pv=pv, pq=pq)

        ran, c2, it2, n2, limited, fixed_q, ties = enforce_q_limits(
            inj.gens, topo.bus_type, inj.s0, self.world.sn_mva, V, run,
            lambda V, lim, fq: self._gen_q(V, lim, fq, plan), vm_set=inj.vm_set, ref=REF,
            tie=max(float(tol) * float(self.world.sn_mva), 1e-9))
        self._qlim = (limited, fixed_q)
        if ties.any():
            _warn_ties(self.world, inj.gens, ties)
        if ran:
            conv, it, norm = c2, it2, n2
        return conv, it, norm, V

    def _gen_q(self, V, limited, fixed_q, plan):
        """Reactive power of every generator (MVAr) at voltages ``V``, ``limited`` ones held at
        ``fixed_q`` (the same kernel as the results: resk.gen_pq)."""
        res = compute_arrays(self, V, "nr", self._qlim_split(limited, fixed_q, plan))
        return res.gen_q

    def _qlim_split(self, limited, fixed_q, plan):
        if limited is None or not limited.any():
            return None
        g = self.inj.gens
        qoff = np.bincount(g["bus"], np.where(limited, fixed_q, 0.0), self.topo.nb)
        return make_split(g, self.topo.bus_type, self.topo.nb, plan, ~limited), qoff, limited, fixed_q

    def results(self) -> ResultArrays:
        """The result arrays of the last solve (made at the first call after it)."""
        res = self._results
        if res is None or res[0] is not self.V or res[1] is not self.model:  # (V: restored by an edit rollback)
            lim = self._qlim
            split = None if lim is None else self._qlim_split(lim[0], lim[1], self.slack_plan)
            res = self._results = (self.V, self.model, compute_arrays(self, self.V, self.algorithm, split,
                                                                      self.polar()))
        return res[2]

    def polar(self):
        """``(vm, va)``: the magnitudes and angles (rad, not wrapped) of ``V`` as the Newton solver
        that returned it holds them (NewtonSolver.polar), or None (another solve, the solver run
        since, Q limits, distributed slack, DC, no convergence).  The arrays are the solver's."""
        p = self._polar
        if p is None or p[0] is not self.V:
            return None
        if p[2] is None:  # kept with restored voltages (restore)
            return p[1]
        return p[1].polar if p[1].runs == p[2] else None

    def restore(self, V, polar=None):
        """Take back the voltages ``V`` of an earlier solve (an edit block's rollback) with the
        copy of their :meth:`polar` form taken then (None: none)."""
        self.V = V
        self._results = None
        self._polar = None if polar is None or V is None else (V, polar, None)

    def solve_dc(self):
        from .dc_results import dc_voltage_magnitudes

        level = self.prepare()
        self._effective_injections(False)
        self._results = None
        self._polar = None
        self._qlim = None
        self._qlim_active = False
        inj = self.inj
        va = np.where(np.isnan(inj.va_set), 0.0, np.deg2rad(inj.va_set))
        va = self.dc_angles(va)
        V = dc_voltage_magnitudes(inj.vm_set) * np.exp(1j * va)
        V[self._none] = np.nan
        va[self._none] = np.nan
        self.va_dc = va  # unwrapped, as rundcpp reports them
        self.V = V
        self.slack_plan = None
        self.converged, self.iterations, self.norm = True, 1, 0.0
        self.algorithm = "dc"
        self.solved = True
        return True, 1, 0.0, level

    def invalidate(self):
        self.V = None
        self._results = None
        self._polar = None
        self.solved = False
        self.converged = False


def _warn_ties(world, gens, ties):
    """QLimitTieWarning naming the generators the Q-limit loop decided on round-off."""
    import warnings

    from gridtape.errors import QLimitTieWarning

    ids = [int(world["gen"].ids[r]) for r in np.asarray(gens["row"])[ties]]
    shown = ", ".join(map(str, ids[:10])) + (" ..." if len(ids) > 10 else "")
    warnings.warn(QLimitTieWarning(
        f"enforce_q_lims: gen {shown} sat at a reactive limit to within the solver tolerance when the "
        "Q-limit loop decided whether to fix it; round-off decides such a tie, so pandapower may take the "
        "other branch and reach another solution (docs/model-notes.md, 'Q-limit ties')", "gen", ids),
        stacklevel=4)
