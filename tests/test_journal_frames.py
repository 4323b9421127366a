"""The C frame codec of the journal (journal/frames.pyx) against its Python references:
our BLAKE2b against hashlib, the frame checksum against a Python transcription, encode() +
decode() against buffer.to_rows + chain.chain (the pure-Python canonical encoding and hash
chain), scan() on torn and damaged frames of every format (GTJ4; GTJ3 frames as gridtape 0.4
wrote them, rebuilt here from GTJ4 ones with the Python transcription of its checksum; GTJ2
frames built here in pure Python as gridtape 0.3 wrote them)."""
from __future__ import annotations

import hashlib
import math
import struct

import numpy as np
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from gridtape.journal import buffer, frames
from gridtape.journal.chain import canonical, chain
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


M64 = (1 << 64) - 1
K1, K2, K3, K4 = 0x9E3779B97F4A7C15, 0xD6E8FEB86659FD93, 0xA0761D6478BD642F, 0xE7037ED1A0B428DB


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _lane(acc, w):
    return (_rotl((acc + w * K2) & M64, 29) * K1) & M64


def gtj3(frame: bytes) -> bytes:
    """A GTJ4 frame as gridtape 0.4 wrote it (GTJ3): the same bytes, its own checksum."""
    body = b"GTJ3" + frame[4:-8]
    return body + sum64_reference(body).to_bytes(8, "little")


def sum64_reference(data: bytes) -> int:
    """journal/sum64.h transcribed: four lanes over 32-byte stripes, the rest word by word
    then byte by byte, the length folded in, a final mix."""
    n, i = len(data), 0
    lanes = [K1, K2, K3, K4]
    while i + 32 <= n:
        for k in range(4):
            lanes[k] = _lane(lanes[k], int.from_bytes(data[i + 8 * k:i + 8 * k + 8], "little"))
        i += 32
    h = (_rotl(lanes[0], 1) + _rotl(lanes[1], 7) + _rotl(lanes[2], 12) + _rotl(lanes[3], 18)) & M64
    h ^= (n * K3) & M64
    while i + 8 <= n:
        h = _lane(h, int.from_bytes(data[i:i + 8], "little"))
        i += 8
    while i < n:
        h = _lane(h, data[i] + 0x100 * (i & 7))
        i += 1
    for shift, mul in ((32, K3), (29, K4)):
        h ^= h >> shift
        h = (h * mul) & M64
    return h ^ (h >> 32)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_sum64_equals_its_python_transcription(data):
    assert frames.sum64(data) == sum64_reference(data)


def test_sum64_changes_with_any_flipped_bit_and_any_cut():
    data = bytes((31 * k + 7) & 0xFF for k in range(333))
    want = frames.sum64(data)
    for pos in range(len(data)):
        for bit in (0, 3, 7):
            bad = bytearray(data)
            bad[pos] ^= 1 << bit
            assert frames.sum64(bytes(bad)) != want, (pos, bit)
    assert len({frames.sum64(data[:k]) for k in range(len(data) + 1)}) == len(data) + 1
    assert frames.sum64(data + bytes(8)) != want  # zeros appended


def legacy_frame(rows, prev):
    """A GTJ2 frame (gridtape 0.3) of row tuples, built in pure Python: the header, the
    canonical rows, then their chained hashes."""
    hashes = chain(rows, prev)
    payload = (struct.pack("<I4q", len(rows), rows[0][0], rows[-1][0], rows[-1][1], rows[-1][2]) + prev
               + b"".join(canonical(r) for r in rows) + b"".join(hashes))
    return b"GTJ2" + struct.pack("<I", len(payload)) + payload, hashes[-1]


def _check_columns(table, rows, hashes):
    got = table.to_pylist()
    names = table.column_names
    assert len(got) == len(rows)
    for row, h, g in zip(rows, hashes, got):
        assert g["hash"] == h
        for name, want in zip(names, row):
            assert _same(g[name], want), (name, g[name], want)


@settings(max_examples=150, deadline=None)
@given(buffers(), st.integers(0, 10**6), st.integers(0, 1000), st.binary(min_size=16, max_size=16))
def test_encode_agrees_with_the_python_reference(buf, seq, tx, prev):
    rows = buffer.to_rows(buf, seq, tx, 500_000, "ann")
    frame, n, last_seq, last_tx, last_ts = frames.encode(buf, seq, tx, 500_000, "ann")
    assert n == len(rows)
    if not rows:
        assert frame is None
        return
    assert frame[:4] == b"GTJ4" and (last_seq, last_tx, last_ts) == rows[-1][:3]
    assert frames.scan(frame) == (len(frame), n, seq, last_seq, last_tx, last_ts, None, None)
    assert frame[-8:] == xxhash.xxh3_64_intdigest(frame[:-8] + bytes(8)).to_bytes(8, "little")
    g3 = gtj3(frame)  # the same rows as gridtape 0.4 wrote them
    assert frames.scan(g3) == (len(g3), n, seq, last_seq, last_tx, last_ts, None, None)
    hashes = chain(rows, prev)
    table, last = frames_table([frame, frame], prev)  # the second copy chains on the first
    assert table.num_rows == 2 * n and last == chain(rows + rows, prev)[-1]
    _check_columns(table.slice(0, n), rows, hashes)
    t3, last3 = frames_table([g3], prev)  # GTJ3 decodes to the same rows and hashes
    assert last3 == hashes[-1]
    _check_columns(t3, rows, hashes)
    # the same rows as a GTJ2 frame (0.3) decode to the same table and carry the same hashes
    old, old_last = legacy_frame(rows, prev)
    assert frames.scan(old) == (len(old), n, seq, last_seq, last_tx, last_ts, prev, old_last)
    t2, last2 = frames_table([old], prev)
    assert last2 == old_last == hashes[-1]
    _check_columns(t2, rows, hashes)


