"""The ECS world: one table of component columns per element kind, keyed by stable entity ids.

A :class:`Table` holds, for one kind, an ``ids`` array (int64, pandapower's index) and one numpy
array per schema column, all in the same row order.  Rows are never reordered except by removal;
ids are never reused (``next_id`` only grows).  The :class:`World` bundles the tables with the
network-wide values (``sn_mva``, ``f_hz``).

Every change to a world is made by world/changes.py (the change vocabulary: ``apply``,
``set_cell``, ``apply_set``); it marks the world's dirty sets (:meth:`World.watch`), which tell
each consumer what to re-read.  The World's write methods below are thin conveniences over it.
"""
from __future__ import annotations

import weakref

import numpy as np

from gridtape.errors import BadReferenceError, SchemaError

from .coerce import coerce_column, default_column, new_rows  # noqa: F401 (coerce_column: re-exported)
from .schema import KIND_ORDER, KindSpec, spec
from .dirty import Dirty


class Table:
    """All entities of one kind: ``ids`` plus one array per schema column (same row order)."""

    __slots__ = ("kind", "spec", "ids", "cols", "extra", "next_id", "_pos", "_dense_ids")

    def __init__(self, kind: str):
        self.kind = kind
        self.spec: KindSpec = spec(kind)
        self.ids = np.empty(0, dtype=np.int64)
        self.cols = {c.name: default_column(c, 0) for c in self.spec.columns}
        self.extra: dict[str, np.ndarray] = {}
        self.next_id = 0
        self._pos = None
        self._dense_ids = None

    # --- lookup --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, eid) -> bool:
        return int(eid) in self.positions

    def _dense(self) -> bool:
        d = self._dense_ids
        if d is None or d[0] is not self.ids:
            d = self._dense_ids = (self.ids, bool(np.array_equal(self.ids, np.arange(len(self.ids)))))
        return d[1]

    @property
    def positions(self) -> dict:
        """id -> row position (built lazily, dropped on every structural change)."""
        if self._pos is None:
            self._pos = {int(e): i for i, e in enumerate(self.ids.tolist())}
        return self._pos

    def row(self, eid) -> int:
        try:
            return self.positions[int(eid)]
        except (KeyError, TypeError, ValueError):
            raise BadReferenceError(f"no {self.kind} with id {eid!r}", table=self.kind, row=eid) from None

    def rows(self, ids) -> np.ndarray:
        ids = np.asarray(ids)
        n = len(self.ids)
        if ids.dtype.kind in "iu" and ids.ndim == 1 and len(ids):
            if ids is self.ids:
                return np.arange(n)
            if self._dense():  # ids are 0..n-1 in row order: the id is the row
                lo, hi = ids.min(), ids.max()
                if lo >= 0 and hi < n:
                    return ids.astype(np.int64, copy=False)
        pos = self.positions
        out = np.empty(len(ids), dtype=np.int64)
        for i, e in enumerate(np.asarray(ids).tolist()):
            try:
                out[i] = pos[int(e)]
            except KeyError:
                raise BadReferenceError(f"no {self.kind} with id {e!r}", table=self.kind, row=e) from None
        return out

    def get(self, eid, name):
        v = self.cols[name][self.row(eid)]
        return v.item() if hasattr(v, "item") else v

    # --- construction (a reader building a fresh table; changes to a world go through apply) ---
    def append(self, columns: dict, ids=None, *, file=None) -> np.ndarray:
        """Add rows to a table being built; ``columns`` maps column name -> values (missing
        columns take defaults).  References are checked by ``World.validate``."""
        ids, new = new_rows(self.spec, columns, ids, self.positions, self.next_id, file=file)
        n = len(ids)
        self._insert(ids, new, {}, None)
        if n:
            self.next_id = max(self.next_id, int(ids.max()) + 1)
        return ids

    # --- row primitives: used only by the change vocabulary (world/changes.py) and readers -------
    def _insert(self, ids, cols: dict, extra: dict, at) -> None:
        """Rows ``ids`` with every column ``cols`` (validated, the columns' dtypes) and extra
        values; appended (``at`` None) or taking row positions ``at`` (ascending) of the result."""
        for name in extra:
            if name not in self.extra:  # a new extra column: None for the rows already here
                self.extra[name] = np.full(len(self.ids), None, dtype=object)
        n = len(ids)
        if at is None:
            for name, arr in cols.items():
                self.cols[name] = np.concatenate([self.cols[name], arr])
            for name in self.extra:
                self.extra[name] = np.concatenate([self.extra[name], extra.get(name, np.full(n, None, object))])
            self.ids = np.concatenate([self.ids, ids])
        else:
            keep = np.ones(len(self.ids) + n, dtype=bool)
            keep[at] = False

            def put(cur, new, dtype):
                out = np.empty(len(keep), dtype=dtype)
                out[keep] = cur
                out[at] = new
                return out

            for name, arr in cols.items():
                self.cols[name] = put(self.cols[name], arr, self.cols[name].dtype)
            for name in self.extra:
                self.extra[name] = put(self.extra[name], extra.get(name, np.full(n, None, object)), object)
            self.ids = put(self.ids, ids, np.int64)
        self._pos = None

    def _delete(self, rows) -> None:
        keep = np.ones(len(self.ids), dtype=bool)
        keep[rows] = False
        self.ids = self.ids[keep]
        for name in self.cols:
            self.cols[name] = self.cols[name][keep]
        for name in self.extra:
            self.extra[name] = self.extra[name][keep]
        self._pos = None

    @classmethod
    def from_arrays(cls, kind: str, ids, cols: dict, extra: dict, next_id: int) -> "Table":
        """A table built from arrays already of the schema's dtypes (a decoded snapshot): every
        schema column given, one value per id; trusted like an inverse (``apply(check=False)``)."""
        t = cls(kind)
        t.ids = np.asarray(ids, dtype=np.int64)
        t.cols = {c.name: cols[c.name] for c in t.spec.columns}
        t.extra = dict(extra)
        t.next_id = int(next_id)
        return t

    def copy(self) -> "Table":
        t = Table.__new__(Table)
        t.kind, t.spec, t.next_id, t._pos, t._dense_ids = self.kind, self.spec, self.next_id, None, None
        t.ids = self.ids.copy()
        t.cols = {k: v.copy() for k, v in self.cols.items()}
        t.extra = {k: v.copy() for k, v in self.extra.items()}
        return t

    def to_frame(self):
        import pandas as pd

        df = pd.DataFrame({k: self.cols[k] for k in self.spec.names}, index=pd.Index(self.ids, name=None))
        for k, v in self.extra.items():
            df[k] = v
        return df

    def equals(self, other: "Table") -> bool:
        """Same ids with the same values (row order does not matter: an undone removal re-adds
        its element at the end)."""
        if len(self.ids) != len(other.ids):
            return False
        oa, ob = np.argsort(self.ids, kind="stable"), np.argsort(other.ids, kind="stable")
        if not np.array_equal(self.ids[oa], other.ids[ob]):
            return False
        for k in self.spec.names:
            a, b = self.cols[k][oa], other.cols[k][ob]
            if a.dtype == object:
                if list(a) != list(b):
                    return False
            elif a.dtype.kind == "f":
                if not np.array_equal(a, b, equal_nan=True):
                    return False
            elif not np.array_equal(a, b):
                return False
        return True


