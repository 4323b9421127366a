"""Issue 15, transformers as pandapower 3 writes them: tap-dependency tables
(``trafo_characteristic_table``, Tabular and Ratio types, trafo and trafo3w), the second tap
changer ``tap2_*``, the leakage split ``leakage_resistance_ratio_hv`` /
``leakage_reactance_ratio_hv``, and trafo3w ``loss_side``."""
from __future__ import annotations

import pandas as pd
import pytest

pp = pytest.importorskip("pandapower")

import trust  # noqa: E402


def _hv_mv():
    net = pp.create_empty_network(sn_mva=1.0)
    hv = [pp.create_bus(net, 110.0) for _ in range(3)]
    mv = [pp.create_bus(net, 20.0) for _ in range(4)]
    pp.create_ext_grid(net, hv[0], vm_pu=1.02)
    pp.create_line_from_parameters(net, hv[0], hv[1], 10.0, 0.06, 0.4, 10.0, 0.6)
    pp.create_line_from_parameters(net, hv[1], hv[2], 8.0, 0.06, 0.4, 10.0, 0.6)
    pp.create_line_from_parameters(net, mv[0], mv[1], 3.0, 0.16, 0.12, 250, 0.3)
    pp.create_line_from_parameters(net, mv[1], mv[2], 3.0, 0.16, 0.12, 250, 0.3)
    pp.create_line_from_parameters(net, mv[2], mv[3], 3.0, 0.16, 0.12, 250, 0.3)
    for i, bus in enumerate(mv):
        pp.create_load(net, bus, p_mw=3.0 + i, q_mvar=1.0 + 0.3 * i)
    return net, hv, mv


def _char_table():
    """Two characteristics (id 0 and 1), steps -2..2; ratio, angle and impedance change with the
    step, as measured transformer data do."""
    rows = []
    for cid, (dr, da, dvk, dvkr) in enumerate(((0.0125, 0.0, 0.25, 0.01), (0.02, 1.5, -0.3, 0.02))):
        for step in range(-2, 3):
            rows.append({"id_characteristic": cid, "step": step, "voltage_ratio": 1 + dr * step,
                         "angle_deg": da * step, "vk_percent": 12.0 + dvk * step,
                         "vkr_percent": 0.4 + dvkr * step,
                         "vk_hv_percent": 10.0 + dvk * step, "vkr_hv_percent": 0.3 + dvkr * step,
                         "vk_mv_percent": 9.0 + 0.5 * dvk * step, "vkr_mv_percent": 0.3,
                         "vk_lv_percent": 8.0 - dvk * step, "vkr_lv_percent": 0.25 + dvkr * step})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("via", ["net", "json"])
@pytest.mark.parametrize("changer", ["Tabular", "Ratio"])
@pytest.mark.parametrize("side", ["hv", "lv"])
def test_trafo_tap_dependency_table(changer, side, via, tmp_path):
    net, hv, mv = _hv_mv()
    pp.create_transformer_from_parameters(
        net, hv[1], mv[0], 40, 110, 20, 0.4, 12, 14, 0.05, tap_side=side, tap_neutral=0, tap_min=-2, tap_max=2,
        tap_step_percent=1.25, tap_pos=2, tap_changer_type=changer, tap_dependency_table=True,
        id_characteristic_table=0)
    pp.create_transformer_from_parameters(
        net, hv[2], mv[3], 25, 110, 20, 0.4, 11, 10, 0.04, shift_degree=0, tap_side=side, tap_neutral=0,
        tap_min=-2, tap_max=2, tap_step_percent=2.0, tap_pos=-1, tap_changer_type=changer,
        tap_dependency_table=True, id_characteristic_table=1)
    net["trafo_characteristic_table"] = _char_table()
    trust.solve_and_compare(net, via, tmp_path)


@pytest.mark.parametrize("via", ["net", "json"])
@pytest.mark.parametrize("star", [False, True])
def test_trafo3w_tap_dependency_table(star, via, tmp_path):
    net, hv, mv = _hv_mv()
    lv = pp.create_bus(net, 10.0)
    pp.create_load(net, lv, p_mw=2.0, q_mvar=0.5)
    pp.create_transformer3w_from_parameters(
        net, hv[1], mv[0], lv, 110, 20, 10, 40, 25, 15, 10.0, 9.0, 8.0, 0.3, 0.3, 0.25, 20, 0.05,
        tap_side="hv", tap_neutral=0, tap_min=-2, tap_max=2, tap_step_percent=1.25, tap_pos=2,
        tap_at_star_point=star, tap_changer_type="Tabular", tap_dependency_table=True, id_characteristic_table=1)
    pp.create_transformer_from_parameters(net, hv[2], mv[3], 25, 110, 20, 0.4, 11, 10, 0.04)
    net["trafo_characteristic_table"] = _char_table()
    trust.solve_and_compare(net, via, tmp_path)


