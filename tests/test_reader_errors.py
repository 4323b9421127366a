"""Bad input to the case readers (issue 16, readers): every library exception becomes a gridtape
error naming the file and the place; nothing silently changes a case; nothing stays open.
Also the error hierarchy (every gridtape error is its builtin too) and empty optional cells
(issue 15: they read as the schema default where the power flow does not read the column)."""
from __future__ import annotations

import json
import math
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gridtape import errors as E
from gridtape.errors import BadReferenceError, CaseError, GridtapeError, SchemaError
from gridtape.world.io import load_case
from gridtape.world.io_csvzip import read_csv_zip
from gridtape.world.io_json import read_pandapower_json
from gridtape.world.io_matpower import read_matpower
from gridtape.world.io_pandapower import fill_empty_columns, from_pandapower

CASES = Path(__file__).resolve().parent.parent / "cases"
JSON_CASE = CASES / "json" / "example_multivoltage.json"
M_CASE = CASES / "matpower" / "case14.m"
ZIP_CASE = CASES / "IEEE14" / "data.zip"


# ------------------------------------------------------------------------------------------------
# the hierarchy
# ------------------------------------------------------------------------------------------------
BUILTINS = {
    "CaseError": (ValueError,), "SchemaError": (ValueError,), "UnsupportedError": (ValueError, NotImplementedError),
    "OptionError": (ValueError,), "BadReferenceError": (LookupError, ValueError), "TopologyError": (ValueError,),
    "SolverError": (RuntimeError,), "NotSolvedError": (RuntimeError,), "DependencyError": (ImportError,),
    "JournalError": (RuntimeError,), "JournalLockedError": (RuntimeError,),
    "JournalCorruptError": (RuntimeError, ValueError), "ReadOnlyError": (PermissionError,),
    "SnapshotCorruptError": (ValueError,), "SnapshotError": (OSError,),
    "ConflictError": (RuntimeError,), "RevertConflictError": (RuntimeError,), "MergeConflictError": (RuntimeError,),
}


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_error_is_its_builtin(name):
    cls = getattr(E, name)
    err = cls("bad thing", file="f.json", table="line", row=7, field="r_ohm_per_km")
    assert isinstance(err, GridtapeError)
    for b in BUILTINS[name]:
        assert isinstance(err, b), (name, b)
        with pytest.raises(b):
            raise err
    assert (err.file, err.table, err.row) == ("f.json", "line", 7)
    assert err.field == "r_ohm_per_km" and err.message == "bad thing"
    for part in ("bad thing", "f.json", "'line'", "7"):
        assert part in str(err)
    back = pickle.loads(pickle.dumps(err))  # keeps its location through pickling (multiprocessing)
    assert type(back) is cls and str(back) == str(err) and (back.file, back.row) == ("f.json", 7)


def test_every_exported_error_is_covered():
    names = {n for n in E.__all__ if n.endswith("Error") and n != "GridtapeError"}
    assert names == set(BUILTINS)
    assert issubclass(E.UnsupportedError, SchemaError)  # readers raised SchemaError for these before
    assert issubclass(E.JournalLockedError, E.JournalError) and issubclass(E.JournalCorruptError, E.JournalError)
    assert not issubclass(E.OptionError, SchemaError)  # an option is not a schema
    assert not issubclass(E.BadReferenceError, KeyError)  # KeyError's str() would quote the message


def test_option_error_names_the_option():
    e = E.OptionError("unknown algorithm 'gs'", option="algorithm")
    assert e.option == e.field == "algorithm" and "option 'algorithm'" in str(e)


def test_case_error_line():
    e = CaseError("not UTF-8", file="x.m", line=12)
    assert e.line == 12 and "line 12" in str(e)


# ------------------------------------------------------------------------------------------------
# pandapower JSON
# ------------------------------------------------------------------------------------------------
def _doc():
    return json.loads(JSON_CASE.read_text())


def _write_doc(tmp_path, doc, name="case.json"):
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def _set_inner(doc, table, fn):
    inner = json.loads(doc["_object"][table]["_object"])
    fn(inner)
    doc["_object"][table]["_object"] = json.dumps(inner)


@pytest.mark.parametrize("value", [5, "line", None, [1, 2], {"_class": "Series", "_object": "{}"}])
def test_json_element_table_that_is_not_a_table(tmp_path, value):
    """Used to vanish silently (the lines of the case were gone)."""
    doc = _doc()
    doc["_object"]["line"] = value
    p = _write_doc(tmp_path, doc)
    with pytest.raises(CaseError) as e:
        read_pandapower_json(p)
    assert (e.value.file, e.value.table) == (str(p), "line")


