"""The model cache: the one owner of everything the solver derives from a world's columns.

It holds a dirty set of the world (``World.watch()``, world/dirty.py) and, per topology seen
lately (up to :data:`MODEL_CACHE`), a :class:`Model`: the topology, branch admittances and bus
shunts, the Ybus pattern and values, the injection state, the Newton solvers (with their KLU
analyses and factors), the distributed-slack plan, the generator splits and the start voltages.
Across topologies it keeps the per-unit branch parameters and the injection parts no topology
changes.  :meth:`ModelCache.prepare` alone decides from the dirty set what to redo; the level is
the strongest schema class (``Column.affects``) among the written columns:

- ``full``         a ``topo`` column, rows added or removed, or a network value (sn_mva, f_hz)
                   changed: the model of the new topology (a cached one when its topology
                   columns are equal to the world's, else a new one);
- ``admittance``   an ``adm`` column: branch admittances, bus shunts and Ybus values refreshed;
- ``incremental``  an ``inj`` column: the injection parts of the written columns;
- ``none``         nothing the power flow reads.

Each cached model keeps the columns written since it was last current (``pending``) and
catches up when it becomes current again; rows added or removed, or a network value change,
drop every cached model.
"""
from __future__ import annotations

import numpy as np

from gridtape.world.schema import KIND_ORDER, spec

from .branches import BRANCH_KINDS, fill_admittances
from .chartables import CHAR_KINDS
from .modelopts import as_model_options
from .injections import SHARED_COLS, InjectionState, forget
from .topology import NONE, build_topology
from .ybus import ybus_build, ybus_fill

MODEL_CACHE = 8  # models of the last topologies kept (a topology step back reuses its model)
LEVELS = ("none", "incremental", "admittance", "full")
_RANK = {"none": 0, "inj": 1, "adm": 2, "topo": 3}


class Model:
    """Everything derived from one topology (see the module docstring)."""

    __slots__ = ("topo", "ysh", "indptr", "indices", "pos", "ydata", "none", "inj_state", "solvers", "pending",
                 "snap", "derived", "v0", "buffers")

    def __init__(self, topo, ysh, indptr, indices, pos, ydata, inj_state, snap):
        self.topo, self.ysh, self.indptr, self.indices, self.pos = topo, ysh, indptr, indices, pos
        self.ydata, self.inj_state, self.snap = ydata, inj_state, snap
        self.none = np.flatnonzero(topo.bus_type == NONE)
        self.solvers = []  # (key, solver): Newton solvers of this model's Ybus pattern
        self.pending = set()  # (kind, column) written since this model was last current
        self.derived = {}  # name -> (static table version, value): slack plan, generator splits
        self.v0 = {}  # init -> start voltages (cleared by every change)
        self.buffers = {}  # the result arrays' buffers (result_arrays.compute_arrays)

    def derive(self, name, make):
        """``make()`` kept while the generator table it reads is the same."""
        ver = self.inj_state.static_version
        hit = self.derived.get(name)
        if hit is None or hit[0] != ver:
            hit = self.derived[name] = (ver, make())
        return hit[1]

    def solver(self, key, make):
        """The solver under ``key`` (a tuple of arrays and plain values, compared by content)."""
        for k, s in self.solvers:
            if len(k) == len(key) and all(_same(a, b) for a, b in zip(k, key)):
                return s
        if len(self.solvers) > 8:
            del self.solvers[1:]  # the first one is (usually) the base solver of the model's bus types
        s = make()
        self.solvers.append((key, s))
        return s


def _snap(col):
    """What a model keeps of a topology column to know it again: its bytes (equal bytes are equal
    values), a copy of a str column."""
    return col.copy() if col.dtype.hasobject else col.tobytes()


_TOPO_COLUMNS = {kind: tuple(c.name for c in spec(kind).columns if c.affects == "topo") for kind in KIND_ORDER}


def _same(a, b):
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape \
            and np.array_equal(a, b)
    return a == b


