"""The topology kernel (solver_cy/topo.pyx via model.build_topology) equals the reference
implementation (model.build_topology_py) field by field, on bundled cases and on networks with
every element kind under random switch / in_service / bus states (islands included); the
engine's model cache gives the same voltages as a fresh engine."""
import os
import sys
import warnings

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
warnings.filterwarnings("ignore")

from gridtape.errors import GridtapeError  # noqa: E402
from gridtape.solver_cy import model as M  # noqa: E402
from gridtape.solver_cy import model_cache as MC  # noqa: E402
from gridtape.solver_cy import start as S  # noqa: E402
from reference import start as RS  # noqa: E402
from reference.topology import build_topology_py  # noqa: E402
from gridtape.solver_cy import topo as K  # noqa: E402
from gridtape.world.io import load_case  # noqa: E402

CASES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cases")


def assert_same_topology(a, b):
    assert (a.nb, a.n_world_bus) == (b.nb, b.n_world_bus)
    for k in ("lookup", "base_kv", "bus_type", "ref", "pv", "pq"):
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype and np.array_equal(x, y), k
    ba, bb = a.branches, b.branches
    for k in ("f", "t", "status"):
        x, y = getattr(ba, k), getattr(bb, k)
        assert x.dtype == y.dtype and np.array_equal(x, y), k
    assert ba.slices == bb.slices
    for name, x, y in (("rows", ba.rows, bb.rows), ("aux", a.aux, b.aux), ("active", a.active, b.active),
                       ("elem_bus_row", a.elem_bus_row, b.elem_bus_row)):
        assert x.keys() == y.keys(), name
        for k in x:
            assert x[k].dtype == y[k].dtype and np.array_equal(x[k], y[k]), (name, k)


def _check(world):
    """Both implementations agree, or both raise the same error."""
    try:
        ref = build_topology_py(world)
    except GridtapeError as e:
        with pytest.raises(type(e)) as got:
            M.build_topology(world)
        assert str(got.value) == str(e)
        return None
    new = M.build_topology(world)
    assert_same_topology(new, ref)
    return new


def test_kernel_kind_order_matches_model():
    t = M.build_topology(load_case(os.path.join(CASES, "IEEE14", "data.zip")))
    assert tuple(K.ELEM_KINDS) == tuple(t.active) == tuple(t.elem_bus_row)


@pytest.mark.parametrize("case", ["IEEE14", "IEEE118", "IEEE300"])
def test_bundled_cases(case):
    w = load_case(os.path.join(CASES, case, "data.zip"))
    assert _check(w) is not None


def _built_worlds():
    pytest.importorskip("pandapower")
    import networks
    from gridtape.world.io_pandapower import from_pandapower

    return {name: from_pandapower(make()) for name, make in networks.BUILT.items()}


def _scramble(w, rng):
    """Random in_service / closed / slack flips, switch impedances, element moves, line ends."""
    for kind, t in w.tables.items():
        if not len(t):
            continue
        for col in ("in_service", "closed", "slack"):
            if col in t.cols and rng.random() < 0.5:
                flip = rng.random(len(t)) < 0.3
                t.cols[col][flip] = ~t.cols[col][flip]
    sw = w["switch"]
    if len(sw) and rng.random() < 0.3:
        sw.cols["z_ohm"][:] = np.where(rng.random(len(sw)) < 0.5, 0.0, 0.1)
    bus_ids = w["bus"].ids
    for kind, col in (("load", "bus"), ("gen", "bus"), ("sgen", "bus"), ("line", "to_bus"), ("trafo", "lv_bus")):
        t = w[kind]
        if len(t) and rng.random() < 0.3:
            t.cols[col][rng.integers(len(t))] = rng.choice(bus_ids)


def test_random_states_of_every_element_kind():
    rng = np.random.default_rng(7)
    n_ok = n_raised = n_islands = 0
    for name, w0 in _built_worlds().items():
        assert _check(w0) is not None, name
        for _ in range(150):
            w = w0.copy()
            _scramble(w, rng)
            topo = _check(w)
            if topo is None:
                n_raised += 1
                continue
            n_ok += 1
            if (topo.bus_type[:topo.n_world_bus] == M.NONE).any():
                n_islands += 1
    # the random states must exercise both outcomes and unsupplied buses
    assert n_ok > 200 and n_raised > 20 and n_islands > 100


