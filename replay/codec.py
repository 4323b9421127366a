"""World tables <-> Arrow tables, and the writer-independent data hash of a table.

A kind's Arrow table has the columns ``id`` (int64), every schema column in schema order with its
dtype (float64, int64, bool, or string with nulls), then the table's pass-through ``extra`` columns.
An extra column is an object array of arbitrary Python values; it is stored with one of these
*encodings*, recorded in the manifest so that reading gives back the same values and types:

- ``"str"``   every value is a str or None            -> Arrow string (None = null)
- ``"bool"``  every value is a bool                    -> Arrow bool
- ``"int"``   every value is an int (int64 range)      -> Arrow int64
- ``"float"`` every value is a float                   -> Arrow float64
- ``"tagged"`` anything else                           -> Arrow string, one tagged text per value
  (see :func:`tag`); None stays null.

Numpy scalars read back as the matching Python scalars (``np.float64(1.0)`` -> ``1.0``); that is
the only normalisation.  Values with no encoding (arbitrary objects) raise SchemaError.
"""
from __future__ import annotations

import hashlib
import json
import numpy as np
import pyarrow as pa

from gridtape.errors import SchemaError, SnapshotCorruptError
from gridtape.world.schema import BOOL, F8, I8, STR
from gridtape.world.world import Table

ARROW_TYPES = {F8: pa.float64(), I8: pa.int64(), BOOL: pa.bool_(), STR: pa.string()}
_EXTRA_TYPES = {"str": pa.string(), "bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(),
                "tagged": pa.string()}
_CANON_NAN = np.float64("nan")
_I64 = (-(2 ** 63), 2 ** 63 - 1)


# --- extra (pass-through) values --------------------------------------------------------------
def tag(v) -> str | None:
    """The tagged text of one extra value: None -> None, ``s<str>``, ``b1``/``b0``, ``i<int>``,
    ``f<float.hex>``, ``A`` (pandas.NA), ``T`` (pandas.NaT), ``j<json>`` (lists/dicts of JSON
    values).  Two values are the same extra value iff their tags are equal."""
    if v is None:
        return None
    if isinstance(v, str):
        return "s" + v
    if isinstance(v, (bool, np.bool_)):
        return "b1" if v else "b0"
    if isinstance(v, (int, np.integer)):
        return "i" + str(int(v))
    if isinstance(v, (float, np.floating)):
        return "f" + float(v).hex()
    if isinstance(v, (list, tuple, dict)):
        try:
            text = json.dumps(v, sort_keys=True, allow_nan=True)
        except (TypeError, ValueError):
            raise TypeError(f"not JSON: {v!r}") from None
        if json.loads(text) != v and not isinstance(v, tuple):
            raise TypeError(f"does not round-trip through JSON: {v!r}")
        return "j" + text
    name = type(v).__name__
    if name == "NAType":
        return "A"
    if name == "NaTType":
        return "T"
    raise TypeError(f"cannot store a {name} value")


def untag(t):
    if t is None:
        return None
    c, rest = t[0], t[1:]
    if c == "s":
        return rest
    if c == "b":
        return rest == "1"
    if c == "i":
        return int(rest)
    if c == "f":
        return float.fromhex(rest)
    if c == "j":
        return json.loads(rest)
    if c in "AT":
        import pandas as pd

        return pd.NA if c == "A" else pd.NaT
    raise ValueError(f"unknown extra-value tag {c!r}")


def extra_encoding(values: np.ndarray) -> str:
    types = set(map(type, values.tolist() if values.dtype != object else values))
    if not types or all(issubclass(t, str) or t is type(None) for t in types):
        return "str"
    if all(issubclass(t, (bool, np.bool_)) for t in types):
        return "bool"
    if all(issubclass(t, (int, np.integer)) and not issubclass(t, (bool, np.bool_)) for t in types):
        ints = [int(v) for v in values]
        if min(ints) >= _I64[0] and max(ints) <= _I64[1]:
            return "int"
        return "tagged"
    if all(issubclass(t, (float, np.floating)) for t in types):
        return "float"
    return "tagged"


