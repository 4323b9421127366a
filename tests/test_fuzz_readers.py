"""Reader fuzz suite: mutated bytes and mutated tables of the bundled cases through every reader.

The rule (docs/reliability.md): whatever the input, a reader returns a World that validates or
raises a gridtape error (CaseError, SchemaError, BadReferenceError, ...) that names the file; never
a raw numpy / pandas / zlib / OS / KeyError / IndexError exception, and no file descriptor stays
open.  Hypothesis runs derandomized (the same examples on every run, in CI too); the example
counts below add up to at least 2,000 reader mutations (``test_zz_mutation_count``).
"""
from __future__ import annotations

import io
import json
import math
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridtape.errors import GridtapeError
from gridtape.world import World
from gridtape.world.io import load_case
from gridtape.world.io_pandapower import from_pandapower

CASES = Path(__file__).resolve().parent.parent / "cases"
ZIP_CASE = CASES / "IEEE14" / "data.zip"
JSON_CASE = CASES / "json" / "example_multivoltage.json"
M_CASE = CASES / "matpower" / "case14.m"

#: examples per test: the total is the number of reader mutations the suite promises (>= 2000)
COUNTS = {"csv_bytes": 350, "csv_tables": 500, "json_bytes": 200, "json_tables": 400, "m_bytes": 250,
          "m_tokens": 400, "pp_frames": 300}
RAN: dict = {}
OUTCOMES = {"accepted": 0, "refused": 0}


