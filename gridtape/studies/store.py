"""The profiles of a recorded study: one content-addressed Parquet file beside the journal.

``<journal>.studies/profiles/<sha256>.parquet`` holds the profiles' stored form
(:meth:`Profiles.write_parquet`), named by the sha256 of its bytes and written once: a study of
the same profiles finds the file there.  The ``study`` event records the sha256
(``info["profiles"]``, a list of one) and ``info["profiles_store"] = "file"``;
:func:`check_profiles` (called by ``verify_study``) re-hashes the file, :func:`load_profiles`
(``rerun_study``, ``load_study``) refuses a file that no longer hashes to it.

A journal without a file (in memory) stores the profiles as journal blobs instead
(``Journal.put_blob``, parts of about 16 MB), as studies recorded before the file store did
(their events have no ``profiles_store``); both are read back by :func:`load_profiles`.

Why a file: DuckDB's blob insert costs about 17 ms of CPU per MB (1.4 ms a step for the 10,600
profiled values of case9241pegase), a streamed file write with its sha256 about 2 ms per MB,
and holds one row group in memory instead of several times the blob.
"""
from __future__ import annotations

import hashlib
import os
import uuid

from gridtape.errors import JournalError

PROFILES_DIR = "profiles"


def profiles_dir(j) -> str:
    from .record import STUDIES_SUFFIX

    return os.path.join(str(j.path) + STUDIES_SUFFIX, PROFILES_DIR)


def profiles_path(j, sha) -> str:
    return os.path.join(profiles_dir(j), f"{sha}.parquet")


def store_profiles(j, prof) -> tuple:
    """Store ``prof`` (a Profiles) for journal ``j``: ``(list of sha256, store)``, store "file"
    (the content-addressed file, flushed to disk) or "blob" (a journal without a file)."""
    if j.path is None:
        return [j.put_blob(b, name="profiles") for b in prof.to_parquet_parts()], "blob"
    d = profiles_dir(j)
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, f".tmp-{uuid.uuid4().hex}")
    try:
        # written by pyarrow's own file (no Python call per write: this runs in a thread beside
        # the steps), then hashed back from the page cache and flushed to disk
        prof.write_parquet(tmp)
        sha = _sha_file(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        final = profiles_path(j, sha)
        if os.path.exists(final) and _sha_file(final) == sha:
            os.remove(tmp)
        else:
            os.replace(tmp, final)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise JournalError(f"cannot store the profiles: {e}", file=d, table="profiles") from None
    return [sha], "file"


def _sha_file(path) -> str:
    from .sink import sha256_file

    return sha256_file(path)


def load_profiles(j, info, check=True) -> list:
    """The stored profiles of a study event's ``info``: a list of Parquet bytes, each checked
    against its recorded sha256 (a missing or changed file or blob: JournalError naming it;
    ``check=False``: a changed one is read as it is)."""
    out = []
    for sha in info["profiles"]:
        if info.get("profiles_store") != "file":
            data = j.get_blob(sha)
            if check and hashlib.sha256(data).hexdigest() != sha:
                raise JournalError(f"the profiles blob {sha} does not hash to its recorded sha256 (it was changed)",
                                   file=j.path, table="blobs", field="sha256")
            out.append(data)
            continue
        p = profiles_path(j, sha)
        if not os.path.exists(p):
            raise JournalError(f"the profiles file {p} is missing", file=p, table="profiles", field="sha256")
        with open(p, "rb") as fh:
            data = fh.read()
        if check and hashlib.sha256(data).hexdigest() != sha:
            raise JournalError(f"the profiles file {p} does not hash to its recorded sha256 {sha} (the file was "
                               "changed): refusing to use it", file=p, table="profiles", field="sha256")
        out.append(data)
    return out


def check_profiles(j, info) -> tuple:
    """``(bad, missing, problems)`` of a study event's stored profiles: the paths of profiles
    files (or the names ``blob <sha256>``) that are changed, those that are not there, and a
    message for each."""
    bad, missing, problems = [], [], []
    for sha in info["profiles"]:
        if info.get("profiles_store") == "file":
            p = profiles_path(j, sha)
            if not os.path.exists(p):
                missing.append(p)
                problems.append(f"profiles file {p}: missing")
            elif _sha_file(p) != sha:
                bad.append(p)
                problems.append(f"profiles file {p}: content does not hash to its name (the file was changed)")
            continue
        try:
            if hashlib.sha256(j.get_blob(sha)).hexdigest() != sha:
                bad.append(f"blob {sha}")
                problems.append(f"profiles blob {sha}: content does not hash to its name")
        except JournalError as e:
            missing.append(f"blob {sha}")
            problems.append(f"profiles blob: {e}")
    return bad, missing, problems


def discard_profiles(j, stored) -> None:
    """Take back the stored profiles ``stored`` ((sha256 list, store), :func:`store_profiles`) of
    a run that failed, unless a study event of the journal refers to them (studies of the same
    profiles share them): the file (and the directories it made, when left empty), or the
    journal's blobs."""
    from .record import studies

    shas, kind = stored[0], stored[1]
    used = {s for p in studies(j)["profiles"] for s in p}
    for sha in shas:
        if sha in used:
            continue
        try:
            if kind == "file":
                os.remove(profiles_path(j, sha))
            else:
                j._con.execute("DELETE FROM blobs WHERE sha256 = ? AND name = 'profiles'", [sha])
        except Exception:  # noqa: BLE001 - the run's own error is the one to report
            pass
    if kind == "file":
        for d in (profiles_dir(j), os.path.dirname(profiles_dir(j))):
            try:
                os.rmdir(d)  # only when empty
            except OSError:
                pass
