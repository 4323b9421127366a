"""A study in the history: the ``study`` event, its verification, its rerun, its outputs in DuckDB.

One run is one ``study`` event (its own transaction) whose ``info`` (JSON) holds:

- ``type`` ("timeseries"), ``base_seq`` (the point of history the steps start from: the journal's
  last event when the run began), ``steps``, ``independent``;
- ``profiles``: the sha256 of the profiles' Parquet form, stored once as a content-addressed
  file beside the journal (``profiles_store`` "file", gridtape/studies/store.py; a journal in
  memory: parts of about 16 MB as journal blobs, ``profiles_store`` "blob"), and ``columns``: the
  profiled (kind, field, number of elements);
- ``outputs`` (``res_<kind>.<column>``), ``options`` (the solver options, chunk size, overlap,
  executor kind), ``version`` (gridtape's);
- ``dir`` (the output directory, relative to the journal's when beside it) and ``manifest``
  ({file: sha256} of the output files);
- ``converged``: how many steps converged (studies recorded before it was kept: counted from the
  steps file by :func:`study_summary`).
"""
from __future__ import annotations

import json
import os
import tempfile

import pandas as pd
import pyarrow.parquet as pq

from gridtape.errors import JournalError

from .sink import MANIFEST, sha256_file
from .store import check_profiles, load_profiles

STUDIES_SUFFIX = ".studies"


def default_dir(j, base_seq) -> str | None:
    """``<journal>.studies/study-<base seq>-<12 random hex>[-n]`` (None for an in-memory journal)."""
    if j.path is None:
        return None
    root = str(j.path) + STUDIES_SUFFIX
    stem = os.path.join(root, f"study-{base_seq}-{os.urandom(6).hex()}")
    d, n = stem, 1
    while os.path.exists(d):
        n += 1
        d = f"{stem}-{n}"
    return d


def _rel(j, d):
    if d is None or j.path is None:
        return d
    rel = os.path.relpath(os.path.abspath(d), os.path.dirname(os.path.abspath(str(j.path))))
    return d if rel.startswith("..") else rel


def _abs(j, d):
    if d is None or os.path.isabs(d) or j.path is None:
        return d
    return os.path.join(os.path.dirname(os.path.abspath(str(j.path))), d)


def record_study(j, base_seq, stored, prof, outs, opts, independent, size, overlap, executor, res) -> int:
    """Append the ``study`` event (``stored``: (sha256 list, store) of the stored profiles,
    store.store_profiles); returns its seq."""
    from gridtape import __version__

    from .outputs import output_name

    manifest = res.manifest
    if manifest is None:  # kept in memory: the hashes of the files it would write
        with tempfile.TemporaryDirectory() as tmp:
            manifest = res.to_parquet(tmp)
    info = {"type": "timeseries", "base_seq": int(base_seq), "steps": len(prof), "independent": bool(independent),
            "profiles": stored[0], "profiles_store": stored[1], "columns": [[e.kind, e.field, len(e.ids)] for e in prof.entries],
            "outputs": [output_name(*o) for o in outs],
            "options": {**opts, "chunk_size": size, "overlap": overlap,
                        "executor": None if executor is None else type(executor).__name__},
            "version": __version__, "dir": _rel(j, res.directory), "manifest": manifest,
            "converged": int(res.converged.sum())}
    j.begin(message=f"timeseries: {len(prof)} steps")
    seq = j.next_seq
    j.record("study", None, None, None, None, None, json.dumps(info, separators=(",", ":"), sort_keys=True))
    j.commit()
    return seq


def _journal(source):
    from gridtape.journal import Journal

    if isinstance(source, Journal):
        return source, False
    if hasattr(source, "journal") and isinstance(source.journal, Journal):
        return source.journal, False
    return Journal(str(source), read_only=True), True


def studies(source) -> pd.DataFrame:
    """Every ``study`` event of a journal (a Journal, a Study, a PowerGrid or a path): seq, time,
    author, base_seq, steps, independent, profiles, dir, info (the parsed dict)."""
    j, close = _journal(source)
    try:
        log = j.log(event="study")
    finally:
        if close:
            j.close()
    rows = []
    for seq, t, a, info in zip(log["seq"], log["time"], log["author"], log["info"]):
        d = json.loads(info)
        rows.append({"seq": int(seq), "time": t, "author": a, "base_seq": d["base_seq"], "steps": d["steps"],
                     "independent": d["independent"], "profiles": d["profiles"], "dir": d.get("dir"), "info": d})
    return pd.DataFrame(rows, columns=["seq", "time", "author", "base_seq", "steps", "independent", "profiles",
                                       "dir", "info"])


