"""Batch solving: many steps that change only the injections of one model.

A study step that writes only constant-power set-points (load / sgen / storage / ward p and q,
gen p) changes the solver's injection arrays linearly: ``s0``, ``si``, ``sz`` (p.u. per bus),
``pd``, ``qd`` (MW per bus) and the generator table's ``p``.  :class:`InjectionMap` finds that
linear map once, by *probing* the one injection formula (injections.py, through
``Engine.prepare``): each profiled element's value is moved by one unit, a round of elements at
distinct buses at a time, and the change of the arrays is recorded.  A chunk of steps then gets
its injection arrays from one pass of a kernel (inject.chunk_rows, without the GIL); per step
the solver reads a row of them, and the
world is written once per chunk (with the chunk's last step), not per step.

Why not write the world per step: the world write plus the injection refresh cost 45 us per
step on case118 and 0.8 ms on case2869pegase, more than the Newton iterations themselves on the
small case; the map costs one multiply-add per profiled value and bus array.  Steps that write
anything else (voltage set-points, taps, shunt steps) go through the world's write path and the
model cache per step (gridtape/studies/runner.py).
"""
from __future__ import annotations

import numpy as np

from . import model as M

#: (kind, field) pairs whose writes change the injection arrays linearly
LINEAR = {("load", "p_mw"), ("load", "q_mvar"), ("sgen", "p_mw"), ("sgen", "q_mvar"), ("storage", "p_mw"),
          ("storage", "q_mvar"), ("ward", "ps_mw"), ("ward", "qs_mvar"), ("ward", "pz_mw"), ("ward", "qz_mvar"),
          ("xward", "ps_mw"), ("xward", "qs_mvar"), ("xward", "pz_mw"), ("xward", "qz_mvar"), ("gen", "p_mw")}
_BLOCKS = ("s0r", "s0i", "sir", "sii", "szr", "szi", "pd", "qd")


def linear(columns) -> bool:
    """Whether every profiled (kind, field) can take the injection map."""
    return all(c in LINEAR for c in columns)


def _vector(inj) -> np.ndarray:
    return np.concatenate([inj.s0.real, inj.s0.imag, inj.si.real, inj.si.imag, inj.sz.real, inj.sz.imag,
                           inj.pd, inj.qd, inj.gens["p"]])


