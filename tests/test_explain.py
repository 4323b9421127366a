"""explain(): seeded faults on case118 and case2869pegase.  The breaking transaction mixes the fault
with two harmless edits; the element at fault must be among the first three named, and the margin
must match a brute-force scan of the fraction of the change (1 % steps) within 2 %."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import gridtape as gt
from gridtape.explain import explain, margin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {"case118": "cases/IEEE118/data.zip", "case2869pegase": "cases/PEGASE2869/data.zip"}


def _fault(grid, kind):
    """(kind, id, [(field, value)]) of a seeded fault chosen by rule from the solved base case."""
    w = grid.world
    if kind == "load-growth":  # the largest load, grown until the power flow collapses
        ld = w["load"]
        k = int(np.argmax(ld.cols["p_mw"]))
        p, q = float(ld.cols["p_mw"][k]), float(ld.cols["q_mvar"][k])
        for f in (2, 4, 8, 16, 32):
            h = gt.PowerGrid(world=w.copy(), journal=False)
            h.set("load", [int(ld.ids[k])], "p_mw", [p * f])
            h.set("load", [int(ld.ids[k])], "q_mvar", [q * f])
            if not h.solve().converged:
                return "load", int(ld.ids[k]), [("p_mw", p * f), ("q_mvar", q * f)]
    if kind == "impedance-typo":  # x x 1000 on the most loaded line whose typo breaks convergence
        line = w["line"]
        flows = np.abs(grid.res_line.p_from_mw.to_numpy())
        for pos in np.argsort(-flows)[:40]:
            lid, x = int(line.ids[pos]), float(line.cols["x_ohm_per_km"][pos])
            h = gt.PowerGrid(world=w.copy(), journal=False)
            h.set("line", [lid], "x_ohm_per_km", [x * 1000])
            if not h.solve().converged:
                return "line", lid, [("x_ohm_per_km", x * 1000)]
    if kind == "gen-setpoint":  # a voltage set-point far outside what the gen's Q range holds
        gen = w["gen"]
        for vm in (1.4, 1.6):
            for k in range(len(gen)):
                h = gt.PowerGrid(world=w.copy(), journal=False)
                h.set("gen", [int(gen.ids[k])], "vm_pu", [vm])
                if not h.solve().converged:
                    return "gen", int(gen.ids[k]), [("vm_pu", vm)]
    pytest.skip(f"no {kind} fault found by the rule on this case")


def _study(tmp_path, case, kind):
    path = str(tmp_path / "study.duckdb")
    grid = gt.PowerGrid(os.path.join(ROOT, case), journal=path, author="ann")
    assert grid.solve().converged
    fk, fid, cells = _fault(grid, kind)
    ld = grid.world["load"]
    small = [int(i) for i in ld.ids[np.argsort(ld.cols["p_mw"])[:3]] if not (fk == "load" and int(i) == fid)][:2]
    with grid.edit(author="ann", message="loads +1 %") as e:
        for i in small:
            e.set("load", [i], "p_mw", float(grid.element("load", i).p_mw) * 1.01)
    grid.solve()
    with grid.edit(author="bob", message=f"seeded {kind}") as e:
        for i in small:  # harmless edits in the same transaction
            e.set("load", [i], "q_mvar", float(grid.element("load", i).q_mvar) * 1.02)
        for f, v in cells:
            e.set(fk, [fid], f, v)
    assert not grid.solve().converged
    grid.close()
    return path, (fk, fid)


def _brute_margin(before_world, d, step=0.01):
    """The largest k*step at which the interpolated change converges, scanning up from 0."""
    sets = d[d.change == "set"]
    last = 0.0
    for lam in np.arange(step, 1.0 + 1e-9, step):
        g = gt.PowerGrid(world=before_world.copy(), journal=False)
        for r in sets.itertuples(index=False):
            g.set(r.kind, [int(r.id)], r.field, [r.old + lam * (r.new - r.old)])
        if not g.solve().converged:
            return last
        last = float(lam)
    return last


@pytest.mark.parametrize("kind", ["load-growth", "impedance-typo", "gen-setpoint"])
@pytest.mark.parametrize("case", list(CASES))
def test_seeded_fault_is_named_and_margin_matches_brute_force(tmp_path, case, kind):
    path, fault = _study(tmp_path, CASES[case], kind)
    with gt.open(path) as study:
        res = study.bisect()
        assert res is not None and res.message == f"seeded {kind}"
        t = time.perf_counter()
        ex = explain(res, study)
        seconds = time.perf_counter() - t
        before = study.at(int(res.events.seq.iloc[0]) - 1).world
    print(f"{case} {kind}: explain {seconds:.2f} s, margin {ex.margin:.3f}; {ex.headline()}")
    assert fault in ex.named()[:3], (fault, ex.named())
    assert bool(ex.elements.iloc[0].without_it_holds)
    assert len(ex.buses) and np.isfinite(ex.elements.distance_pu.iloc[0])
    brute = _brute_margin(before, res.diff)
    assert abs(ex.margin - brute) <= 0.02, (ex.margin, brute)
    assert str(ex).startswith("why: ") and max(map(len, str(ex).splitlines())) <= 80


def test_margin_of_an_added_load_scales_its_power(tmp_path):
    """A new load (an add): λ scales its p and q; the margin is where the scaled load stops converging."""
    g = gt.PowerGrid(os.path.join(ROOT, CASES["case118"]))
    before = g.world.copy()
    with g.edit() as e:
        lid, _ = e.add_load(85, p_mw=400.0, q_mvar=80.0)
    assert not g.solve().converged
    d = gt.diff(before, g.world)
    lam, scaled = margin(before, d)
    assert 0 < lam < 1

    def ok(x):
        h = gt.PowerGrid(world=before.copy(), journal=False)
        with h.edit() as e:
            e.add_load(85, p_mw=400.0 * x, q_mvar=80.0 * x)
        return h.solve().converged

    assert ok(lam) and not ok(min(1.0, lam + 0.02))
    assert scaled.values(lam)[("load", lid, "p_mw")] == pytest.approx(400.0 * lam)


def test_bisect_explain_on_the_command_line(tmp_path):
    keep = tmp_path / "demo"
    from pathlib import Path

    from gridtape.demo import run_study

    run_study(Path(ROOT) / CASES["case118"], keep.mkdir() or keep, out=lambda *a: None)
    run = subprocess.run([sys.executable, "-m", "gridtape.cli", "bisect", str(keep / "study.duckdb"), "--explain"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 1, run.stderr
    assert "why: the load" in run.stdout and "bus 85" in run.stdout and "% past" in run.stdout
    run = subprocess.run([sys.executable, "-m", "gridtape.cli", "bisect", str(keep / "study.duckdb"), "--explain",
                          "--json"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    import json

    out = json.loads(run.stdout)
    assert 0.5 < out["explain"]["margin"] < 1 and out["explain"]["elements"][0]["kind"] == "load"


def test_an_outage_that_islands_a_load(tmp_path):
    """Islanding a load converges (its bus is unsupplied), so bisect looks for 'unsupplied'; the
    explanation names the line and says that no fraction of a switching step exists."""
    from gridtape import verbs

    path = str(tmp_path / "study.duckdb")
    grid = gt.PowerGrid(os.path.join(ROOT, CASES["case118"]), journal=path, author="ann")
    grid.solve()
    w = grid.world
    line, load = w["line"], w["load"]
    ends = np.concatenate([line.cols["from_bus"], line.cols["to_bus"]])
    radial = [b for b in load.cols["bus"].tolist() if (ends == b).sum() == 1]
    lid = int(line.ids[np.flatnonzero((line.cols["from_bus"] == radial[0]) | (line.cols["to_bus"] == radial[0]))[0]])
    other = int(line.ids[0]) if int(line.ids[0]) != lid else int(line.ids[1])
    with grid.edit(author="bob", message="maintenance") as e:
        e.set("line", [lid], "in_service", False)
        e.set("line", [other], "max_i_ka", float(grid.element("line", other).max_i_ka) * 1.1)
    grid.solve()
    grid.close()
    with gt.open(path) as study:
        pred = verbs.predicate(("unsupplied",))
        res = verbs.bisect(study, until=("unsupplied",))
        assert res is not None and res.message == "maintenance"
        ex = explain(res, study, predicate=pred)
    assert ex.named()[0] == ("line", lid)
    assert ex.margin == 0 and "no fraction" in ex.headline()
    run = subprocess.run([sys.executable, "-m", "gridtape.cli", "bisect", path, "--until", "unsupplied", "--explain"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 1 and f"line {lid}" in run.stdout, run.stderr
