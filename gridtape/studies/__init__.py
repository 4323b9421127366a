"""Studies: time series and scenario sweeps over one point of history (docs/studies.md).

``grid.timeseries(profiles, outputs=None, *, independent=False, executor=None, progress=None, ...)``
runs them (with the grid's solver options unless given); this package holds the pieces:

- profiles.py  reading and validating profiles (mapping, DFData-like, SimBench, wide table);
- outputs.py   the requested result columns, read off each solve;
- runner.py    the step loop on a private world (chained and independent modes);
- parallel.py  chunks on a concurrent.futures executor or a Dask cluster;
- sink.py      outputs in memory or streamed to Parquet files with a manifest;
- result.py    TimeSeriesResult;
- record.py    the journal's ``study`` event, verify, rerun, load, the DuckDB view;
- store.py     the stored profiles (a content-addressed file beside the journal);
- cli.py       ``gridtape timeseries JOURNAL PROFILES.parquet``.
"""
from .outputs import DEFAULT as DEFAULT_OUTPUTS
from .profiles import Profiles, read_profiles
from .record import load_study, outputs_view, rerun_study, studies, verify_outputs, verify_study
from .result import TimeSeriesResult
from .timeseries import run_timeseries

__all__ = ["DEFAULT_OUTPUTS", "Profiles", "read_profiles", "TimeSeriesResult", "run_timeseries", "studies",
           "verify_study", "verify_outputs", "rerun_study", "load_study", "outputs_view"]
