"""Review 15, topology: gridtape joins buses and takes branches out exactly as pandapower does.

- A closed bus-bus switch joins its two buses (fused when ``z_ohm <= 0``, an impedance branch
  otherwise) only when both buses are in service (pandapower build_bus.create_bus_lookup): an
  out-of-service bus is never fused and never carries power through a switch chain.
- With ``neglect_open_switch_branches`` an open ``t3`` switch takes out only the trafo3w winding
  it sits on (pandapower build_branch._switch_branches sets that one branch's status to 0).
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

pp = pytest.importorskip("pandapower")

import trust  # noqa: E402

CABLE = "NA2XS2Y 1x95 RM/25 12/20 kV"


def _both(net, opts=None):
    ref = trust.runpp(copy.deepcopy(net), **(opts or {}))
    grid = trust.grid_of(net, **(opts or {}))
    rep = grid.solve()
    assert rep.converged and ref.converged
    return trust.assert_agrees(grid, ref)


def test_oos_bus_between_two_fused_switches_carries_nothing():
    """ext_grid bus -- switch -- out-of-service bus -- switch -- loaded bus: the load is unsupplied."""
    net = pp.create_empty_network()
    b0, b1, b2 = (pp.create_bus(net, 20) for _ in range(3))
    pp.create_ext_grid(net, b0)
    pp.create_switch(net, b0, b1, "b", closed=True)
    pp.create_switch(net, b1, b2, "b", closed=True)
    pp.create_load(net, b2, 5.0, 1.0)
    net.bus.loc[b1, "in_service"] = False
    _both(net)


@pytest.mark.parametrize("oos_is_bus", [True, False])
def test_oos_busbar_switched_to_a_supplied_bus_does_not_take_it_out(oos_is_bus):
    net = pp.create_empty_network()
    b0, b1, b2 = pp.create_bus(net, 20), pp.create_bus(net, 20, in_service=False), pp.create_bus(net, 20)
    pp.create_ext_grid(net, b0)
    pp.create_line(net, b0, b2, 2, CABLE)
    pp.create_load(net, b2, 3.0, 0.5)
    pp.create_switch(net, *((b1, b2) if oos_is_bus else (b2, b1)), "b", closed=True)
    _both(net)


def test_impedance_switch_to_an_oos_bus_has_nan_results():
    net = pp.create_empty_network()
    b0, b1 = pp.create_bus(net, 20), pp.create_bus(net, 20, in_service=False)
    pp.create_ext_grid(net, b0)
    pp.create_load(net, b0, 1, 0.2)
    pp.create_switch(net, b0, b1, "b", closed=True, z_ohm=0.5)
    d = _both(net)
    assert ("switch", "p_from_mw") in d


def _random_busbars(seed):
    """Busbar chains and rings of closed bus-bus switches (random direction, order, z_ohm and
    which buses are out of service), fed by lines from the ext_grid bus, with loads and sgens."""
    rng = np.random.default_rng(seed)
    net = pp.create_empty_network()
    n = int(rng.integers(4, 9))
    buses = [pp.create_bus(net, 20) for _ in range(n)]
    pp.create_ext_grid(net, buses[0], vm_pu=1.02)
    oos = rng.random(n) < 0.35
    oos[0] = False
    net.bus["in_service"] = ~oos
    pairs = [(i, i + 1) for i in range(n - 1)] + [tuple(rng.choice(n, 2, replace=False)) for _ in range(2)]
    rng.shuffle(pairs)
    for a, b in pairs:
        if rng.random() < 0.5:
            a, b = b, a
        z = 0.0 if rng.random() < 0.7 else float(rng.uniform(0.1, 1.0))
        pp.create_switch(net, buses[a], buses[b], "b", closed=bool(rng.random() < 0.85), z_ohm=z)
    for _ in range(int(rng.integers(1, 3))):
        pp.create_line(net, buses[0], buses[int(rng.integers(1, n))], float(rng.uniform(0.5, 3)), CABLE)
    for i in range(1, n):
        pp.create_load(net, buses[i], float(rng.uniform(0.2, 2)), float(rng.uniform(0, 0.5)))
        if rng.random() < 0.3:
            pp.create_sgen(net, buses[i], float(rng.uniform(0.1, 1)))
    return net


@pytest.mark.parametrize("seed", range(40))
def test_random_busbars_with_oos_buses(seed):
    _both(_random_busbars(seed))


def _t3_net(open_sides, feed_lv=False):
    net = pp.create_empty_network()
    hv, mv, lv = pp.create_bus(net, 110), pp.create_bus(net, 20), pp.create_bus(net, 10)
    pp.create_ext_grid(net, hv)
    t = pp.create_transformer3w(net, hv, mv, lv, "63/25/38 MVA 110/20/10 kV")
    pp.create_transformer3w(net, hv, mv, lv, "63/25/38 MVA 110/20/10 kV")  # a parallel one, closed
    pp.create_load(net, mv, 6.0, 1.0)
    pp.create_load(net, lv, 2.0, 0.5)
    if feed_lv:  # a second supply of the lv bus: the star point stays supplied through it
        b = pp.create_bus(net, 10)
        pp.create_ext_grid(net, b, vm_pu=1.01)
        pp.create_line(net, b, lv, 1.0, "NA2XS2Y 1x240 RM/25 6/10 kV")
    for side in open_sides:
        pp.create_switch(net, {"hv": hv, "mv": mv, "lv": lv}[side], t, "t3", closed=False)
    return net


@pytest.mark.parametrize("neglect", [True, False])
@pytest.mark.parametrize("feed_lv", [False, True])
@pytest.mark.parametrize("open_sides", [("lv",), ("mv",), ("hv",), ("hv", "lv"), ("mv", "lv")])
def test_open_t3_switch_takes_out_one_winding(open_sides, feed_lv, neglect):
    _both(_t3_net(open_sides, feed_lv), {"neglect_open_switch_branches": neglect})


def test_open_t3_switch_single_trafo3w_neglect():
    """The reviewer's case: one trafo3w, its lv winding switched open: the mv load stays supplied."""
    net = _t3_net(("lv",))
    net.trafo3w.drop(index=1, inplace=True)
    d = _both(net, {"neglect_open_switch_branches": True})
    assert ("trafo3w", "p_hv_mw") in d


@pytest.mark.parametrize("neglect", [True, False])
@pytest.mark.parametrize("seed", range(8))
def test_multivoltage_with_oos_buses_and_open_switches(seed, neglect):
    """example_multivoltage (34 bus-bus switches, a trafo3w) with switches on the trafo3w's ends,
    random open line / trafo / t3 switches and random out-of-service buses (not the slack's)."""
    import pandapower.networks as pn

    rng = np.random.default_rng(seed)
    net = pn.example_multivoltage()
    t = net.trafo3w.index[0]
    for col in ("hv_bus", "mv_bus", "lv_bus"):
        pp.create_switch(net, int(net.trafo3w.at[t, col]), t, "t3", closed=True)
    sw = net.switch
    br = np.flatnonzero(sw.et.isin(["l", "t"]).to_numpy())
    sw.loc[sw.index[rng.choice(br, 3, replace=False)], "closed"] = False
    t3 = np.flatnonzero((sw.et == "t3").to_numpy())
    sw.loc[sw.index[rng.choice(t3, int(rng.integers(1, 3)), replace=False)], "closed"] = False
    slack = set(net.ext_grid.bus.tolist())
    cand = [b for b in net.bus.index if b not in slack]
    net.bus.loc[rng.choice(cand, 3, replace=False), "in_service"] = False
    _both(net, {"neglect_open_switch_branches": neglect})
