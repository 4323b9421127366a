"""The backend's fast paths against the checked / reference paths they stand in for.

- ``World.write_rows`` (the trusted write the backend uses for the bus / in_service values it
  derives itself) leaves the world and the old values
  exactly as the checked ``World.set_values`` does, and marks the same dirty sets;
- a GridtapeBackend whose every write goes through ``set_values`` plays the same episode (same
  world after every step, same observations) as the one using the trusted writes.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from gridtape.world.io import load_case
from gridtape.world.schema import spec

CASE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cases", "IEEE14", "data.zip")


def _state(d):
    """What a dirty set holds (then cleared for the next write)."""
    out = (set(d.cols), set(d.rows), d.network)
    d.clear()
    return out


def test_write_rows_matches_set_values():
    rng = np.random.default_rng(3)
    a = load_case(CASE)
    a.add("bus", {"vn_kv": a["bus"].cols["vn_kv"].copy()}, ids=a["bus"].ids + 100)  # second busbars
    a.remove("load", a["load"].ids[:1])  # ids no longer equal to rows
    b = a.copy()
    da, db = a.watch(), b.watch()
    bus_ids = a["bus"].ids
    writes = [("load", "bus", lambda n: rng.choice(bus_ids, n)), ("line", "from_bus", lambda n: rng.choice(bus_ids, n)),
              ("trafo", "lv_bus", lambda n: rng.choice(bus_ids, n)), ("gen", "in_service", lambda n: rng.random(n) < 0.5),
              ("load", "p_mw", lambda n: rng.uniform(0, 50, n)), ("shunt", "q_mvar", lambda n: rng.uniform(-5, 5, n)),
              ("line", "r_ohm_per_km", lambda n: rng.uniform(0.1, 1, n))]
    assert _state(da) == _state(db)
    seen = set()
    for step in range(60):
        kind, col, draw = writes[rng.integers(len(writes))]
        t = a[kind]
        if step % 5 == 0:
            rows = None
            vals = draw(len(t))
        else:
            rows = np.sort(rng.choice(len(t), size=rng.integers(1, len(t) + 1), replace=False))
            vals = draw(len(rows))
        vals = vals.astype(t.cols[col].dtype)
        old_a = a.set_values(kind, t.ids if rows is None else t.ids[rows], col, vals)
        old_b = b.write_rows(kind, rows, col, vals)
        assert old_a.dtype == old_b.dtype and np.array_equal(old_a, old_b)
        assert a.equals(b)
        sa = _state(da)
        assert sa == _state(db) and sa[0] == {(kind, col)} and not sa[1] and not sa[2]
        seen.add(spec(kind)[col].affects)
    assert seen >= {"topo", "adm", "inj"}


grid2op = pytest.importorskip("grid2op")

from gridtape.grid2op import GridtapeBackend  # noqa: E402
from gridtape.grid2op import planner as P  # noqa: E402
from gridtape.grid2op.results import ResultCopy  # noqa: E402
from reference import grid2op_numpy as ref  # noqa: E402  (tests/reference: the numpy references)


class CheckedBackend(GridtapeBackend):
    """Every planned write through the checked World.set_values (the reference path)."""

    def _commit(self, plan, message, n=None):
        return super()._commit([(k, c, r, v, True) for k, c, r, v, _ in plan], message, n)


def test_trusted_writes_play_the_episode_the_checked_writes_play():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        envs = [grid2op.make("l2rpn_case14_sandbox", test=True, backend=cls()) for cls in (GridtapeBackend, CheckedBackend)]
    space = envs[0].action_space
    topos = space.get_all_unitary_topologies_set(space)
    rng = np.random.default_rng(5)
    plan = [int(rng.integers(len(topos))) if rng.random() < 0.4 else None for _ in range(60)]
    for env in envs:
        env.seed(0)
        env.reset()
    resets = moved = 0
    watched = [None, None, None, None]
    for k in plan:
        obs = []
        for env in envs:
            a = env.action_space() if k is None else env.action_space({"set_bus": topos[k].set_bus})
            o, _, done, _ = env.step(a)
            obs.append(o)
            if done:
                env.reset()
        resets += done
        moved += k is not None
        wa, wb = (e.backend.grid.world for e in envs)
        assert wa.equals(wb)
        if watched[0] is not wa or watched[1] is not wb:  # the first step, or a world replaced
            watched = [wa, wb, wa.watch(), wb.watch()]
        else:
            assert _state(watched[2]) == _state(watched[3])
        assert np.array_equal(obs[0].topo_vect, obs[1].topo_vect)
        for f in ("a_or", "p_or", "v_or", "gen_q", "load_v"):
            assert np.array_equal(getattr(obs[0], f), getattr(obs[1], f))
    assert moved >= 15
    for env in envs:
        env.close()


class UncachedCopy(ResultCopy):
    """The per-model index arrays recomputed at every solve (the reference for the cache)."""

    def model(self, grid):
        return self._new_model(grid, grid._engine.topo)


class UncachedBackend(GridtapeBackend):
    _result_copy = UncachedCopy


def test_per_topology_cache_gives_what_a_recomputation_gives():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        envs = [grid2op.make("l2rpn_case14_sandbox", test=True, backend=cls()) for cls in (GridtapeBackend, UncachedBackend)]
    space = envs[0].action_space
    topos = space.get_all_unitary_topologies_set(space, sub_id=1)[:4]  # one substation changed per step
    rng = np.random.default_rng(11)
    built = []
    rc = envs[0].backend._copy
    orig = rc._new_model
    rc._new_model = lambda grid, topo: built.append(1) or orig(grid, topo)
    for env in envs:
        env.seed(0)
        env.reset()
    changes = 0
    seen = set()
    for step in range(80):
        k = int(rng.integers(len(topos))) if step % 2 else None  # every other step a topology, revisited
        obs = []
        for env in envs:
            # a topology and, on the next step, the base topology back: the models of both are cached
            a = env.action_space({"set_bus": topos[k].set_bus}) if k is not None else env.action_space(
                {"set_bus": {"substations_id": [(1, np.ones(env.sub_info[1], int))]}})
            o, _, done, _ = env.step(a)
            obs.append(o)
            if done:
                env.reset()
        changes += 1
        if k is not None:
            seen.add(k)
        for f in ("a_or", "p_or", "q_ex", "v_or", "gen_p", "gen_q", "load_v", "theta_or", "topo_vect", "rho"):
            assert np.array_equal(getattr(obs[0], f), getattr(obs[1], f)), f
    assert len(seen) == len(topos) and 0 < len(built) <= len(topos) + 3  # the cache served the revisits
    for env in envs:
        env.close()


@pytest.mark.parametrize("name", ["l2rpn_case14_sandbox", "l2rpn_idf_2023"])
def test_small_topology_planning_matches_the_vectorized_one(name):
    """``Planner.topology_small`` (a loop over the positions an action sets) plans the writes of
    ``Planner.topology`` (masks over every element): same tables, columns, rows, values, order;
    from states the previous random actions left (lines off, elements detached, busbar 2).  And
    ``TopoVect.update`` (the written elements only) gives ``TopoVect.refresh``'s topo_vect."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = grid2op.make(name, test=True, backend=GridtapeBackend())
    bk = env.backend
    w = bk.grid.world
    rng = np.random.default_rng(13)
    n = bk.dim_topo
    writes = 0
    for trial in range(300):
        c = np.sort(rng.choice(n, size=int(rng.integers(1, 25)), replace=False))
        ch = np.zeros(n, bool)
        ch[c] = True
        vals = rng.choice(np.array([-1, 1, 2], dtype=np.int32), size=n, p=[0.2, 0.4, 0.4])
        vec, fast = [], []
        bk._planner.topology(vec, w, ch, vals)
        bk._planner.topology_small(fast, w, c.tolist(), vals[c].tolist())
        assert len(vec) == len(fast)
        for a, b in zip(vec, fast):
            assert a[:2] == b[:2] and a[4] == b[4]
            assert np.array_equal(a[2], b[2]) and a[3].dtype == b[3].dtype and np.array_equal(a[3], b[3])
        writes += len(vec)
        bk._commit(vec, "test")  # the next trial starts from this state
        bk._topo.update(w, vec)  # topo_vect updated for the written elements only ...
        tv, status = bk._topo.vect.copy(), bk._topo.line_status.copy()
        bk._topo.refresh(w)  # ... equals topo_vect gathered again from every column
        assert np.array_equal(tv, bk._topo.vect) and np.array_equal(status, bk._topo.line_status)
    assert writes > 300
    assert not w["line"].cols["in_service"].all() and (w["load"].cols["bus"] >= bk.n_sub).any()
    env.close()


