"""The kernels that keep a study's chunk out of Python: ``inject.chunk_rows`` (a chunk's injection
rows from its profiled values) gives what the injection map's matrix says, step for step, with
and without voltage-dependent loads; ``NewtonSolver.keep`` / ``restore`` bring a solver back to
its primed factors after steps that refactored it, so an independent sweep's steps give the bits
of a freshly primed solver each, in one call of ``newton.solve_steps``."""
from __future__ import annotations

import os

import numpy as np
import pytest

import gridtape as gt
from gridtape.solver_cy import newton
from gridtape.solver_cy.batch import InjectionMap
from gridtape.solver_cy.inject import chunk_rows

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _map(case="IEEE118", voltage_dependent=False):
    g = gt.PowerGrid(os.path.join(ROOT, "cases", case), journal=False)
    if voltage_dependent:
        g.set("load", "const_z_p_percent", g.world["load"].ids, 30.0)
        g.set("load", "const_i_q_percent", g.world["load"].ids, 20.0)
    g.solve()
    w = g.world
    nl, ng = len(w["load"]), len(w["gen"])
    entries = [("load", "p_mw", np.arange(nl)), ("load", "q_mvar", np.arange(nl)), ("gen", "p_mw", np.arange(ng))]
    return g, InjectionMap(g._engine, w, entries), entries


def _values(g, entries, n, seed=0):
    rng = np.random.default_rng(seed)
    return [np.ascontiguousarray(g.world[k].cols[f][rows][None, :] * (1 + 0.05 * rng.uniform(-1, 1, (n, len(rows)))))
            for k, f, rows in entries]


def _reference(m, values):
    """x0 + M (v - b) by dense numpy (the map's own matrix), split into the complex rows."""
    D = np.concatenate([v - b for v, b in zip(values, m.base)], axis=1)
    X = m.x0[None, :] + D @ m.M.toarray().T
    nb = m.nb
    rows = [X[:, 2 * k * nb:(2 * k + 1) * nb] + 1j * X[:, (2 * k + 1) * nb:(2 * k + 2) * nb] for k in range(3)]
    return rows, X


@pytest.mark.parametrize("vdep", [False, True])
def test_chunk_rows_equal_the_maps_matrix(vdep):
    g, m, entries = _map(voltage_dependent=vdep)
    assert m.voltage_dependent == vdep
    vals = _values(g, entries, 7)
    scratch = {}
    inj = m.chunk(vals, scratch)
    (S0, SI, SZ), X = inj.arrays(), None
    want, X = _reference(m, vals)
    assert np.allclose(S0, want[0], rtol=0, atol=1e-12)
    for got, w in ((SI, want[1]), (SZ, want[2])):
        assert np.allclose(np.broadcast_to(got, w.shape), w, rtol=0, atol=1e-12)
    nb = m.nb
    assert np.allclose(inj.at("pd", np.arange(nb)), X[:, 6 * nb:7 * nb], rtol=0, atol=1e-12)
    assert np.allclose(inj.at("gp", np.arange(len(m.x0) - 8 * nb)), X[:, 8 * nb:], rtol=0, atol=1e-12)
    # the loads do move the rows (the test is not comparing base rows with base rows)
    assert np.abs(S0 - m._base_rows[0][None, :]).max() > 1e-4
    # a shorter chunk reuses the kept arrays and gives its own steps' rows
    inj2 = m.chunk([v[2:5] for v in vals], scratch)
    assert inj2.arrays()[0].base is not None and np.allclose(inj2.arrays()[0], want[0][2:5], rtol=0, atol=1e-12)


def test_chunk_rows_refuses_inconsistent_arrays():
    g, m, entries = _map()
    vals = tuple(_values(g, entries, 3))
    n, nb = 3, m.nb
    delta = np.empty((n, len(m.rows)))
    out = (np.empty((n, nb), complex), None, None)
    args = (m._col_base, *m._csr, m._code, m._bus, m._base_rows)
    chunk_rows(vals, *args, out, delta)  # as given: fine
    with pytest.raises(ValueError):  # one entry's columns missing
        chunk_rows(vals[:-1], *args, out, delta)
    with pytest.raises(ValueError):  # values of another chunk length
        chunk_rows((vals[0][:2],) + vals[1:], *args, out, delta)
    with pytest.raises(ValueError):  # an output row too short
        chunk_rows(vals, *args, (np.empty((n, nb - 1), complex), None, None), delta)
    bad = m._csr[1].copy()
    bad[0] = 10 ** 6
    with pytest.raises(ValueError):  # a column index past the values
        chunk_rows(vals, m._col_base, m._csr[0], bad, m._csr[2], m._code, m._bus, m._base_rows, out, delta)


