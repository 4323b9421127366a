"""Reactive limits as pandapower enforces them (``runpp(enforce_q_lims=True)``): the outer loop
of ``_run_ac_pf_with_qlims_enforced`` and the sgen Q clip.  See docs/model-notes.md, "Q-limit
enforcement", for the rules this module follows.

The engine hands the loop its Newton runner and its generator-Q function, so the loop itself
knows nothing of the model cache or the kernels.
"""
from __future__ import annotations

import numpy as np

PV, PQ = 2, 1  # bus type codes (solver_cy.topology / model)


def enforce_q_limits(gens, bus_type, s0, sn_mva, V, run, gen_q, vm_set=None, qmin=None, qmax=None, ref=3, tie=0.0):
    """pandapower's outer Q-limit loop after a converged first Newton run.

    ``gens``: the engine's generator table (``bus``, ``qmin``, ``qmax``, ``kind`` with 1 = gen,
    ``slack``: the reference machines, ext_grids and ``slack=True`` gens, which are never limited);
    ``qmin`` / ``qmax`` override the table's limits (capability curves, ``delta_q``);
    ``bus_type``: the model's bus types (not changed); ``vm_set``: the voltage set-point per bus; ``s0``: complex injections in p.u. (not
    changed); ``V``: the converged voltages, updated in place round by round;
    ``run(pv, pq, s0, V)`` runs Newton and returns ``(converged, iterations, norm)``;
    ``gen_q(V, limited, fixed_q)`` returns every machine's Q (MVAr) split the pfsoln way among the
    machines not ``limited``, the limited ones held at ``fixed_q``.

    Each round every non-reference gen beyond a limit is fixed at it (all of them at once), its bus
    turns PQ unless it is a reference bus, its fixed Q becomes a negative demand; a machine still
    on at a bus that is now PQ injects the Q the last split gave it.  A round that does not
    converge does not end the loop (pandapower checks the limits on its last iterate).  Returns ``(ran, converged,
    iterations, norm, limited, fixed_q, ties)``; ``ran`` is False when no limit was crossed (the first
    run stands); ``ties`` marks the machines whose Q was within ``tie`` MVAr of a limit when a round
    decided (round-off, not physics, decides them: pandapower may decide the other way)."""
    gb = np.asarray(gens["bus"], dtype=np.int64)
    ng = len(gb)
    qmin = np.asarray(gens["qmin"] if qmin is None else qmin, dtype=float)
    qmax = np.asarray(gens["qmax"] if qmax is None else qmax, dtype=float)
    cand_all = (np.asarray(gens["kind"]) == 1) & ~np.asarray(gens["slack"], dtype=bool)
    btype = bus_type.copy()
    demand = np.zeros(len(btype), dtype=complex)  # the limited machines' fixed Q, as injections
    limited = np.zeros(ng, bool)
    fixed_q = np.zeros(ng)
    ties = np.zeros(ng, bool)
    ran, conv, it, norm = False, True, 0, 0.0
    while True:
        qg = gen_q(V, limited, fixed_q)
        cand = cand_all & ~limited
        if tie > 0.0:
            ties |= cand & ((np.abs(qg - qmin) <= tie) | (np.abs(qg - qmax) <= tie))
        mx = cand & (qg > qmax)
        mn = cand & (qg < qmin)
        new = mx | mn
        if not new.any():
            break
        fixed_q[mx] = qmax[mx]
        fixed_q[mn] = qmin[mn]
        limited |= new
        nb_new = gb[new]
        btype[nb_new[btype[nb_new] != ref]] = PQ
        np.add.at(demand, nb_new, 1j * fixed_q[new] / sn_mva)
        # machines still on at a PQ bus inject the Q of the last split (pandapower's makeSbus)
        on_pq = ~limited & (btype[gb] == PQ)
        extra = np.zeros(len(btype), dtype=complex)
        if on_pq.any():
            np.add.at(extra, gb[on_pq], 1j * qg[on_pq] / sn_mva)
        pv = np.flatnonzero(btype == PV).astype(np.int32)
        pq = np.flatnonzero(btype == PQ).astype(np.int32)
        # pandapower starts each round from the last voltages with the magnitudes of the buses of
        # machines still on reset to their set-points (``vm_set``, per bus)
        if vm_set is not None:
            at = gb[~limited]
            at = at[~np.isnan(vm_set[at])]
            V[at] = vm_set[at] * np.exp(1j * np.angle(V[at]))
        ran = True
        conv, it, norm = run(pv, pq, s0 + demand + extra, V)
        # pandapower goes on after a round that did not converge (its limits are checked on the
        # last iterate); only the last round's convergence counts
    return ran, conv, it, norm, limited, fixed_q, ties


