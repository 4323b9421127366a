"""Readable history: the journal's frames, transactions, diffs and bisect results as people read them.

Everything here takes the public DataFrames (``study.log()``, ``gridtape.diff()``, a bisect
result) and returns new frames or text; nothing reaches into the journal.

- :func:`readable_log`: a log frame with ISO times, no nanosecond stamps, the hash dropped (or as
  hex), and the solve details (iterations, mismatch, rebuild) as columns;
- :func:`transactions`: one row per transaction (author, message, what it changed, and the outcome
  of the solve that followed it) -- ``gridtape log --oneline``;
- :func:`change_line`, :func:`diff_lines`: one line per diff row;
- :func:`bisect_text`: ``str(study.bisect())`` in a few lines.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

WIDTH = 80
WORLD = ("load", "set", "add", "remove", "network")
SOLVE_FIELDS = ("iterations", "mismatch", "rebuild", "runtime_ms")


def iso(t, ms: bool = True) -> str | None:
    """A timestamp as ISO 8601 UTC text (``2026-12-06T11:41:33.196Z``); None for a missing one."""
    if t is None or t is pd.NaT or (isinstance(t, float) and np.isnan(t)):
        return None
    t = pd.Timestamp(t)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{t.microsecond // 1000:03d}" if ms else "") + "Z"


def _solve_info(info) -> dict:
    try:
        d = json.loads(info) if isinstance(info, str) else {}
    except ValueError:
        d = {}
    return d if isinstance(d, dict) else {}


def readable_log(log: pd.DataFrame, hash: bool = False, info: bool = False) -> pd.DataFrame:  # noqa: A002
    """A copy of a log frame for reading: ``time`` as ISO text, ``ts_ns`` dropped, ``hash``
    dropped (``hash=True``: as hex), ``info`` dropped unless asked, and for solve events the
    columns iterations, mismatch and rebuild (empty on other rows)."""
    out = log.drop(columns=[c for c in ("ts_ns", "hash", "info") if c in log.columns]).copy()
    if "time" in out.columns:
        out["time"] = _iso_column(log["time"].to_numpy())
    if "info" in log.columns and "event" in log.columns:
        solves = (log["event"] == "solve").to_numpy()
        details = [_solve_info(i) if s else {} for i, s in zip(log["info"], solves)]
        out["iterations"] = pd.array([d.get("iterations") for d in details], dtype="Int64")
        out["mismatch"] = np.array([d.get("mismatch", np.nan) for d in details], dtype=float)
        out["rebuild"] = np.array([d.get("rebuild") for d in details], dtype=object)
        if info:
            out["info"] = log["info"].to_numpy()
    if hash and "hash" in log.columns:
        out["hash"] = [h.hex() if isinstance(h, (bytes, bytearray)) else h for h in log["hash"]]
    return out


_CHANGES = ("set", "add", "remove", "network")
_MARKERS = ("tag", "branch", "snapshot", "undo", "redo", "study")


def _iso_column(times) -> np.ndarray:
    """ISO text (millisecond precision, ``Z``) of a datetime column, vectorized."""
    t = pd.to_datetime(pd.Series(times), utc=True)
    text = t.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str.slice(0, 23) + "Z"
    return text.where(t.notna(), None).to_numpy(dtype=object)


def transactions(log: pd.DataFrame) -> pd.DataFrame:
    """One row per transaction of a log frame: tx, first_seq, seq (its last event), time (ISO),
    author, message, what ("load case", "2 set", "tag", ...), changes (count of world events), and
    the solve that followed it before the next world change: solve ("converged" / "diverged" /
    None), iterations, mismatch.  Transactions that are only a solve are folded into the row
    before them (a solve with nothing before it keeps a row of its own)."""
    cols = ["tx", "first_seq", "seq", "time", "author", "message", "what", "changes", "solve",
            "iterations", "mismatch"]
    if not len(log):
        return pd.DataFrame(columns=cols)
    ev = log["event"]
    counts = pd.crosstab(log["tx"], ev)
    for e in (*_CHANGES, "load", "solve", *_MARKERS):
        if e not in counts.columns:
            counts[e] = 0
    size = counts.sum(axis=1)
    solve_only = (counts["solve"] == size).to_numpy()
    last = log.drop_duplicates("tx", keep="last").set_index("tx").loc[counts.index]
    first = log.drop_duplicates("tx", keep="first").set_index("tx").loc[counts.index]
    n = counts[list(_CHANGES)].sum(axis=1).to_numpy()
    what = np.full(len(counts), "", dtype=object)
    for e in reversed(_CHANGES):  # "1 set, 2 add"
        k = counts[e].to_numpy()
        has = k > 0
        part = np.array([f"{x} {e}" for x in k[has]], dtype=object)
        what[has] = np.where(what[has] == "", part, part + ", " + what[has].astype(str))
    for e in reversed(_MARKERS):
        m = (n == 0) & (counts[e].to_numpy() > 0)
        what[m] = e
    what[counts["load"].to_numpy() > 0] = "load case"
    rest = (what == "") & ~solve_only
    what[rest] = last["event"].to_numpy()[rest]
    # each solve-only transaction belongs to the last transaction before it that is not one
    owner = pd.Series(np.where(solve_only, np.nan, np.arange(len(counts))), dtype=float).ffill()
    owner = owner.fillna(pd.Series(np.arange(len(counts)), dtype=float)).to_numpy().astype(np.int64)
    keep = ~solve_only | (owner == np.arange(len(counts)))  # a leading solve keeps its own row
    what[solve_only & keep] = "solve"
    conv = np.full(len(counts), None, dtype=object)
    iters = np.full(len(counts), None, dtype=object)
    mism = np.full(len(counts), np.nan)
    solves = log[(ev == "solve").to_numpy()].drop_duplicates("tx", keep="last")
    if len(solves):
        pos = counts.index.get_indexer(solves["tx"])
        tgt = np.where(solve_only[pos], owner[pos], pos)  # later solves of one owner overwrite earlier ones
        info = solves["info"].to_numpy() if "info" in solves.columns else [None] * len(solves)
        details = [_solve_info(x) for x in info]
        conv[tgt] = np.where(solves["new"].to_numpy().astype(bool), "converged", "diverged")
        iters[tgt] = [d.get("iterations") for d in details]
        mism[tgt] = [d.get("mismatch", np.nan) for d in details]
    author = last["author"].to_numpy(dtype=object)
    message = last["message"].to_numpy(dtype=object)
    out = pd.DataFrame({"tx": counts.index.to_numpy(dtype=np.int64), "first_seq": first["seq"].to_numpy(),
                        "seq": last["seq"].to_numpy(), "time": _iso_column(last["time"].to_numpy()),
                        "author": np.where(pd.isna(author), None, author),
                        "message": np.where(solve_only | pd.isna(message), None, message),
                        "what": what, "changes": n, "solve": conv,
                        "iterations": pd.array(list(iters), dtype="Int64"), "mismatch": mism})
    return out[keep].reset_index(drop=True)


def oneline(tx: pd.DataFrame, width: int | None = WIDTH, date: bool = True) -> list[str]:
    """``gridtape log --oneline``: the lines of a :func:`transactions` frame (``date=False``: the
    time of day only, hh:mm:ss)."""
    lines = []
    tw = max(2, len(str(int(tx["tx"].max())))) if len(tx) else 2
    for r in tx.itertuples(index=False):
        if r.solve is None:
            solve = ""
        elif r.solve == "converged":
            solve = f"ok {r.iterations}it"
        else:
            solve = f"DIVERGED {r.iterations}it"
        when = (r.time or "")[:16].replace("T", " ") if date else (r.time or "")[11:19]
        line = f"{r.tx:>{tw}} {when} {str(r.author or ''):<6.6} {r.what:<9.9} {solve:<13} {r.message or ''}"
        lines.append(line[:width] if width else line)
    return lines


def _short(v, n: int = 12) -> str:
    if isinstance(v, float):
        s = f"{v:.6g}"
    elif isinstance(v, dict):
        keep = [k for k in ("name", "bus", "from_bus", "to_bus", "hv_bus", "lv_bus", "p_mw", "q_mvar") if k in v
                and v[k] is not None and v[k] == v[k]]
        s = "(" + ", ".join(f"{k} {_short(v[k])}" for k in keep) + ")"
        return s
    else:
        s = str(v)
    return s if len(s) <= n else s[: n - 1] + "~"


def change_line(row) -> str:
    """One diff row (change, kind, id, field, old, new) as ``set load 99 p_mw: 240 -> 320``."""
    eid = "" if row.id is None or row.id is pd.NA else f" {int(row.id)}"
    if row.change == "set":
        return f"set {row.kind}{eid} {row.field}: {_short(row.old)} -> {_short(row.new)}"
    if row.change == "add":
        return f"add {row.kind}{eid} {_short(row.new)}"
    if row.change == "remove":
        return f"remove {row.kind}{eid} {_short(row.old)}"
    return f"{row.change} {row.kind}{eid} {row.field}"


def diff_lines(d: pd.DataFrame, limit: int | None = 20, width: int | None = WIDTH, indent: str = "  ") -> list[str]:
    """The lines of a diff frame (at most ``limit``, then ``... and N more``)."""
    rows = list(d.itertuples(index=False))
    shown = rows if limit is None else rows[:limit]
    out = [indent + change_line(r) for r in shown]
    if width:
        out = [s[:width] for s in out]
    if len(rows) > len(shown):
        out.append(f"{indent}... and {len(rows) - len(shown)} more")
    return out


def bisect_text(res, limit: int = 8) -> str:
    """``str(bisect_result)``: the breaking transaction, the points around it and what it changed,
    in a few lines."""
    when = ""
    if res.events is not None and len(res.events) and "time" in res.events.columns:
        when = f" at {iso(res.events['time'].iloc[-1], ms=False)}"
    lines = [f"first bad point: seq {res.seq}, tx {res.tx} by {res.author or '?'}{when}",
             f"  message: {res.message!r}",
             f"last good point: seq {res.good_seq} ({res.materializations} points solved)"]
    d = res.diff
    if d is not None and len(d):
        lines.append(f"changes ({len(d)}):")
        lines += diff_lines(d, limit=limit)
    return "\n".join(lines)


def frame_text(df: pd.DataFrame, rows: int = 20, width: int = WIDTH) -> str:
    """A frame as text that fits ``width`` columns (the last ``rows`` rows, columns that fit)."""
    with pd.option_context("display.width", width, "display.max_columns", None, "display.max_colwidth", 24,
                           "display.expand_frame_repr", False):
        body = df.tail(rows).to_string(index=False, max_colwidth=24)
    lines = body.splitlines()
    out = [line[:width] for line in lines]
    if len(df) > rows:
        out.insert(0, f"(last {rows} of {len(df)} rows)")
    return "\n".join(out)


def study_lines(st) -> list:
    """A study event for ``show``: its steps and outcome, base point, outputs and options."""
    conv = "?" if st["converged"] is None else st["converged"]
    mode = "independent (a sweep)" if st["independent"] else "chained"
    opts = ", ".join(f"{k}={v}" for k, v in sorted(st["options"].items()))
    return [f"  study (seq {st['seq']}): {st['type']}, {st['steps']} steps, {conv} converged, {mode}, "
            f"from base seq {st['base_seq']}",
            f"  outputs: {st['dir'] or '(kept in memory)'}: {', '.join(st['outputs'])}",
            f"  options: {opts}"]
