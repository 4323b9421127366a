"""pandapower networks for parity tests, built so that every element and option the engine
models takes part: switches of every kind, trafo3w, wards, xwards, impedances, phase shifters,
out-of-service elements, an unsupplied island, voltage-dependent loads, several gens at a bus."""
from __future__ import annotations

import pandapower as pp


def base(sn_mva=1.0):
    net = pp.create_empty_network(sn_mva=sn_mva)
    b = [pp.create_bus(net, vn_kv=110.0, name=f"hv{i}") for i in range(4)]
    pp.create_ext_grid(net, b[0], vm_pu=1.02, va_degree=5.0)
    pp.create_line_from_parameters(net, b[0], b[1], 12.0, 0.06, 0.4, 10.0, 0.6, parallel=2)
    pp.create_line_from_parameters(net, b[1], b[2], 8.0, 0.08, 0.38, 9.0, 0.5, g_us_per_km=0.3)
    pp.create_line_from_parameters(net, b[2], b[3], 5.0, 0.1, 0.35, 11.0, 0.4)
    pp.create_line_from_parameters(net, b[3], b[0], 15.0, 0.07, 0.41, 10.5, 0.7)
    return net, b


def switches_and_trafos():
    net, b = base()
    mv = [pp.create_bus(net, vn_kv=20.0, name=f"mv{i}") for i in range(6)]
    lv = [pp.create_bus(net, vn_kv=0.4) for _ in range(2)]
    pp.create_transformer(net, b[1], mv[0], "40 MVA 110/20 kV")
    t = pp.create_transformer_from_parameters(net, b[2], mv[1], 25, 110, 20, 0.4, 12, 14, -0.05, shift_degree=150,
                                              tap_side="lv", tap_neutral=0, tap_min=-9, tap_max=9,
                                              tap_step_percent=1.5, tap_pos=3, tap_changer_type="Ratio")
    pp.create_transformer_from_parameters(net, mv[2], lv[0], 0.63, 20, 0.4, 1.2, 6, 1.1, 0.3, tap_side="hv",
                                          tap_neutral=0, tap_step_percent=2.5, tap_pos=-2,
                                          tap_changer_type="Ratio", parallel=2)
    pp.create_line_from_parameters(net, mv[0], mv[2], 3.0, 0.16, 0.12, 250, 0.3)
    pp.create_line_from_parameters(net, mv[1], mv[3], 2.0, 0.16, 0.12, 250, 0.3)
    l_open = pp.create_line_from_parameters(net, mv[3], mv[4], 1.5, 0.2, 0.1, 300, 0.3)
    pp.create_line_from_parameters(net, mv[4], mv[5], 1.0, 0.2, 0.1, 300, 0.3)
    pp.create_line_from_parameters(net, mv[2], mv[4], 4.0, 0.2, 0.1, 300, 0.3)
    # bus-bus switches: a fused pair, an impedance switch, an open one
    extra = pp.create_bus(net, vn_kv=20.0)
    pp.create_switch(net, mv[5], extra, et="b", closed=True)
    zb = pp.create_bus(net, vn_kv=20.0)
    pp.create_switch(net, mv[3], zb, et="b", closed=True, z_ohm=0.2)
    ob = pp.create_bus(net, vn_kv=20.0)
    pp.create_switch(net, mv[1], ob, et="b", closed=False)
    # open line switch (line keeps its charging from the other end), open trafo switch
    pp.create_switch(net, mv[4], l_open, et="l", closed=False)
    pp.create_switch(net, mv[1], t, et="t", closed=True)
    for i, bus in enumerate(mv + lv + [extra, zb]):
        pp.create_load(net, bus, p_mw=0.3 + 0.1 * i, q_mvar=0.05 * i)
    pp.create_sgen(net, mv[3], p_mw=2.0, q_mvar=-0.3, scaling=0.8)
    pp.create_shunt(net, mv[0], q_mvar=-1.2, p_mw=0.01, step=2, max_step=3, vn_kv=21.0)
    pp.create_storage(net, mv[5], p_mw=0.7, max_e_mwh=3, q_mvar=0.1)
    pp.create_load(net, ob, p_mw=0.2)  # behind an open switch: unsupplied
    return net


