"""Native reader and writer of pandapower JSON (what ``pandapower.to_json(net)`` writes), without
importing pandapower.

The layout: one JSON object ``{"_module": "pandapower.auxiliary", "_class": "pandapowerNet",
"_object": {...}}`` whose ``_object`` maps each net attribute to its value.  Tables are
``{"_module": "pandas.core.frame", "_class": "DataFrame", "_object": "<json string>",
"orient": "split", "dtype": {column: dtype}, ...}`` where the string is pandas' ``to_json`` with
orient "split" (``{"columns": [...], "index": [...], "data": [[...], ...]}``).  Network-wide values
(``sn_mva``, ``f_hz``, ``name``, ``version``, ``format_version``) are plain JSON values.

The writer emits the same layout with every float at full (repr) precision, so
``pandapower.from_json`` reads it back; ``read_pandapower_json(write_pandapower_json(w))`` equals ``w``.
"""
from __future__ import annotations

import json
import math
import os
import re

import numpy as np

from gridtape.errors import CaseError

from .io_pandapower import world_frames, world_from_pp_tables
from .world import World

#: the pandapower version / JSON format version whose layout the writer produces
PP_VERSION = "3.5.6"
PP_FORMAT_VERSION = "3.3.0"


# ------------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------------
def read_pandapower_json(path_or_str, *, strict=False) -> World:
    """A World from a pandapower JSON file (or a JSON string).

    CaseError when the file is missing, is not JSON or is not a pandapower net; SchemaError /
    BadReferenceError (naming file, table, row, field) when its tables do not fit the schema.
    """
    text, file = _read_text(path_or_str)
    doc = _loads(text, file)
    net = _net_object(doc, file)
    fmt = net.get("format_version", net.get("version"))
    tables = {}
    import pandas as pd  # noqa: F401  (DataFrames are built below)

    from .schema import KINDS, UNSUPPORTED_TABLES

    for key, value in net.items():
        if key not in KINDS and key not in UNSUPPORTED_TABLES:
            continue  # results, costs, geodata, std_types, ...: not needed
        df = _decode_frame(value, key, file)
        if df is None:
            raise CaseError(f"element table {key!r} is not a table (a {type(value).__name__}, not a "
                            "serialized DataFrame)", file=file, table=key)
        if df is not EMPTY:
            tables[key] = df
    # pandapower's own defaults when a net lacks them (its convert_format sets sn_mva = 1.0)
    return world_from_pp_tables(tables, sn_mva=net.get("sn_mva", 1.0), f_hz=net.get("f_hz", 50.0),
                                name=net.get("name", ""), file=file, strict=strict, format_version=fmt,
                                user_pf_options=net.get("user_pf_options"),
                                curve_objects=_has_rows(net.get("q_capability_characteristic")),
                                check_text=_SURROGATE.search(text) is not None)


def _has_rows(value) -> bool:
    """Whether a serialized table (pandapower's JSON) has rows."""
    if value is None:
        return False
    if isinstance(value, dict):
        obj = value.get("_object", value)
        if isinstance(obj, str):
            try:
                obj = json.loads(obj)
            except json.JSONDecodeError:
                return bool(obj)
        if isinstance(obj, dict):
            return bool(obj.get("index") or obj.get("data"))
    return bool(value)


