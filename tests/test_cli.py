"""The history verbs of the ``gridtape`` command: through a subprocess with ``--json`` (what scripts
see, exit codes included) and through the Python API they print (gridtape.verbs, gridtape.reprs)."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import gridtape as gt
from gridtape import reprs, verbs
from gridtape.demo import run_study

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASE = os.path.join(ROOT, "cases", "IEEE118", "data.zip")


@pytest.fixture(scope="module")
def journal(tmp_path_factory):
    """The demo's study (two authors, tags, a data centre whose phase 4 diverges), built once."""
    d = tmp_path_factory.mktemp("study")
    run_study(__import__("pathlib").Path(CASE), d, out=lambda *a: None)
    return str(d / "study.duckdb")


@pytest.fixture
def copy(journal, tmp_path):
    """A private copy of the study, for verbs that write."""
    dst = tmp_path / "study.duckdb"
    shutil.copy(journal, dst)
    for ext in (".seg", ".seg2", ".ack"):
        if os.path.exists(journal + ext):
            shutil.copy(journal + ext, str(dst) + ext)
    return str(dst)


def cli(*args, cwd=ROOT):
    run = subprocess.run([sys.executable, "-m", "gridtape.cli", *map(str, args)], capture_output=True, text=True,
                         cwd=cwd, timeout=120)
    return run.returncode, run.stdout, run.stderr


def cli_json(*args):
    rc, out, err = cli(*args, "--json")
    assert rc in (0, 1), err
    return rc, json.loads(out)


# --- log -------------------------------------------------------------------------------------------
def test_log_json_is_readable(journal):
    rc, rows = cli_json("log", journal)
    with gt.open(journal) as study:
        log = study.log()
    assert rc == 0 and len(rows) == len(log)
    assert [r["seq"] for r in rows] == log.seq.tolist()
    assert "hash" not in rows[0] and "ts_ns" not in rows[0]
    assert rows[0]["time"].endswith("Z") and pd.Timestamp(rows[0]["time"]) == log.time.iloc[0].floor("ms")
    solves = [r for r in rows if r["event"] == "solve"]
    assert solves and all(isinstance(r["iterations"], int) and r["mismatch"] is not None for r in solves)
    assert solves[-1]["new"] is False and solves[-1]["iterations"] == 10


def test_log_filters(journal):
    with gt.open(journal) as study:
        log = study.log()
    _, rows = cli_json("log", journal, "--author", "bob", "--kind", "load")
    assert rows and {r["author"] for r in rows} == {"bob"} and {r["kind"] for r in rows} == {"load"}
    _, rows = cli_json("log", journal, "--event", "set", "--since", 10, "--until", 21)
    assert [r["seq"] for r in rows] == log[(log.event == "set") & log.seq.between(10, 21)].seq.tolist()
    t = log.time.iloc[16].isoformat()
    _, rows = cli_json("log", journal, "--since", t)
    assert rows[0]["seq"] == int(log[log.time >= log.time.iloc[16]].seq.iloc[0])
    _, rows = cli_json("log", journal, "--hash", "-n", 3)
    assert len(rows) == 3 and rows[-1]["hash"] == log.hash.iloc[-1].hex()


def test_log_oneline(journal):
    rc, out, _ = cli("log", journal, "--oneline")
    lines = out.splitlines()
    assert rc == 0 and len(lines) == 9
    assert "DIVERGED" in lines[-1] and "phase 4" in lines[-1] and "bob" in lines[-1]
    assert all("b'" not in line for line in lines)
    _, rows = cli_json("log", journal, "--oneline", "--author", "ann")
    assert rows and {r["author"] for r in rows} == {"ann"}
    with gt.open(journal) as study:
        tx = verbs.oneline(study)
    assert tx.solve.iloc[-1] == "diverged" and tx.iterations.iloc[-1] == 10
    assert (tx[tx.what.str.contains("set|add")].solve == "converged").sum() == 5


def test_log_errors_exit_2(journal, tmp_path):
    rc, _, err = cli("log", tmp_path / "nope.duckdb")
    assert rc == 2 and "does not exist" in err
    rc, _, err = cli("log", journal, "--since", "not a time")
    assert rc == 2 and "Traceback" not in err


def test_readable_log_python(journal):
    with gt.open(journal) as study:
        log = study.log()
    r = reprs.readable_log(log)
    assert "hash" not in r and "ts_ns" not in r and "info" not in r
    assert r.time.iloc[0].startswith(str(log.time.iloc[0].date()))
    assert r.iterations.notna().sum() == (log.event == "solve").sum()
    h = reprs.readable_log(log, hash=True)
    assert h.hash.iloc[0] == log.hash.iloc[0].hex()
    assert len(log) == len(r) and "hash" in log  # the input is untouched


