"""Kill a whole study (journal + snapshots) with SIGKILL at random moments and check what survives.

    python tools/sigkill_study.py [ROUNDS] [--dir DIR] [--seed N] [--case ZIP] [--keep]

Every round starts a writer process (``--child ...``) on the same study file: the first round
opens ``PowerGrid(case, journal=path, checkpoint_every=200)``, later rounds resume it with
``PowerGrid(journal=path, checkpoint_every=200)``.  The writer loops: handle writes (load p_mw,
q_mvar, gen vm_pu), vectorized ``grid.set``, edit blocks (add a bus + load + line; remove an
added load; remove an added bus with cascade; a block that fails halfway and must leave nothing),
``solve()`` (which also writes a checkpoint snapshot every 200 events), ``grid.flush()`` and every
few iterations ``grid.snapshot()``.  After each flush or snapshot returns it prints
``ack <seq> <digest>`` (``digest``: sha256 of its live world, see :func:`world_digest`); before each
operation it prints ``op <name>`` so the parent can tell what was running when the kill came.

The parent kills the writer with SIGKILL after a uniform random delay and then checks:

* ``gridtape.open(path)`` opens the study read-only and ``journal.verify()`` passes;
* nothing acknowledged is lost: the last acknowledged seq is <= ``study.head``, and the world the
  journal describes at that seq has the digest the writer printed with the ack;
* no partial transaction is visible: every transaction of several rows, or holding an add,
  remove, snapshot or load row, ends with its commit row; every "add" block holds its bus, load
  and line; nothing of the blocks that failed halfway (``sk-fail-*`` names) is in the log;
* ``study.at(head).world`` (snapshots + events), the world of a resumed
  ``PowerGrid(journal=path)`` (in place on odd rounds, on a copy of the files on even ones, so
  that half of the writers start from exactly what the kill left) and
  ``materialize(j, head, use_snapshots=False)`` are the same world (``codec.same_world``: values,
  ids, next_id, bit patterns);
* every snapshot the journal references (new ones each round, plus the three latest older
  ones) either reads back equal to the events-only world at the seq it covers, or is
  missing/corrupt -- and then ``study.at`` at that point still gives the events-only world;
  a manifested snapshot whose journal event never committed (killed in between) reads back equal
  to the events-only world at its manifest's seq;
* at the end, ``replay.snapshot.clean()`` removes the debris and every manifested snapshot still reads.

A kill while the very first writer is still creating the journal (before anything was
acknowledged) leaves a database that does not open read-only as a journal; that is counted, not
failed, and the next writer must create the journal in it.

The summary counts rounds, kills by the operation that was running (snapshot writes among them),
stray temporary files, manifest-less snapshot directories and unreferenced manifests (all three
are what a kill during a snapshot write leaves), events, snapshots and failures.  The exit status
is 1 when any check failed.  tests/test_crash_study.py runs four rounds through :func:`run`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
CASE = os.path.join(os.path.dirname(HERE), "cases", "IEEE14", "data.zip")
CHECKPOINT_EVERY = 200


# --- the writer ------------------------------------------------------------------------------------
def world_digest(world) -> str:
    """sha256 of a world's content in id order: network values, and per kind next_id, ids and
    every schema column (floats by bit pattern, other values by repr)."""
    import numpy as np

    from gridtape.replay.codec import float_bits

    h = hashlib.sha256(repr((world.sn_mva, world.f_hz, world.name)).encode())
    for kind in sorted(world.tables):
        t = world.tables[kind]
        order = np.argsort(t.ids, kind="stable")
        h.update(f"|{kind}:{t.next_id}:".encode())
        h.update(np.ascontiguousarray(t.ids[order]).tobytes())
        for name in t.spec.names:
            col = t.cols[name][order]
            if col.dtype.kind == "f":
                h.update(float_bits(col).tobytes())
            elif col.dtype == object:
                h.update(repr(list(col)).encode())
            else:
                h.update(np.ascontiguousarray(col).tobytes())
    return h.hexdigest()


def _say(*parts):
    print(*parts, flush=True)


def _added(world, kind):
    """Ids of the elements of ``kind`` this tool added (named ``sk-...``)."""
    t = world[kind]
    return [int(i) for i, n in zip(t.ids, t.cols["name"]) if isinstance(n, str) and n.startswith("sk-")]


def child(path, case, seed, fresh, snap_every):
    import numpy as np

    import gridtape as gt
    from gridtape.errors import GridtapeError

    rng = random.Random(seed)
    _say("ready")
    _say("op open")
    if fresh:
        grid = gt.PowerGrid(case, journal=path, author="sigkill", checkpoint_every=CHECKPOINT_EVERY)
    else:
        grid = gt.PowerGrid(journal=path, author="sigkill", checkpoint_every=CHECKPOINT_EVERY)

    def ack():
        _say("ack", grid.flush(), world_digest(grid.world))

    ack()
    w = grid.world
    base_loads = [i for i in w["load"].ids.tolist() if i not in _added(w, "load")]
    base_buses = [i for i in w["bus"].ids.tolist() if i not in _added(w, "bus")]
    gens = w["gen"].ids.tolist()
    k = 0
    while True:
        r = rng.random()
        w = grid.world
        if r < 0.08:
            _say("op edit-add")
            target = rng.choice(base_buses)
            with grid.edit(author="sigkill", message=f"add {k}") as e:
                b, _ = e.add_bus(float(w["bus"].get(target, "vn_kv")), name=f"sk-bus-{k}")
                e.add_load(b, p_mw=rng.uniform(0, 5), q_mvar=rng.uniform(0, 2), name=f"sk-load-{k}")
                e.add_line(b, target, length_km=1.0, r_ohm_per_km=0.1, x_ohm_per_km=0.3, c_nf_per_km=10.0,
                           max_i_ka=1.0, name=f"sk-line-{k}")
        elif r < 0.12:
            buses, loads = _added(w, "bus"), _added(w, "load")
            if len(buses) > 6:
                _say("op edit-remove-bus")
                with grid.edit(author="sigkill", message=f"remove bus {k}") as e:
                    e.remove(("bus", buses[0]), cascade=True)
            elif loads:
                _say("op edit-remove-load")
                with grid.edit(author="sigkill", message=f"remove load {k}") as e:
                    e.remove(("load", rng.choice(loads)))
        elif r < 0.14:
            _say("op edit-fail")
            try:
                with grid.edit(author="sigkill", message=f"fail {k}") as e:
                    b, _ = e.add_bus(135.0, name=f"sk-fail-{k}")
                    grid.element("load", rng.choice(base_loads)).p_mw = 1.0
                    e.add_line(b, 10**9, length_km=1.0, r_ohm_per_km=0.1, x_ohm_per_km=0.3, name=f"sk-fail-{k}")
            except GridtapeError:
                pass
            else:
                raise AssertionError("the failing edit block did not fail")
        elif r < 0.25:
            _say("op set")
            ids = np.array(sorted(rng.sample(base_loads, rng.randint(2, len(base_loads)))), dtype=np.int64)
            grid.set("load", ids, "p_mw", [rng.uniform(0, 40) for _ in ids])
        else:
            _say("op write")
            for _ in range(rng.randint(1, 3)):
                if rng.random() < 0.7:
                    h = grid.element("load", rng.choice(base_loads))
                    setattr(h, rng.choice(("p_mw", "q_mvar")), rng.uniform(0, 40))
                else:
                    grid.element("gen", rng.choice(gens)).vm_pu = rng.uniform(0.98, 1.06)
        _say("op solve")
        grid.solve()
        _say("op flush")
        ack()
        if k % snap_every == snap_every - 1:
            _say("op snapshot")
            grid.snapshot(message=f"snap {k}", author="sigkill")
            ack()
        k += 1


# --- one round ---------------------------------------------------------------------------------------
def one_round(path, rng, case=CASE, fresh=False, kill_range=(0.05, 1.0)):
    """Start a writer, SIGKILL it after a random delay; returns what it printed."""
    snap_every = rng.choice((2, 4, 8))
    cmd = [sys.executable, os.path.abspath(__file__), "--child", path, case, str(rng.randrange(1 << 30)),
           "1" if fresh else "0", str(snap_every)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline()
    if line.strip() != b"ready":
        proc.kill()
        raise AssertionError(f"writer did not start: {line!r} {proc.stderr.read().decode()[-2000:]}")
    delay = rng.uniform(*kill_range)
    time.sleep(delay)
    alive = proc.poll() is None
    if alive:
        os.kill(proc.pid, signal.SIGKILL)
    out, err = proc.communicate()
    acks, op = [], "open"
    for ln in out.decode(errors="replace").splitlines():
        parts = ln.split()
        if len(parts) == 3 and parts[0] == "ack" and len(parts[2]) == 64:
            acks.append((int(parts[1]), parts[2]))
        elif len(parts) == 2 and parts[0] == "op":
            op = parts[1]
    return {"acks": acks, "op": op, "delay": delay, "killed": alive and proc.returncode == -signal.SIGKILL,
            "stderr": err.decode(errors="replace")[-3000:], "snap_every": snap_every}


# --- checks -----------------------------------------------------------------------------------------
def _tx_problems(log):
    """Transactions visible without their commit row, or "add" blocks missing a part."""
    bad = []
    for tx, g in log.groupby("tx", sort=True):
        ev = g["event"].tolist()
        needs_commit = len(ev) > 1 or any(e in ("add", "remove", "snapshot", "load") for e in ev)
        if needs_commit and ev[-1] != "commit":
            bad.append(f"tx {tx} has no commit row: {ev}")
        if "commit" in ev[:-1]:
            bad.append(f"tx {tx} has a commit row before its end: {ev}")
        adds = g[g["event"] == "add"]
        if "bus" in adds["kind"].tolist() and sorted(adds["kind"]) != ["bus", "line", "load"]:
            bad.append(f"tx {tx}: add block without its bus, load and line: {sorted(adds['kind'])}")
    fail = log["info"].astype(str).str.contains("sk-fail-", regex=False) | \
        log["message"].astype(str).str.startswith("fail ")
    if fail.any():
        bad.append(f"rows of a failed edit block are in the log: seqs {log.seq[fail].tolist()[:10]}")
    return bad


def _copy_journal(path, dest_dir):
    shutil.rmtree(dest_dir, ignore_errors=True)
    os.makedirs(dest_dir)
    dest = os.path.join(dest_dir, os.path.basename(path))
    for suffix in ("", ".seg", ".seg2", ".wal", ".ack"):
        if os.path.exists(path + suffix):
            shutil.copyfile(path + suffix, dest + suffix)
    return dest


def _resumed_world(path, in_place, scratch):
    """The world of ``PowerGrid(journal=...)`` resumed at the head (closed again at once)."""
    import gridtape as gt

    where = path if in_place else _copy_journal(path, scratch)
    g = gt.PowerGrid(journal=where, author="checker", checkpoint_every=CHECKPOINT_EVERY)
    try:
        return g.world
    finally:
        g.close()


def _snapshot_dir_state(directory, referenced):
    """(stray temporary files, manifest-less snapshot dirs, unreferenced manifests) in ``directory``."""
    from gridtape.replay.snapshot import MANIFEST_SUFFIX
    from gridtape.replay.store import TMP_MARK

    tmp, bare, orphan = set(), set(), set()
    if not os.path.isdir(directory):
        return tmp, bare, orphan
    names = os.listdir(directory)
    manifests = {n[: -len(MANIFEST_SUFFIX)] for n in names if n.endswith(MANIFEST_SUFFIX) and TMP_MARK not in n}
    for n in names:
        p = os.path.join(directory, n)
        if TMP_MARK in n:
            tmp.add(n)
        elif os.path.isdir(p):
            tmp.update(f"{n}/{s}" for s in os.listdir(p) if TMP_MARK in s)
            if n not in manifests:
                bare.add(n)
    orphan = manifests - set(referenced)
    return tmp, bare, orphan


def check(path, acks, state, in_place_resume):
    """Every check of the module docstring on the study at ``path``; returns (facts, failures)."""
    import gridtape as gt
    from gridtape.errors import JournalError
    from gridtape.replay.codec import same_world
    from gridtape.replay.events import apply_events
    from gridtape.replay.snapshot import read_snapshot
    from gridtape.replay.materialize import _resolve, materialize, snapshot_dir

    fail = []
    facts = {"rows": 0, "snapshots": 0, "snap_ok": 0, "snap_skipped": 0, "snap_checked": 0}
    last_ack, last_digest = acks[-1] if acks else (-1, None)
    try:
        study = gt.open(path)
    except Exception as e:  # noqa: BLE001 - any failure to open is the finding
        if not state.get("acked") and not acks and isinstance(e, JournalError) and any(
                t in e.message for t in ("not a gridtape journal", "no journal at this path")):
            facts["unborn"] = True  # killed while creating the journal: nothing was ever acknowledged
            return facts, []
        return facts, [f"gt.open failed: {type(e).__name__}: {e}"]
    state["acked"] = state.get("acked", False) or bool(acks)
    with study:
        j = study.journal
        try:
            facts["rows"] = j.verify()
        except Exception as e:  # noqa: BLE001
            fail.append(f"verify() failed: {type(e).__name__}: {e}")
        head = study.head
        facts["head"] = head
        if head < last_ack:
            fail.append(f"LOST acknowledged events: last ack {last_ack}, head {head}")
        log = j.log()
        if len(log) != head + 1 or (len(log) and log.seq.tolist() != list(range(head + 1))):
            fail.append(f"log has {len(log)} rows, head is {head}")
        fail += _tx_problems(log)
        loads = log.index[log["event"] == "load"].tolist()
        facts["has_load"] = bool(loads)
        if head < 0 or not loads:
            if last_ack >= 0:
                fail.append(f"acknowledged seq {last_ack} but the journal holds no case load")
            return facts, fail

        events_head = materialize(j, head, use_snapshots=False)[0]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            at_head = study.at(head).world
        facts["warned"] = len(caught)
        if not same_world(at_head, events_head):
            fail.append(f"study.at({head}) differs from the events-only materialization")
        if 0 <= last_ack <= head:
            w_ack = events_head if last_ack == head else materialize(j, last_ack, use_snapshots=False)[0]
            if world_digest(w_ack) != last_digest:
                fail.append(f"the world at acknowledged seq {last_ack} is not the one the writer had")

        # every snapshot the journal references: new ones, and the three latest older ones
        snaps = log[log["event"] == "snapshot"]
        facts["snapshots"] = len(snaps)
        metas = [(int(s), json.loads(i)) for s, i in zip(snaps.seq, snaps["info"])]
        todo = {m["id"] for s, m in metas if s > state.get("checked_upto", -1)}
        todo |= {m["id"] for s, m in metas[-3:]}
        world, at = None, -1
        for sseq, meta in metas:
            if meta["id"] not in todo:
                continue
            covers = int(meta["covers"])
            load_i = max(i for i in loads if i <= covers)
            if world is None or at < load_i:
                world, at = apply_events(None, log.iloc[load_i:load_i + 1], j.get_blob), load_i
            world = apply_events(world, log.iloc[at + 1:covers + 1], j.get_blob)
            at = covers
            facts["snap_checked"] += 1
            try:
                snap, m = read_snapshot(_resolve(meta["dir"], path), meta["id"])
            except Exception as e:  # noqa: BLE001 - missing/corrupt: the study must fall back
                facts["snap_skipped"] += 1
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    back = study.at(sseq).world
                if not same_world(back, world):
                    fail.append(f"snapshot {meta['id']} is unreadable ({e}) and study.at({sseq}) does not "
                                "fall back to the events-only world")
                continue
            facts["snap_ok"] += 1
            if m.seq != covers:
                fail.append(f"snapshot {meta['id']}: manifest seq {m.seq}, journal says it covers {covers}")
            if not same_world(snap, world):
                fail.append(f"snapshot {meta['id']} (covers seq {covers}) differs from the events-only world")
        state["checked_upto"] = head

        referenced = [m["id"] for _, m in metas]
        facts["tmp"], facts["bare"], facts["orphan"] = _snapshot_dir_state(snapshot_dir(path), referenced)
        # a manifest whose journal event never committed is still a true picture of its seq
        for sid in sorted(facts["orphan"] - state.setdefault("orphans_checked", set())):
            state["orphans_checked"].add(sid)
            try:
                snap, m = read_snapshot(snapshot_dir(path), sid)
            except Exception as e:  # noqa: BLE001
                fail.append(f"unreferenced snapshot {sid} has a manifest but does not read back: {e}")
                continue
            if m.seq is None or m.seq > head or not same_world(snap, materialize(j, m.seq, use_snapshots=False)[0]):
                fail.append(f"unreferenced snapshot {sid} (seq {m.seq}) differs from the events-only world")
    try:
        resumed = _resumed_world(path, in_place_resume, state["scratch"])
        if not same_world(resumed, events_head):
            fail.append("PowerGrid(journal=path) resumes a world different from the events-only materialization")
    except Exception as e:  # noqa: BLE001
        fail.append(f"resuming PowerGrid(journal=path) failed: {type(e).__name__}: {e}")
    return facts, fail


# --- driver -------------------------------------------------------------------------------------------
def run(rounds, directory=None, seed=0, case=CASE, kill_range=(0.05, 1.0), report=print, keep=False):
    """``rounds`` kill-and-check rounds on one study; returns the summary dict."""
    from gridtape.replay.snapshot import clean, read_snapshot
    from gridtape.replay.materialize import snapshot_dir

    rng = random.Random(seed)
    d = tempfile.mkdtemp(prefix="sigkill_study_", dir=directory)
    path = os.path.join(d, "study.duckdb")
    state = {"scratch": os.path.join(d, "resume-copy")}
    ops, failures, acks_total = Counter(), [], 0
    seen_tmp, seen_bare, seen_orphan = set(), set(), set()
    snap_kill_evidence = unborn = 0
    have_case = False
    facts = {}
    try:
        for r in range(rounds):
            got = one_round(path, rng, case, fresh=not have_case, kill_range=kill_range)
            ops[got["op"]] += 1
            acks_total += len(got["acks"])
            if not got["killed"]:
                failures.append(f"round {r}: the writer was not alive at the kill (op {got['op']}): "
                                f"{got['stderr'][-1500:]}")
            facts, fail = check(path, got["acks"], state, in_place_resume=r % 2 == 1)
            have_case = have_case or facts.get("has_load", False)
            unborn += facts.get("unborn", False)
            new = (facts.get("tmp", set()) - seen_tmp, facts.get("bare", set()) - seen_bare,
                   facts.get("orphan", set()) - seen_orphan)
            snap_kill_evidence += any(new)
            seen_tmp |= facts.get("tmp", set())
            seen_bare |= facts.get("bare", set())
            seen_orphan |= facts.get("orphan", set())
            line = (f"round {r:3d}: killed after {got['delay']:.2f}s during {got['op']:<18} acks {len(got['acks']):4d} "
                    f"last ack {got['acks'][-1][0] if got['acks'] else -1:6d} head {facts.get('head', -1):6d} "
                    f"snapshots {facts.get('snapshots', 0):4d} (checked {facts.get('snap_checked', 0)}, "
                    f"skipped {facts.get('snap_skipped', 0)}) leftovers +{len(new[0])} tmp +{len(new[1])} "
                    f"bare dirs +{len(new[2])} orphan manifests")
            report(line + ("" if not fail else "  FAIL"))
            for f in fail:
                report(f"    FAIL: {f}")
            failures += [f"round {r}: {f}" for f in fail]
        # what clean() leaves must still be readable: every referenced snapshot keeps reading back
        sd = snapshot_dir(path)
        removed = clean(sd) if os.path.isdir(sd) else []
        unreadable_after_clean = 0
        for name in sorted(os.listdir(sd)) if os.path.isdir(sd) else []:
            if name.endswith(".manifest.json"):
                try:
                    read_snapshot(sd, name[: -len(".manifest.json")])
                except Exception:  # noqa: BLE001
                    unreadable_after_clean += 1
        if unreadable_after_clean:
            failures.append(f"{unreadable_after_clean} manifested snapshots unreadable after clean()")
        return {"rounds": rounds, "failures": failures, "ops": dict(ops), "acks": acks_total,
                "events": facts.get("rows", 0), "snapshots": facts.get("snapshots", 0),
                "snap_skipped_last": facts.get("snap_skipped", 0), "snap_kill_evidence": snap_kill_evidence,
                "tmp": len(seen_tmp), "bare": len(seen_bare), "orphan": len(seen_orphan),
                "cleaned": len(removed), "unborn": unborn, "path": path}
    finally:
        if not keep:
            shutil.rmtree(d, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rounds", nargs="?", type=int, default=50)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--case", default=CASE)
    ap.add_argument("--keep", action="store_true", help="keep the study directory for inspection")
    ap.add_argument("--child", nargs=5, metavar=("PATH", "CASE", "SEED", "FRESH", "SNAP_EVERY"))
    a = ap.parse_args(argv)
    if a.child:
        p, case, seed, fresh, every = a.child
        child(p, case, int(seed), fresh == "1", int(every))
        return 0
    t = time.perf_counter()
    s = run(a.rounds, a.dir, a.seed, a.case, keep=a.keep)
    during_snap = s["ops"].get("snapshot", 0)
    print(f"\n{s['rounds']} rounds, {s['acks']} acknowledged flushes/snapshots, {s['events']} events and "
          f"{s['snapshots']} snapshots in the journal at the end ({time.perf_counter() - t:.1f} s)")
    print("kills by running operation: " + ", ".join(f"{k} {v}" for k, v in sorted(s["ops"].items()))
          + f"; kills while the journal was still being created (nothing acknowledged yet, the study does not "
          f"open read-only, the next writer creates it): {s['unborn']}")
    print(f"kills inside grid.snapshot(): {during_snap}; rounds leaving snapshot debris (a kill during a "
          f"snapshot write, explicit or a checkpoint inside solve): {s['snap_kill_evidence']} "
          f"({s['tmp']} temporary files, {s['bare']} manifest-less dirs, {s['orphan']} unreferenced manifests; "
          f"clean() removed {s['cleaned']})")
    if s["failures"]:
        print(f"FAILED: {len(s['failures'])} failed checks")
        for f in s["failures"][:30]:
            print("  " + f)
        return 1
    print("all checks passed every round: open, verify, no lost ack (seq and world digest), no partial "
          "transaction, at(head) == resumed == events-only, referenced snapshots exact or skipped")
    if a.keep:
        print(f"study kept at {s['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
