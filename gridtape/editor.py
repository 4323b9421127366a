"""GridEditor: atomic topology edits, ``with grid.edit(author=..., message=...) as e:``.

Inside the block, additions, removals and property writes change the live world at once (so the
block can read what it just did) and are recorded as one journal transaction: each goes through
the grid's one write path (world/changes.py ``apply``), and the block keeps what each did.  If the
block raises, the inverse changes are applied latest first (ids, values, row order, ``next_id``
and network values come back), the journal transaction is dropped and the results of the last
solve come back: nothing of the block remains.  On a clean exit the transaction is committed and
made durable.
"""
from __future__ import annotations

import numpy as np

from gridtape.errors import BadReferenceError, DependencyError, JournalError, SchemaError, TopologyError
from gridtape.world.changes import AddRows, Applied, RemoveRows, SetCol, apply
from gridtape.world.schema import BUS_REFS, SWITCH_ET

from .handles import Handle


class GridEditor:
    """Records one transaction; use it through ``with grid.edit() as e:``."""

    def __init__(self, grid, author=None, message=None):
        self._grid = grid
        self.author = author
        self.message = message
        self._state = None
        self.tx = None
        self.done = []  # what the block did, oldest first: Applied, or (kind, ids, field, old) of a set
        self.events = 0  # events recorded in the block
        self._open = False
        self._internal = False  # undo/redo transactions do not go on the undo stack

    # --- context protocol ------------------------------------------------------------------
    def __enter__(self) -> "GridEditor":
        g = self._grid
        g._check_writable()
        if g._editor is not None:
            raise JournalError("an edit block is already open on this grid")
        eng = g._engine
        d = g._since_solve
        pol = eng.polar()  # (the result arrays of the restored voltages read it again)
        self._state = (g._results, g._last, None if eng.V is None else eng.V.copy(), eng.converged,
                       eng.solved, eng.iterations, eng.norm, eng.algorithm,
                       (set(d.cols), set(d.rows), d.network), None if pol is None else (pol[0].copy(), pol[1].copy()))
        j = g.journal
        if j is not None:
            self.tx = j.begin(author=self.author, message=self.message)
        g._editor = self
        self._open = True
        return self

    def __exit__(self, exc_type, exc, tb):
        g = self._grid
        g._editor = None
        self._open = False
        if exc_type is not None:
            self._rollback()
            return False
        j = g.journal
        if j is not None:
            j.commit()
            if self.done and not self._internal:
                g._history.pushed(self.tx)
            g._history.committed(self.events + 1)
        return False

    def _rollback(self):
        g = self._grid
        w = g.world
        for d in reversed(self.done):
            if type(d) is Applied:
                apply(w, d.inverse(), check=False)
            else:
                kind, ids, field, old = d
                apply(w, [SetCol(kind, ids, field, old)], check=False)
        (g._results, g._last, V, conv, solved, its, norm, alg, since, pol) = self._state
        d = g._since_solve  # the world is as it was: so is what changed since the last solve
        d.cols, d.rows, d.network = since
        eng = g._engine
        if eng.solved or V is not None:
            eng.prepare()  # the model of the restored world (same order as before the block)
            eng.converged, eng.solved, eng.iterations, eng.norm, eng.algorithm = conv, solved, its, norm, alg
            eng.restore(V, pol)
        j = g.journal
        if j is not None and j.in_transaction:
            j.rollback()

    def _check(self):
        if not self._open:
            raise JournalError("the edit block is closed; open a new one with grid.edit()")

    def _apply(self, changes) -> Applied:
        """``changes`` applied through the grid's write path, kept for the rollback."""
        return self._grid._apply(changes)

    # --- additions ----------------------------------------------------------------------------
    def add(self, kind: str, _id=None, **columns):
        """Add one element of ``kind`` with the given columns (defaults for the rest); a new id is
        assigned unless ``_id`` names an unused one.  Returns ``(id, handle)``."""
        self._check()
        ids = None if _id is None else [_id]
        done = self._apply([AddRows(kind, {k: [v] for k, v in columns.items()}, ids)])
        eid = int(done.done[0].ids[0])
        return eid, Handle(self._grid, kind, eid)

    def add_bus(self, vn_kv, name=None, **kw):
        return self.add("bus", vn_kv=vn_kv, name=name, **kw)

    def add_line(self, from_bus, to_bus, length_km=1.0, std_type=None, name=None, **kw):
        """A line with explicit parameters (r_ohm_per_km, x_ohm_per_km, c_nf_per_km, max_i_ka, ...)
        or a pandapower standard type (``std_type="NA2XS2Y 1x240 RM/25 12/20 kV"``)."""
        if std_type is not None:
            kw = {**_std_type("line", std_type), **kw}
        return self.add("line", from_bus=from_bus, to_bus=to_bus, length_km=length_km, std_type=std_type,
                        name=name, **kw)

    def add_trafo(self, hv_bus, lv_bus, std_type=None, name=None, **kw):
        if std_type is not None:
            kw = {**_std_type("trafo", std_type), **kw}
        return self.add("trafo", hv_bus=hv_bus, lv_bus=lv_bus, std_type=std_type, name=name, **kw)

    def add_load(self, bus, p_mw=0.0, q_mvar=0.0, name=None, **kw):
        return self.add("load", bus=bus, p_mw=p_mw, q_mvar=q_mvar, name=name, **kw)

    def add_sgen(self, bus, p_mw=0.0, q_mvar=0.0, name=None, **kw):
        return self.add("sgen", bus=bus, p_mw=p_mw, q_mvar=q_mvar, name=name, **kw)

    def add_gen(self, bus, p_mw=0.0, vm_pu=1.0, name=None, **kw):
        return self.add("gen", bus=bus, p_mw=p_mw, vm_pu=vm_pu, name=name, **kw)

    def add_ext_grid(self, bus, vm_pu=1.0, va_degree=0.0, name=None, **kw):
        return self.add("ext_grid", bus=bus, vm_pu=vm_pu, va_degree=va_degree, name=name, **kw)

    def add_shunt(self, bus, q_mvar, p_mw=0.0, vn_kv=None, name=None, **kw):
        if vn_kv is None:  # pandapower's default: the bus's nominal voltage
            vn_kv = self._grid.world["bus"].get(bus, "vn_kv")
        return self.add("shunt", bus=bus, q_mvar=q_mvar, p_mw=p_mw, vn_kv=vn_kv, name=name, **kw)

    def add_storage(self, bus, p_mw=0.0, max_e_mwh=float("nan"), name=None, **kw):
        return self.add("storage", bus=bus, p_mw=p_mw, max_e_mwh=max_e_mwh, name=name, **kw)

    def add_switch(self, bus, element, et="b", closed=True, name=None, **kw):
        """``et``: "b" (bus-bus), "l" (line), "t" (trafo), "t3" (trafo3w); a handle is accepted
        as ``element`` (its kind gives ``et``)."""
        if isinstance(element, Handle):
            et = SWITCH_ET.get(element.kind, et)
            element = element.id
        return self.add("switch", bus=bus, element=element, et=et, closed=closed, name=name, **kw)

    # --- removal ------------------------------------------------------------------------------
    def remove(self, handle, cascade: bool = False):
        """Remove an element.  A bus with elements attached is refused (TopologyError listing
        them) unless ``cascade=True``, which removes them first (each a recorded removal)."""
        self._check()
        kind, eid = _element(handle)
        if not isinstance(cascade, (bool, np.bool_)):
            raise SchemaError(f"cascade takes True or False, not {cascade!r} (remove() takes one element: a "
                              "handle or a (kind, id) pair)", table=kind, row=eid, field="cascade")
        g = self._grid
        w = g.world
        if eid not in w[kind]:
            raise BadReferenceError(f"no {kind} with id {eid}", table=kind, row=eid)
        attached = _attached(w, kind, eid)
        if attached and not cascade and kind == "bus":
            names = ", ".join(f"{k} {i}" for k, i in attached[:8])
            raise TopologyError(f"{kind} {eid} still has {len(attached)} element(s) attached ({names}); "
                                "remove them first or pass cascade=True", table=kind, row=eid)
        order = []
        for k, i in attached:
            _removals(w, k, i, order)
        _removals(w, kind, eid, order)
        self._apply([RemoveRows(k, [i]) for k, i in order])

    # --- writes -------------------------------------------------------------------------------
    def set(self, kind, ids, field, values):
        """Vectorized write inside the block (one event per element)."""
        self._check()
        self._grid.set(kind, ids, field, values)


