"""Kernel of the grid2op backend (gridtape.grid2op.GridtapeBackend._fetch): an AC power flow's
bus voltages, branch results and one-bus element voltages in one pass, written into the
backend's float32 result buffers.  Its reference is the numpy path of ``_fetch`` (kept for DC
flows and branch lists that do not start with the lines and transformers)."""
import numpy as np
cimport numpy as cnp
from libc.math cimport atan2, hypot, isfinite, M_PI
from libc.stdint cimport int32_t, int64_t

cnp.import_array()


def ac_results(const double complex[::1] V_in, const int64_t[::1] none,
               const int32_t[::1] f, const int32_t[::1] t,
               const double complex[::1] yff, const double complex[::1] yft,
               const double complex[::1] ytf, const double complex[::1] ytt,
               const int64_t[::1] b2, const double[::1] kv2_on, const double[::1] amp_den,
               const double[::1] off2, double sn, float[:, ::1] L,
               const double[::1] base_kv, const int64_t[::1] eb, const double[::1] eon, float[:, ::1] I):
    """Fill the line buffer ``L`` (rows p, q, v, a, theta; columns the origin ends of branches
    0..n-1, then their extremity ends, n = L's width / 2) and rows 2, 3 (v, theta) of the element
    buffer ``I``; return ``(V, vm, va, vkv, finite)``: the voltages with the ``none`` buses at 0,
    their magnitudes (p.u.), angles (degrees) and magnitudes in kV, and whether every value
    written to ``L`` is finite."""
    cdef Py_ssize_t nb = V_in.shape[0], n2 = L.shape[1], n = n2 // 2, ne = eb.shape[0], i, j, k
    if L.shape[0] != 5 or n2 != 2 * n or b2.shape[0] != n2 or kv2_on.shape[0] != n2 \
            or amp_den.shape[0] != n2 or off2.shape[0] != n2 or base_kv.shape[0] != nb:
        raise ValueError("ac_results: inconsistent line arrays")
    if f.shape[0] < n or t.shape[0] < n or yff.shape[0] < n or yft.shape[0] < n or ytf.shape[0] < n \
            or ytt.shape[0] < n:
        raise ValueError("ac_results: fewer branches than lines")
    if I.shape[0] != 4 or I.shape[1] != ne or eon.shape[0] != ne:
        raise ValueError("ac_results: inconsistent element arrays")
    for i in range(none.shape[0]):
        if not 0 <= none[i] < nb:
            raise ValueError("ac_results: bus index out of range")
    for j in range(n2):
        if not 0 <= b2[j] < nb:
            raise ValueError("ac_results: bus index out of range")
    for k in range(n):
        if not (0 <= f[k] < nb and 0 <= t[k] < nb):
            raise ValueError("ac_results: bus index out of range")
    for i in range(ne):
        if not 0 <= eb[i] < nb:
            raise ValueError("ac_results: bus index out of range")
    V_a = np.empty(nb, dtype=np.complex128)
    vm_a = np.empty(nb)
    va_a = np.empty(nb)
    vkv_a = np.empty(nb)
    cdef double complex[::1] V = V_a
    cdef double[::1] vm = vm_a, va = va_a, vkv = vkv_a
    cdef double complex vf, vt, a, b, s
    cdef double deg = 180.0 / M_PI, x
    cdef bint finite = True
    with nogil:
        for i in range(nb):
            V[i] = V_in[i]
        for i in range(none.shape[0]):
            V[none[i]] = 0.0  # unsupplied buses (NaN in the engine) read 0
        for i in range(nb):
            vm[i] = hypot(V[i].real, V[i].imag)
            va[i] = atan2(V[i].imag, V[i].real) * deg
            vkv[i] = vm[i] * base_kv[i]
        for k in range(n):
            vf = V[f[k]]
            vt = V[t[k]]
            a = yff[k] * vf + yft[k] * vt
            b = ytf[k] * vf + ytt[k] * vt
            for j in range(2):
                s = (vf * a.conjugate()) if j == 0 else (vt * b.conjugate())
                s = s * sn
                i = k + j * n
                L[0, i] = <float>s.real
                L[1, i] = <float>s.imag
                x = vm[b2[i]]
                L[2, i] = <float>(x * kv2_on[i])
                L[3, i] = <float>(hypot(s.real, s.imag) / (x * amp_den[i] + off2[i]))  # off: 0 A
                L[4, i] = <float>va[b2[i]]
                if finite and not (isfinite(L[0, i]) and isfinite(L[1, i]) and isfinite(L[2, i])
                                   and isfinite(L[3, i]) and isfinite(L[4, i])):
                    finite = False
        for i in range(ne):
            I[2, i] = <float>(vkv[eb[i]] * eon[i])
            I[3, i] = <float>(va[eb[i]] * eon[i])
    return V_a, vm_a, va_a, vkv_a, finite
