"""PowerGrid: the public face.  Load a case, solve it, read pandapower-compatible results."""
from __future__ import annotations

import json
import os
import time
from array import array
from dataclasses import dataclass

import numpy as np

from gridtape.errors import JournalError, NotSolvedError, ReadOnlyError, SchemaError
from gridtape.solver_cy import results as R
from gridtape.solver_cy.engine import Engine
from gridtape.world import World

from .handles import Handle, find_all_by_bus, find_branch, find_by_bus


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
        j = _open_journal(journal, author, read_only)
        source = None if case_path is None else str(case_path)
        resumed = False
        if world is None:
            if case_path is not None:
                from gridtape.world.io import load_case

                world = load_case(case_path)
            elif j is not None and j.count():
                world = _materialize(j)  # resume the study at its head
                resumed = True
            else:
                world = World(sn_mva=1.0)
        self.case_path = source
        self._world = world
        # the net's stored runpp options (net.user_pf_options) apply where no option is given
        self._stored = dict(getattr(world, "pf_options", None) or {})
        self._explicit = {k: v for k, v in explicit.items()
                          if k not in ("enforce_q_lims", "tolerance_mva", "max_iteration", "init", "distributed_slack")}
        self._options = O.resolve(explicit, stored=self._stored)
        o = self._options
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
        self._done = None  # undo stack of transaction ids (built from the journal when first needed)
        self._undone = None  # redo stack
        from gridtape.replay.study import snapshot_dir

        self.snapshots = snapshots if snapshots is not None else snapshot_dir(None if j is None else j.path)
        self.checkpoint_every = int(checkpoint_every)
        self.checkpoint_background = bool(checkpoint_background)
        self.checkpoint_error = None  # what the last failed background checkpoint raised
        self._bg = None  # the background checkpoint in flight (replay.background.BackgroundSnapshot)
        self._ckpt_seq = 0 if j is None else j.next_seq
        if j is not None and not resumed and not read_only:
            self._record_load(source, _load_info)

    # --- the journal ---------------------------------------------------------------------
    @property
    def journal(self):
        """The :class:`gridtape.journal.Journal` recording this grid (None with ``journal=False``)."""
        return self._journal

    def _record_load(self, source, extra=None, data=None):
        from gridtape.replay.archive import case_zip_bytes

        j = self._journal
        sha = j.put_blob(case_zip_bytes(self._world) if data is None else bytes(data), name=source)
        info = {"blob": sha, "source": source, "buses": len(self._world["bus"]), **(extra or {})}
        j.begin(message=f"load {source}" if source else "load")
        j.record("load", None, None, None, None, None, json.dumps(info, separators=(",", ":")))
        j.commit()

    def _check_writable(self):
        if self._read_only:
            raise ReadOnlyError("this grid is read-only (a point of history or a read-only journal); "
                                "branch it to edit")

    def _changed(self):
        self._results = None

    def _flush_pending(self):
        pass

    def _pushed_tx(self, tx):
        if self._done is not None:
            self._done.append(tx)
            self._undone = array("q")

    def _write(self, kind, eid, name, value):
        """A validated single-cell write (handles call this): world, results, journal."""
        if self._read_only:
            self._check_writable()
        ed = self._editor
        if ed is not None:
            ed._touch(kind)
        w = self._world
        old, new = w.write_cell(kind, eid, name, value)
        self._results = None
        if ed is not None:
            ed.events.append(("set", kind, eid, name, old, new))
        j = self._journal
        if j is not None:
            j.record("set", kind, eid, name, old, new)
            if ed is None and self._done is not None:
                self._done.append(j.next_tx - 1)
                if self._undone:
                    self._undone = array("q")

    def set(self, kind: str, ids, field: str, values):
        """Vectorized write of one column for many elements (sweeps, time series): validated as a
        whole (nothing is written if any value is bad), one event per element, one transaction.
        ``set(kind, field, ids, values)`` (field before ids) is accepted too."""
        if isinstance(ids, str) and not isinstance(field, str):
            ids, field = field, ids
        self._check_writable()
        w = self._world
        t = w[kind]
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        ed = self._editor
        if ed is not None:
            ed._touch(kind)
        old = w.set_values(kind, ids, field, values)
        self._results = None
        new = t.cols[field][t.rows(ids)]
        if ed is not None:
            ed.events += [("set", kind, int(i), field, o, v) for i, o, v in zip(ids.tolist(), old.tolist(), new.tolist())]
        j = self._journal
        if j is not None and len(ids):
            j.record_many("set", kind, ids, field, old, new)
            if ed is None and self._done is not None:
                self._done.append(j.next_tx - 1)
                self._undone = array("q")

    def edit(self, author: str | None = None, message: str | None = None):
        """``with grid.edit(author=..., message=...) as e:`` -- an atomic transaction (GridEditor)."""
        from .editor import GridEditor

        return GridEditor(self, author, message)

    def flush(self) -> int:
        """Make every recorded event durable; returns the last durable seq (-1 without journal)."""
        return -1 if self._journal is None else self._journal.flush()

    def close(self) -> None:
        """Flush and close the journal (the grid stays usable for reading).  A checkpoint still
        being written in the background is waited for and recorded first."""
        try:
            if self._bg is not None:
                self._settle_checkpoint()  # may raise a CheckpointWarning turned into an error
        finally:
            if self._journal is not None:
                self._journal.close()
            if self._bg is not None:  # it could not be recorded (an open transaction): forget it
                self._settle_checkpoint()

    def __del__(self):
        if getattr(self, "_bg", None) is not None:
            try:
                self._settle_checkpoint()
            except Exception:  # noqa: BLE001 - nothing sensible to do in a finalizer
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _need_journal(self, what):
        if self._journal is None:
            raise JournalError(f"{what} needs a journal (this grid was made with journal=False)")
        return self._journal

    def log(self, since=None, until=None, author=None, kind=None, event=None):
        """The journal as a DataFrame (seq, tx, time, author, message, event, kind, eid, field, old,
        new, info), filtered by seq or time range, author, element kind and event kind.  Hashes
        read as hex text."""
        log = self._need_journal("log()").log(since=since, until=until, author=author, kind=kind, event=event)
        for c in log.columns:
            if log[c].dtype == object and len(log) and isinstance(log[c].iloc[0], (bytes, bytearray, memoryview)):
                log[c] = [None if v is None else bytes(v).hex() for v in log[c].tolist()]
        return log

    def history(self, kind: str, eid, field: str):
        """Every event that set ``kind`` ``eid`` ``field``, oldest first."""
        return self._need_journal("history()").history(kind, int(eid), field)

    # --- undo / redo ---------------------------------------------------------------------
    def _stacks(self):
        if self._done is None:
            self._done, self._undone = _undo_stacks(self._journal)
        return self._done, self._undone

    def undo(self, author: str | None = None):
        """Undo the latest not yet undone edit transaction by appending its compensating events
        (history is never rewritten).  Returns the undone transaction id, or None if nothing is left."""
        return self._step("undo", author)

    def redo(self, author: str | None = None):
        """Re-apply the latest undone transaction (as new events).  Returns its id, or None."""
        return self._step("redo", author)

    def _step(self, marker, author):
        self._check_writable()
        j = self._need_journal(f"{marker}()")
        done, undone = self._stacks()
        src, dst = (done, undone) if marker == "undo" else (undone, done)
        if not src:
            return None
        tx = src[-1]
        self._replay_tx(j.tx_events(tx), inverse=marker == "undo", marker=marker, tx=tx, author=author)
        src.pop()
        dst.append(tx)
        return tx

    def _replay_tx(self, events, inverse, marker, tx, author):
        ev = events[events["event"].isin(("set", "add", "remove", "network"))]
        rows = list(ev[["event", "kind", "eid", "field", "old", "new", "info"]].itertuples(index=False, name=None))
        if inverse:
            rows = rows[::-1]
        from .editor import GridEditor

        ed = GridEditor(self, author, f"{marker} tx {tx}")
        ed._internal = True
        with ed:
            for event, kind, eid, field, old, new, info in rows:
                eid = _int_or_none(eid)
                if event == "set":
                    self._write(kind, eid, field, old if inverse else new)
                elif event == "network":
                    self._set_network(field, old if inverse else new)
                elif (event == "add") != inverse:  # add, or the inverse of a remove
                    ed._touch(kind)
                    vals = json.loads(info)
                    self._world.add(kind, {k: [v] for k, v in vals.items()}, ids=[eid])
                    self._journal.record("add", kind, eid, None, None, None, info)
                    self._results = None
                else:
                    ed._remove_one(kind, eid)
            self._journal.record(marker, None, None, None, None, None,
                                 json.dumps({"tx": int(tx)}, separators=(",", ":")))

    def _set_network(self, field, value):
        if field not in ("sn_mva", "f_hz"):
            raise SchemaError(f"unknown network value {field!r}", table="network", field=field)
        v = float(value)
        if not v > 0:
            raise SchemaError(f"{field} must be > 0: {value!r}", table="network", field=field)
        old = getattr(self._world, field)
        setattr(self._world, field, v)
        self._world.bump("topo")
        self._results = None
        if self._journal is not None:
            self._journal.record("network", "network", None, field, old, v)

    # --- construction helpers ------------------------------------------------------------
    @classmethod
    def from_pandapower(cls, net, **kwargs) -> "PowerGrid":
        """A grid of a pandapower net; the runpp options the net stores (``net.user_pf_options``)
        apply to its solves where no option is given (an unmodelled one: OptionError)."""
        from gridtape.world.io_pandapower import from_pandapower

        world = from_pandapower(net)
        return cls(world=world, **kwargs)

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
        if options or tolerance_mva is not None or max_iteration is not None or algorithm is not None \
                or qlim is not None or distributed_slack is not None or init is not None:
            named = {"tolerance_mva": tolerance_mva, "max_iteration": max_iteration, "init": init,
                     "algorithm": algorithm, "enforce_q_lims": qlim, "distributed_slack": distributed_slack}
            o = self._solve_options({**options, **{k: v for k, v in named.items() if v is not None}})
        else:  # the grid's options: resolved once while they stay
            token = (self.qlim, self.tolerance_mva, self.max_iteration, self.init, self.distributed_slack)
            if self._last_opts is None or self._last_opts[0] != token:
                self._last_opts = (token, self._solve_options({}))
            elif self._engine_opts_stale:
                self._solve_options({})
            o = self._last_opts[1]
        tolerance_mva, max_iteration, algorithm = o["tolerance_mva"], o["max_iteration"], o["algorithm"]
        qlim, distributed_slack = o["enforce_q_lims"], o["distributed_slack"]
        if init is None and o["init"] != self.init:
            init = o["init"]
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
        if algorithm != "dc" and pre not in (None, "none"):
            level = pre
        rep = SolveReport(conv, it, (time.perf_counter() - t0) * 1e3, level, norm, algorithm)
        self._last = rep
        j = self._journal
        if j is not None and not self._read_only:
            ds = algorithm != "dc" and bool(distributed_slack)
            j.record_solve(conv, it, norm, rep.runtime_ms, level, algorithm, ds, _version())
            if self._editor is None:
                if self._bg is not None and self._bg.done():
                    self._settle_checkpoint()
                if j.flush() + 1 - self._ckpt_seq >= self.checkpoint_every and self.snapshots \
                        and not j.in_transaction:
                    if not self.checkpoint_background:
                        self.snapshot(message="checkpoint")
                    elif self._bg is None:  # else one is still being written: try again next solve
                        self._start_checkpoint(j)
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
        self._engine.configure(
            ModelOptions(trafo_model=o["trafo_model"], voltage_angles=O.voltage_angles(o["calculate_voltage_angles"],
                                                                                      self._world),
                         line_temperature=o["consider_line_temperature"], trafo3w_losses=o["trafo3w_losses"],
                         switch_rx_ratio=o["switch_rx_ratio"],
                         neglect_open_switch_branches=o["neglect_open_switch_branches"]),
            voltage_angles=O.voltage_angles(o["calculate_voltage_angles"], self._world),
            voltage_depend_loads=o["voltage_depend_loads"], enforce_p_lims=o["enforce_p_lims"],
            trafo_loading=o["trafo_loading"], delta_q=o["delta_q"], algorithm=o["algorithm"])
        return o

    # --- snapshots, tags, archives -------------------------------------------------------
    def snapshot(self, message: str | None = None, author: str | None = None):
        """Checkpoint the world as a manifested Parquet snapshot (docs/snapshot-format.md) in
        ``self.snapshots`` (default: ``<journal>.snapshots`` beside the journal file) and record it
        in the journal.  Returns the manifest."""
        from gridtape.replay.snapshot import write_snapshot

        self._check_writable()
        j = self._need_journal("snapshot()")
        if self._editor is not None:
            raise JournalError("snapshot() inside an edit block: commit the block first")
        if not self.snapshots:
            raise JournalError("no snapshot directory: give PowerGrid(..., snapshots=DIR) for an in-memory journal",
                               field="snapshots")
        from gridtape.replay.study import _resolve

        if self._bg is not None:
            self._settle_checkpoint()
        if j.in_transaction:
            raise JournalError("snapshot() inside an open journal transaction: commit it first", file=j.path)
        j.flush()
        covers = j.last_seq
        m = write_snapshot(self._world, _resolve(self.snapshots, j.path), parent=getattr(self, "_snap_id", None),
                           seq=covers, author=author or j.author, message=message)
        self._record_snapshot(j, m, covers, author, message)
        self._ckpt_seq = j.next_seq
        return m

    def _record_snapshot(self, j, m, covers, author, message):
        """The journal's ``snapshot`` event for the written snapshot ``m`` of the world at ``covers``."""
        where = self.snapshots
        if j.path is not None and not ("://" in where) and os.path.isabs(where):
            rel = os.path.relpath(where, os.path.dirname(os.path.abspath(j.path)))
            where = rel if not rel.startswith("..") else where
        info = json.dumps({"id": m.snapshot_id, "dir": where, "covers": covers}, separators=(",", ":"))
        j.begin(author=author, message=message or "snapshot")
        j.record("snapshot", None, None, None, None, None, info)
        j.commit()
        self._snap_id = m.snapshot_id

    def _start_checkpoint(self, j):
        """An automatic checkpoint off the main thread: copy the world now (the journal's last seq
        is what it covers), write it in a thread; :meth:`_settle_checkpoint` records it later."""
        from gridtape.replay import background
        from gridtape.replay.study import _resolve

        covers = j.last_seq
        self._bg = background.BackgroundSnapshot(
            background.frozen_copy(self._world), _resolve(self.snapshots, j.path), covers=covers,
            parent=getattr(self, "_snap_id", None), author=j.author, message="checkpoint")
        self._ckpt_seq = covers + 1
        background.settle_at_exit(self)

    def wait_checkpoint(self):
        """Wait for the automatic checkpoint being written in the background (if any) and record
        its ``snapshot`` event; returns its manifest, or None (none in flight, or it failed: see
        ``checkpoint_error``).  ``close()`` does this too."""
        bg = self._bg
        if bg is None:
            return None
        self._settle_checkpoint()
        return bg.manifest if self._bg is None else None

    def _settle_checkpoint(self):
        """Wait for the background checkpoint; record its ``snapshot`` event (main thread) when the
        journal is open and outside a transaction, or warn (CheckpointWarning) if the write failed."""
        bg = self._bg
        j = self._journal
        bg.wait()
        if bg.error is None and j is not None and not j.closed and (j.in_transaction or self._editor is not None):
            return  # recorded at the next solve, snapshot() or close()
        from gridtape.replay import background

        self._bg = None
        background.forget(self)
        if bg.error is not None:
            import warnings

            from gridtape.errors import CheckpointWarning

            self.checkpoint_error = bg.error
            warnings.warn(CheckpointWarning(
                f"the automatic checkpoint of the world at seq {bg.covers} could not be written to "
                f"{bg.directory}: {bg.error!r}; the journal records nothing for it"), stacklevel=3)
        elif j is not None and not j.closed and not j.read_only:
            self._record_snapshot(j, bg.manifest, bg.covers, None, "checkpoint")

    def tag(self, name: str, author: str | None = None) -> int:
        """Name the current point of history (``study.at(tag=name)``); returns its seq."""
        self._check_writable()
        j = self._need_journal("tag()")
        if self._editor is not None:
            raise JournalError("tag() inside an edit block: commit the block first")
        j.begin(author=author, message=str(name))
        j.record("tag", None, None, None, None, None, json.dumps({"name": str(name)}))
        return j.commit()

    def get_parquet_case(self) -> bytes:
        """The world (every element table and column) as an in-memory ZIP of Parquet files."""
        from gridtape.replay.archive import case_zip_bytes

        return case_zip_bytes(self._world)

    def get_parquet_results(self) -> bytes:
        """Every result table (res_bus, res_line, ...) as an in-memory ZIP of Parquet files."""
        from gridtape.replay.archive import results_zip_bytes

        res = self.post_process()
        rep = self._last
        meta = {"converged": rep.converged, "iterations": rep.iterations, "algorithm": rep.algorithm,
                "rebuild": rep.rebuild}
        return results_zip_bytes({f"res_{k}": v for k, v in res.items()}, meta)

    def load_parquet_case(self, zip_bytes) -> None:
        """Replace the world with the one of ``get_parquet_case()`` bytes (checked first: nothing
        changes if they are damaged).  Recorded as a load event."""
        from gridtape.replay.archive import world_from_zip_bytes

        self._check_writable()
        if self._editor is not None:
            raise JournalError("load_parquet_case() inside an edit block")
        if self._bg is not None:
            self._settle_checkpoint()  # its event goes before the load event
        new = world_from_zip_bytes(zip_bytes)
        w = self._world
        w.tables, w.sn_mva, w.f_hz, w.name = new.tables, new.sn_mva, new.f_hz, new.name
        w.bump("topo")
        self._results = None
        self._last = None
        self._engine.invalidate()
        self._done = self._undone = None
        if self._journal is not None:
            self._record_load("parquet", data=zip_bytes)

    def apply(self, diff) -> None:
        """Turn this grid's world into the other side of ``diff`` (``gridtape.diff(a, b)``), as one
        journaled edit transaction."""
        d = diff
        with self.edit(message="apply diff") as e:
            rem = d[d.change == "remove"]
            for kind, eid in sorted(zip(rem.kind, rem.id), key=lambda x: x[0] == "bus"):
                if int(eid) in self._world[kind]:
                    e.remove((kind, int(eid)), cascade=False)
            adds = d[d.change == "add"]
            for kind, eid, new in zip(adds.kind, adds.id, adds.new):
                spec = self._world[kind].spec
                e.add(kind, _id=int(eid), **{k: v for k, v in new.items() if k in spec})
            sets = d[(d.change == "set")]
            for kind, eid, field, new in zip(sets.kind, sets.id, sets.field, sets.new):
                if kind == "network":
                    if field in ("sn_mva", "f_hz"):
                        self._set_network(field, new)
                elif eid is not None and eid == eid and field in self._world[kind].spec:
                    self._write(kind, int(eid), field, new)

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
            if self._engine.level() == "full" and self._engine.solved:
                # elements were added or removed (or the topology changed) since the last solve
                raise NotSolvedError("the network changed since the last solve (elements added, removed or "
                                     "switched): solve() again for results")
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


