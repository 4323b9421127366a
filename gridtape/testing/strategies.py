"""Hypothesis strategies for gridtape grids.

Every strategy reads the grid (or world) it is given when it draws, and draws *change values* of
the vocabulary (world/changes.py): ``writes`` draws a ``SetCol``, ``edits`` an :class:`EditBlock`
of ``AddRows`` / ``RemoveRows`` / ``SetCol``, ``edit_sequences`` a :class:`Sequence` of those plus
SOLVE / UNDO / REDO.  :func:`gridtape.testing.run` applies them through the grid's public API and
:func:`gridtape.testing.to_code` prints them as gridtape code.  ``networks`` (testing/drawn_networks.py)
draws whole grids.
"""
from __future__ import annotations

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from gridtape.world.changes import AddRows, RemoveRows, SetCol
from gridtape.world.schema import BOOL, F8, spec

from .runner import REDO, SOLVE, UNDO, EditBlock, Sequence, Sim
from .topology import connected, split_candidates

#: how far a write moves a value, relative to the current one, by what the column affects
RELATIVE = {"inj": (0.5, 1.5), "adm": (0.8, 1.25), "topo": (0.9, 1.1), "none": (0.5, 1.5)}
#: set-points that live near 1 p.u. move by a few percent
NARROW = {("gen", "vm_pu"): (0.97, 1.03), ("ext_grid", "vm_pu"): (0.97, 1.03), ("xward", "vm_pu"): (0.97, 1.03)}
#: columns a default write never draws (ratings, tap bookkeeping, bases that are not set-points)
SKIP = frozenset({"vn_kv", "vn_hv_kv", "vn_lv_kv", "vn_mv_kv", "tap_neutral", "tap_step_degree", "slack_weight",
                  "sn_mva", "sn_hv_mva", "sn_mv_mva", "sn_lv_mva"})
DEFAULT_KINDS = ("load", "sgen", "gen", "ext_grid", "shunt", "line", "trafo", "storage")


def _world(grid_or_world):
    return getattr(grid_or_world, "world", grid_or_world)


def writable_fields(world, kinds=None, fields=None, in_service=False):
    """(kind, field) pairs ``writes`` draws from in ``world``: float columns the power flow reads
    (``affects`` inj/adm) with at least one finite value, plus ``in_service`` when asked."""
    out = []
    for kind in kinds or DEFAULT_KINDS:
        t = world[kind]
        if not len(t):
            continue
        sp = spec(kind)
        names = fields if fields is not None else [c.name for c in sp.columns if c.name not in SKIP]
        for f in names:
            if f not in sp:
                continue
            col = sp[f]
            if f == "in_service":
                if (in_service or (fields is not None and "in_service" in fields)) and len(_togglable(world, kind)):
                    out.append((kind, f))
            elif col.dtype == F8 and (fields is not None or col.affects in ("inj", "adm")):
                if np.isfinite(t.cols[f]).any():
                    out.append((kind, f))
    return out


def _togglable(world, kind):
    """Rows whose in_service a write may toggle: never a slack (ext_grid, slack gen), so a grid
    always keeps the slack it has."""
    t = world[kind]
    if kind == "ext_grid":
        return []
    if kind == "gen":
        return list(np.flatnonzero(~t.cols["slack"]))
    return list(range(len(t)))


def _draw_write(draw, world, kinds, fields, in_service, max_ids):
    pairs = writable_fields(world, kinds, fields, in_service)
    assume(pairs)
    kind, field = draw(st.sampled_from(pairs))
    t = world[kind]
    col = spec(kind)[field]
    cur = t.cols[field]
    if col.dtype == BOOL:
        rows = _togglable(world, kind)
        assume(len(rows))
        k = int(draw(st.sampled_from(rows)))
        return SetCol(kind, [int(t.ids[k])], field, [not bool(cur[k])])
    rows = np.flatnonzero(np.isfinite(cur))
    if draw(st.integers(0, 9)) == 0:  # sometimes a whole column (a sweep)
        picked = list(rows)
    else:
        picked = sorted(set(draw(st.lists(st.sampled_from(list(rows)), min_size=1, max_size=max_ids))))
    lo, hi = NARROW.get((kind, field), RELATIVE[col.affects])
    if draw(st.booleans()):  # one factor for all, or one each
        fs = [draw(st.floats(lo, hi))] * len(picked)
    else:
        fs = [draw(st.floats(lo, hi)) for _ in picked]
    vals = []
    for r, f in zip(picked, fs):
        v = float(cur[r])
        if v != 0.0:
            nv = v * f
        else:  # a zero moves by up to half a unit (admittances: only up)
            nv = f - 1.0 if col.affects == "inj" else abs(f - 1.0)
        if field == "tap_pos":  # taps move by whole steps
            nv = float(round(v + (f - 1.0) * 8))
        vals.append(float(min(max(nv, col.vmin), col.vmax)))
    return SetCol(kind, [int(t.ids[r]) for r in picked], field, vals)


@st.composite
def _writes(draw, grid, kinds, fields, in_service, max_ids):
    return _draw_write(draw, _world(grid), kinds, fields, in_service, max_ids)


