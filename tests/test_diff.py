"""World diffs: random edits (cells, elements, extra columns, network values) diffed and applied
give back exactly the edited world; hand-made cases pin the format; result deltas of two solves."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridtape.errors import BadReferenceError, SchemaError
from gridtape.replay.codec import same_world
from gridtape.replay.diff import COLUMNS, apply_diff, diff_worlds, result_diff
from gridtape.world.io import load_case
from gridtape.world.schema import BOOL, I8, STR

CASES = Path(__file__).resolve().parent.parent / "cases"
_BASE = {}


def base(name):
    if name not in _BASE:
        _BASE[name] = load_case(str(CASES / name / "data.zip"))
    return _BASE[name].copy()


# --- random edits through the World API -------------------------------------------------------------
EXTRA_POOL = [None, pd.NA, float("nan"), -0.0, 0.0, 1, 1.0, True, "a", "b", [1, 2], {"k": "v"}]


def _value(draw, w, col, kind):
    """A value the schema accepts for ``col``."""
    if col.ref:
        return int(draw(st.sampled_from(w[col.ref].ids.tolist())))
    if col.dtype == BOOL:
        return draw(st.booleans())
    if col.dtype == STR:
        opts = list(col.choices) if col.choices else ["x", "y", "ÿ"]
        return draw(st.sampled_from(opts + [None]))
    lo = col.lo if col.lo is not None else -1e3
    if col.lo_open:  # an exclusive bound (bus vn_kv > 0)
        lo = math.nextafter(lo, math.inf)
    hi = col.hi if col.hi is not None else 1e3
    if col.dtype == I8:
        return draw(st.integers(int(math.ceil(lo)), int(min(hi, lo + 50))))
    if col.nan_ok and draw(st.booleans()):
        return math.nan
    return draw(st.sampled_from([lo, hi, 0.0, -0.0, 1.0]).filter(lambda v: lo <= v <= hi)
                | st.floats(lo, hi, allow_nan=False, allow_infinity=False))


@st.composite
def edited(draw, name):
    a = base(name)
    b = a.copy()
    kinds = [k for k in ("bus", "line", "trafo", "load", "gen", "sgen", "shunt", "ext_grid") if len(b[k])]
    for _ in range(draw(st.integers(1, 25))):
        op = draw(st.sampled_from(["set", "set", "set", "add", "remove", "extra", "extra_col", "network"]))
        kind = draw(st.sampled_from(kinds))
        t = b[kind]
        if op == "set" and len(t):
            col = draw(st.sampled_from(t.spec.columns))
            eid = int(draw(st.sampled_from(t.ids.tolist())))
            b.set_value(kind, eid, col.name, _value(draw, b, col, kind))
        elif op == "add" and len(t):
            src = int(draw(st.sampled_from(t.ids.tolist())))
            row = {c: [t.get(src, c)] for c in t.spec.names}
            explicit = draw(st.booleans())
            ids = [t.next_id + draw(st.integers(0, 5))] if explicit else None
            new = b.add(kind, row, ids=ids)
            for name_, arr in t.extra.items():
                arr[t.row(int(new[0]))] = draw(st.sampled_from(EXTRA_POOL))
        elif op == "remove" and kind not in ("bus", "ext_grid") and len(t) > 1:
            n = draw(st.integers(1, min(3, len(t) - 1)))
            b.remove(kind, draw(st.lists(st.sampled_from(t.ids.tolist()), min_size=n, max_size=n, unique=True)))
        elif op == "extra" and len(t) and t.extra:
            col = draw(st.sampled_from(sorted(t.extra)))
            t.extra[col][draw(st.integers(0, len(t) - 1))] = draw(st.sampled_from(EXTRA_POOL))
        elif op == "extra_col":
            if t.extra and draw(st.booleans()):
                t.extra.pop(draw(st.sampled_from(sorted(t.extra))))
            else:
                col = np.empty(len(t), dtype=object)
                col[:] = [draw(st.sampled_from(EXTRA_POOL)) for _ in range(len(t))] if len(t) < 20 else None
                t.extra[f"user{draw(st.integers(0, 3))}"] = col
        elif op == "network":
            f = draw(st.sampled_from(["sn_mva", "f_hz", "name"]))
            choices = ["renamed", ""] if f == "name" else [50.0, 60.0, 1.0, 100.0]
            setattr(b, f, draw(st.sampled_from(choices)))
    return a, b


@pytest.mark.parametrize("name", ["IEEE14", "IEEE118"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_apply_of_diff_reproduces_the_edited_world(name, data):
    a, b = data.draw(edited(name))
    a_before = a.copy()
    d = diff_worlds(a, b)
    assert list(d.columns) == COLUMNS
    assert set(d["change"]) <= {"add", "remove", "set"}
    c = apply_diff(a, d)
    assert same_world(c, b)
    assert same_world(a, a_before)  # the input is never touched
    assert len(diff_worlds(c, b)) == 0
    assert same_world(apply_diff(b, diff_worlds(b, a)), a)  # and backwards
    if same_world(a, b):
        assert len(d) == 0
    else:
        assert len(d) > 0


# --- the format, case by case -------------------------------------------------------------------------
def test_cell_changes_are_bit_exact_and_nan_equals_nan():
    a = base("IEEE14")
    b = a.copy()
    tid = int(b["trafo"].ids[0])
    b.set_value("trafo", tid, "tap_min", math.nan)  # may or may not be NaN already
    a.set_value("trafo", tid, "tap_min", math.nan)
    line = int(b["line"].ids[2])
    a.set_value("line", line, "g_us_per_km", 0.0)
    b.set_value("line", line, "g_us_per_km", -0.0)
    b.set_value("bus", int(b["bus"].ids[1]), "in_service", False)
    b.set_value("bus", int(b["bus"].ids[3]), "zone", "north")
    b.set_value("load", int(b["load"].ids[0]), "p_mw", 1e-300)
    d = diff_worlds(a, b)
    got = {(r.kind, int(r.id), r.field) for r in d.itertuples()}
    assert got == {("line", line, "g_us_per_km"), ("bus", int(b["bus"].ids[1]), "in_service"),
                   ("bus", int(b["bus"].ids[3]), "zone"), ("load", int(b["load"].ids[0]), "p_mw")}
    row = d[d.field == "g_us_per_km"].iloc[0]
    assert row.old == 0.0 and math.copysign(1, row.new) == -1.0
    assert d[d.field == "in_service"].iloc[0].new is False
    c = apply_diff(a, d)
    assert same_world(c, b)
    assert math.copysign(1, c["line"].get(line, "g_us_per_km")) == -1.0


def test_add_and_remove_rows_carry_whole_elements():
    a = base("IEEE14")
    b = a.copy()
    gone = int(b["load"].ids[3])
    b.remove("load", [gone])
    new = int(b.add("sgen", {"bus": [int(b["bus"].ids[4])], "p_mw": [3.5], "name": ["pv"]})[0])
    d = diff_worlds(a, b)
    rem = d[d.change == "remove"].iloc[0]
    assert (rem.kind, int(rem.id), rem.field, rem.new) == ("load", gone, None, None)
    assert rem.old["p_mw"] == a["load"].get(gone, "p_mw") and "geo" not in rem.old
    add = d[d.change == "add"].iloc[0]
    assert (add.kind, int(add.id)) == ("sgen", new)
    assert add.new["p_mw"] == 3.5 and add.new["name"] == "pv" and set(a["sgen"].spec.names) <= set(add.new)
    assert same_world(apply_diff(a, d), b)


def test_table_and_network_level_rows():
    a = base("IEEE30")
    b = a.copy()
    b.sn_mva, b.name = 10.0, "other"
    lid = int(b["load"].ids[-1])
    b.remove("load", [lid])  # next_id stays above the removed id
    b["gen"].extra["owner"] = np.array([f"o{i}" for i in range(len(b["gen"]))], dtype=object)
    perm = np.arange(len(b["line"]))[::-1]
    t = b["line"]
    t.ids, t.cols, t._pos = t.ids[perm], {k: v[perm] for k, v in t.cols.items()}, None
    t.extra = {k: v[perm] for k, v in t.extra.items()}
    d = diff_worlds(a, b)
    top = d[d["id"].isna()]
    got = {(r.kind, r.field) for r in top.itertuples()}
    assert got == {("network", "sn_mva"), ("network", "name"), ("gen", "@extra_columns"), ("line", "@order")}
    assert len(d[(d.kind == "gen") & (d.field == "owner")]) == len(b["gen"])
    c = apply_diff(a, d)
    assert same_world(c, b) and c.sn_mva == 10.0 and c["load"].next_id == a["load"].next_id
    # ids never reused: a world that allocated and dropped ids carries @next_id
    b2 = a.copy()
    b2.add("load", {"bus": [int(a["bus"].ids[0])], "p_mw": [1.0]}, ids=[a["load"].next_id + 7])
    b2.remove("load", [a["load"].next_id + 7])
    d2 = diff_worlds(a, b2)
    nid = a["load"].next_id
    assert [(r.field, r.old, r.new) for r in d2.itertuples()] == [("@next_id", nid, nid + 8)]
    assert apply_diff(a, d2)["load"].next_id == a["load"].next_id + 8


def test_identical_worlds_give_an_empty_typed_frame():
    a = base("IEEE57")
    d = diff_worlds(a, a.copy())
    assert len(d) == 0 and list(d.columns) == COLUMNS and str(d["id"].dtype) == "Int64"
    assert same_world(apply_diff(a, d), a)


def test_apply_refuses_a_diff_for_another_world():
    a = base("IEEE14")
    b = a.copy()
    lid = int(b["load"].ids[1])
    b.set_value("load", lid, "p_mw", 99.0)
    d = diff_worlds(a, b)
    other = a.copy()
    other.set_value("load", lid, "p_mw", 5.0)
    with pytest.raises(SchemaError) as e:
        apply_diff(other, d)
    assert (e.value.table, e.value.row, e.value.field) == ("load", lid, "p_mw")
    assert other["load"].get(lid, "p_mw") == 5.0
    assert apply_diff(other, d, check=False)["load"].get(lid, "p_mw") == 99.0
    bad = d.copy()
    bad.loc[0, "field"] = "no_such_column"
    with pytest.raises(SchemaError):
        apply_diff(a, bad)
    bad = d.copy()
    bad.loc[0, "kind"] = "no_such_kind"
    with pytest.raises(SchemaError):
        apply_diff(a, bad)
    bad = d.copy()
    bad.loc[0, "new"] = -5.0  # p_mw may be negative; a negative scaling may not
    bad.loc[0, "field"], bad.loc[0, "old"] = "scaling", 1.0
    with pytest.raises(SchemaError):
        apply_diff(a, bad)
    # a diff whose result breaks a reference
    b = a.copy()
    b.set_value("load", lid, "bus", int(a["bus"].ids[-1]))
    d = diff_worlds(a, b)
    d.loc[0, "new"] = 10 ** 6
    with pytest.raises(BadReferenceError):
        apply_diff(a, d)


# --- results ---------------------------------------------------------------------------------------------
def test_diff_of_what_is_not_a_grid_names_the_argument():
    import gridtape as gt

    grid = gt.PowerGrid(str(CASES / "IEEE14" / "data.zip"), journal=False)
    for args, kw, name in (((grid, 5), {}, "b"), (("x", grid), {}, "a"), ((grid, grid.world), {"results": True}, "b")):
        with pytest.raises(SchemaError) as e:
            gt.diff(*args, **kw)
        assert e.value.field == name and "diff()" in str(e.value)
    assert len(gt.diff(grid, grid.world)) == 0


def test_result_diff_of_two_solves():
    import gridtape as gt

    g1 = gt.PowerGrid(str(CASES / "IEEE14" / "data.zip"))
    g2 = gt.PowerGrid(str(CASES / "IEEE14" / "data.zip"))
    lid = int(g2.world["load"].ids[2])
    g2.world.set_value("load", lid, "p_mw", g2.world["load"].get(lid, "p_mw") + 20.0)
    assert g1.solve().converged and g2.solve().converged
    ra, rb = g1.post_process(), g2.post_process()
    d = result_diff(ra, rb)
    assert list(d.columns) == ["kind", "id", "field", "a", "b", "delta"]
    bus = d[(d.kind == "bus") & (d.field == "vm_pu")].set_index("id")
    np.testing.assert_array_equal(bus["a"].to_numpy(), ra["bus"]["vm_pu"].reindex(bus.index).to_numpy())
    np.testing.assert_array_equal(bus["delta"].to_numpy(),
                                  (rb["bus"]["vm_pu"] - ra["bus"]["vm_pu"]).reindex(bus.index).to_numpy())
    assert {"line", "trafo"} <= set(d.kind) and (d[d.field == "va_degree"]["delta"].abs() > 1e-6).any()
    assert len(result_diff(ra, ra, atol=0.0)) == 0
    small = result_diff(ra, rb, atol=1e-3)
    assert 0 < len(small) < len(d) and (small["delta"].abs() > 1e-3).all()


def test_result_diff_aligns_ids_and_accepts_res_keys():
    ra = {"res_line": pd.DataFrame({"p_from_mw": [1.0, 2.0], "q_from_mvar": [0.1, 0.2], "loading_percent": [5.0, 6.0]},
                                   index=[4, 7])}
    rb = {"line": pd.DataFrame({"p_from_mw": [2.5, 3.0], "q_from_mvar": [0.1, 0.2], "loading_percent": [5.0, 6.0]},
                               index=[7, 9])}
    d = result_diff(ra, rb)
    p = d[d.field == "p_from_mw"].set_index("id")
    assert list(p.index) == [4, 7, 9]
    assert np.isnan(p.loc[4, "b"]) and np.isnan(p.loc[9, "a"]) and p.loc[7, "delta"] == 0.5
    kept = result_diff(ra, rb, atol=10.0)
    assert set(kept["id"]) == {4, 9}  # one-sided elements are always kept
