"""The result of a time series or sweep: per-step status and the requested outputs."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gridtape.errors import SchemaError, UnknownStepError

from .outputs import output_name
from .sink import MANIFEST, STEPS_FILE, MemorySink, ParquetSink


class TimeSeriesResult:
    """``converged``, ``iterations``, ``mismatch`` (Series over the steps); ``outputs`` (the
    requested (kind, column) pairs); ``result(kind, column)`` or ``res[kind, column]`` or
    ``res["res_bus.vm_pu"]`` a DataFrame steps x element ids (NaN where a step did not converge);
    ``violations()``; ``at(step)``; ``to_parquet(dir)``, ``to_arrow()``, ``to_pandas()``.
    ``directory`` and ``manifest`` (file -> sha256) when the outputs were streamed to Parquet;
    ``seq``: the journal's ``study`` event (None when not recorded); a recorded one is read back
    by ``gridtape.studies.load_study``."""

    def __init__(self, index, outputs, base_world, profiles, options, *, arrays=None, directory=None,
                 manifest=None, seconds=0.0, status=None):
        self.index = index
        self.outputs = tuple(outputs)
        self.directory = directory
        self.manifest = manifest
        self.seq = None
        self.options = dict(options)
        self.seconds = seconds
        self._base = base_world
        self._profiles = profiles
        self._frames = {}
        if arrays is not None:
            (conv, it, mis), values = arrays
            self._status = pd.DataFrame({"converged": conv, "iterations": it, "mismatch": mis}, index=index)
            self._values = dict(zip(self.outputs, values))
        elif status is not None:  # what the sink wrote to steps.parquet, kept by it
            conv, it, mis = status
            self._status = pd.DataFrame({"converged": conv, "iterations": it, "mismatch": mis}, index=index)
            self._values = None
        else:
            st = pq.read_table(os.path.join(directory, STEPS_FILE)).to_pandas()
            self._status = st.drop(columns="step").set_index(pd.Index(index))
            self._values = None

    def __repr__(self):
        n, c = len(self.index), int(self._status.converged.sum())
        where = f", in {self.directory}" if self.directory else ""
        return f"<TimeSeriesResult: {n} steps, {c} converged, {len(self.outputs)} outputs{where}>"

    def __len__(self):
        return len(self.index)

    @property
    def converged(self) -> pd.Series:
        return self._status["converged"]

    @property
    def iterations(self) -> pd.Series:
        return self._status["iterations"]

    @property
    def mismatch(self) -> pd.Series:
        return self._status["mismatch"]

    @property
    def steps(self) -> pd.DataFrame:
        """converged, iterations, mismatch per step."""
        return self._status.copy()

    # --- outputs -------------------------------------------------------------------------------
    def _key(self, key):
        if isinstance(key, str):
            key = key.partition(".")[::2]
        key = tuple(key)
        if len(key) == 2 and isinstance(key[0], str) and key[0].startswith("res_"):
            key = (key[0][4:], key[1])  # "res_bus" as the result table's name: the kind "bus"
        if key not in self.outputs:
            name = f"res_{key[0]}.{key[1]}" if len(key) == 2 else repr(key)
            raise SchemaError(f"{name} was not requested; outputs: "
                              f"{[output_name(*o) for o in self.outputs]}", field="outputs")
        return tuple(key)

    def result(self, kind, column=None) -> pd.DataFrame:
        key = self._key(kind if column is None else (kind, column))
        fr = self._frames.get(key)
        if fr is None:
            if self._values is not None:
                ids = self._base[key[0]].ids
                fr = pd.DataFrame(self._values[key], index=self.index, columns=pd.Index(ids, name=key[0]))
            else:
                from .sink import read_output

                _, ids, vals = read_output(os.path.join(self.directory, output_name(*key) + ".parquet"))
                fr = pd.DataFrame(vals, index=self.index, columns=pd.Index(ids, name=key[0]))
            self._frames[key] = fr
        return fr

    __getitem__ = result

    def plot(self, kind, column, ids=None, limit=None, path=None):
        """``gridtape.plot.plot_timeseries`` of one output (the ``plot`` extra)."""
        from gridtape.plot import plot_timeseries

        return plot_timeseries(self, kind, column, ids=ids, limit=limit, path=path)

    # --- views -----------------------------------------------------------------------------------
    def violations(self, vm=(0.95, 1.05), loading=100.0) -> pd.DataFrame:
        """A long table (step, kind, id, quantity, value, limit) of every bus voltage outside
        ``vm`` and every line / trafo loading above ``loading`` (percent) among the outputs.
        ``vm``: a pair of finite numbers lo < hi (p.u.); ``loading``: a finite number > 0 (SchemaError
        naming the argument otherwise)."""
        lo, hi = _limits(vm, loading)
        parts = []
        for kind, col in self.outputs:
            if col == "vm_pu" and kind == "bus":
                fr = self.result(kind, col)
                for lim, bad in ((lo, fr < lo), (hi, fr > hi)):
                    parts.append(_long(fr, bad, kind, col, lim))
            elif col == "loading_percent":
                fr = self.result(kind, col)
                parts.append(_long(fr, fr > loading, kind, col, loading))
        cols = ["step", "kind", "id", "quantity", "value", "limit"]
        parts = [p for p in parts if len(p)]
        if not parts:
            return pd.DataFrame(columns=cols)
        return pd.concat(parts, ignore_index=True)[cols].sort_values(["step", "kind", "id"], kind="stable",
                                                                      ignore_index=True)

    def world_at(self, step):
        """The world of ``step`` (a step label of the index): the base world with that step's values."""
        try:
            k = self.index.get_loc(step)
        except (KeyError, TypeError, ValueError):
            raise UnknownStepError(f"step {step!r} is not a step of this study (its index runs from "
                                   f"{self.index[0] if len(self.index) else None!s} to "
                                   f"{self.index[-1] if len(self.index) else None!s}, {len(self.index)} steps)",
                                   field="step") from None
        if not isinstance(k, (int, np.integer)):
            raise SchemaError(f"step {step!r} is not one step of the index", field="step")
        w = self._base.copy()
        self._profiles.write_step(w, int(k))
        return w

    def at(self, step, solve=True, **grid_kwargs):
        """A PowerGrid (no journal) of ``step``'s world with the study's solver options, solved
        (``solve=False``: not), for inspection, ``gridtape.diff`` and bisect."""
        from gridtape.grid import PowerGrid

        o = self.options
        kw = {k: o[k] for k in ("tolerance_mva", "max_iteration", "init", "trafo_model", "qlim", "reuse_lu",
                                "distributed_slack") if k in o}
        kw.update(grid_kwargs)
        g = PowerGrid(world=self.world_at(step), journal=False, **kw)
        if solve:
            g.solve()
        return g

    # --- out -------------------------------------------------------------------------------------
    def to_parquet(self, directory) -> dict:
        """Write the outputs as the Parquet files of a run (see gridtape/studies/sink.py) into
        ``directory``; returns the manifest {file: sha256}."""
        from .runner import ChunkResult

        sink = ParquetSink(str(directory), self.outputs, self._base, self.index)
        c = ChunkResult(0, len(self.index), [])
        c.converged = self.converged.to_numpy()
        c.iterations = self.iterations.to_numpy()
        c.mismatch = self.mismatch.to_numpy()
        c.values = [self.result(*o).to_numpy() for o in self.outputs]
        sink.add(c)
        return sink.close()

    def to_arrow(self) -> pa.Table:
        """One wide Arrow table: step, converged, iterations, mismatch, then a column
        ``res_<kind>.<column>/<id>`` per output and element."""
        from .sink import step_array

        cols = {"step": step_array(self.index), "converged": pa.array(self.converged.to_numpy()),
                "iterations": pa.array(self.iterations.to_numpy()), "mismatch": pa.array(self.mismatch.to_numpy())}
        for o in self.outputs:
            fr = self.result(*o)
            for i, c in zip(fr.columns, fr.to_numpy().T):
                cols[f"{output_name(*o)}/{i}"] = pa.array(c)
        return pa.table(cols)

    def to_pandas(self) -> pd.DataFrame:
        """One DataFrame indexed by step with MultiIndex columns (output, id) beside the step status."""
        frames = {("status", c): self._status[c] for c in self._status.columns}
        out = pd.DataFrame(frames)
        parts = [out] + [pd.concat({output_name(*o): self.result(*o)}, axis=1) for o in self.outputs]
        return pd.concat(parts, axis=1)

    def verify(self):
        """Check the output files against the manifest (see gridtape.studies.verify_outputs)."""
        from .record import verify_outputs

        if self.directory is None:
            raise SchemaError("this result was kept in memory: nothing to verify", field="directory")
        return verify_outputs(self.directory, self.manifest)


