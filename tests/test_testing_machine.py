"""GridStateMachine runs writes, edits, solves, undo/redo, snapshots and reopenings with its checks
passing on a sound grid, takes user rules and invariants, and reports a failing run as a script and
a journal."""
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import invariant, rule, run_state_machine_as_test

import gridtape as gt
from gridtape.testing import GridStateMachine

QUICK = settings(max_examples=6, stateful_step_count=8, deadline=None, database=None, derandomize=True,
                 phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))


def test_the_machine_holds_on_a_sound_grid(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDTAPE_FAILURES", str(tmp_path))
    run_state_machine_as_test(GridStateMachine, settings=QUICK)


class VoltageWatch(GridStateMachine):
    """A user's machine: its own rule (scale every load) and invariant (the grid still solves)."""

    case = "IEEE30"

    @rule()
    def scale_loads(self):
        t = self.grid.world["load"]
        self.grid.set("load", t.ids, "p_mw", t.cols["p_mw"] * 1.01)

    @invariant()
    def still_solves(self):
        if self.grid is not None:
            assert self.grid.solve().converged


def test_a_subclass_adds_rules_and_invariants(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDTAPE_FAILURES", str(tmp_path))
    run_state_machine_as_test(VoltageWatch, settings=QUICK)


class NoLoadWrites(GridStateMachine):
    """A machine whose invariant fails as soon as a load is written: its report must say how."""

    write_kinds = ["load", "gen"]

    @invariant()
    def loads_untouched(self):
        if self.grid is not None:
            assert self.grid.world["load"].equals(self.start_world["load"]), "a load changed"


def test_a_failing_run_is_reported_as_a_script_and_a_journal(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDTAPE_FAILURES", str(tmp_path))
    with pytest.raises(AssertionError) as info:
        # no shrink phase: shrinking a machine that opens a journal file per run takes minutes
        run_state_machine_as_test(NoLoadWrites, settings=settings(QUICK, max_examples=50,
                                                                  phases=[Phase.explicit, Phase.generate]))
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "gridtape steps of the failing run:" in notes and "gt.PowerGrid(" in notes, notes
    assert "grid.set('load'" in notes or "e.add('load'" in notes or "e.remove(('load'" in notes, notes
    journals = list(tmp_path.glob("machine-*.duckdb"))
    assert len(journals) == 1
    with gt.open(journals[0]) as study:
        assert len(study.points()) >= 2  # the case load and the step that changed a load
