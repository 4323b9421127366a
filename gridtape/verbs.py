"""The history verbs behind ``gridtape log/show/diff/blame/at/tag/branch/bisect/convert`` and
``revert/cherry-pick/merge``, as Python.

Each function takes a :class:`~gridtape.study.Study` (or a journal path) and returns plain
data (DataFrames, dicts); :mod:`gridtape.cli` prints them.  Points of history are named the way
people name them: a seq (``26``), a tag (``baseline``), an ISO time (``2026-12-06T11:41``) or
``head``.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from gridtape.errors import CaseError, DependencyError, GridtapeError, JournalError

from .reprs import iso, transactions

EXPORTS = {".json": "pandapower JSON", ".zip": "CSV-zip", ".m": "MATPOWER"}


def _is_int(text) -> bool:
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        return True
    return isinstance(text, str) and text.strip().lstrip("-").isdigit()


def point(study, text) -> int:
    """The seq a point names: an int or digits (a seq), ``head`` (or None), a tag, or an ISO time."""
    if text is None or (isinstance(text, str) and text.strip().lower() == "head"):
        return study.head
    if _is_int(text):
        s = int(text)
        if s < 0 or s > study.head:
            raise JournalError(f"seq {s} is outside the journal (0..{study.head})", file=study.path, field="seq")
        return s
    text = str(text)
    tags = study.log(event="tag")
    if len(tags) and (tags["message"] == text).any():
        return study.seq_of(tag=text)
    try:
        pd.Timestamp(text)
    except (ValueError, TypeError):
        raise JournalError(f"{text!r} is neither a seq, a tag nor an ISO time", file=study.path,
                           field="point") from None
    return study.seq_of(time=text)


def bound(text):
    """A ``--since``/``--until`` value: an int seq or the ISO time text as given."""
    if text is None:
        return None
    return int(text) if _is_int(text) else str(text)


def log(study, since=None, until=None, author=None, kind=None, event=None) -> pd.DataFrame:
    """The journal's events with the filters of ``gridtape log`` (since/until: seq or ISO time)."""
    return study.log(since=bound(since), until=bound(until), author=author, kind=kind, event=event)


def oneline(study, since=None, until=None, author=None) -> pd.DataFrame:
    """One row per transaction (:func:`gridtape.reprs.transactions`), filtered by author and range.
    The solves that follow a transaction are read even when the range ends before them."""
    tx = transactions(study.log(since=bound(since), until=bound(until)))
    if author is not None:
        tx = tx[tx["author"] == author].reset_index(drop=True)
    return tx


def _world_at(study, seq):
    from gridtape.replay.materialize import materialize

    return materialize(study.journal, seq)[0]


def show(study, tx: int) -> dict:
    """One transaction: its summary row, its events, the diff of the world across it, and the
    studies it recorded (``studies``: gridtape.studies.record.study_summary of each, with its seq)."""
    import json

    from gridtape.replay.diff import diff_worlds

    events = study.log(tx=int(tx))
    if not len(events):
        raise JournalError(f"no transaction {tx}", file=study.path, field="tx")
    first, last = int(events.seq.iloc[0]), int(events.seq.iloc[-1])
    after = transactions(study.log(since=first, until=last + 64))  # with the solve that followed, if any
    summary = after[after["tx"] == int(tx)].iloc[0].to_dict()
    world_change = events["event"].isin(("set", "add", "remove", "network")).any()
    d = diff_worlds(_world_at(study, first - 1), _world_at(study, last)) if world_change and first > 0 \
        else pd.DataFrame(columns=["change", "kind", "id", "field", "old", "new"])
    studies = []
    if (events["event"] == "study").any():
        from gridtape.studies.record import study_summary

        for seq, info in zip(events["seq"][events["event"] == "study"], events["info"][events["event"] == "study"]):
            studies.append({"seq": int(seq), **study_summary(study.journal, json.loads(info))})
    return {"tx": int(tx), "summary": summary, "events": events, "diff": d, "studies": studies}


def diff(study, a, b) -> pd.DataFrame:
    """What turns point ``a`` into point ``b`` (each a seq, tag or ISO time)."""
    from gridtape.replay.diff import diff_worlds

    return diff_worlds(_world_at(study, point(study, a)), _world_at(study, point(study, b)))


