"""Manifested Parquet snapshots of a World.

Layout under a snapshot directory ``D`` (see docs/snapshot-format.md)::

    D/<snapshot_id>/<kind>.parquet      one file per element kind, empty kinds too
    D/<snapshot_id>.manifest.json       written last; a snapshot exists iff this file does

Writing is crash-safe: every data file goes to a temporary name, is fsynced and renamed; the
directories are fsynced; only then is the manifest written the same way (temporary name, fsync,
``os.replace``, fsync of ``D``).  A crash at any moment leaves earlier snapshots intact and at most
some stray files that :func:`list_snapshots` ignores and :func:`clean` removes.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq

import gridtape
from gridtape.errors import CaseError, GridtapeError, SchemaError, SnapshotCorruptError
from gridtape.world.schema import KIND_ORDER, KINDS, SCHEMA_VERSION, fingerprint
from gridtape.world.world import World

from . import codec
from .manifest import FORMAT_WORLD, FileEntry, Manifest
from .store import TMP_MARK, open_store

MANIFEST_SUFFIX = ".manifest.json"
COMPRESSION = "zstd"  # measured on case9241: 0.46 MB vs 3.4 MB uncompressed, write +3 ms
_ID_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


# --- encoding a world into files and back ------------------------------------------------------
def parquet_bytes(tb: pa.Table, compression: str = COMPRESSION) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(tb, sink, compression=compression, use_dictionary=False, write_statistics=False)
    return sink.getvalue().to_pybytes()


def _no_pause():
    pass


def world_files(world: World, compression: str = COMPRESSION, pause=None) -> list:
    """``[(FileEntry, bytes), ...]``, one Parquet file per kind in KIND_ORDER.  ``pause()``, when
    given, is called between the encoding steps (a background writer lets other threads run)."""
    pause = pause or _no_pause
    out = []
    for kind in KIND_ORDER:
        t = world.tables[kind]
        pause()
        tb, extras = codec.table_to_arrow(t)
        pause()
        data = parquet_bytes(tb, compression)
        pause()
        dh = codec.data_hash(tb)
        out.append((FileEntry(name=f"{kind}.parquet", kind=kind, rows=tb.num_rows, bytes=len(data),
                              sha256=hashlib.sha256(data).hexdigest(), data_hash=dh,
                              columns=codec.columns_of(tb), next_id=int(t.next_id), extra=extras), data))
    return out


def new_manifest(files, *, network=None, meta=None, parent=None, seq=None, author=None, message=None,
                 compression=COMPRESSION, snapshot_id=None, fmt=FORMAT_WORLD) -> Manifest:
    now = datetime.now(timezone.utc)
    if snapshot_id is None:
        snapshot_id = now.strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(4)
    elif not isinstance(snapshot_id, str) or not _ID_OK.match(snapshot_id) or TMP_MARK in snapshot_id:
        raise SchemaError(f"snapshot id {snapshot_id!r} must match {_ID_OK.pattern}", field="snapshot_id")
    if isinstance(parent, Manifest):
        parent = parent.snapshot_id
    if seq is not None:
        seq = int(seq)
    return Manifest(snapshot_id=snapshot_id, created_at=now.isoformat(timespec="microseconds"),
                    gridtape_version=gridtape.__version__, schema_version=SCHEMA_VERSION,
                    schema_fingerprint=fingerprint(), files=list(files), parent=parent, seq=seq, author=author,
                    message=message, network=network, meta=meta, compression=compression, format=fmt)


def network_of(world: World) -> dict:
    return {"sn_mva": float(world.sn_mva), "f_hz": float(world.f_hz), "name": world.name}


def load_table(entry: FileEntry, data, *, verify: bool, file) -> pa.Table:
    """Parse one file's bytes, checking size and hashes against its manifest entry when ``verify``."""
    if verify:
        if len(data) != entry.bytes:
            raise SnapshotCorruptError(f"file has {len(data)} bytes, manifest says {entry.bytes}", file=file)
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise SnapshotCorruptError("sha256 of the file does not match the manifest", file=file)
    try:
        tb = pq.ParquetFile(pa.BufferReader(data)).read()
    except (pa.ArrowException, OSError, ValueError) as e:
        raise SnapshotCorruptError(f"not a readable Parquet file: {e}", file=file) from None
    tb = codec.canonical(tb, entry.columns, file=file)
    if tb.num_rows != entry.rows:
        raise SnapshotCorruptError(f"file has {tb.num_rows} rows, manifest says {entry.rows}", file=file)
    if verify and codec.data_hash(tb) != entry.data_hash:
        raise SnapshotCorruptError("data hash of the columns does not match the manifest", file=file)
    return tb


