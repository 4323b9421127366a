"""The injection layer of the bus-branch model: specified complex power per bus (constant,
current and impedance parts), voltage set-points and the generator table, refreshed per write.

The model cache keeps one :class:`InjectionState` per topology and tells it which columns were
written since its last refresh (the world's dirty set); each contributing part is recomputed only
when one of its columns is among them, so an incremental solve after a load write redoes the
loads' sums and nothing else.  What no topology changes (the gens' reactive limits, whether any
load has ZIP shares, the generator table of a generator placement) is kept in one dict shared
across topologies, which the model cache prunes with :func:`forget` when those columns change.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridtape.errors import SchemaError

from . import setpoint_conflicts
from .inject import assemble, bus_sums, gen_sums
from .topology import Q_LIM_DEFAULT, Topology


@dataclass(slots=True)
class Injections:
    s0: np.ndarray  # constant-power part of the specified injection (p.u., generation positive)
    si: np.ndarray  # constant-current part (multiplied by |V|)
    sz: np.ndarray  # constant-impedance part (multiplied by |V|^2)
    pd: np.ndarray  # bus load P (MW, load convention, all PQ elements), as pandapower's PD
    qd: np.ndarray
    vm_set: np.ndarray  # voltage magnitude set-point per bus (NaN where none)
    va_set: np.ndarray  # angle set-point (degree) at ext_grid buses (NaN where none)
    gens: dict  # generator table for result extraction (pfsoln order: ext_grid, gen, xward)


PQ_KINDS = (("load", 1.0, "p_mw", "q_mvar", True), ("sgen", -1.0, "p_mw", "q_mvar", True),
            ("storage", 1.0, "p_mw", "q_mvar", True), ("ward", 1.0, "ps_mw", "qs_mvar", False),
            ("xward", 1.0, "ps_mw", "qs_mvar", False))


def _shared(shared, key, compute, place=None):
    """``compute()`` kept in ``shared`` (across topologies) under ``key`` (a tuple of the
    ``(kind, column)`` pairs it reads) until :func:`forget` drops it.  ``place`` (arrays of where
    the elements are): for a value that also depends on it, kept per placement (a few dozen at
    most), found by the arrays' bytes."""
    if shared is None:
        return compute()
    if place is None:
        hit = shared.get(key)
        if hit is None:
            hit = shared[key] = (compute(),)
        return hit[0]
    placed = shared.get("placed")
    if placed is None:
        placed = shared["placed"] = {}
    # the placement by its bytes (found in one dict look-up; dtype and shape keep it exact)
    pk = (key, tuple([(a.dtype.str, a.shape, a.tobytes()) for a in place]))
    value = placed.get(pk, placed)
    if value is not placed:
        return value
    value = compute()
    if len(placed) >= _PLACEMENTS:
        del placed[next(iter(placed))]  # the oldest
    placed[pk] = value
    return value


def forget(shared: dict, cols, rows) -> None:
    """Drop the shared values that read a column of ``cols`` ({(kind, column)}) or a kind of
    ``rows`` ({kind}: rows added or removed)."""
    if not shared or (not rows and cols.isdisjoint(SHARED_COLS)):
        return

    def stale(key):
        return any(k in cols or k[0] in rows for k in key)

    for key in [k for k in shared if k != "placed" and k != "splits" and stale(k)]:
        del shared[key]
    placed = shared.get("placed")
    if placed:
        for pk in [pk for pk in placed if stale(pk[0])]:
            del placed[pk]


_PLACEMENTS = 64


def _zi_check(load):
    """Topology-independent part of the ZIP loads: raises on percentages above 100, and says
    whether any load has a constant-current or constant-impedance share at all."""
    c = load.cols
    zp, ip, zq, iq = c["const_z_p_percent"], c["const_i_p_percent"], c["const_z_q_percent"], c["const_i_q_percent"]
    over = (zp + ip > 100) | (zq + iq > 100)
    if over.any():
        k = int(np.flatnonzero(over)[0])
        raise SchemaError("const_z + const_i percentages exceed 100", table="load", row=int(load.ids[k]),
                          field="const_z_p_percent")
    return bool(zp.any() or ip.any() or zq.any() or iq.any())


