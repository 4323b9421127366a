"""Warm incremental solves that start from the previous solve's LU factors (chord steps).

The answer must be the one full Newton gives (same tolerance), a stale factorization must hand
over to Newton instead of wandering off, and ``reuse_lu=False`` must be plain Newton."""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridtape import PowerGrid

CASES = Path(__file__).resolve().parents[1] / "cases"
IEEE14, IEEE118 = CASES / "IEEE14" / "data.zip", CASES / "IEEE118" / "data.zip"


def _pair(case, **kw):
    a = PowerGrid(str(case), journal=False, tolerance_mva=1e-10, **kw)
    b = PowerGrid(str(case), journal=False, tolerance_mva=1e-10, reuse_lu=False, **kw)
    assert a.reuse_lu and not b.reuse_lu
    assert a.solve().converged and b.solve().converged
    return a, b


def _solver(grid):
    eng = grid._engine
    return eng._newton(eng.topo.pv, eng.topo.pq, None)


def test_small_load_change_reuses_the_factors_and_matches_newton():
    a, b = _pair(IEEE118)
    sa, sb = _solver(a), _solver(b)
    ref_a, ref_b = sa.n_refactor + sa.n_factor, sb.n_refactor + sb.n_factor
    for p in (50.0, 50.5, 51.0, 49.0):
        for g in (a, b):
            g.load(bus=5).p_mw = p
        ra, rb = a.solve(), b.solve()
        assert ra.converged and rb.converged and ra.rebuild == rb.rebuild == "incremental"
        assert rb.iterations <= 3  # plain Newton, as pandapower
        assert np.max(np.abs(a.v - b.v)) < 1e-9
    assert sa.n_refactor + sa.n_factor == ref_a  # no Jacobian was factored again
    assert sa.n_reused >= 4
    assert sb.n_reused == 0 and sb.n_refactor + sb.n_factor > ref_b


def test_stale_factors_hand_over_to_newton():
    """A factorization from a very different operating point: the chord steps stop helping, the
    solve falls back to Newton and still lands on Newton's answer."""
    a, b = _pair(IEEE118)
    loads = a.world["load"].ids
    p0 = a.world["load"].cols["p_mw"].copy()
    for g in (a, b):
        g.set("load", "p_mw", loads, p0 * 1.6)  # heavy: the Jacobian changes a lot
    ra, rb = a.solve(), b.solve()
    assert ra.converged and rb.converged
    assert np.max(np.abs(a.v - b.v)) < 1e-9
    s = _solver(a)
    before = s.n_refactor + s.n_factor
    for g in (a, b):
        g.set("load", "p_mw", loads, p0 * 0.4)  # and back to light load in one jump
    ra, rb = a.solve(), b.solve()
    assert ra.converged and rb.converged
    assert np.max(np.abs(a.v - b.v)) < 1e-9
    assert s.n_refactor + s.n_factor > before  # it had to refactor
    assert s.chord_backoff >= 1  # and, having been led astray, skips the next attempts for a while
    waiting = s.chord_wait
    reused = s.n_reused
    for k in range(waiting):
        for g in (a, b):
            g.set("load", loads, "p_mw", p0 * (0.4 + 0.001 * (k + 1)))
        assert a.solve().converged and b.solve().converged
        assert np.max(np.abs(a.v - b.v)) < 1e-9
    assert s.chord_wait == 0 and s.n_reused == reused  # no chord step while waiting


def test_divergence_is_reported_alike():
    a, b = _pair(IEEE14)
    loads = a.world["load"].ids
    p0 = a.world["load"].cols["p_mw"].copy()
    for g in (a, b):
        g.set("load", "p_mw", loads, p0 * 8.0)  # far beyond the nose of the PV curve
    ra, rb = a.solve(), b.solve()
    assert not ra.converged and not rb.converged
    for g in (a, b):
        g.set("load", "p_mw", loads, p0)
    ra, rb = a.solve(init="auto"), b.solve(init="auto")
    assert ra.converged and rb.converged
    assert np.max(np.abs(a.v - b.v)) < 1e-9


def test_switching_reuse_off_is_plain_newton():
    a, b = _pair(IEEE118)
    a.reuse_lu = False
    for p in (60.0, 70.0):
        for g in (a, b):
            g.load(bus=5).p_mw = p
        ra, rb = a.solve(), b.solve()
        assert ra.iterations == rb.iterations and ra.mismatch == rb.mismatch
        assert np.array_equal(a.v, b.v)


_WRITE = st.tuples(st.sampled_from(["load_p", "load_q", "gen_p", "gen_vm", "sgen_p"]),
                   st.integers(0, 10_000), st.floats(0.7, 1.3))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_WRITE, min_size=1, max_size=4), min_size=1, max_size=6))
def test_random_injection_writes_agree_with_newton(steps):
    a, b = _pair(IEEE14)
    for writes in steps:
        for what, k, f in writes:
            for g in (a, b):
                w = g.world
                if what.startswith("load"):
                    kind, col = "load", "p_mw" if what == "load_p" else "q_mvar"
                elif what == "sgen_p" and len(w["sgen"]):
                    kind, col = "sgen", "p_mw"
                else:
                    kind, col = "gen", "vm_pu" if what == "gen_vm" else "p_mw"
                t = w[kind]
                eid = int(t.ids[k % len(t.ids)])
                old = float(t.cols[col][t.positions[eid]])
                g.set(kind, col, [eid], [old * f if col != "vm_pu" else 1.0 + (old - 1.0) * f])
        ra, rb = a.solve(), b.solve()
        assert ra.converged == rb.converged
        if ra.converged:
            assert np.max(np.abs(a.v - b.v)) < 1e-9
        else:
            for g in (a, b):
                assert g.solve(init="auto").converged


def test_slow_chord_contraction_hands_over_before_the_iteration_budget():
    """IEEE57, a generator set-point step, tolerance 1e-11: the chord steps contract about 12x
    each, which would need ten of them (the whole budget).  The solver must see that coming and
    finish with Newton."""
    case = CASES / "IEEE57" / "data.zip"
    a = PowerGrid(str(case), journal=False, tolerance_mva=1e-11)
    b = PowerGrid(str(case), journal=False, tolerance_mva=1e-11, reuse_lu=False)
    assert a.solve().converged and b.solve().converged
    gid = int(a.world["gen"].ids[1])
    for g in (a, b):
        g.element("gen", gid).vm_pu = 1.0390625
    ra, rb = a.solve(), b.solve()
    assert ra.converged and rb.converged
    assert ra.iterations <= rb.iterations + 2
    assert np.max(np.abs(a.v - b.v)) < 1e-9
