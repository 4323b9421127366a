"""The mover: flushed events go into DuckDB from a background thread while flushes go on into the
other segment file.  Nothing acknowledged may be lost or reordered, whatever the mover is doing
when the process dies, and a mover that fails hands its batch back."""
from __future__ import annotations

import os
import shutil
import threading

import numpy as np
import pytest

from gridtape.errors import JournalError
from gridtape.journal import Journal
from gridtape.journal import db as db_mod


@pytest.fixture
def jpath(tmp_path):
    return str(tmp_path / "j.duckdb")


def _write(j, start, n):
    for k in range(start, start + n):
        j.record("set", "load", k, "p_mw", float(k), float(k) + 0.5)
        j.flush()


def _expect(j, n):
    log = j.log()
    assert log["seq"].tolist() == list(range(n))
    assert log["eid"].tolist() == list(range(n))
    assert log["new"].tolist() == [k + 0.5 for k in range(n)]
    assert j.verify() == n


@pytest.mark.parametrize("background", [True, False])
def test_every_flushed_event_lands_once_in_order(jpath, background):
    j = Journal(jpath, ingest_every=50, background=background)
    _write(j, 0, 1234)
    j.record_many("set", "gen", np.arange(300), "p_mw", np.zeros(300), np.ones(300))
    j.flush()
    n = 1234 + 300 + 1
    assert j.count() == n and j.verify() == n
    assert (os.path.getsize(jpath + ".seg"), os.path.getsize(jpath + ".seg2")) == (0, 0)
    j.close()
    with Journal(jpath) as j:
        assert j.next_seq == n
        _write(j, n, 10)
        assert j.count() == n + 10


def test_the_mover_runs_beside_the_writer(jpath, monkeypatch):
    """While a batch is being inserted, flushes go to the other segment file and return."""
    gate, inside = threading.Event(), threading.Event()
    real = db_mod.insert

    def slow_insert(con, table, path):
        inside.set()
        assert gate.wait(10)
        return real(con, table, path)

    monkeypatch.setattr(db_mod, "insert", slow_insert)
    j = Journal(jpath, ingest_every=20)
    _write(j, 0, 20)  # the 20th flush hands the batch to the mover
    assert inside.wait(10)
    assert j._mover is not None and j._mover.is_alive()
    _write(j, 20, 15)  # while the mover waits at the gate
    assert j.durable_seq == 34
    assert os.path.getsize(jpath + ".seg") > 0 and os.path.getsize(jpath + ".seg2") > 0
    gate.set()
    _expect(j, 35)
    j.close()


def test_a_process_that_dies_during_a_move_loses_nothing(jpath, tmp_path, monkeypatch):
    """Copy the files while the mover is inside its DuckDB transaction (as a SIGKILL would leave
    them): both segment files hold frames; the copy reopens with every acknowledged event."""
    gate, inside = threading.Event(), threading.Event()
    real = db_mod.insert

    def slow_insert(con, table, path):
        inside.set()
        assert gate.wait(10)
        return real(con, table, path)

    j = Journal(jpath, ingest_every=30)
    _write(j, 0, 45)  # one batch moved (30), 15 waiting
    assert j._mover is not None
    j._mover.join()
    monkeypatch.setattr(db_mod, "insert", slow_insert)
    _write(j, 45, 15)  # 30 waiting: handed to the (slow) mover
    assert inside.wait(10)
    _write(j, 60, 7)  # into the other segment file
    dead = str(tmp_path / "dead.duckdb")
    for suffix in ("", ".seg", ".seg2", ".wal", ".ack"):
        if os.path.exists(jpath + suffix):
            shutil.copyfile(jpath + suffix, dead + suffix)
    gate.set()
    monkeypatch.setattr(db_mod, "insert", real)
    j.close()
    with Journal(dead) as k:
        _expect(k, 67)
        _write(k, 67, 3)
    with Journal(dead, read_only=True) as k:
        _expect(k, 70)


def test_a_failed_move_is_retried_and_reported(jpath, monkeypatch):
    real = db_mod.insert
    calls = {"n": 0}

    def failing_once(con, table, path):
        calls["n"] += 1
        if calls["n"] == 1:
            raise JournalError("disk full (simulated)", file=path, table="events")
        return real(con, table, path)

    monkeypatch.setattr(db_mod, "insert", failing_once)
    j = Journal(jpath, ingest_every=10)
    _write(j, 0, 10)  # handed over; the mover fails
    j._mover.join()
    with pytest.raises(JournalError, match="disk full"):
        _write(j, 10, 10)  # the next hand-over reports it ...
    assert j.durable_seq == 19  # ... after the frame was written: flushed events stay acknowledged
    _expect(j, 20)  # and the batch is moved in the foreground
    j.close()
    with Journal(jpath) as k:
        _expect(k, 20)


def test_in_memory_journal_moves_in_the_background_too():
    j = Journal(ingest_every=25)
    _write(j, 0, 260)
    _expect(j, 260)
    j.close()