def _zi_part(world, topo, shared=None):
    """Per-bus averaged constant-current and constant-impedance shares of the loads, or None."""
    load = world["load"]
    if not _shared(shared, _ZI_KEYS, lambda: _zi_check(load)):
        return None  # no load has a share (the usual case): nothing per topology
    c = load.cols
    zp, ip, zq, iq = c["const_z_p_percent"], c["const_i_p_percent"], c["const_z_q_percent"], c["const_i_q_percent"]
    act = topo.active["load"]
    if not (zp[act].any() or ip[act].any() or zq[act].any() or iq[act].any()):
        return None
    nb = topo.nb
    b = topo.elem_bus("load")[act]
    cnt = np.bincount(b, minlength=nb).astype(float)
    cnt[cnt == 0] = 1
    # pandapower averages the loads' percentages per bus
    return tuple(np.bincount(b, col[act] / 100.0, minlength=nb) / cnt for col in (ip, zp, iq, zq))


_Q_KEYS = (("gen", "min_q_mvar"), ("gen", "max_q_mvar"))


def _gen_q_limits(gen):
    """Reactive limits of every gen row, NaN and infinities at +-Q_LIM_DEFAULT (pandapower's)."""
    c = gen.cols
    return (np.nan_to_num(c["min_q_mvar"], nan=-Q_LIM_DEFAULT, posinf=Q_LIM_DEFAULT, neginf=-Q_LIM_DEFAULT),
            np.nan_to_num(c["max_q_mvar"], nan=Q_LIM_DEFAULT, posinf=Q_LIM_DEFAULT, neginf=-Q_LIM_DEFAULT))


def _gen_static(world, topo, shared=None):
    """The generator table (pfsoln order: ext_grid, gen, xward) without the set-points: bus, Q
    limits, kind, row, slack flag and weight.  Depends on topology and on those columns only
    (the gens' Q limits, topology-independent, are kept in ``shared`` across topologies)."""
    pieces = []  # (bus, qmin, qmax, kind code, rows, weight, slack) per contributing kind
    eg = world["ext_grid"]
    if len(eg):
        rows = np.flatnonzero(topo.active["ext_grid"])
        k = len(rows)
        pieces.append((topo.lookup[topo.elem_bus_row["ext_grid"][rows]], np.zeros(k), np.zeros(k), 0, rows,
                       eg.cols["slack_weight"][rows], np.ones(k, bool)))
    gen = world["gen"]
    if len(gen):
        rows = np.flatnonzero(topo.active["gen"])
        qmin, qmax = _shared(shared, _Q_KEYS, lambda: _gen_q_limits(gen))
        pieces.append((topo.lookup[topo.elem_bus_row["gen"][rows]], qmin[rows], qmax[rows], 1, rows,
                       gen.cols["slack_weight"][rows], gen.cols["slack"][rows]))
    xw = world["xward"]
    if len(xw):
        rows = np.flatnonzero(topo.active["xward"])
        k = len(rows)
        pieces.append((topo.aux["xward"][rows], np.full(k, -Q_LIM_DEFAULT), np.full(k, Q_LIM_DEFAULT), 2, rows,
                       xw.cols["slack_weight"][rows], np.zeros(k, bool)))
    if len(pieces) == 1:  # one kind (grid2op's grids: gens only): no concatenation
        bus, qmin, qmax, code, rows, wt, slack = pieces[0]
        return _with_gen_pos(
            {"bus": bus.astype(np.int64, copy=False), "qmin": qmin.astype(float, copy=False),
             "qmax": qmax.astype(float, copy=False), "kind": np.full(len(rows), code, np.int8),
             "row": rows.astype(np.int64, copy=False), "weight": wt.astype(float), "slack": slack.astype(bool)},
            len(gen))
    cat = (lambda i, dt: np.concatenate([p[i] for p in pieces]).astype(dt) if pieces else np.zeros(0, dt))
    kind = np.concatenate([np.full(len(p[4]), p[3], np.int8) for p in pieces]) if pieces else np.zeros(0, np.int8)
    return _with_gen_pos({"bus": cat(0, np.int64), "qmin": cat(1, float), "qmax": cat(2, float), "kind": kind,
                          "row": cat(4, np.int64), "weight": cat(5, float), "slack": cat(6, bool)}, len(gen))


