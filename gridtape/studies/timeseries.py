"""``grid.timeseries(profiles, ...)``: a time series or a scenario sweep over one base point.

The grid's own world, results and undo stacks are left as they are: the steps run on a private
copy of the world (or on workers' copies).  With a journal, the run is one ``study`` event (see
gridtape/studies/record.py).
"""
from __future__ import annotations

import os
import sys
import time

from gridtape.errors import JournalError, SchemaError

from .outputs import parse_outputs
from .profiles import read_profiles
from .result import result_from_sink
from .sink import MemorySink, ParquetSink

CHUNK = 256  # steps per chunk (a task of an executor; a Parquet flush unit of a streamed run)
OVERLAP = 8  # warm-up steps before a chunk of a chained series run on an executor
STEP_VALUES = 2_000_000  # output values per chunk in one process (16 MB; case9241pegase: 36 steps)
OPTIONS = ("tolerance_mva", "max_iteration", "init", "qlim", "distributed_slack", "reuse_lu")
#: the solver options ``grid.timeseries(...)`` takes for one run (the grid's own otherwise)
RUN_OPTIONS = ("qlim", "tolerance_mva", "max_iteration", "init", "distributed_slack")


def grid_options(grid) -> dict:
    """The solver options of ``grid`` that a study's solves use (and records)."""
    return {"tolerance_mva": grid.tolerance_mva, "max_iteration": grid.max_iteration, "init": grid.init,
            "qlim": grid.qlim, "distributed_slack": grid.distributed_slack, "reuse_lu": grid.reuse_lu,
            "trafo_model": grid._engine.trafo_model}


def run_options(grid, given: dict) -> dict:
    """The solver options of a run: the grid's (its constructor's), with ``given`` (the ones
    passed to ``timeseries``, None: not given) on top, each validated as ``grid.solve`` does."""
    from gridtape import options as O

    opts = grid_options(grid)
    for k, v in given.items():
        if k not in RUN_OPTIONS:
            raise TypeError(f"timeseries() got an unexpected keyword argument {k!r}")
        if v is not None:
            opts[k] = O.check(k, v)
    return opts