def world_from_files(m: Manifest, read, label, *, verify: bool = True) -> World:
    """Rebuild the world of manifest ``m``; ``read(name) -> bytes`` fetches a file (FileNotFoundError
    when missing), ``label(name)`` names it in errors.

    The files are read, checked and decoded in a small thread pool (Parquet decoding and the
    hashes release the GIL), largest first; the first bad file in manifest order is the one
    raised, as if they had been read one after the other."""
    if m.format != FORMAT_WORLD:
        raise CaseError(f"not a world snapshot (format {m.format!r})", file=label(""))
    net = m.network
    w = World(sn_mva=net["sn_mva"], f_hz=net["f_hz"], name=net["name"])

    def one(entry):
        file = label(entry.name)
        if entry.kind not in KINDS:
            raise SchemaError(f"snapshot holds unknown element kind {entry.kind!r}", file=file, table=entry.kind)
        try:
            data = read(entry.name)
        except (FileNotFoundError, KeyError):
            raise SnapshotCorruptError("file listed in the manifest is missing", file=file) from None
        tb = load_table(entry, data, verify=verify, file=file)
        return codec.table_from_arrow(entry.kind, tb, entry.extra, entry.next_id, file=file)

    jobs = {id(e): _pool().submit(one, e) for e in sorted(m.files, key=lambda e: -e.bytes)}
    for entry in m.files:
        w.tables[entry.kind] = jobs[id(entry)].result()  # raises the first bad file's error
    if m.schema_fingerprint != fingerprint():
        w.validate(file=label(""))
    return w


_POOL = []


