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
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

from gridtape.cli import main as cli_main
from gridtape.errors import JournalCorruptError, JournalError, JournalLockedError
from gridtape.journal import Journal
from gridtape.journal.segment import TEAR_ALIGN


ACKS = {}  # path -> the acknowledgement record (journal/ack.py) after each flush of _build


def _build(tmp_path, sizes=(3, 3, 3, 300)):
    """A journal killed after flushing one frame per entry of ``sizes`` (a record_many of that
    many rows plus its commit row) and before moving them into DuckDB: ``(path, db_bytes,
    seg_bytes, frame_ends, events)`` with ``events`` the acknowledged count.  ``ACKS[path][k]``
    is the acknowledgement record as flush ``k`` left it."""
    path = str(tmp_path / "j.duckdb")
    with Journal(path) as j:
        j.record("load")
    db_bytes = open(path, "rb").read()
    ends, ACKS[path] = [], []
    j = Journal(path, ingest_every=10 ** 9, background=False)
    for k, n in enumerate(sizes):
        j.record_many("set", "load", np.arange(n), "p_mw", np.zeros(n), np.full(n, float(k + 1)))
        j.flush()
        ends.append(os.path.getsize(path + ".seg"))
        ACKS[path].append(open(path + ".ack", "rb").read())
    seg = open(path + ".seg", "rb").read()
    j.close()
    return path, db_bytes, seg, ends, 1 + sum(n + 1 for n in sizes)


def _lay(path, db_bytes, seg=b"", seg2=b"", acked=None):
    """Put the post-crash files in place; ``acked=k``: the acknowledgement record as flush ``k``
    of _build left it (default: the last one, every frame acknowledged)."""
    for suffix in (".wal",):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    open(path, "wb").write(db_bytes)
    open(path + ".seg", "wb").write(seg)
    open(path + ".seg2", "wb").write(seg2)
    open(path + ".ack", "wb").write(ACKS[path][-1 if acked is None else acked])


def _files(path):
    """Every file of the journal (a refused open changes none: not even DuckDB's WAL is checkpointed)."""
    return [open(path + s, "rb").read() if os.path.exists(path + s) else None
            for s in ("", ".wal", ".seg", ".seg2", ".ack")]


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
    _lay(path, dbb, seg[:cut], acked=-2)  # killed in the last flush: it never returned
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
        _lay(path, dbb, seg[:ends[-2]] + tail, acked=-2)
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


# --- acknowledged frames cut off (the acknowledgement record, journal/ack.py) ------------------------
def _missing(path, seg_name, acked_bytes, found_bytes, offset):
    """The open (reader and writer) reports acknowledged events missing, naming the segment,
    the acknowledged length and the length found, and changes no byte."""
    e = _refused(path, offset, seg_name)
    assert "acknowledged" in str(e) and f"{acked_bytes} bytes" in str(e) and f"holds {found_bytes} bytes" in str(e)
    return e


def test_whole_acknowledged_frames_cut_off_the_end_are_damage(tmp_path):
    path, dbb, seg, ends, n = _build(tmp_path)
    for cut in (ends[-2], ends[0], 0):  # the last frame, several, every frame of the segment
        _lay(path, dbb, seg[:cut])
        e = _missing(path, ".seg", ends[-1], cut, cut)
        kept = 1 + (sum(k + 1 for k in (3, 3, 3, 300)[:ends.index(cut) + 1]) if cut else 0)
        assert e.row == kept  # the first seq missing
    # a cut at a block boundary inside the last, acknowledged frame looks like a tear: it is not one
    cut = (ends[-2] // TEAR_ALIGN + 1) * TEAR_ALIGN
    _lay(path, dbb, seg[:cut])
    _missing(path, ".seg", ends[-1], cut, ends[-2])


def test_a_tear_of_an_unacknowledged_flush_still_reopens(tmp_path):
    """The record as the last flush found it (that flush never returned): its frame cut at a
    block boundary is a tear; the frames before it are all there."""
    path, dbb, seg, ends, n = _build(tmp_path)
    _lay(path, dbb, seg[:ends[-2]], acked=-2)  # the kill came before the last write began
    with Journal(path) as j:
        assert j.count() == n - 301


def test_recover_salvages_what_verifies_when_acknowledged_frames_were_cut_off(tmp_path):
    path, dbb, seg, ends, n = _build(tmp_path)
    _lay(path, dbb, seg[:ends[1]])  # frames 3 and 4 (4 + 301 events) cut off whole
    r = Journal.recover(path)
    assert r["events_kept"] == 1 + 4 + 4 and r["events_lost"] == 4 + 301 and r["ok"] is False
    assert r["missing"]["file"] == path + ".seg" and r["missing"]["acknowledged_bytes"] == ends[-1]
    assert r["missing"]["bytes"] == ends[1] and r["missing"]["acknowledged_seq"] == n - 1
    with Journal(path + ".recovered") as j:
        assert j.verify() == 9
        j.record("after")
    with Journal(path + ".recovered") as j:
        assert j.count() == 10


def _child(code):
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                       timeout=120, cwd=tempfile.gettempdir())
    assert r.returncode == 0, r.stderr


