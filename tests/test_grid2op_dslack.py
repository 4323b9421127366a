"""Distributed slack in the grid2op backend: ``GridtapeBackend(dist_slack=True)`` is
``PandaPowerBackend(dist_slack=True)`` (pandapower's ``runpp(distributed_slack=True)``).

l2rpn_case14_sandbox ships with one weighted generator (the slack), where distributed slack is
the single slack; the tests give several generators a ``slack_weight`` in a copy of the
environment, so that the slack power is really shared.
"""
from __future__ import annotations

import os
import shutil
import warnings

import numpy as np
import pytest

grid2op = pytest.importorskip("grid2op")  # the grid2op extra; CI installs it
pp = pytest.importorskip("pandapower")

from grid2op.Backend import Backend, PandaPowerBackend  # noqa: E402

from gridtape.grid2op import GridtapeBackend  # noqa: E402
from reference import grid2op_numpy as ref  # noqa: E402  (tests/reference)

SANDBOX = os.path.join(os.path.dirname(grid2op.__file__), "data", "l2rpn_case14_sandbox")
WEIGHTS = [1.0, 2.0, 0.0, 0.5, 0.0, 1.0]  # gens 0, 1, 3 and the slack (5) share the slack power
FIELDS = ("gen_p", "gen_q", "gen_v", "p_or", "q_or", "v_or", "a_or", "p_ex", "load_v", "theta_or", "theta_ex",
          "gen_theta", "load_theta")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def close_enough(a, b):
    """Within 1e-4 in grid2op's units, or two float32 steps of the value (observations are float32)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    tol = 1e-4 + 2 * np.spacing(np.abs(a).astype(np.float32)).astype(np.float64)
    return bool(np.all(np.abs(a - b) <= tol))


def env_copy(dst, edit):
    """A copy of the sandbox environment whose grid.json went through ``edit(net)``."""
    shutil.copytree(SANDBOX, dst)
    net = pp.from_json(os.path.join(dst, "grid.json"))
    edit(net)
    pp.to_json(net, os.path.join(dst, "grid.json"))
    return str(dst)


def set_weights(net):
    net.gen["slack_weight"] = WEIGHTS


def make(path, backend):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return grid2op.make(path, test=True, backend=backend)


def standalone(cls, path, **kw):
    Backend._clear_class_attribute()
    cls._clear_grid_dependant_class_attributes()
    bk = cls(**kw)
    bk.load_grid(path, "grid.json")
    return bk


@pytest.fixture(scope="module")
def weighted(tmp_path_factory):
    return env_copy(tmp_path_factory.mktemp("dslack") / "env", set_weights)


@pytest.fixture(scope="module")
def trio(weighted):
    """PandaPowerBackend and GridtapeBackend with distributed slack, GridtapeBackend without."""
    envs = (make(weighted, PandaPowerBackend(dist_slack=True)), make(weighted, GridtapeBackend(dist_slack=True)),
            make(weighted, GridtapeBackend()))
    yield envs
    for e in envs:
        e.close()


def test_steps_match_pandapower_and_share_the_slack_by_weight(trio):
    """40 steps of topology and redispatch actions: every observation is PandaPowerBackend's; the
    weighted generators' P is not the single-slack one; generation covers loads and losses; and
    what each weighted generator produces beyond its set-point is its weight's share."""
    ref, gt, plain = trio
    topos = ref.action_space.get_all_unitary_topologies_set(ref.action_space)
    redisp = np.flatnonzero(ref.gen_redispatchable)
    w = np.asarray(WEIGHTS)
    weighted = np.flatnonzero(w)
    rng = np.random.default_rng(3)
    for e in trio:
        e.seed(0)
        e.reset()
    compared = moved = topo_steps = 0
    for step in range(40):
        u = rng.random()
        d = {}
        if u < 0.3:
            d["set_bus"] = topos[rng.integers(len(topos))].set_bus.copy()
        elif u < 0.7:
            g = int(rng.choice(redisp))
            d["redispatch"] = [(g, float(rng.uniform(-1, 1) * ref.gen_max_ramp_up[g]))]
        (o0, _, done0, i0), (o1, _, done1, i1), (o2, _, done2, _) = (e.step(e.action_space(d)) for e in trio)
        assert done0 == done1, (step, i0["exception"], i1["exception"])
        if done0 or done2:
            for e in trio:
                e.reset()
            continue
        assert np.array_equal(o0.topo_vect, o1.topo_vect), step
        for k in FIELDS:
            a, b = getattr(o0, k), getattr(o1, k)
            assert close_enough(a, b), (step, k, np.abs(a - b).max())
        compared += 1
        topo_steps += "set_bus" in d and (o1.topo_vect == 2).any()
        # distributed: the weighted generators' P differs from the single-slack solution's
        moved += np.abs(o1.gen_p[weighted] - o2.gen_p[weighted]).max() > 1e-2
        # balance: generation = loads + losses (shunts draw no P in this grid)
        bk = gt.backend
        p_or, p_ex = bk.lines_or_info()[0], bk.lines_ex_info()[0]
        losses = float(np.sum(p_or, dtype=np.float64) + np.sum(p_ex, dtype=np.float64))
        sh_p = float(np.sum(bk.shunt_info()[0], dtype=np.float64))
        gen_p = float(np.sum(bk.generators_info()[0], dtype=np.float64))
        load_p = float(np.sum(bk.loads_info()[0], dtype=np.float64))
        assert gen_p == pytest.approx(load_p + losses + sh_p, abs=2e-3), step
        # shares: (P - set-point) / weight is the same for every weighted generator
        sp = bk.grid.world["gen"].cols["p_mw"]
        extra = (bk.generators_info()[0][weighted] - sp[weighted]) / w[weighted]
        assert np.ptp(extra) < 1e-3 * max(1.0, np.abs(extra).max()), (step, extra)
    assert compared >= 30 and moved >= 0.8 * compared and topo_steps >= 5, (compared, moved, topo_steps)


