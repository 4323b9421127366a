"""The CSV-zip case layout: a .zip holding one CSV per element table plus ``network.csv``.

- ``<kind>.csv`` for each non-empty table (``bus.csv``, ``line.csv``, ...; the schema's kind names).
  The header row holds the column names (pandapower's); the first column is the element id
  (pandapower's index), whatever its header says (the writer uses ``id``).
- ``network.csv``: a header ``name,sn_mva,f_hz`` and one row.

Value encoding (UTF-8, comma separated, RFC 4180 quoting):

- numbers are written unquoted with ``repr`` precision, so floats round-trip exactly; ``nan``
  may be written as an empty field, infinities as ``inf`` / ``-inf``;
- booleans are ``True`` / ``False``;
- text is always double-quoted (``""`` inside doubles a quote); an empty *unquoted* field is
  a missing value (None), so ``""`` (quoted) and a missing name stay distinct;
- pass-through columns (extras) keep their Python type the same way: quoted -> str,
  unquoted -> bool / int / float, empty -> None.

Hand-written files may leave text unquoted; schema text columns read any field as text.
"""
from __future__ import annotations

import io
import lzma
import math
import os
import re
import struct
import zipfile
import zlib

import numpy as np

from gridtape.errors import CaseError, SchemaError, UnsupportedError

from .io_pandapower import world_from_pp_tables
from .schema import BOOL, F8, I8, IGNORED_TABLES, KIND_ORDER, KINDS, STR, UNSUPPORTED_TABLES
from .world import World

NETWORK_FILE = "network.csv"

#: what the zip and deflate libraries raise for damaged bytes besides BadZipFile and OSError
ZIP_ERRORS = (zlib.error, EOFError, ValueError, RuntimeError, NotImplementedError, OverflowError, struct.error,
              lzma.LZMAError, UnicodeDecodeError, KeyError, IndexError)
ID_HEADER = "id"


# ------------------------------------------------------------------------------------------------
# CSV tokenising (keeps whether a field was quoted)
# ------------------------------------------------------------------------------------------------
_FIELD = re.compile(r'(?:"((?:[^"]|"")*)"|([^,"\r\n]*))(,|\r\n|\n|\r|$)')


def parse_csv(text: str):
    """Rows ``(line number, [(value, quoted), ...])``.  Blank lines are skipped.
    ValueError(msg, line) on malformed quoting."""
    rows = []
    pos = 1 if text.startswith("\ufeff") else 0
    n = len(text)
    row = []
    line = start_line = 1
    for m in _FIELD.finditer(text, pos):
        if m.start() != pos:
            raise ValueError(f"unexpected {text[pos]!r} (stray or unterminated quote)", line)
        q, u, sep = m.groups()
        if q is not None:
            if '"' in q:
                q = q.replace('""', '"')
            row.append((q, True))
            line += q.count("\n")
        else:
            row.append((u, False))
        pos = m.end()
        if sep != ",":
            if row != [("", False)]:
                rows.append((start_line, row))
            row = []
            line += 1
            start_line = line
            if not sep:
                break
    if pos != n:
        raise ValueError(f"unexpected {text[pos]!r} (stray or unterminated quote)", line)
    return rows


