"""The segment file ``<path>.seg``: the acknowledged events not yet moved into DuckDB.

A segment is a sequence of frames (journal/frames.pyx), each one whole flush (whole
transactions only).  One ``os.write`` appends a frame.  A frame checks itself (GTJ4 and GTJ3: its
checksum and its rows' walk; GTJ2, left by gridtape 0.3: its hashes re-derive), so a frame cut
short by a kill or a power loss is told apart from a whole one: being the last, it was never
acknowledged, and it is cut off on reopen.  A bad frame followed by a good one is damage,
not a torn tail, and raises JournalCorruptError.

The writer holds ``fcntl.flock(LOCK_EX)`` on the segment for the life of the journal, a
reader ``LOCK_SH``; that is what keeps a second writer out, in this process or another.
"""
from __future__ import annotations

import errno
import fcntl
import os

from ..errors import JournalCorruptError, JournalError, JournalLockedError
from . import frames as _frames

MAGICS = (_frames.MAGIC,) + _frames.OLD_MAGICS  # GTJ4; GTJ3 (gridtape 0.4), GTJ2 (0.3)
OLD_MAGIC = b"GTJ1"  # gridtape <= 0.2 (marshal frames)


def parse(data: bytes, name):
    """Frames of a segment's bytes: ``(found, good_end)`` with ``found`` a list of
    ``((first_seq, last_seq, last_tx, last_ts, prev_hash, last_hash, n), frame_bytes)`` (the
    hashes are None for GTJ4/GTJ3 frames); ``good_end < len(data)`` means a torn tail."""
    if data.startswith(OLD_MAGIC):
        raise JournalError("the segment was written by gridtape 0.2 or older and still holds events; "
                           "open and close the journal once with that version to move them into DuckDB",
                           file=name)
    found, off = [], 0
    mv = memoryview(data)
    while off < len(data):
        got = _frames.scan(mv, off)
        if got is None:
            for magic in MAGICS:
                at = data.find(magic, off + 1)
                while at != -1:
                    if _frames.scan(mv, at) is not None:
                        raise JournalCorruptError(
                            f"damaged frame at byte {off} of the segment, followed by intact frames",
                            file=name, row=found[-1][0][1] + 1 if found else None)
                    at = data.find(magic, at + 1)
            return found, off
        end, n, first, last, last_tx, last_ts, prev, last_hash = got
        found.append(((first, last, last_tx, last_ts, prev, last_hash, n), data[off:end]))
        off = end
    return found, off


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
                raise JournalLockedError(_holder(path, read_only), file=journal_path) from None
            raise JournalError(f"cannot lock the journal segment: {e.strerror}", file=path) from None

    def read(self):
        """``(frames, good_end, size)`` of the whole file."""
        if self._f is None:
            return [], 0, 0
        data = os.pread(self._f.fileno(), os.fstat(self._f.fileno()).st_size, 0)
        frames, good = parse(data, self.path)
        self.size = len(data)
        return frames, good, len(data)

    @property
    def fd(self) -> int:
        """The file descriptor the journal's flush writes frames to (journal/recorder.pyx)."""
        return self._f.fileno()

    def failed(self, err: int):
        """A frame could not be written whole: cut the file back to its last whole frame, raise."""
        try:
            os.ftruncate(self._f.fileno(), self.size)
        except OSError:
            pass
        raise JournalError(f"cannot append to the journal segment: {os.strerror(err)}", file=self.path)

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


def _holder(path, read_only) -> str:
    """Who holds the lock on segment ``path``: this process, or the pid /proc/locks names."""
    try:
        ino = os.stat(path).st_ino
        with open("/proc/locks") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 5 and parts[1] == "FLOCK" and parts[5].rsplit(":", 1)[-1] == str(ino):
                    pid = int(parts[4])
                    if pid == os.getpid():
                        held = "a writer" if read_only else "a reader or writer"
                        return (f"the journal is held by {held} in this process: close() that PowerGrid, "
                                "Study or Journal first (or open it in a `with` block)")
                    return (f"the journal is held by a writer in process {pid}: close it there (or stop "
                            "that process) before opening it here")
    except (OSError, ValueError):
        pass
    return "the journal is held by another writer"
