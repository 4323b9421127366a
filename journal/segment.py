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
#: an append cut short by a kill stops where the kernel stopped copying pages (a page boundary of
#: the file), one cut by a power loss at a block boundary: a short frame ending anywhere else
#: was truncated, not torn (512: the smallest block size of the disks and filesystems we know)
TEAR_ALIGN = 512


def _damage(name, off, why, found):
    return JournalCorruptError(f"damaged frame at byte {off} of the segment: {why}; nothing was changed "
                               "(`gridtape recover` salvages every frame that verifies)",
                               file=name, row=found[-1][0][1] + 1 if found else None, offset=off)


def _tail(data: bytes, off: int, name, found):
    """What the bytes from ``off`` (where the whole frames end) are: a torn append (returns the
    seq its frame starts at, or None when the header is not all there) or damage (raises).

    A torn append is the start of one frame cut short: a known magic (or a prefix of one) whose
    declared length runs past the end of the file, or bytes that were never written (all zero).
    A frame whose full length is there but does not verify is damage, and so is anything that
    does not start like a frame."""
    rest = data[off:]
    if not rest.strip(b"\0"):
        return None  # never written (a power loss during an unacknowledged append)
    if len(rest) >= 8 and rest[:4] in MAGICS:
        plen = int.from_bytes(rest[4:8], "little")
        if 8 + plen <= len(rest):
            raise _damage(name, off, "its full length is there but its checksum or rows do not verify", found)
        first = int.from_bytes(rest[12:20], "little", signed=True) if len(rest) >= 20 else None
    elif len(rest) < 8 and any(m.startswith(rest[:4]) for m in MAGICS):
        first = None
    else:
        raise _damage(name, off, "these bytes are not a frame", found)
    if len(data) % TEAR_ALIGN:
        raise _damage(name, off, f"cut short at byte {len(data)}, which is not where an interrupted append "
                      f"stops (a multiple of {TEAR_ALIGN}): the file was truncated into its frames", found)
    return first


def parse(data: bytes, name):
    """Frames of a segment's bytes: ``(found, good_end, torn_first)`` with ``found`` a list of
    ``((first_seq, last_seq, last_tx, last_ts, prev_hash, last_hash, n), frame_bytes)`` (the
    hashes are None for GTJ4/GTJ3 frames); ``good_end < len(data)`` means a torn append after
    the whole frames (``torn_first``: the seq its header names, or None).  Damage raises
    JournalCorruptError naming the file and the byte offset; this reads only, the caller decides
    (journal/store.py) and truncates a tear only once every check passed."""
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
                        raise _damage(name, off, "followed by intact frames", found)
                    at = data.find(magic, at + 1)
            return found, off, _tail(data, off, name, found)
        end, n, first, last, last_tx, last_ts, prev, last_hash = got
        found.append(((first, last, last_tx, last_ts, prev, last_hash, n), data[off:end]))
        off = end
    return found, off, None


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
        """``(frames, good_end, size, torn_first)`` of the whole file (reads only)."""
        if self._f is None:
            return [], 0, 0, None
        data = os.pread(self._f.fileno(), os.fstat(self._f.fileno()).st_size, 0)
        frames, good, torn = parse(data, self.path)
        self.size = len(data)
        return frames, good, len(data), torn

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


def _locks(path):
    """``[(pid, "reader" | "writer")]`` of the flock locks on file ``path`` (/proc/locks)."""
    got = []
    try:
        ino = os.stat(path).st_ino
        with open("/proc/locks") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 5 and parts[1] == "FLOCK" and parts[5].rsplit(":", 1)[-1] == str(ino):
                    got.append((int(parts[4]), "writer" if parts[3] == "WRITE" else "reader"))
    except (OSError, ValueError):
        pass
    return got


def holders(path, me) -> list:
    """What holds segment ``path`` in processes other than ``me``, as JournalLockedError texts."""
    return [f"the journal is held by a {who} in process {pid}: close it there (PowerGrid.close(), "
            f"Study.close(), Journal.close(), or leave its `with` block) or stop that process"
            for pid, who in _locks(path) if pid != me]


def _holder(path, read_only) -> str:
    """Who holds the lock on segment ``path``: this process, or the pid /proc/locks names."""
    me = os.getpid()
    for pid, who in _locks(path):
        if pid == me:
            return (f"the journal is held by a {who} in this process (journal/shared.py shares it between "
                    "one writer and its readers; this is another opening, e.g. `gridtape recover`): close() "
                    "that PowerGrid, Study or Journal first (or open it in a `with` block)")
    others = holders(path, me)
    return others[0] if others else "the journal is held by another " + ("writer" if read_only else "process")
