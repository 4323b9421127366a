"""Time-machine benchmark on case9241pegase with a journal of 1,000,000 events.

    python benchmarks/bench_replay.py                # 1M events (~2-3 min)
    python benchmarks/bench_replay.py --events 200000 --checkpoint 50000

The study: vectorized load writes (one transaction each, ~4.5k events) that raise every load a
little, with automatic checkpoints every ``--checkpoint`` events; in the last tenth the loads are
raised until the AC power flow diverges.  Timed, in one run:

- materialize (``study.at(seq)``) at random seqs: nearest snapshot + tail of events;
- snapshot write (``grid.snapshot()``) and read (``read_snapshot``, hashes checked);
- diff of two distant points (``gridtape.diff``);
- bisect of the first non-converging point (``study.bisect()``);
- the floor: DuckDB alone computing the latest value of every written cell at a seq
  (``arg_max(new, seq)`` per cell, the SQL a DuckDB user would write).

Targets: materialize <= 0.3 s, snapshot write <= 0.15 s, read <= 0.1 s, bisect <= 3 s.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
CASE = os.path.join(os.path.dirname(HERE), "cases", "PEGASE9241", "data.zip")


def du(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def build(path, events, checkpoint):
    import gridtape as gt

    t0 = time.perf_counter()
    grid = gt.PowerGrid(CASE, journal=path, author="bench", checkpoint_every=checkpoint)
    ids = grid.world["load"].ids
    p0 = grid.world["load"].cols["p_mw"].copy()
    q0 = grid.world["load"].cols["q_mvar"].copy()
    n_tx = max(4, events // len(ids))
    ramp_from = int(n_tx * 0.9)
    for k in range(n_tx):
        f = 1.0 + 1e-4 * k if k < ramp_from else 1.0 + 1e-4 * k + 0.08 * (k - ramp_from + 1)
        field, base = ("p_mw", p0) if k % 2 == 0 else ("q_mvar", q0)
        grid.set("load", ids, field, base * f)
        grid.flush()
        if grid.journal.next_seq - grid._ckpt_seq >= checkpoint:
            grid.snapshot(message="checkpoint")
    grid.flush()
    t_build = time.perf_counter() - t0
    return grid, t_build


def floor_sql(con, seq):
    """DuckDB alone: the latest value of every cell written at or before ``seq``."""
    return con.execute(
        "SELECT kind, eid, field, arg_max(new_f, seq) AS v FROM events "
        "WHERE event = 'set' AND seq <= ? GROUP BY kind, eid, field", [seq]).fetchall()


def main(argv=None):
    import duckdb

    import gridtape as gt
    from gridtape.replay import read_snapshot

    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--checkpoint", type=int, default=None, help="events between automatic snapshots")
    ap.add_argument("--repeats", type=int, default=8)
    args = ap.parse_args(argv)
    from gridtape.grid import PowerGrid

    checkpoint = args.checkpoint or PowerGrid.__init__.__kwdefaults__["checkpoint_every"]
    tmp = tempfile.mkdtemp(prefix="gt-bench-replay-")
    try:
        path = os.path.join(tmp, "study.duckdb")
        grid, t_build = build(path, args.events, checkpoint)
        # snapshot write / read (case9241), min over repeats
        wt, rt = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            m = grid.snapshot(message="bench")
            wt.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            read_snapshot(grid.snapshots, m.snapshot_id)
            rt.append(time.perf_counter() - t0)
        snap_bytes = sum(f.bytes for f in m.files)
        n_events = grid.journal.count()
        grid.close()
        rng = np.random.default_rng(1)
        with gt.open(path) as study:
            head = study.head
            seqs = rng.integers(1, head, size=args.repeats)
            mt = []
            for s in seqs:
                t0 = time.perf_counter()
                study.world_at(int(s))
                mt.append(time.perf_counter() - t0)
            a, b = study.world_at(int(head * 0.1)), study.world_at(int(head * 0.8))
            t0 = time.perf_counter()
            d = gt.diff(a, b)
            t_diff = time.perf_counter() - t0
            t0 = time.perf_counter()
            res = study.bisect()
            t_bisect = time.perf_counter() - t0
            npoints = len(study.points())
        con = duckdb.connect(path, read_only=True)
        ft = []
        for s in seqs:
            t0 = time.perf_counter()
            floor_sql(con, int(s))
            ft.append(time.perf_counter() - t0)
        con.close()
        print(f"## Time machine on case9241pegase: {n_events:,} events, checkpoint every {checkpoint:,} events\n")
        print(f"- building the study (writes + flushes + checkpoints): {t_build:.1f} s")
        print(f"- journal on disk: {du(path) / 1e6:.1f} MB; snapshots: {du(path + '.snapshots') / 1e6:.1f} MB "
              f"({snap_bytes / 1e6:.2f} MB per snapshot)\n")
        print("| operation | min s | median s | max s | target s | floor (DuckDB SQL) median s |")
        print("|---|---|---|---|---|---|")
        print(f"| materialize at a random seq | {min(mt):.3f} | {np.median(mt):.3f} | {max(mt):.3f} | 0.3 | "
              f"{np.median(ft):.3f} |")
        print(f"| snapshot write | {min(wt):.3f} | {np.median(wt):.3f} | {max(wt):.3f} | 0.15 | |")
        print(f"| snapshot read (verified) | {min(rt):.3f} | {np.median(rt):.3f} | {max(rt):.3f} | 0.1 | |")
        print(f"| diff of two distant points ({len(d):,} rows) | {t_diff:.3f} | | | | |")
        print(f"| bisect over {npoints} points ({res.materializations if res else 0} materializations) | "
              f"{t_bisect:.3f} | | | 3 | |")
        print(f"\nmaterialize / DuckDB floor (median): {np.median(mt) / np.median(ft):.2f}")
        if res is not None:
            print(f"bisect: first non-converging point seq {res.seq} (tx {res.tx}): {res.message}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
