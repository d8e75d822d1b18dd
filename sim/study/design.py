"""Designs: which parameter values and noise paths a study's runs get.

A study is runs [0, runs) cut into blocks; a design says what run i is. The runner asks the
design for the draws of runs [start, stop) and nothing else, so every analysis that needs
runs — a plain study, a sweep, a sensitivity design — runs them the same way: in blocks, on
any executor, with the memory guards, progress and `--resume`, and the same bits for any
number of workers.

- `Sampled` (the default): every parameter from its distribution with the study's sampler;
  run i's draws depend on the seed, sampler, run count and names only (`sim.sampling.draws`).
  With a posterior (`sim run --posterior`), run i takes the parameters the posterior holds
  from its sample J(i), chosen by the seed and i alone, so studies on one posterior pair up.
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

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.model import Model
from sim.sampling import samplers
from sim.sampling.draws import noise_draws, parameter_draws, posterior_rows
from sim.scenario.schema import Distribution, Fixed
from sim.study.posterior import Posterior

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
    """Every parameter drawn from its distribution by the study's sampler; with a
    `posterior`, the parameters it holds are taken jointly from its row J(i) instead
    (`posterior_rows`), and everything else is drawn exactly as without it."""

    posterior: Posterior | None = None
    kind = "sampled"

    def size(self, runs: int) -> int:
        return runs

    def identity(self) -> dict[str, Any] | None:
        if self.posterior is None:
            return None  # the plain study: nothing beyond seed, sampler and runs
        return {
            "kind": self.kind,
            "posterior": {
                "sha256": self.posterior.sha256,
                "parameters": list(self.posterior.names),
            },
        }

    def draw(self, m: Model, seed: int, sampler: str, runs: int, start: int, stop: int) -> Draws:
        params = parameter_draws(m.parameters, sampler, seed, runs, start, stop)
        noise = noise_draws(m.noises, seed, runs, m.ticks, start, stop)
        if self.posterior is not None:
            _from_posterior(params, self.posterior, self.rows(seed, runs, start, stop))
        return params, noise

    def rows(self, seed: int, runs: int, start: int, stop: int) -> np.ndarray:
        """The posterior sample each of runs [start, stop) takes."""
        assert self.posterior is not None
        return posterior_rows(self.posterior.weight, seed, runs, start, stop)

    def columns(self, runs: int, start: int, stop: int) -> dict[str, np.ndarray]:
        return {}


@dataclass(frozen=True)
class Grid:
    """A sweep: `runs` sampled runs at each point, each point fixing some parameters. With a
    `posterior`, run i of every point takes the posterior parameters from its sample J(i)
    (a swept parameter can't be one of them: `sim.analysis.sweep` refuses it)."""

    points: tuple[Mapping[str, Fixed], ...]
    posterior: Posterior | None = None
    kind = "grid"

    def size(self, runs: int) -> int:
        return runs * len(self.points)

    def identity(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "points": [{k: float(v.value) for k, v in p.items()} for p in self.points],
        } | (
            {
                "posterior": {
                    "sha256": self.posterior.sha256,
                    "parameters": list(self.posterior.names),
                }
            }
            if self.posterior is not None
            else {}
        )

    def draw(self, m: Model, seed: int, sampler: str, runs: int, start: int, stop: int) -> Draws:
        parts = []
        for j, first, end in _segments(start, stop, runs):
            specs: dict[str, Distribution] = {**m.parameters, **self.points[j]}
            params = parameter_draws(specs, sampler, seed, runs, first, end)
            if self.posterior is not None:
                rows = posterior_rows(self.posterior.weight, seed, runs, first, end)
                _from_posterior(params, self.posterior, rows, keep=self.points[j])
            parts.append((params, noise_draws(m.noises, seed, runs, m.ticks, first, end)))
        return _concat(parts)

    def rows(self, seed: int, runs: int, start: int, stop: int) -> np.ndarray:
        """The posterior sample each of runs [start, stop) takes: run i of every point the
        same."""
        assert self.posterior is not None
        weight = self.posterior.weight
        return np.concatenate(
            [posterior_rows(weight, seed, runs, a, b) for _, a, b in _segments(start, stop, runs)]
        )

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


def _from_posterior(
    params: dict[str, np.ndarray],
    posterior: Posterior,
    rows: np.ndarray,
    keep: Mapping[str, Any] | None = None,
) -> None:
    """Replace the prior draws of the posterior's parameters (but those in `keep`) with their
    values in rows `rows`. The prior draws were made first and are dropped, so a joint sampler
    (Sobol) draws the other parameters' values as it would without a posterior."""
    for name in posterior.names:
        if keep is None or name not in keep:
            params[name] = posterior.values[name][rows]


def posterior_of(design: Design) -> Posterior | None:
    """The posterior a design draws parameters from, if any."""
    return design.posterior if isinstance(design, Sampled | Grid) else None


@dataclass(frozen=True)
class Given:
    """Run i takes row i of `values` (one array per sampled parameter) and noise path i of a
    stream keyed by `noise_seed`; fixed parameters take their value. A calibration asks for
    runs at parameter values it chose (`sim.analysis.calibrate`), each with fresh noise."""

    values: Mapping[str, np.ndarray]
    noise_seed: int
    kind = "given"

    def size(self, runs: int) -> int:
        return len(next(iter(self.values.values()))) if self.values else runs

    def identity(self) -> dict[str, Any]:
        digest = hashlib.sha256()
        for name in sorted(self.values):
            digest.update(name.encode() + b"\0")
            digest.update(np.ascontiguousarray(self.values[name], dtype=np.float64).tobytes())
        return {
            "kind": self.kind,
            "values_sha256": digest.hexdigest(),
            "noise_seed": self.noise_seed,
        }

    def draw(self, m: Model, seed: int, sampler: str, runs: int, start: int, stop: int) -> Draws:
        params = {k: np.asarray(v[start:stop], dtype=np.float64) for k, v in self.values.items()}
        for name, spec in m.parameters.items():
            if name not in params:
                if not isinstance(spec, Fixed):
                    raise ValueError(f"a Given design has no values for parameter '{name}'")
                params[name] = np.full(stop - start, float(spec.value))
        noise = noise_draws(m.noises, self.noise_seed, self.size(runs), m.ticks, start, stop)
        return params, noise

    def columns(self, runs: int, start: int, stop: int) -> dict[str, np.ndarray]:
        return {}


Design = Sampled | Grid | Saltelli | Given
