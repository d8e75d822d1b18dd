"""Which uncertain parameters drive an outcome: variance-based (Sobol') sensitivity indices.

The first-order index S1 of a parameter is the share of an outcome's variance that the
parameter explains on its own; the total index ST adds every interaction it takes part in.
A parameter with ST near 0 could be fixed at any value in its range without changing the
outcome's distribution.

The design is Saltelli's (2010): two matrices A and B of N draws of every sampled parameter
from a scrambled Sobol' sequence, mapped through each parameter's own inverse CDF, and for
each parameter i the matrix AB_i (A with column i taken from B). That is N·(d+2) runs, run
as one study by the study runner (`sim.study.design.Saltelli`): on any engine and executor,
with the same bits for any number of workers. `scipy.stats.sobol_indices` turns the outcomes
into indices; a percentile bootstrap over the N samples, with a fixed seed, gives their
intervals.

Noise: a flow's per-tick noise path is drawn once per sample j and shared by A_j, B_j and
every AB_j, so noise acts as one more input that is never swapped. Indices are shares of the
outcome's whole variance, noise included; what no parameter explains is noise (and
interactions). A parameter's indices include its interactions with the noise.

>>> import sim
>>> res = sensitivity(sim.load("examples/bakery.yaml"), "bread_eaten", runs=64, resamples=200)
>>> res.ranked("bread_eaten")[0].parameter
'strike_month'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from scipy import stats

from sim.analysis.compare import CONFIDENCE
from sim.engine.semantics import STATUS_OK
from sim.errors import ScenarioError
from sim.model import Model, check_outcomes, compile_scenario
from sim.scenario.schema import SEED_LIMIT
from sim.study.design import SOBOL_KEY, saltelli
from sim.study.results import Results
from sim.study.runner import Execution, run

DEFAULT_RUNS = 1024
DEFAULT_RESAMPLES = 1000
TOP = 15  # parameters listed and drawn per outcome by the CLI, figure and report

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Index:
    """One parameter's first-order and total index for one outcome, with their intervals."""

    outcome: str
    parameter: str
    rank: int  # 1 = largest total index
    first: float
    first_low: float
    first_high: float
    total: float
    total_low: float
    total_high: float


@dataclass(frozen=True)
class Sensitivity:
    """Sobol' indices of some outcomes of one scenario, per sampled parameter.

    Arrays are (outcomes, parameters), in the order of `outcomes` and `parameters`.
    """

    scenario: str
    outcomes: tuple[str, ...]
    parameters: tuple[str, ...]
    runs: int  # N, the base sample
    seed: int
    confidence: float
    resamples: int
    first: np.ndarray
    first_low: np.ndarray
    first_high: np.ndarray
    total: np.ndarray
    total_low: np.ndarray
    total_high: np.ndarray
    mean: np.ndarray  # (outcomes,): over A and B
    sd: np.ndarray
    units: dict[str, str] = field(default_factory=dict)  # outcome -> unit
    distributions: dict[str, str] = field(default_factory=dict)  # parameter -> 'pert(..)'
    noisy_flows: tuple[str, ...] = ()

    kind = "sensitivity"

    @property
    def evaluations(self) -> int:
        """Runs made: N·(d+2)."""
        return self.runs * (len(self.parameters) + 2)

    def ranked(self, outcome: str) -> list[Index]:
        """The parameters for `outcome`, largest total index first."""
        k = self._row(outcome)
        order = np.argsort(-self.total[k], kind="stable")
        return [
            Index(
                outcome,
                self.parameters[i],
                rank + 1,
                float(self.first[k, i]),
                float(self.first_low[k, i]),
                float(self.first_high[k, i]),
                float(self.total[k, i]),
                float(self.total_low[k, i]),
                float(self.total_high[k, i]),
            )
            for rank, i in enumerate(order)
        ]

    def explained(self, outcome: str) -> float:
        """Sum of first-order indices: the share of variance parameters explain on their own."""
        return float(np.sum(self.first[self._row(outcome)]))

    def table(self) -> pa.Table:
        """A row per outcome and parameter, ranked within each outcome."""
        rows = [ix for name in self.outcomes for ix in self.ranked(name)]
        columns: dict[str, Any] = {
            key: [getattr(ix, key) for ix in rows] for key in Index.__dataclass_fields__
        }
        columns["distribution"] = [self.distributions.get(ix.parameter, "") for ix in rows]
        return pa.table(columns)

    def settings(self) -> dict[str, Any]:
        """What a results manifest records about how the indices were computed."""
        return {
            "outcomes": list(self.outcomes),
            "parameters": list(self.parameters),
            "runs": self.runs,
            "evaluations": self.evaluations,
            "seed": self.seed,
            "design": "Saltelli 2010 (A, B, AB_i), scrambled Sobol' sequence",
            "estimator": "scipy.stats.sobol_indices (Saltelli 2010 first order, Jansen total)",
            "confidence": self.confidence,
            "resamples": self.resamples,
            "interval": "percentile bootstrap over the N samples",
            "noise": "common to A_j, B_j and every AB_j of sample j"
            if self.noisy_flows
            else "none",
            "noisy_flows": list(self.noisy_flows),
            "outcome_mean": {n: float(v) for n, v in zip(self.outcomes, self.mean, strict=True)},
            "outcome_sd": {n: float(v) for n, v in zip(self.outcomes, self.sd, strict=True)},
            "units": dict(self.units),
        }

    def _row(self, outcome: str) -> int:
        if outcome not in self.outcomes:
            raise KeyError(f"no outcome '{outcome}' in this analysis")
        return self.outcomes.index(outcome)


