"""Branch flow and bus injection kernels (p.u.)."""
import numpy as np
from libc.stdint cimport int32_t


def branch_flows(const int32_t[::1] f, const int32_t[::1] t,
                 const double complex[::1] yff, const double complex[::1] yft,
                 const double complex[::1] ytf, const double complex[::1] ytt,
                 const double complex[::1] V):
    """Return (s_f, s_t, i_f, i_t): currents and complex powers at both branch ends."""
    cdef Py_ssize_t nbr = f.shape[0], nb = V.shape[0], k
    for n in (t.shape[0], yff.shape[0], yft.shape[0], ytf.shape[0], ytt.shape[0]):
        if n != nbr:
            raise ValueError("branch arrays must all have the same length")
    for k in range(nbr):
        if not (0 <= f[k] < nb and 0 <= t[k] < nb):
            raise ValueError(f"branch {k} has a bus index outside V")
    sf_a = np.empty(nbr, dtype=np.complex128)
    st_a = np.empty(nbr, dtype=np.complex128)
    if_a = np.empty(nbr, dtype=np.complex128)
    it_a = np.empty(nbr, dtype=np.complex128)
    cdef double complex[::1] sf = sf_a, st = st_a, i_f = if_a, i_t = it_a
    cdef double complex vf, vt, a, b
    with nogil:
        for k in range(nbr):
            vf = V[f[k]]
            vt = V[t[k]]
            a = yff[k] * vf + yft[k] * vt
            b = ytf[k] * vf + ytt[k] * vt
            i_f[k] = a
            i_t[k] = b
            sf[k] = vf * a.conjugate()
            st[k] = vt * b.conjugate()
    return sf_a, st_a, if_a, it_a


def bus_injection(const int32_t[::1] indptr, const int32_t[::1] indices,
                  const double complex[::1] ydata, const double complex[::1] V):
    """Return S = V * conj(Ybus @ V) for a CSR Ybus."""
    cdef Py_ssize_t nb = indptr.shape[0] - 1, i, p
    if nb < 0 or V.shape[0] != nb:
        raise ValueError("V must have len(indptr) - 1 entries")
    if indptr[0] != 0 or indptr[nb] > indices.shape[0] or indices.shape[0] != ydata.shape[0]:
        raise ValueError("inconsistent CSR arrays")
    for i in range(nb):
        if indptr[i + 1] < indptr[i]:
            raise ValueError("indptr must be non-decreasing")
    for p in range(indptr[nb]):
        if not 0 <= indices[p] < nb:
            raise ValueError("column index outside 0..nb-1")
    s_a = np.empty(nb, dtype=np.complex128)
    cdef double complex[::1] s = s_a
    cdef double complex acc
    with nogil:
        for i in range(nb):
            acc = 0
            for p in range(indptr[i], indptr[i + 1]):
                acc = acc + ydata[p] * V[indices[p]]
            s[i] = V[i] * acc.conjugate()
    return s_a
