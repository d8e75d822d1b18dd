"""Samplers: how a random block's uniforms are laid out before each distribution's `ppf`.

A sampler fills the unit hypercube for `size` runs and `d` parameters; the hard part is
`scipy.stats.qmc`'s. It is either *per parameter* (d = 1, one stream per parameter name, so a
parameter's draws do not depend on which others exist) or *joint* (one stream over all sampled
parameters in name order, the price of low discrepancy). `sim.sampling.draws` seeds the
streams and maps the uniforms through each distribution's inverse CDF.

`REGISTRY` maps each name to its sampler and is filled by the classes as they are defined;
`SAMPLERS` (the CLI's choices, the runner's checks) and the schema's `sampler:` values read it.

>>> import numpy as np
>>> REGISTRY["lhs"].random(np.random.default_rng(1), 4, 1).shape
(4, 1)
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from scipy.stats import qmc

REGISTRY: dict[str, Sampler] = {}


class Sampler:
    """A way of drawing `size` points in [0, 1)^d from a generator."""

    name: ClassVar[str]
    joint: ClassVar[bool] = False  # one stream over all sampled parameters, or one each

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name in REGISTRY:
            raise TypeError(f"two samplers named {cls.name!r}")
        REGISTRY[cls.name] = cls()

    def engine(self, rng: np.random.Generator, d: int) -> qmc.QMCEngine:
        """The scipy engine that lays the points."""
        raise NotImplementedError

    def random(self, rng: np.random.Generator, size: int, d: int) -> np.ndarray:
        """`size` points in [0, 1)^d, shaped (size, d)."""
        return self.engine(rng, d).random(size)


class MonteCarlo(Sampler):
    """Independent uniforms."""

    name = "mc"

    def random(self, rng: np.random.Generator, size: int, d: int) -> np.ndarray:
        return rng.random((size, d))


class LatinHypercube(Sampler):
    """Each dimension stratified: one point in each of `size` equal slices."""

    name = "lhs"

    def engine(self, rng: np.random.Generator, d: int) -> qmc.QMCEngine:
        return qmc.LatinHypercube(d=d, rng=rng)


class Sobol(Sampler):
    """A scrambled Sobol sequence, joint over the sampled parameters."""

    name = "sobol"
    joint = True

    def engine(self, rng: np.random.Generator, d: int) -> qmc.QMCEngine:
        return qmc.Sobol(d=d, scramble=True, rng=rng)

    def random(self, rng: np.random.Generator, size: int, d: int) -> np.ndarray:
        with warnings.catch_warnings():  # a partial last block is not a power of two; fine
            warnings.simplefilter("ignore", UserWarning)
            return super().random(rng, size, d)


SAMPLERS = tuple(REGISTRY)  # the sampler names, in the order the CLI lists them

if TYPE_CHECKING:
    SamplerName = str
else:
    SamplerName = Literal[SAMPLERS]  # what a scenario's `sampler:` may be