def fuzz(name):
    return settings(max_examples=COUNTS[name], derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


def _fds():
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # pragma: no cover - not Linux
        return 0


def check(name, call, file):
    """Run one reader call under the rule; count it."""
    before = _fds()
    try:
        w = call()
    except GridtapeError as e:
        if file is not None:
            assert e.file == str(file) and str(file) in str(e), f"{type(e).__name__} does not name the file: {e}"
        OUTCOMES["refused"] += 1
    except Exception as e:  # noqa: BLE001 - the rule under test
        raise AssertionError(f"raw {type(e).__module__}.{type(e).__name__} escaped the reader: {e!r}"[:2000]) from e
    else:
        assert isinstance(w, World)
        w.validate()
        assert math.isfinite(w.sn_mva) and w.sn_mva > 0 and math.isfinite(w.f_hz) and w.f_hz > 0
        OUTCOMES["accepted"] += 1
    assert _fds() == before, "a file stayed open"
    RAN[name] = RAN.get(name, 0) + 1


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


# ------------------------------------------------------------------------------------------------
# byte mutations (any reader, any file)
# ------------------------------------------------------------------------------------------------
BYTE_OPS = st.lists(st.tuples(st.sampled_from(["flip", "set", "delete", "insert", "truncate", "dup"]),
                              st.integers(0, 2 ** 31), st.integers(0, 255), st.binary(min_size=1, max_size=8)),
                    min_size=1, max_size=4)


def mutate_bytes(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for op, pos, val, chunk in ops:
        n = len(b)
        if not n:
            b += chunk
            continue
        i = pos % n
        if op == "flip":
            b[i] ^= 1 << (val % 8)
        elif op == "set":
            b[i] = val
        elif op == "delete":
            del b[i:i + 1 + val % 16]
        elif op == "insert":
            b[i:i] = chunk
        elif op == "truncate":
            del b[i:]
        else:
            b[i:i] = b[i:i + 1 + val]
    return bytes(b)


def _write(tmp, name, data: bytes) -> Path:
    p = tmp / name
    p.write_bytes(data)
    return p


@fuzz("csv_bytes")
@given(ops=BYTE_OPS)
def test_csv_zip_bytes(tmp, ops):
    p = _write(tmp, "bytes.zip", mutate_bytes(ZIP_CASE.read_bytes(), ops))
    check("csv_bytes", lambda: load_case(p), p)


@fuzz("json_bytes")
@given(ops=BYTE_OPS)
def test_json_bytes(tmp, ops):
    p = _write(tmp, "bytes.json", mutate_bytes(JSON_CASE.read_bytes(), ops))
    check("json_bytes", lambda: load_case(p), p)


@fuzz("m_bytes")
@given(ops=BYTE_OPS)
def test_matpower_bytes(tmp, ops):
    p = _write(tmp, "bytes.m", mutate_bytes(M_CASE.read_bytes(), ops))
    check("m_bytes", lambda: load_case(p), p)


# ------------------------------------------------------------------------------------------------
# CSV-zip: mutated tables (cells, columns, rows, members), written as a valid zip
# ------------------------------------------------------------------------------------------------
TOKENS = ["", "nan", "NaN", "inf", "-inf", "-1", "0", "1", "2", "0.5", "-0.0", "1e400", "-1e400", "1e30",
          str(2 ** 63), str(2 ** 64), str(-2 ** 63 - 1), "9" * 5000, "abc", "True", "False", '"x"', '""', "é",
          " ", "1_000", "0x10", "None", "null", '"', '"a""b"', "1,2", "\n", "\r\n", '"multi\nline"', "\x00",
          "l", "t", "t3", "b", "hv", "Ratio"]
ZIP_MEMBERS = None


def _zip_members() -> dict:
    global ZIP_MEMBERS
    if ZIP_MEMBERS is None:
        with zipfile.ZipFile(ZIP_CASE) as z:
            ZIP_MEMBERS = {n: z.read(n).decode("utf-8") for n in z.namelist()}
    return ZIP_MEMBERS


CSV_OPS = st.lists(st.tuples(st.sampled_from(["cell", "cell", "cell", "header", "drop_col", "drop_row", "dup_row",
                                              "drop_member", "add_member", "raw", "bad_utf8"]),
                             st.integers(0, 2 ** 31), st.integers(0, 2 ** 31), st.sampled_from(TOKENS)),
                   min_size=1, max_size=3)


def _split(text):
    return [line.split(",") for line in text.split("\n")]


def _join(rows):
    return "\n".join(",".join(r) for r in rows)


def mutate_members(members: dict, ops) -> dict:
    files = {k: v.encode("utf-8") for k, v in members.items()}
    for op, a, b, tok in ops:
        names = sorted(files)
        if op == "add_member":
            files[["foo.csv", "dcline.csv", "bus.csv", "network.csv", "README.txt", "sub/line.csv"][a % 6]] = \
                f"id,x\n0,{tok}\n".encode("utf-8", "surrogatepass")
            continue
        if not names:
            continue
        name = names[a % len(names)]
        if op == "drop_member":
            del files[name]
            continue
        if op == "bad_utf8":
            files[name] = files[name][:b % (len(files[name]) + 1)] + b"\xff\xfe" + files[name][b % (len(files[name]) + 1):]
            continue
        try:
            text = files[name].decode("utf-8")
        except UnicodeDecodeError:
            continue
        rows = _split(text)
        r = b % len(rows)
        if op == "cell":
            rows[r][a % len(rows[r])] = tok
        elif op == "header":
            rows[0][a % len(rows[0])] = tok
        elif op == "drop_col":
            c = a % len(rows[0])
            rows = [row[:c] + row[c + 1:] for row in rows]
        elif op == "drop_row":
            del rows[r]
        elif op == "dup_row":
            rows.insert(r, list(rows[r]))
        else:  # raw: the token spliced into the text anywhere
            i = a % (len(text) + 1)
            files[name] = (text[:i] + tok + text[i:]).encode("utf-8")
            continue
        files[name] = _join(rows).encode("utf-8")
    return files


def _write_zip(path: Path, files: dict) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


@fuzz("csv_tables")
@given(ops=CSV_OPS)
def test_csv_zip_tables(tmp, ops):
    p = _write_zip(tmp / "tables.zip", mutate_members(_zip_members(), ops))
    check("csv_tables", lambda: load_case(p), p)


# ------------------------------------------------------------------------------------------------
# pandapower JSON: mutated tables (cells, index, columns, whole tables, network values)
# ------------------------------------------------------------------------------------------------
JSON_VALUES = [None, True, False, 0, -1, 1, 2, 0.5, -0.0, 1e308, 2 ** 63, 2 ** 64, -2 ** 70, 10 ** 400,
               float("nan"), float("inf"), float("-inf"), "abc", "", "1.5", "7", [], [1, 2], {}, {"a": 1},
               {"_module": "numpy", "_class": "int64", "_object": "x"},
               {"_module": "numpy", "_class": "float64", "_object": [1]}, "l", "t3", "hv", "Ratio", "\ud800",
               "caf\u00e9"]
JSON_DOC = None


def _json_doc() -> dict:
    global JSON_DOC
    if JSON_DOC is None:
        JSON_DOC = json.loads(JSON_CASE.read_text())
    return JSON_DOC


TABLE_NAMES = ["bus", "line", "trafo", "trafo3w", "load", "sgen", "gen", "ext_grid", "shunt", "switch", "ward",
               "xward", "impedance", "storage", "dcline", "motor"]
JSON_OPS = st.lists(st.tuples(st.sampled_from(["cell", "cell", "cell", "index", "drop_col", "drop_row", "short_row",
                                               "dup_col", "rename_col", "table", "orient", "dtype", "network",
                                               "drop_network", "inner_garbage"]),
                              st.integers(0, 2 ** 31), st.integers(0, 2 ** 31), st.sampled_from(JSON_VALUES)),
                    min_size=1, max_size=3)


def mutate_json(doc: dict, ops) -> str:
    doc = dict(doc)
    net = doc["_object"] = dict(doc["_object"])
    for op, a, b, val in ops:
        if op == "network":
            net[["sn_mva", "f_hz", "name", "format_version", "version"][a % 5]] = val
            continue
        if op == "drop_network":
            net.pop(["sn_mva", "f_hz", "_object"][a % 3], None) if a % 3 < 2 else doc.pop("_object", None)
            if "_object" not in doc:
                break
            continue
        key = TABLE_NAMES[a % len(TABLE_NAMES)]
        table = net.get(key)
        if op == "table" or not isinstance(table, dict):
            net[key] = val
            continue
        table = net[key] = dict(table)
        if op == "orient":
            table["orient"] = ["columns", "index", "records", None, 5][b % 5]
            continue
        if op == "dtype":
            table["dtype"] = val
            continue
        if op == "inner_garbage" or not isinstance(table.get("_object"), str):
            table["_object"] = val if b % 2 else str(table.get("_object"))[: b % 200]
            continue
        try:
            inner = json.loads(table["_object"])
            cols, idx, data = inner["columns"], inner["index"], inner["data"]
        except (ValueError, TypeError, KeyError):
            continue  # already garbage
        if op == "cell" and data:
            r = data[b % len(data)]
            if r:
                r[a % len(r)] = val
        elif op == "index" and idx:
            idx[b % len(idx)] = val
        elif op == "drop_col" and cols:
            c = b % len(cols)
            del cols[c]
            for r in data:
                del r[c]
        elif op == "drop_row" and data:
            del data[b % len(data)]
            if b % 3:
                del idx[b % len(idx)]
        elif op == "short_row" and data:
            data[b % len(data)].pop()
        elif op == "dup_col" and cols:
            cols[b % len(cols)] = cols[(b + 1) % len(cols)]
        elif op == "rename_col" and cols:
            cols[b % len(cols)] = val if not isinstance(val, str) else "x" + val
        table["_object"] = json.dumps(inner)
    return json.dumps(doc)


@fuzz("json_tables")
@given(ops=JSON_OPS)
def test_json_tables(tmp, ops):
    p = tmp / "tables.json"
    p.write_text(mutate_json(_json_doc(), ops))
    check("json_tables", lambda: load_case(p), p)


# ------------------------------------------------------------------------------------------------
# MATPOWER: mutated numbers and lines
# ------------------------------------------------------------------------------------------------
M_TOKENS = ["NaN", "Inf", "-Inf", "1.5", "0", "-1", "4", "5", "99999", "1e400", "abc", "2.5e3", "'x'", "]", ";", "[",
            "", "9" * 400, "1e-400", "0.0", "-0", "1 2", "{", "%", "...", "'", "1e19"]
M_NUM = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w.])")
M_OPS = st.lists(st.tuples(st.sampled_from(["num", "num", "num", "del_line", "dup_line", "token"]),
                           st.integers(0, 2 ** 31), st.sampled_from(M_TOKENS)), min_size=1, max_size=3)
