"""The snapshot format inside an in-memory ZIP: a world (a "case zip") or a set of result tables.

A ZIP holds ``manifest.json`` plus the manifest's Parquet files at its top level, stored (not
deflated: the Parquet files are zstd-compressed already, and storing is faster).  Reading checks
every member against the manifest exactly as :func:`read_snapshot` does.
"""
from __future__ import annotations

import hashlib
import io
import zipfile

import pyarrow as pa

from gridtape.errors import SchemaError, SnapshotCorruptError
from gridtape.world.world import World

from . import codec
from .manifest import FORMAT_RESULTS, FileEntry, Manifest
from .snapshot import COMPRESSION, load_table, network_of, new_manifest, parquet_bytes, world_files, world_from_files

MANIFEST = "manifest.json"


def _zip(m: Manifest, files) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for entry, data in files:
            z.writestr(entry.name, data)
        z.writestr(MANIFEST, m.to_json())
    return buf.getvalue()


def _unzip(data) -> tuple:
    """(manifest, {member: bytes}) of a snapshot ZIP; SnapshotCorruptError naming the bad member."""
    try:
        z = zipfile.ZipFile(io.BytesIO(bytes(data)))
        names = set(z.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise SnapshotCorruptError(f"not a readable ZIP archive: {e}", file="<zip>") from None
    if MANIFEST not in names:
        raise SnapshotCorruptError("archive has no manifest", file=MANIFEST)

    def read(name):
        if name not in names:
            raise FileNotFoundError(name)
        try:
            return z.read(name)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            raise SnapshotCorruptError(f"member cannot be read: {e}", file=name) from None

    return Manifest.from_json(read(MANIFEST), file=MANIFEST), read


# --- worlds ------------------------------------------------------------------------------------
def case_zip_bytes(world: World, *, compression: str = COMPRESSION, **manifest_fields) -> bytes:
    """The world as a snapshot inside ZIP bytes (``manifest_fields``: parent, seq, author, message)."""
    files = world_files(world, compression)
    m = new_manifest([e for e, _ in files], network=network_of(world), compression=compression, **manifest_fields)
    return _zip(m, files)


def world_from_zip_bytes(data, *, verify: bool = True, with_manifest: bool = False):
    """The World of :func:`case_zip_bytes` bytes (and its Manifest when ``with_manifest``)."""
    m, read = _unzip(data)
    w = world_from_files(m, read, lambda name: name or MANIFEST, verify=verify)
    return (w, m) if with_manifest else w


# --- result tables -------------------------------------------------------------------------------
def results_zip_bytes(tables: dict, meta: dict | None = None, *, compression: str = COMPRESSION) -> bytes:
    """Result DataFrames (``{key: DataFrame}``, e.g. post_process()) with a JSON ``meta`` dict as a
    ZIP of one Parquet file per table plus a manifest.  Index, column order and dtypes round-trip."""
    files = []
    for key, df in tables.items():
        if not isinstance(key, str) or not key or key.startswith(".") or "/" in key or "\\" in key:
            raise SchemaError(f"result table key {key!r} is not a plain name", table=str(key))
        try:
            tb = pa.Table.from_pandas(df, preserve_index=True)
        except (pa.ArrowException, TypeError, ValueError) as e:
            raise SchemaError(f"result table cannot be stored: {e}", table=key) from None
        data = parquet_bytes(tb, compression)
        files.append((FileEntry(name=f"{key}.parquet", kind=key, rows=tb.num_rows, bytes=len(data),
                                sha256=hashlib.sha256(data).hexdigest(), data_hash=codec.data_hash(tb),
                                columns=codec.columns_of(tb)), data))
    try:
        m = new_manifest([e for e, _ in files], meta=dict(meta or {}), compression=compression, fmt=FORMAT_RESULTS)
        return _zip(m, files)
    except (TypeError, ValueError) as e:
        raise SchemaError(f"meta is not JSON-serializable: {e}", field="meta") from None


def results_from_zip_bytes(data, *, verify: bool = True, with_manifest: bool = False):
    """``{key: DataFrame}`` of :func:`results_zip_bytes` bytes (and the Manifest, whose ``meta``
    holds the meta dict, when ``with_manifest``)."""
    m, read = _unzip(data)
    if m.format != FORMAT_RESULTS:
        raise SnapshotCorruptError(f"not a result archive (format {m.format!r})", file=MANIFEST)
    out = {}
    for entry in m.files:
        try:
            raw = read(entry.name)
        except FileNotFoundError:
            raise SnapshotCorruptError("file listed in the manifest is missing", file=entry.name) from None
        tb = load_table(entry, raw, verify=verify, file=entry.name)
        out[entry.kind] = tb.to_pandas()
    return (out, m) if with_manifest else out
