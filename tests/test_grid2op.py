"""gridtape as a grid2op backend (gridtape.grid2op.GridtapeBackend).

- grid2op's own backend test suite (AAATestBackendAPI, shipped in the grid2op wheel with its
  educ_case14_storage grid), run on GridtapeBackend;
- 300 steps of l2rpn_case14_sandbox with random topology and redispatch actions give the
  observations PandaPowerBackend gives, step by step, game overs and resets included;
- the rebuild level of each step, divergence without stale state, islands, reset, copy, DC,
  ext_grid slack, and the journal: one transaction per apply_action, replay and bisect.
"""
from __future__ import annotations

import json
import os
import unittest
import warnings

import numpy as np
import pytest

grid2op = pytest.importorskip("grid2op")  # the grid2op extra; CI installs it

from grid2op.Backend import Backend, PandaPowerBackend  # noqa: E402
from grid2op.Exceptions import DivergingPowerflow, IslandedGrid  # noqa: E402
from grid2op.tests.aaa_test_backend_interface import AAATestBackendAPI  # noqa: E402
from gridtape.world.schema import spec  # noqa: E402

import gridtape  # noqa: E402
from gridtape.grid2op import GridtapeBackend, read_grid2op_json  # noqa: E402

SANDBOX = "l2rpn_case14_sandbox"
DATA = os.path.join(os.path.dirname(grid2op.__file__), "data")
OBS_FIELDS = ("p_or", "q_or", "v_or", "a_or", "p_ex", "q_ex", "v_ex", "a_ex", "gen_p", "gen_q", "gen_v",
              "load_p", "load_q", "load_v", "theta_or", "theta_ex", "gen_theta", "load_theta", "rho")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def make(backend, name=SANDBOX):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return grid2op.make(name, test=True, backend=backend)


