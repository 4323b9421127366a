"""Issue 15, result tables: shunt step tables, rundcpp's tables, de-energised elements' vm_pu,
res_switch, results inside an edit block, the journal's hash column."""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

pp = pytest.importorskip("pandapower")
pn = pytest.importorskip("pandapower.networks")

import networks  # noqa: E402
import trust  # noqa: E402

import gridtape.errors as E  # noqa: E402


def _mv():
    net = pp.create_empty_network(sn_mva=1.0)
    b = [pp.create_bus(net, 20.0) for _ in range(5)]
    pp.create_ext_grid(net, b[0], vm_pu=1.01)
    for f, t in ((0, 1), (1, 2), (2, 3), (3, 4)):
        pp.create_line_from_parameters(net, b[f], b[t], 2.0, 0.16, 0.12, 250, 0.3)
    for i in range(1, 5):
        pp.create_load(net, b[i], p_mw=1.0 + 0.2 * i, q_mvar=0.3 + 0.1 * i)
    return net, b


@pytest.mark.parametrize("via", ["net", "json"])
def test_shunt_step_dependency_table(via, tmp_path):
    net, b = _mv()
    pp.create_shunt(net, b[2], q_mvar=-0.2, p_mw=0.001, step=2, max_step=3, id_characteristic_table=0,
                    step_dependency_table=True)
    pp.create_shunt(net, b[4], q_mvar=-0.1, p_mw=0.0, step=1, max_step=3, id_characteristic_table=1,
                    step_dependency_table=True)
    pp.create_shunt(net, b[3], q_mvar=-0.15, p_mw=0.0, step=2, max_step=2)  # no table
    net["shunt_characteristic_table"] = pd.DataFrame({
        "id_characteristic": [0, 0, 0, 1, 1, 1], "step": [1, 2, 3, 1, 2, 3],
        "q_mvar": [-0.25, -0.55, -0.9, -0.12, -0.3, -0.5], "p_mw": [0.002, 0.004, 0.007, 0.0, 0.001, 0.001]})
    d = trust.solve_and_compare(net, via, tmp_path)
    assert d[("shunt", "q_mvar")] <= 1e-3


def _deenergised():
    net, b = _mv()
    iso = pp.create_bus(net, 20.0)  # in service, supplied by nothing
    off = pp.create_bus(net, 20.0, in_service=False)
    pp.create_line_from_parameters(net, b[4], off, 1.0, 0.16, 0.12, 250, 0.3)
    for bus in (iso, off, b[2]):
        pp.create_shunt(net, bus, q_mvar=-0.1)
        pp.create_ward(net, bus, ps_mw=0.1, qs_mvar=0.05, pz_mw=0.01, qz_mvar=0.02)
        pp.create_xward(net, bus, ps_mw=0.1, qs_mvar=0.05, pz_mw=0.01, qz_mvar=0.02, r_ohm=0.5, x_ohm=2.0,
                        vm_pu=1.0)
    return net


def test_deenergised_elements_read_vm_zero():
    net = _deenergised()
    ref = trust.runpp(copy.deepcopy(net))
    grid = trust.grid_of(net)
    assert grid.solve().converged
    for kind in ("shunt", "ward", "xward"):
        vm = grid.result(kind).vm_pu.to_numpy()
        assert not np.isnan(vm).any(), kind
        assert (vm[:2] == 0).all(), kind  # pandapower's nan_to_num
    trust.assert_agrees(grid, ref)


def _switches():
    net = networks.switches_and_trafos()
    net.switch["in_ka"] = np.linspace(0.2, 1.0, len(net.switch))
    t3 = networks.three_winding()
    return net, t3


@pytest.mark.parametrize("via", ["net", "json"])
def test_res_switch_matches_runpp(via, tmp_path):
    net, _ = _switches()
    ref = trust.runpp(copy.deepcopy(net))
    grid = trust.grid_of(net, via, tmp_path)
    assert grid.solve().converged
    rs = grid.res_switch  # the table exists
    assert list(rs.index) == list(net.switch.index)
    d = trust.assert_agrees(grid, ref, kinds=("switch",))
    assert ("switch", "i_ka") in d and ("switch", "p_from_mw") in d and ("switch", "loading_percent") in d


