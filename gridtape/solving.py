"""PowerGrid's solve dispatch and result access (a mixin of gridtape.grid.PowerGrid): ``solve()``
with its per-call options, the solve report, the bus voltages, and the ``res_*`` tables built
lazily from the solver's result arrays (solver_cy/results.py)."""
from __future__ import annotations

import time
from dataclasses import dataclass, fields

import numpy as np

from gridtape.errors import NotSolvedError, SchemaError
from gridtape.solver_cy import results as R


@dataclass(frozen=True, slots=True)
class SolveReport:
    """What one solve did.  ``rebuild`` is "full", "admittance", "incremental" or "none"."""

    converged: bool
    iterations: int
    runtime_ms: float
    rebuild: str
    mismatch: float = float("nan")
    algorithm: str = "nr"

    def __bool__(self):
        return self.converged


_RESULT_KINDS = tuple(R.COLUMNS)


def _report_maker():
    """``SolveReport(...)`` at half the cost of the frozen dataclass's ``__init__`` (which sets each
    field through ``object.__setattr__``): the slots' own descriptors, in field order."""
    new = SolveReport.__new__
    c, i, t, r, m, a = (getattr(SolveReport, f.name).__set__ for f in fields(SolveReport))

    def report(converged, iterations, runtime_ms, rebuild, mismatch, algorithm):
        rep = new(SolveReport)
        c(rep, converged)
        i(rep, iterations)
        t(rep, runtime_ms)
        r(rep, rebuild)
        m(rep, mismatch)
        a(rep, algorithm)
        return rep

    return report


_report = _report_maker()


def _grid_option(name: str, doc: str):
    """A grid option every plain solve uses: setting it drops the options resolved for them."""
    slot = "_opt_" + name

    def get(self):
        try:
            return self.__dict__[slot]
        except KeyError:
            raise AttributeError(name) from None

    def set_(self, value):
        self.__dict__[slot] = value
        self._own = None

    return property(get, set_, doc=doc)


