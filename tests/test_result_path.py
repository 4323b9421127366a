"""The one result path (solver_cy/result_arrays.py): the grid2op buffers filled from a solve's
result arrays (result_arrays.fill_grid2op) equal what the backend reports, step by step, over
an episode with topology changes; the generator split of the result arrays equals the
pandapower-order reference split (tests/reference/results.py) on distributed-slack and
multi-generator buses."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from reference.results import gen_pq_reference

import gridtape as gt
from gridtape.world.io_pandapower import from_pandapower

pp = pytest.importorskip("pandapower")
pn = pytest.importorskip("pandapower.networks")


@pytest.mark.parametrize("make,dslack", [(pn.case30, False), (pn.case118, False), (pn.case118, True),
                                         (pn.example_multivoltage, False)])
def test_gen_split_equals_the_reference(make, dslack):
    net = make()
    if dslack:
        net.gen["slack_weight"] = np.linspace(0.5, 2.0, len(net.gen))
    g = gt.PowerGrid(world=from_pandapower(net), distributed_slack=dslack)
    assert g.solve().converged
    e = g._engine
    res = e.results()
    pg, qg = gen_pq_reference(e)
    assert np.allclose(res.gen_p, pg, rtol=0, atol=1e-9)
    assert np.allclose(res.gen_q, qg, rtol=0, atol=1e-9)


def test_shared_gen_bus_splits_q_by_range():
    net = pn.case9()
    b = int(net.gen.bus.iloc[0])
    pp.create_gen(net, b, p_mw=10.0, vm_pu=float(net.gen.vm_pu.iloc[0]), min_q_mvar=-50, max_q_mvar=150)
    g = gt.PowerGrid(world=from_pandapower(net))
    assert g.solve().converged
    pp.runpp(net)
    for col in ("p_mw", "q_mvar"):
        assert np.allclose(g.res_gen[col].to_numpy(), net.res_gen[col].to_numpy(), atol=1e-6)


grid2op = pytest.importorskip("grid2op")

from gridtape.grid2op import GridtapeBackend  # noqa: E402
from gridtape.solver_cy.g2o import BufferPack  # noqa: E402
from gridtape.solver_cy.result_arrays import fill_grid2op  # noqa: E402


def _fill_like_backend(bk):
    """The backend's buffers, filled again from the engine's result arrays."""
    eng = bk.grid._engine
    mc = bk._copy.model(bk.grid)
    lbuf = np.full_like(bk._out.buf["line"], np.nan)
    ebuf = np.full_like(bk._out.buf["inj"], np.nan)
    sel = np.ascontiguousarray(mc["sel"], dtype=np.int64)
    pack = BufferPack(lbuf, ebuf, tuple(bk._out.inj_sizes), sel, mc["b2"], mc["kv2_on"], mc["amp_den"], mc["off2"],
                      mc["eb"], mc["eon"], eng.topo.base_kv, len(eng.topo.branches.f))
    sto = bk.grid.world["storage"].cols
    finite = fill_grid2op(eng.results(), pack, sto["p_mw"], sto["q_mvar"])
    return finite, lbuf, ebuf


def test_fill_grid2op_gives_the_backend_buffers():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = grid2op.make("l2rpn_case14_sandbox", test=True, backend=GridtapeBackend())
    space = env.action_space
    topos = space.get_all_unitary_topologies_set(space)
    rng = np.random.default_rng(7)
    env.seed(0)
    env.reset()
    checked = 0
    for step in range(40):
        k = int(rng.integers(len(topos))) if rng.random() < 0.4 else None
        a = space() if k is None else space({"set_bus": topos[k].set_bus})
        _, _, done, _ = env.step(a)
        if done:
            env.reset()
            continue
        bk = env.backend
        finite, lbuf, ebuf = _fill_like_backend(bk)
        assert finite
        np.testing.assert_allclose(lbuf, bk._out.buf["line"], rtol=2e-6, atol=2e-4)
        np.testing.assert_allclose(ebuf, bk._out.buf["inj"], rtol=2e-6, atol=2e-4)
        checked += 1
    assert checked >= 20
    env.close()
