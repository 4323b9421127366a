"""Differences between two worlds (and two sets of results), and applying a difference.

A diff is a DataFrame with columns ``change, kind, id, field, old, new``, one row per change:

``change="remove"``  an element of ``a`` missing in ``b``; ``old`` holds its row as a dict
                     (schema columns and extra columns), ``field`` and ``new`` are None.
``change="add"``     an element of ``b`` missing in ``a``; ``new`` holds its whole row as a dict.
                     Adds are listed in ``b``'s row order.
``change="set"``     one changed cell of an element present in both; ``field`` is a schema or
                     extra column.  Floats compare bit-exactly except that NaN equals NaN.

Rows with ``id`` missing (``pd.NA``) are not about one element:

- ``kind="network"``, ``field`` in sn_mva, f_hz, name: the network values;
- ``field="@extra_columns"``: the kind's extra-column names changed (``new`` is the list, in order;
  new columns start as None, and their non-None cells follow as ``set`` rows);
- ``field="@next_id"``: the kind's next id differs from what the adds alone would give;
- ``field="@order"``: ``b`` keeps its rows in an order that removing and appending cannot give
  (``new`` is b's full id list).  Worlds edited through the World API never need it.

With these, ``apply_diff(a, diff_worlds(a, b))`` reproduces ``b`` exactly (same_world).
"""
from __future__ import annotations

import operator

import numpy as np
import pandas as pd

from gridtape.errors import SchemaError
from gridtape.world.schema import F8, I8, KIND_ORDER
from gridtape.world.changes import AddRows, RemoveRows, SetCol, SetNetwork, apply
from gridtape.world.coerce import coerce_column
from gridtape.world.world import World

from .codec import float_bits, tag

COLUMNS = ["change", "kind", "id", "field", "old", "new"]
NETWORK_FIELDS = ("sn_mva", "f_hz", "name")


class _Rows:
    """Accumulates diff rows as column chunks and builds the DataFrame once."""

    def __init__(self):
        self.change, self.kind, self.ids, self.field, self.old, self.new = [], [], [], [], [], []

    def add(self, change, kind, ids, field, old, new):
        n = len(ids)
        self.change.append(np.full(n, change, dtype=object))
        self.kind.append(np.full(n, kind, dtype=object))
        self.ids.append(np.asarray(ids, dtype=np.float64))  # NaN = no id
        self.field.append(np.full(n, field, dtype=object))
        self.old.append(_objects(old, n))
        self.new.append(_objects(new, n))

    def one(self, change, kind, field, old, new):
        self.add(change, kind, [np.nan], field, [old], [new])

    def frame(self) -> pd.DataFrame:
        if not self.change:
            return pd.DataFrame({c: pd.Series([], dtype="Int64" if c == "id" else object) for c in COLUMNS})
        ids = np.concatenate(self.ids)
        mask = np.isnan(ids)
        return pd.DataFrame({
            "change": np.concatenate(self.change), "kind": np.concatenate(self.kind),
            "id": pd.arrays.IntegerArray(np.where(mask, 0, ids).astype(np.int64), mask),
            "field": np.concatenate(self.field), "old": np.concatenate(self.old), "new": np.concatenate(self.new),
        })


def _objects(values, n):
    out = np.empty(n, dtype=object)
    if values is None:
        return out
    if isinstance(values, np.ndarray) and values.dtype != object:
        out[:] = values.tolist()  # numpy scalars -> Python scalars
    else:
        for i, v in enumerate(values):
            out[i] = v
    return out


def _changed(x: np.ndarray, y: np.ndarray, dtype) -> np.ndarray:
    """Boolean mask of cells that differ: bit-exact floats with NaN == NaN; extra (object) values
    by their :func:`tag` (so 1 != 1.0 != True, -0.0 != 0.0, NA == NA)."""
    if dtype == F8:
        return float_bits(x) != float_bits(y)
    if dtype == "extra":
        ne = ~_IS(x, y).astype(bool)
        idx = np.flatnonzero(ne)
        if len(idx):
            ne[idx] = [_tag(x[i]) != _tag(y[i]) for i in idx]
        return ne
    return x != y


_IS = np.frompyfunc(operator.is_, 2, 1)


def _tag(v):
    try:
        return tag(v)
    except TypeError:
        return ("obj", id(v))


def _row_dict(t, r) -> dict:
    out = {}
    for name, arr in t.cols.items():
        v = arr[r]
        out[name] = v.item() if hasattr(v, "item") else v
    for name, arr in t.extra.items():
        out[name] = arr[r]
    return out


