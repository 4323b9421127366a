"""A study in the history, as a user meets it: tampered profiles are refused, a failing run leaves
nothing behind and names its step, a recorded study reads back as a result, per-run solver
options, argument checks, result keys and step look-ups, the docs' history example."""
from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest

import gridtape as gt
from gridtape.errors import GridtapeError, JournalError, OptionError, SchemaError, UnknownStepError
from gridtape.studies import load_study, read_profiles, rerun_study, studies, verify_study
from gridtape.studies.profiles import jitter
from gridtape.study import Study

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IEEE14 = os.path.join(ROOT, "cases", "IEEE14", "data.zip")


@pytest.fixture
def journaled(tmp_path):
    path = str(tmp_path / "h.duckdb")
    g = gt.PowerGrid(IEEE14, journal=path)
    g.solve()
    yield g, path
    g.close()


def _tamper_profiles(g, path, seq):
    """Overwrite the study's profiles file with other, valid profiles; its path."""
    from gridtape.studies.store import profiles_path

    info = studies(path)
    sha = info[info.seq == seq]["profiles"].iloc[0][0]
    p = profiles_path(g.journal, sha)
    w = gt.PowerGrid(IEEE14, journal=False).world
    with open(p, "wb") as fh:
        fh.write(read_profiles(jitter(w, 8, seed=1), w).to_parquet_bytes())
    return p


# --- 1: tampered profiles ------------------------------------------------------------------------
def test_rerun_refuses_tampered_profiles_and_verify_names_them(journaled, tmp_path):
    g, path = journaled
    res = g.timeseries(jitter(g.world, 8))
    p = _tamper_profiles(g, path, res.seq)
    check = verify_study(g.journal, res.seq)
    assert not check.ok and p in check.bad and any(p in m for m in check.problems)
    assert check.missing == []
    with pytest.raises(JournalError) as e:
        rerun_study(g.journal, res.seq, out_dir=str(tmp_path / "again"))
    assert e.value.file == p and "sha256" in str(e.value)
    assert not os.path.exists(tmp_path / "again")  # refused before anything ran


def test_verify_names_a_missing_profiles_file(journaled):
    g, path = journaled
    res = g.timeseries(jitter(g.world, 4))
    from gridtape.studies.store import profiles_path

    p = profiles_path(g.journal, studies(g.journal)["profiles"].iloc[-1][0])
    os.remove(p)
    check = verify_study(g.journal, res.seq)
    assert not check.ok and p in check.missing and p not in check.bad


# --- 2: a run that fails in the middle -----------------------------------------------------------
def _zero_length_at_3(g):
    idx = pd.date_range("2026-01-01", periods=6, freq="h")
    v = np.full((6, 1), g.world["line"].cols["length_km"][0])
    v[3] = 0.0
    return {("line", "length_km"): pd.DataFrame(v, index=idx, columns=[int(g.world["line"].ids[0])])}, idx


@pytest.mark.parametrize("independent", [False, True])
def test_failed_run_names_its_step_and_leaves_nothing(journaled, independent):
    g, path = journaled
    g.flush()
    last = g.journal.last_seq
    prof, idx = _zero_length_at_3(g)
    with pytest.raises(SchemaError) as e:
        g.timeseries(prof, independent=independent)
    err = e.value
    assert str(idx[3]) in str(err) and "length_km" in str(err) and "impedance" in str(err)
    assert err.table == "line" and err.field == "length_km" and err.row == int(g.world["line"].ids[0])
    assert err.step == idx[3]
    g.flush()
    assert g.journal.last_seq == last and len(studies(g.journal)) == 0
    root = path + ".studies"
    left = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs] if os.path.exists(root) else []
    assert left == [] and not (os.path.exists(root) and [x for x in os.listdir(root) if x.startswith("study-")])


def test_failed_run_keeps_the_users_files_and_a_recorded_profiles_file(journaled, tmp_path):
    g, path = journaled
    ok = g.timeseries(jitter(g.world, 4))
    from gridtape.studies.store import profiles_dir

    kept = sorted(os.listdir(profiles_dir(g.journal)))
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    prof, _ = _zero_length_at_3(g)
    with pytest.raises(SchemaError):
        g.timeseries(prof, out_dir=str(out))
    assert sorted(os.listdir(out)) == ["notes.txt"]
    assert sorted(os.listdir(profiles_dir(g.journal))) == kept  # the recorded study's file stays
    assert verify_study(g.journal, ok.seq).ok and len(studies(g.journal)) == 1


def test_failed_run_on_an_executor_names_its_step(journaled):
    from concurrent.futures import ThreadPoolExecutor

    g, path = journaled
    prof, idx = _zero_length_at_3(g)
    with ThreadPoolExecutor(2) as ex:
        with pytest.raises(SchemaError) as e:
            g.timeseries(prof, executor=ex, chunk_size=2)
    assert str(idx[3]) in str(e.value) and e.value.field == "length_km"
    assert not os.path.exists(path + ".studies") or not os.listdir(path + ".studies")


