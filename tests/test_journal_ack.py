"""The acknowledgement record damaged, and a refused open that must change no file (review 11,
findings 6 and 7).

Every state is what a user leaves with the shell after a real crash: a child process writes a
journal (part of it moved into DuckDB, so DuckDB has a WAL; the rest in the segment) and dies
with ``os._exit``; then the test deletes, zeroes or truncates one of its files.  A missing or
broken ``.ack`` of a journal that keeps one is damage (JournalCorruptError naming the record,
never a silently shorter journal); a journal of a version before the record (no ``ack_record``
in ``meta``) opens without one as before.  A refused open, writer or reader, leaves every file
(``.duckdb``, ``.wal``, ``.seg``, ``.seg2``, ``.ack``) byte-identical.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import duckdb
import pytest

from gridtape.cli import main as cli_main
from gridtape.errors import JournalCorruptError
from gridtape.journal import Journal
from gridtape.journal import ack

FILES = ("", ".wal", ".seg", ".seg2", ".ack")

CRASH = """
    import os
    from gridtape.journal import Journal
    j = Journal({path!r}, ingest_every=20)
    for k in range(30):  # the first 20 are moved into DuckDB by the mover (its WAL), 10 wait in .seg2
        j.record("set", "load", k, "p_mw", float(k), 1.0)
        j.flush()
    j._mover.join()
    os._exit(0)