def diff_worlds(a: World, b: World) -> pd.DataFrame:
    """Every difference that turns ``a`` into ``b`` (see the module docstring for the format)."""
    rows = _Rows()
    for f in NETWORK_FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        same = (x == y and type(x) is type(y)) if f == "name" else float_bits([x])[0] == float_bits([y])[0]
        if not same:
            rows.one("set", "network", f, x, y)
    for kind in KIND_ORDER:
        _diff_table(rows, a.tables[kind], b.tables[kind])
    return rows.frame()


def _diff_table(rows: _Rows, ta, tb) -> None:
    kind = ta.kind
    if np.array_equal(ta.ids, tb.ids):
        ia = ib = None
        common = ta.ids
        removed = added = np.empty(0, dtype=np.int64)
        kept_order = ta.ids
    else:
        in_b = np.isin(ta.ids, tb.ids)
        in_a = np.isin(tb.ids, ta.ids)
        ia, ib = np.flatnonzero(in_b), np.flatnonzero(in_a)
        removed, added = ta.ids[~in_b], tb.ids[~in_a]
        common = ta.ids[ia]
        kept_order = np.concatenate([common, added])
        if not np.array_equal(tb.ids[ib], common):  # common rows in another relative order
            ib = tb.rows(common)
    if len(removed):
        rows.add("remove", kind, removed, None, [_row_dict(ta, r) for r in ta.rows(removed)], None)
    if list(ta.extra) != list(tb.extra):
        rows.one("set", kind, "@extra_columns", list(ta.extra), list(tb.extra))
    if len(added):
        rows.add("add", kind, added, None, None, [_row_dict(tb, r) for r in tb.rows(added)])
    cells = [(c.name, c.dtype, ta.cols[c.name], tb.cols[c.name]) for c in ta.spec.columns]
    for name in tb.extra:
        x = ta.extra[name] if name in ta.extra else np.full(len(ta.ids), None, dtype=object)
        cells.append((name, "extra", x, tb.extra[name]))
    for name, dtype, x, y in cells:
        if ia is not None:
            x, y = x[ia], y[ib]
        idx = np.flatnonzero(_changed(x, y, dtype))
        if len(idx):
            rows.add("set", kind, common[idx], name, x[idx], y[idx])
    expected_next = max(ta.next_id, int(added.max()) + 1) if len(added) else ta.next_id
    if tb.next_id != expected_next:
        rows.one("set", kind, "@next_id", ta.next_id, tb.next_id)
    if not np.array_equal(kept_order, tb.ids):
        rows.one("set", kind, "@order", ta.ids.tolist(), tb.ids.tolist())


# --- applying: a diff is a list of changes (world/changes.py) -----------------------------------------
def apply_diff(world: World, d: pd.DataFrame, *, check: bool = True) -> World:
    """A new world: ``world`` with the changes of ``d`` applied (``world`` is left untouched).

    With ``check``, every ``set`` must find its ``old`` value in place (SchemaError otherwise), so a
    diff is never silently applied to the wrong world.  The diff becomes changes
    (:func:`to_changes`) applied by the one ``apply`` (values validated, references checked, all
    or nothing); the references are validated once more at the end when elements were removed."""
    w = world.copy()
    _extra_columns(w, d)
    apply(w, to_changes(w, d, check=check))
    if (d["change"] == "remove").any():
        w.validate()
    return w


def to_changes(world: World, d: pd.DataFrame, *, check: bool = True, lenient: bool = False) -> list:
    """The changes (world/changes.py) that apply diff ``d`` to ``world``: network values, then per
    kind (buses first) removals, additions, cell sets, ``@next_id`` and ``@order``.  ``check``:
    every ``set`` must find its ``old`` value in place.  ``lenient`` (``PowerGrid.apply``): removals
    of elements already gone, extra columns and table-level rows are skipped."""
    missing = [c for c in COLUMNS if c not in d.columns]
    if missing:
        raise SchemaError(f"not a diff: column {missing[0]!r} is missing", field=missing[0])
    kinds = d["kind"].to_numpy(dtype=object)
    unknown = set(kinds.tolist()) - set(KIND_ORDER) - {"network"}
    if unknown:
        raise SchemaError(f"diff names unknown kind {sorted(unknown)[0]!r}", table=sorted(unknown)[0])
    out = []
    for kind in ["network"] + list(KIND_ORDER):
        sub = d[kinds == kind]
        if len(sub):
            (_network if kind == "network" else _table)(out, world, kind, sub, check, lenient)
    return out


