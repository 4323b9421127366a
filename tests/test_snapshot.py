"""Manifested Parquet snapshots and snapshot ZIPs: exact round trips of every bundled case and every
built network, corruption of any byte or file detected and named, stray files ignored and cleaned,
writers SIGKILLed at random moments never leave a readable-but-wrong snapshot."""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gridtape
from gridtape.errors import CaseError, GridtapeError, SchemaError, SnapshotCorruptError
from gridtape.replay import codec
from gridtape.replay.archive import (case_zip_bytes, results_from_zip_bytes, results_zip_bytes,
                                     world_from_zip_bytes)
from gridtape.replay.manifest import Manifest
from gridtape.replay.snapshot import (MANIFEST_SUFFIX, clean, list_snapshots, read_snapshot, snapshot_at,
                                      verify_snapshot, write_snapshot)
from gridtape.world import KIND_ORDER, SCHEMA_VERSION, fingerprint
from gridtape.world.io import load_case

TESTS = Path(__file__).resolve().parent
CASES = TESTS.parent / "cases"
CASE_FILES = sorted(str(p.relative_to(CASES)) for p in CASES.glob("*/data.zip")) + [
    "json/example_multivoltage.json", "matpower/case14.m"]

_worlds = {}


def case_world(rel):
    if rel not in _worlds:
        _worlds[rel] = load_case(str(CASES / rel))
    return _worlds[rel].copy()


def built_world(name):
    pytest.importorskip("pandapower")
    import networks  # tests/networks.py
    from gridtape.world.io_pandapower import from_pandapower

    return from_pandapower(networks.BUILT[name]())


def assert_same(a, b):
    """Exact equality, checked independently of codec.same_world as well."""
    assert codec.same_world(a, b)
    assert a.equals(b) and a.name == b.name and a.sn_mva == b.sn_mva and a.f_hz == b.f_hz
    for kind in KIND_ORDER:
        ta, tb = a[kind], b[kind]
        assert ta.next_id == tb.next_id, kind
        assert list(ta.extra) == list(tb.extra), kind
        fa, fb = ta.to_frame(), tb.to_frame()
        pd.testing.assert_frame_equal(fa, fb, check_exact=True)
        for name in ta.spec.names:
            assert ta.cols[name].dtype == tb.cols[name].dtype, (kind, name)


def some_bytes_flipped(data: bytes, pos: int) -> bytes:
    b = bytearray(data)
    b[pos] ^= 0x5A
    return bytes(b)


# --- round trips -----------------------------------------------------------------------------------
@pytest.mark.parametrize("rel", CASE_FILES)
def test_bundled_case_round_trips_exactly(rel, tmp_path):
    w = case_world(rel)
    m = write_snapshot(w, tmp_path, seq=7, author="t", message=f"case {rel}")
    w2, m2 = read_snapshot(tmp_path, m.snapshot_id)
    assert_same(w, w2)
    assert m2 == m
    assert [f.kind for f in m.files] == list(KIND_ORDER)  # every kind, empty ones too
    assert {f.kind: f.rows for f in m.files} == {k: len(w[k]) for k in KIND_ORDER}
    w3 = world_from_zip_bytes(case_zip_bytes(w))
    assert_same(w, w3)
    # read arrays are writable: the world can be edited right away
    bus = int(w2["bus"].ids[0])
    w2.set_value("bus", bus, "vn_kv", 1.5 * w2["bus"].get(bus, "vn_kv"))
    assert not w2.equals(w)


@pytest.mark.parametrize("name", ["switches_and_trafos", "three_winding", "wards_impedances_gens",
                                  "out_of_service_and_island", "phase_shifters_and_slack_gen"])
def test_built_network_round_trips_exactly(name, tmp_path):
    w = built_world(name)
    assert any(len(t.extra) for t in w)  # pandapower's pass-through columns come along
    m = write_snapshot(w, tmp_path)
    w2, _ = read_snapshot(tmp_path / (m.snapshot_id + MANIFEST_SUFFIX))
    assert_same(w, w2)
    assert_same(w, world_from_zip_bytes(case_zip_bytes(w)))


def test_networks_module_lists_every_built_network():
    pytest.importorskip("pandapower")
    import networks

    assert set(networks.BUILT) == {"switches_and_trafos", "three_winding", "wards_impedances_gens",
                                   "out_of_service_and_island", "phase_shifters_and_slack_gen"}


