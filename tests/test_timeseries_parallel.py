"""Studies on executors: a Dask LocalCluster (two worker processes) gives the same bytes as one
thread for an independent sweep, and the chained series to 1e-9 p.u.; a process pool works too."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import gridtape as gt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _profiles(world, n):
    rng = np.random.default_rng(7)
    out = {}
    for kind in ("load", "gen"):
        t = world[kind]
        out[(kind, "p_mw")] = pd.DataFrame(t.cols["p_mw"] * (1 + 0.1 * rng.uniform(-1, 1, (n, len(t)))),
                                           columns=t.ids)
    out[("load", "p_mw")].iloc[50] *= 12  # one step that diverges
    return out


def test_dask_local_cluster_matches_one_thread(tmp_path):
    distributed = pytest.importorskip("distributed")
    g = gt.PowerGrid(os.path.join(ROOT, "cases", "IEEE118"), journal=False, tolerance_mva=1e-11, max_iteration=20)
    prof = _profiles(g.world, 120)
    one = g.timeseries(prof, independent=True, out_dir=str(tmp_path / "one"))
    chained = g.timeseries(prof)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            distributed.Client(c) as client:
        dask = g.timeseries(prof, independent=True, executor=client, chunk_size=25, out_dir=str(tmp_path / "dask"))
        dask_ex = g.timeseries(prof, independent=True, executor=client.get_executor(), chunk_size=40)
        dask_chained = g.timeseries(prof, executor=client, chunk_size=30, overlap=4)
    assert dask.manifest == one.manifest  # the same bytes in every file
    for name in one.manifest:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes()
    for o in one.outputs:
        assert np.array_equal(one[o].to_numpy(), dask_ex[o].to_numpy(), equal_nan=True)
        a, b = chained[o].to_numpy(), dask_chained[o].to_numpy()
        scale = 100.0 if o[1].endswith(("_mw", "_mvar", "percent")) else 1.0
        assert np.allclose(a / scale, b / scale, atol=1e-9, rtol=0, equal_nan=True), o
    assert not one.converged.iloc[50] and one.converged.sum() == 119
    assert (chained.converged == dask_chained.converged).all()


def test_process_pool_matches_one_thread():
    from concurrent.futures import ProcessPoolExecutor

    g = gt.PowerGrid(os.path.join(ROOT, "cases", "IEEE30"), journal=False)
    prof = _profiles(g.world, 60)
    one = g.timeseries(prof, independent=True)
    with ProcessPoolExecutor(2) as ex:
        pp = g.timeseries(prof, independent=True, executor=ex, chunk_size=16)
    for o in one.outputs:
        assert np.array_equal(one[o].to_numpy(), pp[o].to_numpy(), equal_nan=True)
