"""Points of history are transaction boundaries; snapshots are trusted only as the journal
committed them; resource faults while writing a snapshot (issue 16)."""
from __future__ import annotations

import errno
import json
import os
import warnings

import numpy as np
import pytest

import gridtape as gt
from gridtape.errors import GridtapeError, SnapshotCorruptError, SnapshotError
from gridtape.replay import list_snapshots, read_snapshot, write_snapshot
from gridtape.replay import store as store_mod
from gridtape.replay.manifest import Manifest, _canonical

CASE = os.path.join(os.path.dirname(__file__), "..", "cases", "IEEE14", "data.zip")


@pytest.fixture
def study_path(tmp_path):
    """A study: a case load, one edit block scaling every load (one transaction), a snapshot, a set."""
    path = str(tmp_path / "s.duckdb")
    grid = gt.PowerGrid(CASE, journal=path)
    with grid.edit(message="scale all loads") as e:
        for k, i in enumerate(grid.world.tables["load"].ids):
            e.set("load", [int(i)], "p_mw", 2.0 + k)
    grid.snapshot(message="after scaling")
    grid.set("load", [0], "p_mw", 9.5)
    grid.close()
    return path


# --- points of history: transaction boundaries ------------------------------------------------------
def _tx_rows(study, message):
    log = study.log()
    tx = int(log[log.message == message].tx.iloc[0])
    rows = log[log.tx == tx]
    return int(rows.seq.iloc[0]), int(rows.seq.iloc[-1])


def _p(world):
    return world.tables["load"].to_frame()["p_mw"].to_numpy().copy()


