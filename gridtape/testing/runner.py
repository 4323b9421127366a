"""Running drawn changes on a grid through the public API, and printing them as gridtape code.

A drawn step is one of:

- a ``SetCol`` (world/changes.py): a property write, run as ``grid.set(kind, ids, field, values)``
  (one transaction);
- an :class:`EditBlock` (a list of ``AddRows`` / ``RemoveRows`` / ``SetCol``): run as one
  ``with grid.edit() as e:`` block (``e.add``, ``e.remove``, ``e.set``);
- :data:`SOLVE`, :data:`UNDO`, :data:`REDO`: ``grid.solve()``, ``grid.undo()``, ``grid.redo()``.

:func:`run` applies one step or a list of them; :func:`to_code` gives the same as Python source a
user can paste.  :class:`Sim` follows a world through steps while they are being drawn (so each
drawn step is valid where it lands, and stays valid while hypothesis shrinks the sequence).
"""
from __future__ import annotations

import math

import numpy as np

from gridtape.world.changes import AddRows, RemoveRows, SetCol, apply


class Op:
    """A step without a change: ``solve``, ``undo`` or ``redo``."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name.upper()

    def __eq__(self, other):
        return isinstance(other, Op) and other.name == self.name

    def __hash__(self):
        return hash(self.name)


SOLVE, UNDO, REDO = Op("solve"), Op("undo"), Op("redo")


class EditBlock(list):
    """The changes of one ``grid.edit()`` block, in order (what ``edits()`` draws)."""

    def __init__(self, changes=(), message=None):
        super().__init__(changes)
        self.message = message

    def __repr__(self):
        return f"EditBlock({list.__repr__(self)}, message={self.message!r})"


class Sequence(list):
    """Steps drawn by ``edit_sequences()``: run them with ``seq.run(grid)``, print ``seq.code()``."""

    def run(self, grid):
        return run(grid, self)

    def code(self, name="grid"):
        return to_code(self, name)


# --- running ---------------------------------------------------------------------------------------
def run(grid, step):
    """Apply ``step`` (a SetCol, an EditBlock, SOLVE/UNDO/REDO, or a list of steps) to ``grid``
    through its public API.  Returns the last step's result (a SolveReport for a solve)."""
    if isinstance(step, SetCol):
        return grid.set(step.kind, _ids(step.ids), step.field, _values(step.values))
    if isinstance(step, EditBlock):
        with grid.edit(message=step.message or "drawn edit") as e:
            for c in step:
                run_in(e, c)
        return None
    if isinstance(step, Op):
        return getattr(grid, step.name)()
    if isinstance(step, (AddRows, RemoveRows)):
        return run(grid, EditBlock([step]))
    out = None
    for s in step:
        out = run(grid, s)
    return out


def run_in(e, c):
    """Apply one change (AddRows / RemoveRows / SetCol) inside the open edit block ``e``."""
    if isinstance(c, AddRows):
        for i in range(_nrows(c)):
            e.add(c.kind, **{k: _scalar(v[i]) for k, v in c.columns.items()})
    elif isinstance(c, RemoveRows):
        for i in _ids(c.ids):
            e.remove((c.kind, i))
    elif isinstance(c, SetCol):
        e.set(c.kind, _ids(c.ids), c.field, _values(c.values))
    else:
        raise TypeError(f"not a change of an edit block: {c!r}")


def _nrows(c):
    return len(next(iter(c.columns.values()))) if c.columns else 0


def _ids(ids):
    return [int(i) for i in np.atleast_1d(ids)]


def _values(v):
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_scalar(x) for x in v]
    return _scalar(v)


def _scalar(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


# --- printing as code ------------------------------------------------------------------------------
def to_code(step, name="grid") -> str:
    """Python source that does what ``run(grid, step)`` does, for a grid called ``name``."""
    if isinstance(step, SetCol):
        return f"{name}.set({step.kind!r}, {_lit(_ids(step.ids))}, {step.field!r}, {_lit(_values(step.values))})"
    if isinstance(step, EditBlock):
        lines = [f"with {name}.edit(message={(step.message or 'drawn edit')!r}) as e:"]
        for c in step:
            if isinstance(c, AddRows):
                for i in range(_nrows(c)):
                    kw = ", ".join(f"{k}={_lit(_scalar(v[i]))}" for k, v in c.columns.items())
                    lines.append(f"    e.add({c.kind!r}, {kw})")
            elif isinstance(c, RemoveRows):
                lines += [f"    e.remove(({c.kind!r}, {i}))" for i in _ids(c.ids)]
            else:
                lines.append(f"    e.set({c.kind!r}, {_lit(_ids(c.ids))}, {c.field!r}, {_lit(_values(c.values))})")
        return "\n".join(lines)
    if isinstance(step, Op):
        return f"{name}.{step.name}()"
    if isinstance(step, (AddRows, RemoveRows)):
        return to_code(EditBlock([step]), name)
    return "\n".join(to_code(s, name) for s in step)


def _lit(v) -> str:
    """A Python literal for ``v`` that evaluates back to it (floats exactly; nan/inf spelled out)."""
    if isinstance(v, list):
        return "[" + ", ".join(_lit(x) for x in v) + "]"
    if isinstance(v, float):
        if math.isnan(v):
            return 'float("nan")'
        if math.isinf(v):
            return 'float("inf")' if v > 0 else 'float("-inf")'
    return repr(v)


# --- following a world while drawing ---------------------------------------------------------------
class Sim:
    """A scratch copy of a world that drawn steps are applied to, with its own undo/redo stacks of
    world copies (what the live grid's undo and redo will do to the same steps)."""

    def __init__(self, world):
        self.world = world.copy()
        self.done, self.undone = [], []

    def step(self, step):
        if isinstance(step, Op):
            if step is SOLVE or step == SOLVE:
                return
            src, dst = (self.done, self.undone) if step == UNDO else (self.undone, self.done)
            if src:
                dst.append(self.world)
                back = src.pop()
                # ids are never reused: an undone add keeps its id taken (the live world's next_id
                # only grows), so the restored copy continues from the larger counter
                for kind, t in back.tables.items():
                    cur = self.world.tables.get(kind)
                    if cur is not None and cur.next_id > t.next_id:
                        t.next_id = cur.next_id
                self.world = back
            return
        before = self.world.copy()
        changes = [step] if isinstance(step, SetCol) else list(step)
        apply(self.world, [_plain(c) for c in changes])
        self.done.append(before)
        self.undone = []


def _plain(c):
    """A fresh change value (apply() fills in what it replaced; drawn values stay untouched)."""
    if isinstance(c, SetCol):
        return SetCol(c.kind, _ids(c.ids), c.field, _values(c.values))
    if isinstance(c, AddRows):
        return AddRows(c.kind, {k: list(v) for k, v in c.columns.items()})
    return RemoveRows(c.kind, _ids(c.ids))
