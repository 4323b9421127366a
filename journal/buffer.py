"""The in-memory buffer of recorded, not yet flushed events, and how a flush numbers it.

The buffer is a list of chunks, always ending with a plain list (where ``record()`` appends):

* a ``list`` of ``(ts_ns, event, kind, eid, field, old, new, info)`` tuples: events recorded
  outside a transaction, each its own one-event transaction;
* a :class:`Tx`: a committed transaction (its items, then its commit row), or one
  ``record_many`` call made outside a transaction.

A flush gives the rows their seq, tx and non-decreasing ts_ns and encodes them as one frame,
in C (journal/frames.pyx ``encode``).  :func:`to_rows` does the same numbering in Python, as
row tuples: it is the reference the tests hold the C encoder to, and what tools use to read a
buffer.
"""
from __future__ import annotations

import itertools

from .columns import typed_lists
from .rows import make_row, utf8_ok


class Many:
    """One record_many call: ids as an int64 array, old/new as typed column tuples."""
    __slots__ = ("event", "kind", "eids", "field", "old", "new")

    def __init__(self, event, kind, eids, field, old, new):
        self.event, self.kind, self.eids, self.field, self.old, self.new = event, kind, eids, field, old, new


class Tx:
    """A committed transaction waiting in the buffer: its items, then its commit row."""
    __slots__ = ("ts", "author", "message", "items", "info", "nrows")

    def __init__(self, ts, author, message, items, info):
        self.ts, self.author, self.message, self.items, self.info = ts, author, message, items, info
        self.nrows = 1 + sum(len(it.eids) if type(it) is Many else 1 for it in items)


def count(buf):
    """``(rows, transactions)`` in the buffer."""
    rows = txs = 0
    for c in buf:
        if type(c) is list:
            rows += len(c)
            txs += len(c)
        else:
            rows += c.nrows
            txs += 1
    return rows, txs


def to_rows(buf, seq, tx, last_ts, author):
    """The buffered events as row tuples numbered from ``seq``/``tx``."""
    out = []
    for chunk in buf:
        if type(chunk) is list:
            for ts, event, kind, eid, field, old, new, info in chunk:
                last_ts = ts if ts > last_ts else last_ts
                out.append(make_row(seq, tx, last_ts, author, None, event, kind, eid, field, old, new, info))
                seq += 1
                tx += 1
            continue
        last_ts = chunk.ts if chunk.ts > last_ts else last_ts
        head = (tx, last_ts, chunk.author, chunk.message)
        for it in chunk.items:
            if type(it) is Many:
                n = len(it.eids)
                rep = itertools.repeat
                out.extend(zip(range(seq, seq + n), rep(tx, n), rep(last_ts, n), rep(chunk.author, n),
                               rep(chunk.message, n), rep(it.event, n), rep(it.kind, n), it.eids.tolist(),
                               rep(it.field, n), *typed_lists(it.old, n), *typed_lists(it.new, n), rep(None, n)))
                seq += n
            else:
                out.append(make_row(seq, *head, *it))
                seq += 1
        out.append(make_row(seq, *head, "commit", None, None, None, None, None, chunk.info))
        seq += 1
        tx += 1
    return out


def drop_unencodable(buf):
    """The buffer without the events (or whole transactions) holding text that is not UTF-8."""
    def ok(*vals):
        return all(utf8_ok(v) for v in vals if type(v) is str)

    def item_ok(it):
        if type(it) is Many:
            return ok(it.event, it.kind, it.field, *it.old[5], *it.new[5])
        return ok(*it)

    kept = []
    for chunk in buf:
        if type(chunk) is list:
            chunk[:] = [r for r in chunk if ok(*r[1:])]
        elif not (ok(chunk.info) and all(item_ok(it) for it in chunk.items)):
            continue
        kept.append(chunk)
    return kept


class Refuse:
    """Stands in for the event list of a closed or read-only journal: appending raises
    ``error[0](error[1], file=error[2])``."""
    __slots__ = ("error",)

    def __init__(self, error):
        self.error = error

    def append(self, _row):
        raise self.error[0](self.error[1], file=self.error[2])
