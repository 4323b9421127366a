"""What a new user feeds grid.timeseries: profiles are checked as the write path checks a write
of the same value (plus: no flag ids or values, steps each once, at least one step), refusals
name table, id, field and step once; a tz-aware index survives the files, Arrow, DuckDB and a
rerun; the CLI refuses a missing journal and takes a frame pandas wrote with ``to_parquet``."""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import gridtape as gt
from gridtape.errors import GridtapeError, JournalError, SchemaError
from gridtape.studies import outputs_view, read_profiles, rerun_study
from gridtape.studies.profiles import jitter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IEEE14 = os.path.join(ROOT, "cases", "IEEE14", "data.zip")


@pytest.fixture
def grid():
    g = gt.PowerGrid(IEEE14, journal=False)
    yield g
    g.close()


def frame(values, ids, n=3, index=None):
    index = pd.date_range("2026-01-01", periods=n, freq="h") if index is None else index
    return pd.DataFrame(np.broadcast_to(np.asarray(values, dtype=object), (len(index), len(ids))).copy(),
                        index=index, columns=list(ids))


def write_refused(grid, kind, eid, field, value) -> bool:
    before = grid.world[kind].cols[field].copy()
    try:
        grid.set(kind, [eid], field, [value])
    except GridtapeError:
        assert np.array_equal(grid.world[kind].cols[field], before, equal_nan=True)
        return True
    grid.world[kind].cols[field][:] = before
    return False


# --- A: the write path's checks, and the profile's own ---------------------------------------------
@pytest.mark.parametrize("kind, field, value", [
    ("gen", "vm_pu", 0.0), ("gen", "vm_pu", -1.0), ("ext_grid", "vm_pu", 0.0), ("load", "p_mw", np.nan),
    ("load", "p_mw", np.inf), ("load", "p_mw", True), ("load", "p_mw", np.bool_(False)), ("load", "p_mw", "abc"),
    ("shunt", "step", -1.0), ("trafo", "tap_pos", np.inf),
])
def test_profile_refused_where_a_write_is_refused(grid, kind, field, value):
    eid = int(grid.world[kind].ids[0])
    assert write_refused(grid, kind, eid, field, value)
    n = 4
    vals = np.full((n, 1), grid.world[kind].cols[field][0], dtype=object)
    vals[2, 0] = value
    prof = {(kind, field): pd.DataFrame(vals, index=pd.RangeIndex(10, 10 + n), columns=[eid])}
    with pytest.raises(SchemaError) as e:
        grid.timeseries(prof)
    err = e.value
    assert (err.table, err.row, err.field) == (kind, eid, field)
    assert "step 12" in str(err)


@pytest.mark.parametrize("kind, field, value", [("trafo", "tap_pos", 2.5), ("shunt", "step", 0.0),
                                                ("gen", "vm_pu", 1.02), ("load", "p_mw", -3.0)])
def test_profile_accepted_where_a_write_is_accepted(grid, kind, field, value):
    eid = int(grid.world[kind].ids[0])
    assert not write_refused(grid, kind, eid, field, value)
    p = read_profiles({(kind, field): frame(value, [eid]).astype(float)}, grid.world)
    assert p.entries[0].values[1, 0] == value


def test_vm_pu_zero_refused_by_the_schema(grid):
    for kind in ("gen", "ext_grid", "xward"):
        col = grid.world[kind].spec["vm_pu"]
        assert col.vmin > 0.0
    with pytest.raises(SchemaError, match="must be > 0"):
        grid.gen(int(grid.world["gen"].cols["bus"][0])).vm_pu = 0.0


def test_boolean_values_and_columns_refused(grid):
    ids = grid.world["load"].ids
    p = grid.world["load"].cols["p_mw"]
    bools = pd.DataFrame(np.ones((3, len(ids)), dtype=bool), columns=ids)
    with pytest.raises(SchemaError, match="boolean") as e:
        read_profiles({("load", "p_mw"): bools}, grid.world)
    assert e.value.row == int(ids[0]) and e.value.field == "p_mw"
    for label in (True, False, np.bool_(True)):
        with pytest.raises(SchemaError, match="not an element id"):
            read_profiles({("load", "p_mw"): pd.DataFrame({label: [p[0]] * 3})}, grid.world)


def test_duplicate_steps_and_no_steps_refused(grid):
    eid = int(grid.world["load"].ids[0])
    idx = pd.DatetimeIndex(["2026-01-01 00:00", "2026-01-01 01:00", "2026-01-01 01:00"])
    with pytest.raises(SchemaError, match="twice") as e:
        read_profiles({("load", "p_mw"): frame(1.0, [eid], index=idx).astype(float)}, grid.world)
    assert "2026-01-01 01:00" in str(e.value) and e.value.table == "load"
    empty = pd.DataFrame({eid: pd.Series([], dtype=float)})
    with pytest.raises(SchemaError, match="no steps"):
        read_profiles({("load", "p_mw"): empty}, grid.world)


