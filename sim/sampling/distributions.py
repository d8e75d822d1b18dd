"""Each declared distribution as a `scipy.stats` frozen distribution, sampled by inverse CDF."""

from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import special, stats
from scipy.stats import sampling

from sim.scenario.schema import (
    Beta,
    Choice,
    Distribution,
    Fixed,
    Lognormal,
    Normal,
    Pert,
    Triangular,
    Uniform,
)

Z95 = float(stats.norm.ppf(0.95))


def frozen(spec: Distribution) -> Any:
    """The scipy frozen distribution a spec stands for (choice: over value indexes)."""
    match spec:
        case Fixed(value=v):
            return stats.randint(0, 1, loc=v)  # a point mass; ppf gives v everywhere
        case Uniform(low=lo, high=hi):
            return stats.uniform(loc=lo, scale=hi - lo)
        case Triangular(low=lo, mode=mode, high=hi):
            return stats.triang(c=(mode - lo) / (hi - lo), loc=lo, scale=hi - lo)
        case Pert(low=lo, high=hi):
            a, b = pert_shape(spec)
            return stats.beta(a, b, loc=lo, scale=hi - lo)
        case Normal(mean=m, sd=sd, low=lo, high=hi):
            if lo is None and hi is None:
                return stats.norm(loc=m, scale=sd)
            a = -math.inf if lo is None else (lo - m) / sd
            b = math.inf if hi is None else (hi - m) / sd
            return stats.truncnorm(a, b, loc=m, scale=sd)
        case Lognormal():
            mu, sigma = lognormal_mu_sigma(spec)
            return stats.lognorm(s=sigma, scale=math.exp(mu))
        case Beta(a=a, b=b, low=lo, high=hi):
            return stats.beta(a, b, loc=lo, scale=hi - lo)
        case Choice(values=values, weights=weights):
            w = np.ones(len(values)) if weights is None else np.asarray(weights, float)
            return stats.rv_discrete(values=(np.arange(len(values)), w / w.sum()))
    raise TypeError(f"not a distribution: {spec!r}")  # pragma: no cover


def pert_shape(spec: Pert) -> tuple[float, float]:
    """PERT is a beta on [low, high] with these shape parameters (Vose, Risk Analysis)."""
    lo, mode, hi, lamb = spec.low, spec.mode, spec.high, spec.lamb
    return 1 + lamb * (mode - lo) / (hi - lo), 1 + lamb * (hi - mode) / (hi - lo)


def lognormal_mu_sigma(spec: Lognormal) -> tuple[float, float]:
    """mu and sigma of the underlying normal, from median and p95 or as given."""
    if spec.median is not None and spec.p95 is not None:
        return math.log(spec.median), math.log(spec.p95 / spec.median) / Z95
    assert spec.mu is not None and spec.sigma is not None
    return spec.mu, spec.sigma


# Keep u strictly inside (0, 1) so unbounded distributions never map to +-inf.
_EPS = 2.0**-53
# The exact beta inverse CDF (boost's ibeta_inv) costs ~1.3 us a value: for a model with a
# score of PERT parameters it was most of a 100,000-run study. scipy's PINV (Hormann &
# Leydold's polynomial interpolation of the inverse CDF) costs ~20 ns a value after a few
# milliseconds of set-up per (a, b), with |CDF(draw) - u| below this bound (scipy's default).
U_RESOLUTION = 1e-10


class _StandardBeta:
    """beta(a, b) on [0, 1] as PINV's set-up wants it: a scalar density. scipy's frozen pdf
    costs ~30 us a scalar call, four times PINV's whole set-up with this one."""

    def __init__(self, a: float, b: float):
        self.a, self.b = a, b
        self.log_norm = -float(special.betaln(a, b))

    def pdf(self, x: float) -> float:
        if not 0.0 < x < 1.0:
            return 0.0
        return math.exp(self.log_norm + (self.a - 1) * math.log(x) + (self.b - 1) * math.log1p(-x))

    def support(self) -> tuple[float, float]:
        return 0.0, 1.0


