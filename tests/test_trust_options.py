"""Issue 15, runpp options: pandapower's option names accepted on ``PowerGrid(...)`` and
``solve(...)`` and reproduced, or refused with an OptionError naming the option; options stored
in ``net.user_pf_options`` applied or refused by name; errors that are also builtins."""
from __future__ import annotations

import copy

import numpy as np
import pytest

pp = pytest.importorskip("pandapower")
pn = pytest.importorskip("pandapower.networks")

import networks  # noqa: E402
import trust  # noqa: E402

import gridtape.errors as E  # noqa: E402


def _both_ways(net, opts, tmp_path=None, via="net", kinds=trust.RES_KINDS):
    """The option given to PowerGrid(...) and, separately, to solve(...): both agree with runpp."""
    ref = trust.runpp(copy.deepcopy(net), **opts)
    g1 = trust.grid_of(net, via, tmp_path, **opts)
    assert g1.solve().converged
    trust.assert_agrees(g1, ref, kinds)
    g2 = trust.grid_of(net, via, tmp_path)
    assert g2.solve(**opts).converged
    trust.assert_agrees(g2, ref, kinds)
    return g1


def test_trafo_loading_power():
    net = pn.example_multivoltage()
    _both_ways(net, {"trafo_loading": "power"})
    ref = trust.runpp(copy.deepcopy(net), trafo_loading="power")
    cur = trust.runpp(copy.deepcopy(net))
    assert np.abs(ref.res_trafo.loading_percent - cur.res_trafo.loading_percent).max() > 1e-3  # it matters


def test_voltage_depend_loads_false():
    net = networks.switches_and_trafos()
    net.load["const_z_p_percent"] = 30.0
    net.load["const_i_q_percent"] = 40.0
    _both_ways(net, {"voltage_depend_loads": False})


@pytest.mark.parametrize("value", [False, True, "auto"])
def test_calculate_voltage_angles(value):
    net = networks.phase_shifters_and_slack_gen()
    _both_ways(net, {"calculate_voltage_angles": value})


def test_consider_line_temperature():
    net = pn.example_multivoltage()
    net.line["temperature_degree_celsius"] = np.linspace(10.0, 80.0, len(net.line))
    net.line["alpha"] = 4.03e-3
    g = _both_ways(net, {"consider_line_temperature": True})
    ref = trust.runpp(copy.deepcopy(net), consider_line_temperature=True)
    assert "r_ohm_per_km" in g.res_line.columns
    assert np.allclose(g.res_line.r_ohm_per_km, ref.res_line.r_ohm_per_km, rtol=1e-9)


def test_enforce_p_lims_clips_sgen_p():
    net = pn.example_multivoltage()
    net.sgen["max_p_mw"] = net.sgen.p_mw * 0.5
    net.sgen["min_p_mw"] = 0.0
    _both_ways(net, {"enforce_p_lims": True})


def test_neglect_open_switch_branches():
    net = networks.switches_and_trafos()
    _both_ways(net, {"neglect_open_switch_branches": True})


@pytest.mark.parametrize("ratio", [0.5, 4.0])
def test_switch_rx_ratio(ratio):
    net = networks.switches_and_trafos()
    _both_ways(net, {"switch_rx_ratio": ratio})


@pytest.mark.parametrize("name", ["case14", "case118", "example_multivoltage"])
def test_iwamoto_nr(name):
    net = getattr(pn, name)()
    grid = _both_ways(net, {"algorithm": "iwamoto_nr"})
    assert grid.last_report.algorithm == "iwamoto_nr"


@pytest.mark.parametrize("opt", ["enforce_q_lims"])
def test_pandapower_name_of_qlim(opt):
    net = networks.phase_shifters_and_slack_gen()
    _both_ways(net, {opt: True})