def chunks_of(n, size):
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def _progress_bar(progress, total):
    """A tqdm bar (None when not wanted): ``progress=True`` always; None: when stderr is a
    terminal, shown only once the run has taken a second."""
    if progress is False or (progress is None and not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        if progress:
            raise SchemaError("progress=True needs tqdm (pip install gridtape[progress])", field="progress") from None
        return None
    return tqdm(total=total, unit="step", delay=0 if progress else 1.0, file=sys.stderr, leave=bool(progress))


def run_timeseries(grid, profiles, outputs=None, *, independent=False, executor=None, progress=None,
                   out_dir=None, chunk_size=None, overlap=None, record=True, options=None):
    """See :meth:`gridtape.PowerGrid.timeseries`."""
    world = grid.world
    if grid._editor is not None:  # the edit block's changes are not history yet: no base point
        raise JournalError("timeseries() inside an edit block: commit it first",
                           file=None if grid.journal is None else grid.journal.path)
    prof = _read(profiles, world)  # validated before anything runs or is recorded
    outs = parse_outputs(outputs, world)
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise SchemaError(f"executor must be a concurrent.futures executor (with submit()) or None, not "
                          f"{executor!r}", field="executor")
    opts = dict(grid_options(grid) if options is None else options)
    size = _count(CHUNK if chunk_size is None else chunk_size, 1, "chunk_size")
    ov = _count(OVERLAP if overlap is None else overlap, 0, "overlap")
    j = grid.journal if record else None
    if j is not None and (grid._read_only or j.read_only):
        j = None  # a point of history or a read-only journal: run, record nothing
    if j is not None:
        if j.in_transaction:
            raise JournalError("timeseries() inside an open transaction: commit it first", file=j.path)
        from .record import default_dir

        j.flush()
        base_seq = j.last_seq
        if out_dir is None:
            out_dir = default_dir(j, base_seq)
        stored = _store_profiles(j, prof)  # while the steps run: nothing else uses the journal meanwhile
    n = len(prof)
    made = None
    done = False  # the run and (with a journal) its study event
    try:
        base_copy = world.copy()
        made = _Made(out_dir, outs) if out_dir is not None else None
        sink = ParquetSink(str(out_dir), outs, base_copy, prof.index) if out_dir is not None \
            else MemorySink(outs, base_copy, prof.index)
        res = _run(sink, world, base_copy, prof, outs, opts, independent, executor, progress, size, ov, n)
        if j is not None:
            from .record import record_study

            stored.join()
            if stored.error is not None:
                raise stored.error
            res.seq = record_study(j, base_seq, stored.stored, prof, outs, opts, independent, size, ov, executor, res)
        done = True
        return res
    finally:
        if not done:  # a failed run leaves nothing behind: its output files, its stored profiles
            if made is not None:
                made.discard()
            if j is not None:
                stored.join()
                if stored.stored is not None:
                    from .store import discard_profiles

                    discard_profiles(j, stored.stored)


def _run(sink, world, base_copy, prof, outs, opts, independent, executor, progress, size, ov, n):
    """The steps of a run into ``sink``; the result (its files closed)."""
    bar = _progress_bar(progress, n)
    tick = None if bar is None else bar.update
    t0 = time.perf_counter()
    try:
        if executor is None:
            from .runner import Runner

            runner = Runner(world.copy(), outs, opts)
            # in one process the chunks only bound memory (the runner goes on from one to the next):
            # about STEP_VALUES output values a chunk, whatever chunk_size says
            width = sum(runner.extract.sizes) or 1
            block = max(8, min(size, STEP_VALUES // width))
            for i, (a, b) in enumerate(chunks_of(n, block)):
                sink.add(runner.run(prof, a, b, independent, fresh=i == 0, progress=tick, dest=sink.dest(a, b)))
        else:
            from .parallel import in_process, run_chunks, run_key

            if in_process(executor):  # threads share the objects: no bytes to make and read back
                base, pdata = base_copy, prof
            else:
                from gridtape.replay.archive import case_zip_bytes

                base, pdata = case_zip_bytes(world), prof.to_parquet_bytes()
            run_chunks(executor, run_key(), base, pdata, outs, opts, chunks_of(n, size), independent, ov, sink, tick)
    except BaseException:
        sink.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    return result_from_sink(sink, prof.index, outs, base_copy, prof, opts, time.perf_counter() - t0)


class _Made:
    """What a run writes into its output directory, to take back when the run fails: the
    directory itself when the run made it, else the files it created or changed there."""

    def __init__(self, out_dir, outs):
        from .outputs import output_name
        from .sink import MANIFEST, STEPS_FILE

        self.dir = str(out_dir)
        self.new = not os.path.exists(self.dir)
        names = [STEPS_FILE, MANIFEST] + [output_name(*o) + ".parquet" for o in outs]
        self.before = {} if self.new else {n: _stat(os.path.join(self.dir, n)) for n in names}

    def discard(self):
        import shutil

        if self.new:
            shutil.rmtree(self.dir, ignore_errors=True)
            return
        for name, st in self.before.items():
            p = os.path.join(self.dir, name)
            now = _stat(p)
            if now is not None and now != st:
                try:
                    os.remove(p)
                except OSError:
                    pass


def _stat(p):
    try:
        st = os.stat(p)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _read(profiles, world):
    """read_profiles, from a Parquet file too (a path): its errors then name the file."""
    if not isinstance(profiles, (str, os.PathLike)):
        return read_profiles(profiles, world)
    from gridtape.errors import CaseError, GridtapeError

    try:
        with open(profiles, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise CaseError(f"the profiles file cannot be read: {e.strerror or e}", file=os.fspath(profiles)) from None
    try:
        return read_profiles(data, world)
    except GridtapeError as e:
        raise e.in_file(os.fspath(profiles))


def _count(v, least, name) -> int:
    """``v`` as an int >= ``least`` (SchemaError naming ``name`` otherwise: 0 is not "the default")."""
    import numbers

    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or int(v) < least:
        raise SchemaError(f"{name} must be an integer >= {least}, not {v!r}", field=name)
    return int(v)


def _store_profiles(j, prof):
    """store.store_profiles in a thread (file writes, mostly I/O); ``.join()``, then ``.stored``
    ((sha256 list, store)) or ``.error``."""
    import threading

    t = threading.Thread(target=_put, args=(j, prof), name="gridtape-study-profiles", daemon=True)
    t.stored = t.error = None
    t.start()
    return t


def _put(j, prof):
    from .store import store_profiles

    t = __import__("threading").current_thread()
    try:
        t.stored = store_profiles(j, prof)
    except BaseException as e:  # noqa: BLE001 - raised by the caller
        t.error = e
