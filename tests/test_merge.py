"""Revert any transaction, cherry-pick, merge (gridtape/merge.py, replay/merge.py): the Python API,
with and without conflicts, structural changes included; a conflict changes nothing."""
import json
import os

import pytest

import gridtape as gt
from gridtape.errors import (ConflictError, JournalError, MergeConflictError, NotSolvedError, ReadOnlyError,
                             RevertConflictError)
from gridtape.replay.diff import diff_worlds
from gridtape.testing.invariants import assert_grids_equal, assert_replay_equals_live

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASE = os.path.join(ROOT, "cases", "IEEE14", "data.zip")


def tx_of(grid, message):
    log = grid.log()
    return int(log[log.message == message].tx.iloc[0])


def same_values(a, b):
    """The same elements and values (row order and next ids aside)."""
    d = diff_worlds(getattr(a, "world", a), getattr(b, "world", b))
    d = d[~d["field"].isin(["@order", "@next_id"])]
    assert not len(d), d.to_string()


@pytest.fixture
def grid(tmp_path):
    g = gt.PowerGrid(CASE, journal=str(tmp_path / "s.duckdb"), author="ann")
    with g.edit(message="a: load 0") as e:
        e.set("load", [0], "p_mw", 30.0)
    with g.edit(author="bob", message="b: load 1, new load") as e:
        e.set("load", [1], "p_mw", 40.0)
        e.add_load(3, p_mw=5.0, q_mvar=1.0, name="new")
    with g.edit(message="c: load 0 again, gen") as e:
        e.set("load", [0], "p_mw", 35.0)
        e.set("gen", [0], "vm_pu", 1.03)
    yield g
    g.close()


def snapshot(grid):
    """What a refused operation must leave as it was: world, results, journal."""
    return grid.world.copy(), grid.res_bus.copy(), len(grid.log()), grid.journal.head_hash


def unchanged(grid, before):
    world, res, n, head = before
    assert grid.world.equals(world)
    assert grid.res_bus.equals(res)
    assert len(grid.log()) == n and grid.journal.head_hash == head


# --- revert -------------------------------------------------------------------------------------------
def test_revert_an_earlier_transaction(grid):
    tb = tx_of(grid, "b: load 1, new load")
    new_id = int(grid.world["load"].ids[-1])
    case = gt.PowerGrid(CASE, journal=False).world
    t = grid.revert(tb)
    assert t is not None and grid.world["load"].get(1, "p_mw") == case["load"].get(1, "p_mw") != 40.0
    assert new_id not in grid.world["load"]  # the added load is gone
    assert grid.world["load"].get(0, "p_mw") == 35.0 and grid.world["gen"].get(0, "vm_pu") == 1.03  # later kept
    ev = grid.journal.log(tx=t)
    assert ev.message.iloc[-1] == "Revert %d: b: load 1, new load" % tb
    marker = ev[ev.event == "revert"]
    assert len(marker) == 1 and json.loads(marker["info"].iloc[0])["tx"] == tb
    assert set(ev.event) == {"set", "remove", "revert", "commit"}
    assert_replay_equals_live(grid)


def test_revert_equals_the_history_without_it(grid):
    ta = tx_of(grid, "a: load 0")
    tc = tx_of(grid, "c: load 0 again, gen")
    grid.revert(tc)  # the latest: back to a's and b's world
    expected = gt.PowerGrid(CASE, journal=False)
    expected.element("load", 0).p_mw = 30.0
    expected.element("load", 1).p_mw = 40.0
    with expected.edit() as e:
        e.add_load(3, p_mw=5.0, q_mvar=1.0, name="new")
    assert_grids_equal(grid, expected)
    assert ta is not None


def test_revert_then_revert_of_the_revert_restores(grid):
    tb = tx_of(grid, "b: load 1, new load")
    start = grid.world.copy()
    r = grid.revert(tb)
    rr = grid.revert(r)
    assert rr is not None and rr != r
    same_values(grid.world, start)
    assert grid.journal.log(tx=rr).message.iloc[-1].startswith(f"Revert {r}: Revert {tb}")


def test_revert_conflict_lists_each_and_changes_nothing(grid):
    grid.solve()
    ta = tx_of(grid, "a: load 0")
    tc = tx_of(grid, "c: load 0 again, gen")
    before = snapshot(grid)
    with pytest.raises(RevertConflictError) as ex:
        grid.revert(ta)
    e = ex.value
    assert isinstance(e, ConflictError) and isinstance(e, RuntimeError)
    [c] = e.conflicts
    assert (c.what, c.kind, c.id, c.field, c.tx) == ("set", "load", 0, "p_mw", tc)
    assert (c.base, c.ours) == (30.0, 35.0) and c.theirs != 30.0  # what a left, what is there, what a found
    assert "load 0 p_mw" in str(e) and f"tx {tc}" in str(e)
    unchanged(grid, before)
    t = grid.revert(ta, force=True)  # the inverse overrides
    assert grid.world["load"].get(0, "p_mw") == c.theirs and t is not None


