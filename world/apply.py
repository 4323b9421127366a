"""``apply(world, changes)``: the list path of the change vocabulary (see world/changes.py).

Two passes.  The first validates every change against a shadow of the ids (the ids each kind will
have once the earlier changes of the list are applied) and normalizes it (ids as int64, values in
their column's dtype, default columns filled); it writes nothing.  The second writes the
normalized changes in order, records what each replaced and marks the dirty sets.
"""
from __future__ import annotations

import math

import numpy as np

from gridtape.errors import BadReferenceError, SchemaError

from .changes import (NETWORK_FIELDS, AddRows, Applied, RemoveRows, SetCol, SetNetwork, _check_refs, _coerce_many,
                      _ids, _note_rows, _note_set, _put, check_switch_elements)
from .coerce import _column, coerce_column, new_rows


class _Shadow:
    """The ids of each kind as the changes validated so far leave them (built per kind on demand)."""

    def __init__(self, w):
        self.w = w
        self.live = {}  # kind -> set of ids (only kinds with rows added or removed so far)
        self.next_id = {}

    def ids(self, kind):
        s = self.live.get(kind)
        return self.w.tables[kind].positions if s is None else s

    def own(self, kind):
        s = self.live.get(kind)
        if s is None:
            t = self.w.tables[kind]
            s = self.live[kind] = set(t.positions)
            self.next_id[kind] = t.next_id
        return s


def apply(w, changes, *, check: bool = True, file=None) -> Applied:
    """Validate every change of ``changes``, then write them all (see world/changes.py)."""
    sh = _Shadow(w)
    prepared = [_prepare(w, sh, c, check, file) for c in changes]
    for c in prepared:
        _WRITE[type(c)](w, c)
    return Applied(prepared)


# --- pass 1: validate and normalize -------------------------------------------------------------------
def _prepare(w, sh, c, check, file):
    tc = type(c)
    if tc is SetCol:
        return _prep_set(w, sh, c, check)
    if tc is AddRows:
        return _prep_add(w, sh, c, check, file)
    if tc is RemoveRows:
        return _prep_remove(w, sh, c)
    if tc is SetNetwork:
        return _prep_network(c, check)
    raise SchemaError(f"not a change: {c!r}")


def _prep_set(w, sh, c, check):
    kind, name = c.kind, c.field
    t = w[kind]
    ids = _ids(c.ids, kind, name)
    live = sh.live.get(kind)
    if live is None:
        rows = t.rows(ids)
    else:
        rows = None
        for e in ids.tolist():
            if e not in live:
                raise BadReferenceError(f"no {kind} with id {e}", table=kind, row=e, field=name)
    if name in t.extra and name not in t.spec:
        vals = np.empty(len(ids), dtype=object)
        vals[:] = list(c.values) if np.ndim(c.values) else [c.values] * len(ids)
        out = SetCol(kind, ids, name, vals)
        out._rows = rows
        return out
    col = _column(t, name)
    if check:
        if not sh.live:  # no rows added or removed so far in this list: the world is the reference
            vals = _coerce_many(w, t, col, ids, rows, c.values)
        else:  # references against the shadow
            try:
                vals = np.broadcast_to(np.asarray(c.values, dtype=object if col.dtype == "str" else None),
                                       ids.shape)
            except (ValueError, TypeError):
                raise SchemaError(f"{len(ids)} ids but values of another shape", table=kind, field=name) from None
            vals = coerce_column(col, vals, table=kind, ids=ids)
            if col.ref:
                _check_refs(w, col.ref, vals, kind, name, ids, live=sh.ids(col.ref))
            if kind == "switch" and name in ("et", "element"):
                pos = t.positions  # rows added in this list were checked when added
                old = [(i, pos[e]) for i, e in enumerate(ids.tolist()) if e in pos]
                if old:
                    k = np.array([i for i, _ in old])
                    r = np.array([p for _, p in old], dtype=np.int64)
                    et = vals[k] if name == "et" else t.cols["et"][r]
                    el = vals[k] if name == "element" else t.cols["element"][r]
                    check_switch_elements(w, list(et), list(el), ids[k], live=sh.live)
    else:
        vals = np.broadcast_to(np.asarray(c.values, dtype=col.np_dtype), ids.shape).copy()
    out = SetCol(kind, ids, name, vals)
    out._rows = rows
    return out