def test_failed_run_leaves_no_blob_in_a_journal_in_memory():
    g = gt.PowerGrid(IEEE14)  # the default journal: in memory
    assert g.journal is not None and g.journal.path is None
    g.flush()
    last = g.journal.last_seq
    blobs = g.journal._con.execute("SELECT count(*) FROM blobs").fetchone()[0]
    prof, _ = _zero_length_at_3(g)
    with pytest.raises(SchemaError):
        g.timeseries(prof)
    g.flush()
    assert g.journal.last_seq == last
    assert g.journal._con.execute("SELECT count(*) FROM blobs").fetchone()[0] == blobs
    res = g.timeseries(jitter(g.world, 3))  # a run that works still stores its profiles
    assert res.seq is not None and g.journal._con.execute("SELECT count(*) FROM blobs").fetchone()[0] == blobs + 1
    g.close()


# --- 3: load_study -------------------------------------------------------------------------------
def test_load_study_reads_the_recorded_result(journaled):
    g, path = journaled
    prof = jitter(g.world, 12, spread=0.1)
    rec = g.timeseries(prof, ["res_bus.vm_pu", "res_line.loading_percent"], chunk_size=4)
    g.close()
    for source in (path, Study(path)):
        back = load_study(source, rec.seq)
        assert back.seq == rec.seq and back.directory == rec.directory and back.manifest == rec.manifest
        assert back.outputs == rec.outputs and list(back.index) == list(rec.index)
        assert back.converged.tolist() == rec.converged.tolist()
        assert back.iterations.tolist() == rec.iterations.tolist()
        np.testing.assert_array_equal(back.mismatch.to_numpy(), rec.mismatch.to_numpy())
        for o in rec.outputs:
            np.testing.assert_array_equal(back[o].to_numpy(), rec[o].to_numpy())
        step = rec.index[5]
        np.testing.assert_allclose(back.at(step).res_bus.vm_pu.to_numpy(), rec.at(step).res_bus.vm_pu.to_numpy(),
                                   atol=1e-10)
        if isinstance(source, Study):
            source.close()


def test_load_study_refuses_a_changed_file_unless_told(journaled):
    g, path = journaled
    rec = g.timeseries(jitter(g.world, 6), ["res_bus.vm_pu"])
    f = os.path.join(rec.directory, "res_bus.vm_pu.parquet")
    want = rec["bus", "vm_pu"].to_numpy()  # read now (a result reads its files when asked)
    res2 = g.timeseries(jitter(g.world, 6, seed=4), ["res_bus.vm_pu"])
    shutil.copyfile(os.path.join(res2.directory, "res_bus.vm_pu.parquet"), f)  # a valid file, other values
    with pytest.raises(JournalError) as e:
        load_study(g, rec.seq)
    assert e.value.file == f
    other = load_study(g.journal, rec.seq, verify=False)  # read as it is
    assert not np.array_equal(other["bus", "vm_pu"].to_numpy(), want)
    assert load_study(g.journal).seq == res2.seq  # the latest study by default
    _tamper_profiles(g, path, res2.seq)
    with pytest.raises(JournalError, match="profiles"):
        load_study(g.journal, res2.seq)


def test_load_study_of_a_journal_in_memory_is_refused():
    g = gt.PowerGrid(IEEE14)
    res = g.timeseries(jitter(g.world, 3))
    with pytest.raises(JournalError, match="rerun_study"):
        load_study(g, res.seq)
    g.close()


# --- 4: solver options for one run ---------------------------------------------------------------
def test_run_options_override_the_grids_and_are_recorded(journaled):
    g, path = journaled
    prof = jitter(g.world, 3, spread=0.0)
    plain = g.timeseries(prof, ["res_gen.q_mvar"])
    assert plain.options["qlim"] is False
    res = g.timeseries(prof, ["res_gen.q_mvar"], qlim=True, tolerance_mva=1e-6, max_iteration=20, init="flat")
    assert res.options["qlim"] is True and res.options["tolerance_mva"] == 1e-6
    assert res.options["max_iteration"] == 20 and res.options["init"] == "flat"
    info = json.loads(g.journal.log(event="study")["info"].iloc[-1])
    assert info["options"]["qlim"] is True and info["options"]["max_iteration"] == 20
    assert g.qlim is False  # the grid's own options stay


