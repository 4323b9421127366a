"""Acceptance of gridtape.testing: the edit properties fail when a fault is injected, the failing
sequence shrinks to at most three steps, and the report is runnable code plus a journal that
gridtape.open loads."""
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import gridtape as gt
from gridtape.solver_cy import injections
from gridtape.testing import assert_incremental_equals_fresh, case_grid, edit_sequences, play

NO_EXPLAIN = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]  # explain traces every line: slow


@pytest.fixture
def stale_load_cache(monkeypatch):
    """A deliberately stale cache: the incremental refresh of the injections never hears of writes
    to load columns, so a re-solve keeps the loads of the solve before."""
    real = injections.InjectionState.refresh

    def stale(self, world, cols=None):
        if cols is not None:
            cols = {c for c in cols if c[0] != "load"}
        return real(self, world, cols)

    monkeypatch.setattr(injections.InjectionState, "refresh", stale)


def test_a_stale_cache_is_caught_and_shrunk_to_three_steps(stale_load_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDTAPE_FAILURES", str(tmp_path))
    runs = []

    @settings(max_examples=200, derandomize=True, database=None, deadline=None, phases=NO_EXPLAIN,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def property_(data):
        grid = case_grid("IEEE14", tolerance_mva=1e-11, journal=False)
        grid.solve()
        seq = data.draw(edit_sequences(grid, max_size=10), label="steps")
        runs.append(seq)
        play(grid, seq, at_end=assert_incremental_equals_fresh)

    with pytest.raises(AssertionError) as info:
        property_()
    shrunk = runs[-1]  # hypothesis runs the shrunk example last
    assert 1 <= len(shrunk) <= 3, shrunk.code()
    assert "differs from a fresh solve" in str(info.value)
    # the report: the steps as a script, and a journal file
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "grid.set('load'" in notes and "gt.PowerGrid(" in notes, notes
    journals = list(tmp_path.glob("failure-*.duckdb"))
    assert len(journals) == 1
    with gt.open(journals[0]) as study:
        assert len(study.points()) == 1 + sum(1 for s in shrunk if not hasattr(s, "name"))
        world = study.world_at()
    # the printed script reproduces the failure while the fault is in place
    script = notes.split("gridtape steps of the failing example:\n", 1)[1].split("\njournal of", 1)[0]
    ns = {}
    exec(compile(script, "failure-script", "exec"), ns)
    assert ns["grid"].world.equals(world)
    with pytest.raises(AssertionError):
        assert_incremental_equals_fresh(ns["grid"])
    ns["grid"].close()


def test_without_the_fault_the_same_property_holds(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDTAPE_FAILURES", str(tmp_path))
    @settings(max_examples=15, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def property_(data):
        grid = case_grid("IEEE14", tolerance_mva=1e-11, journal=False)
        grid.solve()
        play(grid, data.draw(edit_sequences(grid, max_size=10)), at_end=assert_incremental_equals_fresh)

    property_()