def study_info(j, seq=None) -> tuple:
    """(seq, info dict) of the study event ``seq`` (None: the latest)."""
    s = studies(j)
    if not len(s):
        raise JournalError("the journal records no study", file=j.path, field="seq")
    if seq is None:
        row = s.iloc[-1]
    else:
        m = s[s.seq == int(seq)]
        if not len(m):
            raise JournalError(f"seq {seq} is not a study event", file=j.path, row=int(seq), field="seq")
        row = m.iloc[0]
    return int(row["seq"]), row["info"]


def study_summary(j, info) -> dict:
    """What ``gridtape show`` tells of a study event (its parsed ``info``): steps, converged (None
    when neither recorded nor countable from the steps file), independent, base_seq, dir (the
    output directory as a path, None: kept in memory), outputs and options."""
    from .sink import STEPS_FILE

    d = _abs(j, info.get("dir"))
    conv = info.get("converged")
    if conv is None and d is not None:
        try:
            conv = int(pq.read_table(os.path.join(d, STEPS_FILE), columns=["converged"]).column(0).to_numpy(
                zero_copy_only=False).sum())
        except (OSError, ValueError, KeyError):  # (pyarrow's errors are OSError / ValueError)
            conv = None
    return {"type": info.get("type"), "steps": info["steps"], "converged": conv,
            "independent": info["independent"], "base_seq": info["base_seq"], "dir": d,
            "outputs": list(info.get("outputs", ())), "options": dict(info.get("options", {}))}


class StudyCheck:
    """What :func:`verify_study` / :func:`verify_outputs` found: ``ok``, ``bad`` (files whose hash
    differs), ``missing`` (files not there), ``problems`` (messages)."""

    def __init__(self, directory, bad, missing, problems):
        self.directory, self.bad, self.missing, self.problems = directory, bad, missing, problems

    @property
    def ok(self) -> bool:
        return not self.problems

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return f"<StudyCheck {'ok' if self.ok else '; '.join(self.problems)}>"


def verify_outputs(directory, manifest=None) -> StudyCheck:
    """Hash every file of ``manifest`` (default: the directory's manifest.json) in ``directory``."""
    if manifest is None:
        with open(os.path.join(directory, MANIFEST), encoding="utf-8") as fh:
            manifest = json.load(fh)["files"]
    bad, missing, problems = [], [], []
    for name, sha in sorted(manifest.items()):
        p = os.path.join(directory, name)
        if not os.path.exists(p):
            missing.append(name)
            problems.append(f"{name}: missing from {directory}")
        elif sha256_file(p) != sha:
            bad.append(name)
            problems.append(f"{name}: sha256 differs from the recorded one (the file was changed)")
    return StudyCheck(directory, bad, missing, problems)


def verify_study(source, seq=None) -> StudyCheck:
    """Check the study event ``seq`` (None: the latest): its profiles file (or blob) is there and
    hashes to its name, and every output file hashes to what the event recorded.  A changed file
    is named in ``bad``, a missing one in ``missing`` (the profiles file by its path, an output
    file by its name in ``directory``), each with a message in ``problems``."""
    j, close = _journal(source)
    try:
        seq, info = study_info(j, seq)
        bad, missing, problems = check_profiles(j, info)
        d = _abs(j, info.get("dir"))
        if d is None:
            chk = StudyCheck(None, bad, missing, problems)
        else:
            chk = verify_outputs(d, info["manifest"])
            chk.bad, chk.missing, chk.problems = bad + chk.bad, missing + chk.missing, problems + chk.problems
        return chk
    finally:
        if close:
            j.close()


def rerun_study(source, seq=None, out_dir=None, executor=None):
    """Run the study event ``seq`` (None: the latest) again from its recorded base point, profiles
    and options (nothing is recorded).  With ``out_dir`` the outputs are written there, file for
    file comparable with the recorded ones."""
    from gridtape.study import Study

    from .timeseries import run_timeseries

    j, close = _journal(source)
    try:
        seq, info = study_info(j, seq)
        blob = load_profiles(j, info)
        grid = Study(j).at(info["base_seq"])
        o = dict(info["options"])
        size, ov = o.pop("chunk_size"), o.pop("overlap")
        o.pop("executor", None)
        outs = [tuple(x[4:].split(".", 1)) for x in info["outputs"]]
        return run_timeseries(grid, blob, outs, independent=info["independent"], executor=executor,
                              progress=False, out_dir=out_dir, chunk_size=size, overlap=ov, record=False, options=o)
    finally:
        if close:
            j.close()


