"""Profiles: the column values each step of a time series (or each scenario of a sweep) writes.

A profile set is read from a mapping ``{(kind, field): frame}`` where each frame is indexed by
step (any index; a DatetimeIndex typically) and has element ids as columns.  Accepted too:

- pandapower's habit, a ``DFData``-like object (anything with a ``.df`` DataFrame) per
  ``(element, column)`` -- its columns must be the element ids (as ints or as strings of ints);
- SimBench's absolute-value profiles: ``simbench.get_absolute_values(net, True)`` returns exactly
  such a mapping (``("load", "p_mw")`` -> steps x load index);
- one wide table whose columns are named ``kind/field/id`` (see
  :meth:`Profiles.to_arrow`), as a DataFrame or an Arrow table, with an optional ``step`` column;
- the stored form (:meth:`Profiles.stored_table`: a ``step`` column and one list column
  ``kind/field`` per profiled column), as an Arrow table or Parquet bytes (or a list of them).

Everything is validated against the world before anything runs: the kind and field exist, the
field is one the incremental or admittance path takes (``affects`` "inj" or "adm" in the schema),
every id exists, every value passes the column's type and range check.  A bad profile raises a
``SchemaError`` / ``BadReferenceError`` naming the table, the element id, the field (and the step).
"""
from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gridtape.errors import BadReferenceError, SchemaError

PROFILE_IDS = b"gridtape.profile_ids"  # schema metadata of the stored form: {"kind/field": [ids]}
# plain and uncompressed, statistics of the step column only: the profiles are stored while the
# steps run, and their encoding is CPU time taken from them (case2869pegase x 1,000 steps: 14 ms
# plain, 33 ms zstd with byte-stream split for 85 % of the size; random profiles are noise to a
# compressor, measured shapes less so, and disks are cheaper than a study's CPU)
_STORED = {"compression": "none", "use_dictionary": False, "write_statistics": ["step"]}
PART_VALUES = 2_000_000  # values per stored part of the profiles (16 MB of float64)
PROFILABLE = ("inj", "adm")  # what a profiled column may affect: no topology change per step
STEP = "step"
STEP_NAME = b"gridtape.step_name"  # schema metadata: the name of the step index (JSON), when it has one


class Entry:
    """One profiled column: ``kind``, ``field``, the element ``ids`` and their ``rows`` in the world's
    table, the values (steps x ids, the column's dtype)."""

    __slots__ = ("kind", "field", "ids", "rows", "values")

    def __init__(self, kind, field, ids, rows, values):
        self.kind, self.field, self.ids, self.rows, self.values = kind, field, ids, rows, values