def _primed(eng):
    """A new solver of the engine's model, primed by a solve of the base point from a flat start."""
    eng.model.solvers.clear()
    s = eng._newton(eng.topo.pv, eng.topo.pq)
    inj = eng.inj
    c, it, _ = s.solve(eng.ydata, inj.s0, inj.si, inj.sz, eng.initial_voltage("flat").copy(), 1e-8, 10)
    assert c and it >= 2
    assert s.keep()
    return s


def test_keep_restore_give_the_primed_bits():
    g = gt.PowerGrid(os.path.join(ROOT, "cases", "IEEE118"), journal=False)
    g.solve()
    eng = g._engine
    inj = eng.inj
    n, nb = 10, eng.topo.nb
    rng = np.random.default_rng(5)
    load = np.minimum(inj.s0.real, 0) + 1j * np.minimum(inj.s0.imag, 0)
    S0 = inj.s0[None, :] + load[None, :] * 0.3 * rng.uniform(-1, 1, (n, nb))  # big: chord steps back off
    S0[4] = inj.s0 + 7.0 * load  # does not converge
    S0 = np.ascontiguousarray(S0)
    v0 = eng.V.copy()
    si, sz = inj.si[None, :].copy(), inj.sz[None, :].copy()
    s = _primed(eng)
    assert not s.left_kept
    nr = s.n_refactor
    Vs, ok = np.full((n, nb), np.nan + 0j), np.zeros(n, np.uint8)
    its, norms = np.zeros(n, np.int32), np.full(n, np.nan)
    i, _ = newton.solve_steps(s, eng.ydata, S0, si, sz, v0.copy(), v0, False, Vs, ok, its, norms, 0, 1e-8, 10,
                              True, True)
    assert i == n  # one call: the steps that left the primed state were followed by a restore
    assert not ok[4] and ok.sum() == n - 1
    assert s.n_refactor > nr and not s.left_kept
    # each step equals a freshly primed solver's one solve of it
    for k in range(n):
        fresh = _primed(eng)
        V = v0.copy()
        c, it, nm = fresh.solve(eng.ydata, S0[k], inj.si, inj.sz, V, 1e-8, 10, True)
        assert bool(ok[k]) == c and its[k] == it and (norms[k] == nm or (np.isnan(nm) and np.isnan(norms[k])))
        if c:
            assert np.array_equal(Vs[k], V)


def test_restore_without_kept_state_changes_nothing():
    g = gt.PowerGrid(os.path.join(ROOT, "cases", "IEEE14"), journal=False)
    g.solve()
    eng = g._engine
    eng.model.solvers.clear()
    s = eng._newton(eng.topo.pv, eng.topo.pq)
    assert s.left_kept and not s.restore() and not s.keep()  # no factors yet: nothing to keep
    inj = eng.inj
    s.solve(eng.ydata, inj.s0, inj.si, inj.sz, eng.initial_voltage("flat").copy(), 1e-8, 10)
    assert s.keep() and not s.left_kept
    V = eng.V.copy()
    s.solve(eng.ydata, inj.s0 * 1.3, inj.si, inj.sz, V, 1e-8, 10)  # refactors
    assert s.left_kept and s.restore() and not s.left_kept


def test_take_steps_picks_columns_into_the_converged_rows():
    from gridtape.solver_cy.resk import take_steps

    rng = np.random.default_rng(2)
    src = rng.normal(size=(3, 7))
    csrc = np.ascontiguousarray(src + 1j * rng.normal(size=(3, 7)))
    cols = np.array([6, -1, 0, 3], np.int64)
    good = np.array([0, 2, 4], np.int64)  # rows 1 and 3 of the chunk did not converge
    for s in (src, csrc):
        dest = np.full((5, 4), -7.0)
        take_steps(s, cols, good, dest)
        want = np.where(cols >= 0, s.real[:, np.maximum(cols, 0)], 0.0)
        assert np.array_equal(dest[good], want)
        assert (dest[[1, 3]] == -7.0).all()  # the other rows untouched
    with pytest.raises(ValueError):  # a column past the source
        take_steps(src, np.array([7], np.int64), good, np.zeros((5, 1)))
    with pytest.raises(ValueError):  # a row past the destination
        take_steps(src, cols, np.array([0, 1, 5], np.int64), np.zeros((5, 4)))
    with pytest.raises(ValueError):  # a destination of another width
        take_steps(src, cols, good, np.zeros((5, 3)))
    with pytest.raises(ValueError):  # int32 columns
        take_steps(src, cols.astype(np.int32), good, np.zeros((5, 4)))
