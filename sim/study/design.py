"""Designs: which parameter values and noise paths a study's runs get.

A study is runs [0, runs) cut into blocks; a design says what run i is. The runner asks the
design for the draws of runs [start, stop) and nothing else, so every analysis that needs
runs — a plain study, a sweep, a sensitivity design — runs them the same way: in blocks, on
any executor, with the memory guards, progress and `--resume`, and the same bits for any
number of workers.

- `Sampled` (the default): every parameter from its distribution with the study's sampler;
  run i's draws depend on the seed, sampler, run count and names only (`sim.sampling.draws`).
- `Grid`: a sweep. The study is `runs` runs at each point of a grid, point-major: run
  ``j * runs + i`` is run i of a `runs`-run sampled study with the point's parameters fixed.
  Every point shares its other draws and noise (common random numbers).
- `Saltelli`: Sobol' sensitivity. Matrices A, B and each AB_k (A with column k from B), N rows
  each, through each parameter's inverse CDF; run ``m * N + j`` is row j of matrix m (A, B,
  AB_0, ...), and every row j shares noise path j. The N rows are R replicates of N/R rows,
  each from its own independent scramble of the Sobol' sequence (replicated randomised QMC).

A design is small and picklable: workers rebuild their draws from it, never receive them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.model import Model
from sim.sampling import samplers
from sim.sampling.draws import noise_draws, parameter_draws
from sim.scenario.schema import Distribution, Fixed

Draws = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]  # parameters, noise (ticks, runs)


def _concat(parts: list[Draws]) -> Draws:
    if len(parts) == 1:
        return parts[0]
    params = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    noise = {k: np.concatenate([p[1][k] for p in parts], axis=1) for k in parts[0][1]}
    return params, noise


def _segments(start: int, stop: int, size: int) -> Iterator[tuple[int, int, int]]:
    """(row, first, stop) pieces of runs [start, stop) of a study of rows of `size` runs."""
    run = start
    while run < stop:
        row, first = divmod(run, size)
        end = min(stop - row * size, size)
        yield row, first, end
        run = row * size + end


@dataclass(frozen=True)
class Sampled:
    """Every parameter drawn from its distribution by the study's sampler."""

    kind = "sampled"

    def size(self, runs: int) -> int:
        return runs

    def identity(self) -> dict[str, Any] | None:
        return None  # the plain study: nothing beyond seed, sampler and runs

    def draw(self, m: Model, seed: int, sampler: str, runs: int, start: int, stop: int) -> Draws:
        params = parameter_draws(m.parameters, sampler, seed, runs, start, stop)
        noise = noise_draws(m.noises, seed, runs, m.ticks, start, stop)
        return params, noise

    def columns(self, runs: int, start: int, stop: int) -> dict[str, np.ndarray]:
        return {}


