"""Random draws for runs: one stream per (purpose, random block, name), from one seed.

Runs are numbered 0..runs-1 and grouped in fixed *random blocks* of `RANDOM_BLOCK` runs. The
draws of random block `b` for a parameter named `p` come from
``SeedSequence(seed, spawn_key=(PARAMETER, b, key(p)))``; a flow's per-tick noise likewise.
So draws depend on the seed, the sampler, the run count and the name, and on nothing else:
not on which other parameters exist (common random numbers across scenarios), and not on how
the runner cuts runs into work blocks (any block size gives the same bits).

Samplers: plain Monte Carlo, Latin hypercube and Sobol from `scipy.stats.qmc`, mapped through
each distribution's inverse CDF. Latin hypercube stratifies each parameter within each random
block. Sobol is joint over the sampled parameters in name order, so adding a parameter changes
the others' Sobol draws (the price of low discrepancy); MC and LHS keep them.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping
from functools import lru_cache

import numpy as np
from scipy.stats import qmc

from sim.distributions import ppf
from sim.schema import Distribution, Fixed

RANDOM_BLOCK = 4096
SAMPLERS = ("mc", "lhs", "sobol")

_PARAMETER, _NOISE, _SOBOL = 0, 1, 2


def name_key(name: str) -> int:
    """A stable 64-bit integer for a name (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def generator(seed: int, purpose: int, rblock: int, name: str) -> np.random.Generator:
    sequence = np.random.SeedSequence(seed, spawn_key=(purpose, rblock, name_key(name)))
    return np.random.Generator(np.random.PCG64(sequence))


def _block_sizes(runs: int, start: int, stop: int) -> list[tuple[int, int, int, int]]:
    """(random block, its size, slice start, slice stop) covering runs [start, stop)."""
    out = []
    for b in range(start // RANDOM_BLOCK, (stop - 1) // RANDOM_BLOCK + 1):
        first = b * RANDOM_BLOCK
        size = min(RANDOM_BLOCK, runs - first)
        out.append((b, size, max(start, first) - first, min(stop, first + size) - first))
    return out


@lru_cache(maxsize=64)
def _uniforms(seed: int, sampler: str, rblock: int, size: int, name: str) -> np.ndarray:
    rng = generator(seed, _PARAMETER, rblock, name)
    if sampler == "lhs":
        u = qmc.LatinHypercube(d=1, rng=rng).random(size)[:, 0]
    else:
        u = rng.random(size)
    u.setflags(write=False)
    return u


@lru_cache(maxsize=16)
def _sobol(seed: int, rblock: int, size: int, names: tuple[str, ...]) -> np.ndarray:
    engine = qmc.Sobol(d=len(names), scramble=True, rng=generator(seed, _SOBOL, rblock, ""))
    with warnings.catch_warnings():  # a partial last block is not a power of two; fine
        warnings.simplefilter("ignore", UserWarning)
        u = engine.random(size)
    u.setflags(write=False)
    return u


def parameter_draws(
    parameters: Mapping[str, Distribution],
    sampler: str,
    seed: int,
    runs: int,
    start: int,
    stop: int,
) -> dict[str, np.ndarray]:
    """Each parameter's values for runs [start, stop) of a `runs`-run study."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}")
    if not 0 <= start < stop <= runs:
        raise ValueError(f"runs [{start}, {stop}) outside 0..{runs}")
    sampled = sorted(n for n, spec in parameters.items() if not isinstance(spec, Fixed))
    out: dict[str, np.ndarray] = {}
    for name, spec in parameters.items():
        if isinstance(spec, Fixed):
            out[name] = np.full(stop - start, float(spec.value))
            continue
        parts = []
        for b, size, lo, hi in _block_sizes(runs, start, stop):
            if sampler == "sobol":
                u = _sobol(seed, b, size, tuple(sampled))[lo:hi, sampled.index(name)]
            else:
                u = _uniforms(seed, sampler, b, size, name)[lo:hi]
            parts.append(u)
        out[name] = ppf(spec, np.concatenate(parts))
    return out


@lru_cache(maxsize=16)
def _noise_uniforms(seed: int, rblock: int, size: int, ticks: int, name: str) -> np.ndarray:
    # Row per run, so a run's noise path is the same whatever the run count.
    u = generator(seed, _NOISE, rblock, name).random((size, ticks))
    u.setflags(write=False)
    return u


def noise_draws(
    noises: Mapping[str, Distribution],
    seed: int,
    runs: int,
    ticks: int,
    start: int,
    stop: int,
) -> dict[str, np.ndarray]:
    """Each noisy flow's multipliers for runs [start, stop), shaped (ticks, runs): plain MC."""
    out: dict[str, np.ndarray] = {}
    for name, spec in noises.items():
        parts = [
            _noise_uniforms(seed, b, size, ticks, name)[lo:hi]
            for b, size, lo, hi in _block_sizes(runs, start, stop)
        ]
        out[name] = np.ascontiguousarray(ppf(spec, np.concatenate(parts)).T)
    return out
