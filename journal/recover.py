"""``Journal.recover(path)``: salvage every event of a damaged journal that verifies.

A damaged journal refuses to open (JournalCorruptError naming the file and the offset, or the
first bad row) and nothing in it is changed.  Recovery reads it (never writes it), keeps

* the rows in DuckDB up to the first row that does not verify (``verify()``'s checks), cut back
  to the last whole transaction;
* then the segment frames that verify (checksum and rows) and continue the numbering, in seq
  order, from both segment files, stopping at the first gap;

writes them into a new journal (blobs and meta copied), checks it with ``verify()``, and
writes a report (JSON) of what was kept and what was lost: each damaged byte range with its file
and offset, each run of rows or frames left out, the number of events lost.  ``in_place=True``
first renames the journal's files to ``<file>.damaged-<UTC time>`` (the backup, kept) and
writes the recovered journal under the original path.  See docs/journal.md, "Recovery".
"""
from __future__ import annotations

import datetime
import json
import os

import pyarrow as pa

from ..errors import JournalCorruptError, JournalError
from . import ack, db
from . import frames as _frames
from .chain import ZERO
from .segment import MAGICS, Segment
from .verify import Checker

SEGMENTS = (".seg", ".seg2")


def _scan_all(data: bytes, name):
    """Every frame of a segment's bytes that verifies, wherever it is, and the byte ranges that
    are not whole frames: ``(frames, bad)``; ``bad`` holds ``(offset, length)``."""
    mv, off, found, bad = memoryview(data), 0, [], []
    while off < len(data):
        got = _frames.scan(mv, off)
        if got is not None:
            end, n, first, last, last_tx, last_ts, prev, last_hash = got
            found.append(((first, last, last_tx, last_ts, prev, last_hash, n), data[off:end], name, off))
            off = end
            continue
        nxt = [a for a in (data.find(m, off + 1) for m in MAGICS) if a != -1]
        while nxt:
            at = min(nxt)
            if _frames.scan(mv, at) is not None:
                break
            nxt = [a for a in (data.find(m, at + 1) for m in MAGICS) if a != -1]
        else:
            at = len(data)
        bad.append((off, (min(nxt) if nxt else len(data)) - off))
        off = min(nxt) if nxt else len(data)
    return found, bad


def _duckdb_prefix(con, path, report):
    """The rows of ``events`` that verify, cut back to the last whole transaction."""
    checker, bad_row = Checker(path), None
    try:
        for rb in db.batches(con, "SELECT * FROM events ORDER BY seq", 65536):
            checker.check(pa.Table.from_batches([rb]))
        checker.finish()
    except JournalCorruptError as e:
        bad_row = e.row
        report["duckdb_damage"] = {"row": e.row, "why": e.message}
    total = int(db.one(con, "SELECT count(*) FROM events")[0])
    if bad_row is None:
        keep = total
    else:
        keep = int(bad_row)
        t = db.fetch(con, f"SELECT seq, tx, event FROM events ORDER BY seq LIMIT {keep + 1}").to_pydict()
        txs, ev = t["tx"], t["event"]
        # the last kept transaction is whole when it ends with its commit row, or is one row that
        # the next (bad) row does not continue
        while keep > 0 and ev[keep - 1] != "commit" and (
                (keep >= 2 and txs[keep - 2] == txs[keep - 1]) or (keep < len(txs) and txs[keep] == txs[keep - 1])):
            tx = txs[keep - 1]
            while keep > 0 and txs[keep - 1] == tx:
                keep -= 1
    table = db.fetch(con, f"SELECT * FROM events ORDER BY seq LIMIT {keep}")
    return table, total - keep, bad_row is not None


