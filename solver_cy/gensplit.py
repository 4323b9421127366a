"""pandapower's generator split (pfsoln), made once per model: which generators share each bus's
reactive power and in what proportion, and how the slack buses' active power goes to their
generators.  The kernel that applies it is resk.gen_pq; this module only lays out its constants.

Q: the generators counted at a bus share its Q by reactive range (``qmin + (Q - sum qmin) *
(qmax - qmin) / (sum qmax - sum qmin)``), equally when the ranges sum to nothing, and a lone
generator of the whole table keeps its bus's Q.  P: the set-points; at each slack bus (a REF bus
with a generator, and under distributed slack every bus with a weighted generator) a lone
generator takes the bus balance, else the slack generators (``slack``, and under distributed
slack the weighted ones) take the balance left by the fixed ones, by slack weight when the
weights sum to more than 0, equally otherwise.
"""
from __future__ import annotations

import numpy as np

from .resk import GenSplit
from .topology import REF

_EPS = np.finfo(float).eps
_I64 = np.int64


def make_split(gens: dict, bus_type: np.ndarray, nb: int, plan=None, on=None) -> GenSplit:
    """The split of the generator table ``gens`` (injections.Injections.gens) on a model with
    bus types ``bus_type``; ``plan``: the distributed-slack plan (None: plain slack); ``on``: a
    bool mask of the generators that share Q (None: all; the others are held at a limit)."""
    gb = np.ascontiguousarray(gens["bus"], dtype=_I64)
    ng = len(gb)
    rows = np.arange(ng, dtype=_I64) if on is None else np.flatnonzero(on).astype(_I64)
    b = gb[rows]
    qmin = np.ascontiguousarray(gens["qmin"][rows], dtype=float)
    qmax = gens["qmax"][rows]
    qmn = np.bincount(b, qmin, nb)[b]
    qmx = np.bincount(b, qmax, nb)[b]
    same = (qmn == qmx) | (len(rows) == 1)  # pfsoln leaves a lone generator's Q unsplit
    cnt = np.bincount(b, minlength=nb)[b].astype(float)
    den = qmx - qmn + _EPS  # (pandapower's order of operations)
    rng = np.ascontiguousarray(qmax - qmin, dtype=float)
    ref_gen = gens["slack"]
    ref_bus = gb[bus_type[gb] == REF]
    if plan is not None:
        ref_bus = np.concatenate([ref_bus, gb[plan.weight[gb] != 0]])
        ref_gen = ref_gen | (gens["weight"] != 0)
    rbus = np.unique(ref_bus).astype(_I64)
    nref = len(rbus)
    rmode = np.zeros(nref, np.int32)
    rsp, rfp = np.zeros(nref + 1, _I64), np.zeros(nref + 1, _I64)
    rsl, rfx, rsh = [], [], []
    wt = gens["weight"]
    for j, rb in enumerate(rbus.tolist()):
        at = np.flatnonzero(gb == rb)
        slack, fixed, share = at[:0], at[:0], np.zeros(0)
        if len(at) == 1:
            rmode[j], slack, share = 1, at, np.zeros(1)
        else:
            slack = at[ref_gen[at]]
            if len(slack):
                fixed = at[~ref_gen[at]]
                w = wt[slack]
                rmode[j], share = (3, w / w.sum()) if w.sum() > 0 else (2, np.zeros(len(slack)))
        rsl.append(slack)
        rfx.append(fixed)
        rsh.append(share)
        rsp[j + 1] = rsp[j] + len(slack)
        rfp[j + 1] = rfp[j] + len(fixed)
    cat = (lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt))
    return GenSplit(ng, nb, rows, gb, qmin, np.ascontiguousarray(qmn), np.ascontiguousarray(den), rng, cnt,
                    np.ascontiguousarray(same), rbus, rmode, rsp, rfp, cat(rsl, _I64), cat(rfx, _I64),
                    cat(rsh, float))