def three_winding():
    net, b = base()
    mv = pp.create_bus(net, vn_kv=20.0)
    lv = pp.create_bus(net, vn_kv=10.0)
    mv2 = pp.create_bus(net, vn_kv=20.0)
    lv2 = pp.create_bus(net, vn_kv=10.0)
    pp.create_transformer3w(net, b[1], mv, lv, "63/25/38 MVA 110/20/10 kV")
    pp.create_transformer3w_from_parameters(
        net, b[2], mv2, lv2, 110, 20, 10.5, 40, 20, 20, 11, 9, 7, 0.3, 0.35, 0.32, 25, 0.05,
        shift_mv_degree=30, shift_lv_degree=150, tap_side="mv", tap_neutral=0, tap_pos=2, tap_step_percent=1.25,
        tap_changer_type="Ratio")
    lv3 = pp.create_bus(net, vn_kv=10.0)
    mv3 = pp.create_bus(net, vn_kv=20.0)
    pp.create_transformer3w_from_parameters(
        net, b[3], mv3, lv3, 110, 20, 10, 30, 20, 15, 10, 8, 9, 0.25, 0.3, 0.3, 20, 0.04,
        tap_side="hv", tap_neutral=0, tap_pos=-3, tap_step_percent=1.0, tap_changer_type="Ratio",
        tap_at_star_point=True)
    pp.create_line_from_parameters(net, mv, mv2, 4.0, 0.12, 0.1, 200, 0.4)
    t3 = pp.create_transformer3w(net, b[0], mv3, pp.create_bus(net, vn_kv=10.0), "63/25/38 MVA 110/20/10 kV")
    pp.create_switch(net, mv3, t3, et="t3", closed=False)
    for bus, p in ((mv, 8), (lv, 4), (mv2, 5), (lv2, 3), (mv3, 2), (lv3, 1.5)):
        pp.create_load(net, bus, p_mw=p, q_mvar=p / 4)
    return net


def wards_impedances_gens():
    net, b = base(sn_mva=10.0)
    pp.create_ward(net, b[1], ps_mw=3, qs_mvar=1, pz_mw=0.5, qz_mvar=-2)
    pp.create_xward(net, b[2], ps_mw=2, qs_mvar=0.5, pz_mw=0.2, qz_mvar=0.3, r_ohm=1.0, x_ohm=8.0, vm_pu=1.01)
    x1 = pp.create_bus(net, vn_kv=110.0)
    pp.create_impedance(net, b[3], x1, rft_pu=0.01, xft_pu=0.05, rtf_pu=0.012, xtf_pu=0.06, sn_mva=100,
                        gf_pu=0.001, bf_pu=0.002, gt_pu=0.0015, bt_pu=0.001)
    pp.create_load(net, x1, p_mw=4, q_mvar=1)
    # two gens on one bus (Q split by range), a gen at the ext_grid bus, a gen with a load
    pp.create_gen(net, b[2], p_mw=6, vm_pu=1.01, min_q_mvar=-5, max_q_mvar=10)
    pp.create_gen(net, b[2], p_mw=4, vm_pu=1.01, min_q_mvar=-2, max_q_mvar=3)
    pp.create_gen(net, b[0], p_mw=3, vm_pu=1.02)
    pp.create_gen(net, b[3], p_mw=1, vm_pu=1.0, scaling=0.5)
    pp.create_load(net, b[3], p_mw=10, q_mvar=3, const_z_p_percent=30, const_i_p_percent=20,
                   const_z_q_percent=10, const_i_q_percent=40)
    pp.create_load(net, b[1], p_mw=12, q_mvar=4)
    pp.create_sgen(net, b[1], p_mw=2, q_mvar=0.5)
    return net


