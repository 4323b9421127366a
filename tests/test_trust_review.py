"""Review 15: runpp options and inputs where gridtape differed from pandapower silently.

Each case either reproduces pandapower (``trust.assert_agrees``) or is refused with a gridtape
error naming the table / option, exactly where pandapower refuses: DC ignores
``calculate_voltage_angles``; voltage set-points that disagree at one bus; ``only_v_results``,
``run_control``, ``tdpf`` (default values accepted); ``init="results"`` without earlier results;
error names of trafo3w; ``enforce_p_lims`` with gens out of service."""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

pp = pytest.importorskip("pandapower")
pn = pytest.importorskip("pandapower.networks")

import trust  # noqa: E402

import gridtape.errors as E  # noqa: E402

CABLE = "NA2XS2Y 1x95 RM/25 12/20 kV"


# --- 1. DC ignores calculate_voltage_angles (rundcpp always calculates them) ---------------------

@pytest.mark.parametrize("how", ["stored", "grid", "solve"])
def test_dc_ignores_calculate_voltage_angles(how):
    net = pn.create_cigre_network_mv()  # its 110/20 kV trafos shift 30 degrees
    ref = trust.rundcpp(copy.deepcopy(net))
    if how == "stored":
        pp.set_user_pf_options(net, calculate_voltage_angles=False)
        g = trust.grid_of(net)
        assert g.solve(algorithm="dc").converged
    elif how == "grid":
        g = trust.grid_of(net, algorithm="dc", calculate_voltage_angles=False)
        assert g.solve().converged
    else:
        g = trust.grid_of(net)
        assert g.solve(algorithm="dc", calculate_voltage_angles=False).converged
    ref2 = trust.rundcpp(copy.deepcopy(net), calculate_voltage_angles=False)
    assert np.abs(ref2.res_bus.va_degree - ref.res_bus.va_degree).max() < 1e-9  # pandapower: no effect
    trust.assert_agrees(g, ref)
    if how == "stored":  # the AC solve still takes the stored option
        acref = trust.runpp(copy.deepcopy(net))
        assert g.solve().converged
        trust.assert_agrees(g, acref)


# --- 2. voltage set-points that disagree at one bus ------------------------------------------------

def _two_buses():
    net = pp.create_empty_network()
    b0, b1, b2 = (pp.create_bus(net, 20) for _ in range(3))
    pp.create_line(net, b0, b1, 2, CABLE)
    pp.create_line(net, b2, b1, 2, CABLE)
    pp.create_load(net, b1, 3, 1)
    return net


def _ext_grid_and_gen(net):
    pp.create_ext_grid(net, 0, vm_pu=1.02)
    pp.create_gen(net, 0, 1.0, vm_pu=1.05)


def _two_ext_grids(net):
    pp.create_ext_grid(net, 0, vm_pu=1.02)
    pp.create_ext_grid(net, 0, vm_pu=1.0)


def _two_gens(net):
    pp.create_ext_grid(net, 0, vm_pu=1.02)
    pp.create_gen(net, 1, 1.0, vm_pu=1.0)
    pp.create_gen(net, 1, 0.5, vm_pu=1.03)


def _fused_by_switch(net):
    pp.create_ext_grid(net, 0, vm_pu=1.02)
    pp.create_switch(net, 0, 2, "b", closed=True)
    pp.create_gen(net, 2, 1.0, vm_pu=1.05)


def _ext_grid_angles(net):
    pp.create_ext_grid(net, 0, vm_pu=1.02, va_degree=0.0)
    pp.create_switch(net, 0, 2, "b", closed=True)
    pp.create_ext_grid(net, 2, vm_pu=1.02, va_degree=5.0)


def _just_beyond_tolerance(net):
    pp.create_ext_grid(net, 0, vm_pu=1.02)
    pp.create_gen(net, 0, 1.0, vm_pu=1.02 * (1 + 1.2e-5))


def _unsupplied_bus(net):
    pp.create_ext_grid(net, 0, vm_pu=1.02)
    b = pp.create_bus(net, 20)  # no branch: unsupplied, but in service (pandapower's check skips it)
    pp.create_gen(net, b, 1.0, vm_pu=1.0)
    pp.create_gen(net, b, 1.0, vm_pu=1.01)


