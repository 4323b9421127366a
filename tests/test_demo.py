"""``gridtape demo``, as a newcomer runs it: a journaled study whose history is then read back."""
import os
import subprocess
import sys

import numpy as np
import pytest

import gridtape as gt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    keep = tmp_path_factory.mktemp("demo")
    run = subprocess.run([sys.executable, "-m", "gridtape.cli", "demo", "--keep", str(keep)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    return run, keep


def test_demo_runs_and_fits_a_terminal(demo):
    run, _ = demo
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) > 20
    assert max(len(line) for line in lines) <= 80
    for section in ("the log", "bisect", "its diff", "blame", "before and after", "why it diverges", "margin"):
        assert any(section in line for line in lines), section
    why = next(line for line in lines if "why: " in line)
    assert "load" in why and "bus 85" in why and "% past" in why
    assert any("largest mismatch" in line and "bus 85" in line for line in lines)


def test_demo_journal_is_a_real_study(demo):
    run, keep = demo
    path = os.path.join(keep, "study.duckdb")
    with gt.open(path) as study:
        assert study.journal.verify() > 20
        log = study.log()
        assert {"ann", "bob"} <= set(log.author.dropna())
        assert {"baseline", "data-centre-1"} <= set(log[log.event == "tag"].message)
        res = study.bisect()
        assert res is not None and res.author == "bob" and "phase 4" in res.message
        assert f"tx {res.tx} by bob" in run.stdout
        assert study.at(res.good_seq).solve().converged and not study.at(res.seq).solve().converged


def test_demo_margin_is_the_brute_force_margin(demo):
    """The printed margin: the breaking load step scaled by it converges; 3 % more does not."""
    run, keep = demo
    line = next(s for s in run.stdout.splitlines() if "of the breaking change still converges" in s)
    margin = float(line.split("%")[0]) / 100
    with gt.open(os.path.join(keep, "study.duckdb")) as study:
        res = study.bisect()
        before = study.at(res.good_seq)
    sets = res.diff[res.diff.change == "set"]

    def converges(lam):
        g = gt.PowerGrid(world=before.world.copy(), journal=False)
        for row in sets.itertuples(index=False):
            g.set(row.kind, [int(row.id)], row.field, [row.old + lam * (row.new - row.old)])
        return g.solve().converged

    assert 0.05 < margin < 0.98
    assert converges(margin - 0.005)
    assert not converges(min(1.0, margin + 0.03))


def test_version_and_broken_pipe():
    out = subprocess.run([sys.executable, "-m", "gridtape.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("gridtape ") and gt.__version__ in out.stdout
    p = subprocess.Popen([sys.executable, "-m", "gridtape.cli", "solve", "cases/PEGASE2869/data.zip", "--rows", "5000"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.stdout.close()  # like `| head -1`
    err = p.stderr.read().decode()
    p.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err
    assert np.isfinite(p.returncode)