@dataclass(frozen=True)
class Grid:
    """A sweep: `runs` sampled runs at each point, each point fixing some parameters."""

    points: tuple[Mapping[str, Fixed], ...]
    kind = "grid"

    def size(self, runs: int) -> int:
        return runs * len(self.points)

    def identity(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "points": [{k: float(v.value) for k, v in p.items()} for p in self.points],
        }

    def draw(self, m: Model, seed: int, sampler: str, runs: int, start: int, stop: int) -> Draws:
        parts = []
        for j, first, end in _segments(start, stop, runs):
            specs: dict[str, Distribution] = {**m.parameters, **self.points[j]}
            parts.append(
                (
                    parameter_draws(specs, sampler, seed, runs, first, end),
                    noise_draws(m.noises, seed, runs, m.ticks, first, end),
                )
            )
        return _concat(parts)

    def columns(self, runs: int, start: int, stop: int) -> dict[str, np.ndarray]:
        index = np.arange(start, stop, dtype=np.int64)
        return {"point": index // runs, "sample": index % runs}


SOBOL_KEY = 0x5E45  # keeps the design's stream apart from the runner's parameter streams
# Independent scrambles of a Saltelli design. Eight gives a Student-t interval with 7 degrees
# of freedom (t = 2.36, 20% wider than the normal's 1.96) while each replicate keeps N/8 rows
# of low-discrepancy points; more replicates would thin each one's Sobol' structure.
REPLICATES = 8


@dataclass(frozen=True)
class Saltelli:
    """Saltelli's (2010) design over the sampled parameters `names`, N = `n` rows a matrix.

    Rows ``[r * n / replicates, (r + 1) * n / replicates)`` of every matrix are replicate r:
    a Saltelli design of its own, from scramble r of the Sobol' sequence.

    `groups` (indices into `names`) makes each group one input, as SALib's groups do: AB_g
    is A with every column of group g taken from B, so the indices are the group's. Empty,
    every parameter is its own group.
    """

    n: int
    names: tuple[str, ...]
    specs: tuple[Distribution, ...]
    seed: int
    replicates: int = REPLICATES
    groups: tuple[tuple[int, ...], ...] = ()
    kind = "saltelli"
    _x: dict[int, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "names": self.names,
            "specs": self.specs,
            "seed": self.seed,
            "replicates": self.replicates,
            "groups": self.groups,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)
        object.__setattr__(self, "_x", {})

    @property
    def inputs(self) -> tuple[tuple[int, ...], ...]:
        """The columns each AB matrix takes from B: one group each."""
        return self.groups or tuple((i,) for i in range(len(self.names)))

    def size(self, runs: int) -> int:
        return self.n * (len(self.inputs) + 2)

    def identity(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "n": self.n,
            "parameters": list(self.names),
            "seed": self.seed,
            "replicates": self.replicates,
            **({"groups": [list(g) for g in self.groups]} if self.groups else {}),
        }

    @property
    def matrix(self) -> np.ndarray:
        """(parameters, runs): A, B, then AB_0 .. AB_{g-1} (one per group), side by side."""
        if 0 not in self._x:
            d, n, r = len(self.names), self.n, self.replicates
            sobol = samplers.REGISTRY["sobol"]
            u = np.concatenate(
                [
                    sobol.random(
                        np.random.default_rng(
                            np.random.SeedSequence(self.seed, spawn_key=(SOBOL_KEY, 2, k))
                        ),
                        n // r,
                        2 * d,
                    )
                    for k in range(r)
                ]
            )
            a = np.stack([s.ppf(u[:, i]) for i, s in enumerate(self.specs)])
            b = np.stack([s.ppf(u[:, d + i]) for i, s in enumerate(self.specs)])
            ab = np.repeat(a[np.newaxis], len(self.inputs), axis=0)
            for g, columns in enumerate(self.inputs):
                ab[g, list(columns)] = b[list(columns)]
            self._x[0] = np.concatenate([a, b, *ab], axis=1)
        return self._x[0]

    def draw(self, m: Model, seed: int, sampler: str, runs: int, start: int, stop: int) -> Draws:
        x = self.matrix
        params = {name: x[i, start:stop] for i, name in enumerate(self.names)}
        for name, spec in m.parameters.items():
            if isinstance(spec, Fixed):
                params[name] = np.full(stop - start, float(spec.value))
        # Row j of every matrix uses noise path j: pieces of the N paths, in run order.
        pieces = [
            noise_draws(m.noises, self.seed, self.n, m.ticks, first, end)
            for _, first, end in _segments(start, stop, self.n)
        ]
        noise = {k: np.concatenate([p[k] for p in pieces], axis=1) for k in m.noises}
        return params, noise

    def columns(self, runs: int, start: int, stop: int) -> dict[str, np.ndarray]:
        index = np.arange(start, stop, dtype=np.int64)
        return {"matrix": index // self.n, "sample": index % self.n}


Design = Sampled | Grid | Saltelli


def saltelli(
    model: Model,
    n: int,
    seed: int,
    names: Sequence[str],
    replicates: int = REPLICATES,
    groups: Sequence[Sequence[str]] = (),
) -> Saltelli:
    """The Saltelli design of `model`'s parameters `names` with N = n, in `replicates`;
    `groups` (lists of `names`, covering each once) makes each group one input."""
    index = {k: i for i, k in enumerate(names)}
    return Saltelli(
        n,
        tuple(names),
        tuple(model.parameters[k] for k in names),
        seed,
        replicates,
        tuple(tuple(index[k] for k in g) for g in groups),
    )