@pytest.mark.parametrize("where", ["index", "ref"])
@pytest.mark.parametrize("value", [2 ** 64, -2 ** 70, 10 ** 30])
def test_json_huge_ids(tmp_path, where, value):
    doc = _doc()
    if where == "index":
        _set_inner(doc, "load", lambda t: t["index"].__setitem__(0, value))
    else:
        _set_inner(doc, "load", lambda t: t["data"][0].__setitem__(t["columns"].index("bus"), value))
    p = _write_doc(tmp_path, doc)
    with pytest.raises(SchemaError) as e:
        read_pandapower_json(p)
    assert (e.value.file, e.value.table) == (str(p), "load")
    if where == "ref":
        assert e.value.field == "bus"


def test_json_fractional_index_is_not_truncated(tmp_path):
    doc = _doc()
    _set_inner(doc, "load", lambda t: t["index"].__setitem__(0, 0.5))
    p = _write_doc(tmp_path, doc)
    with pytest.raises(SchemaError) as e:
        read_pandapower_json(p)
    assert (e.value.table, e.value.row) == ("load", 0.5)


def test_json_huge_number_in_a_float_column(tmp_path):
    doc = _doc()
    _set_inner(doc, "load", lambda t: t["data"][1].__setitem__(t["columns"].index("p_mw"), 10 ** 400))
    p = _write_doc(tmp_path, doc)
    with pytest.raises(GridtapeError) as e:  # Python's json refuses ints of > 4300 digits: CaseError
        read_pandapower_json(p)
    assert e.value.file == str(p)


@pytest.mark.parametrize("field", ["sn_mva", "f_hz"])
@pytest.mark.parametrize("value", [0, -1.0, None, "abc", True, float("inf"), float("nan"), [100]])
def test_json_network_values_checked(tmp_path, field, value):
    doc = _doc()
    doc["_object"][field] = value
    p = _write_doc(tmp_path, doc)
    with pytest.raises(SchemaError) as e:
        read_pandapower_json(p)
    assert (e.value.file, e.value.table, e.value.field) == (str(p), "network", field)


def test_json_missing_network_values_are_pandapowers_defaults(tmp_path):
    """pandapower's convert_format sets sn_mva = 1.0 for a net without one; f_hz defaults to 50."""
    doc = _doc()
    del doc["_object"]["sn_mva"], doc["_object"]["f_hz"]
    w = read_pandapower_json(_write_doc(tmp_path, doc))
    assert (w.sn_mva, w.f_hz) == (1.0, 50.0)
    doc = _doc()
    doc["_object"]["sn_mva"], doc["_object"]["f_hz"] = "100", 60
    w = read_pandapower_json(_write_doc(tmp_path, doc))
    assert (w.sn_mva, w.f_hz) == (100.0, 60.0)


def test_json_not_utf8(tmp_path):
    raw = JSON_CASE.read_bytes()
    i = raw.index(b'"name"')
    p = tmp_path / "latin.json"
    p.write_bytes(raw[:i] + b"\xe9\xff" + raw[i:])
    with pytest.raises(CaseError) as e:
        load_case(p)
    assert e.value.file == str(p) and e.value.line == raw.count(b"\n", 0, i) + 1
    with pytest.raises(CaseError):
        read_pandapower_json(raw[:i] + b"\xe9\xff" + raw[i:])  # bytes given directly


@pytest.mark.parametrize("mutate", [
    lambda t: t.__setitem__("data", 5),
    lambda t: t["data"].__setitem__(0, "row"),
    lambda t: t["columns"].__setitem__(1, t["columns"][0]),
    lambda t: t["columns"].__setitem__(0, 17),
    lambda t: t["data"][0].__setitem__(0, {"_module": "numpy", "_class": "int64", "_object": "x"}),
])
def test_json_malformed_tables(tmp_path, mutate):
    doc = _doc()
    _set_inner(doc, "bus", mutate)
    p = _write_doc(tmp_path, doc)
    with pytest.raises(GridtapeError) as e:
        read_pandapower_json(p)
    assert (e.value.file, e.value.table) == (str(p), "bus")


