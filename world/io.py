"""One entry point for reading a case from disk, whatever its format."""
from __future__ import annotations

import os

from gridtape.errors import CaseError

from .world import World

#: file extension -> format name
FORMATS = {".json": "pandapower-json", ".zip": "csv-zip", ".m": "matpower"}


def load_case(path, *, strict=False) -> World:
    """Read a case file into a World, choosing the reader by extension:

    - ``.json``: pandapower JSON (:func:`~gridtape.world.io_json.read_pandapower_json`);
    - ``.zip``: the CSV-zip layout (:func:`~gridtape.world.io_csvzip.read_csv_zip`);
    - ``.m``: a MATPOWER case (:func:`~gridtape.world.io_matpower.read_matpower`);
    - a directory: its ``data.zip``, or else the one case file it holds.

    CaseError names the path when it does not exist, has an unknown extension, or is a
    directory without exactly one case file.  ``strict`` (JSON, CSV-zip) makes unknown columns
    a SchemaError instead of pass-through extras.

    Whatever the bytes, a reader returns a validated World or raises a gridtape error naming the
    file (and the table / row / field or line where it knows them); no library exception escapes
    and no file stays open (docs/reliability.md).
    """
    try:
        path = os.fspath(path)
    except TypeError:
        raise CaseError(f"not a path: {path!r}") from None
    if not os.path.exists(path):
        raise CaseError("case file does not exist", file=path)
    if os.path.isdir(path):
        path = _case_in_dir(path)
    ext = os.path.splitext(path)[1].lower()
    fmt = FORMATS.get(ext)
    if fmt == "pandapower-json":
        from .io_json import read_pandapower_json

        return read_pandapower_json(path, strict=strict)
    if fmt == "csv-zip":
        from .io_csvzip import read_csv_zip

        return read_csv_zip(path, strict=strict)
    if fmt == "matpower":
        from .io_matpower import read_matpower

        return read_matpower(path)
    raise CaseError(f"unknown case file extension {ext or '(none)'!r}; known: {', '.join(FORMATS)}", file=path)


def _case_in_dir(path: str) -> str:
    data = os.path.join(path, "data.zip")
    if os.path.isfile(data):
        return data
    try:
        names = os.listdir(path)
    except OSError as e:
        raise CaseError(f"cannot list the directory: {e.strerror or e}", file=path) from None
    found = sorted(f for f in names
                   if os.path.splitext(f)[1].lower() in FORMATS and os.path.isfile(os.path.join(path, f)))
    if len(found) == 1:
        return os.path.join(path, found[0])
    if not found:
        raise CaseError("directory holds no data.zip and no case file (.json, .zip, .m)", file=path)
    raise CaseError(f"directory holds several case files ({', '.join(found)}) and no data.zip", file=path)
