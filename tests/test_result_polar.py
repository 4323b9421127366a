"""The result arrays of a Newton solve take the solver's own magnitudes and angles
(NewtonSolver.polar, resk.ac_arrays(polar=...)) and the model's index arrays checked once
(resk.AcIndex): they equal the arrays computed from the voltages alone (|V|, arg V) to 1e-12,
bit for bit where they do not read the polar form; a solver run since the solve (a study, a
mismatch evaluation) is noticed and the arrays are computed from V; bad arrays are refused."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import gridtape as gt
from gridtape.solver_cy import resk
from gridtape.solver_cy.result_arrays import compute_arrays, fill_grid2op

CASES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "cases")


def _same_as_from_V(eng):
    """Assert the engine's result arrays equal those computed from its voltages alone."""
    res = eng.results()
    vm, va, sf, st, sbus, gp, gq = (a.copy() for a in (res.vm, res.va, res.sf, res.st, res.sbus, res.gen_p,
                                                      res.gen_q))
    plain = compute_arrays(eng, eng.V, "nr")  # (the model's buffers: overwrites res's arrays)
    assert np.array_equal(np.isnan(vm), np.isnan(plain.vm)) and np.array_equal(np.isnan(va), np.isnan(plain.va))
    ok = ~np.isnan(vm)
    assert np.abs(vm[ok] - plain.vm[ok]).max() <= 1e-12
    d = np.abs(va[ok] - plain.va[ok])
    assert np.minimum(d, 360.0 - d).max() <= 1e-10  # degrees (angles near +-180 may wrap apart)
    for a, b in ((sf, plain.sf), (st, plain.st), (sbus, plain.sbus), (gp, plain.gen_p), (gq, plain.gen_q)):
        assert np.array_equal(a, b, equal_nan=True)  # computed from V both ways
    return vm, plain.vm


def _polar_in_use(eng):
    return eng.polar() is not None


def test_newton_results_take_the_solvers_polar_form():
    g = gt.PowerGrid(os.path.join(CASES, "IEEE118"), journal=False)
    assert g.solve().converged
    eng = g._engine
    assert _polar_in_use(eng)
    vm, plain = _same_as_from_V(eng)
    assert not np.array_equal(vm, np.abs(eng.V)) or np.array_equal(vm, plain)  # (either way within 1e-12)
    # a warm re-solve after a load write, then the solver run again on other voltages (as a
    # mismatch evaluation or a study's step does): the polar form no longer belongs to V
    ld = g.world["load"]
    g.world.set_value("load", int(ld.ids[0]), "p_mw", float(ld.cols["p_mw"][0]) * 1.05)
    assert g.solve().converged and _polar_in_use(eng)
    _same_as_from_V(eng)
    solver = eng._polar[1]
    inj = eng.inj
    solver.mismatch(eng.ydata, inj.s0, inj.si, inj.sz, np.ascontiguousarray(eng.V * 1.02))
    assert not _polar_in_use(eng)
    eng._results = None
    res = eng.results()
    assert np.nanmax(np.abs(res.vm - np.abs(eng.V))) <= 1e-15  # |V|, not the solver's 1.02 |V|
    # Q limits, DC: the voltages alone
    assert g.solve(qlim=True).converged and not _polar_in_use(eng)
    assert g.solve(algorithm="dc").converged and not _polar_in_use(eng)