def test_json_dtype_that_is_not_a_mapping(tmp_path):
    doc = _doc()
    doc["_object"]["bus"]["dtype"] = 5
    p = _write_doc(tmp_path, doc)
    with pytest.raises(CaseError) as e:
        read_pandapower_json(p)
    assert e.value.table == "bus"


# ------------------------------------------------------------------------------------------------
# CSV-zip
# ------------------------------------------------------------------------------------------------
def _members():
    with zipfile.ZipFile(ZIP_CASE) as z:
        return {n: z.read(n) for n in z.namelist()}


def _zip(path, files, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for n, data in files.items():
            z.writestr(n, data)
    return path


def test_csv_zip_corrupt_deflate_stream(tmp_path):
    """zlib.error used to escape."""
    p = _zip(tmp_path / "c.zip", _members())
    raw = bytearray(p.read_bytes())
    with zipfile.ZipFile(p) as z:
        info = z.getinfo("line.csv")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start] = 0xFF  # an invalid deflate block type
    raw[start + 1] = 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(CaseError) as e:
        load_case(p)
    assert (e.value.file, e.value.table) == (str(p), "line")


def test_csv_zip_without_network_csv_is_refused(tmp_path):
    """Used to load a 100 MVA / 60 Hz case as 1 MVA / 50 Hz without a word."""
    files = _members()
    assert b"100.0" in files["network.csv"]
    del files["network.csv"]
    p = _zip(tmp_path / "nonet.zip", files)
    with pytest.raises(CaseError) as e:
        read_csv_zip(p)
    assert (e.value.file, e.value.table) == (str(p), "network") and "network.csv" in str(e.value)


@pytest.mark.parametrize("text,field", [("name,sn_mva\n\"x\",100\n", "f_hz"), ("name,sn_mva,f_hz\n\"x\",,60\n", "sn_mva"),
                                        ("name,sn_mva,f_hz\n\"x\",100,0\n", "f_hz"),
                                        ("name,sn_mva,f_hz\n\"x\",inf,60\n", "sn_mva")])
def test_csv_zip_network_values_checked(tmp_path, text, field):
    files = _members()
    files["network.csv"] = text
    p = _zip(tmp_path / "net.zip", files)
    with pytest.raises(SchemaError) as e:
        read_csv_zip(p)
    assert (e.value.file, e.value.table, e.value.field) == (str(p), "network", field)


def test_csv_zip_huge_id(tmp_path):
    files = _members()
    text = files["load.csv"].decode()
    lines = text.split("\n")
    lines[1] = str(2 ** 64) + lines[1][lines[1].index(","):]
    files["load.csv"] = "\n".join(lines)
    p = _zip(tmp_path / "big.zip", files)
    with pytest.raises(SchemaError) as e:
        read_csv_zip(p)
    assert (e.value.file, e.value.table, e.value.row) == (str(p), "load", str(2 ** 64))


def test_csv_zip_huge_integer_cell_is_not_wrapped(tmp_path):
    """1e30 in an int64 column used to be stored as INT64_MIN."""
    files = _members()
    lines = files["line.csv"].decode().split("\n")
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("parallel")] = "1e30"
    lines[1] = ",".join(row)
    files["line.csv"] = "\n".join(lines)
    p = _zip(tmp_path / "par.zip", files)
    with pytest.raises(SchemaError) as e:
        read_csv_zip(p)
    assert (e.value.table, e.value.row, e.value.field) == ("line", int(row[0]), "parallel")


def test_csv_zip_member_not_utf8(tmp_path):
    files = _members()
    files["bus.csv"] = files["bus.csv"] + b"\n\xff\xfe"
    p = _zip(tmp_path / "u.zip", files)
    with pytest.raises(CaseError) as e:
        read_csv_zip(p)
    assert (e.value.file, e.value.table) == (str(p), "bus") and e.value.line is not None


def test_csv_zip_unsupported_compression(tmp_path):
    p = _zip(tmp_path / "lz.zip", _members(), compression=zipfile.ZIP_LZMA)
    assert read_csv_zip(p).counts()["bus"] == 14  # LZMA is read
    raw = bytearray(p.read_bytes())
    raw[8] = 99  # the first member's compression method (local header and central directory): unknown
    raw[raw.index(b"PK\x01\x02") + 10] = 99
    p.write_bytes(bytes(raw))
    with pytest.raises(CaseError) as e:
        read_csv_zip(p)
    assert e.value.file == str(p)


