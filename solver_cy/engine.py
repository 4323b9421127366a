"""The solve engine of one world: runs Newton-Raphson (or the DC power flow) on the current model
of its model cache (model_cache.py, which alone decides what a solve rebuilds: "full",
"admittance", "incremental" or "none") and hands out the solve's result arrays
(result_arrays.py).  The engine reads world columns only; it never imports the journal.
"""
from __future__ import annotations

import numpy as np

from gridtape.errors import SchemaError

from . import start
from .dslack import initial_slack, slack_plan
from .gensplit import make_split
from .model_cache import MODEL_CACHE, ModelCache  # noqa: F401  (MODEL_CACHE: the adapter's size)
from .newton import DistributedSlackSolver, NewtonSolver
from .result_arrays import ResultArrays, compute_arrays
from .topology import PQ, PV, REF

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
        # warm incremental solves may start from the previous solve's LU factors (NewtonSolver.solve reuse)
        self.reuse_lu = True

    # --- model upkeep ------------------------------------------------------------------
    def level(self) -> str | None:
        lvl = self.cache.level()
        return None if lvl == "none" else lvl

    def prepare(self) -> str:
        """Bring the model up to the world (model_cache.ModelCache.prepare); return the level."""
        old = self.model
        lvl = self.cache.prepare()
        m = self.cache.model
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
        return self.model.derive("split_ds" if plan is not None else "split", lambda: make_split(
            self.inj.gens, self.topo.bus_type, self.topo.nb, plan))

    def _run(self, solver, plan, s0, V, tol, max_iter, warm=False):
        """One Newton run; with a slack plan the island slack powers start from pandapower's
        guess (or, on a warm start, from the last converged ones) and are kept in ``self.ps``."""
        inj = self.inj
        if plan is None:
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
    def solve(self, init="auto", tol=1e-8, max_iter=10, qlim=False, v_init=None, distributed_slack=False):
        level = self.prepare()
        self._results = None
        if init is None:
            init = "results" if (self.V is not None and self.converged) else "auto"
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
        if plan is None:
            # a warm start on unchanged admittances may begin with the last solve's LU factors
            conv, it, norm = solver.solve(self.ydata, s0, inj.si, inj.sz, V, tol, max_iter,
                                          warm and self.reuse_lu and level in ("incremental", "none"))
        else:
            conv, it, norm = self._run(solver, plan, s0, V, tol, max_iter, warm)
        self.slack_plan = plan
        if conv and qlim:
            conv, it, norm, V = self._enforce_q_limits(V, tol, max_iter, conv, it, norm, plan)
        if len(self._none):
            V[self._none] = np.nan
        # distributed slack moves the angles of demoted references: re-pin on the next warm start
        self._pinned = inj.vm_set if conv and not qlim and (plan is None or not len(plan.demoted)) else None
        self.V = V
        self.converged, self.iterations, self.norm = bool(conv), int(it), float(norm)
        self.algorithm = "nr"
        self.solved = True
        return self.converged, self.iterations, self.norm, level

    def _enforce_q_limits(self, V, tol, max_iter, conv, it, norm, plan=None):
        """pandapower's enforce_q_lims: gens beyond their limits become PQ at the limit, repeat."""
        topo, inj = self.topo, self.inj
        g = inj.gens
        btype = topo.bus_type.copy()
        s0 = inj.s0.copy()
        limited = np.zeros(len(g["bus"]), bool)
        fixed_q = np.zeros(len(g["bus"]))
        while True:
            qg = self._gen_q(V, limited, fixed_q, plan)
            ref_gen = btype[g["bus"]] == REF
            cand = ~limited & ~ref_gen & (g["kind"] == 1)
            mx = cand & (qg > g["qmax"])
            mn = cand & (qg < g["qmin"])
            if not (mx.any() or mn.any()):
                break
            fixed_q[mx] = g["qmax"][mx]
            fixed_q[mn] = g["qmin"][mn]
            new = mx | mn
            limited |= new
            for k in np.flatnonzero(new):
                b = g["bus"][k]
                if btype[b] == PV:
                    btype[b] = PQ
                s0[b] += 1j * fixed_q[k] / self.world.sn_mva
            pv = np.flatnonzero(btype == PV).astype(np.int32)
            pq = np.flatnonzero(btype == PQ).astype(np.int32)
            solver = self._newton(pv, pq, plan)
            conv, it, norm = self._run(solver, plan, s0, V, tol, max_iter)
            if not conv:
                break
        self._qlim = (limited, fixed_q)
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
            res = self._results = (self.V, self.model, compute_arrays(self, self.V, self.algorithm, split))
        return res[2]

    def solve_dc(self):
        level = self.prepare()
        self._results = None
        self._qlim = None
        topo, inj = self.topo, self.inj
        va = np.where(np.isnan(inj.va_set), 0.0, np.deg2rad(inj.va_set))
        va = self.dc_angles(va)
        V = np.exp(1j * va).astype(complex)
        V[self._none] = np.nan
        self.V = V
        self.slack_plan = None
        self.converged, self.iterations, self.norm = True, 1, 0.0
        self.algorithm = "dc"
        self.solved = True
        return True, 1, 0.0, level

    def invalidate(self):
        self.V = None
        self._results = None
        self.solved = False
        self.converged = False