def sensitivity(
    model: Model,
    outcomes: str | Sequence[str],
    runs: int = DEFAULT_RUNS,
    seed: int | None = None,
    confidence: float = CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    progress: Progress | None = None,
    *,
    execution: Execution | None = None,
) -> Sensitivity:
    """First-order and total Sobol' indices of `outcomes` for every sampled parameter.

    `runs` is N, the base sample (a power of 2); the model runs N·(d+2) times for d sampled
    parameters. `seed` defaults to the scenario's. The runs are one study of the study
    runner; `execution` says how it runs (engine, workers, executor, its folder and whether
    to resume it; serial and in memory by default).
    """
    names = (outcomes,) if isinstance(outcomes, str) else tuple(dict.fromkeys(outcomes))
    check_outcomes(model, names)
    problems = []
    if runs < 8 or runs & (runs - 1):
        near = sorted({max(8, 2 ** max(0, runs.bit_length() - 1)), max(8, 2 ** runs.bit_length())})
        problems.append(
            f"--runs must be a power of 2, at least 8 (got {runs}); "
            f"try {' or '.join(f'{n:,}'.replace(',', '') for n in near)}"
        )
    if not 0 < confidence < 1:
        problems.append(f"confidence must be between 0 and 1 (got {confidence})")
    if resamples < 100:
        problems.append(f"resamples must be at least 100 (got {resamples})")
    seed = model.scenario.seed if seed is None else seed
    if not 0 <= seed < SEED_LIMIT:
        problems.append(f"--seed must be from 0 to 2**63-1 (got {seed})")
    if problems:
        raise ScenarioError.one("; ".join(problems))
    sampled = tuple(model.sampled)
    if not sampled:
        raise ScenarioError.one(
            f"scenario '{model.name}' has no uncertain parameters; nothing to attribute variance to"
        )
    # Recorded series are not needed here; leaving them out saves memory and time.
    lean = compile_scenario(model.scenario.model_copy(update={"record": []}))
    lean = dataclasses.replace(lean, files=model.files, place=model.place)
    d, n = len(sampled), runs
    res = run(
        lean,
        n,
        seed,
        None,
        progress=progress,
        **(execution or Execution()).options(),
        design=saltelli(lean, n, seed, sampled),
    )
    y = _outcomes(res, names)
    f_a, f_b = y[:, :n], y[:, n : 2 * n]
    f_ab = y[:, 2 * n :].reshape(len(names), d, n).transpose(1, 0, 2)
    first, total = _indices(f_a, f_b, f_ab)
    low, high = _intervals(f_a, f_b, f_ab, confidence, resamples, seed)
    both = np.concatenate([f_a, f_b], axis=1)
    return Sensitivity(
        scenario=model.name,
        outcomes=names,
        parameters=sampled,
        runs=n,
        seed=seed,
        confidence=confidence,
        resamples=resamples,
        first=first,
        first_low=low[0],
        first_high=high[0],
        total=total,
        total_low=low[1],
        total_high=high[1],
        mean=both.mean(axis=1),
        sd=both.std(axis=1, ddof=1),
        units={o.name: o.unit for o in model.outcomes if o.name in names},
        distributions={p: model.parameters[p].describe() for p in sampled},
        noisy_flows=tuple(lean.noises),
    )


