"""The time machine: points of history, snapshots in the journal, diff/apply, blame, branch, bisect."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import gridtape as gt
from gridtape.errors import JournalError, ReadOnlyError, SchemaError, SnapshotCorruptError, SnapshotFallbackWarning
from gridtape.replay import read_snapshot

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASE = lambda name: os.path.join(ROOT, "cases", name, "data.zip")  # noqa: E731


def build_history(path, snapshot_every=None):
    """A small study on IEEE14: returns the grid and {seq: world copy} at each point."""
    grid = gt.PowerGrid(CASE("IEEE14"), journal=path, author="ann")
    points = {grid.journal.last_seq: grid.world.copy()}
    rng = np.random.default_rng(7)
    loads = grid.world["load"].ids
    for k in range(12):
        grid.element("load", int(loads[k % len(loads)])).p_mw = float(rng.uniform(5, 40))
        if k % 4 == 1:
            with grid.edit(author="bob", message=f"bus {k}") as e:
                b, _ = e.add_bus(20.0)
                e.add_load(b, p_mw=1.0)
                e.add_line(from_bus=int(grid.world["bus"].ids[0]), to_bus=b, length_km=1.0, r_ohm_per_km=0.1,
                           x_ohm_per_km=0.3)
        grid.solve()
        if snapshot_every and k % snapshot_every == 0:
            grid.snapshot(message=f"snap {k}")
        if k == 6:
            grid.tag("middle")
        grid.flush()
        points[grid.journal.last_seq] = grid.world.copy()
    return grid, points


def test_at_every_point_gives_that_world(tmp_path):
    grid, points = build_history(tmp_path / "s.duckdb", snapshot_every=3)
    grid.close()
    study = gt.open(tmp_path / "s.duckdb")
    for seq, world in points.items():
        g = study.at(seq)
        assert g.world.equals(world), seq
        assert g.solve().converged
        with pytest.raises(ReadOnlyError):
            g.load(bus=2).p_mw = 1.0
    tagged = study.at(tag="middle")
    assert tagged.world.equals(points[min(s for s in points if s >= tagged.study_seq)])
    log = study.log()
    t = log.time.iloc[len(log) // 2]
    assert study.at(time=t).world.equals(study.at(int(log[log.time <= t].seq.iloc[-1])).world)
    # without snapshots the same worlds come out of the events alone
    from gridtape.replay.materialize import materialize

    for seq, world in points.items():
        assert materialize(study.journal, seq, use_snapshots=False)[0].equals(world)
    study.close()


def test_points_and_tags_refuse_what_names_no_point(tmp_path):
    path = tmp_path / "s.duckdb"
    grid, points = build_history(path)  # tags "middle"
    n = len(grid.log())
    for bad in ("", "   ", None, 7):
        with pytest.raises(SchemaError) as e:
            grid.tag(bad)
        assert e.value.field == "tag"
    with pytest.raises(JournalError, match="already exists") as e:  # no silent move (git refuses too)
        grid.tag("middle")
    assert e.value.field == "tag" and len(grid.log()) == n  # nothing recorded
    grid.close()
    with gt.open(path) as study:
        middle = study.seq_of(tag="middle")
        for bad in ("abc", 2.5, True, [3]):
            with pytest.raises(SchemaError) as e:
                study.at(bad)
            assert e.value.field == "seq"
        with pytest.raises(SchemaError, match="tag="):
            study.at("middle")  # a tag goes by tag=
        seq = sorted(points)[2]
        assert study.at(float(seq)).world.equals(points[seq]) and study.at(np.int64(seq)).study_seq == seq
        assert study.at(tag="middle").study_seq == middle


def test_corrupt_snapshot_falls_back(tmp_path):
    grid, points = build_history(tmp_path / "s.duckdb", snapshot_every=2)
    snapdir = grid.snapshots
    grid.close()
    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(snapdir) for f in fs if f.endswith(".parquet"))
    assert files
    victim = files[len(files) // 2]
    data = bytearray(open(victim, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(victim, "wb").write(bytes(data))
    sid = os.path.basename(os.path.dirname(victim))
    with pytest.raises(SnapshotCorruptError) as ei:
        read_snapshot(snapdir, sid)
    assert os.path.basename(victim) in str(ei.value.file)
    study = gt.open(tmp_path / "s.duckdb")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for seq, world in points.items():
            assert study.at(seq).world.equals(world)
    fell = [w.message for w in caught if isinstance(w.message, SnapshotFallbackWarning)]
    assert fell and all("unusable" in str(m) for m in fell)
    assert {m.snapshot for m in fell} == {sid} and all(isinstance(m.error, SnapshotCorruptError) for m in fell)
    assert all(os.path.samefile(m.file, snapdir) for m in fell)
    row = fell[0].row  # the damaged snapshot's event: the point after it is built past it
    after = min(s for s in points if s >= row)  # (only a tag may come between)
    with warnings.catch_warnings():  # filtered by its class, as users do
        warnings.simplefilter("error", SnapshotFallbackWarning)
        with pytest.raises(SnapshotFallbackWarning):
            study.at(after)
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", SnapshotFallbackWarning)
        assert study.at(after).world.equals(points[after])
    study.close()


def test_diff_apply_blame_and_parquet_case(tmp_path):
    a = gt.PowerGrid(CASE("IEEE30"))
    b = gt.PowerGrid(CASE("IEEE30"))
    b.load(bus=int(b.world["load"].cols["bus"][0])).p_mw = 77.0
    with b.edit() as e:
        e.remove(b.line(int(b.world["line"].cols["from_bus"][3]), int(b.world["line"].cols["to_bus"][3])))
        nb, _ = e.add_bus(33.0)
        e.add_load(nb, p_mw=2.0)
    d = gt.diff(a, b)
    assert set(d.change) == {"set", "add", "remove"}
    a.apply(d)
    assert a.world.equals(b.world)
    assert len(gt.diff(a, b)) == 0
    a.solve(), b.solve()
    assert np.nanmax(np.abs(gt.diff(a, b, results=True).get("delta", [0.0]))) < 1e-9
    # parquet case round trip, recorded as a load
    blob = b.get_parquet_case()
    c = gt.PowerGrid(CASE("IEEE14"))
    c.load_parquet_case(blob)
    assert c.world.equals(b.world) and c.log().event.iloc[-1] in ("commit", "load")
    res = b.get_parquet_results()
    from gridtape.replay import results_from_zip_bytes

    back = results_from_zip_bytes(res)
    assert np.allclose(back["res_bus"].vm_pu.to_numpy(), b.res_bus.vm_pu.to_numpy(), equal_nan=True)
    # blame
    path = tmp_path / "b.duckdb"
    g = gt.PowerGrid(CASE("IEEE14"), journal=path, author="carl")
    lid = g.load(bus=2).id
    with g.edit(author="dora", message="raise load 2") as e:
        g.load(bus=2).p_mw = 40.0
    g.load(bus=3).p_mw = 1.0
    g.close()
    with gt.open(path) as study:
        who = study.blame("load", lid, "p_mw")
        assert who.author == "dora" and who.message == "raise load 2" and who.new == 40.0


def test_branch(tmp_path):
    path = tmp_path / "main.duckdb"
    grid, points = build_history(path)
    grid.close()
    study = gt.open(path, read_only=False)
    seq = sorted(points)[3]
    br = study.branch(seq, "whatif")
    assert br.world.equals(points[seq])
    br.load(bus=2).p_mw = 5.0
    assert br.solve().converged
    br.close()
    rows = study.branches()
    assert list(rows.name) == ["whatif"] and int(rows.seq.iloc[0]) == seq
    with gt.open(rows.path.iloc[0]) as b:
        assert b.log().event.iloc[0] == "load" and b.journal.verify() > 0
    study.close()


def test_bisect_finds_the_edit_that_breaks_convergence(tmp_path):
    """case2869pegase: loads are raised step by step; bisect finds the first step that diverges
    (checked against solving every point)."""
    path = tmp_path / "pegase.duckdb"
    grid = gt.PowerGrid(CASE("PEGASE2869"), journal=path, author="eve")
    ids = grid.world["load"].ids
    p0 = grid.world["load"].cols["p_mw"].copy()
    q0 = grid.world["load"].cols["q_mvar"].copy()
    factors = [1.0 + 0.25 * k for k in range(1, 9)]
    for f in factors:
        with grid.edit(message=f"scale loads x{f:.2f}") as e:
            e.set("load", ids, "p_mw", p0 * f)
            e.set("load", ids, "q_mvar", q0 * f)
        grid.solve()
    grid.close()
    with gt.open(path) as study:
        res = study.bisect()
        pts = study.points()
        truth = [study.at(int(s)).solve().converged for s in pts]
    assert truth[0] and not truth[-1]
    first_bad = int(pts[truth.index(False)])
    assert res is not None and res.seq == first_bad
    assert res.message.startswith("scale loads") and set(res.diff.field.dropna()) == {"p_mw", "q_mvar"}
    assert res.materializations <= 2 + int(np.ceil(np.log2(len(pts))))
    # the command line prints the same event
    out = subprocess.run([sys.executable, "-m", "gridtape.cli", "bisect", str(path)], capture_output=True, text=True,
                         cwd=tmp_path)  # not the repository root: its gridtape/ must not shadow the installed one
    assert out.returncode == 1, out.stderr  # 1: a breaking transaction was found (docs/cli.md)
    assert f"seq {first_bad}" in out.stdout and res.message in out.stdout


def test_bisect_finds_a_divergence_that_a_later_edit_fixed(tmp_path):
    """The history converges at its end (a later edit fixed the case): bisect still finds the edit
    that broke it, from the recorded solve that diverged -- checked against solving every point --
    and says honestly when it has no point where the predicate fails."""
    path = tmp_path / "fixed.duckdb"
    g = gt.PowerGrid(CASE("IEEE118"), journal=path, author="bob")
    g.solve()
    with g.edit(message="more load at bus 2") as e:
        e.set("load", g.world["load"].ids[:1], "p_mw", float(g.world["load"].cols["p_mw"][0]) + 1.0)
    g.solve()
    with g.edit(message="data centre 320 MW") as e:
        dc, _ = e.add_load(85, p_mw=320.0, q_mvar=64.0)
    assert not g.solve().converged
    with g.edit(message="data centre 160 MW") as e:
        e.set("load", [dc], "p_mw", 160.0)
    assert g.solve().converged
    g.close()
    with gt.open(path) as study:
        pts = study.points()
        truth = [study.at(int(s)).solve().converged for s in pts]
        assert truth[0] and truth[-1] and not all(truth)  # fails in the middle only
        res = study.bisect()
        assert res is not None and res.message == "data centre 320 MW"
        assert res.seq == int(pts[truth.index(False)])
        # any predicate: the recorded divergence is a candidate, checked with the predicate itself
        res2 = study.bisect(lambda gr: gr.solve().converged and len(gr.world["load"]) < 1000)
        assert res2 is not None and res2.seq == res.seq
        # a predicate that holds at the recorded divergence: nothing to bisect, and bisect says so
        assert study.bisect(lambda gr: len(gr.world["load"]) < 1000) is None
        assert study.bisect(hi=int(pts[1])) is None  # the range ends before the divergence
    out = subprocess.run([sys.executable, "-m", "gridtape.cli", "bisect", str(path)], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 1 and "data centre 320 MW" in out.stdout, out.stderr
    out = subprocess.run([sys.executable, "-m", "gridtape.cli", "bisect", str(path), "--hi", str(int(pts[1]))],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0 and "not all checked" in out.stdout and "holds at every point" not in out.stdout, out.stdout