def _int_or_none(v):
    try:
        return None if v is None or v != v else int(v)
    except TypeError:  # pandas.NA
        return None


_VERSION = []


def _version() -> str:
    """gridtape's version (what every solve event records)."""
    if not _VERSION:
        from gridtape import __version__

        _VERSION.append(__version__)
    return _VERSION[0]


def _open_journal(journal, author, read_only):
    if journal is False:
        return None
    from gridtape.journal import Journal

    if isinstance(journal, Journal):
        return journal
    return Journal(None if journal is None else str(journal), read_only=read_only, author=author)


def _materialize(j, until=None):
    """The world a journal describes at its head (or at seq ``until``)."""
    from gridtape.replay.events import apply_events

    events = j.log(until=until)
    loads = np.flatnonzero(events["event"].to_numpy(dtype=object) == "load")
    if not len(loads):
        raise JournalError("the journal holds no load event: nothing to resume", file=j.path)
    return apply_events(None, events.iloc[loads[-1]:], j.get_blob)


def _undo_stacks(j):
    """The undo and redo stacks of a journal's history: edit transactions in order, minus the
    ones undone (and not redone) since."""
    done, undone = array("q"), array("q")
    if j is None:
        return done, undone
    log = j.log()
    if not len(log):
        return done, undone
    edits = log[log["event"].isin(("set", "add", "remove", "network", "undo", "redo", "load"))]
    for tx, grp in edits.groupby("tx", sort=True):
        evs = set(grp["event"])
        if "load" in evs:
            done, undone = array("q"), array("q")  # a new case: nothing before it can be undone
        elif "undo" in evs:
            t = json.loads(grp[grp["event"] == "undo"]["info"].iloc[0])["tx"]
            if done and done[-1] == t:
                done.pop()
            undone.append(t)
        elif "redo" in evs:
            t = json.loads(grp[grp["event"] == "redo"]["info"].iloc[0])["tx"]
            if undone and undone[-1] == t:
                undone.pop()
            done.append(t)
        else:
            done.append(int(tx))
            undone = array("q")
    return done, undone


def _result_property(kind):
    def get(self):
        return self.result(kind)

    get.__doc__ = f"res_{kind} as a DataFrame with pandapower's columns (built lazily)."
    return property(get)


for _k in _RESULT_KINDS:
    setattr(PowerGrid, f"res_{_k}", _result_property(_k))
