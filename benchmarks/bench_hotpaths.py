"""Hot-path micro-benchmarks in thread CPU time (``time.thread_time``, best of many batches: what the
other processes of a shared machine disturb least).  Runs on older trees too (public API and
bench_solve's helpers only), so an A/B against another checkout is one command in each:

    python benchmarks/bench_hotpaths.py                # warm re-solve and handle writes
    python benchmarks/bench_hotpaths.py resolve        # only the re-solve rows
    REP=30 python benchmarks/bench_hotpaths.py write   # more batches

- ``resolve`` (case14, case118): ``world.set_values`` of every load's p and q (+-1 %, alternating)
  then ``grid.solve()`` (journal off), in us per step; also the two writes alone, a
  ``solve()`` with nothing changed, and the writes with ``Engine.solve`` instead of the grid's;
- ``write``: a handle write ``load.p_mw = x`` on case118, journal off / in memory / file, in us.
"""
import os
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_solve import _load_net, _make_grid  # noqa: E402

clock = time.thread_time
REP = int(os.environ.get("REP", 15))
which = sys.argv[1:] or ["resolve", "write"]


def best(fn, n, rep=REP):
    b = float("inf")
    for _ in range(rep):
        t0 = clock()
        fn(n)
        b = min(b, (clock() - t0) / n)
    return b * 1e6


def resolve(case, n=300):
    net = _load_net(case)
    g = _make_grid(net)
    g.solve(init="flat")
    w = g.world
    ids = w["load"].ids
    bp, bq = net.load.p_mw.values.astype(float), net.load.q_mvar.values.astype(float)
    p = [bp * 1.01, bp * 0.99]
    q = [bq * 1.01, bq * 0.99]
    sv = w.set_values
    eng = g._engine

    def loop(then):
        """k steps of: the two load writes, then ``then()`` (None: nothing)."""
        def run(k):
            for i in range(k):
                j = i & 1
                sv("load", ids, "p_mw", p[j])
                sv("load", ids, "q_mvar", q[j])
                if then is not None:
                    then()
        return run

    def plain(k):
        for i in range(k):
            g.solve()

    loop(g.solve)(20)
    r = {"write+solve": best(loop(g.solve), n), "writes": best(loop(None), n), "solve(no change)": best(plain, n),
         "write+eng.solve": best(loop(lambda: eng.solve(init="results")), n)}
    return r


def write(n=20000):
    import pandapower.networks as pn

    from gridtape import PowerGrid
    from gridtape.world.io_pandapower import from_pandapower

    world = from_pandapower(pn.case118())
    tmp = tempfile.mkdtemp()
    out = {}
    for label, kw in (("off", dict(journal=False)), ("mem", {}), ("file", dict(journal=os.path.join(tmp, "w.duckdb")))):
        g = PowerGrid(world=world.copy(), **kw)
        load = g.element("load", int(world["load"].ids[3]))

        def loop(k, load=load):
            for i in range(k):
                load.p_mw = 10.0 + (i & 7)
        loop(1000)
        out[label] = best(loop, n, 7)
        g.close()
    return out


if "resolve" in which:
    for case in ("case14", "case118"):
        r = resolve(case)
        print(case, "  ".join(f"{k} {v:.2f}" for k, v in r.items()))
if "write" in which:
    r = write()
    print("handle write us", "  ".join(f"{k} {v:.3f}" for k, v in r.items()))