def test_a_later_write_of_the_same_value_is_no_conflict(grid):
    ta = tx_of(grid, "a: load 0")
    grid.element("load", 0).p_mw = 30.0  # back to what a left
    assert grid.revert(ta) is not None


def test_revert_of_a_removal_adds_the_rows_back_with_their_ids(grid):
    row = grid.world.row_values("line", 3)
    with grid.edit(message="remove bus 13 and what is on it") as e:
        e.remove(grid.bus(13), cascade=True)
    assert 13 not in grid.world["bus"]
    t = grid.revert(tx_of(grid, "remove bus 13 and what is on it"))
    assert 13 in grid.world["bus"] and grid.world.row_values("line", 3) == row
    grid.solve()
    fresh = gt.PowerGrid(world=grid.world.copy(), journal=False)
    assert_grids_equal(grid, fresh)
    assert_replay_equals_live(grid)
    assert grid.undo() == t and 13 not in grid.world["bus"]  # a revert is an edit like any other


def test_results_after_a_structural_revert_need_a_solve(grid):
    grid.solve()
    grid.revert(tx_of(grid, "b: load 1, new load"))
    with pytest.raises(NotSolvedError):
        grid.res_bus
    assert grid.solve().converged


def test_a_later_removal_conflicts_with_reverting_a_write(grid):
    tb = tx_of(grid, "b: load 1, new load")
    with grid.edit(message="drop load 1") as e:
        e.remove(("load", 1))
    drop = tx_of(grid, "drop load 1")
    before = grid.world.copy()
    with pytest.raises(RevertConflictError) as ex:
        grid.revert(tb)
    c = [c for c in ex.value.conflicts if c.id == 1][0]
    assert (c.what, c.kind, c.field, c.ours, c.tx) == ("set", "load", "p_mw", None, drop)
    assert grid.world.equals(before)


def test_reverting_an_add_that_later_elements_use_is_refused_even_forced(grid):
    with grid.edit(message="new bus") as e:
        b, _ = e.add_bus(110.0)
    with grid.edit(message="load on it") as e:
        e.add_load(b, p_mw=1.0)
    before = grid.world.copy()
    for force in (False, True):
        with pytest.raises(RevertConflictError) as ex:
            grid.revert(tx_of(grid, "new bus"), force=force)
        [c] = ex.value.conflicts
        assert (c.what, c.kind, c.field, c.theirs) == ("reference", "load", "bus", f"bus {b}")
        assert c.tx == tx_of(grid, "load on it")
        assert grid.world.equals(before)


def test_revert_refuses_what_it_cannot_revert(grid, tmp_path):
    grid.tag("t")
    log = grid.log()
    with pytest.raises(JournalError, match="loads a case"):
        grid.revert(0)
    with pytest.raises(JournalError, match="changes nothing"):
        grid.revert(int(log[log.event == "tag"].tx.iloc[0]))
    with pytest.raises(JournalError, match="no transaction"):
        grid.revert(999)
    with pytest.raises(JournalError, match="is an int"):
        grid.revert("x")
    with grid.edit() as e, pytest.raises(JournalError, match="edit block"):
        grid.revert(1)
    with pytest.raises(JournalError, match="journal"):
        gt.PowerGrid(CASE, journal=False).revert(1)
    ro = gt.PowerGrid(world=grid.world.copy(), journal=False, read_only=True)
    with pytest.raises(ReadOnlyError):
        ro.revert(1)


# --- branches: cherry-pick and merge ----------------------------------------------------------------
@pytest.fixture
def fork(grid):
    """The study closed, a branch "x" from its head; returns (main journal path, branch path)."""
    path = grid.journal.path
    grid.close()
    with gt.open(path, read_only=False) as study:
        br = study.branch(study.head, "x", author="bob")
    return path, br


