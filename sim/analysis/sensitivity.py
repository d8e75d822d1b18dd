"""Which uncertain parameters drive an outcome: variance-based (Sobol') sensitivity indices.

The first-order index S1 of a parameter is the share of an outcome's variance that the
parameter explains on its own; the total index ST adds every interaction it takes part in.
A parameter with ST near 0 could be fixed at any value in its range without changing the
outcome's distribution.

The design is Saltelli's (2010): two matrices A and B of N draws of every sampled parameter,
mapped through each parameter's own inverse CDF, and for each parameter i the matrix AB_i (A
with column i taken from B). That is N·(d+2) runs, run as one study by the study runner
(`sim.study.design.Saltelli`): on any engine and executor, with the same bits for any number
of workers. The N rows are R = 8 replicates of N/R rows, each from an independent scramble of
the Sobol' sequence (replicated randomised QMC). `scipy.stats.sobol_indices` gives each
replicate's indices; the estimate is their mean and its interval Student's t over the R
replicates, which are independent and identically distributed: an honest interval, unlike a
bootstrap over the N points, which treats the points of one scrambled sequence as independent
and comes out several times too wide. The runs stay N·(d+2).

With a `baseline` scenario A, the indices are those of the paired difference X(B) − X(A) (or
X(B)/X(A) − 1 with `ratio`): both scenarios run the same design, row for row, with the same
noise (common random numbers), so the difference of each pair is exact, and the indices say
which parameters drive the *difference* rather than the level.

Noise: a flow's per-tick noise path is drawn once per sample j and shared by A_j, B_j and
every AB_j, so noise acts as one more input that is never swapped. Indices are shares of the
outcome's whole variance, noise included; what no parameter explains is noise (and
interactions). A parameter's indices include its interactions with the noise.

>>> import sim
>>> res = sensitivity(sim.load("examples/bakery.yaml"), "bread_eaten", runs=64)
>>> res.ranked("bread_eaten")[0].parameter
'strike_month'
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from scipy import stats

from sim.analysis.cells import expand, split
from sim.analysis.cells import grouped as grouped_cells
from sim.analysis.compare import CONFIDENCE
from sim.engine.semantics import STATUS_OK
from sim.errors import Problem, ScenarioError, did_you_mean
from sim.model import Model, check_outcomes, compile_scenario
from sim.scenario.schema import SEED_LIMIT
from sim.study.design import REPLICATES, saltelli
from sim.study.provenance import scenario_sha256
from sim.study.results import Results
from sim.study.runner import Execution, run

DEFAULT_RUNS = 1024
MIN_RUNS = 4 * REPLICATES  # four rows a replicate at the least
BASELINE_STUDY = "baseline_study"  # beside `study`: the baseline scenario's runs
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
    replicates: int  # R independent scrambles, N/R rows each
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
    # With a baseline A, the indices are of X(scenario) − X(baseline), or of the ratio − 1.
    baseline: str = ""
    baseline_sha256: str = ""
    baseline_files: tuple[str, ...] = ()
    ratio: bool = False
    # An input that is a group (an arrayed parameter as one input): its name -> its cells.
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    kind = "sensitivity"

    def label(self, outcome: str) -> str:
        """What the indices explain: `outcome`, or its difference from the baseline."""
        if not self.baseline:
            return outcome
        b, a = f"{outcome}({self.scenario})", f"{outcome}({self.baseline})"
        return f"{b} / {a} − 1" if self.ratio else f"{b} − {a}"

    @property
    def evaluations(self) -> int:
        """Runs made: N·(d+2), for each scenario (twice with a baseline)."""
        return self.runs * (len(self.parameters) + 2) * (2 if self.baseline else 1)

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
            "replicates": self.replicates,
            "interval": "Student's t over R independently scrambled replicates (replicated "
            "randomised QMC); estimate: their mean",
            "noise": "common to A_j, B_j and every AB_j of sample j"
            if self.noisy_flows
            else "none",
            "noisy_flows": list(self.noisy_flows),
            "outcome_mean": {n: float(v) for n, v in zip(self.outcomes, self.mean, strict=True)},
            "outcome_sd": {n: float(v) for n, v in zip(self.outcomes, self.sd, strict=True)},
            "units": dict(self.units),
            **({"groups": {k: list(v) for k, v in self.groups.items()}} if self.groups else {}),
            **(
                {
                    "baseline": {
                        "name": self.baseline,
                        "sha256": self.baseline_sha256,
                        "files": list(self.baseline_files),
                    },
                    "ratio": self.ratio,
                    "explained": {n: self.label(n) for n in self.outcomes},
                    "pairing": "both scenarios on the same design rows and noise paths",
                }
                if self.baseline
                else {}
            ),
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
    resamples: int | None = None,
    progress: Progress | None = None,
    *,
    execution: Execution | None = None,
    baseline: Model | None = None,
    ratio: bool = False,
    groups: Sequence[str] = (),
) -> Sensitivity:
    """First-order and total Sobol' indices of `outcomes` for every sampled parameter.

    `runs` is N, the base sample (a power of 2, at least 32); the model runs N·(d+2) times for
    d sampled parameters. `seed` defaults to the scenario's. The runs are one study of the
    study runner; `execution` says how it runs (engine, workers, executor, its folder and
    whether to resume it; serial and in memory by default). With a `baseline` model A, the
    indices are of X(model) − X(A) (X(model)/X(A) − 1 with `ratio`), both run on the same
    design and noise; A's study goes beside `execution.out`, in `baseline_study`.
    `resamples` is what the bootstrap used to take; it is ignored (with a warning).

    `groups` names arrayed parameters to treat each as one input (as SALib's groups do):
    the design swaps all of its sampled cells together, and its indices are the group's
    (S1: the share of variance the cells explain together, alone; ST: with interactions).
    Every other cell of an arrayed parameter is an input of its own, named `need[food]`.
    """
    if resamples is not None:
        warnings.warn(
            "sensitivity(resamples=...) is ignored: intervals now come from replicated "
            "randomised QMC, not a bootstrap",
            DeprecationWarning,
            stacklevel=2,
        )
    names = tuple(
        expand(
            [outcomes] if isinstance(outcomes, str) else outcomes, [o.name for o in model.outcomes]
        )
    )  # an arrayed outcome's name: every cell of it
    check_outcomes(model, names)
    if baseline is not None:
        check_outcomes(baseline, names)
    elif ratio:
        raise ScenarioError.one("--ratio needs a --baseline scenario to divide by")
    problems = []
    if runs < MIN_RUNS or runs & (runs - 1):
        near = sorted(
            {
                max(MIN_RUNS, 2 ** max(0, runs.bit_length() - 1)),
                max(MIN_RUNS, 2 ** runs.bit_length()),
            }
        )
        problems.append(
            f"--runs must be a power of 2, at least {MIN_RUNS} (got {runs}); "
            f"try {' or '.join(f'{n:,}'.replace(',', '') for n in near)}"
        )
    if not 0 < confidence < 1:
        problems.append(f"confidence must be between 0 and 1 (got {confidence})")
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
    if baseline is not None:
        _check_pairing(model, baseline, sampled)
    inputs = _inputs(model, sampled, groups)
    grouped = set(groups)
    lean = _lean(model)
    d, n = len(inputs), runs
    design = saltelli(lean, n, seed, sampled, groups=list(inputs.values()) if groups else ())
    ex = execution or Execution()
    total = 2 * design.size(n) if baseline is not None else design.size(n)

    def share(offset: int) -> Progress | None:
        if progress is None:
            return None
        report = progress
        return lambda done, _: report(offset + done, total)

    res = run(lean, n, seed, None, progress=share(0), **ex.options(), design=design)
    y = _outcomes(res, names)
    if baseline is not None:
        out = None if ex.out is None else Path(ex.out).with_name(BASELINE_STUDY)
        lean_a = _lean(baseline)
        res_a = run(
            lean_a,
            n,
            seed,
            None,
            progress=share(design.size(n)),
            **dataclasses.replace(ex, out=out).options(),
            design=design,
        )
        y = _difference(y, _outcomes(res_a, names), names, baseline.name, ratio)
    f_a, f_b = y[:, :n], y[:, n : 2 * n]
    f_ab = y[:, 2 * n :].reshape(len(names), d, n).transpose(1, 0, 2)
    est, low, high = _replicated(f_a, f_b, f_ab, design.replicates, confidence)
    both = np.concatenate([f_a, f_b], axis=1)
    units = {o.name: o.unit for o in model.outcomes if o.name in names}
    if ratio:
        units = dict.fromkeys(units, "ratio")
    return Sensitivity(
        scenario=model.name,
        outcomes=names,
        parameters=tuple(inputs),
        runs=n,
        seed=seed,
        confidence=confidence,
        replicates=design.replicates,
        first=est[0],
        first_low=low[0],
        first_high=high[0],
        total=est[1],
        total_low=low[1],
        total_high=high[1],
        mean=both.mean(axis=1),
        sd=both.std(axis=1, ddof=1),
        units=units,
        distributions={
            label: _described(model, cells)
            if label in grouped
            else model.parameters[label].describe()
            for label, cells in inputs.items()
        },
        noisy_flows=tuple(dict.fromkeys([*lean.noises, *(baseline.noises if baseline else ())])),
        baseline=baseline.name if baseline is not None else "",
        baseline_sha256=scenario_sha256(baseline) if baseline is not None else "",
        baseline_files=tuple(baseline.files) if baseline is not None else (),
        ratio=ratio,
        groups={label: cells for label, cells in inputs.items() if label in grouped},
    )


def _inputs(
    model: Model, sampled: tuple[str, ...], groups: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    """Each input's name and the sampled parameters (cells) it varies: a parameter or a cell
    alone, or an arrayed parameter named in `groups` with all its sampled cells, in the
    place of its first cell. Refused: a name that is not an arrayed parameter."""
    arrays = grouped_cells(sampled)
    problems = []
    for name in dict.fromkeys(groups):
        if name in arrays and any(split(c)[1] for c in arrays[name]):
            continue
        if name in model.parameters:
            why = "is one parameter already (not arrayed)"
        elif any(split(c)[0] == name for c in model.parameters):
            why = "has no uncertain cell"
        else:
            why = "is not a parameter"
        known = [a for a, cells in arrays.items() if split(cells[0])[1]]
        problems.append(
            Problem(
                f"--group {name}: '{name}' {why} in {model.name}",
                hint=did_you_mean(name, known)
                or ("arrayed parameters: " + ", ".join(known) if known else "it has none"),
            )
        )
    if problems:
        raise ScenarioError(problems)
    out: dict[str, tuple[str, ...]] = {}
    for name in sampled:
        array = split(name)[0]
        if array in groups:
            out.setdefault(array, tuple(arrays[array]))
        else:
            out[name] = (name,)
    return out


def _described(model: Model, cells: Sequence[str]) -> str:
    """A group's distributions in short: their families, per cell ("uniform per cell")."""
    families = dict.fromkeys(model.parameters[c].describe().split("(")[0] for c in cells)
    return f"{', '.join(families)} per cell"


def _lean(model: Model) -> Model:
    """The model without recorded series: not needed here, and leaving them out saves time."""
    lean = compile_scenario(model.scenario.model_copy(update={"record": []}))
    return dataclasses.replace(lean, files=model.files, place=model.place)


def _check_pairing(model: Model, baseline: Model, sampled: tuple[str, ...]) -> None:
    """Every parameter varied (B's sampled ones) is sampled in A, with the same distribution;
    A samples nothing else (it would be drawn nowhere in the shared design)."""
    b_file = model.files[0] if model.files else model.name
    a_file = baseline.files[0] if baseline.files else baseline.name
    problems = []
    for name in sampled:
        mine = model.parameters[name].describe()
        theirs = baseline.parameters.get(name)
        if theirs is None:
            problems.append(
                Problem(f"parameter '{name}' ({mine}) of {b_file} is missing from {a_file}")
            )
        elif name not in baseline.sampled:
            problems.append(
                Problem(
                    f"parameter '{name}' is uncertain in {b_file} ({mine}) but fixed in "
                    f"{a_file} ({theirs.describe()})"
                )
            )
        elif theirs.describe() != mine:
            problems.append(
                Problem(
                    f"parameter '{name}' is {mine} in {b_file} but {theirs.describe()} in {a_file}"
                )
            )
    for name in baseline.sampled:
        if name not in sampled:
            problems.append(
                Problem(
                    f"parameter '{name}' is uncertain in {a_file} "
                    f"({baseline.parameters[name].describe()}) but "
                    + ("fixed" if name in model.parameters else "missing")
                    + f" in {b_file}"
                )
            )
    if problems:
        problems[-1] = dataclasses.replace(
            problems[-1],
            hint="the paired difference needs both scenarios to vary the same parameters "
            "with the same distributions",
        )
        raise ScenarioError(problems)


def _difference(
    y_b: np.ndarray, y_a: np.ndarray, names: tuple[str, ...], baseline: str, ratio: bool
) -> np.ndarray:
    """X(B) − X(A), or X(B)/X(A) − 1 (refused where X(A) is not positive), run by run."""
    if not ratio:
        return y_b - y_a
    for k, name in enumerate(names):
        bad = int(np.sum(y_a[k] <= 0))
        if bad:
            raise ScenarioError.one(
                f"--ratio: outcome '{name}' of the baseline '{baseline}' is not positive in "
                f"{bad} of {y_a.shape[1]} runs (smallest {float(np.min(y_a[k])):g}); "
                "a relative difference needs a positive baseline",
                hint="leave out --ratio to explain the difference X(B) − X(A)",
            )
    return y_b / y_a - 1.0


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


def _replicated(
    f_a: np.ndarray, f_b: np.ndarray, f_ab: np.ndarray, replicates: int, confidence: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Estimate, low and high ends, each (2: first/total, outcomes, parameters).

    Each replicate's rows are a Saltelli design of their own (`sim.study.design.Saltelli`);
    its indices are one independent draw of an unbiased-in-the-limit estimator, so the mean
    over the R replicates and Student's t with R − 1 degrees of freedom give the interval.
    """
    m = f_a.shape[1] // replicates
    per = []
    with np.errstate(all="ignore"):  # a replicate with no variance gives NaN; so does the mean
        for r in range(replicates):
            rows = slice(r * m, (r + 1) * m)
            per.append(np.stack(_indices(f_a[:, rows], f_b[:, rows], f_ab[..., rows])))
    values = np.stack(per)  # (replicates, 2, outcomes, parameters)
    est = values.mean(axis=0)
    half = stats.t.ppf((1 + confidence) / 2, replicates - 1) * stats.sem(values, axis=0)
    return est, est - half, est + half
