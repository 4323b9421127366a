"""PowerGrid's solve dispatch and result access (a mixin of gridtape.grid.PowerGrid): ``solve()``
with its per-call options, the solve report, the bus voltages, and the ``res_*`` tables built
lazily from the solver's result arrays (solver_cy/results.py)."""
from __future__ import annotations

import time
from dataclasses import dataclass

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


class Solving:
    """Solving and results of a PowerGrid (its attributes are set by PowerGrid.__init__)."""

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
        last = self._last_opts
        if last is None or (t := last[0])[0] is not self.qlim or t[1] is not self.tolerance_mva or \
                t[2] is not self.max_iteration or t[3] is not self.init or t[4] is not self.distributed_slack:
            # the grid's own options, resolved once while they stay (this configures the engine)
            o = self._solve_options({})
            last = self._last_opts = (
                (self.qlim, self.tolerance_mva, self.max_iteration, self.init, self.distributed_slack),
                o, (o["tolerance_mva"], o["max_iteration"], o["algorithm"], o["enforce_q_lims"],
                    o["distributed_slack"], o["init"]))
        own = last[2]
        if options or algorithm is not None and algorithm != own[2] or qlim is not None and qlim is not own[3] or \
                distributed_slack is not None and distributed_slack is not own[4]:
            # options of this solve only (the next plain solve re-configures the engine)
            named = {"tolerance_mva": tolerance_mva, "max_iteration": max_iteration, "init": init,
                     "algorithm": algorithm, "enforce_q_lims": qlim, "distributed_slack": distributed_slack}
            o = self._solve_options({**options, **{k: v for k, v in named.items() if v is not None}})
        else:
            if self._engine_opts_stale:
                self._solve_options({})
            o = None
            if tolerance_mva is not None or max_iteration is not None or \
                    init is not None and init not in _INITS:
                # per-call numbers that configure nothing: checked alone (no option resolution)
                from . import options as O

                o = dict(last[1])
                for k, v in (("tolerance_mva", tolerance_mva), ("max_iteration", max_iteration), ("init", init)):
                    if v is not None:
                        o[k] = O.check(k, v)
        if o is None:  # the grid's own options (resolved above)
            tolerance_mva, max_iteration, algorithm, qlim, distributed_slack, oinit = last[2]
        else:
            tolerance_mva, max_iteration, algorithm = o["tolerance_mva"], o["max_iteration"], o["algorithm"]
            qlim, distributed_slack, oinit = o["enforce_q_lims"], o["distributed_slack"], o["init"]
        if init is None and oinit != self.init:
            init = oinit
        self._results = None
        if v_init is None and self._v_init is not None:
            v_init = self._v_init
        self._v_init = None
        if algorithm == "dc" and distributed_slack:
            raise SchemaError("distributed_slack is an AC option; use algorithm='nr'", field="distributed_slack")
        if algorithm == "dc":
            conv, it, norm, level = eng.solve_dc()
        elif algorithm in ("nr", "iwamoto_nr"):
            if init is None and not (eng.V is not None and eng.converged and eng.level() != "full"):
                init = self.init
            vi = None
            pre = None
            if v_init is not None:
                pre = eng.prepare()  # the model must exist to place v_init on its buses
                vi = self._to_internal(v_init)
            conv, it, norm, level = eng.solve(
                init=init, tol=self.tolerance_mva if tolerance_mva is None else float(tolerance_mva),
                max_iter=self.max_iteration if max_iteration is None else int(max_iteration),
                qlim=self.qlim if qlim is None else bool(qlim), v_init=vi,
                distributed_slack=self.distributed_slack if distributed_slack is None else bool(distributed_slack))
        else:
            raise SchemaError(f"unknown algorithm {algorithm!r}; use 'nr' or 'dc'", field="algorithm")
        self._since_solve.clear()  # (after the engine: a refused solve leaves it as it was)
        if algorithm != "dc" and pre not in (None, "none"):
            level = pre
        rep = SolveReport(conv, it, (time.perf_counter() - t0) * 1e3, level, norm, algorithm)
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


_INITS = ("auto", "flat", "dc", "results")  # the init values (gridtape.options checks them)


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
