"""Invariant helpers: each raises ``AssertionError`` with a readable diff when its property fails.

- :func:`assert_grids_equal` -- two grids (or worlds) hold the same elements and values, and
  (``results=True``) the same power-flow results;
- :func:`assert_incremental_equals_fresh` -- the grid's own (incremental) solve gives what a fresh
  grid of the same world gives;
- :func:`assert_replay_equals_live` -- the journal alone rebuilds the live world;
- :func:`assert_undo_restores` -- undoing every transaction gives the loaded case, redoing them all
  gives the live world back (the grid is left as it was);
- :func:`assert_roundtrip` -- writing the grid out and reading it back keeps it.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

SHOW = 12  # rows of a diff shown in a message


def _world(x):
    return getattr(x, "world", x)


def _table(df, n=SHOW) -> str:
    if len(df) <= n:
        return df.to_string(index=False)
    return df.head(n).to_string(index=False) + f"\n... {len(df) - n} more rows"


def world_diff_text(a, b) -> str:
    """The differences of two worlds as text ('' when equal), via ``gridtape.diff``."""
    from gridtape.replay.diff import diff_worlds

    wa, wb = _world(a), _world(b)
    if wa.equals(wb):
        return ""
    d = diff_worlds(wa, wb)
    if not len(d):  # equal values, different row order or next ids
        lines = []
        for kind, t in wa.tables.items():
            u = wb.tables[kind]
            if not np.array_equal(t.ids, u.ids):
                lines.append(f"{kind}: row order {t.ids.tolist()[:10]} vs {u.ids.tolist()[:10]}")
            if t.next_id != u.next_id:
                lines.append(f"{kind}: next_id {t.next_id} vs {u.next_id}")
        return "\n".join(lines) or "worlds differ (network values or extra columns)"
    return _table(d)


def assert_grids_equal(a, b, results=True, tol=1e-9, *, names=("a", "b")):
    """``a`` and ``b`` (PowerGrids, or Worlds with ``results=False``) hold the same world and, with
    ``results=True``, the same results (bus, branch and injection results within ``tol``; both are
    solved first).  Raises AssertionError showing the differing rows."""
    text = world_diff_text(a, b)
    if text:
        raise AssertionError(f"{names[0]} and {names[1]} hold different worlds ({names[0]} -> {names[1]}):\n{text}")
    if not results:
        return
    ca, cb = a.solve().converged, b.solve().converged
    if ca != cb:
        raise AssertionError(f"{names[0]} converged={ca} but {names[1]} converged={cb}")
    if not ca:
        return
    from gridtape.replay.diff import result_diff

    d = result_diff(a.post_process(), b.post_process(), atol=tol)
    if len(d):
        d = d.reindex(d["delta"].abs().sort_values(ascending=False).index)
        raise AssertionError(f"results of {names[0]} and {names[1]} differ by more than {tol} "
                             f"(largest first):\n{_table(d)}")


def _fresh(grid):
    from gridtape import PowerGrid

    return PowerGrid(world=grid.world.copy(), journal=False, qlim=grid.qlim, tolerance_mva=grid.tolerance_mva,
                     max_iteration=grid.max_iteration, distributed_slack=grid.distributed_slack,
                     init=grid.init)


def _solve(grid):
    from gridtape.errors import GridtapeError

    try:
        return grid.solve(), None
    except GridtapeError as e:  # a world the power flow refuses (no slack, ...): both must refuse it
        return None, e


def assert_incremental_equals_fresh(grid, tol=1e-9):
    """``grid.solve()`` (reusing whatever the grid cached since its last solve) gives the bus
    voltages a fresh grid of the same world gives, within ``tol`` p.u.; both converge or neither (or
    both refuse the world with the same error).  Raises AssertionError listing the buses that differ most."""
    rep, err = _solve(grid)
    fresh = _fresh(grid)
    ref, ref_err = _solve(fresh)
    if err is not None or ref_err is not None:
        if type(err) is not type(ref_err):
            raise AssertionError(f"the grid's solve raised {err!r} but a fresh solve of the same world raised "
                                 f"{ref_err!r}")
        return
    if rep.converged != ref.converged:
        raise AssertionError(f"the grid's solve converged={rep.converged} (rebuild={rep.rebuild!r}) but a fresh "
                             f"solve of the same world converged={ref.converged}")
    if not rep.converged:
        return
    va, vb = grid.v, fresh.v
    dv = np.abs(va - vb)
    bad = np.flatnonzero(~(dv <= tol) & ~(np.isnan(va) & np.isnan(vb)))
    if len(bad):
        import pandas as pd

        ids = grid.world["bus"].ids
        order = bad[np.argsort(-np.nan_to_num(dv[bad], nan=np.inf))][:SHOW]
        df = pd.DataFrame({"bus": ids[order], "incremental": va[order], "fresh": vb[order], "|dv|": dv[order]})
        raise AssertionError(f"the grid's solve (rebuild={rep.rebuild!r}) differs from a fresh solve of the same "
                             f"world at {len(bad)} bus(es) by up to {np.nanmax(dv[bad]):.3g} p.u. (tol {tol}):\n"
                             f"{df.to_string(index=False)}")


def assert_replay_equals_live(grid, *, snapshots=True):
    """Replaying the grid's journal gives its live world exactly: from the case load alone, and
    (``snapshots=True``) from the latest snapshot too."""
    from gridtape.replay.materialize import materialize

    j = grid.journal
    if j is None:
        raise AssertionError("assert_replay_equals_live needs a grid with a journal (not journal=False)")
    if snapshots:
        snapshots = len(j.log(event="snapshot")) > 0  # none: the replay from the load is the one replay
    for use in (False, True) if snapshots else (False,):
        w = materialize(j, use_snapshots=use)[0]
        text = world_diff_text(w, grid.world)
        if text:
            how = "from the latest snapshot" if use else "from the case load"
            raise AssertionError(f"the journal replayed {how} differs from the live world (replay -> live):\n{text}")


def assert_undo_restores(grid, base=None):
    """Undoing every transaction gives the loaded case (``base``: a World or grid; default the
    world at the journal's last case load); redoing them all gives the live world back."""
    j = grid.journal
    if j is None:
        raise AssertionError("assert_undo_restores needs a grid with a journal (not journal=False)")
    live = grid.world.copy()
    if base is None:
        from gridtape.replay.materialize import materialize

        loads = j.log(event="load")
        base = materialize(j, int(loads.seq.max()))[0]
    n = 0
    while grid.undo() is not None:
        n += 1
    text = world_diff_text(grid.world, base)
    if text:
        raise AssertionError(f"undoing all {n} transaction(s) does not give the loaded case back "
                             f"(after undo -> loaded):\n{text}")
    m = 0
    while m < n and grid.redo() is not None:  # the ones undone here (a redo stack may hold older ones)
        m += 1
    text = world_diff_text(grid.world, live)
    if text or m != n:
        raise AssertionError(f"redoing the {n} undone transaction(s) ({m} redone) does not give the live world "
                             f"back (after redo -> live):\n{text}")


VIA = ("parquet", "pandapower_json", "matpower")


def assert_roundtrip(grid, via=VIA, tol=1e-6):
    """Writing ``grid`` out and reading it back keeps it: ``"parquet"`` (``get_parquet_case``)
    gives the same world exactly; ``"pandapower_json"`` (``to_pandapower`` + pandapower's
    ``to_json``, read by ``PowerGrid``) and ``"matpower"`` (pandapower's ``to_mpc``, written as
    a ``.m`` file and read by ``PowerGrid``) give the same bus voltages within ``tol`` (MATPOWER
    renumbers elements, so buses are compared in order; a grid with voltage-dependent loads is
    refused with ValueError: MATPOWER has no place for them)."""
    from gridtape import PowerGrid

    for how in (via,) if isinstance(via, str) else via:
        if how == "parquet":
            from gridtape.replay.archive import world_from_zip_bytes

            text = world_diff_text(grid.world, world_from_zip_bytes(grid.get_parquet_case()))
            if text:
                raise AssertionError(f"the Parquet round trip changes the world (before -> after):\n{text}")
            continue
        if how not in VIA:
            raise ValueError(f"unknown round trip {how!r}; known: {', '.join(VIA)}")
        if how == "matpower":
            _matpower_can_hold(grid.world)
        with tempfile.TemporaryDirectory() as d:
            net = grid.to_pandapower()
            if how == "pandapower_json":
                import pandapower as pp

                path = os.path.join(d, "net.json")
                pp.to_json(net, path)
            else:
                from pandapower.converter.matpower import to_mpc

                from gridtape.world.io_matpower import write_matpower

                path = os.path.join(d, "case.m")
                write_matpower(to_mpc(net, init="flat")["mpc"], path, "case")
            back = PowerGrid(path, journal=False, tolerance_mva=grid.tolerance_mva)
            _same_voltages(grid, back, tol, how)


def _matpower_can_hold(w):
    t = w["load"]
    for f in ("const_z_p_percent", "const_i_p_percent", "const_z_q_percent", "const_i_q_percent"):
        hit = np.flatnonzero(t.cols[f] != 0)
        if len(hit):
            raise ValueError(f"a MATPOWER case cannot hold voltage-dependent loads: load {int(t.ids[hit[0]])} has "
                             f"{f}={t.cols[f][hit[0]]}; leave 'matpower' out of via")


def _same_voltages(a, b, tol, how):
    ra, rb = a.solve(), b.solve()
    if ra.converged != rb.converged:
        raise AssertionError(f"after the {how} round trip the grid converged={rb.converged} (before: {ra.converged})")
    if not ra.converged:
        return
    va, vb = a.res_bus, b.res_bus
    if len(va) != len(vb):
        raise AssertionError(f"the {how} round trip has {len(vb)} buses, the grid {len(va)}")
    x = va.vm_pu.to_numpy() * np.exp(1j * np.deg2rad(va.va_degree.to_numpy()))
    y = vb.vm_pu.to_numpy() * np.exp(1j * np.deg2rad(vb.va_degree.to_numpy()))
    dv = np.abs(x - y)
    bad = np.flatnonzero(~(dv <= tol) & ~(np.isnan(x) & np.isnan(y)))
    if len(bad):
        rows = "\n".join(f"  bus {va.index[k]}: {va.vm_pu.iloc[k]:.6f} pu {va.va_degree.iloc[k]:.4f} deg -> "
                         f"{vb.vm_pu.iloc[k]:.6f} pu {vb.va_degree.iloc[k]:.4f} deg" for k in bad[:SHOW])
        raise AssertionError(f"the {how} round trip changes {len(bad)} bus voltage(s) by more than {tol}:\n{rows}")