def _prep_add(w, sh, c, check, file):
    kind = c.kind
    t = w[kind]
    live = sh.own(kind)
    ids, cols = new_rows(t.spec, c.columns or {}, c.ids, live, sh.next_id[kind], check=check, file=file)
    n = len(ids)
    if check and n:
        for col in t.spec.refs:
            tgt = sh.ids(col.ref) if col.ref != kind else (live | set(ids.tolist()))
            _check_refs(w, col.ref, cols[col.name], kind, col.name, ids, live=tgt, file=file)
        if kind == "switch":
            check_switch_elements(w, cols["et"].tolist(), cols["element"].tolist(), ids, file, live=sh.live)
    extra = {}
    given = c.extra or {}
    for name in list(t.extra) + [k for k in given if k not in t.extra]:  # a given name may be new
        arr = np.empty(n, dtype=object)
        if name in given:
            arr[:] = list(given[name])
        extra[name] = arr
    if c.at is not None and len(c.at) != n:
        raise SchemaError("row positions and rows differ in length", table=kind)
    live.update(ids.tolist())
    if n:
        sh.next_id[kind] = max(sh.next_id[kind], int(ids.max()) + 1)
    return AddRows(kind, cols, ids, extra, at=None if c.at is None else np.asarray(c.at, dtype=np.int64))


def _prep_remove(w, sh, c):
    kind = c.kind
    w[kind]
    ids = _ids(c.ids, kind)
    live = sh.own(kind)
    seen = set()
    for e in ids.tolist():
        if e not in live or e in seen:
            raise BadReferenceError(f"no {kind} with id {e}", table=kind, row=e)
        seen.add(e)
    live.difference_update(seen)
    nid = c.next_id
    if nid is not None:
        nid = int(nid)
        if live and nid <= max(live):
            raise SchemaError(f"next_id {nid} is not above every id", table=kind, field="next_id")
        sh.next_id[kind] = nid
    return RemoveRows(kind, ids, next_id=nid)


def _prep_network(c, check):
    f = c.field
    if f not in NETWORK_FIELDS:
        raise SchemaError(f"unknown network value {f!r}", table="network", field=f)
    if f == "name":
        return SetNetwork(f, "" if c.value is None else str(c.value))
    try:
        v = float(c.value)
    except (TypeError, ValueError):
        raise SchemaError(f"{f} is not a number: {c.value!r}", table="network", field=f) from None
    if not (v > 0 and math.isfinite(v)):
        raise SchemaError(f"{f} must be finite and > 0: {c.value!r}", table="network", field=f)
    return SetNetwork(f, v)


# --- pass 2: write ----------------------------------------------------------------------------------
def _write_set(w, c):
    t = w.tables[c.kind]
    rows = c._rows
    if rows is None:
        rows = t.rows(c.ids)
    c._rows = None
    arr = t.extra.get(c.field) if c.field not in t.cols else t.cols[c.field]
    c.old = _put(arr, rows, c.values)
    if c.field in t.cols:
        _note_set(w, c.kind, c.field, t.spec.by_name[c.field].affects)


def _write_add(w, c):
    t = w.tables[c.kind]
    c.next_id = t.next_id
    t._insert(c.ids, c.columns, c.extra, c.at)
    c.at = None
    if len(c.ids):
        t.next_id = max(t.next_id, int(c.ids.max()) + 1)
    _note_rows(w, c.kind)


def _write_remove(w, c):
    t = w.tables[c.kind]
    rows = t.rows(c.ids)
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    c.ids = c.ids[order]
    c.rows = rows
    c.columns = {k: v[rows] for k, v in t.cols.items()}
    c.extra = {k: v[rows] for k, v in t.extra.items()}
    t._delete(rows)
    if c.next_id is not None:
        t.next_id = c.next_id
    _note_rows(w, c.kind)


def _write_network(w, c):
    c.old = getattr(w, c.field)
    setattr(w, c.field, c.value)
    w._mark_network()  # sn_mva / f_hz: every per-unit value changes, the model cache rebuilds fully


_WRITE = {SetCol: _write_set, AddRows: _write_add, RemoveRows: _write_remove, SetNetwork: _write_network}
