"""Time-machine benchmark on case9241pegase with journals of 1,000,000 events.

    python benchmarks/bench_replay.py                     # both workloads, 1M events each (~5-10 min)
    python benchmarks/bench_replay.py --events 200000 --workload bulk
    python benchmarks/bench_replay.py --checkpoint 50000  # PowerGrid's checkpoint_every (default: its default)

Each study is built **only through the public API**, with the automatic checkpoints of
``PowerGrid(CASE, journal=path)`` (``checkpoint_every`` at its default unless given): no snapshot
is taken by hand while building.  Two workloads:

- ``bulk``: column writes without solves, ``grid.set("load", ids, field, values)`` of every load
  (one ~4.5k-event transaction each), never a solve;
- ``solve``: a write and a solve per step (``grid.set`` of every load, then ``grid.solve()``).

The loads are raised a little at each step, and in the last tenth until the AC power flow
diverges (so bisect has something to find).  Timed, per workload, in one run:

- ``study.at(seq)`` at random seqs (max and median: the target is max <= 0.3 s), with the replay
  tail (events between the snapshot used and the seq) and where the time goes (snapshot read,
  fetching the tail from DuckDB as Arrow columns, applying it as vectorized changes -- replay/tail.py,
  what ``study.at`` does -- and building the grid);
- snapshot write (``grid.snapshot()``) and read (``read_snapshot``, hashes checked);
- diff of two distant points (``gridtape.diff``);
- bisect of the first non-converging point (``study.bisect()``);
- the floor: DuckDB alone computing the latest value of every written cell at a seq
  (``arg_max(new_f, seq)`` per cell, the SQL a DuckDB user would write).

Targets: at() max <= 0.3 s, snapshot write <= 0.15 s, read <= 0.1 s, bisect <= 3 s.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
CASE = os.path.join(os.path.dirname(HERE), "cases", "PEGASE9241", "data.zip")
WORKLOADS = ("bulk", "solve")
REPLAY_COLUMNS = ["seq", "event", "kind", "eid", "field", "new", "info"]  # what a replay reads


def du(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def build(path, events, workload, checkpoint):
    """The study, written through the public API only; returns (grid, seconds, solves)."""
    import gridtape as gt

    kw = {} if checkpoint is None else {"checkpoint_every": checkpoint}
    t0 = time.perf_counter()
    grid = gt.PowerGrid(CASE, journal=path, author="bench", **kw)
    ids = grid.world["load"].ids
    p0 = grid.world["load"].cols["p_mw"].copy()
    q0 = grid.world["load"].cols["q_mvar"].copy()
    n_tx = max(4, events // (len(ids) + (2 if workload == "solve" else 1)))
    ramp_from = int(n_tx * 0.9)
    solves = 0
    for k in range(n_tx):
        f = 1.0 + 1e-4 * k if k < ramp_from else 1.0 + 1e-4 * k + 0.08 * (k - ramp_from + 1)
        field, base = ("p_mw", p0) if k % 2 == 0 else ("q_mvar", q0)
        grid.set("load", ids, field, base * f)
        if workload == "solve":
            grid.solve()
            solves += 1
    grid.flush()
    return grid, time.perf_counter() - t0, solves


def floor_sql(con, seq):
    """DuckDB alone: the latest value of every cell written at or before ``seq``."""
    return con.execute(
        "SELECT kind, eid, field, arg_max(new_f, seq) AS v FROM events "
        "WHERE event = 'set' AND seq <= ? GROUP BY kind, eid, field", [seq]).fetchall()


def checkpoints(study):
    """``[(event seq, covers)]`` of the study's snapshot events."""
    log = study.log(event="snapshot")
    return [(int(s), int(json.loads(i)["covers"])) for s, i in zip(log["seq"], log["info"])]


