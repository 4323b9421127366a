"""The solve engine: keeps the bus-branch model, the Ybus pattern and the Newton workspace of one
world alive between solves, and redoes only what the world's change counters ask for:

- ``full``         topology changed: model, Ybus pattern, Jacobian pattern and KLU symbolic rebuilt;
- ``admittance``   admittance values changed: branch admittances and Ybus values refreshed;
- ``incremental``  only injections or set-points changed: Sbus refreshed, warm start.

The engine reads world columns only; it never imports the journal.
"""
from __future__ import annotations

import time

import numpy as np

from gridtape.errors import SchemaError

from . import model as M
from .injections import fill_injections
from .flows import branch_flows, bus_injection
from .dslack import initial_slack, slack_plan
from .modelopts import as_model_options
from .newton import DistributedSlackSolver, NewtonSolver, dc_solve
from .topo import warm_voltage
from .ybus import ybus_build, ybus_fill, ybus_pattern

INITS = ("auto", "flat", "dc", "results")
MODEL_CACHE = 8  # models of the last topologies kept (a topology step back reuses its model)


class _Model:
    """Everything the engine derives from one topology: the model, its admittances (with the
    admittance state they reflect), the Ybus pattern and values, the injection cache and the
    Newton solvers (with their KLU symbolic analyses)."""

    __slots__ = ("topo", "ysh", "indptr", "indices", "pos", "ydata", "adm", "none", "inj_cache", "solvers",
                 "rows")

    def __init__(self, topo, ysh, indptr, indices, pos, ydata, adm, none, rows):
        self.topo, self.ysh, self.indptr, self.indices, self.pos = topo, ysh, indptr, indices, pos
        self.ydata, self.adm, self.none = ydata, adm, none
        self.inj_cache = {}
        self.solvers = {}
        self.rows = rows  # the tables' id arrays it was built from (see _same_rows)


def _rows_token(w):
    """The id arrays of every table: add / remove replace them, writes never do."""
    return tuple(t.ids for t in w.tables.values())


def _same_rows(m, w):
    """Whether the world's tables are still the very ones model ``m`` was built from.  Equal
    topology keys are not enough: an element removed and added back with the same id and bus but
    other values (or a branch of other parameters) leaves the key as it was, and neither its
    injection sums nor the admittance counter would say so."""
    return all(a is b for a, b in zip(m.rows, _rows_token(w)))


def _adm_state(w):
    """What admittance values depend on besides the topology."""
    return (w.adm_version, w.sn_mva, w.f_hz)


