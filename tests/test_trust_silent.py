"""The last known silent differences from pandapower (model-notes.md, "Not (yet) modelled"), closed:
each case reproduces pandapower's runpp / rundcpp (``trust.assert_agrees``) or is refused with a
gridtape error naming the option.

1. res_ext_grid when no ext_grid is in service (a slack gen is the reference): NaN, as pandapower;
2. loads at a bus without a voltage when the power flow uses voltage-dependent loads: NaN in
   res_load (and in their bus's res_bus p/q), as pandapower; pandapower's NaN leaking into
   unrelated buses' res_bus is not copied;
3. ``check_connectivity=False``: identical where every in-service bus is supplied (or an
   unsupplied one holds nothing that counts), refused by name where pandapower's answer differs;
4. the DC power flow takes the options rundcpp takes: none of the net's stored ones, the explicit
   ones of rundcpp's own parameters."""
from __future__ import annotations

import copy

import numpy as np
import pytest

pp = pytest.importorskip("pandapower")
pn = pytest.importorskip("pandapower.networks")

import trust  # noqa: E402

import gridtape.errors as E  # noqa: E402

CABLE = "NA2XS2Y 1x95 RM/25 12/20 kV"


# --- 1. res_ext_grid with every ext_grid out of service -------------------------------------------

def _slack_gen_net(eg_in_service=False):
    net = pp.create_empty_network()
    for _ in range(4):
        pp.create_bus(net, 20)
    pp.create_line(net, 0, 1, 2, CABLE)
    pp.create_line(net, 1, 2, 2, CABLE)
    pp.create_gen(net, 0, 0, vm_pu=1.01, slack=True)
    pp.create_ext_grid(net, 0, in_service=False)
    pp.create_ext_grid(net, 2, in_service=False)
    pp.create_ext_grid(net, 3, in_service=eg_in_service)  # bus 3: an island of its own
    pp.create_load(net, 2, 3, 1)
    pp.create_sgen(net, 1, 1, 0.2)
    return net


@pytest.mark.parametrize("via", ["net", "json"])
@pytest.mark.parametrize("eg_in_service", [False, True])
def test_res_ext_grid_with_slack_gen_reference(via, eg_in_service, tmp_path):
    net = _slack_gen_net(eg_in_service)
    ref = trust.runpp(copy.deepcopy(net))
    g = trust.grid_of(net, via, tmp_path)
    assert g.solve().converged
    trust.assert_agrees(g, ref)
    eg = g.result("ext_grid")
    if eg_in_service:  # one ext_grid in service: the others read 0 (pandapower fills the table)
        assert (eg.loc[[0, 1], ["p_mw", "q_mvar"]].to_numpy() == 0).all()
    else:
        assert eg[["p_mw", "q_mvar"]].isna().all().all()
    dref = trust.rundcpp(copy.deepcopy(net))
    assert g.solve(algorithm="dc").converged
    trust.assert_agrees(g, dref)


# --- 2. loads at a bus without a voltage, with voltage-dependent loads -----------------------------

def _dead_load_net(dependent=True):
    """Supplied buses 0-2 and 5; bus 3 out of service, bus 4 in service but unsupplied; loads at
    all of them, one voltage-dependent (so pandapower takes its voltage-dependent result path)."""
    net = pp.create_empty_network()
    for _ in range(6):
        pp.create_bus(net, 20)
    pp.create_line(net, 0, 1, 2, CABLE)
    pp.create_line(net, 1, 2, 2, CABLE)
    pp.create_line(net, 2, 5, 2, CABLE)
    pp.create_ext_grid(net, 0)
    net.bus.loc[3, "in_service"] = False
    pp.create_load(net, 2, 1, 0.5, const_z_p_percent=30 if dependent else 0)
    pp.create_load(net, 3, 1, 0.5)  # constant power, at the out-of-service bus
    pp.create_load(net, 3, 1, 0.5, const_i_q_percent=40)
    pp.create_load(net, 4, 1, 0.5, const_z_p_percent=20)  # at the unsupplied in-service bus
    pp.create_load(net, 4, 1, 0.5, in_service=False)
    pp.create_load(net, 5, 2, 0.5)
    pp.create_sgen(net, 5, 1, 0.5)
    return net


