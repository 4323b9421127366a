"""Automatic checkpoints written off the main thread.

A :class:`BackgroundSnapshot` owns a private copy of a world (taken on the caller's thread: no
array is shared with the live world) and writes it with :func:`snapshot.write_snapshot` in a
thread of its own; pyarrow, hashlib and the file writes release the GIL for most of that work.
The thread never touches a journal: the caller records the ``snapshot`` event (with the seq the
copy covers) on its own thread once :meth:`done` is true, or records nothing when :attr:`error`
is set.  ``write_snapshot`` writes the manifest last, so a write that fails part-way leaves no
snapshot that a journal event could name (:func:`snapshot.clean` removes its files).
"""
from __future__ import annotations

import atexit
import threading
import weakref

from gridtape.world.world import World

from . import snapshot as _snapshot

_WAITING = weakref.WeakSet()  # owners (grids) with a write in flight, settled at interpreter exit
_HOOKED = []


def frozen_copy(world: World) -> World:
    """A copy of ``world`` holding what a snapshot stores (network values and every table: ids,
    columns, extra columns, next id), sharing no array with it.  Cheaper than ``World.copy``:
    no empty tables are built first and no version counters are copied (the copy is never solved
    or edited)."""
    w = World.__new__(World)
    w.sn_mva, w.f_hz, w.name = world.sn_mva, world.f_hz, world.name
    w.tables = {k: t.copy() for k, t in world.tables.items()}
    return w


class BackgroundSnapshot:
    """One snapshot of a world copy being written by a thread (``gridtape-checkpoint``).

    ``covers`` is the journal seq the copy reflects; after :meth:`wait` (or once :meth:`done`),
    exactly one of ``manifest`` (the written snapshot's) and ``error`` (what the write raised)
    is set."""

    def __init__(self, world: World, directory, *, covers: int, parent=None, author=None, message=None):
        self.covers = int(covers)
        self.directory = directory
        self.manifest = None
        self.error = None
        kw = dict(parent=parent, seq=self.covers, author=author, message=message)
        self._thread = threading.Thread(target=self._run, args=(world, directory, kw), name="gridtape-checkpoint")
        self._thread.start()

    def _run(self, world, directory, kw):
        try:
            self.manifest = _snapshot.write_snapshot(world, directory, **kw)
        except BaseException as e:  # noqa: BLE001 - handed to the owner's thread by wait()
            self.error = e

    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self) -> None:
        self._thread.join()


def settle_at_exit(owner) -> None:
    """Have ``owner._settle_checkpoint()`` called at interpreter exit (before the journals' own
    exit flush) if ``owner`` is still alive then."""
    if not _HOOKED:
        atexit.register(_settle_all)  # registered after the journal's hook: runs before it
        _HOOKED.append(True)
    _WAITING.add(owner)


def forget(owner) -> None:
    _WAITING.discard(owner)


def _settle_all():
    for owner in list(_WAITING):
        try:
            owner._settle_checkpoint()
        except Exception:  # noqa: BLE001 - at exit, record what can be recorded
            pass
