"""Where a study's per-step outputs go: memory, or Parquet files written chunk by chunk.

Files of one run (``dir``):

- ``steps.parquet``: ``step``, ``converged``, ``iterations``, ``mismatch``;
- ``res_<kind>.<column>.parquet`` per output: ``step`` and ``values``, a fixed-size list of float64
  per step, one entry per element in the order of the ids the schema metadata holds
  (``gridtape.ids``, a JSON list; :func:`read_output` gives steps x ids).  One list column, not a
  column per element: a Parquet column chunk costs 10-20 us to write whatever its length, which
  for the 16,000 lines of case9241pegase would cost more than the solve;
- ``manifest.json``: the sha256 of every file above.

Row groups hold a number of steps fixed by the file's width alone (:func:`group_rows`: about
:data:`GROUP_VALUES` values, at most :data:`ROW_GROUP` steps), whatever the chunking of the run, so
the bytes of a file depend on the values only (a rerun that computes the same numbers writes the
same bytes) and the memory a file holds is bounded (a case9241pegase res_line file: 256 steps).
"""
from __future__ import annotations

import hashlib
import json
import os
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .outputs import output_name

ROW_GROUP = 256  # steps: a run of a small case is written beside its solving, not all at its end
GROUP_VALUES = 1_000_000  # values per row group (8 MB of float64) for wide files