@pytest.mark.parametrize("index", [
    pd.MultiIndex.from_product([[1, 2], [1, 2]]), pd.Index([(1, 0), (1, 1), (2, 0), (2, 1)], tupleize_cols=False),
    pd.period_range("2026-01", periods=4, freq="M"), pd.interval_range(0, 4),
    pd.Index([1, "a", 2.5, None], dtype=object),
], ids=["multi", "tuples", "period", "interval", "mixed"])
def test_step_labels_a_study_cannot_keep_refused_before_anything_runs(tmp_path, index):
    """A step index whose labels the study's Parquet files cannot hold and give back (so that
    load_study / rerun_study could not open the recorded study) is refused up front, naming the
    profile; nothing is recorded."""
    g = gt.PowerGrid(IEEE14, journal=str(tmp_path / "j.duckdb"))
    g.solve()
    head = g.journal.last_seq
    eid = int(g.world["load"].ids[0])
    with pytest.raises(SchemaError, match="one label") as e:
        g.timeseries({("load", "p_mw"): frame(1.0, [eid], index=index).astype(float)})
    assert isinstance(e.value, ValueError) and e.value.table == "load" and e.value.field == "p_mw"
    g.flush()
    assert g.journal.last_seq == head and not os.path.exists(str(tmp_path / "j.duckdb.studies"))
    g.close()


def test_empty_frame_of_unknown_kind_or_field_refused(grid):
    ok = {("load", "p_mw"): frame(1.0, [int(grid.world["load"].ids[0])]).astype(float)}
    for key in (("lod", "p_mw"), ("load", "pmw"), ("load", "in_service")):
        with pytest.raises(SchemaError) as e:
            read_profiles({**ok, key: pd.DataFrame(index=ok[("load", "p_mw")].index)}, grid.world)
        assert e.value.table == key[0] and e.value.field == key[1]
    # an empty frame of a known, profilable column profiles nothing (SimBench's habit)
    read_profiles({**ok, ("storage", "p_mw"): pd.DataFrame(index=ok[("load", "p_mw")].index)}, grid.world)


# --- C: messages -----------------------------------------------------------------------------------
def test_location_printed_once(grid):
    eid = int(grid.world["load"].ids[1])
    vals = frame(1.0, [eid]).astype(object)
    vals.iloc[1, 0] = "x"
    with pytest.raises(SchemaError) as e:
        read_profiles({("load", "p_mw"): vals}, grid.world)
    msg = str(e.value)
    assert msg.count("table 'load'") == 1 and msg.count("field 'p_mw'") == 1 and msg.count("[") == 1
    assert f"row {eid}" in msg and "step Timestamp('2026-01-01 01:00:00')" in msg


def test_text_column_refusal_says_why(grid):
    with pytest.raises(SchemaError) as e:
        read_profiles({("trafo", "tap_side"): frame("hv", grid.world["trafo"].ids)}, grid.world)
    msg = str(e.value)
    assert "text" in msg and "'hv'" in msg and "affects 'adm'" not in msg
    with pytest.raises(SchemaError, match="topology"):
        read_profiles({("line", "in_service"): frame(True, grid.world["line"].ids)}, grid.world)


# --- B: time zones ---------------------------------------------------------------------------------
def test_tz_aware_index_kept_everywhere(tmp_path):
    path = str(tmp_path / "tz.duckdb")
    g = gt.PowerGrid(IEEE14, journal=path)
    g.solve()
    idx = pd.date_range("2026-03-29", periods=4, freq="h", tz="Europe/Berlin", name="time")
    r = g.timeseries(jitter(g.world, 4, index=idx))
    seq = r.seq
    g.close()
    assert r.index.equals(idx) and str(r.index.tz) == "Europe/Berlin" and r.index.name == "time"
    step = r.to_arrow().schema.field("step").type
    assert step.tz == "Europe/Berlin"
    files = [f for f in os.listdir(r.directory) if f.endswith(".parquet")]
    for f in files:
        assert pq.read_schema(os.path.join(r.directory, f)).field("step").type.tz == "Europe/Berlin", f
    again = rerun_study(path, seq, out_dir=str(tmp_path / "rerun"))
    assert again.index.equals(idx) and str(again.index.tz) == "Europe/Berlin" and again.index.name == "time"
    assert again.manifest == r.manifest  # the same bytes, zone included
    with gt.open(path) as st:
        name = outputs_view(st)
        got = st.journal._con.execute(f"SELECT DISTINCT step FROM {name} ORDER BY step").fetchall()
        typ = st.journal._con.execute(f"SELECT typeof(step) FROM {name} LIMIT 1").fetchone()[0]
    assert typ.upper().startswith("TIMESTAMPTZ") or "TIME ZONE" in typ.upper()  # instants, not wall times
    assert [pd.Timestamp(s[0]) for s in got] == list(idx)  # (DuckDB shows them in the session's zone)


