"""The face with its journal: handles, vectorized writes, edit blocks, undo/redo, resume, and the
guide's Scenarios B and C, checked against the events they leave in the journal."""
import math
import os

import numpy as np
import pytest

import gridtape as gt
from gridtape.errors import (BadReferenceError, GridtapeError, JournalError, ReadOnlyError, SchemaError,
                             TopologyError)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASE14 = os.path.join(ROOT, "cases", "IEEE14", "data.zip")
CASE118 = os.path.join(ROOT, "cases", "IEEE118", "data.zip")


def edits(grid, since):
    log = grid.log(since=since)
    return log[log.event != "solve"]


def test_scenario_b_records_each_write_and_solve():
    grid = gt.PowerGrid(CASE118)
    grid.solve()
    start = grid.journal.next_seq
    load = grid.load(bus=5) or grid.load(bus=int(grid.world["load"].cols["bus"][0]))
    volts = []
    for p in [50.0, 60.0, 70.0]:
        load.p_mw = p
        report = grid.solve()
        assert report.converged and report.rebuild == "incremental"
        volts.append(grid.bus(load.bus).vm_pu)
    log = grid.log(since=start)
    assert list(log.event) == ["set", "solve"] * 3
    sets = log[log.event == "set"]
    assert list(sets.new) == [50.0, 60.0, 70.0]
    assert list(sets.kind) == ["load"] * 3 and set(sets.eid) == {load.id} and set(sets.field) == {"p_mw"}
    assert sets.old.iloc[1] == 50.0 and sets.old.iloc[2] == 60.0
    assert len(set(sets.tx)) == 3  # a write outside an edit block is its own transaction
    solves = log[log.event == "solve"]
    assert all(solves.new) and '"rebuild":"incremental"' in solves["info"].iloc[0]
    assert list(np.diff(log.seq)) == [1] * (len(log) - 1)
    # a fresh grid with the same writes gives the same voltages: the journal did not change physics
    fresh = gt.PowerGrid(CASE118, journal=False)
    fresh.element("load", load.id).p_mw = 70.0
    fresh.solve()
    assert abs(fresh.bus(load.bus).vm_pu - volts[-1]) < 1e-9


def test_scenario_c_edit_block():
    grid = gt.PowerGrid(CASE118)
    grid.solve()
    nbus = len(grid.world["bus"])
    start = grid.journal.next_seq
    with grid.edit(author="ann", message="expansion") as e:
        new_bus_id, b_handle = e.add_bus(110.0, name="Expansion")
        e.add_line(from_bus=0, to_bus=new_bus_id, length_km=10.0, r_ohm_per_km=0.1, x_ohm_per_km=0.4)
        e.add_load(new_bus_id, p_mw=10.0, q_mvar=2.0)
    assert b_handle.id == new_bus_id and b_handle.name == "Expansion"
    report = grid.solve()
    assert report.converged and report.rebuild == "full"
    assert len(grid.world["bus"]) == nbus + 1
    assert grid.bus(new_bus_id).vm_pu < grid.bus(0).vm_pu
    log = edits(grid, start)
    assert list(log.event) == ["add", "add", "add", "commit"]
    assert list(log.kind[:3]) == ["bus", "line", "load"]
    assert len(set(log.tx)) == 1 and set(log.author) == {"ann"} and log.message.iloc[-1] == "expansion"


def test_exception_in_edit_block_leaves_everything_unchanged():
    grid = gt.PowerGrid(CASE14)
    grid.solve()
    before = grid.world.copy()
    res_before = grid.res_bus.copy()
    v_before = grid.v.copy()
    seq_before = grid.journal.next_seq
    next_ids = {k: t.next_id for k, t in grid.world.tables.items()}
    with pytest.raises(RuntimeError):
        with grid.edit() as e:
            b, _ = e.add_bus(20.0)
            e.add_load(b, p_mw=1.0)
            e.remove(grid.line(0, 1))
            e.remove(grid.bus(13), cascade=True)
            grid.load(bus=2).p_mw = 99.0
            grid.solve()
            raise RuntimeError("changed my mind")
    assert grid.world.equals(before)
    assert {k: t.next_id for k, t in grid.world.tables.items()} == next_ids
    assert grid.journal.next_seq == seq_before
    assert len(grid.log(since=seq_before)) == 0
    np.testing.assert_array_equal(grid.v, v_before)
    assert grid.res_bus.equals(res_before)
    # and the grid still works: the same solve as before
    rep = grid.solve()
    assert rep.converged
    np.testing.assert_allclose(grid.v, v_before, atol=1e-9)