def load_study(source, seq=None, verify=True):
    """The study event ``seq`` (None: the latest) of a journal (a Journal, a Study, a PowerGrid or
    a path) read back as a :class:`TimeSeriesResult` from its recorded output files: converged,
    iterations, mismatch, every output, ``at(step)`` from the recorded base point, profiles and
    options; ``seq``, ``directory`` and ``manifest`` as recorded.  ``verify``: the profiles file
    and every output file are first checked against the event (a changed or missing one:
    JournalError naming it).  A study of a journal in memory kept no files: ``rerun_study``."""
    from gridtape.study import Study

    from .profiles import read_profiles
    from .result import TimeSeriesResult

    j, close = _journal(source)
    try:
        seq, info = study_info(j, seq)
        d = _abs(j, info.get("dir"))
        if d is None:
            raise JournalError(f"study {seq} kept its outputs in memory (its journal has no file): "
                               "rerun_study() computes them again", file=j.path, row=seq, field="dir")
        if verify:
            bad, missing, problems = check_profiles(j, info)
            out = verify_outputs(d, info["manifest"])
            names = bad + missing + [os.path.join(d, n) for n in out.bad + out.missing]
            if names:
                raise JournalError(f"study {seq} does not match its record: {'; '.join(problems + out.problems)}",
                                   file=names[0], row=seq, field="manifest")
        elif not os.path.isdir(d):
            raise JournalError(f"the output directory of study {seq} is missing", file=d, row=seq, field="dir")
        world = Study(j).at(info["base_seq"]).world
        prof = read_profiles(load_profiles(j, info, check=False), world)  # checked above when asked
        opts = {k: v for k, v in info["options"].items() if k not in ("chunk_size", "overlap", "executor")}
        outs = [tuple(x[4:].split(".", 1)) for x in info["outputs"]]
        res = TimeSeriesResult(prof.index, outs, world, prof, opts, directory=d, manifest=dict(info["manifest"]))
        if len(res.converged) != info["steps"]:
            raise JournalError(f"study {seq}: {len(res.converged)} steps in the files, {info['steps']} recorded",
                               file=d, row=seq, field="steps")
        res.seq = seq
        return res
    finally:
        if close:
            j.close()


def outputs_view(source, name="study_outputs", con=None) -> str:
    """A DuckDB view ``name`` over the output files of every study of the journal, long form:
    (study, output, step, id, value) -- on the journal's own connection (beside ``events``), or
    on ``con``.  E.g. the steps in which line 7 exceeded 100 %::

        SELECT study, step, value FROM study_outputs
        WHERE output = 'res_line.loading_percent' AND id = 7 AND value > 100
    """
    j, _ = _journal(source)
    con = j._con if con is None else con
    parts, kinds = [], set()
    for _, row in studies(j).iterrows():
        d = _abs(j, row["dir"])
        if d is None:
            continue
        for out in row["info"]["outputs"]:
            p = os.path.join(d, out + ".parquet")
            if not os.path.exists(p):
                continue
            schema = pq.read_schema(p)
            ids = json.loads(schema.metadata[b"gridtape.ids"])
            kinds.add(str(schema.field("step").type))
            q = p.replace("'", "''")
            parts.append(f"SELECT {int(row['seq'])}::BIGINT AS study, '{out}' AS output, step{{cast}} AS step, "
                         f"UNNEST({[int(i) for i in ids]}::BIGINT[]) AS id, UNNEST(\"values\") AS value "
                         f"FROM read_parquet('{q}')")
    # studies of different step types (numbers, times with and without a zone) side by side:
    # their steps as text, so that no value is converted into another's type or zone
    parts = [x.replace("{cast}", "::VARCHAR" if len(kinds) > 1 else "") for x in parts]
    if not parts:
        sql = "SELECT NULL::BIGINT AS study, NULL::VARCHAR AS output, NULL::BIGINT AS step, NULL::BIGINT AS id, " \
              "NULL::DOUBLE AS value WHERE false"
    else:
        sql = " UNION ALL ".join(parts)
    con.execute(f'CREATE OR REPLACE TEMP VIEW "{name}" AS {sql}')
    return name
