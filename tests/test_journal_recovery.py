"""Crash points of the journal's segments (issue 16): a torn append versus damage, and recovery.

Each test builds the file state a crash (or damage) leaves directly: the DuckDB file as it was
before the flushes, and the segment files holding the flushed frames (whole, cut, flipped,
moved between `.seg` and `.seg2`).  A tear (the newest append cut short where a kill or a power
loss stops it, nothing acknowledged after it) is cut on reopen; everything else is damage:
JournalCorruptError naming the file and the byte offset, and no file is changed.
`Journal.recover` / `gridtape recover` salvage every frame that verifies.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from gridtape.cli import main as cli_main
from gridtape.errors import JournalCorruptError, JournalError, JournalLockedError
from gridtape.journal import Journal
from gridtape.journal.segment import TEAR_ALIGN


def _build(tmp_path, sizes=(3, 3, 3, 300)):
    """A journal killed after flushing one frame per entry of ``sizes`` (a record_many of that
    many rows plus its commit row) and before moving them into DuckDB: ``(path, db_bytes,
    seg_bytes, frame_ends, events)`` with ``events`` the acknowledged count."""
    path = str(tmp_path / "j.duckdb")
    with Journal(path) as j:
        j.record("load")
    db_bytes = open(path, "rb").read()
    ends = []
    j = Journal(path, ingest_every=10 ** 9, background=False)
    for k, n in enumerate(sizes):
        j.record_many("set", "load", np.arange(n), "p_mw", np.zeros(n), np.full(n, float(k + 1)))
        j.flush()
        ends.append(os.path.getsize(path + ".seg"))
    seg = open(path + ".seg", "rb").read()
    j.close()
    return path, db_bytes, seg, ends, 1 + sum(n + 1 for n in sizes)


def _lay(path, db_bytes, seg=b"", seg2=b""):
    """Put the post-crash files in place."""
    for suffix in (".wal",):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    open(path, "wb").write(db_bytes)
    open(path + ".seg", "wb").write(seg)
    open(path + ".seg2", "wb").write(seg2)


def _files(path):
    return [open(path + s, "rb").read() for s in (".seg", ".seg2")]


def test_the_builder_lays_a_state_that_reopens_whole(tmp_path):
    path, dbb, seg, ends, n = _build(tmp_path)
    _lay(path, dbb, seg)
    with Journal(path) as j:
        assert j.count() == n and j.verify() == n
    _lay(path, dbb, seg[:ends[1]], seg[ends[1]:])  # frames spread over both segments (a move under way)
    with Journal(path) as j:
        assert j.count() == n and j.verify() == n


def _refused(path, offset, file_suffix=".seg"):
    before = _files(path)
    for read_only in (True, False):
        with pytest.raises(JournalCorruptError) as e:
            Journal(path, read_only=read_only)
        assert e.value.file == path + file_suffix and e.value.offset == offset, str(e.value)
        assert f"offset {offset}" in str(e.value) and isinstance(e.value, ValueError)
        assert _files(path) == before  # the evidence is kept: nothing was cut
    return e.value


def test_a_full_length_last_frame_with_a_bad_checksum_is_damage(tmp_path):
    path, dbb, seg, ends, n = _build(tmp_path)
    bad = bytearray(seg)
    bad[ends[-2] + 40] ^= 0x01  # a payload byte of the last frame; its length is all there
    _lay(path, dbb, bytes(bad))
    _refused(path, ends[-2])


def test_a_segment_truncated_into_acknowledged_frames_is_damage(tmp_path):
    path, dbb, seg, ends, n = _build(tmp_path)
    for cut in (ends[1] + 30, ends[2] - 1, ends[-1] - 1):  # inside frame 3, the end of frame 3, the last frame
        if cut % TEAR_ALIGN == 0:
            cut -= 1
        _lay(path, dbb, seg[:cut])
        _refused(path, max(e for e in [0] + ends if e <= cut))


def test_a_torn_append_is_cut_and_the_journal_continues(tmp_path):
    path, dbb, seg, ends, n = _build(tmp_path)
    last = 300 + 1
    cut = (ends[-2] // TEAR_ALIGN + 1) * TEAR_ALIGN  # the kill stopped the write at a page boundary
    assert ends[-2] < cut < ends[-1]
    _lay(path, dbb, seg[:cut])
    with Journal(path, read_only=True) as r:  # a reader ignores the tear and writes nothing
        assert r.count() == n - last
    assert os.path.getsize(path + ".seg") == cut
    with Journal(path) as j:
        assert j.count() == n - last and j.verify() == n - last
        j.record("after")
    with Journal(path) as j:
        assert j.verify() == n - last + 1 and j.log()["event"].iloc[-1] == "after"
    for tail in (seg[ends[-2]:ends[-2] + 3], bytes(77)):  # a cut magic at a boundary; bytes never written
        pad = (-(ends[-2] + len(tail))) % TEAR_ALIGN if tail[:1] == b"G" else 0
        if pad:
            continue
        _lay(path, dbb, seg[:ends[-2]] + tail)
        with Journal(path) as j:
            assert j.count() == n - last


def test_a_tear_in_the_older_segment_is_damage(tmp_path):
    """A short frame in .seg while .seg2 holds newer acknowledged frames: not the newest append."""
    path, dbb, seg, ends, n = _build(tmp_path, sizes=(3, 300, 3, 3))
    cut = (ends[0] // TEAR_ALIGN + 1) * TEAR_ALIGN
    assert ends[0] < cut < ends[1]
    _lay(path, dbb, seg[:cut], seg[ends[1]:])
    _refused(path, ends[0])


def test_damage_spanning_both_segments_changes_neither(tmp_path):
    path, dbb, seg, ends, n = _build(tmp_path, sizes=(3, 3, 3, 300))
    bad = bytearray(seg[:ends[1]])
    bad[ends[0] + 40] ^= 0x10  # the second frame of .seg, full length: damage
    cut = (ends[2] // TEAR_ALIGN + 1) * TEAR_ALIGN  # .seg2: frame 3 whole, frame 4 torn
    _lay(path, dbb, bytes(bad), seg[ends[1]:cut])
    _refused(path, ends[0])


def test_garbage_after_the_frames_is_damage(tmp_path):
    path, dbb, seg, ends, n = _build(tmp_path)
    _lay(path, dbb, seg + b"not a frame at all" * 40)
    _refused(path, ends[-1])


# --- recovery -------------------------------------------------------------------------------------
def test_recover_salvages_what_verifies_and_reports_the_rest(tmp_path):
    path, dbb, seg, ends, n = _build(tmp_path)
    bad = bytearray(seg)
    bad[ends[1] + 40] ^= 0x01  # frame 3 of 4 damaged: frames 1, 2 salvaged; 3 lost; 4 cannot chain
    _lay(path, dbb, bytes(bad))
    before = _files(path) + [open(path, "rb").read()]
    r = Journal.recover(path)
    out = path + ".recovered"
    assert r["recovered"] == out and r["events_kept"] == 1 + 4 + 4
    assert r["damaged"] == [{"file": path + ".seg", "offset": ends[1], "bytes": ends[2] - ends[1], "at_end": False,
                             "events": 4, "first_seq": 9}]
    assert [(x["first_seq"], x["last_seq"]) for x in r["left_out"]] == [(13, 313)]
    assert r["events_lost"] == 4 + 301 and r["ok"] is False
    assert json.load(open(out + ".recovery.json")) == r
    assert _files(path) + [open(path, "rb").read()] == before  # the damaged journal is left as it was
    with Journal(out) as j:
        assert j.verify() == 9 and j.log()["new"].iloc[-2] == 2.0
        j.record("after")
    with pytest.raises(JournalError):  # never over an existing journal
        Journal.recover(path)


def test_recover_in_place_keeps_a_backup(tmp_path):
    path, dbb, seg, ends, n = _build(tmp_path)
    _lay(path, dbb, seg[:ends[-1] - 5])
    r = Journal.recover(path, in_place=True)
    assert r["events_kept"] == n - 301 and r["events_lost"] == 301 and r["damaged"][0]["at_end"]
    assert len(r["backup"]) >= 3 and all(os.path.exists(b) for b in r["backup"])
    with Journal(path) as j:
        assert j.verify() == n - 301


def test_recover_cuts_duckdb_rows_at_the_first_bad_one_on_a_transaction_boundary(tmp_path):
    import duckdb

    path, dbb, seg, ends, n = _build(tmp_path)
    _lay(path, dbb, seg)
    with Journal(path) as j:
        assert j.count() == n
    con = duckdb.connect(path)
    con.execute("UPDATE events SET new_f = 99 WHERE seq = 6")  # inside the second transaction (seqs 5-8)
    con.close()
    with Journal(path, read_only=True) as j, pytest.raises(JournalCorruptError):
        j.verify()
    r = Journal.recover(path, str(tmp_path / "out.duckdb"))
    assert r["events_kept"] == 5 and r["events_lost"] == n - 5 and r["left_out"][0]["first_seq"] == 5


def test_recover_refuses_a_journal_held_by_a_writer(tmp_path):
    path, dbb, seg, ends, n = _build(tmp_path)
    with Journal(path):
        with pytest.raises(JournalLockedError):
            Journal.recover(path)


def test_cli_recover(tmp_path, capsys):
    path, dbb, seg, ends, n = _build(tmp_path)
    bad = bytearray(seg)
    bad[ends[-2] + 40] ^= 0x01
    _lay(path, dbb, bytes(bad))
    assert cli_main(["verify", path]) == 2  # refuses to open, names the offset
    assert f"offset {ends[-2]}" in capsys.readouterr().err
    assert cli_main(["recover", path, "-o", str(tmp_path / "r.duckdb")]) == 1
    out = capsys.readouterr().out
    assert f": {n - 301} events salvaged" in out and " 301 lost" in out
    assert cli_main(["verify", str(tmp_path / "r.duckdb")]) == 0