class Engine:
    """Power-flow state of one world.  ``solve`` returns (converged, iterations, norm, level)."""

    def __init__(self, world, trafo_model: str = "t"):
        self.world = world
        self.trafo_model = trafo_model
        self._seen = None  # (topo, adm, inj) versions the model reflects
        self.topo = None
        self.inj = None
        self.V = None  # last iterate (internal bus order); NaN at NONE buses after a solve
        self.converged = False
        self.solved = False  # a solve has run on the current model
        self.has_results = False
        self._solvers = {}
        self._v0_cache = {}
        self.iterations = 0
        self._pinned = None
        self._v_prev = None  # converged voltages kept across a topology change
        self._adm_cache = {}  # branch parameters kept across topology changes (model.fill_admittances)
        self.solve_options = {}  # runpp options of the injections (configure)
        self._inj_eff = self._inj_base = self._eff_sig = None
        self._plims_active = False
        self._models = {}  # topology key -> _Model, least recently used first (see prepare)
        self._inj_cache = {}
        self._inj_shared = {}  # injection parts no topology changes (injections.fill_injections)
        self._none = np.zeros(0, np.int64)
        self.norm = float("nan")
        self.algorithm = "nr"
        self.slack_plan = None  # the distributed-slack plan of the last solve (None: plain slack)
        self.ps = None  # slack power per distributed-slack island (p.u.)
        self._ps_token = None
        self._plan_cache = None
        # warm incremental solves may start from the previous solve's LU factors (NewtonSolver.solve reuse)
        self.reuse_lu = True

    # --- model upkeep ------------------------------------------------------------------
    def level(self) -> str | None:
        w = self.world
        now = (w.topo_version, w.adm_version, w.inj_version)
        if self._seen is None or now[0] != self._seen[0]:
            return "full"
        if now[1] != self._seen[1]:
            return "admittance"
        if now[2] != self._seen[2]:
            return "incremental"
        return None

    def prepare(self) -> str:
        lvl = self.level()
        w = self.world
        if lvl == "full":
            key = M.topology_key(w)
            m = self._models.get(key)
            if m is not None and not _same_rows(m, w):
                del self._models[key]
                m = None
            if m is None:
                m = self._build_model(w)
                while len(self._models) >= max(MODEL_CACHE, 1):  # the current model is always kept
                    self._models.pop(next(iter(self._models)))
                self._models[key] = m
            else:  # a topology seen before: its model, Ybus pattern and Newton solvers
                self._models[key] = self._models.pop(key)  # most recently used last
                if m.adm != _adm_state(w):
                    self._refill_admittances(m)
            self.topo, self.ysh, self.ydata = m.topo, m.ysh, m.ydata
            self.indptr, self.indices, self.pos = m.indptr, m.indices, m.pos
            self._inj_cache, self._solvers, self._none = m.inj_cache, m.solvers, m.none
            self.inj = fill_injections(w, self.topo, self._inj_cache, self._inj_shared)
            # a converged iterate can start the next solve (init="results") if the bus set stays
            self._v_prev = self.V if self.converged and self.V is not None else None
            self.V = None
        elif lvl == "admittance":
            m = self._current_model()
            self._refill_admittances(m)
            self.ysh = m.ysh
            self.inj = fill_injections(w, self.topo, self._inj_cache, self._inj_shared)
        elif lvl == "incremental":
            self.inj = fill_injections(w, self.topo, self._inj_cache, self._inj_shared)
        if lvl is not None:
            self._v0_cache = {}
        self._seen = (w.topo_version, w.adm_version, w.inj_version)
        return lvl or "none"

    def _build_model(self, w):
        """A new model of the world's current topology (nothing kept when a step raises)."""
        mo = as_model_options(self.trafo_model)
        topo = M.build_topology(w, mo) if mo.neglect_open_switch_branches else M.build_topology(w)
        br = topo.branches
        adm = _adm_state(w)
        ysh = M.fill_admittances(w, topo, self.trafo_model, self._adm_cache)
        indptr, indices, pos, ydata = ybus_build(topo.nb, br.f, br.t, br.yff, br.yft, br.ytf, br.ytt, ysh)
        return _Model(topo, ysh, indptr, indices, pos, ydata, adm, np.flatnonzero(topo.bus_type == M.NONE),
                      _rows_token(w))

    def _current_model(self):
        for m in reversed(self._models.values()):
            if m.topo is self.topo:
                return m
        raise RuntimeError("the engine's topology is not in its model cache")

    def _refill_admittances(self, m):
        """Admittance values of model ``m`` from the world's current admittance columns."""
        w = self.world
        br = m.topo.branches
        adm = _adm_state(w)
        m.ysh = M.fill_admittances(w, m.topo, self.trafo_model, self._adm_cache)
        ybus_fill(m.ydata, *m.pos, br.yff, br.yft, br.ytf, br.ytt, m.ysh)
        m.adm = adm

    def _newton(self, pv, pq, plan=None):
        if plan is not None:
            return self._newton_ds(pv, pq, plan)
        base = self._solvers.get("base")
        if base is not None and pv is self.topo.pv and pq is self.topo.pq:
            return base
        key = (pv.tobytes(), pq.tobytes())
        s = self._solvers.get(key)
        if s is None:
            if len(self._solvers) > 8:
                self._solvers.clear()
            s = NewtonSolver(self.indptr, self.indices, self.topo.ref, pv, pq)
            self._solvers[key] = s
            if pv is self.topo.pv and pq is self.topo.pq:
                self._solvers["base"] = s
        return s

    def _newton_ds(self, pv, pq, plan):
        key = ("ds", plan.token, pv.tobytes(), pq.tobytes())
        s = self._solvers.get(key)
        if s is None:
            if len(self._solvers) > 8:
                self._solvers.clear()
            pv2 = np.union1d(pv, plan.demoted).astype(np.int32)
            s = DistributedSlackSolver(self.indptr, self.indices, plan.fixed_ref, pv2, pq, plan.dsref,
                                       plan.weight, plan.island)
            self._solvers[key] = s
        return s

    def _slack_plan(self):
        """The distributed-slack plan, kept while the topology and the slack weights stay."""
        g = self.inj.gens
        c = self._plan_cache
        if c is None or c[0] is not self.topo or c[1] is not g["weight"]:
            c = self._plan_cache = (self.topo, g["weight"], slack_plan(self.world, self.topo, g))
        return c[2]

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
        if v_init is None and init in ("flat", "auto", "dc"):
            cached = self._v0_cache.get(init)
            if cached is not None:  # same model, same injections: same starting point
                return cached.copy()
            V = self._initial_voltage(init, None)
            self._v0_cache[init] = V
            return V.copy()
        return self._initial_voltage(init, v_init)

    def _initial_voltage(self, init, v_init):
        topo, inj = self.topo, self.inj
        nb = topo.nb
        if v_init is None and init == "results" and self.converged and self.V is not None and len(self.V) == nb:
            return self._warm_start()
        if v_init is None and init == "results" and self.V is None and self._v_prev is not None:
            prev = self._voltage_after_topology_change(nb)
            if prev is not None:  # after a topology change: the last converged voltages, re-pinned
                return prev
            init = "auto"  # the last voltages do not fit the new model: pandapower's start instead
        has_set = ~np.isnan(inj.vm_set)
        if v_init is not None:
            V = np.asarray(v_init, dtype=complex).copy()
        elif init == "results" and self.V is not None and len(self.V) == nb:
            V = self.V.copy()
            bad = ~np.isfinite(V)
            V[bad] = 1.0
        else:
            vm0 = 1.0
            if init == "auto":
                w = self.world
                eg, gen = w["ext_grid"], w["gen"]
                vals = np.concatenate([eg.cols["vm_pu"][eg.cols["in_service"]],
                                       gen.cols["vm_pu"][gen.cols["in_service"]]])
                if len(vals):
                    vm0 = float(vals.mean())
            va = np.where(np.isnan(inj.va_set), 0.0, np.deg2rad(inj.va_set))
            V = np.full(nb, vm0, dtype=complex) * np.exp(1j * va)
            V[has_set] = inj.vm_set[has_set] * np.exp(1j * va[has_set])
            if init == "dc" or init == "auto" and self.solve_options.get("voltage_angles", True):
                va = self.dc_angles(va)
                V = np.abs(V) * np.exp(1j * va)
        # re-pin set-points: magnitude at PV/REF buses, angle at ext_grid buses
        ang = np.angle(V)
        has_va = ~np.isnan(inj.va_set)
        ang[has_va] = np.deg2rad(inj.va_set[has_va])
        mag = np.abs(V)
        mag[has_set] = inj.vm_set[has_set]
        return mag * np.exp(1j * ang)

    def _voltage_after_topology_change(self, nb):
        """:meth:`_previous_voltage` then :meth:`_pin` (their reference) in one kernel pass
        (topo.warm_voltage), or None."""
        if len(self._v_prev) != nb:
            return None
        br = self.topo.branches
        inj = self.inj
        return warm_voltage(self._v_prev, self.topo.bus_type, br.f, br.t, br.status, inj.vm_set, inj.va_set)

    def _previous_voltage(self, nb):
        """The voltages converged before the last topology change as a start for the new model,
        or None when the bus count changed.  A newly supplied bus (no previous voltage) takes the
        voltage of a bus it is now connected to by an in-service branch; None if one is left."""
        V = self._v_prev
        if len(V) != nb:
            return None
        V = V.copy()
        need = ~np.isfinite(V) & (self.topo.bus_type != M.NONE)
        if need.any():
            br = self.topo.branches
            f, t = br.f[br.status], br.t[br.status]
            while need.any():
                have = ~need
                a = need[f] & have[t]  # from-end missing, to-end known
                b = need[t] & have[f]
                if not (a.any() or b.any()):
                    return None
                V[f[a]] = V[t[a]]
                V[t[b]] = V[f[b]]
                need[f[a]] = False
                need[t[b]] = False
        V[~np.isfinite(V)] = 1.0
        return V

    def _pin(self, V):
        """``V`` (changed in place) with the set-points pinned: magnitude at PV / REF buses, angle
        at ext_grid buses; the other buses keep their voltage as it is."""
        inj = self.inj
        vs = np.flatnonzero(~np.isnan(inj.vm_set))
        V[vs] = inj.vm_set[vs] * np.exp(1j * np.angle(V[vs]))
        va = np.flatnonzero(~np.isnan(inj.va_set))
        if len(va):
            V[va] = np.abs(V[va]) * np.exp(1j * np.deg2rad(inj.va_set[va]))
        return V

    def _warm_start(self):
        """The last iterate with the set-points re-pinned (the incremental path's start).  Newton
        keeps PV magnitudes and slack voltages, so after a converged solve they only need pinning
        when the set-points themselves were written."""
        inj = self.inj
        V = self.V.copy()
        if len(self._none):
            V[self._none] = 1.0
        if self._pinned is inj.vm_set:
            return V
        vs = np.flatnonzero(~np.isnan(inj.vm_set))
        va = np.flatnonzero(~np.isnan(inj.va_set))
        V[vs] = inj.vm_set[vs] * np.exp(1j * np.angle(V[vs]))
        V[va] = np.abs(V[va]) * np.exp(1j * np.deg2rad(inj.va_set[va]))
        return V

    def dc_angles(self, va0: np.ndarray) -> np.ndarray:
        """DC power-flow angles (radians) with the reference angles of ``va0`` (pandapower's dc init).

        B is assembled on the model's Ybus pattern (the same positions: diagonal plus both branch
        ends; a bus of type NONE gets an identity row so the system stays regular), no sparse
        matrix library involved."""
        topo, inj = self.topo, self.inj
        br = topo.branches
        on = br.status
        with np.errstate(divide="ignore", invalid="ignore"):
            b = np.where(on, 1.0 / br.x, 0.0) / br.ratio
        b[~on] = 0.0
        nb = topo.nb
        pff, pft, ptf, ptt, pdiag = self.pos
        data = np.zeros(len(self.indices))
        np.add.at(data, pff, b)
        np.add.at(data, pft, -b)
        np.add.at(data, ptf, -b)
        np.add.at(data, ptt, b)
        pfinj = b * (-np.deg2rad(br.shift_deg))
        pbusinj = np.bincount(br.f, pfinj, nb) - np.bincount(br.t, pfinj, nb)
        sbus = inj.s0 + inj.si + inj.sz
        p = sbus.real - pbusinj - self.ysh.real
        active = topo.bus_type != M.NONE
        if not active.all():
            data[pdiag[~active]] += 1.0
            p = np.where(active, p, 0.0)
        va = va0.copy()
        if not dc_solve(self.indptr, self.indices, data, p, topo.ref.astype(np.int32, copy=False), va):
            return va0
        va[~active] = va0[~active]
        return va

    # --- solving -------------------------------------------------------------------------
    def configure(self, model_options=None, **solve_options):
        """Set the runpp options of the next solves: ``model_options`` (modelopts.ModelOptions: a
        change rebuilds the model) and the injection options ``voltage_angles``,
        ``voltage_depend_loads``, ``enforce_p_lims``."""
        if model_options is not None:
            mo = as_model_options(model_options)
            if mo != as_model_options(self.trafo_model):
                self.trafo_model = mo
                self._models.clear()
                self._adm_cache = {}
                self._seen = None
        self.solve_options.update(solve_options)

    def _effective_injections(self, qlim):
        """The model's injections as this solve's options see them (pandapower builds them per
        runpp): ext_grid angles dropped without voltage angles, every load constant-power without
        voltage-dependent loads, sgen set-points clipped to their limits (solver_cy.qlim)."""
        inj = self.inj
        if inj is not self._inj_eff:
            self._inj_base = inj
        inj = self._inj_base
        o = self.solve_options
        if not qlim and not o.get("enforce_p_lims") and o.get("voltage_angles", True) \
                and o.get("voltage_depend_loads", True):  # nothing to change (the common case)
            if self._eff_sig is not None:
                self._v0_cache = {}
                self._eff_sig = None
            self.inj = self._inj_eff = inj
            self._plims_active = False
            return
        import dataclasses

        topo = self.topo
        ch = {}
        if not o.get("voltage_angles", True):
            ch["va_set"] = np.where(np.isnan(inj.va_set), np.nan, 0.0)
        if not o.get("voltage_depend_loads", True) and (inj.si.any() or inj.sz.any()):
            ch["s0"], ch["si"], ch["sz"] = inj.s0 + inj.si + inj.sz, np.zeros_like(inj.si), np.zeros_like(inj.sz)
        plims = bool(o.get("enforce_p_lims", False))
        curves = None
        if qlim:  # reactive capability curves replace the Q limits under enforce_q_lims
            from .model import char_table
            from .qlim import curve_limits

            table = char_table(self.world, "q_capability_curve_table")
            gl = curve_limits(self.world, "gen", table)
            if gl is not None:
                g = dict(inj.gens)
                m = np.flatnonzero(g["kind"] == 1)
                rows = g["row"][m]
                g["qmin"], g["qmax"] = g["qmin"].copy(), g["qmax"].copy()
                g["qmin"][m] = np.where(np.isnan(gl[0][rows]), g["qmin"][m], gl[0][rows])
                g["qmax"][m] = np.where(np.isnan(gl[1][rows]), g["qmax"][m], gl[1][rows])
                ch["gens"] = g
            curves = curve_limits(self.world, "sgen", table)
        if (qlim or plims) and len(self.world["sgen"]):
            from .qlim import sgen_injection_shift

            sn = self.world.sn_mva
            shift = sgen_injection_shift(self.world, topo.lookup[topo.elem_bus_row["sgen"]], topo.active["sgen"],
                                         topo.nb, sn, qlim, plims, curves)
            if shift is not None:  # the clipped sgens as the injections and the bus demand see them
                ch["s0"] = ch.get("s0", inj.s0) + shift
                ch["pd"], ch["qd"] = inj.pd - shift.real * sn, inj.qd - shift.imag * sn
        sig = (tuple(sorted(ch)), bool(qlim), plims, o.get("voltage_angles", True), o.get("voltage_depend_loads", True))
        if sig != self._eff_sig:
            self._v0_cache = {}
            self._eff_sig = sig
        self.inj = dataclasses.replace(inj, **ch) if ch else inj
        self._inj_eff = self.inj
        self._plims_active = plims

    def solve(self, init="auto", tol=1e-8, max_iter=10, qlim=False, v_init=None, distributed_slack=False):
        level = self.prepare()
        self._effective_injections(qlim)
        if init is None:
            init = "results" if (self.V is not None and self.converged) else "auto"
        topo, inj = self.topo, self.inj
        warm = init == "results" and v_init is None and self.converged and self.V is not None and \
            len(self.V) == topo.nb
        if warm:
            V = self._warm_start()
        elif init not in INITS:
            raise SchemaError(f"unknown init {init!r}; use one of {INITS}", field="init")
        else:
            V = self.initial_voltage(init, v_init)
        pv, pq = topo.pv, topo.pq
        s0 = inj.s0
        self._s0_eff = s0
        plan = self._slack_plan() if distributed_slack else None
        solver = self._newton(pv, pq, plan)
        if plan is None and self.solve_options.get("algorithm") == "iwamoto_nr":
            conv, it, norm = self._run(solver, None, s0, V, tol, max_iter)
        elif plan is None:
            # a warm start on unchanged admittances may begin with the last solve's LU factors
            conv, it, norm = solver.solve(self.ydata, s0, inj.si, inj.sz, V, tol, max_iter,
                                          warm and self.reuse_lu and level in ("incremental", "none"))
        else:
            conv, it, norm = self._run(solver, plan, s0, V, tol, max_iter, warm)
        if qlim:  # pandapower checks the limits even after a first run that did not converge
            conv, it, norm, V = self._enforce_q_limits(V, tol, max_iter, conv, it, norm, plan)
        if len(self._none):
            V[self._none] = np.nan
        # distributed slack moves the angles of demoted references: re-pin on the next warm start
        self._pinned = inj.vm_set if conv and not qlim and (plan is None or not len(plan.demoted)) else None
        self.slack_plan = plan
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

        ran, c2, it2, n2, limited, fixed_q = enforce_q_limits(
            inj.gens, topo.bus_type, self._s0_eff, self.world.sn_mva, V, run, self._gen_q, vm_set=inj.vm_set,
            ref=M.REF)
        self.q_limited = limited
        self.q_fixed = fixed_q
        if ran:
            conv, it, norm = c2, it2, n2
        return conv, it, norm, V

    def _gen_q(self, V, limited=None, fixed_q=None):
        """Reactive power of every generator (pfsoln's split), MVAr."""
        g = self.inj.gens
        sn = self.world.sn_mva
        S = bus_injection(self.indptr, self.indices, self.ydata, V)
        on = np.ones(len(g["bus"]), bool) if limited is None else ~limited
        qg = np.zeros(len(g["bus"]))
        gb = g["bus"]
        qg[on] = S[gb[on]].imag * sn + self.inj.qd[gb[on]]
        if limited is not None and limited.any():
            # limited gens sit at their limit; the bus total they leave is shared by the others
            qg[on] = qg[on] - _bus_sum(gb, np.where(limited, fixed_q, 0.0), len(V))[gb[on]]
        if on.sum() > 1:
            qg[on] = _split_q(gb[on], qg[on], g["qmin"][on], g["qmax"][on], len(V))
        if limited is not None:
            qg[limited] = fixed_q[limited]
        return qg

    def solve_dc(self):
        level = self.prepare()
        self._effective_injections(False)
        topo, inj = self.topo, self.inj
        va = np.where(np.isnan(inj.va_set), 0.0, np.deg2rad(inj.va_set))
        va = self.dc_angles(va)
        from .dc_results import dc_voltage_magnitudes

        V = dc_voltage_magnitudes(inj.vm_set) * np.exp(1j * va)
        V[topo.bus_type == M.NONE] = np.nan
        self.va_dc = np.where(topo.bus_type == M.NONE, np.nan, va)  # unwrapped, as rundcpp reports them
        self.V = V
        self.converged, self.iterations, self.norm = True, 1, 0.0
        self.algorithm = "dc"
        self.solved = True
        return True, 1, 0.0, level

    def invalidate(self):
        self.V = None
        self.solved = False
        self.converged = False


def _bus_sum(bus, val, nb):
    out = np.zeros(nb)
    np.add.at(out, bus, val)
    return out


def _split_q(gb, q, qmin, qmax, nb):
    """pfsoln's split of a bus's Q among its generators: equally, then by reactive range."""
    eps = np.finfo(float).eps
    cnt = np.bincount(gb, minlength=nb)
    q = q / cnt[gb]
    qtot = _bus_sum(gb, q, nb)
    qmn = _bus_sum(gb, qmin, nb)
    qmx = _bus_sum(gb, qmax, nb)
    same = qmn[gb] == qmx[gb]
    out = qmin + ((qtot - qmn) / (qmx - qmn + eps))[gb] * (qmax - qmin)
    out[same] = q[same]
    return out
