"""Automatic checkpoints written in a background thread: the snapshot holds the world at the seq
it covers, the journal event is recorded by the grid's thread, close() waits, failures warn."""
import gc
import json
import os
import tempfile
import threading

import numpy as np
import pytest

import gridtape as gt
from gridtape.errors import CheckpointWarning
from gridtape.replay import read_snapshot, snapshot as snapshot_mod
from gridtape.replay.codec import same_world
from gridtape.replay.study import _resolve, materialize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASE = os.path.join(ROOT, "cases", "IEEE14", "data.zip")
REAL_WRITE = snapshot_mod.write_snapshot


def snapshot_events(path):
    """[(event seq, info dict)] of a closed journal, and the study (caller closes it)."""
    study = gt.open(path)
    log = study.log(event="snapshot")
    return [(int(s), json.loads(i)) for s, i in zip(log["seq"], log["info"])], study


def snapshot_world(study, info):
    world, m = read_snapshot(_resolve(info["dir"], study.path), info["id"])
    assert m.seq == info["covers"]
    return world


def step(grid, rng, k):
    """One step of a small study: a load write (sometimes two, sometimes an added bus) and a solve."""
    loads = grid.world["load"].ids
    grid.element("load", int(loads[k % len(loads)])).p_mw = float(rng.uniform(5, 40))
    if k % 7 == 3:
        grid.element("load", int(loads[(k + 3) % len(loads)])).q_mvar = float(rng.uniform(0, 9))
    if k % 23 == 5:
        with grid.edit(message=f"bus {k}") as e:
            b, _ = e.add_bus(20.0)
            e.add_load(b, p_mw=1.0)
            e.add_line(from_bus=int(grid.world["bus"].ids[0]), to_bus=b, length_km=1.0, r_ohm_per_km=0.1,
                       x_ohm_per_km=0.3)
    grid.solve()


def test_checkpoints_hold_the_world_at_covers(tmp_path):
    path = tmp_path / "s.duckdb"
    grid = gt.PowerGrid(CASE, journal=path, checkpoint_every=50)
    points = {}
    rng = np.random.default_rng(3)
    for k in range(240):
        step(grid, rng, k)
        points[grid.journal.last_seq] = grid.world.copy()
        if k % 40 == 39:
            grid.wait_checkpoint()  # let some complete mid-study (others are recorded later or at close)
    head = grid.world.copy()
    grid.close()
    events, study = snapshot_events(path)
    try:
        assert len(events) >= 4
        parents = set()
        for seq, info in events:
            assert info["covers"] < seq  # recorded after the write, never before
            world = snapshot_world(study, info)
            assert same_world(world, materialize(study.journal, info["covers"], use_snapshots=False)[0])
            if info["covers"] in points:  # covers is a solve event: the world right after that solve
                assert same_world(world, points[info["covers"]])
            parents.add(read_snapshot(_resolve(info["dir"], study.path), info["id"])[1].parent)
        assert len(parents) == len(events)  # each checkpoint names the previous one as its parent
        # replay through the snapshots gives the worlds the events give
        for seq in sorted(points)[::17] + [study.head]:
            assert same_world(materialize(study.journal, seq)[0], materialize(study.journal, seq,
                                                                               use_snapshots=False)[0])
        assert materialize(study.journal)[0].equals(head)
        assert study.journal.verify() == study.head + 1
    finally:
        study.close()


def slow_writer(started, release, calls):
    def write(world, directory, **kw):
        calls.append(kw["seq"])
        started.set()
        assert release.wait(30)
        return REAL_WRITE(world, directory, **kw)

    return write


def test_world_written_is_the_one_at_covers_while_edits_go_on(tmp_path, monkeypatch):
    started, release, calls = threading.Event(), threading.Event(), []
    monkeypatch.setattr(snapshot_mod, "write_snapshot", slow_writer(started, release, calls))
    path = tmp_path / "s.duckdb"
    grid = gt.PowerGrid(CASE, journal=path, checkpoint_every=50)
    rng = np.random.default_rng(5)
    points = {}
    k = 0
    while not started.is_set():
        step(grid, rng, k)
        points[grid.journal.last_seq] = grid.world.copy()
        k += 1
    for _ in range(150):  # three more intervals' worth of events while the first write is held
        step(grid, rng, k)
        k += 1
    assert len(calls) == 1  # one checkpoint in flight at most: the later ones wait
    covers = calls[0]
    release.set()
    grid.close()
    events, study = snapshot_events(path)
    try:
        assert [info["covers"] for _, info in events] == [covers]
        world = snapshot_world(study, events[0][1])
        assert same_world(world, points[covers])
        assert not same_world(world, grid.world)  # the live world moved on; the snapshot did not
        assert same_world(materialize(study.journal)[0], grid.world)
    finally:
        study.close()