def _with_gen_pos(table, n_gen):
    """The generator table with ``gen_pos``: each gen row's entry in it (int64, -1: none)."""
    pos = np.full(n_gen, -1, np.int64)
    m = np.flatnonzero(table["kind"] == 1)
    pos[table["row"][m]] = m
    table["gen_pos"] = pos
    return table


def _setpoints(world, topo):
    """Voltage magnitude set-point per bus (NaN where none), angle set-point (ext_grid buses) and
    the set-points that disagree at one bus (setpoint_conflicts.find: None or the refusal's data)."""
    nb = topo.nb
    vm_set = np.full(nb, np.nan)
    va_set = np.full(nb, np.nan)
    eg = world["ext_grid"]
    if len(eg):
        act = topo.active["ext_grid"]
        b = topo.elem_bus("ext_grid")[act]
        vm_set[b] = eg.cols["vm_pu"][act]
        va_set[b] = eg.cols["va_degree"][act]
    gen = world["gen"]
    if len(gen):
        act = topo.active["gen"]
        vm_set[topo.elem_bus("gen")[act]] = gen.cols["vm_pu"][act]
    xw = world["xward"]
    if len(xw):
        act = topo.active["xward"]
        vm_set[topo.aux["xward"][act]] = xw.cols["vm_pu"][act]
    return vm_set, va_set, setpoint_conflicts.find(world, topo)


_UNSET = object()  # a part not computed yet (None is a value: no load has ZIP shares)


class _Part:
    """One cached partial result: recomputed when one of its columns was written."""

    __slots__ = ("name", "keys", "compute", "value")

    def __init__(self, name, keys, compute):
        self.name, self.keys, self.compute = name, frozenset(keys), compute
        self.value = _UNSET


_GEN_KINDS = ("gen", "ext_grid", "xward")
_GEN_STATIC_KEYS = (("gen", "min_q_mvar"), ("gen", "max_q_mvar"), ("gen", "slack"), ("gen", "slack_weight"),
                    ("ext_grid", "slack_weight"), ("xward", "slack_weight"))
_SETPOINT_KEYS = (("gen", "vm_pu"), ("ext_grid", "vm_pu"), ("ext_grid", "va_degree"), ("xward", "vm_pu"))
_GEN_P_KEYS = (("gen", "p_mw"), ("gen", "scaling"))
_ZI_COLS = ("const_z_p_percent", "const_i_p_percent", "const_z_q_percent", "const_i_q_percent")
_ZI_KEYS = tuple(("load", c) for c in _ZI_COLS)
#: every column a shared value reads (forget has nothing to do for the others)
SHARED_COLS = frozenset(_ZI_KEYS + _Q_KEYS + _GEN_STATIC_KEYS + _SETPOINT_KEYS)