M_TEXT = None


def mutate_m(text: str, ops) -> str:
    for op, a, tok in ops:
        if op == "num":
            nums = list(M_NUM.finditer(text))
            if nums:
                m = nums[a % len(nums)]
                text = text[:m.start()] + tok + text[m.end():]
        elif op in ("del_line", "dup_line"):
            lines = text.split("\n")
            i = a % len(lines)
            if op == "del_line":
                del lines[i]
            else:
                lines.insert(i, lines[i])
            text = "\n".join(lines)
        else:
            i = a % (len(text) + 1)
            text = text[:i] + tok + text[i:]
    return text


@fuzz("m_tokens")
@given(ops=M_OPS)
def test_matpower_tokens(tmp, ops):
    global M_TEXT
    if M_TEXT is None:
        M_TEXT = M_CASE.read_text()
    p = tmp / "tokens.m"
    p.write_text(mutate_m(M_TEXT, ops), encoding="utf-8")
    check("m_tokens", lambda: load_case(p), p)


# ------------------------------------------------------------------------------------------------
# from_pandapower: mutated DataFrames of a pandapower net (no file)
# ------------------------------------------------------------------------------------------------
PP_TABLES = None
PY_VALUES = JSON_VALUES + [np.int64(3), np.float32(1.5), np.uint64(2 ** 64 - 1), np.nan, "1e400", b"bytes",
                           complex(1, 2), object()]


