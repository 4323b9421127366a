"""The journal store (gridtape.journal.Journal): values, numbering, transactions, queries, blobs,
hash chain and verify, segment crash recovery, locking, read-only and in-memory journals."""
from __future__ import annotations

import datetime
import hashlib
import importlib.util
import os
import pickle
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import textwrap

import duckdb
import numpy as np
import pandas as pd
import pytest

from gridtape.errors import JournalCorruptError, JournalError, JournalLockedError, ReadOnlyError
from gridtape.journal import Journal
from gridtape.journal import buffer as buffer_mod
from gridtape.journal import store as store_mod
from gridtape.journal import db, frames
from gridtape.journal.chain import canonical, chain, chain_columns
from gridtape.journal.columns import Cols, typed_array
from gridtape.journal.rows import make_row
from hypothesis import given, settings, strategies as st

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


LARGE = 256  # "many rows": more than one small flush holds


def f64(bits):
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


FLOATS = [0.0, -0.0, float("inf"), float("-inf"), float("nan"), f64(0x7FF8000000000001), f64(0xFFF8000000000000),
          f64(0x7FF0000000000001), 5e-324, -5e-324, 1.7976931348623157e308, 0.1, 1 / 3]
INTS = [0, -1, 1, 2**63 - 1, -(2**63)]
STRS = ["", "é✓😀", "a\x00b", "None"]
VALUES = FLOATS + INTS + [True, False] + STRS + [None]