class InjectionState:
    """The injection layer of one topology.  Each part (a kind's bus sums, the load shares of
    constant current and impedance, the static generator table, generator P, set-points) is kept
    until one of its columns is written; :meth:`refresh` recomputes those parts and reassembles
    the injections only when one of them changed.  ``static_version`` counts the recomputations
    of the static generator table (what is derived from it is kept with the count it saw)."""

    def __init__(self, world, topo: Topology, shared: dict | None = None):
        self.topo = topo
        self.inj = None
        self.static_version = 0
        nb = topo.nb
        parts = []
        self._pq = []
        for kind, sign, pcol, qcol, scaled in PQ_KINDS:
            if not len(world[kind]):
                continue
            bus = topo.elem_bus(kind)
            w = topo.active[kind] * sign
            cols = (pcol, qcol, "scaling") if scaled else (pcol, qcol)

            def pq(world, kind=kind, bus=bus, w=w, pcol=pcol, qcol=qcol, scaled=scaled):
                c = world[kind].cols
                return bus_sums(bus, c[pcol], c[qcol], w, c["scaling"] if scaled else None, nb)

            part = _Part(kind, tuple((kind, c) for c in cols), pq)
            parts.append(part)
            self._pq.append(part)
        self._zi = None
        if len(world["load"]):
            self._zi = _Part("zi", _ZI_KEYS, lambda world: _zi_part(world, topo, shared))
            parts.append(self._zi)
        gk = tuple(k for k in _GEN_KINDS if len(world[k])) or ("gen",)
        if gk == ("gen",) and shared is not None:
            # generators only (grid2op's grids): the generator table and the set-points are kept
            # per generator placement, which most topology changes (branch moves) leave as it was
            place = (topo.elem_bus("gen"), topo.active["gen"], np.array([nb]))
            self._static = _Part("gen_static", _GEN_STATIC_KEYS, lambda world: _shared(
                shared, _GEN_STATIC_KEYS, lambda: _gen_static(world, topo, shared), place))
            self._set = _Part("setpoints", _SETPOINT_KEYS, lambda world: _shared(
                shared, _SETPOINT_KEYS, lambda: _setpoints(world, topo), place))
        else:
            self._static = _Part("gen_static", _GEN_STATIC_KEYS, lambda world: _gen_static(world, topo, shared))
            self._set = _Part("setpoints", _SETPOINT_KEYS, lambda world: _setpoints(world, topo))
        # (no bound method stored: a state referring to itself would be a reference cycle,
        # freed only by the garbage collector; refresh calls _gen_p itself)
        self._genp = _Part("gen_p", _GEN_P_KEYS, None)
        parts += [self._static, self._genp, self._set]
        self.parts = parts
        self._zero = np.zeros(nb, dtype=complex)

    def _gen_p(self, world):
        """Generator P in pfsoln order (set-point times scaling; 0 for ext_grids and xwards) and
        its bus sums."""
        static = self._static.value
        idx = static.get("p_index")
        if idx is None:  # made once per static table (shared tables are shared with their index)
            on = np.flatnonzero(static["kind"] == 1)
            idx = (np.ascontiguousarray(static["row"][on], dtype=np.int64), int(on[0]) if len(on) else 0,
                   np.ascontiguousarray(static["bus"], dtype=np.int64), dict(static))  # (the table without it)
            static["p_index"] = idx
        rows, off, gbus, table = idx
        c = world["gen"].cols
        p, sg = gen_sums(rows, c["p_mw"], c["scaling"], gbus, off, self.topo.nb)
        gens = table.copy()
        gens["p"] = p
        return gens, sg

    @property
    def conflict(self):
        """Set-points that disagree at one bus (setpoint_conflicts.find), None when they agree."""
        v = self._set.value
        return None if v is None or v is _UNSET else v[2]

    def refresh(self, world, cols=None) -> Injections:
        """The injections after the writes of ``cols`` ({(kind, column)} written since the last
        refresh; None: everything)."""
        changed = False
        for part in self.parts:
            if part.value is not _UNSET and cols is not None and part.keys.isdisjoint(cols):
                continue
            if part is self._genp:
                continue  # after the static table (below)
            old = part.value
            part.value = part.compute(world)
            changed = True
            if part is self._static and part.value is not old:
                self.static_version += 1
                self._genp.value = None
        gp = self._genp
        if gp.value is None or gp.value is _UNSET or cols is None or not gp.keys.isdisjoint(cols):
            gp.value = self._gen_p(world)
            changed = True
        if not changed and self.inj is not None:
            return self.inj
        self.inj = inj = self._assemble(world)
        return inj

    def _assemble(self, world) -> Injections:
        topo = self.topo
        nb = topo.nb
        sn = world.sn_mva
        gens, sg = self._genp.value
        vm_set, va_set, _ = self._set.value
        zi = None if self._zi is None else self._zi.value
        s0, pd, qd, bad = assemble([p.value for p in self._pq], sg, sn)
        if zi is None:
            si = sz = self._zero
        else:
            ci_p, cz_p, ci_q, cz_q = zi
            s0 = (sg - (pd * (1 - ci_p - cz_p) + 1j * qd * (1 - ci_q - cz_q))) / sn
            si = -(pd * ci_p + 1j * qd * ci_q) / sn
            sz = -(pd * cz_p + 1j * qd * cz_q) / sn
            fin = np.isfinite(s0)
            bad = -1 if fin.all() else int(np.flatnonzero(~fin)[0])
        if bad >= 0:
            raise SchemaError("non-finite injection", table="bus", row=bad)
        return Injections(s0, si, sz, pd, qd, vm_set, va_set, gens)


def fill_injections(world, topo: Topology) -> Injections:
    """Specified injections of every bus of ``topo`` (no state kept: the tests' fresh view)."""
    return InjectionState(world, topo).refresh(world)