def group_rows(width: int) -> int:
    """Steps per row group of a file with ``width`` columns."""
    return int(min(ROW_GROUP, max(64, GROUP_VALUES // max(width, 1))))

STEPS_FILE = "steps.parquet"
MANIFEST = "manifest.json"
# Plain, uncompressed, no dictionaries: solver outputs are noise to a compressor (lz4 with
# byte-stream split saves a fifth of the bytes for 1.8x the encoding time, zstd a quarter for
# 2.4x; case118 x 1,000 steps: 3.0 ms plain, 5.3 ms lz4, 7.1 ms zstd), and a study's CPU time is
# what it must not waste; min/max statistics of the step column only (those of the values cost a
# third of the encoding and serve no query: the values are read whole)
_WRITE = {"compression": "none", "use_dictionary": False, "write_statistics": ["step"]}
_WRITE_STATUS = _WRITE


def step_array(index) -> pa.Array:
    from .steps import _index_array

    return _index_array(index)


def column_arrays(block) -> list:
    """The columns of a (rows x columns) float block as Arrow arrays: one transposed copy, then
    zero-copy slices (an Arrow array per column made from numpy costs ~50 us each)."""
    n, m = block.shape
    flat = pa.array(np.ascontiguousarray(block.T).reshape(-1))
    return [flat.slice(j * n, n) for j in range(m)]


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_BUF = threading.local()


def _read_buffer() -> memoryview:
    """A 1 MB buffer per thread for reading files back (a fresh bytes object per read would cost
    new pages each time)."""
    b = getattr(_BUF, "b", None)
    if b is None:
        b = _BUF.b = memoryview(bytearray(1 << 20))
    return b


class FileHash:
    """The sha256 of a file that is being written front to back (a Parquet writer never goes
    back): :meth:`catch_up` hashes what was written since the last call (read back from the page
    cache, in the writer's thread while the steps run), :meth:`hexdigest` the rest at the end."""

    __slots__ = ("path", "h", "done", "fd")

    def __init__(self, path):
        self.path, self.h, self.done, self.fd = path, hashlib.sha256(), 0, None

    def catch_up(self):
        if self.fd is None:
            if not os.path.exists(self.path):
                return
            self.fd = os.open(self.path, os.O_RDONLY)
        size = os.fstat(self.fd).st_size
        buf = _read_buffer()
        while self.done < size:
            k = os.preadv(self.fd, [buf[:min(size - self.done, len(buf))]], self.done)
            if not k:
                break
            self.h.update(buf[:k])
            self.done += k

    def hexdigest(self) -> str:
        try:
            self.catch_up()
        finally:
            self.release()
        return self.h.hexdigest()

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _File:
    """One output file fed with blocks of rows (steps x elements), written in row groups of the
    file's row-group size (group_rows)."""

    def __init__(self, path, ids):
        self.path = path
        self.width = len(ids)
        self.group = group_rows(self.width)
        self.meta = {b"gridtape.ids": json.dumps([int(i) for i in ids]).encode()}
        self.steps = []  # pending step labels (Arrow arrays) and value blocks (n x elements)
        self.blocks = []
        self.pending = 0
        self.writer = None
        self.pending_tables = None
        self.hash = FileHash(path)

    def add(self, steps, block):
        self.steps.append(steps)
        self.blocks.append(block)
        self.pending += len(block)
        while self.pending >= self.group:
            self._flush(self.group)

    def _table(self, steps, block):
        flat = pa.array(np.ascontiguousarray(block, dtype=np.float64).reshape(-1))
        values = pa.FixedSizeListArray.from_arrays(flat, self.width) if self.width else \
            pa.array([[] for _ in range(len(block))], pa.list_(pa.float64(), 0))
        return pa.Table.from_arrays([steps, values], names=["step", "values"]).replace_schema_metadata(self.meta)

    def _flush(self, n):
        steps = pa.concat_arrays(self.steps)
        block = self.blocks[0] if len(self.blocks) == 1 else np.concatenate(self.blocks)
        tb = self._table(steps.slice(0, n), block[:n])
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, tb.schema, **_WRITE)
        self.writer.write_table(tb, row_group_size=self.group)
        self.hash.catch_up()
        rest = len(block) - n
        self.steps = [steps.slice(n)] if rest else []
        self.blocks = [block[n:]] if rest else []
        self.pending = rest

    def close(self, step_type=pa.int64()) -> str:
        """Write what is pending, close the file; returns its sha256."""
        if self.pending:
            self._flush(self.pending)
        if self.writer is None:  # no rows at all: an empty file with the schema
            pq.write_table(self._table(pa.array([], step_type), np.zeros((0, self.width))), self.path, **_WRITE)
        else:
            self.writer.close()
        return self.hash.hexdigest()


def read_output(path):
    """(steps, ids, values) of an output file: the step labels (Arrow), the element ids and a
    steps x ids float64 array."""
    tb = pq.read_table(path)
    ids = json.loads(tb.schema.metadata[b"gridtape.ids"])
    vals = tb.column("values").combine_chunks()
    flat = vals.values.to_numpy(zero_copy_only=False) if len(vals) else np.zeros(0)
    return tb.column("step"), ids, flat.reshape(len(vals), len(ids))


class ParquetSink:
    """Writes chunks (in step order) to the Parquet files of one run in ``directory``.  The
    encoding and writing run in a background thread (pyarrow releases the GIL while it writes),
    at most two chunks behind the solves; an error there is raised by the next add() or close()."""

    def __init__(self, directory, outputs, world, index):
        import queue
        import threading

        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.outputs = outputs
        self.index = index
        self.steps = _File(os.path.join(directory, STEPS_FILE), [])
        self.steps.names = ["step", "converged", "iterations", "mismatch"]
        self.steps.pending_tables = []  # the status file: typed columns, written as whole tables
        self._status = []  # (converged, iterations, mismatch) of every chunk written
        self.files = []
        for kind, col in outputs:
            self.files.append(_File(os.path.join(directory, output_name(kind, col) + ".parquet"), world[kind].ids))
        self._q = queue.Queue(maxsize=2)
        self._error = None
        self._thread = threading.Thread(target=self._work, name="gridtape-study-writer", daemon=True)
        self._thread.start()

    def _work(self):
        while True:
            chunk = self._q.get()
            if chunk is None:
                return
            if self._error is not None:
                continue
            try:
                self._write(chunk)
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                self._error = e

    def _write(self, chunk):
        n = len(chunk)
        steps = step_array(self.index[chunk.start:chunk.start + n])
        st = pa.Table.from_arrays([steps, pa.array(chunk.converged), pa.array(chunk.iterations),
                                   pa.array(chunk.mismatch)], names=self.steps.names)
        if self.steps.writer is None:
            self.steps.writer = pq.ParquetWriter(self.steps.path, st.schema, **_WRITE_STATUS)
        self.steps.pending_tables.append(st)
        self._status.append((chunk.converged, chunk.iterations, chunk.mismatch))
        self._flush_status(False)
        for f, v in zip(self.files, chunk.values):
            f.add(steps, v)
        self._step_type = steps.type

    def _flush_status(self, last):
        f = self.steps
        tb = pa.concat_tables(f.pending_tables) if f.pending_tables else None
        while tb is not None and (tb.num_rows >= ROW_GROUP or (last and tb.num_rows)):
            k = min(ROW_GROUP, tb.num_rows)
            f.writer.write_table(tb.slice(0, k), row_group_size=ROW_GROUP)
            f.hash.catch_up()
            tb = tb.slice(k)
        f.pending_tables = [tb] if tb is not None and tb.num_rows else []

    def _raise(self):
        if self._error is not None:
            e, self._error = self._error, None
            raise e

    def dest(self, start, stop):
        """None: a chunk's arrays are its own (they are handed to the writer thread)."""
        return None

    def status(self) -> tuple:
        """(converged, iterations, mismatch) of every step written (after :meth:`close`)."""
        parts = self._status
        if not parts:
            return np.zeros(0, bool), np.zeros(0, np.int32), np.zeros(0)
        return tuple(np.concatenate([p[j] for p in parts]) for j in range(3))

    def add(self, chunk):
        self._raise()
        self._q.put(chunk)

    def abort(self):
        """Stop the writer thread (the run failed); the files are left incomplete."""
        self._error = self._error or RuntimeError("aborted")
        self._q.put(None)
        self._thread.join()
        for f in [self.steps] + self.files:
            f.hash.release()

    def close(self) -> dict:
        """Close every file; returns the manifest ({file name: sha256}) also written as manifest.json."""
        self._q.put(None)
        self._thread.join()
        self._raise()
        if self.steps.writer is None:
            pq.write_table(pa.table({"step": pa.array([], pa.int64()), "converged": pa.array([], pa.bool_()),
                                     "iterations": pa.array([], pa.int32()),
                                     "mismatch": pa.array([], pa.float64())}), self.steps.path, **_WRITE_STATUS)
        else:
            self._flush_status(True)
            self.steps.writer.close()
        manifest = {os.path.basename(self.steps.path): self.steps.hash.hexdigest()}
        for f in self.files:
            manifest[os.path.basename(f.path)] = f.close(getattr(self, "_step_type", pa.int64()))
        with open(os.path.join(self.directory, MANIFEST), "w", encoding="utf-8") as fh:
            json.dump({"files": manifest}, fh, indent=1, sort_keys=True)
        return manifest


class MemorySink:
    """Keeps the outputs in memory: one (steps x elements) array per output for the whole run,
    allocated once; a chunk run in this process writes its rows in place (:meth:`dest`), a chunk
    from elsewhere (an executor's worker) is copied in by :meth:`add`."""

    def __init__(self, outputs, world, index):
        n = len(index)
        self.outputs = outputs
        self.converged = np.zeros(n, bool)
        self.iterations = np.zeros(n, np.int32)
        self.mismatch = np.full(n, np.nan)
        self.values = [np.empty((n, len(world[k]))) for k, _ in outputs]

    def dest(self, start, stop) -> list:
        """The rows ``start`` .. ``stop`` of every output array (views to fill)."""
        return [v[start:stop] for v in self.values]

    def add(self, chunk):
        a, b = chunk.start, chunk.start + len(chunk)
        self.converged[a:b], self.iterations[a:b], self.mismatch[a:b] = \
            chunk.converged, chunk.iterations, chunk.mismatch
        for v, c in zip(self.values, chunk.values):
            if not np.may_share_memory(c, v):  # rows written in place need no copy
                v[a:b] = c

    def close(self):
        return None

    def abort(self):
        self.values = []

    def arrays(self):
        return (self.converged, self.iterations, self.mismatch), self.values
