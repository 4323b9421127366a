"""The study kernels of a chunk of steps: ``newton.solve_steps`` gives, step for step, the bits of
``NewtonSolver.solve`` called once per step (chained and independent, with a step that does not
converge in the middle), and ``resk.ac_steps``' options (the injections at some buses only, the
solver's own magnitudes and angles) give the bits of the plain kernel where they overlap."""
from __future__ import annotations

import os

import numpy as np
import pytest

import gridtape as gt
from gridtape.solver_cy import newton, resk

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _setup(case="IEEE118", n=12, seed=3):
    """An engine of a solved case, its Newton solver, base voltages and the s0 rows of ``n`` steps
    (loads +-5 %; step 6 scaled by 8 so that it does not converge)."""
    g = gt.PowerGrid(os.path.join(ROOT, "cases", case), journal=False)
    g.solve()
    eng = g._engine
    eng.model.solvers.clear()  # a new solver: no factors yet
    solver = eng._newton(eng.topo.pv, eng.topo.pq)
    inj = eng.inj
    rng = np.random.default_rng(seed)
    s0 = inj.s0
    load = np.minimum(s0.real, 0) + 1j * np.minimum(s0.imag, 0)  # the loads' part of the injections
    S0 = np.repeat(s0[None, :], n, axis=0) + load[None, :] * 0.05 * rng.uniform(-1, 1, (n, len(s0)))
    if n > 6:
        S0[6] = s0 + 7.0 * load
    return g, eng, solver, np.ascontiguousarray(S0)


def _one_by_one(solver, eng, S0, v0, V, warm, independent, reuse=True):
    n, nb = S0.shape
    Vs = np.full((n, nb), np.nan + 0j)
    ok, its, norms = np.zeros(n, bool), np.zeros(n, np.int32), np.full(n, np.nan)
    for i in range(n):
        if not warm:
            V[:] = v0
        c, it, nm = solver.solve(eng.ydata, S0[i], eng.inj.si, eng.inj.sz, V, 1e-8, 10,
                                 reuse and (warm or independent))
        ok[i], its[i], norms[i] = c, it, nm
        if c:
            Vs[i] = V
        warm = c and not independent
    return Vs, ok, its, norms


@pytest.mark.parametrize("independent", [False, True])
def test_solve_steps_equals_one_solve_per_step(independent):
    g, eng, solver, S0 = _setup()
    n, nb = S0.shape
    v0 = eng.V.copy()
    si, sz = eng.inj.si[None, :].copy(), eng.inj.sz[None, :].copy()
    # the chunk in the kernel, from a fresh solver state ...
    Vs, ok = np.full((n, nb), np.nan + 0j), np.zeros(n, np.uint8)
    its, norms = np.zeros(n, np.int32), np.full(n, np.nan)
    VM, VA = np.full((n, nb), np.nan), np.full((n, nb), np.nan)
    V = v0.copy()
    i, warm = 0, False
    calls = 0
    while i < n:
        i, warm = newton.solve_steps(solver, eng.ydata, S0, si, sz, V, v0, warm, Vs, ok, its, norms, i, 1e-8, 10,
                                     True, independent, VM, VA)
        calls += 1
    assert not ok[6] and ok.sum() >= n - 2  # the scaled step diverges, the others converge
    assert np.isnan(Vs[6]).all() and np.isnan(VM[6]).all()
    if independent:
        assert calls >= 2  # it came back after the step that failed
    # ... and step by step through solve() on a new solver of the same model
    eng.model.solvers.clear()
    other = eng._newton(eng.topo.pv, eng.topo.pq)
    want = _one_by_one(other, eng, S0, v0, v0.copy(), False, independent)
    assert np.array_equal(Vs, want[0], equal_nan=True)
    assert np.array_equal(ok.view(bool), want[1]) and np.array_equal(its, want[2])
    assert np.array_equal(norms, want[3], equal_nan=True)
    # the solver's polar form of each converged step is the step's voltage, and a bus of fixed
    # magnitude reads exactly its start magnitude, chained or not (no round-off carried over)
    good = ok.view(bool)
    assert np.allclose(VM[good] * np.exp(1j * VA[good]), Vs[good], rtol=0, atol=1e-14)
    fixed = np.concatenate([eng.topo.pv, np.flatnonzero(eng.topo.bus_type == 3)]).astype(int)
    assert len(fixed) and np.allclose(VM[good][:, fixed], np.abs(v0[fixed]), rtol=1e-15, atol=0)
    assert (VM[good][:, fixed] == VM[good][0, fixed]).all()  # the same bits in every step


