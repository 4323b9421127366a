"""Property-based tests of edit sequences, written on gridtape.testing (the library eats its own
cooking): whatever the sequence of writes, edits, solves, undos and redos,

1. the incremental / admittance / full re-solve gives the voltages of a fresh solve of the same
   world (1e-9 p.u.);
2. replaying the journal gives the live world exactly;
3. undoing every transaction gives the loaded case back (and redoing them the live world);
4. an edit block that raises leaves the world as it was (ids, row order, next ids).

tests/test_testing_fault.py shows these properties fail, shrunk, when a cache goes stale.
"""
import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gridtape.testing import (assert_incremental_equals_fresh, assert_replay_equals_live, assert_undo_restores,
                              case_grid, case_path, case_world, edit_sequences, edits, play, run_in, writes)
from gridtape.testing.invariants import world_diff_text

CASES = ("IEEE14", "IEEE30", "IEEE57")
TOL = 1e-11
SETTINGS = settings(max_examples=30, deadline=None, database=None,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def every_invariant(grid, base):
    assert_incremental_equals_fresh(grid, tol=1e-9)
    assert_replay_equals_live(grid)
    assert_undo_restores(grid, base)
    assert grid.journal.verify() > 0


@SETTINGS
@given(case=st.sampled_from(CASES), data=st.data())
def test_incremental_equals_fresh_and_journal_replays(case, data):
    grid = case_grid(case, tolerance_mva=TOL)
    assert grid.solve().converged  # later solves start from this one's caches
    seq = data.draw(edit_sequences(grid, max_size=10, in_service=True), label="steps")
    play(grid, seq, at_end=lambda g: every_invariant(g, case_world(case)))
    grid.close()


def _strict_same(before, after):
    text = world_diff_text(before, after)
    assert not text, text
    for kind, t in before.tables.items():
        assert np.array_equal(t.ids, after[kind].ids), f"{kind}: row order changed"
        assert t.next_id == after[kind].next_id, f"{kind}: next_id changed"


@settings(SETTINGS, max_examples=25)
@given(case=st.sampled_from(CASES), data=st.data())
def test_an_edit_block_that_raises_leaves_nothing(case, data):
    grid = case_grid(case, journal=False)
    play(grid, data.draw(edit_sequences(grid, max_size=4, weights={"write": 2, "edit": 2}), label="before"))
    block = data.draw(st.lists(st.one_of(edits(grid), writes(grid)), min_size=1, max_size=3), label="block")
    before = grid.world.copy()
    try:
        with grid.edit(message="fails") as e:
            for step in block:  # the drawn edits and writes, inside one block (ids drawn before it)
                try:
                    for c in step if isinstance(step, list) else [step]:
                        run_in(e, c)
                except LookupError:  # a later step names an element an earlier one removed
                    pass
            raise KeyError("abandon")
    except KeyError:
        pass
    _strict_same(before, grid.world)


def test_a_bus_nominal_voltage_write_solves_like_a_fresh_grid():
    """vn_kv sets the per-unit base of everything on the bus: the re-solve must not keep the old one."""
    from gridtape import PowerGrid

    g = PowerGrid(case_path("IEEE14"), journal=False)
    assert g.solve().converged
    b = g.bus(5)
    b.vn_kv = b.vn_kv * 1.1
    assert_incremental_equals_fresh(g)
    fresh = PowerGrid(world=g.world.copy(), journal=False)
    fresh.solve()
    assert np.allclose(g.res_line.i_ka.values, fresh.res_line.i_ka.values, rtol=0, atol=1e-9)


def test_infinite_reactive_limits_split_q_into_finite_shares():
    from gridtape import PowerGrid

    g = PowerGrid(case_path("IEEE14"), journal=False)
    gens = g.world["gen"]
    bus, vm = int(gens.cols["bus"][0]), float(gens.cols["vm_pu"][0])
    with g.edit() as e:
        e.add_gen(bus=bus, p_mw=5.0, vm_pu=vm, min_q_mvar=float("-inf"), max_q_mvar=float("inf"))
    assert g.solve().converged
    q = g.res_gen.q_mvar
    assert np.isfinite(q.values).all()
    at_bus = g.res_gen.index[np.isin(g.res_gen.index, g.world["gen"].ids[g.world["gen"].cols["bus"] == bus])]
    loads = g.world["load"]
    q_load = loads.cols["q_mvar"][(loads.cols["bus"] == bus) & loads.cols["in_service"]].sum()
    assert abs(q.loc[at_bus].sum() - (q_load - g.res_bus.q_mvar.loc[bus])) < 1e-6
