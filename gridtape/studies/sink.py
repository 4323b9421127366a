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

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .outputs import output_name

ROW_GROUP = 1024
GROUP_VALUES = 1_000_000  # values per row group (8 MB of float64) for wide files


def group_rows(width: int) -> int:
    """Steps per row group of a file with ``width`` columns."""
    return int(min(ROW_GROUP, max(64, GROUP_VALUES // max(width, 1))))

STEPS_FILE = "steps.parquet"
MANIFEST = "manifest.json"
# lz4 without dictionaries (floats rarely repeat, and dictionary attempts cost more than they
# save); min/max statistics of the step column only (those of the values cost a third of the
# encoding and serve no query: the values are read whole)
_WRITE = {"compression": "lz4", "use_dictionary": False, "use_byte_stream_split": True, "write_statistics": ["step"]}
_WRITE_STATUS = {**_WRITE, "use_byte_stream_split": False}  # converged is a bool column


def step_array(index) -> pa.Array:
    from .profiles import _index_array

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
        rest = len(block) - n
        self.steps = [steps.slice(n)] if rest else []
        self.blocks = [block[n:]] if rest else []
        self.pending = rest

    def close(self, step_type=pa.int64()):
        if self.pending:
            self._flush(self.pending)
        if self.writer is None:  # no rows at all: an empty file with the schema
            pq.write_table(self._table(pa.array([], step_type), np.zeros((0, self.width))), self.path, **_WRITE)
        else:
            self.writer.close()


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
            tb = tb.slice(k)
        f.pending_tables = [tb] if tb is not None and tb.num_rows else []

    def _raise(self):
        if self._error is not None:
            e, self._error = self._error, None
            raise e

    def add(self, chunk):
        self._raise()
        self._q.put(chunk)

    def abort(self):
        """Stop the writer thread (the run failed); the files are left incomplete."""
        self._error = self._error or RuntimeError("aborted")
        self._q.put(None)
        self._thread.join()

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
        for f in self.files:
            f.close(getattr(self, "_step_type", pa.int64()))
        files = [self.steps] + self.files
        manifest = {os.path.basename(f.path): sha256_file(f.path) for f in files}
        with open(os.path.join(self.directory, MANIFEST), "w", encoding="utf-8") as fh:
            json.dump({"files": manifest}, fh, indent=1, sort_keys=True)
        return manifest


class MemorySink:
    """Keeps every chunk in memory; :meth:`arrays` concatenates them."""

    def __init__(self, outputs, world, index):
        self.outputs = outputs
        self.chunks = []

    def add(self, chunk):
        self.chunks.append(chunk)

    def close(self):
        return None

    def abort(self):
        self.chunks = []

    def arrays(self):
        cs = self.chunks
        cat = np.concatenate
        steps = (cat([c.converged for c in cs]), cat([c.iterations for c in cs]), cat([c.mismatch for c in cs]))
        values = [cat([c.values[j] for c in cs]) for j in range(len(self.outputs))]
        return steps, values