def _without_leak(net, ref):
    """pandapower's res_bus with its NaN leak (results_bus: a cumulative sum over the buses in
    index order, so a NaN load makes every later bus with an element NaN) replaced by the values
    of the same net without the loads at dead buses: those loads take no part in the power flow,
    and there pandapower's res_bus is finite."""
    clean = copy.deepcopy(net)
    clean.load = clean.load[~clean.load.bus.isin([3, 4])]
    clean = trust.runpp(clean)
    fixed = copy.deepcopy(ref)
    leak = ref.res_bus.p_mw.isna() & net.bus.in_service & ~net.bus.index.isin(net.load.bus[net.load.bus == 4])
    fixed.res_bus.loc[leak, ["p_mw", "q_mvar"]] = clean.res_bus.loc[leak, ["p_mw", "q_mvar"]]
    return fixed, leak


@pytest.mark.parametrize("via", ["net", "json"])
def test_loads_at_dead_buses_read_nan_with_voltage_dependent_loads(via, tmp_path):
    net = _dead_load_net()
    ref = trust.runpp(copy.deepcopy(net))
    assert ref.res_load.loc[[1, 2, 3, 4]].isna().all().all()  # pandapower: every load at a dead bus
    g = trust.grid_of(net, via, tmp_path)
    assert g.solve().converged
    fixed, leak = _without_leak(net, ref)
    assert leak.loc[5] and np.isfinite(fixed.res_bus.p_mw[5])  # the pandapower defect this works around
    trust.assert_agrees(g, fixed)
    rb = g.result("bus")
    assert np.isnan(rb.p_mw[4]) and np.isnan(rb.q_mvar[4])  # the dead load's own bus: NaN, as pandapower
    assert abs(rb.p_mw[5] - 1.0) < 1e-9  # load 2 MW minus sgen 1 MW
    # without any voltage-dependent load, or with voltage_depend_loads=False, such loads read 0
    flat = _dead_load_net(dependent=False)
    flat.load[["const_i_q_percent", "const_z_p_percent"]] = 0.0
    for n2, opts in ((flat, {}), (_dead_load_net(), {"voltage_depend_loads": False})):
        r2 = trust.runpp(copy.deepcopy(n2), **opts)
        g2 = trust.grid_of(n2, via, tmp_path)
        assert g2.solve(**opts).converged
        trust.assert_agrees(g2, r2)
        assert (g2.result("load").loc[[1, 2, 3, 4]].to_numpy() == 0).all()


def test_stored_voltage_depend_loads_takes_the_nan_path():
    """A stored voltage_depend_loads=True overrides pandapower's "no load depends on the voltage"
    test (its stored options are applied after it): the dead loads read NaN then too."""
    net = _dead_load_net(dependent=False)
    net.load[["const_i_q_percent", "const_z_p_percent"]] = 0.0
    pp.set_user_pf_options(net, voltage_depend_loads=True)
    ref = trust.runpp(copy.deepcopy(net))
    g = trust.grid_of(net)
    assert g.solve().converged
    trust.assert_agrees(g, _without_leak(net, ref)[0])
    assert g.result("load").loc[[1, 2, 3, 4]].isna().all().all()
    dref = trust.rundcpp(copy.deepcopy(net))  # DC: no voltage-dependent path, dead loads read 0
    assert g.solve(algorithm="dc").converged
    trust.assert_agrees(g, dref)


# --- 3. check_connectivity=False -------------------------------------------------------------------

def _with_isolated_bus(extra):
    net = pp.create_empty_network()
    for _ in range(4):
        pp.create_bus(net, 20)
    pp.create_line(net, 0, 1, 2, CABLE)
    pp.create_line(net, 1, 2, 2, CABLE)
    pp.create_ext_grid(net, 0)
    pp.create_load(net, 2, 1, 0.5)
    extra(net)  # bus 3: no branch reaches it unless ``extra`` adds one
    return net