def test_run_qlim_applies_the_limits():
    g = gt.PowerGrid(os.path.join(ROOT, "cases", "IEEE118", "data.zip"), journal=False)
    prof = jitter(g.world, 2, spread=0.0)
    gens = g.world["gen"]
    plain = g.timeseries(prof, ["res_gen.q_mvar"])
    assert (plain["gen", "q_mvar"].to_numpy() > gens.cols["max_q_mvar"] + 1e-6).any()  # a limit binds
    res = g.timeseries(prof, ["res_gen.q_mvar"], qlim=True)
    q = res["gen", "q_mvar"].to_numpy()
    assert (q <= gens.cols["max_q_mvar"] + 1e-6).all() and (q >= gens.cols["min_q_mvar"] - 1e-6).all()
    ref = gt.PowerGrid(os.path.join(ROOT, "cases", "IEEE118", "data.zip"), journal=False)
    ref.solve(qlim=True)
    np.testing.assert_allclose(q[0], ref.res_gen.q_mvar.to_numpy(), atol=1e-5)
    assert g.qlim is False and res.options["qlim"] is True and plain.options["qlim"] is False


def test_run_options_are_validated(journaled):
    g, path = journaled
    prof = jitter(g.world, 2)
    g.flush()
    last = g.journal.last_seq
    for kw in ({"qlim": "yes"}, {"tolerance_mva": -1}, {"max_iteration": 0}, {"init": "warm"},
               {"distributed_slack": 2}):
        with pytest.raises(OptionError):
            g.timeseries(prof, **kw)
    with pytest.raises(TypeError) as e:
        g.timeseries(prof, qlimit=True)
    assert "timeseries" in str(e.value) and "run_timeseries" not in str(e.value)
    g.flush()
    assert g.journal.last_seq == last


# --- 5: argument checks --------------------------------------------------------------------------
def test_chunk_size_zero_and_negative_overlap_are_refused(journaled):
    g, _ = journaled
    prof = jitter(g.world, 4)
    for kw in ({"chunk_size": 0}, {"chunk_size": -3}, {"chunk_size": 1.5}, {"overlap": -1}):
        with pytest.raises(SchemaError) as e:
            g.timeseries(prof, **kw)
        assert e.value.field == next(iter(kw))
    assert len(g.timeseries(prof, chunk_size=1)) == 4


@pytest.mark.parametrize("journal", [False, "file"])
def test_timeseries_inside_an_edit_block_is_refused(tmp_path, journal):
    g = gt.PowerGrid(IEEE14, journal=str(tmp_path / "e.duckdb") if journal else False)
    prof = jitter(g.world, 3)
    with pytest.raises(JournalError, match="edit block"):
        with g.edit() as e:
            e.set("load", [int(g.world["load"].ids[0])], "p_mw", 1.0)
            g.timeseries(prof)
    g.close()


# --- 6: result keys and steps --------------------------------------------------------------------
def test_result_keys_and_unknown_steps():
    g = gt.PowerGrid(IEEE14, journal=False)
    res = g.timeseries(jitter(g.world, 3))
    a = res["bus", "vm_pu"]
    for key in (("res_bus", "vm_pu"), "res_bus.vm_pu", "bus.vm_pu"):
        pd.testing.assert_frame_equal(res[key], a)
    pd.testing.assert_frame_equal(res.result("res_bus", "vm_pu"), a)
    with pytest.raises(SchemaError, match="res_bus.p_mw"):
        res["res_bus", "p_mw"]
    with pytest.raises(UnknownStepError) as e:
        res.at(pd.Timestamp("1999-01-01"))
    assert isinstance(e.value, KeyError) and isinstance(e.value, GridtapeError)
    assert "1999-01-01" in str(e.value) and not str(e.value).startswith("'")
    with pytest.raises(UnknownStepError):
        res.at("not a step")


# --- 7: the docs' history example compares real manifests ----------------------------------------
def test_docs_history_example_compares_real_manifests(tmp_path, monkeypatch):
    text = open(os.path.join(ROOT, "docs", "studies.md"), encoding="utf-8").read()
    code = [m.group(1) for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M)]
    upto = next(i for i, c in enumerate(code) if "rerun_study(" in c)
    os.symlink(os.path.join(ROOT, "cases"), tmp_path / "cases")
    monkeypatch.chdir(tmp_path)
    ns = {"__name__": "__docs__"}
    try:
        for c in code[:upto + 1]:
            exec(compile(c, "docs/studies.md", "exec"), ns)
        again = ns["again"]
        rec = next(v for k, v in ns.items() if isinstance(v, gt.studies.TimeSeriesResult) and v.seq is not None
                   and "rerun_study" in code[upto] and f"{k}.seq" in code[upto])
        assert isinstance(rec.manifest, dict) and len(rec.manifest) > 1 and again.manifest == rec.manifest
        assert "load_study(" in code[upto]
    finally:
        for v in list(ns.values()):
            if isinstance(v, gt.PowerGrid):
                v.close()
