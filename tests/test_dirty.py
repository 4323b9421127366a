"""The world's dirty sets: every applied change marks every live watcher with what it touched."""
import gc

import numpy as np

import gridtape as gt


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
    g.world.bump("topo")  # a wholesale change (a new world loaded into the grid)
    assert d.network and d.rows >= {"bus", "line", "load"}


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