def same(a, b):
    """Equal as journal values: same type, floats bit for bit."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return struct.pack("<d", a) == struct.pack("<d", b)
    return a == b


def assert_values(got, want):
    bad = [(k, g, w) for k, (g, w) in enumerate(zip(got, want)) if not same(g, w)]
    assert len(got) == len(want) and not bad, bad[:5]


def run_child(code, timeout=60):
    """Run a Python snippet in a fresh process (the writer we then 'crash' or lock against)."""
    # cwd outside the repository: `-c` puts the cwd first on sys.path, and the source tree's
    # gridtape/ (without its compiled subpackages) must not shadow the installed package
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                       timeout=timeout, cwd=tempfile.gettempdir())
    return r


@pytest.fixture
def jpath(tmp_path):
    return str(tmp_path / "j.duckdb")


# --- values ------------------------------------------------------------------------------------

def test_every_value_type_round_trips_bit_exactly_through_a_file_journal(jpath):
    extra_old = [np.float32(0.1), np.int32(-7), np.uint8(200), np.bool_(True), np.str_("np")]
    extra_want = [float(np.float32(0.1)), -7, 200, True, "np"]
    arrays = [np.array(FLOATS), np.array(INTS, dtype=np.int64), np.array([True, False]), np.array(STRS),
              np.array(VALUES, dtype=object)]
    with Journal(jpath) as j:
        for k, v in enumerate(VALUES):
            j.record("set", "load", k, "p_mw", old=v, new=VALUES[-1 - k])
        for k, v in enumerate(extra_old):
            j.record("set", "load", 100 + k, "x", old=v, new=None)
        for a in arrays:
            j.record_many("set", "gen", np.arange(len(a)), "vm_pu", a, None)
    with Journal(jpath) as j:
        log = j.log(event="set")
    n = len(VALUES)
    assert_values(log["old"].tolist()[:n], VALUES)
    assert_values(log["new"].tolist()[:n], VALUES[::-1])
    assert_values(log["old"].tolist()[n:n + len(extra_old)], extra_want)
    many = log.iloc[n + len(extra_old):]
    want = [x for a in arrays for x in (a.tolist())]
    assert_values(many["old"].tolist(), want)
    assert many["new"].isna().all() and (many["kind"] == "gen").all()


def test_segment_tail_read_only_decodes_the_same_values(jpath):
    """Values that never reached DuckDB (killed writer) come back identical from the segment."""
    r = run_child(f"""
        import os, pickle, numpy as np
        from gridtape.journal import Journal
        vals = pickle.loads(bytes.fromhex({pickle.dumps(VALUES).hex()!r}))  # pickle keeps float bits
        j = Journal({jpath!r})
        for k, v in enumerate(vals):
            j.record("set", "load", k, "p_mw", old=v, new=vals[-1 - k])
        j.record_many("set", "gen", np.arange(len(vals)), "vm_pu", np.array(vals, dtype=object), None)
        j.flush()
        j.record_many("set", "gen", np.arange(20 * len(vals)), "vm_pu", np.array(vals * 20, dtype=object), None)
        j.flush()  # a large flush: a columnar frame
        os._exit(0)
    """)
    assert r.returncode == 0, r.stderr
    assert os.path.getsize(jpath + ".seg") > 0
    n = len(VALUES)
    with Journal(jpath, read_only=True) as j:
        log = j.log(event="set")
        assert j.verify() == 2 * n + 1 + 20 * n + 1
    assert 20 * n >= LARGE
    assert_values(log["old"].tolist(), VALUES * 22)
    assert_values(log["new"].tolist()[:n], VALUES[::-1])
    with Journal(jpath) as j:  # the writer moves both kinds of frames into DuckDB
        assert os.path.getsize(jpath + ".seg") == 0 and j.verify() == 2 * n + 1 + 20 * n + 1
        again = j.log(event="set")
    assert again["hash"].tolist() == log["hash"].tolist()
    assert_values(again["old"].tolist(), VALUES * 22)


def _same_events(j, big):
    """Record a mixed sequence; flush after each call (small frames) or once at the end (big=True)."""
    rng = np.random.default_rng(3)
    for k in range(LARGE + 40):
        v = VALUES[k % len(VALUES)]
        j.record("set", None if k % 11 == 0 else "load", None if k % 13 == 0 else k, "p_mw", v,
                 VALUES[(3 * k) % len(VALUES)], info=None if k % 5 else "{}")
        if k % 50 == 0:  # a record_many outside a transaction: its own tx with a commit row
            j.record_many("set", "gen", np.arange(3), "p", rng.random(3), np.array([True, False, True]))
        if not big:
            j.flush()
    j.flush()


def test_large_and_small_flushes_write_the_same_rows_and_hashes(monkeypatch):
    """Rows flushed one by one (row tuples) and all at once (columns) are identical, hashes too."""
    clock = [0]

    def tick():
        clock[0] += 1
        return 1000 - clock[0] if clock[0] % 7 == 0 else 1000 + clock[0]  # sometimes goes back

    logs = []
    for big in (False, True):
        clock[0] = 0
        j = Journal(ingest_every=10**9, clock=tick)
        _same_events(j, big)
        logs.append(j.log())
        assert j.verify() == len(logs[-1])
        j.close()
    a, b = logs
    assert len(a) == len(b) > LARGE
    for col in ("seq", "tx", "ts_ns", "author", "message", "event", "kind", "field", "info", "hash"):
        assert a[col].tolist() == b[col].tolist(), col
    assert a["eid"].isna().tolist() == b["eid"].isna().tolist()
    for col in ("old", "new"):
        assert_values(a[col].tolist(), b[col].tolist())


def test_a_buffer_numbers_the_same_as_rows_and_as_columns():
    items = [("set", "load", 1, "p", 1.5, -0.0, None),
             buffer_mod.Many("set", "gen", np.arange(4), "q", typed_array(np.array([1, 2, 3, 4]), "old", 4),
                             typed_array(np.array(["a", "", "é", "x"]), "new", 4)),
             ("remove", "load", 1, None, None, None, '{"a":1}')]
    buf = [[(90, "a", None, None, None, True, 2**62, None)],
           buffer_mod.Tx(50, "bob", "msg", items, "{}"),
           [(40, "b", "bus", 7, "vm_pu", "s", None, "")]]
    rows = buffer_mod.to_rows(buf, 10, 3, 60, "ann")
    prev = bytes(range(16))
    frame, n, last_seq, last_tx, last_ts = frames.encode(buf, 10, 3, 60, "ann")
    assert len(rows) == n == 9 and [r[0] for r in rows] == list(range(10, 19))
    assert (last_seq, last_tx, last_ts) == rows[-1][:3]
    assert [r[1] for r in rows] == [3, 4, 4, 4, 4, 4, 4, 4, 5] and rows[7][5] == "commit"
    assert [r[2] for r in rows] == [90] * 9  # non-decreasing from the first row on
    assert [r[3] for r in rows] == ["ann"] + ["bob"] * 7 + ["ann"] and rows[1][4] == "msg" and rows[8][4] is None
    assert chain(rows, prev) == chain_columns(Cols.from_rows(rows), prev)
    assert frames.decode([frame], prev)[4] == b"".join(chain(rows, prev))


TEXT = st.one_of(st.none(), st.text(max_size=6))
VALUE = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**63), 2**63 - 1),
                  st.booleans(), st.text(max_size=5), st.sampled_from([f64(0x7FF8000000000001), -0.0]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(TEXT, TEXT, st.text(min_size=1, max_size=4), TEXT,
                          st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), TEXT, VALUE, VALUE, TEXT),
                min_size=1, max_size=12))
def test_row_and_column_encoders_agree(items):
    rows = [make_row(k, k // 2, 10 * k, a, m, e, kd, eid, f, o, n, i)
            for k, (a, m, e, kd, eid, f, o, n, i) in enumerate(items)]
    assert chain(rows) == chain_columns(Cols.from_rows(rows))


def test_bad_arguments_raise_naming_the_field_and_change_nothing(jpath):
    with Journal(jpath) as j:
        j.record("a")
        before = j.next_seq
        cases = [(dict(old=[1, 2]), "old"), (dict(new={"a": 1}), "new"), (dict(eid="3"), "eid"),
                 (dict(eid=True), "eid"), (dict(old=2**64), "old"), (dict(kind=3), "kind"),
                 (dict(field=b"x"), "field"), (dict(info=object()), "info")]
        for kw, field in cases:
            with pytest.raises(JournalError) as e:
                j.record("set", **kw)
            assert e.value.field == field
        with pytest.raises(JournalError) as e:
            j.record(None)
        assert e.value.field == "event"
        with pytest.raises(JournalError) as e:
            j.record_many("set", "load", np.arange(3), "p", np.zeros(2), None)
        assert e.value.field == "old"
        with pytest.raises(JournalError) as e:
            j.record_many("set", "load", np.array([1.5, 2.0]), "p", None, None)
        assert e.value.field == "eid"
        assert j.next_seq == before
        assert j.flush() == before - 1 and j.count() == before
    other = jpath + ".other.duckdb"
    con = duckdb.connect(other)
    con.execute("CREATE TABLE mine (a INT)")
    con.close()
    with pytest.raises(JournalError):  # someone else's database is not turned into a journal
        Journal(other)
    con = duckdb.connect(other, read_only=True)
    assert [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()] == ["mine"]
    con.close()
    for kw, field in [(dict(sync="never"), "sync"), (dict(ingest_every=0), "ingest_every")]:
        with pytest.raises(JournalError) as e:
            Journal(jpath, **kw)
        assert e.value.field == field


def test_numpy_scalars_and_dict_info_are_stored_as_plain_values():
    j = Journal()
    j.record("set", "load", np.int64(3), "p_mw", np.float64(1.5), np.bool_(False), info={"n": np.int64(2)})
    row = j.log().iloc[0]
    assert row["eid"] == 3 and same(row["old"], 1.5) and same(row["new"], False) and row["info"] == '{"n":2}'
    j.close()


def test_text_a_flush_cannot_encode_drops_only_the_events_holding_it():
    j = Journal()
    j.record("a")
    j.record("b", kind="x\udc80")  # record() does not look inside str (hot path); flush must cope
    j.begin()
    j.record("c", field="ok")
    with pytest.raises(JournalError) as e:
        j.commit()
    assert e.value.field == "kind"
    j.record("d")
    j.flush()
    assert j.log()["event"].tolist() == ["a", "c", "commit", "d"]
    assert j.verify() == 4
    j.close()


# --- numbering, time, transactions -----------------------------------------------------------------

def test_seq_and_tx_are_gap_free_across_reopen_and_ts_never_decreases(jpath, monkeypatch):
    clock = iter([50, 40, 60, 30, 70, 70, 10, 80] + list(range(100, 200)))
    tick = clock.__next__
    with Journal(jpath, clock=tick) as j:
        for k in range(4):
            j.record("e", eid=k)
        assert j.next_seq == 4 and j.next_tx == 4
    with Journal(jpath, clock=tick) as j:
        assert (j.next_seq, j.next_tx, j.durable_seq) == (4, 4, 3)
        j.begin()
        j.record("e")
        j.record("e")
        assert j.commit() == 6
        j.record("e")
        j.record("e")
    with Journal(jpath) as j:
        log = j.log()
        assert j.next_seq == 9 and j.last_seq == 8 and j.count() == 9
    assert log["seq"].tolist() == list(range(9))
    assert log["tx"].tolist() == [0, 1, 2, 3, 4, 4, 4, 5, 6]
    ts = log["ts_ns"].to_numpy()
    assert (np.diff(ts) >= 0).all() and ts.tolist() == [50, 50, 60, 60, 70, 70, 70, 70, 70]
    assert log["time"].dt.tz is not None and log["time"].iloc[0].value == 50


def test_rollback_consumes_nothing_and_commit_row_carries_author_message_info():
    j = Journal(author="ann")
    assert j.begin(author="bob", message="try") == 0
    j.record("set", "load", 1, "p_mw", 1.0, 2.0)
    j.rollback()
    assert (j.next_seq, j.next_tx, j.in_transaction) == (0, 0, False)
    assert j.begin(author="bob", message="real") == 0
    j.record("set", "load", 1, "p_mw", 1.0, 3.0)
    j.record_many("set", "load", [2, 3], "q_mvar", np.ones(2), np.zeros(2))
    seq = j.commit(info={"why": "test"})
    assert seq == 3 and j.durable_seq == 3
    rows = j.tx_events(0)
    assert rows["event"].tolist() == ["set", "set", "set", "commit"]
    assert set(rows["author"]) == {"bob"} and set(rows["message"]) == {"real"}
    assert rows["info"].iloc[-1] == '{"why":"test"}' and rows["seq"].iloc[-1] == seq
    j.begin()
    assert j.commit() == 4  # an empty transaction still writes its commit row
    assert j.tx_events(1)["event"].tolist() == ["commit"] and j.tx_events(1)["author"].iloc[0] == "ann"
    j.close()


def test_transaction_misuse_raises_and_context_manager_rolls_back():
    j = Journal()
    j.begin()
    with pytest.raises(JournalError):
        j.begin()
    j.rollback()
    for f in (j.commit, j.rollback):
        with pytest.raises(JournalError):
            f()
    with pytest.raises(RuntimeError):
        with j.transaction(message="m"):
            j.record("x")
            raise RuntimeError
    assert j.next_seq == 0 and not j.in_transaction
    with j.transaction(message="m", info="done") as tx:
        j.record("x")
    assert tx == 0 and j.log()["event"].tolist() == ["x", "commit"]
    j.close()


def test_record_outside_a_transaction_is_buffered_until_flush(jpath):
    j = Journal(jpath)
    j.record("a")
    assert j.durable_seq == -1 and j.next_seq == 1 and os.path.getsize(jpath + ".seg") == 0
    assert j.flush() == 0 and os.path.getsize(jpath + ".seg") > 0
    j.record_many("m", "load", [1, 2], "p", None, None)  # its own transaction, ended by a commit row
    assert j.durable_seq == 0 and j.next_seq == 4 and j.next_tx == 2
    j.close()
    with pytest.raises(JournalError):
        j.record("late")
    j.close()  # idempotent
    with Journal(jpath) as j:
        assert j.log()["event"].tolist() == ["a", "m", "m", "commit"]


# --- queries, blobs ---------------------------------------------------------------------------

def test_log_filters_and_history(monkeypatch):
    clock = iter(range(1_700_000_000_000_000_000, 1_800_000_000_000_000_000, 1_000_000))  # 1 ms steps
    j = Journal(author="ann", clock=clock.__next__)
    j.record("load", info='{"case":"x"}')
    j.record("set", "load", 1, "p_mw", 1.0, 2.0)
    j.record("set", "load", 2, "p_mw", 1.0, 5.0)
    j.record("set", "load", 1, "q_mvar", 0.0, 1.0)
    j.begin(author="bob")
    j.record("remove", "load", 1)
    j.record("set", "gen", 1, "p_mw", 3.0, 4.0)
    j.commit()
    j.record("solve", info='{"it":3}')
    j.flush()
    log = j.log()
    assert log["seq"].tolist() == list(range(8))
    assert j.log(since=2, until=4)["seq"].tolist() == [2, 3, 4]
    assert j.log(author="bob")["seq"].tolist() == [4, 5, 6]
    assert j.log(kind="load")["seq"].tolist() == [1, 2, 3, 4]
    assert j.log(kind=["gen", "load"], event="set")["seq"].tolist() == [1, 2, 3, 5]
    assert j.log(tx=4)["event"].tolist() == ["remove", "set", "commit"]
    t3 = log["time"].iloc[3]
    assert j.log(since=t3)["seq"].min() == 3 and j.log(until=t3.isoformat())["seq"].max() >= 3
    assert j.log(since=t3.to_pydatetime())["seq"].min() == 3
    assert len(j.log(until=datetime.datetime(2000, 1, 1))) == 0
    h = j.history("load", 1, "p_mw")
    assert h["seq"].tolist() == [1, 4] and h["event"].tolist() == ["set", "remove"]
    assert same(h["new"].iloc[0], 2.0) and j.history("load", 2, "p_mw")["seq"].tolist() == [2]
    assert pd.isna(log["eid"].iloc[0]) and log["eid"].iloc[1] == 1
    for bad in (dict(since=True), dict(until=[1]), dict(kind=3), dict(tx="1"), dict(since="not a time")):
        with pytest.raises(JournalError):
            j.log(**bad)
    j.close()


def test_blobs_are_stored_once_and_survive_reopen(jpath):
    data = bytes(range(256)) * 100
    with Journal(jpath) as j:
        sha = j.put_blob(data, name="snap")
        assert sha == hashlib.sha256(data).hexdigest() and j.put_blob(bytearray(data)) == sha
        assert j.get_blob(sha) == data
        with pytest.raises(JournalError) as e:
            j.get_blob("00" * 32)
        assert e.value.field == "sha256"
        with pytest.raises(JournalError):
            j.put_blob("text")
    con = duckdb.connect(jpath, read_only=True)
    assert con.execute("SELECT count(*), min(name), min(size) FROM blobs").fetchall() == [(1, "snap", len(data))]
    con.close()
    with Journal(jpath, read_only=True) as j:
        assert j.get_blob(sha) == data
        with pytest.raises(ReadOnlyError):
            j.put_blob(b"x")
    m = Journal()
    assert m.get_blob(m.put_blob(b"abc")) == b"abc"
    m.close()


# --- hash chain and verify ----------------------------------------------------------------------

def test_canonical_encoding_tells_apart_what_the_row_could_confuse():
    base = make_row(1, 1, 5, "a", None, "set", "load", 3, "p_mw", 0.0, 1.0, None)
    variants = [make_row(1, 1, 5, "a", None, "set", "load", 3, "p_mw", -0.0, 1.0, None),
                make_row(1, 1, 5, "a", "", "set", "load", 3, "p_mw", 0.0, 1.0, None),
                make_row(1, 1, 5, "a", None, "set", "load", 3, "p_mw", 0, 1.0, None),
                make_row(1, 1, 5, "a", None, "set", "load", 3, "p_mw", False, 1.0, None),
                make_row(1, 1, 5, "a", None, "set", "load", None, "p_mw", 0.0, 1.0, None),
                make_row(1, 1, 5, "a", None, "set", "loa", 3, "dp_mw", 0.0, 1.0, None),
                make_row(1, 1, 5, "a", None, "set", "load", 3, "p_mw", 0.0, f64(0x3FF0000000000001), None)]
    encodings = {canonical(r) for r in [base] + variants}
    assert len(encodings) == len(variants) + 1


def _rich_journal(path):
    """A small closed journal whose middle row (seq 5) has every kind of column filled or NULL."""
    with Journal(path, author="ann") as j:
        for k in range(4):
            j.record("set", "load", k, "p_mw", float(k), float(k) + 1)
        j.begin(message="edit")
        j.record("set", "load", 4, "p_mw", old=-0.0, new=2.5, info='{"a":1}')
        j.record("set", "load", 4, "name", old=None, new="x")
        j.commit()
        for k in range(4):
            j.record("set", "gen", k, "in_service", True, False)
    return 4  # seq of the middle row


EDITS = {"seq": "seq + 1000", "tx": "tx + 1", "ts_ns": "ts_ns + 1", "author": "'mallory'", "message": "'forged'",
         "event": "'add'", "kind": "'bus'", "eid": "eid + 1", "field": "'q_mvar'", "vtype_old": "2",
         "old_f": "0.5", "old_i": "7", "old_s": "'s'", "vtype_new": "4", "new_f": "2.5000000001",
         "new_i": "1", "new_s": "''", "info": "'{\"a\":2}'", "hash": "'\\x00'::BLOB"}


def test_verify_detects_a_hand_update_of_every_column_on_a_middle_row(tmp_path):
    src = str(tmp_path / "src.duckdb")
    mid = _rich_journal(src)
    with Journal(src, read_only=True) as j:
        assert j.verify() == 11
    assert set(EDITS) == set(store_mod.db.SCHEMA.names)
    for col, expr in EDITS.items():
        path = str(tmp_path / f"{col}.duckdb")
        shutil.copy(src, path)
        con = duckdb.connect(path)
        assert con.execute(f"UPDATE events SET {col} = {expr} WHERE seq = {mid}").fetchall() == [(1,)]
        con.close()
        with Journal(path, read_only=True) as j:
            with pytest.raises(JournalCorruptError) as e:
                j.verify()
        assert e.value.row == mid and e.value.file == path, (col, e.value)


def test_verify_detects_deleted_rows_and_a_missing_commit(tmp_path):
    src = str(tmp_path / "src.duckdb")
    mid = _rich_journal(src)
    for where, row in ((f"seq = {mid}", mid), ("seq = 6", 6), ("seq = 0", 0)):
        path = str(tmp_path / "del.duckdb")
        shutil.copy(src, path)
        con = duckdb.connect(path)
        con.execute(f"DELETE FROM events WHERE {where}")
        con.close()
        with Journal(path, read_only=True) as j, pytest.raises(JournalCorruptError) as e:
            j.verify()
        assert e.value.row == row, where


# --- crashes and the segment ----------------------------------------------------------------------

WRITE_AND_DIE = """
    import os
    from gridtape.journal import Journal
    j = Journal({path!r})
    for k in range({n}):
        j.record("set", "load", k, "p_mw", float(k), -0.0)
        j.flush()
    {extra}
    os._exit(0)