def encode_extra(values: np.ndarray, *, table: str, name: str, ids) -> tuple[str, pa.Array]:
    enc = extra_encoding(values)
    if enc == "tagged":
        out = []
        for i, v in enumerate(values):
            try:
                out.append(tag(v))
            except TypeError as e:
                raise SchemaError(f"extra column value cannot be stored: {e}", table=table,
                                  row=int(ids[i]), field=name) from None
        return enc, pa.array(out, type=pa.string())
    if enc in ("int", "float"):
        return enc, pa.array(np.asarray(values.tolist(), dtype=np.int64 if enc == "int" else np.float64))
    if enc == "bool":
        return enc, pa.array(np.asarray(values.tolist(), dtype=bool))
    return enc, pa.array([None if v is None else str(v) for v in values] if values.dtype != object
                         else values, type=pa.string())


def decode_extra(arr: pa.Array, enc: str) -> np.ndarray:
    vals = arr.to_pylist()
    if enc == "tagged":
        vals = [untag(t) for t in vals]
    out = np.empty(len(vals), dtype=object)
    out[:] = vals
    return out


def extras_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two extra columns hold the same values (by :func:`tag`; NaN equals NaN)."""
    return len(a) == len(b) and all(x is y or _tag_or_self(x) == _tag_or_self(y) for x, y in zip(a, b))


def _tag_or_self(v):
    try:
        return tag(v)
    except TypeError:
        return v


# --- world tables -----------------------------------------------------------------------------
def table_to_arrow(t: Table) -> tuple[pa.Table, list]:
    """The Arrow table of one kind and its extra-column encodings ``[[name, encoding], ...]``."""
    arrays, names, extras = [pa.array(t.ids, type=pa.int64())], ["id"], []
    for c in t.spec.columns:
        arrays.append(pa.array(t.cols[c.name], type=ARROW_TYPES[c.dtype]))
        names.append(c.name)
    for name, values in t.extra.items():
        if name in names:
            raise SchemaError("extra column shadows a schema column", table=t.kind, field=name)
        enc, arr = encode_extra(values, table=t.kind, name=name, ids=t.ids)
        arrays.append(arr)
        names.append(name)
        extras.append([name, enc])
    return pa.Table.from_arrays(arrays, names=names), extras


def columns_of(tb: pa.Table) -> list:
    """``[[name, arrow type name], ...]`` of a table, as the manifest records them."""
    return [[f.name, str(f.type)] for f in tb.schema]


def canonical(tb: pa.Table, columns, *, file) -> pa.Table:
    """The columns ``[[name, type], ...]`` of a read table in that order; corrupt if absent/mistyped."""
    arrays = []
    for name, typ in columns:
        i = tb.schema.get_field_index(name)
        if i < 0:
            raise SnapshotCorruptError("column missing", file=file, field=name)
        col = tb.column(i)
        if str(col.type) != typ:
            raise SnapshotCorruptError(f"column has type {col.type}, expected {typ}", file=file, field=name)
        arrays.append(col)
    return pa.Table.from_arrays(arrays, names=[n for n, _ in columns], metadata=tb.schema.metadata)


def schema_columns(kind_spec, extras) -> list:
    """The ``[[name, type], ...]`` a kind's table has under the current schema."""
    cols = [["id", "int64"]] + [[c.name, str(ARROW_TYPES[c.dtype])] for c in kind_spec.columns]
    return cols + [[n, str(_EXTRA_TYPES[e])] for n, e in extras]


def table_from_arrow(kind: str, tb: pa.Table, extras, next_id: int, *, file) -> Table:
    """Rebuild a Table from an Arrow table in canonical order; arrays are writable.  A table written
    under another schema (columns differ) goes through validation: known columns are coerced,
    missing ones take their defaults, unknown ones become extra columns."""
    t = Table(kind)
    if [list(c) for c in columns_of(tb)] != schema_columns(t.spec, extras):
        return _table_from_other_schema(t, tb, extras, next_id, file=file)
    for c in ("id",) + t.spec.names:
        col = tb.column(c)
        if col.null_count and (c == "id" or t.spec[c].dtype != STR):
            raise SnapshotCorruptError("null in a non-string column", file=file, table=kind, field=c)
    cols = {}
    for c in t.spec.columns:
        arr = tb.column(c.name).to_numpy()
        cols[c.name] = arr.astype(object) if c.dtype == STR else np.array(arr, dtype=c.np_dtype)
    t = Table.from_arrays(kind, np.array(tb.column("id").to_numpy(), dtype=np.int64), cols,
                          {name: decode_extra(tb.column(name), enc) for name, enc in extras}, next_id)
    if len(t.ids) and int(t.ids.max()) >= t.next_id:
        raise SnapshotCorruptError("next_id is not above every id", file=file, table=kind)
    return t


