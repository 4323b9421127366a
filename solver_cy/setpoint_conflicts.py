"""Voltage set-points that disagree at one bus: pandapower refuses them, so gridtape does.

pandapower (build_gen._check_voltage_setpoints_at_same_bus, run for every power flow) lists the
in-service ext_grids then the in-service gens (with check_connectivity, its default: an element
counts when it is in service at a supplied bus, Topology.active), each at its bus after closed
bus-bus switches fused buses, and raises
when a set-point differs from the first one at that bus beyond ``numpy.allclose`` (``|v - first|
<= 1e-8 + 1e-5 * |first|``); with voltage angles calculated, it does the same with the angles
of the ext_grids (_check_voltage_angles_at_same_bus).  rundcpp checks neither.  :func:`find`
returns the first such bus, or None; the model keeps it with the set-points
(injections._setpoints) and Engine.solve refuses to run while it stands.
"""
from __future__ import annotations

import numpy as np

from .inject import first_conflict

_ORDER = ("ext_grid", "gen")  # pandapower's generator order


def find(world, topo):
    """None, or ``(vm, va)``: each None or ``(field, kinds, ids, values, bus_id)`` of the elements
    whose set-points disagree at the first such bus (pandapower's order): voltage magnitudes of
    ext_grids and gens, angles of ext_grids (refused only when voltage angles are calculated)."""
    present = [k for k in _ORDER if len(world[k])]
    if not present:
        return None
    parts = [topo.elem_bus(k)[topo.active[k]] for k in present]
    b = parts[0] if len(parts) == 1 else np.concatenate(parts)
    if len(b) < 2:
        return None
    if "ext_grid" not in present:  # (no angle set-points): the magnitudes' test in one kernel pass
        vm = [world[k].cols["vm_pu"][topo.active[k]] for k in present]
        if first_conflict(b, vm[0] if len(vm) == 1 else np.concatenate(vm), topo.nb) < 0:
            return None  # one controlling element per bus, or set-points that agree (the common cases)
    elif np.bincount(b).max() < 2:
        return None  # one controlling element per bus (the common case)
    kinds, rows, vm = [], [], []
    for kind in present:
        on = np.flatnonzero(topo.active[kind])
        kinds += [kind] * len(on)
        rows.append(on)
        vm.append(world[kind].cols["vm_pu"][on])
    r = np.concatenate(rows)
    vm = np.concatenate(vm)
    n_eg = kinds.count("ext_grid")
    va = world["ext_grid"].cols["va_degree"][r[:n_eg]] if n_eg else np.zeros(0)
    out = (_first_conflict(world, topo, "vm_pu", kinds, r, b, vm),
           _first_conflict(world, topo, "va_degree", kinds[:n_eg], r[:n_eg], b[:n_eg], va))
    return None if out == (None, None) else out


def _first_conflict(world, topo, field, kinds, r, b, v):
    """pandapower's _different_values_at_one_bus: every value against the first at its bus."""
    if len(b) < 2:
        return None
    v = np.asarray(v, dtype=float)
    uniq, first = np.unique(b, return_index=True)
    ref = np.empty(int(b.max()) + 1)
    ref[uniq] = v[first]
    bad = ~np.isclose(v, ref[b])
    if not bad.any():
        return None
    at = b[int(np.flatnonzero(bad)[0])]
    sel = np.flatnonzero(b == at)
    ids = [int(world[kinds[i]].ids[r[i]]) for i in sel]
    rep = topo.elem_bus_row[kinds[sel[0]]][r[sel[0]]]
    return field, tuple(kinds[i] for i in sel), ids, v[sel].tolist(), int(world["bus"].ids[rep])


def refusal(conflict, angles=True):
    """The SchemaError for a conflict found by :func:`find` (None when there is none to refuse:
    angle set-points only count with ``angles``)."""
    from gridtape.errors import SchemaError

    vm, va = conflict
    c = vm if vm is not None else va if angles else None
    if c is None:
        return None
    field, kinds, ids, values, bus_id = c
    who = ", ".join(f"{k} {i} ({field}={v:g})" for k, i, v in zip(kinds, ids, values))
    what = "voltage-controlling elements" if field == "vm_pu" else "ext_grids"
    return SchemaError(f"{what} at bus {bus_id} (buses joined by closed bus-bus switches count as one) have "
                       f"different {field} set-points: {who}; pandapower refuses this too (give them one {field} "
                       "or take one out of service)", table="/".join(sorted(set(kinds))), row=ids[0], field=field)