def out_of_service_and_island():
    net, b = base()
    mv = [pp.create_bus(net, vn_kv=20.0) for _ in range(3)]
    pp.create_transformer(net, b[1], mv[0], "25 MVA 110/20 kV")
    t_oos = pp.create_transformer(net, b[2], mv[1], "25 MVA 110/20 kV")
    net.trafo.loc[t_oos, "in_service"] = False
    pp.create_line_from_parameters(net, mv[0], mv[2], 2.0, 0.2, 0.1, 250, 0.3)
    l_oos = pp.create_line_from_parameters(net, mv[1], mv[2], 2.0, 0.2, 0.1, 250, 0.3)
    net.line.loc[l_oos, "in_service"] = False
    # island: two buses joined by a line, with a gen but no slack -> unsupplied (NaN)
    i1, i2 = pp.create_bus(net, vn_kv=20.0), pp.create_bus(net, vn_kv=20.0)
    pp.create_line_from_parameters(net, i1, i2, 1.0, 0.2, 0.1, 200, 0.3)
    pp.create_gen(net, i1, p_mw=1.0, vm_pu=1.0)
    pp.create_load(net, i2, p_mw=0.5)
    # an out-of-service bus at the end of an in-service line (aux bus keeps the charging)
    dead = pp.create_bus(net, vn_kv=20.0, in_service=False)
    pp.create_line_from_parameters(net, mv[2], dead, 3.0, 0.2, 0.1, 300, 0.3)
    pp.create_load(net, dead, p_mw=1.0)
    for bus in mv:
        pp.create_load(net, bus, p_mw=1.5, q_mvar=0.4)
    ld = pp.create_load(net, mv[0], p_mw=5.0)
    net.load.loc[ld, "in_service"] = False
    g = pp.create_gen(net, b[3], p_mw=5, vm_pu=1.01)
    net.gen.loc[g, "in_service"] = False
    pp.create_sgen(net, mv[1], p_mw=1.0)  # at a bus now fed only through an oos line: unsupplied
    return net


def phase_shifters_and_slack_gen():
    net = pp.create_empty_network()
    b = [pp.create_bus(net, vn_kv=v) for v in (220.0, 220.0, 110.0, 110.0, 110.0)]
    pp.create_gen(net, b[0], p_mw=0, vm_pu=1.03, slack=True)
    pp.create_gen(net, b[3], p_mw=30, vm_pu=1.0, min_q_mvar=-5, max_q_mvar=5)
    pp.create_line_from_parameters(net, b[0], b[1], 30, 0.05, 0.3, 12, 1.0)
    pp.create_transformer_from_parameters(net, b[1], b[2], 150, 220, 110, 0.3, 12, 30, 0.06, tap_side="hv",
                                          tap_neutral=0, tap_pos=4, tap_step_degree=1.5,
                                          tap_changer_type="Ideal")
    pp.create_transformer_from_parameters(net, b[0], b[4], 100, 220, 110, 0.35, 11, 20, 0.05, tap_side="hv",
                                          tap_neutral=0, tap_pos=-2, tap_step_percent=1.2, tap_step_degree=5,
                                          tap_changer_type="Symmetrical")
    pp.create_line_from_parameters(net, b[2], b[3], 20, 0.1, 0.4, 10, 0.6)
    pp.create_line_from_parameters(net, b[3], b[4], 25, 0.1, 0.4, 10, 0.6)
    pp.create_load(net, b[2], p_mw=60, q_mvar=20)
    pp.create_load(net, b[4], p_mw=40, q_mvar=12)
    return net


BUILT = {
    "switches_and_trafos": switches_and_trafos,
    "three_winding": three_winding,
    "wards_impedances_gens": wards_impedances_gens,
    "out_of_service_and_island": out_of_service_and_island,
    "phase_shifters_and_slack_gen": phase_shifters_and_slack_gen,
}
