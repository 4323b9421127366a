"""The ``gridtape`` command: ``demo`` (a journaled study), ``--version``, ``solve CASE [--qlim] [--algorithm nr|dc] [--json]``, and for study
journals ``log JOURNAL``, ``verify JOURNAL``, ``bisect JOURNAL [--lo SEQ] [--hi SEQ]``."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from gridtape.errors import GridtapeError


def bundled(name: str) -> Path:
    """The path of a bundled case (``cases/NAME/data.zip``)."""
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
    from gridtape.demo import main as demo

    return demo(keep=args.keep)


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
    from gridtape import __version__

    ap = argparse.ArgumentParser(prog="gridtape", description="pandapower-exact power flow; every change is history")
    ap.add_argument("--version", action="version", version=f"gridtape {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="a short journaled study on the bundled IEEE 118-bus case: edits by two "
                       "authors, the one that breaks convergence found by bisect, its diff, blame and margin")
    d.add_argument("--keep", metavar="DIR", help="keep the study's journal in DIR (default: a temporary directory)")
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
    except BrokenPipeError:  # `gridtape log ... | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
