"""Journal benchmark: what recording every change costs.

    pip install .[bench]
    python benchmarks/bench_journal.py            # full run (~1 min)
    python benchmarks/bench_journal.py --quick    # smoke run

In one run, on this machine:

1. **handle write** ``load.p_mw = x``: journal off (``journal=False``), in-memory journal, file
   journal (buffered); beside pandapower's ``net.load.at[i, "p_mw"] = x`` (the write a pandapower
   user makes).  Target: <= 2 us with the journal on.
2. **flush** of 100k buffered events (a 100k-element vectorized write, and 100k single handle
   writes) to a file journal: events/s.  Target: >= 500k events/s.  Also the later ingest of the
   segment into DuckDB and ``verify()``.
3. **a grid2op step's transaction**: ``begin`` + three ``record_many`` of 50 float values +
   ``commit`` (which flushes one frame) on a file journal, as the grid2op backend journals
   every ``apply_action``: us per ``commit`` and per whole transaction.
4. **Scenario B loop** (one load write + solve, warm start) on case118 and case2869pegase with a file
   journal, beside lightsim2grid's ``change_p_load`` + ``ac_pf`` from the previous voltages and
   pandapower's ``runpp(init="results")``.  Target: gridtape/lightsim2grid <= 1.0.  Variants: file
   journal, in-memory journal, journal off, and a file journal with ``reuse_lu=False`` (every
   iteration a fresh Jacobian factorization, as lightsim2grid; the default starts a warm
   incremental solve from the previous LU factors).  Median and mean of per-loop times (the mean
   includes the journal's moves into DuckDB, which run in a background thread).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_solve import HAVE_NUMBA, MAX_IT, TOL, _load_net, _make_ls, _rounds  # noqa: E402


def per_call(fn, n, repeat=7, clock=time.perf_counter):
    best = float("inf")
    for _ in range(repeat):
        t0 = clock()
        fn(n)
        best = min(best, (clock() - t0) / n)
    return best


def bench_writes(tmp, quick):
    import pandapower.networks as pn

    from gridtape import PowerGrid
    from gridtape.world.io_pandapower import from_pandapower

    net = pn.case118()
    world = from_pandapower(net)
    n = 20_000 if quick else 200_000
    out = {}
    for label, kw in (("journal off", dict(journal=False)), ("in-memory journal", {}),
                      ("file journal", dict(journal=os.path.join(tmp, "w.duckdb")))):
        g = PowerGrid(world=world.copy(), **kw)
        load = g.element("load", int(world["load"].ids[3]))

        def loop(k, load=load):
            for i in range(k):
                load.p_mw = 10.0 + (i & 7)

        out[label] = per_call(loop, n, 3 if quick else 5)
        g.close()
    lid = int(net.load.index[3])

    def pp_loop(k):
        at = net.load.at
        for i in range(k):
            at[lid, "p_mw"] = 10.0 + (i & 7)

    out["pandapower net.load.at"] = per_call(pp_loop, max(2000, n // 20), 3)
    return out


def bench_flush(tmp, quick):
    import pandapower.networks as pn

    from gridtape import PowerGrid
    from gridtape.world.io_pandapower import from_pandapower

    n = 100_000
    world = from_pandapower(pn.case9241pegase())
    from gridtape.journal import Journal

    path = os.path.join(tmp, "f.duckdb")
    # no ingest during the flushes: flush and ingest are timed apart
    g = PowerGrid(world=world, journal=Journal(path, author="bench", ingest_every=10**9))
    j = g.journal
    ids = world["load"].ids
    reps = max(1, n // len(ids))
    p = world["load"].cols["p_mw"].copy()
    res = {}
    best_vec, best_single = float("inf"), float("inf")
    for r in range(2 if quick else 4):
        # vectorized writes: n events buffered, then one flush
        for k in range(reps):
            g.set("load", ids, "p_mw", p * (1.0 + 1e-3 * (k + r)))
        m = j.next_seq
        t0 = time.perf_counter()
        g.flush()
        best_vec = min(best_vec, (time.perf_counter() - t0))
        nvec = reps * len(ids)
        # single handle writes
        h = g.element("load", int(ids[0]))
        for i in range(n):
            h.p_mw = 1.0 + i * 1e-6
        t0 = time.perf_counter()
        g.flush()
        best_single = min(best_single, (time.perf_counter() - t0))
        t0 = time.perf_counter()
        j.ingest()
        res["ingest_s"] = min(res.get("ingest_s", 9e9), time.perf_counter() - t0)
        res["ingested"] = nvec + n
    res["flush_vectorized_events_per_s"] = nvec / best_vec
    res["flush_single_events_per_s"] = n / best_single
    res["events"] = j.count()
    t0 = time.perf_counter()
    res["verified"] = j.verify()
    res["verify_s"] = time.perf_counter() - t0
    g.close()
    res["db_mb"] = os.path.getsize(path) / 1e6
    return res


def bench_transaction(tmp, quick):
    """begin + 3 x record_many(50) + commit, as the grid2op backend journals every step."""
    from gridtape.journal import Journal

    j = Journal(os.path.join(tmp, "t.duckdb"), author="bench", ingest_every=10**9)
    ids = [np.arange(50, dtype=np.int64) + 100 * k for k in range(3)]
    olds = [np.random.default_rng(k).random(50) for k in range(3)]
    news = [o + 0.5 for o in olds]
    cols = (("load", "p_mw"), ("load", "q_mvar"), ("gen", "p_mw"))
    n = 500 if quick else 3000
    pc = time.perf_counter
    best_commit = best_tx = float("inf")
    for r in range(3 if quick else 7):
        t_commit = 0.0
        t0 = pc()
        for s in range(n):
            j.begin(message=f"apply_action {s}")
            for k, (kind, col) in enumerate(cols):
                j.record_many("set", kind, ids[k], col, olds[k], news[k])
            t1 = pc()
            j.commit()
            t_commit += pc() - t1
        best_tx = min(best_tx, (pc() - t0) / n)
        best_commit = min(best_commit, t_commit / n)
        j.ingest()  # between rounds: every round starts from an empty segment
    rows = 3 * 50 + 1
    j.close()
    return {"commit_us": best_commit * 1e6, "tx_us": best_tx * 1e6, "rows": rows}


def bench_calls(tmp, quick):
    """us per call of the journal's own API on a file journal (no grid): ``record()``,
    ``record_many()`` of 150 floats inside a transaction, ``begin()`` + ``rollback()``, and
    ``begin()`` + one ``record()`` + ``commit()`` (which flushes one frame)."""
    from gridtape.journal import Journal

    j = Journal(os.path.join(tmp, "c.duckdb"), author="bench")
    ids = np.arange(150, dtype=np.int64)
    vals = np.linspace(0.0, 1.0, 150)
    out = {}
    rep = 3 if quick else 7

    def rec(k, j=j):
        r = j.record
        for i in range(k):
            r("set", "load", 3, "p_mw", 1.5, 2.0)
        j.flush()

    def many(k, j=j):
        j.begin()
        r = j.record_many
        for i in range(k):
            r("set", "gen", ids, "p_mw", vals, vals)
        j.rollback()

    def begin_rollback(k, j=j):
        for i in range(k):
            j.begin()
            j.rollback()

    def begin_commit(k, j=j):
        for i in range(k):
            j.begin()
            j.record("set", "load", 3, "p_mw", 1.5, 2.0)
            j.commit()

    n = 20_000 if quick else 200_000
    out["record()"] = per_call(rec, n, rep)
    out["record_many() of 150 floats, in a transaction"] = per_call(many, n // 20, rep)
    out["begin() + rollback()"] = per_call(begin_rollback, n // 4, rep)
    out["begin() + record() + commit() (flushes a frame)"] = per_call(begin_commit, n // 40, rep)
    j.close()
    return out


def bench_loop(name, tmp, quick):
    import pandapower as pp

    from gridtape import PowerGrid
    from gridtape.world.io_pandapower import from_pandapower

    net = _load_net(name)
    nb = len(net.bus)
    n = max(30, min(2000, 150_000 // nb))
    if quick:
        n = max(10, n // 10)
    lid = int(net.load.index[len(net.load) // 2])
    base = float(net.load.p_mw.loc[lid])
    pvals = [base * 1.01, base * 0.99]
    out = {}
    grids = {"gridtape (file journal)": PowerGrid(world=from_pandapower(net), journal=os.path.join(tmp, f"{name}.duckdb")),
             "gridtape (in-memory journal)": PowerGrid(world=from_pandapower(net)),
             "gridtape (journal off)": PowerGrid(world=from_pandapower(net), journal=False),
             # every iteration a full Newton step (a fresh Jacobian factorization), as lightsim2grid does
             "gridtape (file journal, reuse_lu=False)": PowerGrid(world=from_pandapower(net), reuse_lu=False,
                                                                  journal=os.path.join(tmp, f"{name}-newton.duckdb"))}
    fns = {}
    for label, g in grids.items():
        assert g.solve().converged
        h = g.element("load", lid)
        ctr = [0]

        def step(g=g, h=h, ctr=ctr):
            ctr[0] ^= 1
            h.p_mw = pvals[ctr[0]]
            r = g.solve()
            if not r.converged or r.rebuild != "incremental":
                raise RuntimeError(f"unexpected solve {r}")

        step(), step()
        fns[label] = step
    model, v0 = _make_ls(net)
    pos = int(np.flatnonzero(net.load.index.values == lid)[0])
    state = {"V": model.ac_pf(v0.copy(), MAX_IT, TOL), "k": 0}

    def ls_step():
        state["k"] ^= 1
        model.change_p_load(pos, pvals[state["k"]])
        V = model.ac_pf(state["V"], MAX_IT, TOL)
        if not V.size:
            raise RuntimeError("lightsim2grid diverged")
        state["V"] = V

    ls_step(), ls_step()
    fns["lightsim2grid"] = ls_step
    t = _rounds(fns, n)
    kw = dict(lightsim2grid=False, numba=HAVE_NUMBA, tolerance_mva=TOL, max_iteration=MAX_IT)
    pp.runpp(net, **kw)
    pk = {"k": 0}

    def pp_step():
        pk["k"] ^= 1
        net.load.at[lid, "p_mw"] = pvals[pk["k"]]
        pp.runpp(net, init="results", **kw)

    t.update(_rounds({"pandapower": pp_step}, max(3, min(30, 3000 // nb)), 1))
    for k, v in t.items():
        out[k] = (float(v.min() * 1e3), float(np.median(v) * 1e3), float(v.mean() * 1e3))
    for g in grids.values():
        g.close()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="gt-bench-journal-")
    try:
        t_all = time.perf_counter()
        w = bench_writes(tmp, args.quick)
        print("## Handle write `load.p_mw = x` (us per write, min over repeats)\n")
        print("| variant | us | / pandapower |\n|---|---|---|")
        ppw = w["pandapower net.load.at"]
        for k, v in w.items():
            print(f"| {k} | {v * 1e6:.2f} | {v / ppw:.3f} |")
        c = bench_calls(tmp, args.quick)
        print("\n## Journal calls (file journal, us per call, min over repeats)\n")
        print("| call | us |\n|---|---|")
        for k, v in c.items():
            print(f"| {k} | {v * 1e6:.3f} |")
        print("\n## Hashing and checksums (the journal's workloads; benchmarks/bench_hashing.py)\n")
        import bench_hashing as bh
        bh.main(["--quick"] if args.quick else [])
        f = bench_flush(tmp, args.quick)
        print("\n## Flush (file journal, case9241 loads)\n")
        print(f"- flush of buffered vectorized writes: {f['flush_vectorized_events_per_s'] / 1e3:,.0f}k events/s")
        print(f"- flush of 100k single handle writes: {f['flush_single_events_per_s'] / 1e3:,.0f}k events/s")
        print(f"- ingest of {f['ingested']:,} events from the segment into DuckDB: {f['ingest_s'] * 1e3:.0f} ms "
              f"({f['ingested'] / f['ingest_s'] / 1e3:,.0f}k events/s)")
        print(f"- verify() of {f['verified']:,} events: {f['verify_s']:.2f} s; database {f['db_mb']:.1f} MB")
        t = bench_transaction(tmp, args.quick)
        print(f"\n## A grid2op step's transaction (file journal, {t['rows']} rows)\n")
        print(f"- `commit()` (one frame written): {t['commit_us']:.1f} us; the whole transaction "
              f"(begin, 3 x record_many(50), commit): {t['tx_us']:.1f} us")
        print("\n## Scenario B loop: one load write + solve (ms; min / median / mean)\n")
        cases = ["case118", "case2869pegase"] if not args.quick else ["case118"]
        print("| case | variant | min | median | mean | / lightsim2grid (median) | / lightsim2grid (mean) |")
        print("|---|---|---|---|---|---|---|")
        for name in cases:
            r = bench_loop(name, tmp, args.quick)
            ls = r["lightsim2grid"]
            for k, (mn, md, me) in r.items():
                print(f"| {name} | {k} | {mn:.4f} | {md:.4f} | {me:.4f} | {md / ls[1]:.2f} | {me / ls[2]:.2f} |")
        print(f"\ntotal wall time: {time.perf_counter() - t_all:.0f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
