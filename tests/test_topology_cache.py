"""The engine's caches across topology changes give what a fresh engine gives.

- the model cache (the models of the last topologies) is not served when the tables were rebuilt
  in between: an element removed and added back with the same id and bus but other values leaves
  the topology columns as they were;
- the injection parts kept across topologies (gens' reactive limits, whether any load has ZIP
  shares) follow writes of their columns;
- random busbar-move sequences that revisit topologies (model-cache hits), with injection, Q-limit
  and ZIP writes in between, solve as a fresh PowerGrid on a copy of the world does (1e-9).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import gridtape as gt
from gridtape.world.io import load_case

CASE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cases", "IEEE14", "data.zip")


def fresh_v(world, **kw):
    g = gt.PowerGrid(world=world.copy())
    rep = g.solve(init="auto", **kw)
    return rep.converged, g.v


def same_as_fresh(g, **kw):
    """Solve ``g`` from pandapower's start (so both runs do the same arithmetic on their models)
    and compare with a fresh grid on a copy of its world."""
    rep = g.solve(init="auto", **kw)
    ok, v = fresh_v(g.world, **kw)
    assert rep.converged == ok
    if ok:
        assert np.nanmax(np.abs(g.v - v)) < 1e-9
    return rep


@pytest.mark.parametrize("kind,col,change", [("load", "p_mw", lambda v: v + 20.0),
                                             ("line", "x_ohm_per_km", lambda v: v * 3.0),
                                             ("gen", "vm_pu", lambda v: v + 0.03)])
def test_removed_and_readded_element_is_not_served_from_the_model_cache(kind, col, change):
    w = load_case(CASE)
    g = gt.PowerGrid(world=w)
    g.solve()
    t = w[kind]
    r = len(t) - 1  # the last row: added back, it is the last row again with the same id and bus
    eid = int(t.ids[r])
    vals = {c: t.cols[c][r:r + 1].copy() for c in t.spec.names if t.cols[c].dtype != object}
    w.remove(kind, [eid])
    g.solve()
    vals[col] = change(vals[col])
    w.add(kind, vals, ids=[eid])
    # the topology columns are as they were; the rows were rebuilt: a new model
    rep = g.solve()
    assert rep.converged and rep.rebuild == "full"
    ok, v = fresh_v(w)
    assert ok and np.max(np.abs(g.v - v)) < 1e-9


def _with_busbars(w):
    """Every bus gets a second busbar (bus id + n, in service, empty)."""
    bus = w["bus"]
    n = len(bus)
    w.add("bus", {"vn_kv": bus.cols["vn_kv"].copy(), "in_service": np.ones(n, bool)}, ids=bus.ids + 1000)
    return 1000


def _topologies(w, rng, k):
    """``k`` random topologies: each moves a few loads, non-slack gens and line ends to the second
    busbar of their bus (moving every element of a bus keeps it supplied)."""
    out = []
    for _ in range(k):
        moves = []
        for kind, col in (("load", "bus"), ("gen", "bus"), ("line", "from_bus"), ("line", "to_bus")):
            t = w[kind]
            rows = rng.choice(len(t), size=min(2, len(t)), replace=False)
            moves.append((kind, col, rows))
        out.append(moves)
    return out


def _apply(w, base, moves, shift):
    """Restore the base busbars, then move ``moves`` to the second busbars."""
    for kind, col in (("load", "bus"), ("gen", "bus"), ("line", "from_bus"), ("line", "to_bus")):
        cur = w[kind].cols[col]
        if not np.array_equal(cur, base[(kind, col)]):
            w.set_values(kind, w[kind].ids, col, base[(kind, col)])
    for kind, col, rows in moves:
        t = w[kind]
        w.set_values(kind, t.ids[rows], col, base[(kind, col)][rows] + shift)


def _slack_gen(w):
    """The ext_grid as a slack generator (grid2op's grids: generators only, the case where the
    injection layer keeps the generator table per generator placement)."""
    eg = w["ext_grid"]
    w.add("gen", {"bus": eg.cols["bus"].copy(), "p_mw": np.zeros(len(eg)), "vm_pu": eg.cols["vm_pu"].copy(),
                  "slack": np.ones(len(eg), bool)})
    w.remove("ext_grid", eg.ids.copy())


@pytest.mark.parametrize("gens_only", [False, True])
def test_random_topology_sequence_with_cache_hits_matches_fresh_solves(gens_only):
    rng = np.random.default_rng(7)
    w = load_case(CASE)
    if gens_only:
        _slack_gen(w)
    shift = _with_busbars(w)
    base = {(k, c): w[k].cols[c].copy() for k, c in (("load", "bus"), ("gen", "bus"), ("line", "from_bus"),
                                                        ("line", "to_bus"))}
    g = gt.PowerGrid(world=w)
    g.solve()
    topos = _topologies(w, rng, 5)  # fewer than the cache holds: sequences revisit cached models
    built = []
    cache = g._engine.cache
    orig = cache._build

    def counting():
        built.append(1)
        return orig()

    cache._build = counting
    fulls = 0
    p0 = w["load"].cols["p_mw"].copy()
    for step in range(40):
        _apply(w, base, topos[rng.integers(len(topos))], shift)
        w.set_values("load", w["load"].ids, "p_mw", p0 * rng.uniform(0.8, 1.2, len(p0)))
        if step % 7 == 3:  # a reactive limit: the shared Q limits must follow (seen with qlim)
            w.set_value("gen", int(w["gen"].ids[1]), "max_q_mvar", float(rng.uniform(5, 40)))
        if step % 5 == 2:  # a voltage set-point: the set-points kept per generator placement must follow
            w.set_value("gen", int(w["gen"].ids[2]), "vm_pu", float(rng.uniform(0.98, 1.06)))
        if step % 9 == 5:  # a ZIP share appears / disappears: the shared "any ZIP load" flag must follow
            lid = int(w["load"].ids[2])
            w.set_value("load", lid, "const_z_p_percent", 0.0 if w["load"].get(lid, "const_z_p_percent") else 40.0)
        rep = same_as_fresh(g, qlim=bool(step % 2))
        fulls += rep.rebuild == "full"
    assert fulls >= 30
    assert len(built) < fulls  # some topologies came from the model cache


def test_shared_q_limits_follow_writes():
    w = load_case(CASE)
    g = gt.PowerGrid(world=w)
    g.solve(qlim=True)
    gid, lid = int(w["gen"].ids[1]), int(w["line"].ids[10])
    w.set_value("gen", gid, "max_q_mvar", 10.0)  # below its Q (25 MVAr): binds
    w.set_value("line", lid, "in_service", False)  # and a new topology
    rep = same_as_fresh(g, qlim=True)
    assert rep.converged and abs(g.res_gen.q_mvar.values[1] - 10.0) < 1e-9  # held at the new limit
    w.set_value("line", lid, "in_service", True)  # back to a cached topology
    w.set_value("gen", gid, "max_q_mvar", 500.0)
    rep = same_as_fresh(g, qlim=True)
    assert rep.converged and g.res_gen.q_mvar.values[1] > 20.0


def test_shared_zip_flag_follows_writes():
    w = load_case(CASE)
    g = gt.PowerGrid(world=w)
    g.solve()
    lid = int(w["load"].ids[3])
    w.set_value("load", lid, "const_i_q_percent", 60.0)
    w.set_value("line", int(w["line"].ids[2]), "in_service", False)
    rep = same_as_fresh(g)
    assert g._engine.inj.si.any()  # the constant-current share is in the model
    w.set_value("load", lid, "const_i_q_percent", 0.0)
    w.set_value("line", int(w["line"].ids[2]), "in_service", True)
    rep = same_as_fresh(g)
    assert rep.converged and not g._engine.inj.si.any()


def test_topology_changes_leave_no_reference_cycles():
    """Models, topologies and injection states of the topologies a grid leaves behind are freed
    by reference counting: none waits in a reference cycle for the garbage collector (whose
    passes the caller pays for: a grid2op episode changes topology every few steps)."""
    import gc

    w = load_case(CASE)
    shift = _with_busbars(w)
    base = {(k, c): w[k].cols[c].copy() for k, c in (("load", "bus"), ("gen", "bus"), ("line", "from_bus"),
                                                        ("line", "to_bus"))}
    g = gt.PowerGrid(world=w)
    g.solve()
    topos = _topologies(w, np.random.default_rng(3), 30)  # more than the model cache keeps
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for moves in topos:
            _apply(w, base, moves, shift)
            g.solve()
        gc.collect()
        leaked = [o for o in gc.garbage if type(o).__module__.startswith("gridtape")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was:
            gc.enable()
    assert not leaked, sorted({type(o).__qualname__ for o in leaked})