def test_open_branch_switches_and_impedance_switches():
    worlds = _built_worlds()
    w = worlds["switches_and_trafos"]
    sw = w["switch"]
    et = list(sw.cols["et"])
    assert any(e in ("l", "t") for e in et) and "b" in et
    for closed in (True, False):
        w2 = w.copy()
        w2["switch"].cols["closed"][:] = closed
        w2["switch"].cols["z_ohm"][:] = 0.5
        topo = _check(w2)
        assert topo is not None
        if not closed:
            assert topo.nb > topo.n_world_bus  # open branch switches made auxiliary buses
        else:
            assert "switch" in topo.branches.slices  # impedance switches became branches


def test_sparse_bus_ids_and_out_of_service_buses():
    w = load_case(os.path.join(CASES, "IEEE30", "data.zip"))
    # renumber the buses far apart: the kernel maps ids through a table or falls back
    for gap in (3, 10_000):
        w2 = w.copy()
        old = w2["bus"].ids.copy()
        new = old * gap + 5
        remap = dict(zip(old.tolist(), new.tolist()))
        for t in w2.tables.values():
            for col in ("bus", "from_bus", "to_bus", "hv_bus", "lv_bus", "mv_bus"):
                if col in t.cols and len(t) and t.spec[col].ref == "bus":
                    t.cols[col] = np.array([remap[int(v)] for v in t.cols[col]], dtype=np.int64)
        w2["bus"].ids = new
        w2["bus"]._pos = None
        w2["bus"].cols["in_service"][[3, 7]] = False
        assert _check(w2) is not None


def test_kernel_refuses_dangling_bus_ids():
    w = load_case(os.path.join(CASES, "IEEE14", "data.zip"))
    cols = {k: t.cols for k, t in w.tables.items()}
    cols["load"] = dict(cols["load"], bus=np.full(len(w["load"]), 99, np.int64))
    e = np.zeros(0, np.int64)
    with pytest.raises(K.Refused):
        K.build_core(cols, None, e, e, e, e, np.zeros(0, np.int8), e, e)


# ------------------------------------------------------------------------------------------
# the engine's model cache: a topology seen before reuses its model, Ybus pattern and Newton
# solvers (KLU symbolic analysis); the voltages equal a fresh engine's
# ------------------------------------------------------------------------------------------
def _assert_same_voltages(eng, world):
    from gridtape.solver_cy.engine import Engine

    fresh = Engine(world.copy())
    conv = fresh.solve(init="auto")[0]
    assert conv == eng.converged
    if conv:
        a, b = eng.V, fresh.V
        assert np.array_equal(np.isnan(a), np.isnan(b))
        ok = ~np.isnan(a)
        assert np.abs(a[ok] - b[ok]).max() < 1e-9


def test_model_cache_returns_to_a_topology_with_the_same_solver():
    from gridtape.solver_cy.engine import Engine

    w = load_case(os.path.join(CASES, "IEEE118", "data.zip"))
    eng = Engine(w)
    assert eng.solve(init="auto")[3] == "full"
    topo0, solver0 = eng.topo, eng._newton(eng.topo.pv, eng.topo.pq)
    line = int(w["line"].ids[5])
    w.set_value("line", line, "in_service", False)
    assert eng.solve(init="auto")[3] == "full"
    assert eng.topo is not topo0
    _assert_same_voltages(eng, w)
    w.set_value("line", line, "in_service", True)
    assert eng.solve(init="auto")[3] == "full"
    assert eng.topo is topo0 and eng._newton(eng.topo.pv, eng.topo.pq) is solver0
    _assert_same_voltages(eng, w)