class Solving:
    """Solving and results of a PowerGrid (its attributes are set by PowerGrid.__init__)."""

    qlim = _grid_option("qlim", "enforce_q_lims of every solve that does not pass ``qlim``.")
    tolerance_mva = _grid_option("tolerance_mva", "The default convergence tolerance (MVA).")
    max_iteration = _grid_option("max_iteration", "The default iteration limit of Newton-Raphson.")
    init = _grid_option("init", "The start of a solve with no converged voltages to warm-start from.")
    distributed_slack = _grid_option("distributed_slack", "pandapower's runpp(distributed_slack=...) by default.")

    # --- solving -------------------------------------------------------------------------
    @property
    def reuse_lu(self) -> bool:
        """Whether warm incremental solves may start from the previous solve's LU factors."""
        return self._engine.reuse_lu

    @reuse_lu.setter
    def reuse_lu(self, value: bool):
        self._engine.reuse_lu = bool(value)

    def solve(self, v_init=None, *, tolerance_mva: float | None = None, max_iteration: int | None = None,
              init: str | None = None, algorithm: str | None = None, qlim: bool | None = None,
              distributed_slack: bool | None = None, **options) -> SolveReport:
        """Run a power flow.  ``v_init`` (complex, bus-id order) only changes the starting point:
        set-points are re-pinned.  ``init``: "auto" (pandapower's: DC angles, mean set-point
        magnitude), "flat", "dc", "results" (warm start).  Default: "results" after a converged
        solve, else the grid's ``init``.  ``algorithm``: "nr", "iwamoto_nr" or "dc".  Any other runpp
        option by its pandapower name (docs/model-notes.md, "runpp options"); an unmodelled one is
        an OptionError and nothing runs."""
        t0 = time.perf_counter()
        eng = self._engine
        own = self._own
        if own is None:
            own = self._plain_options()
        if options or algorithm is not None and algorithm != own[2] or qlim is not None and qlim is not own[3] or \
                distributed_slack is not None and distributed_slack is not own[4]:
            # options of this solve only (the next plain solve re-configures the engine)
            if qlim is not None:
                from . import options as O

                O.check("qlim", qlim)  # a bad value named as typed (resolved as enforce_q_lims)
            named = {"tolerance_mva": tolerance_mva, "max_iteration": max_iteration, "init": init,
                     "algorithm": algorithm, "enforce_q_lims": qlim, "distributed_slack": distributed_slack}
            o = self._solve_options({**options, **{k: v for k, v in named.items() if v is not None}})
            tol, max_it, algorithm = float(o["tolerance_mva"]), int(o["max_iteration"]), o["algorithm"]
            qlim, distributed_slack = bool(o["enforce_q_lims"]), bool(o["distributed_slack"])
            if init is None and o["init"] != own[6]:
                init = o["init"]
        else:  # the grid's own options (resolved while they stay)
            if self._engine_opts_stale:  # (the engine was configured by the last solve's options)
                own = self._plain_options()
            tol, max_it, algorithm, qlim, distributed_slack = own[:5]
            if tolerance_mva is not None or max_iteration is not None or init is not None and init not in _INITS:
                # per-call numbers that configure nothing: checked alone (no option resolution)
                from . import options as O

                if tolerance_mva is not None:
                    tol = float(O.check("tolerance_mva", tolerance_mva))
                if max_iteration is not None:
                    max_it = int(O.check("max_iteration", max_iteration))
                if init is not None:
                    init = O.check("init", init)
            if init is None:
                init = own[5]
        self._results = None
        if v_init is None and self._v_init is not None:
            v_init = self._v_init
        self._v_init = None
        if algorithm == "dc" and distributed_slack:
            raise SchemaError("distributed_slack is an AC option; use algorithm='nr'", field="distributed_slack")
        pre = None
        if algorithm == "dc":
            conv, it, norm, level = eng.solve_dc()
        elif algorithm == "nr" or algorithm == "iwamoto_nr":
            vi = None
            if v_init is not None:
                pre = eng.prepare()  # the model must exist to place v_init on its buses
                vi = self._to_internal(v_init)
            # init None: a warm start from the last converged voltages of the same model, else
            # the grid's init
            conv, it, norm, level = eng.solve(init, tol, max_it, qlim, vi, distributed_slack, own[6])
        else:
            raise SchemaError(f"unknown algorithm {algorithm!r}; use 'nr' or 'dc'", field="algorithm")
        d = self._since_solve  # (after the engine: a refused solve leaves it as it was)
        if d.rows or d.network:
            d.clear()
        if pre is not None and pre != "none":
            level = pre
        rep = _report(conv, it, (time.perf_counter() - t0) * 1e3, level, norm, algorithm)
        self._last = rep
        j = self._journal
        if j is not None and not self._read_only:
            ds = algorithm != "dc" and bool(distributed_slack)
            j.record_solve(conv, it, norm, rep.runtime_ms, level, algorithm, ds, _version())
            if self._editor is None:
                j.flush()
                self._history.committed(1, solve=True)
            else:
                self._editor.events += 1
        return rep

    def _plain_options(self) -> tuple:
        """The grid's own options resolved (this configures the engine), kept for plain solves
        while no grid option is set: (tolerance_mva, max_iteration, algorithm, enforce_q_lims,
        distributed_slack, the init a solve without one takes (None: warm start, else the grid's
        init), the grid's init)."""
        o = self._solve_options({})
        g_init = self.init
        own = self._own = (float(o["tolerance_mva"]), int(o["max_iteration"]), o["algorithm"], bool(o["enforce_q_lims"]),
                           bool(o["distributed_slack"]), None if o["init"] == g_init else o["init"], g_init)
        return own

    def _solve_options(self, given: dict) -> dict:
        """This solve's runpp options (gridtape.options): the grid's, with the ones given here
        on top; validated before anything runs; handed to the engine."""
        from gridtape.solver_cy.modelopts import ModelOptions

        from . import options as O

        self._engine_opts_stale = bool(given)  # the next plain solve re-configures the engine
        # the grid's options count as passed to every solve, as runpp arguments would
        merged = {**self._explicit, "enforce_q_lims": self.qlim, "tolerance_mva": self.tolerance_mva,
                  "max_iteration": self.max_iteration, "init": self.init, "distributed_slack": self.distributed_slack,
                  **{k: v for k, v in given.items() if v is not None}}
        o = O.resolve(merged, stored=self._stored)
        if o["algorithm"] == "dc":
            o = self._dc_options(given)
        if o["algorithm"] != "nr" and o["distributed_slack"]:
            raise O.option_error(f"distributed_slack is modelled with algorithm='nr' only (as in pandapower), not "
                                 f"{o['algorithm']!r}", "distributed_slack")
        if o["enforce_p_lims"]:
            O.check_p_limits(self._world)
        angles = O.voltage_angles(o["calculate_voltage_angles"], self._world, o["algorithm"])
        self._engine.configure(
            ModelOptions(trafo_model=o["trafo_model"], voltage_angles=angles,
                         line_temperature=o["consider_line_temperature"], trafo3w_losses=o["trafo3w_losses"],
                         switch_rx_ratio=o["switch_rx_ratio"],
                         neglect_open_switch_branches=o["neglect_open_switch_branches"]),
            voltage_angles=angles, voltage_depend_loads=o["voltage_depend_loads"],
            enforce_p_lims=o["enforce_p_lims"], trafo_loading=o["trafo_loading"], delta_q=o["delta_q"],
            algorithm=o["algorithm"], check_connectivity=o["check_connectivity"],
            voltage_depend_loads_stored=bool(o["voltage_depend_loads"] and o["algorithm"] != "dc"
                                             and self._stored.get("voltage_depend_loads", False)))
        return o

    def _dc_options(self, given: dict) -> dict:
        """The options of a DC solve, as rundcpp takes them (gridtape.options.dc_options): the
        net's stored options do not count (rundcpp ignores net.user_pf_options), the grid's and
        this solve's explicit ones do; ``algorithm="dc"`` itself must be explicit (a stored one
        makes pandapower's runpp fail: OptionError)."""
        from . import options as O

        explicit = {**self._explicit, **{k: v for k, v in given.items() if v is not None}}
        if explicit.get("algorithm") != "dc":
            raise O.option_error("algorithm='dc' stored in the net's user_pf_options is refused: pandapower's runpp "
                                 "fails on it (rundcpp ignores stored options); pass algorithm='dc' to solve() or "
                                 "PowerGrid instead", "algorithm")
        # the grid's distributed_slack counts unless it is the net's stored one
        if "distributed_slack" not in explicit and ("distributed_slack" not in self._stored
                                                    or self.distributed_slack != self._options["distributed_slack"]):
            explicit["distributed_slack"] = self.distributed_slack
        return O.dc_options(explicit)

    def _to_internal(self, v):
        v = np.asarray(v, dtype=complex)
        bus = self._world["bus"]
        if v.shape != (len(bus),):
            raise SchemaError(f"v has shape {v.shape}, expected ({len(bus)},) in bus-id order", field="v")
        order = np.argsort(bus.ids, kind="stable")
        rows = np.empty(len(bus), dtype=complex)
        rows[order] = v
        topo = self._engine.topo
        V = np.ones(topo.nb, dtype=complex)
        V[topo.lookup] = rows
        return V

    @property
    def converged(self) -> bool:
        return bool(self._last and self._last.converged)

    @property
    def iterations(self) -> int:
        return self._last.iterations if self._last else 0

    @property
    def last_report(self) -> SolveReport | None:
        return self._last

    @property
    def v(self) -> np.ndarray:
        """Complex bus voltages (p.u.) in bus-id order; NaN at unsupplied buses and after divergence."""
        eng = self._engine
        bus = self._world["bus"]
        if self._last is None or eng.V is None:
            raise NotSolvedError("no solve has run yet", field="v")
        if not self.converged:
            return np.full(len(bus), np.nan + 1j * np.nan)
        order = np.argsort(bus.ids, kind="stable")
        return eng.V[eng.topo.lookup][order]

    @v.setter
    def v(self, value):
        n = len(self._world["bus"])
        value = np.asarray(value, dtype=complex)
        if value.shape != (n,):
            raise SchemaError(f"v has shape {value.shape}, expected ({n},) in bus-id order", field="v")
        self._v_init = value.copy()

    # --- results -------------------------------------------------------------------------
    def post_process(self) -> dict:
        """Compute every result table now (they are otherwise built lazily on first access)."""
        if self._results is None:
            if self._last is None:
                raise NotSolvedError("no solve has run yet: call solve() first")
            changed = self._since_solve
            eng = self._engine
            if changed.rows or changed.network or (eng.level() == "full" and eng.solved) or eng.model is not eng.cache.model:
                raise NotSolvedError(
                    "elements were added or removed, switched, or a network value changed since the last solve: "
                    f"call solve() for results ({', '.join(sorted(changed.rows)) or 'network or topology'} changed)")
            if not self._last.converged:
                self._results = R.empty_tables(self._world)
            else:
                self._results = R.compute(self._engine, self.branch_analysis)
        return self._results

    def result(self, kind: str):
        return self.post_process()[kind].copy()

    def summary(self) -> dict:
        rep = self._last
        out = {"case": self.case_path, "buses": len(self._world["bus"]), "elements": self._world.counts()}
        if rep is not None:
            out.update(converged=rep.converged, iterations=rep.iterations, runtime_ms=round(rep.runtime_ms, 3),
                       rebuild=rep.rebuild, algorithm=rep.algorithm)
            if rep.converged:
                rb = self.post_process()["bus"]
                out.update(vm_min_pu=float(np.nanmin(rb.vm_pu)), vm_max_pu=float(np.nanmax(rb.vm_pu)),
                           p_load_mw=float(np.nansum(self.post_process()["load"].p_mw)),
                           unsupplied_buses=int(rb.vm_pu.isna().sum()))
        return out


_VERSION = []


_INITS = frozenset(("auto", "flat", "dc", "results"))  # the init values (gridtape.options checks them)


def _version() -> str:
    """gridtape's version (what every solve event records)."""
    if not _VERSION:
        from gridtape import __version__

        _VERSION.append(__version__)
    return _VERSION[0]


def _result_property(kind):
    def get(self):
        return self.result(kind)

    get.__doc__ = f"res_{kind} as a DataFrame with pandapower's columns (built lazily)."
    return property(get)
