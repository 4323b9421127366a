"""``gridtape demo``: a short journaled study, told on an 80-column terminal.

Two engineers work on the IEEE 118-bus case.  Ann tags the baseline and tunes a generator; Bob
takes a line out for maintenance and connects a data centre at bus 85 in phases, solving after
each.  The last phase makes the AC power flow diverge.  The demo then does what a reviewer of the
study would do: read the log, bisect the history to the transaction that broke convergence, show
its diff and the blame of the cell it wrote, materialize the points before and after it, and
explain the divergence: where Newton's mismatch sits, which changed element is at fault, and
how much of that change the network could still carry (the margin; gridtape.explain).

Everything goes through the public API (``PowerGrid``, ``grid.edit``, ``gridtape.open``,
``study.bisect``, ``gridtape.diff``, ``study.blame``), in a journal in a temporary directory, or
in ``--keep DIR``.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

WIDTH = 80


def _rule(title: str) -> str:
    return f"-- {title} " + "-" * max(0, WIDTH - len(title) - 4)


def _clip(text: str) -> str:
    return "\n".join(line[:WIDTH] for line in str(text).splitlines())


def run_study(case: Path, directory: Path, out=print) -> dict:
    """Run the demo's study into ``directory``; returns the key figures (for tests and --json)."""
    import gridtape as gt

    t0 = time.perf_counter()
    path = str(directory / "study.duckdb")
    rel = os.path.relpath(case) if not os.path.relpath(case).startswith("..") else str(case)
    grid = gt.PowerGrid(rel, journal=path, author="ann")
    rep = grid.solve()
    out(_rule(f"a study of {case.parent.name if case.name == 'data.zip' else case.name}"))
    out(f"{len(grid.world['bus'])} buses, {len(grid.world['load'])} loads, "
        f"{len(grid.world['gen'])} generators; base case solved in {rep.iterations} iterations")
    grid.tag("baseline", author="ann")

    def step(author, message, edit):
        with grid.edit(author=author, message=message) as e:
            edit(e)
        r = grid.solve()
        vm = "diverged" if not r.converged else f"min vm {np.nanmin(grid.res_bus.vm_pu.to_numpy()):.3f} p.u."
        out(f"  {author:<4} {message:<44} {('converged' if r.converged else 'DIVERGED'):<9} {vm}"[:WIDTH])
        return r

    gen = grid.gen(bus=int(grid.world["gen"].cols["bus"][0]))
    step("ann", f"gen {gen.id}: vm set-point 1.00 p.u.", lambda e: e.set("gen", [gen.id], "vm_pu", 1.0))
    line = grid.line(79, 80) or grid.element("line", int(grid.world["line"].ids[-1]))
    step("bob", f"line {line.id} out for maintenance", lambda e: e.set("line", [line.id], "in_service", False))
    dc = {}

    def connect(e):
        dc["id"], _ = e.add_load(85, p_mw=80.0, q_mvar=16.0, name="data centre")

    step("bob", "data centre at bus 85, phase 1: 80 MW", connect)
    grid.tag("data-centre-1", author="bob")
    for phase, p in ((2, 160.0), (3, 240.0), (4, 320.0)):
        r = step("bob", f"data centre phase {phase}: {p:.0f} MW",
                 lambda e, p=p: e.set("load", [dc["id"]], "p_mw", p) or e.set("load", [dc["id"]], "q_mvar", p / 5))
    grid.close()

    study = gt.open(path)
    try:
        log = study.log()
        out(_rule("the log (gridtape log --oneline: one line per transaction)"))
        from gridtape.reprs import oneline, transactions

        for line in oneline(transactions(log), width=WIDTH, date=False):
            out(line)

        out(_rule("bisect: the first transaction after which the case diverges"))
        res = study.bisect()
        out(f"  tx {res.tx} by {res.author}: {res.message!r}")
        out(f"  first bad point seq {res.seq}, last good point seq {res.good_seq} "
            f"({res.materializations} points solved)")
        out(_rule("its diff"))
        d = res.diff
        for row in d.itertuples(index=False):
            out(f"  {row.change:<6} {row.kind} {row.id} {row.field}: {row.old} -> {row.new}"[:WIDTH])
        out(_rule("blame of the cell it wrote"))
        changed = d[d.change == "set"].iloc[0]
        b = study.blame(changed.kind, int(changed.id), changed.field)
        out(f"  {changed.kind} {int(changed.id)} {changed.field} = {b.new}: set at seq {int(b.seq)} "
            f"by {b.author}, {b.message!r}"[:WIDTH])

        out(_rule("the points before and after"))
        before, after = study.at(res.good_seq), study.at(res.seq)
        rb, ra = before.solve(), after.solve()
        vb = before.res_bus.vm_pu.to_numpy()
        out(f"  seq {res.good_seq:>4}: converged in {rb.iterations} iterations, "
            f"min vm {np.nanmin(vb):.3f} p.u. at bus {int(before.res_bus.vm_pu.idxmin())}")
        out(f"  seq {res.seq:>4}: {'converged' if ra.converged else 'diverged'} after {ra.iterations} "
            f"iterations (largest mismatch {ra.mismatch:.2g} p.u.)")

        from gridtape.explain import explain

        ex = explain(res, study)
        out(_rule("why it diverges"))
        for line in ex.lines(WIDTH - 2):
            out("  " + line)
        margin = ex.margin
        out(_rule("the margin"))
        out(f"  {margin:.0%} of the breaking change still converges: the network carries about")
        p_good = float(d[(d.field == "p_mw")].old.iloc[0])
        p_bad = float(d[(d.field == "p_mw")].new.iloc[0])
        out(f"  {p_good + margin * (p_bad - p_good):.0f} MW at bus 85, not the {p_bad:.0f} MW of phase 4.")
        out(_rule(f"done in {time.perf_counter() - t0:.1f} s; journal: {path}"))
        return {"tx": res.tx, "seq": res.seq, "good_seq": res.good_seq, "margin": margin,
                "events": int(len(log)), "journal": path}
    finally:
        study.close()


def main(case=None, keep=None, out=print) -> int:
    from gridtape.cli import bundled

    case = Path(case) if case else bundled("IEEE118")
    if keep:
        directory = Path(keep)
        directory.mkdir(parents=True, exist_ok=True)
        for name in os.listdir(directory):
            if name.startswith("study."):
                p = directory / name
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        run_study(case, directory, out)
        return 0
    with tempfile.TemporaryDirectory(prefix="gridtape-demo-") as tmp:
        run_study(case, Path(tmp), out)
    return 0