def test_model_cache_follows_admittance_and_injection_writes_made_elsewhere():
    from gridtape.solver_cy.engine import Engine

    w = load_case(os.path.join(CASES, "IEEE14", "data.zip"))
    eng = Engine(w)
    eng.solve(init="auto")
    topo0, ysh0 = eng.topo, eng.ysh
    w.set_value("line", int(w["line"].ids[3]), "in_service", False)
    eng.solve(init="auto")
    # while the engine sits on the other topology: admittance and injection writes
    w.set_value("line", int(w["line"].ids[0]), "r_ohm_per_km", float(w["line"].cols["r_ohm_per_km"][0]) * 1.5)
    w.set_value("load", int(w["load"].ids[2]), "p_mw", 55.0)
    w.set_value("line", int(w["line"].ids[3]), "in_service", True)
    eng.solve(init="auto")
    assert eng.topo is topo0 and eng.ysh is not ysh0  # same model, admittances refilled
    _assert_same_voltages(eng, w)
    # an admittance write on the current topology (the "admittance" level) is seen too
    w.set_value("line", int(w["line"].ids[1]), "x_ohm_per_km", float(w["line"].cols["x_ohm_per_km"][1]) * 0.7)
    assert eng.solve(init="auto")[3] == "admittance"
    _assert_same_voltages(eng, w)


def test_model_cache_random_walk_over_topologies(monkeypatch):
    """A walk over a few topologies of every element kind (so that they repeat), with
    injection writes between: every solve equals a fresh engine's."""
    from gridtape.solver_cy.engine import Engine

    rng = np.random.default_rng(3)
    for name, w in _built_worlds().items():
        states = []
        for _ in range(60):
            if len(states) == 4:
                break
            w2 = w.copy()
            _scramble(w2, rng)
            try:
                M.build_topology(w2)
            except GridtapeError:
                continue
            states.append({(k, c): t.cols[c].copy() for k, t in w2.tables.items() for c in t.cols
                           if len(t) and (t.spec[c].affects == "topo")})
        assert len(states) >= 2, name
        eng = Engine(w)
        builds, fulls, n_built = [], 0, 0
        real = MC.build_topology
        monkeypatch.setattr(MC, "build_topology", lambda world: builds.append(1) or real(world))
        for step in range(12):
            s = states[rng.integers(len(states))]
            for (k, c), v in s.items():
                if not np.array_equal(w[k].cols[c], v):
                    w.set_values(k, w[k].ids, c, v)
            if len(w["load"]):
                w.set_value("load", int(w["load"].ids[0]), "p_mw", float(rng.uniform(0, 5)))
            n0 = len(builds)
            try:
                fulls += eng.solve(init="auto")[3] == "full"
            except GridtapeError:
                continue
            n_built += len(builds) - n0
            _assert_same_voltages(eng, w)
        monkeypatch.setattr(MC, "build_topology", real)
        assert fulls > n_built > 0, name  # some topologies came back from the cache


def test_warm_voltage_equals_previous_voltage_then_pin():
    """topo.warm_voltage (the start after a topology change) equals the engine's reference
    (_previous_voltage, then _pin) on IEEE118 topologies with random lines off, random unknown
    voltages (a chain of sweeps to fill them) and set-points; None when a bus stays unreachable."""
    import gridtape as gt

    rng = np.random.default_rng(17)
    seen_none = seen_fill = 0
    for trial in range(40):
        w = load_case(os.path.join(CASES, "IEEE118", "data.zip"))
        line = w["line"]
        off = rng.random(len(line)) < 0.08
        if off.any():
            w.set_values("line", line.ids[off], "in_service", False)
        g = gt.PowerGrid(world=w)
        g._engine.prepare()
        e = g._engine
        nb = e.topo.nb
        v = (1 + 0.1 * rng.standard_normal(nb)) * np.exp(1j * rng.uniform(-1, 1, nb))
        v[rng.random(nb) < (0.05 if trial % 4 else 0.6)] = np.nan
        if trial % 5 == 0:
            v[rng.integers(nb)] = complex(np.inf, 0.0)
        if trial % 13 == 7:  # nothing known: no supplied bus can be reached
            v[:] = np.nan
        e._v_prev = v
        ref = RS.previous_voltage(e, nb)
        got = S.after_topology_change(e)
        if ref is None:
            assert got is None
            seen_none += 1
            continue
        ref = RS.pin(e, ref)
        assert got.dtype == ref.dtype and np.allclose(got, ref, rtol=0, atol=1e-14)
        seen_fill += bool(np.isnan(v).any())
    assert seen_fill >= 10 and seen_none >= 2
    e._v_prev = np.ones(nb + 1, complex)
    assert S.after_topology_change(e) is None  # another bus count


