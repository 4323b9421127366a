"""The step loop of a study: one private copy of the base world, one engine, chunks of steps.

A :class:`Runner` holds a copy of the base world (never the user's grid: the user's world and
journal are left as they are), solves the base point once, then runs chunks of steps, keeping
the requested outputs of each, or NaN when a step does not converge.  Two paths:

- the batch path (steps that write constant-power set-points only; solver_cy/batch.py): the
  step's injection arrays come from the chunk's injection map, the Newton solver is called
  directly on them, the outputs are computed per chunk, the world is written once per chunk;
- otherwise, per step: the profiled columns through the world's write path, the engine's solve
  (its model cache refreshes what the write affects), the outputs.

Two modes:

- chained (a time series): each step warm-starts from the previous converged one (with the LU
  reuse of incremental solves); after a step that does not converge, the next starts again from
  the base state.  A chunk that does not begin the series first runs ``overlap`` steps before
  it (their outputs dropped), starting from the base state, so it is warm when it reaches its
  first own step: equal to the one-chunk run to the solver tolerance.
- independent (a sweep): every step starts from the base point's voltages and from the KLU
  factors of the *priming* solve (a fixed solve of the base point, made when the runner is
  built): chord steps on the batch path, Newton steps refactored with the step's values on the
  other; a step that moved the solver's state (a refactorization, a chord back-off, a
  divergence) is followed by a restoring of the primed factors (one refactorization of the kept
  Jacobian, NewtonSolver.restore), a step that chose a new pivot order by a new priming.  So a step's
  result is a function of the base point and that step's values alone: bit-identical whatever
  the chunking, the executor and the order of the chunks.
"""
from __future__ import annotations

import copy

import numpy as np

from gridtape.errors import GridtapeError

from .outputs import Extractor


def step_error(err, profiles, k):
    """``err`` (a gridtape error raised while step ``k`` was written or solved, e.g. the model
    build refusing a branch without impedance) again, of its class, naming the step's label and
    the profiled (table, field) it comes from, beside what it says."""
    label = profiles.index[k] if 0 <= k < len(profiles.index) else k
    mine = [(e.kind, e.field) for e in profiles.entries if err.table is None or e.kind == err.table]
    if err.table is not None and err.row is not None:
        # the profiled columns of that very element, when the error names one
        exact = [(e.kind, e.field) for e in profiles.entries
                 if e.kind == err.table and err.row in set(int(i) for i in e.ids)]
        mine = exact or mine
    mine = mine or [(e.kind, e.field) for e in profiles.entries]
    what = ", ".join(f"{t}.{f}" for t, f in mine)
    field = err.field if err.field is not None or len(mine) != 1 else mine[0][1]
    msg = f"step {label!s} (index {k}; profiled {what}): {err.message}"
    new = copy.copy(err)  # of its class, with its location (GridtapeError.__reduce__)
    new.message, new.field, new.step = msg, field, label
    where = new._where()
    new.args = (f"{msg} [{', '.join(where)}]" if where else msg,)
    return new


class ChunkResult:
    """The outputs of steps ``start`` .. ``start + n``: converged, iterations, mismatch, and
    one (n x elements) float64 array per output."""

    __slots__ = ("start", "converged", "iterations", "mismatch", "values", "seconds")

    def __init__(self, start, n, sizes, batch=False, dest=None):
        self.start = start
        self.converged = np.zeros(n, bool)
        self.iterations = np.zeros(n, np.int32)
        self.mismatch = np.full(n, np.nan)
        if dest is not None:  # the sink's rows (filled by the run, NaN where a step fails)
            self.values = dest
            if not batch:
                for a in dest:
                    a.fill(np.nan)
        else:
            self.values = [np.empty((n, m)) if batch else np.full((n, m), np.nan) for m in sizes]
        self.seconds = 0.0

    def __len__(self):
        return len(self.converged)


