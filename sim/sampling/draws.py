"""Random draws for runs: one stream per (purpose, random block, name), from one seed.

Runs are numbered 0..runs-1 and grouped in fixed *random blocks* of `RANDOM_BLOCK` runs. The
draws of random block `b` for a parameter named `p` come from
``SeedSequence(seed, spawn_key=(PARAMETER, b, key(p)))``; a flow's per-tick noise likewise.
So draws depend on the seed, the sampler, the run count and the name, and on nothing else:
not on which other parameters exist (common random numbers across scenarios), and not on how
the runner cuts runs into work blocks (any block size gives the same bits).

A flow's noise for random block `b` is a (ticks, RANDOM_BLOCK) matrix from
``SeedSequence(seed, spawn_key=(NOISE, b, key(flow)))``, drawn whole, so a run's noise path
is its column whatever the run count.

Samplers (`sim.sampling.samplers`: plain Monte Carlo, Latin hypercube, Sobol) lay out a random
block's uniforms, mapped through each distribution's inverse CDF. A per-parameter sampler (MC,
LHS) draws each parameter from its own stream, so LHS stratifies each parameter within each
random block. A joint one (Sobol) is one stream over the sampled parameters in name order, so
adding a parameter changes the others' Sobol draws (the price of low discrepancy); MC and LHS
keep them.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

import numpy as np

from sim.sampling.distributions import Distribution, Fixed, Lognormal
from sim.sampling.samplers import REGISTRY, SAMPLERS

RANDOM_BLOCK = 4096

# Stream purposes: a parameter's own stream, a flow's noise, a joint sampler's one stream.
_PARAMETER, _NOISE, _JOINT = 0, 1, 2


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
    """A per-parameter sampler's uniforms for one parameter and random block."""
    u = REGISTRY[sampler].random(generator(seed, _PARAMETER, rblock, name), size, 1)[:, 0]
    u.setflags(write=False)
    return u


@lru_cache(maxsize=16)
def _joint(seed: int, sampler: str, rblock: int, size: int, names: tuple[str, ...]) -> np.ndarray:
    """A joint sampler's uniforms for one random block: a column per name."""
    u = REGISTRY[sampler].random(generator(seed, _JOINT, rblock, ""), size, len(names))
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
            if REGISTRY[sampler].joint:
                u = _joint(seed, sampler, b, size, tuple(sampled))[lo:hi, sampled.index(name)]
            else:
                u = _uniforms(seed, sampler, b, size, name)[lo:hi]
            parts.append(u)
        out[name] = spec.ppf(np.concatenate(parts))
    return out


def _noise_block(seed: int, rblock: int, ticks: int, name: str, normal: bool) -> np.ndarray:
    """A random block's raw noise for one flow: (ticks, RANDOM_BLOCK) standard normals or
    uniforms, tick-major. Always the whole random block, so a run's path (its column) is the
    same whatever the run count."""
    rng = generator(seed, _NOISE, rblock, name)
    shape = (ticks, RANDOM_BLOCK)
    return rng.standard_normal(shape) if normal else rng.random(shape)


NOISE_CACHE = 16  # raw noise blocks kept for work blocks that come back for the rest
NOISE_CACHE_ITEM_BYTES = 16 * 2**20  # ... each at most this big (ticks <= 512)


@lru_cache(maxsize=NOISE_CACHE)
def _noise_block_cached(seed: int, rblock: int, ticks: int, name: str, normal: bool) -> np.ndarray:
    raw = _noise_block(seed, rblock, ticks, name, normal)
    raw.setflags(write=False)
    return raw


def _raw_noise(
    seed: int, rblock: int, ticks: int, name: str, normal: bool, whole: bool
) -> np.ndarray:
    # A work block that takes part of a random block (small blocks, single runs) comes back
    # for the rest: keep it, if it is small. A whole random block is used once.
    if whole or 8 * ticks * RANDOM_BLOCK > NOISE_CACHE_ITEM_BYTES:
        return _noise_block(seed, rblock, ticks, name, normal)
    return _noise_block_cached(seed, rblock, ticks, name, normal)


class _KeptNoise:
    """`noise_draws`' results kept in this process, newest last, within a byte budget: off
    (budget 0) unless `keep_noise` turns it on."""

    def __init__(self) -> None:
        self.budget = 0
        self.held: OrderedDict[tuple[Any, ...], dict[str, np.ndarray]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> dict[str, np.ndarray] | None:
        with self.lock:
            found = self.held.get(key)
            if found is not None:
                self.held.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], draws: dict[str, np.ndarray]) -> None:
        size = sum(v.nbytes for v in draws.values())
        with self.lock:
            if size > self.budget:
                return
            for v in draws.values():
                v.setflags(write=False)  # shared by every study that asks again
            self.held[key] = draws
            while sum(v.nbytes for d in self.held.values() for v in d.values()) > self.budget:
                self.held.popitem(last=False)


_KEPT = _KeptNoise()


def keep_noise(budget_bytes: int) -> None:
    """Keep noise draws in this process, up to `budget_bytes`, for a process that runs the
    same runs of a model again and again with other parameters — the explorer's workers: a
    run's noise depends on the seed, the run count and the flow's name and distribution,
    never on the parameters, so it is drawn once. 0 turns keeping off (the default: a study
    draws each block's noise once)."""
    with _KEPT.lock:
        _KEPT.budget = max(0, budget_bytes)
        _KEPT.held.clear()


