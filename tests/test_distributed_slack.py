"""Distributed slack agrees with pandapower's ``runpp(distributed_slack=True)``.

Tolerances (the issue's): |dvm| <= 1e-6 p.u., |dva| <= 1e-4 degree, branch, gen and ext_grid P/Q
<= 1e-3 MW/MVAr, iteration counts within +-1.  pandapower runs with lightsim2grid=False,
numba=False and tolerance_mva=1e-9; gridtape with the same tolerance.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

pp = pytest.importorskip("pandapower")
pn = pytest.importorskip("pandapower.networks")

import networks  # noqa: E402  (tests/networks.py)

from gridtape import PowerGrid  # noqa: E402
from gridtape.errors import OptionError, SchemaError, SolverError  # noqa: E402
from gridtape.solver_cy.newton import DistributedSlackSolver  # noqa: E402
from gridtape.world.io_pandapower import from_pandapower  # noqa: E402

logging.getLogger("pandapower").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")

TOL = 1e-9
COLS = {"bus": ["vm_pu", "va_degree", "p_mw", "q_mvar"], "line": ["p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar"],
        "trafo": ["p_hv_mw", "q_hv_mvar", "p_lv_mw", "q_lv_mvar"], "gen": ["p_mw", "q_mvar", "vm_pu", "va_degree"],
        "ext_grid": ["p_mw", "q_mvar"], "xward": ["p_mw", "q_mvar"], "impedance": ["p_from_mw", "q_from_mvar"]}


def _limit(col):
    return 1e-6 if col.startswith("vm") else 1e-4 if col.startswith("va") else 1e-3


def run_pp(net, qlim=False):
    pp.runpp(net, distributed_slack=True, lightsim2grid=False, tolerance_mva=TOL, numba=False, enforce_q_lims=qlim)
    return net._ppc["iterations"]


def assert_matches(grid, net, rows=None):
    """Every result column of COLS agrees with pandapower's (``rows``: a subset of each table's ids)."""
    n = 0
    for kind, cols in COLS.items():
        if not len(net[kind]):
            continue
        ours = getattr(grid, "res_" + kind)
        idx = ours.index if rows is None else ours.index.intersection(rows.get(kind, []))
        for col in cols:
            a = ours.loc[idx, col].to_numpy(float)
            b = net["res_" + kind].loc[idx, col].to_numpy(float)
            assert np.array_equal(np.isnan(a), np.isnan(b)), f"res_{kind}.{col}: NaN pattern differs"
            d = np.abs(a - b)[~np.isnan(a)]
            assert d.size == 0 or d.max() <= _limit(col), f"res_{kind}.{col}: max diff {d.max()}"
            n += d.size
    assert n > 0


def solve_both(net, qlim=False):
    grid = PowerGrid(world=from_pandapower(net), journal=False, qlim=qlim, tolerance_mva=TOL, distributed_slack=True)
    rep = grid.solve()
    it = run_pp(net, qlim)
    assert rep.converged
    assert abs(rep.iterations - it) <= 1, (rep.iterations, it)
    assert_matches(grid, net)
    return grid


# --- networks -----------------------------------------------------------------------------
def case118_weighted():
    net = pn.case118()
    net.ext_grid["slack_weight"] = 2.0
    net.gen.loc[net.gen.index[::5], "slack_weight"] = 1.0
    return net


def case300_zero_weight_slack():
    net = pn.case300()
    net.ext_grid["slack_weight"] = 0.0  # the reference takes no share, its P equation stays
    pick = net.gen.index[::3]
    net.gen.loc[pick, "slack_weight"] = np.arange(len(pick)) % 4 + 0.5
    return net


def case118_areas():
    """IEEE 118's three areas, each with its own weight level; the ext_grid takes none."""
    net = pn.case118()
    net.ext_grid["slack_weight"] = 0.0
    bus = net.gen.bus.to_numpy()
    area = np.where(bus < 23, 0, np.where(bus < 68, 1, 2))
    net.gen["slack_weight"] = np.array([1.0, 2.5, 0.7])[area] * (net.gen.index % 2 == 0)
    return net


def gens_sharing_buses():
    """Two weighted gens on one bus, a weighted gen at the ext_grid bus, an unweighted one."""
    net = networks.wards_impedances_gens()
    net.xward.drop(net.xward.index, inplace=True)  # pandapower refuses an xward at a gen bus
    net.gen["slack_weight"] = [1.0, 3.0, 0.5, 0.0]
    return net


def two_references():
    """A slack gen and an ext_grid in one island: pandapower keeps the first reference angle and
    turns the other reference into a PV bus."""
    net = networks.phase_shifters_and_slack_gen()
    pp.create_ext_grid(net, 4, vm_pu=1.0, va_degree=0.0, slack_weight=1.0)
    net.gen["slack_weight"] = [2.0, 1.0]
    return net