def _table_from_other_schema(t: Table, tb: pa.Table, extras, next_id, *, file) -> Table:
    enc = dict(extras)
    cols, extra = {}, {}
    for name in tb.column_names:
        if name == "id":
            continue
        if name in enc:
            extra[name] = decode_extra(tb.column(name), enc[name])
        elif name in t.spec:
            cols[name] = tb.column(name).to_numpy(zero_copy_only=False)
        else:
            extra[name] = decode_extra(tb.column(name), "str" if pa.types.is_string(tb.column(name).type) else "")
    t.append(cols, tb.column("id").to_numpy(zero_copy_only=False), file=file)
    for name, values in extra.items():
        if name not in t.spec:
            t.extra[name] = values
    t.next_id = max(t.next_id, int(next_id))
    return t


# --- data hash ---------------------------------------------------------------------------------
def data_hash(tb: pa.Table) -> str:
    """blake2b over the column contents only (not the file bytes): the number of rows, each column's
    name and type, then its values -- little-endian int64/float64 (one canonical NaN), bools as
    bytes, strings as int64 lengths (-1 for null) followed by their utf-8 bytes; nulls in other
    columns as a validity byte mask plus zeros.  Any Parquet writer or compression gives the same."""
    h = hashlib.blake2b(digest_size=20)
    h.update(f"rows={tb.num_rows};".encode())
    for name, col in zip(tb.column_names, tb.columns):
        h.update(f"{len(name)}:{name}:{col.type};".encode())
        arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        _hash_array(h, arr)
    return h.hexdigest()


def _hash_array(h, arr: pa.Array) -> None:
    n = len(arr)
    typ = arr.type
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_binary(typ):
        off_dtype = np.int64 if pa.types.is_large_string(typ) else np.int32
        bufs = arr.buffers()
        offsets = np.frombuffer(bufs[1], dtype=off_dtype)[arr.offset:arr.offset + n + 1] if n else np.zeros(1)
        lengths = np.diff(offsets).astype("<i8")
        if arr.null_count:
            lengths[np.asarray(arr.is_null().to_numpy(zero_copy_only=False))] = -1
        h.update(lengths.tobytes())
        if n and bufs[2] is not None:
            h.update(memoryview(bufs[2])[int(offsets[0]):int(offsets[-1])])
        return
    if pa.types.is_boolean(typ) or pa.types.is_integer(typ) or pa.types.is_floating(typ):
        valid = None
        if arr.null_count:
            valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False))
            h.update(valid.astype(np.uint8).tobytes())
            arr = arr.fill_null(False if pa.types.is_boolean(typ) else 0)
        vals = arr.to_numpy(zero_copy_only=False)
        if vals.dtype.kind == "f":
            vals = vals.astype("<f8")
            nan = np.isnan(vals)
            if nan.any():
                vals = np.where(nan, _CANON_NAN, vals)
        elif vals.dtype.kind == "b":
            vals = vals.astype(np.uint8)
        else:
            vals = vals.astype(vals.dtype.newbyteorder("<"))
        h.update(np.ascontiguousarray(vals).tobytes())
        return
    h.update(repr(arr.to_pylist()).encode())


def float_bits(x: np.ndarray) -> np.ndarray:
    """The int64 bit patterns of a float64 array with every NaN made the same NaN."""
    x = np.asarray(x, dtype=np.float64)
    nan = np.isnan(x)
    return (np.where(nan, _CANON_NAN, x) if nan.any() else x).view(np.int64)


def same_world(a, b) -> bool:
    """Exact identity of two worlds as snapshots preserve it: World.equals, name, next_id per kind,
    and the extra columns (names, order and values by :func:`tag`)."""
    if not a.equals(b) or a.name != b.name or repr(a.sn_mva) != repr(b.sn_mva) or repr(a.f_hz) != repr(b.f_hz):
        return False
    for kind, ta in a.tables.items():
        tb = b.tables[kind]
        if ta.next_id != tb.next_id or list(ta.extra) != list(tb.extra):
            return False
        if not all(extras_equal(ta.extra[k], tb.extra[k]) for k in ta.extra):
            return False
        for c in ta.spec.columns:  # World.equals ignores the sign of zero; snapshots keep bits
            if c.dtype == F8 and not np.array_equal(float_bits(ta.cols[c.name]), float_bits(tb.cols[c.name])):
                return False
    return True