def writes(grid, kinds=None, fields=None, *, in_service=False, max_ids=3):
    """A valid property write on ``grid`` (a PowerGrid or World, read when drawing): a ``SetCol``
    of one field for 1..``max_ids`` elements (now and then every element: a sweep).

    ``kinds``: element kinds to draw from (default: loads, sgens, gens, ext grids, shunts, lines,
    trafos, storage); ``fields``: column names (default: every float column the power flow reads,
    except nominal voltages, ratings and tap bookkeeping).  Values move relative to the current
    one (injections x0.5-1.5, admittances x0.8-1.25, voltage set-points x0.97-1.03), clipped to
    the column's schema bounds; a zero moves to a small absolute value.  ``in_service=True``
    also draws in_service toggles (never of a slack; they may split the grid into islands)."""
    return _writes(grid, kinds, fields, in_service, max_ids)


# --- topology edits ------------------------------------------------------------------------------
EDIT_KINDS = ("add_load", "remove_load", "add_sgen", "remove_sgen", "add_line", "remove_line", "split_bus")


def _draw_edit(draw, world, keep_connected, kinds):
    options = [k for k in kinds if _possible(world, k, keep_connected)]
    assume(options)
    what = draw(st.sampled_from(options))
    buses = world["bus"]
    if what in ("add_load", "add_sgen"):
        b = int(draw(st.sampled_from(list(buses.ids))))
        p = draw(st.floats(0.0, 20.0))
        q = draw(st.floats(-0.3, 0.5)) * p
        kind = what[4:]
        return EditBlock([AddRows(kind, {"bus": [b], "p_mw": [p], "q_mvar": [q]})], message=f"{what} at bus {b}")
    if what in ("remove_load", "remove_sgen"):
        kind = what[7:]
        i = int(draw(st.sampled_from(list(world[kind].ids))))
        return EditBlock([RemoveRows(kind, [i])], message=f"{what} {i}")
    if what == "add_line":
        a, b = draw(st.lists(st.sampled_from(_same_level_pairs(world)), min_size=1, max_size=1))[0]
        ref = _reference_line(world, a, b)
        length = draw(st.floats(0.5, 2.0)) * ref["length_km"]
        cols = {"from_bus": [a], "to_bus": [b], "length_km": [length],
                **{k: [v] for k, v in ref.items() if k != "length_km"}}
        return EditBlock([AddRows("line", cols)], message=f"add_line {a}-{b}")
    if what == "remove_line":
        ids = [i for i in _removable_lines(world) if not keep_connected or _still_connected(world, i)]
        assume(ids)
        i = int(draw(st.sampled_from(ids)))
        return EditBlock([RemoveRows("line", [i])], message=f"remove_line {i}")
    # split a bus: a new bus of the same voltage takes some of the old one's connections
    cands = split_candidates(world)
    bus = int(draw(st.sampled_from(sorted(cands))))
    ends = cands[bus]
    moved = draw(st.lists(st.sampled_from(range(len(ends))), min_size=1, max_size=len(ends) - 1, unique=True))
    new_id = int(buses.next_id)
    changes = [AddRows("bus", {"vn_kv": [float(buses.get(bus, "vn_kv"))]})]
    for j in sorted(moved):
        kind, eid, field = ends[j]
        changes.append(SetCol(kind, [eid], field, [new_id]))
    block = EditBlock(changes, message=f"split_bus {bus}")
    if keep_connected:
        s = Sim(world)
        s.step(block)
        assume(connected(s.world))
    return block


def _possible(world, what, keep_connected):
    if what.startswith("remove_") and what != "remove_line":
        return len(world[what[7:]]) > 0
    if what == "remove_line":
        return len(_removable_lines(world)) > 1
    if what == "add_line":
        return bool(_same_level_pairs(world)) and len(world["line"]) > 0
    if what == "split_bus":
        return bool(split_candidates(world))
    return len(world["bus"]) > 0


def _removable_lines(world):
    t = world["line"]
    sw = world["switch"]
    with_sw = set(sw.cols["element"][sw.cols["et"] == "l"].tolist()) if len(sw) else set()
    return [int(i) for i in t.ids if int(i) not in with_sw]


def _still_connected(world, line_id):
    w = world.copy()
    from gridtape.world.changes import apply

    apply(w, [RemoveRows("line", [line_id])])
    return connected(w)


