"""Compare gridtape with pandapower.runpp over pandapower's bundled networks (issue 15, acceptance 2).

Every network of ``pandapower.networks`` that builds without arguments and that runpp solves in
under 10 s, with and without ``enforce_q_lims``, each also with random tap positions and a few
lines out of service.  Every case must agree (|dvm| <= 1e-6 p.u., |dva| <= 1e-4 degree, P/Q <=
1e-3 MW/Mvar on every result table both have) or be refused by a gridtape error that names what
it does not model; "DIFFERS" is the defect the rule forbids.  "tie, named": a Q-limit round-off
tie (a generator exactly at a limit) that gridtape reports with QLimitTieWarning naming the gens.

    python benchmarks/compare_pandapower.py [--only NAME ...] [--skip-slow SECONDS] [--markdown]

Prints one row per network: buses, the four outcomes (plain, qlim, perturbed, perturbed+qlim)
and the worst differences seen in the agreeing ones.  Exit status 1 when any case DIFFERS.
"""
from __future__ import annotations

import argparse
import inspect
import logging
import os
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

import trust  # noqa: E402  (tests/trust.py: the comparison the trust tests use)

#: networks that need arguments, or that are not networks, or that are three-phase-only
EXCLUDE = {"create_empty_network", "ieee_european_lv_asymmetric", "pp_elements"}
#: further variants of networks with options
VARIANTS = {
    "create_cigre_network_mv(with_der='all')": lambda pn: pn.create_cigre_network_mv(with_der="all"),
    "create_cigre_network_mv(with_der='pv_wind')": lambda pn: pn.create_cigre_network_mv(with_der="pv_wind"),
    "mv_oberrhein(scenario='generation')": lambda pn: pn.mv_oberrhein(scenario="generation"),
}


def networks():
    """``{name: maker}`` for every argument-free network builder of pandapower.networks."""
    import pandapower.networks as pn

    out = {}
    for name in sorted(dir(pn)):
        f = getattr(pn, name)
        if name.startswith("_") or name in EXCLUDE or not inspect.isfunction(f):
            continue
        if not getattr(f, "__module__", "").startswith("pandapower.networks"):
            continue
        sig = inspect.signature(f)
        if any(p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
               for p in sig.parameters.values()):
            continue
        out[name] = f
    for name, mk in VARIANTS.items():
        out[name] = (lambda mk=mk: mk(pn))
    return out


def sweep(names=None, slow=10.0, seed=1, out=print):
    import pandapower as pp

    rows = []
    for name, make in networks().items():
        if names and name not in names:
            continue
        try:
            net = make()
        except Exception as e:  # noqa: BLE001
            out(f"{name}: cannot build ({type(e).__name__})")
            continue
        if not isinstance(net, pp.pandapowerNet) or not len(net.bus):
            continue
        t0 = time.perf_counter()
        try:
            trust.runpp(trust.clear_results(trust.copy.deepcopy(net)))
        except Exception:  # noqa: BLE001 - measured below as "pp diverges"
            pass
        t_pp = time.perf_counter() - t0
        if t_pp > slow:
            out(f"{name}: runpp took {t_pp:.1f} s (> {slow:g} s): not in the sweep")
            continue
        pert = trust.perturbed(net, seed=seed)
        res = {}
        for label, n, q in (("plain", net, False), ("qlim", net, True), ("perturbed", pert, False),
                            ("perturbed+qlim", pert, True)):
            res[label] = trust.compare_case(n, qlim=q)
        row = (name, len(net.bus), res, t_pp)
        rows.append(row)
        out(format_row(row))
    return rows


def format_row(row):
    name, nb, res, t_pp = row
    cells = []
    w = {"vm": 0.0, "va": 0.0, "pq": 0.0}
    notes = []
    for label, (status, worst, note) in res.items():
        cells.append(status)
        for k in w:  # the worst differences of the agreeing cases
            w[k] = max(w[k], worst.get(k, 0.0) if status == "agree" else 0.0)
        if status not in ("agree",) and note:
            notes.append(f"{label}: {note}")
    return (f"| {name} | {nb} | " + " | ".join(cells) +
            f" | {w['vm']:.1e} | {w['va']:.1e} | {w['pq']:.1e} | {'; '.join(notes)[:300]} |")


HEADER = ("| network | buses | plain | qlim | taps+lines out | taps+lines out, qlim | worst dvm p.u. | "
          "worst dva deg | worst dP/dQ MW | notes |\n|---|---|---|---|---|---|---|---|---|---|")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="network names (default: all)")
    ap.add_argument("--skip-slow", type=float, default=10.0, help="leave out networks runpp needs longer for")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    print(HEADER, flush=True)
    rows = sweep(a.only, a.skip_slow, a.seed, out=lambda s: print(s, flush=True))
    statuses = [s for r in rows for (s, _, _) in r[2].values()]
    print(f"\n{len(rows)} networks, {len(statuses)} cases: " +
          ", ".join(f"{k} {statuses.count(k)}" for k in sorted(set(statuses))))
    return 1 if "DIFFERS" in statuses or "pp diverges" in statuses or "gt diverges" in statuses else 0


if __name__ == "__main__":
    sys.exit(main())
