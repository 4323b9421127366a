"""Three-way merges of worlds: what revert, cherry-pick and merge apply, and where they conflict.

One rule serves the three verbs.  ``three_way(base, ours, theirs)`` takes what changed from
``base`` to ``theirs`` (``diff_worlds``) and brings it into ``ours`` (the live world):

- a cell ``theirs`` changed: taken when ``ours`` still holds the base value, nothing to do when
  ``ours`` already holds theirs, a conflict otherwise (both sides changed it differently), and a
  conflict when ``ours`` no longer has the element (removed on one side, written on the other);
- an element ``theirs`` removed: removed when ``ours`` still holds it as in ``base``, nothing to
  do when ``ours`` removed it too, a conflict (one per changed cell) when ``ours`` changed it;
- an element ``theirs`` added: added when ``ours`` has no element of that id, nothing to do when
  ``ours`` added the identical element, a conflict (one per differing cell) otherwise;
- a network value: as a cell.

The verbs differ only in the three worlds: a revert of transaction T merges (after T, now,
before T); a cherry-pick of T merges (before T, now, after T) from T's journal; a merge of a
branch merges (fork point, our head, the branch head).

The result is a diff frame (replay/diff.py) of the changes to ``ours``; ``to_changes`` turns it
into the change vocabulary (world/changes.py) the grid applies through its one write path.
``force=True`` takes theirs wherever it conflicts (a cell of an element ``ours`` removed is
skipped).  :func:`dangling` finds references the changes would leave pointing at nothing:
those stay conflicts even with ``force``.  Row order, ``next_id`` and extra-column sets
(``@order``, ``@next_id``, ``@extra_columns``) are not merged: added rows go to the end, ids are
never reused.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from gridtape.world.schema import SWITCH_ET_KIND

from .diff import COLUMNS, _row_dict, _tag, diff_worlds


@dataclass
class Conflict:
    """One cell or element both lines changed.  ``what``: "set" (a cell), "remove" (theirs
    removes an element ours changed: one per changed cell), "add" (both added this id, differing
    in ``field``), "network", or "reference" (the result would refer to a missing element:
    ``theirs`` is the missing id).  ``base``/``ours``/``theirs``: the values (None: no element);
    ``tx``: the transaction of the current line that last changed it (when known)."""

    what: str
    kind: str
    id: int | None
    field: str | None
    base: object
    ours: object
    theirs: object
    tx: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self):
        where = f"{self.kind} {self.id}" if self.id is not None else self.kind
        where += f" {self.field}" if self.field else ""
        by = f" (tx {self.tx})" if self.tx is not None else ""
        if self.what == "reference":
            return f"reference: {where} would refer to missing {self.theirs}{by}"
        return f"{self.what}: {where}: base {_show(self.base)}, ours {_show(self.ours)}, theirs {_show(self.theirs)}{by}"


def _show(v):
    return "(none)" if v is None else repr(v)


def same(a, b) -> bool:
    """Whether two cell values are the same value, as diffs compare them (floats bit-exact, NaN
    equal to NaN; 1 != 1.0)."""
    return a is b or _tag(a) == _tag(b)


def _differing(a: dict, b: dict) -> list:
    """The fields of two row dicts whose values differ (fields of both only)."""
    return [f for f in a if f in b and not same(a[f], b[f])]


def three_way(base, ours, theirs, *, force=False):
    """``(changes, conflicts)``: the diff frame (against ``ours``) that brings what changed from
    ``base`` to ``theirs`` into ``ours``, and the list of :class:`Conflict` (see the module
    docstring).  With ``force`` the conflicts are resolved for theirs and the list is empty."""
    d = diff_worlds(base, theirs)
    out, conflicts = [], []
    if not len(d):
        return _frame(out), conflicts
    change = d["change"].to_numpy(dtype=object)
    kinds = d["kind"].to_numpy(dtype=object)
    ids = d["id"].to_numpy(dtype=object, na_value=None)
    fields = d["field"].to_numpy(dtype=object)
    olds, news = d["old"].to_numpy(dtype=object), d["new"].to_numpy(dtype=object)
    rows = {}  # (kind, id) -> ours's row dict (built once per element)

    def ours_row(kind, eid):
        key = (kind, eid)
        if key not in rows:
            t = ours.tables[kind]
            rows[key] = _row_dict(t, t.positions[eid]) if eid in t.positions else None
        return rows[key]

    for i in range(len(d)):
        c, kind, eid, f, old, new = change[i], kinds[i], ids[i], fields[i], olds[i], news[i]
        if kind == "network":
            o = getattr(ours, f)
            if same(o, old) or force and not same(o, new):
                out.append(("set", "network", None, f, o, new))
            elif not same(o, new):
                conflicts.append(Conflict("network", "network", None, f, old, o, new))
            continue
        if eid is None:  # @order, @next_id, @extra_columns: not merged
            continue
        eid = int(eid)
        mine = ours_row(kind, eid)
        if c == "remove":
            if mine is None:
                continue  # removed on both sides
            diff = _differing(old, mine)
            if not diff or force:
                out.append(("remove", kind, eid, None, mine, None))
            else:
                conflicts += [Conflict("remove", kind, eid, x, old[x], mine[x], None) for x in diff]
        elif c == "add":
            if mine is None:
                t = ours.tables[kind]
                keep = set(t.cols) | set(t.extra)
                out.append(("add", kind, eid, None, None, {k: v for k, v in new.items() if k in keep}))
                continue
            diff = _differing(new, mine)
            if force:
                out += [("set", kind, eid, x, mine[x], new[x]) for x in diff]
            else:
                conflicts += [Conflict("add", kind, eid, x, None, mine[x], new[x]) for x in diff]
        else:  # a cell
            if mine is None:
                if not force:
                    conflicts.append(Conflict("set", kind, eid, f, old, None, new))
                continue
            if f not in mine:  # an extra column ours does not have
                continue
            o = mine[f]
            if same(o, new):
                continue
            if same(o, old) or force:
                out.append(("set", kind, eid, f, o, new))
            else:
                conflicts.append(Conflict("set", kind, eid, f, old, o, new))
    return _frame(out), conflicts


def _frame(rows) -> pd.DataFrame:
    cols = list(zip(*rows)) if rows else [[] for _ in COLUMNS]
    data = {}
    for name, vals in zip(COLUMNS, cols):
        arr = np.empty(len(vals), dtype=object)
        arr[:] = list(vals)
        data[name] = arr
    ids = [None if v is None else int(v) for v in data["id"]]
    data["id"] = pd.array(ids, dtype="Int64")
    return pd.DataFrame(data, columns=COLUMNS)


def dangling(world) -> list:
    """Every reference of ``world`` to a missing element, as :class:`Conflict` rows of what
    "reference" (``theirs``: "bus 7"); schema references and switch elements."""
    out = []
    for t in world.tables.values():
        if not len(t):
            continue
        for c in t.spec.refs:
            target = world.tables[c.ref]
            vals = t.cols[c.name]
            bad = np.flatnonzero(~np.isin(vals, target.ids))
            out += [Conflict("reference", t.kind, int(t.ids[r]), c.name, None, None, f"{c.ref} {int(vals[r])}")
                    for r in bad]
    sw = world.tables.get("switch")
    if sw is not None and len(sw):
        for r, (et, el) in enumerate(zip(sw.cols["et"].tolist(), sw.cols["element"].tolist())):
            kind = SWITCH_ET_KIND.get(et)
            if kind is not None and int(el) not in world.tables[kind].positions:
                out.append(Conflict("reference", "switch", int(sw.ids[r]), "element", None, None, f"{kind} {int(el)}"))
    return out


__all__ = ["Conflict", "three_way", "dangling", "same"]