def test_bad_writes_raise_and_record_nothing():
    grid = gt.PowerGrid(CASE14)
    load = grid.load(bus=2)
    line = grid.line(0, 1)
    seq = grid.journal.next_seq
    cases = [(load, "p_mw", "lots"), (load, "p_mw", float("nan")), (line, "length_km", -1.0),
             (load, "bus", 999), (load, "in_service", "maybe"), (line, "vm_pu", 1.0)]
    for h, field, value in cases:
        before = grid.world.copy()
        with pytest.raises(GridtapeError) as ei:
            setattr(h, field, value)
        assert ei.value.field == field
        assert grid.world.equals(before)
    with pytest.raises(SchemaError):
        grid.set("load", grid.world["load"].ids, "p_mw", [1.0] * (len(grid.world["load"]) - 1) + [math.nan])
    with pytest.raises(BadReferenceError):
        grid.set("load", [12345], "p_mw", [1.0])
    grid.flush()
    assert grid.journal.next_seq == seq and len(grid.log(since=seq)) == 0


def test_results_are_read_only_and_in_service_is_writable():
    grid = gt.PowerGrid(CASE14)
    grid.solve()
    with pytest.raises(SchemaError):
        grid.bus(1).vm_pu = 1.0
    grid.line(0, 1).in_service = False
    assert grid.solve().rebuild == "full"
    assert grid.log().event.iloc[-2] == "set"


def test_vectorized_set_is_one_transaction():
    grid = gt.PowerGrid(CASE118)
    ids = grid.world["load"].ids
    p = grid.world["load"].cols["p_mw"].copy()
    seq = grid.journal.next_seq
    grid.set("load", ids, "p_mw", p * 1.1)
    log = grid.log(since=seq)
    assert list(log.event) == ["set"] * len(ids) + ["commit"] and len(set(log.tx)) == 1
    log = log[log.event == "set"]
    np.testing.assert_array_equal(log.new.to_numpy(dtype=float), p * 1.1)
    np.testing.assert_array_equal(log.old.to_numpy(dtype=float), p)
    assert grid.undo() == log.tx.iloc[0]
    np.testing.assert_array_equal(grid.world["load"].cols["p_mw"], p)


def test_undo_redo_append_compensating_events():
    grid = gt.PowerGrid(CASE14)
    base = grid.world.copy()
    grid.load(bus=2).p_mw = 50.0
    with grid.edit(message="new bus") as e:
        b, _ = e.add_bus(20.0)
        e.add_load(b, p_mw=1.0)
    after_edit = grid.world.copy()
    with grid.edit(message="drop line") as e:
        e.remove(grid.line(0, 1))
    n_before = grid.journal.next_seq
    assert grid.undo() is not None  # the removal
    assert grid.undo() is not None  # the added bus
    assert grid.world.equals(_with(base, grid, "load", 50.0))
    assert grid.redo() is not None  # the bus again
    assert grid.world.equals(after_edit)
    assert grid.undo() is not None
    assert grid.undo() is not None  # the p_mw write
    assert grid.world.equals(base)
    assert grid.undo() is None  # the case load cannot be undone
    log = grid.log(since=n_before)
    assert {"undo", "redo"} <= set(log.event) and (np.diff(log.seq) == 1).all()
    assert grid.solve().converged
    # a new edit after undo clears the redo stack
    grid.load(bus=2).p_mw = 12.0
    assert grid.redo() is None


def _with(world, grid, kind, p):
    w = world.copy()
    w.set_value(kind, grid.load(bus=2).id, "p_mw", p)
    return w