SAME = {  # an unsupplied bus that reads the same with check_connectivity=False
    "nothing": lambda n: None,
    "shunt": lambda n: pp.create_shunt(n, 3, 1, 0.5),
    "load_out_of_service": lambda n: pp.create_load(n, 3, 1, 0.5, in_service=False),
    "own_ext_grid": lambda n: pp.create_ext_grid(n, 3, vm_pu=1.02),
}
DIFFERENT = {  # pandapower's answer differs (or it fails): refused, naming the element
    "load": (lambda n: pp.create_load(n, 3, 1, 0.5), "load"),
    "sgen": (lambda n: pp.create_sgen(n, 3, 1, 0.5), "sgen"),
    "gen": (lambda n: pp.create_gen(n, 3, 1, vm_pu=1.0), "gen"),
    "xward": (lambda n: pp.create_xward(n, 3, 1, 1, 1, 1, 0.1, 1, 1.0), "xward"),
    "island_of_two": (lambda n: (pp.create_bus(n, 20), pp.create_line(n, 3, 4, 1, CABLE)), "line"),
    "line_out_of_service": (lambda n: (pp.create_line(n, 2, 3, 1, CABLE, in_service=False),
                                       pp.create_load(n, 3, 1, 0.5)), "load"),
    "open_line_switch": (lambda n: (pp.create_line(n, 2, 3, 1, CABLE), pp.create_switch(n, 3, 2, "l", closed=False),
                                    pp.create_load(n, 3, 1, 0.5)), "load"),
}


@pytest.mark.parametrize("dc", [False, True], ids=["ac", "dc"])
@pytest.mark.parametrize("case", list(SAME))
def test_check_connectivity_false_where_it_changes_nothing(case, dc):
    net = _with_isolated_bus(SAME[case])
    run = trust.rundcpp if dc else trust.runpp
    ref = run(copy.deepcopy(net), check_connectivity=False)
    for where in ("grid", "solve"):
        g = trust.grid_of(net, **({"check_connectivity": False} if where == "grid" else {}))
        kw = {"check_connectivity": False} if where == "solve" else {}
        assert g.solve(algorithm="dc" if dc else "nr", **kw).converged
        trust.assert_agrees(g, ref)


@pytest.mark.parametrize("dc", [False, True], ids=["ac", "dc"])
@pytest.mark.parametrize("case", list(DIFFERENT))
def test_check_connectivity_false_refused_where_pandapower_differs(case, dc):
    extra, kind = DIFFERENT[case]
    net = _with_isolated_bus(extra)
    same = run_ok = True
    ref = copy.deepcopy(net)
    try:
        (trust.rundcpp if dc else trust.runpp)(ref, check_connectivity=False)
    except Exception:  # noqa: BLE001 - pandapower fails (IndexError, LoadflowNotConverged, ...)
        run_ok = False
    g = trust.grid_of(net)
    assert g.solve(algorithm="dc" if dc else "nr").converged  # check_connectivity=True: solved
    if run_ok:
        try:
            trust.assert_agrees(g, ref)
        except AssertionError:
            same = False
    assert not (run_ok and same), "the case does not tell the option apart"
    before = g.result("bus")
    with pytest.raises(E.OptionError) as ei:
        g.solve(algorithm="dc" if dc else "nr", check_connectivity=False)
    trust.assert_refused(ei, "check_connectivity", kind)
    assert ei.value.option == "check_connectivity"
    assert g.result("bus").equals(before)  # the last results stand
    g2 = trust.grid_of(net, check_connectivity=False)
    with pytest.raises(E.OptionError):
        g2.solve(algorithm="dc" if dc else "nr")


def test_check_connectivity_false_on_a_supplied_network_is_identical():
    net = pn.example_multivoltage()
    g = trust.grid_of(net, check_connectivity=False)
    assert g.solve().converged
    trust.assert_agrees(g, trust.runpp(copy.deepcopy(net), check_connectivity=False))
    pp.set_user_pf_options(net, check_connectivity=False)  # stored: the same
    g = trust.grid_of(net)
    assert g.solve().converged
    trust.assert_agrees(g, trust.runpp(copy.deepcopy(net)))


def test_stored_check_connectivity_false_counts_for_runpp_not_for_rundcpp():
    net = _with_isolated_bus(DIFFERENT["load"][0])
    pp.set_user_pf_options(net, check_connectivity=False)
    g = trust.grid_of(net)
    with pytest.raises(E.OptionError) as ei:
        g.solve()
    trust.assert_refused(ei, "check_connectivity")
    # rundcpp ignores the stored option: the DC solve checks connectivity and agrees
    assert g.solve(algorithm="dc").converged
    trust.assert_agrees(g, trust.rundcpp(copy.deepcopy(net)))
    # passing runpp's default (True) does not override a stored option (pandapower's rule)
    with pytest.raises(E.OptionError):
        g.solve(check_connectivity=True)


# --- 4. the DC power flow takes rundcpp's options ---------------------------------------------------