def test_next_checkpoint_is_taken_after_the_one_in_flight(tmp_path, monkeypatch):
    started, release, calls = threading.Event(), threading.Event(), []
    monkeypatch.setattr(snapshot_mod, "write_snapshot", slow_writer(started, release, calls))
    grid = gt.PowerGrid(CASE, journal=tmp_path / "s.duckdb", checkpoint_every=50)
    rng = np.random.default_rng(6)
    k = 0
    while not started.is_set():
        step(grid, rng, k)
        k += 1
    for _ in range(60):
        step(grid, rng, k)
        k += 1
    release.set()
    first = grid.wait_checkpoint()
    assert first is not None and first.seq == calls[0]
    step(grid, rng, k)  # overdue: starts at once
    second = grid.wait_checkpoint()
    assert len(calls) == 2 and calls[1] > calls[0]
    assert second.seq == calls[1] and second.parent == first.snapshot_id
    grid.close()


def test_close_waits_for_the_write_and_records_it(tmp_path, monkeypatch):
    started, release, calls = threading.Event(), threading.Event(), []
    monkeypatch.setattr(snapshot_mod, "write_snapshot", slow_writer(started, release, calls))
    path = tmp_path / "s.duckdb"
    grid = gt.PowerGrid(CASE, journal=path, checkpoint_every=50)
    rng = np.random.default_rng(8)
    k = 0
    while not started.is_set():
        step(grid, rng, k)
        k += 1
    assert grid.journal.log(event="snapshot").empty  # still being written: nothing recorded yet
    threading.Timer(0.2, release.set).start()
    grid.close()  # blocks until the writer is released and done
    events, study = snapshot_events(path)
    try:
        assert [info["covers"] for _, info in events] == calls
        assert events[0][0] > calls[0]
        assert study.journal.verify() == study.head + 1
    finally:
        study.close()


def test_garbage_collected_grid_records_its_checkpoint(tmp_path, monkeypatch):
    started, release, calls = threading.Event(), threading.Event(), []
    monkeypatch.setattr(snapshot_mod, "write_snapshot", slow_writer(started, release, calls))
    path = tmp_path / "s.duckdb"
    grid = gt.PowerGrid(CASE, journal=path, checkpoint_every=50)
    rng = np.random.default_rng(9)
    k = 0
    while not started.is_set():
        step(grid, rng, k)
        k += 1
    threading.Timer(0.2, release.set).start()
    del grid
    gc.collect()
    events, study = snapshot_events(path)
    try:
        assert [info["covers"] for _, info in events] == calls
        assert same_world(snapshot_world(study, events[0][1]),
                          materialize(study.journal, calls[0], use_snapshots=False)[0])
    finally:
        study.close()


def test_failed_write_records_nothing_and_warns(tmp_path, monkeypatch):
    def broken(world, directory, **kw):
        os.makedirs(os.path.join(directory, "half-written"), exist_ok=True)  # what a crash leaves
        with open(os.path.join(directory, "half-written", "bus.parquet"), "wb") as f:
            f.write(b"PAR1")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(snapshot_mod, "write_snapshot", broken)
    path = tmp_path / "s.duckdb"
    grid = gt.PowerGrid(CASE, journal=path, checkpoint_every=50)
    rng = np.random.default_rng(10)
    with pytest.warns(CheckpointWarning, match="No space left"):
        for k in range(60):
            step(grid, rng, k)
        grid.wait_checkpoint()
    assert isinstance(grid.checkpoint_error, OSError)
    assert grid.journal.log(event="snapshot").empty
    monkeypatch.setattr(snapshot_mod, "write_snapshot", REAL_WRITE)  # the disk has room again
    for k in range(60, 120):
        step(grid, rng, k)
    good = grid.wait_checkpoint()
    assert good is not None
    grid.close()
    events, study = snapshot_events(path)
    try:
        # the failed checkpoints recorded nothing (checked above); the good ones that followed
        # (back-pressure may take more than one in 60 steps) are recorded and readable
        ids = [info["id"] for _, info in events]
        assert ids and ids[-1] == good.snapshot_id
        for _, info in events:
            snapshot_world(study, info)
        assert study.journal.verify() == study.head + 1
        assert same_world(materialize(study.journal)[0], grid.world)
    finally:
        study.close()


def test_failure_found_at_close_warns(tmp_path, monkeypatch):
    started, release = threading.Event(), threading.Event()

    def broken(world, directory, **kw):
        started.set()
        assert release.wait(30)
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(snapshot_mod, "write_snapshot", broken)
    grid = gt.PowerGrid(CASE, journal=tmp_path / "s.duckdb", checkpoint_every=50)
    rng = np.random.default_rng(11)
    k = 0
    while not started.is_set():
        step(grid, rng, k)
        k += 1
    release.set()
    with pytest.warns(CheckpointWarning, match="Input/output"):
        grid.close()
    assert grid.checkpoint_error is not None


