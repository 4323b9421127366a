"""The ``gridtape`` command: ``demo``, ``solve CASE [--qlim] [--algorithm nr|dc] [--json]``, and for study
journals ``log JOURNAL``, ``verify JOURNAL``, ``bisect JOURNAL [--lo SEQ] [--hi SEQ]``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gridtape.errors import GridtapeError


def _bundled(name: str) -> Path:
    here = Path(__file__).resolve().parent
    for root in (here.parent / "cases", Path.cwd() / "cases"):
        p = root / name / "data.zip"
        if p.exists():
            return p
    raise GridtapeError(f"bundled case {name!r} not found (looked in ./cases and beside the package)", file=name)


def _solve(path, qlim=False, algorithm="nr", init=None):
    from gridtape import PowerGrid

    grid = PowerGrid(path, qlim=qlim)
    rep = grid.solve(algorithm=algorithm, init=init)
    return grid, rep


def cmd_demo(args) -> int:
    import pandas as pd

    path = Path(args.case) if args.case else _bundled("IEEE118")
    grid, rep = _solve(path)
    print(f"gridtape demo: {path}")
    print(f"  converged={rep.converged} iterations={rep.iterations} runtime={rep.runtime_ms:.2f} ms "
          f"rebuild={rep.rebuild}")
    s = grid.summary()
    print(f"  buses={s['buses']} elements={s['elements']}")
    if rep.converged:
        print(f"  vm range [{s['vm_min_pu']:.4f}, {s['vm_max_pu']:.4f}] p.u., load {s['p_load_mw']:.1f} MW")
        # scenario B of the guide: a load write takes the incremental path
        load = grid.load(int(grid.world["load"].cols["bus"][0]))
        load.p_mw = load.p_mw * 1.1
        rep2 = grid.solve()
        print(f"  after load.p_mw *= 1.1: converged={rep2.converged} iterations={rep2.iterations} "
              f"rebuild={rep2.rebuild} runtime={rep2.runtime_ms:.2f} ms")
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            print("\nres_bus (first rows):")
            print(grid.res_bus.head())
            print("\nres_line (first rows):")
            print(grid.res_line.head())
    return 0 if rep.converged else 1


def cmd_solve(args) -> int:
    grid, rep = _solve(args.case, qlim=args.qlim, algorithm=args.algorithm, init=args.init)
    if args.json:
        out = {"report": {"converged": rep.converged, "iterations": rep.iterations,
                          "runtime_ms": rep.runtime_ms, "rebuild": rep.rebuild, "algorithm": rep.algorithm,
                          "mismatch": rep.mismatch},
               "summary": grid.summary()}
        if rep.converged:
            out["res_bus"] = json.loads(grid.res_bus.to_json(orient="split"))
        print(json.dumps(out, default=str))
    else:
        print(f"{args.case}: converged={rep.converged} iterations={rep.iterations} "
              f"runtime={rep.runtime_ms:.2f} ms algorithm={rep.algorithm}")
        if rep.converged:
            print(grid.res_bus.to_string(max_rows=args.rows))
    return 0 if rep.converged else 1


def cmd_log(args) -> int:
    import pandas as pd

    import gridtape

    with gridtape.open(args.journal) as study:
        log = study.log(since=args.since, until=args.until, kind=args.kind, event=args.event)
    cols = ["seq", "tx", "time", "author", "message", "event", "kind", "eid", "field", "old", "new"]
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.max_colwidth", 40):
        print(log[cols].tail(args.rows).to_string(index=False))
    return 0


def cmd_verify(args) -> int:
    import gridtape

    with gridtape.open(args.journal) as study:
        n = study.journal.verify()
    print(f"{args.journal}: {n} events, hash chain intact")
    return 0


def cmd_bisect(args) -> int:
    import gridtape

    with gridtape.open(args.journal) as study:
        res = study.bisect(lo=args.lo, hi=args.hi)
    if res is None:
        print(f"{args.journal}: the power flow converges at every point")
        return 0
    print(res)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="gridtape", description="pandapower-exact power flow; every change is history")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="solve the bundled IEEE 118-bus case and print results")
    d.add_argument("case", nargs="?", help="another case instead of cases/IEEE118/data.zip")
    d.set_defaults(func=cmd_demo)
    s = sub.add_parser("solve", help="solve a case file (pandapower JSON, CSV-zip, MATPOWER .m)")
    s.add_argument("case")
    s.add_argument("--qlim", action="store_true", help="enforce generator reactive limits")
    s.add_argument("--algorithm", choices=("nr", "dc"), default="nr")
    s.add_argument("--init", choices=("auto", "flat", "dc"), default=None)
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--rows", type=int, default=20, help="bus rows to print")
    s.set_defaults(func=cmd_solve)
    lg = sub.add_parser("log", help="print a study journal's events")
    lg.add_argument("journal")
    lg.add_argument("--since", type=int)
    lg.add_argument("--until", type=int)
    lg.add_argument("--kind")
    lg.add_argument("--event")
    lg.add_argument("--rows", type=int, default=50, help="last rows to print")
    lg.set_defaults(func=cmd_log)
    v = sub.add_parser("verify", help="check a journal's hash chain")
    v.add_argument("journal")
    v.set_defaults(func=cmd_verify)
    b = sub.add_parser("bisect", help="find the first transaction after which the case stops converging")
    b.add_argument("journal")
    b.add_argument("--lo", type=int, help="first seq of the range (default: the start)")
    b.add_argument("--hi", type=int, help="last seq of the range (default: the head)")
    b.set_defaults(func=cmd_bisect)
    args = ap.parse_args(argv)
    try:
        return args.func(args)
    except GridtapeError as e:
        print(f"gridtape: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