class Profiles:
    """Validated profiles: an index of steps and one :class:`Entry` per profiled (kind, field)."""

    def __init__(self, index: pd.Index, entries: list):
        self.index = index
        self.entries = entries

    def __len__(self) -> int:
        return len(self.index)

    @property
    def columns(self) -> list:
        return [(e.kind, e.field) for e in self.entries]

    def slice(self, start: int, stop: int) -> "Profiles":
        return Profiles(self.index[start:stop], [Entry(e.kind, e.field, e.ids, e.rows, e.values[start:stop])
                                                 for e in self.entries])

    def write_step(self, world, k: int) -> None:
        """Write step ``k``'s values into ``world`` (values were validated when the profiles were
        read, so the trusted row write is used: the same counters and dirty marks as any write)."""
        for e in self.entries:
            world.write_rows(e.kind, e.rows, e.field, e.values[k])

    # --- the stored form ----------------------------------------------------------------------
    def to_arrow(self) -> pa.Table:
        """One wide table: a ``step`` column (the index) and a column ``kind/field/id`` per element."""
        from .sink import column_arrays

        names, arrays = [STEP], [_index_array(self.index)]
        for e in self.entries:
            names += [f"{e.kind}/{e.field}/{i}" for i in e.ids.tolist()]
            arrays += column_arrays(e.values.astype(np.float64, copy=False)) if e.values.dtype.kind == "f" \
                else [pa.array(c) for c in np.ascontiguousarray(e.values.T)]
        return pa.Table.from_arrays(arrays, names=names).replace_schema_metadata(_index_meta(self.index) or None)

    def stored_table(self, start: int = 0, stop: int | None = None) -> pa.Table:
        """Steps ``start`` .. ``stop`` in the stored form: a ``step`` column and one column
        ``kind/field`` per entry holding a list of the step's values (one per element, in the order
        of the ids the schema metadata ``gridtape.profile_ids`` gives).  A few columns whatever
        the number of elements: a Parquet column costs 10-20 us per row group to write, which for
        the 10,600 profiled values of a case9241pegase step would cost more than the steps."""
        stop = len(self) if stop is None else stop
        names, arrays = [STEP], [_index_array(self.index[start:stop])]
        for e in self.entries:
            v = np.ascontiguousarray(e.values[start:stop])
            names.append(f"{e.kind}/{e.field}")
            arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), len(e.ids)))
        meta = {f"{e.kind}/{e.field}": [int(i) for i in e.ids] for e in self.entries}
        return pa.Table.from_arrays(arrays, names=names).replace_schema_metadata(
            {PROFILE_IDS: json.dumps(meta, separators=(",", ":")), **_index_meta(self.index)})

    def write_parquet(self, where) -> None:
        """The stored form (deterministic for equal profiles) written to ``where`` (a path or a
        binary file) in row groups of a size fixed by the width, so one group at a time is
        copied: the content-hashed profiles file of a study."""
        from .sink import group_rows

        width = sum(len(e.ids) for e in self.entries)
        step = group_rows(width)
        writer = None
        for a in range(0, max(len(self), 1), step):
            tb = self.stored_table(a, min(a + step, len(self)))
            if writer is None:
                writer = pq.ParquetWriter(where, tb.schema, **_STORED)
            writer.write_table(tb, row_group_size=step)
        writer.close()

    def to_parquet_parts(self) -> list:
        """The stored form cut into parts of about PART_VALUES values (consecutive steps), each
        its own Parquet bytes: a journal without a file stores each as a blob (a DuckDB insert of
        one big blob holds several times its size in memory); ``read_profiles`` takes the list
        back."""
        width = max(1, sum(len(e.ids) for e in self.entries))
        step = max(1, PART_VALUES // width)
        return [self.slice(a, a + step).to_parquet_bytes() for a in range(0, max(len(self), 1), step)]

    def to_parquet_bytes(self) -> bytes:
        """The stored form as Parquet bytes (see :meth:`write_parquet`)."""
        buf = io.BytesIO()
        self.write_parquet(buf)
        return buf.getvalue()


def jitter(world, n, spread=0.05, seed=0, columns=(("load", "p_mw"), ("load", "q_mvar"), ("gen", "p_mw"),
                                                   ("sgen", "p_mw")), index=None) -> dict:
    """Profiles that move each of ``columns`` by an independent uniform +-``spread`` (relative)
    around the world's values, per element and step: ``{(kind, field): DataFrame}`` (kinds without
    elements are left out).  For sweeps, tests and benchmarks."""
    rng = np.random.default_rng(seed)
    if index is None:
        index = pd.date_range("2026-01-01", periods=n, freq="h")
    out = {}
    for kind, field in columns:
        t = world[kind]
        if len(t):
            out[(kind, field)] = pd.DataFrame(t.cols[field] * (1 + spread * rng.uniform(-1, 1, (n, len(t)))),
                                              index=index, columns=t.ids)
    return out


def _index_array(index: pd.Index) -> pa.Array:
    """The step labels as an Arrow array; a tz-aware DatetimeIndex keeps its zone (a timestamp
    type with ``tz``: the instants as UTC, the zone as the type's)."""
    if isinstance(index, pd.DatetimeIndex):
        return pa.array(index)
    return pa.array(np.asarray(index))


def _index_meta(index: pd.Index) -> dict:
    """Schema metadata keeping the index's name (a step column is always called ``step``)."""
    return {} if index.name is None else {STEP_NAME: json.dumps(index.name)}


def _step_index(tb: pa.Table, column: str = STEP, name=None) -> pd.Index:
    """The step labels of a table's ``column`` (its zone kept), named as its metadata says."""
    meta = tb.schema.metadata or {}
    if STEP_NAME in meta:
        name = json.loads(meta[STEP_NAME])
    index = pd.Index(tb.column(column).to_pandas())
    index.name = name  # (not the column's)
    return index


def read_profiles(obj, world) -> Profiles:
    """Profiles from any accepted form (see the module doc), validated against ``world``."""
    if isinstance(obj, Profiles):
        frames = {(e.kind, e.field): pd.DataFrame(e.values, index=obj.index, columns=e.ids) for e in obj.entries}
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        frames = _split_table(_parquet(obj))
    elif isinstance(obj, (list, tuple)) and obj and all(isinstance(b, (bytes, bytearray)) for b in obj):
        frames = _split_table(pa.concat_tables([_parquet(b) for b in obj]))
    elif isinstance(obj, pa.Table):
        frames = _split_table(obj)
    elif isinstance(obj, pd.DataFrame):
        tb = pa.Table.from_pandas(obj.reset_index(names=STEP) if STEP not in obj.columns else obj,
                                  preserve_index=False)
        if STEP not in obj.columns and obj.index.name is not None:
            tb = tb.replace_schema_metadata({**(tb.schema.metadata or {}), **_index_meta(obj.index)})
        frames = _split_wide(tb)
    elif isinstance(obj, dict) or hasattr(obj, "items"):
        frames = {}
        for key, fr in obj.items():
            if not (isinstance(key, tuple) and len(key) == 2):
                raise SchemaError(f"a profile key is (kind, field), not {key!r}", table="profiles")
            frames[(str(key[0]), str(key[1]))] = fr.df if hasattr(fr, "df") and not isinstance(fr, pd.DataFrame) \
                else fr
    else:
        raise SchemaError(f"profiles must be a mapping {{(kind, field): DataFrame}}, a wide table or Parquet "
                          f"bytes, not {type(obj).__name__}", table="profiles")
    if not frames:
        raise SchemaError("no profiles given", table="profiles")
    return _validate(frames, world)


def _parquet(data) -> pa.Table:
    try:
        return pq.read_table(io.BytesIO(bytes(data)))
    except (pa.ArrowException, OSError) as e:
        raise SchemaError(f"the profiles are not a readable Parquet file: {e}", table="profiles") from None


def _split_table(tb: pa.Table) -> dict:
    """The frames of a table in the stored form (list columns) or the wide form."""
    meta = tb.schema.metadata or {}
    if PROFILE_IDS not in meta:
        return _split_wide(tb)
    ids = json.loads(meta[PROFILE_IDS])
    index = _step_index(tb)
    frames = {}
    for name, cols in ids.items():
        kind, _, field = name.partition("/")
        col = tb.column(name).combine_chunks()
        flat = col.flatten().to_numpy(zero_copy_only=False) if len(col) else np.zeros(0)
        frames[(kind, field)] = pd.DataFrame(flat.reshape(len(col), len(cols)), index=index, columns=cols)
    return frames


def _split_wide(tb: pa.Table) -> dict:
    names = tb.column_names
    pandas_index = _pandas_index_column(tb) if STEP not in names else None
    if STEP in names:
        index = _step_index(tb)
    elif pandas_index is not None:  # df.to_parquet(path) of a frame indexed by step
        index = _step_index(tb, pandas_index, None if pandas_index.startswith("__index_level_") else pandas_index)
    else:
        index = pd.RangeIndex(tb.num_rows)
    groups: dict = {}
    for name in names:
        if name in (STEP, pandas_index):
            continue
        parts = str(name).split("/")
        if len(parts) != 3:
            raise SchemaError(f"a profile column is named kind/field/id, not {name!r}", table="profiles",
                              field=str(name))
        groups.setdefault((parts[0], parts[1]), []).append((parts[2], name))
    frames = {}
    for key, cols in groups.items():
        frames[key] = pd.DataFrame({i: tb.column(n).to_numpy(zero_copy_only=False) for i, n in cols}, index=index)
    return frames


def _pandas_index_column(tb: pa.Table):
    """The column pandas stored a frame's (single, not range) index in, or None."""
    try:
        cols = (tb.schema.pandas_metadata or {}).get("index_columns") or []
    except (ValueError, TypeError):
        return None
    cols = [c for c in cols if isinstance(c, str) and c in tb.column_names]
    return cols[0] if len(cols) == 1 else None


def _ids_of(columns, kind, field) -> np.ndarray:
    out = []
    for c in columns:
        if isinstance(c, (bool, np.bool_)):  # int(True) is 1, but a flag is not an element id
            raise SchemaError(f"profile ({kind}, {field}): column {c!r} is not an element id", table=kind,
                              field=field)
        try:
            v = int(c) if not isinstance(c, (float, np.floating)) or float(c).is_integer() else None
        except (TypeError, ValueError):
            v = None
        if v is None:
            raise SchemaError(f"profile ({kind}, {field}): column {c!r} is not an element id", table=kind,
                              field=field)
        out.append(v)
    return np.asarray(out, dtype=np.int64)


def _validate(frames: dict, world) -> Profiles:
    index = None
    entries = []
    for (kind, field), fr in frames.items():
        col = _profilable(world, kind, field)
        if not isinstance(fr, pd.DataFrame):
            raise SchemaError(f"profile ({kind}, {field}) is a {type(fr).__name__}, not a DataFrame", table=kind,
                              field=field)
        if fr.shape[1] == 0:
            continue  # profiles nothing (SimBench gives such frames for kinds a grid lacks)
        _check_index(fr.index, kind, field)
        if index is None:
            index = fr.index
        elif not fr.index.equals(index):
            raise SchemaError(f"profile ({kind}, {field}) has another step index than the others", table=kind,
                              field=field)
        ids = _ids_of(fr.columns, kind, field)
        if len(np.unique(ids)) != len(ids):
            raise SchemaError(f"profile ({kind}, {field}) names an element twice", table=kind, field=field)
        t = world[kind]
        missing = [int(i) for i in ids if int(i) not in t.positions]
        if missing:
            raise BadReferenceError(f"profile ({kind}, {field}) names missing {kind} {missing[0]}", table=kind,
                                    row=missing[0], field=field)
        entries.append(Entry(kind, field, ids, t.rows(ids).astype(np.int64), _values(col, fr, kind, ids)))
    if not entries:
        raise SchemaError("the profiles name no element", table="profiles")
    entries.sort(key=lambda e: (e.kind, e.field))
    return Profiles(index, entries)


def _profilable(world, kind, field):
    """The schema column a profile of ``(kind, field)`` writes, or why it cannot be profiled."""
    from gridtape.world.schema import F8, I8, KINDS

    if kind not in KINDS:
        raise SchemaError(f"unknown element kind {kind!r} in the profiles", table=kind, field=field)
    col = world[kind].spec.by_name.get(field)
    if col is None:
        raise SchemaError(f"{kind} has no column {field!r}", table=kind, field=field)
    if col.affects == "topo":
        why = "a write to it changes the topology, which is an edit, not a step of a profile"
    elif col.affects not in PROFILABLE:
        why = f"the power flow does not read it (a write to it affects {col.affects!r})"
    elif col.dtype not in (F8, I8):
        what = f"text (one of {', '.join(map(repr, col.choices))})" if col.choices else \
            ("text" if col.dtype == "str" else "a flag")
        why = f"it holds {what}, and a profile holds numbers per step"
    else:
        return col
    raise SchemaError(f"{kind}.{field} cannot be profiled: {why}", table=kind, field=field)


def _check_index(index: pd.Index, kind, field) -> None:
    """A step index has steps, each once, each one label that a study's Parquet files can hold
    (and give back as it was): integers, floats, strings, booleans, dates and timestamps."""
    if len(index) == 0:
        raise SchemaError(f"profile ({kind}, {field}) has no steps (no rows)", table=kind, field=field)
    what = None
    if isinstance(index, pd.MultiIndex):
        what = f"a step index of {index.nlevels} levels"
    else:
        try:
            typ = _index_array(index).type
        except (pa.ArrowException, TypeError, ValueError):
            typ = None
        if typ is None:
            what = f"step labels of dtype {index.dtype} (e.g. {index[0]!r})"
        elif pa.types.is_nested(typ):
            what = f"step labels that are sequences (e.g. {index[0]!r})"
    if what is not None:
        raise SchemaError(f"profile ({kind}, {field}) has {what}: a step takes one label, an integer, float, "
                          f"string, date or timestamp (e.g. index.map(str), or a DatetimeIndex)",
                          table=kind, field=field)
    if not index.is_unique:
        dup = index[index.duplicated()][0]
        raise SchemaError(f"profile ({kind}, {field}) has step {dup!r} twice (each step label once)",
                          table=kind, field=field)


def _values(col, fr, kind, ids) -> np.ndarray:
    """The steps x ids values of a frame, checked as a write of each through the world's write
    path would check it (``coerce_column``, the one validator of every write); a refusal names
    the element id and the step."""
    from gridtape.world.coerce import coerce_column

    raw = fr.to_numpy()
    vals = _floats_at_once(col, raw)
    if vals is not None:
        return vals
    vals = np.empty(raw.shape, dtype=col.np_dtype)
    for j in range(raw.shape[1]):  # a bad value (named here) or a column that is not plain numbers
        try:
            vals[:, j] = coerce_column(col, raw[:, j], table=kind)
        except SchemaError as e:
            bad = _first_bad(col, raw[:, j], kind)
            raise SchemaError(f"profile ({kind}, {col.name}), {kind} {int(ids[j])}, step {fr.index[bad]!r}: "
                              f"{e.message}", table=kind, row=int(ids[j]), field=col.name) from None
    return vals


def _floats_at_once(col, raw):
    """The float64 values of a numeric block for a float column when every value passes the
    column's checks (what coerce_column checks per column: NaN allowed, bounds), as one copy;
    None otherwise (the per-column path then names the first bad value)."""
    from gridtape.world.schema import F8

    if col.dtype != F8 or raw.dtype.kind not in "iuf":  # (booleans: refused by coerce_column)
        return None
    f = raw.astype(np.float64, copy=True)
    step = max(1, 1_000_000 // max(f.shape[1], 1))  # checked in blocks of rows: bounded temporaries
    for a in range(0, len(f), step):
        b = f[a:a + step]
        nan = np.isnan(b)
        if (not col.nan_ok and nan.any()) or (~nan & ((b < col.vmin) | (b > col.vmax))).any():
            return None
    return f


def _first_bad(col, values, kind) -> int:
    """The position of the first value of ``values`` the write path refuses."""
    from gridtape.world.coerce import coerce_column

    for i in range(len(values)):
        try:
            coerce_column(col, values[i:i + 1], table=kind)
        except SchemaError:
            return i
    return 0