def _dc_angles_scipy(e, va0):
    """The engine's former dc_angles (scipy sparse B), the reference of Engine.dc_angles."""
    from scipy.sparse import csr_matrix

    from gridtape.solver_cy.newton import dc_solve

    topo, inj = e.topo, e.inj
    br = topo.branches
    on = br.status
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(on, 1.0 / br.x, 0.0) / br.ratio
    b[~on] = 0.0
    f, t = br.f.astype(np.int64), br.t.astype(np.int64)
    nb = topo.nb
    B = csr_matrix((np.concatenate([b, -b, -b, b]), (np.concatenate([f, f, t, t]), np.concatenate([f, t, f, t]))),
                   shape=(nb, nb))
    B.sum_duplicates()
    pfinj = b * (-np.deg2rad(br.shift_deg))
    pbusinj = np.zeros(nb)
    np.add.at(pbusinj, f, pfinj)
    np.add.at(pbusinj, t, -pfinj)
    p = (inj.s0 + inj.si + inj.sz).real - pbusinj - e.ysh.real
    active = topo.bus_type != M.NONE
    if (~active).any():
        d = np.where(active, 0.0, 1.0)
        B = (B + csr_matrix((d, (np.arange(nb), np.arange(nb))), shape=(nb, nb))).tocsr()
        p = np.where(active, p, 0.0)
    B.sort_indices()
    va = va0.copy()
    if not dc_solve(B.indptr.astype(np.int32), B.indices.astype(np.int32), B.data.astype(float), p,
                    topo.ref.astype(np.int32), va):
        return va0
    va[~active] = va0[~active]
    return va


@pytest.mark.parametrize("case", ["IEEE118", "IEEE300"])
def test_dc_angles_on_the_ybus_pattern_equal_the_sparse_reference(case):
    """Engine.dc_angles (B on the Ybus pattern) gives the scipy-assembled B's angles, with lines
    switched off, buses left unsupplied (type NONE) and phase-shifting transformers."""
    import gridtape as gt

    rng = np.random.default_rng(5)
    nones = 0
    for trial in range(12):
        w = load_case(os.path.join(CASES, case, "data.zip"))
        line = w["line"]
        off = rng.random(len(line)) < 0.05
        if trial % 3 == 0:  # every line of one bus off: that bus (and what hangs on it) unsupplied
            b = int(line.cols["to_bus"][rng.integers(len(line))])
            off |= (line.cols["from_bus"] == b) | (line.cols["to_bus"] == b)
        if off.any():
            w.set_values("line", line.ids[off], "in_service", False)
        tr = w["trafo"]
        if len(tr) and trial % 2:
            w.set_value("trafo", int(tr.ids[0]), "shift_degree", float(rng.uniform(-10, 10)))
        g = gt.PowerGrid(world=w)
        g._engine.prepare()
        e = g._engine
        nones += int((e.topo.bus_type == M.NONE).any())
        va0 = np.deg2rad(np.where(np.isnan(e.inj.va_set), 0.0, e.inj.va_set)) + rng.uniform(-0.1, 0.1, e.topo.nb)
        got, ref = e.dc_angles(va0), _dc_angles_scipy(e, va0)
        assert np.allclose(got, ref, rtol=0, atol=1e-10)
        assert not np.allclose(got, va0)
    assert nones >= 2


def test_a_dangling_bus_reference_is_named_not_fallen_back_on():
    """The kernel is the only implementation: a column it refuses is named (table, row, field)."""
    from gridtape.errors import BadReferenceError

    w = load_case(os.path.join(CASES, "IEEE14", "data.zip"))
    w.write_rows("load", np.array([2]), "bus", np.array([999], np.int64))  # trusted write: not checked
    with pytest.raises(BadReferenceError) as e:
        M.build_topology(w)
    assert e.value.table == "load" and e.value.field == "bus" and e.value.row == int(w["load"].ids[2])
