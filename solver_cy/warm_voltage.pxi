# Start voltages after a topology change: topo.pyx's warm_voltage (textual include).
def warm_voltage(const double complex[::1] v_prev, const int8_t[::1] bus_type, const int32_t[::1] f,
                 const int32_t[::1] t, const cnp.npy_bool[::1] status, const double[::1] vm_set,
                 const double[::1] va_set):
    """The start of the first solve after a topology change (Engine._initial_voltage, equal to
    Engine._previous_voltage then Engine._pin): the last converged voltages; a supplied bus
    without one (NaN) takes the voltage of a bus it is connected to by an in-service branch,
    sweep after sweep as the reference does (per sweep: origins from known extremities, in branch
    order, then extremities from known origins); the buses left unknown (unsupplied ones) 1 p.u.;
    then magnitude set-points pinned (keeping the angle) and angle set-points (degrees, keeping
    the magnitude).  None when a supplied bus stays unreachable."""
    cdef Py_ssize_t nb = v_prev.shape[0], nbr = f.shape[0], i, k
    if bus_type.shape[0] != nb or vm_set.shape[0] != nb or va_set.shape[0] != nb or t.shape[0] != nbr \
            or status.shape[0] != nbr:
        raise ValueError("warm_voltage: inconsistent lengths")
    out = np.empty(nb, dtype=np.complex128)
    cdef double complex[::1] V = out
    need_a = np.zeros(nb, dtype=np.uint8)
    got_a = np.zeros(nb, dtype=np.uint8)
    cdef unsigned char[::1] need = need_a
    cdef unsigned char[::1] got = got_a
    cdef Py_ssize_t left = 0
    cdef bint any_
    cdef double re, im, m, a
    for i in range(nb):
        V[i] = v_prev[i]
        re, im = V[i].real, V[i].imag
        if not (isfinite(re) and isfinite(im)) and bus_type[i] != NONE:
            need[i] = 1
            left += 1
    while left:
        for i in range(nb):
            got[i] = 0
        any_ = False
        for k in range(nbr):  # origins missing, extremities known (before this sweep)
            if status[k] and need[f[k]] and not need[t[k]]:
                V[f[k]] = V[t[k]]
                got[f[k]] = 1
                any_ = True
        for k in range(nbr):  # extremities missing, origins known (before this sweep)
            if status[k] and need[t[k]] and not need[f[k]]:
                V[t[k]] = V[f[k]]
                got[t[k]] = 1
                any_ = True
        if not any_:
            return None
        for i in range(nb):
            if got[i]:
                need[i] = 0
                left -= 1
    for i in range(nb):
        re, im = V[i].real, V[i].imag
        if not (isfinite(re) and isfinite(im)):
            V[i] = 1.0
        if not isnan(vm_set[i]):
            a = atan2(V[i].imag, V[i].real)
            V[i] = vm_set[i] * (cos(a) + 1j * sin(a))
        if not isnan(va_set[i]):
            m = sqrt(V[i].real * V[i].real + V[i].imag * V[i].imag)
            a = va_set[i] * (M_PI / 180.0)
            V[i] = m * (cos(a) + 1j * sin(a))
    return out
