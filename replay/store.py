"""Where snapshot files live: a local directory (with fsync) or any ``pyarrow.fs.FileSystem``.

Both stores speak relative, '/'-separated paths under one root and offer the few operations the
snapshot writer needs: an atomic write (temporary name, flush, rename), read, list, remove.
"""
from __future__ import annotations

import os
import secrets
import shutil

TMP_MARK = ".tmp-"


def open_store(directory, filesystem=None):
    """A store for ``directory``: a local path, a URI pyarrow understands (``s3://...``,
    ``file:///...``), or a path inside ``filesystem`` (a ``pyarrow.fs.FileSystem``)."""
    if filesystem is None and isinstance(directory, str) and "://" in directory:
        from pyarrow import fs as pafs

        filesystem, directory = pafs.FileSystem.from_uri(directory)
    if filesystem is None:
        return LocalStore(os.fspath(directory))
    return ArrowStore(filesystem, str(directory).rstrip("/"))


def tmp_name(final: str) -> str:
    return f"{final}{TMP_MARK}{secrets.token_hex(4)}"


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class LocalStore:
    def __init__(self, root: str):
        self.root = root

    def path(self, rel: str) -> str:
        return os.path.join(self.root, *rel.split("/")) if rel else self.root

    def makedirs(self, rel: str = "", exist_ok: bool = True) -> None:
        os.makedirs(self.path(rel), exist_ok=exist_ok)

    def write_atomic(self, rel: str, data) -> None:
        """Write to a temporary name, fsync, rename over ``rel`` (the directory is not synced)."""
        final = self.path(rel)
        tmp = tmp_name(final)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
        except BaseException:
            _unlink(tmp)  # a full disk or an I/O error leaves no temporary file behind
            raise

    def write_all_atomic(self, items) -> None:
        """:meth:`write_atomic` for many ``(rel, data)`` at once: all temporary files are written
        first, then fsynced, then renamed (one journal commit serves most of the fsyncs)."""
        opened = []
        try:
            try:
                for rel, data in items:
                    final = self.path(rel)
                    tmp = tmp_name(final)
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                    opened.append([fd, tmp, final])
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                for item in opened:
                    os.fsync(item[0])
            finally:
                for item in opened:
                    os.close(item[0])
            for _, tmp, final in opened:
                os.replace(tmp, final)
        except BaseException:
            for _, tmp, _final in opened:
                _unlink(tmp)
            raise

    def sync_dir(self, rel: str = "") -> None:
        try:
            fd = os.open(self.path(rel), os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass  # some filesystems refuse fsync on directories
        finally:
            os.close(fd)

    def read(self, rel: str) -> bytes:
        with open(self.path(rel), "rb") as f:
            return f.read()

    def listdir(self, rel: str = "") -> list:
        """``[(name, is_dir), ...]``; empty when the directory does not exist."""
        try:
            with os.scandir(self.path(rel)) as it:
                return [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def mtime(self, rel: str) -> float:
        return os.stat(self.path(rel)).st_mtime

    def remove(self, rel: str) -> None:
        os.remove(self.path(rel))

    def rmtree(self, rel: str) -> None:
        shutil.rmtree(self.path(rel))


class ArrowStore:
    """A directory inside a pyarrow filesystem.  Renames are the filesystem's ``move`` (atomic on
    local and HDFS-like stores; a copy on object stores, where readers only ever trust manifests)."""

    def __init__(self, fs, root: str):
        self.fs, self.root = fs, root

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def makedirs(self, rel: str = "", exist_ok: bool = True) -> None:
        from pyarrow import fs as pafs

        if not exist_ok and self.fs.get_file_info(self.path(rel)).type != pafs.FileType.NotFound:
            raise FileExistsError(self.path(rel))
        self.fs.create_dir(self.path(rel), recursive=True)

    def write_atomic(self, rel: str, data) -> None:
        final = self.path(rel)
        tmp = tmp_name(final)
        with self.fs.open_output_stream(tmp) as out:
            out.write(data)
        self.fs.move(tmp, final)

    def write_all_atomic(self, items) -> None:
        for rel, data in items:
            self.write_atomic(rel, data)

    def sync_dir(self, rel: str = "") -> None:
        return None

    def read(self, rel: str) -> bytes:
        try:
            with self.fs.open_input_stream(self.path(rel)) as f:
                return f.read()
        except OSError as e:
            if "not found" in str(e).lower() or "no such" in str(e).lower() or "does not exist" in str(e).lower():
                raise FileNotFoundError(self.path(rel)) from None
            raise

    def listdir(self, rel: str = "") -> list:
        from pyarrow import fs as pafs

        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.path(rel), allow_not_found=True))
        except (OSError, NotADirectoryError):
            return []
        return [(i.base_name, i.type == pafs.FileType.Directory) for i in infos]

    def mtime(self, rel: str) -> float:
        info = self.fs.get_file_info(self.path(rel))
        return info.mtime.timestamp() if info.mtime is not None else 0.0

    def remove(self, rel: str) -> None:
        self.fs.delete_file(self.path(rel))

    def rmtree(self, rel: str) -> None:
        self.fs.delete_dir(self.path(rel))
