"""Where two lines of history meet: the journal a branch name or path names, and the merge base
of two journals (gridtape/merge.py).

A branch is a journal of its own whose first ``load`` event names its parent (``parent``: the
parent journal's path, ``parent_seq``: the branch point; ``Study.branch``), and the parent
records a ``branch`` event ``{"name", "seq", "path"}``.  The merge base of two journals is the
latest point both contain:

- the fork point: the parent at ``parent_seq`` (for a branch and its parent, either way round;
  for two branches of one parent, the parent at the earlier of their branch points);
- a later merge between the two: a ``merge`` event here that took the other's head at seq S
  (the other at S), or one there that took this journal's head at seq S (this one at S).

The latest of these (by time) is the base.
"""
from __future__ import annotations

import json
import os

from gridtape.errors import JournalError


def _fetch(j, sql, params=()):
    from gridtape.replay.materialize import _fetch as fetch

    return fetch(j, sql, params)


def _same(a, b) -> bool:
    if a is None or b is None:
        return False
    return os.path.realpath(str(a)) == os.path.realpath(str(b))


def _locate(path, near) -> str:
    """A recorded journal path: as given (relative to the working directory), else beside the
    journal ``near`` that recorded it."""
    if path is None or os.path.isabs(path) or os.path.exists(path) or near is None:
        return path
    here = os.path.dirname(os.path.abspath(str(near)))
    for cand in (os.path.join(here, path), os.path.join(here, os.path.basename(path))):
        if os.path.exists(cand):
            return cand
    return path


def branch_path(j, text) -> tuple[str, str]:
    """``(path, name)`` of a branch named ``text`` in journal ``j`` (its latest ``branch`` event of
    that name), or of the journal file ``text``."""
    rows = _fetch(j, "SELECT info FROM {events} WHERE event = 'branch' ORDER BY seq")
    for (info,) in reversed(rows):
        meta = json.loads(info)
        if meta.get("name") == text:
            return _locate(meta.get("path"), j.path), text
    if os.path.exists(text):
        return text, os.path.basename(text)
    raise JournalError(f"{text!r} is neither a branch of this journal nor a journal file", file=j.path, field="branch")


def origin(j) -> dict:
    """The first ``load`` event of ``j``: its info (``parent``, ``parent_seq``, ``branch`` for a
    branch journal), with ``seq`` and ``ts`` (ns)."""
    got = _fetch(j, "SELECT seq, ts_ns, info FROM {events} WHERE event = 'load' ORDER BY seq LIMIT 1")
    if not got:
        raise JournalError("the journal has no case load", file=j.path)
    seq, ts, info = got[0]
    meta = json.loads(info) if info else {}
    meta.update(seq=int(seq), ts=int(ts))
    if meta.get("parent") is not None:
        meta["parent"] = _locate(meta["parent"], j.path)
    return meta


def head_of(j) -> dict:
    """``{"seq", "tx"}`` of a journal's last event."""
    got = _fetch(j, "SELECT seq, tx FROM {events} ORDER BY seq DESC LIMIT 1")
    if not got:
        raise JournalError("the journal is empty", file=j.path)
    return {"seq": int(got[0][0]), "tx": int(got[0][1])}


def _merges(j, other_path):
    """``(ts, seq_here, seq_there)`` of every ``merge`` event of ``j`` that took ``other_path``."""
    out = []
    for seq, ts, info in _fetch(j, "SELECT seq, ts_ns, info FROM {events} WHERE event = 'merge' ORDER BY seq"):
        meta = json.loads(info)
        if _same(_locate(meta.get("path"), j.path), other_path):
            out.append((int(ts), int(seq), int(meta["theirs"]["seq"])))
    return out


def merge_base(ours, theirs):
    """``(world, description, since)``: the merge base of journals ``ours`` and ``theirs`` (see the
    module docstring), what it is (``{"path", "seq"}``), and the seq of ``ours`` after which our
    own changes since the base start (conflicts are attributed to transactions after it)."""
    from gridtape.journal import Journal
    from gridtape.replay.materialize import materialize

    o, t = origin(ours), origin(theirs)
    cands = []  # (ts, which journal: "ours" / "theirs" / a path, seq, since)
    if _same(t.get("parent"), ours.path):
        cands.append((t["ts"], "ours", int(t["parent_seq"]), int(t["parent_seq"])))
    elif _same(o.get("parent"), theirs.path):
        cands.append((o["ts"], "theirs", int(o["parent_seq"]), o["seq"]))
    elif o.get("parent") is not None and _same(o.get("parent"), t.get("parent")):
        cands.append((min(o["ts"], t["ts"]), o["parent"], min(int(o["parent_seq"]), int(t["parent_seq"])), o["seq"]))
    else:
        raise JournalError(f"{theirs.path} and this journal share no point: neither is a branch of the other, "
                           "nor are they branches of one journal", file=ours.path, field="branch")
    cands += [(ts, "theirs", there, here) for ts, here, there in _merges(ours, theirs.path)]
    cands += [(ts, "ours", there, there) for ts, here, there in _merges(theirs, ours.path)]
    ts, where, seq, since = max(cands, key=lambda c: c[0])
    if where == "ours":
        return materialize(ours, seq)[0], {"path": ours.path, "seq": seq}, since
    if where == "theirs":
        return materialize(theirs, seq)[0], {"path": theirs.path, "seq": seq}, since
    with Journal(where, read_only=True) as parent:
        return materialize(parent, seq)[0], {"path": where, "seq": seq}, since
