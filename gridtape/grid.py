"""PowerGrid: the public face.  Load a case, solve it, read pandapower-compatible results.

The facade and its history live here; writes are gridtape/writes.py (``Writes``), solving and
result access gridtape/solving.py (``Solving``, ``SolveReport``)."""
from __future__ import annotations

from gridtape.errors import JournalError, ReadOnlyError
from gridtape.solver_cy.engine import Engine
from gridtape.world import World

from .handles import Handle, find_all_by_bus, find_branch, find_by_bus
from .history import History, open_journal
from .solving import _RESULT_KINDS, SolveReport, Solving, _result_property  # noqa: F401  (SolveReport re-exported)
from .merge import Merging
from .writes import Writes


class PowerGrid(Solving, Writes, Merging):
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

        if qlim is not None:
            O.check("qlim", qlim)  # a bad value named as typed (resolve() knows it as enforce_q_lims)
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
        #: since are refused (NotSolvedError), never computed on mismatched arrays (rows and network
        #: values only: column writes are the model cache's to judge)
        self._since_solve = world.watch(cols=False)
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
        self._own = None  # the options of plain solves, resolved (Solving._plain_options)
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

    def timeseries(self, profiles, outputs=None, *, independent=False, executor=None, progress=None, out_dir=None,
                   chunk_size=None, overlap=None, qlim=None, tolerance_mva=None, max_iteration=None, init=None,
                   distributed_slack=None):
        """A time series or scenario sweep from this point (docs/studies.md): gridtape.studies.

        The steps solve with the grid's own options (the constructor's ``qlim``, ``tolerance_mva``,
        ``max_iteration``, ``init``, ``distributed_slack``; not those of an earlier ``solve(...)``
        call) unless given here, for this run only (validated as ``solve`` validates them, and
        recorded in the study event's options).  ``out_dir``: where the outputs are written
        (default: beside the journal, or in memory without a journal file); ``chunk_size``
        (>= 1, default 256) and ``overlap`` (>= 0, default 8): the chunks of an executor run."""
        from gridtape.studies import run_timeseries
        from gridtape.studies.timeseries import run_options

        opts = run_options(self, {"qlim": qlim, "tolerance_mva": tolerance_mva, "max_iteration": max_iteration,
                                  "init": init, "distributed_slack": distributed_slack})
        return run_timeseries(self, profiles, outputs, independent=independent, executor=executor, progress=progress,
                              out_dir=out_dir, chunk_size=chunk_size, overlap=overlap, options=opts)

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

    def table(self, kind: str):
        """The element table ``kind`` as pandapower shows it (``net.line``): a DataFrame of every
        schema column (and the extra columns a case carried), indexed by element id.  A copy: it
        never changes the grid; write through handles, ``set`` or an edit block."""
        df = self._world[kind].to_frame()
        return df.copy(deep=True)

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


for _k in _RESULT_KINDS:
    setattr(PowerGrid, f"res_{_k}", _result_property(_k))
