"""The JSON manifest of a snapshot (or of a result archive): what was written, by whom, and the
hashes every file must match.

The manifest text is canonical JSON (sorted keys, compact separators, ASCII, one trailing newline:
the form Python's C encoder writes fastest) and carries
``manifest_sha256``, the sha256 of the canonical text of every other key.  Reading re-serializes
what it parsed and requires the same bytes, so any change to the file -- even in whitespace --
is caught and reported as :class:`SnapshotCorruptError` naming the manifest.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from gridtape.errors import CaseError, SnapshotCorruptError

FORMAT_WORLD = "gridtape.snapshot"
FORMAT_RESULTS = "gridtape.results"
FORMAT_VERSION = 1
_CHECK = "manifest_sha256"


@dataclass
class FileEntry:
    """One Parquet file of a snapshot."""

    name: str  # file name relative to the snapshot's directory ("bus.parquet")
    kind: str  # element kind, or result-table key
    rows: int
    bytes: int  # size of the file
    sha256: str  # of the file's bytes
    data_hash: str  # of the column contents, independent of the writer (see codec.data_hash)
    columns: list = field(default_factory=list)  # [[name, arrow type], ...] in hashing order
    next_id: int | None = None  # the kind's next id (world snapshots); ids are never reused
    extra: list = field(default_factory=list)  # [[column, encoding], ...] of pass-through columns


@dataclass
class Manifest:
    snapshot_id: str
    created_at: str  # UTC, ISO 8601
    gridtape_version: str
    schema_version: int
    schema_fingerprint: str
    files: list  # of FileEntry
    parent: str | None = None
    seq: int | None = None  # journal seq this snapshot covers
    author: str | None = None
    message: str | None = None
    network: dict | None = None  # {"sn_mva", "f_hz", "name"} for world snapshots
    meta: dict | None = None  # free JSON for result archives
    compression: str = "zstd"
    format: str = FORMAT_WORLD
    format_version: int = FORMAT_VERSION

    def file(self, kind: str) -> FileEntry:
        for f in self.files:
            if f.kind == kind:
                return f
        raise KeyError(kind)

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def digest(self) -> str:
        """The manifest's ``manifest_sha256`` (what the journal's snapshot event records)."""
        return hashlib.sha256(_canonical(asdict(self)).encode()).hexdigest()

    def to_json(self) -> str:
        body = asdict(self)
        body[_CHECK] = hashlib.sha256(_canonical(body).encode()).hexdigest()
        return _canonical(body)

    @classmethod
    def from_json(cls, text, *, file=None) -> "Manifest":
        """Parse and check a manifest; SnapshotCorruptError(file=...) on any damage."""
        try:
            if isinstance(text, (bytes, bytearray, memoryview)):
                text = bytes(text).decode("ascii")
            body = json.loads(text)
        except (UnicodeDecodeError, ValueError) as e:
            raise SnapshotCorruptError(f"manifest is not valid JSON: {e}", file=file) from None
        if not isinstance(body, dict):
            raise SnapshotCorruptError("manifest is not a JSON object", file=file)
        if _canonical(body) != text:
            raise SnapshotCorruptError("manifest bytes are not the canonical text it was written as", file=file)
        check = body.pop(_CHECK, None)
        if check != hashlib.sha256(_canonical(body).encode()).hexdigest():
            raise SnapshotCorruptError("manifest checksum does not match its content", file=file)
        if body.get("format") not in (FORMAT_WORLD, FORMAT_RESULTS):
            raise CaseError(f"not a gridtape snapshot manifest (format {body.get('format')!r})", file=file)
        if not isinstance(body.get("format_version"), int) or body["format_version"] > FORMAT_VERSION:
            raise CaseError(f"snapshot format version {body.get('format_version')!r} is newer than this "
                            f"gridtape reads ({FORMAT_VERSION})", file=file)
        try:
            files = [FileEntry(**f) for f in body.pop("files")]
            m = cls(files=files, **body)
        except (KeyError, TypeError) as e:
            raise SnapshotCorruptError(f"manifest misses or has unknown keys: {e}", file=file) from None
        _check_types(m, file)
        return m


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n"


def _check_types(m: Manifest, file) -> None:
    def bad(what):
        raise SnapshotCorruptError(f"manifest field {what} has a wrong type", file=file)

    for name in ("snapshot_id", "created_at", "gridtape_version", "schema_fingerprint", "compression"):
        if not isinstance(getattr(m, name), str):
            bad(name)
    if m.seq is not None and not isinstance(m.seq, int):
        bad("seq")
    if m.format == FORMAT_WORLD and not (isinstance(m.network, dict) and {"sn_mva", "f_hz", "name"} <= set(m.network)):
        bad("network")
    seen = set()
    for f in m.files:
        if not (isinstance(f.name, str) and isinstance(f.kind, str) and isinstance(f.rows, int)
                and isinstance(f.bytes, int) and isinstance(f.sha256, str) and isinstance(f.data_hash, str)
                and isinstance(f.columns, list) and isinstance(f.extra, list)):
            bad(f"files[{f.kind!r}]")
        if "/" in f.name or "\\" in f.name or f.name.startswith(".") or f.name in seen:
            bad(f"files[{f.kind!r}].name")
        seen.add(f.name)
        if m.format == FORMAT_WORLD and not isinstance(f.next_id, int):
            bad(f"files[{f.kind!r}].next_id")
