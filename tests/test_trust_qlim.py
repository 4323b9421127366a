"""Issue 15, Q limits: ``enforce_q_lims`` as pandapower's ``_run_ac_pf_with_qlims_enforced`` does
it (gens at their limits per outer round, reference machines excluded, machines sharing a bus),
sgen Q limits, and reactive capability curves on gen and sgen."""
from __future__ import annotations

import copy

import numpy as np
import pytest

pp = pytest.importorskip("pandapower")
pn = pytest.importorskip("pandapower.networks")

import trust  # noqa: E402  (tests/trust.py)


def _tightened(net, seed=7, share=0.5):
    """Limits tightened so that many gens bind; a second machine at some generator buses (several
    of which bind), a non-slack gen at the ext_grid bus (it is not a reference machine: pandapower
    limits it)."""
    trust.runpp(net)
    q = net.res_gen.q_mvar.to_numpy()
    rng = np.random.default_rng(seed)
    sel = rng.random(len(q)) < share
    mx = net.gen.max_q_mvar.to_numpy(float).copy()
    mn = net.gen.min_q_mvar.to_numpy(float).copy()
    mx[sel & (q > 0)] = 0.5 * q[sel & (q > 0)]
    mn[sel & (q < 0)] = 0.5 * q[sel & (q < 0)]
    net.gen["max_q_mvar"] = mx
    net.gen["min_q_mvar"] = mn
    for k, i in enumerate(net.gen.index[:60:3]):
        g = net.gen.loc[i]
        lim = 0.3 * abs(q[k * 3]) + 0.1
        net.gen.loc[i, ["min_q_mvar", "max_q_mvar"]] = [-lim, lim]
        pp.create_gen(net, g.bus, p_mw=g.p_mw * 0.3, vm_pu=g.vm_pu, min_q_mvar=-0.5, max_q_mvar=0.5)
    eb = net.ext_grid.bus.iloc[0]
    pp.create_gen(net, eb, p_mw=10.0, vm_pu=net.ext_grid.vm_pu.iloc[0], min_q_mvar=-1.0, max_q_mvar=1.0)
    for k in ("res_bus", "res_gen", "res_line", "res_ext_grid", "res_load", "res_trafo", "res_shunt", "res_sgen"):
        if k in net:
            net[k] = net[k].iloc[0:0]
    return net


@pytest.mark.parametrize("case", ["case1354pegase", "case2869pegase"])
def test_qlim_tightened_transmission_network_matches_runpp(case):
    net = _tightened(getattr(pn, case)())
    ref = trust.runpp(copy.deepcopy(net), enforce_q_lims=True)
    q = ref.res_gen.q_mvar.to_numpy()
    at_limit = np.isclose(q, ref.gen.max_q_mvar) | np.isclose(q, ref.gen.min_q_mvar)
    assert at_limit.sum() >= 24  # dozens bind
    shared = ref.gen.bus[at_limit].duplicated(keep=False)
    assert shared.sum() >= 2  # several at one bus
    grid = trust.grid_of(net, qlim=True)
    assert grid.solve().converged
    trust.assert_agrees(grid, ref)