def _pandapower_refuses(net, **opts):
    with pytest.raises(UserWarning, match="different"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pp.runpp(copy.deepcopy(net), numba=False, **opts)


@pytest.mark.parametrize("make, tables, field", [
    (_ext_grid_and_gen, ("ext_grid", "gen"), "vm_pu"),
    (_two_ext_grids, ("ext_grid",), "vm_pu"),
    (_two_gens, ("gen",), "vm_pu"),
    (_fused_by_switch, ("ext_grid", "gen"), "vm_pu"),
    (_ext_grid_angles, ("ext_grid",), "va_degree"),
    (_just_beyond_tolerance, ("ext_grid", "gen"), "vm_pu"),
])
def test_disagreeing_setpoints_are_refused(make, tables, field):
    net = _two_buses()
    make(net)
    _pandapower_refuses(net)
    g = trust.grid_of(net)
    with pytest.raises(E.SchemaError) as ei:
        g.solve()
    assert isinstance(ei.value, ValueError)
    trust.assert_refused(ei, field, *tables)
    assert g.last_report is None
    assert g.solve(algorithm="dc").converged  # rundcpp does not check: nor does gridtape's DC
    trust.assert_agrees(g, trust.rundcpp(copy.deepcopy(net)))


def _agreeing(net):
    pp.create_ext_grid(net, 0, vm_pu=1.02)
    pp.create_gen(net, 0, 1.0, vm_pu=1.02 * (1 + 8e-6))  # within numpy.allclose


def _one_out_of_service(net):
    _ext_grid_and_gen(net)
    net.gen["in_service"] = False


def _at_bus_out_of_service(net):
    pp.create_ext_grid(net, 0, vm_pu=1.02)
    b = pp.create_bus(net, 20, in_service=False)
    pp.create_gen(net, b, 1.0, vm_pu=1.0)
    pp.create_gen(net, b, 1.0, vm_pu=1.01)


def _open_switch(net):
    _fused_by_switch(net)
    net.switch["closed"] = False


def _angles_not_calculated(net):
    _ext_grid_angles(net)
    pp.set_user_pf_options(net, calculate_voltage_angles=False)


@pytest.mark.parametrize("make", [_agreeing, _one_out_of_service, _at_bus_out_of_service, _open_switch,
                                  _angles_not_calculated, _unsupplied_bus])
def test_setpoints_pandapower_accepts_are_solved(make):
    net = _two_buses()
    make(net)
    trust.solve_and_compare(net)


def test_first_conflict_kernel_is_numpys_test():
    """inject.first_conflict (the set-point test of every model's injections) equals pandapower's
    numpy test (a bus with two elements, then numpy.isclose of each value against the first at
    its bus), NaN and infinities included; bad buses are refused."""
    from gridtape.solver_cy.inject import first_conflict

    def reference(b, v):
        if len(b) < 2 or np.bincount(b).max() < 2:
            return -1
        uniq, first = np.unique(b, return_index=True)
        ref = np.empty(int(b.max()) + 1)
        ref[uniq] = v[first]
        bad = ~np.isclose(v, ref[b])
        return int(np.flatnonzero(bad)[0]) if bad.any() else -1

    rng = np.random.default_rng(5)
    found = 0
    for trial in range(3000):
        n, nb = int(rng.integers(0, 7)), int(rng.integers(1, 6))
        b = rng.integers(0, nb, n).astype(np.int64)
        v = rng.choice(np.array([1.0, 1.0 + 5e-6, 1.0 + 2e-5, 1.02, np.nan, np.inf, -np.inf, 0.0]), n)
        want = reference(b, v)
        assert first_conflict(b, v, nb) == want, (b, v)
        found += want >= 0
    assert found > 300
    with pytest.raises(ValueError):
        first_conflict(np.array([0, 3], np.int64), np.ones(2), 3)
    with pytest.raises(ValueError):
        first_conflict(np.array([0, 1], np.int32), np.ones(2), 3)


def test_edit_into_disagreeing_setpoints_is_refused_and_leaves_everything(tmp_path):
    from gridtape import PowerGrid

    net = _two_buses()
    pp.create_ext_grid(net, 0, vm_pu=1.02)
    pp.create_switch(net, 0, 2, "b", closed=False)
    pp.create_gen(net, 2, 1.0, vm_pu=1.05)
    g = PowerGrid.from_pandapower(net, journal=str(tmp_path / "j.duckdb"))
    rep = g.solve()
    assert rep.converged
    g.set("switch", [0], "closed", [True])  # fuses the gen's bus with the ext_grid's
    n = g.journal.count()
    with pytest.raises(E.SchemaError) as ei:
        g.solve()
    trust.assert_refused(ei, "ext_grid", "gen", "vm_pu")
    assert g.journal.count() == n and g.last_report is rep
    with pytest.raises(E.NotSolvedError):  # the switch closed since: the old results are not served
        g.res_bus
    g.set("gen", [0], "vm_pu", [1.02])  # agreeing again: solved, as pandapower
    assert g.solve().converged
    net.switch["closed"] = True
    net.gen["vm_pu"] = 1.02
    trust.assert_agrees(g, trust.runpp(copy.deepcopy(net)))
    g.set("gen", [0], "vm_pu", [1.03])  # a value only: refused, the last results still served
    with pytest.raises(E.SchemaError):
        g.solve()
    assert g.last_report.converged
    g.journal.close()


# --- 3. only_v_results, run_control, tdpf: the defaults accepted, anything else refused ------------

@pytest.mark.parametrize("opt", ["only_v_results", "run_control", "tdpf"])
def test_default_only_options(opt):
    net = pn.example_multivoltage()
    trust.solve_and_compare(net, grid_kwargs={opt: False}, pp_kwargs={opt: False})
    g = trust.grid_of(net)
    assert g.solve(**{opt: False}).converged
    with pytest.raises(E.OptionError) as ei:
        trust.grid_of(net, **{opt: True})
    trust.assert_refused(ei, opt)
    with pytest.raises(E.OptionError) as ei:
        g.solve(**{opt: True})
    trust.assert_refused(ei, opt)
    stored = copy.deepcopy(net)
    pp.set_user_pf_options(stored, **{opt: True})
    with pytest.raises(E.OptionError) as ei:
        trust.grid_of(stored).solve()
    trust.assert_refused(ei, opt)


def test_only_v_results_changes_pandapower_results():
    net = pn.example_multivoltage()
    full, only_v = trust.runpp(copy.deepcopy(net)), trust.runpp(copy.deepcopy(net), only_v_results=True)
    d = (full.res_line.loading_percent - only_v.res_line.loading_percent).abs()
    assert d.isna().any() or d.max() > 1  # why gridtape refuses it


# --- 4. init="results" without earlier results: pandapower's "auto" --------------------------------

@pytest.mark.parametrize("name", ["example_multivoltage", "mv_oberrhein"])
@pytest.mark.parametrize("where", ["grid", "solve"])
def test_init_results_without_results_is_auto(name, where):
    net = getattr(pn, name)()
    trust.clear_results(net)
    ref = trust.runpp(copy.deepcopy(net), init="results")
    assert ref.converged
    g = trust.grid_of(net, init="results") if where == "grid" else trust.grid_of(net)
    rep = g.solve() if where == "grid" else g.solve(init="results")
    assert rep.converged
    trust.assert_agrees(g, ref)
    auto = trust.grid_of(net)
    assert auto.solve(init="auto").iterations == rep.iterations


# --- 5. error names, enforce_p_lims with gens out of service --------------------------------------

def test_ideal_trafo3w_error_names_trafo3w():
    net = pp.create_empty_network()
    hv, mv, lv = pp.create_bus(net, 110), pp.create_bus(net, 20), pp.create_bus(net, 10)
    pp.create_ext_grid(net, hv)
    pp.create_transformer3w(net, hv, mv, lv, "63/25/38 MVA 110/20/10 kV")
    net.trafo3w["tap_changer_type"] = "Ideal"
    net.trafo3w["tap_step_degree"] = 3.0
    net.trafo3w["tap_pos"] = 2
    with pytest.raises(E.SchemaError) as ei:
        trust.grid_of(net).solve()
    assert ei.value.table == "trafo3w"
    trust.assert_refused(ei, "tap_step_degree")


@pytest.mark.parametrize("where", ["gen", "bus"])
def test_enforce_p_lims_ignores_gens_out_of_service(where):
    net = pn.example_multivoltage()
    net.gen["max_p_mw"] = net.gen.p_mw + 10
    net.gen["min_p_mw"] = 0.0
    g0 = net.gen.index[0]
    net.gen.loc[g0, "p_mw"] = net.gen.loc[g0, "max_p_mw"] + 5  # beyond its limit
    if where == "gen":
        net.gen.loc[g0, "in_service"] = False
    else:
        net.bus.loc[net.gen.loc[g0, "bus"], "in_service"] = False
    trust.solve_and_compare(net, grid_kwargs={"enforce_p_lims": True}, pp_kwargs={"enforce_p_lims": True})
    net.gen.loc[g0, "in_service"] = True
    net.bus["in_service"] = True
    with pytest.raises(E.OptionError) as ei:  # in service: still refused by name
        trust.grid_of(net, enforce_p_lims=True).solve()
    trust.assert_refused(ei, "enforce_p_lims")