def blame(study, kind, eid, field, at=None) -> dict:
    """Who last set a cell (at or before point ``at``): seq, tx, time (ISO), author, message,
    event, old, new."""
    r = study.blame(kind, eid, field, seq=None if at is None else point(study, at))  # checks kind, eid, field
    out = {k: r.get(k) for k in ("seq", "tx", "time", "author", "message", "event", "old", "new")}
    if out["event"] in ("add", "load") and out["new"] is None:
        out["new"] = _initial_value(study, r, kind, int(eid), field)
    out["time"] = iso(out["time"])
    out["seq"], out["tx"] = int(out["seq"]), int(out["tx"])
    return out


def _initial_value(study, row, kind, eid, field):
    """The value a cell was added with (an add event's info) or loaded with (the case load)."""
    import json

    if row.get("event") == "add":
        try:
            v = json.loads(row.get("info") or "{}").get(field)
        except (ValueError, AttributeError):
            return None
        return v
    t = _world_at(study, int(row["seq"]))[kind]
    if eid not in t.positions or field not in t.cols:
        return None
    v = t.cols[field][t.positions[eid]]
    return v.item() if hasattr(v, "item") else v


def export(world_or_grid, path) -> str:
    """Write a world (or a grid's world) to ``path`` by extension: ``.json`` pandapower JSON,
    ``.zip`` CSV-zip, ``.m`` MATPOWER (through pandapower's converter).  Returns the format."""
    from gridtape.grid import PowerGrid

    world = world_or_grid.world if isinstance(world_or_grid, PowerGrid) else world_or_grid
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".json":
        from gridtape.world.io_json import write_pandapower_json

        write_pandapower_json(world, path)
    elif ext == ".zip":
        from gridtape.world.io_csvzip import write_csv_zip

        write_csv_zip(world, path)
    elif ext == ".m":
        try:
            from pandapower.converter.matpower import to_mpc
        except ImportError:
            raise DependencyError("MATPOWER export goes through pandapower's converter: pip install "
                                  "pandapower (or export .json / .zip)", file=path) from None
        from gridtape.world.io_matpower import write_matpower

        import warnings

        net = PowerGrid(world=world.copy(), journal=False).to_pandapower()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mpc = to_mpc(net, init="flat")["mpc"]
        write_matpower(mpc, path)
    else:
        raise CaseError(f"unknown export extension {ext or '(none)'!r}; known: "
                        + ", ".join(f"{k} ({v})" for k, v in EXPORTS.items()), file=path)
    return EXPORTS[ext]


def convert(src, dst) -> str:
    """Read a case file (any reader) and write it in the format ``dst``'s extension names."""
    from gridtape.world.io import load_case

    return export(load_case(src), dst)


def predicate(until=None):
    """The bisect predicate (what must hold) for ``--until``: ``("diverges",)`` (default: the AC
    power flow converges), ``("vm-outside", LO, HI)`` (converges, every supplied bus within
    [LO, HI] p.u.), ``("overload", PCT)`` (converges, no line or transformer above PCT %),
    ``("unsupplied",)`` (converges, every in-service load's bus supplied)."""
    until = tuple(until or ("diverges",))
    name = until[0]
    if name == "diverges" and len(until) == 1:
        return lambda g: g.solve().converged
    if name == "vm-outside" and len(until) == 3:
        lo, hi = float(until[1]), float(until[2])

        def vm_ok(g):
            if not g.solve().converged:
                return False
            vm = g.res_bus.vm_pu.to_numpy()
            vm = vm[np.isfinite(vm)]
            return bool(((vm >= lo) & (vm <= hi)).all())

        return vm_ok
    if name == "overload" and len(until) == 2:
        pct = float(until[1])

        def load_ok(g):
            if not g.solve().converged:
                return False
            for kind in ("line", "trafo", "trafo3w"):
                if len(g.world[kind]):
                    lp = g.result(kind)["loading_percent"].to_numpy()
                    if np.nanmax(lp, initial=0.0) > pct:
                        return False
            return True

        return load_ok
    if name == "unsupplied" and len(until) == 1:
        def supplied(g):
            if not g.solve().converged:
                return False
            ld = g.world["load"]
            buses = ld.cols["bus"][ld.cols["in_service"]]
            vm = g.res_bus.vm_pu
            return bool(np.isfinite(vm.reindex(buses).to_numpy()).all())

        return supplied
    raise GridtapeError("--until is one of: diverges | vm-outside LO HI | overload PCT | unsupplied",
                        field="until")