def _outcomes(res: Results, outcomes: tuple[str, ...]) -> np.ndarray:
    """Outcomes (outcomes, runs) of a Saltelli study; every run must have finished finite."""
    total = res.n_runs
    status = res.runs.column("status").to_numpy(zero_copy_only=False)
    bad = status != STATUS_OK
    if bad.any():
        culprit = str(res.runs.column("bad_name")[int(np.flatnonzero(bad)[0])].as_py())
        raise ScenarioError.one(
            f"{int(bad.sum())} of the sensitivity runs went non-finite (first culprit: "
            f"{culprit}); Sobol' indices need every run to finish",
            hint="check the model with `sim run`; its status column names the runs",
        )
    y = np.stack([res.outcome(name) for name in outcomes])
    for k, name in enumerate(outcomes):
        missing = int(np.sum(~np.isfinite(y[k])))
        if missing:
            raise ScenarioError.one(
                f"outcome '{name}' has no value in {missing} of {total} runs (a `first` outcome "
                "whose condition never happened); Sobol' indices need a value in every run",
                hint="use a count outcome, or one that is defined in every run",
            )
    return y


def _indices(f_a: np.ndarray, f_b: np.ndarray, f_ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First-order and total indices, each (outcomes, parameters)."""
    s, d = f_a.shape[0], f_ab.shape[0]
    if s == d == 1:
        # scipy squeezes a single index to a scalar and then can't clean it; give it two.
        f_a, f_b, f_ab = np.repeat(f_a, 2, 0), np.repeat(f_b, 2, 0), np.repeat(f_ab, 2, 1)
    res = stats.sobol_indices(func={"f_A": f_a, "f_B": f_b, "f_AB": f_ab}, n=f_a.shape[1])
    return (
        np.asarray(res.first_order, dtype=float).reshape(-1, d)[:s],
        np.asarray(res.total_order, dtype=float).reshape(-1, d)[:s],
    )


def _intervals(
    f_a: np.ndarray,
    f_b: np.ndarray,
    f_ab: np.ndarray,
    confidence: float,
    resamples: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap interval ends, each (2: first/total, outcomes, parameters).

    The same resampling of the N samples as `SobolResult.bootstrap`, but with a seeded
    generator, so the same study always prints the same intervals, and percentile intervals:
    BCa's jackknife leaves one sample out, and scipy computes indices only for a power of 2.
    """
    s, d, n = f_a.shape[0], f_ab.shape[0], f_a.shape[1]

    def statistic(idx: np.ndarray) -> np.ndarray:
        first, total = _indices(f_a[:, idx], f_b[:, idx], f_ab[..., idx])
        return np.concatenate([first.ravel(), total.ravel()])

    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SOBOL_KEY, 1)))
    with np.errstate(all="ignore"):
        res = stats.bootstrap(
            (np.arange(n),),
            statistic,
            vectorized=False,
            n_resamples=resamples,
            confidence_level=confidence,
            method="percentile",
            rng=rng,
        )
    low = np.asarray(res.confidence_interval.low, dtype=float).reshape(2, s, d)
    high = np.asarray(res.confidence_interval.high, dtype=float).reshape(2, s, d)
    return low, high
