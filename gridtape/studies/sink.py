"""Where a study's per-step outputs go: memory, or Parquet files written chunk by chunk.

Files of one run (``dir``):

- ``steps.parquet``: ``step``, ``converged``, ``iterations``, ``mismatch``;
- ``res_<kind>.<column>.parquet`` per output: ``step`` and one float64 column per element id
  (named by the id);
- ``manifest.json``: the sha256 of every file above.

Row groups hold :data:`ROW_GROUP` steps whatever the chunking of the run, so the bytes of a file
depend on the values only: a rerun that computes the same numbers writes the same bytes.
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
STEPS_FILE = "steps.parquet"
MANIFEST = "manifest.json"
_WRITE = {"compression": "zstd", "compression_level": 3, "write_statistics": True}


def step_array(index) -> pa.Array:
    from .profiles import _index_array

    return _index_array(index)


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _File:
    """One Parquet file fed with rows, flushed in row groups of ROW_GROUP rows."""

    def __init__(self, path, names):
        self.path = path
        self.names = names
        self.parts = []  # pending column blocks (lists of arrays), len(rows) each
        self.pending = 0
        self.writer = None

    def add(self, arrays):
        self.parts.append(arrays)
        self.pending += len(arrays[0])
        while self.pending >= ROW_GROUP:
            self._flush(ROW_GROUP)

    def _flush(self, n):
        cols = [pa.concat_arrays([pa.array(p[j]) if not isinstance(p[j], pa.Array) else p[j] for p in self.parts])
                for j in range(len(self.names))]
        tb = pa.Table.from_arrays(cols, names=self.names)
        head, rest = tb.slice(0, n), tb.slice(n)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, head.schema, **_WRITE)
        self.writer.write_table(head, row_group_size=ROW_GROUP)
        self.parts = [[c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in rest.columns]] \
            if rest.num_rows else []
        self.pending = rest.num_rows

    def close(self):
        if self.pending:
            self._flush(self.pending)
        if self.writer is None:  # no rows at all: an empty file with the schema
            empty = pa.table({n: pa.array([], type=pa.float64()) for n in self.names})
            pq.write_table(empty, self.path, **_WRITE)
        else:
            self.writer.close()


class ParquetSink:
    """Writes chunks (in step order) to the Parquet files of one run in ``directory``."""

    def __init__(self, directory, outputs, world, index):
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.outputs = outputs
        self.index = index
        self.steps = _File(os.path.join(directory, STEPS_FILE), ["step", "converged", "iterations", "mismatch"])
        self.files = []
        for kind, col in outputs:
            names = ["step"] + [str(i) for i in world[kind].ids.tolist()]
            self.files.append(_File(os.path.join(directory, output_name(kind, col) + ".parquet"), names))

    def add(self, chunk):
        n = len(chunk)
        steps = step_array(self.index[chunk.start:chunk.start + n])
        self.steps.add([steps, chunk.converged, chunk.iterations, chunk.mismatch])
        for f, v in zip(self.files, chunk.values):
            f.add([steps] + [v[:, j] for j in range(v.shape[1])])

    def close(self) -> dict:
        """Close every file; returns the manifest ({file name: sha256}) also written as manifest.json."""
        files = [self.steps] + self.files
        for f in files:
            f.close()
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

    def arrays(self):
        cs = self.chunks
        cat = np.concatenate
        steps = (cat([c.converged for c in cs]), cat([c.iterations for c in cs]), cat([c.mismatch for c in cs]))
        values = [cat([c.values[j] for c in cs]) for j in range(len(self.outputs))]
        return steps, values