def noise_draws(
    noises: Mapping[str, Distribution],
    seed: int,
    runs: int,
    ticks: int,
    start: int,
    stop: int,
) -> dict[str, np.ndarray]:
    """Each noisy flow's multipliers for runs [start, stop), shaped (ticks, runs): plain MC.

    Lognormal noise is drawn as standard normals, scaled and exponentiated: the same
    distribution as its inverse CDF of uniforms at a fraction of the cost (a model's noise is
    ticks x runs values per flow). Other noise (never below zero: the schema sees to that)
    maps uniforms through the inverse CDF, as parameters do. With `keep_noise` on, the
    arrays come back read-only, shared with the next study that asks for the same.
    """
    if _KEPT.budget:
        key = (tuple(noises.items()), seed, runs, ticks, start, stop)
        found = _KEPT.get(key)
        if found is None:
            found = _noise_draws(noises, seed, runs, ticks, start, stop)
            _KEPT.put(key, found)
        return dict(found)
    return _noise_draws(noises, seed, runs, ticks, start, stop)


def _noise_draws(
    noises: Mapping[str, Distribution],
    seed: int,
    runs: int,
    ticks: int,
    start: int,
    stop: int,
) -> dict[str, np.ndarray]:
    def one(name: str, spec: Distribution) -> np.ndarray:
        normal = isinstance(spec, Lognormal)
        values = np.empty((ticks, stop - start))
        at = 0
        for b, _, lo, hi in _block_sizes(runs, start, stop):
            raw = _raw_noise(seed, b, ticks, name, normal, lo == 0 and hi == RANDOM_BLOCK)
            values[:, at : at + hi - lo] = raw[:, lo:hi]
            at += hi - lo
        if isinstance(spec, Lognormal):
            mu, sigma = spec.mu_sigma()
            values *= sigma
            values += mu
            with np.errstate(over="ignore"):  # inf noise: the run goes non-finite, and says so
                np.exp(values, out=values)
        else:
            values = spec.ppf(values)
        return values

    # Each flow's stream is its own, so flows draw side by side on the threads allowed
    # (numpy's generators fill arrays without the GIL): the same numbers in any order. The
    # war model's 22 noisy flows, 20,000 runs: 0.72 s on one thread, 0.39 s on two.
    names, specs = list(noises), list(noises.values())
    threads = threads_for(ticks * (stop - start) * len(names), len(names))
    if threads <= 1:
        return {name: one(name, spec) for name, spec in zip(names, specs, strict=True)}
    with ThreadPoolExecutor(threads) as pool:
        return dict(zip(names, pool.map(one, names, specs), strict=True))


THREADED_FROM = 200_000  # values drawn, below which threads cost more than they save


class _Threads:
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_THREADS = _Threads()


def threads_for(values: int, tasks: int) -> int:
    """Threads for `tasks` independent pieces of numpy work over `values` values in all: the
    threads allowed (`draw_threads`), but one where the work is too small to repay them."""
    return 1 if values < THREADED_FROM else max(1, min(_THREADS.n, tasks))


def draw_threads(n: int) -> None:
    """Threads that draw noise side by side in this process: every core (the default) for
    a study run here; 1 in a pool's worker processes, which already fill the cores."""
    _THREADS.n = max(1, n)


# A posterior's row for each run: its own purpose, so no parameter or noise stream moves.
_POSTERIOR = 3
POSTERIOR_STREAM = "posterior"


@lru_cache(maxsize=16)
def _posterior_uniforms(seed: int, rblock: int) -> np.ndarray:
    """A random block's uniforms for choosing posterior rows: always the whole block, so run
    i's uniform depends on the seed and i only (not the run count, sampler or block cut)."""
    u = generator(seed, _POSTERIOR, rblock, POSTERIOR_STREAM).random(RANDOM_BLOCK)
    u.setflags(write=False)
    return u


def posterior_rows(weight: np.ndarray, seed: int, runs: int, start: int, stop: int) -> np.ndarray:
    """The posterior sample J(i) each of runs [start, stop) takes: weighted resampling by the
    inverse CDF of the cumulative weights at run i's uniform.

    J(i) depends on the seed, the run index and the weights only, so two scenarios run on
    the same posterior with the same seed take the same sample in run i (paired), whatever
    the run count, sampler, block size or worker count.
    """
    if not 0 <= start < stop <= runs:
        raise ValueError(f"runs [{start}, {stop}) outside 0..{runs}")
    cdf = np.cumsum(np.asarray(weight, dtype=np.float64))
    cdf /= cdf[-1]
    cdf[-1] = 1.0  # u < 1 always finds a row, whatever the rounding of the sum
    u = np.concatenate(
        [_posterior_uniforms(seed, b)[lo:hi] for b, _, lo, hi in _block_sizes(runs, start, stop)]
    )
    # side="right": the first row whose cumulative weight exceeds u, so a zero-weight row
    # (equal to the row before it) is never taken.
    return np.searchsorted(cdf, u, side="right").astype(np.int64)
