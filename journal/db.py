"""The DuckDB side of the journal: tables, opening with lock errors translated, bulk inserts."""
from __future__ import annotations

import datetime
import os
import re

import duckdb
import numpy as np
import pyarrow as pa

from ..errors import JournalError, JournalLockedError
from .frames import decode
from .rows import COLUMNS, SQL_TYPES

FORMAT_VERSION = "1"

_ARROW = {"BIGINT": pa.int64(), "VARCHAR": pa.string(), "TINYINT": pa.int8(), "DOUBLE": pa.float64(),
          "BLOB": pa.binary()}
SCHEMA = pa.schema([(c, _ARROW[SQL_TYPES[c].split()[0]]) for c in COLUMNS])
#: the same with 64-bit text offsets (what frames decode to; DuckDB reads both as VARCHAR)
FRAME_SCHEMA = pa.schema([(f.name, pa.large_string() if f.type == pa.string() else f.type) for f in SCHEMA])


def connect(path, read_only):
    """A DuckDB connection; a lock held by another writer becomes JournalLockedError(file=path)."""
    if path is None:
        return duckdb.connect(":memory:")
    if read_only and not os.path.exists(path):
        raise JournalError("no journal at this path", file=path)
    try:
        return duckdb.connect(path, read_only=read_only)
    except (duckdb.IOException, duckdb.ConnectionException) as e:
        text = str(e)
        if "different configuration" in text:  # this process holds it with the other mode
            held = "a writer in this process" if read_only else "a reader or writer in this process"
            raise JournalLockedError(f"the journal is held by {held}: close() that PowerGrid, Study or "
                                     "Journal first (or open it in a `with` block)", file=path) from None
        if "lock" in text:
            pid = re.search(r"PID (\d+)", text)
            who = f"process {pid.group(1)}" if pid else "another process"
            held = "a writer" if read_only else "a reader or writer"
            raise JournalLockedError(f"the journal is held by {held} in {who}: close it there (PowerGrid.close(), "
                                     "Study.close(), Journal.close()) or stop that process", file=path) from None
        raise JournalError(f"cannot open the journal database: {text}", file=path) from None
    except duckdb.Error as e:
        raise JournalError(f"cannot open the journal database: {e}", file=path) from None


def hold_checkpoint(con, path):
    """A writer's connection checkpoints nothing into the database file when it closes (its WAL
    stays as it is) until ``release_checkpoint``: an open refused after its checks leaves every
    file byte-identical.  (Opening DuckDB only replays the WAL in memory.)"""
    if path is not None:
        con.execute("PRAGMA disable_checkpoint_on_shutdown")


def release_checkpoint(con):
    con.execute("PRAGMA enable_checkpoint_on_shutdown")


def set_meta(con, key, value, path=None):
    """Store one ``meta`` entry (its own DuckDB transaction)."""
    try:
        con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])
    except duckdb.Error as e:
        raise JournalError(f"cannot write the journal's meta: {e}", file=path, table="meta", field=key) from None


def create(con, path=None, meta=None):
    """Create the tables of a new journal (idempotent) and fill ``meta`` once, in one transaction:
    a writer killed while creating leaves all of it or none (never tables without ``meta``).
    A database holding other tables but no journal is left alone (JournalError)."""
    names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if names and "meta" not in names:
        raise JournalError("the database is not a gridtape journal (it has other tables)", file=path)
    cols = ", ".join(f"{c} {SQL_TYPES[c]}" for c in COLUMNS)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE TABLE IF NOT EXISTS events ({cols})")
        con.execute("CREATE TABLE IF NOT EXISTS blobs (sha256 VARCHAR PRIMARY KEY, name VARCHAR, "
                    "size BIGINT NOT NULL, data BLOB NOT NULL)")
        con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        if one(con, "SELECT count(*) FROM meta")[0] == 0:
            con.executemany("INSERT INTO meta VALUES (?, ?)", _meta_rows(meta))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _meta_rows(meta):
    return list((meta if meta is not None else new_meta()).items())


def new_meta() -> dict:
    """The ``meta`` entries of a journal created now."""
    try:
        from .. import __version__ as gv
    except ImportError:
        gv = None
    try:
        from ..world.schema import SCHEMA_VERSION as sv
        sv = str(sv)
    except ImportError:
        sv = None
    return {"format_version": FORMAT_VERSION,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "gridtape_version": gv, "schema_version": sv}


