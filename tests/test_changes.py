"""The change vocabulary (world/changes.py): apply validates the whole list before it writes, its
inverse gives the world back exactly (values, row order, next ids, extra columns, network values),
and every applied change marks the dirty sets."""
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gridtape as gt
from gridtape.errors import BadReferenceError, GridtapeError, SchemaError
from gridtape.world.changes import AddRows, RemoveRows, SetCol, SetNetwork, apply, apply_set, set_cell

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASE = os.path.join(ROOT, "cases", "IEEE14", "data.zip")
_BASE = []


def base():
    if not _BASE:
        _BASE.append(gt.PowerGrid(CASE, journal=False).world)
    return _BASE[0].copy()


def exact(a, b):
    """Same tables in the same row order, same next ids and extra columns, same network values."""
    if (a.sn_mva, a.f_hz, a.name) != (b.sn_mva, b.f_hz, b.name):
        return False
    for k, ta in a.tables.items():
        tb = b.tables[k]
        if not np.array_equal(ta.ids, tb.ids) or ta.next_id != tb.next_id or list(ta.extra) != list(tb.extra):
            return False
        for name, x in ta.cols.items():
            y = tb.cols[name]
            if x.dtype != y.dtype:
                return False
            same = np.array_equal(x, y, equal_nan=True) if x.dtype.kind == "f" else list(x) == list(y)
            if not same:
                return False
    return True


def test_inverse_restores_the_world_exactly():
    w = base()
    w0 = w.copy()
    bus = w["bus"]
    done = apply(w, [
        SetCol("load", w["load"].ids[:3], "p_mw", [1.0, 2.0, 3.0]),
        AddRows("bus", {"vn_kv": [20.0, 110.0]}),
        AddRows("load", {"bus": [int(bus.next_id)], "p_mw": [5.0]}),  # refers to a bus added above
        SetCol("load", [int(w["load"].next_id)], "q_mvar", 2.5),  # a cell of a load added above
        RemoveRows("line", [3, 1]),
        SetCol("bus", bus.ids[:2], "name", ["north", None]),
        SetNetwork("sn_mva", 50.0),
        SetNetwork("f_hz", 60.0),
    ])
    assert len(done) == 8 and w.sn_mva == 50.0 and len(w["bus"]) == len(w0["bus"]) + 2
    assert w["load"].get(int(w0["load"].next_id), "q_mvar") == 2.5
    apply(w, done.inverse(), check=False)
    assert exact(w, w0)


def test_a_refused_list_writes_nothing():
    w = base()
    w0 = w.copy()
    d = w.watch()
    d.clear()
    bad_lists = [
        [SetCol("load", w["load"].ids[:2], "p_mw", [1.0, 2.0]), SetCol("load", [0], "scaling", -1.0)],
        [RemoveRows("line", [0]), SetCol("line", [0], "x_ohm_per_km", 1.0)],  # a cell of a removed line
        [AddRows("bus", {"vn_kv": [20.0]}), AddRows("load", {"bus": [999], "p_mw": [1.0]})],
        [SetNetwork("sn_mva", 10.0), SetNetwork("f_hz", 0.0)],
        [SetCol("load", [0], "bus", 12345)],
        [AddRows("switch", {"bus": [0], "element": [999], "et": ["l"]})],
        [RemoveRows("load", [0, 0])],
        [AddRows("load", {"bus": [0], "p_mw": [1.0]}, ids=[0])],  # id in use
    ]
    for changes in bad_lists:
        with pytest.raises(GridtapeError):
            apply(w, changes)
        assert exact(w, w0)
    assert not d  # nothing was marked either


def test_dirty_sets_are_marked_by_what_apply_did():
    w = base()
    d = w.watch()
    d.clear()
    apply(w, [SetCol("load", [0, 1], "p_mw", [3.0, 4.0])])
    assert d.cols == {("load", "p_mw")} and not d.rows and not d.network
    d.clear()
    apply(w, [AddRows("sgen", {"bus": [3], "p_mw": [1.0]})])
    assert d.rows == {"sgen"} and not d.cols
    d.clear()
    apply(w, [RemoveRows("line", [2])])
    assert d.rows == {"line"}
    d.clear()
    apply(w, [SetNetwork("sn_mva", 10.0)])
    assert d.network
    d.clear()
    set_cell(w, "gen", int(w["gen"].ids[0]), "vm_pu", 1.01)
    apply_set(w, "line", w["line"].ids, "in_service", True)
    assert d.cols == {("gen", "vm_pu"), ("line", "in_service")}


