"""Running a study's chunks on an executor: threads, processes, or a Dask cluster.

Out of process, the base world travels as the bytes of its Parquet case archive (what the
journal stores for a case load), the profiles as their Parquet bytes.  With a Dask ``Client``
(or its ``get_executor()``) both are scattered once to every worker; with another
``concurrent.futures`` executor they are arguments (a process pool pickles them per task).  A
``ThreadPoolExecutor`` shares the objects themselves (the base world, read only, and the
validated profiles): nothing to encode and decode.  Each worker process or thread keeps one
:class:`Runner` per run (on its own copy of the base world), built on first use, so the model,
the KLU analysis and the base solve are paid once per worker, not per chunk.  Tasks return
:class:`ChunkResult` (numpy arrays); the caller writes them in step order.
"""
from __future__ import annotations

import threading
from collections import OrderedDict, deque

_LOCAL = threading.local()
_KEEP = 2  # runners kept per thread (one study at a time, plus the previous)


def in_process(executor) -> bool:
    """Whether ``executor`` runs its tasks in this process's threads (they can share objects)."""
    from concurrent.futures import ThreadPoolExecutor

    return isinstance(executor, ThreadPoolExecutor)


def run_key() -> str:
    """A key of its own for one run (the workers' runners are kept by it)."""
    import uuid

    return uuid.uuid4().hex


def _runner_for(key, base, profiles, outputs, options):
    from .runner import Runner

    cache = getattr(_LOCAL, "runners", None)
    if cache is None:
        cache = _LOCAL.runners = OrderedDict()
    got = cache.get(key)
    if got is None:
        if isinstance(base, bytes):  # from another process: the case archive, the profiles' Parquet
            from gridtape.replay.archive import world_from_zip_bytes

            from .profiles import read_profiles

            world = world_from_zip_bytes(base)
            prof = read_profiles(profiles, world)
        else:  # a thread of this process: the run's base world (read only here) and profiles
            world, prof = base.copy(), profiles
        got = (Runner(world, outputs, options), prof)
        cache[key] = got
        while len(cache) > _KEEP:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return got


def run_chunk(key, base, profiles, outputs, options, start, stop, independent, overlap, dest=None):
    """One task: steps ``start`` .. ``stop`` on this worker's runner of study ``key``; ``dest``
    (threads of this process only): the run's rows to write the outputs into."""
    runner, prof = _runner_for(key, base, profiles, outputs, options)
    return runner.run(prof, start, stop, independent, overlap=overlap, fresh=True, dest=dest)


def _is_dask(executor):
    mod = type(executor).__module__ or ""
    return mod.startswith("distributed")


def _client_of(executor):
    if hasattr(executor, "scatter") and hasattr(executor, "gather"):
        return executor
    return getattr(executor, "_client", None)


def workers_of(executor) -> int:
    """How many tasks the executor runs at once (a guess for the window of tasks in flight)."""
    n = getattr(executor, "_max_workers", None)
    if n:
        return int(n)
    client = _client_of(executor) if _is_dask(executor) else None
    if client is not None:
        try:
            return max(1, sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()))
        except Exception:  # noqa: BLE001 - only a sizing hint
            return 2
    return 2


def run_chunks(executor, key, base, profiles, outputs, options, chunks, independent, overlap, sink, progress):
    """Submit every chunk, hand the results to ``sink`` in step order (at most a few tasks ahead
    of the one being written, so memory stays bounded)."""
    submit_args = (key, base, profiles, outputs, options)
    if _is_dask(executor):
        client = _client_of(executor)
        base_f, prof_f = client.scatter([base, profiles], broadcast=True, hash=True)
        submit_args = (key, base_f, prof_f, outputs, options)
        if client is executor:  # a Client: its own submit (pure=False: every chunk is its own task)
            def submit(*a):
                return client.submit(run_chunk, *a, pure=False)
        else:
            def submit(*a):
                return executor.submit(run_chunk, *a)
    else:
        def submit(*a):
            return executor.submit(run_chunk, *a)
    # threads of this process write their outputs straight into the sink's rows when it has
    # them (a memory sink): no copy by this thread, which would hold the GIL meanwhile
    shared = in_process(executor)

    def task(a, b):
        if shared:
            return submit(*submit_args, a, b, independent, overlap, sink.dest(a, b))
        return submit(*submit_args, a, b, independent, overlap)

    window = max(2, 2 * workers_of(executor))
    pending = deque()
    todo = iter(chunks)
    for a, b in todo:
        pending.append(task(a, b))
        if len(pending) >= window:
            break
    while pending:
        res = pending.popleft().result()
        sink.add(res)
        if progress is not None:
            progress(len(res))
        for a, b in todo:
            pending.append(task(a, b))
            break
