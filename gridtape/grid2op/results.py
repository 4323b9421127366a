"""Result copy: a solve's result arrays into the backend's float32 buffers (buffers.py).

The physics is the solver's: ``engine.results()`` are the solve's result arrays
(``solver_cy/result_arrays.py``: voltages, branch flows, the generators' pfsoln split, the
elements' P/Q) and ``result_arrays.fill_grid2op`` copies them into the buffers in one kernel pass
over a ``g2o.BufferPack``.  This module only lays out, per model, where each powerline end and
each element sits (``g2o.model_arrays``, one kernel pass) and whether the grid is split; those
arrays are derived values of the engine's model (``model.derive``), kept and dropped with it by the
solver's model cache.  The one convention of its own: grid2op's DC results (PandaPowerBackend's
rundcpp) report the voltage set-points as magnitudes (1 p.u. elsewhere).
"""
from __future__ import annotations

import numpy as np

from gridtape.solver_cy.g2o import BufferPack, model_arrays
from gridtape.solver_cy.result_arrays import fill_grid2op

from .buffers import INJ_GROUPS, Buffers

_DERIVED = "grid2op-buffers"  # the name of the per-model arrays among the model's derived values


class ResultCopy:
    """Fills ``out`` (a :class:`Buffers`) from a grid's solves."""

    def __init__(self, out: Buffers):
        self.out = out

    def model(self, grid) -> dict:
        """The per-model arrays of the engine's current model (made at its first solve):
        ``pack`` (the g2o.BufferPack over this backend's buffers), ``islanded`` (why the grid is
        split, '' when it is not) and the index arrays of ``g2o.model_arrays``."""
        eng = grid._engine
        return eng.model.derive(_DERIVED, lambda: self._new_model(grid, eng.topo))

    def _new_model(self, grid, topo) -> dict:
        tabs = grid.world.tables
        br = topo.branches
        act = topo.active
        nl, nt = len(tabs["line"]), len(tabs["trafo"])
        sl = br.slices
        if not (sl.get("line", (0, 0)) == (0, nl) and sl.get("trafo", (nl, nl)) == (nl, nl + nt)):
            raise ValueError("the engine's branch list is not led by the lines and transformers")
        sel = np.arange(nl + nt, dtype=np.int64)
        line_on, trafo_on = tabs["line"].cols["in_service"], tabs["trafo"].cols["in_service"]
        b2, kv2_on, amp_den, off2, eb, eon, suspect = model_arrays(
            topo.lookup, topo.base_kv, br.f, br.t, len(sel), tuple([topo.elem_bus_row[g] for g in INJ_GROUPS]),
            tuple([act[g] for g in INJ_GROUPS]), tuple([tabs[g].cols["in_service"] for g in INJ_GROUPS]),
            line_on, trafo_on, br.status)
        islanded = ""
        if suspect:  # the message (and the check itself)
            islanded = islanded_message(grid.world, topo, sel, np.concatenate((line_on, trafo_on)), eon.astype(bool))
        buf = self.out.buf
        pack = BufferPack(buf["line"], buf["inj"], self.out.inj_sizes, sel, b2, kv2_on, amp_den, off2, eb, eon,
                          topo.base_kv, len(br.f))
        return {"topo": topo, "sel": sel, "none": grid._engine._none, "b2": b2, "kv2_on": kv2_on, "amp_den": amp_den,
                "off2": off2, "eb": eb, "eon": eon, "islanded": islanded, "pack": pack,
                "bus": {g: eb[s] for g, s in self.out.inj_slices.items()}}

    def fetch(self, grid, mc, is_dc) -> bool:
        """Every grid2op result of the engine's last solve; False when a powerline result is not
        finite.  Storage units report their set-points (grid2op checks that a detached unit asks
        for no power)."""
        eng = grid._engine
        sto = grid.world.tables["storage"].cols
        vm = None
        if is_dc:  # rundcpp's magnitudes: the set-points, 1 p.u. elsewhere, 0 where unsupplied
            vm = np.where(np.isnan(eng.inj.vm_set), 1.0, eng.inj.vm_set)
            vm[mc["none"]] = 0.0
        return fill_grid2op(eng.results(), mc["pack"], sto["p_mw"], sto["q_mvar"], vm)


def islanded_message(w, topo, sel, line_on, eon) -> str:
    """Why the grid is split ('' when it is not): an in-service element on a bus the slack does
    not reach (pandapower leaves such a bus at NaN and grid2op calls it a game over).  ``eon``:
    whether each element of INJ_GROUPS (in that order) is active in ``topo``."""
    ins = np.concatenate([w[k].cols["in_service"] for k in INJ_GROUPS])
    if (ins > eon).any():  # in service but not active
        start = 0
        for kind in INJ_GROUPS:
            n = len(w[kind])
            bad = ins[start:start + n] > eon[start:start + n]
            if bad.any():
                return f"{kind} {np.flatnonzero(bad).tolist()} on a bus not connected to the slack"
            start += n
    bad = line_on > topo.branches.status[sel]
    if bad.any():
        return f"powerline {np.flatnonzero(bad).tolist()} in an island without slack"
    return ""