def weighted_xward():
    net, b = networks.base(sn_mva=10.0)
    pp.create_xward(net, b[2], ps_mw=2, qs_mvar=0.5, pz_mw=0.2, qz_mvar=0.3, r_ohm=1.0, x_ohm=8.0, vm_pu=1.01,
                    slack_weight=2.0)
    pp.create_gen(net, b[3], p_mw=3, vm_pu=1.0, slack_weight=1.0)
    pp.create_load(net, b[2], p_mw=10, q_mvar=3)
    pp.create_load(net, b[1], p_mw=8, q_mvar=2)
    return net


NETS = {"case118_weighted": case118_weighted, "case300_zero_weight_slack": case300_zero_weight_slack,
        "case118_areas": case118_areas, "gens_sharing_buses": gens_sharing_buses, "two_references": two_references,
        "weighted_xward": weighted_xward}


# --- agreement ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(NETS))
def test_matches_pandapower(name):
    net = NETS[name]()
    grid = solve_both(net)
    # the slack is really shared: weighted gens move off their set-points, unweighted ones do not
    moved = np.abs(grid.res_gen.p_mw.to_numpy() - net.gen.p_mw.to_numpy() * net.gen.scaling.to_numpy())
    w = net.gen.slack_weight.to_numpy()
    on_ref = net.gen.bus.isin(net.ext_grid.bus).to_numpy() | net.gen.slack.to_numpy()
    assert (moved[(w != 0)] > 1e-3).all()
    assert (moved[(w == 0) & ~on_ref] < 1e-9).all()


@pytest.mark.parametrize("name", ["case118_weighted", "gens_sharing_buses", "two_references"])
def test_matches_pandapower_with_q_limits(name):
    net = NETS[name]()
    grid = solve_both(net, qlim=True)
    assert grid._engine.q_limited.any() or name != "case118_weighted"


def test_shares_follow_the_weights():
    net = case118_weighted()
    grid = PowerGrid(world=from_pandapower(net), journal=False, tolerance_mva=TOL, distributed_slack=True)
    assert grid.solve().converged
    extra_gen = grid.res_gen.p_mw.to_numpy() - net.gen.p_mw.to_numpy()
    total = grid.res_ext_grid.p_mw.sum() + extra_gen.sum()
    w = net.gen.slack_weight.to_numpy()
    np.testing.assert_allclose(extra_gen, total * w / (w.sum() + 2.0), atol=1e-9)
    np.testing.assert_allclose(grid.res_ext_grid.p_mw.to_numpy(), total * 2.0 / (w.sum() + 2.0), atol=1e-9)
    # losses plus load equal generation
    gen = grid.res_gen.p_mw.sum() + grid.res_ext_grid.p_mw.sum()
    losses = grid.res_line.pl_mw.sum() + grid.res_trafo.pl_mw.sum()
    shunt = grid.res_shunt.p_mw.sum() if len(net.shunt) else 0.0
    assert abs(gen - grid.res_load.p_mw.sum() - losses - shunt) < 1e-6


@pytest.mark.parametrize("name", ["case118_weighted", "two_references"])
def test_resolve_after_load_change_and_back_to_plain_slack(name):
    net = NETS[name]()
    grid = PowerGrid(world=from_pandapower(net), journal=False, tolerance_mva=TOL, distributed_slack=True)
    assert grid.solve().converged
    ids = grid.world["load"].ids
    p = grid.world["load"].cols["p_mw"] * 1.05
    grid.world.set_values("load", ids, "p_mw", p)
    rep = grid.solve()  # warm start, incremental
    assert rep.converged and rep.rebuild == "incremental"
    net.load["p_mw"] = p
    run_pp(net)
    assert_matches(grid, net)
    # the same grid, now with a plain slack: every reference angle is pinned again
    rep = grid.solve(distributed_slack=False)
    assert rep.converged
    pp.runpp(net, lightsim2grid=False, tolerance_mva=TOL, numba=False)
    assert_matches(grid, net)


def test_islands_each_share_their_own_slack():
    """Two islands, each with an ext_grid and weighted gens: each island's slack is shared inside
    it (pandapower solves one island at a time, so each is compared with that island alone)."""
    net = pp.create_empty_network()
    buses = {}
    for k in (0, 1):
        b = [pp.create_bus(net, vn_kv=110.0) for _ in range(4)]
        pp.create_ext_grid(net, b[0], vm_pu=1.02 - 0.01 * k, slack_weight=1.0 + k)
        for i, j, length in ((0, 1, 10.0), (1, 2, 8.0), (2, 3, 6.0), (3, 0, 12.0)):
            pp.create_line_from_parameters(net, b[i], b[j], length, 0.06, 0.4, 10.0, 0.6)
        pp.create_gen(net, b[2], p_mw=20.0 + 5 * k, vm_pu=1.01, slack_weight=1.0)
        pp.create_gen(net, b[3], p_mw=10.0, vm_pu=1.0, slack_weight=0.5 + k)
        pp.create_load(net, b[1], p_mw=40.0 + 10 * k, q_mvar=10.0)
        pp.create_load(net, b[3], p_mw=15.0, q_mvar=4.0)
        buses[k] = b
    grid = PowerGrid(world=from_pandapower(net), journal=False, tolerance_mva=TOL, distributed_slack=True)
    assert grid.solve().converged
    assert len(grid._engine.ps) == 2
    for k in (0, 1):
        alone = pp.from_json_string(pp.to_json(net))
        other = buses[1 - k]
        alone.bus.loc[other, "in_service"] = False
        run_pp(alone)
        rows = {"bus": buses[k], "line": alone.line.index[alone.line.from_bus.isin(buses[k])],
                "gen": alone.gen.index[alone.gen.bus.isin(buses[k])],
                "ext_grid": alone.ext_grid.index[alone.ext_grid.bus.isin(buses[k])]}
        assert_matches(grid, alone, rows)


