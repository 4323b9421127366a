"""Automatic checkpoints written off the main thread.

A :class:`BackgroundSnapshot` owns a private copy of a world (taken on the caller's thread: no
array is shared with the live world) and has it written with :func:`snapshot.write_snapshot` by
the process's checkpoint thread (``gridtape-checkpoint``, started once: handing it a job costs the
caller a few microseconds, starting a thread ~100).  pyarrow, hashlib and the file writes release
the GIL for much of the work; between encoding steps the writer sleeps briefly
(:data:`PAUSE_S`), so a caller waiting for the GIL gets it within one step.
The thread never touches a journal: the caller records the ``snapshot`` event (with the seq the
copy covers) on its own thread once :meth:`done` is true, or records nothing when :attr:`error`
is set.  ``write_snapshot`` writes the manifest last, so a write that fails part-way leaves no
snapshot that a journal event could name (:func:`snapshot.clean` removes its files).
"""
from __future__ import annotations

import atexit
import queue
import threading
import time
import weakref

from gridtape.world.world import World

from . import snapshot as _snapshot

#: the writer sleeps this long between encoding steps, so that a main thread waiting for the GIL
#: gets it within one step instead of after the interpreter's switch interval (5 ms)
PAUSE_S = 50e-6
_WAITING = weakref.WeakSet()  # owners (grids) with a write in flight, settled at interpreter exit
_HOOKED = []
_JOBS = queue.SimpleQueue()
_WORKER = [None]


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
    """One snapshot of a world copy, written by the checkpoint thread.

    ``covers`` is the journal seq the copy reflects; after :meth:`wait` (or once :meth:`done`),
    exactly one of ``manifest`` (the written snapshot's) and ``error`` (what the write raised)
    is set."""

    def __init__(self, world: World, directory, *, covers: int, parent=None, author=None, message=None):
        self.covers = int(covers)
        self.directory = directory
        self.manifest = None
        self.error = None
        self._job = (world, directory, dict(parent=parent, seq=self.covers, author=author, message=message,
                                            pause=_pause))
        self._done = threading.Event()
        w = _WORKER[0]
        if w is None or not w.is_alive():  # the first job of this process (or of a forked child)
            w = _WORKER[0] = threading.Thread(target=_work, name="gridtape-checkpoint", daemon=True)
            w.start()
        _JOBS.put(self)

    def _run(self):
        world, directory, kw = self._job
        self._job = None
        try:
            self.manifest = _snapshot.write_snapshot(world, directory, **kw)
        except BaseException as e:  # noqa: BLE001 - handed to the owner's thread by wait()
            self.error = e
        finally:
            self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self) -> None:
        self._done.wait()


def _pause():
    time.sleep(PAUSE_S)


def _work():
    """The checkpoint thread: writes the snapshots handed to it, one at a time, in order.  A
    daemon: a job still queued at interpreter exit is waited for by :func:`_settle_all`."""
    while True:
        job = _JOBS.get()
        _pause()  # the caller that queued the job keeps the GIL a moment longer
        job._run()


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