# --- D: the CLI ------------------------------------------------------------------------------------
def cli(args):
    from gridtape.studies.cli import add_timeseries_parser

    ap = argparse.ArgumentParser()
    add_timeseries_parser(ap.add_subparsers(dest="cmd"))
    a = ap.parse_args(["timeseries", *args])
    return a.func(a)


def test_cli_missing_journal_refused_and_not_created(tmp_path):
    from gridtape.cli import main

    missing = tmp_path / "typo.duckdb"
    pfile = tmp_path / "p.parquet"
    pfile.write_bytes(b"")
    with pytest.raises(JournalError, match="no such journal"):
        cli([str(missing), str(pfile)])
    assert main(["timeseries", str(missing), str(pfile)]) == 2
    assert os.listdir(tmp_path) == ["p.parquet"]


@pytest.mark.parametrize("index_name", [None, "time"])
def test_cli_takes_pandas_to_parquet(tmp_path, capsys, index_name):
    path = str(tmp_path / "s.duckdb")
    g = gt.PowerGrid(IEEE14, journal=path)
    g.solve()
    idx = pd.date_range("2026-06-01", periods=5, freq="15min", name=index_name)
    wide = pd.concat({f"{k}/{f}/{i}": fr[i] for (k, f), fr in jitter(g.world, 5, index=idx).items()
                      for i in fr.columns}, axis=1)
    g.close()
    pfile = tmp_path / "p.parquet"
    wide.to_parquet(pfile)
    assert cli([path, str(pfile)]) == 0
    out = capsys.readouterr().out
    assert "5 steps, 5 converged" in out
    with gt.open(path) as st:
        log = st.log(event="study")
        seq, tx = int(log.seq.iloc[-1]), int(log.tx.iloc[-1])
    assert f"seq {seq}" in out and f"gridtape show {path} {tx}" in out
    from gridtape.cli import main

    assert main(["show", path, str(tx)]) == 0
    again = rerun_study(path, seq)
    assert again.index.equals(idx) and again.index.name == index_name
    assert cli([path, str(pfile), "--json"]) == 0
    got = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert got["steps"] == 5 and got["tx"] > tx


# --- E: the docs name the verb, the ward columns and the unit of mismatch ----------------------------
def test_docs_name_timeseries_ward_columns_and_mismatch_unit():
    from gridtape.world.schema import KINDS

    def page(*p):
        return open(os.path.join(ROOT, *p), encoding="utf-8").read()

    readme = page("README.md")
    verbs = readme[readme.index("Command line: git-like verbs"):readme.index("## Documentation")]
    assert "`timeseries" in verbs
    cli_doc = page("docs", "cli.md")
    assert "`timeseries`" in cli_doc.split("\n\n")[1] and "## timeseries" in cli_doc
    studies = page("docs", "studies.md")
    profilable = studies[studies.index("Any column whose writes"):studies.index("In-service flags")]
    assert "ward" in profilable and "`ps_mw`" in profilable and "`qs_mvar`" in profilable
    assert {"ps_mw", "qs_mvar"} <= set(KINDS["ward"].names)
    assert "ward / xward `ps_mw`" in profilable  # not a ward `p_mw`, which does not exist
    result = studies[studies.index("### The result"):]
    at = result.index("`res.mismatch`")
    mismatch = result[at:result.index("\n- ", at)]
    assert "p.u." in mismatch and "sn_mva" in mismatch


def test_cli_and_read_profiles_refuse_a_file_that_is_not_parquet(tmp_path, grid):
    from gridtape.cli import main
    from gridtape.errors import CaseError

    path = str(tmp_path / "s.duckdb")
    gt.PowerGrid(IEEE14, journal=path).close()
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"step,load/p_mw/0\n0,1.0\n")
    with pytest.raises(CaseError) as e:
        cli([path, str(bad)])
    assert e.value.file == str(bad)
    assert main(["timeseries", path, str(bad)]) == 2
    with pytest.raises(SchemaError, match="Parquet"):
        read_profiles(bad.read_bytes(), grid.world)


# --- F: arguments that are not what they claim to be: named, and nothing recorded ----------------------
def journal_state(g, path):
    studies_dir = path + ".studies"
    return len(g.journal.log()), sorted(os.listdir(studies_dir)) if os.path.exists(studies_dir) else []