def test_dc_keeps_the_single_slack_as_pandapower_does(weighted):
    """PandaPowerBackend's DC power flow (rundcpp) ignores dist_slack; so does GridtapeBackend's."""
    out = []
    for cls, ds in ((PandaPowerBackend, True), (GridtapeBackend, True), (GridtapeBackend, False)):
        bk = standalone(cls, weighted, dist_slack=ds)
        ok, exc = bk.runpf(is_dc=True)
        assert ok, exc
        out.append((bk.generators_info()[0], bk.lines_or_info()[0]))
    (g0, p0), (g1, p1), (g2, p2) = out
    assert close_enough(g0, g1) and close_enough(p0, p1)
    assert np.array_equal(g1, g2) and np.array_equal(p1, p2)


def test_copy_reset_and_recreation_keep_the_option(weighted):
    bk = standalone(GridtapeBackend, weighted, dist_slack=True)
    plain = standalone(GridtapeBackend, weighted)
    ref = standalone(PandaPowerBackend, weighted, dist_slack=True)
    assert bk.runpf()[0] and plain.runpf()[0] and ref.runpf()[0]
    want = ref.generators_info()[0]
    p_ds, p_plain = bk.generators_info()[0], plain.generators_info()[0]
    assert close_enough(p_ds, want) and not close_enough(p_ds, p_plain)
    cp = bk.copy()
    assert cp.grid is not bk.grid and cp.grid.distributed_slack
    assert cp.runpf()[0] and close_enough(cp.generators_info()[0], p_ds)
    assert plain.copy().runpf()[0] and not close_enough(plain.copy().generators_info()[0], p_ds)
    # grid2op re-creates backends (runner, multi-process envs) from their keyword arguments
    again = type(bk)(**bk._my_kwargs)
    assert again._my_kwargs["dist_slack"] is True and again._dist_slack
    # reset: back to the grid as loaded, still distributed
    cp.grid.world.set_values("load", cp.grid.world["load"].ids, "p_mw", 1.1 * cp.grid.world["load"].cols["p_mw"])
    assert cp.runpf()[0]
    cp.reset(weighted)
    assert cp.runpf()[0] and close_enough(cp.generators_info()[0], p_ds)


def test_one_weight_is_the_single_slack():
    """The sandbox as shipped weighs only its slack generator: both options give the same flow."""
    a = standalone(GridtapeBackend, SANDBOX, dist_slack=True)
    b = standalone(GridtapeBackend, SANDBOX)
    for bk in (a, b):
        assert bk.runpf()[0]
    assert close_enough(a.generators_info()[0], b.generators_info()[0])
    assert close_enough(a.lines_or_info()[0], b.lines_or_info()[0])


def test_ext_grid_slack_weighs_like_pandapowers_added_generator(tmp_path):
    """With an ext_grid as slack, PandaPowerBackend keeps it and adds a slack generator of weight 1
    at its bus: that bus weighs 1 + the ext_grid's weight.  Steps match PandaPowerBackend."""
    def edit(net):
        slack = int(np.flatnonzero(net.gen.slack.values)[0])
        pp.create_ext_grid(net, bus=int(net.gen.bus.iloc[slack]), vm_pu=float(net.gen.vm_pu.iloc[slack]),
                           slack_weight=3.0)
        net.gen = net.gen.drop(index=net.gen.index[slack])
        net.gen["slack_weight"] = WEIGHTS[:-1]

    path = env_copy(tmp_path / "env", edit)
    envs = (make(path, PandaPowerBackend(dist_slack=True)), make(path, GridtapeBackend(dist_slack=True)))
    assert envs[1].backend.grid.world["gen"].cols["slack_weight"][-1] == 4.0
    for e in envs:
        e.seed(0)
        e.reset()
    for step in range(5):
        (o0, _, d0, _), (o1, _, d1, _) = (e.step(e.action_space()) for e in envs)
        assert not d0 and not d1
        for k in FIELDS:
            assert close_enough(getattr(o0, k), getattr(o1, k)), (step, k)
    for e in envs:
        e.close()


def test_results_kernel_shares_the_slack_as_the_numpy_path(weighted):
    """the one result path (weighted slack shares, Q split by reactive range) writes the element
    results the numpy reference writes, over random topologies and redispatching."""
    envs = [make(weighted, cls(dist_slack=True)) for cls in (GridtapeBackend, ref.NumpyFetchBackend)]
    space = envs[0].action_space
    subs = np.flatnonzero(envs[0].sub_info >= 4)[:5]
    topos = [a.set_bus for s in subs for a in space.get_all_unitary_topologies_set(space, sub_id=int(s))]
    rng = np.random.default_rng(5)
    for env in envs:
        env.seed(1)
        env.reset()
    checked = 0
    for step in range(40):
        u = rng.random()
        k = int(rng.integers(len(topos)))
        for env in envs:
            act = env.action_space()
            if u < 0.4:
                act = env.action_space({"set_bus": topos[k]})
            _, _, done, _ = env.step(act)
            if done:
                env.reset()
        a, b = (e.backend._out.buf["inj"] for e in envs)
        assert np.array_equal(np.isnan(a), np.isnan(b)), step
        ok = ~np.isnan(a)
        assert np.all(np.abs(a[ok] - b[ok]) <= 2 * np.spacing(np.abs(b[ok]))), step
        checked += int(np.count_nonzero(ok))
    gen_p = envs[0].backend.generators_info()[0]
    assert checked > 1000 and np.isfinite(gen_p).all()
    for env in envs:
        env.close()
