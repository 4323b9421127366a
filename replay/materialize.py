"""Materialize: the world a journal describes at a point of history -- the one function that
builds a world from a journal (``study.at``, ``PowerGrid`` resuming a journal, bisect, branch).

The newest intact snapshot at or before the point (after the last case load) plus the events
after it (replay/tail.py, replay/events.py), or the case load plus every event when there is no snapshot.
"""
from __future__ import annotations

import json
import os
import warnings

from gridtape.errors import GridtapeError, JournalError, SnapshotCorruptError, SnapshotFallbackWarning

from .events import apply_events
from .tail import apply_tail, fetch_tail

SNAPSHOT_SUFFIX = ".snapshots"


def snapshot_dir(journal_path) -> str | None:
    """The default snapshot directory of a journal file (beside it); None for in-memory journals."""
    return None if journal_path is None else str(journal_path) + SNAPSHOT_SUFFIX


def _resolve(directory, journal_path):
    if directory is None or os.path.isabs(directory) or "://" in directory or journal_path is None:
        return directory
    return os.path.join(os.path.dirname(os.path.abspath(str(journal_path))), directory)


def _fetch(j, sql, params=()):
    """Rows of a query over the journal's events (brought up to date first)."""
    src = j._source()
    return j._con.execute(sql.format(events=src), list(params)).fetchall()


def tx_end(j, seq: int) -> int:
    """The last seq of the transaction that contains ``seq``: points of history are transaction
    boundaries, so a seq inside an edit block stands for the state after the whole block."""
    got = _fetch(j, "SELECT max(seq) FROM {events} WHERE tx = (SELECT tx FROM {events} WHERE seq = ?)", [int(seq)])
    return int(got[0][0]) if got and got[0][0] is not None else int(seq)


def materialize(j, seq=None, *, use_snapshots=True):
    """The world of journal ``j`` after event ``seq`` (None: the head) and the seq it reflects:
    the last seq of the transaction containing ``seq`` (never half a transaction)."""
    head = j.last_seq
    if head < 0:
        raise JournalError("the journal is empty", file=j.path)
    seq = head if seq is None else int(seq)
    if seq < 0 or seq > head:
        raise JournalError(f"seq {seq} is outside the journal (0..{head})", file=j.path, field="seq")
    seq = tx_end(j, seq)
    # the last case load at or before seq and the snapshots after it, newest first (one query)
    marks = _fetch(j, "SELECT seq, event, info FROM {events} WHERE event IN ('load', 'snapshot') AND seq <= ? "
                      "ORDER BY seq DESC", [seq])
    loads = [i for i, (_, event, _) in enumerate(marks) if event == "load"]
    if not loads:
        raise JournalError(f"no case load at or before seq {seq}", file=j.path, row=seq)
    load_seq = int(marks[loads[0]][0])
    world, base = None, None
    if use_snapshots:
        snaps = [(sseq, info) for sseq, _, info in marks[: loads[0]]]
        for sseq, info in snaps:
            meta = json.loads(info)
            if int(meta["covers"]) < load_seq:
                continue  # it covers a world from before that case load: not a starting point
            try:
                from .snapshot import read_snapshot

                # trusted only as the journal committed it (its manifest's sha256; older journals
                # did not record it: trusted on its own checksums, as before)
                world, _ = read_snapshot(_resolve(meta["dir"], j.path), meta["id"], expect=meta.get("manifest"))
                base = int(meta["covers"])
                break
            except (SnapshotCorruptError, GridtapeError, OSError) as e:
                where = _resolve(meta.get("dir"), j.path)
                warnings.warn(SnapshotFallbackWarning(
                    f"snapshot {meta.get('id')} (seq {sseq}) is unusable, falling back to an older point: {e}",
                    file=where, snapshot=meta.get("id"), row=int(sseq), error=e), stacklevel=2)
    if world is None:
        world = apply_events(None, j.log(since=load_seq, until=load_seq), j.get_blob)
        base = load_seq
    if seq > base:
        world = apply_tail(world, fetch_tail(j, base + 1, seq), j.get_blob)
    return world, seq
