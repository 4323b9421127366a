"""The ECS world: one table of component columns per element kind, keyed by stable entity ids.

A :class:`Table` holds, for one kind, an ``ids`` array (int64, pandapower's index) and one numpy
array per schema column, all in the same row order.  Rows are never reordered except by removal;
ids are never reused (``next_id`` only grows).  The :class:`World` bundles the tables with the
network-wide values (``sn_mva``, ``f_hz``) and three change counters that tell the solver how much
to rebuild: ``topo_version`` (connectivity / bus types), ``adm_version`` (admittance values),
``inj_version`` (injections and set-points).
"""
from __future__ import annotations

import math
import weakref

import numpy as np

from gridtape.errors import BadReferenceError, SchemaError

from .schema import BOOL, F8, I8, KIND_ORDER, KINDS, STR, Column, KindSpec, spec
from .colwrite import write_floats
from .dirty import Dirty

_INF = float("inf")


def coerce_column(col: Column, values, *, table: str, file=None, ids=None) -> np.ndarray:
    """Validate and convert ``values`` to ``col``'s dtype; SchemaError naming the first bad row."""
    n = len(values)

    def bad(i, why):
        row = None if ids is None else int(ids[i])
        raise SchemaError(f"{why}: {values[i]!r}", file=file, table=table, row=row, field=col.name)

    if col.dtype == STR:
        out = np.empty(n, dtype=object)
        for i, v in enumerate(values):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                out[i] = None
            elif isinstance(v, (str, np.str_)):
                out[i] = str(v)
            elif isinstance(v, (bool, np.bool_, int, np.integer, float, np.floating)):
                out[i] = str(v)
            else:
                bad(i, "not a string")
            if col.choices is not None and out[i] is not None and out[i] not in col.choices:
                bad(i, f"must be one of {col.choices}")
        return out
    arr = np.asarray(values)
    if col.dtype == BOOL:
        if arr.dtype == np.bool_:
            return arr.astype(bool, copy=True)
        out = np.empty(n, dtype=bool)
        for i, v in enumerate(arr.tolist()):
            if isinstance(v, (bool, np.bool_)):
                out[i] = bool(v)
            elif isinstance(v, (int, float)) and v in (0, 1):
                out[i] = bool(v)
            elif isinstance(v, str) and v.strip().lower() in ("true", "false", "1", "0"):
                out[i] = v.strip().lower() in ("true", "1")
            else:
                bad(i, "not a boolean")
        return out
    if arr.dtype == object or arr.dtype.kind in "USb":
        try:
            arr = np.array([_num(v) for v in arr.tolist()], dtype=float)
        except (TypeError, ValueError):
            for i, v in enumerate(arr.tolist()):
                try:
                    _num(v)
                except (TypeError, ValueError):
                    bad(i, "not a number")
            raise
    if arr.dtype.kind not in "biuf":
        raise SchemaError(f"column of dtype {arr.dtype} is not numeric", file=file, table=table, field=col.name)
    f = arr.astype(float)
    nan = np.isnan(f)
    if nan.any() and not col.nan_ok:
        bad(int(np.argmax(nan)), "NaN is not allowed")
    ok = ~nan
    if col.lo is not None and (f[ok] < col.lo).any():
        bad(int(np.flatnonzero(ok & (f < col.lo))[0]), f"must be >= {col.lo}")
    if col.hi is not None and (f[ok] > col.hi).any():
        bad(int(np.flatnonzero(ok & (f > col.hi))[0]), f"must be <= {col.hi}")
    if col.dtype == I8:
        if not np.isfinite(f).all() or (f != np.round(f)).any():
            bad(int(np.flatnonzero(~np.isfinite(f) | (f != np.round(f)))[0]), "not an integer")
        return arr.astype(np.int64, copy=True)
    return f.astype(np.float64, copy=True)


def _num(v):
    if v is None:
        return math.nan
    if isinstance(v, str):
        s = v.strip()
        return math.nan if s == "" or s.lower() == "nan" else float(s)
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    return float(v)


