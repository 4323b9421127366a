"""Whole studies (journal + snapshots) under SIGKILL: a few rounds of tools/sigkill_study.py, plus
proofs that its checks catch what they claim to catch."""
import importlib.util
import json
import os
import random

import duckdb
import pytest

import gridtape as gt
from gridtape.errors import JournalError
from gridtape.journal import Journal, db

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tool():
    spec = importlib.util.spec_from_file_location("sigkill_study", os.path.join(ROOT, "tools", "sigkill_study.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


@pytest.fixture(scope="module")
def crashed(tmp_path_factory):
    """Four kill-and-check rounds on one study; returns (tool, path, state, all acks, per-round facts)."""
    tool = _tool()
    d = tmp_path_factory.mktemp("crash")
    path = str(d / "study.duckdb")
    state = {"scratch": str(d / "resume-copy")}
    rng = random.Random(11)
    acks, rounds = [], []
    for r in range(4):
        got = tool.one_round(path, rng, fresh=r == 0, kill_range=(0.4, 0.9))
        assert got["killed"], got["stderr"]
        facts, fail = tool.check(path, got["acks"], state, in_place_resume=r % 2 == 1)
        rounds.append((got, facts, fail))
        acks += got["acks"]
    return tool, path, state, acks, rounds


def test_every_round_passes_every_check(crashed):
    tool, path, state, acks, rounds = crashed
    last = -1
    for got, facts, fail in rounds:
        assert fail == []
        if got["acks"]:
            assert got["acks"][-1][0] <= facts["head"]  # nothing acknowledged is lost
            assert got["acks"][-1][0] >= last
            last = got["acks"][-1][0]
        assert facts["rows"] == facts["head"] + 1
    assert len(acks) > 10
    assert rounds[-1][1]["snapshots"] > 0 and rounds[-1][1]["snap_ok"] > 0


def test_the_study_reads_back_the_last_acknowledged_world(crashed):
    tool, path, state, acks, rounds = crashed
    from gridtape.replay.materialize import materialize

    seq, digest = acks[-1]
    with gt.open(path) as study:
        assert tool.world_digest(study.at(seq).world) == digest
        assert tool.world_digest(materialize(study.journal, seq, use_snapshots=False)[0]) == digest
        assert tool.world_digest(study.at(seq).world) != tool.world_digest(study.at(1).world)  # it did change


def test_a_lost_ack_or_a_different_world_is_reported(crashed):
    tool, path, state, acks, rounds = crashed
    head = rounds[-1][1]["head"]
    _, fail = tool.check(path, [(head + 5, acks[-1][1])], dict(state), in_place_resume=False)
    assert any("LOST" in f for f in fail)
    _, fail = tool.check(path, [(acks[-1][0], "0" * 64)], dict(state), in_place_resume=False)
    assert any("not the one the writer had" in f for f in fail)


def test_a_partial_transaction_is_reported(crashed):
    tool, path, *_ = crashed
    with gt.open(path) as study:
        log = study.log()
    assert tool._tx_problems(log) == []
    blocks = log[log["event"] == "add"]["tx"].unique()
    snaps = log[log["event"] == "snapshot"]["tx"].unique()
    assert len(snaps)
    tx = blocks[0] if len(blocks) else snaps[0]
    cut = log.drop(log.index[(log["tx"] == tx) & (log["event"] == "commit")])
    assert any(f"tx {tx} has no commit row" in p for p in tool._tx_problems(cut))


def test_a_corrupt_or_missing_snapshot_is_skipped_and_the_study_falls_back(crashed, tmp_path):
    tool, path, state, acks, rounds = crashed
    import shutil

    from gridtape.replay.materialize import snapshot_dir

    copy = str(tmp_path / "study.duckdb")
    for suffix in ("", ".seg", ".seg2", ".wal", ".ack"):
        if os.path.exists(path + suffix):
            shutil.copyfile(path + suffix, copy + suffix)
    shutil.copytree(snapshot_dir(path), snapshot_dir(copy))
    with gt.open(copy) as study:
        snaps = study.log(event="snapshot")
    ids = [json.loads(i)["id"] for i in snaps["info"]]
    with open(os.path.join(snapshot_dir(copy), ids[-1], "bus.parquet"), "r+b") as f:
        f.seek(10)
        f.write(b"\xff" * 16)
    if len(ids) > 1:
        os.remove(os.path.join(snapshot_dir(copy), ids[-2] + ".manifest.json"))
    facts, fail = tool.check(copy, acks[-1:], {"scratch": str(tmp_path / "r")}, in_place_resume=False)
    assert fail == []
    assert facts["warned"] >= 1  # study.at(head) said it skipped the newest snapshot
    assert facts["snap_skipped"] == min(2, len(ids)) and facts["snap_ok"] == len(ids) - facts["snap_skipped"]


def test_an_interrupted_journal_creation_leaves_no_half_made_journal(tmp_path, monkeypatch):
    path = str(tmp_path / "j.duckdb")

    def die(meta):
        raise KeyboardInterrupt  # stands in for the kill between the tables and the meta rows

    monkeypatch.setattr(db, "_meta_rows", die)
    with pytest.raises(KeyboardInterrupt):
        Journal(path)
    con = duckdb.connect(path, read_only=True)
    assert con.execute("SELECT table_name FROM information_schema.tables").fetchall() == []
    con.close()
    with pytest.raises(JournalError, match="not a gridtape journal"):
        Journal(path, read_only=True)
    monkeypatch.undo()
    with Journal(path) as j:  # the next writer creates the journal in the same file
        j.record("hello")
    with Journal(path, read_only=True) as j:
        assert j.verify() == 1 and j.meta()["format_version"] == db.FORMAT_VERSION