class World:
    """Every element table of one network plus its network-wide values."""

    def __init__(self, sn_mva: float = 1.0, f_hz: float = 50.0, name: str = ""):
        self.tables: dict[str, Table] = {k: Table(k) for k in KIND_ORDER}
        self.sn_mva = float(sn_mva)
        self.f_hz = float(f_hz)
        self.name = name
        self._watchers: list = []  # weak references to the live Dirty sets (see watch())
        self._col_watchers: list = []  # those of them that watch columns

    # --- dirty sets --------------------------------------------------------------------------
    def watch(self, cols: bool = True) -> Dirty:
        """A new dirty set for one consumer of this world's columns (world/dirty.py): it starts
        with everything marked and is marked by every change applied after.  Keep a reference to
        it; the world holds it weakly.  ``cols=False``: a consumer of rows and network values
        only (its ``cols`` stay empty; column writes do not visit it)."""
        d = Dirty(True, self.tables)
        r = weakref.ref(d)
        self._watchers.append(r)
        if cols:
            self._col_watchers.append(r)
        return d

    def _wrote(self, kind: str, name: str, affects: str = "") -> None:
        """Column ``name`` of ``kind`` was written (world/changes.py only): marks the dirty sets
        that watch columns.  One call: the handle-write hot path."""
        key = None
        for r in self._col_watchers:
            d = r()
            if d is None:
                self._prune()
                return self._wrote(kind, name)
            if key is None:
                key = (kind, name)
            d.cols.add(key)

    def _mark_rows(self, kind) -> None:
        dead = False
        for r in self._watchers:
            d = r()
            if d is None:
                dead = True
            elif kind is None:
                d.rows.update(self.tables)
                d.network = True
            else:
                d.rows.add(kind)
        if dead:
            self._prune()

    def _mark_network(self) -> None:
        for r in self._watchers:
            d = r()
            if d is not None:
                d.network = True

    def _prune(self) -> None:
        self._watchers = [r for r in self._watchers if r() is not None]
        self._col_watchers = [r for r in self._col_watchers if r() is not None]

    def __getitem__(self, kind: str) -> Table:
        try:
            return self.tables[kind]
        except KeyError:
            spec(kind)  # raises SchemaError with the list of kinds
            raise

    def __iter__(self):
        return iter(self.tables.values())

    # --- conveniences over the change vocabulary (world/changes.py) ---------------------------
    def set_value(self, kind: str, eid, name: str, value):
        """One cell (``changes.set_cell``); returns the old value (a Python scalar)."""
        return _ch.set_cell(self, kind, eid, name, value)[0]

    def write_cell(self, kind: str, eid, name: str, value):
        """One cell; ``(old, new)`` as Python scalars (``changes.set_cell``)."""
        return _ch.set_cell(self, kind, eid, name, value)

    def set_values(self, kind: str, ids, name: str, values) -> np.ndarray:
        """One column for many ids (``changes.apply_set``); returns the old values."""
        return _ch.apply_set(self, kind, ids, name, values)[0]

    def write_rows(self, kind: str, rows, name: str, values) -> np.ndarray:
        """Trusted write at row positions (``changes.apply_set_rows(check=False)``); returns old."""
        return _ch.apply_set_rows(self, kind, rows, name, values, check=False)

    def write_rows_checked(self, kind: str, rows, name: str, values) -> np.ndarray:
        """Checked write at row positions (``changes.apply_set_rows``); returns old."""
        return _ch.apply_set_rows(self, kind, rows, name, values)

    def add(self, kind: str, columns: dict, ids=None, *, file=None) -> np.ndarray:
        """Add rows (``changes.AddRows``); returns their ids."""
        return _ch.apply(self, [_ch.AddRows(kind, columns, ids)], file=file).done[0].ids

    def remove(self, kind: str, ids) -> None:
        """Remove rows (``changes.RemoveRows``)."""
        _ch.apply(self, [_ch.RemoveRows(kind, ids)])

    def row_values(self, kind: str, eid) -> dict:
        """Every schema column of one element as Python scalars (the payload of add/remove events)."""
        t = self[kind]
        r = t.row(eid)
        out = {}
        for name, arr in t.cols.items():
            v = arr[r]
            out[name] = v.item() if hasattr(v, "item") else v
        return out

    # --- whole-world helpers -------------------------------------------------------------
    def copy(self) -> "World":
        w = World(self.sn_mva, self.f_hz, self.name)
        w.tables = {k: t.copy() for k, t in self.tables.items()}
        return w

    def equals(self, other: "World") -> bool:
        return (self.sn_mva == other.sn_mva and self.f_hz == other.f_hz
                and all(self.tables[k].equals(other.tables[k]) for k in self.tables))

    def counts(self) -> dict:
        return {k: len(t) for k, t in self.tables.items() if len(t)}

    def validate(self, file=None) -> None:
        """Check cross-table invariants (references exist); raise BadReferenceError on the first miss."""
        for t in self.tables.values():
            for c in t.spec.refs:
                _ch._check_refs(self, c.ref, t.cols[c.name], t.kind, c.name, t.ids, file=file)
        sw = self["switch"]
        if len(sw):
            _ch.check_switch_elements(self, sw.cols["et"].tolist(), sw.cols["element"].tolist(), sw.ids, file)


