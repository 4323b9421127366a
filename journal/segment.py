"""The segment file ``<path>.seg``: the acknowledged events not yet moved into DuckDB.

A segment is a sequence of frames, each one whole flush (whole transactions only)::

    magic b"GTJ1" | uint32 payload length | uint32 crc32(payload) | payload

``payload`` is ``marshal.dumps((1, "r", rows, hashes))`` with ``rows`` a list of row tuples, or
``(1, "c", columns, hashes)`` with the rows in columns (numbers as raw little-endian arrays) for
large flushes; ``hashes`` are the rows' chained hashes joined (a private format: only this
module reads it).  One
``os.write`` appends a frame; a frame cut short by a kill or a power loss fails its length or
crc check and, being the last, was never acknowledged: it is cut off on reopen.  A bad frame
followed by a good one is damage, not a torn tail, and raises JournalCorruptError.

The writer holds ``fcntl.flock(LOCK_EX)`` on the segment for the life of the journal, a
reader ``LOCK_SH``; that is what keeps a second writer out, in this process or another.
"""
from __future__ import annotations

import errno
import fcntl
import marshal
import os
import struct
import zlib

from ..errors import JournalCorruptError, JournalError, JournalLockedError
from .columns import Cols
from .rows import NCOL

MAGIC = b"GTJ1"
FORMAT = 1
HEADER = struct.Struct("<4sII")


def encode_frame(body, hashes: bytes) -> bytes:
    """A frame of ``body`` (a list of row tuples, or Cols) and its joined hashes."""
    payload = marshal.dumps((FORMAT, "r", body, hashes) if type(body) is list
                            else (FORMAT, "c", body.dump(), hashes))
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def _decode_at(data, off):
    """The frame at ``off`` as ``(body, hashes, end)``, or None if it is not a whole valid frame."""
    if len(data) - off < HEADER.size:
        return None
    magic, size, crc = HEADER.unpack_from(data, off)
    end = off + HEADER.size + size
    if magic != MAGIC or end > len(data):
        return None
    payload = data[off + HEADER.size:end]
    if zlib.crc32(payload) != crc:
        return None
    try:
        fmt, kind, body, hashes = marshal.loads(payload)
        if fmt != FORMAT:
            return None
        if kind == "c":
            body = Cols.load(body)
            n = body.n
        elif kind == "r" and isinstance(body, list) and all(len(r) == NCOL for r in body):
            n = len(body)
        else:
            return None
    except (ValueError, EOFError, TypeError, KeyError):
        return None
    if n == 0 or len(hashes) != 16 * n:
        return None
    return body, hashes, end


def parse(data: bytes, name):
    """Frames of a segment's bytes: ``(frames, good_end)``; ``good_end < len(data)`` = torn tail."""
    frames, off = [], 0
    while off < len(data):
        got = _decode_at(data, off)
        if got is None:
            at = data.find(MAGIC, off + 1)
            while at != -1:
                if _decode_at(data, at) is not None:
                    raise JournalCorruptError(
                        f"damaged frame at byte {off} of the segment, followed by intact frames",
                        file=name, row=last_seq(frames[-1][0]) + 1 if frames else None)
                at = data.find(MAGIC, at + 1)
            return frames, off
        body, hashes, off = got
        frames.append((body, hashes))
    return frames, off


def first_seq(body):
    return body[0][0] if type(body) is list else int(body.num["seq"][0])


def last_seq(body):
    return body[-1][0] if type(body) is list else int(body.num["seq"][-1])


class Segment:
    """The open, locked segment file of one journal."""

    def __init__(self, path: str, read_only: bool, journal_path: str):
        self.path, self.read_only = path, read_only
        self._f = None
        self.size = 0  # bytes of whole frames in the file
        if read_only and not os.path.exists(path):
            return  # no writer ever appended: nothing to read, nothing to lock
        try:
            self._f = open(path, "rb" if read_only else "a+b", buffering=0)
        except OSError as e:
            raise JournalError(f"cannot open the journal segment: {e.strerror}", file=path) from None
        try:
            fcntl.flock(self._f.fileno(), (fcntl.LOCK_SH if read_only else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except OSError as e:
            self._f.close()
            self._f = None
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise JournalLockedError("the journal is held by another writer", file=journal_path) from None
            raise JournalError(f"cannot lock the journal segment: {e.strerror}", file=path) from None

    def read(self):
        """``(frames, good_end, size)`` of the whole file."""
        if self._f is None:
            return [], 0, 0
        data = os.pread(self._f.fileno(), os.fstat(self._f.fileno()).st_size, 0)
        frames, good = parse(data, self.path)
        self.size = len(data)
        return frames, good, len(data)

    def append(self, frame: bytes, fsync: bool):
        """Append one frame with one write; on failure cut the file back so no partial frame stays."""
        fd = self._f.fileno()
        try:
            n = os.write(fd, frame)
            while n < len(frame):  # a regular file takes it all unless the disk is full
                n += os.write(fd, frame[n:])
            if fsync:
                os.fsync(fd)
        except OSError as e:
            try:
                os.ftruncate(fd, self.size)
            except OSError:
                pass
            raise JournalError(f"cannot append to the journal segment: {e.strerror}", file=self.path) from None
        self.size += len(frame)

    def truncate(self, size: int = 0, fsync: bool = False):
        try:
            os.ftruncate(self._f.fileno(), size)
            self.size = size
            if fsync:
                os.fsync(self._f.fileno())
        except OSError as e:
            raise JournalError(f"cannot truncate the journal segment: {e.strerror}", file=self.path) from None

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None
