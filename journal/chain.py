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
:func:`canonical` encodes one row tuple (small flushes); :func:`chain_columns` builds the very
same bytes for whole columns at once with numpy (large flushes and verify, which therefore
re-derives every small flush's hashes the other way); tests check the two agree byte for byte.
"""
from __future__ import annotations

import struct
from hashlib import blake2b

import numpy as np

from ..errors import JournalError
from .columns import NULLABLE, TEXT, Cols

ZERO = bytes(16)
_FIXED = struct.Struct("<B4qbdqbdq")
#: the same fixed part as a packed numpy record (field names are COLUMNS names)
_FIXED_DT = np.dtype([("flags", "u1"), ("seq", "<i8"), ("tx", "<i8"), ("ts_ns", "<i8"), ("eid", "<i8"),
                      ("vtype_old", "i1"), ("old_f", "<f8"), ("old_i", "<i8"),
                      ("vtype_new", "i1"), ("new_f", "<f8"), ("new_i", "<i8")])
assert _FIXED_DT.itemsize == _FIXED.size
_NULL = b"\xff\xff\xff\xff"
_cache: dict = {}  # text tuple -> its encoding (author/event/kind/field repeat a lot)
_head_cache: dict = {}  # (author, message, event, kind, field) -> encoding, for rows with unique info


def _one(s, name) -> bytes:
    if s is None:
        return _NULL
    try:
        b = s.encode("utf-8")
    except (UnicodeEncodeError, AttributeError) as e:
        raise JournalError(f"cannot encode {s!r} as UTF-8 text: {e}", table="events", field=name) from None
    return len(b).to_bytes(4, "little") + b


def _text(key) -> bytes:
    """Encoding of the 8 text cells of a row (a miss of ``_cache``)."""
    head = key[:5]
    h = _head_cache.get(head)
    if h is None:
        if len(_head_cache) > 4096:
            _head_cache.clear()
        h = _head_cache[head] = b"".join([_one(s, name) for s, name in zip(head, TEXT)])
    enc = h + _one(key[5], "old_s") + _one(key[6], "new_s") + _one(key[7], "info")
    if len(_cache) > 65536:
        _cache.clear()
    _cache[key] = enc
    return enc


def canonical(row, _pack=_FIXED.pack, _get=_cache.get) -> bytes:
    """The canonical bytes of one row tuple (COLUMNS order, hash excluded)."""
    (seq, tx, ts, a, m, e, k, eid, f, vo, fo, io, so, vn, fn, in_, sn, i) = row
    key = (a, m, e, k, f, so, sn, i)
    return _pack(((eid is not None) | (fo is not None) << 1 | (io is not None) << 2
                  | (fn is not None) << 3 | (in_ is not None) << 4),
                 seq, tx, ts, 0 if eid is None else eid,
                 vo, 0.0 if fo is None else fo, 0 if io is None else io,
                 vn, 0.0 if fn is None else fn, 0 if in_ is None else in_) + (_get(key) or _text(key))


def chain(rows, prev: bytes = ZERO) -> list:
    """The hashes of ``rows`` (an iterable of row tuples), chained on ``prev``."""
    out = []
    append, enc = out.append, canonical
    for row in rows:
        prev = blake2b(enc(row) + prev, digest_size=16).digest()
        append(prev)
    return out


def chain_columns(c: Cols, prev: bytes = ZERO) -> list:
    """:func:`chain` for rows held in columns: the canonical bytes are built with numpy."""
    if c.n == 0:
        return []
    rec = np.zeros(c.n, _FIXED_DT)
    flags = np.zeros(c.n, np.uint8)
    for bit, name in enumerate(NULLABLE):  # eid, old_f, old_i, new_f, new_i: bits 0..4
        v = c.valid.get(name)
        flags |= np.uint8(1 << bit) if v is None else (v.astype(np.uint8) << np.uint8(bit))
    rec["flags"] = flags
    for name in _FIXED_DT.names[1:]:
        col, v = c.num[name], c.valid.get(name)
        rec[name] = col if v is None or v.all() else np.where(v, col, 0)
    fixed = rec.view(np.dtype((np.void, _FIXED_DT.itemsize))).tolist()
    out = []
    append, cache = out.append, _cache
    for fx, key in zip(fixed, zip(*(c.text[name] for name in TEXT))):
        prev = blake2b(fx + (cache.get(key) or _text(key)) + prev, digest_size=16).digest()
        append(prev)
    return out
