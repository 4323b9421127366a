"""A reader and a writer of one journal in one process (issue 18): they share the DuckDB
database (journal/shared.py); the reader sees what the writer committed; closing either leaves
the other working; two writers in one process and any holder in another process are refused
with a message naming who holds the journal."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

import pytest

import gridtape as gt
from gridtape.study import Study
from gridtape.errors import JournalLockedError, ReadOnlyError
from gridtape.journal import Journal

CASE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cases", "IEEE14", "data.zip")


@pytest.fixture
def jpath(tmp_path):
    return str(tmp_path / "study.duckdb")


def test_a_reader_opened_after_the_writer_sees_what_it_committed(jpath):
    grid = gt.PowerGrid(CASE, journal=jpath, author="ann")
    grid.solve()
    grid.tag("baseline")
    load = grid.load(bus=5)
    study = gt.open(jpath)
    n0 = len(study.log())
    assert study.head == n0 - 1 and "tag" in study.log()["event"].tolist()
    load.p_mw = 50.0
    grid.solve()
    assert study.head > n0 - 1 and len(study.log()) == study.head + 1  # the new events, at once
    assert study.at().element("load", load.id).p_mw == 50.0
    d = gt.diff(study.at(tag="baseline"), study.at())
    assert list(d["new"]) == [50.0]
    b = study.blame("load", load.id, "p_mw")
    assert b["new"] == 50.0 and b["author"] == "ann"
    with pytest.raises(ReadOnlyError):
        study.journal.record("x")
    with grid.edit(message="pending") as e:  # inside an open edit block: nothing committed yet
        e.set("load", [load.id], "p_mw", [60.0])
        head = study.head
        assert study.blame("load", load.id, "p_mw")["new"] == 50.0 and study.head == head
    assert study.blame("load", load.id, "p_mw")["new"] == 60.0  # the block committed
    s2 = Study(jpath)  # a second reader, by the class
    assert s2.head == study.head
    s2.close()
    grid.close()  # the writer closes: the reader goes on, on its own files
    assert study.blame("load", load.id, "p_mw")["new"] == 60.0 and study.journal.verify() == study.head + 1
    study.close()


def test_a_writer_opened_after_a_reader_is_followed_by_it(jpath):
    with gt.PowerGrid(CASE, journal=jpath, author="ann") as grid:
        grid.solve()
        lid = grid.load(bus=5).id
    study = gt.open(jpath)
    head = study.head
    grid = gt.PowerGrid(CASE, journal=jpath, author="bob")  # resumes the same journal
    grid.element("load", lid).p_mw = 42.0
    grid.solve()
    assert study.head > head
    b = study.blame("load", lid, "p_mw")
    assert b["new"] == 42.0 and b["author"] == "bob"
    assert len(study.log(author="bob")) >= 2
    study.close()  # the reader closes: the writer goes on
    grid.element("load", lid).p_mw = 43.0
    grid.solve()
    grid.close()
    with gt.open(jpath) as s:
        assert s.blame("load", lid, "p_mw")["new"] == 43.0 and s.journal.verify() == s.head + 1


def test_closing_the_writer_leaves_its_readers_working_and_a_new_writer_is_followed(jpath):
    j = Journal(jpath)
    j.record("a")
    j.flush()
    r1, r2 = Journal(jpath, read_only=True), Journal(jpath, read_only=True)
    j.record("b")  # buffered, not flushed: not seen
    assert r1.count() == 1 and r2.next_seq == 1
    j.flush()
    assert r1.count() == 2 and r2.last_seq == 1 and r2.durable_seq == 1
    j.begin()
    j.record("c")
    assert r1.count() == 2  # an open transaction is not seen
    j.commit()
    assert r1.log()["event"].tolist() == ["a", "b", "c", "commit"] and r1.head_hash == j.head_hash
    j.close()
    assert r1.count() == 4 and r2.verify() == 4
    w = Journal(jpath)
    w.record("d")
    w.flush()
    assert r1.count() == 5 and r2.log()["event"].iloc[-1] == "d"
    r1.close()
    w.close()
    assert r2.count() == 5
    r2.close()


def test_two_writers_in_one_process_are_refused(jpath):
    grid = gt.PowerGrid(CASE, journal=jpath)
    with pytest.raises(JournalLockedError) as e:
        gt.PowerGrid(CASE, journal=jpath)
    assert e.value.file == jpath and "writer in this process" in str(e.value) and "close()" in str(e.value)
    with pytest.raises(JournalLockedError):
        Journal(jpath)
    grid.close()
    Journal(jpath).close()


HOLD = """
    import sys
    from gridtape.journal import Journal
    j = Journal({path!r}, read_only={ro})
    print("ready", flush=True)
    sys.stdin.readline()
    j.close()
"""


def _holder(path, ro):
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLD.format(path=path, ro=ro))], text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=tempfile.gettempdir())
    assert p.stdout.readline().strip() == "ready", p.stderr.read()
    return p


def _release(p):
    p.stdin.write("\n")
    p.stdin.flush()
    assert p.wait(60) == 0


def test_another_process_is_refused_and_told_who_holds_the_journal(jpath):
    with Journal(jpath) as j:
        j.record("a")
    p = _holder(jpath, ro=True)  # a reader in another process
    try:
        with pytest.raises(JournalLockedError) as e:
            Journal(jpath)
        assert f"reader in process {p.pid}" in str(e.value) and "close" in str(e.value)
        with Journal(jpath, read_only=True) as r:  # readers in two processes coexist
            assert r.count() == 1
            with pytest.raises(JournalLockedError) as e:  # a writer here would take the reader's files
                Journal(jpath)
            assert f"reader in process {p.pid}" in str(e.value)
            assert r.count() == 1  # and the reader here was left as it was
    finally:
        _release(p)
    p = _holder(jpath, ro=False)  # a writer in another process
    try:
        for ro in (False, True):
            with pytest.raises(JournalLockedError) as e:
                Journal(jpath, read_only=ro)
            assert f"writer in process {p.pid}" in str(e.value), str(e.value)
    finally:
        _release(p)
    with Journal(jpath, read_only=True) as r:
        assert r.count() == 1
