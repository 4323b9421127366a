"""The model's injections as one solve's runpp options see them (pandapower builds them per
runpp): ext_grid angles dropped without voltage angles, every load constant-power without
voltage-dependent loads, sgen set-points clipped to their limits and gen Q limits from reactive
capability curves under enforce_q_lims (solver_cy.qlim).  The model's own injections stay
untouched; the engine solves on the effective ones."""
from __future__ import annotations

import dataclasses

import numpy as np


def effective_injections(engine, qlim) -> None:
    """Set ``engine.inj`` to this solve's effective injections (the model's when no option
    changes them: the common case costs two comparisons)."""
    inj = engine.inj
    if inj is not engine._inj_eff:
        engine._inj_base = inj
    inj = engine._inj_base
    o = engine.solve_options
    plims = bool(o.get("enforce_p_lims", False))
    angles, vdl = o.get("voltage_angles", True), o.get("voltage_depend_loads", True)
    if not qlim and not plims and angles and vdl:
        if engine._eff_sig is not None:
            engine.model.v0.clear()
            engine._eff_sig = None
        engine.inj = engine._inj_eff = inj
        engine._plims_active = False
        return
    world, topo = engine.world, engine.topo
    ch = {}
    if not angles:
        ch["va_set"] = np.where(np.isnan(inj.va_set), np.nan, 0.0)
    if not vdl and (inj.si.any() or inj.sz.any()):
        ch["s0"], ch["si"], ch["sz"] = inj.s0 + inj.si + inj.sz, np.zeros_like(inj.si), np.zeros_like(inj.sz)
    curves = None
    if qlim:  # reactive capability curves replace the Q limits under enforce_q_lims
        from .chartables import char_table
        from .qlim import curve_limits

        table = char_table(world, "q_capability_curve_table")
        gl = curve_limits(world, "gen", table)
        if gl is not None:
            g = dict(inj.gens)
            m = np.flatnonzero(g["kind"] == 1)
            rows = g["row"][m]
            g["qmin"], g["qmax"] = g["qmin"].copy(), g["qmax"].copy()
            g["qmin"][m] = np.where(np.isnan(gl[0][rows]), g["qmin"][m], gl[0][rows])
            g["qmax"][m] = np.where(np.isnan(gl[1][rows]), g["qmax"][m], gl[1][rows])
            ch["gens"] = g
        curves = curve_limits(world, "sgen", table)
    if (qlim or plims) and len(world["sgen"]):
        from .qlim import sgen_injection_shift

        sn = world.sn_mva
        shift = sgen_injection_shift(world, topo.lookup[topo.elem_bus_row["sgen"]], topo.active["sgen"], topo.nb,
                                     sn, qlim, plims, curves)
        if shift is not None:  # the clipped sgens as the injections and the bus demand see them
            ch["s0"] = ch.get("s0", inj.s0) + shift
            ch["pd"], ch["qd"] = inj.pd - shift.real * sn, inj.qd - shift.imag * sn
    sig = (tuple(sorted(ch)), bool(qlim), plims, angles, vdl)
    if sig != engine._eff_sig:
        engine.model.v0.clear()
        engine._eff_sig = sig
    engine.inj = engine._inj_eff = dataclasses.replace(inj, **ch) if ch else inj
    engine._plims_active = plims