def clip_sgen(values, lo, hi):
    """pandas' ``clip(lower=lo, upper=hi)`` with NaN bounds ignored (pandapower's sgen clip)."""
    out = np.asarray(values, dtype=float).copy()
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    m = ~np.isnan(lo) & (out < lo)
    out[m] = lo[m]
    m = ~np.isnan(hi) & (out > hi)
    out[m] = hi[m]
    return out


def curve_limits(world, kind, table):
    """Q limits of ``kind`` (gen, sgen) rows from their reactive capability curves, ``(lo, hi)``
    with NaN where an element has no curve (its columns stand), or None when none has one.
    ``table``: the q_capability_curve_table as ``{column: array}`` (None: no curves)."""
    t = world[kind]
    if table is None or not len(t):
        return None
    from .model import column

    flag = column(t, "reactive_capability_curve", False).astype(bool)
    if not flag.any():
        return None
    curves = {}
    cid = table["id_q_capability_curve"]
    for k in np.unique(cid).tolist():
        r = np.flatnonzero(cid == k)
        curves[int(k)] = (table["p_mw"][r].astype(float), table["q_min_mvar"][r].astype(float),
                          table["q_max_mvar"][r].astype(float))
    return capability_limits(t.cols["p_mw"], column(t, "id_q_capability_characteristic", np.nan), flag, curves)


def capability_limits(p_mw, curve_id, flag, table):
    """Q limits from reactive capability curves: ``table`` is ``{curve id: (p, qmin, qmax)}``
    (the points in table order, as pandapower's Characteristic keeps them); for each element with
    ``flag`` and a curve, the limits at its unscaled ``p_mw`` by linear interpolation
    (``numpy.interp``: end values beyond the points), else NaN (the column limits stand)."""
    n = len(p_mw)
    lo = np.full(n, np.nan)
    hi = np.full(n, np.nan)
    for i in np.flatnonzero(np.asarray(flag, dtype=bool)):
        cid = curve_id[i]
        if cid is None or cid != cid or int(cid) not in table:
            continue
        p, qn, qx = table[int(cid)]
        lo[i] = np.interp(p_mw[i], p, qn)
        hi[i] = np.interp(p_mw[i], p, qx)
    return lo, hi


def sgen_setpoints(world, qlim: bool, plims: bool, curves=None):
    """The sgens' effective ``(p_mw, q_mvar)`` (unscaled) under ``enforce_q_lims`` (``qlim``: Q
    clipped to ``[min_q_mvar, max_q_mvar]``, or to the capability-curve limits ``curves = (lo, hi)``
    where those are not NaN) and ``enforce_p_lims`` (``plims``: P clipped to ``[min_p_mw,
    max_p_mw]``); None when nothing changes.  pandapower clips with the curves for the power flow
    and with the columns only for res_sgen: call it with ``curves=None`` for the results."""
    sg = world["sgen"]
    if not len(sg) or not (qlim or plims):
        return None
    c = sg.cols
    p, q = c["p_mw"], c["q_mvar"]
    if plims:
        p = clip_sgen(p, c["min_p_mw"], c["max_p_mw"])
    if qlim:
        lo, hi = c["min_q_mvar"], c["max_q_mvar"]
        if curves is not None:
            lo = np.where(np.isnan(curves[0]), lo, curves[0])
            hi = np.where(np.isnan(curves[1]), hi, curves[1])
        q = clip_sgen(q, lo, hi)
    if np.array_equal(p, c["p_mw"], equal_nan=True) and np.array_equal(q, c["q_mvar"], equal_nan=True):
        return None
    return p, q


def sgen_injection_shift(world, bus, active, nb, sn_mva, qlim, plims, curves=None):
    """The change of the bus injections (complex p.u., length ``nb``) the clipped sgen set-points
    make, or None.  ``bus``: each sgen row's model bus; ``active``: the rows that take part."""
    eff = sgen_setpoints(world, qlim, plims, curves)
    if eff is None:
        return None
    c = world["sgen"].cols
    w = c["scaling"] * active
    d = ((eff[0] - c["p_mw"]) + 1j * (eff[1] - c["q_mvar"])) * w / sn_mva
    out = np.zeros(nb, dtype=complex)
    np.add.at(out, bus[active], d[active])
    return out