def recover(path, out=None, *, in_place=False) -> dict:
    """Salvage every event of the journal at ``path`` that verifies into a new journal (``out``,
    default ``<path>.recovered``; or ``path`` itself with ``in_place=True``, after renaming the
    journal's files to backups).  Returns the report, also written to ``<out>.recovery.json``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise JournalError("no journal at this path", file=path)
    if in_place:
        out = path
    out = os.fspath(out) if out is not None else path + ".recovered"
    if not in_place and any(os.path.exists(out + s) for s in ("", ack.SUFFIX) + SEGMENTS):
        raise JournalError("the recovered journal's path exists already; pass another out=", file=out)
    segs = [Segment(path + s, True, path) for s in SEGMENTS]  # shared locks: no writer may be open
    report = {"journal": path, "recovered": out, "damaged": [], "left_out": [],
              "time": datetime.datetime.now(datetime.timezone.utc).isoformat()}
    try:
        con = db.connect(path, True)
        try:
            db.check(con, path)
            table, lost_db, db_damaged = _duckdb_prefix(con, path, report)
            blobs = db.fetch(con, "SELECT * FROM blobs")
            meta = db.meta(con)
        finally:
            con.close()
        acked, fault = ack.read(path, meta.get("created"))
        had_segs = any(seg._f is not None for seg in segs)
        if fault is not None and ((meta.get(ack.MARK) == "1" and had_segs) or fault not in (ack.MISSING, ack.FOREIGN)):
            report["ack_damage"] = {"file": path + ack.SUFFIX, "why": fault}  # loss past the frames untold
        next_seq, lost_frames = table.num_rows, 0
        head = bytes(table.column("hash")[-1].as_py()) if next_seq else ZERO
        frames, sizes = [], {}
        for seg in segs:
            if seg._f is None:
                continue
            data = os.pread(seg._f.fileno(), os.fstat(seg._f.fileno()).st_size, 0)
            sizes[seg.path] = len(data)
            got, bad = _scan_all(data, seg.path)
            for off, n in bad:  # at_end: possibly a torn append that was never acknowledged
                entry = {"file": seg.path, "offset": off, "bytes": n, "at_end": off + n == len(data)}
                if n >= 20 and data[off:off + 4] in MAGICS:  # what its header declares
                    entry["events"] = int.from_bytes(data[off + 8:off + 12], "little")
                    entry["first_seq"] = int.from_bytes(data[off + 12:off + 20], "little", signed=True)
                    lost_frames += entry["events"]
                report["damaged"].append(entry)
            frames += got
        frames.sort(key=lambda f: f[0][0])
        keep = []
        for (first, last, last_tx, last_ts, prev, last_hash, n), frame, name, off in frames:
            if last < next_seq:
                continue  # already in DuckDB (a crash between the move and the truncate)
            if db_damaged or first != next_seq or (prev is not None and prev != head):
                lost_frames += n
                report["left_out"].append({"file": name, "offset": off, "first_seq": first, "last_seq": last,
                                           "why": "does not continue the salvaged rows (a gap before it)"})
                continue
            keep.append(frame)
            next_seq, head = last + 1, last_hash
        if in_place:
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
            report["backup"] = []
            for s in ("", ".wal", ack.SUFFIX) + SEGMENTS:
                if os.path.exists(path + s):
                    os.replace(path + s, f"{path}{s}.damaged-{stamp}")
                    report["backup"].append(f"{path}{s}.damaged-{stamp}")
    finally:
        for seg in segs:
            seg.close()
    ack.create(out, meta.get("created"), False, [(-1, 0), (-1, 0)]).close()  # before the mark below
    meta[ack.MARK] = "1"
    con = db.connect(out, False)
    try:
        db.create(con, out)
        con.execute("DELETE FROM meta")
        con.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
        if table.num_rows:
            db.insert(con, table, out)
        if keep:
            tail, _ = db.frames_table(keep, bytes(table.column("hash")[-1].as_py()) if table.num_rows else ZERO)
            db.insert(con, tail, out)
        if blobs.num_rows:
            con.register("_gt_blobs", blobs)
            con.execute("INSERT INTO blobs SELECT * FROM _gt_blobs")
            con.unregister("_gt_blobs")
    finally:
        con.close()
    from .store import Journal
    with Journal(out, read_only=True) as j:
        report["events_kept"] = j.verify()
    if lost_db:
        report["left_out"].insert(0, {"file": path, "first_seq": table.num_rows, "rows": lost_db,
                                      "why": report["duckdb_damage"]["why"]})
    report["events_lost"] = lost_db + lost_frames
    if acked is not None and acked.binding() and acked.seq >= next_seq:  # acknowledged, not found
        k = acked.slot
        report["missing"] = {"file": path + SEGMENTS[k], "acknowledged_seq": acked.seq,
                             "acknowledged_bytes": acked.slots[k][1], "bytes": sizes.get(path + SEGMENTS[k], 0),
                             "first_seq": next_seq,
                             "why": "acknowledged events are not in the journal (a segment was truncated)"}
        report["events_lost"] = max(report["events_lost"], acked.seq + 1 - next_seq)
    report["ok"] = not report["damaged"] and not report["events_lost"] and "missing" not in report \
        and "ack_damage" not in report
    with open(out + ".recovery.json", "w") as f:
        json.dump(report, f, indent=1, sort_keys=True)
        f.write("\n")
    return report