def _extra_columns(w, d):
    """The ``@extra_columns`` rows: a kind's pass-through extra columns renamed, added or dropped
    (they are not schema columns; the changes that follow fill them)."""
    sel = (d["field"] == "@extra_columns").to_numpy(dtype=bool) & d["id"].isna().to_numpy()
    for kind, names in zip(d["kind"][sel], d["new"][sel]):
        if kind not in w.tables:
            continue
        t = w.tables[kind]
        t.extra = {n: t.extra[n] if n in t.extra else np.full(len(t.ids), None, dtype=object) for n in names}


def _network(out, w, _kind, sub, check, lenient):
    for f, old, new in zip(sub["field"], sub["old"], sub["new"]):
        if f not in NETWORK_FIELDS:
            raise SchemaError(f"unknown network value {f!r}", table="network", field=f)
        if lenient and f == "name":
            continue
        if check and _tag(getattr(w, f)) != _tag(old):
            raise SchemaError(f"diff expects {old!r}, world has {getattr(w, f)!r}", table="network", field=f)
        out.append(SetNetwork(f, new))


def _table(out, w, kind, sub, check, lenient):
    t = w.tables[kind]
    change = sub["change"].to_numpy(dtype=object)
    field = sub["field"].to_numpy(dtype=object)
    table_level = sub["id"].isna().to_numpy()
    special = {f: v for f, v in zip(field[table_level], sub["new"].to_numpy(dtype=object)[table_level])}
    bad = set(change.tolist()) - {"add", "remove", "set"}
    if bad:
        raise SchemaError(f"unknown change {sorted(bad)[0]!r}", table=kind)
    unknown = set(special) - {"@extra_columns", "@next_id", "@order"}
    if unknown:
        raise SchemaError(f"unknown table-level change {sorted(unknown)[0]!r}", table=kind, field=sorted(unknown)[0])
    rem = sub[change == "remove"]
    if len(rem):
        ids = rem["id"].to_numpy(dtype=np.int64)
        if lenient:
            ids = ids[np.isin(ids, t.ids)]
        out.append(RemoveRows(kind, ids))
    adds = sub[change == "add"]
    if len(adds):
        out.append(_adds(t, adds, lenient))
    sets = sub[(change == "set") & ~table_level]
    for name, grp in sets.groupby("field", sort=False):
        c = _sets(t, name, grp, check, lenient)
        if c is not None:
            out.append(c)
    if lenient:
        return
    if "@next_id" in special:
        out.append(RemoveRows(kind, np.empty(0, dtype=np.int64), next_id=int(special["@next_id"])))
    if "@order" in special:
        out += _order(t, np.asarray(special["@order"], dtype=np.int64), out)


def _adds(t, adds, lenient):
    ids = adds["id"].to_numpy(dtype=np.int64)
    dicts = adds["new"].tolist()
    for i, dct in zip(ids, dicts):
        if not isinstance(dct, dict):
            raise SchemaError("an add row needs its values as a dict in 'new'", table=t.kind, row=int(i))
    present = [c for c in t.spec.names if any(c in dct for dct in dicts)]
    for c in present:
        if any(c not in dct for dct in dicts):
            raise SchemaError("add rows must all carry the same columns", table=t.kind, field=c)
    if not lenient:
        unknown = {k for dct in dicts for k in dct} - set(t.spec.names) - set(t.extra)
        if unknown:
            raise SchemaError(f"add row has unknown column {sorted(unknown)[0]!r}", table=t.kind,
                              field=sorted(unknown)[0])
    cols = {c: _typed(t.spec[c], _objects([dct[c] for dct in dicts], len(dicts))) for c in present}
    extra = None if lenient else {n: [dct.get(n) for dct in dicts] for n in t.extra}
    return AddRows(t.kind, cols, ids, extra)