class InjectionMap:
    """``x(values) = x0 + M (values - base)`` for the injection arrays ``x`` (see the module doc).
    ``entries``: (kind, field, rows) per profiled column; the world holds the base values."""

    def __init__(self, engine, world, entries):
        engine.prepare()
        topo = engine.topo
        nb = topo.nb
        self.nb = nb
        x0 = _vector(engine.inj)
        self.x0 = x0
        gens = engine.inj.gens
        cols_i, cols_j, cols_v = [], [], []
        self.base = []
        j0 = 0
        for kind, field, rows in entries:
            col = world[kind].cols[field]
            base = col[rows].copy()
            self.base.append(base)
            ibus = topo.lookup[topo.elem_bus_row[kind][rows]]
            gpos = np.full(len(rows), -1, np.int64)
            if kind == "gen":
                isgen = np.flatnonzero(np.asarray(gens["kind"]) == 1)
                where = np.full(len(world[kind]), -1, np.int64)
                where[np.asarray(gens["row"])[isgen]] = isgen
                gpos = where[rows]
            # rounds: elements at distinct internal buses, so each bus slot has one owner
            rank = _rank_within(ibus)
            for r in range(int(rank.max(initial=-1)) + 1):
                sel = np.flatnonzero(rank == r)
                world.write_rows(kind, rows[sel], field, base[sel] + 1.0)
                engine.prepare()
                d = _vector(engine.inj) - x0
                world.write_rows(kind, rows[sel], field, base[sel])
                got = np.zeros_like(d)
                P = np.arange(len(_BLOCKS))[:, None] * nb + ibus[sel][None, :]  # blocks x elements
                C = np.broadcast_to(j0 + sel, P.shape)
                hasg = gpos[sel] >= 0
                P = np.concatenate([P.ravel(), len(_BLOCKS) * nb + gpos[sel][hasg]])
                C = np.concatenate([C.ravel(), (j0 + sel)[hasg]])
                v = d[P]
                nz = v != 0
                cols_i.append(P[nz])
                cols_j.append(C[nz])
                cols_v.append(v[nz])
                got[P] = v
                if not np.allclose(got, d, rtol=0, atol=1e-12 * max(1.0, float(np.abs(x0).max(initial=0)))):
                    raise ValueError(f"{kind}.{field} does not act on its own bus alone: no injection map")
            j0 += len(rows)
        engine.prepare()
        import scipy.sparse as sp

        self.M = sp.csr_matrix((np.concatenate(cols_v) if cols_v else np.zeros(0),
                                (np.concatenate(cols_i) if cols_i else np.zeros(0, np.int64),
                                 np.concatenate(cols_j) if cols_j else np.zeros(0, np.int64))),
                               shape=(len(x0), j0))
        self.rows = np.unique(self.M.tocoo().row)  # the entries of x any profiled value moves
        self.Msub = self.M[self.rows]
        self.voltage_dependent = bool(((self.rows >= 2 * nb) & (self.rows < 6 * nb)).any())

        # per chunk, the kernel inject.chunk_rows: the moved slots as CSR rows, each slot's array
        # (0..5: real / imaginary part of s0, si, sz; -1: pd, qd, generator p) and bus
        Ms = self.Msub.tocsr()
        Ms.sort_indices()
        self._csr = (Ms.indptr.astype(np.int64), Ms.indices.astype(np.int64), Ms.data.astype(np.float64))
        blk = self.rows // nb
        self._code = np.where(blk < 6, blk, -1).astype(np.int64)
        self._bus = (self.rows % nb).astype(np.int64)
        self._col_base = np.concatenate(self.base) if self.base else np.zeros(0)
        self._base_rows = tuple(x0[2 * k * nb:(2 * k + 1) * nb] + 1j * x0[(2 * k + 1) * nb:(2 * k + 2) * nb]
                                for k in range(3))
        self._parts = {}
        for k, name in enumerate(_BLOCKS + ("gp",)):
            lo = k * nb
            hi = len(x0) if name == "gp" else lo + nb
            sel = np.flatnonzero((self.rows >= lo) & (self.rows < hi))
            self._parts[name] = (x0[lo:hi], self.rows[sel] - lo, sel)

    def chunk(self, values, scratch=None) -> "ChunkInjections":
        """The injection arrays of a chunk of steps (``values``: one steps x elements array per
        entry), by the kernel inject.chunk_rows; see :class:`ChunkInjections`.  ``scratch``: a
        dict the arrays are kept in from chunk to chunk (no fresh pages per chunk)."""
        from .inject import chunk_rows

        n, nb = (len(values[0]) if values else 0), self.nb
        vals = tuple(np.ascontiguousarray(v, dtype=np.float64) for v in values)
        scratch = {} if scratch is None else scratch
        key = (nb, len(self.rows), self.voltage_dependent)
        if scratch.get("key") != key or len(scratch["delta"]) < n:
            k = 3 if self.voltage_dependent else 1
            scratch.clear()
            scratch.update(key=key, delta=np.empty((n, len(self.rows))),
                           rows=tuple(np.empty((n, nb), complex) for _ in range(k)))
        delta = scratch["delta"][:n]
        rows = tuple(a[:n] for a in scratch["rows"])
        out = rows if self.voltage_dependent else (rows[0], None, None)
        chunk_rows(vals, self._col_base, *self._csr, self._code, self._bus, self._base_rows, out, delta)
        return ChunkInjections(self, delta, out)


class ChunkInjections:
    """A chunk's injection arrays: ``s0(i)``, ``si(i)``, ``sz(i)`` (step ``i``, complex per bus;
    si / sz are the base arrays' when no profiled value moves them) and ``at(name, cols)``: the
    steps x ``cols`` values of ``pd``, ``qd`` (per bus) or ``gp`` (per generator)."""

    def __init__(self, m, delta, rows):
        self.m, self.delta, self.n = m, delta, len(delta)
        self._parts = m._parts
        self._rows = rows

    def arrays(self):
        """``(S0, SI, SZ)``: steps x buses arrays of s0, si, sz (si and sz: their one row when no
        profiled value moves them), C-contiguous: a chunk for solver_cy.newton.solve_steps."""
        if self.m.voltage_dependent:
            return self._rows
        b = self.m._base_rows
        return self._rows[0], b[1][None, :], b[2][None, :]

    def at(self, name, cols, steps=None):
        base, pos, sel = self._parts[name]
        d = self.delta if steps is None else self.delta[steps]
        out = np.empty((len(d), len(cols)))
        out[:] = base[cols]
        where = np.full(len(base), -1, np.int64)
        where[cols] = np.arange(len(cols))
        hit = where[pos] >= 0
        out[:, where[pos[hit]]] += d[:, sel[hit]]
        return out


def _rank_within(keys) -> np.ndarray:
    """For each entry, how many entries before it (in order) have the same key: probing rounds in
    which every key appears once."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    start = np.r_[0, np.flatnonzero(sk[1:] != sk[:-1]) + 1] if len(sk) else np.zeros(0, np.int64)
    first = np.zeros(len(sk), np.int64)
    first[start] = start
    first = np.maximum.accumulate(first) if len(sk) else first
    rank = np.empty(len(keys), np.int64)
    rank[order] = np.arange(len(sk)) - first
    return rank


def none_buses(topo) -> np.ndarray:
    """Internal buses that take no part (their voltages read NaN)."""
    return np.flatnonzero(topo.bus_type == M.NONE)