KILLED_IN_A_WRITE = """
    import os
    import numpy as np
    from gridtape.journal import Journal
    from gridtape.journal.recorder import Recorder
    j = Journal({path!r})
    for k in range(5):
        j.record("set", "load", k, "p_mw", float(k), 1.0)
        j.flush()
    # the next flush's frame, of which the kernel had copied only the first pages when the kill came
    r = Recorder()
    r._next_seq, r._next_tx, r._last_ts = j._next_seq, j._next_tx, j._last_ts
    r.record_many("set", "load", np.arange(300), "p_mw", np.zeros(300), np.ones(300))
    r.flush()
    frame = r._mirror[-1]
    size = os.path.getsize({path!r} + ".seg")
    os.write(j._seg_fd, frame[:(size // 512 + 1) * 512 - size])
    os._exit(0)
"""


def test_a_process_killed_in_a_write_reopens_cleanly(tmp_path):
    path = str(tmp_path / "j.duckdb")
    _child(KILLED_IN_A_WRITE.format(path=path))
    size = os.path.getsize(path + ".seg")
    assert size % TEAR_ALIGN == 0
    with Journal(path, read_only=True) as j:
        assert j.count() == 5
    assert os.path.getsize(path + ".seg") == size
    with Journal(path) as j:
        assert j.count() == 5 and j.verify() == 5
        j.record("after")
    with Journal(path) as j:
        assert j.count() == 6


MOVED_THEN_KILLED = """
    import os
    from gridtape.journal import Journal
    j = Journal({path!r}, ingest_every=20)
    for k in range(30):  # the first 20 are moved by the thread, the writer goes on in .seg2
        j.record("set", "load", k, "p_mw", float(k), 1.0)
        j.flush()
    j._mover.join()
    print(os.path.getsize({path!r} + ".seg"), os.path.getsize({path!r} + ".seg2"))
    os._exit(0)
"""


def test_frames_cut_off_the_newer_segment_after_a_move_are_damage(tmp_path):
    path = str(tmp_path / "j.duckdb")
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(MOVED_THEN_KILLED.format(path=path))],
                       capture_output=True, text=True, timeout=120, cwd=tempfile.gettempdir())
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "0" and int(r.stdout.split()[1]) > 0  # the batch moved, .seg2 active
    seg2 = open(path + ".seg2", "rb").read()
    ends = [0]
    while ends[-1] < len(seg2):
        ends.append(ends[-1] + 8 + int.from_bytes(seg2[ends[-1] + 4:ends[-1] + 8], "little"))
    keep = ends[-3]  # the last two frames cut off
    open(path + ".seg2", "wb").write(seg2[:keep])
    e = _missing(path, ".seg2", len(seg2), keep, keep)
    assert e.row == 28
    open(path + ".seg2", "wb").write(seg2)  # put back, the journal is whole again
    with Journal(path) as j:
        assert j.count() == 30 and j.verify() == 30