def _pp_tables():
    global PP_TABLES
    if PP_TABLES is None:
        import pandas as pd

        from gridtape.world.io_json import _decode_frame

        doc = _json_doc()["_object"]
        PP_TABLES = {k: _decode_frame(v, k, None) for k, v in doc.items() if isinstance(v, dict)
                     and v.get("_class") == "DataFrame"}
        PP_TABLES = {k: v for k, v in PP_TABLES.items() if isinstance(v, pd.DataFrame) and len(v)}
        PP_TABLES.update(sn_mva=doc["sn_mva"], f_hz=doc["f_hz"], name=doc["name"])
    return PP_TABLES


PP_OPS = st.lists(st.tuples(st.sampled_from(["cell", "cell", "cell", "index", "table", "network", "drop_col"]),
                            st.integers(0, 2 ** 31), st.integers(0, 2 ** 31), st.sampled_from(PY_VALUES)),
                  min_size=1, max_size=3)


def mutate_frames(base: dict, ops) -> dict:
    import pandas as pd

    net = dict(base)
    kinds = sorted(k for k, v in base.items() if isinstance(v, pd.DataFrame))
    for op, a, b, val in ops:
        if op == "network":
            net[["sn_mva", "f_hz", "name"][a % 3]] = val
            continue
        kind = kinds[a % len(kinds)]
        if op == "table":
            net[kind] = val
            continue
        df = net[kind]
        if not isinstance(df, pd.DataFrame) or not len(df) or not len(df.columns):
            continue
        df = net[kind] = df.copy()
        if op == "index":
            idx = df.index.to_numpy(dtype=object).copy()
            idx[b % len(idx)] = val if not isinstance(val, (list, dict)) else str(val)
            try:
                df.index = pd.Index(idx, dtype=object)
            except (TypeError, ValueError):
                continue
        elif op == "drop_col":
            df.drop(columns=df.columns[b % len(df.columns)], inplace=True)
        else:
            c = df.columns[b % len(df.columns)]
            col = df[c].to_numpy(dtype=object).copy()
            col[a % len(col)] = val
            try:
                df[c] = col
            except (OverflowError, ValueError, TypeError):  # pandas itself cannot hold it in a frame
                df[c] = pd.Series(col, index=df.index, dtype=object)
    return net


@fuzz("pp_frames")
@given(ops=PP_OPS)
def test_from_pandapower_frames(ops):
    net = mutate_frames(_pp_tables(), ops)
    check("pp_frames", lambda: from_pandapower(net), None)


def test_zz_mutation_count():
    """The suite ran every mutation it promises (docs/reliability.md quotes these numbers)."""
    if set(RAN) != set(COUNTS):
        pytest.skip("only part of the fuzz suite ran")
    total = sum(RAN.values())
    assert total >= 2000, RAN
    assert OUTCOMES["accepted"] > 0 and OUTCOMES["refused"] > 0
    print(f"\nreader mutations: {total} ({RAN}); accepted {OUTCOMES['accepted']}, refused {OUTCOMES['refused']}")