def check(con, path):
    """Raise JournalError unless the database is a journal of this format."""
    names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if not {"events", "meta", "blobs"} <= names:
        raise JournalError("the database is not a gridtape journal (tables events/meta/blobs missing)", file=path)
    fmt = one(con, "SELECT value FROM meta WHERE key = 'format_version'")
    if fmt is None or fmt[0] != FORMAT_VERSION:
        raise JournalError(f"journal format {fmt and fmt[0]!r}, this gridtape reads {FORMAT_VERSION!r}",
                           file=path, table="meta", field="format_version")


def meta(con) -> dict:
    return dict(con.execute("SELECT key, value FROM meta").fetchall())


def last_row(con, source="events"):
    """``(seq, tx, ts_ns, hash)`` of the last row, or None when empty."""
    return one(con, f"SELECT seq, tx, ts_ns, hash FROM {source} ORDER BY seq DESC LIMIT 1")


def one(con, sql, params=None):
    """The first row of a query, or None (fetches everything: duckdb 2 refuses new work on a
    connection whose last result was not read to the end)."""
    got = con.execute(sql, params).fetchall() if params else con.execute(sql).fetchall()
    return got[0] if got else None



def hash_array(hashes: bytes, n: int) -> pa.Array:
    """Joined 16-byte hashes as an Arrow binary array."""
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, pa.py_buffer(hashes)])
    return fixed.cast(pa.binary())


def frames_table(frame_list, prev: bytes):
    """Whole segment frames as one Arrow table in the ``events`` layout, their hashes chained
    on ``prev`` (the hash of the row before them), and the last row's hash: ``(table, last)``.
    Built from the column buffers journal/frames.pyx decodes (no Python object per row; the
    decoding and hashing run without the GIL)."""
    n, num, valid, text, hashes = decode(frame_list, prev)
    arrays = []
    for f in FRAME_SCHEMA:
        name = f.name
        if name == "hash":
            arrays.append(hash_array(hashes, n))
        elif name in text:
            bm, nulls, off, data = text[name]
            arrays.append(pa.Array.from_buffers(f.type, n, [pa.py_buffer(bm) if nulls else None, pa.py_buffer(off),
                                                            pa.py_buffer(data)], null_count=nulls))
        else:
            bm, nulls = valid.get(name, (None, 0))
            arrays.append(pa.Array.from_buffers(f.type, n, [pa.py_buffer(bm) if nulls else None,
                                                            pa.py_buffer(num[name])], null_count=nulls))
    return pa.Table.from_arrays(arrays, schema=FRAME_SCHEMA), (hashes[-16:] if n else prev)


def insert(con, table: pa.Table, path):
    """Append an Arrow table to ``events`` in one DuckDB transaction."""
    try:
        con.execute("BEGIN TRANSACTION")
        con.register("_gt_ingest", table)
        try:
            con.execute("INSERT INTO events SELECT * FROM _gt_ingest")
        finally:
            con.unregister("_gt_ingest")
        con.execute("COMMIT")
    except duckdb.Error as e:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass
        raise JournalError(f"cannot move events into DuckDB: {e}", file=path, table="events") from None


def fetch(con, sql, params=()):
    """Run a query and return its Arrow table, errors as JournalError."""
    try:
        rel = con.sql(sql, params=list(params) or None)
        # duckdb 2 renamed fetch_arrow_table / fetch_record_batch to to_arrow_table / to_arrow_reader
        return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.fetch_arrow_table()
    except duckdb.Error as e:
        raise JournalError(f"journal query failed: {e}", table="events") from None


def batches(con, sql, size):
    """Run a query and iterate its result as Arrow record batches of ``size`` rows."""
    try:
        rel = con.sql(sql)
        reader = rel.to_arrow_reader(size) if hasattr(rel, "to_arrow_reader") else rel.fetch_record_batch(size)
        yield from reader
    except duckdb.Error as e:
        raise JournalError(f"journal query failed: {e}", table="events") from None


def numpy_col(arr, fill=0):
    """An Arrow column as ``(values, valid)`` numpy arrays (NULL slots hold ``fill``)."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    valid = np.ones(len(arr), bool) if arr.null_count == 0 else arr.is_valid().to_numpy(zero_copy_only=False)
    return arr.fill_null(fill).to_numpy(zero_copy_only=False), valid
