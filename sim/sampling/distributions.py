"""The distributions a parameter or a flow's noise may take, and the one registry of them.

A distribution is one class: its fields and checks (how a scenario file writes it, validated by
pydantic) and its behaviour (inverse CDF, support, a short human form). `REGISTRY` maps each
`dist:` name to its class and is filled by the classes themselves as they are defined, so the
schema's accepted `dist:` values, its error messages, `sim show` and the docs table all read
one list. Adding a distribution is writing one subclass of `Distribution` here: a
`dist: Literal["name"]` field and its own fields and checks, `frozen` (or `ppf` and `support`),
and its line of the docs table (`KEYS`, `RULES`, a valid `EXAMPLE`); `describe` has a plain
default. Then `python docs/make_tables.py` rewrites the table.

>>> spec = REGISTRY["triangular"](dist="triangular", low=80, mode=100, high=130)
>>> spec.describe()
'triangular(80, 100, 130)'
>>> [round(x, 1) for x in spec.range_of()]
[87.1, 102.6, 121.3]
"""

from __future__ import annotations

import math
import sys
import typing
import warnings
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import special, stats
from scipy.stats import sampling

# How every mapping of a scenario file is validated: unknown keys, coercions and non-finite
# numbers are refused. The schema's other sections use it too.
STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

# Standard normal quantiles, computed once. Two different numbers on purpose: a lognormal's p95
# is one-sided (the 95th percentile), a confidence interval's 95% is two-sided.
Z_P95 = float(stats.norm.ppf(0.95))  # 1.645: the 95th percentile of N(0, 1)
Z_CI95 = float(stats.norm.ppf(0.975))  # 1.960: half-width of a two-sided 95% interval, in sds

_MAX_LOG = math.log(sys.float_info.max)  # exp() of anything larger overflows
# Keep u strictly inside (0, 1) so unbounded distributions never map to +-inf.
_EPS = 2.0**-53
# The exact beta inverse CDF (boost's ibeta_inv) costs ~1.3 us a value: for a model with a
# score of PERT parameters it was most of a 100,000-run study. scipy's PINV (Hormann &
# Leydold's polynomial interpolation of the inverse CDF) costs ~20 ns a value after a few
# milliseconds of set-up per (a, b), with |CDF(draw) - u| below this bound (scipy's default).
U_RESOLUTION = 1e-10

REGISTRY: dict[str, type[Distribution]] = {}