# ------------------------------------------------------------------------------------------------
# MATPOWER
# ------------------------------------------------------------------------------------------------
def _m_with(tmp_path, matrix, row, col, value):
    """case14.m with one entry of ``mpc.<matrix>`` (1-based row, 0-based column) replaced."""
    text = M_CASE.read_text()
    start = text.index(f"mpc.{matrix} = [")
    end = text.index("];", start)
    lines = text[start:end].split("\n")
    data_rows = [i for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith(("mpc", "%"))]
    i = data_rows[row - 1]
    toks = lines[i].strip().rstrip(";").split()
    toks[col] = value
    lines[i] = "\t" + "\t".join(toks) + ";"
    p = tmp_path / "m.m"
    p.write_text(text[:start] + "\n".join(lines) + text[end:])
    return p


@pytest.mark.parametrize("col,value,field", [(0, "NaN", "BUS_I"), (0, "2.5", "BUS_I"), (0, "Inf", "BUS_I"),
                                             (0, "0", "BUS_I"), (1, "5", "BUS_TYPE"), (1, "0", "BUS_TYPE"),
                                             (1, "NaN", "BUS_TYPE"), (9, "0", "BASE_KV"), (9, "NaN", "BASE_KV")])
def test_matpower_bad_bus_rows(tmp_path, col, value, field):
    """A NaN or fractional bus number was cast to a garbage id; an unknown bus type silently
    dropped the generators at that bus."""
    p = _m_with(tmp_path, "bus", 2, col, value)
    with pytest.raises(CaseError) as e:
        read_matpower(p)
    assert (e.value.file, e.value.table, e.value.row, e.value.field) == (str(p), "bus", 2, field)


@pytest.mark.parametrize("matrix,col,value,err", [("gen", 0, "2.5", CaseError), ("gen", 0, "NaN", CaseError),
                                                  ("gen", 0, "99", BadReferenceError),
                                                  ("branch", 0, "NaN", CaseError), ("branch", 10, "NaN", CaseError),
                                                  ("branch", 8, "Inf", CaseError)])
def test_matpower_bad_gen_and_branch_rows(tmp_path, matrix, col, value, err):
    p = _m_with(tmp_path, matrix, 1, col, value)
    with pytest.raises(err) as e:
        read_matpower(p)
    assert (e.value.file, e.value.table, e.value.row) == (str(p), matrix, 1)


def test_matpower_matrix_of_text_or_a_scalar(tmp_path):
    text = M_CASE.read_text()
    for repl in ("mpc.gen = {'a', 'b'};", "mpc.gen = 5;"):
        p = tmp_path / "g.m"
        p.write_text(text + "\n" + repl + "\n")
        with pytest.raises(CaseError) as e:
            read_matpower(p)
        assert (e.value.file, e.value.table) == (str(p), "gen")


def test_matpower_latin1_comment_and_binary(tmp_path):
    raw = M_CASE.read_bytes()
    p = tmp_path / "l.m"
    p.write_bytes(raw.replace(b"%% bus data", "%% bus data (Zürich)".encode("latin-1"), 1))
    assert read_matpower(p).counts() == read_matpower(M_CASE).counts()  # a latin-1 byte in a comment is fine
    p.write_bytes(raw[:100] + b"\x00" + raw[100:])
    with pytest.raises(CaseError) as e:
        read_matpower(p)
    assert e.value.file == str(p) and e.value.line is not None


# ------------------------------------------------------------------------------------------------
# pandapower nets (from_pandapower)
# ------------------------------------------------------------------------------------------------
def test_from_pandapower_table_that_is_not_a_table_and_huge_index():
    pn = pytest.importorskip("pandapower.networks")

    net = pn.example_simple()
    net.line = None
    with pytest.raises(SchemaError) as e:
        from_pandapower(net)
    assert e.value.table == "line"
    net = pn.example_simple()
    net.load.index = np.arange(len(net.load), dtype=np.uint64) + np.uint64(2 ** 64 - 10)
    with pytest.raises(SchemaError) as e:
        from_pandapower(net)
    assert e.value.table == "load"
    net = pn.example_simple()
    net.sn_mva = 0.0
    with pytest.raises(SchemaError) as e:
        from_pandapower(net)
    assert e.value.field == "sn_mva"


