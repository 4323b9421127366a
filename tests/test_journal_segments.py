"""Segment formats and life cycle: GTJ3 segments left by gridtape 0.4 and GTJ2 segments left by
gridtape 0.3 are resumed, the hash
chain computed at ingest is the one verify() re-derives (head_hash included), a kill in the
middle of a move of record_many transactions loses nothing, and a journal closed while the
interpreter shuts down leaves its events in the segment for the next open."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading

import numpy as np
import pytest

from gridtape.errors import JournalCorruptError
from gridtape.journal import Journal, buffer, frames
from gridtape.journal import db as db_mod
from gridtape.journal.chain import ZERO, canonical, chain
from gridtape.journal.columns import typed_array


@pytest.fixture
def jpath(tmp_path):
    return str(tmp_path / "j.duckdb")


def legacy_frame(rows, prev):
    """A GTJ2 frame as gridtape 0.3 wrote it (pure Python): header, canonical rows, hashes."""
    hashes = chain(rows, prev)
    payload = (struct.pack("<I4q", len(rows), rows[0][0], rows[-1][0], rows[-1][1], rows[-1][2]) + prev
               + b"".join(canonical(r) for r in rows) + b"".join(hashes))
    return b"GTJ2" + struct.pack("<I", len(payload)) + payload, hashes[-1]


def _steps(j, start, n, size=40):
    """n grid2op-like steps: a transaction of three record_many calls each."""
    ids = np.arange(size) * 3
    for s in range(start, start + n):
        j.begin(message=f"apply_action {s}")
        j.record_many("set", "load", ids, "p_mw", np.full(size, s - 0.5), np.full(size, float(s)))
        j.record_many("set", "load", ids, "q_mvar", None, np.arange(size) + s)
        j.record_many("set", "gen", ids[:5], "in_service", np.ones(5, bool), np.array([True, False] * 2 + [True]))
        j.commit()
    return n * (2 * size + 5 + 1)


def test_a_gtj2_segment_left_by_0_3_is_resumed(jpath):
    with Journal(jpath) as j:
        j.record("set", "load", 1, "p_mw", 1.0, 2.0)
        j.record("set", "load", 2, "p_mw", 1.0, 2.0)
        head = bytes.fromhex(j.head_hash)
        last_ts = int(j.log()["ts_ns"].iloc[-1])
    # what 0.3 left in the segment after a kill: two frames, chained on DuckDB's last row
    buf = [[(last_ts + 1, "set", "gen", 4, "vm_pu", 1.0, 1.02, None)],
           buffer.Tx(last_ts + 2, "ann", "m", [("set", "bus", 7, "name", "a", "b", None)], '{"k":1}'), []]
    rows = buffer.to_rows(buf, 2, 2, last_ts, "ann")
    one, h1 = legacy_frame(rows[:1], head)
    two, h2 = legacy_frame(rows[1:], h1)
    with open(jpath + ".seg", "wb") as f:
        f.write(one + two)
    with Journal(jpath, read_only=True) as r:  # a reader sees them as its tail
        assert r.count() == 5 and r.verify() == 5 and r.head_hash == h2.hex()
    with Journal(jpath) as j:  # a writer moves them into DuckDB and goes on in GTJ4
        assert j.count() == 5 and os.path.getsize(jpath + ".seg") == 0
        assert j.log()["event"].tolist() == ["set", "set", "set", "set", "commit"]
        assert j.head_hash == h2.hex()
        _steps(j, 0, 2)
        assert open(jpath + ".seg", "rb").read(4) == b"GTJ4"
    with Journal(jpath, read_only=True) as r:
        assert r.verify() == 5 + 2 * 86


def test_a_gtj3_segment_left_by_0_4_is_resumed(jpath):
    """GTJ3 frames (our own checksum, sum64) are read, torn ones refused, and moved; the writer
    goes on in GTJ4."""
    with Journal(jpath) as j:
        j.record("load")
        last_ts = int(j.log()["ts_ns"].iloc[-1])
    bufs = [[[(last_ts + 1, "set", "gen", 4, "vm_pu", 1.0, 1.02, None)]],
            [buffer.Tx(last_ts + 2, "ann", "m", [buffer.Many("set", "load", np.arange(30), "p_mw",
                                                             *(typed_array(np.arange(30.0) + k, side, 30)
                                                               for k, side in ((0, "old"), (1, "new"))))], None)]]
    seq, tx, data, rows = 1, 1, b"", []
    for buf in bufs:
        f4, n, last, last_tx, last_ts = frames.encode(buf, seq, tx, last_ts, "ann")
        rows += buffer.to_rows(buf, seq, tx, last_ts, "ann")
        body = b"GTJ3" + f4[4:-8]
        data += body + frames.sum64(body).to_bytes(8, "little")
        seq, tx = last + 1, last_tx + 1
    with open(jpath + ".seg", "wb") as f:
        pad = 512 - len(data) % 512
        head = b"GTJ3" + (10000).to_bytes(4, "little") + (1).to_bytes(4, "little") + (33).to_bytes(8, "little")
        f.write(data + (head + bytes(pad))[:pad])
        # and a torn frame after them (its header cut where the kill stopped the write: a block boundary)
    with Journal(jpath, read_only=True) as r:
        assert r.count() == 1 + 32 and r.verify() == 33
    with Journal(jpath) as j:
        assert j.count() == 33 and os.path.getsize(jpath + ".seg") == 0
        assert j.log()["new"].tolist()[-3:] == [29.0, 30.0, None]
        _steps(j, 0, 1)
        assert open(jpath + ".seg", "rb").read(4) == b"GTJ4"
    with Journal(jpath, read_only=True) as r:
        assert r.verify() == 33 + 86


def test_a_gtj2_frame_that_does_not_chain_on_duckdb_is_corruption(jpath):
    with Journal(jpath) as j:
        j.record("a")
        last_ts = int(j.log()["ts_ns"].iloc[-1])
    rows = buffer.to_rows([[(last_ts, "b", None, None, None, None, None, None)]], 1, 1, last_ts, "ann")
    with open(jpath + ".seg", "wb") as f:
        f.write(legacy_frame(rows, ZERO)[0])  # chained on zeros, not on row 0's hash
    with pytest.raises(JournalCorruptError):
        Journal(jpath)


def test_hashes_computed_at_ingest_are_the_chain_verify_rederives(jpath):
    j = Journal(jpath, ingest_every=500)
    n = _steps(j, 0, 30)  # several moves, each chained on the previous one's last hash
    j.record("x", info="after")
    assert j.head_hash == bytes(j.log()["hash"].iloc[-1]).hex()
    assert j.verify() == n + 1
    got = db_mod.fetch(j._con, "SELECT * FROM events ORDER BY seq")
    names = [c for c in got.column_names if c != "hash"]
    tuples = list(zip(*(got.column(c).to_pylist() for c in names)))
    assert b"".join(chain(tuples)) == b"".join(got.column("hash").to_pylist())
    j.close()
    # a tampered cell is still found
    import duckdb
    con = duckdb.connect(jpath)
    con.execute("UPDATE events SET new_f = 0.25 WHERE seq = 77")
    con.close()
    with Journal(jpath, read_only=True) as r, pytest.raises(JournalCorruptError) as e:
        r.verify()
    assert e.value.row == 77


def test_a_kill_during_a_move_of_record_many_transactions_loses_nothing(jpath, tmp_path, monkeypatch):
    gate, inside = threading.Event(), threading.Event()
    real = db_mod.insert

    def slow_insert(con, table, path):
        inside.set()
        assert gate.wait(10)
        return real(con, table, path)

    j = Journal(jpath, ingest_every=300)
    n = _steps(j, 0, 5)  # 430 rows: one batch moved
    j._mover.join()
    monkeypatch.setattr(db_mod, "insert", slow_insert)
    n += _steps(j, 5, 3)  # the next batch goes to the (slow) mover
    assert inside.wait(10)
    n += _steps(j, 8, 2)  # into the other segment file
    dead = str(tmp_path / "dead.duckdb")
    for suffix in ("", ".seg", ".seg2", ".wal", ".ack"):
        if os.path.exists(jpath + suffix):
            shutil.copyfile(jpath + suffix, dead + suffix)
    gate.set()
    monkeypatch.setattr(db_mod, "insert", real)
    head = j.head_hash
    want = j.log()
    j.close()
    with Journal(dead) as k:
        got = k.log()
        assert k.verify() == n and k.head_hash == head
        assert got["new"].tolist() == want["new"].tolist() and got["eid"].tolist() == want["eid"].tolist()
        _steps(k, 10, 1)
    with Journal(dead, read_only=True) as k:
        assert k.verify() == n + 86


HELD_AT_EXIT = """
    import sys
    import numpy as np
    from gridtape.journal import Journal

    class Backend:  # as grid2op's environment: closes its journal from __del__
        def __init__(self, j):
            self.j = j
        def __del__(self):
            self.j.close()

    held = Backend(Journal({path!r}, ingest_every=10**9))
    j = held.j
    for k in range(7):
        j.record("set", "load", k, "p_mw", float(k), k + 0.5)
        j.flush()
    j.begin(message="apply_action 1")
    j.record_many("set", "gen", np.arange(60), "p_mw", np.zeros(60), np.ones(60))
    j.commit()
    j.record("unflushed")  # flushed by the atexit hook
    print("acked", j.durable_seq, flush=True)
    # no close: the module's globals are cleared at interpreter exit, after the atexit hooks
"""


def test_a_journal_closed_during_interpreter_shutdown_keeps_every_event(jpath):
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(HELD_AT_EXIT.format(path=jpath))],
                       capture_output=True, text=True, timeout=60, cwd=tempfile.gettempdir())
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["acked", "67"]
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
    assert os.path.getsize(jpath + ".seg") > 0  # left in the segment, durable
    with Journal(jpath) as j:  # the lock was released; the next open moves them
        log = j.log()
        assert len(log) == 69 and j.verify() == 69 and log["event"].iloc[-1] == "unflushed"
        assert os.path.getsize(jpath + ".seg") == 0