def test_tabular_changer_without_table_ignores_the_tap():
    """``tap_changer_type="Tabular"`` with ``tap_dependency_table=False``: pandapower applies no tap."""
    net, hv, mv = _hv_mv()
    pp.create_transformer_from_parameters(
        net, hv[1], mv[0], 40, 110, 20, 0.4, 12, 14, 0.05, tap_side="lv", tap_neutral=0, tap_min=-2, tap_max=2,
        tap_step_percent=1.25, tap_pos=2, tap_changer_type="Tabular")
    trust.solve_and_compare(net)


@pytest.mark.parametrize("via", ["net", "json"])
@pytest.mark.parametrize("second", ["Ratio", "Ideal", "Symmetrical"])
def test_second_tap_changer(second, via, tmp_path):
    net, hv, mv = _hv_mv()
    pp.create_transformer_from_parameters(
        net, hv[1], mv[0], 40, 110, 20, 0.4, 12, 14, 0.05, tap_side="hv", tap_neutral=0, tap_min=-9, tap_max=9,
        tap_step_percent=1.5, tap_pos=3, tap_changer_type="Ratio",
        tap2_side="lv", tap2_neutral=0, tap2_min=-5, tap2_max=5, tap2_pos=-2,
        tap2_step_percent=2.0 if second != "Ideal" else float("nan"),
        tap2_step_degree=3.0 if second != "Ratio" else float("nan"), tap2_changer_type=second)
    pp.create_transformer_from_parameters(net, hv[2], mv[3], 25, 110, 20, 0.4, 11, 10, 0.04)
    trust.solve_and_compare(net, via, tmp_path)


@pytest.mark.parametrize("via", ["net", "json"])
@pytest.mark.parametrize("model", ["t", "pi"])
def test_leakage_split(model, via, tmp_path):
    net, hv, mv = _hv_mv()
    pp.create_transformer_from_parameters(
        net, hv[1], mv[0], 40, 110, 20, 2.0, 12, 60, 0.5, leakage_resistance_ratio_hv=0.2,
        leakage_reactance_ratio_hv=0.8)
    pp.create_transformer_from_parameters(
        net, hv[2], mv[3], 25, 110, 20, 1.5, 11, 40, 0.4, leakage_resistance_ratio_hv=0.9,
        leakage_reactance_ratio_hv=0.1, tap_side="lv", tap_neutral=0, tap_pos=1, tap_step_percent=2.5,
        tap_changer_type="Ratio")
    trust.solve_and_compare(net, via, tmp_path, grid_kwargs={"trafo_model": model},
                            pp_kwargs={"trafo_model": model})


def _three_winding():
    net, hv, mv = _hv_mv()
    lv = [pp.create_bus(net, 10.0) for _ in range(2)]
    for b in lv:
        pp.create_load(net, b, p_mw=2.0, q_mvar=0.5)
    pp.create_transformer3w_from_parameters(
        net, hv[1], mv[0], lv[0], 110, 20, 10, 40, 25, 15, 10.0, 9.0, 8.0, 0.3, 0.3, 0.25, 80, 1.5)
    pp.create_transformer3w_from_parameters(
        net, hv[2], mv[3], lv[1], 110, 20, 10, 30, 20, 10, 11.0, 9.5, 8.5, 0.35, 0.3, 0.3, 60, 1.2,
        tap_side="mv", tap_neutral=0, tap_pos=2, tap_step_percent=1.5, tap_changer_type="Ratio")
    return net


@pytest.mark.parametrize("via", ["net", "json"])
@pytest.mark.parametrize("sides", [("mv", "lv"), ("star", "hv"), ("lv", "star")])
def test_trafo3w_loss_side_column(sides, via, tmp_path):
    net = _three_winding()
    net.trafo3w["loss_side"] = list(sides)
    trust.solve_and_compare(net, via, tmp_path)


@pytest.mark.parametrize("losses", ["hv", "mv", "lv", "star"])
def test_trafo3w_losses_option(losses):
    net = _three_winding()
    trust.solve_and_compare(net, grid_kwargs={"trafo3w_losses": losses}, pp_kwargs={"trafo3w_losses": losses})
    trust.solve_and_compare(net, solve_kwargs={"trafo3w_losses": losses}, pp_kwargs={"trafo3w_losses": losses})