def bisect(study, until=None, lo=None, hi=None):
    """``study.bisect`` with an ``--until`` condition (see :func:`predicate`); lo/hi are points.
    A progress bar counts the points solved (on a terminal)."""
    from .progress import bar

    lo = None if lo is None else point(study, lo)
    hi = None if hi is None else point(study, hi)
    pred = predicate(until)
    n = len(study.points(lo, hi))
    with bar(total=2 + int(np.ceil(np.log2(max(n, 2)))), desc="bisect") as b:
        def counted(g):
            ok = pred(g)
            b.update()
            return ok

        return study.bisect(counted, lo=lo, hi=hi)


def bisect_range(study, lo=None, hi=None) -> tuple:
    """The first and last point (seqs) bisect works on for ``--lo`` / ``--hi``."""
    pts = study.points(None if lo is None else point(study, lo), None if hi is None else point(study, hi))
    return (int(pts[0]), int(pts[-1])) if len(pts) else (None, None)


def tag(path, name, author=None) -> int:
    """Name the head of the study at ``path``; returns the tag's seq."""
    import gridtape as gt

    if not os.path.exists(path):  # (opening it would create an empty journal)
        raise JournalError("journal file does not exist", file=str(path))
    with gt.PowerGrid(journal=str(path), author=author) as grid:
        grid.tag(str(name), author=author)  # an existing tag is refused (nothing written)
    with gt.open(path) as study:
        return study.seq_of(tag=str(name))


def branch(path, name, at=None, author=None) -> dict:
    """Start branch ``name`` of the study at ``path`` from point ``at`` (default: the head)."""
    import gridtape as gt

    with gt.open(path, read_only=False) as study:
        s = point(study, at)
        g = study.branch(s, name, author=author)
        try:
            out = {"name": name, "seq": s, "path": g.journal.path}
        finally:
            g.close()
    return out


# --- revert, cherry-pick, merge: a writer grid on the journal (gridtape/merge.py) ---------------------
def _written(grid, tx) -> dict:
    """What a revert, cherry-pick or merge wrote: ``{"tx", "seq", "message", "changes"}`` (None tx:
    nothing to change)."""
    if tx is None:
        return {"tx": None, "seq": None, "message": None, "changes": pd.DataFrame(
            columns=["event", "kind", "eid", "field", "old", "new"])}
    ev = grid.journal.log(tx=int(tx))
    world = ev[ev["event"].isin(("set", "add", "remove", "network"))]
    return {"tx": int(tx), "seq": int(ev["seq"].iloc[-1]), "message": ev["message"].iloc[-1],
            "changes": world[["event", "kind", "eid", "field", "old", "new"]].reset_index(drop=True)}


def revert(path, tx, force=False, author=None, message=None) -> dict:
    """``grid.revert(tx)`` on the study at ``path`` (a writer grid at its head)."""
    import gridtape as gt

    with gt.PowerGrid(journal=str(path), author=author) as grid:
        return _written(grid, grid.revert(int(tx), force=force, message=message, author=author))


def cherry_pick(path, tx, source, force=False, author=None, message=None) -> dict:
    """``grid.cherry_pick(tx, source)`` on the study at ``path``; ``source`` is a branch name of it
    or a journal path."""
    import gridtape as gt

    with gt.PowerGrid(journal=str(path), author=author) as grid:
        return _written(grid, grid.cherry_pick(int(tx), source, force=force, message=message, author=author))


def merge(path, branch, force=False, author=None, message=None) -> dict:
    """``grid.merge(branch)`` on the study at ``path``; ``branch`` is a branch name of it or a
    journal path (a branch, its parent, or a sibling branch)."""
    import gridtape as gt

    with gt.PowerGrid(journal=str(path), author=author) as grid:
        return _written(grid, grid.merge(branch, force=force, message=message, author=author))
