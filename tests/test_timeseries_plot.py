"""A time series' outputs drawn (issue 18: plots of time-series results): the figure shows the
chosen outputs, the limit and the diverged steps; without matplotlib, an error naming the extra."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gridtape as gt

CASE = Path(__file__).resolve().parent.parent / "cases" / "IEEE14" / "data.zip"


@pytest.fixture(scope="module")
def run():
    grid = gt.PowerGrid(str(CASE), journal=False)
    grid.solve()
    loads = grid.world["load"]
    k = np.concatenate([np.linspace(1.0, 1.3, 10), [60.0], np.linspace(1.3, 1.0, 9)])  # step 10 diverges
    prof = {("load", "p_mw"): pd.DataFrame(np.outer(k, loads.cols["p_mw"]), columns=loads.ids)}
    res = grid.timeseries(prof)
    assert not res.converged.iloc[10] and res.converged.drop(res.index[10]).all()
    return res


def test_timeseries_plot_draws_outputs_limit_and_diverged_steps(run, tmp_path):
    pytest.importorskip("matplotlib")
    fig = run.plot("line", "loading_percent", limit=100, path=tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    ax = fig.axes[0]
    frame = run["line", "loading_percent"]
    peak = frame.max().sort_values(ascending=False)
    assert [ln.get_label() for ln in ax.lines[:6]] == [f"line {i}" for i in peak.index[:6]]
    assert any(np.allclose(ln.get_ydata(), 100.0) for ln in ax.lines[6:])  # the limit
    assert len(ax.patches) == 1 and "1 not converged" in ax.get_title()  # step 10 shaded
    fig = run.plot("bus", "vm_pu", ids=[3, 4], limit=(0.95, 1.05))
    assert [ln.get_label() for ln in fig.axes[0].lines[:2]] == ["bus 3", "bus 4"]
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_ydata(), run["bus", "vm_pu"][3].to_numpy())


def test_timeseries_plot_without_matplotlib_names_the_extra(run, no_matplotlib):
    with pytest.raises(gt.errors.DependencyError, match=r"gridtape\[plot\]"):
        run.plot("line", "loading_percent", limit=100)