class Runner:
    """Runs chunks of one study's steps on a private world.  ``options``: tolerance_mva,
    max_iteration, init, trafo_model, reuse_lu, qlim, distributed_slack."""

    def __init__(self, world, outputs, options: dict):
        from gridtape.solver_cy.engine import Engine

        self.world = world
        self.opt = dict(options)
        self.engine = Engine(world, trafo_model=self.opt.get("trafo_model", "t"))
        self.engine.reuse_lu = bool(self.opt.get("reuse_lu", True))
        self.extract = Extractor(world, outputs)
        eng = self.engine
        eng.prepare()
        init = self.opt.get("init", "auto")
        self._v_start = eng.initial_voltage("flat" if init == "results" else init)
        conv, *_ = self._solve(v_init=self._v_start)
        self.base_converged = bool(conv)
        self.v_base = eng.V.copy() if conv else None
        inj = eng.inj
        self._prime_args = (eng.ydata.copy(), inj.s0.copy(), inj.si.copy(), inj.sz.copy())
        self._plain = not (self.opt.get("qlim") or self.opt.get("distributed_slack"))
        self._prime()
        self._map = None  # (profiles, solver_cy.batch.InjectionMap or None), built on first run
        self._vwarm = None  # the last converged voltages of a chained batch run
        self._inj_scratch = {}  # a chunk's injection arrays, kept from chunk to chunk

    def _batch_map(self, profiles):
        """The injection map of ``profiles`` when its steps can take the batch path (see
        solver_cy/batch.py), else None.  Built once, on the base world."""
        if self._map is not None and self._map[0] is profiles:
            return self._map[1]
        from gridtape.solver_cy import batch

        m = None
        if self._plain and not self.extract._slow and batch.linear(profiles.columns):
            try:
                m = batch.InjectionMap(self.engine, self.world, [(e.kind, e.field, e.rows) for e in profiles.entries])
            except ValueError:
                m = None
        self._map = (profiles, m)
        return m

    # --- solving ---------------------------------------------------------------------------
    def _solve(self, v_init=None, init=None):
        o = self.opt
        return self.engine.solve(init=init, tol=float(o.get("tolerance_mva", 1e-8)),
                                 max_iter=int(o.get("max_iteration", 10)), qlim=bool(o.get("qlim", False)),
                                 v_init=v_init, distributed_slack=bool(o.get("distributed_slack", False)))

    def _solver(self):
        eng = self.engine
        return eng._newton(eng.topo.pv, eng.topo.pq)

    def _prime(self):
        """A new Newton solver whose numeric factorization comes from one fixed solve of the base
        point (from its start voltages): the state every independent step starts from."""
        _drop_solvers(self.engine)
        s = self._solver()
        y, s0, si, sz = self._prime_args
        s.solve(y, s0, si, sz, self._v_start.copy(), float(self.opt.get("tolerance_mva", 1e-8)),
                int(self.opt.get("max_iteration", 10)))
        s.keep()  # a step that refactors is followed by s.restore(), not by a new priming
        self._primed = s

    def _restored(self, s) -> bool:
        """Whether solver ``s`` is in its primed state, restoring it (NewtonSolver.restore: one
        refactorization) when steps left it; False when it cannot be (another solver, a new pivot
        order): then it must be primed again."""
        return s is self._primed and (not s.left_kept or s.restore())

    def _start_state(self):
        """The base state a step (re)starts from: the base point's voltages, or its start
        voltages when the base point itself does not converge."""
        return self.v_base if self.v_base is not None else self._v_start

    # --- chunks ------------------------------------------------------------------------------
    def run(self, profiles, start: int, stop: int, independent: bool, overlap: int = 0,
            fresh: bool = True, progress=None, dest=None) -> ChunkResult:
        """Steps ``start`` .. ``stop`` of ``profiles``.  Chained: ``fresh`` restarts from the base
        state (after ``overlap`` warm-up steps before ``start``); ``fresh=False`` continues from
        where the previous chunk of this runner ended.  ``dest``: the arrays (steps x elements,
        one per output) the outputs are written into (None: new ones)."""
        import time

        t0 = time.perf_counter()
        bmap = self._batch_map(profiles)
        res = ChunkResult(start, stop - start, self.extract.sizes, batch=bmap is not None, dest=dest)
        if bmap is not None:
            if fresh and not independent:
                self._prime()
                self._vwarm = None
                if start > 0 and overlap > 0:
                    self._run_batch(bmap, profiles, max(0, start - overlap), start, False, None)
            self._run_batch(bmap, profiles, start, stop, independent, res)
            if progress is not None:
                progress(stop - start)
        elif independent:
            self._run_independent(profiles, start, stop, res, progress)
        else:
            if fresh:
                self._prime()
                warm = False
                k = start
                try:
                    for k in range(max(0, start - overlap), start):
                        profiles.write_step(self.world, k)
                        warm = self._chained_step(warm)[0]
                except GridtapeError as e:
                    raise step_error(e, profiles, k) from e
                self._warm = warm
            self._run_chained(profiles, start, stop, res, progress)
        res.seconds = time.perf_counter() - t0
        return res

    def _run_batch(self, bmap, profiles, start, stop, independent, res):
        """Steps ``start`` .. ``stop`` on the batch path: injection arrays from the map, the Newton
        solver called directly (warm start and LU reuse when chained), outputs per chunk."""
        import numpy as np

        from gridtape.solver_cy.batch import none_buses
        from gridtape.solver_cy.newton import solve_steps

        n = stop - start
        inj = bmap.chunk([e.values[start:stop] for e in profiles.entries], self._inj_scratch)
        eng = self.engine
        nb = eng.topo.nb
        y = self._prime_args[0]
        tol, mi = float(self.opt.get("tolerance_mva", 1e-8)), int(self.opt.get("max_iteration", 10))
        reuse_lu = bool(self.opt.get("reuse_lu", True))
        v0 = self._start_state().copy()
        none = none_buses(eng.topo)
        v0[none] = 1.0
        Vs, VM, VA = self._scratch(n, nb)
        ok = np.zeros(n, np.uint8)
        its = np.zeros(n, np.int32)
        norms = np.full(n, np.nan)
        S0, SI, SZ = inj.arrays()
        warm = not independent and self._vwarm is not None
        V = self._vwarm if warm else v0.copy()  # the working voltages (chained: the last converged)
        solver = self._solver()
        i = 0
        while i < n:
            # the step loop runs in the kernel; an independent sweep's comes back after a step
            # that moved the solver's state (or failed): the solver is primed again
            i, warm = solve_steps(solver, y, S0, SI, SZ, V, v0, warm, Vs, ok, its, norms, i, tol, mi, reuse_lu,
                                  independent, VM, VA)
            if independent and i and not self._restored(solver):
                self._prime()
                solver = self._solver()
        ok = ok.view(bool)
        self._vwarm = V if warm and not independent else None
        profiles.write_step(self.world, stop - 1)  # the world follows once per chunk
        if res is None:
            return
        Vs[:, none] = VM[:, none] = VA[:, none] = np.nan
        res.converged[:], res.iterations[:], res.mismatch[:] = ok, its, norms
        self.extract.rows_batch(eng, Vs, ok, inj, res.values, (VM, VA))

    def _scratch(self, n, nb):
        """(Vs, VM, VA) for a chunk of ``n`` steps, NaN: the chunk's voltages, kept from chunk to
        chunk (no fresh pages per chunk)."""
        b = getattr(self, "_scr", None)
        if b is None or len(b[0]) < n or b[0].shape[1] != nb:
            b = self._scr = (np.empty((n, nb), complex), np.empty((n, nb)), np.empty((n, nb)))
        out = tuple(a[:n] for a in b)
        for a in out:
            a.fill(np.nan)
        return out

    def _chained_step(self, warm):
        if warm:
            return self._solve(init="results")
        return self._solve(v_init=self._start_state())

    def _run_chained(self, profiles, start, stop, res, progress):
        warm = self._warm
        world, eng, rows = self.world, self.engine, self.extract.rows
        vals, conv_a, it_a, mis_a = res.values, res.converged, res.iterations, res.mismatch
        k = start
        try:
            for k in range(start, stop):
                profiles.write_step(world, k)
                conv, it, norm, _ = self._chained_step(warm)
                i = k - start
                conv_a[i], it_a[i], mis_a[i] = conv, it, norm
                if conv:
                    for a, r in zip(vals, rows(eng)):
                        a[i] = r
                warm = conv
                if progress is not None and (i & 63) == 63:
                    progress(64)
        except GridtapeError as e:
            raise step_error(e, profiles, k) from e
        self._warm = warm
        if progress is not None:
            progress((stop - start) & 63)

    def _run_independent(self, profiles, start, stop, res, progress):
        world, eng, rows = self.world, self.engine, self.extract.rows
        vals, conv_a, it_a, mis_a = res.values, res.converged, res.iterations, res.mismatch
        v0 = self._start_state()
        k = start
        try:
            for k in range(start, stop):
                profiles.write_step(world, k)
                conv, it, norm, _ = self._solve(v_init=v0)
                i = k - start
                conv_a[i], it_a[i], mis_a[i] = conv, it, norm
                if conv:
                    for a, r in zip(vals, rows(eng)):
                        a[i] = r
                if not self._plain or not self._restored(self._solver()):
                    self._prime()  # another solver or pivot order: a new primed factorization
                if progress is not None and (i & 63) == 63:
                    progress(64)
        except GridtapeError as e:
            raise step_error(e, profiles, k) from e
        if progress is not None:
            progress((stop - start) & 63)


def _drop_solvers(engine):
    """Forget the engine's Newton solvers of its current model (the next solve makes new ones)."""
    solvers = getattr(engine, "_solvers", None)
    if solvers is None:
        solvers = engine.model.solvers
    solvers.clear()