@pytest.mark.parametrize("name", ["l2rpn_case14_sandbox", "l2rpn_idf_2023"])
def test_kernel_results_equal_the_numpy_results(name):
    """The result path (the solver's result arrays, g2o.fill_buffers) fills the buffers as the numpy
    reference does (bit for bit but for a float32 step here and there), over an episode of random
    topologies (unsupplied busbars, switched-off lines, game overs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        envs = [grid2op.make(name, test=True, backend=cls()) for cls in (GridtapeBackend, ref.NumpyFetchBackend)]
    space = envs[0].action_space
    subs = np.flatnonzero(envs[0].sub_info >= 4)[:6]
    topos = [a.set_bus for s in subs for a in space.get_all_unitary_topologies_set(space, sub_id=int(s))]
    rng = np.random.default_rng(2)
    for env in envs:
        env.seed(0)
        env.reset()
    dones = exact = total = 0
    for step in range(50):
        k = int(rng.integers(len(topos))) if rng.random() < 0.5 else None
        for env in envs:
            o, _, done, _ = env.step(env.action_space() if k is None else env.action_space({"set_bus": topos[k]}))
            if done:
                env.reset()
        dones += done
        a, b = (e.backend for e in envs)
        for buf in ("line", "inj"):
            x, y = a._out.buf[buf], b._out.buf[buf]
            assert np.array_equal(np.isnan(x), np.isnan(y)), (step, buf)
            ok = ~np.isnan(x)
            # the kernel's sqrt(p^2 + q^2) and the solver's own |V| and angle (result arrays) may
            # differ from numpy's complex abs and angle in the last bit of a float64, which can
            # move the float32 result by one step
            ulp = np.spacing(np.maximum(np.abs(x[ok]), np.abs(y[ok])))
            # flows that are zero up to rounding (~1e-15 MW) differ by their cancellation noise
            ulp = np.maximum(ulp, np.float32(1e-9))
            bad = np.abs(x[ok] - y[ok]) > ulp
            assert not bad.any(), (step, buf, x[ok][bad][:5], y[ok][bad][:5], ulp[bad][:5])
            exact += int(np.count_nonzero(x[ok] == y[ok]))
            total += int(np.count_nonzero(ok))
    # the reference computes in numpy: most values agree bit for bit, the rest within the bound above
    assert exact >= 0.9 * total and total > 1000
    bk = envs[0].backend
    assert bk.runpf()[0]
    # an admittance write (new branch admittance arrays in the engine): the kernel follows
    w = bk.grid.world
    before = bk._out.buf["line"].copy()
    w.set_value("line", int(w["line"].ids[0]), "x_ohm_per_km", float(w["line"].cols["x_ohm_per_km"][0]) * 1.5)
    assert bk.runpf()[0] and bk.grid.last_report.rebuild == "admittance"
    got = bk._out.buf["line"].copy()
    rc = bk._copy
    ref.fetch(rc, bk.grid, rc.model(bk.grid), False)
    want = bk._out.buf["line"]
    assert not np.allclose(got, before) and np.all(np.abs(got - want) <= np.maximum(np.spacing(np.abs(want)), 1e-9))
    res = bk.grid._engine.results()
    res.sf[0] = complex(np.inf, 0.0)  # a non-finite flow at a powerline end
    assert not rc.fetch(bk.grid, rc.model(bk.grid), False)
    for env in envs:
        env.close()


def test_write_rows_checked_validates_as_set_values():
    """``World.write_rows_checked`` writes as ``set_values`` (values, old values, dirty sets) and
    refuses what it refuses, naming the same row, leaving the world unchanged (nothing marked)."""
    from gridtape.errors import GridtapeError

    a = load_case(CASE)
    a.remove("load", a["load"].ids[:1])  # ids no longer equal to rows
    b = a.copy()
    da, db = a.watch(), b.watch()
    rng = np.random.default_rng(9)
    for kind, col in (("load", "p_mw"), ("gen", "vm_pu"), ("line", "length_km"), ("load", "bus"), ("gen", "in_service")):
        t = a[kind]
        for rows in (None, np.sort(rng.choice(len(t), 2, replace=False)).astype(np.int64)):
            n = len(t) if rows is None else len(rows)
            vals = (t.cols[col].copy() if rows is None else t.cols[col][rows].copy())
            if vals.dtype == np.float64:
                vals = vals * rng.uniform(0.5, 1.5, n) + 0.1
            old_a = a.set_values(kind, t.ids if rows is None else t.ids[rows], col, vals)
            old_b = b.write_rows_checked(kind, rows, col, vals)
            assert np.array_equal(old_a, old_b) and a.equals(b) and _state(da) == _state(db)
    for kind, col, bad in (("load", "p_mw", np.nan), ("line", "length_km", -1.0), ("gen", "vm_pu", -0.5)):
        t = b[kind]
        rows = np.array([0, 2], dtype=np.int64)
        vals = t.cols[col][rows].copy()
        vals[1] = bad
        before, _ = b.copy(), _state(db)
        with pytest.raises(GridtapeError) as e_fast:
            b.write_rows_checked(kind, rows, col, vals)
        with pytest.raises(GridtapeError) as e_ref:
            b.set_values(kind, t.ids[rows], col, vals)
        assert (e_fast.value.table, e_fast.value.row, e_fast.value.field) == \
            (e_ref.value.table, e_ref.value.row, e_ref.value.field) == (kind, int(t.ids[2]), col)
        assert b.equals(before) and _state(db) == (set(), set(), False)


@pytest.mark.parametrize("name", ["l2rpn_case14_sandbox", "l2rpn_idf_2023"])
def test_model_arrays_kernel_equals_the_numpy_model_cache(name):
    """g2o.model_arrays builds the per-model arrays (branch-end buses and factors, element buses
    and activity, the island check) the numpy reference builds, on the topologies of random
    actions: switched-off lines, elements and lines left on unsupplied busbars included."""
    from gridtape.errors import TopologyError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = grid2op.make(name, test=True, backend=GridtapeBackend())
    bk = env.backend
    w = bk.grid.world
    rng = np.random.default_rng(4)
    n = bk.dim_topo
    islands = 0
    for trial in range(120):
        c = np.sort(rng.choice(n, size=int(rng.integers(1, 12)), replace=False))
        ch = np.zeros(n, bool)
        ch[c] = True
        vals = rng.choice(np.array([-1, 1, 2], dtype=np.int32), size=n, p=[0.1, 0.45, 0.45])
        plan = []
        bk._planner.topology(plan, w, ch, vals)
        bk._commit(plan, "test")
        try:
            bk.grid._engine.prepare()
        except TopologyError:  # the slack generator switched off: no model
            bk.reset()
            continue
        topo = bk.grid._engine.topo
        got, want = bk._copy._new_model(bk.grid, topo), ref.new_model(bk._copy, bk.grid, topo)
        assert want.keys() <= got.keys()
        for k in ("sel", "b2", "kv2_on", "amp_den", "off2", "eb", "eon", "none"):
            assert got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]), k
        assert got["islanded"] == want["islanded"]
        for g in got["bus"]:
            assert np.array_equal(got["bus"][g], want["bus"][g])
        islands += bool(want["islanded"])
        if trial % 10 == 9:  # back to the initial topology now and then
            bk.reset()
    assert islands >= 10
    env.close()


class _Store:
    """A grid2op ValueStore's two arrays (what the backend reads of it)."""

    def __init__(self, values, changed):
        self.values, self.changed = values, changed


