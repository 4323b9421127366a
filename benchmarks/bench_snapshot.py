"""Snapshot, ZIP and diff benchmark on case9241pegase, against the peers measured in the same run.

    pip install .[bench]
    python benchmarks/bench_snapshot.py                  # full run (~1 min on 2 cores)
    python benchmarks/bench_snapshot.py --quick          # CI smoke: few repeats
    python benchmarks/bench_snapshot.py --json out.json  # also dump every number

Timed (min and median over repeats, operations interleaved in rounds so machine noise hits all
alike):

- gridtape ``write_snapshot`` (encode, hash, Parquet+zstd, fsync, manifest) to a local directory,
  ``read_snapshot`` with verification (sha256 + data hash of every file) and without,
  ``case_zip_bytes`` / ``world_from_zip_bytes`` (in memory);
- ``diff_worlds`` of two worlds differing in ~1000 cells (and ``apply_diff`` of that diff);
- peers: plain ``pyarrow.parquet.write_table`` / ``read_table`` of the very same Arrow tables
  (same compression; no hashing, no fsync, no world to build: the floor of any Parquet store),
  and pandapower's ``to_json`` / ``from_json`` of the same network (via ``to_pandapower``).

Sizes on disk are printed for zstd and uncompressed snapshots, the ZIP and pandapower's JSON.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parent.parent
CASE = ROOT / "cases" / "PEGASE9241" / "data.zip"


sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_solve import _rounds, _stats, _timed  # noqa: E402  (shared timing helpers)


def _edited(w, n_cells=1000, seed=0):
    """A copy of ``w`` with ~n_cells changed cells spread over several kinds and dtypes."""
    b = w.copy()
    rng = np.random.default_rng(seed)
    plan = [("load", "p_mw", 300), ("gen", "vm_pu", 200), ("line", "r_ohm_per_km", 200),
            ("bus", "name", 100), ("line", "in_service", 100), ("shunt", "q_mvar", 100)]
    for kind, col, n in plan:
        t = b[kind]
        ids = rng.choice(t.ids, min(n, len(t)), replace=False)
        old = t.cols[col][t.rows(ids)]
        if col == "name":
            new = [f"renamed{i}" for i in range(len(ids))]
        elif old.dtype == bool:
            new = ~old
        else:
            new = old * 1.01 + 0.001
        b.set_values(kind, ids, col, new)
    return b


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few repeats (CI smoke)")
    ap.add_argument("--json", help="write every number to this file")
    args = ap.parse_args(argv)
    reps, rounds, pp_reps = (6, 3, 1) if args.quick else (40, 10, 5)

    import pyarrow as pa
    import pyarrow.parquet as pq

    import gridtape
    from gridtape.replay import (apply_diff, case_zip_bytes, diff_worlds, read_snapshot, same_world,
                                 world_from_zip_bytes, write_snapshot)
    from gridtape.replay import codec
    from gridtape.replay.snapshot import COMPRESSION
    from gridtape.world.io import load_case

    w = load_case(str(CASE))
    counts = w.counts()
    print(f"gridtape {gridtape.__version__}, pyarrow {pa.__version__}, python {sys.version.split()[0]}")
    print(f"case9241pegase: {sum(counts.values())} elements {counts}")
    tmp = Path(tempfile.mkdtemp(prefix="bench_snapshot_"))
    results = {"counts": counts, "times": {}, "sizes": {}}
    try:
        snaps = tmp / "snaps"
        m = write_snapshot(w, snaps)
        got, _ = read_snapshot(snaps, m.snapshot_id)
        assert same_world(w, got), "snapshot round trip is not exact"
        zbytes = case_zip_bytes(w)
        assert same_world(w, world_from_zip_bytes(zbytes))
        b = _edited(w)
        d = diff_worlds(w, b)
        assert same_world(apply_diff(w, d), b)
        print(f"diff: {len(d)} rows between the base and the edited world")

        # peer floor: pyarrow on the same Arrow tables
        tables = {k: codec.table_to_arrow(t)[0] for k, t in w.tables.items()}
        plain = tmp / "plain"
        plain.mkdir()

        def pa_write():
            for k, tb in tables.items():
                pq.write_table(tb, plain / f"{k}.parquet", compression=COMPRESSION)

        def pa_read():
            for k in tables:
                pq.read_table(plain / f"{k}.parquet")

        pa_write()
        sid = m.snapshot_id
        m_none = write_snapshot(w, tmp / "none", compression="none")
        fns = {
            "write_snapshot": lambda: write_snapshot(w, snaps),
            "read_snapshot(verify)": lambda: read_snapshot(snaps, sid),
            "read_snapshot(no verify)": lambda: read_snapshot(snaps, sid, verify=False),
            "write_snapshot(uncompressed)": lambda: write_snapshot(w, tmp / "none", compression="none"),
            "read_snapshot(uncompressed)": lambda: read_snapshot(tmp / "none", m_none.snapshot_id),
            "case_zip_bytes": lambda: case_zip_bytes(w),
            "world_from_zip_bytes": lambda: world_from_zip_bytes(zbytes),
            "diff_worlds(~1000 cells)": lambda: diff_worlds(w, b),
            "apply_diff(~1000 cells)": lambda: apply_diff(w, d),
            "pyarrow write_table": pa_write,
            "pyarrow read_table": pa_read,
        }
        times = _rounds(fns, reps, rounds)

        # peer: pandapower JSON (slow: few repeats)
        pp_times = {}
        try:
            import pandapower as pp

            from gridtape.world.io_pandapower import to_pandapower

            net = to_pandapower(w)
            ppfile = tmp / "net.json"
            pp_times["pandapower to_json"] = _timed(lambda: pp.to_json(net, str(ppfile)), pp_reps)
            pp_times["pandapower from_json"] = _timed(lambda: pp.from_json(str(ppfile)), pp_reps)
            results["sizes"]["pandapower_json"] = ppfile.stat().st_size
        except ImportError:
            print("pandapower not installed: its peer figures are skipped")
        times.update(pp_times)

        results["sizes"].update({
            "snapshot_zstd": m.total_bytes, "snapshot_none": m_none.total_bytes, "case_zip": len(zbytes),
            "manifest": (snaps / (sid + ".manifest.json")).stat().st_size,
            "pyarrow_plain_zstd": sum(f.stat().st_size for f in plain.iterdir()),
        })
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    stats = {k: _stats(v) for k, v in times.items()}
    results["times"] = stats
    peer = {"write_snapshot": "pyarrow write_table", "read_snapshot(verify)": "pyarrow read_table",
            "read_snapshot(no verify)": "pyarrow read_table", "case_zip_bytes": "pyarrow write_table",
            "world_from_zip_bytes": "pyarrow read_table"}
    pp_peer = {"write_snapshot": "pandapower to_json", "read_snapshot(verify)": "pandapower from_json",
               "case_zip_bytes": "pandapower to_json", "world_from_zip_bytes": "pandapower from_json"}
    print(f"\n{'operation':30s} {'min ms':>9s} {'median ms':>10s}   ratios (min/min)")
    for k, s in stats.items():
        ratio = ""
        if k in peer and peer[k] in stats:
            ratio += f"x{s['min_ms'] / stats[peer[k]]['min_ms']:.2f} vs {peer[k]}"
        if k in pp_peer and pp_peer[k] in stats:
            ratio += f"; pandapower is x{stats[pp_peer[k]]['min_ms'] / s['min_ms']:.0f} slower"
        print(f"{k:30s} {s['min_ms']:9.2f} {s['median_ms']:10.2f}   {ratio}")
    print("\nsizes (bytes):")
    for k, v in results["sizes"].items():
        print(f"  {k:22s} {v:>11,d}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
