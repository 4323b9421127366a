"""The hash chain: one canonical byte encoding of a row, and blake2b-16 chained over it.

``hash_i = blake2b(canonical(row_i) + hash_(i-1), digest_size=16)`` with 16 zero bytes before
seq 0.  ``canonical`` (all little-endian) is

1. one flag byte: bit 0 eid, bit 1 old_f, bit 2 old_i, bit 3 new_f, bit 4 new_i is not NULL;
2. seq, tx, ts_ns, eid as int64; vtype_old as int8, old_f as the 8 IEEE-754 bytes of the
   double, old_i as int64; vtype_new, new_f, new_i likewise (a NULL number is written as 0,
   its flag tells it apart);
3. author, message, event, kind, field, old_s, new_s, info: each as a uint32 byte length and
   its UTF-8 bytes, NULL as length 0xFFFFFFFF with no bytes (so None differs from "").

Every column but ``hash`` is covered, so editing any cell of any row changes that row's hash.
:func:`canonical` is the only encoder; flush and verify both hash through :func:`chain`.
"""
from __future__ import annotations

import struct
from hashlib import blake2b
from operator import itemgetter

from ..errors import JournalError
from .rows import COLUMNS

ZERO = bytes(16)
_FIXED = struct.Struct("<B4qbdqbdq")
_NULL = b"\xff\xff\xff\xff"
_TEXT = itemgetter(*(COLUMNS.index(c) for c in
                     ("author", "message", "event", "kind", "field", "old_s", "new_s", "info")))
_TEXT_NAMES = ("author", "message", "event", "kind", "field", "old_s", "new_s", "info")
_cache: dict = {}  # text tuple -> its encoding (author/event/kind/field repeat a lot)


def _text(key) -> bytes:
    parts = []
    for name, s in zip(_TEXT_NAMES, key):
        if s is None:
            parts.append(_NULL)
            continue
        try:
            b = s.encode("utf-8")
        except (UnicodeEncodeError, AttributeError) as e:
            raise JournalError(f"cannot encode {s!r} as UTF-8 text: {e}", table="events", field=name) from None
        parts.append(len(b).to_bytes(4, "little") + b)
    if len(_cache) > 65536:
        _cache.clear()
    enc = _cache[key] = b"".join(parts)
    return enc


def canonical(row) -> bytes:
    """The canonical bytes of one row tuple (COLUMNS order, hash excluded)."""
    (seq, tx, ts, _a, _m, _e, _k, eid, _f, vo, fo, io, _so, vn, fn, in_, _sn, _i) = row
    flags = ((eid is not None) | (fo is not None) << 1 | (io is not None) << 2
             | (fn is not None) << 3 | (in_ is not None) << 4)
    fixed = _FIXED.pack(flags, seq, tx, ts, 0 if eid is None else eid,
                        vo, 0.0 if fo is None else fo, 0 if io is None else io,
                        vn, 0.0 if fn is None else fn, 0 if in_ is None else in_)
    key = _TEXT(row)
    return fixed + (_cache.get(key) or _text(key))


def chain(rows, prev: bytes = ZERO) -> list:
    """The hashes of ``rows`` (an iterable of row tuples), chained on ``prev``."""
    out = []
    append, enc = out.append, canonical
    for row in rows:
        prev = blake2b(enc(row) + prev, digest_size=16).digest()
        append(prev)
    return out