@pytest.mark.parametrize("seed", range(6))
def test_plan_column_kernel_plans_the_numpy_writes(seed):
    rng = np.random.default_rng(seed)
    w = load_case(CASE)
    t = w["load"]
    n = len(t)
    col = t.cols["p_mw"]
    for trial in range(40):
        vals = rng.uniform(0, 50, n).astype(np.float32)
        same = rng.random(n) < 0.4
        col[same] = vals[same]  # these rows hold the store's value already (nothing to write)
        if rng.random() < 0.2:
            vals[rng.integers(n)] = np.nan
        changed = rng.random(n) < (1.0 if trial % 5 == 0 else 0.6)
        divide = rng.uniform(0.5, 2, n) if rng.random() < 0.3 else None
        for every in (False, True):
            a, b = [], []
            P.plan_values(a, t, "load", "p_mw", _Store(vals, changed), divide, every=every)
            ref.plan_values(b, t, "load", "p_mw", _Store(vals, changed), divide, every=every)
            assert len(a) == len(b)
            for x, y in zip(a, b):
                assert x[:2] == y[:2] and x[4] == y[4]
                assert (x[2] is None) == (y[2] is None)
                if x[2] is not None:
                    assert x[2].dtype == np.int64 and np.array_equal(x[2], y[2])
                assert x[3].dtype == np.float64 and np.array_equal(x[3], y[3], equal_nan=True)
    # other dtypes are converted before the kernel; float32 divisors divide in float32 (grid2op's
    # voltage set-points in p.u.)
    ch = np.ones(n, bool)
    v16 = rng.uniform(0, 50, n).astype(np.float16)
    kv32 = rng.uniform(0.5, 2, n).astype(np.float32)
    for vals, divide in ((v16, None), (v16.astype(np.float32), kv32), (v16.astype(np.float32)[::-1], None)):
        a, b = [], []
        P.plan_values(a, t, "load", "p_mw", _Store(vals, ch), divide)
        ref.plan_values(b, t, "load", "p_mw", _Store(vals, ch), divide)
        assert len(a) == len(b) == 1 and a[0][3].dtype == np.float64 and np.array_equal(a[0][3], b[0][3])
