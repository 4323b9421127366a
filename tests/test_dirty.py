"""The world's dirty sets: every applied change marks every live watcher with what it touched."""
import gc

import numpy as np

import gridtape as gt
from gridtape.world.changes import SetNetwork, apply


def _grid():
    return gt.PowerGrid("cases/IEEE14/data.zip", journal=False)


def test_watch_starts_dirty_and_marks_writes():
    g = _grid()
    w = g.world
    d = w.watch()
    assert d and d.network and "load" in d.rows
    d.clear()
    assert not d
    g.load(bus=2).p_mw = 30.0
    assert d.cols == {("load", "p_mw")} and not d.rows and not d.network
    assert d.touches([("load", "p_mw")]) and not d.touches([("gen", "vm_pu")])
    d.clear()
    g.set("gen", w["gen"].ids, "vm_pu", np.full(len(w["gen"]), 1.02))
    assert d.cols == {("gen", "vm_pu")}


def test_structural_changes_and_network_values_mark_rows():
    g = _grid()
    d = g.world.watch()
    d.clear()
    with g.edit() as e:
        e.add_load(3, p_mw=1.0, q_mvar=0.5)
    assert "load" in d.rows and d.touches([("load", "q_mvar")])
    d.clear()
    g.world._mark_rows(None)  # a wholesale change (a new world loaded into the grid)
    assert d.network and d.rows >= {"bus", "line", "load"}
    d.clear()
    apply(g.world, [SetNetwork("sn_mva", 10.0)])  # every per-unit value changes
    assert d.network and not d.cols and g._engine.level() == "full"


def test_every_watcher_is_marked_and_dead_ones_are_dropped():
    g = _grid()
    a, b = g.world.watch(), g.world.watch()
    a.clear()
    b.clear()
    g.load(bus=2).q_mvar = 5.0
    assert a.cols == b.cols == {("load", "q_mvar")}
    n = len(g.world._watchers)
    del a
    gc.collect()
    g.load(bus=2).q_mvar = 6.0
    assert len(g.world._watchers) == n - 1 and b.cols == {("load", "q_mvar")}


def test_a_network_value_change_rebuilds_the_model():
    """sn_mva / f_hz marks ``network``: the next solve rebuilds and equals a fresh grid's solve."""
    g = _grid()
    ids = g.world["line"].ids
    g.set("line", ids, "c_nf_per_km", np.full(len(ids), 250.0))  # line charging: f_hz matters
    g.solve()
    before = g.res_line.copy()
    for field, value in (("f_hz", g.world.f_hz * 0.8), ("sn_mva", g.world.sn_mva * 0.7)):
        apply(g.world, [SetNetwork(field, value)])
        assert g._engine.level() == "full"
        g.solve()
        assert g.last_report.rebuild == "full"
        fresh = gt.PowerGrid(world=g.world.copy(), journal=False)
        fresh.solve()
        np.testing.assert_allclose(g.res_bus.to_numpy(float), fresh.res_bus.to_numpy(float), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(g.res_line.to_numpy(float), fresh.res_line.to_numpy(float), rtol=1e-9, atol=1e-9)
    # the line charging moved with f_hz: the results are not the old ones
    assert not np.allclose(g.res_line["q_from_mvar"].to_numpy(float), before["q_from_mvar"].to_numpy(float))
