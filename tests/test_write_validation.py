"""Every write goes through the change vocabulary's one validation layer (issue 16): a bad value, id
or reference gets a gridtape error naming table, id and field, and the world and the journal are
exactly as before."""
import math
import os

import numpy as np
import pytest

import gridtape as gt
from gridtape.errors import BadReferenceError, GridtapeError, JournalError, SchemaError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASE = os.path.join(ROOT, "cases", "IEEE14", "data.zip")


@pytest.fixture
def grid(tmp_path):
    g = gt.PowerGrid(CASE, journal=tmp_path / "v.duckdb")
    yield g
    g.close()


def refused(grid, write, error=GridtapeError):
    """``write()`` raises ``error``; the world and the journal do not change."""
    before, n = grid.world.copy(), grid.journal.flush()
    with pytest.raises(error) as e:
        write()
    assert grid.world.equals(before)
    assert grid.journal.flush() == n
    return e.value


def test_infinite_values_are_refused_where_the_physics_needs_finite_ones(grid):
    load = grid.load(bus=2)
    lines = grid.world["line"].ids
    for write in (lambda: setattr(load, "p_mw", math.inf),
                  lambda: setattr(grid.line(0, 1), "r_ohm_per_km", -math.inf),
                  lambda: grid.set("line", lines, "x_ohm_per_km", np.full(len(lines), math.inf)),
                  lambda: grid.set("load", [load.id], "q_mvar", [-math.inf])):
        err = refused(grid, write, SchemaError)
        assert "finite" in str(err)
    gen = grid.gen(bus=1)
    gen.max_q_mvar = math.inf  # an open reactive limit is allowed
    grid.line(0, 1).max_i_ka = math.inf  # a rating the power flow does not read


def test_int64_columns_are_never_coerced_through_float(grid):
    line = grid.line(0, 1)
    for v in (1e30, 2 ** 64 - 1, -1, 2.5, math.nan):
        err = refused(grid, lambda: setattr(line, "parallel", v), SchemaError)
        assert err.field == "parallel" and err.row == line.id
    refused(grid, lambda: grid.set("line", [line.id], "parallel", np.array([2 ** 64 - 1], dtype=np.uint64)),
            SchemaError)
    grid.set("line", [line.id], "parallel", np.array([2 ** 53 + 1], dtype=object))
    assert line.parallel == 2 ** 53 + 1  # exactly, not rounded through a float


def test_bus_nominal_voltage_must_be_positive(grid):
    err = refused(grid, lambda: setattr(grid.bus(3), "vn_kv", 0.0), SchemaError)
    assert err.field == "vn_kv" and "> 0" in str(err)
    refused(grid, lambda: grid.set("bus", [3, 4], "vn_kv", [110.0, 0.0]), SchemaError)


def test_a_list_or_complex_value_for_a_float_column_is_a_schema_error(grid):
    load = grid.load(bus=2)
    for v in ([1.0, 2.0], (3.0,), 1 + 2j, {"p": 1}):
        err = refused(grid, lambda: setattr(load, "p_mw", v), SchemaError)
        assert err.field == "p_mw"
    refused(grid, lambda: grid.set("load", [load.id, 0], "p_mw", [[1.0, 2.0], 3.0]), SchemaError)


def test_fractional_ids_are_refused_not_truncated(grid):
    refused(grid, lambda: grid.set("load", [0.5], "p_mw", [1.0]), BadReferenceError)
    refused(grid, lambda: grid.set("load", np.array([1.0, 2.25]), "p_mw", [1.0, 2.0]), BadReferenceError)
    grid.set("load", np.array([1.0]), "p_mw", [7.0])  # an integral float id is that id
    assert grid.world["load"].get(1, "p_mw") == 7.0


def test_text_that_cannot_be_encoded_is_refused(grid):
    err = refused(grid, lambda: setattr(grid.bus(3), "name", "bad \ud800 name"), SchemaError)
    assert err.field == "name"
    grid.bus(3).name = "Süd"  # any encodable text is fine


def test_switch_references_are_checked_on_write(grid):
    w = grid.world
    line = next(int(i) for i in w["line"].ids if int(i) not in w["trafo"] and int(i) in w["bus"])
    with grid.edit() as e:
        sid, sw = e.add_switch(bus=int(w["line"].get(line, "from_bus")), element=line, et="l")
    missing = int(w["line"].next_id) + 5
    refused(grid, lambda: setattr(sw, "element", missing), BadReferenceError)
    assert line not in w["trafo"]
    refused(grid, lambda: setattr(sw, "et", "t"), BadReferenceError)  # no trafo with that id
    refused(grid, lambda: grid.set("switch", [sid], "et", ["t3"]), BadReferenceError)
    sw.et = "b"  # element is then a bus id: that one exists
    assert sw.et == "b"


def test_a_batch_error_names_the_offending_id(grid):
    nxt = int(grid.world["load"].next_id)
    with pytest.raises(BadReferenceError) as e:
        with grid.edit() as ed:
            ed.add_load(bus=9999, p_mw=1.0)
    assert e.value.row == nxt and e.value.field == "bus"
    with pytest.raises(SchemaError) as e:
        with grid.edit() as ed:
            ed.add_load(bus=3, p_mw=1.0, scaling=-1.0)
    assert e.value.row == nxt and e.value.field == "scaling"
    ids = grid.world["load"].ids
    err = refused(grid, lambda: grid.set("load", ids, "bus", [2] * (len(ids) - 1) + [999]), BadReferenceError)
    assert err.row == int(ids[-1])


def test_a_write_after_close_is_refused_before_the_world_changes(tmp_path):
    g = gt.PowerGrid(CASE, journal=tmp_path / "c.duckdb")
    load = g.load(bus=2)
    p = load.p_mw
    g.close()
    before = g.world.copy()
    for write in (lambda: setattr(load, "p_mw", p + 1.0),
                  lambda: g.set("load", [load.id], "p_mw", [p + 2.0])):
        with pytest.raises(JournalError):
            write()
        assert g.world.equals(before)
