"""Kernel of the grid2op backend (gridtape.grid2op.GridtapeBackend._fetch): an AC power flow's
bus voltages, branch results and one-bus element voltages in one pass, written into the
backend's float32 result buffers.  Its reference is the numpy path of ``_fetch`` (kept for DC
flows and branch lists that do not start with the lines and transformers)."""
import numpy as np
cimport numpy as cnp
from libc.math cimport atan2, hypot, isfinite, M_PI
from libc.stdint cimport int32_t, int64_t

cnp.import_array()


cdef class LinePack:
    """The constants of one model that ``ac_results`` reads (branch ends, result factors, element
    buses and the result buffers), checked once when the model is new: a kernel call then takes
    no more than the voltages.  ``admittances`` re-points the branch admittances (the engine
    replaces those arrays when admittance values change)."""
    cdef const int64_t[::1] none, b2, eb
    cdef const int32_t[::1] f, t
    cdef const double complex[::1] yff, yft, ytf, ytt
    cdef const double[::1] kv2_on, amp_den, off2, base_kv, eon
    cdef float[:, ::1] lbuf, ebuf
    cdef Py_ssize_t nb, n
    cdef readonly object yff_obj

    def __init__(self, const int64_t[::1] none, const int32_t[::1] f, const int32_t[::1] t,
                 const int64_t[::1] b2, const double[::1] kv2_on, const double[::1] amp_den,
                 const double[::1] off2, float[:, ::1] lbuf, const double[::1] base_kv,
                 const int64_t[::1] eb, const double[::1] eon, float[:, ::1] ebuf):
        cdef Py_ssize_t nb = base_kv.shape[0], n2 = lbuf.shape[1], n = n2 // 2, ne = eb.shape[0], i
        if lbuf.shape[0] != 5 or n2 != 2 * n or b2.shape[0] != n2 or kv2_on.shape[0] != n2 \
                or amp_den.shape[0] != n2 or off2.shape[0] != n2:
            raise ValueError("LinePack: inconsistent line arrays")
        if f.shape[0] < n or t.shape[0] < n:
            raise ValueError("LinePack: fewer branches than lines")
        if ebuf.shape[0] != 4 or ebuf.shape[1] != ne or eon.shape[0] != ne:
            raise ValueError("LinePack: inconsistent element arrays")
        for i in range(none.shape[0]):
            if not 0 <= none[i] < nb:
                raise ValueError("LinePack: bus index out of range")
        for i in range(n2):
            if not 0 <= b2[i] < nb:
                raise ValueError("LinePack: bus index out of range")
        for i in range(n):
            if not (0 <= f[i] < nb and 0 <= t[i] < nb):
                raise ValueError("LinePack: bus index out of range")
        for i in range(ne):
            if not 0 <= eb[i] < nb:
                raise ValueError("LinePack: bus index out of range")
        self.none, self.f, self.t, self.b2, self.kv2_on, self.amp_den, self.off2 = none, f, t, b2, kv2_on, amp_den, off2
        self.lbuf, self.base_kv, self.eb, self.eon, self.ebuf = lbuf, base_kv, eb, eon, ebuf
        self.nb, self.n = nb, n
        self.yff_obj = None

    def admittances(self, yff, const double complex[::1] yft, const double complex[::1] ytf,
                    const double complex[::1] ytt):
        """Point at the branch admittances (``yff`` is kept to compare identities with)."""
        cdef const double complex[::1] y = yff
        if y.shape[0] < self.n or yft.shape[0] < self.n or ytf.shape[0] < self.n or ytt.shape[0] < self.n:
            raise ValueError("LinePack: fewer admittances than lines")
        self.yff, self.yft, self.ytf, self.ytt = y, yft, ytf, ytt
        self.yff_obj = yff


def ac_results(LinePack p, const double complex[::1] V_in, double sn):
    """Fill the pack's line buffer (rows p, q, v, a, theta; columns the origin ends of branches
    0..n-1, then their extremity ends, n = the buffer's width / 2) and rows 2, 3 (v, theta) of
    its element buffer; return ``(V, vm, va, vkv, finite)``: the voltages with the pack's
    ``none`` buses at 0, their magnitudes (p.u.), angles (degrees) and magnitudes in kV, and
    whether every value written to the line buffer is finite."""
    cdef Py_ssize_t nb = p.nb, n = p.n, ne = p.eb.shape[0], i, j, k
    if V_in.shape[0] != nb:
        raise ValueError("ac_results: V does not match the pack's buses")
    if p.yff_obj is None:
        raise ValueError("ac_results: the pack has no admittances")
    V_a = np.empty(nb, dtype=np.complex128)
    vm_a = np.empty(nb)
    va_a = np.empty(nb)
    vkv_a = np.empty(nb)
    cdef double complex[::1] V = V_a
    cdef double[::1] vm = vm_a, va = va_a, vkv = vkv_a
    cdef const int64_t[::1] none = p.none, b2 = p.b2, eb = p.eb
    cdef const int32_t[::1] f = p.f, t = p.t
    cdef const double complex[::1] yff = p.yff, yft = p.yft, ytf = p.ytf, ytt = p.ytt
    cdef const double[::1] kv2_on = p.kv2_on, amp_den = p.amp_den, off2 = p.off2, base_kv = p.base_kv, eon = p.eon
    cdef float[:, ::1] lbuf = p.lbuf, ebuf = p.ebuf
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
                lbuf[0, i] = <float>s.real
                lbuf[1, i] = <float>s.imag
                x = vm[b2[i]]
                lbuf[2, i] = <float>(x * kv2_on[i])
                lbuf[3, i] = <float>(hypot(s.real, s.imag) / (x * amp_den[i] + off2[i]))  # off: 0 A
                lbuf[4, i] = <float>va[b2[i]]
                if finite and not (isfinite(lbuf[0, i]) and isfinite(lbuf[1, i]) and isfinite(lbuf[2, i])
                                   and isfinite(lbuf[3, i]) and isfinite(lbuf[4, i])):
                    finite = False
        for i in range(ne):
            ebuf[2, i] = <float>(vkv[eb[i]] * eon[i])
            ebuf[3, i] = <float>(va[eb[i]] * eon[i])
    return V_a, vm_a, va_a, vkv_a, finite