# --- show, diff, blame ----------------------------------------------------------------------------------
def test_show(journal):
    with gt.open(journal) as study:
        res = study.bisect()
        got = verbs.show(study, res.tx)
    assert got["summary"]["solve"] == "diverged"
    assert set(got["diff"].field) == {"p_mw", "q_mvar"}
    rc, out = cli_json("show", journal, res.tx)
    assert rc == 0 and out["tx"] == res.tx and len(out["events"]) == len(got["events"])
    assert {(d["field"], d["old"], d["new"]) for d in out["diff"]} == {("p_mw", 240.0, 320.0), ("q_mvar", 48.0, 64.0)}
    rc, _, err = cli("show", journal, 999)
    assert rc == 2 and "no transaction" in err


def test_diff_by_tag_seq_and_time(journal):
    with gt.open(journal) as study:
        base, dc1 = study.seq_of(tag="baseline"), study.seq_of(tag="data-centre-1")
        d = verbs.diff(study, "baseline", "data-centre-1")
        expect = gt.diff(study.at(base), study.at(dc1))
        t = study.log().set_index("seq").time[dc1].isoformat()
        assert len(verbs.diff(study, base, t)) == len(expect)
    assert len(d) == len(expect) == 3
    rc, rows = cli_json("diff", journal, "baseline", dc1)
    assert rc == 1 and [(r["change"], r["kind"], r["id"]) for r in rows] == \
        [(c, k, int(i)) for c, k, i in zip(expect.change, expect.kind, expect.id)]
    rc, rows = cli_json("diff", journal, "data-centre-1", dc1)
    assert rc == 0 and rows == []
    rc, _, err = cli("diff", journal, "no-such-tag", "head")
    assert rc == 2 and "neither a seq, a tag nor an ISO time" in err


def test_blame(journal):
    with gt.open(journal) as study:
        dc = int(study.bisect().diff.id.iloc[0])
        b = verbs.blame(study, "load", dc, "p_mw")
        assert b["new"] == 320.0 and b["author"] == "bob"
    rc, out = cli_json("blame", journal, "load", dc, "p_mw", "--at", "data-centre-1")
    assert rc == 0 and out["event"] == "add" and out["new"] == 80.0 and "phase 1" in out["message"]
    with gt.open(journal) as study:
        b = verbs.blame(study, "load", 0, "p_mw")  # never written: the case load's value
        assert b["event"] == "load" and b["new"] == float(study.at(0).element("load", 0).p_mw)
    rc, out = cli_json("blame", journal, "gen", 0, "vm_pu")
    assert out["new"] == 1.0 and out["author"] == "ann" and "set-point" in out["message"]


def test_blame_of_what_never_existed_is_an_error(journal):
    """Not the case load's row: an element that never existed, a field or kind the schema lacks."""
    with gt.open(journal) as study:
        dc = int(study.bisect().diff.id.iloc[0])  # added by phase 1
        first_add = int(study.log(event="add").seq.iloc[0])
        with pytest.raises(gt.errors.BadReferenceError) as e:
            study.blame("load", 424242, "p_mw")
        assert (e.value.table, e.value.row, e.value.field) == ("load", 424242, "p_mw")
        with pytest.raises(gt.errors.BadReferenceError):  # not yet added at that point
            study.blame("load", dc, "p_mw", seq=first_add - 1)
        with pytest.raises(gt.errors.SchemaError) as e:
            study.blame("line", 0, "no_such_field")
        assert (e.value.table, e.value.row, e.value.field) == ("line", 0, "no_such_field")
        with pytest.raises(gt.errors.SchemaError, match="unknown element kind"):
            study.blame("lod", 0, "p_mw")
        with pytest.raises(gt.errors.SchemaError, match="eid"):
            study.blame("load", "abc", "p_mw")
        with pytest.raises(gt.errors.JournalError, match="outside the journal"):
            study.blame("load", 0, "p_mw", seq=10**6)
    rc, out, err = cli("blame", journal, "load", 424242, "p_mw")
    assert rc == 2 and out == "" and "table 'load', row 424242, field 'p_mw'" in err
    rc, out, err = cli("blame", journal, "line", 0, "no_such_field")
    assert rc == 2 and "table 'line', row 0, field 'no_such_field'" in err


