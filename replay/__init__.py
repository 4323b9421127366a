"""The time machine: manifested Parquet snapshots, materialize at any event, diff, bisect."""
from .archive import case_zip_bytes, results_from_zip_bytes, results_zip_bytes, world_from_zip_bytes
from .codec import same_world
from .diff import apply_diff, diff_worlds, result_diff
from .manifest import FileEntry, Manifest
from .snapshot import clean, list_snapshots, read_snapshot, snapshot_at, verify_snapshot, write_snapshot

__all__ = ["write_snapshot", "read_snapshot", "list_snapshots", "snapshot_at", "verify_snapshot", "clean",
           "Manifest", "FileEntry",
           "case_zip_bytes", "world_from_zip_bytes", "results_zip_bytes", "results_from_zip_bytes",
           "diff_worlds", "apply_diff", "result_diff", "same_world"]