class ModelCache:
    """The models of one world (see the module docstring).  ``model`` is the current one."""

    def __init__(self, world, trafo_model: str = "t"):
        self.world = world
        self.trafo_model = trafo_model
        self.dirty = world.watch()
        self.models: list = []  # least recently used first
        self.model: Model | None = None
        self.shared: dict = {}  # injection parts no topology changes (injections.forget prunes it)
        self.branch_params: dict = {}  # per-unit branch parameters (branches.fill_admittances)
        self._affects: dict = {}
        self._ranks: dict = {}  # (kind, column) -> rank of its schema class in LEVELS
        self._params: dict = {}

    # --- the level ---------------------------------------------------------------------------
    def affects(self, key) -> str:
        """The schema class of column ``key`` = (kind, column)."""
        a = self._affects.get(key)
        if a is None:
            sp = spec(key[0])
            a = self._affects[key] = sp[key[1]].affects if key[1] in sp else "topo"
        return a

    def level(self) -> str:
        """What the next :meth:`prepare` will redo, from the dirty set (nothing is changed)."""
        d = self.dirty
        if self.model is None or d.rows or d.network:
            return "full"
        rank = 0
        ranks = self._ranks
        for key in d.cols:
            r = ranks.get(key)
            if r is None:
                r = self._rank(key)
            if r > rank:
                if r == 3:
                    return "full"
                rank = r
        return LEVELS[rank]

    # --- upkeep ------------------------------------------------------------------------------
    def prepare(self) -> str:
        """Bring the current model up to the world; return the level done."""
        d = self.dirty
        if self.model is not None and not (d.cols or d.rows or d.network):
            return "none"
        lvl = self.level()
        cols, rows, network = d.cols, d.rows, d.network
        d.cols, d.rows, d.network = set(), set(), False  # (the sets handed over, not copied)
        if lvl == "incremental" and len(self.models) == 1 and not self.model.pending \
                and cols.isdisjoint(SHARED_COLS):
            # the common step (injection writes, one topology): only the written injection parts
            try:
                self.model.inj_state.refresh(self.world, cols)
            except BaseException:
                self._reset()
                raise
            self.model.v0.clear()
            return lvl
        try:
            self._upkeep(lvl, cols, rows, network)
        except BaseException:
            self._reset()
            raise
        return lvl

    def _reset(self):
        """Nothing half-done is kept: the next prepare starts from everything."""
        self.model = None
        self.models.clear()
        self.shared.clear()
        self.branch_params.clear()
        self.dirty.network = True

    def _upkeep(self, lvl, cols, rows, network):
        if rows or network:
            self.models.clear()
            self.shared.clear()
            self.branch_params.clear()
        else:
            forget(self.shared, cols, ())
            # (branch parameters are read from "adm" and "topo" columns only)
            if lvl in ("admittance", "full") and self.branch_params and \
                    any(k[0] in BRANCH_KINDS and self._param_column(k) or k[0] in CHAR_KINDS for k in cols):
                self.branch_params.clear()
            for m in self.models:
                if m is not self.model or lvl != "incremental":
                    m.pending |= cols
        if lvl == "full":
            m = self._find()
            if m is None:
                m = self._build()
                while len(self.models) >= max(MODEL_CACHE, 1):
                    self.models.pop(0)
                self.models.append(m)
            else:
                self.models.remove(m)
                self.models.append(m)  # most recently used last
                self._catch_up(m)
            self.model = m
        elif lvl == "incremental":  # injection columns only: nothing else to catch up
            m = self.model
            if m.pending:
                m.pending |= cols
                self._catch_up(m)
            else:
                m.inj_state.refresh(self.world, cols)
        else:
            self._catch_up(self.model)
        self.model.v0.clear() if lvl != "none" else None

    def _param_column(self, key):
        """Whether the kept branch parameters read column ``key`` (not a bus, not in_service)."""
        p = self._params.get(key)
        if p is None:
            c = spec(key[0]).by_name.get(key[1])
            p = self._params[key] = c is None or (c.ref is None and c.name != "in_service" and c.affects != "none")
        return p

    def _find(self):
        """A cached model whose topology columns equal the world's (most recent first): equal
        bytes (a str column: equal values; see :func:`_snap`)."""
        tabs = self.world.tables
        now = {}  # (kind, column) -> the world's column as its snapshot compares (made once)
        ranks = self._ranks
        for m in reversed(self.models):
            snap = m.snap
            topo_cols = [k for k in m.pending if (ranks.get(k) or self._rank(k)) == 3]
            for k in topo_cols:
                old = snap.get(k)
                if old is None:
                    break
                cur = now.get(k)
                if cur is None:
                    cur = now[k] = _snap(tabs[k[0]].cols[k[1]])
                if not (cur == old if type(cur) is bytes else np.array_equal(cur, old)):
                    break
            else:
                m.pending.difference_update(topo_cols)
                return m
        return None

    def _rank(self, key) -> int:
        r = self._ranks[key] = _RANK.get(self.affects(key), 3)
        return r

    def _catch_up(self, m):
        """Model ``m`` after the writes in its ``pending`` set (no topology column among them)."""
        pending = m.pending
        if not pending:
            return
        aff = self.affects
        for k in pending:
            if aff(k) == "adm":
                self._refill(m)
                break
        m.inj_state.refresh(self.world, pending)
        pending.clear()

    def _build(self) -> Model:
        """A new model of the world's current topology."""
        w = self.world
        opts = as_model_options(self.trafo_model)
        topo = build_topology(w, opts) if opts.neglect_open_switch_branches else build_topology(w)
        br = topo.branches
        ysh = fill_admittances(w, topo, self.trafo_model, self.branch_params)
        indptr, indices, pos, ydata = ybus_build(topo.nb, br.f, br.t, br.yff, br.yft, br.ytf, br.ytt, ysh)
        snap = {}
        tabs = w.tables
        for kind, names in _TOPO_COLUMNS.items():
            t = tabs.get(kind)
            if t is not None and len(t):
                for name in names:
                    snap[(kind, name)] = _snap(t.cols[name])
        inj_state = InjectionState(w, topo, self.shared)
        inj_state.refresh(w, None)
        return Model(topo, ysh, indptr, indices, pos, ydata, inj_state, snap)

    def _refill(self, m):
        """Admittance values of model ``m`` from the world's current admittance columns."""
        br = m.topo.branches
        m.ysh = fill_admittances(self.world, m.topo, self.trafo_model, self.branch_params)
        ybus_fill(m.ydata, *m.pos, br.yff, br.yft, br.ytf, br.ytt, m.ysh)
