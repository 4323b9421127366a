"""``gridtape revert``, ``gridtape cherry-pick`` and ``gridtape merge`` (the verbs that write a
new transaction into a study journal; gridtape/merge.py does the work).

Exit codes: 0 done (or nothing to change), 3 a conflict (nothing was written; the conflicts are
listed, ``--force`` takes the incoming side), 2 an error.
"""
from __future__ import annotations

import sys

from gridtape.errors import ConflictError

CONFLICT = 3  # the exit code of a conflict


def _run(args, call) -> int:
    from .cli import emit, records

    try:
        out = call()
    except ConflictError as e:
        if args.json:
            emit({"ok": False, "error": e.message.split(":\n")[0],
                  "conflicts": [c.as_dict() for c in e.conflicts]})
        else:
            print(f"gridtape: conflict: {e}", file=sys.stderr)
        return CONFLICT
    if args.json:
        emit({"ok": True, "tx": out["tx"], "seq": out["seq"], "message": out["message"],
              "changes": records(out["changes"])})
    elif out["tx"] is None:
        print(f"{args.journal}: nothing to change")
    else:
        ch = out["changes"]
        print(f"tx {out['tx']} (seq {out['seq']}): {out['message']}; {len(ch)} change(s)")
        for ev, kind, eid, field, old, new in ch.itertuples(index=False, name=None):
            print(f"  {ev} {kind} {eid}" + (f" {field}: {old} -> {new}" if ev in ("set", "network") else ""))
    return 0


def cmd_revert(args) -> int:
    from gridtape import verbs

    return _run(args, lambda: verbs.revert(args.journal, args.tx, force=args.force, author=args.author,
                                           message=args.message))


def cmd_cherry_pick(args) -> int:
    from gridtape import verbs

    return _run(args, lambda: verbs.cherry_pick(args.journal, args.tx, args.source, force=args.force,
                                                author=args.author, message=args.message))


def cmd_merge(args) -> int:
    from gridtape import verbs

    return _run(args, lambda: verbs.merge(args.journal, args.branch, force=args.force, author=args.author,
                                          message=args.message))


def add_merge_parsers(verb) -> None:
    """The three verbs, through the command's ``verb(name, func, help)`` (gridtape/cli.py)."""
    def common(p):
        p.add_argument("--force", action="store_true", help="apply over conflicts (the incoming side wins)")
        p.add_argument("--author")
        p.add_argument("-m", "--message", help="the new transaction's message")

    rv = verb("revert", cmd_revert, "undo any transaction with a new one (its inverse); exit 3 on a conflict "
              "with a later transaction")
    rv.add_argument("tx", type=int)
    common(rv)
    cp = verb("cherry-pick", cmd_cherry_pick, "apply a transaction of another branch here as a new one; "
              "exit 3 on a conflict")
    cp.add_argument("tx", type=int)
    cp.add_argument("--from", dest="source", required=True, metavar="BRANCH",
                    help="the branch it comes from: a branch name of JOURNAL or a journal path")
    common(cp)
    mg = verb("merge", cmd_merge, "merge a branch (a branch name of JOURNAL or a journal path) into JOURNAL "
              "as one transaction; exit 3 on a conflict")
    mg.add_argument("branch")
    common(mg)