def _same_level_pairs(world, limit=60):
    """Pairs of in-service buses of the same nominal voltage that some line already joins at that
    voltage level (so a copy of its parameters is plausible), capped at ``limit``."""
    b = world["bus"]
    lines = world["line"]
    if not len(lines):
        return []
    levels = set(np.round(b.cols["vn_kv"][b.rows(lines.cols["from_bus"])], 6).tolist())
    out = []
    vn = np.round(b.cols["vn_kv"], 6)
    for lv in sorted(levels):
        ids = [int(i) for i in b.ids[(vn == lv) & b.cols["in_service"]]]
        out += [(x, y) for k, x in enumerate(ids) for y in ids[k + 1:]]
    return out[:: max(1, len(out) // limit)][:limit]


def _reference_line(world, a, b):
    """Per-km parameters of an existing line at the voltage of bus ``a`` (the first one)."""
    bt, t = world["bus"], world["line"]
    vn = bt.get(a, "vn_kv")
    lv = bt.cols["vn_kv"][bt.rows(t.cols["from_bus"])]
    r = int(np.flatnonzero(np.isclose(lv, vn))[0])
    return {f: float(t.cols[f][r]) for f in ("length_km", "r_ohm_per_km", "x_ohm_per_km", "c_nf_per_km",
                                             "max_i_ka")}


@st.composite
def _edits(draw, grid, keep_connected, kinds):
    return _draw_edit(draw, _world(grid), keep_connected, kinds)


def edits(grid, *, keep_connected=False, kinds=EDIT_KINDS):
    """A topology edit that keeps ids valid, as an :class:`EditBlock`: add or remove a load or
    sgen, add a line between two existing buses of one voltage level (parameters of an existing
    line there, length x0.5-2), remove a line, or split a bus (a new bus of the same voltage takes
    a non-empty proper subset of the old one's connections).  ``keep_connected=True``: only edits
    after which every in-service bus still reaches a slack (line removals and splits filtered).
    ``kinds``: a subset of :data:`EDIT_KINDS`."""
    return _edits(grid, keep_connected, tuple(kinds))


# --- sequences -----------------------------------------------------------------------------------
STEP_WEIGHTS = {"write": 5, "edit": 2, "solve": 3, "undo": 1, "redo": 1}


@st.composite
def _sequences(draw, grid, min_size, max_size, keep_connected, weights, write_kw):
    sim = Sim(_world(grid))
    if getattr(grid, "journal", True) is None:  # a grid without a journal cannot undo
        weights = {k: w for k, w in weights.items() if k not in ("undo", "redo")}
    n = draw(st.integers(min_size, max_size))
    menu = [k for k, w in weights.items() for _ in range(w)]
    out = Sequence()
    for _ in range(n):
        what = draw(st.sampled_from(menu))
        if what == "write":
            step = _draw_write(draw, sim.world, write_kw.get("kinds"), write_kw.get("fields"),
                               write_kw.get("in_service", False), write_kw.get("max_ids", 3))
        elif what == "edit":
            step = _draw_edit(draw, sim.world, keep_connected, tuple(write_kw.get("edit_kinds", EDIT_KINDS)))
        else:
            step = {"solve": SOLVE, "undo": UNDO, "redo": REDO}[what]
            if (step is UNDO and not sim.done) or (step is REDO and not sim.undone):
                continue
        sim.step(step)
        out.append(step)
    return out


def edit_sequences(grid, max_size=10, *, min_size=1, keep_connected=False, weights=None, **write_kw):
    """A :class:`Sequence` of writes, edits, solves, undos and redos, each valid on the world the
    earlier ones leave (drawn against a scratch copy of ``grid``'s world; an undo or redo is drawn
    only when the sequence has something to undo or redo, and never for a grid made with
    ``journal=False``).  ``weights``: relative frequencies of
    "write", "edit", "solve", "undo", "redo"; ``kinds``, ``fields``, ``in_service``, ``max_ids``
    go to :func:`writes`, ``edit_kinds`` to :func:`edits`."""
    return _sequences(grid, min_size, max_size, keep_connected, dict(weights or STEP_WEIGHTS), write_kw)


# --- time series -----------------------------------------------------------------------------------
@st.composite
def _profiles(draw, grid, steps, fields, spread):
    w = _world(grid)
    out = {}
    for kind, field in fields:
        t = w[kind]
        if not len(t):
            continue
        base = t.cols[field].astype(float)
        start = draw(st.floats(1.0 - spread, 1.0 + spread))
        moves = draw(st.lists(st.floats(-spread / 4, spread / 4), min_size=steps, max_size=steps))
        shape = np.clip(start + np.cumsum(moves), 1.0 - spread, 1.0 + spread)
        noise = draw(st.lists(st.floats(-spread / 10, spread / 10), min_size=len(t), max_size=len(t)))
        out[(kind, field)] = (t.ids.copy(), np.outer(shape, 1.0 + np.asarray(noise)) * base)
    return Profile(out, steps)


class Profile(dict):
    """(kind, field) -> (ids, values of shape (steps, len(ids))); ``writes_at(t)`` gives step
    ``t``'s SetCol values, ``run(grid, t)`` writes them."""

    def __init__(self, data, steps):
        super().__init__(data)
        self.steps = steps

    def writes_at(self, t):
        return [SetCol(k, ids, f, vals[t]) for (k, f), (ids, vals) in self.items()]

    def run(self, grid, t):
        from .runner import run

        for c in self.writes_at(t):
            run(grid, c)


def profiles(grid, steps, fields=(("load", "p_mw"), ("load", "q_mvar"), ("sgen", "p_mw")), spread=0.3):
    """A time series of ``steps`` steps for ``fields``: a shared random walk (within 1 +- spread of
    today's values) times a small per-element factor, as a :class:`Profile`."""
    return _profiles(grid, int(steps), tuple(fields), float(spread))
