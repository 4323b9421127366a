"""A study in the history: one ``study`` event with the base point, the profiles file, the options
and the output files' hashes; verify names a tampered file; a rerun from the recorded base point
writes the same bytes; the outputs are queryable in DuckDB beside the events; the CLI."""
from __future__ import annotations

import argparse
import hashlib
import json
import os

import numpy as np
import pandas as pd
import pytest

import gridtape as gt
from gridtape.errors import JournalError
from gridtape.studies import outputs_view, read_profiles, rerun_study, studies, verify_study

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def profiles(world, n, seed=0):
    rng = np.random.default_rng(seed)
    t = world["load"]
    return {("load", f): pd.DataFrame(t.cols[f] * (1 + 0.4 * rng.uniform(-1, 1, (n, len(t)))),
                                      index=pd.RangeIndex(100, 100 + n), columns=t.ids) for f in ("p_mw", "q_mvar")}


@pytest.fixture
def journaled(tmp_path):
    path = str(tmp_path / "study.duckdb")
    g = gt.PowerGrid(os.path.join(ROOT, "cases", "IEEE30"), journal=path, author="ann")
    g.load(bus=3).p_mw = 50.0
    g.solve()
    yield g, path
    g.close()


@pytest.mark.parametrize("independent", [False, True])
def test_study_event_profiles_file_and_hashes(journaled, independent):
    from gridtape.studies.store import profiles_dir, profiles_path

    g, path = journaled
    j = g.journal
    base = j.last_seq
    prof = profiles(g.world, 30)
    res = g.timeseries(prof, independent=independent, chunk_size=8)
    ev = j.log(event="study")
    assert len(ev) == 1 and int(ev.seq.iloc[0]) == res.seq
    info = json.loads(ev["info"].iloc[0])
    assert info["base_seq"] == base and info["steps"] == 30 and info["independent"] is independent
    assert info["version"] == gt.__version__ and info["options"]["tolerance_mva"] == g.tolerance_mva
    # the profiles: one content-addressed Parquet file beside the journal, named by its sha256
    assert info["profiles_store"] == "file" and len(info["profiles"]) == 1
    sha = info["profiles"][0]
    data = open(profiles_path(j, sha), "rb").read()
    assert hashlib.sha256(data).hexdigest() == sha
    assert data == read_profiles(prof, g.world).to_parquet_bytes()  # the profiles, stored once
    back = read_profiles(data, g.world)
    for e, want in zip(back.entries, read_profiles(prof, g.world).entries):
        assert (e.kind, e.field) == (want.kind, want.field) and np.array_equal(e.ids, want.ids)
        assert np.array_equal(e.values, want.values)
    assert list(back.index) == list(prof[("load", "p_mw")].index)
    d = os.path.join(os.path.dirname(path), info["dir"])
    assert os.path.abspath(d) == os.path.abspath(res.directory)
    for name, sha_out in info["manifest"].items():
        with open(os.path.join(d, name), "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == sha_out
    # the result's per-step status is what steps.parquet holds
    st = pd.read_parquet(os.path.join(d, "steps.parquet"))
    assert list(st["step"]) == list(prof[("load", "p_mw")].index)
    for col in ("converged", "iterations", "mismatch"):
        assert np.array_equal(st[col].to_numpy(), getattr(res, col).to_numpy(), equal_nan=True)
    assert verify_study(j).ok and res.verify().ok
    # the grid's world and history are untouched by the run (one study transaction only)
    assert g.world["load"].cols["p_mw"][g.world["load"].rows([g.load(bus=3).id])[0]] == 50.0
    assert set(j.log(since=base + 1).event) <= {"study", "commit"}
    # the same profiles again: the file is stored once, nothing is left behind
    g.timeseries(prof, independent=independent)
    assert sorted(os.listdir(profiles_dir(j))) == [f"{sha}.parquet"]
    assert json.loads(j.log(event="study")["info"].iloc[-1])["profiles"] == [sha]
    assert j._con.execute("SELECT count(*) FROM blobs WHERE name = 'profiles'").fetchall() == [(0,)]  # no DuckDB blob
    assert len(studies(j)) == 2


def test_profiles_file_tampered_or_missing_is_named(journaled, tmp_path, monkeypatch):
    from gridtape.studies import sink as S
    from gridtape.studies.store import profiles_path

    g, _ = journaled
    monkeypatch.setattr(S, "GROUP_VALUES", 10)  # row groups of 64 steps: the file is streamed
    prof = profiles(g.world, 150)
    res = g.timeseries(prof)
    info = json.loads(g.journal.log(event="study")["info"].iloc[-1])
    p = profiles_path(g.journal, info["profiles"][0])
    import pyarrow.parquet as pq

    assert pq.ParquetFile(p).metadata.num_row_groups == 3
    again = rerun_study(g.journal, res.seq, out_dir=str(tmp_path / "again"))
    assert again.manifest == res.manifest
    data = bytearray(open(p, "rb").read())
    data[len(data) // 2] ^= 0x01
    open(p, "wb").write(bytes(data))
    chk = verify_study(g.journal, res.seq)
    assert not chk.ok and info["profiles"][0] in repr(chk) and "changed" in repr(chk)
    os.remove(p)
    chk = verify_study(g.journal, res.seq)
    assert not chk.ok and "missing" in repr(chk) and info["profiles"][0] in repr(chk)
    with pytest.raises(JournalError):
        rerun_study(g.journal, res.seq)


def test_in_memory_journal_stores_profiles_as_blob_parts(monkeypatch):
    from gridtape.studies import profiles as P

    g = gt.PowerGrid(os.path.join(ROOT, "cases", "IEEE30"), journal=True)
    monkeypatch.setattr(P, "PART_VALUES", 100)  # a few steps of p and q of every load a part
    prof = profiles(g.world, 10)
    res = g.timeseries(prof)
    info = json.loads(g.journal.log(event="study")["info"].iloc[-1])
    per = 100 // (2 * len(g.world["load"]))
    assert info["profiles_store"] == "blob" and len(info["profiles"]) == -(-10 // per) > 1
    parts = [g.journal.get_blob(sha) for sha in info["profiles"]]
    assert [hashlib.sha256(b).hexdigest() for b in parts] == info["profiles"]
    assert parts == read_profiles(prof, g.world).to_parquet_parts()
    again = rerun_study(g.journal, res.seq)
    for o in res.outputs:
        assert np.array_equal(res[o].to_numpy(), again[o].to_numpy(), equal_nan=True)
    assert verify_study(g.journal, res.seq).ok
    with g.journal._con.cursor() as c:  # a missing part is named by verify
        c.execute("DELETE FROM blobs WHERE sha256 = ?", [info["profiles"][1]])
    chk = verify_study(g.journal, res.seq)
    assert not chk.ok and info["profiles"][1] in repr(chk)
    g.close()


def test_tampered_output_is_named(journaled):
    g, _ = journaled
    res = g.timeseries(profiles(g.world, 12))
    victim = os.path.join(res.directory, "res_line.loading_percent.parquet")
    data = bytearray(open(victim, "rb").read())
    data[len(data) // 2] ^= 0x40
    open(victim, "wb").write(bytes(data))
    chk = verify_study(g.journal, res.seq)
    assert not chk.ok and chk.bad == ["res_line.loading_percent.parquet"]
    assert "res_line.loading_percent.parquet" in repr(chk)
    os.remove(os.path.join(res.directory, "res_bus.vm_pu.parquet"))
    chk = verify_study(g.journal, res.seq)
    assert chk.missing == ["res_bus.vm_pu.parquet"]


@pytest.mark.parametrize("independent", [False, True])
def test_rerun_from_recorded_base_gives_same_bytes(journaled, tmp_path, independent):
    g, path = journaled
    res = g.timeseries(profiles(g.world, 40, seed=2), independent=independent)
    g.load(bus=7).p_mw = 5.0  # the grid moves on after the study
    g.solve()
    g.flush()
    out = str(tmp_path / "rerun")
    again = rerun_study(g.journal, res.seq, out_dir=out)
    assert again.manifest == res.manifest
    for name in res.manifest:
        assert open(os.path.join(out, name), "rb").read() == open(os.path.join(res.directory, name), "rb").read()
    # a rerun on a read-only Study of the file, after the writer closed
    g.close()
    with gt.open(path) as st:
        again2 = rerun_study(st, res.seq, out_dir=str(tmp_path / "rerun2"))
    assert again2.manifest == res.manifest


def test_outputs_in_duckdb_beside_the_events(journaled):
    g, _ = journaled
    r1 = g.timeseries(profiles(g.world, 20, seed=1))
    r2 = g.timeseries(profiles(g.world, 20, seed=2), independent=True)
    name = outputs_view(g.journal)
    con = g.journal._con
    lp = {r.seq: r["line", "loading_percent"] for r in (r1, r2)}
    limit = float(np.nanmedian(lp[r1.seq][7]))
    got = con.execute(f"SELECT study, step FROM {name} WHERE output = 'res_line.loading_percent' AND id = 7 "
                      "AND value > ? ORDER BY study, step", [limit]).fetchall()
    want = sorted((s, int(k)) for s, fr in lp.items() for k in fr.index[fr[7] > limit])
    assert got == want and len(got)
    # joined with the events: the study's author comes from the journal
    who = con.execute(f"SELECT DISTINCT e.author FROM {name} o JOIN events e ON e.seq = o.study").fetchall()
    assert who == [("ann",)]


def test_refused_inside_an_edit_block(journaled):
    g, _ = journaled
    n = g.journal.count()
    with pytest.raises(JournalError):
        with g.edit():
            g.timeseries(profiles(g.world, 3))
    assert g.journal.count() == n


def test_cli_subcommand(journaled, tmp_path, capsys):
    from gridtape.studies.cli import add_timeseries_parser

    g, path = journaled
    prof = read_profiles(profiles(g.world, 10), g.world)
    pfile = tmp_path / "profiles.parquet"
    pfile.write_bytes(prof.to_parquet_bytes())
    g.close()
    ap = argparse.ArgumentParser()
    add_timeseries_parser(ap.add_subparsers(dest="cmd"))
    args = ap.parse_args(["timeseries", path, str(pfile), "--independent"])
    assert args.func(args) == 0
    assert "10 steps, 10 converged" in capsys.readouterr().out
    args = ap.parse_args(["timeseries", path, str(pfile), "--json", "--threads", "2"])
    assert args.func(args) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["steps"] == 10 and got["converged"] == 10 and "steps.parquet" in got["manifest"]
    with gt.open(path) as st:
        s = studies(st)
        assert len(s) == 2 and s.independent.iloc[0] and not s.independent.iloc[1]
        assert verify_study(st).ok and verify_study(st, int(s.seq.iloc[0])).ok