@lru_cache(maxsize=256)
def _standard_beta_pinv(a: float, b: float) -> Any:
    """scipy's fast numerical inverse CDF of beta(a, b) on [0, 1], or None where it would
    miss its resolution: a density unbounded at an end (a or b below 1) gives PINV errors a
    hundred times the bound. Built on [0, 1] and mapped after: PINV's search for the domain
    stalls on a beta stretched over millions."""
    if a < 1 or b < 1:
        return None
    mode = (a - 1) / (a + b - 2) if a > 1 and b > 1 else 0.5
    with warnings.catch_warnings():  # "center moved into domain": informational
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return sampling.NumericalInversePolynomial(
                _StandardBeta(a, b), center=mode, u_resolution=U_RESOLUTION
            )
        except (sampling.UNURANError, ValueError):
            return None


def _fast_beta_ppf(spec: Pert | Beta, u: np.ndarray) -> np.ndarray | None:
    a, b = pert_shape(spec) if isinstance(spec, Pert) else (spec.a, spec.b)
    fast = _standard_beta_pinv(float(a), float(b))
    if fast is None:
        return None
    return np.asarray(spec.low + (spec.high - spec.low) * fast.ppf(u), dtype=float)


def ppf(spec: Distribution, u: np.ndarray) -> np.ndarray:
    """Map uniforms `u` in [0, 1) to draws of `spec` by its inverse CDF."""
    if isinstance(spec, Fixed):
        return np.full(u.shape, float(spec.value))
    u = np.clip(u, _EPS, 1.0 - _EPS)
    if isinstance(spec, Lognormal):
        # The same inverse CDF as scipy's lognorm.ppf, without its generic argument checks,
        # which dominate the cost of drawing a block's noise paths.
        mu, sigma = lognormal_mu_sigma(spec)
        return np.exp(mu + sigma * special.ndtri(u))
    if isinstance(spec, Normal) and spec.low is None and spec.high is None:
        return spec.mean + spec.sd * special.ndtri(u)
    if isinstance(spec, Choice):
        index = frozen(spec).ppf(u).astype(np.int64)
        return np.asarray(spec.values, dtype=float)[index]
    if isinstance(spec, Pert | Beta) and (fast := _fast_beta_ppf(spec, u)) is not None:
        # The same map whatever the number of values asked for, so a run's draw never
        # depends on the block it was drawn in.
        return fast
    return np.asarray(frozen(spec).ppf(u), dtype=float)


def support(spec: Distribution) -> tuple[float, float]:
    """The smallest and largest value a spec can produce."""
    if isinstance(spec, Fixed):
        return float(spec.value), float(spec.value)
    if isinstance(spec, Choice):
        return float(min(spec.values)), float(max(spec.values))
    low, high = frozen(spec).support()
    return float(low), float(high)


def describe(spec: Distribution) -> str:
    """A short human form: 'triangular(80, 100, 130)'."""

    def n(x: float | None) -> str:
        return "" if x is None else f"{x:g}"

    match spec:
        case Fixed(value=v):
            return n(v)
        case Uniform(low=lo, high=hi):
            return f"uniform({n(lo)}, {n(hi)})"
        case Triangular(low=lo, mode=mode, high=hi):
            return f"triangular({n(lo)}, {n(mode)}, {n(hi)})"
        case Pert(low=lo, mode=mode, high=hi):
            return f"pert({n(lo)}, {n(mode)}, {n(hi)})"
        case Normal(mean=m, sd=sd, low=lo, high=hi):
            bounds = f", [{n(lo)}, {n(hi)}]" if lo is not None or hi is not None else ""
            return f"normal({n(m)}, {n(sd)}{bounds})"
        case Lognormal(median=med, p95=p95, mu=mu, sigma=sigma):
            if med is not None:
                return f"lognormal(median {n(med)}, p95 {n(p95)})"
            return f"lognormal(mu {n(mu)}, sigma {n(sigma)})"
        case Beta(a=a, b=b, low=lo, high=hi):
            return f"beta({n(a)}, {n(b)}) on [{n(lo)}, {n(hi)}]"
        case Choice(values=values, weights=weights):
            if weights is None:
                return "choice(" + ", ".join(n(v) for v in values) + ")"
            return (
                "choice("
                + ", ".join(f"{n(v)}:{n(w)}" for v, w in zip(values, weights, strict=True))
                + ")"
            )
    return repr(spec)  # pragma: no cover


def range_of(spec: Distribution) -> tuple[float, float, float]:
    """The 5th, 50th and 95th percentiles of a spec (for tables)."""
    q = ppf(spec, np.array([0.05, 0.5, 0.95]))
    return float(q[0]), float(q[1]), float(q[2])
