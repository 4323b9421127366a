"""The replay tail (replay/tail.py: Arrow columns -> vectorized changes) builds the world the
event-by-event decoding of replay/events.py builds, at every point of a journal that mixes
float, int, bool and text writes, repeated writes of one cell, NaN, adds, removes and network
values."""
from __future__ import annotations

import os

import numpy as np

import gridtape as gt
from gridtape.replay.events import WORLD_EVENTS, apply_events
from gridtape.replay.materialize import materialize
from gridtape.replay.tail import apply_tail, fetch_tail

CASE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cases", "IEEE14", "data.zip")


def _journal(path):
    g = gt.PowerGrid(CASE, journal=str(path), checkpoint_every=10**9)
    w = g.world
    loads, lines, gens = w["load"].ids, w["line"].ids, w["gen"].ids
    rng = np.random.default_rng(11)
    for step in range(12):
        g.set("load", loads, "p_mw", rng.uniform(0, 40, len(loads)))
        g.load(bus=int(w["load"].cols["bus"][0])).q_mvar = float(rng.uniform(-5, 5))
        g.set("line", lines[:4], "in_service", rng.random(4) < 0.8)
        with g.edit() as e:  # one transaction: repeated cells, several kinds, an int and a text column
            e.set("load", loads[:3], "p_mw", [1.0, 2.0, 3.0])
            e.set("load", loads[:3], "p_mw", [4.0, 5.0, 6.0])
            e.set("gen", gens, "vm_pu", rng.uniform(0.98, 1.05, len(gens)))
            e.set("load", loads[:2], "name", [f"L{step}", None])
            e.set("load", loads[-2:], "bus", [int(b) for b in w["bus"].ids[rng.integers(len(w["bus"]), size=2)]])
        g.set("load", loads[:2], "sn_mva", [float("nan"), 3.0])
        if step % 3 == 0:
            with g.edit() as e:
                eid, _ = e.add_load(int(w["bus"].ids[3]), p_mw=1.5, q_mvar=0.2, name=f"new{step}")
                e.set("load", [eid], "p_mw", [2.5])
        if step % 4 == 1:
            with g.edit() as e:
                e.remove(("load", int(w["load"].ids[-1])))
        if step == 5:
            from gridtape.world.changes import SetNetwork

            g.apply(gt.diff(g.world, _with_network(g.world, SetNetwork)))
    g.close()


def _with_network(w, SetNetwork):
    from gridtape.world.changes import apply

    b = w.copy()
    apply(b, [SetNetwork("f_hz", 55.0)])
    return b


def test_tail_equals_event_decoding_at_every_point(tmp_path):
    path = tmp_path / "j.duckdb"
    _journal(path)
    with gt.open(str(path)) as study:
        j = study.journal
        load = int(j.log(event="load")["seq"].iloc[-1])
        base, _ = materialize(j, load, use_snapshots=False)
        commits = j.log(event="commit")["seq"].to_numpy()
        assert len(commits) > 30
        kinds = set(j.log(since=load + 1, event=list(WORLD_EVENTS))["event"])
        assert kinds >= {"set", "add", "remove", "network"}
        forms = set()
        for s in commits:
            a = apply_events(base.copy(), j.log(since=load + 1, until=int(s), event=list(WORLD_EVENTS)), j.get_blob)
            tail = fetch_tail(j, load + 1, int(s))
            forms.add("cells" if tail.cells is not None else "events")
            b = apply_tail(base.copy(), tail, j.get_blob)
            assert a.equals(b) and a.f_hz == b.f_hz, int(s)
            for kind in ("load", "line", "gen"):
                for name, col in a[kind].cols.items():
                    assert col.dtype == b[kind].cols[name].dtype, (kind, name)
        assert forms == {"cells", "events"}  # float writes only (DuckDB's last values), and mixed tails
        assert not np.array_equal(a["load"].cols["p_mw"], base["load"].cols["p_mw"][: len(a["load"])])