def test_a_bad_qlim_is_named_qlim():
    """Named as the user typed it, not by the pandapower name it stands for."""
    net = networks.switches_and_trafos()
    with pytest.raises(E.OptionError) as ei:
        trust.grid_of(net, qlim="yes")
    assert ei.value.option == "qlim" and "enforce_q_lims" not in str(ei.value)
    grid = trust.grid_of(net)
    for call in (lambda: grid.solve(qlim="yes"), lambda: grid.timeseries({}, qlim="yes")):
        with pytest.raises(E.OptionError) as ei:
            call()
        assert ei.value.option == "qlim" and "enforce_q_lims" not in str(ei.value)
    assert grid.last_report is None  # nothing ran
    with pytest.raises(E.OptionError) as ei:
        grid.solve(enforce_q_lims="yes")  # pandapower's name: named so
    assert ei.value.option == "enforce_q_lims"


@pytest.mark.parametrize("opts, word", [
    ({"run_control": True}, "run_control"),
    ({"tdpf": True}, "tdpf"),
    ({"algorithm": "bfsw"}, "algorithm"),
    ({"algorithm": "helm"}, "algorithm"),
    ({"trafo_loading": "volts"}, "trafo_loading"),
    ({"trafo3w_losses": "nowhere"}, "trafo3w_losses"),
    ({"no_such_option": 1}, "no_such_option"),
])
def test_unmodelled_options_are_refused_by_name(opts, word):
    net = networks.switches_and_trafos()
    with pytest.raises(E.GridtapeError) as ei:
        trust.grid_of(net, **opts).solve()
    assert isinstance(ei.value, E.OptionError) and isinstance(ei.value, ValueError)
    trust.assert_refused(ei, word)
    grid = trust.grid_of(net)
    with pytest.raises(E.OptionError) as ei:
        grid.solve(**opts)
    trust.assert_refused(ei, word)
    assert grid.last_report is None  # nothing ran


@pytest.mark.parametrize("via", ["net", "json"])
def test_user_pf_options_are_applied(via, tmp_path):
    net = networks.phase_shifters_and_slack_gen()
    pp.set_user_pf_options(net, enforce_q_lims=True, trafo_model="pi", trafo_loading="power")
    ref = trust.runpp(copy.deepcopy(net))  # runpp reads them from the net
    grid = trust.grid_of(net, via, tmp_path)
    assert grid.solve().converged
    trust.assert_agrees(grid, ref)
    # an explicit argument wins over the stored option, as in runpp
    ref2 = trust.runpp(copy.deepcopy(net), trafo_loading="current")
    grid2 = trust.grid_of(net, via, tmp_path)
    assert grid2.solve(trafo_loading="current").converged
    trust.assert_agrees(grid2, ref2)


@pytest.mark.parametrize("via", ["net", "json"])
def test_user_pf_options_not_modelled_are_refused_by_name(via, tmp_path):
    net = networks.switches_and_trafos()
    pp.set_user_pf_options(net, tdpf=True)
    with pytest.raises(E.OptionError) as ei:
        trust.grid_of(net, via, tmp_path).solve()
    trust.assert_refused(ei, "tdpf")


def test_option_errors_are_not_schema_errors():
    grid = trust.grid_of(networks.switches_and_trafos())
    with pytest.raises(E.OptionError) as ei:
        grid.solve(algorithm="newton")
    assert not isinstance(ei.value, E.SchemaError)
    assert isinstance(ei.value, ValueError)


def test_every_gridtape_error_is_a_builtin():
    builtin = {"CaseError": ValueError, "SchemaError": ValueError, "OptionError": ValueError,
               "UnsupportedError": ValueError, "BadReferenceError": LookupError, "TopologyError": ValueError,
               "SolverError": RuntimeError, "NotSolvedError": RuntimeError, "DependencyError": ImportError,
               "JournalError": RuntimeError, "ReadOnlyError": PermissionError}
    for name, base in builtin.items():
        assert issubclass(getattr(E, name), base), name
        assert issubclass(getattr(E, name), E.GridtapeError), name
