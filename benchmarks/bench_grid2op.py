"""grid2op steps per second: GridtapeBackend beside LightSimBackend and PandaPowerBackend.

    pip install .[grid2op,bench]
    python benchmarks/bench_grid2op.py                # full run (~3 min on 2 cores)
    python benchmarks/bench_grid2op.py --quick        # CI smoke (~1 min)
    python benchmarks/bench_grid2op.py --json out.json

Environments (grid2op's bundled test data, ``grid2op.make(name, test=True)``, offline):
``l2rpn_case14_sandbox`` (14 buses) and ``l2rpn_idf_2023`` (118 buses, 7 storage units).

Agents, seeded, so that every backend plays the same action sequence:

- **do-nothing**;
- **random topology**: each step, with probability 0.2, a unitary substation topology drawn at
  random (case14: all 178 of them; 118 buses: those of 12 substations drawn once), else nothing.
  Illegal actions (cooldowns) are replaced by do-nothing by grid2op, as for every backend.

Backends: LightSimBackend (lightsim2grid's C++ KLU backend), PandaPowerBackend,
GridtapeBackend with the journal off (default) and on (a journal file in a temporary directory:
one transaction per apply_action, a solve event per runpf, flushed per solve).

steps/s = steps / wall time of the ``env.step`` loop (a game over resets the environment inside
the loop, so resets are timed too); ``--clock cpu`` times the loop by the process's CPU time
instead (all its threads: the journal's mover and checkpoint writer count), which a machine shared
with other jobs disturbs much less than wall time.  Actions are built before the loop.  Each (environment,
agent, backend) runs ``--rounds`` rounds of ``--steps`` steps from the same seed; backends
alternate round by round so machine noise hits them alike; the best round is reported with its
ratio to LightSimBackend's best.  PandaPowerBackend (some 50 steps/s) plays the first
``--pp-steps`` steps once.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")

ENVS = ("l2rpn_case14_sandbox", "l2rpn_idf_2023")
AGENTS = ("do-nothing", "random-topology")
P_TOPO = 0.2
N_SUBS_118 = 12


def _backends(tmp):
    from grid2op.Backend import PandaPowerBackend
    from lightsim2grid import LightSimBackend

    from gridtape.grid import PowerGrid
    from gridtape.grid2op import GridtapeBackend

    out = {"LightSimBackend": LightSimBackend, "PandaPowerBackend": PandaPowerBackend,
           "GridtapeBackend": GridtapeBackend}
    if "journal" in inspect.signature(PowerGrid).parameters:
        counter = iter(range(10**6))
        out["GridtapeBackend+journal"] = lambda: GridtapeBackend(
            journal=os.path.join(tmp, f"episode{next(counter)}.duckdb"))
    else:
        print("note: this gridtape has no journal (PowerGrid takes no journal keyword): journal-on run skipped")
    return out


def _make(name, factory):
    import grid2op

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return grid2op.make(name, test=True, backend=factory())


def _topologies(env, rng):
    """The set_bus vectors the random-topology agent draws from."""
    space = env.action_space
    if env.n_sub <= 14:
        acts = space.get_all_unitary_topologies_set(space)
    else:
        subs = np.flatnonzero((env.sub_info >= 4) & (env.sub_info <= 10))
        acts = []
        for s in rng.choice(subs, size=min(N_SUBS_118, len(subs)), replace=False):
            acts += space.get_all_unitary_topologies_set(space, sub_id=int(s))
    return [a.set_bus.copy() for a in acts]


def _plan(n_steps, n_topos, agent, seed):
    """Per step: None (do nothing) or the index of a topology."""
    rng = np.random.default_rng(seed)
    if agent == "do-nothing":
        return [None] * n_steps
    draws = rng.random(n_steps)
    picks = rng.integers(n_topos, size=n_steps)
    return [int(k) if u < P_TOPO else None for u, k in zip(draws, picks)]


def _actions(env, plan, topos):
    noop = env.action_space()
    cache = {}
    out = []
    for k in plan:
        if k is None:
            out.append(noop)
        else:
            if k not in cache:
                cache[k] = env.action_space({"set_bus": topos[k]})
            out.append(cache[k])
    return out


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _round(env, actions, seed, clock=time.perf_counter):
    env.seed(seed)
    env.reset()
    done_steps = []
    t0 = clock()
    for i, a in enumerate(actions):
        _, _, done, _ = env.step(a)
        if done:
            done_steps.append(i)
            env.reset()
    return len(actions) / (clock() - t0), done_steps


def run(steps, rounds, pp_steps, seed=0, envs=ENVS, agents=AGENTS, backends=None, clock="wall"):
    import grid2op
    import lightsim2grid

    tmp = tempfile.mkdtemp(prefix="bench_grid2op_")
    results = []
    try:
        factories = _backends(tmp)
        if backends is not None:  # LightSimBackend always runs: it is the reference of the ratios
            factories = {k: v for k, v in factories.items() if k in backends or k == "LightSimBackend"}
        for name in envs:
            envs = {}
            for label, factory in factories.items():
                t = time.perf_counter()
                envs[label] = _make(name, factory)
                print(f"  {name}: {label} made in {time.perf_counter() - t:.1f} s", file=sys.stderr)
            topos = _topologies(envs["LightSimBackend"], np.random.default_rng(seed))
            for agent in agents:
                plan = _plan(steps, len(topos), agent, seed + 1)
                acts = {label: _actions(env, plan, topos) for label, env in envs.items()}
                best = {label: 0.0 for label in envs}
                games = {}
                for r in range(rounds):
                    for label, env in envs.items():
                        if label == "PandaPowerBackend":
                            if r:
                                continue
                            sps, done = _round(env, acts[label][:pp_steps], seed, CLOCKS[clock])
                        else:
                            sps, done = _round(env, acts[label], seed, CLOCKS[clock])
                        best[label] = max(best[label], sps)
                        games[label] = done
                for label in envs:
                    results.append({"env": name, "agent": agent, "backend": label, "steps_per_s": best[label],
                                    "steps": pp_steps if label == "PandaPowerBackend" else steps,
                                    "game_overs": len(games[label]),
                                    "ratio_to_lightsim": best[label] / best["LightSimBackend"]})
                ref = games["LightSimBackend"]
                for label in ("GridtapeBackend", "GridtapeBackend+journal"):
                    if label in games and games[label] != ref:
                        print(f"warning: {name} {agent}: {label} game overs at {games[label]}, LightSim at {ref}")
            for env in envs.values():
                env.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "grid2op": grid2op.__version__, "lightsim2grid": lightsim2grid.__version__,
            "steps": steps, "rounds": rounds, "pp_steps": pp_steps, "clock": clock}
    return results, meta


def table(results):
    lines = [f"{'environment':22s} {'agent':16s} {'backend':24s} {'steps/s':>9s} {'x LightSim':>10s} {'game overs':>10s}"]
    for r in results:
        lines.append(f"{r['env']:22s} {r['agent']:16s} {r['backend']:24s} {r['steps_per_s']:9.0f} "
                     f"{r['ratio_to_lightsim']:10.2f} {r['game_overs']:>6d}/{r['steps']}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="CI smoke: fewer steps and rounds")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--pp-steps", type=int, default=None)
    ap.add_argument("--json", default=None, help="also write every number to this file")
    ap.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                    help="time rounds by wall time (default) or by the process's CPU time (a loaded machine)")
    ap.add_argument("--env", action="append", choices=ENVS, help="only this environment (repeatable)")
    ap.add_argument("--agent", action="append", choices=AGENTS, help="only this agent (repeatable)")
    ap.add_argument("--backend", action="append", help="only this backend beside LightSimBackend (repeatable: "
                    "GridtapeBackend, GridtapeBackend+journal, PandaPowerBackend)")
    args = ap.parse_args(argv)
    steps = args.steps or (150 if args.quick else 400)
    rounds = args.rounds or (2 if args.quick else 5)
    pp_steps = args.pp_steps or (30 if args.quick else 100)
    results, meta = run(steps, rounds, pp_steps, envs=tuple(args.env or ENVS), agents=tuple(args.agent or AGENTS),
                        backends=None if args.backend is None else set(args.backend), clock=args.clock)
    print(f"grid2op {meta['grid2op']}, lightsim2grid {meta['lightsim2grid']}, python {meta['python']}, "
          f"{meta['cpus']} cpus; best of {rounds} rounds of {steps} steps (PandaPowerBackend: 1 x {pp_steps}), "
          f"{args.clock} clock")
    print(table(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
