"""The C frame codec of the journal (journal/frames.pyx) against its Python references:
our BLAKE2b against hashlib, encode() against buffer.to_rows + chain.chain (the pure-Python
canonical encoding), scan() on torn and damaged frames, decode() against the rows."""
from __future__ import annotations

import hashlib
import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridtape.journal import buffer, frames
from gridtape.journal.chain import chain
from gridtape.journal.columns import typed_array
from gridtape.journal.db import frames_table


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.integers(1, 64))
def test_blake2b_equals_hashlib(data, size):
    assert frames.blake2b(data, size) == hashlib.blake2b(data, digest_size=size).digest()


@pytest.mark.parametrize("n", [0, 1, 127, 128, 129, 255, 256, 257, 100_000])
def test_blake2b_block_boundaries(n):
    data = bytes((7 * k + 3) & 0xFF for k in range(n))
    assert frames.blake2b(data) == hashlib.blake2b(data, digest_size=16).digest()


TEXT = st.one_of(st.none(), st.text(max_size=6))
VALUE = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**63), 2**63 - 1),
                  st.booleans(), st.text(max_size=5),
                  st.sampled_from([struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000001))[0], -0.0]))
EID = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1))
ITEM = st.tuples(st.text(min_size=1, max_size=4), TEXT, EID, TEXT, VALUE, VALUE, TEXT)


def _utf8(s):
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _clean(items):
    return [it for it in items if all(_utf8(x) for x in it if isinstance(x, str))]


@st.composite
def buffers(draw):
    """A journal buffer: auto rows, transactions of tuples and record_many items, in any order."""
    chunks = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            auto = [(draw(st.integers(0, 10**6)), *it) for it in _clean(draw(st.lists(ITEM, max_size=4)))]
            chunks.append(auto)
        else:
            items = _clean(draw(st.lists(ITEM, max_size=3)))
            if draw(st.booleans()):
                n = draw(st.integers(1, 5))
                kind = draw(st.sampled_from(["f", "i", "b", "s", "none", "obj"]))
                vals = {"f": np.linspace(-1, 1, n), "i": np.arange(n) - 2, "b": np.arange(n) % 2 == 0,
                        "s": np.array(["x", "é", "", "漢", "z"][:n]), "none": None,
                        "obj": np.array([None, 1.5, "s", True, 3][:n], dtype=object)}[kind]
                items.insert(draw(st.integers(0, len(items))),
                             buffer.Many("set", "load", np.arange(n) * 3, "p_mw", typed_array(vals, "old", n),
                                         typed_array(np.full(n, 2.5), "new", n)))
            author, message, info = (draw(st.one_of(st.none(), st.text(max_size=4).filter(_utf8))) for _ in range(3))
            chunks.append(buffer.Tx(draw(st.integers(0, 10**6)), author, message, items, info))
    chunks.append([])
    return chunks


def _same(a, b):
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
                      and struct.pack("<d", a) == struct.pack("<d", b))


@settings(max_examples=150, deadline=None)
@given(buffers(), st.integers(0, 10**6), st.integers(0, 1000), st.binary(min_size=16, max_size=16))
def test_encode_agrees_with_the_python_reference(buf, seq, tx, prev):
    rows = buffer.to_rows(buf, seq, tx, 500_000, "ann")
    frame, n, last_seq, last_tx, last_ts, last = frames.encode(buf, seq, tx, 500_000, "ann", prev)
    assert n == len(rows)
    if not rows:
        assert frame is None and last == prev
        return
    hashes = chain(rows, prev)
    assert last == hashes[-1] and (last_seq, last_tx, last_ts) == rows[-1][:3]
    assert frames.scan(frame) == (len(frame), n, seq, last_seq, last_tx, last_ts, prev, last)
    table = frames_table([frame, frame])
    assert table.num_rows == 2 * n
    got = table.slice(0, n).to_pylist()
    names = table.column_names
    for row, h, g in zip(rows, hashes, got):
        assert g["hash"] == h
        for name, want in zip(names, row):
            assert _same(g[name], want), (name, g[name], want)


