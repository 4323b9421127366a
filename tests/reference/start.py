"""Numpy references of solver_cy/start.py's kernel-backed start after a topology change
(topo.warm_voltage = previous_voltage, then pin).  ``self``: the engine.  Used only by tests."""
import numpy as np

from gridtape.solver_cy.topology import NONE


def previous_voltage(self, nb):
    """The voltages converged before the last topology change as a start for the new model,
    or None when the bus count changed.  A newly supplied bus (no previous voltage) takes the
    voltage of a bus it is now connected to by an in-service branch; None if one is left."""
    V = self._v_prev
    if len(V) != nb:
        return None
    V = V.copy()
    need = ~np.isfinite(V) & (self.topo.bus_type != NONE)
    if need.any():
        br = self.topo.branches
        f, t = br.f[br.status], br.t[br.status]
        while need.any():
            have = ~need
            a = need[f] & have[t]  # from-end missing, to-end known
            b = need[t] & have[f]
            if not (a.any() or b.any()):
                return None
            V[f[a]] = V[t[a]]
            V[t[b]] = V[f[b]]
            need[f[a]] = False
            need[t[b]] = False
    V[~np.isfinite(V)] = 1.0
    return V

def pin(self, V):
    """``V`` (changed in place) with the set-points pinned: magnitude at PV / REF buses, angle
    at ext_grid buses; the other buses keep their voltage as it is."""
    inj = self.inj
    vs = np.flatnonzero(~np.isnan(inj.vm_set))
    V[vs] = inj.vm_set[vs] * np.exp(1j * np.angle(V[vs]))
    va = np.flatnonzero(~np.isnan(inj.va_set))
    if len(va):
        V[va] = np.abs(V[va]) * np.exp(1j * np.deg2rad(inj.va_set[va]))
    return V