def _dc_net():
    """A net where trafo_model, trafo_loading, switch_rx_ratio and enforce_p_lims each change a
    DC answer: a transformer with a large magnetising current, set-points above 1 p.u., an
    impedance bus-bus switch in a mesh, an sgen beyond its P limit."""
    net = pp.create_empty_network()
    b0 = pp.create_bus(net, 110)
    b1, b2, b3 = (pp.create_bus(net, 20) for _ in range(3))
    pp.create_ext_grid(net, b0, vm_pu=1.05)
    pp.create_transformer_from_parameters(net, b0, b1, sn_mva=40, vn_hv_kv=110, vn_lv_kv=20, vkr_percent=0.5,
                                          vk_percent=12, pfe_kw=300, i0_percent=8, shift_degree=0)
    pp.create_line(net, b1, b2, 3, CABLE)
    pp.create_line(net, b1, b3, 4, CABLE)
    pp.create_switch(net, b2, b3, "b", closed=True, z_ohm=0.4)
    pp.create_load(net, b3, 12, 3)
    pp.create_sgen(net, b2, 5, 1, max_p_mw=2, min_p_mw=0)
    pp.create_gen(net, b1, 1, vm_pu=1.03)
    net.line["temperature_degree_celsius"] = 60.0  # for the stored consider_line_temperature
    net.line["alpha"] = 4.03e-3
    return net


def _differs(a, b) -> bool:
    """Whether two solved nets differ beyond the trust tolerances in some result."""
    for kind in ("bus", "line", "trafo", "sgen", "switch", "ext_grid"):
        x, y = a["res_" + kind], b["res_" + kind]
        for col in x.columns:
            d = np.abs(x[col].to_numpy(float) - y[col].to_numpy(float))
            if np.nanmax(d, initial=0) > trust.limit(col):
                return True
    return False


STORED = dict(trafo_model="pi", trafo_loading="power", switch_rx_ratio=0.3, enforce_p_lims=True,
              consider_line_temperature=True, neglect_open_switch_branches=True, voltage_depend_loads=False)


def test_dc_ignores_stored_options():
    net = _dc_net()
    base = trust.rundcpp(copy.deepcopy(net))
    for k, v in (("trafo_model", "pi"), ("trafo_loading", "power"), ("switch_rx_ratio", 0.3)):
        assert _differs(trust.rundcpp(copy.deepcopy(net), **{k: v}), base), k  # passed, each one counts
    assert _differs(trust.runpp(copy.deepcopy(net), enforce_p_lims=True), trust.runpp(copy.deepcopy(net)))
    pp.set_user_pf_options(net, **STORED)
    g = trust.grid_of(net)
    assert g.solve(algorithm="dc").converged
    trust.assert_agrees(g, base)
    ref = trust.rundcpp(copy.deepcopy(net))  # pandapower: stored options make no difference
    trust.assert_agrees(g, ref)
    # the AC solve still takes them
    assert g.solve().converged
    trust.assert_agrees(g, trust.runpp(copy.deepcopy(net)))


@pytest.mark.parametrize("where", ["grid", "solve"])
def test_dc_takes_explicit_rundcpp_options(where):
    net = _dc_net()
    pp.set_user_pf_options(net, **STORED)
    mine = dict(trafo_model="pi", trafo_loading="power", switch_rx_ratio=0.3)
    ignored = dict(enforce_p_lims=True, consider_line_temperature=True, neglect_open_switch_branches=True)
    ref = trust.rundcpp(copy.deepcopy(net), **mine, **ignored)  # rundcpp ignores the last three
    assert np.allclose(ref.res_sgen.p_mw, 5)
    if where == "grid":
        g = trust.grid_of(net, algorithm="dc", **mine, **ignored)
        assert g.solve().converged
    else:
        g = trust.grid_of(net)
        assert g.solve(algorithm="dc", **mine, **ignored).converged
    trust.assert_agrees(g, ref)
    assert "r_ohm_per_km" not in g.result("line")  # no line temperature in rundcpp


def test_stored_algorithm_dc_is_refused_as_runpp_fails_on_it():
    net = _dc_net()
    pp.set_user_pf_options(net, algorithm="dc")
    with pytest.raises(Exception):  # noqa: B017 - pandapower: KeyError / AlgorithmUnknown
        trust.runpp(copy.deepcopy(net))
    g = trust.grid_of(net)
    with pytest.raises(E.OptionError) as ei:
        g.solve()
    trust.assert_refused(ei, "algorithm")