"""


def _write_and_die(path, n=5, extra=""):
    r = run_child(WRITE_AND_DIE.format(path=path, n=n, extra=extra))
    assert r.returncode == 0, r.stderr


def test_a_torn_last_frame_is_dropped_and_the_journal_continues(jpath):
    from gridtape.journal.segment import TEAR_ALIGN

    # the acknowledgement record as it was before the last flush (journal/ack.py): that flush is
    # the one the kill interrupts, it never returned
    _write_and_die(jpath, n=5, extra="import shutil; shutil.copy(j.path + '.ack', j.path + '.ack5'); "
                                     "j.record_many('set', 'load', list(range(300)), 'p_mw', [0.0] * 300, "
                                     "[1.0] * 300); j.flush()")
    seg = jpath + ".seg"
    whole = open(seg, "rb").read()
    five = whole.index(b"GTJ4", 1)
    for _ in range(4):
        five = whole.index(b"GTJ4", five + 1)  # where the sixth frame (the 300 rows) starts
    cut = (five // TEAR_ALIGN + 1) * TEAR_ALIGN  # the kill stopped its write at a page boundary
    assert five < cut < len(whole)
    open(seg, "wb").write(whole[:cut])
    with pytest.raises(JournalCorruptError):  # as the record stands, that frame was acknowledged
        Journal(jpath, read_only=True)
    os.replace(jpath + ".ack5", jpath + ".ack")
    with Journal(jpath, read_only=True) as j:  # the reader ignores the torn tail, writes nothing
        assert j.count() == 5
    assert os.path.getsize(seg) == cut
    with Journal(jpath) as j:
        assert j.count() == 5 and os.path.getsize(seg) == 0
        j.record("after")
    with Journal(jpath) as j:
        assert j.log()["event"].tolist() == ["set"] * 5 + ["after"] and j.verify() == 6
    with open(seg, "ab") as f:  # a short copy of an old frame is not the newest append: damage
        f.write(whole[:five][: five // 5 - 3])
    size = os.path.getsize(seg)
    with pytest.raises(JournalCorruptError):
        Journal(jpath)
    assert os.path.getsize(seg) == size


def test_a_damaged_frame_before_intact_ones_is_corruption_not_a_torn_tail(jpath):
    _write_and_die(jpath, n=3)
    seg = jpath + ".seg"
    data = bytearray(open(seg, "rb").read())
    data[20] ^= 0xFF  # inside the first frame's payload
    open(seg, "wb").write(bytes(data))
    with pytest.raises(JournalCorruptError) as e:
        Journal(jpath)
    assert e.value.file == seg
    assert open(seg, "rb").read() == bytes(data)  # nothing was cut


def test_a_crash_between_the_duckdb_commit_and_the_truncate_duplicates_nothing(jpath):
    extra = ("from gridtape.journal import segment\n"
             "    segment.Segment.truncate = lambda self, *a, **k: os._exit(0)\n"
             "    j.ingest()")
    _write_and_die(jpath, n=4, extra=extra)
    assert os.path.getsize(jpath + ".seg") > 0
    con = duckdb.connect(jpath, read_only=True)
    assert con.execute("SELECT count(*) FROM events").fetchall() == [(4,)]
    con.close()
    with Journal(jpath, read_only=True) as j:
        assert j.count() == 4
    with Journal(jpath) as j:
        assert j.next_seq == 4 and j.count() == 4 and os.path.getsize(jpath + ".seg") == 0
        j.record("x")
    with Journal(jpath) as j:
        assert j.log()["seq"].tolist() == list(range(5)) and j.verify() == 5


def test_unflushed_events_are_flushed_at_interpreter_exit(jpath):
    r = run_child(f"""
        from gridtape.journal import Journal
        j = Journal({jpath!r})
        j.record("bye")
    """)
    assert r.returncode == 0, r.stderr
    with Journal(jpath) as j:
        assert j.log()["event"].tolist() == ["bye"]


def test_sigkill_rounds_lose_no_acknowledged_event(tmp_path):
    spec = importlib.util.spec_from_file_location("sigkill_journal", os.path.join(ROOT, "tools", "sigkill_journal.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    path = str(tmp_path / "k.duckdb")
    rng = random.Random(7)
    last, rows, acks = -1, 0, 0
    for _ in range(5):
        facts = tool.one_round(path, rng, max_wait=0.3, since=rows)  # AssertionError on a broken tx
        assert facts["killed"]
        assert facts["rows"] > max(facts["last_ack"], last)  # every acknowledged seq is there
        assert facts["rows"] >= rows  # nothing earlier was lost either
        last, rows, acks = max(last, facts["last_ack"]), facts["rows"], acks + facts["acks"]
    assert acks > 0


# --- locking, read-only, memory --------------------------------------------------------------

def test_a_second_writer_is_refused_in_this_process_and_in_another(jpath):
    j = Journal(jpath)
    j.record("a")
    j.flush()
    with pytest.raises(JournalLockedError) as e:
        Journal(jpath)
    assert e.value.file == jpath and "writer in this process" in str(e.value)
    with Journal(jpath, read_only=True) as r:  # a reader in this process shares the writer's DuckDB
        assert r.count() == 1
    r = run_child(f"""
        from gridtape.journal import Journal
        from gridtape.errors import JournalLockedError
        for ro in (False, True):
            try:
                Journal({jpath!r}, read_only=ro)
                print("opened")
            except JournalLockedError as e:
                print("locked", e.file)
    """)
    assert r.stdout.split() == ["locked", jpath, "locked", jpath], r.stderr
    j.record("b")
    j.close()
    with Journal(jpath) as j2:
        assert j2.count() == 2


def test_read_only_sees_the_tail_writes_nothing_and_refuses_writes(jpath):
    _write_and_die(jpath, n=3)
    files = {p: open(p, "rb").read() for p in (jpath, jpath + ".seg")}
    r1, r2 = Journal(jpath, read_only=True), Journal(jpath, read_only=True)
    assert r1.count() == 3 and r2.log()["seq"].tolist() == [0, 1, 2] and r1.verify() == 3
    assert (r1.next_seq, r1.durable_seq) == (3, 2)
    for call in (lambda: r1.record("x"), lambda: r1.begin(), lambda: r1.ingest(),
                 lambda: r1.record_many("x", None, [1], None, None, None), lambda: r1.put_blob(b"")):
        with pytest.raises(ReadOnlyError):
            call()
    r1.close()
    r2.close()
    assert {p: open(p, "rb").read() for p in files} == files
    with pytest.raises(JournalError):
        Journal(jpath + ".missing", read_only=True)
    assert not os.path.exists(jpath + ".missing")


def test_an_in_memory_journal_writes_no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    j = Journal(ingest_every=10)
    for k in range(25):
        j.record("set", "load", k, "p_mw", 1.0, 2.0)
        j.flush()
    j.record_many("set", "load", np.arange(100), "q", np.zeros(100), None)
    j.put_blob(b"abc")
    assert j.path is None and j.count() == 126 and j.verify() == 126
    j.close()
    assert os.listdir(tmp_path) == []


def test_record_many_fast_path_records_what_the_checked_path_records():
    """The C path (int64 ids, float64/int64/bool arrays, None) and the Python path (lists,
    other dtypes, numpy scalars) give the same rows; both copy what they are given."""
    ids = np.array([4, 9, 2], np.int64)
    cases = [(np.array([1.5, -0.0, np.nan]), None), (np.array([1, -2, 2**62], np.int64), np.array([True, False, True])),
             (None, np.array([0.25, 0.5, 0.75]))]
    fast, slow = Journal(clock=lambda: 7), Journal(clock=lambda: 7)
    for olds, news in cases:
        fast.record_many("set", "load", ids, "p_mw", olds, news)
        slow.record_many("set", "load", ids.tolist(), "p_mw", None if olds is None else olds.tolist(),
                         None if news is None else news.astype(object))
    ids[0] = 99  # the caller's arrays change after the call: the events do not
    cases[0][0][0] = 7.0
    with fast.transaction(message="m"):
        fast.record_many("set", "gen", np.arange(2), "in_service", np.array([True, False]), np.zeros(2, np.int64))
    with slow.transaction(message="m"):
        slow.record_many("set", "gen", [0, 1], "in_service", [True, False], [0, 0])
    a, b = fast.log(), slow.log()
    assert len(a) == 3 * 4 + 3 and a["eid"].tolist()[:3] == [4, 9, 2]
    for col in ("seq", "tx", "event", "kind", "eid", "field", "message"):
        assert a[col].tolist() == b[col].tolist(), col
    for col in ("old", "new"):
        assert_values(a[col].tolist(), b[col].tolist())
    assert fast.verify() == slow.verify() == len(a)
    with pytest.raises(JournalError) as e:  # text the flush could not encode: refused at once
        fast.record_many("set", "lo\udc80d", np.arange(2), "p", None, None)
    assert e.value.field == "kind"
    with pytest.raises(JournalError):
        fast.record_many("set", "load", np.arange(3), "p", np.zeros(2), None)
    assert fast.count() == len(a)


def test_a_bare_recorder_records_what_a_journal_records():
    """The Recorder is complete on its own: transactions, conversions and flushes, its frames
    kept in ``_mirror`` (the default ``_ingest_due`` keeps them); they decode to the journal's rows."""
    from gridtape.journal.db import frames_table
    from gridtape.journal.recorder import Recorder

    def play(r):
        r.record("set", "load", 3, "p_mw", 1.5, np.float64(2.0), info={"k": 1})
        with r.transaction(author="bob", message="m"):
            r.record_many("set", "gen", [4, 5], "p_mw", None, [1, 2])
            r.record_solve(True, 3, 1e-9, 1.25, "none", "nr", False, "0.5")
        r.begin()
        r.record("dropped")
        r.rollback()
        r.record("tag")
        return r.flush()

    rec = Recorder("ann", clock=lambda: 7, ingest_every=2)
    j = Journal(author="ann", clock=lambda: 7)
    assert play(rec) == play(j) == 5 and rec.next_seq == j.next_seq == 6
    assert len(rec._mirror) == 2 and rec._mirror_rows == 6  # nothing took them
    table, _ = frames_table(rec._mirror, bytes(16))
    got = table.to_pandas()
    want = j.log()
    for col in ("seq", "tx", "event", "kind", "field", "author", "message", "info"):
        assert got[col].tolist() == want[col].tolist(), col
    assert got["hash"].tolist() == want["hash"].tolist()
    with pytest.raises(JournalError):
        rec.commit()


def test_log_columns_fetches_only_what_is_asked():
    j = Journal()
    j.record("load", info="{}")
    j.record_many("set", "load", np.arange(5), "p_mw", np.zeros(5), np.arange(5.0))
    j.record("set", "bus", 1, "name", "a", "b")
    full = j.log()
    part = j.log(columns=["new", "seq", "event"])
    assert list(part.columns) == ["seq", "event", "new"]
    for c in part.columns:
        assert part[c].tolist() == full[c].tolist()
    assert j.log(since=2, event="set", columns="eid")["eid"].tolist() == [1, 2, 3, 4, 1]
    for bad in ([], ["nope"], 3):
        with pytest.raises(JournalError) as e:
            j.log(columns=bad)
        assert e.value.field == "columns"


def test_rows_come_back_in_seq_order_whatever_the_scan_order():
    from gridtape.journal import query

    j = Journal()
    for k in range(6):
        j.record("set", "load", k, "p_mw", None, float(k))
    t = db.fetch(j._con, f"SELECT * FROM {j._source()}").take([3, 0, 5, 1, 4, 2])
    assert query.in_seq_order(t).column("seq").to_pylist() == list(range(6))
