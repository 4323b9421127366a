"""The model cache (solver_cy/model_cache.py) hears every write through the world's dirty set: a
write to any column the power flow reads (schema class ``affects`` "inj", "adm" or "topo") is
seen by the next solve, which rebuilds at that class's level ("incremental", "admittance",
"full") and gives what a fresh grid on a copy of the world gives (1e-9); a column of class
"none" rebuilds nothing.  Writes made while the engine sits on another topology are caught up
when a cached model comes back."""
from __future__ import annotations

import numpy as np
import pytest

import gridtape as gt
from gridtape.errors import GridtapeError
from gridtape.world.io_pandapower import from_pandapower
from gridtape.world.schema import BOOL, F8, KINDS

pn = pytest.importorskip("pandapower.networks")

LEVEL = {"inj": "incremental", "adm": "admittance", "topo": "full", "none": "none"}


def _fresh(world):
    g = gt.PowerGrid(world=world.copy())
    try:
        rep = g.solve(init="auto")
    except GridtapeError as e:
        return type(e), None
    return rep.converged, g.v


def _columns(world):
    for kind, sp in KINDS.items():
        if not len(world[kind]):
            continue
        for c in sp.columns:
            if c.dtype in (F8, BOOL) and c.name in world[kind].cols:
                yield kind, c


def _new_value(c, v):
    if c.dtype == BOOL:
        return not v
    if v != v:  # NaN (an optional limit): a finite one
        return 10.0
    return float(v) * 1.07 + (0.013 if c.lo is None or c.lo < 0.013 else 0.0)


@pytest.mark.parametrize("make", [pn.example_multivoltage, pn.case30])
def test_a_write_to_every_column_is_seen_by_the_next_solve(make):
    w = from_pandapower(make())
    g = gt.PowerGrid(world=w)
    assert g.solve(init="auto").converged
    seen = {"inj": 0, "adm": 0, "topo": 0, "none": 0}
    for kind, c in _columns(w):
        eid = int(w[kind].ids[0])
        old = w[kind].get(eid, c.name)
        try:
            w.set_value(kind, eid, c.name, _new_value(c, old))
        except GridtapeError:
            continue  # out of the column's range
        try:
            rep = g.solve(init="auto")
        except GridtapeError as e:
            assert _fresh(w)[0] is type(e)
        else:
            assert rep.rebuild == LEVEL[c.affects], (kind, c.name)
            ok, v = _fresh(w)
            assert rep.converged == ok, (kind, c.name)
            if ok:
                assert np.nanmax(np.abs(g.v - v)) < 1e-9, (kind, c.name)
                assert np.array_equal(np.isnan(g.v), np.isnan(v)), (kind, c.name)
            seen[c.affects] += 1
        w.set_value(kind, eid, c.name, old)
        g.solve(init="auto")
    assert all(n > 0 for k, n in seen.items() if k != "none" or make is pn.example_multivoltage), seen


def test_writes_on_another_topology_are_caught_up_by_a_cached_model():
    w = from_pandapower(pn.example_multivoltage())
    g = gt.PowerGrid(world=w)
    g.solve(init="auto")
    line = int(w["line"].ids[3])
    rng = np.random.default_rng(2)
    writes = [(k, c) for k, c in (("load", "p_mw"), ("line", "r_ohm_per_km"), ("shunt", "q_mvar"), ("trafo", "tap_pos"),
                                  ("gen", "vm_pu"), ("sgen", "q_mvar"), ("ward", "pz_mw"), ("xward", "ps_mw"))
              if len(w[k])]
    assert len(writes) >= 5
    for step in range(16):
        w.set_value("line", line, "in_service", bool(step % 2))
        kind, col = writes[step % len(writes)]
        eid = int(w[kind].ids[0])
        v = w[kind].get(eid, col)
        w.set_value(kind, eid, col, float(v + 1 if col == "tap_pos" and v < 0 else v * rng.uniform(0.9, 1.1)))
        rep = g.solve(init="auto")
        assert rep.rebuild == "full"
        ok, v = _fresh(w)
        assert rep.converged == ok and np.nanmax(np.abs(g.v - v)) < 1e-9


def test_network_values_and_rows_rebuild_everything():
    w = from_pandapower(pn.case30())
    g = gt.PowerGrid(world=w)
    g.solve()
    for act in (lambda: w.add("load", {"bus": [3], "p_mw": [5.0], "q_mvar": [1.0]}),
                lambda: w.remove("load", [int(w["load"].ids[-1])])):
        act()
        rep = g.solve(init="auto")
        assert rep.rebuild == "full"
        ok, v = _fresh(w)
        assert ok and np.nanmax(np.abs(g.v - v)) < 1e-9
    assert g.solve().rebuild == "none"