#: a JSON escape of a UTF-16 surrogate (only these make json.loads return text that is not Unicode)
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _loads(text, file, table=None):
    """json.loads, every failure a CaseError (with the line where the decoder knows it)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CaseError(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}", file=file, table=table,
                        line=e.lineno) from None
    except RecursionError:
        raise CaseError("JSON nested too deeply", file=file, table=table) from None
    except (ValueError, TypeError, OverflowError) as e:  # e.g. an integer of more than 4300 digits
        raise CaseError(f"not valid JSON: {e}", file=file, table=table) from None


def _read_text(path_or_str):
    if hasattr(path_or_str, "read"):
        file = getattr(path_or_str, "name", None)
        try:
            text = path_or_str.read()
        except UnicodeDecodeError as e:
            raise CaseError(f"not UTF-8 text: {e.reason} at byte {e.start}", file=file) from None
        except OSError as e:
            raise CaseError(f"cannot read: {e}", file=file) from None
        if isinstance(text, bytes):
            text = _decode(text, file)
        if not isinstance(text, str):
            raise CaseError(f"the file object gave a {type(text).__name__}, not text", file=file)
        return text, file
    if isinstance(path_or_str, bytes):
        path_or_str = _decode(path_or_str, None)
    try:
        s = os.fspath(path_or_str)
    except TypeError:
        raise CaseError(f"not a path or JSON text: {type(path_or_str).__name__}") from None
    if isinstance(s, bytes):
        s = _decode(s, None)
    if isinstance(s, str) and s.lstrip().startswith("{"):
        return s, None  # a JSON string, not a path
    if not os.path.exists(s):
        raise CaseError("case file does not exist", file=s)
    if os.path.isdir(s):
        raise CaseError("is a directory, not a pandapower JSON file", file=s)
    try:
        with open(s, "rb") as fh:
            raw = fh.read()
    except (OSError, ValueError) as e:
        raise CaseError(f"cannot read: {getattr(e, 'strerror', None) or e}", file=s) from None
    return _decode(raw, s), s


def _decode(raw: bytes, file) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise CaseError(f"not UTF-8 text: {e.reason} at byte {e.start}", file=file, line=line) from None


def _net_object(doc, file):
    if not isinstance(doc, dict):
        raise CaseError("not a pandapower network (top level is not a JSON object)", file=file)
    if doc.get("_class") == "pandapowerNet":
        obj = doc.get("_object")
        if isinstance(obj, str):  # very old files: the net itself as a JSON string
            obj = _loads(obj, file)
        if not isinstance(obj, dict):
            raise CaseError("pandapowerNet has no object", file=file)
        return obj
    if "bus" in doc and "_module" not in doc:
        raise CaseError("pandapower JSON of the pre-2.0 layout is not supported; load and re-save it "
                        "with pandapower first", file=file)
    raise CaseError("not a pandapower network (no pandapowerNet object)", file=file)


#: what :func:`_decode_frame` returns for a table without rows
EMPTY = object()


def _decode_frame(value, table, file):
    """A pandas DataFrame from one serialized table, :data:`EMPTY` for a table without rows, or
    None when the value is not a table."""
    import pandas as pd

    if not isinstance(value, dict) or value.get("_class") not in ("DataFrame", "GeoDataFrame"):
        return None
    if value.get("is_multiindex") or value.get("is_multicolumn"):
        raise CaseError("multi-index tables are not supported", file=file, table=table)
    raw = value.get("_object")
    if isinstance(raw, str):
        raw = _loads(raw, file, table)
    if value.get("_class") == "GeoDataFrame":
        raise CaseError("GeoDataFrame element tables are not supported", file=file, table=table)
    orient = value.get("orient", "split")
    dtypes = value.get("dtype") or {}
    if not isinstance(dtypes, dict):
        raise CaseError(f"table dtype is a {type(dtypes).__name__}, not a mapping", file=file, table=table)
    if not isinstance(raw, dict):
        raise CaseError(f"table object is a {type(raw).__name__}, not a JSON object", file=file, table=table)
    try:
        if orient == "split":
            columns = list(raw.get("columns", []))
            index = list(raw.get("index", []))
            data = raw.get("data", [])
            if not isinstance(data, list) or any(not isinstance(r, list) for r in data):
                raise CaseError("table data is not a list of rows", file=file, table=table)
            if len(data) != len(index) or any(len(r) != len(columns) for r in data):
                raise CaseError("table rows do not match its columns / index", file=file, table=table)
        elif orient == "columns":
            columns = list(raw)
            if any(not isinstance(c, dict) for c in raw.values()):
                raise CaseError("a column of the table is not a JSON object", file=file, table=table)
            index = sorted({k for c in raw.values() for k in c}, key=lambda k: int(k))
        else:
            raise CaseError(f"table orient {orient!r} is not supported", file=file, table=table)
    except (AttributeError, TypeError, ValueError) as e:
        if isinstance(e, CaseError):
            raise
        raise CaseError(f"malformed table: {e}", file=file, table=table) from None
    for c in columns:
        if not isinstance(c, str):
            raise CaseError(f"column name {c!r} is not text", file=file, table=table)
    if len(set(columns)) != len(columns):
        dup = next(c for c in columns if columns.count(c) > 1)
        raise CaseError(f"duplicate column {dup!r}", file=file, table=table, field=dup)
    ids = [_json_id(i, file, table) for i in index]
    if not ids:  # an empty table: nothing to decode or load (its columns do not matter)
        return EMPTY
    if orient == "split":
        cols = {c: [row[j] for row in data] for j, c in enumerate(columns)}
    else:
        cols = {c: [raw[c].get(k) for k in index] for c in columns}
    idx = pd.Index(np.asarray(ids, dtype=np.int64))
    out = {}
    for c in columns:
        out[c] = _column_values(cols[c], dtypes.get(c), ids, file, table, c)
    try:  # columns in the file's order (a dict keeps it); pandas infers each column's dtype
        return pd.DataFrame(out, index=idx)
    except (OverflowError, ValueError, TypeError):  # values pandas cannot infer a dtype for (10**400, ...):
        return pd.DataFrame(out, index=idx, dtype=object)  # kept as objects; the checks name the cell


def _json_id(v, file, table) -> int:
    """An element id of a table's index: an integer (or integral number, or its text) within int64."""
    from gridtape.errors import SchemaError

    i = None
    if isinstance(v, bool):
        i = None
    elif isinstance(v, int):
        i = v
    elif isinstance(v, float) and math.isfinite(v) and v.is_integer():
        i = int(v)
    elif isinstance(v, str):
        try:
            i = int(v.strip())
        except ValueError:
            i = None
    if i is None or not -2 ** 63 <= i < 2 ** 63:
        raise SchemaError(f"index {v!r} is not an integer id within int64", file=file, table=table,
                          row=v if isinstance(v, (int, float, str)) else repr(v))
    return i