def breakdown(study, seq, ckpts):
    """Where materializing ``seq`` goes, step by step with public functions: snapshot read, tail
    fetch from the journal, tail application, the read-only grid.  Returns a dict of seconds and
    the tail length (events after the snapshot)."""
    from gridtape.grid import PowerGrid
    from gridtape.replay import read_snapshot
    from gridtape.replay.events import WORLD_EVENTS, apply_events
    from gridtape.replay.tail import apply_tail, fetch_tail

    j = study.journal
    usable = [(s, c) for s, c in ckpts if s <= seq]
    out = {}
    t0 = time.perf_counter()
    if usable:
        info = json.loads(study.log(since=usable[-1][0], until=usable[-1][0])["info"].iloc[0])
        world, _ = read_snapshot(os.path.join(os.path.dirname(study.path), info["dir"]), info["id"])
        base = usable[-1][1]
    else:
        load = int(study.log(event="load", until=seq)["seq"].iloc[-1])
        world = apply_events(None, j.log(since=load, until=load), j.get_blob)
        base = load
    out["snapshot read"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tail = fetch_tail(j, base + 1, seq)  # what materialize does: Arrow columns of the world events
    out["tail fetch"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    j.log(since=base + 1, until=seq, event=list(WORLD_EVENTS), columns=REPLAY_COLUMNS)
    out["(the same tail as a log() DataFrame)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    world = apply_tail(world, tail, j.get_blob)
    out["tail apply"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    PowerGrid(world=world, journal=False, read_only=True)
    out["grid"] = time.perf_counter() - t0
    return out, seq - base


def run(workload, tmp, args):
    import duckdb

    import gridtape as gt
    from gridtape.replay import read_snapshot

    path = os.path.join(tmp, f"{workload}.duckdb")
    grid, t_build, solves = build(path, args.events, workload, args.checkpoint)
    n_auto = len(grid.log(event="snapshot"))
    checkpoint = grid.checkpoint_every
    built = grid.journal.last_seq  # the study; the snapshots below come after it
    wt, rt = [], []
    for _ in range(3):  # snapshot write / read (case9241)
        t0 = time.perf_counter()
        m = grid.snapshot(message="bench")
        wt.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        read_snapshot(grid.snapshots, m.snapshot_id)
        rt.append(time.perf_counter() - t0)
    snap_bytes = sum(f.bytes for f in m.files)
    grid.close()
    rng = np.random.default_rng(1)
    with gt.open(path) as study:
        head = built
        n_events = head + 1
        ckpts = checkpoints(study)[:n_auto]  # the automatic ones (the bench's own come after ``built``)
        seqs = rng.integers(1, head, size=args.repeats)
        mt, tails, parts = [], [], []
        for s in seqs:
            t0 = time.perf_counter()
            study.at(int(s))
            mt.append(time.perf_counter() - t0)
        for s in seqs[: args.breakdown]:
            b, tail = breakdown(study, int(s), ckpts)
            parts.append(b)
            tails.append(tail)
        all_tails = [int(s) - max([c for e, c in ckpts if e <= s] or [0]) for s in seqs]
        a, b = study.at(int(head * 0.1)), study.at(int(head * 0.8))
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
    gaps = np.diff([0] + [c for _, c in ckpts]) if ckpts else np.array([n_events])
    print(f"\n## Workload `{workload}` on case9241pegase: {n_events:,} events "
          f"({solves} solves), checkpoint_every {checkpoint:,}\n")
    print(f"- building the study: {t_build:.1f} s; automatic checkpoints written: {n_auto} "
          f"(largest gap between covered seqs: {int(gaps.max()):,} events)")
    print(f"- replay tail at the sampled seqs: max {max(all_tails):,}, median {int(np.median(all_tails)):,} events")
    print(f"- journal on disk: {du(path) / 1e6:.1f} MB; snapshots: {du(path + '.snapshots') / 1e6:.1f} MB "
          f"({snap_bytes / 1e6:.2f} MB per snapshot)\n")
    print("| operation | min s | median s | max s | target s | floor (DuckDB SQL) median s |")
    print("|---|---|---|---|---|---|")
    print(f"| `study.at(seq)`, {len(mt)} random seqs | {min(mt):.3f} | {np.median(mt):.3f} | {max(mt):.3f} | "
          f"0.3 (max) | {np.median(ft):.3f} |")
    print(f"| snapshot write | {min(wt):.3f} | {np.median(wt):.3f} | {max(wt):.3f} | 0.15 | |")
    print(f"| snapshot read (verified) | {min(rt):.3f} | {np.median(rt):.3f} | {max(rt):.3f} | 0.1 | |")
    print(f"| diff of two distant points ({len(d):,} rows) | {t_diff:.3f} | | | | |")
    print(f"| bisect over {npoints} points ({res.materializations if res else 0} materializations) | "
          f"{t_bisect:.3f} | | | 3 | |")
    print(f"\nat() / DuckDB floor (median): {np.median(mt) / np.median(ft):.2f}")
    if parts:
        print(f"\nwhere at() goes (median of {len(parts)} seqs, tails {min(tails):,}-{max(tails):,} events): "
              + ", ".join(f"{k} {np.median([p[k] for p in parts]) * 1e3:.0f} ms" for k in parts[0]))
    if res is not None:
        print(f"bisect: first non-converging point seq {res.seq} (tx {res.tx})")
    return {"at_max": max(mt), "at_median": float(np.median(mt))}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--workload", choices=WORKLOADS + ("both",), default="both")
    ap.add_argument("--checkpoint", type=int, default=None,
                    help="checkpoint_every of the PowerGrid (default: PowerGrid's default)")
    ap.add_argument("--repeats", type=int, default=12, help="random seqs timed with study.at()")
    ap.add_argument("--breakdown", type=int, default=4, help="of which this many are broken down")
    args = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="gt-bench-replay-")
    try:
        for w in WORKLOADS if args.workload == "both" else (args.workload,):
            run(w, tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
