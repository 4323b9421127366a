"""Newton-Raphson with the Iwamoto multiplier (``runpp(algorithm="iwamoto_nr")``).

Each iteration takes the Newton step ``dx`` of the Newton kernel, then scales it by the
multiplier ``mu`` pandapower computes (pf/iwamoto_multiplier.py): with ``F`` the mismatch before
the step, ``c0 = -F``, ``c1 = -J dx`` (= ``F``, the step solves ``J dx = -F``) and
``c2 = -y(dV)``, where ``dV = dVm exp(j dVa)`` is built from the step's magnitude and angle parts
(0 where the step has no magnitude, PV buses included) and ``y(x) = x conj(Ybus x)`` read at the
PV (real part) and PQ buses (real and imaginary parts), ``mu`` is the real part of the third
root, in ``numpy.roots`` order, of ``2 c2.c2 mu^3 + 3 c1.c2 mu^2 + (c1.c1 + 2 c0.c2) mu + c0.c1``.
The voltages become ``Vm + mu dVm``, ``Va + mu dVa``.  The Newton kernel does the step and the
mismatch; this module only adds the scaling (not a hot path: pandapower users reach for it on
hard cases).
"""
from __future__ import annotations

import numpy as np



def bus_injection(indptr, indices, ydata, V):
    """``V conj(Ybus V)`` with Ybus in CSR (indptr, indices, ydata)."""
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    yv = ydata * V[indices]
    i = np.bincount(rows, yv.real, len(V)) + 1j * np.bincount(rows, yv.imag, len(V))
    return V * np.conj(i)


def _y_at(S, pv, pq):
    return np.concatenate([S[pv].real, S[pq].real, S[pq].imag])


def iwamoto_solve(solver, indptr, indices, ydata, s0, si, sz, V, pv, pq, tol, max_iter):
    """Damped Newton from ``V`` (updated in place); ``solver``: the engine's NewtonSolver for these
    bus types.  Returns (converged, iterations, norm) as NewtonSolver.solve does."""
    conv, _, norm = solver.solve(ydata, s0, si, sz, V, tol, 0)  # the mismatch at the start
    it = 0
    while not conv and np.isfinite(norm) and it < max_iter:
        vb = V.copy()
        vm_b, va_b = np.abs(vb), np.angle(vb)
        S = bus_injection(indptr, indices, ydata, vb)
        F = _y_at(S - (s0 + si * vm_b + sz * vm_b * vm_b), pv, pq)
        solver.solve(ydata, s0, si, sz, V, tol, 1)  # one full Newton step
        it += 1
        d_va = np.zeros(len(V))
        d_vm = np.zeros(len(V))
        d_va[pv] = np.angle(V[pv] / vb[pv])
        d_va[pq] = np.angle(V[pq] / vb[pq])
        d_vm[pq] = np.abs(V[pq]) - vm_b[pq]
        dV = d_vm * np.exp(1j * d_va)
        c0, c1 = -F, F
        c2 = -_y_at(bus_injection(indptr, indices, ydata, dV), pv, pq)
        g0 = c0.dot(c1)
        g1 = c1.dot(c1) + 2 * c0.dot(c2)
        g2 = 3.0 * c1.dot(c2)
        g3 = 2.0 * c2.dot(c2)
        mu = np.roots([g3, g2, g1, g0])[2].real
        V[:] = (vm_b + mu * d_vm) * np.exp(1j * (va_b + mu * d_va))
        conv, _, norm = solver.solve(ydata, s0, si, sz, V, tol, 0)
    return bool(conv), it, float(norm)
