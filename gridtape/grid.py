"""PowerGrid: the public face.  Load a case, solve it, read pandapower-compatible results."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from gridtape.errors import JournalError, NotSolvedError, ReadOnlyError, SchemaError
from gridtape.solver_cy import results as R
from gridtape.solver_cy.engine import Engine
from gridtape.world import World

from .handles import Handle, find_all_by_bus, find_branch, find_by_bus
from .history import History, open_journal
from .merge import Merging
from .writes import Writes


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


class PowerGrid(Writes, Merging):
    """A power network, its solver state and its results.

    ``PowerGrid(case_path=None, qlim=False, **kwargs)``: ``case_path`` is a pandapower JSON file, a
    CSV-zip case (``cases/IEEE118/data.zip``), a MATPOWER ``.m`` file or a case directory.
    Keyword arguments: ``branch_analysis`` (loading columns, default True), ``tolerance_mva``
    (1e-8), ``max_iteration`` (10), ``init`` ("auto"), ``trafo_model`` ("t"), ``distributed_slack``
    (False: pandapower's ``runpp(distributed_slack=True)`` when True, see docs/model-notes.md),
    ``reuse_lu`` (True: a warm incremental solve starts from the previous solve's LU factors and
    refactors only when they stop cutting the mismatch tenfold per step; False: every iteration
    is a full Newton step, as in pandapower; see docs/performance.md).  With a journal:
    ``snapshots`` (directory), ``checkpoint_every`` (50,000 events between automatic snapshots)
    and ``checkpoint_background`` (True: an automatic snapshot copies the world and writes it in a
    thread; False: it is written inside ``solve()``; see docs/time-travel.md).
    """

    def __init__(self, case_path=None, qlim: bool | None = None, *, world: World | None = None,
                 branch_analysis: bool = True, tolerance_mva: float | None = None, max_iteration: int | None = None,
                 init: str | None = None, trafo_model: str | None = None, journal=None, author: str | None = None,
                 read_only: bool = False, snapshots: str | None = None, checkpoint_every: int = 50_000,
                 _load_info: dict | None = None, distributed_slack: bool | None = None, reuse_lu: bool = True,
                 checkpoint_background: bool = True, **options):
        from . import options as O

        explicit = {k: v for k, v in (("enforce_q_lims", qlim), ("tolerance_mva", tolerance_mva),
                                      ("max_iteration", max_iteration), ("init", init), ("trafo_model", trafo_model),
                                      ("distributed_slack", distributed_slack)) if v is not None}
        explicit.update(options)
        O.resolve(explicit)  # an unknown option or a bad value: OptionError before anything is opened
        source = None if case_path is None else str(case_path)
        if world is None and case_path is not None:
            from gridtape.world.io import load_case

            world = load_case(case_path)  # before the journal opens: a bad case leaves nothing open
        j = open_journal(journal, author, read_only)
        try:
            self._setup(world, j, source, explicit, branch_analysis, read_only, snapshots, checkpoint_every,
                        _load_info, reuse_lu, checkpoint_background)
        except BaseException:
            if j is not None and j is not journal:  # ours: do not leave it open and locked
                j.close()
            raise

    def _setup(self, world, j, source, explicit, branch_analysis, read_only, snapshots, checkpoint_every,
               _load_info, reuse_lu, checkpoint_background):
        from . import options as O

        resumed = False
        if world is None:
            if j is not None and j.count():
                from gridtape.replay.materialize import materialize

                world = materialize(j)[0]  # resume the study at its head
                resumed = True
            else:
                world = World(sn_mva=1.0)
        self.case_path = source
        self._world = world
        #: what changed in the world since the last solve: results of a world whose elements changed
        #: since are refused (NotSolvedError), never computed on mismatched arrays
        self._since_solve = world.watch()
        # the net's stored runpp options (net.user_pf_options) apply where no option is given
        self._stored = dict(getattr(world, "pf_options", None) or {})
        self._explicit = {k: v for k, v in explicit.items()
                          if k not in ("enforce_q_lims", "tolerance_mva", "max_iteration", "init", "distributed_slack")}
        self._options = o = O.resolve(explicit, stored=self._stored)
        self.qlim = o["enforce_q_lims"]
        self.branch_analysis = bool(branch_analysis)
        self.tolerance_mva = o["tolerance_mva"]
        self.max_iteration = o["max_iteration"]
        self.init = o["init"]
        self.distributed_slack = o["distributed_slack"]
        self._engine = Engine(world, trafo_model=o["trafo_model"])
        self._last_opts = None  # (grid option values, resolved options) of plain solves
        self._engine_opts_stale = False
        self._engine.reuse_lu = bool(reuse_lu)
        self._results = None
        self._v_init = None
        self._last = None
        self._journal = j
        self._read_only = bool(read_only)
        self._editor = None
        self._history = History(self, j, snapshots=snapshots, checkpoint_every=checkpoint_every,
                                checkpoint_background=checkpoint_background)
        if j is not None and not resumed and not read_only:
            self._history.record_load(self._world, source, _load_info)

    # --- the journal and the history (gridtape/history.py) ------------------------------------
    @property
    def journal(self):
        """The :class:`gridtape.journal.Journal` recording this grid (None with ``journal=False``)."""
        return self._journal

    def _check_writable(self):
        if self._read_only:
            raise ReadOnlyError("this grid is read-only (a point of history or a read-only journal); "
                                "branch it to edit")
        j = self._journal
        if j is not None and j.closed:
            raise JournalError("the journal is closed: this grid can be read, not changed", file=j.path)

    def _changed(self):
        self._results = None

    def _pushed_tx(self, tx):
        self._history.pushed(tx)

    # the history's settings and state, kept as the grid's attributes
    snapshots = property(lambda self: self._history.snapshots,
                         lambda self, v: setattr(self._history, "snapshots", v))
    checkpoint_every = property(lambda self: self._history.checkpoint_every,
                                lambda self, v: setattr(self._history, "checkpoint_every", int(v)))
    checkpoint_background = property(lambda self: self._history.checkpoint_background,
                                     lambda self, v: setattr(self._history, "checkpoint_background", bool(v)))
    checkpoint_error = property(lambda self: self._history.checkpoint_error,
                                doc="what the last failed background checkpoint raised (None: none failed)")
    _bg = property(lambda self: self._history._bg, doc="the checkpoint being written (None: none)")
    _ckpt_seq = property(lambda self: self._history._ckpt_seq, doc="the first seq not covered by a checkpoint")

    def timeseries(self, profiles, outputs=None, *, independent=False, executor=None, progress=None, **kw):
        """A time series or scenario sweep from this point (docs/studies.md): gridtape.studies."""
        from gridtape.studies import run_timeseries

        return run_timeseries(self, profiles, outputs, independent=independent, executor=executor,
                              progress=progress, **kw)

    def flush(self) -> int:
        """Make every recorded event durable; returns the last durable seq (-1 without journal)."""
        return -1 if self._journal is None else self._journal.flush()

    def close(self) -> None:
        """Flush and close the journal (the grid stays usable for reading).  A checkpoint still
        being written in the background is waited for and recorded first."""
        self._history.close()

    def __del__(self):
        h = getattr(self, "_history", None)
        if h is not None:
            h.finalize()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def log(self, since=None, until=None, author=None, kind=None, event=None):
        """The journal as a DataFrame (seq, tx, time, author, message, event, kind, eid, field, old,
        new, info), filtered by seq or time range, author, element kind and event kind.  Hashes
        read as hex text."""
        log = self._history.need("log()").log(since=since, until=until, author=author, kind=kind, event=event)
        for c in log.columns:
            if log[c].dtype == object and len(log) and isinstance(log[c].iloc[0], (bytes, bytearray, memoryview)):
                log[c] = [None if v is None else bytes(v).hex() for v in log[c].tolist()]
        return log

    def history(self, kind: str, eid, field: str):
        """Every event that set ``kind`` ``eid`` ``field``, oldest first."""
        return self._history.need("history()").history(kind, int(eid), field)

    def undo(self, author: str | None = None):
        """Undo the latest not yet undone edit transaction by appending its compensating events
        (history is never rewritten).  Returns the undone transaction id, or None if nothing is left."""
        return self._history.step("undo", author)

    def redo(self, author: str | None = None):
        """Re-apply the latest undone transaction (as new events).  Returns its id, or None."""
        return self._history.step("redo", author)

    def tag(self, name: str, author: str | None = None) -> int:
        """Name the current point of history (``study.at(tag=name)``); returns its seq."""
        return self._history.tag(name, author)

    def snapshot(self, message: str | None = None, author: str | None = None):
        """Checkpoint the world as a manifested Parquet snapshot (docs/snapshot-format.md) in
        ``self.snapshots`` (default: ``<journal>.snapshots`` beside the journal file) and record it
        in the journal.  Returns the manifest."""
        return self._history.snapshot(message, author)

    def wait_checkpoint(self):
        """Wait for the automatic checkpoint being written in the background (if any) and record
        its ``snapshot`` event; returns its manifest, or None (none in flight, or it failed: see
        ``checkpoint_error``).  ``close()`` does this too."""
        return self._history.wait_checkpoint()

    # --- construction helpers ------------------------------------------------------------
    @classmethod
    def from_pandapower(cls, net, **kwargs) -> "PowerGrid":
        """A grid of a pandapower net; the runpp options the net stores (``net.user_pf_options``)
        apply to its solves where no option is given (an unmodelled one: OptionError)."""
        from gridtape.world.io_pandapower import from_pandapower

        return cls(world=from_pandapower(net), **kwargs)

    def to_pandapower(self):
        from gridtape.world.io_pandapower import to_pandapower

        return to_pandapower(self._world)

    @property
    def world(self) -> World:
        return self._world

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
            algorithm=o["algorithm"])
        return o

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

    # --- handles -------------------------------------------------------------------------
    def element(self, kind: str, eid):
        """The handle of element ``eid`` of ``kind`` (None when there is none); an id that is not
        an integer (NaN, 0.5, "x") raises BadReferenceError."""
        from gridtape.world.coerce import one_id

        t = self._world[kind]
        if eid is None:
            return None
        eid = one_id(eid, kind)
        return Handle(self, kind, eid) if eid in t.positions else None

    def bus(self, i):
        return self.element("bus", i)

    def load(self, bus):
        return find_by_bus(self, "load", bus)

    def loads(self, bus) -> list:
        """Every load at ``bus`` (a list of handles, empty when none)."""
        return find_all_by_bus(self, "load", bus)

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


for _k in _RESULT_KINDS:
    setattr(PowerGrid, f"res_{_k}", _result_property(_k))
