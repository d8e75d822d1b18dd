"""Comparing outcome distributions between scenarios, paired run by run when the draws agree.

Two studies run with the same seed, sampler and run count draw the same values for the
parameters and noises they share (common random numbers, DESIGN.md "Randomness"), so run `i`
of one and run `i` of the other differ only by what the scenarios change. Their run-by-run
differences are then *paired*, and the spread of those differences, not of the outcomes, sets
how sure we are of the shift. Otherwise the two samples are independent and compared as such.

Runs without a value are left out, and the table counts them. A `first` outcome has no value
when the event never happened. Any outcome has none in a run that went non-finite. A paired
difference uses the runs where both scenarios have a value. So for a `first` outcome it reads
"when it happens in both, how much later in B", and the shares of "never" are shown beside it.

>>> import sim
>>> model = sim.load("examples/bakery.yaml")
>>> a = sim.run(model, runs=300, seed=1)
>>> b = sim.run(model, runs=300, seed=1)
>>> table = compare(a, b)
>>> table.differences[0].paired, table.differences[0].mean
(True, 0.0)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from sim.errors import ResultsError, did_you_mean
from sim.study.results import OutcomeSummary, Results, mean_sd

CONFIDENCE = 0.95
N_RESAMPLES = 2000
MIN_RESAMPLES = 300
# Resamples x values per bootstrap: 2000 resamples up to 15,000 paired runs, 300 at 100,000,
# so a comparison of two 100k-run studies takes seconds. With 300 resamples the ends of a 95%
# interval wobble by about 4% of its width from one bootstrap seed to another.
RESAMPLE_BUDGET = 30_000_000
BOOTSTRAP_SEED = 20_240_601  # fixed, so a comparison prints the same numbers every time


@dataclass(frozen=True)
class Pairing:
    """Whether the runs of a scenario line up one to one with the first scenario's, and why."""

    paired: bool
    reason: str


@dataclass(frozen=True)
class Difference:
    """One outcome's B − A: the shift with bootstrap intervals, P(B > A) and distances.

    Paired: `mean`, `median`, `p05` and `p95` describe the run-by-run differences b_i − a_i
    over the runs where both have a value (`n_a` = `n_b` of them), and `p_greater` is the share
    of those runs with b_i > a_i. Unpaired: `mean` and `median` are differences of the two
    samples' means and medians, `p05`/`p95` are NaN (there are no run-by-run differences), and
    `p_greater` is the chance that a random B run exceeds a random A run. `ks`, `ks_pvalue` and `wasserstein`
    compare the two distributions as wholes, either way.
    """

    outcome: str
    a: str
    b: str
    unit: str
    paired: bool
    n_a: int  # values used from A (paired: the runs where both have one)
    n_b: int
    mean: float
    mean_low: float
    mean_high: float
    mcse: float  # Monte Carlo standard error of `mean`
    median: float
    median_low: float
    median_high: float
    p05: float
    p95: float
    p_greater: float
    p_equal: float
    ks: float
    ks_pvalue: float
    wasserstein: float
    resamples: int


