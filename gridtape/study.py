"""A study: one journal seen as a history that can be travelled.

``gridtape.open(path)`` gives a :class:`Study`.  ``study.at(seq)`` (or ``time=``, ``tag=``) is a
read-only PowerGrid with the world as of that event: the newest intact snapshot at or before it
plus the tail of events (or the case load plus every event when there is no snapshot).
``study.bisect()`` finds the first transaction after which a predicate (default: the solve
converges) turns false, with O(log n) materializations; ``study.blame()`` names the event that last
set a cell; ``study.branch()`` starts a new line of history from a past point; ``revert``,
``cherry_pick`` and ``merge`` (a study opened writable) add a transaction at the head.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gridtape.errors import BadReferenceError, JournalError, SchemaError

from gridtape.replay.materialize import SNAPSHOT_SUFFIX, _fetch, _resolve, materialize, snapshot_dir, tx_end  # noqa: F401


def seq_arg(v, name="seq", table=None, what="an integer (a seq)"):
    """``v`` as an int (an integer, an integral float or its digits), SchemaError naming ``name``
    otherwise (``2.5`` is not truncated to 2, ``"abc"`` is not a seq: ``at(tag="abc")``)."""
    import numbers

    if isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) and float(v).is_integer():
        return int(v)
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    hint = " (a tag or a time: at(tag=...), at(time=...))" if name == "seq" and isinstance(v, str) else ""
    raise SchemaError(f"{name} must be {what}, not {v!r}{hint}", table=table, field=name)


@dataclass
class BisectResult:
    """The first transaction after which the predicate is false."""

    seq: int  # last seq of that transaction (the first bad point)
    tx: int
    good_seq: int  # the last good point before it
    author: str | None
    message: str | None
    events: pd.DataFrame  # the transaction's rows
    diff: pd.DataFrame  # what it changed in the world (replay.diff.diff_worlds)
    materializations: int

    def __str__(self):
        lines = [f"first bad point: seq {self.seq} (tx {self.tx}, author {self.author!r}, message {self.message!r}); "
                 f"last good point: seq {self.good_seq}; {self.materializations} materializations"]
        ev = self.events[["seq", "event", "kind", "eid", "field", "old", "new"]]
        lines.append(ev.to_string(index=False))
        if len(self.diff):
            lines.append("diff:")
            lines.append(self.diff.to_string(index=False))
        return "\n".join(lines)


class Study:
    """A journal's history: points (``at``), branches, blame and bisect."""

    def __init__(self, journal, snapshots=None):
        from gridtape.journal import Journal

        self.journal = journal if isinstance(journal, Journal) else Journal(str(journal), read_only=True)
        self.path = self.journal.path
        self.snapshots = snapshots or snapshot_dir(self.path)

    def close(self):
        self.journal.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # --- points -----------------------------------------------------------------------------------
    @property
    def head(self) -> int:
        return self.journal.last_seq

    def seq_of(self, seq=None, time=None, tag=None) -> int:
        """The point of history named by a seq, a time or a tag: the last seq of the transaction
        that holds it (points are transaction boundaries, never half an edit block)."""
        s = self._named(seq, time, tag)
        return tx_end(self.journal, s) if 0 <= s <= self.head else s

    def _named(self, seq, time, tag) -> int:
        j = self.journal
        if sum(x is not None for x in (seq, time, tag)) > 1:
            raise JournalError("give one of seq, time, tag", field="seq")
        if tag is not None:
            got = _fetch(j, "SELECT max(seq) FROM {events} WHERE event = 'tag' AND message = ?", [str(tag)])
            if not got or got[0][0] is None:
                raise JournalError(f"no tag {tag!r}", file=self.path, field="tag")
            return int(got[0][0])
        if time is not None:
            log_until = j.log(until=time)
            if not len(log_until):
                raise JournalError(f"nothing was recorded at or before {time}", file=self.path, field="time")
            return int(log_until.seq.iloc[-1])
        return self.head if seq is None else seq_arg(seq)

    def world_at(self, seq=None, time=None, tag=None):
        return materialize(self.journal, self.seq_of(seq, time, tag))[0]

    def at(self, seq=None, time=None, tag=None, **grid_kwargs):
        """A read-only PowerGrid with the world as of that event (``solve()`` works on it)."""
        from gridtape.grid import PowerGrid

        s = self.seq_of(seq, time, tag)
        g = PowerGrid(world=materialize(self.journal, s)[0], journal=False, read_only=True, **grid_kwargs)
        g.study_seq = s
        return g

    def log(self, **kw):
        return self.journal.log(**kw)

    # --- blame --------------------------------------------------------------------------------------
    def blame(self, kind, eid, field, seq=None):
        """The event that last set ``kind`` ``eid`` ``field`` (at or before ``seq``): a Series with
        seq, tx, time, author, message (the transaction's), event, old, new.  A cell never written
        since the case was loaded: the (last) load event.  An unknown kind or field: SchemaError; an
        element that did not exist at or before that point: BadReferenceError."""
        from gridtape.world.schema import KINDS

        if kind not in KINDS:
            raise SchemaError(f"unknown element kind {kind!r}; known: {', '.join(KINDS)}", table=kind, row=eid,
                              field=field)
        if field not in KINDS[kind]:
            raise SchemaError(f"{kind} has no field {field!r}", table=kind, row=eid, field=field)
        eid = seq_arg(eid, "eid", table=kind, what="an element id (an integer)")
        point = self.head if seq is None else seq_arg(seq)
        if not 0 <= point <= self.head:
            raise JournalError(f"seq {point} is outside the journal (0..{self.head})", file=self.path, field="seq")
        point = tx_end(self.journal, point)  # as of the end of the transaction containing seq
        h = self.journal.history(kind, eid, field)
        h = h[h.seq <= point]
        sets = h[h.event.isin(("set", "add"))]
        if not len(sets):  # never written since the case was loaded
            if not len(h) and eid not in materialize(self.journal, point)[0][kind]:
                raise BadReferenceError(f"no {kind} {eid} at seq {point} or before it", file=self.path,
                                        table=kind, row=eid, field=field)
            loads = self.journal.log(event="load", until=point)
            if not len(loads):
                raise JournalError(f"no event set {kind} {eid} {field}", table=kind, row=eid, field=field)
            return loads.iloc[-1]
        row = sets.iloc[-1].copy()
        tx = self.journal.log(tx=int(row.tx))
        if len(tx) > 1 and tx.event.iloc[-1] in ("commit",):
            row["message"] = tx.message.iloc[-1]
            row["author"] = tx.author.iloc[-1]
        return row

    # --- bisect -------------------------------------------------------------------------------------
    def points(self, lo=None, hi=None) -> np.ndarray:
        """The seqs at which the world changes: the last row of each transaction with a world event."""
        rows = _fetch(self.journal, "SELECT max(seq) FROM {events} GROUP BY tx HAVING bool_or(event IN "
                      "('load','set','add','remove','network')) ORDER BY 1")
        pts = np.array([r[0] for r in rows], dtype=np.int64)
        if lo is not None:
            pts = pts[pts >= int(lo)]
        if hi is not None:
            pts = pts[pts <= int(hi)]
        return pts

    def bisect(self, predicate=None, lo=None, hi=None) -> BisectResult | None:
        """The first point (end of a transaction) in [lo, hi] at which ``predicate(grid)`` is false,
        given that it holds at ``lo`` (default: the first point, the case load) -- the default
        predicate is "the AC power flow converges".

        Like ``git bisect`` it needs a point where the predicate is false: ``hi`` (default: the
        last point), or, when it holds there (a later edit fixed the case), the first point in the
        range whose recorded solve diverged (checked with the predicate itself); from there it
        finds the first point at which the predicate turned false.  None when the predicate holds
        at ``hi`` and at every such point: the points between were not all checked (give as
        ``hi`` a point where it is false)."""
        pred = predicate or (lambda g: g.solve().converged)
        pts = self.points(lo, hi)
        if not len(pts):
            raise JournalError("no point of history in that range", file=self.path)
        count = [0]

        def ok(i):
            count[0] += 1
            return bool(pred(self.at(int(pts[i]))))

        if not ok(0):
            raise JournalError(f"the predicate is already false at seq {int(pts[0])} (the start of the range)",
                               file=self.path, row=int(pts[0]))
        b = len(pts) - 1
        if ok(b):
            b = next((i for i in self._diverged_points(pts) if not ok(i)), None)
            if b is None:
                return None
        a = 0  # ok(a) and not ok(b)
        while b - a > 1:
            m = (a + b) // 2
            if ok(m):
                a = m
            else:
                b = m
        from gridtape.replay.diff import diff_worlds

        bad, good = int(pts[b]), int(pts[a])
        tx = int(_fetch(self.journal, "SELECT tx FROM {events} WHERE seq = ?", [bad])[0][0])
        events = self.journal.log(tx=tx)
        first = int(events.seq.iloc[0])
        before = materialize(self.journal, first - 1)[0] if first > 0 else None
        after = materialize(self.journal, bad)[0]
        d = diff_worlds(before, after) if before is not None else pd.DataFrame()
        last = events.iloc[-1]
        return BisectResult(bad, tx, good, last.author, last.message, events, d, count[0])

    def _diverged_points(self, pts, most=3):
        """Indexes into ``pts`` (points, ascending) of the first ``most`` points after ``pts[0]``
        whose world a recorded solve found diverging (a solve event at seq s solved the world of
        the last point at or before s)."""
        end = int(pts[-1])
        nxt = self.points(end + 1)
        stop = int(nxt[0]) - 1 if len(nxt) else None  # solves before the next point see pts[-1]'s world
        sql = "SELECT seq FROM {events} WHERE event = 'solve' AND new_i = 0 AND seq > ?"
        args = [int(pts[0])]
        if stop is not None:
            sql += " AND seq <= ?"
            args.append(stop)
        seqs = np.array([r[0] for r in _fetch(self.journal, sql + " ORDER BY seq", args)], dtype=np.int64)
        idx = np.unique(np.searchsorted(pts, seqs, side="right") - 1)
        return [int(i) for i in idx[idx > 0][:most]]

    # --- branches -----------------------------------------------------------------------------------
    def branch(self, seq, name, path=None, author=None):
        """A new line of history from point ``seq``: a new journal (``path``, default beside this
        one) that starts with the world as of ``seq``; this journal records the branch.  Returns the
        branch's PowerGrid (writable)."""
        from gridtape.grid import PowerGrid

        if self.journal.read_only:
            raise JournalError("branching records an event: open the study writable "
                               "(gridtape.open(path, read_only=False))", file=self.path)
        s = self.seq_of(seq)
        if path is None:
            if self.path is None:
                raise JournalError("an in-memory study needs an explicit branch path", field="path")
            root, ext = os.path.splitext(str(self.path))
            path = f"{root}.{name}{ext or '.duckdb'}"
        world = materialize(self.journal, s)[0]
        g = PowerGrid(world=world, journal=str(path), author=author,
                      _load_info={"parent": self.path, "parent_seq": s, "branch": name})
        info = json.dumps({"name": name, "seq": s, "path": str(path)}, separators=(",", ":"))
        j = self.journal
        j.begin(author=author, message=f"branch {name}")
        j.record("branch", None, None, None, None, None, info)
        j.commit()
        return g

    # --- revert, cherry-pick, merge (gridtape/merge.py): a writer grid at the head -------------------
    def _writer(self, what, author):
        from gridtape.grid import PowerGrid

        if self.journal.read_only:
            raise JournalError(f"{what} records a transaction: open the study writable "
                               "(gridtape.open(path, read_only=False))", file=self.path)
        return PowerGrid(journal=self.journal, author=author)

    def revert(self, tx, *, force=False, message=None, author=None):
        """``PowerGrid.revert`` at the head of this study (open it writable); returns the new tx."""
        return self._writer("revert()", author).revert(tx, force=force, message=message, author=author)

    def cherry_pick(self, tx, source=None, *, force=False, message=None, author=None):
        """``PowerGrid.cherry_pick`` at the head of this study (open it writable)."""
        return self._writer("cherry_pick()", author).cherry_pick(tx, source, force=force, message=message,
                                                                 author=author)

    def merge(self, branch, *, force=False, message=None, author=None):
        """``PowerGrid.merge`` at the head of this study (open it writable)."""
        return self._writer("merge()", author).merge(branch, force=force, message=message, author=author)

    def branches(self) -> pd.DataFrame:
        log = self.journal.log(event="branch")
        rows = [dict(json.loads(i), created=t, author=a) for i, t, a in zip(log["info"], log["time"], log["author"])]
        return pd.DataFrame(rows, columns=["name", "seq", "path", "created", "author"])
