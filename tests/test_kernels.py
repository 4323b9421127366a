"""Tests for the Cython kernels (Ybus, Newton-Raphson over KLU, DC solve, flows).

References are pandapower's own internal matrices / results and scipy."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from gridtape.solver_cy import newton, resk, ybus

pp = pytest.importorskip("pandapower")
pn = pytest.importorskip("pandapower.networks")
from pandapower.pypower import idx_brch as B  # noqa: E402
from pandapower.pypower import idx_bus as BU  # noqa: E402
from pandapower.pypower.dSbus_dV import dSbus_dV  # noqa: E402

CASES = ["case14", "case118", "case2869pegase"]
TOL = 1e-8
_cache = {}


def solved(name):
    """pandapower flat-start run of a test case (cached): its internal ppc dict and iterations."""
    if name not in _cache:
        net = getattr(pn, name)()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pp.runpp(net, init="flat", numba=False, tolerance_mva=TOL)
        _cache[name] = (net._ppc["internal"], net._ppc["iterations"])
    return _cache[name]


def branch_admittances(ppi):
    """yff, yft, ytf, ytt of every ppci branch, from the pi-model as pypower defines it."""
    br = ppi["branch"]
    st = br[:, B.BR_STATUS].real
    ys_f = st / (br[:, B.BR_R] + 1j * br[:, B.BR_X])
    ys_t = st / (br[:, B.BR_R] + br[:, B.BR_R_ASYM] + 1j * (br[:, B.BR_X] + br[:, B.BR_X_ASYM]))
    yc_f = st * (br[:, B.BR_G] + 1j * br[:, B.BR_B])
    yc_t = st * (br[:, B.BR_G] + br[:, B.BR_G_ASYM] + 1j * (br[:, B.BR_B] + br[:, B.BR_B_ASYM]))
    ratio = np.where(br[:, B.TAP].real != 0, br[:, B.TAP].real, 1.0)
    tap = ratio * np.exp(1j * np.deg2rad(br[:, B.SHIFT].real))
    yff = (ys_f + yc_f / 2) / (tap * np.conj(tap))
    yft = -ys_f / np.conj(tap)
    ytf = -ys_t / tap
    ytt = ys_t + yc_t / 2
    f = br[:, B.F_BUS].real.astype(np.int32)
    t = br[:, B.T_BUS].real.astype(np.int32)
    return f, t, yff, yft, ytf, ytt


def build_ybus(nb, f, t, yff, yft, ytf, ytt, ysh):
    indptr, indices, pff, pft, ptf, ptt, pdiag = ybus.ybus_pattern(nb, f, t)
    data = np.empty(len(indices), dtype=np.complex128)
    ybus.ybus_fill(data, pff, pft, ptf, ptt, pdiag, yff, yft, ytf, ytt, ysh)
    return sp.csr_matrix((data, indices, indptr), shape=(nb, nb))


def sorted_csr(Y):
    Y = sp.csr_matrix(Y, dtype=np.complex128)
    Y.sum_duplicates()
    Y.sort_indices()
    return Y.indptr.astype(np.int32), Y.indices.astype(np.int32), Y.data.copy()


def classes(ppi):
    return tuple(np.asarray(ppi[k], dtype=np.int32) for k in ("ref", "pv", "pq"))


def flat_start(ppi):
    ref, pv, _ = classes(ppi)
    V0 = np.ones(len(ppi["Sbus"]), dtype=np.complex128)
    gen = np.r_[ref, pv]
    V0[gen] = np.abs(ppi["V"][gen])
    V0[ref] = ppi["V"][ref]
    return V0


def solver_for(ppi):
    indptr, indices, data = sorted_csr(ppi["Ybus"])
    return newton.NewtonSolver(indptr, indices, *classes(ppi)), data


# ------------------------------------------------------------------ Ybus
@pytest.mark.parametrize("name", CASES)
def test_ybus_matches_pandapower(name):
    ppi, _ = solved(name)
    nb = ppi["bus"].shape[0]
    ysh = (ppi["bus"][:, BU.GS] + 1j * ppi["bus"][:, BU.BS]) / ppi["baseMVA"]
    Y = build_ybus(nb, *branch_admittances(ppi), ysh.astype(np.complex128))
    assert Y.has_sorted_indices
    indptr, indices = Y.indptr, Y.indices
    for i in range(nb):
        assert i in indices[indptr[i]:indptr[i + 1]]
    assert abs(Y - ppi["Ybus"]).max() < 1e-10


def test_ybus_pattern_edge_cases():
    # bus 3 isolated, a self-loop at bus 1, parallel branches 0-2
    nb = 4
    f = np.array([0, 1, 2, 0], dtype=np.int32)
    t = np.array([2, 1, 0, 1], dtype=np.int32)
    rng = np.random.default_rng(1)
    y = [rng.normal(size=4) + 1j * rng.normal(size=4) for _ in range(4)]
    ysh = rng.normal(size=nb) + 1j * rng.normal(size=nb)
    indptr, indices, pff, pft, ptf, ptt, pdiag = ybus.ybus_pattern(nb, f, t)
    assert indices.dtype == np.int32 and indptr.dtype == np.int32
    assert list(indices[indptr[3]:indptr[4]]) == [3]
    assert pff[1] == pft[1] == ptf[1] == ptt[1] == pdiag[1]
    for i in range(nb):
        row = indices[indptr[i]:indptr[i + 1]]
        assert np.all(np.diff(row) > 0)
    Y = build_ybus(nb, f, t, *y, ysh)
    dense = np.diag(ysh)
    for k in range(len(f)):
        a, b = f[k], t[k]
        dense[a, a] += y[0][k]
        dense[a, b] += y[1][k]
        dense[b, a] += y[2][k]
        dense[b, b] += y[3][k]
    assert np.abs(Y.toarray() - dense).max() < 1e-14
    with pytest.raises(ValueError):
        ybus.ybus_pattern(nb, np.array([0], np.int32), np.array([4], np.int32))



@pytest.mark.parametrize("seed", range(4))
def test_ybus_build_equals_pattern_then_fill(seed):
    rng = np.random.default_rng(seed)
    nb, nbr = 9, 14
    f = rng.integers(0, nb, nbr).astype(np.int32)
    t = rng.integers(0, nb, nbr).astype(np.int32)
    y = [rng.normal(size=nbr) + 1j * rng.normal(size=nbr) for _ in range(4)]
    ysh = rng.normal(size=nb) + 1j * rng.normal(size=nb)
    pat = ybus.ybus_pattern(nb, f, t)
    data = np.zeros(len(pat[1]), complex)
    ybus.ybus_fill(data, *pat[2:], *y, ysh)
    indptr, indices, pos, data2 = ybus.ybus_build(nb, f, t, *y, ysh)
    assert np.array_equal(indptr, pat[0]) and np.array_equal(indices, pat[1])
    assert all(np.array_equal(a, b) for a, b in zip(pos, pat[2:]))
    assert np.array_equal(data, data2)
    with pytest.raises(ValueError):
        ybus.ybus_build(nb, f, t, *y, ysh[:-1])


def test_masked_admittances_and_end_voltages():
    rng = np.random.default_rng(3)
    n = 7
    y = tuple(rng.normal(size=n) + 1j * rng.normal(size=n) for _ in range(4))
    on = rng.random(n) < 0.6
    on[0] = False
    bad = np.zeros(n, bool)
    k, out = ybus.masked_admittances(on, bad, y)
    assert k == -1
    for a, b in zip(out, y):
        assert np.array_equal(a, np.where(on, b, 0))
    k, out = ybus.masked_admittances(np.ones(n, bool), bad, y)
    assert k == -1 and all(a is b for a, b in zip(out, y))
    bad[0] = True  # out of service: no complaint
    assert ybus.masked_admittances(on, bad, y)[0] == -1
    on2 = on.copy()
    on2[[0, 5]] = True
    bad[5] = True
    assert ybus.masked_admittances(on2, bad, y)[0] == 0
    kv = np.array([110.0, 20.0, 110.0, 0.4])
    f = np.array([0, 1, 2], np.int32)
    t = np.array([2, 3, 0], np.int32)
    assert ybus.same_end_kv(kv, f, t, kv[f], kv[t])
    assert not ybus.same_end_kv(kv, np.array([0, 1, 1], np.int32), t, kv[f], kv[t])
    assert not ybus.same_end_kv(kv, f[:2], t[:2], kv[f], kv[t])


def test_shunt_ysh_matches_the_numpy_formula():
    from gridtape.solver_cy.inject import shunt_ysh

    rng = np.random.default_rng(5)
    nb, n = 6, 8
    lookup = np.array([0, 1, 1, 2, 3, 4, 5, 5], np.int64)  # world rows -> internal buses
    rows = rng.integers(0, len(lookup), n).astype(np.int64)
    kv = rng.uniform(10, 400, nb)
    vn, step = rng.uniform(10, 400, n), rng.integers(0, 3, n).astype(float)
    act = rng.random(n) < 0.7
    p, q = rng.normal(size=n), rng.normal(size=n)
    b = lookup[rows]
    r = (kv[b] / vn) ** 2 * step * act
    want = np.bincount(b, p * r, nb) - 1j * np.bincount(b, q * r, nb)
    assert np.allclose(shunt_ysh(lookup, rows, kv, vn, step, act, p, q, nb), want, rtol=1e-14, atol=1e-14)
    with pytest.raises(ValueError):
        shunt_ysh(lookup, rows + len(lookup), kv, vn, step, act, p, q, nb)

# ------------------------------------------------------------ Newton-Raphson
@pytest.mark.parametrize("name", CASES)
def test_jacobian_matches_pandapower(name):
    ppi, _ = solved(name)
    ref, pv, pq = classes(ppi)
    s, ydata = solver_for(ppi)
    V = ppi["V"] * (1 + 0.01 * np.cos(np.arange(len(ppi["V"]))))  # a non-solution point
    zero = np.zeros_like(V)
    J = s.jacobian(ydata, zero, zero, V)
    dVm, dVa = dSbus_dV(sp.csr_matrix(ppi["Ybus"]), V)
    pvpq = np.r_[pv, pq]
    Jref = sp.vstack([sp.hstack([dVa[pvpq][:, pvpq].real, dVm[pvpq][:, pq].real]),
                      sp.hstack([dVa[pq][:, pvpq].imag, dVm[pq][:, pq].imag])])
    assert J.shape == (len(pv) + 2 * len(pq),) * 2 == (s.n_jac, s.n_jac)
    assert abs(J - Jref).max() < 1e-9 * abs(Jref).max()
    mis = V * np.conj(ppi["Ybus"] @ V) - ppi["Sbus"]
    F = np.r_[mis[pv].real, mis[pq].real, mis[pq].imag]
    assert np.abs(s.mismatch(ydata, ppi["Sbus"].astype(complex), zero, zero, V) - F).max() < 1e-9


@pytest.mark.parametrize("name", CASES)
def test_newton_reproduces_pandapower(name):
    ppi, pp_iter = solved(name)
    s, ydata = solver_for(ppi)
    sbus = ppi["Sbus"].astype(np.complex128)
    zero = np.zeros_like(sbus)
    V = flat_start(ppi)
    conv, it, norm = s.solve(ydata, sbus, zero, zero, V, TOL, 10)
    assert conv and norm < TOL
    assert abs(it - pp_iter) <= 1
    assert np.abs(V - ppi["V"]).max() < 1e-8


def reference_nr(Y, s0, si, sz, V, ref, pv, pq, tol, max_iter):
    """Dense textbook polar NR with the voltage-dependent injection in the Jacobian;
    returns the list of iterates (V after each update)."""
    Y = Y.toarray()
    pvpq = np.r_[pv, pq]
    Va, Vm = np.angle(V), np.abs(V)
    iterates = []

    def F_of(V):
        vm = np.abs(V)
        mis = V * np.conj(Y @ V) - (s0 + si * vm + sz * vm ** 2)
        return np.r_[mis[pv].real, mis[pq].real, mis[pq].imag]

    F = F_of(V)
    while np.abs(F).max() >= tol and len(iterates) < max_iter:
        I = Y @ V
        dVa = 1j * np.diag(V) @ np.conj(np.diag(I) - Y @ np.diag(V))
        dVm = np.diag(V) @ np.conj(Y @ np.diag(V / np.abs(V))) + np.conj(np.diag(I)) @ np.diag(
            V / np.abs(V))
        dVm = dVm - np.diag(si + 2 * sz * np.abs(V))
        J = np.block([[dVa[np.ix_(pvpq, pvpq)].real, dVm[np.ix_(pvpq, pq)].real],
                      [dVa[np.ix_(pq, pvpq)].imag, dVm[np.ix_(pq, pq)].imag]])
        dx = -np.linalg.solve(J, F)
        Va[pvpq] += dx[:len(pvpq)]
        Vm[pq] += dx[len(pvpq):]
        V = Vm * np.exp(1j * Va)
        iterates.append(V.copy())
        F = F_of(V)
    return iterates


def voltage_dependent_case():
    ppi, _ = solved("case14")
    sbus = ppi["Sbus"].astype(np.complex128)
    load = np.where(sbus.real < 0, -sbus, 0.1 - 0.05j)  # every bus gets some load
    s0 = sbus + load - 0.5 * load * 1.2
    si = -0.3 * load * 1.2
    sz = -0.2 * load * 1.2
    return ppi, s0, si, sz


def test_voltage_dependent_injections():
    ppi, s0, si, sz = voltage_dependent_case()
    ref, pv, pq = classes(ppi)
    s, ydata = solver_for(ppi)
    V = flat_start(ppi)
    conv, it, norm = s.solve(ydata, s0, si, sz, V, 1e-10, 20)
    assert conv and it >= 2
    vm = np.abs(V)
    mis = V * np.conj(ppi["Ybus"] @ V) - (s0 + si * vm + sz * vm ** 2)
    assert np.abs(mis[np.r_[pv, pq]].real).max() < 1e-8
    assert np.abs(mis[pq].imag).max() < 1e-8
    # same iterates as a dense reference NR
    iterates = reference_nr(ppi["Ybus"], s0, si, sz, flat_start(ppi), ref, pv, pq, 1e-10, 20)
    assert len(iterates) == it
    for k, Vref in enumerate(iterates, start=1):
        Vk = flat_start(ppi)
        s.solve(ydata, s0, si, sz, Vk, 1e-10, k)
        assert np.abs(Vk - Vref).max() < 1e-9 * max(1.0, np.abs(Vref).max())
    # without the load term in J (pandapower's choice) the fixed point is the same
    s.load_jacobian = False
    V2 = flat_start(ppi)
    conv2, _, _ = s.solve(ydata, s0, si, sz, V2, 1e-10, 30)
    assert conv2 and np.abs(V2 - V).max() < 1e-8


def test_non_convergence_is_reported():
    ppi, _ = solved("case14")
    s, ydata = solver_for(ppi)
    sbus = ppi["Sbus"].astype(np.complex128)
    zero = np.zeros_like(sbus)
    V = flat_start(ppi)
    conv, it, norm = s.solve(ydata, 30 * sbus, zero, zero, V, TOL, 7)
    assert not conv and 1 <= it <= 7
    assert not norm < TOL
    V = flat_start(ppi)
    conv, it, _ = s.solve(ydata, sbus, zero, zero, V, TOL, 0)
    assert not conv and it == 0
    # NaN start: no exception, no iterations
    V = flat_start(ppi)
    V[ppi["pq"][0]] = np.nan
    conv, it, _ = s.solve(ydata, sbus, zero, zero, V, TOL, 10)
    assert not conv and it == 0
    # still usable afterwards
    V = flat_start(ppi)
    assert s.solve(ydata, sbus, zero, zero, V, TOL, 10)[0]


def test_singular_jacobian_returns_false():
    # bus 2 (PQ) has an empty diagonal and no connection: its rows of J are zero
    Y = sp.csr_matrix(np.array([[10 - 20j, -10 + 20j, 0], [-10 + 20j, 10 - 20j, 0], [0, 0, 0]]))
    indptr = np.array([0, 2, 4, 5], np.int32)
    indices = np.array([0, 1, 0, 1, 2], np.int32)
    ydata = np.array([Y[0, 0], Y[0, 1], Y[1, 0], Y[1, 1], 0], np.complex128)
    s = newton.NewtonSolver(indptr, indices, np.array([0], np.int32),
                            np.zeros(0, np.int32), np.array([1, 2], np.int32))
    s0 = np.array([0, -0.5, -0.1], np.complex128)
    zero = np.zeros(3, np.complex128)
    V = np.ones(3, np.complex128)
    conv, it, _ = s.solve(ydata, s0, zero, zero, V, TOL, 10)
    assert not conv and it == 1


def test_reuse_and_refactor():
    ppi, _ = solved("case118")
    s, ydata = solver_for(ppi)
    sbus = ppi["Sbus"].astype(np.complex128)
    zero = np.zeros_like(sbus)
    V = flat_start(ppi)
    assert s.solve(ydata, sbus, zero, zero, V, TOL, 10)[0]
    assert s.n_factor == 1 and s.n_refactor >= 1
    conv, it, _ = s.solve(ydata, sbus, zero, zero, V, TOL, 10)
    assert conv and it <= 1
    nref = s.n_refactor
    conv, it, _ = s.solve(ydata, 1.01 * sbus, zero, zero, V, TOL, 10)
    assert conv and it >= 1
    assert s.n_factor == 1 and s.n_refactor > nref
    # compare with a fresh solver on the changed injections
    s2, _ = solver_for(ppi)
    V2 = flat_start(ppi)
    assert s2.solve(ydata, 1.01 * sbus, zero, zero, V2, TOL, 10)[0]
    assert np.abs(V - V2).max() < 1e-7


def test_bad_inputs_raise():
    ppi, _ = solved("case14")
    s, ydata = solver_for(ppi)
    z = np.zeros(len(ppi["Sbus"]), np.complex128)
    with pytest.raises(ValueError):
        s.solve(ydata[:-1], z, z, z, z.copy(), TOL, 5)
    Y = sp.csr_matrix(ppi["Ybus"])
    indptr, indices = Y.indptr.astype(np.int32), Y.indices.astype(np.int32).copy()
    indices[[0, 1]] = indices[[1, 0]]  # unsorted row
    with pytest.raises(ValueError):
        newton.NewtonSolver(indptr, indices, *classes(ppi))
    ref, pv, pq = classes(ppi)
    with pytest.raises(ValueError):
        newton.NewtonSolver(Y.indptr.astype(np.int32), Y.indices.astype(np.int32),
                            ref, np.r_[pv, pq[:1]].astype(np.int32), pq)


# ------------------------------------------------------------------- KLU
def _nbklu_common_after(A=None):
    import nbklu._ext as ext
    c = ext.Common()
    c.defaults()
    if A is not None:
        A = sp.csc_matrix(A)
        Ap, Ai, Ax = A.indptr.astype(np.int32), A.indices.astype(np.int32), A.data.astype(float)
        sym = ext.analyze(A.shape[0], Ap, Ai, c)
        num = ext.factor(Ap, Ai, Ax, sym, c)
        if c.status == 0:
            ext.rcond(sym, num, c)
    return c


def test_klu_common_layout():
    ours = newton.klu_info()
    theirs = _nbklu_common_after()
    assert (ours["tol"], ours["btf"], ours["ordering"], ours["scale"]) == (0.001, 1, 0, 2)
    for k in ("tol", "memgrow", "initmem_amd", "initmem", "maxwork", "btf", "ordering", "scale",
              "halt_if_singular", "status", "nrealloc"):
        assert ours[k] == getattr(theirs, k), k
    assert ours["size"] == 5 * 8 + 3 * 4 + 4 + 2 * 8 + 3 * 4 + 4 * 4 + 5 * 8 + 2 * 8 + 4 == 160


@pytest.mark.parametrize("singular", [False, True])
def test_klu_common_after_factor(singular):
    A = sp.random(30, 30, density=0.15, random_state=4, format="csc") + sp.eye(30) * 5
    A = sp.csc_matrix(A)
    if singular:  # structurally fine, numerically rank-deficient: column 7 == column 3
        A = A.tolil()
        A[:, 7] = A[:, 3]
        A = sp.csc_matrix(A)
    A.sort_indices()
    ours = newton.klu_info(A.indptr, A.indices, A.data)
    theirs = _nbklu_common_after(A)
    assert ours["status"] == (1 if singular else 0)
    for k in ("status", "structural_rank", "numerical_rank", "singular_col", "noffdiag",
              "nrealloc", "flops", "rcond", "mempeak"):
        assert ours[k] == getattr(theirs, k), k


# -------------------------------------------------------------- DC, flows
def test_dc_solve_matches_spsolve():
    ppi, _ = solved("case118")
    Bm = sp.csr_matrix(-ppi["Ybus"].imag)
    Bm.sort_indices()
    nb = Bm.shape[0]
    rng = np.random.default_rng(0)
    p = rng.normal(size=nb)
    ref = np.array([int(ppi["ref"][0]), 5], dtype=np.int32)
    va = rng.normal(size=nb)
    va_ref = va[ref].copy()
    assert newton.dc_solve(Bm.indptr.astype(np.int32), Bm.indices.astype(np.int32),
                           Bm.data.copy(), p, ref, va)
    nr = np.setdiff1d(np.arange(nb), ref)
    expect = spla.spsolve(Bm[nr][:, nr].tocsc(), p[nr] - Bm[nr][:, ref] @ va_ref)
    assert np.abs(va[nr] - expect).max() < 1e-10 * max(1, np.abs(expect).max())
    assert np.array_equal(va[ref], va_ref)
    # singular reduced matrix: False and va untouched
    Z = sp.csr_matrix((nb, nb))
    Z.indptr = Bm.indptr.copy()
    Z.indices = Bm.indices.copy()
    Z.data = np.zeros_like(Bm.data)
    before = va.copy()
    assert not newton.dc_solve(Z.indptr.astype(np.int32), Z.indices.astype(np.int32),
                               Z.data, p, ref, va)
    assert np.array_equal(va, before)


@pytest.mark.parametrize("name", ["case14", "case118"])
def test_branch_flows_and_injection(name):
    """The one result path's AC kernel (resk.ac_arrays) against the formulas and pandapower."""
    ppi, _ = solved(name)
    f, t, yff, yft, ytf, ytt = branch_admittances(ppi)
    V = ppi["V"]
    indptr, indices, ydata = sorted_csr(ppi["Ybus"])
    ix = resk.AcIndex(len(V), f, t, indptr, indices)
    vm, va, s_f, s_t, S = resk.ac_arrays(V, ix, yff, yft, ytf, ytt, ydata, 1.0)
    If = yff * V[f] + yft * V[t]
    It = ytf * V[f] + ytt * V[t]
    assert np.abs(vm - np.abs(V)).max() < 1e-12 and np.abs(va - np.angle(V, deg=True)).max() < 1e-9
    assert np.abs(s_f - V[f] * np.conj(If)).max() < 1e-12
    assert np.abs(s_t - V[t] * np.conj(It)).max() < 1e-12
    # pandapower's own branch results (MW / MVAr)
    br = ppi["branch"]
    base = ppi["baseMVA"]
    assert np.abs(s_f * base - (br[:, B.PF] + 1j * br[:, B.QF])).max() < 1e-6
    assert np.abs(s_t * base - (br[:, B.PT] + 1j * br[:, B.QT])).max() < 1e-6
    assert np.abs(S - V * np.conj(ppi["Ybus"] @ V)).max() < 1e-12