def _quote(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def _fmt_header(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_.\-]+", name) else _quote(name)


def _fmt(v, dtype=None) -> str:
    """One field: the value as written (see the module doc)."""
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "True" if v else "False"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return "" if dtype == F8 else "nan"
        return repr(f)
    if isinstance(v, (str, np.str_)):
        return _quote(str(v))
    try:
        import pandas as pd

        if v is pd.NA:
            return ""
    except ImportError:  # pragma: no cover
        pass
    if isinstance(v, (dict, list, tuple)):
        import json

        return _quote(json.dumps(v))
    return _quote(str(v))


def _extra_value(tok: str, quoted: bool):
    if quoted:
        return tok
    if tok == "":
        return None
    if tok in ("True", "False"):
        return tok == "True"
    try:
        return int(tok)
    except ValueError:
        pass
    try:
        return float(tok)
    except ValueError:
        return tok


# ------------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------------
def table_csv(kind: str, ids, columns: dict) -> str:
    """The CSV text of one table: ``columns`` maps name -> values (schema columns typed by the
    schema, any other column written by its values' Python types)."""
    spec = KINDS[kind]
    names = list(columns)
    lines = [",".join([ID_HEADER] + [_fmt_header(c) for c in names])]
    cols = []
    for c in names:
        dtype = spec[c].dtype if c in spec else None
        vals = columns[c]
        if dtype == STR:
            cols.append(["" if v is None or (isinstance(v, float) and math.isnan(v)) else _quote(str(v))
                         for v in vals])
        elif dtype == F8:
            cols.append([_fmt(float(v), F8) for v in np.asarray(vals, dtype=float).tolist()])
        elif dtype == I8:
            cols.append([str(int(v)) for v in np.asarray(vals).tolist()])
        elif dtype == BOOL:
            cols.append(["True" if v else "False" for v in np.asarray(vals).tolist()])
        else:
            cols.append([_fmt(v) for v in vals])
    ids = [str(int(i)) for i in np.asarray(ids).tolist()]
    for r, eid in enumerate(ids):
        lines.append(",".join([eid] + [col[r] for col in cols]))
    return "\n".join(lines) + "\n"


def network_csv(name, sn_mva, f_hz) -> str:
    return "name,sn_mva,f_hz\n" + ",".join([_quote(name or ""), repr(float(sn_mva)), repr(float(f_hz))]) + "\n"


def write_csv_zip(world: World, path) -> None:
    """Write ``world`` as a CSV-zip (schema columns first, then the extras).  Empty tables are
    omitted.  The file is written atomically."""
    files = {NETWORK_FILE: network_csv(world.name, world.sn_mva, world.f_hz)}
    for kind in KIND_ORDER:
        t = world[kind]
        if not len(t):
            continue
        columns = {c: t.cols[c] for c in t.spec.names}
        for c, v in t.extra.items():
            if c not in columns:
                columns[c] = v
        files[f"{kind}.csv"] = table_csv(kind, t.ids, columns)
    write_zip_files(files, path)


def write_zip_files(files: dict, path) -> None:
    """Write ``{member name: text}`` into a zip at ``path`` (atomically, deflated, fixed timestamps
    so that the same content gives the same bytes)."""
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            for name, text in files.items():
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, text.encode("utf-8"))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# ------------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------------
def read_csv_zip(path, *, strict=False) -> World:
    """A World from a CSV-zip.  CaseError for a missing file or a file that is not a zip;
    SchemaError naming file, table, row (the element id) and field for bad values, unknown
    tables (``foo.csv``) and, when ``strict``, unknown columns; BadReferenceError for references
    to missing elements.  Nothing is returned unless everything validates."""
    path = os.fspath(path)
    file = path
    if not os.path.exists(path):
        raise CaseError("case file does not exist", file=file)
    if os.path.isdir(path):
        raise CaseError("is a directory, not a CSV-zip", file=file)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise CaseError(f"not a zip file: {e}", file=file) from None
    except OSError as e:
        raise CaseError(f"cannot read: {e.strerror or e}", file=file) from None
    except ZIP_ERRORS as e:  # a damaged central directory: bad sizes, names, offsets
        raise CaseError(f"damaged zip file: {type(e).__name__}: {e}", file=file) from None
    with zf:
        members = {}
        for info in zf.infolist():
            if info.is_dir():
                continue
            base = info.filename.replace("\\", "/").rsplit("/", 1)[-1]
            if base.startswith(".") or info.filename.startswith("__MACOSX/"):
                continue
            if not base.lower().endswith(".csv"):
                continue  # READMEs and the like
            table = base[:-4]
            if table in members:
                raise CaseError(f"two members named {base!r}", file=file, table=table)
            members[table] = info
        texts = {}
        for table, info in members.items():
            try:
                raw = zf.read(info)
            except (zipfile.BadZipFile, OSError) + ZIP_ERRORS as e:
                raise CaseError(f"cannot read member {info.filename!r}: {type(e).__name__}: {e}", file=file,
                                table=table) from None
            try:
                texts[table] = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                line = raw.count(b"\n", 0, e.start) + 1
                raise CaseError(f"not UTF-8 text: {e.reason} at byte {e.start}", file=file, table=table,
                                line=line) from None
    return world_from_csv_texts(texts, file=file, strict=strict)