def test_solve_steps_refuses_inconsistent_arrays():
    g, eng, solver, S0 = _setup(n=3)
    n, nb = S0.shape
    v0 = eng.V.copy()
    si, sz = eng.inj.si[None, :].copy(), eng.inj.sz[None, :].copy()
    args = dict(Vs=np.zeros((n, nb), complex), ok=np.zeros(n, np.uint8), its=np.zeros(n, np.int32),
                norms=np.zeros(n))
    with pytest.raises(ValueError):  # Vs one row short
        newton.solve_steps(solver, eng.ydata, S0, si, sz, v0.copy(), v0, False, args["Vs"][:-1], args["ok"],
                           args["its"], args["norms"], 0, 1e-8, 10, True, False)
    with pytest.raises(ValueError):  # si with two rows for three steps
        newton.solve_steps(solver, eng.ydata, S0, np.repeat(si, 2, 0), sz, v0.copy(), v0, False, args["Vs"],
                           args["ok"], args["its"], args["norms"], 0, 1e-8, 10, True, False)
    with pytest.raises(ValueError):  # a start past the chunk
        newton.solve_steps(solver, eng.ydata, S0, si, sz, v0.copy(), v0, False, args["Vs"], args["ok"],
                           args["its"], args["norms"], 4, 1e-8, 10, True, False)
    with pytest.raises(ValueError):  # magnitudes without angles
        newton.solve_steps(solver, eng.ydata, S0, si, sz, v0.copy(), v0, False, args["Vs"], args["ok"],
                           args["its"], args["norms"], 0, 1e-8, 10, True, False, np.zeros((n, nb)), None)


def test_ac_steps_options_give_the_plain_kernel_bits():
    g, eng, solver, S0 = _setup(n=4)
    br = eng.topo.branches
    nb, nbr = eng.topo.nb, len(br.f)
    rng = np.random.default_rng(0)
    Va = eng.V.copy()
    Vs = np.ascontiguousarray(np.stack([Va * np.exp(1j * 0.01 * rng.uniform(-1, 1, nb)) for _ in range(3)]))
    rows = np.array([2, 0], np.int64)

    def run(**kw):
        out = (np.full((2, nb), -1.0), np.full((2, nb), -1.0), np.zeros((2, nbr), complex),
               np.zeros((2, nbr), complex), np.full((2, nb), -1.0 + 0j))
        resk.ac_steps(Vs, rows, br.f, br.t, br.yff, br.yft, br.ytf, br.ytt, eng.indptr, eng.indices, eng.ydata,
                      100.0, out, **kw)
        return out

    plain = run()
    buses = np.array([0, 5, nb - 1], np.int64)
    some = run(sbus_buses=buses)
    assert np.array_equal(some[4][:, buses], plain[4][:, buses])
    assert (some[4][:, np.setdiff1d(np.arange(nb), buses)] == -1.0).all()  # the others untouched
    for a, b in zip(some[:4], plain[:4]):
        assert np.array_equal(a, b)
    # the polar form given: magnitudes as given, angles wrapped into (-180, 180] as arg V
    vm, va = np.abs(Vs), np.angle(Vs)
    va[:, 1] += 2 * np.pi  # the solver's angles are not wrapped
    va[:, 2] -= 4 * np.pi
    pol = run(polar=(vm, va))
    assert np.array_equal(pol[0], plain[0]) or np.allclose(pol[0], plain[0], rtol=1e-15, atol=0)
    assert np.allclose(pol[1], plain[1], rtol=0, atol=1e-12)
    assert (pol[1] > -180).all() and (pol[1] <= 180).all()
    for a, b in zip(pol[2:], plain[2:]):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError):
        run(sbus_buses=np.array([nb], np.int64))
