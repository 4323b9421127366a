"""Plots of a study's history: images are written; without matplotlib, an error that names the extra."""
from pathlib import Path

import numpy as np
import pytest

import gridtape as gt
from gridtape import plot
from test_cli_reprs import study  # noqa: F401 - the demo's study, shared (a module-scoped fixture)


def test_history_values_inputs_and_results(study):
    seqs, vals, conv = plot.history_values(study, "load", 99, "p_mw")
    assert list(seqs) == list(study.points())
    added = int(study.log(event="add").seq.iloc[0])
    assert np.isnan(vals[seqs < added]).all()  # before the add there is no load 99
    assert list(vals[np.isfinite(vals)]) == [80.0, 160.0, 240.0, 320.0]
    seqs, vm, conv = plot.history_values(study, "bus", 85, "vm_pu")
    assert conv[-1] is False and np.isnan(vm[-1]) and all(conv[:-1])
    g = study.at(int(seqs[-2]))
    g.solve()
    assert vm[-2] == pytest.approx(float(g.res_bus.vm_pu[85]))
    assert np.all(np.diff(vm[np.isfinite(vm)][-4:]) < 0)  # each phase lowers bus 85


def _png(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    return data


def test_plots_write_images(study, tmp_path):
    pytest.importorskip("matplotlib")
    res = study.bisect()
    fig = plot.plot_history(study, "bus", 85, "vm_pu", path=tmp_path / "h.png")
    _png(tmp_path / "h.png")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("bob: data centre phase 4" in t for t in texts) and any(t.startswith("ann:") for t in texts)
    plot.plot_profiles(study.at(tag="baseline"), study.at(res.seq), path=tmp_path / "p.png")
    _png(tmp_path / "p.png")
    plot.plot_loadability(study, path=tmp_path / "l.png")
    _png(tmp_path / "l.png")
    study.plot("load", 99, "p_mw", path=tmp_path / "s.png")  # the method form
    _png(tmp_path / "s.png")


def test_loadability_brackets_convergence(study):
    from gridtape.explain import loadability

    w = study.world_at(tag="baseline")
    k = loadability(w, resolution=0.02)
    assert 1.0 < k < 4.0

    def ok(f):
        g = gt.PowerGrid(world=w.copy(), journal=False)
        ids = g.world["load"].ids
        g.set("load", ids, "p_mw", g.world["load"].cols["p_mw"] * f)
        g.set("load", ids, "q_mvar", g.world["load"].cols["q_mvar"] * f)
        return g.solve().converged

    assert ok(k) and not ok(k + 0.05)


def test_without_matplotlib_the_error_names_the_extra(study, no_matplotlib):
    with pytest.raises(gt.errors.DependencyError, match=r"gridtape\[plot\]"):
        plot.plot_history(study, "load", 99, "p_mw")
    with pytest.raises(gt.errors.DependencyError, match="matplotlib"):
        plot.plot_profiles(study.at(tag="baseline"), study.at(tag="data-centre-1"))


def test_progress_is_silent_off_a_terminal_and_shows_when_forced(monkeypatch, capsys):
    from gridtape import progress

    monkeypatch.setenv("GRIDTAPE_PROGRESS", "0")
    items = [1, 2, 3]
    assert progress.progress(items) is items
    with progress.bar(total=3) as b:
        b.update()
    assert capsys.readouterr().err == ""
    pytest.importorskip("tqdm")
    monkeypatch.setenv("GRIDTAPE_PROGRESS", "1")
    assert list(progress.progress(items, desc="work")) == items
    assert "work" in capsys.readouterr().err
    import logging

    assert progress.logger is logging.getLogger("gridtape")