@dataclass(frozen=True)
class Comparison:
    """The comparison table: each scenario's outcome distributions, and each B − A vs the first.

    `scenarios` are labels (scenario names, made unique). `summaries[label]` holds that
    scenario's `OutcomeSummary` per outcome; `differences` has one entry per outcome and per
    scenario after the first, outcome-major; `pairings[k]` says whether scenario k + 1 is paired
    with the first.
    """

    scenarios: tuple[str, ...]
    outcomes: tuple[str, ...]
    summaries: dict[str, dict[str, OutcomeSummary]]
    differences: tuple[Difference, ...]
    pairings: tuple[Pairing, ...]
    runs: tuple[int, ...]
    confidence: float = CONFIDENCE
    notes: tuple[str, ...] = field(default_factory=tuple)

    def summary(self, outcome: str, scenario: str) -> OutcomeSummary:
        """One scenario's distribution of one outcome."""
        return self.summaries[scenario][outcome]

    def difference(self, outcome: str, b: str) -> Difference:
        """Scenario `b` minus the first scenario, for one outcome."""
        for d in self.differences:
            if d.outcome == outcome and d.b == b:
                return d
        raise KeyError(f"no difference for outcome '{outcome}' and scenario '{b}'")

    def rows(self) -> list[dict[str, Any]]:
        """The table as flat rows (outcome × scenario, then outcome × pair): for CSV and JSON.

        Every row has the same keys; a field that doesn't apply to a row is None.
        """
        out: list[dict[str, Any]] = []
        for name in self.outcomes:
            for label, runs in zip(self.scenarios, self.runs, strict=True):
                s = self.summaries[label][name]
                row = dict.fromkeys(ROW_FIELDS)
                row.update(
                    kind="scenario",
                    outcome=name,
                    scenario=label,
                    unit=s.unit,
                    runs=runs,
                    n=s.n,
                    empty=s.empty,
                    mean=s.mean,
                    mcse=s.mcse,
                    sd=s.sd,
                    p05=s.p05,
                    p50=s.p50,
                    p95=s.p95,
                )
                out.append(row)
            for d in self.differences:
                if d.outcome != name:
                    continue
                row = dict.fromkeys(ROW_FIELDS)
                row.update(
                    kind="difference",
                    outcome=name,
                    scenario=f"{d.b} - {d.a}",
                    a=d.a,
                    b=d.b,
                    unit=d.unit,
                    paired=d.paired,
                    n=min(d.n_a, d.n_b),
                    mean=d.mean,
                    mean_low=d.mean_low,
                    mean_high=d.mean_high,
                    mcse=d.mcse,
                    p05=d.p05,
                    p50=d.median,
                    p50_low=d.median_low,
                    p50_high=d.median_high,
                    p95=d.p95,
                    p_greater=d.p_greater,
                    p_equal=d.p_equal,
                    ks=d.ks,
                    ks_pvalue=d.ks_pvalue,
                    wasserstein=d.wasserstein,
                    resamples=d.resamples,
                )
                out.append(row)
        return [{k: _plain(v) for k, v in row.items()} for row in out]

    def as_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (NaN and infinity become None)."""
        return {
            "scenarios": [
                {"label": label, "runs": runs}
                for label, runs in zip(self.scenarios, self.runs, strict=True)
            ],
            "pairings": [
                {"a": self.scenarios[0], "b": b, **asdict(p)}
                for b, p in zip(self.scenarios[1:], self.pairings, strict=True)
            ],
            "outcomes": list(self.outcomes),
            "confidence": self.confidence,
            "notes": list(self.notes),
            "rows": self.rows(),
        }

    def legend(self) -> list[str]:
        """What the table's columns and pairing mean, one sentence each, for under the table."""
        lines = [f"{p.reason}." for p in self.pairings]
        lines.append(f"B − A: each scenario minus the first ({self.scenarios[0]}).")
        lines.append(
            f"mean, p05, p50, p95: over the runs with a value. ± mcse: Monte Carlo standard "
            f"error of the mean (more runs shrink it). [ ]: {self.confidence:.0%} percentile "
            "bootstrap interval."
        )
        if any(d.paired for d in self.differences):
            lines.append(
                "Paired rows: the mean, p05, p50 and p95 of the run-by-run differences B − A, "
                "over runs where both have a value; P(B>A): share of runs where B > A."
            )
        if any(not d.paired for d in self.differences):
            lines.append(
                "Unpaired rows: difference of means and of medians; P(B>A): chance a random "
                "B run exceeds a random A run."
            )
        lines.append(
            "KS D: largest gap between the two cumulative distributions (0 same, 1 disjoint), "
            "with its p-value; Wasserstein: average distance the values must move to turn one "
            "distribution into the other, in the outcome's unit."
        )
        return lines + list(self.notes)