def test_cherry_pick_from_a_branch(fork):
    path, br = fork
    with br.edit(message="raise load 2") as e:
        e.set("load", [2], "p_mw", 77.0)
    with br.edit(message="sgen on bus 4") as e:
        e.add_sgen(4, p_mw=3.0)
    picked = int(br.log().tx.iloc[-1])
    branch_path = br.journal.path
    br.close()
    with gt.PowerGrid(journal=path) as g:
        t = g.cherry_pick(picked, "x")
        assert len(g.world["sgen"]) == 1 and g.world["load"].get(2, "p_mw") != 77.0  # only that transaction
        ev = g.journal.log(tx=t)
        info = json.loads(ev[ev.event == "cherry-pick"]["info"].iloc[0])
        assert info["tx"] == picked and os.path.samefile(info["from"], branch_path)
        assert "cherry-picked from tx" in ev.message.iloc[-1] and ev.message.iloc[-1].startswith("sgen on bus 4")
        assert g.cherry_pick(picked, branch_path) is None  # already here: nothing to change
        assert_replay_equals_live(g)


def test_cherry_pick_conflict_and_force(fork):
    path, br = fork
    with br.edit(message="raise load 2") as e:
        e.set("load", [2], "p_mw", 77.0)
    picked = int(br.log().tx.iloc[-1])
    br.close()
    with gt.PowerGrid(journal=path) as g:
        old = g.world["load"].get(2, "p_mw")
        g.element("load", 2).p_mw = 50.0
        mine = int(g.log().tx.iloc[-1])
        g.solve()
        before = snapshot(g)
        with pytest.raises(MergeConflictError) as ex:
            g.cherry_pick(picked, "x")
        [c] = ex.value.conflicts
        assert (c.what, c.kind, c.id, c.field, c.base, c.ours, c.theirs, c.tx) == \
            ("set", "load", 2, "p_mw", old, 50.0, 77.0, mine)
        unchanged(g, before)
        g.cherry_pick(picked, "x", force=True)
        assert g.world["load"].get(2, "p_mw") == 77.0


def test_merge_without_conflicts_is_one_transaction_naming_both_parents(fork):
    path, br = fork
    with br.edit(message="branch: load 2, new sgen, drop load 3") as e:
        e.set("load", [2], "p_mw", 77.0)
        e.add_sgen(4, p_mw=3.0)
        e.remove(("load", 3))
    br.element("load", 4).p_mw = 12.0  # the same value on both sides: fine
    branch_head = int(br.log().seq.iloc[-1])
    theirs = br.world.copy()
    br.close()
    with gt.PowerGrid(journal=path, author="ann") as g:
        g.element("load", 5).p_mw = 9.0
        g.element("load", 4).p_mw = 12.0
        ours_head = int(g.log().seq.iloc[-1])
        ours = g.world.copy()
        t = g.merge("x")
        ev = g.journal.log(tx=t)
        info = json.loads(ev[ev.event == "merge"]["info"].iloc[0])
        assert info["ours"]["seq"] == ours_head and info["theirs"]["seq"] == branch_head
        assert info["branch"] == "x" and ev.message.iloc[-1] == "Merge branch x"
        assert g.world["load"].get(5, "p_mw") == 9.0 and g.world["load"].get(2, "p_mw") == 77.0
        assert 3 not in g.world["load"] and len(g.world["sgen"]) == 1
        log = g.log(event="merge")
        assert len(log) == 1  # log shows it
        # the merge equals both sides' changes applied to the base
        same_values(g.world, _both(ours, theirs))
        assert g.merge("x") is None  # merged: the base moved to the branch head
        assert_replay_equals_live(g)


def _both(ours, theirs):
    """ours with the branch's changes of test_merge_without_conflicts applied."""
    w = ours.copy()
    from gridtape.world.changes import AddRows, RemoveRows, SetCol, apply

    apply(w, [SetCol("load", [2], "p_mw", [77.0]), RemoveRows("load", [3])])
    s = theirs["sgen"]
    apply(w, [AddRows("sgen", {k: v.copy() for k, v in s.cols.items()}, s.ids.copy())])
    return w


def test_merge_conflicts(fork):
    path, br = fork
    with br.edit(message="branch") as e:
        e.set("load", [2], "p_mw", 77.0)  # both change, differently
        e.set("load", [4], "q_mvar", 3.0)  # written here, removed there
        e.remove(("load", 5))  # removed here, written there
        e.add_sgen(4, p_mw=3.0)  # added on both sides with one id, different values
    br.close()
    with gt.PowerGrid(journal=path) as g:
        with g.edit(message="main") as e:
            e.set("load", [2], "p_mw", 60.0)
            e.remove(("load", 4))
            e.set("load", [5], "p_mw", 1.5)
            e.add_sgen(4, p_mw=4.0)
        main = tx_of(g, "main")
        g.solve()
        before = snapshot(g)
        with pytest.raises(MergeConflictError) as ex:
            g.merge("x")
        got = {(c.what, c.kind, c.id, c.field) for c in ex.value.conflicts}
        assert ("set", "load", 2, "p_mw") in got
        assert ("set", "load", 4, "q_mvar") in got  # written there, removed here
        assert ("remove", "load", 5, "p_mw") in got  # removed there, written here
        assert ("add", "sgen", 0, "p_mw") in got
        assert {c.tx for c in ex.value.conflicts} == {main}
        unchanged(g, before)
        t = g.merge("x", force=True)  # theirs wins
        assert g.world["load"].get(2, "p_mw") == 77.0 and 5 not in g.world["load"]
        assert g.world["sgen"].get(0, "p_mw") == 3.0 and 4 not in g.world["load"]  # a removed element stays removed
        assert t is not None