def test_ac_index_and_ac_arrays_refuse_bad_arrays():
    g = gt.PowerGrid(os.path.join(CASES, "IEEE30"), journal=False)
    assert g.solve().converged
    eng = g._engine
    br, nb = eng.topo.branches, eng.topo.nb
    ix = resk.AcIndex(nb, br.f, br.t, eng.indptr, eng.indices)
    assert (ix.nb, ix.nbr) == (nb, len(br.f))
    bad_f = br.f.copy()
    bad_f[3] = nb  # a branch end past the last bus
    with pytest.raises(ValueError, match="branch bus out of range"):
        resk.AcIndex(nb, bad_f, br.t, eng.indptr, eng.indices)
    bad_i = eng.indices.copy()
    bad_i[-1] = -1
    with pytest.raises(ValueError, match="Ybus column out of range"):
        resk.AcIndex(nb, br.f, br.t, eng.indptr, bad_i)
    with pytest.raises(ValueError):
        resk.AcIndex(nb + 1, br.f, br.t, eng.indptr, eng.indices)  # indptr of another bus count
    with pytest.raises(ValueError):
        resk.AcIndex(nb, br.f.astype(np.int64), br.t, eng.indptr, eng.indices)
    args = (br.yff, br.yft, br.ytf, br.ytt, eng.ydata)
    polar = (np.abs(eng.V), np.angle(eng.V))
    ok = resk.ac_arrays(eng.V, ix, *args, 100.0, None, polar)
    plain = resk.ac_arrays(eng.V, ix, *args, 100.0)
    assert np.abs(ok[0] - plain[0]).max() <= 1e-15 and np.abs(ok[1] - plain[1]).max() <= 1e-12
    for k in range(5):  # each admittance array one short
        bad = list(args)
        bad[k] = bad[k][:-1]
        with pytest.raises(ValueError):
            resk.ac_arrays(eng.V, ix, *bad, 100.0)
    with pytest.raises(ValueError):
        resk.ac_arrays(eng.V[:-1], ix, *args, 100.0)
    with pytest.raises(ValueError, match="polar"):
        resk.ac_arrays(eng.V, ix, *args, 100.0, None, (polar[0][:-1], polar[1]))
    with pytest.raises(ValueError, match="polar"):
        resk.ac_arrays(eng.V, ix, *args, 100.0, None, (polar[0], polar[1].astype(np.float32)))
    with pytest.raises(TypeError):
        resk.ac_arrays(eng.V, None, *args, 100.0)
    # NaN voltages (unsupplied buses) read NaN whatever the polar form holds
    V = eng.V.copy()
    V[2] = np.nan
    vm, va = resk.ac_arrays(V, ix, *args, 100.0, None, polar)[:2]
    assert np.isnan(vm[2]) and np.isnan(va[2]) and not np.isnan(vm[3])


grid2op = pytest.importorskip("grid2op")

from gridtape.grid2op import GridtapeBackend  # noqa: E402
from gridtape.solver_cy.g2o import BufferPack  # noqa: E402


def _buffers_from(bk, res):
    """The backend's buffers filled again from ``res`` (fresh buffers)."""
    eng = bk.grid._engine
    mc = bk._copy.model(bk.grid)
    lbuf = np.full_like(bk._out.buf["line"], np.nan)
    ebuf = np.full_like(bk._out.buf["inj"], np.nan)
    pack = BufferPack(lbuf, ebuf, tuple(bk._out.inj_sizes), mc["sel"], mc["b2"], mc["kv2_on"], mc["amp_den"],
                      mc["off2"], mc["eb"], mc["eon"], eng.topo.base_kv, len(eng.topo.branches.f))
    sto = bk.grid.world["storage"].cols
    assert fill_grid2op(res, pack, sto["p_mw"], sto["q_mvar"])
    return lbuf, ebuf


@pytest.mark.parametrize("name", ["l2rpn_case14_sandbox", "l2rpn_idf_2023"])
def test_grid2op_buffers_equal_the_generic_result_arrays(name):
    """After do-nothing and topology steps, the backend's buffers (the result copy of each step)
    equal the buffers filled from result arrays computed from the voltages alone, within a
    float32 step; the result arrays agree to 1e-12."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = grid2op.make(name, test=True, backend=GridtapeBackend())
    space = env.action_space
    subs = np.flatnonzero(env.sub_info >= 4)[:6]
    topos = [a.set_bus for s in subs for a in space.get_all_unitary_topologies_set(space, sub_id=int(s))]
    rng = np.random.default_rng(11)
    env.seed(0)
    env.reset()
    checked = polar = 0
    for step in range(30):
        topo = step % 3 == 2
        a = space({"set_bus": topos[int(rng.integers(len(topos)))]}) if topo else space()
        _, _, done, _ = env.step(a)
        if done:
            env.reset()
            continue
        bk = env.backend
        eng = bk.grid._engine
        polar += _polar_in_use(eng)
        got = bk._out.buf["line"].copy(), bk._out.buf["inj"].copy()
        _same_as_from_V(eng)  # leaves the model's arrays computed from V
        eng._results = None
        eng._polar = None
        want = _buffers_from(bk, eng.results())
        for x, y in zip(got, want):
            assert np.array_equal(np.isnan(x), np.isnan(y))
            ok = ~np.isnan(x)
            assert np.all(np.abs(x[ok] - y[ok]) <= np.maximum(np.spacing(np.abs(y[ok])), np.float32(1e-9)))
        checked += 1
    assert checked >= 15 and polar == checked  # every step's copy took the solver's polar form
    env.close()