def test_a_seq_inside_a_transaction_means_the_end_of_that_transaction(study_path):
    with gt.open(study_path) as study:
        first, last = _tx_rows(study, "scale all loads")
        assert last - first >= 5
        end = study.world_at(last)
        for s in (first, first + 1, (first + last) // 2, last - 1, last):
            g = study.at(s)
            assert g.study_seq == last  # the point it stands for
            assert gt.diff(g, study.at(last)).empty, s  # never half of the edit block
            assert np.array_equal(_p(study.world_at(s)), _p(end))
        before = study.at(first - 1)
        assert not gt.diff(before, study.at(first)).empty  # the block as a whole
        # blame as of a seq inside the block sees the whole block
        b = study.blame("load", 1, "p_mw", seq=first)
        assert int(b.seq) <= last and b.new == 3.0


# --- snapshots trusted only as the journal committed them ---------------------------------------------
def _snapshot_event(study):
    log = study.log(event="snapshot")
    return json.loads(log["info"].iloc[-1])


def test_the_snapshot_event_records_the_manifest_hash(study_path):
    with gt.open(study_path) as study:
        info = _snapshot_event(study)
        d = study_path + ".snapshots"
        _, m = read_snapshot(d, info["id"])
        assert info["manifest"] == m.digest == json.loads(open(os.path.join(d, info["id"] + ".manifest.json"))
                                                           .read())["manifest_sha256"]


def _forge(d, sid, change):
    """Edit a manifest and recompute its own checksum (it still checks itself)."""
    p = os.path.join(d, sid + ".manifest.json")
    body = json.loads(open(p).read())
    body.pop("manifest_sha256")
    change(body)
    import hashlib

    body["manifest_sha256"] = hashlib.sha256(_canonical(body).encode()).hexdigest()
    open(p, "w").write(_canonical(body))
    Manifest.from_json(open(p).read())  # self-certified: it passes its own checks


def test_a_forged_manifest_is_not_trusted(study_path):
    with gt.open(study_path) as study:
        info = _snapshot_event(study)
        expected = study.world_at()  # the head: from the snapshot plus the set after it
    d = study_path + ".snapshots"
    # point the manifest at another (valid) snapshot's files: a different world that verifies
    grid = gt.PowerGrid(CASE, journal=False)
    grid.set("load", [0], "p_mw", 123.0)
    other = write_snapshot(grid.world, d, snapshot_id="other")

    def swap(body):
        body["files"] = json.loads(other.to_json())["files"]

    import shutil

    shutil.rmtree(os.path.join(d, info["id"]))
    shutil.copytree(os.path.join(d, "other"), os.path.join(d, info["id"]))
    _forge(d, info["id"], swap)
    w, _ = read_snapshot(d, info["id"])  # on its own it verifies: a silently wrong world
    assert _p(w)[0] == 123.0
    with pytest.raises(SnapshotCorruptError) as e:
        read_snapshot(d, info["id"], expect=info["manifest"])
    assert e.value.file.endswith(info["id"] + ".manifest.json")
    with gt.open(study_path) as study, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = study.world_at()  # falls back to replaying the journal
        assert np.array_equal(_p(got), _p(expected))
    assert any("not the one the journal committed" in str(w.message) for w in caught)


def test_an_old_snapshot_event_without_the_hash_is_trusted_as_before(study_path, tmp_path):
    import duckdb

    con = duckdb.connect(study_path)  # a journal written before the hash was recorded (chain not checked here)
    info = json.loads(con.execute("SELECT info FROM events WHERE event = 'snapshot'").fetchone()[0])
    info.pop("manifest")
    con.execute("UPDATE events SET info = ? WHERE event = 'snapshot'", [json.dumps(info)])
    con.close()
    with gt.open(study_path) as study, warnings.catch_warnings():
        warnings.simplefilter("error")
        study.world_at(info["covers"])


# --- resource faults ---------------------------------------------------------------------------------
def _world():
    return gt.PowerGrid(CASE, journal=False).world


def _no_partial(d):
    left = os.listdir(d) if os.path.isdir(d) else []
    assert left == [] or all(n == "keep" for n in left), left


@pytest.mark.parametrize("where", ["data", "fsync", "manifest"])
def test_a_full_filesystem_raises_snapshot_error_and_leaves_nothing(tmp_path, monkeypatch, where):
    d = str(tmp_path / "snaps")
    os.makedirs(d)
    real_write, real_fsync = os.write, os.fsync
    calls = {"n": 0}

    def full_write(fd, data):
        calls["n"] += 1
        if where == "data" and calls["n"] == 3 or where == "manifest" and bytes(data[:1]) == b"{":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    def bad_fsync(fd):
        if where == "fsync":
            raise OSError(errno.EIO, "Input/output error")
        return real_fsync(fd)

    monkeypatch.setattr(store_mod.os, "write", full_write)
    monkeypatch.setattr(store_mod.os, "fsync", bad_fsync)
    with pytest.raises(SnapshotError) as e:
        write_snapshot(_world(), d)
    assert isinstance(e.value, OSError) and isinstance(e.value, GridtapeError) and e.value.file == d
    _no_partial(d)
    monkeypatch.undo()
    m = write_snapshot(_world(), d)  # the next one works
    assert [x.snapshot_id for x in list_snapshots(d)] == [m.snapshot_id]


def test_a_read_only_directory_raises_snapshot_error(tmp_path, monkeypatch):
    d = str(tmp_path / "ro")
    os.makedirs(d)

    def refuse(path, *a, **k):  # root ignores chmod: simulate what a read-only directory answers
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(store_mod.os, "makedirs", refuse)
    with pytest.raises(SnapshotError) as e:
        write_snapshot(_world(), d)
    assert isinstance(e.value, PermissionError) is False and e.value.file == d and "Permission denied" in str(e.value)
    _no_partial(d)


def test_a_grid_snapshot_on_a_full_disk_records_nothing(tmp_path, monkeypatch):
    path = str(tmp_path / "s.duckdb")
    grid = gt.PowerGrid(CASE, journal=path)
    n = grid.journal.next_seq
    real_write = os.write

    def full_write(fd, data):
        if len(data) > 200 and b"PAR1" in bytes(data[:4]):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(store_mod.os, "write", full_write)
    with pytest.raises(SnapshotError):
        grid.snapshot()
    monkeypatch.undo()
    assert grid.journal.next_seq == n  # no snapshot event for a snapshot that does not exist
    _no_partial(path + ".snapshots")
    grid.close()