def test_events_are_what_was_applied():
    w = base()
    f0 = w.f_hz
    done = apply(w, [SetCol("load", [0, 1], "p_mw", [3.0, 4.0]), AddRows("bus", {"vn_kv": [20.0]}),
                     RemoveRows("load", [2]), SetNetwork("f_hz", 55.0)])
    ev = list(done.events())
    assert ev[0][0] == "set" and list(ev[0][2]) == [0, 1] and list(ev[0][5]) == [3.0, 4.0]
    assert ev[1][0] == "add" and ev[1][1] == "bus" and '"vn_kv":20.0' in ev[1][3]
    assert ev[2][:3] == ("remove", "load", 2)
    assert ev[3] == ("network", "f_hz", f0, 55.0)


def test_fast_sets_refuse_bad_ids_and_name_the_id():
    w = base()
    w0 = w.copy()
    with pytest.raises(BadReferenceError):
        apply_set(w, "load", [0.5], "p_mw", [1.0])  # a fractional id is never truncated
    with pytest.raises(BadReferenceError):
        set_cell(w, "load", 1.5, "p_mw", 1.0)
    ids = w["load"].ids[:4]
    with pytest.raises(SchemaError) as e:
        apply_set(w, "load", ids, "scaling", [1.0, 1.0, -2.0, 1.0])
    assert e.value.row == int(ids[2])  # the offending id, not row 0
    assert exact(w, w0)


# --- property: any list of changes either applies and inverts exactly, or writes nothing ------------
_FLOATS = {"load": ["p_mw", "q_mvar", "scaling"], "line": ["x_ohm_per_km", "length_km"], "gen": ["vm_pu", "p_mw"],
           "bus": ["vn_kv"]}


@st.composite
def change(draw, w_ids):
    what = draw(st.sampled_from(["set", "set_many", "add_bus", "add_load", "remove", "network", "flag"]))
    kind = draw(st.sampled_from(sorted(_FLOATS)))
    ids = w_ids[kind]
    if what in ("set", "set_many"):
        n = 1 if what == "set" else draw(st.integers(1, 4))
        sel = [draw(st.sampled_from(ids + [10**6])) for _ in range(n)]  # sometimes a missing id
        vals = [draw(st.one_of(st.floats(-5, 200), st.just(math.nan), st.just(-1.0))) for _ in range(n)]
        return SetCol(kind, sel, draw(st.sampled_from(_FLOATS[kind])), vals)
    if what == "add_bus":
        return AddRows("bus", {"vn_kv": [draw(st.floats(-1, 400))]})
    if what == "add_load":
        return AddRows("load", {"bus": [draw(st.sampled_from(w_ids["bus"] + [10**6]))],
                                "p_mw": [draw(st.floats(0, 50))]})
    if what == "remove":
        return RemoveRows(kind, [draw(st.sampled_from(ids))])
    if what == "flag":
        return SetCol("line", [draw(st.sampled_from(w_ids["line"]))], "in_service", draw(st.booleans()))
    return SetNetwork(draw(st.sampled_from(["sn_mva", "f_hz"])), draw(st.floats(-10, 500)))


_W0 = base()
_IDS = {k: [int(i) for i in _W0[k].ids] for k in _FLOATS}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(change(_IDS), min_size=1, max_size=6), min_size=1, max_size=4))
def test_apply_then_inverse_is_exact_and_a_refusal_changes_nothing(batches):
    w = base()
    w0 = w.copy()
    d = w.watch()
    applied = []
    for changes in batches:
        before = w.copy()
        d.clear()
        try:
            done = apply(w, changes)
        except GridtapeError:
            assert exact(w, before) and not d
            continue
        applied.append(done)
        touched = {(c.kind, c.field) for c in done.done if isinstance(c, SetCol)}
        assert touched <= d.cols
        assert {c.kind for c in done.done if isinstance(c, (AddRows, RemoveRows))} <= d.rows
    for done in reversed(applied):
        apply(w, done.inverse(), check=False)
    assert exact(w, w0)
