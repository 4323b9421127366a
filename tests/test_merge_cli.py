"""``gridtape revert``, ``cherry-pick`` and ``merge`` through a subprocess with ``--json``: exit 0 when
done, 3 on a conflict (nothing written), 2 on an error."""
import json
import os
import subprocess
import sys

import pytest

import gridtape as gt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASE = os.path.join(ROOT, "cases", "IEEE14", "data.zip")


def cli(*args, cwd):
    run = subprocess.run([sys.executable, "-m", "gridtape.cli", *map(str, args), "--json"], capture_output=True,
                         text=True, cwd=cwd, timeout=120)
    return run.returncode, (json.loads(run.stdout) if run.stdout.strip() else None), run.stderr


def events(path):
    with gt.open(path) as s:
        return s.log()


@pytest.fixture
def study(tmp_path):
    """s.duckdb: a (load 0), b (load 1 + a new load), c (load 0 again); branch x from the head."""
    path = str(tmp_path / "s.duckdb")
    with gt.PowerGrid(CASE, journal=path, author="ann") as g:
        with g.edit(message="a") as e:
            e.set("load", [0], "p_mw", 30.0)
        with g.edit(message="b") as e:
            e.set("load", [1], "p_mw", 40.0)
            e.add_load(3, p_mw=5.0)
        with g.edit(message="c") as e:
            e.set("load", [0], "p_mw", 35.0)
    with gt.open(path, read_only=False) as s:
        s.branch(s.head, "x").close()
    return tmp_path, path


def tx(path, message):
    log = events(path)
    return int(log[log.message == message].tx.iloc[0])


def test_revert(study):
    d, path = study
    rc, out, err = cli("revert", path, tx(path, "b"), "--author", "carl", cwd=d)
    assert rc == 0, err
    assert out["ok"] and out["message"] == f"Revert {tx(path, 'b')}: b"
    assert {(c["event"], c["kind"]) for c in out["changes"]} == {("set", "load"), ("remove", "load")}
    log = events(path)
    marker = log[log.event == "revert"]
    assert len(marker) == 1 and json.loads(marker["info"].iloc[0])["tx"] == tx(path, "b")
    assert marker.author.iloc[0] == "carl"
    rc, rows, _ = cli("log", path, "--event", "revert", cwd=d)
    assert rc == 0 and len(rows) == 1


def test_revert_conflict_exits_3_and_writes_nothing(study):
    d, path = study
    n = len(events(path))
    rc, out, err = cli("revert", path, tx(path, "a"), cwd=d)
    assert rc == 3 and not out["ok"] and "conflict" in out["error"]
    [c] = out["conflicts"]
    assert (c["what"], c["kind"], c["id"], c["field"], c["base"], c["ours"], c["tx"]) == \
        ("set", "load", 0, "p_mw", 30.0, 35.0, tx(path, "c"))
    assert len(events(path)) == n
    rc, out, _ = cli("revert", path, tx(path, "a"), "--force", cwd=d)
    assert rc == 0 and out["changes"][0]["new"] == c["theirs"]


def test_revert_errors_exit_2(study):
    d, path = study
    rc, out, err = cli("revert", path, 0, cwd=d)
    assert rc == 2 and "loads a case" in err
    rc, out, err = cli("revert", path, 99, cwd=d)
    assert rc == 2 and "no transaction" in err


def test_cherry_pick_and_merge(study):
    d, path = study
    with gt.PowerGrid(journal=str(d / "s.x.duckdb")) as br:
        with br.edit(message="sgen") as e:
            e.add_sgen(4, p_mw=3.0)
        with br.edit(message="load 2") as e:
            e.set("load", [2], "p_mw", 77.0)
        log = br.log()
        picked = int(log[log.message == "sgen"].tx.iloc[0])
    rc, out, err = cli("cherry-pick", path, picked, "--from", "x", cwd=d)
    assert rc == 0, err
    assert [(c["event"], c["kind"]) for c in out["changes"]] == [("add", "sgen")]
    rc, out, err = cli("merge", path, "x", cwd=d)
    assert rc == 0, err
    assert [(c["event"], c["kind"], c["eid"]) for c in out["changes"]] == [("set", "load", 2)]  # the sgen is here
    log = events(path)
    info = json.loads(log[log.event == "merge"]["info"].iloc[0])
    assert set(info) >= {"ours", "theirs", "base"} and info["theirs"]["seq"] == int(events(str(d / "s.x.duckdb"))
                                                                                    .seq.iloc[-1])
    rc, out, err = cli("merge", path, "x", cwd=d)
    assert rc == 0 and out["tx"] is None  # nothing left to merge


def test_merge_and_cherry_pick_conflicts_exit_3(study):
    d, path = study
    with gt.PowerGrid(journal=str(d / "s.x.duckdb")) as br:
        br.element("load", 2).p_mw = 77.0
        picked = int(br.log().tx.iloc[-1])
    with gt.PowerGrid(journal=path) as g:
        g.element("load", 2).p_mw = 60.0
    n = len(events(path))
    rc, out, _ = cli("merge", path, "x", cwd=d)
    assert rc == 3 and [(c["kind"], c["id"], c["field"], c["ours"], c["theirs"]) for c in out["conflicts"]] == \
        [("load", 2, "p_mw", 60.0, 77.0)]
    rc, out, _ = cli("cherry-pick", path, picked, "--from", "x", cwd=d)
    assert rc == 3 and len(out["conflicts"]) == 1
    assert len(events(path)) == n
    rc, out, _ = cli("merge", path, "x", "--force", "-m", "take theirs", cwd=d)
    assert rc == 0 and out["message"] == "take theirs"
    rc, out, err = cli("merge", path, "nope", cwd=d)
    assert rc == 2 and "neither a branch" in err