def test_extra_values_keep_their_types(tmp_path):
    w = case_world("IEEE14/data.zip")
    t = w["load"]
    n = len(t)
    pool = [None, pd.NA, pd.NaT, float("nan"), float("inf"), -0.0, 3, 2 ** 70, True, "täxt", "",
            [1, "a", None], {"k": [1.5, None]}, np.float64(2.5), np.int64(-4), np.bool_(False)]
    mixed = np.empty(n, dtype=object)
    mixed[:] = [pool[i % len(pool)] for i in range(n)]
    t.extra = {"mixed": mixed, "ints": np.array([i - 3 for i in range(n)], dtype=object),
               "flags": np.array([i % 2 == 0 for i in range(n)], dtype=object),
               "floats": np.array([math.nan if i % 3 else i / 7 for i in range(n)], dtype=object),
               "texts": np.array([None if i % 4 else f"x{i}" for i in range(n)], dtype=object)}
    m = write_snapshot(w, tmp_path)
    assert dict(map(tuple, m.file("load").extra)) == {"mixed": "tagged", "ints": "int", "flags": "bool",
                                                      "floats": "float", "texts": "str"}
    w2, _ = read_snapshot(tmp_path, m.snapshot_id)
    got = w2["load"].extra
    assert list(got) == list(t.extra)
    for i, v in enumerate(got["mixed"]):
        want = mixed[i]
        if want is pd.NA or want is pd.NaT or want is None:
            assert v is want
        elif isinstance(want, float) and math.isnan(want):
            assert isinstance(v, float) and math.isnan(v)
        else:
            assert v == want and type(v) is type(want.item() if hasattr(want, "item") else want)
            if isinstance(want, float):
                assert math.copysign(1, v) == math.copysign(1, want)
    assert got["ints"].tolist() == t.extra["ints"].tolist()
    assert all(type(v) is int for v in got["ints"])
    assert got["flags"].tolist() == t.extra["flags"].tolist()
    assert all(type(v) is bool for v in got["flags"])
    assert got["texts"].tolist() == t.extra["texts"].tolist()
    assert codec.same_world(w, w2)


def test_unstorable_extra_value_raises_and_writes_nothing(tmp_path):
    w = case_world("IEEE14/data.zip")
    col = np.full(len(w["gen"]), None, dtype=object)
    col[2] = object()
    w["gen"].extra["bad"] = col
    write_snapshot(case_world("IEEE14/data.zip"), tmp_path)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(SchemaError) as e:
        write_snapshot(w, tmp_path)
    assert (e.value.table, e.value.field, e.value.row) == ("gen", "bad", int(w["gen"].ids[2]))
    assert sorted(os.listdir(tmp_path)) == before


def test_next_id_survives_removal_of_the_newest_elements(tmp_path):
    w = case_world("IEEE30/data.zip")
    top = w["load"].ids[-2:]
    w.remove("load", top)
    assert w["load"].next_id > int(w["load"].ids.max()) + 1
    m = write_snapshot(w, tmp_path)
    assert m.file("load").next_id == w["load"].next_id
    w2, _ = read_snapshot(tmp_path, m.snapshot_id)
    assert w2["load"].next_id == w["load"].next_id
    new = w2.add("load", {"bus": [int(w2["bus"].ids[0])], "p_mw": [1.0]})
    assert int(new[0]) == w["load"].next_id  # the removed ids are not reused


def test_manifest_records_provenance(tmp_path):
    w = case_world("IEEE57/data.zip")
    w.name = "named ünïcode"
    p = write_snapshot(w, tmp_path, seq=1)
    m = write_snapshot(w, tmp_path, parent=p, seq=12, author="ana", message="after redispatch")
    text = (tmp_path / (m.snapshot_id + MANIFEST_SUFFIX)).read_text()
    body = json.loads(text)
    for key in ("format", "format_version", "snapshot_id", "parent", "seq", "created_at", "author", "message",
                "gridtape_version", "schema_version", "schema_fingerprint", "network", "files", "manifest_sha256"):
        assert key in body, key
    assert body["parent"] == p.snapshot_id and body["seq"] == 12 and body["author"] == "ana"
    assert body["gridtape_version"] == gridtape.__version__
    assert body["schema_version"] == SCHEMA_VERSION and body["schema_fingerprint"] == fingerprint()
    assert body["network"] == {"sn_mva": w.sn_mva, "f_hz": w.f_hz, "name": "named ünïcode"}
    assert body["created_at"].endswith("+00:00")
    for f in body["files"]:
        data = (tmp_path / m.snapshot_id / f["name"]).read_bytes()
        assert f["bytes"] == len(data) and f["sha256"] == hashlib.sha256(data).hexdigest()
        assert f["rows"] == len(w[f["kind"]]) and f["next_id"] == w[f["kind"]].next_id
    assert Manifest.from_json(text) == m
    assert Manifest.from_json(m.to_json()) == m


