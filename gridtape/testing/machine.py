"""``GridStateMachine``: a hypothesis ``RuleBasedStateMachine`` over a PowerGrid.

Rules: ``write`` (a drawn property write), ``edit`` (a drawn topology edit), ``solve`` (checks the
incremental solve against a fresh one), ``undo``, ``redo``, ``snapshot`` and ``reopen`` (close the
grid and resume it from its journal: the world must come back).  At the end of every run the
journal is replayed against the live world.  Subclass it to change the grid (:meth:`make_grid`),
the draws (class attributes) and to add your own ``@rule`` and ``@invariant`` methods; use
``self.grid``, and :meth:`do` to run a step so it shows in the failure script::

    class MyMachine(GridStateMachine):
        case = "IEEE30"

        @invariant()
        def voltages_stay_sane(self):
            ...

    TestMyMachine = MyMachine.TestCase
"""
from __future__ import annotations

import os
import shutil
import tempfile

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from .invariants import assert_incremental_equals_fresh, assert_replay_equals_live, world_diff_text
from .report import failure_dir, is_final, script
from .runner import REDO, SOLVE, UNDO, run, to_code
from .strategies import edits, writes


class GridStateMachine(RuleBasedStateMachine):
    #: bundled case the grid starts from (see :func:`gridtape.testing.case_path`)
    case = "IEEE14"
    #: arguments of :func:`writes` and :func:`edits`
    write_kinds = None
    write_fields = None
    in_service = False
    keep_connected = True
    #: tolerance of the solve check (p.u.)
    tol = 1e-9
    #: check every solve against a fresh grid, and replay the journal at the end of each run
    check_solves = True
    check_replay = True

    def __init__(self):
        super().__init__()
        self._dir = tempfile.mkdtemp(prefix="gridtape-machine-")
        self.journal_path = os.path.join(self._dir, "machine.duckdb")
        self.steps = []
        self.grid = None

    # --- the grid -------------------------------------------------------------------------------
    def make_grid(self, journal):
        """The grid a run starts from, recording into ``journal`` (a path).  Override to start from
        something else (``networks()`` draws are PowerGrids: build one from ``grid.world``)."""
        from gridtape import PowerGrid

        from .cases import case_path

        return PowerGrid(case_path(self.case), journal=journal, checkpoint_background=False)

    @initialize()
    def _start(self):
        self.grid = self.make_grid(self.journal_path)
        self.start_world = self.grid.world.copy()

    def do(self, step):
        """Run ``step`` (a drawn change, EditBlock or SOLVE/UNDO/REDO) on the grid, remembering it
        for the failure script."""
        self.steps.append(step)
        return run(self.grid, step)

    # --- rules ----------------------------------------------------------------------------------
    @rule(data=st.data())
    def write(self, data):
        self.do(data.draw(writes(self.grid, self.write_kinds, self.write_fields, in_service=self.in_service),
                          label="write"))

    @rule(data=st.data())
    def edit(self, data):
        self.do(data.draw(edits(self.grid, keep_connected=self.keep_connected), label="edit"))

    @rule()
    def solve(self):
        if self.check_solves:
            self.steps.append(SOLVE)
            assert_incremental_equals_fresh(self.grid, self.tol)
        else:
            self.do(SOLVE)

    @rule()
    def undo(self):
        self.do(UNDO)

    @rule()
    def redo(self):
        self.do(REDO)

    @rule()
    def snapshot(self):
        self.steps.append("snapshot")
        self.grid.snapshot()

    @precondition(lambda self: self.grid is not None)
    @rule()
    def reopen(self):
        from gridtape import PowerGrid

        before = self.grid.world.copy()
        self.grid.close()
        self.steps.append("reopen")
        self.grid = PowerGrid(journal=self.journal_path, checkpoint_background=False)
        text = world_diff_text(before, self.grid.world)
        assert not text, f"the grid resumed from its journal differs from the one closed (closed -> resumed):\n{text}"

    # --- end of a run ---------------------------------------------------------------------------
    def teardown(self):
        try:
            if self.grid is not None and self.check_replay and not self.grid.journal.closed:
                assert_replay_equals_live(self.grid)
        finally:
            if is_final():  # hypothesis replays a failing run's shrunk steps once more: report them
                self._report()
            if self.grid is not None:
                self.grid.close()
            shutil.rmtree(self._dir, ignore_errors=True)

    def _report(self):
        """On the final (shrunk) failing run: keep the journal, print the steps as a script."""
        from hypothesis import note

        steps = [s for s in self.steps if not isinstance(s, str)]
        path = None
        try:
            if self.grid is not None:
                self.grid.close()
            d = failure_dir()
            os.makedirs(d, exist_ok=True)
            path = os.path.join(d, f"machine-{abs(hash(to_code(steps))) % 10**10}.duckdb")
            shutil.copyfile(self.journal_path, path)
        except Exception:  # noqa: BLE001 - the report must not hide the failure
            path = None
        note("gridtape steps of the failing run:\n" + script(steps, case_path=_path(self.case), journal=path))
        if path:
            note(f"journal of the failing run: {path}  (gridtape.open({path!r}) to bisect or replay it)")


def _path(case):
    from .cases import case_path

    try:
        return case_path(case)
    except Exception:  # noqa: BLE001
        return None