ROW_FIELDS = (
    "kind",
    "outcome",
    "scenario",
    "a",
    "b",
    "unit",
    "paired",
    "runs",
    "n",
    "empty",
    "mean",
    "mean_low",
    "mean_high",
    "mcse",
    "sd",
    "p05",
    "p50",
    "p50_low",
    "p50_high",
    "p95",
    "p_greater",
    "p_equal",
    "ks",
    "ks_pvalue",
    "wasserstein",
    "resamples",
)


def compare(
    *results: Results,
    outcomes: Iterable[str] | None = None,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
) -> Comparison:
    """Compare the outcome distributions of two or more studies, each against the first.

    `outcomes` picks outcomes by name (default: every outcome all studies share, in the first
    study's order). Studies run with the same seed, sampler and run count are paired run by
    run; the result says which were. Raises `ResultsError` for fewer than two studies, an
    incomplete one, no shared outcome, or a requested outcome not in every study.

    >>> import sim
    >>> a = sim.run(sim.load("examples/bakery.yaml"), runs=200, seed=1)
    >>> b = sim.run(sim.load("examples/bakery.yaml"), runs=200, seed=2)
    >>> compare(a, b).pairings[0].paired
    False
    """
    if len(results) < 2:
        raise ResultsError("compare needs at least two results")
    labels = _labels(results)
    for label, res in zip(labels, results, strict=True):
        if not res.manifest.get("complete"):
            raise ResultsError(f"{label}: incomplete results; finish the run before comparing")
    names, notes = _shared_outcomes(results, labels, outcomes)
    summaries = {
        label: {s.name: s for s in res.summary() if s.name in names}
        for label, res in zip(labels, results, strict=True)
    }
    pairings = tuple(
        pairing(results[0], res, (labels[0], label))
        for label, res in zip(labels[1:], results[1:], strict=True)
    )
    differences = []
    for name in names:
        a = results[0].outcome(name)
        unit = str(results[0].outcomes[name]["unit"])
        for label, res, p in zip(labels[1:], results[1:], pairings, strict=True):
            differences.append(
                difference(
                    a,
                    res.outcome(name),
                    paired=p.paired,
                    outcome=name,
                    labels=(labels[0], label),
                    unit=unit,
                    confidence=confidence,
                    n_resamples=n_resamples,
                )
            )
    return Comparison(
        scenarios=tuple(labels),
        outcomes=tuple(names),
        summaries=summaries,
        differences=tuple(differences),
        pairings=pairings,
        runs=tuple(r.runs.num_rows for r in results),
        confidence=confidence,
        notes=tuple(notes),
    )


def pairing(a: Results, b: Results, labels: tuple[str, str] | None = None) -> Pairing:
    """Whether run i of `b` is paired with run i of `a`: same seed, sampler and run count."""
    name_a, name_b = labels or (a.name, b.name)
    why = []
    if a.seed != b.seed:
        why.append(f"seeds differ ({a.seed} vs {b.seed})")
    if a.sampler != b.sampler:
        why.append(f"samplers differ ({a.sampler} vs {b.sampler})")
    if a.n_runs != b.n_runs:
        why.append(f"run counts differ ({a.n_runs:,} vs {b.n_runs:,})")
    if not why and not np.array_equal(
        a.runs.column("run").to_numpy(), b.runs.column("run").to_numpy()
    ):
        why.append("run numbers differ")
    if why:
        return Pairing(False, f"{name_a} vs {name_b}: unpaired, {'; '.join(why)}")
    caveat = ""
    if a.sampler == "sobol" and _sampled(a) != _sampled(b):
        # sim.sampling.draws: Sobol draws are joint over the sampled parameters in name order
        caveat = (
            "; but Sobol draws differ when the sampled parameters differ, so pairing helps less"
        )
    return Pairing(
        True,
        f"{name_a} vs {name_b}: paired run by run (same seed {a.seed}, sampler {a.sampler}, "
        f"{a.n_runs:,} runs: common random numbers{caveat})",
    )


def _sampled(res: Results) -> set[str]:
    return {name for name, spec in res.parameters.items() if spec.get("sampled")}