# --- the data hash does not depend on the writer ---------------------------------------------------
def test_data_hash_is_independent_of_writer_and_compression(tmp_path):
    w = built_world("switches_and_trafos")
    a = write_snapshot(w, tmp_path / "a", compression="zstd")
    b = write_snapshot(w, tmp_path / "b", compression="none")
    assert [f.sha256 for f in a.files] != [f.sha256 for f in b.files]
    assert [f.data_hash for f in a.files] == [f.data_hash for f in b.files]
    # rewrite every file with another writer (snappy, dictionaries, tiny row groups) and only
    # update the byte-level fields: the data hashes still verify
    files = []
    for f in a.files:
        path = tmp_path / "a" / a.snapshot_id / f.name
        tb = pq.read_table(path)
        tb = tb.select(list(reversed(tb.column_names)))  # another column order, too
        pq.write_table(tb, path, compression="snappy", use_dictionary=True, row_group_size=3)
        data = path.read_bytes()
        files.append(type(f)(**{**f.__dict__, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}))
    a.files = files
    (tmp_path / "a" / (a.snapshot_id + MANIFEST_SUFFIX)).write_text(a.to_json())
    w2, _ = read_snapshot(tmp_path / "a", a.snapshot_id)
    assert_same(w, w2)
    # a value changed by that other writer: sha256 updated, data hash not -> caught
    f = a.file("line")
    path = tmp_path / "a" / a.snapshot_id / f.name
    tb = pq.read_table(path)
    length = tb.column("length_km").to_numpy().copy()
    length[1] += 1.0
    tb = tb.set_column(tb.schema.get_field_index("length_km"), "length_km", pa.array(length))
    pq.write_table(tb, path)
    data = path.read_bytes()
    f.bytes, f.sha256 = len(data), hashlib.sha256(data).hexdigest()
    (tmp_path / "a" / (a.snapshot_id + MANIFEST_SUFFIX)).write_text(a.to_json())
    with pytest.raises(SnapshotCorruptError, match="data hash") as e:
        read_snapshot(tmp_path / "a", a.snapshot_id)
    assert e.value.file == str(path)


# --- corruption ---------------------------------------------------------------------------------------
def snapshot_paths(root, m):
    return [root / m.snapshot_id / f.name for f in m.files] + [root / (m.snapshot_id + MANIFEST_SUFFIX)]