def _element(handle):
    """(kind, id) of what ``remove()`` was given: a handle or a (kind, id) pair."""
    import numbers

    if isinstance(handle, Handle):
        return handle.kind, handle.id
    if isinstance(handle, (tuple, list)) and len(handle) == 2 and isinstance(handle[0], str) \
            and isinstance(handle[1], numbers.Integral) and not isinstance(handle[1], (bool, np.bool_)):
        return handle[0], int(handle[1])
    raise SchemaError(f"remove() takes a handle (grid.line(3, 4)) or a (kind, id) pair (('bus', 0)), not "
                      f"{handle!r}", table=handle if isinstance(handle, str) else None, field="handle")


def _removals(w, kind, eid, order):
    """Append ``(kind, eid)`` to ``order`` after the switches of a removed branch (they go with it);
    each element once."""
    if (kind, eid) in order:
        return
    if kind != "bus":
        for k, i in _attached(w, kind, eid):
            _removals(w, k, i, order)
    order.append((kind, eid))


def _attached(w, kind, eid):
    """Elements that refer to ``kind`` ``eid`` (buses: every element on it; branches: their
    switches), from the schema's references (BUS_REFS) and the switch element-type map."""
    out = []
    if kind == "bus":
        for k, cols in BUS_REFS.items():
            t = w[k]
            if not len(t):
                continue
            hit = np.zeros(len(t), bool)
            for c in cols:
                hit |= t.cols[c] == eid
            if k == "switch":
                hit |= (t.cols["et"] == SWITCH_ET["bus"]) & (t.cols["element"] == eid)
            out += [(k, int(i)) for i in t.ids[hit]]
    elif kind in SWITCH_ET:
        sw = w["switch"]
        if len(sw):
            hit = (sw.cols["et"] == SWITCH_ET[kind]) & (sw.cols["element"] == eid)
            out += [("switch", int(i)) for i in sw.ids[hit]]
    return out


def _std_type(kind: str, name: str) -> dict:
    """Parameters of a pandapower standard type (pandapower is asked when it is installed)."""
    try:
        from pandapower import create_empty_network
        from pandapower.std_types import load_std_type
    except ImportError:
        raise DependencyError("std_type needs pandapower (pip install pandapower); or give the parameters",
                              table=kind, field="std_type") from None
    net = create_empty_network()
    try:
        data = load_std_type(net, name, element=kind)
    except Exception:
        raise SchemaError(f"unknown {kind} standard type {name!r}", table=kind, field="std_type") from None
    from gridtape.world.schema import spec

    sp = spec(kind)
    return {k: v for k, v in data.items() if k in sp and k != "std_type"}