def default_column(col: Column, n: int) -> np.ndarray:
    if col.dtype == STR:
        out = np.empty(n, dtype=object)
        out[:] = col.default
        return out
    return np.full(n, col.default, dtype=col.np_dtype)


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

    # --- structural changes (the World wraps these and bumps its versions) ---------------
    def append(self, columns: dict, ids=None, *, file=None) -> np.ndarray:
        """Add rows; ``columns`` maps column name -> values (missing columns take defaults)."""
        n = len(next(iter(columns.values()))) if columns else (0 if ids is None else len(ids))
        if ids is None:
            ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        else:
            ids = np.asarray(ids, dtype=np.int64)
            if len(ids) != n:
                raise SchemaError("ids and columns differ in length", table=self.kind, file=file)
            if len(np.unique(ids)) != n:
                dup = ids[np.flatnonzero(np.diff(np.sort(ids)) == 0)[0]]
                raise SchemaError("duplicate id", table=self.kind, row=int(dup), file=file)
            clash = [int(e) for e in ids.tolist() if int(e) in self.positions]
            if clash:
                raise SchemaError("id already in use", table=self.kind, row=clash[0], file=file)
            if (ids < 0).any():
                raise SchemaError("negative id", table=self.kind, row=int(ids[ids < 0][0]), file=file)
        unknown = [k for k in columns if k not in self.spec]
        if unknown:
            raise SchemaError(f"unknown column {unknown[0]!r}", table=self.kind, field=unknown[0], file=file)
        new = {}
        for c in self.spec.columns:
            if c.name in columns:
                new[c.name] = coerce_column(c, columns[c.name], table=self.kind, file=file, ids=ids)
            elif c.required:
                raise SchemaError("missing required column", table=self.kind, field=c.name, file=file)
            else:
                new[c.name] = default_column(c, n)
        for name, arr in new.items():
            self.cols[name] = np.concatenate([self.cols[name], arr])
        for name in self.extra:
            filler = np.empty(n, dtype=object)
            self.extra[name] = np.concatenate([self.extra[name], filler])
        self.ids = np.concatenate([self.ids, ids])
        if n:
            self.next_id = max(self.next_id, int(ids.max()) + 1)
        self._pos = None
        return ids

    def remove(self, ids) -> None:
        keep = np.ones(len(self.ids), dtype=bool)
        keep[self.rows(ids)] = False
        self.ids = self.ids[keep]
        for name in self.cols:
            self.cols[name] = self.cols[name][keep]
        for name in self.extra:
            self.extra[name] = self.extra[name][keep]
        self._pos = None

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
        self.topo_version = 0
        self.adm_version = 0
        self.inj_version = 0
        #: write stamps: the solver keeps partial sums keyed by them (see :meth:`stamp`)
        self.kind_version = dict.fromkeys(KIND_ORDER, 0)
        self.col_version: dict = {}
        self._tick = 0
        self._tick_all = 0
        self._watchers: list = []  # weak references to the live Dirty sets (see watch())

    # --- dirty sets --------------------------------------------------------------------------
    def watch(self) -> Dirty:
        """A new dirty set for one consumer of this world's columns (world/dirty.py): it starts
        with everything marked and is marked by every change applied after.  Keep a reference to
        it; the world holds it weakly."""
        d = Dirty(True, self.tables)
        self._watchers.append(weakref.ref(d))
        return d

    def _mark_cols(self, kind, name) -> None:
        dead = False
        for r in self._watchers:
            d = r()
            if d is None:
                dead = True
            else:
                d.cols.add((kind, name))
        if dead:
            self._prune()

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

    def __getitem__(self, kind: str) -> Table:
        try:
            return self.tables[kind]
        except KeyError:
            spec(kind)  # raises SchemaError with the list of kinds
            raise

    def __iter__(self):
        return iter(self.tables.values())

    def bump(self, affects: str, kind: str | None = None) -> None:
        """Record that something of class ``affects`` ("inj", "adm", "topo") of ``kind`` (None: of
        any kind) changed.  Code that writes ``Table.cols`` directly must call this."""
        kv = self.kind_version
        self._tick += 1
        if kind is None:
            self._tick_all = self._tick
            for k in kv:
                kv[k] += 1
            self._mark_rows(None)
        else:
            kv[kind] += 1
        if affects == "inj":
            self.inj_version += 1
        elif affects == "adm":
            self.adm_version += 1
        elif affects == "topo":
            self.topo_version += 1

    # --- writes --------------------------------------------------------------------------
    def set_value(self, kind: str, eid, name: str, value):
        """Validate and write one cell; returns the old value (a Python scalar).  Bumps the
        matching version.  Nothing changes when the value is rejected."""
        return self.write_cell(kind, eid, name, value)[0]

    def write_cell(self, kind: str, eid, name: str, value):
        """:meth:`set_value` returning ``(old, new)`` as Python scalars (``new`` as stored, after
        coercion): the journal records both."""
        t = self.tables.get(kind) or self[kind]
        col = t.spec.by_name.get(name) or _column(t, name)
        r = t.positions.get(eid) if type(eid) is int else None
        if r is None:
            r = t.row(eid)
        tv = type(value)
        if col.dtype == F8 and (tv is float or tv is int or tv is np.float64):
            v = float(value)
            if v != v:
                if not col.nan_ok:
                    raise SchemaError(f"NaN is not allowed: {value!r}", table=kind, row=eid, field=name)
            elif (col.lo is not None and v < col.lo) or (col.hi is not None and v > col.hi):
                coerce_column(col, [value], table=kind, ids=[eid])  # raises, naming the bound
            new = v
        else:
            v = coerce_column(col, [value], table=kind, ids=[eid])[0]
            if col.ref:
                self._check_refs(col.ref, [v], kind, name, [eid])
            new = None
        arr = t.cols[name]
        old = arr[r]
        arr[r] = v
        self.bump(col.affects, kind)
        self.col_version[(kind, name)] = self._tick
        self._mark_cols(kind, name)
        if new is None:
            new = arr[r]
            new = new.item() if hasattr(new, "item") else new
        return (old.item() if hasattr(old, "item") else old), new

    def row_values(self, kind: str, eid) -> dict:
        """Every schema column of one element as Python scalars (the payload of add/remove events)."""
        t = self[kind]
        r = t.row(eid)
        out = {}
        for name, arr in t.cols.items():
            v = arr[r]
            out[name] = v.item() if hasattr(v, "item") else v
        return out

    def set_values(self, kind: str, ids, name: str, values) -> np.ndarray:
        """Vectorized write of one column for many ids; returns the old values."""
        t = self[kind]
        col = _column(t, name)
        ids = np.asarray(ids, dtype=np.int64)
        if col.dtype == F8 and col.ref is None:
            old = write_floats(t.cols[name], None if ids is t.ids else t.rows(ids), values,
                               -_INF if col.lo is None else col.lo, _INF if col.hi is None else col.hi,
                               col.nan_ok)
            if old is not None:
                self.bump(col.affects, kind)
                self.col_version[(kind, name)] = self._tick
                self._mark_cols(kind, name)
                return old
        rows = slice(None) if ids is t.ids else t.rows(ids)
        new = None
        if col.dtype == F8:
            new = _fast_floats(col, values, ids.shape)
        if new is None:
            vals = np.broadcast_to(np.asarray(values, dtype=object if col.dtype == STR else None), ids.shape)
            new = coerce_column(col, vals, table=kind, ids=ids)
        if col.ref:
            self._check_refs(col.ref, new, kind, name, ids)
        arr = t.cols[name]
        old = arr[rows].copy()
        arr[rows] = new
        self.bump(col.affects, kind)
        self.col_version[(kind, name)] = self._tick
        self._mark_cols(kind, name)
        return old

    def write_rows(self, kind: str, rows, name: str, values) -> np.ndarray:
        """Trusted write of one column at row positions ``rows`` (an int array, or None for every
        row); returns the old values.  Nothing is checked: ``values`` must already be valid and of
        the column's dtype (in range, references existing), as the caller derived them itself.
        The version counters and write stamps move exactly as :meth:`set_values` moves them; code
        with values from outside uses :meth:`set_values`."""
        t = self.tables[kind]
        arr = t.cols[name]
        if rows is None:
            old = arr.copy()
            arr[:] = values
        else:
            old = arr[rows]
            arr[rows] = values
        self.bump(t.spec.by_name[name].affects, kind)
        self.col_version[(kind, name)] = self._tick
        self._mark_cols(kind, name)
        return old

    def write_rows_checked(self, kind: str, rows, name: str, values) -> np.ndarray:
        """:meth:`set_values` at row positions ``rows`` (an int64 array, or None for every row):
        the same validation (a float column's values through the same kernel; anything else, or
        a value the kernel refuses, through :meth:`set_values` itself, which names the bad row),
        without the id lookup.  Returns the old values."""
        t = self.tables[kind]
        col = t.spec.by_name.get(name)
        if col is not None and col.dtype == F8 and col.ref is None:
            old = write_floats(t.cols[name], rows, values, -_INF if col.lo is None else col.lo,
                               _INF if col.hi is None else col.hi, col.nan_ok)
            if old is not None:
                self.bump(col.affects, kind)
                self.col_version[(kind, name)] = self._tick
                self._mark_cols(kind, name)
                return old
        return self.set_values(kind, t.ids if rows is None else t.ids[rows], name, values)

    def add(self, kind: str, columns: dict, ids=None, *, file=None) -> np.ndarray:
        t = self[kind]
        self.kind_version[kind] += 1
        for c in t.spec.refs:
            if c.name in columns:
                vals = coerce_column(c, columns[c.name], table=kind, file=file, ids=ids)
                self._check_refs(c.ref, vals, kind, c.name, ids, file=file)
        if kind == "switch" and "et" in columns:
            self._check_switch_elements(columns, ids, file)
        new = t.append(columns, ids, file=file)
        self.topo_version += 1
        self._mark_rows(kind)
        return new

    def remove(self, kind: str, ids) -> None:
        self[kind].remove(ids)
        self.kind_version[kind] += 1
        self.topo_version += 1
        self._mark_rows(kind)

    def _check_refs(self, target, values, kind, name, ids, file=None):
        known = self[target].positions
        for i, v in enumerate(np.asarray(values).tolist()):
            if int(v) not in known:
                row = None if ids is None else int(np.asarray(ids)[i])
                raise BadReferenceError(f"refers to missing {target} {int(v)}", file=file, table=kind,
                                        row=row if row is not None else i, field=name)

    def _check_switch_elements(self, columns, ids, file):
        target = {"b": "bus", "l": "line", "t": "trafo", "t3": "trafo3w"}
        for i, (et, el) in enumerate(zip(columns["et"], columns.get("element", []))):
            kind = target.get(et)
            if kind is not None and int(el) not in self[kind].positions:
                row = i if ids is None else int(np.asarray(ids)[i])
                raise BadReferenceError(f"switch element refers to missing {kind} {int(el)}", file=file,
                                        table="switch", row=row, field="element")

    # --- whole-world helpers -------------------------------------------------------------
    def copy(self) -> "World":
        w = World(self.sn_mva, self.f_hz, self.name)
        w.tables = {k: t.copy() for k, t in self.tables.items()}
        w.topo_version, w.adm_version, w.inj_version = self.topo_version, self.adm_version, self.inj_version
        w.kind_version = dict(self.kind_version)
        w.col_version, w._tick, w._tick_all = dict(self.col_version), self._tick, self._tick_all
        return w

    def equals(self, other: "World") -> bool:
        return (self.sn_mva == other.sn_mva and self.f_hz == other.f_hz
                and all(self.tables[k].equals(other.tables[k]) for k in self.tables))

    def stamp(self, kind: str, *names) -> int:
        """The latest write stamp of any of ``kind``'s columns ``names`` (0: never written)."""
        cv = self.col_version
        return max(self._tick_all, *(cv.get((kind, n), 0) for n in names))

    def stamp_of(self, keys) -> int:
        """The latest write stamp of any ``(kind, column)`` in ``keys`` (0: never written)."""
        cv = self.col_version
        m = self._tick_all
        for k in keys:
            v = cv.get(k, 0)
            if v > m:
                m = v
        return m

    def counts(self) -> dict:
        return {k: len(t) for k, t in self.tables.items() if len(t)}

    def validate(self, file=None) -> None:
        """Check cross-table invariants (references exist); raise BadReferenceError on the first miss."""
        for t in self.tables.values():
            for c in t.spec.refs:
                self._check_refs(c.ref, t.cols[c.name], t.kind, c.name, t.ids, file=file)
        sw = self["switch"]
        if len(sw):
            self._check_switch_elements({"et": sw.cols["et"], "element": sw.cols["element"]}, sw.ids, file)


def _fast_floats(col: Column, values, shape):
    """The common case of a float write (numeric array or scalar, all valid) without the generic
    per-value checks; None sends the caller to :func:`coerce_column` (which names the bad row)."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        return None
    if arr.dtype.kind not in "fiu" or (arr.shape != shape and arr.ndim != 0):
        return None
    f = arr.astype(np.float64) if arr.shape == shape else np.full(shape, arr, dtype=np.float64)
    if not len(f):
        return f
    if col.lo is None and col.hi is None:
        t = f.sum()  # NaN anywhere (or inf - inf) makes the sum NaN: then check each value
        if t == t or col.nan_ok:
            return f
        return None if np.isnan(f).any() else f
    lo, hi = f.min(), f.max()  # NaN propagates into both
    if lo != lo:
        if not col.nan_ok:
            return None
        ok = f[~np.isnan(f)]
        if not len(ok):
            return f
        lo, hi = ok.min(), ok.max()
    if (col.lo is not None and lo < col.lo) or (col.hi is not None and hi > col.hi):
        return None
    return f


def _column(t: Table, name: str) -> Column:
    try:
        return t.spec[name]
    except KeyError:
        raise SchemaError(f"{t.kind} has no column {name!r}", table=t.kind, field=name) from None


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
