"""The acknowledgement record ``<path>.ack``: how far the segments were acknowledged.

A segment cannot tell on its own whether whole frames were cut off its end (or whether a short
last frame that ends on a block boundary was a torn, never acknowledged append or a truncation
of an acknowledged one).  So the writer keeps, outside the segment files, the last seq and the
length of each segment as of the last flush that returned:

    0   b"GTA1"
    4   uint8 sync mode of the writer (0 "os", 1 "fsync"), 3 bytes zero
    8   8 bytes: the journal's id (blake2b of its ``meta.created``): a record left by another
        journal at this path is not this one's
    16  16 bytes: the boot id of the writer's machine (/proc/sys/kernel/random/boot_id)
    32  int64 last acknowledged seq in ``.seg`` (-1: none), int64 its length after that frame
    48  the same for ``.seg2``

The header is written once per open (a new file renamed over the old one, fsynced); the four
numbers are a shared memory map of the file, stored by ``flush()`` after its ``write(2)`` (and
fsync) returned (journal/recorder.pyx): no system call on the hot path, and the page is the
kernel's, so the numbers survive a kill of the process like the frames do.  With
``sync="fsync"`` the kernel writes the page back within its writeback delay and close() syncs
it; with ``sync="os"`` a reboot voids the promise for both the frames and the record, so a
record from another boot is not checked (see docs/journal.md, "Recovery").

On reopen (journal/store.py) the events found (DuckDB plus the segment frames that verify)
must reach the acknowledged seq; otherwise acknowledged events are missing and the open raises
JournalCorruptError naming the segment, the acknowledged length and the length found.

The record itself can be damaged too.  A file that is not a whole record (short, zeroed, another
magic) is damage for any journal (every version writes it whole: a new file renamed over the old).
A journal whose ``meta`` holds ``MARK`` (written once its writer's record exists, so from then on
it always has one) must have its own record while it has segment files: a missing record, or one
left by another journal, is damage too.  A journal without the mark (written by a version before
the record, or before the mark) opens without a record as before.
"""
from __future__ import annotations

import hashlib
import mmap
import os
import struct

MAGIC = b"GTA1"
SUFFIX = ".ack"
SIZE = 64
SLOTS = 32  # byte offset of the per-segment (seq, length) pairs
#: the ``meta`` key (value "1") of a journal that keeps a record: one is required from then on
MARK = "ack_record"
#: read()'s faults that are damage only for a journal with the mark
MISSING, FOREIGN = "the file is missing", "the file is another journal's record"
_HEAD = struct.Struct("<4sB3x8s16s")
_SLOT = struct.Struct("<qq")


def journal_id(created) -> bytes:
    return hashlib.blake2b(str(created).encode(), digest_size=8).digest()


def boot_id() -> bytes:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return bytes.fromhex(f.read().strip().replace("-", ""))[:16].ljust(16, b"\0")
    except (OSError, ValueError):
        return bytes(16)


class Acked:
    """What a record says: per segment ``(seq, length)``, the writer's sync mode and boot."""

    def __init__(self, data: bytes):
        magic, self.fsync, self.jid, self.boot = _HEAD.unpack_from(data, 0)
        self.slots = [_SLOT.unpack_from(data, SLOTS + 16 * k) for k in range(2)]

    @property
    def seq(self) -> int:
        return max(s for s, _ in self.slots)

    @property
    def slot(self) -> int:
        """Which segment the last acknowledged flush went to."""
        return 0 if self.slots[0][0] >= self.slots[1][0] else 1

    def binding(self) -> bool:
        """Whether the record must be met: the writer's promise still holds (sync="fsync", or the
        same boot: a reboot loses what sync="os" never promised to keep)."""
        return bool(self.fsync) or self.boot == boot_id()


def read(path, created):
    """``(record, fault)`` for the journal at ``path`` (whose ``meta.created`` is ``created``):
    its ``Acked`` and None, or None and what is wrong: ``MISSING`` (no file), ``FOREIGN`` (another
    journal's record) or why the file is not a record (damage whatever the journal)."""
    try:
        with open(path + SUFFIX, "rb") as f:
            data = f.read(SIZE + 1)
    except FileNotFoundError:
        return None, MISSING
    except OSError as e:
        return None, f"the file cannot be read ({e.strerror})"
    if len(data) != SIZE:
        return None, f"the file is {len(data)}{'+' if len(data) > SIZE else ''} bytes long, a record is {SIZE}"
    if not data.startswith(MAGIC):
        what = "all zeros" if not data.strip(b"\0") else f"starts with {data[:4]!r}"
        return None, f"the file is not a record ({what}, not {MAGIC!r})"
    got = Acked(data)
    return (got, None) if got.jid == journal_id(created) else (None, FOREIGN)


def create(path, created, fsync: bool, slots):
    """Write a fresh record (atomically: a new file renamed over the old one) and map it:
    returns the ``mmap`` whose bytes 32..63 flush stores into."""
    data = bytearray(SIZE)
    _HEAD.pack_into(data, 0, MAGIC, 1 if fsync else 0, journal_id(created), boot_id())
    for k, (seq, size) in enumerate(slots):
        _SLOT.pack_into(data, SLOTS + 16 * k, seq, size)
    tmp = path + SUFFIX + ".new"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, bytes(data))
        os.fsync(fd)
        os.replace(tmp, path + SUFFIX)
        _sync_dir(path)
        return mmap.mmap(fd, SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)  # the map keeps its own reference to the file


def _sync_dir(path):
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