def test_remove_bus_refuses_without_cascade():
    grid = gt.PowerGrid(CASE14)
    before = grid.world.copy()
    with pytest.raises(TopologyError) as ei:
        with grid.edit() as e:
            e.remove(grid.bus(3))
    assert "attached" in str(ei.value)
    assert grid.world.equals(before)
    with grid.edit() as e:
        e.remove(grid.bus(13), cascade=True)
    assert 13 not in grid.world["bus"]
    assert not (grid.world["line"].cols["from_bus"] == 13).any()
    assert grid.solve().converged
    assert grid.undo() is not None
    assert grid.world.equals(before)


@pytest.mark.parametrize("args, field", [
    (("bus", [0]), "handle"),  # remove(kind, ids) is not the signature: the second argument is cascade
    (("bus",), "handle"), ((("bus", "0"),), "handle"), ((("bus", 0), 1), "cascade"),
])
def test_remove_refuses_what_is_not_one_element(args, field):
    grid = gt.PowerGrid(CASE14)
    before, n = grid.world.copy(), len(grid.log())
    with pytest.raises(SchemaError) as ei:
        with grid.edit() as e:
            e.remove(*args)
    assert ei.value.field == field and "remove()" in str(ei.value)
    assert grid.world.equals(before) and len(grid.log()) == n
    with grid.edit() as e:
        e.remove(["load", int(grid.world["load"].ids[0])])  # a (kind, id) pair, as a list too
    assert len(grid.world["load"]) == len(before["load"]) - 1


def test_file_journal_resumes(tmp_path):
    path = tmp_path / "study.duckdb"
    grid = gt.PowerGrid(CASE14, journal=path, author="bob")
    grid.load(bus=2).p_mw = 33.0
    with grid.edit(message="bus") as e:
        e.add_bus(20.0)
    grid.solve()
    world = grid.world.copy()
    seq = grid.journal.next_seq
    grid.close()
    again = gt.PowerGrid(journal=path)
    assert again.world.equals(world)
    assert again.journal.next_seq == seq
    again.load(bus=2).p_mw = 34.0
    assert again.undo() is not None
    assert again.load(bus=2).p_mw == 33.0
    again.close()
    ro = gt.PowerGrid(journal=path, read_only=True)
    with pytest.raises(ReadOnlyError):
        ro.load(bus=2).p_mw = 1.0
    assert ro.world["load"].get(ro.load(bus=2).id, "p_mw") == 33.0
    assert ro.solve().converged
    assert set(ro.log().author) >= {"bob"}
    ro.journal.verify()


def test_grid_without_journal():
    grid = gt.PowerGrid(CASE14, journal=False)
    grid.load(bus=2).p_mw = 10.0
    with grid.edit() as e:
        e.add_bus(20.0)
    assert grid.solve().converged
    with pytest.raises(JournalError):
        grid.undo()


def test_journal_true_is_in_memory_and_bad_journal_values_are_refused(tmp_path, monkeypatch):
    import gridtape as gt
    from gridtape.errors import JournalError

    monkeypatch.chdir(tmp_path)
    g = gt.PowerGrid(CASE14, journal=True)
    g.load(bus=2).p_mw = 5.0
    assert g.journal.path is None and len(g.log()) > 1
    assert not list(tmp_path.iterdir())  # no file named "True"
    try:
        gt.PowerGrid(CASE14, journal=3.5)
    except JournalError as e:
        assert isinstance(e, RuntimeError) and "journal" in str(e)
    else:
        raise AssertionError("journal=3.5 accepted")
    assert not list(tmp_path.iterdir())


def test_a_case_that_fails_to_load_leaves_its_journal_closed(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    path = str(tmp_path / "study.duckdb")
    for _ in range(2):  # the retry must not find the journal locked by the failed attempt
        with pytest.raises(GridtapeError) as e:
            gt.PowerGrid(str(bad), journal=path)
        assert isinstance(e.value, ValueError) and "bad.json" in str(e.value)
    g = gt.PowerGrid(CASE14, journal=path)
    assert g.solve().converged
    g.close()


def test_a_held_journal_says_who_holds_it(tmp_path):
    path = str(tmp_path / "study.duckdb")
    g = gt.PowerGrid(CASE14, journal=path)
    with pytest.raises(JournalError) as e:
        gt.PowerGrid(CASE14, journal=path)
    assert "this process" in str(e.value) and "close()" in str(e.value)
    g.close()
    with gt.open(path) as study:  # released: a reader opens it
        assert len(study.log()) > 0