def test_explicit_snapshot_records_the_pending_checkpoint_first(tmp_path, monkeypatch):
    started, release, calls = threading.Event(), threading.Event(), []
    monkeypatch.setattr(snapshot_mod, "write_snapshot", slow_writer(started, release, calls))
    grid = gt.PowerGrid(CASE, journal=tmp_path / "s.duckdb", checkpoint_every=50)
    rng = np.random.default_rng(12)
    k = 0
    while not started.is_set():
        step(grid, rng, k)
        k += 1
    release.set()
    m = grid.snapshot(message="mine")  # synchronous, returns its manifest
    log = grid.journal.log(event="snapshot")
    infos = [json.loads(i) for i in log["info"]]
    assert [i["covers"] for i in infos] == [calls[0], m.seq]
    assert m.parent == infos[0]["id"]
    grid.close()


def test_load_while_a_checkpoint_is_written(tmp_path, monkeypatch):
    started, release, calls = threading.Event(), threading.Event(), []
    monkeypatch.setattr(snapshot_mod, "write_snapshot", slow_writer(started, release, calls))
    path = tmp_path / "s.duckdb"
    grid = gt.PowerGrid(CASE, journal=path, checkpoint_every=50)
    rng = np.random.default_rng(13)
    k = 0
    while not started.is_set():
        step(grid, rng, k)
        k += 1
    release.set()
    grid.load_parquet_case(gt.PowerGrid(os.path.join(ROOT, "cases", "IEEE30", "data.zip"),
                                        journal=False).get_parquet_case())
    grid.solve()
    grid.close()
    study = gt.open(path)
    try:
        ev = study.log(event=["snapshot", "load"])
        # (the load itself records enough events for the next checkpoint to fall due: whether it
        # is taken at the last solve depends on when the pending one was recorded)
        kinds = list(ev["event"])
        assert kinds[:3] == ["load", "snapshot", "load"] and set(kinds[3:]) <= {"snapshot"}
        assert same_world(materialize(study.journal)[0], grid.world)
    finally:
        study.close()


def test_background_off_writes_inside_solve(tmp_path):
    grid = gt.PowerGrid(CASE, journal=tmp_path / "s.duckdb", checkpoint_every=50, checkpoint_background=False)
    rng = np.random.default_rng(14)
    k = 0
    while grid.journal.log(event="snapshot").empty:
        step(grid, rng, k)
        k += 1
        assert grid._bg is None
    last = grid.journal.log().iloc[-2:]
    assert list(last["event"]) == ["snapshot", "commit"]
    assert json.loads(last["info"].iloc[0])["covers"] == int(last["seq"].iloc[0]) - 1  # the solve just before
    grid.close()


EXIT_SCRIPT = r"""
import sys, threading
import numpy as np
import gridtape as gt
from gridtape.replay import snapshot as snapshot_mod

real, release = snapshot_mod.write_snapshot, threading.Event()

def held(world, directory, **kw):
    assert release.wait(30)
    return real(world, directory, **kw)

snapshot_mod.write_snapshot = held
grid = gt.PowerGrid(sys.argv[1], journal=sys.argv[2], checkpoint_every=50)
loads = grid.world["load"].ids
k = 0
while grid._bg is None:
    grid.element("load", int(loads[k % len(loads)])).p_mw = 10.0 + k
    grid.solve()
    k += 1
print(grid._bg.covers)
threading.Timer(0.3, release.set).start()
# exit without close(): the write is still held
"""


def test_interpreter_exit_waits_and_records(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "s.duckdb"
    # run outside the source tree (its gridtape/ lacks the mapped subpackages), with this
    # process's environment: the installed package, or PYTHONPATH in a development tree
    out = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, CASE, str(path)], capture_output=True, text=True,
                         timeout=120, cwd=tempfile.gettempdir())
    assert out.returncode == 0, out.stderr
    covers = int(out.stdout.split()[-1])
    events, study = snapshot_events(path)
    try:
        assert [info["covers"] for _, info in events] == [covers]
        assert same_world(snapshot_world(study, events[0][1]),
                          materialize(study.journal, covers, use_snapshots=False)[0])
        assert study.journal.verify() == study.head + 1
    finally:
        study.close()


def test_failure_as_error_still_closes_the_journal(tmp_path, monkeypatch):
    import warnings

    started, release = threading.Event(), threading.Event()

    def broken(world, directory, **kw):
        started.set()
        assert release.wait(30)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(snapshot_mod, "write_snapshot", broken)
    grid = gt.PowerGrid(CASE, journal=tmp_path / "s.duckdb", checkpoint_every=50)
    rng = np.random.default_rng(15)
    k = 0
    while not started.is_set():
        step(grid, rng, k)
        k += 1
    release.set()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)
        with pytest.raises(CheckpointWarning, match="Permission denied"):
            grid.close()
    assert grid.journal.closed
    assert isinstance(grid.checkpoint_error, PermissionError)
