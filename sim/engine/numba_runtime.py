"""What the code `sim.engine.numba_engine` generates calls: numpy's scalar semantics, compiled.

Imported only by generated modules (it imports numba). Each function is what the numpy
kernel computes for one value: `_mn`/`_mx` are np.minimum/np.maximum (a NaN wins), `_interp`
is np.interp's algorithm for one x, `_round` rounds half away from zero (as the expression
language does). Compiled once per machine (numba's cache), shared by every model.
"""

import math

import numpy as np
from numba import njit

_jit = njit(cache=True, nogil=True, error_model="numpy")


@_jit
def _mn(a, b):  # np.minimum: NaN wins
    return a if (a <= b or a != a) else b


@_jit
def _mx(a, b):  # np.maximum: NaN wins
    return a if (a >= b or a != a) else b


@_jit
def _and(a, b):
    return 1.0 if (a != 0.0 and b != 0.0) else 0.0


@_jit
def _or(a, b):
    return 1.0 if (a != 0.0 or b != 0.0) else 0.0


@_jit
def _round(x):  # half away from zero
    whole = np.trunc(x)
    if abs(x - whole) == 0.5:
        return whole + np.sign(x)
    return np.rint(x)


@_jit
def _pulse(at, width, t, half):
    width = (2.0 * half if width == 0.0 else 0.0) + width
    mid = t + half
    return 1.0 if (mid >= at and mid < at + width) else 0.0


@_jit
def _ramp(slope, start, t):
    return slope * (_mx(t, start) - start)


@_jit
def _ramp_to(slope, start, t, end):
    return slope * (_mn(_mx(t, start), end) - start)


@_jit
def _interp(x, xp, fp):  # np.interp, for one x
    n = len(xp)
    if x != x:
        return x
    if x < xp[0]:
        return fp[0]
    if x > xp[n - 1]:
        return fp[n - 1]
    j = 0
    while j < n - 1 and x >= xp[j + 1]:
        j += 1
    if j == n - 1 or xp[j] == x:
        return fp[j]
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    res = slope * (x - xp[j]) + fp[j]
    if res != res:
        res = slope * (x - xp[j + 1]) + fp[j + 1]
        if res != res and fp[j] == fp[j + 1]:
            res = fp[j]
    return res


@_jit
def _sel(c, a, b):  # np.where for one value: a NaN condition is true
    return a if c != 0.0 else b


@_jit
def _step(height, at, t, half):  # Vensim's STEP
    return height if t + half > at else 0.0


@_jit
def _first(v, x, t):  # the `first` statistic: the first tick x is true
    return float(t) if (v != v and x != 0.0) else v


@_jit
def _ration(held, total):
    """A stock cell giving `total`: (what it holds after, the factor, how: 0 all given,
    1 scaled by the factor, 2 split by shares because the factor underflowed)."""
    if total > held:
        factor = held / total
        return 0.0, factor, 2.0 if (factor == 0.0 and held > 0.0) else 1.0
    return held - total, 1.0, 0.0


@_jit
def _give(request, total, held, factor, how):  # what one flow cell gets (see _ration)
    if how == 0.0:
        return request
    if how == 1.0:
        return request * factor
    return (request / total) * held


@_jit
def _below(bad, value, r, code, cell, x):  # a stock cell starting below zero (or NaN)
    if bad[r, 0] < 0 and not (x >= 0.0):
        bad[r, 0] = code
        bad[r, 1] = cell
        value[r] = x


@_jit
def _scan(chk):  # the first non-finite value's place, or -1: one sum when all are finite
    total = 0.0
    for x in chk:
        total += x
    if math.isfinite(total):
        return -1
    for k in range(len(chk)):
        if not math.isfinite(chk[k]):
            return k
    return -1