def _number(v):
    """``v`` as a finite float, None if it is not one (a bool, text, NaN, inf)."""
    import numbers

    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        return None
    v = float(v)
    return v if np.isfinite(v) else None


def _limits(vm, loading):
    """The (lo, hi) of a ``vm`` band, ``loading`` checked (``violations``)."""
    pair = tuple(vm) if isinstance(vm, (tuple, list, np.ndarray)) else None
    lo, hi = (_number(x) for x in pair) if pair is not None and len(pair) == 2 else (None, None)
    if lo is None or hi is None or not lo < hi:
        raise SchemaError(f"vm must be a pair (lo, hi) of finite numbers with lo < hi, in p.u., not {vm!r}",
                          field="vm")
    lim = _number(loading)
    if lim is None or lim <= 0:
        raise SchemaError(f"loading must be a finite number > 0 (percent), not {loading!r}", field="loading")
    return lo, hi


def _long(fr, bad, kind, col, limit):
    m = bad.to_numpy()
    r, c = np.nonzero(m)
    return pd.DataFrame({"step": fr.index[r], "kind": kind, "id": fr.columns.to_numpy()[c],
                         "quantity": col, "value": fr.to_numpy()[r, c], "limit": float(limit)})


def result_from_sink(sink, index, outputs, base_world, profiles, options, seconds):
    if isinstance(sink, MemorySink):
        return TimeSeriesResult(index, outputs, base_world, profiles, options, arrays=sink.arrays(), seconds=seconds)
    manifest = sink.close()
    return TimeSeriesResult(index, outputs, base_world, profiles, options, directory=sink.directory,
                            manifest=manifest, seconds=seconds, status=sink.status())


__all__ = ["TimeSeriesResult", "MANIFEST"]