def test_klu_binding_refuses_an_unverified_nbklu():
    """The binding hand-copies nbklu's private klu_common: with any nbklu version it was not
    verified against, gridtape refuses to import (a clear ImportError, not memory corruption)."""
    import subprocess
    import sys

    code = ("import importlib.metadata as m\n"
            "real = m.version\n"
            "m.version = lambda name: '9.9.9' if name == 'nbklu' else real(name)\n"
            "try:\n"
            "    import gridtape\n"
            "except ImportError as e:\n"
            "    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "refused:" in out.stdout and "nbklu 9.9.9" in out.stdout, out.stdout + out.stderr
    assert newton.NBKLU_VERIFIED and newton._check_layout() is None  # the installed one passes


@pytest.mark.parametrize("name", ["case14", "case118"])
def test_chunk_kernels_equal_the_one_solve_kernels(name):
    """resk.ac_steps / gen_steps over a chunk of solves give, row for row, the bits of
    ac_arrays / gen_pq of each; resk.branch_loading against the numpy formula (|S| / |V| c)."""
    import os

    import gridtape as gt

    ppi, _ = solved(name)
    f, t, yff, yft, ytf, ytt = branch_admittances(ppi)
    indptr, indices, ydata = sorted_csr(ppi["Ybus"])
    rng = np.random.default_rng(1)
    nb, nbr = len(ppi["V"]), len(f)
    Vs = ppi["V"][None, :] * (1 + 0.02 * (rng.uniform(-1, 1, (5, nb)) + 1j * rng.uniform(-1, 1, (5, nb))))
    Vs[3, 2] = np.nan  # an unsupplied bus
    rows = np.array([4, 0, 3], np.int64)
    out = (np.empty((3, nb)), np.empty((3, nb)), np.empty((3, nbr), complex), np.empty((3, nbr), complex),
           np.empty((3, nb), complex))
    resk.ac_steps(Vs, rows, f, t, yff, yft, ytf, ytt, indptr, indices, ydata, 100.0, out)
    ix = resk.AcIndex(nb, f, t, indptr, indices)
    for j, r in enumerate(rows):
        one = resk.ac_arrays(np.ascontiguousarray(Vs[r]), ix, yff, yft, ytf, ytt, ydata, 100.0)
        for a, b in zip(out, one):
            assert np.array_equal(a[j], b, equal_nan=True)
    with pytest.raises(ValueError):
        resk.ac_steps(Vs, np.array([5], np.int64), f, t, yff, yft, ytf, ytt, indptr, indices, ydata, 100.0, out)
    # the loading kernel against numpy: every branch, one row per solve, NaN where an end is NaN
    vm, sf, st = out[0], out[2], out[3]
    cf, ct = rng.uniform(0.5, 2, nbr), rng.uniform(0.5, 2, nbr)
    got = np.empty((3, nbr - 2))
    resk.branch_loading(vm, sf, st, 2, f[2:], t[2:], cf[2:], ct[2:], True, got)
    want = np.maximum(np.abs(sf[:, 2:]) / vm[:, f[2:]] * cf[2:], np.abs(st[:, 2:]) / vm[:, t[2:]] * ct[2:])
    assert np.allclose(got, want, rtol=1e-14, atol=0, equal_nan=True) and np.isnan(got).any()
    resk.branch_loading(vm, sf, st, 2, f[2:], t[2:], cf[2:], ct[2:], False, got)
    assert np.allclose(got, np.maximum(np.abs(sf[:, 2:]) * cf[2:], np.abs(st[:, 2:]) * ct[2:]), rtol=1e-14, atol=0)
    # the generator split of a grid, step by step and at once
    g = gt.PowerGrid(os.path.join(os.path.dirname(os.path.dirname(__file__)), "cases", "IEEE30"), journal=False)
    g.solve()
    eng = g._engine
    br, inj = eng.topo.branches, eng.inj
    V = np.ascontiguousarray(np.stack([eng.V, eng.V * 1.01]))
    k, nb = 2, eng.topo.nb
    o = (np.empty((k, nb)), np.empty((k, nb)), np.empty((k, len(br.f)), complex), np.empty((k, len(br.f)), complex),
         np.empty((k, nb), complex))
    resk.ac_steps(V, np.arange(k), br.f, br.t, br.yff, br.yft, br.ytf, br.ytt, eng.indptr, eng.indices, eng.ydata,
                  g.world.sn_mva, o)
    ng = len(inj.gens["bus"])
    pd, qd = np.stack([inj.pd, inj.pd * 1.1]), np.stack([inj.qd, inj.qd * 0.9])
    gp = np.stack([inj.gens["p"], inj.gens["p"] * 1.05])
    pg, qg = np.empty((k, ng)), np.empty((k, ng))
    split = eng.gen_split(None)
    resk.gen_steps(split, o[4], pd, qd, gp, (pg, qg))
    for j in range(k):
        p1, q1 = resk.gen_pq(split, o[4][j], pd[j], qd[j], gp[j], None, False)
        assert np.array_equal(p1, pg[j]) and np.array_equal(q1, qg[j])
