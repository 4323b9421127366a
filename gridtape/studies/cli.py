"""``gridtape timeseries JOURNAL PROFILES.parquet``: run profiles on a journal's head and record it.

PROFILES.parquet holds profiles in one of the forms ``read_profiles`` takes from a file: the wide
form (one column ``kind/field/id`` per profiled element, the steps in a ``step`` column -- what
``Profiles.to_arrow()`` writes -- or in the index pandas stores with ``df.to_parquet(path)``), or
the stored form a journal keeps."""
from __future__ import annotations


def add_timeseries_parser(sub):
    """Add the ``timeseries`` subcommand to an argparse subparsers object."""
    p = sub.add_parser("timeseries", help="run a time series (or sweep) of profiles on a journal's head and "
                                          "record it as a study event")
    p.add_argument("journal", help="the study journal (its head is the base point)")
    p.add_argument("profiles", help="a Parquet file: a step column and kind/field/id columns")
    p.add_argument("--out", default=None, help="output directory (default: beside the journal)")
    p.add_argument("--independent", action="store_true", help="a sweep: every step from the base state")
    p.add_argument("--outputs", nargs="*", default=None, help="result columns, e.g. res_bus.vm_pu")
    p.add_argument("--threads", type=int, default=None, help="run on a thread pool of this size (>= 1; 1: no pool)")
    p.add_argument("--author", default=None)
    p.add_argument("--progress", action="store_true", help="show a progress bar even when stderr is not a tty")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout, for scripts")
    p.set_defaults(func=cmd_timeseries)
    return p


def cmd_timeseries(args) -> int:
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    from gridtape import PowerGrid
    from gridtape.errors import CaseError, JournalError, OptionError

    if args.threads is not None and args.threads < 1:
        raise OptionError(f"--threads takes a number of threads >= 1, not {args.threads}", option="--threads")
    if not os.path.exists(args.journal):  # (opening it would create an empty journal)
        raise JournalError("no such journal (a study journal is made by a grid with journal=PATH)",
                           file=args.journal)
    if not os.path.isfile(args.profiles):
        raise CaseError("no such profiles file", file=args.profiles)
    try:
        pq.read_metadata(args.profiles)  # (its footer only: the profiles are read by the run)
    except (pa.ArrowException, OSError) as e:
        raise CaseError(f"not a Parquet file: {e}", file=args.profiles) from None
    grid = PowerGrid(journal=args.journal, author=args.author)
    try:
        ex = None
        if args.threads is not None and args.threads > 1:
            from concurrent.futures import ThreadPoolExecutor

            ex = ThreadPoolExecutor(args.threads)
        try:
            res = grid.timeseries(args.profiles, args.outputs, independent=args.independent, executor=ex,
                                  progress=True if args.progress else None, out_dir=args.out)
        finally:
            if ex is not None:
                ex.shutdown()
    finally:
        grid.close()
    conv = int(res.converged.sum())
    tx = _tx_of(args.journal, res.seq)
    if args.json:
        import json

        print(json.dumps({"steps": len(res), "converged": conv, "seq": res.seq, "tx": tx, "directory": res.directory,
                          "manifest": res.manifest, "seconds": res.seconds}))
        return 0 if conv == len(res) else 1
    print(f"{len(res)} steps, {conv} converged, {len(res) - conv} not; study event seq {res.seq} "
          f"(transaction {tx}); outputs in {res.directory}; {len(res) / max(res.seconds, 1e-9):.0f} steps/s")
    print(f"see it with: gridtape show {args.journal} {tx}   or   gridtape log {args.journal} --event study")
    return 0 if conv == len(res) else 1


def _tx_of(journal, seq) -> int:
    """The transaction of event ``seq`` (what ``gridtape show`` takes)."""
    import gridtape

    with gridtape.open(journal) as study:
        return int(study.log(since=seq, until=seq)["tx"].iloc[0])