def _frame(k=3):
    buf = [[(10 + i, "set", "load", i, "p_mw", float(i), float(i) + 0.5, None) for i in range(k)]]
    return frames.encode(buf, 0, 0, 0, "ann", bytes(16))[0]


def test_scan_refuses_every_torn_prefix_and_any_flipped_byte():
    f = _frame()
    assert frames.scan(f) is not None
    for cut in range(len(f)):
        assert frames.scan(f[:cut]) is None, cut
    for pos in range(len(f)):
        bad = bytearray(f)
        bad[pos] ^= 0x40
        assert frames.scan(bytes(bad)) is None, pos


def test_scan_finds_a_frame_at_an_offset_and_decode_joins_frames():
    a, b = _frame(2), _frame(4)
    data = a + b
    first = frames.scan(data, 0)
    assert first[0] == len(a) and frames.scan(data, first[0])[0] == len(data)
    n, num, _, text, hashes = frames.decode([a, b])
    assert n == 6 and num["seq"].tolist() == [0, 1, 0, 1, 2, 3] and len(hashes) == 96


def test_text_that_is_not_utf8_names_its_column():
    with pytest.raises(frames.TextError) as e:
        frames.encode([[(1, "set", "load", 1, "p\udc80", 1.0, 2.0, None)]], 0, 0, 0, "ann", bytes(16))
    assert e.value.field == "field"
    with pytest.raises(frames.TextError) as e:
        frames.encode([[(1, "set", "load", 1, "p", "\ud800", 2.0, None)]], 0, 0, 0, "ann", bytes(16))
    assert e.value.field == "old_s"


def test_a_failed_segment_write_raises_keeps_the_events_and_a_retry_lands_them(tmp_path):
    import os

    from gridtape.errors import JournalError
    from gridtape.journal import Journal

    path = str(tmp_path / "j.duckdb")
    j = Journal(path)
    j.record("a")
    assert j.flush() == 0
    size = os.path.getsize(path + ".seg")
    j.record("b", kind="load", eid=1, field="p_mw", old=1.0, new=2.0)
    good = j._seg_fd
    ro = os.open(path + ".seg", os.O_RDONLY)
    try:
        j._seg_fd = ro  # writing through a read-only descriptor fails (EBADF)
        with pytest.raises(JournalError) as e:
            j.flush()
        assert e.value.file == path + ".seg" and j.durable_seq == 0 and j.next_seq == 2
        assert os.path.getsize(path + ".seg") == size
    finally:
        j._seg_fd = good
        os.close(ro)
    assert j.flush() == 1
    j.close()
    with Journal(path, read_only=True) as r:
        assert r.verify() == 2 and r.log()["event"].tolist() == ["a", "b"]


@pytest.mark.parametrize("m", [0.0, 1.0, 1.23456e-9, -2.5e-3, 9.99996, 123456.7, 1e-300, 3e300,
                               float("nan"), float("inf"), float("-inf")])
def test_solve_events_carry_their_numbers_as_json(m):
    import json

    from gridtape.journal import Journal

    j = Journal(clock=lambda: 5)
    j.record_solve(True, 4, m, 12.3456789, "incremental", "nr", True, "9.9.9")
    j.record_solve(False, 0, m, 0.0, "full", "dc", False, "9.9.9")
    (ts, event, _, _, _, _, new, info), second = j._auto
    assert (ts, event, new, second[6]) == (5, "solve", True, False)
    d = json.loads(info)
    assert d == {"converged": True, "iterations": 4, "mismatch": d["mismatch"], "runtime_ms": 12.346,
                 "rebuild": "incremental", "algorithm": "nr", "distributed_slack": True, "version": "9.9.9"}
    got = d["mismatch"]
    assert (math.isnan(got) and math.isnan(m)) or got == m or abs(got - m) <= 5e-5 * abs(m)
    assert json.loads(second[7])["converged"] is False and "distributed_slack" not in json.loads(second[7])
    with pytest.raises(ValueError):
        j.record_solve(True, 1, 0.0, 1.0, 'in"jected', "nr", False, "1")
