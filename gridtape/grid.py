"""PowerGrid: the public face.  Load a case, solve it, read pandapower-compatible results."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gridtape.errors import NotSolvedError, SchemaError
from gridtape.solver_cy import results as R
from gridtape.solver_cy.engine import Engine
from gridtape.world import World

from .handles import Handle, find_branch, find_by_bus


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


class PowerGrid:
    """A power network, its solver state and its results.

    ``PowerGrid(case_path=None, qlim=False, **kwargs)``: ``case_path`` is a pandapower JSON file, a
    CSV-zip case (``cases/IEEE118/data.zip``), a MATPOWER ``.m`` file or a case directory.
    Keyword arguments: ``branch_analysis`` (loading columns, default True), ``tolerance_mva``
    (1e-8), ``max_iteration`` (10), ``init`` ("auto"), ``trafo_model`` ("t").
    """

    def __init__(self, case_path=None, qlim: bool = False, *, world: World | None = None,
                 branch_analysis: bool = True, tolerance_mva: float = 1e-8, max_iteration: int = 10,
                 init: str = "auto", trafo_model: str = "t"):
        if world is None:
            if case_path is None:
                world = World(sn_mva=1.0)
            else:
                from gridtape.world.io import load_case

                world = load_case(case_path)
        self.case_path = None if case_path is None else str(case_path)
        self._world = world
        self.qlim = bool(qlim)
        self.branch_analysis = bool(branch_analysis)
        self.tolerance_mva = float(tolerance_mva)
        self.max_iteration = int(max_iteration)
        self.init = init
        self._engine = Engine(world, trafo_model=trafo_model)
        self._results = None
        self._v_init = None
        self._last = None

    # --- construction helpers ------------------------------------------------------------
    @classmethod
    def from_pandapower(cls, net, **kwargs) -> "PowerGrid":
        from gridtape.world.io_pandapower import from_pandapower

        return cls(world=from_pandapower(net), **kwargs)

    def to_pandapower(self):
        from gridtape.world.io_pandapower import to_pandapower

        return to_pandapower(self._world)

    @property
    def world(self) -> World:
        return self._world

    # --- solving -------------------------------------------------------------------------
    def solve(self, v_init=None, *, tolerance_mva: float | None = None, max_iteration: int | None = None,
              init: str | None = None, algorithm: str = "nr", qlim: bool | None = None) -> SolveReport:
        """Run a power flow.  ``v_init`` (complex, bus-id order) only changes the starting point:
        set-points are re-pinned.  ``init``: "auto" (pandapower's: DC angles, mean set-point
        magnitude), "flat", "dc", "results" (warm start).  Default: "results" after a converged
        solve, else the grid's ``init``.  ``algorithm``: "nr" or "dc"."""
        t0 = time.perf_counter()
        eng = self._engine
        self._results = None
        if v_init is None and self._v_init is not None:
            v_init = self._v_init
        self._v_init = None
        if algorithm == "dc":
            conv, it, norm, level = eng.solve_dc()
        elif algorithm == "nr":
            if init is None and not (eng.V is not None and eng.converged and eng.level() != "full"):
                init = self.init
            vi = None
            if v_init is not None:
                eng.prepare()
                vi = self._to_internal(v_init)
            conv, it, norm, level = eng.solve(
                init=init, tol=self.tolerance_mva if tolerance_mva is None else float(tolerance_mva),
                max_iter=self.max_iteration if max_iteration is None else int(max_iteration),
                qlim=self.qlim if qlim is None else bool(qlim), v_init=vi)
        else:
            raise SchemaError(f"unknown algorithm {algorithm!r}; use 'nr' or 'dc'", field="algorithm")
        rep = SolveReport(conv, it, (time.perf_counter() - t0) * 1e3, level, norm, algorithm)
        self._last = rep
        return rep

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

    # --- handles -------------------------------------------------------------------------
    def element(self, kind: str, eid):
        t = self._world[kind]
        return Handle(self, kind, int(eid)) if eid is not None and int(eid) in t.positions else None

    def bus(self, i):
        return self.element("bus", i)

    def load(self, bus):
        return find_by_bus(self, "load", bus)

    def sgen(self, bus):
        return find_by_bus(self, "sgen", bus)

    def gen(self, bus):
        return find_by_bus(self, "gen", bus)

    def ext_grid(self, bus):
        return find_by_bus(self, "ext_grid", bus)

    def line(self, from_bus, to_bus):
        return find_branch(self, "line", "from_bus", "to_bus", from_bus, to_bus)

    def trafo(self, hv_bus, lv_bus):
        return find_branch(self, "trafo", "hv_bus", "lv_bus", hv_bus, lv_bus)

    def __repr__(self):
        n = len(self._world["bus"])
        state = "unsolved" if self._last is None else ("converged" if self.converged else "diverged")
        return f"<PowerGrid {self.case_path or '(in memory)'}: {n} buses, {state}>"


def _result_property(kind):
    def get(self):
        return self.result(kind)

    get.__doc__ = f"res_{kind} as a DataFrame with pandapower's columns (built lazily)."
    return property(get)


for _k in _RESULT_KINDS:
    setattr(PowerGrid, f"res_{_k}", _result_property(_k))
