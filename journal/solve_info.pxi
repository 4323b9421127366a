# The ``info`` JSON of a solve event, formatted in C (included by recorder.pyx): it is written
# at every solve, and formatting floats the way Python's ``repr`` does costs more than the
# rest of the event.  The mismatch gets 5 significant digits, the runtime the microsecond.

cdef int put_str(char* out, int at, const char* s) noexcept:
    cdef size_t n = strlen(s)
    memcpy(out + at, s, n)
    return at + <int>n


cdef int put_uint(char* out, int at, unsigned long long v, int width) noexcept:
    """v in decimal, zero-padded to ``width`` digits."""
    cdef char tmp[24]
    cdef int n = 0
    while v or n < width or n == 0:
        tmp[n] = <char>(48 + v % 10)
        v //= 10
        n += 1
    while n:
        n -= 1
        out[at] = tmp[n]
        at += 1
    return at


cdef int put_sci(char* out, int at, double m) noexcept:
    """m with 5 significant digits as JSON (``1.2345e-09``); NaN/Infinity as Python's json writes them."""
    cdef int e, shift
    cdef long long k
    cdef double a
    if isnan(m):
        return put_str(out, at, "NaN")
    if isinf(m):
        return put_str(out, at, "Infinity" if m > 0 else "-Infinity")
    if m == 0.0:
        return put_str(out, at, "0.0")
    if m < 0:
        out[at] = 45  # '-'
        at += 1
    a = -m if m < 0 else m
    shift = 0  # keep 10**e inside the normal doubles at both ends of the range
    if a < 1e-280:
        a *= 1e100
        shift = -100
    elif a > 1e280:
        a *= 1e-100
        shift = 100
    e = <int>floor(log10(a))
    k = llround(a / pow(10.0, e) * 1e4)
    if k >= 100000:  # the mantissa rounded up to 10
        k = llround(a / pow(10.0, e + 1) * 1e4)
        e += 1
    elif k < 10000:  # log10 came out one too high
        k = llround(a / pow(10.0, e - 1) * 1e4)
        e -= 1
    e += shift
    at = put_uint(out, at, k // 10000, 1)
    out[at] = 46  # '.'
    at = put_uint(out, at + 1, k % 10000, 4)
    out[at] = 101  # 'e'
    out[at + 1] = 45 if e < 0 else 43
    return put_uint(out, at + 2, -e if e < 0 else e, 2)
