"""Hashing and checksums of the journal: our own code against libraries, on the journal's workloads.

    python benchmarks/bench_hashing.py          # also a section of bench_journal.py

See :func:`bench_hashing`; the figures and the decision they support are in docs/journal.md.
"""
from __future__ import annotations

import sys
import time

import numpy as np


def per_call(fn, n, repeat=5):
    """Thread CPU seconds per call of ``fn(n)`` (n calls), min over repeats."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.thread_time()
        fn(n)
        best = min(best, (time.thread_time() - t0) / n)
    return best


def bench_hashing(quick):
    """The hand-written BLAKE2b (journal/blake2b.h) and frame checksum (journal/sum64.h) against
    libraries, on the journal's own workloads.

    1. The hash chain at ingest of a journal of 1M ``set`` events (record_many of 4,461 loads,
       as case9241's ``grid.set``): ``frames.decode`` with and without the chain (the chain's
       cost in C, without the GIL), and the same chain with ``hashlib.blake2b(digest_size=16)``
       over each row's canonical bytes (one call per row: it holds the GIL for buffers this
       small).
    2. The frame checksum of flushed frames: a write + solve frame, a grid2op step's 151-row
       record_many frame, a 4,461-row record_many frame: ``sum64`` against ``zlib.crc32``,
       ``zlib.adler32`` and, if installed, ``xxhash.xxh3_64`` / ``xxh64`` (all called from Python,
       so each pays the same call overhead).

    Times are the thread's CPU time (``time.thread_time``), min over repeats: the machine is
    shared, and this compares algorithms, not wall-clock latency.
    """
    import hashlib
    import zlib

    from gridtape.journal import chain as chain_mod
    from gridtape.journal import frames
    from gridtape.journal.buffer import to_rows
    from gridtape.journal.recorder import Recorder

    try:
        import xxhash
    except ImportError:
        xxhash = None
    out = {}
    n_loads = 4461
    steps = 23 if quick else 224
    rec = Recorder("bench", clock=lambda: 1_700_000_000_000_000_000)
    ids = np.arange(n_loads, dtype=np.int64)
    base = np.linspace(1.0, 50.0, n_loads)
    for k in range(steps):
        rec.record_many("set", "load", ids, "p_mw", base * (1 + 1e-4 * k), base * (1 + 1e-4 * (k + 1)))
        rec.flush()
    fr = rec._mirror
    n = rec._mirror_rows
    best = {"decode + chain (C BLAKE2b)": float("inf"), "decode only": float("inf")}
    for _ in range(3):
        for label, ch in (("decode + chain (C BLAKE2b)", True), ("decode only", False)):
            t0 = time.thread_time()
            frames.decode(fr, None, ch)
            best[label] = min(best[label], time.thread_time() - t0)
    out["rows"] = n
    out["chain C us/row"] = (best["decode + chain (C BLAKE2b)"] - best["decode only"]) / n * 1e6
    out["decode+chain s"] = best["decode + chain (C BLAKE2b)"]
    # hashlib over the canonical bytes (built beforehand: only the hashing is timed)
    m = min(n, 200_000)
    from gridtape.journal.buffer import Many, Tx
    from gridtape.journal.columns import typed_array
    items = []
    got = 0
    k = 0
    while got < m:
        items.append(Tx(1, "bench", None, [Many("set", "load", ids, "p_mw", typed_array(base, "old", n_loads),
                                                typed_array(base * (1 + k), "new", n_loads))], None))
        got += n_loads + 1
        k += 1
    rows = to_rows(items, 0, 0, 0, "bench")[:m]
    canon = [chain_mod.canonical(r) for r in rows]
    b2b = hashlib.blake2b
    t_hl = float("inf")
    for _ in range(3):
        t0 = time.thread_time()
        h = bytes(16)
        for c in canon:
            h = b2b(c + h, digest_size=16).digest()
        t_hl = min(t_hl, time.thread_time() - t0)
    out["chain hashlib us/row"] = t_hl / m * 1e6
    out["row bytes"] = sum(map(len, canon)) / m
    # frame checksums
    sizes = {}
    r2 = Recorder("bench")
    r2.record("set", "load", 3, "p_mw", 1.5, 2.0)
    r2.record_solve(True, 3, 1.2e-9, 1.234, "none", "nr", False, "0.4.0")
    r2.flush()
    sizes["write + solve"] = r2._mirror[-1]
    r2.begin()
    for kind in ("load", "gen", "line"):
        r2.record_many("set", kind, np.arange(50), "p_mw", np.linspace(0, 1, 50), np.linspace(1, 2, 50))
    r2.commit()
    sizes["grid2op step, 151 rows"] = r2._mirror[-1]
    sizes["grid.set of 4,461 loads"] = fr[0]
    funcs = {"sum64 (ours)": frames.sum64, "zlib.crc32": zlib.crc32, "zlib.adler32": zlib.adler32}
    if xxhash is not None:
        funcs["xxhash.xxh3_64"] = xxhash.xxh3_64_intdigest
        funcs["xxhash.xxh64"] = xxhash.xxh64_intdigest
    table = {}
    for label, frame in sizes.items():
        reps = max(200, 2_000_000 // len(frame))
        for fname, fn in funcs.items():
            def loop(k, fn=fn, frame=frame):
                for _ in range(k):
                    fn(frame)
            table[(label, fname)] = per_call(loop, reps, 5)
        table[(label, "bytes")] = len(frame)
    out["checksums"] = table
    out["funcs"] = list(funcs)
    out["sizes"] = list(sizes)
    return out



def main(argv=None):
    quick = "--quick" in (sys.argv[1:] if argv is None else argv)
    hsh = bench_hashing(quick)
    print(f"- hash chain of {hsh['rows']:,} record_many rows ({hsh['row bytes']:.0f} canonical bytes each): "
          f"C BLAKE2b in decode {hsh['chain C us/row']:.3f} us/row (decode + chain {hsh['decode+chain s']:.2f} s, "
          f"no GIL); hashlib.blake2b(digest_size=16) per row {hsh['chain hashlib us/row']:.3f} us/row (GIL held)")
    print("\n| frame | bytes | " + " | ".join(hsh["funcs"]) + " |")
    print("|---|---|" + "---|" * len(hsh["funcs"]))
    for label in hsh["sizes"]:
        cells = " | ".join(f"{hsh['checksums'][(label, f)] * 1e6:.3f}" for f in hsh["funcs"])
        print(f"| {label} | {hsh['checksums'][(label, 'bytes')]:,} | {cells} |")
    print("\n(us per call from Python, thread CPU time, min over repeats)")


if __name__ == "__main__":
    main()
