"""Start voltages of a Newton run: pandapower's (flat, "auto" from the set-points, DC angles),
the last iterate (warm start) and the last converged voltages carried across a topology change.
Functions of the engine's current model; the engine keeps what they return."""
from __future__ import annotations

import numpy as np

from .newton import dc_solve
from .topo import warm_voltage
from .topology import NONE

INITS = ("auto", "flat", "dc", "results")


def pinned(V, inj):
    """``V`` with the set-points pinned: magnitude at PV / REF buses, angle at ext_grid buses."""
    ang = np.angle(V)
    has_va = ~np.isnan(inj.va_set)
    ang[has_va] = np.deg2rad(inj.va_set[has_va])
    mag = np.abs(V)
    has_set = ~np.isnan(inj.vm_set)
    mag[has_set] = inj.vm_set[has_set]
    return mag * np.exp(1j * ang)


def pandapower_start(engine, init: str) -> np.ndarray:
    """pandapower's start: "flat" (1 p.u., set-points), "auto" (the mean of the in-service
    set-points, then DC angles) or "dc" (DC angles)."""
    topo, inj, w = engine.topo, engine.inj, engine.world
    nb = topo.nb
    has_set = ~np.isnan(inj.vm_set)
    vm0 = 1.0
    if init == "auto":
        eg, gen = w["ext_grid"], w["gen"]
        vals = np.concatenate([eg.cols["vm_pu"][eg.cols["in_service"]], gen.cols["vm_pu"][gen.cols["in_service"]]])
        if len(vals):
            vm0 = float(vals.mean())
    va = np.where(np.isnan(inj.va_set), 0.0, np.deg2rad(inj.va_set))
    V = np.full(nb, vm0, dtype=complex) * np.exp(1j * va)
    V[has_set] = inj.vm_set[has_set] * np.exp(1j * va[has_set])
    if init == "dc" or init == "auto" and engine.solve_options.get("voltage_angles", True):
        va = dc_angles(engine, va)
        V = np.abs(V) * np.exp(1j * va)
    return pinned(V, inj)


def given_start(engine, v_init) -> np.ndarray:
    return pinned(np.asarray(v_init, dtype=complex).copy(), engine.inj)


def last_iterate(engine) -> np.ndarray:
    """The last iterate, unsupplied buses at 1 p.u., set-points pinned."""
    V = engine.V.copy()
    V[~np.isfinite(V)] = 1.0
    return pinned(V, engine.inj)


def after_topology_change(engine):
    """The voltages converged before the last topology change, re-pinned (topo.warm_voltage), or
    None when the bus count changed or a newly supplied bus cannot take a neighbour's voltage."""
    prev = engine._v_prev
    if len(prev) != engine.topo.nb:
        return None
    br = engine.topo.branches
    inj = engine.inj
    return warm_voltage(prev, engine.topo.bus_type, br.f, br.t, br.status, inj.vm_set, inj.va_set)


def warm_start(engine) -> np.ndarray:
    """The last iterate with the set-points re-pinned (the incremental path's start).  Newton
    keeps PV magnitudes and slack voltages, so after a converged solve they only need pinning
    when the set-points themselves were written."""
    inj = engine.inj
    V = engine.V.copy()
    if len(engine._none):
        V[engine._none] = 1.0
    if engine._pinned is inj.vm_set:
        return V
    vs = np.flatnonzero(~np.isnan(inj.vm_set))
    va = np.flatnonzero(~np.isnan(inj.va_set))
    V[vs] = inj.vm_set[vs] * np.exp(1j * np.angle(V[vs]))
    V[va] = np.abs(V[va]) * np.exp(1j * np.deg2rad(inj.va_set[va]))
    return V


def dc_angles(engine, va0: np.ndarray) -> np.ndarray:
    """DC power-flow angles (radians) with the reference angles of ``va0`` (pandapower's dc init).

    B is assembled on the model's Ybus pattern (the same positions: diagonal plus both branch
    ends; a bus of type NONE gets an identity row so the system stays regular), no sparse
    matrix library involved."""
    topo, inj = engine.topo, engine.inj
    br = topo.branches
    on = br.status
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(on, 1.0 / br.x, 0.0) / br.ratio
    b[~on] = 0.0
    nb = topo.nb
    pff, pft, ptf, ptt, pdiag = engine.pos
    data = np.zeros(len(engine.indices))
    np.add.at(data, pff, b)
    np.add.at(data, pft, -b)
    np.add.at(data, ptf, -b)
    np.add.at(data, ptt, b)
    pfinj = b * (-np.deg2rad(br.shift_deg))
    pbusinj = np.bincount(br.f, pfinj, nb) - np.bincount(br.t, pfinj, nb)
    sbus = inj.s0 + inj.si + inj.sz
    p = sbus.real - pbusinj - engine.ysh.real
    active = topo.bus_type != NONE
    if not active.all():
        data[pdiag[~active]] += 1.0
        p = np.where(active, p, 0.0)
    va = va0.copy()
    if not dc_solve(engine.indptr, engine.indices, data, p, topo.ref.astype(np.int32, copy=False), va):
        return va0
    va[~active] = va0[~active]
    return va