def world_from_csv_texts(texts: dict, *, file=None, strict=False) -> World:
    """A World from ``{table name: CSV text}`` (the members of a CSV-zip, without ``.csv``)."""
    import pandas as pd

    if NETWORK_FILE[:-4] not in texts:
        raise CaseError(f"no {NETWORK_FILE}: the case's sn_mva and f_hz are not given (a CSV-zip keeps them "
                        f"in {NETWORK_FILE}, header name,sn_mva,f_hz)", file=file, table="network")
    name, sn_mva, f_hz = "", None, None
    tables = {}
    for table, text in texts.items():
        if table == NETWORK_FILE[:-4]:
            name, sn_mva, f_hz = _read_network(text, file)
            continue
        if table not in KINDS:
            if table in IGNORED_TABLES:
                continue
            if table in UNSUPPORTED_TABLES:
                rows = _rows(text, file, table)
                if len(rows) > 1:
                    raise UnsupportedError(f"pandapower table {table!r} is not modelled by gridtape", file=file,
                                           table=table)
                continue
            raise SchemaError(f"unknown element table {table!r}; known: {', '.join(KIND_ORDER)}",
                              file=file, table=table)
        tables[table] = _read_table(table, text, file, pd)
    return world_from_pp_tables(tables, sn_mva=sn_mva, f_hz=f_hz, name=name, file=file, strict=strict,
                                check_text=False)  # strict UTF-8 decoding: no lone surrogates


def _rows(text, file, table):
    try:
        return parse_csv(text)
    except ValueError as e:
        msg, line = e.args
        raise SchemaError(f"malformed CSV at line {line}: {msg}", file=file, table=table) from None


def _read_network(text, file):
    rows = _rows(text, file, "network")
    if len(rows) < 2:
        raise SchemaError("network.csv needs a header and one row", file=file, table="network")
    header = [v for v, _ in rows[0][1]]
    values = rows[1][1]
    if len(values) != len(header):
        raise SchemaError("network.csv row does not match its header", file=file, table="network")
    d = dict(zip(header, values))
    unknown = [h for h in header if h not in ("name", "sn_mva", "f_hz")]
    if unknown:
        raise SchemaError(f"unknown network field {unknown[0]!r}", file=file, table="network", field=unknown[0])
    out = []
    for key in ("sn_mva", "f_hz"):
        if key not in d or d[key][0].strip() == "":
            raise SchemaError(f"network.csv gives no {key}", file=file, table="network", field=key)
        try:
            v = float(d[key][0])
        except ValueError:
            raise SchemaError(f"not a number: {d[key][0]!r}", file=file, table="network", field=key) from None
        if not (v > 0 and math.isfinite(v)):
            raise SchemaError(f"must be a positive number: {v!r}", file=file, table="network", field=key)
        out.append(v)
    name = d.get("name", ("", False))[0]
    return name, out[0], out[1]


def _read_table(table, text, file, pd):
    rows = _rows(text, file, table)
    if not rows:
        raise SchemaError("empty CSV (no header)", file=file, table=table)
    header = [v for v, _ in rows[0][1]]
    names = header[1:]
    if len(set(names)) != len(names):
        dup = next(c for c in names if names.count(c) > 1)
        raise SchemaError(f"duplicate column {dup!r}", file=file, table=table, field=dup)
    spec = KINDS[table]
    ncol = len(header)
    ids = []
    cols = [[] for _ in names]
    for line, row in rows[1:]:
        tok, _ = row[0]
        try:
            eid = int(tok)
        except ValueError:
            try:
                f = float(tok)
                if not f.is_integer():
                    raise ValueError
                eid = int(f)
            except ValueError:
                raise SchemaError(f"id {tok!r} on line {line} is not an integer", file=file, table=table,
                                  row=tok, field=header[0]) from None
        if not -2 ** 63 <= eid < 2 ** 63:
            raise SchemaError(f"id {tok!r} on line {line} is beyond int64", file=file, table=table, row=tok,
                              field=header[0])
        if len(row) != ncol:
            raise SchemaError(f"line {line} has {len(row)} fields, the header {ncol}", file=file, table=table,
                              row=eid)
        ids.append(eid)
        for j, (v, q) in enumerate(row[1:]):
            cols[j].append((v, q))
    data = {}
    for c, vals in zip(names, cols):
        if c in spec:
            dtype = spec[c].dtype
            if dtype == STR:
                data[c] = _obj([v if (q or v != "") else None for v, q in vals])
            else:
                data[c] = _obj([v for v, _ in vals])  # text; coerced (and checked) by the schema
        else:
            data[c] = _obj([_extra_value(v, q) for v, q in vals])
    df = pd.DataFrame(data, index=pd.Index(np.asarray(ids, dtype=np.int64)))
    return df[names] if names else df


def _obj(values):
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr
