"""Automatic checkpoints keep up with any workload: they fall due by event count wherever events are
committed (not only at a solve), and the replay tail stays within about two intervals of the last
recorded snapshot, also when the writer is slower than the writes (back-pressure)."""
import json
import os
import time

import numpy as np

import gridtape as gt
from gridtape.replay import snapshot as snapshot_mod
from gridtape.replay.codec import same_world
from gridtape.replay.study import materialize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASE = os.path.join(ROOT, "cases", "IEEE118", "data.zip")
EVERY = 400
REAL_WRITE = snapshot_mod.write_snapshot


def bulk(grid, steps, edit_every=0):
    t = grid.world["load"]
    ids, p0 = t.ids.copy(), t.cols["p_mw"].copy()
    for k in range(steps):
        grid.set("load", ids, "p_mw", p0 * (1.0 + 1e-3 * k))
        if edit_every and k % edit_every == edit_every - 1:
            with grid.edit(message=f"edit {k}") as e:
                for i in ids[:30]:
                    e.set("load", [int(i)], "q_mvar", float(k))
    return len(ids)


def check_tail(path, per_write):
    """Every point of history is within ~2 intervals of the snapshot a study would start from, and
    every snapshot covers a transaction boundary; returns the snapshot events."""
    study = gt.open(path)
    try:
        log = study.log()
        seq, ev, tx = log["seq"].to_numpy(), log["event"].to_numpy(dtype=object), log["tx"].to_numpy()
        snaps = [(int(s), json.loads(i)["covers"]) for s, e, i in zip(seq, ev, log["info"]) if e == "snapshot"]
        assert snaps, "no automatic checkpoint was taken"
        base, k = 0, 0
        for s in seq:
            while k < len(snaps) and snaps[k][0] <= s:
                base = snaps[k][1]
                k += 1
            assert s - base <= 2 * EVERY + EVERY // 8 + per_write, (s, base)
        pos = {int(s): i for i, s in enumerate(seq)}
        for _, covers in snaps:
            i = pos[covers]
            assert i + 1 == len(seq) or tx[i + 1] != tx[i]  # never inside a transaction
        for s in sorted({c for _, c in snaps})[-2:]:
            assert same_world(materialize(study.journal, s)[0], materialize(study.journal, s, use_snapshots=False)[0])
        return snaps
    finally:
        study.close()


def test_bulk_sets_without_solves_are_checkpointed(tmp_path):
    path = tmp_path / "bulk.duckdb"
    grid = gt.PowerGrid(CASE, journal=path, checkpoint_every=EVERY)
    n = bulk(grid, 80)
    grid.close()
    snaps = check_tail(path, n + 1)
    events = 80 * (n + 1)
    assert len(snaps) >= events // (2 * EVERY)
    covers = [c for _, c in snaps]
    assert all(b - a >= EVERY - 1 for a, b in zip(covers, covers[1:]))  # not more often than due


def test_bulk_with_edit_blocks_and_a_slow_writer(tmp_path, monkeypatch):
    def slow(world, directory, **kw):
        time.sleep(0.05)  # slower than the writes: back-pressure keeps the tail bounded
        return REAL_WRITE(world, directory, **kw)

    monkeypatch.setattr(snapshot_mod, "write_snapshot", slow)
    path = tmp_path / "slow.duckdb"
    grid = gt.PowerGrid(CASE, journal=path, checkpoint_every=EVERY)
    n = bulk(grid, 60, edit_every=7)
    grid.undo()
    grid.redo()
    grid.close()
    check_tail(path, n + 1)


def test_synchronous_checkpoints_follow_bulk_writes(tmp_path):
    path = tmp_path / "sync.duckdb"
    grid = gt.PowerGrid(CASE, journal=path, checkpoint_every=EVERY, checkpoint_background=False)
    n = bulk(grid, 40)
    assert grid._bg is None
    grid.close()
    snaps = check_tail(path, n + 1)
    assert all(s == c + 1 for s, c in snaps)  # written at once, right after what they cover