@pytest.mark.parametrize("kw, field", [
    ({"executor": 5}, "executor"),
    ({"outputs": [("bus", "vm_pu", "x")]}, "outputs"),
    ({"outputs": [("bus",)]}, "outputs"),
    ({"outputs": [(1, 2)]}, "outputs"),
    ({"outputs": 5}, "outputs"),
])
def test_bad_executor_or_outputs_named_before_anything_runs(tmp_path, kw, field):
    path = str(tmp_path / "s.duckdb")
    g = gt.PowerGrid(IEEE14, journal=path)
    g.solve()
    before, vm = journal_state(g, path), g.res_bus.vm_pu.copy()
    with pytest.raises(SchemaError) as e:
        g.timeseries(jitter(g.world, 3), **kw)
    assert e.value.field == field and field in str(e.value)
    assert journal_state(g, path) == before and g.res_bus.vm_pu.equals(vm)
    g.close()


def wide_file(g, path, n=4, rename=None):
    wide = pd.concat({f"{k}/{f}/{i}": fr[i] for (k, f), fr in jitter(g.world, n).items() for i in fr.columns}, axis=1)
    if rename:
        wide = wide.rename(columns=rename)
    wide.to_parquet(path)
    return str(path)


def test_profiles_from_a_file_name_it_in_their_errors(tmp_path):
    path = str(tmp_path / "s.duckdb")
    g = gt.PowerGrid(IEEE14, journal=path)
    good = wide_file(g, tmp_path / "p.parquet")
    res = g.timeseries(good)  # a path, as the CLI gives it
    assert len(res) == 4 and res.converged.all()
    bad = wide_file(g, tmp_path / "bad.parquet", rename={"load/p_mw/1": "load/p_mw/9999"})
    before = journal_state(g, path)
    with pytest.raises(gt.errors.BadReferenceError) as e:
        g.timeseries(bad)
    assert (e.value.file, e.value.table, e.value.row, e.value.field) == (bad, "load", 9999, "p_mw")
    assert "bad.parquet" in str(e.value)
    with pytest.raises(gt.errors.CaseError) as e:
        g.timeseries(str(tmp_path / "typo.parquet"))
    assert e.value.file == str(tmp_path / "typo.parquet")
    assert journal_state(g, path) == before
    g.close()


def test_cli_names_the_profiles_file_and_refuses_threads_below_one(tmp_path, capsys):
    from gridtape.cli import main

    path = str(tmp_path / "s.duckdb")
    g = gt.PowerGrid(IEEE14, journal=path)
    good = wide_file(g, tmp_path / "p.parquet")
    bad = wide_file(g, tmp_path / "bad.parquet", rename={"load/p_mw/1": "load/p_mw/9999"})
    g.close()
    with gt.open(path) as st:
        n = len(st.log())
    for threads in ("0", "-1"):
        assert main(["timeseries", path, good, "--threads", threads]) == 2
        assert "--threads" in capsys.readouterr().err
    assert main(["timeseries", path, bad]) == 2
    err = capsys.readouterr().err
    assert f"file {bad}" in err and "table 'load', row 9999, field 'p_mw'" in err
    with gt.open(path) as st:
        assert len(st.log()) == n  # nothing recorded
    assert main(["timeseries", path, good, "--threads", "1"]) == 0


def test_show_of_a_study_transaction_shows_the_study(tmp_path, capsys):
    from gridtape.cli import main

    path = str(tmp_path / "s.duckdb")
    g = gt.PowerGrid(IEEE14, journal=path)
    prof = jitter(g.world, 6)
    prof[("load", "p_mw")].iloc[2] *= 40.0  # one step diverges
    res = g.timeseries(prof, ["res_bus.vm_pu"], independent=True)
    seq, base = res.seq, json.loads(g.journal.log(event="study")["info"].iloc[-1])["base_seq"]
    tx = int(g.journal.log(since=seq, until=seq)["tx"].iloc[0])
    g.close()
    assert main(["show", path, str(tx)]) == 0
    out = capsys.readouterr().out
    assert f"study (seq {seq}): timeseries, 6 steps, 5 converged, independent" in out
    assert f"base seq {base}" in out and res.directory in out and "res_bus.vm_pu" in out
    assert "tolerance_mva=1e-08" in out and "max_iteration=10" in out
    assert main(["show", path, str(tx), "--json"]) == 0
    st = json.loads(capsys.readouterr().out)["studies"][0]
    assert (st["seq"], st["steps"], st["converged"], st["base_seq"], st["dir"]) == (seq, 6, 5, base, res.directory)
    assert st["independent"] is True and st["options"]["tolerance_mva"] == 1e-08
    from gridtape.studies.record import study_summary

    with gt.open(path) as study:  # a study recorded before the count was kept: counted from its steps file
        info = json.loads(study.log(event="study")["info"].iloc[-1])
        del info["converged"]
        assert study_summary(study.journal, info)["converged"] == 5