def _pool():
    """The readers' thread pool (made at the first read; a forked child makes its own)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    if not _POOL or _POOL[0][0] != os.getpid():
        _POOL[:] = [(os.getpid(), ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="gridtape-snapshot-read"))]
    return _POOL[0][1]


#: threads decoding the files of one snapshot (Parquet decoding and hashing release the GIL)
READERS = 4


# --- the snapshot directory ----------------------------------------------------------------------
def write_snapshot(world: World, directory, *, parent=None, seq=None, author=None, message=None,
                   filesystem=None, compression: str = COMPRESSION, snapshot_id=None, pause=None) -> Manifest:
    """Write ``world`` as a new snapshot under ``directory``; returns its manifest.  ``pause()``,
    when given, is called between encoding steps (see :func:`world_files`)."""
    files = world_files(world, compression, pause)
    if pause is not None:
        pause()
    m = new_manifest([e for e, _ in files], network=network_of(world), parent=parent, seq=seq, author=author,
                     message=message, compression=compression, snapshot_id=snapshot_id)
    store = open_store(directory, filesystem)
    sid = m.snapshot_id
    store.makedirs("")
    if any(name in (sid, sid + MANIFEST_SUFFIX) for name, _ in store.listdir("")):
        raise GridtapeError("a snapshot with this id already exists", file=store.path(sid + MANIFEST_SUFFIX))
    store.makedirs(sid, exist_ok=False)
    store.write_all_atomic([(f"{sid}/{entry.name}", data) for entry, data in files])
    store.sync_dir(sid)
    store.sync_dir("")
    store.write_atomic(sid + MANIFEST_SUFFIX, m.to_json().encode("ascii"))
    store.sync_dir("")
    return m


def _locate(path, snapshot_id, filesystem):
    """(store, snapshot id) from a directory + id, a manifest path, or a directory (its latest)."""
    p = str(path)
    if snapshot_id is None and p.endswith(MANIFEST_SUFFIX):
        head, _, base = p.replace("\\", "/").rpartition("/")
        return open_store(head or ".", filesystem), base[: -len(MANIFEST_SUFFIX)]
    store = open_store(path, filesystem)
    if isinstance(snapshot_id, Manifest):
        snapshot_id = snapshot_id.snapshot_id
    if snapshot_id is None:
        found = list_snapshots(path, filesystem=filesystem)
        if not found:
            raise CaseError("no complete snapshot in this directory", file=store.path(""))
        snapshot_id = found[-1].snapshot_id
    return store, snapshot_id


def read_manifest(store, sid: str) -> Manifest:
    file = store.path(sid + MANIFEST_SUFFIX)
    try:
        data = store.read(sid + MANIFEST_SUFFIX)
    except FileNotFoundError:
        if not any(name == sid for name, _ in store.listdir("")):
            raise CaseError(f"no snapshot {sid!r} in this directory", file=file) from None
        raise SnapshotCorruptError(f"snapshot {sid!r} is incomplete: its manifest is missing", file=file) from None
    m = Manifest.from_json(data, file=file)
    if m.snapshot_id != sid:
        raise SnapshotCorruptError(f"manifest is for snapshot {m.snapshot_id!r}", file=file)
    return m


def read_snapshot(path, snapshot_id=None, *, verify: bool = True, filesystem=None) -> tuple:
    """``(World, Manifest)`` of one snapshot.  ``path`` is the snapshot directory with ``snapshot_id``
    (None = the latest), or the path of a ``.manifest.json``.  With ``verify`` every file's size,
    sha256 and data hash are checked; any mismatch or missing file raises SnapshotCorruptError."""
    store, sid = _locate(path, snapshot_id, filesystem)
    m = read_manifest(store, sid)
    w = world_from_files(m, lambda name: store.read(f"{sid}/{name}"),
                         lambda name: store.path(f"{sid}/{name}") if name else store.path(sid + MANIFEST_SUFFIX),
                         verify=verify)
    return w, m


def list_snapshots(directory, *, filesystem=None) -> list:
    """Manifests of the complete snapshots in ``directory``, oldest first: ordered by ``seq`` (those
    without a seq by creation time, after them), then created_at.  Never raises on damaged
    content: unreadable manifests and stray files are skipped (see :func:`verify_snapshot`)."""
    store = open_store(directory, filesystem)
    out = []
    for name, is_dir in store.listdir(""):
        if is_dir or not name.endswith(MANIFEST_SUFFIX):
            continue
        try:
            out.append(read_manifest(store, name[: -len(MANIFEST_SUFFIX)]))
        except (GridtapeError, OSError):
            continue
    out.sort(key=lambda m: (m.seq is None, m.seq if m.seq is not None else 0, m.created_at, m.snapshot_id))
    return out


def snapshot_at(directory, seq: int, *, filesystem=None) -> Manifest | None:
    """The manifest of the complete snapshot with the largest ``seq <= seq`` (latest created on a
    tie), or None: the starting point for materializing the world at journal event ``seq``."""
    best = None
    for m in list_snapshots(directory, filesystem=filesystem):
        if m.seq is not None and m.seq <= seq:
            best = m
    return best


def verify_snapshot(path, snapshot_id=None, *, filesystem=None) -> list:
    """Problems found, as strings (empty = all good).  With a directory and no ``snapshot_id``,
    every manifest in it is checked (including those :func:`list_snapshots` skips)."""
    p = str(path)
    if snapshot_id is None and not p.endswith(MANIFEST_SUFFIX):
        store = open_store(path, filesystem)
        sids = sorted(n[: -len(MANIFEST_SUFFIX)] for n, d in store.listdir("") if not d and n.endswith(MANIFEST_SUFFIX))
    else:
        store, sid = _locate(path, snapshot_id, filesystem)
        sids = [sid]
    problems = []
    for sid in sids:
        try:
            m = read_manifest(store, sid)
        except GridtapeError as e:
            problems.append(str(e))
            continue
        for entry in m.files:
            file = store.path(f"{sid}/{entry.name}")
            try:
                data = store.read(f"{sid}/{entry.name}")
                load_table(entry, data, verify=True, file=file)
            except FileNotFoundError:
                problems.append(str(SnapshotCorruptError("file listed in the manifest is missing", file=file)))
            except GridtapeError as e:
                problems.append(str(e))
    return problems


def clean(directory, *, filesystem=None, older_than_s: float = 0.0) -> list:
    """Remove what crashed writers left behind: temporary files, and snapshot directories that have
    no manifest and hold nothing but (temporary) Parquet files.  A directory whose manifest exists
    but is damaged is kept.  Returns the removed paths.  Entries modified in the last
    ``older_than_s`` seconds are kept, so a writer running concurrently is not disturbed."""
    import time

    store = open_store(directory, filesystem)
    entries = store.listdir("")
    manifests = {n[: -len(MANIFEST_SUFFIX)] for n, d in entries if not d and n.endswith(MANIFEST_SUFFIX)}
    cutoff = time.time() - older_than_s
    removed = []

    def young(rel):
        try:
            return older_than_s > 0 and store.mtime(rel) > cutoff
        except OSError:
            return True

    for name, is_dir in entries:
        if not is_dir and TMP_MARK in name and not young(name):
            store.remove(name)
            removed.append(store.path(name))
        elif is_dir:
            inside = store.listdir(name)
            if name in manifests:
                for sub, sub_dir in inside:
                    if not sub_dir and TMP_MARK in sub and not young(f"{name}/{sub}"):
                        store.remove(f"{name}/{sub}")
                        removed.append(store.path(f"{name}/{sub}"))
            elif _ID_OK.match(name) and all(not d and (s.endswith(".parquet") or ".parquet" + TMP_MARK in s)
                                            for s, d in inside) and not young(name):
                store.rmtree(name)
                removed.append(store.path(name))
    return removed