def _column_values(values, dtype, ids=None, file=None, table=None, column=None):
    """Object array of the column's values as pandapower would hold them (objects decoded)."""
    arr = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if isinstance(v, dict) and "_module" in v and "_class" in v:
            try:
                v = _decode_scalar(v)
            except (TypeError, ValueError, OverflowError):
                raise CaseError(f"cannot decode {v!r}", file=file, table=table,
                                row=None if ids is None else ids[i], field=column) from None
        arr[i] = v
    if isinstance(dtype, str) and dtype.startswith("float"):
        for i, v in enumerate(arr):  # (in place: np.array of a list would nest lists into 2-D)
            if v is None:
                arr[i] = math.nan
    return arr


def _decode_scalar(d):
    """numpy scalars pandapower serializes inside object columns ({"_module": "numpy", ...})."""
    mod, cls, obj = d.get("_module"), d.get("_class"), d.get("_object")
    if mod == "numpy":
        if "bool" in str(cls):
            return bool(obj)
        if str(cls).startswith(("int", "uint")):
            if isinstance(obj, bool) or not isinstance(obj, (int, float, str)) or \
                    isinstance(obj, float) and not obj.is_integer():
                raise ValueError(f"not an integer: {obj!r}")
            return int(obj)
        if str(cls).startswith("float"):
            return float(obj)
    return d


# ------------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------------
def write_pandapower_json(world: World, path) -> None:
    """Write ``world`` as a pandapower JSON file that ``pandapower.from_json`` reads back.

    Floats keep full precision (repr); NaN is written as null and infinities as Infinity, as
    pandas reads them.  Extras (pass-through columns) are written back.  ``path`` may be a file
    object; otherwise the file is written atomically."""
    text = dumps_pandapower_json(world)
    if hasattr(path, "write"):
        path.write(text)
        return
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def dumps_pandapower_json(world: World) -> str:
    """The pandapower JSON text of ``world``."""
    obj = {}
    for kind, (df, dtypes) in world_frames(world).items():
        columns = list(df.columns)
        colvals = [[_json_value(v, dtypes[c]) for v in df[c].to_numpy()] for c in columns]
        data = [list(row) for row in zip(*colvals)] if columns else []
        inner = {"columns": columns, "index": [int(i) for i in df.index], "data": data}
        obj[kind] = {
            "_module": "pandas.core.frame",
            "_class": "DataFrame",
            "_object": json.dumps(inner, allow_nan=True, separators=(",", ":")),
            "orient": "split",
            "dtype": {c: dtypes[c] for c in columns},
            "is_multiindex": False,
            "is_multicolumn": False,
        }
    obj["version"] = PP_VERSION
    obj["format_version"] = PP_FORMAT_VERSION
    obj["name"] = world.name or ""
    obj["f_hz"] = float(world.f_hz)
    obj["sn_mva"] = float(world.sn_mva)
    doc = {"_module": "pandapower.auxiliary", "_class": "pandapowerNet", "_object": obj}
    return json.dumps(doc, indent=2, allow_nan=True)


def _json_value(v, dtype):
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return None
        return f  # json.dumps writes repr (round-trips) and Infinity / -Infinity
    if isinstance(v, (str, np.str_)):
        return str(v)
    try:
        import pandas as pd

        if v is pd.NA:
            return None
    except ImportError:  # pragma: no cover
        pass
    if isinstance(v, (dict, list, tuple)):
        return v
    return str(v)