def test_any_flipped_byte_names_the_file(tmp_path):
    w = built_world("three_winding")
    m = write_snapshot(w, tmp_path)
    rng = random.Random(5)
    for path in snapshot_paths(tmp_path, m):
        good = path.read_bytes()
        for pos in {0, len(good) // 2, len(good) - 1, rng.randrange(len(good))}:
            path.write_bytes(some_bytes_flipped(good, pos))
            with pytest.raises(SnapshotCorruptError) as e:
                read_snapshot(tmp_path, m.snapshot_id)
            assert e.value.file == str(path), (path.name, pos)
            problems = verify_snapshot(tmp_path, m.snapshot_id)
            assert problems and str(path) in problems[0]
        path.write_bytes(good)
    assert verify_snapshot(tmp_path) == []
    assert_same(w, read_snapshot(tmp_path, m.snapshot_id)[0])


def test_every_byte_of_a_manifest_is_protected(tmp_path):
    m = write_snapshot(case_world("IEEE14/data.zip"), tmp_path)
    path = tmp_path / (m.snapshot_id + MANIFEST_SUFFIX)
    good = path.read_bytes()
    for pos in range(0, len(good), max(1, len(good) // 400)):
        with pytest.raises(SnapshotCorruptError) as e:
            Manifest.from_json(some_bytes_flipped(good, pos), file=str(path))
        assert e.value.file == str(path)
    assert Manifest.from_json(good) == m


def test_missing_file_names_it(tmp_path):
    w = built_world("wards_impedances_gens")
    m = write_snapshot(w, tmp_path)
    for path in snapshot_paths(tmp_path, m):
        good = path.read_bytes()
        path.unlink()
        with pytest.raises(SnapshotCorruptError) as e:
            read_snapshot(tmp_path, m.snapshot_id)
        assert e.value.file == str(path)
        assert any(str(path) in p for p in verify_snapshot(tmp_path, m.snapshot_id))
        path.write_bytes(good)
    assert_same(w, read_snapshot(tmp_path, m.snapshot_id)[0])


def _rewrite_manifest(path, edit):
    from gridtape.replay.manifest import _canonical

    body = json.loads(path.read_text())
    body.pop("manifest_sha256")
    edit(body)
    body["manifest_sha256"] = hashlib.sha256(_canonical(body).encode()).hexdigest()
    path.write_text(_canonical(body))


def test_manifest_with_missing_keys_or_wrong_types_is_corrupt(tmp_path):
    m = write_snapshot(case_world("IEEE14/data.zip"), tmp_path)
    path = tmp_path / (m.snapshot_id + MANIFEST_SUFFIX)
    good = path.read_bytes()
    edits = [lambda b: b.pop("files"), lambda b: b.pop("snapshot_id"), lambda b: b["files"][0].pop("sha256"),
             lambda b: b.update(seq="seven"), lambda b: b["files"][0].update(name="../bus.parquet"),
             lambda b: b.update(network=None), lambda b: b["files"][2].update(next_id="x"),
             lambda b: b.update(snapshot_id="another")]
    for edit in edits:
        _rewrite_manifest(path, edit)
        with pytest.raises(SnapshotCorruptError) as e:
            read_snapshot(tmp_path, m.snapshot_id)
        assert e.value.file == str(path)
        path.write_bytes(good)
    path.write_text("{not json")
    with pytest.raises(SnapshotCorruptError):
        read_snapshot(path)
    path.write_bytes(good)
    _rewrite_manifest(path, lambda b: b.update(format_version=99))
    with pytest.raises(CaseError, match="newer"):
        read_snapshot(path)


def test_zip_member_corruption_names_the_member():
    w = built_world("out_of_service_and_island")
    data = case_zip_bytes(w)
    z = zipfile.ZipFile(io.BytesIO(data))
    for info in z.infolist():
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        for pos in (start, start + info.compress_size // 2, start + info.compress_size - 1):
            with pytest.raises(SnapshotCorruptError) as e:
                world_from_zip_bytes(some_bytes_flipped(data, pos))
            assert e.value.file == info.filename
    # a member dropped
    for drop in z.namelist():
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as out:
            for name in z.namelist():
                if name != drop:
                    out.writestr(name, z.read(name))
        with pytest.raises(SnapshotCorruptError) as e:
            world_from_zip_bytes(buf.getvalue())
        assert e.value.file == drop
    with pytest.raises(SnapshotCorruptError):
        world_from_zip_bytes(b"PK\x03\x04 not a zip")
    assert_same(w, world_from_zip_bytes(data))


# --- a snapshot written under another schema ------------------------------------------------------
def test_snapshot_from_another_schema_loads_by_column_name(tmp_path):
    w = case_world("IEEE14/data.zip")
    m = write_snapshot(w, tmp_path)
    f = m.file("bus")
    path = tmp_path / m.snapshot_id / f.name
    tb = pq.read_table(path).drop_columns(["zone"])
    tb = tb.append_column("legacy_flag", pa.array([True] * tb.num_rows))
    pq.write_table(tb, path)
    data = path.read_bytes()
    f.bytes, f.sha256 = len(data), hashlib.sha256(data).hexdigest()
    f.columns, f.data_hash = codec.columns_of(tb), codec.data_hash(tb)
    m.schema_fingerprint = "an-older-schema"
    (tmp_path / (m.snapshot_id + MANIFEST_SUFFIX)).write_text(m.to_json())
    w2, _ = read_snapshot(tmp_path, m.snapshot_id)
    assert list(w2["bus"].cols["zone"]) == [None] * len(w2["bus"])
    assert w2["bus"].extra["legacy_flag"].tolist() == [True] * len(w2["bus"])
    np.testing.assert_array_equal(w2["bus"].cols["vn_kv"], w["bus"].cols["vn_kv"])
    assert w2["line"].equals(w["line"])


# --- the directory: listing, strays, clean, ids ----------------------------------------------------
def test_list_orders_by_seq_and_latest_is_default(tmp_path):
    w = case_world("IEEE14/data.zip")
    ms = {}
    for seq in (3, 1, None, 2):
        w.set_value("load", int(w["load"].ids[0]), "p_mw", float(seq or 0) + 0.5)
        ms[seq] = (write_snapshot(w, tmp_path, seq=seq), w.copy())
    assert [m.seq for m in list_snapshots(tmp_path)] == [1, 2, 3, None]
    assert snapshot_at(tmp_path, 0) is None
    assert snapshot_at(tmp_path, 2).snapshot_id == ms[2][0].snapshot_id
    assert snapshot_at(tmp_path, 10 ** 9).snapshot_id == ms[3][0].snapshot_id
    latest, m = read_snapshot(tmp_path)
    assert m.seq is None and codec.same_world(latest, ms[None][1])
    got, _ = read_snapshot(tmp_path, ms[1][0])
    assert codec.same_world(got, ms[1][1])
    with pytest.raises(CaseError):
        read_snapshot(tmp_path / "empty")
    with pytest.raises(CaseError, match="no snapshot"):
        read_snapshot(tmp_path, "no-such-id")


def test_stray_files_are_ignored_and_cleaned(tmp_path):
    w = case_world("IEEE14/data.zip")
    good = write_snapshot(w, tmp_path, seq=1)
    broken = write_snapshot(w, tmp_path, seq=2)
    half = write_snapshot(w, tmp_path, seq=3)
    # a crash before the manifest: data files (one still temporary) but no manifest
    (tmp_path / (half.snapshot_id + MANIFEST_SUFFIX)).unlink()
    (tmp_path / half.snapshot_id / "line.parquet").rename(tmp_path / half.snapshot_id / "line.parquet.tmp-0badc0de")
    (tmp_path / ("x" + MANIFEST_SUFFIX + ".tmp-12345678")).write_text("{")
    (tmp_path / good.snapshot_id / "bus.parquet.tmp-00000000").write_bytes(b"junk")
    # a damaged manifest: skipped by list, reported by verify, kept by clean
    p = tmp_path / (broken.snapshot_id + MANIFEST_SUFFIX)
    p.write_bytes(some_bytes_flipped(p.read_bytes(), 40))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("user data")
    (tmp_path / "empty.manifest.json").write_text("")
    assert [m.snapshot_id for m in list_snapshots(tmp_path)] == [good.snapshot_id]
    problems = verify_snapshot(tmp_path)
    assert any(broken.snapshot_id in p for p in problems) and any("empty.manifest.json" in p for p in problems)
    removed = clean(tmp_path)
    assert sorted(os.path.basename(r) for r in removed) == sorted(
        [half.snapshot_id, "x" + MANIFEST_SUFFIX + ".tmp-12345678", "bus.parquet.tmp-00000000"])
    assert not (tmp_path / half.snapshot_id).exists()
    assert (tmp_path / broken.snapshot_id).is_dir() and (tmp_path / "notes" / "readme.txt").exists()
    assert clean(tmp_path) == []
    assert_same(w, read_snapshot(tmp_path, good.snapshot_id)[0])
    # recent strays survive a clean with a grace period
    (tmp_path / "y.manifest.json.tmp-00000001").write_text("{")
    assert clean(tmp_path, older_than_s=3600) == []


def test_snapshot_ids_are_checked_and_never_overwritten(tmp_path):
    w = case_world("IEEE14/data.zip")
    m = write_snapshot(w, tmp_path, snapshot_id="base")
    assert m.snapshot_id == "base"
    w2 = w.copy()
    w2.set_value("load", int(w2["load"].ids[0]), "p_mw", 123.0)
    with pytest.raises(GridtapeError, match="already exists"):
        write_snapshot(w2, tmp_path, snapshot_id="base")
    assert_same(w, read_snapshot(tmp_path, "base")[0])
    for bad in ("../up", "a/b", "", ".hidden", "x.tmp-1"):
        with pytest.raises(SchemaError):
            write_snapshot(w, tmp_path, snapshot_id=bad)


def test_pyarrow_filesystem_and_uri(tmp_path):
    from pyarrow import fs as pafs

    w = built_world("phase_shifters_and_slack_gen")
    local = pafs.LocalFileSystem()
    m = write_snapshot(w, str(tmp_path / "viafs"), filesystem=local, seq=4)
    w2, m2 = read_snapshot(str(tmp_path / "viafs"), m.snapshot_id, filesystem=local)
    assert_same(w, w2) and m2 == m
    sub = pafs.SubTreeFileSystem(str(tmp_path), local)
    w3, _ = read_snapshot("viafs", m.snapshot_id, filesystem=sub)
    assert_same(w, w3)
    uri = (tmp_path / "viauri").as_uri()
    m = write_snapshot(w, uri)
    assert [x.snapshot_id for x in list_snapshots(uri)] == [m.snapshot_id]
    assert_same(w, read_snapshot(uri)[0])
    (tmp_path / "viauri" / "z.manifest.json.tmp-00000002").write_text("{")
    assert len(clean(uri)) == 1 and verify_snapshot(uri) == []
    path = tmp_path / "viauri" / m.snapshot_id / "bus.parquet"
    path.write_bytes(some_bytes_flipped(path.read_bytes(), 10))
    with pytest.raises(SnapshotCorruptError) as e:
        read_snapshot(uri, m.snapshot_id)
    assert e.value.file.endswith(f"{m.snapshot_id}/bus.parquet")


# --- crash safety ------------------------------------------------------------------------------------
_WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[3])
    import conftest  # makes gridtape importable exactly as in the tests
    from gridtape.replay.archive import world_from_zip_bytes
    from gridtape.replay.snapshot import write_snapshot
    w = world_from_zip_bytes(open(sys.argv[1], "rb").read())
    print("ready", flush=True)
    seq = int(sys.argv[4])
    while True:
        write_snapshot(w, sys.argv[2], seq=seq)
        seq += 1
""")


def test_sigkilled_writers_leave_only_complete_snapshots(tmp_path):
    w = case_world("PEGASE9241/data.zip")
    case = tmp_path / "case.zip"
    case.write_bytes(case_zip_bytes(w))
    snaps = tmp_path / "snaps"
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(gridtape.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent, str(TESTS)] + env.get("PYTHONPATH", "").split(os.pathsep))
    rng = random.Random(11)
    seq = 0
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(case), str(snaps), str(TESTS), str(seq)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(tmp_path))
        try:
            line = proc.stdout.readline()
            assert line.strip() == b"ready", proc.stderr.read().decode()[-2000:]
            time.sleep(rng.uniform(0.02, 0.4))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        found = list_snapshots(snaps)
        seq = (found[-1].seq + 1) if found else seq
        assert verify_snapshot(snaps) == []
    found = list_snapshots(snaps)
    assert found, "no writer got a snapshot out in time"
    assert [m.seq for m in found] == sorted({m.seq for m in found})
    for m in (found[0], found[-1]):
        got, _ = read_snapshot(snaps, m.snapshot_id)
        assert_same(w, got)
    clean(snaps)
    names = sorted(os.listdir(snaps))
    assert names == sorted([m.snapshot_id for m in found] + [m.snapshot_id + MANIFEST_SUFFIX for m in found])


# --- result archives -------------------------------------------------------------------------------------
def test_results_zip_round_trips_and_detects_corruption():
    rng = np.random.default_rng(3)
    idx = pd.Index(np.array([0, 3, 4, 9, 12], dtype=np.int64))
    tables = {
        "bus": pd.DataFrame({"vm_pu": rng.random(5), "va_degree": [0.0, -1.5, np.nan, 2.0, -0.0],
                             "p_mw": rng.random(5), "q_mvar": rng.random(5)}, index=idx),
        "line": pd.DataFrame({"p_from_mw": rng.random(3), "loading_percent": [np.nan, 1.0, np.inf]},
                             index=pd.Index(np.array([7, 2, 5], dtype=np.int64))),
        "ext_grid": pd.DataFrame({"p_mw": [], "q_mvar": []}, index=pd.Index([], dtype=np.int64)),
    }
    meta = {"converged": True, "iterations": 4, "case": "x", "nested": {"a": [1, 2]}}
    data = results_zip_bytes(tables, meta)
    got, m = results_from_zip_bytes(data, with_manifest=True)
    assert list(got) == list(tables) and m.meta == meta
    for k, df in tables.items():
        pd.testing.assert_frame_equal(got[k], df, check_exact=True)
        assert np.array_equal(codec.float_bits(got[k].to_numpy(dtype=float).ravel()),
                              codec.float_bits(df.to_numpy(dtype=float).ravel()))
    z = zipfile.ZipFile(io.BytesIO(data))
    for info in z.infolist():
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        with pytest.raises(SnapshotCorruptError) as e:
            results_from_zip_bytes(some_bytes_flipped(data, start + info.compress_size // 2))
        assert e.value.file == info.filename
    with pytest.raises(SnapshotCorruptError):
        results_from_zip_bytes(case_zip_bytes(case_world("IEEE14/data.zip")))
    with pytest.raises(SchemaError):
        results_zip_bytes(tables, {"bad": object()})
    with pytest.raises(SchemaError):
        results_zip_bytes({"../bus": tables["bus"]}, {})
