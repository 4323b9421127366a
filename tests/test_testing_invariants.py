"""The invariant helpers pass on sound grids and fail with a readable diff when the property breaks."""
import numpy as np
import pytest

from gridtape.testing import (assert_grids_equal, assert_incremental_equals_fresh, assert_replay_equals_live,
                              assert_roundtrip, assert_undo_restores, case_grid)


def test_equal_grids_pass_and_a_changed_value_is_named():
    a, b = case_grid("IEEE14", journal=False), case_grid("IEEE14", journal=False)
    assert_grids_equal(a, b)
    b.load(3).p_mw = b.load(3).p_mw + 1.0
    with pytest.raises(AssertionError) as info:
        assert_grids_equal(a, b)
    msg = str(info.value)
    assert "load" in msg and "p_mw" in msg and "different worlds" in msg
    b.load(3).p_mw = a.load(3).p_mw
    assert_grids_equal(a, b)


def test_results_that_differ_are_listed_largest_first():
    a, b = case_grid("IEEE14", journal=False), case_grid("IEEE14", journal=False, tolerance_mva=1e-1)
    with pytest.raises(AssertionError) as info:
        assert_grids_equal(a, b, tol=1e-12)
    assert "results of a and b differ" in str(info.value)
    assert_grids_equal(a, b, tol=5.0)  # a loose solve is off by about 1 MVA


def test_a_stale_voltage_is_shown_bus_by_bus(monkeypatch):
    g = case_grid("IEEE14", journal=False)
    g.solve()
    real = type(g).v

    monkeypatch.setattr(type(g), "v", property(lambda self: real.fget(self) * (1.0 + 1e-6 if self is g else 1.0)))
    with pytest.raises(AssertionError) as info:
        assert_incremental_equals_fresh(g)
    assert "bus" in str(info.value) and "|dv|" in str(info.value)


def test_replay_undo_and_roundtrips_hold_after_edits(tmp_path):
    g = case_grid("IEEE30", journal=str(tmp_path / "j.duckdb"))
    g.solve()
    g.set("load", g.world["load"].ids[:3], "p_mw", [1.0, 2.0, 3.0])
    with g.edit() as e:
        e.add_load(5, p_mw=4.0)
    g.snapshot()
    g.gen(1).vm_pu = 1.02
    assert_replay_equals_live(g)
    live = g.world.copy()
    assert_undo_restores(g)
    assert g.world.equals(live)  # redone: the grid is as it was
    assert_roundtrip(g)
    g.close()


def test_a_broken_replay_is_reported():
    g = case_grid("IEEE14")
    g.set("load", [0], "p_mw", [5.0])
    g.world["load"].cols["p_mw"][1] = 7.0  # behind the journal's back
    with pytest.raises(AssertionError) as info:
        assert_replay_equals_live(g)
    assert "differs from the live world" in str(info.value) and "p_mw" in str(info.value)
    g.close()


def test_matpower_refuses_what_it_cannot_hold():
    g = case_grid("IEEE14", journal=False)
    g.set("load", [0], "const_z_p_percent", [50.0])
    with pytest.raises(ValueError, match="voltage-dependent"):
        assert_roundtrip(g, via="matpower")
    assert_roundtrip(g, via=("parquet", "pandapower_json"))
    assert np.isfinite(g.v).all()