def test_merge_the_parent_into_its_branch(fork):
    path, br = fork
    branch_path = br.journal.path
    br.element("load", 2).p_mw = 77.0
    br.close()
    with gt.PowerGrid(journal=path) as g:
        g.element("load", 5).p_mw = 9.0
    with gt.PowerGrid(journal=branch_path) as b:
        t = b.merge(path)
        assert t is not None and b.world["load"].get(5, "p_mw") == 9.0 and b.world["load"].get(2, "p_mw") == 77.0
    with gt.PowerGrid(journal=path) as g:  # and back: only the branch's own change comes
        t = g.merge("x")
        ev = g.journal.log(tx=t)
        assert set(ev[ev.event == "set"].eid) == {2}


def test_merge_needs_a_related_journal(fork, tmp_path):
    path, br = fork
    br.close()
    other = gt.PowerGrid(CASE, journal=str(tmp_path / "other.duckdb"))
    other.close()
    with gt.PowerGrid(journal=path) as g:
        with pytest.raises(JournalError, match="share no point"):
            g.merge(str(tmp_path / "other.duckdb"))
        with pytest.raises(JournalError, match="neither a branch"):
            g.merge("nope")
        with pytest.raises(JournalError, match="another journal"):
            g.merge(path)


def test_cherry_pick_from_this_journal_applies_a_transaction_again(grid):
    tb = tx_of(grid, "b: load 1, new load")
    after_b = grid.world.copy()
    grid.revert(tb)
    t = grid.cherry_pick(tb)  # the same journal: b once more (its added load with its id)
    assert t is not None
    same_values(grid.world, after_b)
    ev = grid.journal.log(tx=t)
    assert json.loads(ev[ev.event == "cherry-pick"]["info"].iloc[0])["tx"] == tb


def test_a_writable_study_reverts_and_merges(fork):
    path, br = fork
    br.element("load", 2).p_mw = 77.0
    br.close()
    with gt.open(path) as study:
        with pytest.raises(JournalError, match="writable"):
            study.revert(1)
    with gt.open(path, read_only=False) as study:
        t = study.merge("x", author="carl")
        assert study.log(tx=t).author.iloc[-1] == "carl"
        r = study.revert(t)
        assert study.world_at()["load"].get(2, "p_mw") != 77.0 and r > t
        assert study.merge("x") is None  # the base moved to the merged head (as in git)


def test_merge_two_branches_of_one_study(fork):
    path, br = fork
    x_path = br.journal.path
    br.element("load", 2).p_mw = 77.0
    br.close()
    with gt.open(path, read_only=False) as study:
        y = study.branch(study.head, "y")
    y.element("load", 5).p_mw = 9.0
    y_path = y.journal.path
    y.close()
    with gt.PowerGrid(journal=x_path) as g:
        t = g.merge(y_path)
        ev = g.journal.log(tx=t)
        assert set(ev[ev.event == "set"].eid) == {5}  # only y's change: the base is the study at the fork
        assert os.path.samefile(json.loads(ev[ev.event == "merge"]["info"].iloc[0])["base"]["path"], path)
        assert g.world["load"].get(2, "p_mw") == 77.0 and g.world["load"].get(5, "p_mw") == 9.0


def test_a_forced_revert_of_an_add_removes_the_element_changed_since(grid):
    tb = tx_of(grid, "b: load 1, new load")
    new_id = int(grid.world["load"].ids[-1])
    grid.element("load", new_id).p_mw = 6.0
    with pytest.raises(RevertConflictError) as ex:
        grid.revert(tb)
    assert {(c.what, c.id, c.field) for c in ex.value.conflicts} == {("remove", new_id, "p_mw")}
    grid.revert(tb, force=True)
    assert new_id not in grid.world["load"]
    assert_replay_equals_live(grid)
