"""End-to-end solve benchmark: gridtape vs lightsim2grid (KLU) vs pandapower.

    pip install .[bench]
    python benchmarks/bench_solve.py                 # full run (~3-4 min on 2 cores)
    python benchmarks/bench_solve.py --quick         # CI smoke: 3 cases, few repeats
    python benchmarks/bench_solve.py --json out.json # also dump every number

Two scenarios per case (pandapower.networks), each engine timed on the same machine in the
same process, interleaved in rounds so that machine noise hits all of them alike:

1. **flat**: a Newton-Raphson from a flat start.  The model (and KLU's symbolic analysis)
   already exists for every engine: gridtape ``g.solve(init="flat")`` after one warm-up call;
   lightsim2grid ``LSGrid.ac_pf(V0, 10, 1e-8)`` with ``NR_KLU`` after one warm-up call;
   pandapower ``runpp(init="flat")`` (which rebuilds its internal model on every call: that is
   how pandapower is used).
2. **re-solve**: every repeat scales all loads (P and Q) to +1% / -1% of the base case,
   alternately, and solves again from the previous voltages: gridtape
   ``world.set_values`` + ``g.solve()`` (incremental rebuild, warm start); lightsim2grid
   ``update_loads_p/q`` + ``ac_pf(V_previous)``; pandapower ``runpp(init="results")``.
   The load update is inside the timed region for all three.

All engines solve to tol = 1e-8 (p.u.), max. 10 iterations.  lightsim2grid stores loads in
float32, so every engine is given the same float32-rounded load values.

Also measured: the peak memory that loading + solving case9241pegase adds (in fresh
subprocesses: ``tracemalloc`` peak of Python/NumPy allocations, and the growth of
``ru_maxrss``, which includes KLU's C allocations), and the agreement of the voltages.
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import pickle
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")

CASES = ["case14", "case118", "case300", "case1354pegase", "case2869pegase", "case9241pegase"]
QUICK_CASES = ["case14", "case118", "case1354pegase"]
MEMORY_CASE = "case9241pegase"
MEMORY_FALLBACK = "case2869pegase"
TOL = 1e-8
MAX_IT = 10
ROUNDS = 20  # repeats are split in rounds, engines alternate between rounds (shared noise)
HAVE_NUMBA = importlib.util.find_spec("numba") is not None


# ------------------------------------------------------------------------------ helpers
def _load_net(name):
    import pandapower.networks as pn

    return getattr(pn, name)()


def _make_grid(net):
    """gridtape PowerGrid from a pandapower net (public API only)."""
    from gridtape import PowerGrid

    try:
        from gridtape.world.io_pandapower import from_pandapower
    except ImportError:  # older trees: build the world from the raw frames
        from gridtape.world import KIND_ORDER, world_from_frames

        def from_pandapower(net):
            return world_from_frames({k: net[k] for k in KIND_ORDER if k in net},
                                     sn_mva=net.sn_mva, f_hz=net.f_hz)
    try:  # the engine alone: the journal's cost is measured by bench_journal.py
        return PowerGrid(world=from_pandapower(net), journal=False)
    except TypeError:  # trees without the journal
        return PowerGrid(world=from_pandapower(net))


def _make_ls(net):
    """lightsim2grid grid model with NR + KLU; V0 = ones with the gen / ext_grid set-points."""
    try:
        from lightsim2grid.network import init_from_pandapower
    except ImportError:  # lightsim2grid < 0.10
        from lightsim2grid.gridmodel import init_from_pandapower
    model = init_from_pandapower(net)
    try:
        from lightsim2grid.algorithm import AlgorithmType

        model.change_algorithm(AlgorithmType.NR_KLU)
    except ImportError:
        from lightsim2grid.solver import SolverType

        model.change_solver(SolverType.KLU)
    pos = {b: i for i, b in enumerate(net.bus.index)}
    # lightsim2grid takes the slack angle from V0 (not from ext_grid.va_degree), so V0 needs it.
    # A flat start rotated to the slack angle (every bus at va_degree) is equivalent to its
    # usual all-ones start; "slack at 30 deg, the rest at 0" (pandapower's flat start) costs
    # lightsim2grid one more iteration on case118, so it gets the rotated one.
    eg = net.ext_grid[net.ext_grid.in_service]
    rot = np.exp(1j * np.deg2rad(float(eg.va_degree.iloc[0]) if len(eg) else 0.0))
    v0 = np.full(model.total_bus(), rot, dtype=complex)
    gen = net.gen[net.gen.in_service]
    v0[[pos[b] for b in gen.bus]] = gen.vm_pu.values * rot
    v0[[pos[b] for b in eg.bus]] = eg.vm_pu.values * np.exp(1j * np.deg2rad(eg.va_degree.values))
    return model, v0


def _pp_v(net):
    return net.res_bus.vm_pu.values * np.exp(1j * np.deg2rad(net.res_bus.va_degree.values))


def _timed(fn, n):
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out


def _rounds(fns, n, rounds=ROUNDS):
    """Time each fn ~n times, in interleaved blocks; returns {key: seconds array}."""
    acc = {k: [] for k in fns}
    rounds = max(1, min(rounds, n))
    per = max(1, -(-n // rounds))
    for _ in range(rounds):
        for k, fn in fns.items():
            acc[k].append(_timed(fn, per))
    return {k: np.concatenate(v) for k, v in acc.items()}


def _stats(t):
    return {"min_ms": float(t.min() * 1e3), "median_ms": float(np.median(t) * 1e3), "n": int(len(t))}


def _repeats(nb, quick):
    fast = max(50, min(1000, 200000 // nb))
    slow = max(5, min(50, 6000 // nb))
    if quick:
        fast, slow = max(10, fast // 20), 2
    return fast, slow


# ------------------------------------------------------------------------------ one case
def bench_case(name, quick):
    import pandapower as pp

    net = _load_net(name)
    nb = len(net.bus)
    fast, slow = _repeats(nb, quick)
    res = {"case": name, "buses": nb, "repeats_fast": fast, "repeats_pandapower": slow}
    runpp_kw = dict(lightsim2grid=False, numba=HAVE_NUMBA, tolerance_mva=TOL, max_iteration=MAX_IT)

    # --- models + warm-ups (model build, KLU symbolic analysis, first factorization)
    t0 = time.perf_counter()
    g = _make_grid(net)
    rep = g.solve(init="flat")
    res["gridtape_build_first_solve_ms"] = (time.perf_counter() - t0) * 1e3
    assert rep.converged, f"gridtape did not converge on {name}: {rep}"
    eng = g._engine
    t0 = time.perf_counter()
    model, v0 = _make_ls(net)
    vls = model.ac_pf(v0.copy(), MAX_IT, TOL)
    res["lightsim2grid_build_first_solve_ms"] = (time.perf_counter() - t0) * 1e3
    assert vls.size, f"lightsim2grid did not converge on {name}"
    pnet = _load_net(name)
    pp.runpp(pnet, init="flat", **runpp_kw)

    # --- 1. flat start
    last = {}

    def gt_flat():
        last["gt"] = g.solve(init="flat")

    def gt_kernel():
        eng.solve(init="flat", tol=TOL, max_iter=MAX_IT)

    def ls_flat():
        last["ls"] = model.ac_pf(v0.copy(), MAX_IT, TOL)

    t = _rounds({"gridtape": gt_flat, "gridtape_kernel": gt_kernel, "lightsim2grid": ls_flat}, fast)
    t.update(_rounds({"pandapower": lambda: pp.runpp(pnet, init="flat", **runpp_kw)}, slow, 1))
    assert last["gt"].converged and last["ls"].size and pnet.converged
    g.solve(init="flat")
    v_gt, v_ls, v_pp = g.v, model.ac_pf(v0.copy(), MAX_IT, TOL), _pp_v(pnet)
    res["flat"] = {k: _stats(v) for k, v in t.items()}
    res["flat"]["iterations"] = {"gridtape": g.iterations,
                                 "lightsim2grid": int(model.get_algo().get_nb_iter()),
                                 "pandapower": int(pnet._ppc["iterations"])}
    res["flat"]["max_abs_dV"] = {"gridtape_vs_pandapower": float(np.abs(v_gt - v_pp).max()),
                                 "gridtape_vs_lightsim2grid": float(np.abs(v_gt - v_ls).max())}

    # --- 2. re-solve after +-1% load scaling, warm start
    w = g.world
    ids = w["load"].ids
    assert np.array_equal(ids, net.load.index.values), "load ids are not the pandapower load index"
    base_p = net.load.p_mw.values.astype(float)
    base_q = net.load.q_mvar.values.astype(float)
    f32p = [(base_p * f).astype(np.float32) for f in (1.01, 0.99)]
    f32q = [(base_q * f).astype(np.float32) for f in (1.01, 0.99)]
    p64 = [a.astype(float) for a in f32p]
    q64 = [a.astype(float) for a in f32q]
    mask = np.ones(len(base_p), dtype=bool)
    ctr = {"gt": 0, "ls": 0, "pp": 0}
    its = {"gridtape": [], "lightsim2grid": [], "pandapower": []}
    rebuilds = set()
    state = {"V": vls}

    def gt_re():
        k = ctr["gt"] = ctr["gt"] ^ 1
        w.set_values("load", ids, "p_mw", p64[k])
        w.set_values("load", ids, "q_mvar", q64[k])
        r = g.solve()
        its["gridtape"].append(r.iterations)
        rebuilds.add(r.rebuild)

    def ls_re():
        k = ctr["ls"] = ctr["ls"] ^ 1
        model.update_loads_p(mask, f32p[k])
        model.update_loads_q(mask, f32q[k])
        V = model.ac_pf(state["V"], MAX_IT, TOL)
        if not V.size:
            raise RuntimeError(f"lightsim2grid diverged on a re-solve of {name}")
        state["V"] = V
        its["lightsim2grid"].append(int(model.get_algo().get_nb_iter()))

    def pp_re():
        k = ctr["pp"] = ctr["pp"] ^ 1
        pnet.load["p_mw"] = p64[k]
        pnet.load["q_mvar"] = q64[k]
        pp.runpp(pnet, init="results", **runpp_kw)
        its["pandapower"].append(int(pnet._ppc["iterations"]))

    gt_re(), ls_re(), pp_re()  # warm-up: first incremental rebuild / first warm start
    for v in its.values():
        v.clear()
    rebuilds.clear()
    t = _rounds({"gridtape": gt_re, "lightsim2grid": ls_re}, fast)
    t.update(_rounds({"pandapower": pp_re}, slow, 1))
    res["resolve"] = {k: _stats(v) for k, v in t.items()}
    res["resolve"]["iterations"] = {k: [int(min(v)), int(max(v))] for k, v in its.items()}
    res["resolve"]["gridtape_rebuild"] = sorted(rebuilds)
    # same loads everywhere, then compare
    for k in ("gt", "ls", "pp"):
        if ctr[k] != 1:
            {"gt": gt_re, "ls": ls_re, "pp": pp_re}[k]()
    assert g.converged and pnet.converged
    v_gt, v_pp = g.v, _pp_v(pnet)
    res["resolve"]["max_abs_dV"] = {"gridtape_vs_pandapower": float(np.abs(v_gt - v_pp).max()),
                                    "gridtape_vs_lightsim2grid": float(np.abs(v_gt - state["V"]).max())}
    return res


# ------------------------------------------------------------------------------ memory
def _mem_child(mode, pkl):
    """Run ``mem_child`` in a fresh interpreter (this script with --mem-child)."""
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--mem-child", mode, pkl],
                       capture_output=True, text=True, timeout=600)
    try:
        out = json.loads(p.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        out = {"ok": False}
    if not out.get("ok"):
        out["error"] = (p.stderr.strip().splitlines() or [f"exit code {p.returncode}"])[-1][:200] \
            if p.returncode else "the flat solve did not converge"
    return out


def mem_child(mode, pkl):
    """Child side: import everything, unpickle the net, then measure build + flat solve."""
    import tracemalloc

    import pandapower  # noqa: F401

    import gridtape  # noqa: F401

    if mode == "lightsim2grid":
        import lightsim2grid  # noqa: F401
    with open(pkl, "rb") as fh:
        net = pickle.load(fh)
    gc.collect()

    def rss():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize() / 2**20

    def maxrss():
        # VmHWM is this process's own high-water mark.  ru_maxrss is max(VmHWM, the peak of
        # the image exec replaced), and that image is a fork of the (big) parent, so in a
        # child started by this script ru_maxrss only ever reports the parent's size.
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    # reset the RSS high-water mark (Linux >= 4.0) so that ru_maxrss starts from the current RSS
    # and not from import / unpickling peaks (or from the parent, whose mm a spawned child inherits)
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        reset = True
    except OSError:
        reset = False
    rss0, max0 = rss(), maxrss()
    if mode == "tracemalloc":
        tracemalloc.start()
    t0 = time.perf_counter()
    if mode == "lightsim2grid":
        model, v0 = _make_ls(net)
        ok = bool(model.ac_pf(v0, MAX_IT, TOL).size)
    else:
        g = _make_grid(net)
        ok = bool(g.solve(init="flat").converged)
    out = {"ok": ok, "seconds": time.perf_counter() - t0, "hwm_reset": reset, "rss_before_mb": rss0,
           "rss_after_mb": rss(), "maxrss_before_mb": max0, "maxrss_after_mb": maxrss()}
    if mode == "tracemalloc":
        cur, peak = tracemalloc.get_traced_memory()
        out.update(tracemalloc_current_mb=cur / 2**20, tracemalloc_peak_mb=peak / 2**20)
    print(json.dumps(out))


def bench_memory(name):
    """Peak memory that building + flat-solving ``name`` adds, in fresh subprocesses.

    The pandapower net is unpickled (cheap, no parser peak) and everything is imported
    before the baseline is taken, so only the model build + solve is counted."""
    net = _load_net(name)
    fd, pkl = tempfile.mkstemp(suffix=".pkl")
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(net, fh)
        rss = _mem_child("rss", pkl)
        if not rss.get("ok"):
            return {"case": name, "ok": False, "error": rss.get("error")}
        tm = _mem_child("tracemalloc", pkl)
        ls = _mem_child("lightsim2grid", pkl)
    finally:
        os.unlink(pkl)
    out = {"case": name, "ok": True,
           "tracemalloc_peak_mb": tm.get("tracemalloc_peak_mb"),
           "tracemalloc_retained_mb": tm.get("tracemalloc_current_mb"),
           "maxrss_delta_mb": rss["maxrss_after_mb"] - rss["maxrss_before_mb"],
           "peak_above_baseline_mb": rss["maxrss_after_mb"] - rss["rss_before_mb"],
           "rss_retained_mb": rss["rss_after_mb"] - rss["rss_before_mb"],
           "build_and_solve_s": rss["seconds"], "hwm_reset": rss["hwm_reset"]}
    if ls.get("ok"):
        out["lightsim2grid_maxrss_delta_mb"] = ls["maxrss_after_mb"] - ls["maxrss_before_mb"]
        out["lightsim2grid_peak_above_baseline_mb"] = ls["maxrss_after_mb"] - ls["rss_before_mb"]
    return out


# ------------------------------------------------------------------------------ report
def _fmt(x, nd=3):
    return "-" if x is None else (f"{x:.{nd}f}" if x < 100 else f"{x:.0f}")


def table(results, scenario):
    head = ("| case | buses | it gt/ls/pp | gridtape min / med | kernel min | lightsim2grid min / med "
            "| pandapower min / med | gt/ls (min) | gt/ls (med) | gt/pp (med) |")
    lines = [head, "|" + "|".join(["---"] * 10) + "|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['case']} | {r.get('buses', '?')} | {r['error']} |" + " |" * 7)
            continue
        s = r[scenario]
        gt, ls, pp_ = s["gridtape"], s["lightsim2grid"], s["pandapower"]
        it = s["iterations"]
        fi = (lambda v: f"{v[0]}" if v[0] == v[1] else f"{v[0]}-{v[1]}") if scenario == "resolve" \
            else (lambda v: str(v))
        its = "/".join(fi(it[k]) for k in ("gridtape", "lightsim2grid", "pandapower"))
        kern = _fmt(s["gridtape_kernel"]["min_ms"]) if "gridtape_kernel" in s else "-"
        lines.append(
            f"| {r['case']} | {r['buses']} | {its} | {_fmt(gt['min_ms'])} / {_fmt(gt['median_ms'])} "
            f"| {kern} | {_fmt(ls['min_ms'])} / {_fmt(ls['median_ms'])} "
            f"| {_fmt(pp_['min_ms'], 1)} / {_fmt(pp_['median_ms'], 1)} "
            f"| {gt['min_ms'] / ls['min_ms']:.2f} | {gt['median_ms'] / ls['median_ms']:.2f} "
            f"| {gt['median_ms'] / pp_['median_ms']:.4f} |")
    return "\n".join(lines)


def agreement(results):
    lines = ["| case | flat: gt vs pp | flat: gt vs ls | re-solve: gt vs pp | re-solve: gt vs ls |",
             "|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            continue
        f, s = r["flat"]["max_abs_dV"], r["resolve"]["max_abs_dV"]
        lines.append(f"| {r['case']} | {f['gridtape_vs_pandapower']:.1e} | {f['gridtape_vs_lightsim2grid']:.1e} "
                     f"| {s['gridtape_vs_pandapower']:.1e} | {s['gridtape_vs_lightsim2grid']:.1e} |")
    return "\n".join(lines)


def machine():
    import pandapower

    import gridtape

    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "numpy": np.__version__, "pandapower": pandapower.__version__,
            "gridtape": getattr(gridtape, "__version__", "?"), "pandapower_numba": HAVE_NUMBA}
    try:
        import lightsim2grid

        info["lightsim2grid"] = lightsim2grid.__version__
    except Exception:  # pragma: no cover
        pass
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer cases and repeats (CI smoke)")
    ap.add_argument("--json", metavar="PATH", help="dump all numbers to PATH")
    ap.add_argument("--cases", nargs="+", help="override the case list")
    ap.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    ap.add_argument("--mem-child", nargs=2, metavar=("MODE", "PKL"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.mem_child:
        mem_child(*args.mem_child)
        return 0
    cases = args.cases or (QUICK_CASES if args.quick else CASES)

    t_start = time.perf_counter()
    info = machine()
    print(f"# gridtape solve benchmark\n\n{json.dumps(info)}\n", flush=True)
    results = []
    for name in cases:
        t0 = time.perf_counter()
        try:
            r = bench_case(name, args.quick)
        except Exception as exc:  # keep going: report the failure in the table
            r = {"case": name, "error": f"{type(exc).__name__}: {exc}"[:160]}
        gc.collect()
        results.append(r)
        print(f"  {name}: {time.perf_counter() - t0:.1f} s"
              + (f"  ERROR {r['error']}" if "error" in r else ""), file=sys.stderr, flush=True)

    print("## Flat start (ms; gridtape = g.solve(init='flat'), kernel = Engine.solve)\n")
    print(table(results, "flat"))
    print("\n## Re-solve after +-1% load scaling, warm start (ms, load update included)\n")
    print(table(results, "resolve"))
    print("\n## Agreement: max |V_gridtape - V_other| (p.u., complex)\n")
    print(agreement(results))

    mem = None
    if not args.no_memory:
        mem = bench_memory(MEMORY_CASE)
        if not mem["ok"]:
            print(f"\nmemory: {MEMORY_CASE} failed ({mem['error']}); measuring {MEMORY_FALLBACK} instead")
            mem = {**bench_memory(MEMORY_FALLBACK), "failed": mem}
        if mem.get("ok"):
            print(f"\n## Memory: build + flat solve of {mem['case']} (fresh subprocess)\n")
            print(f"- tracemalloc peak (Python + NumPy allocations): {mem['tracemalloc_peak_mb']:.1f} MB "
                  f"(retained after the solve: {mem['tracemalloc_retained_mb']:.1f} MB)")
            print(f"- ru_maxrss delta: {mem['maxrss_delta_mb']:.1f} MB; peak RSS above the pre-build "
                  f"RSS: {mem['peak_above_baseline_mb']:.1f} MB; retained RSS: {mem['rss_retained_mb']:.1f} MB")
            if "lightsim2grid_maxrss_delta_mb" in mem:
                print(f"- lightsim2grid, same measurement: ru_maxrss delta "
                      f"{mem['lightsim2grid_maxrss_delta_mb']:.1f} MB, peak RSS above baseline "
                      f"{mem['lightsim2grid_peak_above_baseline_mb']:.1f} MB")
        else:
            print(f"\nmemory: failed ({mem.get('error')})")
    total = time.perf_counter() - t_start
    print(f"\ntotal wall time: {total:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": info, "tol": TOL, "max_iter": MAX_IT, "cases": results,
                       "memory": mem, "wall_s": total}, fh, indent=1)
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
