"""``check_connectivity=False``: where pandapower's answer would differ from gridtape's, refuse.

With ``check_connectivity=True`` (runpp's and rundcpp's default) pandapower takes every bus of an
island without a slack out of the power flow, and the elements at them out of service, as
gridtape always does.  With False it only takes out the buses no in-service branch reaches
(pd2ppc: ``_set_isolated_buses_out_of_service``) and keeps every element at an in-service bus
in service (``_is_elements`` is not narrowed):

- a load, sgen, storage, ward or xward in service at such a bus reports its set-point in its
  result table (and in res_bus.p_mw / q_mvar); an xward adds a branch to its internal bus;
- a gen there makes runpp fail (an IndexError) or counts in the voltage set-point check;
- an island of several buses without a slack stays in the Newton system, which is singular
  (LoadflowNotConverged).

Buses without anything in service on them (or only shunts) read the same either way, and so does
every network in which each in-service bus is supplied.  :func:`refusal` returns the OptionError
naming ``check_connectivity`` for the first element or branch that would read differently, or
None; the engine raises it before it takes the new model (Engine.prepare).
"""
from __future__ import annotations

import numpy as np

from .topology import NONE

#: element kinds whose in-service rows at an unsupplied in-service bus change pandapower's answer
_ELEMENTS = ("load", "sgen", "storage", "ward", "xward", "gen")


def refusal(world, topo, neglect_open_switch_branches=False):
    """None, or the OptionError for the first in-service element or branch at an in-service bus
    of an island without a slack (see the module docstring).  With
    ``neglect_open_switch_branches`` a line or trafo with an open switch is out of service."""
    from gridtape.errors import OptionError

    bus = world["bus"]
    dead = bus.cols["in_service"] & (topo.bus_type[topo.lookup] == NONE)
    if not dead.any():
        return None

    def error(kind, row, bus_row, what):
        bid = int(bus.ids[bus_row])
        return OptionError(
            f"check_connectivity=False with {kind} {int(world[kind].ids[row])} {what} bus {bid}, an in-service bus "
            "of an island without a slack, is not modelled: pandapower then keeps such elements and branches in "
            "the power flow (its results differ, or it fails); use check_connectivity=True, or take them out "
            "of service", option="check_connectivity", table=kind, row=int(world[kind].ids[row]))

    for kind in _ELEMENTS:
        t = world[kind]
        if not len(t):
            continue
        brow = topo.elem_bus_row[kind]
        hit = np.flatnonzero(t.cols["in_service"] & dead[brow])
        if len(hit):
            return error(kind, int(hit[0]), int(brow[hit[0]]), "at")
    inner = np.zeros(topo.nb, dtype=bool)
    inner[topo.lookup[dead]] = True
    rep = np.full(topo.nb, -1, dtype=np.int64)  # an internal bus's first world bus row
    rows_dead = np.flatnonzero(dead)
    rep[topo.lookup[rows_dead[::-1]]] = rows_dead[::-1]
    br = topo.branches
    for kind, (s0, s1) in br.slices.items():
        rows = br.rows[kind]
        on = np.ones(s1 - s0, bool) if kind == "switch" else world[kind].cols["in_service"][rows]
        if neglect_open_switch_branches and kind in ("line", "trafo"):
            on = on & ~_open_switched(world, kind)[rows]
        f, t = br.f[s0:s1], br.t[s0:s1]
        hit = np.flatnonzero(on & (inner[f] | inner[t]))
        if len(hit):
            i = int(hit[0])
            b = f[i] if inner[f[i]] else t[i]
            return error(kind, int(rows[i]), int(rep[b]), "at")
    return None


def _open_switched(world, kind):
    """Which rows of ``kind`` ("line", "trafo") have an open switch."""
    out = np.zeros(len(world[kind]), dtype=bool)
    sw = world["switch"]
    if len(sw):
        c = sw.cols
        m = ~c["closed"] & (c["et"] == ("l" if kind == "line" else "t"))
        pos = world[kind].positions
        out[[pos[e] for e in c["element"][m].tolist() if e in pos]] = True
    return out