def _sets(t, name, grp, check, lenient):
    ids = grp["id"].to_numpy(dtype=np.int64)
    new = grp["new"].to_numpy(dtype=object)
    if name in t.spec:
        col = t.spec[name]
        if check:
            rows = t.rows(ids)
            arr = t.cols[name]
            old = coerce_column(col, _typed(col, grp["old"].to_numpy(dtype=object)), table=t.kind, ids=ids)
            wrong = np.flatnonzero(_changed(arr[rows], old, col.dtype))
            if len(wrong):
                i = wrong[0]
                raise SchemaError(f"diff expects {old[i]!r}, world has {arr[rows[i]]!r}", table=t.kind,
                                  row=int(ids[i]), field=name)
        return SetCol(t.kind, ids, name, _typed(col, new))
    if lenient:
        return None
    if name in t.extra:
        if check:
            rows = t.rows(ids)
            arr = t.extra[name]
            old = grp["old"].to_numpy(dtype=object)
            for i, r in enumerate(rows):
                if _tag(arr[r]) != _tag(old[i]):
                    raise SchemaError(f"diff expects {old[i]!r}, world has {arr[r]!r}", table=t.kind,
                                      row=int(ids[i]), field=name)
        return SetCol(t.kind, ids, name, new)
    raise SchemaError(f"{t.kind} has no column {name!r}", table=t.kind, field=name)


def _order(t, order, before):
    """``@order``: the table's rows in the order ``order`` -- every row removed and added again in
    that order, with the values the earlier changes of this diff leave (a scratch copy tells)."""
    scratch = World(1.0)
    scratch.tables[t.kind] = t.copy()
    kinds = {t.kind}
    apply(scratch, [c for c in before if getattr(c, "kind", None) in kinds], check=False)
    s = scratch.tables[t.kind]
    if len(order) != len(s.ids) or set(order.tolist()) != set(s.ids.tolist()):
        raise SchemaError("@order is not a permutation of the table's ids", table=t.kind, field="@order")
    rows = s.rows(order)
    return [RemoveRows(t.kind, s.ids.copy()),
            AddRows(t.kind, {k: v[rows] for k, v in s.cols.items()}, order, {k: v[rows] for k, v in s.extra.items()}),
            RemoveRows(t.kind, np.empty(0, dtype=np.int64), next_id=s.next_id)]


def _typed(col, values: np.ndarray) -> np.ndarray:
    """Integer cells as an int64 array (coerce_column would pass them through float64)."""
    if col.dtype == I8 and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
                               for v in values):
        return np.asarray(values.tolist(), dtype=np.int64)
    return values


# --- results -------------------------------------------------------------------------------------
RESULT_FIELDS = {
    "bus": ("vm_pu", "va_degree"),
    "line": ("p_from_mw", "q_from_mvar", "loading_percent"),
    "trafo": ("p_hv_mw", "q_hv_mvar", "loading_percent"),
    "trafo3w": ("p_hv_mw", "q_hv_mvar", "loading_percent"),
}


def result_diff(res_a: dict, res_b: dict, fields: dict | None = None, *, atol: float | None = None) -> pd.DataFrame:
    """Deltas between two result dicts (``post_process()`` of two solved grids; keys ``"bus"`` or
    ``"res_bus"``): columns kind, id, field, a, b, delta (= b - a), ids aligned by an outer join
    (a side missing an element shows NaN).  ``fields`` maps kind -> columns (default
    :data:`RESULT_FIELDS`); with ``atol``, only rows with ``|delta| > atol`` or a NaN on one side
    are kept."""
    parts = []
    for kind, cols in (fields or RESULT_FIELDS).items():
        fa, fb = _result_table(res_a, kind), _result_table(res_b, kind)
        if fa is None and fb is None:
            continue
        fa = fa if fa is not None else pd.DataFrame(index=pd.Index([], dtype=np.int64))
        fb = fb if fb is not None else pd.DataFrame(index=pd.Index([], dtype=np.int64))
        idx = fa.index.union(fb.index)
        for col in cols:
            if col not in fa.columns and col not in fb.columns:
                continue
            va = _col(fa, col, idx)
            vb = _col(fb, col, idx)
            parts.append(pd.DataFrame({"kind": kind, "id": idx.to_numpy(dtype=np.int64), "field": col,
                                       "a": va, "b": vb, "delta": vb - va}))
    if not parts:
        return pd.DataFrame({"kind": [], "id": np.empty(0, np.int64), "field": [], "a": [], "b": [], "delta": []})
    out = pd.concat(parts, ignore_index=True)
    if atol is not None:
        keep = (out["delta"].abs() > atol) | (out["a"].isna() != out["b"].isna())
        out = out[keep.to_numpy()].reset_index(drop=True)
    return out


def _result_table(res, kind):
    df = res.get(kind)
    return res.get("res_" + kind) if df is None else df


def _col(df, col, idx) -> np.ndarray:
    if col not in df.columns:
        return np.full(len(idx), np.nan)
    return df[col].reindex(idx).to_numpy(dtype=np.float64)


__all__ = ["diff_worlds", "apply_diff", "result_diff", "RESULT_FIELDS", "COLUMNS"]
