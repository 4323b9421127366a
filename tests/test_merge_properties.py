"""Properties of revert and merge on random edit histories (gridtape.testing's strategies):

- reverting an earlier transaction whose cells and elements no later transaction touched gives the
  world of the history without that transaction;
- a revert followed by the revert of the revert gives the world back;
- a merge without conflicts equals both sides' changes applied to the fork point (and a conflict
  names a cell or element both sides changed).
"""
import json
import os
import tempfile

import pandas as pd

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import gridtape as gt
from gridtape.errors import ConflictError, MergeConflictError
from gridtape.replay.diff import apply_diff, diff_worlds
from gridtape.replay.events import WORLD_EVENTS, apply_events
from gridtape.replay.materialize import materialize
from gridtape.replay.merge import same
from gridtape.testing import run
from gridtape.testing.invariants import assert_replay_equals_live
from gridtape.testing.strategies import edit_sequences
from gridtape.world.schema import spec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASE = os.path.join(ROOT, "cases", "IEEE14", "data.zip")
SETTINGS = settings(max_examples=25, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
WEIGHTS = {"write": 5, "edit": 2, "solve": 0, "undo": 1, "redo": 1}
BASE = gt.PowerGrid(CASE, journal=False).world


def same_values(a, b):
    d = diff_worlds(a, b)
    d = d[~d["field"].isin(["@order", "@next_id"])]
    assert not len(d), d.to_string()


def edit_transactions(grid):
    log = grid.journal.log()
    ev = log[log["event"].isin(WORLD_EVENTS) & (log["event"] != "load")]
    return ev, sorted(set(ev["tx"].tolist()))


def _refs(kind, field, value, added):
    col = spec(kind).by_name.get(field) if kind in ("load", "sgen", "gen", "line", "trafo", "bus", "shunt",
                                                   "ext_grid", "storage", "switch") else None
    return col is not None and col.ref is not None and value is not None and (col.ref, int(value)) in added


def touched_later(ev, tx) -> bool:
    """Whether a transaction after ``tx`` touched an element ``tx`` changed, or referred to one it added."""
    mine = ev[ev["tx"] == tx]
    later = ev[ev["seq"] > mine["seq"].max()]
    elements = {(k, int(e)) for k, e in zip(mine["kind"], mine["eid"])}
    added = {(k, int(e)) for k, e, x in zip(mine["kind"], mine["eid"], mine["event"]) if x == "add"}
    for x, k, e, f, new, info in zip(later["event"], later["kind"], later["eid"], later["field"], later["new"],
                                     later["info"]):
        if (k, int(e)) in elements:
            return True
        if x == "set" and _refs(k, f, new, added):
            return True
        if x == "add" and any(_refs(k, name, v, added) for name, v in json.loads(info).items()):
            return True
    return False


def drawn_history(data, max_size, min_size):
    """A grid (in-memory journal) after a drawn edit history, its world events, and a drawn edit
    transaction of it."""
    grid = gt.PowerGrid(world=BASE.copy(), journal=True)
    run(grid, data.draw(edit_sequences(grid, max_size=max_size, min_size=min_size, weights=WEIGHTS),
                        label="history"))
    ev, txs = edit_transactions(grid)
    assume(txs)
    return grid, ev, data.draw(st.sampled_from(txs), label="tx")


@given(data=st.data())
@SETTINGS
def test_revert_of_an_untouched_transaction_equals_the_history_without_it(data):
    grid, ev, tx = drawn_history(data, 8, 2)
    if touched_later(ev, tx):
        try:
            grid.revert(tx)
            event("touched later, no conflict")
        except ConflictError:
            event("touched later, conflict")
        return
    event("untouched" + (", structural" if ev[ev["tx"] == tx]["event"].isin(("add", "remove")).any() else ""))
    t = grid.revert(tx)  # no later transaction touched it: no conflict
    log = grid.journal.log()
    load_seq = int(log[log["event"] == "load"]["seq"].max())
    base = materialize(grid.journal, load_seq)[0]
    rest = ev[ev["tx"] != tx]
    expected = apply_events(base, rest, grid.journal.get_blob)
    same_values(grid.world, expected)
    if t is not None:
        assert_replay_equals_live(grid)


@given(data=st.data())
@SETTINGS
def test_revert_then_revert_of_the_revert_restores(data):
    grid, _, tx = drawn_history(data, 6, 1)
    start = grid.world.copy()
    try:
        r = grid.revert(tx)
    except ConflictError:
        return
    assume(r is not None)
    assert grid.revert(r) is not None  # nothing came after the revert: no conflict
    same_values(grid.world, start)


MERGE_WEIGHTS = {"write": 6, "edit": 1, "solve": 0, "undo": 1, "redo": 0}


@given(data=st.data())
@settings(SETTINGS, max_examples=15)
def test_merge_without_conflicts_equals_both_sides_changes(data):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.duckdb")
        grid = gt.PowerGrid(world=BASE.copy(), journal=path)
        ours_steps = data.draw(edit_sequences(grid, max_size=5, weights=MERGE_WEIGHTS), label="ours")
        theirs_steps = data.draw(edit_sequences(grid, max_size=5, weights=MERGE_WEIGHTS), label="theirs")
        grid.close()
        with gt.open(path, read_only=False) as study:
            fork = study.head
            br = study.branch(fork, "x")
        run(br, theirs_steps)
        theirs = br.world.copy()
        br.close()
        with gt.PowerGrid(journal=path) as g:
            base = materialize(g.journal, fork)[0]
            run(g, ours_steps)
            ours = g.world.copy()
            d_ours, d_theirs = diff_worlds(base, ours), diff_worlds(base, theirs)
            try:
                g.merge("x")
            except MergeConflictError as e:
                event("merge conflict")
                both = {(r.kind, r.id) for r in d_ours.itertuples()} & {(r.kind, r.id) for r in d_theirs.itertuples()}
                for c in e.conflicts:
                    assert c.what == "reference" or (c.kind, c.id) in both, c
                assert g.world.equals(ours)
                return
            event("merged" + (", structural" if d_theirs["change"].isin(("add", "remove")).any() else ""))
            expected = apply_diff(ours, _not_in(d_theirs, d_ours))  # check=True: each old value in place
            same_values(g.world, expected)
            assert_replay_equals_live(g)


def _not_in(d, other):
    """The rows of diff ``d`` (table-level rows aside) that ``other`` does not hold as well."""
    def key(r):
        return (r.change, r.kind, None if pd.isna(r.id) else int(r.id), r.field)

    seen = {key(r): r.new for r in other.itertuples()}
    keep = []
    for i, r in enumerate(d.itertuples()):
        if isinstance(r.field, str) and r.field.startswith("@"):
            continue
        key_ = key(r)
        if key_ in seen and (r.change == "remove" or (r.change == "set" and same(seen[key_], r.new))
                             or (r.change == "add" and all(same(seen[key_].get(k), v) for k, v in r.new.items()))):
            continue
        keep.append(i)
    return d.iloc[keep].reset_index(drop=True)