def test_res_switch_on_the_element_networks():
    for name in ("switches_and_trafos", "out_of_service_and_island", "three_winding"):
        net = getattr(networks, name)()
        if not len(net.switch):
            continue
        ref = trust.runpp(copy.deepcopy(net))
        grid = trust.grid_of(net)
        assert grid.solve().converged
        trust.assert_agrees(grid, ref)


@pytest.mark.parametrize("name", ["case14", "case118", "example_multivoltage", "switches_and_trafos"])
def test_dc_power_flow_tables_match_rundcpp(name):
    net = getattr(pn, name)() if hasattr(pn, name) else getattr(networks, name)()
    for k in [k for k in net.keys() if isinstance(k, str) and k.startswith("res_")]:
        net[k] = net[k].iloc[0:0]
    ref = trust.rundcpp(copy.deepcopy(net))
    grid = trust.grid_of(net)
    assert grid.solve(algorithm="dc").converged
    d = trust.assert_agrees(grid, ref)
    assert ("ext_grid", "p_mw") in d and ("bus", "p_mw") in d


def test_results_inside_an_edit_block_after_add_bus():
    """pandapower keeps the last results until the next runpp: so does gridtape (the last solve's
    tables, for the elements that existed then), or it says NotSolvedError; never IndexError."""
    grid = trust.grid_of(networks.switches_and_trafos())
    grid.solve()
    before = grid.res_bus.copy()
    with grid.edit() as e:
        e.add("bus", vn_kv=20.0)
        try:
            inside = grid.res_bus
        except E.NotSolvedError:
            inside = None
        if inside is not None:
            pd.testing.assert_frame_equal(inside.loc[before.index], before)
        for kind in ("line", "load", "trafo"):
            try:
                grid.result(kind)
            except E.NotSolvedError:
                pass


def test_log_hash_column_is_readable_hex(tmp_path):
    grid = gt_grid = trust.grid_of(networks.switches_and_trafos(), journal=str(tmp_path / "j.duckdb"))
    with grid.edit(author="a", message="m") as e:
        e.set("load", int(grid.world["load"].ids[0]), "p_mw", 0.5)
    log = gt_grid.log()
    hashes = [c for c in log.columns if "hash" in c]
    assert hashes
    for c in hashes:
        vals = [v for v in log[c].tolist() if v is not None]
        assert vals and all(isinstance(v, str) for v in vals), c
        assert all(all(ch in "0123456789abcdef" for ch in v) for v in vals), c
        log[c].astype(str)  # no UnicodeDecodeError
    grid.close()


def test_line_without_a_thermal_limit_has_nan_loading_as_in_pandapower():
    """pandapower accepts ``max_i_ka = NaN`` (case11_iwamoto has it on every line) and reports
    loading_percent NaN for such a line; gridtape loads the net and does the same."""
    import pandapower as pp

    net = pp.create_empty_network()
    b = [pp.create_bus(net, 20.0) for _ in range(3)]
    pp.create_ext_grid(net, b[0])
    pp.create_line_from_parameters(net, b[0], b[1], 2.0, 0.1, 0.3, 10.0, float("nan"))
    pp.create_line_from_parameters(net, b[1], b[2], 2.0, 0.1, 0.3, 10.0, 0.4)
    pp.create_load(net, b[2], p_mw=3.0, q_mvar=1.0)
    trust.solve_and_compare(net)
    ref = trust.runpp(copy.deepcopy(net))
    grid = trust.grid_of(net)
    assert grid.solve().converged
    assert np.isnan(grid.res_line.loading_percent.loc[0]) and np.isnan(ref.res_line.loading_percent.loc[0])
    assert grid.res_line.loading_percent.loc[1] > 0