# ------------------------------------------------------------------------------------------------
# nothing stays open
# ------------------------------------------------------------------------------------------------
def _fds():
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_failed_loads_leave_nothing_open(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(ZIP_CASE.read_bytes()[:-30])
    files = _members()
    del files["network.csv"]
    nonet = _zip(tmp_path / "nonet.zip", files)
    badj = tmp_path / "bad.json"
    badj.write_text(JSON_CASE.read_text()[:5000])
    badm = tmp_path / "bad.m"
    badm.write_text(M_CASE.read_text().replace("mpc.bus = [", "mpc.bus = [\n\t1.5 3 0 0 0 0 1 1 0 1 1 1.1 0.9;", 1))
    before = _fds()
    for p in (bad, nonet, badj, badm) * 5:
        with pytest.raises(GridtapeError):
            load_case(p)
    assert _fds() == before


# ------------------------------------------------------------------------------------------------
# empty optional cells (issue 15: SimBench leaves current_source / controllable empty)
# ------------------------------------------------------------------------------------------------
def test_fill_empty_columns_are_the_ones_the_power_flow_does_not_read():
    from gridtape.world.schema import KINDS

    for kind in KINDS:
        for c in fill_empty_columns(kind):
            col = KINDS[kind][c]
            assert col.affects == "none" and col.default is not None
    assert "current_source" in fill_empty_columns("sgen") and "controllable" in fill_empty_columns("sgen")
    assert "in_service" not in fill_empty_columns("sgen")


@pytest.mark.parametrize("empty", [None, float("nan"), ""])
def test_json_empty_optional_cells_read_as_default(tmp_path, empty):
    doc = _doc()

    def blank(t):
        for c in ("current_source", "controllable"):
            if c not in t["columns"]:
                t["columns"].append(c)
                for r in t["data"]:
                    r.append(None)
            j = t["columns"].index(c)
            for r in t["data"]:
                r[j] = empty
    _set_inner(doc, "sgen", blank)
    p = _write_doc(tmp_path, doc)
    w = read_pandapower_json(p)
    assert w["sgen"].cols["current_source"].all() and not w["sgen"].cols["controllable"].any()
    # an empty cell in a column the power flow reads stays refused (pandapower fails or differs there)
    doc = _doc()
    _set_inner(doc, "sgen", lambda t: t["data"][0].__setitem__(t["columns"].index("in_service"), None))
    p = _write_doc(tmp_path, doc)
    with pytest.raises(SchemaError) as e:
        read_pandapower_json(p)
    assert (e.value.table, e.value.field) == ("sgen", "in_service")


def test_csv_empty_optional_cell_reads_as_default(tmp_path):
    files = _members()
    lines = files["load.csv"].decode().split("\n")
    header = lines[0].split(",")
    j = header.index("controllable")
    row = lines[1].split(",")
    row[j] = ""
    lines[1] = ",".join(row)
    files["load.csv"] = "\n".join(lines)
    w = read_csv_zip(_zip(tmp_path / "e.zip", files))
    assert w["load"].cols["controllable"][0] == np.False_
    row[j] = "abc"  # a value that is not empty is still checked
    lines[1] = ",".join(row)
    files["load.csv"] = "\n".join(lines)
    with pytest.raises(SchemaError) as e:
        read_csv_zip(_zip(tmp_path / "e.zip", files))
    assert (e.value.table, e.value.field) == ("load", "controllable")
    assert math.isfinite(w.sn_mva)


def test_json_lone_surrogate_never_enters_a_world(tmp_path):
    """json.loads turns a \\ud800 escape into text that is not Unicode; the journal could not store
    it, so the reader refuses it (naming the cell) instead of letting world and journal disagree."""
    doc = _doc()
    _set_inner(doc, "bus", lambda t: t["data"][2].__setitem__(t["columns"].index("name"), "bus \ud800"))
    p = tmp_path / "s.json"
    p.write_text(json.dumps(doc))  # json.dumps writes the lone surrogate as an escape
    ids = json.loads(doc["_object"]["bus"]["_object"])["index"]
    with pytest.raises(SchemaError) as e:
        read_pandapower_json(p)
    assert (e.value.file, e.value.table, e.value.row, e.value.field) == (str(p), "bus", ids[2], "name")
    doc = _doc()
    doc["_object"]["name"] = "\udfff"
    p.write_text(json.dumps(doc))
    with pytest.raises(SchemaError) as e:
        read_pandapower_json(p)
    assert (e.value.table, e.value.field) == ("network", "name")
    doc["_object"]["name"] = "\u00e9t\u00e9 \U0001F600"  # real non-ASCII text is fine
    p.write_text(json.dumps(doc))
    assert read_pandapower_json(p).name == "\u00e9t\u00e9 \U0001F600"
