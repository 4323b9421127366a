"""The ``gridtape`` command: git-like verbs over a study journal, plus ``demo``, ``solve`` and ``convert``.

Exit codes: 0 ok; 1 when the answer is "found / differs / diverged" (``diff`` with differences,
``bisect`` that found a breaking transaction, ``solve`` that diverged, ``verify`` that found a
broken chain); 2 an error (bad input, missing file, unknown point); 3 a conflict (``revert``,
``cherry-pick``, ``merge``: nothing was written; gridtape/cli_merge.py).  ``--json`` prints one JSON
document for scripts.  See docs/cli.md.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from gridtape.errors import GridtapeError


def bundled(name: str) -> Path:
    """The path of a bundled case (``cases/NAME/data.zip``)."""
    here = Path(__file__).resolve().parent
    for root in (here.parent / "cases", Path.cwd() / "cases"):
        p = root / name / "data.zip"
        if p.exists():
            return p
    raise GridtapeError(f"bundled case {name!r} not found (looked in ./cases and beside the package)", file=name)


# --- output ---------------------------------------------------------------------------------------
def _plain(v):
    """A JSON-ready value: NA/NaN -> None, numpy scalars -> Python, bytes -> hex, times -> ISO."""
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return None if math.isnan(v) or math.isinf(v) else v
    if hasattr(v, "isoformat"):
        from gridtape.reprs import iso

        return iso(v)
    try:
        import pandas as pd

        if v is pd.NA or v is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    return v if isinstance(v, (bool, int, str)) else str(v)


def records(df) -> list:
    return [{str(k): _plain(v) for k, v in row.items()} for row in df.to_dict("records")]


def emit(obj) -> None:
    print(json.dumps(_plain(obj), separators=(",", ":")))


def _table(df, rows=None) -> str:
    import pandas as pd

    df = df.astype(object).where(df.notna(), "")  # blanks, not None / <NA> / NaN
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_colwidth", 40):
        return (df if rows is None else df.tail(rows)).to_string(index=False)


def _open(path):
    import gridtape

    if not os.path.exists(path):
        raise GridtapeError("journal file does not exist", file=path)
    return gridtape.open(path)


# --- verbs ----------------------------------------------------------------------------------------
def cmd_demo(args) -> int:
    from gridtape.demo import main as demo

    return demo(keep=args.keep)


def cmd_solve(args) -> int:
    from gridtape import PowerGrid

    grid = PowerGrid(args.case, qlim=args.qlim)
    rep = grid.solve(algorithm=args.algorithm, init=args.init)
    if args.json:
        out = {"report": {"converged": rep.converged, "iterations": rep.iterations, "runtime_ms": rep.runtime_ms,
                          "rebuild": rep.rebuild, "algorithm": rep.algorithm, "mismatch": rep.mismatch},
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
    from gridtape import reprs, verbs

    with _open(args.journal) as study:
        if args.oneline:
            tx = verbs.oneline(study, since=args.since, until=args.until, author=args.author)
            tx = tx if args.rows is None else tx.tail(args.rows)
            if args.json:
                emit(records(tx))
            else:
                print("\n".join(reprs.oneline(tx, width=None)))
            return 0
        log = verbs.log(study, since=args.since, until=args.until, author=args.author, kind=args.kind,
                        event=args.event)
    log = log if args.rows is None else log.tail(args.rows)
    out = reprs.readable_log(log, hash=args.hash)
    if args.json:
        emit(records(out))
        return 0
    cols = ["seq", "tx", "time", "author", "message", "event", "kind", "eid", "field", "old", "new",
            "iterations", "mismatch"] + (["hash"] if args.hash else [])
    print(_table(out[[c for c in cols if c in out.columns]]))
    return 0


def cmd_show(args) -> int:
    from gridtape import reprs, verbs

    with _open(args.journal) as study:
        got = verbs.show(study, args.tx)
    ev = reprs.readable_log(got["events"], hash=args.hash)
    if args.json:
        emit({"tx": got["tx"], "summary": got["summary"], "events": records(ev), "diff": records(got["diff"]),
              "studies": got["studies"]})
        return 0
    s = got["summary"]
    solve = f"; then {s['solve']} in {s['iterations']} iterations" if s.get("solve") else ""
    print(f"tx {got['tx']}  {s['time']}  {s['author'] or '?'}: {s['message'] or ''}")
    print(f"  seq {s['first_seq']}..{s['seq']}, {s['what']}{solve}")
    for st in got["studies"]:
        print("\n".join(reprs.study_lines(st)))
    print("\n".join(reprs.diff_lines(got["diff"], limit=None, width=None)))
    return 0


def cmd_diff(args) -> int:
    from gridtape import reprs, verbs

    with _open(args.journal) as study:
        d = verbs.diff(study, args.a, args.b)
    if args.json:
        emit(records(d))
    elif len(d):
        print("\n".join(reprs.diff_lines(d, limit=None, width=None, indent="")))
    return 1 if len(d) else 0


def cmd_blame(args) -> int:
    from gridtape import verbs

    with _open(args.journal) as study:
        b = verbs.blame(study, args.kind, args.id, args.field, at=args.at)
    if args.json:
        emit(b)
    else:
        print(f"{args.kind} {args.id} {args.field} = {b['new']}: {b['event']} at seq {b['seq']} (tx {b['tx']}, "
              f"{b['time']}) by {b['author'] or '?'}: {b['message'] or ''}")
    return 0


def cmd_at(args) -> int:
    from gridtape import verbs

    with _open(args.journal) as study:
        s = verbs.point(study, args.point)
        grid = study.at(s)
    out = {"seq": s, "buses": len(grid.world["bus"]), "elements": grid.world.counts()}
    if args.export:
        out["export"] = {"path": args.export, "format": verbs.export(grid, args.export)}
    if args.solve:
        rep = grid.solve()
        out.update(converged=rep.converged, iterations=rep.iterations, mismatch=rep.mismatch)
    if args.json:
        emit(out)
    else:
        print(f"seq {s}: {out['buses']} buses" + (f", {'converged' if out['converged'] else 'diverged'} in "
                                                  f"{out['iterations']} iterations" if args.solve else ""))
        if args.export:
            print(f"written {args.export} ({out['export']['format']})")
    return 1 if args.solve and not out["converged"] else 0


def cmd_tag(args) -> int:
    from gridtape import verbs

    seq = verbs.tag(args.journal, args.name, author=args.author)
    emit({"tag": args.name, "seq": seq}) if args.json else print(f"tag {args.name!r} at seq {seq}")
    return 0


def cmd_branch(args) -> int:
    from gridtape import verbs
    from gridtape.reprs import iso

    if args.name is None:
        with _open(args.journal) as study:
            br = study.branches()
        br["created"] = [iso(t) for t in br["created"]]
        if args.json:
            emit(records(br))
        elif len(br):
            print(_table(br))
        return 0
    b = verbs.branch(args.journal, args.name, at=args.at, author=args.author)
    emit(b) if args.json else print(f"branch {b['name']!r} from seq {b['seq']}: {b['path']}")
    return 0


def cmd_verify(args) -> int:
    from gridtape.errors import JournalCorruptError

    with _open(args.journal) as study:
        try:
            n = study.journal.verify()
        except JournalCorruptError as e:
            emit({"ok": False, "error": str(e), "row": e.row}) if args.json else print(f"{args.journal}: {e}")
            return 1
    emit({"ok": True, "events": n}) if args.json else print(f"{args.journal}: {n} events, hash chain intact")
    return 0


def cmd_recover(args) -> int:
    from gridtape.journal import Journal

    r = Journal.recover(args.journal, args.out, in_place=args.in_place)
    emit(r) if args.json else print(f"{args.journal}: {r['events_kept']} events salvaged into {r['recovered']}, "
                                    f"{r['events_lost']} lost, {len(r['damaged'])} damaged ranges"
                                    + (f", the acknowledgement record damaged ({r['ack_damage']['why']}: events "
                                       "cut off the segments could not be counted)" if "ack_damage" in r else "")
                                    + f"; report: {r['recovered']}.recovery.json")
    return 0 if r["ok"] else 1


def cmd_bisect(args) -> int:
    from gridtape import reprs, verbs

    with _open(args.journal) as study:
        res = verbs.bisect(study, until=args.until, lo=args.lo, hi=args.hi)
        ends = verbs.bisect_range(study, lo=args.lo, hi=args.hi)
        ex = None
        if res is not None and args.explain:
            from gridtape.explain import explain

            ex = explain(res, study, predicate=verbs.predicate(args.until))
    if res is None:
        if args.json:
            emit({"found": False, "lo": ends[0], "hi": ends[1]})
        else:
            print(f"{args.journal}: the condition holds at seq {ends[0]} and seq {ends[1]} (the ends of the range) "
                  f"and wherever a recorded solve in it diverged; the points between were not all "
                  f"checked (give --hi a point where it fails)")
        return 0
    if args.json:
        out = {"found": True, "seq": res.seq, "tx": res.tx, "good_seq": res.good_seq, "author": res.author,
               "message": res.message, "materializations": res.materializations, "diff": records(res.diff)}
        if ex is not None:
            out["explain"] = ex.as_dict()
        emit(out)
    else:
        print(reprs.bisect_text(res))
        if ex is not None:
            print(str(ex))
    return 1


def cmd_convert(args) -> int:
    from gridtape import verbs

    fmt = verbs.convert(args.src, args.dst)
    emit({"path": args.dst, "format": fmt}) if args.json else print(f"written {args.dst} ({fmt})")
    return 0


def _parser():
    from gridtape import __version__

    ap = argparse.ArgumentParser(prog="gridtape", description="pandapower-exact power flow; every change is history")
    ap.add_argument("--version", action="version", version=f"gridtape {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def verb(name, func, help, journal=True):  # noqa: A002
        p = sub.add_parser(name, help=help, description=help)
        if journal:
            p.add_argument("journal", help="the study journal (a .duckdb file)")
        p.add_argument("--json", action="store_true", help="one JSON document on stdout, for scripts")
        p.set_defaults(func=func)
        return p

    d = sub.add_parser("demo", help="a short journaled study on IEEE118: edits by two authors, the one that breaks "
                       "convergence found by bisect, its diff, blame and margin")
    d.add_argument("--keep", metavar="DIR", help="keep the study's journal in DIR (default: a temporary directory)")
    d.set_defaults(func=cmd_demo)
    s = verb("solve", cmd_solve, "solve a case file (pandapower JSON, CSV-zip, MATPOWER .m); exit 1 if it diverges",
             journal=False)
    s.add_argument("case")
    s.add_argument("--qlim", action="store_true", help="enforce generator reactive limits")
    s.add_argument("--algorithm", choices=("nr", "dc"), default="nr")
    s.add_argument("--init", choices=("auto", "flat", "dc"), default=None)
    s.add_argument("--rows", type=int, default=20, help="bus rows to print")
    lg = verb("log", cmd_log, "the journal's events (or one line per transaction with --oneline)")
    lg.add_argument("--since", help="first seq or ISO time")
    lg.add_argument("--until", help="last seq or ISO time")
    lg.add_argument("--author")
    lg.add_argument("--kind", help="element kind (bus, load, line, ...)")
    lg.add_argument("--event", help="event name (set, add, remove, solve, tag, ...)")
    lg.add_argument("--oneline", action="store_true", help="one line per transaction: author, message, "
                    "changes, the outcome of the solve after it")
    lg.add_argument("--hash", action="store_true", help="show each event's hash (hex)")
    lg.add_argument("-n", "--rows", type=int, default=None, help="only the last N rows")
    sh = verb("show", cmd_show, "one transaction: its events and what it changed")
    sh.add_argument("tx", type=int)
    sh.add_argument("--hash", action="store_true")
    df = verb("diff", cmd_diff, "what turns point A into point B (seq, tag, ISO time or head); exit 1 if they differ")
    df.add_argument("a")
    df.add_argument("b", nargs="?", default="head")
    bl = verb("blame", cmd_blame, "the event that last set a cell")
    bl.add_argument("kind")
    bl.add_argument("id", type=int)
    bl.add_argument("field")
    bl.add_argument("--at", help="as of this point (default: the head)")
    at = verb("at", cmd_at, "the world at a point of history; --export writes it (.json, .zip, .m)")
    at.add_argument("point", nargs="?", default="head")
    at.add_argument("--export", metavar="FILE")
    at.add_argument("--solve", action="store_true", help="solve it; exit 1 if it diverges")
    tg = verb("tag", cmd_tag, "name the head of the study")
    tg.add_argument("name")
    tg.add_argument("--author")
    br = verb("branch", cmd_branch, "list branches, or start one (NAME) from a point")
    br.add_argument("name", nargs="?")
    br.add_argument("--at", help="the branch point (default: the head)")
    br.add_argument("--author")
    verb("verify", cmd_verify, "check the journal's hash chain; exit 1 if it is broken")
    rc = verb("recover", cmd_recover, "salvage every event that verifies into a new journal and report what "
              "was lost; exit 1 if anything was")
    rc.add_argument("-o", "--out", help="the new journal (default: JOURNAL.recovered)")
    rc.add_argument("--in-place", action="store_true", help="rename the journal's files to *.damaged-TIME "
                    "backups and write the recovered journal under its name")
    b = verb("bisect", cmd_bisect, "the first transaction after which a condition appears; exit 1 when found")
    b.add_argument("--until", nargs="+", default=["diverges"], metavar="COND",
                   help="diverges (default) | vm-outside LO HI | overload PCT | unsupplied")
    b.add_argument("--lo", help="first point of the range (default: the start)")
    b.add_argument("--hi", help="last point of the range (default: the head)")
    b.add_argument("--explain", action="store_true", help="why: the margin, the buses with the largest "
                   "mismatch, the changed elements near them")
    cv = verb("convert", cmd_convert, "read a case file and write it in another format (by extension)",
              journal=False)
    cv.add_argument("src")
    cv.add_argument("dst")
    from gridtape.cli_merge import add_merge_parsers
    from gridtape.studies.cli import add_timeseries_parser

    add_merge_parsers(verb)

    add_timeseries_parser(sub)
    return ap


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except GridtapeError as e:
        print(f"gridtape: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `gridtape log ... | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as e:  # a file that cannot be read or written
        print(f"gridtape: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
