"""gridtape.testing's strategies draw what they promise: writes within the schema's bounds, edits
that keep ids valid (and the grid connected when asked), sequences whose printed code does what
running them does, networks that converge and vary, profiles of the asked shape."""
import collections
import sys

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gridtape.testing import (EditBlock, case_grid, connected, edit_sequences, edits, networks, profiles, run,
                              to_code, writes)
from gridtape.world.changes import SetCol
from gridtape.world.schema import spec

FAST = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))


@FAST
@given(data=st.data())
def test_writes_stay_within_the_schema_and_apply(data):
    grid = case_grid("IEEE30", journal=False)
    c = data.draw(writes(grid, in_service=True))
    assert isinstance(c, SetCol) and len(c.ids) >= 1
    col = spec(c.kind)[c.field]
    if col.dtype == "float64":
        v = np.asarray(c.values, float)
        assert np.isfinite(v).all() and (v >= col.vmin).all() and (v <= col.vmax).all()
    else:
        assert c.field == "in_service" and c.kind != "ext_grid"
    run(grid, c)
    assert np.array_equal(grid.world[c.kind].cols[c.field][grid.world[c.kind].rows(c.ids)], c.values)


@FAST
@given(data=st.data())
def test_writes_honour_kinds_and_fields(data):
    grid = case_grid("IEEE14", journal=False)
    c = data.draw(writes(grid, kinds=["gen"], fields=["vm_pu"]))
    assert (c.kind, c.field) == ("gen", "vm_pu")
    old = grid.world["gen"].cols["vm_pu"][grid.world["gen"].rows(c.ids)]
    assert np.all(np.abs(np.asarray(c.values) / old - 1) <= 0.03 + 1e-12)


@FAST
@given(data=st.data())
def test_edits_keep_the_grid_connected_when_asked(data):
    grid = case_grid("IEEE14", journal=False)
    for _ in range(3):
        block = data.draw(edits(grid, keep_connected=True))
        assert isinstance(block, EditBlock) and len(block)
        run(grid, block)
        assert connected(grid.world)
    assert grid.solve().converged


@FAST
@given(data=st.data())
def test_printed_code_does_what_running_does(data):
    a = case_grid("IEEE14", journal=False)
    b = case_grid("IEEE14", journal=False)
    seq = data.draw(edit_sequences(a, max_size=8))
    run(a, seq)
    exec(compile(to_code(seq, "g"), "drawn", "exec"), {"g": b})
    assert a.world.equals(b.world)


def test_networks_converge_and_vary():
    seen = []

    @settings(max_examples=200, deadline=None, database=None, derandomize=True, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(g=networks(3, 12))
    def draw(g):
        w = g.world
        assert g.converged and connected(w)
        assert len(w["ext_grid"]) == 1 and 3 <= len(w["bus"]) <= 12
        vm = g.res_bus.vm_pu.to_numpy()
        assert np.all((vm > 0.8) & (vm < 1.2))
        loops = len(w["line"]) + len(w["trafo"]) - (len(w["bus"]) - 1)
        seen.append((len(w["bus"]), loops, len(w["trafo"]), len(w["gen"])))

    draw()
    assert len(seen) == 200
    sizes = collections.Counter(s[0] for s in seen)
    assert len(sizes) >= 8  # most sizes of 3..12 occur
    assert any(s[1] == 0 for s in seen) and any(s[1] >= 2 for s in seen)  # radial and meshed
    assert any(s[2] for s in seen) and any(s[3] for s in seen)  # transformers, PV buses


@FAST
@given(g=networks(4, 8, meshed=True, with_trafos=True))
def test_networks_options_are_honoured(g):
    w = g.world
    assert len(w["trafo"]) >= 1 and len(w["line"]) + len(w["trafo"]) >= len(w["bus"])


@FAST
@given(data=st.data())
def test_profiles_have_the_asked_shape_and_run(data):
    grid = case_grid("IEEE14", journal=False)
    prof = data.draw(profiles(grid, 6))
    ids, vals = prof[("load", "p_mw")]
    assert vals.shape == (6, len(grid.world["load"])) and np.isfinite(vals).all()
    prof.run(grid, 5)
    assert np.array_equal(grid.world["load"].cols["p_mw"], vals[5])
    assert grid.solve().converged


def test_the_plugin_gives_cases_and_takes_a_seed(tmp_path):
    import os
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    test = tmp_path / "test_user.py"
    test.write_text(
        "from hypothesis import given, settings\n"
        "from gridtape.testing import writes, run\n"
        "def test_case(gt_case, gt_seed, gt_rng):\n"
        "    g = gt_case('IEEE14')\n"
        "    assert g.solve().converged and gt_seed == 7 and 0 <= gt_rng.random() < 1\n"
        "@settings(max_examples=3, deadline=None)\n"
        "@given(data=__import__('hypothesis').strategies.data())\n"
        "def test_write(gt_case, data):\n"
        "    g = gt_case('IEEE14')\n"
        "    run(g, data.draw(writes(g)))\n")
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--gridtape-seed=7",
                          str(test)], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env={**os.environ, "GRIDTAPE_CASES": os.path.join(root, "cases")})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "2 passed" in out.stdout


def test_the_settings_profiles_exist():
    from gridtape.testing import PROFILES

    ci, thorough = settings.get_profile("gridtape-ci"), settings.get_profile("thorough")
    assert ci.derandomize and ci.deadline is None and Phase.explain not in ci.phases
    assert thorough.max_examples == PROFILES["thorough"]["max_examples"] > ci.max_examples


def test_the_sequence_model_never_reuses_an_undone_id():
    """The live grid never reuses ids (an undone add keeps its id taken): the model the strategies
    draw against must predict the same ids, or a later write names an element that is not there
    (hypothesis found: add load, undo, add, add, set loads 0..12 -> 'no load with id 11')."""
    import gridtape as gt
    from gridtape.testing.runner import UNDO, EditBlock, Sim, run
    from gridtape.world.changes import AddRows

    from pathlib import Path

    grid = gt.PowerGrid(str(Path(__file__).resolve().parent.parent / "cases" / "IEEE14" / "data.zip"))
    sim = Sim(grid.world)
    block = EditBlock([AddRows("load", {"bus": [0], "p_mw": [0.0], "q_mvar": [0.0]})], message="add")
    for step in (block, UNDO, block, block):
        sim.step(step)
        run(grid, step)
    assert list(sim.world["load"].ids) == list(grid.world["load"].ids)
    assert sim.world["load"].next_id == grid.world["load"].next_id