def _small():
    net = pp.create_empty_network(sn_mva=10.0)
    b = [pp.create_bus(net, 110.0) for _ in range(5)]
    pp.create_ext_grid(net, b[0], vm_pu=1.03)
    for f, t in ((0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (1, 3)):
        pp.create_line_from_parameters(net, b[f], b[t], 20.0, 0.06, 0.4, 10.0, 0.6)
    for i in range(1, 5):
        pp.create_load(net, b[i], p_mw=20.0 + 5 * i, q_mvar=8.0 + 2 * i)
    return net, b


def test_qlim_non_slack_gen_at_ext_grid_bus_is_limited():
    net, b = _small()
    pp.create_gen(net, b[0], p_mw=5.0, vm_pu=1.03, min_q_mvar=-0.5, max_q_mvar=0.5)
    pp.create_gen(net, b[2], p_mw=15.0, vm_pu=1.05, min_q_mvar=-50, max_q_mvar=50)
    trust.solve_and_compare(net, grid_kwargs={"qlim": True}, pp_kwargs={"enforce_q_lims": True})
    ref = trust.runpp(copy.deepcopy(net), enforce_q_lims=True)
    assert np.isclose(ref.res_gen.q_mvar.iloc[0], 0.5) or np.isclose(ref.res_gen.q_mvar.iloc[0], -0.5)


def test_qlim_gens_sharing_a_bus_one_binds_the_other_keeps_its_q():
    """Machines at one bus share its Q in proportion to their ranges (pfsoln), so they reach their
    limits together; the bus turns PQ with both at their limits."""
    net, b = _small()
    pp.create_gen(net, b[2], p_mw=10.0, vm_pu=1.06, min_q_mvar=-2.0, max_q_mvar=2.0)
    pp.create_gen(net, b[2], p_mw=10.0, vm_pu=1.06, min_q_mvar=-60.0, max_q_mvar=60.0)
    pp.create_gen(net, b[3], p_mw=8.0, vm_pu=1.05, min_q_mvar=-3.0, max_q_mvar=3.0)
    pp.create_gen(net, b[3], p_mw=8.0, vm_pu=1.05, min_q_mvar=-4.0, max_q_mvar=4.0)
    trust.solve_and_compare(net, grid_kwargs={"qlim": True}, pp_kwargs={"enforce_q_lims": True})


@pytest.mark.parametrize("via", ["net", "json"])
def test_sgen_q_limits_clip_q_with_enforce_q_lims(via, tmp_path):
    net, b = _small()
    pp.create_sgen(net, b[1], p_mw=5.0, q_mvar=12.0, min_q_mvar=-3.0, max_q_mvar=4.0)
    pp.create_sgen(net, b[3], p_mw=5.0, q_mvar=-9.0, min_q_mvar=-2.0, max_q_mvar=4.0, scaling=0.8)
    pp.create_sgen(net, b[4], p_mw=5.0, q_mvar=1.0, min_q_mvar=-2.0, max_q_mvar=4.0)
    d = trust.solve_and_compare(net, via, tmp_path, grid_kwargs={"qlim": True}, pp_kwargs={"enforce_q_lims": True})
    assert ("sgen", "q_mvar") in d
    # without enforce_q_lims the set-points stand
    trust.solve_and_compare(net, via, tmp_path)


def _with_capability_curves(net, b):
    from pandapower.control.util.auxiliary import create_q_capability_characteristics_object

    import pandas as pd

    g0 = pp.create_gen(net, b[2], p_mw=30.0, vm_pu=1.06, min_q_mvar=-100, max_q_mvar=100,
                       reactive_capability_curve=True, id_q_capability_characteristic=0,
                       curve_style="straightLineYValues")
    pp.create_gen(net, b[4], p_mw=12.0, vm_pu=1.05, min_q_mvar=-100, max_q_mvar=100)
    pp.create_sgen(net, b[3], p_mw=18.0, q_mvar=9.0, min_q_mvar=-100, max_q_mvar=100,
                   reactive_capability_curve=True, id_q_capability_characteristic=1,
                   curve_style="straightLineYValues")
    net["q_capability_curve_table"] = pd.DataFrame({
        "id_q_capability_curve": [0, 0, 0, 0, 1, 1, 1],
        "p_mw": [0.0, 20.0, 40.0, 60.0, 0.0, 10.0, 30.0],
        "q_min_mvar": [-6.0, -5.0, -4.0, -2.0, -3.0, -2.0, -1.0],
        "q_max_mvar": [6.0, 5.5, 3.0, 1.0, 3.0, 2.5, 1.5],
    })
    create_q_capability_characteristics_object(net)
    return g0


@pytest.mark.parametrize("via", ["net", "json"])
def test_reactive_capability_curves_on_gen_and_sgen(via, tmp_path):
    net, b = _small()
    _with_capability_curves(net, b)
    d = trust.solve_and_compare(net, via, tmp_path, grid_kwargs={"qlim": True}, pp_kwargs={"enforce_q_lims": True})
    ref = trust.runpp(copy.deepcopy(net), enforce_q_lims=True)
    # the curve binds: gen 0 at p=30 MW has q_max 4.25 Mvar
    assert abs(ref.res_gen.q_mvar.iloc[0] - 4.25) < 1e-6
    assert d[("gen", "q_mvar")] <= 1e-3


def test_qlim_tie_at_a_limit_is_reported_by_name():
    """A generator whose Q sits on its limit to within the solver tolerance is a round-off tie:
    pandapower may fix it there or not.  gridtape says so (QLimitTieWarning naming the gen) rather
    than differ silently; a limit clear of the Q raises nothing."""
    import warnings

    from gridtape.errors import QLimitTieWarning

    net, b = _small()
    pp.create_gen(net, b[2], p_mw=15.0, vm_pu=1.05, min_q_mvar=-50, max_q_mvar=50)
    g2 = pp.create_gen(net, b[3], p_mw=5.0, vm_pu=1.04, min_q_mvar=-50, max_q_mvar=50)
    grid = trust.grid_of(net)
    assert grid.solve().converged
    q = float(grid.res_gen.q_mvar.loc[g2])
    with warnings.catch_warnings():
        warnings.simplefilter("error", QLimitTieWarning)
        assert grid.solve(qlim=True).converged  # limits clear of Q: no warning
    grid.set("gen", [g2], "max_q_mvar" if q > 0 else "min_q_mvar", [q])
    with pytest.warns(QLimitTieWarning) as rec:
        grid.solve(qlim=True, init="flat")
    w = rec[0].message
    assert w.table == "gen" and w.rows == (g2,) and f"gen {g2}" in str(w)
    assert isinstance(w, UserWarning)


def test_qlim_gbnetwork_round_off_tie_is_named():
    """GBnetwork with enforce_q_lims: gen 233 sits alone on a dangling bus with min_q_mvar = 0 and
    Q = 0 (pandapower's round-off gives -1.5e-13 and fixes it).  The one difference of the sweep
    over pandapower.networks is therefore reported, not silent."""
    from gridtape.errors import QLimitTieWarning

    net = pn.GBnetwork()
    grid = trust.grid_of(net, qlim=True)
    with pytest.warns(QLimitTieWarning) as rec:
        grid.solve()
    assert 233 in rec[0].message.rows