from . import changes as _ch  # noqa: E402  (changes builds on Table and World)


def world_from_frames(frames: dict, *, sn_mva=1.0, f_hz=50.0, name="", file=None, strict=False) -> World:
    """Build a World from ``{kind: DataFrame}`` (pandapower's tables).  Nothing is half-loaded: the
    world is only returned once every table and every reference has been validated.

    Columns the schema does not know raise SchemaError when ``strict``; otherwise they are kept as
    pass-through ``extra`` columns (pandapower nets carry user columns) and ignored by the solver.
    """
    w = World(sn_mva=sn_mva, f_hz=f_hz, name=name)
    for kind in KIND_ORDER:
        df = frames.get(kind)
        if df is None or len(df) == 0:
            continue
        t = w[kind]
        cols, extra = {}, {}
        for cname in df.columns:
            if cname in t.spec:
                cols[cname] = df[cname].to_numpy()
            elif kind in ("trafo", "trafo3w") and cname == "tap_phase_shifter":
                continue  # pandapower 2 flag, translated below
            elif strict:
                raise SchemaError(f"unknown column {cname!r}", file=file, table=kind, field=cname)
            else:
                extra[cname] = df[cname].to_numpy(dtype=object)
        if kind in ("trafo", "trafo3w") and "tap_changer_type" not in df.columns:
            cols["tap_changer_type"] = _tap_type_from_pp2(df)
        try:
            ids = df.index.to_numpy().astype(np.int64)
        except (TypeError, ValueError):
            raise SchemaError("index is not an integer id", file=file, table=kind) from None
        t.append(cols, ids, file=file)
        t.extra = extra
    w.validate(file=file)
    return w


def _tap_type_from_pp2(df):
    """pandapower 2.x had tap_phase_shifter (bool) instead of tap_changer_type."""
    n = len(df)
    out = np.empty(n, dtype=object)
    has_tap = df["tap_pos"].notna().to_numpy() if "tap_pos" in df else np.zeros(n, bool)
    ps = df["tap_phase_shifter"].fillna(False).astype(bool).to_numpy() if "tap_phase_shifter" in df else np.zeros(n, bool)
    out[:] = None
    out[has_tap] = "Ratio"
    out[has_tap & ps] = "Ideal"
    return out
