"""Micro-benchmark: gridtape NewtonSolver.solve vs lightsim2grid GridModel.ac_pf (flat start).

Usage: python benchmarks/bench_kernels.py [case14 case118 ...] [--repeats N]
Both solvers get pandapower's internal Ybus/Sbus, the same flat start and tol=1e-8;
each has already done its symbolic analysis and a first solve before timing.
"""
import argparse
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")

import pandapower as pp  # noqa: E402
import pandapower.networks as pn  # noqa: E402
from lightsim2grid.gridmodel import init_from_pandapower  # noqa: E402

from gridtape.solver_cy.newton import NewtonSolver  # noqa: E402

CASES = ["case14", "case118", "case2869pegase", "case9241pegase"]


def _timeit(fn, repeats):
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return np.array(out)


def bench_case(name, repeats, tol=1e-8, max_iter=10):
    net = getattr(pn, name)()
    pp.runpp(net, numba=False)
    ppi = net._ppc["internal"]
    Y = ppi["Ybus"].tocsr()
    Y.sum_duplicates()
    Y.sort_indices()
    ref, pv, pq = (np.asarray(ppi[k], dtype=np.int32) for k in ("ref", "pv", "pq"))
    sbus = np.ascontiguousarray(ppi["Sbus"], dtype=np.complex128)
    zero = np.zeros_like(sbus)
    v0 = np.ones(len(sbus), dtype=np.complex128)
    gen = np.r_[ref, pv]
    v0[gen] = np.abs(ppi["V"][gen])
    v0[ref] = ppi["V"][ref]

    solver = NewtonSolver(Y.indptr.astype(np.int32), Y.indices.astype(np.int32), ref, pv, pq)
    ydata = np.ascontiguousarray(Y.data, dtype=np.complex128)
    state = {}

    def ours():
        V = v0.copy()
        state["gt"] = solver.solve(ydata, sbus, zero, zero, V, tol, max_iter)

    model = init_from_pandapower(net)
    ls_v0 = np.ones(model.total_bus(), dtype=np.complex128)  # ls2g imposes its own setpoints

    def theirs():
        state["ls"] = model.ac_pf(ls_v0.copy(), max_iter, tol)

    ours(), theirs()  # symbolic analysis + first factorization for both
    assert state["gt"][0] and state["ls"].size, (name, state["gt"])
    t_gt, t_ls = [], []
    for _ in range(3):  # interleave to share machine noise
        t_gt.append(_timeit(ours, repeats))
        t_ls.append(_timeit(theirs, repeats))
    t_gt, t_ls = np.concatenate(t_gt), np.concatenate(t_ls)
    return dict(case=name, nb=len(sbus), n_jac=solver.n_jac, it_gt=state["gt"][1],
                it_ls=model.get_solver().get_nb_iter(),
                gt_min=t_gt.min(), gt_med=np.median(t_gt), ls_min=t_ls.min(),
                ls_med=np.median(t_ls))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cases", nargs="*", default=CASES)
    ap.add_argument("--repeats", type=int, default=0, help="per round (default: by size)")
    args = ap.parse_args()
    print(f"{'case':16s} {'nb':>6s} {'it':>5s} {'gridtape min/med (ms)':>22s} "
          f"{'lightsim2grid min/med (ms)':>27s} {'ratio min':>9s} {'ratio med':>9s}")
    for name in args.cases:
        nb_guess = int("".join(ch for ch in name if ch.isdigit()) or 100)
        reps = args.repeats or max(10, min(2000, 200000 // nb_guess))
        r = bench_case(name, reps)
        print(f"{r['case']:16s} {r['nb']:6d} {r['it_gt']:>2d}/{r['it_ls']:<2d} "
              f"{r['gt_min'] * 1e3:10.4f} /{r['gt_med'] * 1e3:9.4f} "
              f"{r['ls_min'] * 1e3:14.4f} /{r['ls_med'] * 1e3:9.4f} "
              f"{r['gt_min'] / r['ls_min']:9.2f} {r['gt_med'] / r['ls_med']:9.2f}")


if __name__ == "__main__":
    main()
