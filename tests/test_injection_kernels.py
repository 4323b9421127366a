"""The incremental path's kernels: the float column write (world/colwrite.pyx), the injection
sums and their assembly (solver_cy/inject.pyx), and the injection layer's per-part caching,
each against a plain numpy reference."""
import os

import numpy as np
import pytest

import gridtape as gt
from gridtape.errors import SchemaError
from gridtape.solver_cy.inject import assemble, bus_sums, gen_sums
from gridtape.solver_cy.injections import InjectionState
from gridtape.world.colwrite import write_floats
from gridtape.world.io import load_case

RNG = np.random.default_rng(7)


def test_write_floats_all_rows_and_subset():
    arr = RNG.normal(size=9)
    ref = arr.copy()
    vals = RNG.normal(size=9)
    old = write_floats(arr, None, vals, -np.inf, np.inf, False)
    assert np.array_equal(old, ref) and np.array_equal(arr, vals)
    rows = np.array([4, 0, 4], dtype=np.int64)  # a row written twice: the last value wins
    before = arr.copy()
    new = np.array([1.0, 2.0, 3.0])
    old = write_floats(arr, rows, new, -np.inf, np.inf, False)
    expect = before.copy()
    expect[rows] = new
    assert np.array_equal(arr, expect)
    assert np.array_equal(old, before[rows])


@pytest.mark.parametrize("bad, lo, hi, nan_ok", [
    (np.nan, -np.inf, np.inf, False), (-1.0, 0.0, np.inf, False), (2.0, 0.0, 1.0, False)])
def test_write_floats_refuses_invalid_and_writes_nothing(bad, lo, hi, nan_ok):
    arr = np.full(4, 0.5)
    vals = np.array([0.25, 0.75, bad, 0.5])
    assert write_floats(arr, None, vals, lo, hi, nan_ok) is None
    assert np.array_equal(arr, np.full(4, 0.5))


def test_write_floats_nan_allowed_and_fallbacks():
    arr = np.zeros(3)
    old = write_floats(arr, None, np.array([np.nan, 1.0, 2.0]), 0.0, 5.0, True)
    assert old is not None and np.isnan(arr[0]) and arr[2] == 2.0
    # not the fast path's shape or dtype: None, nothing written
    assert write_floats(arr, None, np.array([1, 2, 3]), -np.inf, np.inf, False) is None
    assert write_floats(arr, None, np.ones(2), -np.inf, np.inf, False) is None
    assert write_floats(arr, np.array([0, 7], dtype=np.int64), np.ones(2), -np.inf, np.inf, False) is None
    assert write_floats(arr, None, 3.0, -np.inf, np.inf, False) is None
    assert arr[2] == 2.0


def test_world_set_values_fast_path_validates_like_the_generic_path():
    root = os.path.join(os.path.dirname(__file__), "..", "cases", "IEEE14", "data.zip")
    w = load_case(root)
    ids = w["line"].ids
    before = w["line"].cols["length_km"].copy()
    vals = before * 2.0
    vals[3] = -1.0  # negative length: refused, naming the row
    d = w.watch()
    d.clear()
    with pytest.raises(SchemaError) as e:
        w.set_values("line", ids, "length_km", vals)
    assert e.value.row == int(ids[3]) and e.value.field == "length_km"
    assert np.array_equal(w["line"].cols["length_km"], before) and not d  # refused: nothing marked
    old = w.set_values("line", ids, "length_km", before * 2.0)
    assert np.array_equal(old, before) and d.cols == {("line", "length_km")} and not d.rows and not d.network


def test_bus_sums_and_assemble_match_numpy():
    nb, n = 11, 30
    bus = RNG.integers(0, nb, n).astype(np.int64)
    p, q, sc = RNG.normal(size=n), RNG.normal(size=n), RNG.uniform(0.5, 1.5, n)
    w = (RNG.random(n) > 0.3) * -1.0
    P, Q = bus_sums(bus, p, q, w, sc, nb)
    assert np.allclose(P, np.bincount(bus, p * sc * w, minlength=nb), atol=1e-14)
    assert np.allclose(Q, np.bincount(bus, q * sc * w, minlength=nb), atol=1e-14)
    P2, _ = bus_sums(bus, p, q, w, None, nb)
    assert np.allclose(P2, np.bincount(bus, p * w, minlength=nb), atol=1e-14)
    sg = RNG.normal(size=nb)
    s0, pd, qd, bad = assemble([(P, Q), (P2, Q)], sg, 100.0)
    assert bad == -1
    assert np.allclose(s0, (sg - (P + P2) - 1j * (2 * Q)) / 100.0, atol=1e-15)
    sg[5] = np.inf
    assert assemble([(P, Q)], sg, 100.0)[3] == 5
    with pytest.raises(ValueError):
        bus_sums(bus, p, q, w, sc, 3)  # a bus index outside the model
    with pytest.raises(ValueError):
        bus_sums(bus, p[:-1], q, w, sc, nb)


def test_gen_sums_matches_numpy():
    nb = 6
    p, sc = RNG.normal(size=5), RNG.uniform(0.5, 1.5, 5)
    rows = np.array([0, 2, 4], dtype=np.int64)
    gbus = np.array([1, 3, 3, 5, 0], dtype=np.int64)  # ext_grid, then the three gens, then an xward
    g, s = gen_sums(rows, p, sc, gbus, 1, nb)
    expect = np.zeros(5)
    expect[1:4] = p[rows] * sc[rows]
    assert np.array_equal(g, expect)
    assert np.allclose(s, np.bincount(gbus, expect, minlength=nb))
    with pytest.raises(ValueError):
        gen_sums(rows, p, sc, gbus, 3, nb)


@pytest.mark.parametrize("kind, col", [("load", "p_mw"), ("load", "scaling"), ("load", "const_z_p_percent"),
                                       ("sgen", "q_mvar"), ("gen", "p_mw"), ("gen", "vm_pu"),
                                       ("gen", "max_q_mvar"), ("ext_grid", "va_degree")])
def test_cached_parts_equal_a_fresh_state(kind, col):
    """After a write of any injection column, the incremental refresh equals a state built from
    scratch (every part recomputed)."""
    pn = pytest.importorskip("pandapower.networks")
    from gridtape.world.io_pandapower import from_pandapower

    import pandapower as pp

    net = pn.case30()
    pp.create_sgen(net, 5, p_mw=3.0, q_mvar=1.0)
    g = gt.PowerGrid(world=from_pandapower(net), journal=False)
    g.solve()
    eng = g._engine
    w = g.world
    ids = w[kind].ids
    vals = w[kind].cols[col].copy()
    if col in ("const_z_p_percent",):
        vals[:] = 30.0
    elif col == "max_q_mvar":
        vals = vals * 0.5
    else:
        vals = vals * 1.07 + 0.01
    w.set_values(kind, ids, col, vals)
    r = g.solve()
    assert r.rebuild == "incremental"
    fresh = InjectionState(w, eng.topo).refresh(w)
    inj = eng.inj
    for name in ("s0", "si", "sz", "pd", "qd", "vm_set", "va_set"):
        assert np.array_equal(getattr(inj, name), getattr(fresh, name), equal_nan=True), name
    for k, v in fresh.gens.items():
        assert np.array_equal(inj.gens[k], v), k