"""


def _crashed(tmp_path, name="j.duckdb"):
    path = str(tmp_path / name)
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(CRASH.format(path=path))], capture_output=True,
                       text=True, timeout=120, cwd=tempfile.gettempdir())
    assert r.returncode == 0, r.stderr
    assert os.path.exists(path + ".wal") and os.path.getsize(path + ".seg2") > 0  # a real post-crash state
    return path


def _files(path):
    return {s: open(path + s, "rb").read() if os.path.exists(path + s) else None for s in FILES}


def _frame_ends(data):
    ends = [0]
    while ends[-1] < len(data):
        ends.append(ends[-1] + 8 + int.from_bytes(data[ends[-1] + 4:ends[-1] + 8], "little"))
    return ends


def _refused(path, file):
    """Reader and writer are refused with JournalCorruptError naming ``file``; no byte changes."""
    before = _files(path)
    for read_only in (True, False):
        with pytest.raises(JournalCorruptError) as e:
            Journal(path, read_only=read_only)
        assert e.value.file == file, str(e.value)
        assert _files(path) == before, read_only  # the WAL was not checkpointed, nothing was rewritten
    return e.value


def test_a_new_journal_is_marked_as_keeping_a_record(tmp_path):
    with Journal(str(tmp_path / "j.duckdb")) as j:
        assert j.meta()[ack.MARK] == "1"


@pytest.mark.parametrize("damage", ["delete", "zero", "truncate", "empty", "garbage"])
def test_a_missing_or_broken_record_is_damage(tmp_path, damage):
    path = _crashed(tmp_path)
    good = _files(path)
    name = path + ".ack"
    if damage == "delete":
        os.remove(name)
    elif damage == "zero":
        open(name, "wb").write(bytes(ack.SIZE))
    elif damage == "truncate":
        os.truncate(name, 10)
    elif damage == "empty":
        os.truncate(name, 0)
    else:
        open(name, "wb").write(b"x" * ack.SIZE)
    e = _refused(path, name)
    assert "acknowledgement record" in str(e) and "recover" in str(e)
    for key, what in (("zero", "all zeros"), ("truncate", "10 bytes"), ("delete", "missing")):
        if damage == key:
            assert what in str(e)
    for s, data in good.items():  # the record put back: the journal is whole
        open(path + s, "wb").write(data)
    with Journal(path) as j:
        assert j.count() == 30 and j.verify() == 30


def test_acknowledged_frames_cut_off_with_the_record_deleted_are_not_lost_silently(tmp_path):
    """Review 11, finding 6: a cut at a frame boundary (which alone looks like a clean end) plus
    a deleted or zeroed record used to open with a shorter head."""
    path = _crashed(tmp_path)
    seg2 = open(path + ".seg2", "rb").read()
    cut = _frame_ends(seg2)[-3]  # the last two acknowledged frames cut off
    for damage in ("delete", "zero"):
        open(path + ".seg2", "wb").write(seg2[:cut])
        if damage == "delete":
            os.remove(path + ".ack")
        else:
            open(path + ".ack", "wb").write(bytes(ack.SIZE))
        _refused(path, path + ".ack")


def test_another_journals_record_is_damage(tmp_path):
    path = _crashed(tmp_path)
    with Journal(str(tmp_path / "other.duckdb")):
        pass
    shutil.copyfile(str(tmp_path / "other.duckdb.ack"), path + ".ack")
    assert "another journal" in str(_refused(path, path + ".ack"))


def test_a_journal_from_before_the_record_opens_without_one(tmp_path):
    """A journal without the mark (written before this version) and without a record opens as
    before; its first writer writes the record and the mark, after which the record is required."""
    path = _crashed(tmp_path)
    os.remove(path + ".ack")
    con = duckdb.connect(path)  # as an older version left it (this also moves DuckDB's WAL in)
    con.execute("DELETE FROM meta WHERE key = ?", [ack.MARK])
    con.close()
    with Journal(path, read_only=True) as r:
        assert r.count() == 30 and ack.MARK not in r.meta()
    with Journal(path) as j:
        assert j.count() == 30 and j.meta()[ack.MARK] == "1"
    assert os.path.exists(path + ".ack")
    os.truncate(path + ".ack", 0)  # a broken record is damage, marked or not: no version writes one
    _refused(path, path + ".ack")
    os.remove(path + ".ack")
    _refused(path, path + ".ack")  # marked now: a missing record is damage too


def test_the_database_file_alone_opens(tmp_path):
    """A copy of a closed journal's DuckDB file alone (no segments, no record) opens: there were
    no segment frames to lose."""
    path = str(tmp_path / "j.duckdb")
    with Journal(path) as j:
        j.record("load")
    copy = str(tmp_path / "copy.duckdb")
    shutil.copyfile(path, copy)
    with Journal(copy, read_only=True) as r:
        assert r.count() == 1
    with Journal(copy) as j:
        assert j.count() == 1


@pytest.mark.parametrize("cut", ["frame", "minus100", "zero"])
def test_a_refused_writer_open_leaves_every_file_byte_identical(tmp_path, cut):
    """Review 11, finding 7: a damaged segment used to be reported only after DuckDB's WAL had
    been checkpointed into the database file (its bytes changed, the WAL gone)."""
    path = _crashed(tmp_path)
    seg2 = open(path + ".seg2", "rb").read()
    keep = {"frame": _frame_ends(seg2)[-2], "minus100": len(seg2) - 100, "zero": 0}[cut]
    open(path + ".seg2", "wb").write(seg2[:keep])
    _refused(path, path + ".seg2")
    open(path + ".seg2", "wb").write(seg2)
    with Journal(path) as j:  # whole again; a healthy writer still checkpoints at close
        assert j.verify() == 30
    assert not os.path.exists(path + ".wal")


def test_recover_reports_a_missing_record(tmp_path, capsys):
    path = _crashed(tmp_path)
    os.remove(path + ".ack")
    r = Journal.recover(path)
    assert r["ok"] is False and r["ack_damage"]["file"] == path + ".ack" and r["events_kept"] == 30
    with Journal(path + ".recovered") as j:  # the new journal has its own record and the mark
        assert j.verify() == 30 and j.meta()[ack.MARK] == "1"
    assert os.path.getsize(path + ".recovered.ack") == ack.SIZE
    assert cli_main(["recover", path, "-o", str(tmp_path / "r2.duckdb")]) == 1
    assert "acknowledgement record damaged" in capsys.readouterr().out
