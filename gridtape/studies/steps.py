"""Step labels of a study: the index of its profiles and of its outputs' ``step`` column.

A step takes one label that a study's Parquet files can hold and give back as it was (integers,
floats, strings, booleans, dates and timestamps, a time zone kept); the name of the index travels
as schema metadata, the column is always called ``step``.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa

from gridtape.errors import SchemaError

STEP = "step"
STEP_NAME = b"gridtape.step_name"  # schema metadata: the name of the step index (JSON), when it has one


def _index_array(index: pd.Index) -> pa.Array:
    """The step labels as an Arrow array; a tz-aware DatetimeIndex keeps its zone (a timestamp
    type with ``tz``: the instants as UTC, the zone as the type's)."""
    if isinstance(index, pd.DatetimeIndex):
        return pa.array(index)
    return pa.array(np.asarray(index))


def _index_meta(index: pd.Index) -> dict:
    """Schema metadata keeping the index's name (a step column is always called ``step``)."""
    return {} if index.name is None else {STEP_NAME: json.dumps(index.name)}


def _step_index(tb: pa.Table, column: str = STEP, name=None) -> pd.Index:
    """The step labels of a table's ``column`` (its zone kept), named as its metadata says."""
    meta = tb.schema.metadata or {}
    if STEP_NAME in meta:
        name = json.loads(meta[STEP_NAME])
    index = pd.Index(tb.column(column).to_pandas())
    index.name = name  # (not the column's)
    return index


def _check_index(index: pd.Index, kind, field) -> None:
    """A step index has steps, each once, each one label that a study's Parquet files can hold
    (and give back as it was): integers, floats, strings, booleans, dates and timestamps."""
    if len(index) == 0:
        raise SchemaError(f"profile ({kind}, {field}) has no steps (no rows)", table=kind, field=field)
    what = None
    if isinstance(index, pd.MultiIndex):
        what = f"a step index of {index.nlevels} levels"
    else:
        try:
            typ = _index_array(index).type
        except (pa.ArrowException, TypeError, ValueError):
            typ = None
        if typ is None:
            what = f"step labels of dtype {index.dtype} (e.g. {index[0]!r})"
        elif pa.types.is_nested(typ):
            what = f"step labels that are sequences (e.g. {index[0]!r})"
    if what is not None:
        raise SchemaError(f"profile ({kind}, {field}) has {what}: a step takes one label, an integer, float, "
                          f"string, date or timestamp (e.g. index.map(str), or a DatetimeIndex)",
                          table=kind, field=field)
    if not index.is_unique:
        dup = index[index.duplicated()][0]
        raise SchemaError(f"profile ({kind}, {field}) has step {dup!r} twice (each step label once)",
                          table=kind, field=field)