# Outcomes near 1e300 overflow a sum or a square: the statistics that can't be represented
# come out infinite (shown as such), the mcse is recomputed scaled, and no raw numpy
# RuntimeWarning reaches the terminal.
@np.errstate(over="ignore", invalid="ignore")
def difference(
    a: np.ndarray,
    b: np.ndarray,
    *,
    paired: bool,
    outcome: str = "",
    labels: tuple[str, str] = ("A", "B"),
    unit: str = "",
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
) -> Difference:
    """B − A for one outcome's values per run; NaN and infinite values are left out."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    # The distances compare each scenario's own values, as its row and its ECDF show them.
    a_own, b_own = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a_own) and len(b_own):
        ks = stats.ks_2samp(a_own, b_own)
        ks_d, ks_p = float(ks.statistic), float(ks.pvalue)
        wasserstein = float(stats.wasserstein_distance(a_own, b_own))
    else:
        ks_d = ks_p = wasserstein = math.nan
    if paired:
        if a.shape != b.shape:
            raise ValueError("paired samples must have the same length")
        both = np.isfinite(a) & np.isfinite(b)
        a, b = a[both], b[both]
        d = b - a
        center: tuple[float, float] = (
            (float(np.mean(d)), float(np.median(d))) if len(d) else (math.nan, math.nan)
        )
        (m_lo, md_lo), (m_hi, md_hi), used = _bootstrap(
            (d,), _mean_median, center, confidence, n_resamples
        )
        p05, p95 = _quantiles(d, (0.05, 0.95))
        p_greater = float(np.mean(d > 0)) if len(d) else math.nan
        p_equal = float(np.mean(d == 0)) if len(d) else math.nan
        mcse = float(np.std(d, ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.nan
        if len(d) > 1 and not math.isfinite(mcse) and np.isfinite(d).all():
            mcse = mean_sd(d)[1] / math.sqrt(len(d))
    else:
        a, b = a_own, b_own
        center = (
            (float(np.mean(b) - np.mean(a)), float(np.median(b) - np.median(a)))
            if len(a) and len(b)
            else (math.nan, math.nan)
        )
        (m_lo, md_lo), (m_hi, md_hi), used = _bootstrap(
            (a, b), _mean_median_shift, center, confidence, n_resamples
        )
        p05 = p95 = math.nan
        p_greater, p_equal = _superiority(a, b)
        mcse = (
            math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))
            if len(a) > 1 and len(b) > 1
            else math.nan
        )
        if len(a) > 1 and len(b) > 1 and not math.isfinite(mcse):
            mcse = math.hypot(mean_sd(a)[1] / math.sqrt(len(a)), mean_sd(b)[1] / math.sqrt(len(b)))
    return Difference(
        outcome=outcome,
        a=labels[0],
        b=labels[1],
        unit=unit,
        paired=paired,
        n_a=len(a),
        n_b=len(b),
        mean=center[0],
        mean_low=m_lo,
        mean_high=m_hi,
        mcse=mcse,
        median=center[1],
        median_low=md_lo,
        median_high=md_hi,
        p05=p05,
        p95=p95,
        p_greater=p_greater,
        p_equal=p_equal,
        ks=ks_d,
        ks_pvalue=ks_p,
        wasserstein=wasserstein,
        resamples=used,
    )


def resamples_for(n: int, n_resamples: int = N_RESAMPLES) -> int:
    """How many bootstrap resamples to draw for `n` values: fewer for very many runs."""
    return max(min(n_resamples, MIN_RESAMPLES), min(n_resamples, RESAMPLE_BUDGET // max(n, 1)))


# -- formatting for people ------------------------------------------------------------------


def _labels(results: Sequence[Results]) -> list[str]:
    """Scenario names, made unique with the folder name or the position where they repeat."""
    names = [r.name for r in results]
    out = []
    for i, r in enumerate(results):
        if names.count(r.name) == 1:
            out.append(r.name)
        elif r.folder is not None and r.folder.name != r.name:
            out.append(f"{r.name} [{r.folder.name}]")
        else:
            out.append(f"{r.name} #{i + 1}")
    if len(set(out)) < len(out):
        out = [f"{label} #{i + 1}" for i, label in enumerate(out)]
    return out


def _shared_outcomes(
    results: Sequence[Results], labels: Sequence[str], wanted: Iterable[str] | None
) -> tuple[list[str], list[str]]:
    """The outcomes to compare, and notes on the ones left out."""
    first = results[0].outcomes
    shared = [n for n in first if all(n in r.outcomes for r in results[1:])]
    notes = []
    if wanted is not None:
        names = list(dict.fromkeys(wanted))
        for name in names:
            missing = [
                lab for lab, r in zip(labels, results, strict=True) if name not in r.outcomes
            ]
            if missing:
                hint = did_you_mean(name, shared)
                raise ResultsError(
                    f"outcome '{name}' is not in {', '.join(missing)}"
                    + (
                        f"; {hint}"
                        if hint
                        else f" (shared outcomes: {', '.join(shared) or 'none'})"
                    )
                )
    else:
        names = shared
        if not names:
            have = "; ".join(
                f"{lab} has {', '.join(r.outcomes) or 'none'}"
                for lab, r in zip(labels, results, strict=True)
            )
            raise ResultsError(f"the results share no outcome to compare ({have})")
        only = [n for r in results for n in r.outcomes if n not in shared]
        if only:
            notes.append(
                f"Not in every scenario, so not compared: {', '.join(dict.fromkeys(only))}."
            )
    kept = []
    for name in names:
        units = {str(r.outcomes[name]["unit"]) for r in results}
        if len(units) > 1:
            message = f"outcome '{name}' has different units ({', '.join(sorted(units))})"
            if wanted is not None:
                raise ResultsError(message)
            notes.append(f"Not compared: {message}.")
            continue
        kept.append(name)
    if not kept:
        raise ResultsError("the results share no outcome with the same unit")
    return kept, notes


Statistic = Callable[..., np.ndarray]


def _mean_median(d: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.stack([np.mean(d, axis=axis), np.median(d, axis=axis)])


def _mean_median_shift(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.stack(
        [
            np.mean(b, axis=axis) - np.mean(a, axis=axis),
            np.median(b, axis=axis) - np.median(a, axis=axis),
        ]
    )


def _bootstrap(
    samples: tuple[np.ndarray, ...],
    statistic: Statistic,
    center: tuple[float, float],
    confidence: float,
    n_resamples: int,
) -> tuple[tuple[float, float], tuple[float, float], int]:
    """Percentile bootstrap intervals of (mean, median): (lows, highs, resamples used).

    Percentile, not BCa: BCa's jackknife costs a pass per run, hopeless at 100k runs.
    """
    sizes = [len(s) for s in samples]
    nan = (math.nan, math.nan)
    if min(sizes) < 2:
        return nan, nan, 0
    if all(np.ptp(s) == 0 for s in samples):  # no spread: every resample gives the centre
        return center, center, 0
    used = resamples_for(sum(sizes), n_resamples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a mostly-tied sample is "degenerate" but fine here
        res = stats.bootstrap(
            samples,
            statistic,
            n_resamples=used,
            batch=max(1, 4_000_000 // max(sizes)),
            vectorized=True,
            paired=False,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(BOOTSTRAP_SEED),
        )
    low, high = res.confidence_interval
    return (float(low[0]), float(low[1])), (float(high[0]), float(high[1])), used


def _superiority(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """P(b > a) and P(b = a) for independent draws, exactly, by counting over sorted `a`."""
    if not len(a) or not len(b):
        return math.nan, math.nan
    sa = np.sort(a)
    below = np.searchsorted(sa, b, side="left")
    at_or_below = np.searchsorted(sa, b, side="right")
    total = len(a) * len(b)
    return float(below.sum() / total), float((at_or_below - below).sum() / total)


def _quantiles(x: np.ndarray, qs: tuple[float, ...]) -> tuple[float, ...]:
    if not len(x):
        return tuple(math.nan for _ in qs)
    return tuple(float(v) for v in np.quantile(x, qs))


def _plain(v: Any) -> Any:
    """A value JSON can hold: NaN and infinity become None."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
