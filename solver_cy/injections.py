"""The injection layer of the bus-branch model: specified complex power per bus (constant,
current and impedance parts), voltage set-points and the generator table, refreshed per write.

The engine keeps one cache per topology; each contributing kind's bus sums are recomputed only
when that kind's columns were written (the world's write stamps), so an incremental solve after a
load write redoes the loads' sums and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridtape.errors import SchemaError

from .inject import assemble, bus_sums, gen_sums
from .model import Q_LIM_DEFAULT, Topology, _bus_rows


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


def _shared(shared, world, kind, keys, compute, placement=None):
    """``compute()`` kept in the engine-wide dict ``shared`` (across topologies) while the
    columns ``keys`` of ``kind`` keep their write stamp and the table its rows (add / remove
    replace the ids array; the very array is held, so ``is`` cannot be fooled by a reused id).
    ``placement`` (bytes of where the elements are): for a value that also depends on it, kept
    per placement, a few dozen placements at most."""
    if shared is None:
        return compute()
    stamp = world.stamp_of(keys)
    ids = world[kind].ids
    key = keys
    if placement is not None:
        shared = shared.setdefault("placed", {})
        key = (keys, placement)
    hit = shared.get(key)
    if hit is not None and hit[0] == stamp and hit[1] is ids:
        return hit[2]
    value = compute()
    if placement is not None and len(shared) >= _PLACEMENTS:
        shared.clear()
    shared[key] = (stamp, ids, value)
    return value


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
    if not _shared(shared, world, "load", _ZI_KEYS, lambda: _zi_check(load)):
        return None  # no load has a share (the usual case): nothing per topology
    c = load.cols
    zp, ip, zq, iq = c["const_z_p_percent"], c["const_i_p_percent"], c["const_z_q_percent"], c["const_i_q_percent"]
    act = topo.active["load"]
    if not (zp[act].any() or ip[act].any() or zq[act].any() or iq[act].any()):
        return None
    nb = topo.nb
    b = _bus_rows(world, topo, "load")[act]
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
        qmin, qmax = _shared(shared, world, "gen", _Q_KEYS, lambda: _gen_q_limits(gen))
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
        return {"bus": bus.astype(np.int64, copy=False), "qmin": qmin.astype(float, copy=False),
                "qmax": qmax.astype(float, copy=False), "kind": np.full(len(rows), code, np.int8),
                "row": rows.astype(np.int64, copy=False), "weight": wt.astype(float), "slack": slack.astype(bool)}
    cat = (lambda i, dt: np.concatenate([p[i] for p in pieces]).astype(dt) if pieces else np.zeros(0, dt))
    kind = np.concatenate([np.full(len(p[4]), p[3], np.int8) for p in pieces]) if pieces else np.zeros(0, np.int8)
    return {"bus": cat(0, np.int64), "qmin": cat(1, float), "qmax": cat(2, float), "kind": kind,
            "row": cat(4, np.int64), "weight": cat(5, float), "slack": cat(6, bool)}


def _setpoints(world, topo):
    """Voltage magnitude set-point per bus (NaN where none) and angle set-point (ext_grid buses)."""
    nb = topo.nb
    vm_set = np.full(nb, np.nan)
    va_set = np.full(nb, np.nan)
    eg = world["ext_grid"]
    if len(eg):
        act = topo.active["ext_grid"]
        b = _bus_rows(world, topo, "ext_grid")[act]
        vm_set[b] = eg.cols["vm_pu"][act]
        va_set[b] = eg.cols["va_degree"][act]
    gen = world["gen"]
    if len(gen):
        act = topo.active["gen"]
        vm_set[_bus_rows(world, topo, "gen")[act]] = gen.cols["vm_pu"][act]
    xw = world["xward"]
    if len(xw):
        act = topo.active["xward"]
        vm_set[topo.aux["xward"][act]] = xw.cols["vm_pu"][act]
    return vm_set, va_set


class _Part:
    """One cached partial result: recomputed when a write stamp of its columns moved."""

    __slots__ = ("name", "kinds", "keys", "compute", "seen", "key", "value")

    def __init__(self, name, kinds, keys, compute):
        self.name, self.kinds, self.keys, self.compute = name, kinds, keys, compute
        self.seen = self.key = self.value = None


_GEN_KINDS = ("gen", "ext_grid", "xward")
_GEN_STATIC_KEYS = (("gen", "min_q_mvar"), ("gen", "max_q_mvar"), ("gen", "slack"), ("gen", "slack_weight"),
                    ("ext_grid", "slack_weight"), ("xward", "slack_weight"))
_SETPOINT_KEYS = (("gen", "vm_pu"), ("ext_grid", "vm_pu"), ("ext_grid", "va_degree"), ("xward", "vm_pu"))
_ZI_COLS = ("const_z_p_percent", "const_i_p_percent", "const_z_q_percent", "const_i_q_percent")
_ZI_KEYS = tuple(("load", c) for c in _ZI_COLS)


class InjectionState:
    """The injection layer of one topology.  Each part (a kind's bus sums, the load shares of
    constant current and impedance, the static generator table, generator P, set-points) is kept
    with the write stamps it was computed from; :meth:`refresh` recomputes the parts whose
    columns were written and reassembles the injections only when one of them changed.

    A kind's ``kind_version`` is checked first (one dict read per part), the per-column stamps only
    when the kind was written at all."""

    def __init__(self, world, topo: Topology, shared: dict | None = None):
        self.topo = topo
        self.inj = None
        nb = topo.nb
        parts = []
        self._pq = []
        for kind, sign, pcol, qcol, scaled in PQ_KINDS:
            if not len(world[kind]):
                continue
            bus = np.ascontiguousarray(_bus_rows(world, topo, kind), dtype=np.int64)
            w = topo.active[kind] * sign
            cols = (pcol, qcol, "scaling") if scaled else (pcol, qcol)

            def pq(world, kind=kind, bus=bus, w=w, pcol=pcol, qcol=qcol, scaled=scaled):
                c = world[kind].cols
                return bus_sums(bus, c[pcol], c[qcol], w, c["scaling"] if scaled else None, nb)

            part = _Part(kind, (kind,), tuple((kind, c) for c in cols), pq)
            parts.append(part)
            self._pq.append(part)
        self._zi = None
        if len(world["load"]):
            self._zi = _Part("zi", ("load",), tuple(("load", c) for c in _ZI_COLS),
                             lambda world: _zi_part(world, topo, shared))
            parts.append(self._zi)
        # an empty table is never written (rows never come or go within one topology: add /
        # remove change the topology), so only the generator kinds the grid has are watched
        gk = tuple(k for k in _GEN_KINDS if len(world[k])) or ("gen",)
        if gk == ("gen",) and shared is not None:
            # generators only (grid2op's grids): the generator table and the set-points are kept
            # per generator placement, which most topology changes (branch moves) leave as it was
            place = (topo.lookup[topo.elem_bus_row["gen"]].tobytes(), topo.active["gen"].tobytes(), nb)
            self._static = _Part("gen_static", gk, _GEN_STATIC_KEYS, lambda world: _shared(
                shared, world, "gen", _GEN_STATIC_KEYS, lambda: _gen_static(world, topo, shared), place))
            self._set = _Part("setpoints", gk, _SETPOINT_KEYS, lambda world: _shared(
                shared, world, "gen", _SETPOINT_KEYS, lambda: _setpoints(world, topo), place))
        else:
            self._static = _Part("gen_static", gk, _GEN_STATIC_KEYS, lambda world: _gen_static(world, topo, shared))
            self._set = _Part("setpoints", gk, _SETPOINT_KEYS, lambda world: _setpoints(world, topo))
        # (no bound method stored: a state referring to itself would be a reference cycle,
        # freed only by the garbage collector; refresh calls _gen_p itself)
        self._genp = _Part("gen_p", ("gen",), (("gen", "p_mw"), ("gen", "scaling")), None)
        self._gen_idx = None  # (static table, rows, offset, buses) of the gens' P sums
        # the index arrays of a static table shared across topologies, made once per table
        self._idx_cache = None if shared is None else shared.setdefault("gen_idx", {})
        parts += [self._static, self._genp, self._set]
        self.parts = parts
        self._zero = np.zeros(nb, dtype=complex)

    def _gen_p(self, world):
        """Generator P in pfsoln order (set-point times scaling; 0 for ext_grids and xwards) and
        its bus sums."""
        static = self._static.value
        idx = self._gen_idx
        if idx is None or idx[0] is not static:  # index arrays of this static table
            cache = self._idx_cache
            idx = None if cache is None else cache.get(id(static))
            if idx is None or idx[0] is not static:
                on = np.flatnonzero(static["kind"] == 1)
                idx = (static, np.ascontiguousarray(static["row"][on], dtype=np.int64), int(on[0]) if len(on) else 0,
                       np.ascontiguousarray(static["bus"], dtype=np.int64))
                if cache is not None:
                    if len(cache) >= _PLACEMENTS:
                        cache.clear()
                    cache[id(static)] = idx  # the entry holds the table: its id is not reused meanwhile
            self._gen_idx = idx
        _, rows, off, gbus = idx
        c = world["gen"].cols
        p, sg = gen_sums(rows, c["p_mw"], c["scaling"], gbus, off, self.topo.nb)
        gens = dict(static)
        gens["p"] = p
        return gens, sg

    def refresh(self, world) -> Injections:
        kv = world.kind_version
        changed = False
        for part in self.parts:
            kinds = part.kinds
            seen = kv[kinds[0]] if len(kinds) == 1 else sum([kv[k] for k in kinds])
            if seen == part.seen:
                continue
            part.seen = seen
            key = world.stamp_of(part.keys)
            if part is self._genp:
                key = (key, self._static.key)  # the static table it extends
            if key != part.key:
                part.key = key
                part.value = self._gen_p(world) if part is self._genp else part.compute(world)
                changed = True
                if part is self._static:
                    self._genp.seen = None
        if not changed and self.inj is not None:
            return self.inj
        self.inj = inj = self._assemble(world)
        return inj

    def _assemble(self, world) -> Injections:
        topo = self.topo
        nb = topo.nb
        sn = world.sn_mva
        gens, sg = self._genp.value
        vm_set, va_set = self._set.value
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


def fill_injections(world, topo: Topology, cache: dict | None = None, shared: dict | None = None) -> Injections:
    """Specified injections of every bus.  ``cache`` (kept by the engine per topology) holds the
    :class:`InjectionState`, so an incremental solve after a load write recomputes the loads' sums
    only; ``shared`` (kept by the engine across topologies) holds what no topology changes."""
    if cache is None:
        cache = {}
    st = cache.get("state")
    if st is None or st.topo is not topo:
        st = cache["state"] = InjectionState(world, topo, shared)
    return st.refresh(world)