def _n(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


class Distribution(BaseModel):
    """A declared distribution: what a scenario file wrote, and how to draw from it.

    Subclasses register themselves under their `dist:` name. Each says how it reads in the
    docs table (`KEYS`, `RULES`) and gives a valid `EXAMPLE` of its keys.
    """

    model_config = STRICT

    # Each subclass adds `dist: Literal["its name"]`, after these (the order a dump writes).
    if TYPE_CHECKING:
        dist: str
    unit: str = "1"
    source: str | None = None
    description: str | None = None

    KEYS: ClassVar[str]  # the keys it takes, as docs/language.md's table shows them
    RULES: ClassVar[str]  # the constraints on them, likewise
    EXAMPLE: ClassVar[dict[str, Any]]  # a valid mapping of its keys, without `dist:`

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        field = cls.model_fields.get("dist")
        tags = typing.get_args(field.annotation) if field else ()
        if len(tags) != 1:
            raise TypeError(f"{cls.__name__} needs a field `dist: Literal['its name']`")
        name = tags[0]
        missing = [k for k in ("KEYS", "RULES", "EXAMPLE") if not hasattr(cls, k)]
        if missing:
            raise TypeError(f"{cls.__name__} needs {', '.join(missing)} (docs/language.md's table)")
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise TypeError(f"two distributions named {name!r}: {REGISTRY[name]} and {cls}")
        REGISTRY[name] = cls

    def frozen(self) -> Any:
        """The scipy frozen distribution this stands for."""
        raise NotImplementedError

    def scipy(self) -> Any:
        """`frozen()`, made once per distinct distribution and kept: scipy's set-up of a
        frozen distribution costs about a millisecond, a study's draws ask for it per block
        and parameter, and an explorer's for every setting. (It holds no state a call
        changes, so sharing it changes no number.)"""
        try:
            return _frozen(self)
        except TypeError:  # a field that does not hash
            return self.frozen()

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Map uniforms `u` in [0, 1) to draws by the inverse CDF."""
        return np.asarray(self.scipy().ppf(_inside(u)), dtype=float)

    def support(self) -> tuple[float, float]:
        """The smallest and largest value this can produce."""
        low, high = self.scipy().support()
        return float(low), float(high)

    def describe(self) -> str:
        """A short human form, as `sim show` prints it: 'triangular(80, 100, 130)'."""
        shared = set(Distribution.model_fields) | {"dist"}
        given = [(k, getattr(self, k)) for k in type(self).model_fields if k not in shared]
        args = [f"{k} {_n(v) if isinstance(v, float) else v}" for k, v in given if v is not None]
        return f"{self.dist}({', '.join(args)})"

    def range_of(self) -> tuple[float, float, float]:
        """The 5th, 50th and 95th percentiles (for tables)."""
        q = self.ppf(np.array([0.05, 0.5, 0.95]))
        return float(q[0]), float(q[1]), float(q[2])


@lru_cache(maxsize=1024)
def _frozen(spec: Distribution) -> Any:
    return spec.frozen()


def _inside(u: np.ndarray) -> np.ndarray:
    return np.clip(u, _EPS, 1.0 - _EPS)


class Fixed(Distribution):
    """A number fixed in the file."""

    dist: Literal["fixed"] = "fixed"
    value: float

    KEYS = "`value`"
    RULES = "a finite number; a bare number, or a mapping with `value:` and no `dist:`, is the same"
    EXAMPLE = {"value": 900}

    def frozen(self) -> Any:
        return stats.randint(0, 1, loc=self.value)  # a point mass; ppf gives value everywhere

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return np.full(u.shape, float(self.value))

    def support(self) -> tuple[float, float]:
        return float(self.value), float(self.value)

    def describe(self) -> str:
        return _n(self.value)


class Uniform(Distribution):
    """Every value between `low` and `high` equally likely."""

    dist: Literal["uniform"]
    low: float
    high: float

    KEYS = "`low`, `high`"
    RULES = "`low < high`"
    EXAMPLE = {"low": 6, "high": 30}

    @model_validator(mode="after")
    def _order(self) -> Uniform:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self

    def frozen(self) -> Any:
        return stats.uniform(loc=self.low, scale=self.high - self.low)

    def describe(self) -> str:
        return f"uniform({_n(self.low)}, {_n(self.high)})"


def _check_three_point(low: float, mode: float, high: float) -> None:
    if not (low <= mode <= high and low < high):
        raise ValueError(f"need low <= mode <= high and low < high (got {low}, {mode}, {high})")


class Triangular(Distribution):
    """A triangle from `low` up to `mode` and down to `high`."""

    dist: Literal["triangular"]
    low: float
    mode: float
    high: float

    KEYS = "`low`, `mode`, `high`"
    RULES = "`low <= mode <= high`, `low < high`"
    EXAMPLE = {"low": 80, "mode": 100, "high": 130}

    @model_validator(mode="after")
    def _order(self) -> Triangular:
        _check_three_point(self.low, self.mode, self.high)
        return self

    def frozen(self) -> Any:
        lo, hi = self.low, self.high
        return stats.triang(c=(self.mode - lo) / (hi - lo), loc=lo, scale=hi - lo)

    def describe(self) -> str:
        return f"triangular({_n(self.low)}, {_n(self.mode)}, {_n(self.high)})"


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
    if a < 1 or b < 1 or 1 < b < 2:
        # 1 < b < 2: a density with an infinite slope at 1 makes PINV's set-up stall for
        # minutes (at 0 it doesn't); _beta_ppf mirrors those.
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


def _beta_ppf(
    spec: Distribution, a: float, b: float, low: float, high: float, u: np.ndarray
) -> np.ndarray:
    """beta(a, b) on [low, high] at `u`: by PINV where it meets its resolution, else exactly.
    The same map whatever the number of values asked for, so a run's draw never depends on
    the block it was drawn in."""
    u = _inside(u)
    fast = _standard_beta_pinv(float(a), float(b))
    if fast is not None:
        return np.asarray(low + (high - low) * fast.ppf(u), dtype=float)
    if 1 < b < 2 and (mirror := _standard_beta_pinv(float(b), float(a))) is not None:
        # beta(a, b) is 1 - beta(b, a): the steep end at 0, where PINV copes.
        return np.asarray(low + (high - low) * (1.0 - mirror.ppf(1.0 - u)), dtype=float)
    return np.asarray(spec.scipy().ppf(u), dtype=float)


class Pert(Distribution):
    """A beta on [low, high] peaked at `mode` (Vose, Risk Analysis); `lamb` sets how sharply."""

    dist: Literal["pert"]
    low: float
    mode: float
    high: float
    lamb: float = Field(4.0, gt=0)

    KEYS = "`low`, `mode`, `high`, `lamb` (default 4)"
    RULES = (
        "as triangular; `lamb > 0`. A beta on [low, high] with shapes "
        "`1 + lamb·(mode−low)/(high−low)` and `1 + lamb·(high−mode)/(high−low)`; a larger "
        "`lamb` packs draws closer to the mode."
    )
    EXAMPLE = {"low": 3, "mode": 5, "high": 12, "lamb": 6}

    @model_validator(mode="after")
    def _order(self) -> Pert:
        _check_three_point(self.low, self.mode, self.high)
        return self

    def shape(self) -> tuple[float, float]:
        """The beta's shape parameters a and b."""
        lo, mode, hi, lamb = self.low, self.mode, self.high, self.lamb
        return 1 + lamb * (mode - lo) / (hi - lo), 1 + lamb * (hi - mode) / (hi - lo)

    def frozen(self) -> Any:
        a, b = self.shape()
        return stats.beta(a, b, loc=self.low, scale=self.high - self.low)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return _beta_ppf(self, *self.shape(), self.low, self.high, u)

    def describe(self) -> str:
        return f"pert({_n(self.low)}, {_n(self.mode)}, {_n(self.high)})"


class Normal(Distribution):
    """A normal, truncated at `low` and/or `high` if given."""

    dist: Literal["normal"]
    mean: float
    sd: float = Field(gt=0)
    low: float | None = None
    high: float | None = None

    KEYS = "`mean`, `sd`, optional `low`, `high`"
    RULES = "`sd > 0`; with `low` and/or `high` it is truncated there (`low < high` if both)"
    EXAMPLE = {"mean": 0.9, "sd": 0.05, "high": 1}

    @model_validator(mode="after")
    def _order(self) -> Normal:
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self

    def frozen(self) -> Any:
        m, sd, lo, hi = self.mean, self.sd, self.low, self.high
        if lo is None and hi is None:
            return stats.norm(loc=m, scale=sd)
        a = -math.inf if lo is None else (lo - m) / sd
        b = math.inf if hi is None else (hi - m) / sd
        return stats.truncnorm(a, b, loc=m, scale=sd)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        if self.low is None and self.high is None:
            return self.mean + self.sd * special.ndtri(_inside(u))
        # loc + scale * x can round a hair past a bound (-1e-16 for low 0): keep inside.
        lo = -math.inf if self.low is None else self.low
        hi = math.inf if self.high is None else self.high
        return np.clip(super().ppf(u), lo, hi)

    def support(self) -> tuple[float, float]:
        # The bounds themselves: scipy's support goes through loc + scale * a, which rounds.
        low, high = super().support()
        return (low if self.low is None else float(self.low)), (
            high if self.high is None else float(self.high)
        )

    def describe(self) -> str:
        lo, hi = self.low, self.high
        bounds = f", [{_n(lo)}, {_n(hi)}]" if lo is not None or hi is not None else ""
        return f"normal({_n(self.mean)}, {_n(self.sd)}{bounds})"


class Lognormal(Distribution):
    """A lognormal by its median and 95th percentile, or by mu and sigma of its log."""

    dist: Literal["lognormal"]
    median: float | None = Field(None, gt=0)
    p95: float | None = Field(None, gt=0)
    mu: float | None = None
    sigma: float | None = Field(None, gt=0)

    KEYS = "`median` and `p95`, **or** `mu` and `sigma`"
    RULES = (
        "not a mix of the two. `median > 0`, `p95 > median` (then `mu = ln median`, "
        f"`sigma = ln(p95/median)/{Z_P95:.3f}`); or `sigma > 0` and `mu` at most about "
        f"{int(_MAX_LOG)}"
    )
    EXAMPLE = {"median": 2000, "p95": 6000}

    @model_validator(mode="after")
    def _either(self) -> Lognormal:
        by_quantiles = self.median is not None and self.p95 is not None
        by_moments = self.mu is not None and self.sigma is not None
        mixed = (self.median is not None or self.p95 is not None) and (
            self.mu is not None or self.sigma is not None
        )
        if mixed or by_quantiles == by_moments:
            raise ValueError("give either median and p95, or mu and sigma")
        if by_quantiles and not self.p95 > self.median:  # type: ignore[operator]
            raise ValueError(f"p95 ({self.p95}) must be above median ({self.median})")
        if by_moments and self.mu > _MAX_LOG:  # type: ignore[operator]
            raise ValueError(f"mu ({self.mu}) is too large: exp(mu) is beyond float range")
        return self

    def mu_sigma(self) -> tuple[float, float]:
        """mu and sigma of the underlying normal, from median and p95 or as given."""
        if self.median is not None and self.p95 is not None:
            return math.log(self.median), math.log(self.p95 / self.median) / Z_P95
        assert self.mu is not None and self.sigma is not None
        return self.mu, self.sigma

    def frozen(self) -> Any:
        mu, sigma = self.mu_sigma()
        return stats.lognorm(s=sigma, scale=math.exp(mu))

    def ppf(self, u: np.ndarray) -> np.ndarray:
        # The same inverse CDF as scipy's lognorm.ppf, without its generic argument checks,
        # which dominate the cost of drawing a block's noise paths.
        mu, sigma = self.mu_sigma()
        return np.exp(mu + sigma * special.ndtri(_inside(u)))

    def describe(self) -> str:
        if self.median is not None:
            return f"lognormal(median {_n(self.median)}, p95 {_n(self.p95)})"
        return f"lognormal(mu {_n(self.mu)}, sigma {_n(self.sigma)})"


class Beta(Distribution):
    """A beta(a, b), scaled onto [low, high]."""

    dist: Literal["beta"]
    a: float = Field(gt=0)
    b: float = Field(gt=0)
    low: float = 0.0
    high: float = 1.0

    KEYS = "`a`, `b`, optional `low` (default 0), `high` (default 1)"
    RULES = "`a > 0`, `b > 0`, `low < high`; scaled onto [low, high]"
    EXAMPLE = {"a": 2, "b": 5, "low": 0.1, "high": 0.6}

    @model_validator(mode="after")
    def _order(self) -> Beta:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self

    def frozen(self) -> Any:
        return stats.beta(self.a, self.b, loc=self.low, scale=self.high - self.low)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return _beta_ppf(self, self.a, self.b, self.low, self.high, u)

    def describe(self) -> str:
        return f"beta({_n(self.a)}, {_n(self.b)}) on [{_n(self.low)}, {_n(self.high)}]"


class Choice(Distribution):
    """One of `values`, with chances in proportion to `weights` (equal without)."""

    dist: Literal["choice"]
    values: list[float] = Field(min_length=1)
    weights: list[float] | None = None

    KEYS = "`values`, optional `weights`"
    RULES = (
        "at least one value; one weight per value, none negative, not all zero; no weights "
        "means equal chances"
    )
    EXAMPLE = {"values": [1, 2, 3], "weights": [0.2, 0.5, 0.3]}

    @model_validator(mode="after")
    def _weights(self) -> Choice:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError(
                    f"{len(self.weights)} weights for {len(self.values)} values; give one each"
                )
            if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise ValueError("weights must be non-negative and not all zero")
        return self

    def frozen(self) -> Any:
        """Over the values' indexes."""
        n = len(self.values)
        w = np.ones(n) if self.weights is None else np.asarray(self.weights, float)
        return stats.rv_discrete(values=(np.arange(n), w / w.sum()))

    def ppf(self, u: np.ndarray) -> np.ndarray:
        index = self.scipy().ppf(_inside(u)).astype(np.int64)
        return np.asarray(self.values, dtype=float)[index]

    def support(self) -> tuple[float, float]:
        return float(min(self.values)), float(max(self.values))

    def describe(self) -> str:
        if self.weights is None:
            return "choice(" + ", ".join(_n(v) for v in self.values) + ")"
        pairs = zip(self.values, self.weights, strict=True)
        return "choice(" + ", ".join(f"{_n(v)}:{_n(w)}" for v, w in pairs) + ")"