# --- the kernel -------------------------------------------------------------------------------
def test_jacobian_matches_finite_differences():
    net = gens_sharing_buses()
    grid = PowerGrid(world=from_pandapower(net), journal=False, tolerance_mva=TOL, distributed_slack=True)
    grid.solve(max_iteration=1)  # an unconverged point: every mismatch term is non-trivial
    e = grid._engine
    plan = e.slack_plan
    s = e._newton(e.topo.pv, e.topo.pq, plan)
    assert isinstance(s, DistributedSlackSolver)
    inj = e.inj
    V = e.V.copy()
    ps = e.ps.copy() + 0.01
    pv = np.union1d(e.topo.pv, plan.demoted)
    pq = e.topo.pq
    nr = len(plan.dsref)

    def F(x):
        va, vm = np.angle(V), np.abs(V)
        va[pv] = x[nr:nr + len(pv)]
        va[pq] = x[nr + len(pv):nr + len(pv) + len(pq)]
        vm[pq] = x[nr + len(pv) + len(pq):]
        return s.mismatch(e.ydata, inj.s0, inj.si, inj.sz, vm * np.exp(1j * va), x[:nr].copy())

    x0 = np.concatenate([ps, np.angle(V)[pv], np.angle(V)[pq], np.abs(V)[pq]])
    J = s.jacobian(e.ydata, inj.si, inj.sz, V).toarray()
    h = 1e-7
    num = np.column_stack([(F(x0 + h * np.eye(len(x0))[k]) - F(x0 - h * np.eye(len(x0))[k])) / (2 * h)
                           for k in range(len(x0))])
    np.testing.assert_allclose(J, num, atol=1e-6)
    assert np.abs(J[:, 0]).sum() > 0  # the slack column is there


# --- errors -----------------------------------------------------------------------------------
def test_all_zero_weights_raise():
    net = pn.case14()
    net.ext_grid["slack_weight"] = 0.0
    net.gen["slack_weight"] = 0.0
    grid = PowerGrid(world=from_pandapower(net), journal=False, distributed_slack=True)
    with pytest.raises(SolverError, match="slack_weight"):
        grid.solve()
    assert grid.solve(distributed_slack=False).converged  # the plain slack still works


def test_weights_summing_to_zero_raise():
    net = pn.case14()
    net.ext_grid["slack_weight"] = 1.0
    net.gen["slack_weight"] = 0.0
    net.gen.loc[net.gen.index[0], "slack_weight"] = -1.0
    grid = PowerGrid(world=from_pandapower(net), journal=False, distributed_slack=True)
    with pytest.raises(SchemaError) as err:
        grid.solve()
    assert err.value.field == "slack_weight"


def test_dc_rejects_distributed_slack():
    grid = PowerGrid(world=from_pandapower(pn.case14()), journal=False)
    with pytest.raises(OptionError, match="distributed_slack"):  # an option, not a schema (issue 15)
        grid.solve(algorithm="dc", distributed_slack=True)


def test_weight_write_takes_effect_on_the_next_solve():
    net = case118_weighted()
    grid = PowerGrid(world=from_pandapower(net), journal=False, tolerance_mva=TOL, distributed_slack=True)
    assert grid.solve().converged
    gids = grid.world["gen"].ids[:10]
    w = np.linspace(0.0, 3.0, 10)
    grid.world.set_values("gen", gids, "slack_weight", w)
    grid.world.set_value("ext_grid", int(grid.world["ext_grid"].ids[0]), "slack_weight", 0.0)
    assert grid.solve().converged
    net.gen.loc[gids, "slack_weight"] = w
    net.ext_grid["slack_weight"] = 0.0
    run_pp(net)
    assert_matches(grid, net)


def test_solve_events_record_the_distributed_slack_option():
    """The journal's solve event says whether the slack was distributed (an auditable option)."""
    import json

    import os

    g = PowerGrid(os.path.join(os.path.dirname(__file__), "..", "cases", "IEEE14", "data.zip"))
    g.solve()
    g.solve(distributed_slack=True)
    info = [json.loads(s) for s in g.log(event="solve")["info"]]
    assert "distributed_slack" not in info[-2] and info[-1]["distributed_slack"] is True
