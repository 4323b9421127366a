"""verify(): re-derive every row's hash from what DuckDB returns and check the numbering.

Checked for each row, in seq order, streaming over Arrow batches:

* seq is gap-free from 0 (a deleted or renumbered row shows as the first missing seq);
* ts_ns never decreases;
* tx numbers start at 0 and go up by one; a transaction of several rows ends with its
  ``commit`` row and no row of the same tx follows that commit;
* the hash equals blake2b(canonical(row) + previous hash).

The first bad row raises JournalCorruptError(row=its seq, file=the journal).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..errors import JournalCorruptError
from .chain import ZERO, chain_columns
from .columns import Cols


class Checker:
    """Carries the chain and the transaction state from one batch to the next."""

    def __init__(self, path):
        self.path, self.n, self.prev = path, 0, ZERO
        self.last = None  # (ts, tx, is_commit, continues_its_tx) of the last row seen

    def check(self, t: pa.Table):
        m = t.num_rows
        if m == 0:
            return
        cols = Cols.from_arrow(t)
        seq, tx, ts = cols.num["seq"], cols.num["tx"], cols.num["ts_ns"]
        commit = np.array([e == "commit" for e in cols.text["event"]], bool)
        ts0, tx0, commit0, cont0 = self.last if self.last is not None else (ts[0], -1, True, False)
        p_ts, p_tx, p_commit = (np.concatenate(([a], b[:-1])) for a, b in ((ts0, ts), (tx0, tx), (commit0, commit)))
        same, new = tx == p_tx, tx == p_tx + 1
        cont = np.concatenate(([cont0], same[:-1]))  # did the previous row continue its tx?
        problems = [
            (seq != np.arange(self.n, self.n + m), "seq is not the expected one (a row is missing or renumbered)"),
            (ts < p_ts, "ts_ns is before the previous row's"),
            (~(same | new), "tx numbers are not consecutive"),
            (same & p_commit, "a row after its tx's commit row carries the same tx"),
            (new & cont & ~p_commit, "the previous tx has several rows but no commit row"),
        ]
        first = [(int(np.argmax(mask)), why) for mask, why in problems if mask.any()]
        hashes = chain_columns(cols, self.prev)
        stored = t.column("hash").to_pylist()
        if hashes != stored:
            first.append((next(k for k in range(m) if hashes[k] != stored[k]),
                          "hash does not match the row's content and the previous hash"))
        if first:
            k, why = min(first, key=lambda x: x[0])
            self.bad(self.n + k, why)
        self.n += m
        self.prev = hashes[-1]
        self.last = (ts[-1], tx[-1], bool(commit[-1]), bool(same[-1]))

    def finish(self):
        if self.last is not None and self.last[3] and not self.last[2]:
            self.bad(self.n - 1, "the last tx has several rows but no commit row")

    def bad(self, seq, why):
        raise JournalCorruptError(f"journal row {seq}: {why}", file=self.path, row=int(seq))