def test_record_many_rows_after_the_first_are_repeat_rows():
    n = 150
    ids = np.arange(n) * 7 + 1
    items = [buffer.Many("set", "load", ids, "p_mw", typed_array(np.linspace(-1, 1, n), "old", n),
                         typed_array(np.arange(n), "new", n)),
             buffer.Many("set", "gen", ids[:3], "name", typed_array(None, "old", 3),
                         typed_array(np.array(["a", "b", "c"]), "new", 3)),
             buffer.Many("set", "gen", ids[:4], "in_service", typed_array(np.ones(4, bool), "old", 4),
                         typed_array(np.array([None, 1.5, "s", True], dtype=object), "new", 4))]
    buf = [[], buffer.Tx(77, "ann", "apply_action 12", items, None), []]
    rows = buffer.to_rows(buf, 5, 2, 0, "ann")
    frame = frames.encode(buf, 5, 2, 0, "ann")[0]
    full = len(b"".join(canonical(r) for r in rows))
    assert len(frame) < full / 3  # 148 of the first call's rows are 27-byte repeat rows
    prev = bytes(range(16))
    table, last = frames_table([frame], prev)
    _check_columns(table, rows, chain(rows, prev))


def _frame(k=3):
    buf = [[(10 + i, "set", "load", i, "p_mw", float(i), float(i) + 0.5, None) for i in range(k)],
           buffer.Tx(20, "ann", "m", [buffer.Many("set", "gen", np.arange(4), "p_mw",
                                                  typed_array(np.arange(4.0), "old", 4),
                                                  typed_array(np.arange(4), "new", 4))], None), []]
    return frames.encode(buf, 0, 0, 0, "ann")[0]


@pytest.mark.parametrize("fmt", ["GTJ4", "GTJ3", "GTJ2"])
def test_scan_refuses_every_torn_prefix_and_any_flipped_byte(fmt):
    f = _frame()
    if fmt == "GTJ3":
        f = gtj3(f)
    if fmt == "GTJ2":
        rows = buffer.to_rows([[(10 + i, "set", "load", i, "p_mw", float(i), float(i) + 0.5, None)
                                for i in range(3)]], 0, 0, 0, "ann")
        f = legacy_frame(rows, bytes(16))[0]
    assert frames.scan(f) is not None
    for cut in range(len(f)):
        assert frames.scan(f[:cut]) is None, cut
    for pos in range(len(f)):
        for flip in (0x40, 0x01, 0xFF):
            bad = bytearray(f)
            bad[pos] ^= flip
            assert frames.scan(bytes(bad)) is None, (pos, flip)


def test_scan_finds_a_frame_at_an_offset_and_decode_joins_frames():
    a, b = _frame(2), _frame(4)
    data = a + b
    first = frames.scan(data, 0)
    assert first[0] == len(a) and frames.scan(data, first[0])[0] == len(data)
    n, num, _, text, hashes = frames.decode([a, b])
    assert n == 2 + 5 + 4 + 5 and num["seq"].tolist() == list(range(7)) + list(range(9)) and len(hashes) == 16 * n
    assert frames.decode([])[0] == 0


def test_a_gtj2_frame_then_gtj3_frames_chain_on():
    rows = buffer.to_rows([[(10, "set", "load", 1, "p_mw", 1.0, 2.0, None)]], 0, 0, 0, "ann")
    old, old_last = legacy_frame(rows, bytes(16))
    buf = [[(11, "set", "load", 2, "p_mw", 2.0, 3.0, None)]]
    new = frames.encode(buf, 1, 1, 10, "ann")[0]
    table, last = frames_table([old, new], bytes(16))
    both = rows + buffer.to_rows(buf, 1, 1, 10, "ann")
    _check_columns(table, both, chain(both))


def test_text_that_is_not_utf8_names_its_column():
    with pytest.raises(frames.TextError) as e:
        frames.encode([[(1, "set", "load", 1, "p\udc80", 1.0, 2.0, None)]], 0, 0, 0, "ann")
    assert e.value.field == "field"
    with pytest.raises(frames.TextError) as e:
        frames.encode([[(1, "set", "load", 1, "p", "\ud800", 2.0, None)]], 0, 0, 0, "ann")
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