def close_enough(a, b):
    """Within 1e-4 in grid2op's units, or within two float32 steps of the value (observations are
    float32: above 1024 A one step is already 1.2e-4 A)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    tol = 1e-4 + 2 * np.spacing(np.abs(a).astype(np.float32)).astype(np.float64)
    return bool(np.all(np.abs(a - b) <= tol))


def act(env, d):
    return env.action_space(d)


def standalone(path, filename=None):
    """A GridtapeBackend loaded outside an environment (grid2op's class attributes reset first, as
    grid2op's own backend tests do)."""
    from grid2op.Backend import Backend

    Backend._clear_class_attribute()
    GridtapeBackend._clear_grid_dependant_class_attributes()
    bk = GridtapeBackend()
    bk.load_grid(str(path), filename)
    return bk


# ------------------------------------------------------------------------------------------------
# grid2op's own backend test suite
# ------------------------------------------------------------------------------------------------
class TestGridtapeBackendAPI(AAATestBackendAPI, unittest.TestCase):
    def make_backend(self, detailed_infos_for_cascading_failures=False):
        return GridtapeBackend(detailed_infos_for_cascading_failures=detailed_infos_for_cascading_failures)


# ------------------------------------------------------------------------------------------------
# parity with PandaPowerBackend
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pair():
    envs = (make(PandaPowerBackend()), make(GridtapeBackend()))
    yield envs
    for e in envs:
        e.close()


def test_layout_is_pandapower_backends(pair):
    ref, gt = (type(e.backend) for e in pair)
    for attr in ("name_line", "name_gen", "name_load", "name_sub", "name_shunt", "sub_info", "line_or_to_subid",
                 "line_ex_to_subid", "gen_to_subid", "load_to_subid", "shunt_to_subid", "line_or_pos_topo_vect",
                 "line_ex_pos_topo_vect", "gen_pos_topo_vect", "load_pos_topo_vect"):
        assert np.array_equal(np.asarray(getattr(ref, attr)), np.asarray(getattr(gt, attr))), attr
    assert np.allclose(pair[0].backend.thermal_limit_a, pair[1].backend.thermal_limit_a)
    assert gt.n_busbar_per_sub == 2 and pair[1].backend.can_output_theta


def test_300_random_steps_match_pandapower(pair):
    """Random topology (unitary substation topologies) and redispatch actions, same seeds: every
    observation equals PandaPowerBackend's; game overs happen on the same steps and both reset."""
    envs = pair
    topos = envs[0].action_space.get_all_unitary_topologies_set(envs[0].action_space)
    redisp = np.flatnonzero(envs[0].gen_redispatchable)
    rng = np.random.default_rng(0)
    for e in envs:
        e.seed(0)
        e.reset()
    applied = split = game_overs = compared = 0
    for step in range(300):
        u = rng.random()
        d = {}
        if u < 0.2:
            d["set_bus"] = topos[rng.integers(len(topos))].set_bus.copy()
        elif u < 0.5:
            g = int(rng.choice(redisp))
            d["redispatch"] = [(g, float(rng.uniform(-1, 1) * envs[0].gen_max_ramp_up[g]))]
        (o0, _, done0, i0), (o1, _, done1, i1) = (e.step(act(e, d)) for e in envs)
        assert done0 == done1, (step, i0["exception"], i1["exception"])
        applied += "set_bus" in d and not i0["is_illegal"]
        if done0:
            game_overs += 1
            for e in envs:
                e.reset()
            continue
        assert np.array_equal(o0.topo_vect, o1.topo_vect), step
        assert np.array_equal(o0.line_status, o1.line_status), step
        split += bool((o0.topo_vect == 2).any())
        for k in OBS_FIELDS:
            assert close_enough(getattr(o0, k), getattr(o1, k)), (step, k, np.max(np.abs(getattr(o0, k) - getattr(o1, k))))
        compared += 1
    # the episode did exercise busbar splits and game overs
    assert applied >= 30 and split >= 30 and game_overs >= 1 and compared >= 200, (applied, split, game_overs)


def test_dc_flows_match_pandapower(pair):
    for e in pair:
        e.seed(1)
        e.reset()
    out = []
    for e in pair:
        ok, exc = e.backend.runpf(is_dc=True)
        assert ok and exc is None
        out.append((e.backend.lines_or_info(), e.backend.generators_info()[0], e.backend.get_theta()[0]))
    (lo0, gp0, th0), (lo1, gp1, th1) = out
    assert close_enough(lo0[0], lo1[0]) and close_enough(gp0, gp1) and close_enough(th0, th1)
    assert np.all(lo1[1] == 0)  # no reactive power in DC


# ------------------------------------------------------------------------------------------------
# rebuild levels, divergence, islands, reset, copy
# ------------------------------------------------------------------------------------------------
def test_injection_steps_are_incremental_topology_steps_rebuild():
    env = make(GridtapeBackend())
    env.seed(0)
    env.reset()
    g = env.backend.grid
    w = g.world
    d = w.watch()
    for _ in range(3):
        d.clear()
        env.step(env.action_space())
        assert g.last_report.rebuild == "incremental"
        # only injection columns were written
        assert d.cols and {spec(k)[c].affects for k, c in d.cols} <= {"inj", "none"} and not d.rows and not d.network
    # sub 1: lines 0 and 2 (origin ends), gen 0 and load 0 on busbar 2
    a = env.action_space({"set_bus": {"substations_id": [(1, [1, 2, 1, 2, 1, 2])]}})
    _, _, done, info = env.step(a)
    assert not done, info["exception"]
    assert g.last_report.rebuild == "full"
    assert (env.backend.get_topo_vect() == 2).sum() == 3
    env.step(env.action_space())
    assert g.last_report.rebuild == "incremental"
    env.close()


def test_topology_step_warm_start_gives_the_cold_start_solution():
    """A topology step starts from the last voltages (a newly supplied busbar from a neighbour's);
    the solution is the one a fresh grid finds from pandapower's start, admittances included."""
    env = make(GridtapeBackend())
    env.seed(0)
    env.reset()
    env.step(env.action_space())
    g = env.backend.grid
    eng = g._engine
    v_before = eng.V.copy()
    a = env.action_space({"set_bus": {"substations_id": [(1, [1, 2, 1, 2, 1, 2])]}})
    _, _, done, info = env.step(a)
    assert not done, info["exception"]
    assert g.last_report.rebuild == "full" and g.last_report.converged
    busbar2 = env.backend._n_sub + 1  # internal bus of substation 1's busbar 2 (all buses in service)
    assert np.isnan(v_before[busbar2]) and np.isfinite(eng.V[busbar2])  # newly supplied
    fresh = gridtape.PowerGrid(world=g.world.copy())
    assert fresh.solve(init="auto").converged
    both = np.isfinite(fresh.v)
    assert np.array_equal(both, np.isfinite(g.v))
    assert np.allclose(g.v[both], fresh.v[both], rtol=0, atol=1e-9)
    fe = fresh._engine
    for k in ("yff", "yft", "ytf", "ytt"):
        assert np.allclose(getattr(eng.topo.branches, k), getattr(fe.topo.branches, k), rtol=0, atol=1e-12)
    env.close()


@pytest.mark.parametrize("change", ["adm_write", "replace_line"])
def test_branch_parameter_cache_follows_the_world(change):
    """The engine keeps branch parameters across topology changes; an admittance write or a
    replaced branch table must not reuse them."""
    g = gridtape.PowerGrid(os.path.join(os.path.dirname(__file__), "..", "cases", "IEEE14", "data.zip"))
    w = g.world
    assert g.solve().converged
    line = w["line"]
    lid = int(line.ids[3])
    if change == "adm_write":
        w.set_value("line", lid, "r_ohm_per_km", 3.0 * float(line.cols["r_ohm_per_km"][3]))
    else:  # remove a line and add one with other parameters: same count, new table contents
        row = {c: v[3:4].copy() for c, v in line.cols.items() if v.dtype != object}
        row["x_ohm_per_km"] = row["x_ohm_per_km"] * 2.0
        w.remove("line", [lid])
        w.add("line", row)
    w.set_value("line", int(line.ids[0]), "in_service", False)  # and a topology change
    assert g.solve().converged
    fresh = gridtape.PowerGrid(world=w.copy())
    assert fresh.solve().converged
    assert np.allclose(g.v, fresh.v, rtol=0, atol=1e-9, equal_nan=True)


def _injection_action(bk, load_p, gen_p):
    a = type(bk)._complete_action_class()
    a.update({"injection": {"load_p": load_p, "prod_p": gen_p}})
    ba = type(bk).my_bk_act_class()
    ba += a
    return ba


def test_divergence_returns_error_and_leaves_no_stale_state():
    env = make(GridtapeBackend())
    env.seed(0)
    env.reset()
    bk = env.backend
    load_p, *_ = bk.loads_info()
    gen_p, *_ = bk.generators_info()
    ref = bk.copy()
    assert ref.runpf()[0]
    bk.apply_action_public(_injection_action(bk, 8.0 * load_p, 8.0 * gen_p))
    ok, exc = bk.runpf(is_dc=False)
    assert not ok and isinstance(exc, DivergingPowerflow)
    assert all(np.isnan(x).all() for x in bk.lines_or_info() + bk.generators_info() + bk.loads_info())
    assert (bk.get_topo_vect() == -1).all() and not bk.get_line_status().any()
    # back to the previous injections: the next solve is the one a fresh backend gives
    bk.apply_action_public(_injection_action(bk, load_p, gen_p))
    ok, exc = bk.runpf(is_dc=False)
    assert ok and exc is None
    for got, want in zip(bk.lines_or_info() + bk.generators_info(), ref.lines_or_info() + ref.generators_info()):
        assert np.allclose(got, want, atol=1e-4)
    assert np.array_equal(bk.get_topo_vect(), ref.get_topo_vect())
    env.close()


def test_islanded_line_is_an_islanded_grid_error():
    env = make(GridtapeBackend())
    env.seed(0)
    env.reset()
    bk = env.backend
    a = type(bk)._complete_action_class()
    a.update({"set_bus": {"lines_or_id": [(3, 2)], "lines_ex_id": [(3, 2)]}})  # line 3 alone on busbars 2
    ba = type(bk).my_bk_act_class()
    ba += a
    bk.apply_action_public(ba)
    for dc in (False, True):
        ok, exc = bk.runpf(is_dc=dc)
        assert not ok and isinstance(exc, IslandedGrid) and "powerline [3]" in str(exc)
    env.close()


def test_reset_restores_the_world_as_loaded():
    env = make(GridtapeBackend())
    env.seed(0)
    env.reset()
    fresh = standalone(os.path.join(DATA, SANDBOX, "grid.json"))
    assert not env.backend.grid.world.equals(fresh.grid.world)  # the environment wrote its injections
    env.step(env.action_space({"set_bus": {"substations_id": [(1, [1, 2, 1, 2, 1, 2])]},
                               "set_line_status": [(10, -1)]}))
    env.backend.reset(os.path.join(DATA, SANDBOX))
    assert env.backend.grid.world.equals(fresh.grid.world)
    assert np.array_equal(env.backend.get_topo_vect(), np.ones(type(env.backend).dim_topo, dtype=int))
    assert np.allclose(env.backend.lines_or_info()[0], fresh.lines_or_info()[0])
    env.close()


def test_copy_is_independent():
    env = make(GridtapeBackend())
    env.seed(0)
    env.reset()
    bk = env.backend
    cp = bk.copy()
    assert cp.grid is not bk.grid and cp.grid.world.equals(bk.grid.world)
    load_p, *_ = bk.loads_info()
    gen_p, *_ = bk.generators_info()
    cp.apply_action_public(_injection_action(cp, 1.05 * load_p, 1.05 * gen_p))
    assert cp.runpf()[0]
    assert not cp.grid.world.equals(bk.grid.world)
    assert np.allclose(bk.loads_info()[0], load_p) and np.allclose(cp.loads_info()[0], 1.05 * load_p, rtol=1e-6)
    env.close()


def test_ext_grid_becomes_the_slack_generator(tmp_path):
    """A grid whose slack is an ext_grid (no slack generator) solves as pandapower solves it."""
    pp = pytest.importorskip("pandapower")
    net = pp.from_json(os.path.join(DATA, SANDBOX, "grid.json"))
    slack = int(np.flatnonzero(net.gen.slack.values)[0])
    pp.create_ext_grid(net, bus=int(net.gen.bus.iloc[slack]), vm_pu=float(net.gen.vm_pu.iloc[slack]))
    net.gen = net.gen.drop(index=net.gen.index[slack])
    pp.to_json(net, str(tmp_path / "grid.json"))
    pp.runpp(net)
    world = read_grid2op_json(tmp_path / "grid.json")
    assert len(world["ext_grid"]) == 0 and world["gen"].cols["slack"].sum() == 1
    bk = standalone(tmp_path, "grid.json")
    p_or = bk.lines_or_info()[0]
    want = np.concatenate([net.res_line.p_from_mw.values, net.res_trafo.p_hv_mw.values])
    assert close_enough(want, p_or)
    assert bk.generators_info()[0][-1] == pytest.approx(net.res_ext_grid.p_mw.iloc[0], abs=1e-4)


@pytest.mark.parametrize("variant", ["as-is", "equal-limits", "fixed-gen-at-slack-bus", "weighted-slacks",
                                     "unweighted-slacks"])
def test_generator_results_are_gridtapes_pfsoln(tmp_path, variant):
    """The backend's own generator P/Q path (per-model constants, no DataFrame) gives what
    gridtape's result tables give (res_gen, checked against pandapower in test_parity.py), also
    for generators sharing a bus with equal Q limits and for several generators at the slack bus."""
    pp = pytest.importorskip("pandapower")
    net = pp.from_json(os.path.join(DATA, SANDBOX, "grid.json"))
    slack = int(np.flatnonzero(net.gen.slack.values)[0])
    bus = int(net.gen.bus.iloc[slack])
    if variant == "equal-limits":  # gens 2 and 3 share a bus: pfsoln splits its Q equally
        assert net.gen.bus.iloc[2] == net.gen.bus.iloc[3]
        net.gen.loc[net.gen.index[[2, 3]], ["min_q_mvar", "max_q_mvar"]] = 0.0
    elif variant != "as-is":
        pp.create_gen(net, bus, p_mw=10.0, vm_pu=float(net.gen.vm_pu.iloc[slack]),
                      slack=variant != "fixed-gen-at-slack-bus", slack_weight=1.0)
        if variant == "weighted-slacks":
            net.gen.loc[net.gen.index[slack], "slack_weight"] = 3.0
        if variant == "unweighted-slacks":
            net.gen["slack_weight"] = 0.0
    pp.to_json(net, str(tmp_path / "grid.json"))
    bk = standalone(tmp_path / "grid.json")
    p, q, v = bk.generators_info()
    res = bk.grid.res_gen
    assert np.allclose(p, res.p_mw.values, atol=1e-4) and np.allclose(q, res.q_mvar.values, atol=1e-4)
    if variant == "equal-limits":
        assert q[2] == pytest.approx(q[3])
    if variant == "fixed-gen-at-slack-bus":
        assert p[-1] == pytest.approx(10.0)  # a fixed generator keeps its set-point
    if variant == "weighted-slacks":  # the balance beyond the set-points is shared 3:1
        extra = p[slack] - float(net.gen.p_mw.iloc[slack]), p[-1] - 10.0
        assert extra[0] == pytest.approx(3.0 * extra[1], rel=1e-6)
    if variant == "unweighted-slacks":  # no weights: the slack generators share equally
        assert p[slack] == pytest.approx(p[-1])


def test_xward_grid_is_refused(tmp_path):
    pp = pytest.importorskip("pandapower")
    net = pp.from_json(os.path.join(DATA, SANDBOX, "grid.json"))
    pp.create_xward(net, 3, 1.0, 0.5, 0.0, 0.0, 0.01, 0.1, 1.0)
    pp.to_json(net, str(tmp_path / "grid.json"))
    with pytest.raises(gridtape.errors.CaseError, match="xward"):
        standalone(tmp_path / "grid.json")


# ------------------------------------------------------------------------------------------------
# the journal: one transaction per apply_action, replay, bisect
# ------------------------------------------------------------------------------------------------
def test_journal_records_each_action_and_replays_the_episode(tmp_path):
    path = str(tmp_path / "episode.duckdb")
    env = make(GridtapeBackend(journal=path))
    env.seed(0)
    env.reset()
    g = env.backend.grid
    assert g.journal is not None and env.backend.copy().grid.journal is None
    for step in range(12):
        env.step(env.action_space({"set_line_status": [(3, -1)]}) if step == 7 else env.action_space())
    log = g.log()
    commits = log[log.event == "commit"]
    assert commits.message.str.fullmatch(r"(load|reset|apply_action \d+)").all()
    assert commits.message.iloc[0] == "load" and (commits.message == "reset").sum() == 1
    assert (log.event == "solve").sum() >= 13
    sets = log[log.event == "set"]
    assert set(zip(sets.kind, sets.field)) >= {("load", "p_mw"), ("gen", "p_mw"), ("line", "in_service")}
    live = g.world.copy()
    env.close()  # flushes and closes the journal
    with gridtape.open(path) as study:
        assert study.world_at().equals(live)
        found = study.bisect(lambda grid: bool(grid.world["line"].cols["in_service"][3]))
        assert found is not None and found.message.startswith("apply_action")
        changed = set(found.diff[["kind", "id", "field"]].itertuples(index=False, name=None))
        # that step's transaction: the line switched off plus the step's injections
        assert ("line", 3, "in_service") in changed
        assert {(k, f) for k, _, f in changed} <= {("line", "in_service"), ("load", "p_mw"), ("load", "q_mvar"),
                                                  ("gen", "p_mw"), ("gen", "vm_pu")}


class _DisconnectViaApplyAction(GridtapeBackend):
    """grid2op's default ``_disconnect_line`` (a full apply_action): the reference for ours."""

    def _disconnect_line(self, id_):
        Backend._disconnect_line(self, id_)


def _overflow_episode(cls, path):
    """Eight do-nothing steps of l2rpn_case14_sandbox with thermal limits that trip line 3 (hard
    overflow), then line 10 and trafo 2 (line 17: soft, then hard overflow), game over included."""
    env = make(cls(journal=path))
    env.seed(0)
    obs = env.reset()
    lim = env.get_thermal_limit().copy()
    lim[3], lim[10], lim[17] = obs.a_or[3] / 3, obs.a_or[10] / 1.5, obs.a_or[17] / 3
    env.set_thermal_limit(lim)
    tripped = []
    real = env.backend._disconnect_line
    env.backend._disconnect_line = lambda i: (tripped.append(int(i)), real(i))[1]
    seen = []
    for _ in range(8):
        obs, _, done, _ = env.step(env.action_space())
        seen.append((done, obs.line_status.copy(), obs.topo_vect.copy(), obs.a_or.copy(), obs.gen_p.copy()))
        if done:
            env.reset()
    log = env.backend.grid.log()
    live = env.backend.grid.world.copy()
    env.close()
    return seen, tripped, log, live


def test_overflow_disconnections_write_in_service_directly_and_replay(tmp_path):
    ours = _overflow_episode(GridtapeBackend, str(tmp_path / "ours.duckdb"))
    ref = _overflow_episode(_DisconnectViaApplyAction, str(tmp_path / "ref.duckdb"))
    seen, tripped, log, live = ours
    assert {3, 10, 17} <= set(tripped)  # lines and a trafo (line 17) went through _disconnect_line
    assert tripped == ref[1]
    for (d, st, tv, a, gp), (d2, st2, tv2, a2, gp2) in zip(seen, ref[0]):
        assert d == d2 and (st == st2).all() and (tv == tv2).all()
        assert np.array_equal(a, a2, equal_nan=True) and np.array_equal(gp, gp2, equal_nan=True)
    cols = ["message", "event", "kind", "eid", "field", "old", "new"]
    sets = log[log.event != "solve"][cols].reset_index(drop=True)
    assert sets.equals(ref[2][ref[2].event != "solve"][cols].reset_index(drop=True))
    off = log[(log.field == "in_service") & (log.new == False)]  # noqa: E712
    assert {("line", 3), ("line", 10), ("trafo", 2)} <= set(zip(off.kind, off.eid))
    assert off.message.str.fullmatch(r"apply_action \d+").all()
    with gridtape.open(str(tmp_path / "ours.duckdb")) as study:
        assert study.world_at().equals(live)


def test_disconnect_line_of_a_missing_line_is_a_backend_error():
    from grid2op.Exceptions import BackendError

    bk = standalone(os.path.join(DATA, SANDBOX), "grid.json")
    with pytest.raises(BackendError, match="no powerline"):
        bk._disconnect_line(bk.n_line)
    assert bk.get_line_status().all()


def test_journaled_write_that_fails_leaves_world_and_journal_unchanged():
    bk = standalone(os.path.join(DATA, SANDBOX), "grid.json")
    bk._grid = gridtape.PowerGrid(world=bk.grid.world, journal=None, author="grid2op")  # an in-memory journal
    w, j = bk.grid.world, bk.grid.journal
    before, seq = w.copy(), j.next_seq
    rows = np.arange(2)
    # (kind, column, rows, values, checked): a checked write of a missing bus raises
    plan = [("load", "p_mw", rows, np.array([1.0, 2.0]), True), ("gen", "p_mw", rows[:1], np.array([3.0]), False),
            ("load", "bus", rows, np.array([10**6, 10**6]), True)]  # no such bus
    with pytest.raises(gridtape.errors.BadReferenceError):
        bk._commit(plan, "apply_action 1")
    assert w.equals(before) and not j.in_transaction and j.next_seq == seq
    bk._commit(plan[:2], "apply_action 1")
    assert list(w["load"].cols["p_mw"][:2]) == [1.0, 2.0] and j.next_seq == seq + 4  # 3 sets + commit


def test_grid_json_tap_side_false_reads_as_no_tap_side():
    with open(os.path.join(DATA, SANDBOX, "grid.json")) as fh:
        raw = json.loads(json.load(fh)["_object"]["trafo"]["_object"])
    sides = [r[raw["columns"].index("tap_side")] for r in raw["data"]]
    assert False in sides  # the file does carry grid2op's legacy value
    world = read_grid2op_json(os.path.join(DATA, SANDBOX, "grid.json"))
    assert [s if s in ("hv", "lv") else None for s in sides] == list(world["trafo"].cols["tap_side"])


def test_unjournaled_write_that_fails_leaves_the_world_unchanged():
    bk = standalone(os.path.join(DATA, SANDBOX), "grid.json")
    w = bk.grid.world
    before = w.copy()
    rows = np.arange(2)
    plan = [("load", "p_mw", rows, np.array([1.0, 2.0]), True), ("line", "in_service", rows[:1], np.zeros(1, bool), False),
            ("gen", "vm_pu", rows[:1], np.array([-1.0]), True)]  # a negative voltage set-point is refused
    with pytest.raises(gridtape.errors.GridtapeError):
        bk._commit(plan, "apply_action 1")
    assert w.equals(before)
    bk._commit(plan[:2], "apply_action 1")
    assert list(w["load"].cols["p_mw"][:2]) == [1.0, 2.0] and not w["line"].cols["in_service"][0]


def test_journaled_commit_counts_its_events_for_the_checkpoints():
    """A journaled apply_action's transaction is counted by the grid's history (automatic
    checkpoints fall due by event count), as every other committed write is."""
    bk = standalone(os.path.join(DATA, SANDBOX), "grid.json")
    bk._grid = gridtape.PowerGrid(world=bk.grid.world, journal=None, author="grid2op")
    h, j = bk.grid._history, bk.grid.journal
    rows = np.arange(3)
    before, seq = h.counted, j.next_seq
    bk._commit([("load", "p_mw", rows, np.array([1.0, 2.0, 3.0]), True),
                ("line", "in_service", rows[:1], np.zeros(1, bool), False)], "apply_action 1")
    assert j.next_seq - seq == 5 and h.counted - before == 5  # 4 sets + the commit