# --- at, convert ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", [".json", ".zip"])
def test_at_export_round_trips(journal, tmp_path, ext):
    dst = tmp_path / f"base{ext}"
    rc, out = cli_json("at", journal, "baseline", "--export", dst, "--solve")
    assert rc == 0 and out["converged"] and os.path.exists(dst)
    with gt.open(journal) as study:
        g = study.at(tag="baseline")
    back = gt.PowerGrid(dst)
    assert len(gt.diff(g, back)) == 0 or set(gt.diff(g, back).change) <= {"set"}
    g.solve(), back.solve()
    assert np.allclose(g.res_bus.vm_pu, back.res_bus.vm_pu, atol=1e-9)


def test_at_diverged_point_exits_1(journal):
    rc, out = cli_json("at", journal, "head", "--solve")
    assert rc == 1 and out["converged"] is False


def test_convert(tmp_path):
    rc, out = cli_json("convert", CASE, tmp_path / "c.json")
    assert rc == 0 and out["format"] == "pandapower JSON"
    a, b = gt.PowerGrid(CASE), gt.PowerGrid(tmp_path / "c.json")
    a.solve(), b.solve()
    assert np.allclose(a.res_bus.vm_pu, b.res_bus.vm_pu, atol=1e-9)
    rc, _, err = cli("convert", CASE, tmp_path / "c.txt")
    assert rc == 2 and "unknown export extension" in err
    rc, _, err = cli("convert", tmp_path / "missing.zip", tmp_path / "c.json")
    assert rc == 2 and "does not exist" in err


def test_export_matpower(tmp_path):
    pytest.importorskip("pandapower")
    verbs.convert(CASE, tmp_path / "c.m")
    a, b = gt.PowerGrid(CASE), gt.PowerGrid(tmp_path / "c.m")
    assert a.solve().converged and b.solve().converged
    assert np.allclose(np.sort(a.res_bus.vm_pu), np.sort(b.res_bus.vm_pu), atol=1e-6)


# --- tag, branch, verify -------------------------------------------------------------------------------------
def test_tag_and_branch(copy):
    rc, out = cli_json("tag", copy, "reviewed", "--author", "carl")
    assert rc == 0
    with gt.open(copy) as study:
        assert study.seq_of(tag="reviewed") == out["seq"]
        assert study.log(event="tag").author.iloc[-1] == "carl"
    rc, _, err = cli("tag", copy, "reviewed")
    assert rc == 2 and "already exists" in err
    rc, out = cli_json("branch", copy, "what-if", "--at", "data-centre-1")
    assert rc == 0 and os.path.exists(out["path"])
    rc, rows = cli_json("branch", copy)
    assert [r["name"] for r in rows] == ["what-if"]
    with gt.open(copy) as study:
        assert rows[0]["seq"] == study.seq_of(tag="data-centre-1")
    b = verbs.branch(copy, "second")
    assert b["seq"] > rows[0]["seq"]


def test_verify(copy):
    rc, out = cli_json("verify", copy)
    assert rc == 0 and out["ok"] and out["events"] > 20
    import duckdb

    con = duckdb.connect(copy)
    con.execute("UPDATE events SET author = 'mallory' WHERE seq = 5")
    con.close()
    rc, out = cli_json("verify", copy)
    assert rc == 1 and out["ok"] is False and out["row"] == 5


# --- bisect -----------------------------------------------------------------------------------------------
def test_bisect_conditions(journal):
    rc, out = cli_json("bisect", journal)
    assert rc == 1 and out["found"] and "phase 4" in out["message"]
    rc, out = cli_json("bisect", journal, "--until", "vm-outside", "0.9", "1.1")
    assert rc == 1 and "phase 2" in out["message"]
    with gt.open(journal) as study:
        res = verbs.bisect(study, until=("vm-outside", 0.9, 1.1))
        assert res.tx == out["tx"]
        g = study.at(res.good_seq)
        g.solve()
        worst = float(g.res_line.loading_percent.max())
    rc, out = cli_json("bisect", journal, "--until", "overload", f"{worst + 1:.3f}")
    assert rc == 1 and out["found"]
    rc, out = cli_json("bisect", journal, "--hi", "data-centre-1")
    assert rc == 0 and out["found"] is False and out["lo"] < out["hi"]
    rc, _, err = cli("bisect", journal, "--until", "overload")
    assert rc == 2 and "vm-outside LO HI" in err


def test_bisect_prints_a_few_lines(journal):
    rc, out, _ = cli("bisect", journal)
    assert rc == 1 and len(out.splitlines()) <= 8
    with gt.open(journal) as study:
        text = reprs.bisect_text(study.bisect())
    assert text.strip() == out.strip()
    assert max(map(len, text.splitlines())) <= 80


def test_broken_pipe_is_quiet(journal):
    p = subprocess.Popen([sys.executable, "-m", "gridtape.cli", "log", journal], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait(timeout=60)
    assert "Traceback" not in err
