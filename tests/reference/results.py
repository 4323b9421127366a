"""Numpy references of the result kernels (solver_cy/resk.pyx): pfsoln's generator split and
the DC branch flows.  Used only by the tests that hold the kernels to them."""
from __future__ import annotations

import numpy as np

import scipy.sparse as sp
from gridtape.solver_cy.topology import REF


def _bus_sum(bus, val, nb):
    out = np.zeros(nb)
    np.add.at(out, bus, val)
    return out


def split_q(gb, q, qmin, qmax, nb):
    """pfsoln's split of a bus's Q among its generators: equally, then by reactive range."""
    eps = np.finfo(float).eps
    cnt = np.bincount(gb, minlength=nb)
    q = q / cnt[gb]
    qtot = _bus_sum(gb, q, nb)
    qmn = _bus_sum(gb, qmin, nb)
    qmx = _bus_sum(gb, qmax, nb)
    same = qmn[gb] == qmx[gb]
    out = qmin + ((qtot - qmn) / (qmx - qmn + eps))[gb] * (qmax - qmin)
    out[same] = q[same]
    return out


def gen_pq_reference(engine):
    """P and Q of every generator-table entry of the engine's last AC solve (pfsoln)."""
    topo, inj = engine.topo, engine.inj
    g = inj.gens
    sn = engine.world.sn_mva
    if not len(g["bus"]):
        return np.zeros(0), np.zeros(0)
    Vz = np.where(np.isfinite(engine.V), engine.V, 0)
    nb = len(Vz)
    Y = sp.csr_matrix((engine.ydata, engine.indices, engine.indptr), shape=(nb, nb))
    S = Vz * np.conj(Y @ Vz)
    gb = g["bus"]
    qg = S[gb].imag * sn + inj.qd[gb]
    if len(gb) > 1:
        qg = split_q(gb, qg, g["qmin"], g["qmax"], len(Vz))
    pg = g["p"].copy()
    ref_bus = gb[topo.bus_type[gb] == REF]
    ref_gen = g["slack"]
    plan = engine.slack_plan
    if plan is not None:
        ref_bus = np.concatenate([ref_bus, gb[plan.weight[gb] != 0]])
        ref_gen = ref_gen | (g["weight"] != 0)
    for rb in np.unique(ref_bus):
        at = np.flatnonzero(gb == rb)
        p_bus = S[rb].real * sn + inj.pd[rb]
        slack = at[ref_gen[at]]
        fixed = at[~ref_gen[at]]
        if len(at) == 1:
            pg[at[0]] = p_bus
            continue
        if not len(slack):
            continue
        p_ext = p_bus - pg[fixed].sum()
        w = g["weight"][slack]
        if w.sum() > 0:
            pg[slack] = pg[slack] + (p_ext - pg[slack].sum()) * w / w.sum()
        else:
            pg[slack] = p_ext / len(slack)
    return pg, qg


def dc_flows_reference(topo, V, sn):
    """DC branch flows (MW) at the from end: b (va_f - va_t - shift), lossless."""
    br = topo.branches
    Vz = np.where(np.isfinite(V), V, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        bb = np.where(br.status, 1.0 / br.x, 0.0) / br.ratio
    ang = np.angle(Vz)
    return bb * (ang[br.f] - ang[br.t] - np.deg2rad(br.shift_deg)) * sn
