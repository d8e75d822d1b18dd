"""Comparing outcome distributions between scenarios, paired run by run when the draws agree.

Two studies run with the same seed, sampler and run count draw the same values for the
parameters and noises they share (common random numbers, DESIGN.md "Randomness"), so run `i`
of one and run `i` of the other differ only by what the scenarios change. Their run-by-run
differences are then *paired*, and the spread of those differences, not of the outcomes, sets
how sure we are of the shift. Otherwise the two samples are independent and compared as such.
Studies drawn from a posterior (`sim run --posterior`) pair only with studies drawn from the
same posterior: run i then takes the same posterior sample in each.

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

import functools
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
from scipy import stats

from sim.analysis.cells import Namespace, array_of, dimensions_of, element_text, expand, namespace
from sim.engine.semantics import STATUS_OK
from sim.errors import ResultsError, ScenarioError, did_you_mean
from sim.scenario.expr import Expr, ExprError
from sim.study.results import OutcomeSummary, Results, mean_sd

CONFIDENCE = 0.95
N_RESAMPLES = 2000
MIN_RESAMPLES = 300
# Resamples x values per bootstrap: 2000 resamples up to 15,000 paired runs, 300 at 100,000,
# so a comparison of two 100k-run studies takes seconds. With 300 resamples the ends of a 95%
# interval wobble by about 4% of its width from one bootstrap seed to another.
RESAMPLE_BUDGET = 30_000_000
BOOTSTRAP_SEED = 20_240_601  # fixed, so a comparison prints the same numbers every time
# From this many values per sample, intervals come from theory instead of a bootstrap: the
# normal interval for a mean (the central limit theorem is excellent here unless the outcome
# has no variance to speak of), the distribution-free order-statistic interval for a median
# (exact for any n; scipy's quantile_test), and for a shift of two independent medians the
# normal interval with each median's standard error read off its order-statistic interval.
# Below it the percentile bootstrap, which is cheap there and makes no large-sample claim.
ASYMPTOTIC_FROM = 5000
# Up to this many values in the larger sample, scipy's ks_2samp gives the exact p-value (its
# MAX_AUTO_N for method="auto"); beyond it, Smirnov's asymptotic one, which `distances` takes.
KS_EXACT_UP_TO = 10_000


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
class Given:
    """The condition on parameters a comparison was restricted to, and the runs it kept.

    `index` holds the kept runs' positions (0-based rows of runs.parquet), the same in every
    study: paired run i is the same world in each, so the condition is evaluated once.
    """

    condition: str
    kept: int
    of: int
    index: np.ndarray = field(repr=False, compare=False)

    @property
    def share(self) -> float:
        return self.kept / self.of if self.of else math.nan

    def text(self) -> str:
        """ "given war_end_month <= 35: 412 of 1,000 runs kept (41%)", for titles and legends."""
        return f"given {self.condition}: {self.kept:,} of {self.of:,} runs kept ({self.share:.0%})"

    def as_dict(self) -> dict[str, Any]:
        return {"condition": self.condition, "kept": self.kept, "of": self.of, "share": self.share}


@dataclass(frozen=True)
class Probability:
    """P(condition) in one scenario: `hits` of `n` usable runs, with a Wilson score interval."""

    condition: str
    scenario: str
    hits: int
    n: int
    p: float
    low: float
    high: float


@dataclass(frozen=True)
class ProbabilityDifference:
    """P_B(condition) − P_A(condition) with Newcombe's hybrid score interval.

    Paired: over the runs usable in both, with the correlation of the paired outcomes
    (Newcombe 1998, method 10). Unpaired: the same with zero correlation (his method 10 for
    independent proportions).
    """

    condition: str
    a: str
    b: str
    paired: bool
    n_a: int
    n_b: int
    p_a: float
    p_b: float
    diff: float
    low: float
    high: float


@dataclass(frozen=True)
class Threshold:
    """One `--threshold` condition: its probability per scenario and each B − A."""

    condition: str
    probabilities: tuple[Probability, ...]
    differences: tuple[ProbabilityDifference, ...]


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
    given: Given | None = None
    thresholds: tuple[Threshold, ...] = ()
    # Per scenario, the posterior its parameters were drawn from (its manifest's `posterior`:
    # folder, sha256, parameters, observations, ...), or None for priors.
    posteriors: tuple[dict[str, Any] | None, ...] = ()

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
        for row in out:  # a cell of an arrayed outcome also names its array and elements
            if cell_elements := element_text(row["outcome"]):
                row.update(array=array_of(row["outcome"]), element=cell_elements)
        out += self._threshold_rows()
        if self.given is not None:
            for row in out:
                row.update(
                    given=self.given.condition, given_kept=self.given.kept, given_of=self.given.of
                )
        return [{k: _plain(v) for k, v in row.items()} for row in out]

    def _threshold_rows(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for t in self.thresholds:
            for pr in t.probabilities:
                row = dict.fromkeys(ROW_FIELDS)
                row.update(
                    kind="probability",
                    condition=t.condition,
                    scenario=pr.scenario,
                    n=pr.n,
                    hits=pr.hits,
                    p=pr.p,
                    p_low=pr.low,
                    p_high=pr.high,
                )
                out.append(row)
            for d in t.differences:
                row = dict.fromkeys(ROW_FIELDS)
                row.update(
                    kind="probability difference",
                    condition=t.condition,
                    scenario=f"{d.b} - {d.a}",
                    a=d.a,
                    b=d.b,
                    paired=d.paired,
                    n=min(d.n_a, d.n_b),
                    p=d.diff,
                    p_low=d.low,
                    p_high=d.high,
                )
                out.append(row)
        return out

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
            "identical": list(self.identical),
            "confidence": self.confidence,
            "notes": list(self.notes),
            "given": self.given.as_dict() if self.given is not None else None,
            "posteriors": [
                {"label": label, "posterior": p}
                for label, p in zip(self.scenarios, self.posteriors, strict=True)
            ],
            "thresholds": [
                {
                    "condition": t.condition,
                    "probabilities": [_plain_dict(asdict(p)) for p in t.probabilities],
                    "differences": [_plain_dict(asdict(d)) for d in t.differences],
                }
                for t in self.thresholds
            ],
            "rows": self.rows(),
        }

    @property
    def identical(self) -> tuple[str, ...]:
        """Outcomes equal in every paired run of every scenario (the same value, or no value
        in the same runs): nothing to compare, so tables and figures list them once, folded.
        Unpaired scenarios are never judged identical: equal distributions are not equal runs."""
        out = []
        for name in self.outcomes:
            diffs = [d for d in self.differences if d.outcome == name]
            empty = {self.summaries[s][name].empty for s in self.scenarios}
            if (
                diffs
                and all(d.paired and (d.p_equal == 1.0 or d.n_a == 0) for d in diffs)
                and len(empty) == 1
            ):
                out.append(name)
        return tuple(out)

    def select(self, outcomes: Sequence[str]) -> Comparison:
        """The same comparison restricted to `outcomes` (in their order here): for a table
        or figure of part of it. Thresholds and the condition are kept whole."""
        keep = [o for o in self.outcomes if o in set(outcomes)]
        return replace(
            self,
            outcomes=tuple(keep),
            summaries={s: {o: v[o] for o in keep} for s, v in self.summaries.items()},
            differences=tuple(d for d in self.differences if d.outcome in set(keep)),
        )

    def legend(self) -> list[str]:
        """What the table's columns and pairing mean, one sentence each, for under the table."""
        lines = [f"{p.reason}." for p in self.pairings]
        if self.given is not None:
            lines.insert(
                0,
                f"Only the runs {self.given.text()}; every number in the tables is over those "
                "runs, the same runs in every scenario.",
            )
        lines.append(f"B − A: each scenario minus the first ({self.scenarios[0]}).")
        level = f"{self.confidence:.0%}"
        theory = any(
            d.resamples == 0 and min(d.n_a, d.n_b) >= ASYMPTOTIC_FROM for d in self.differences
        )
        booted = any(d.resamples > 0 for d in self.differences)
        how = (
            f"[ ]: {level} interval: normal for a mean, order statistics for a median "
            f"(from {ASYMPTOTIC_FROM:,} runs)"
            + ("; percentile bootstrap for fewer runs." if booted else ".")
            if theory
            else f"[ ]: {level} percentile bootstrap interval."
        )
        lines.append(
            "mean, p05, p50, p95: over the runs with a value. ± mcse: Monte Carlo standard "
            f"error of the mean (more runs shrink it). {how}"
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
        if self.thresholds:
            lines.append(
                f"P(condition): share of runs where it holds, with a {self.confidence:.0%} "
                "Wilson interval; B − A: the difference of shares with Newcombe's hybrid score "
                "interval (paired: using the run-by-run correlation)."
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
    "condition",
    "hits",
    "p",
    "p_low",
    "p_high",
    "given",
    "given_kept",
    "given_of",
    "array",
    "element",
)


def compare(
    *results: Results,
    outcomes: Iterable[str] | None = None,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    given: str | None = None,
    thresholds: Iterable[str] = (),
    mapper: Callable[..., Iterable[Any]] = map,
) -> Comparison:
    """Compare the outcome distributions of two or more studies, each against the first.

    `outcomes` picks outcomes by name (default: every outcome all studies share, in the first
    study's order). Studies run with the same seed, sampler and run count are paired run by
    run; the result says which were. Raises `ResultsError` for fewer than two studies, an
    incomplete one, no shared outcome, or a requested outcome not in every study.

    `given` (e.g. "war_end_month <= 35") keeps only the runs where a condition on parameters
    holds: it is evaluated on the first study and the same runs are kept in every study,
    which must be paired and agree on the parameters it names (`keep_given`). `thresholds`
    (e.g. "food_shortfall_months > 24") are conditions over each run's outcomes and
    parameters: the comparison gives P(condition) per scenario and each B − A
    (`threshold`), on the kept runs when `given` is set. `mapper` computes the differences
    (their bootstrap is most of a comparison's time): the builtin's, or an executor's
    `map` to compute them side by side in its workers, for the same numbers.

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
    if outcomes is not None:  # an array's name stands for every cell of it
        outcomes = expand(outcomes, list(results[0].outcomes))
    names, notes = _shared_outcomes(results, labels, outcomes)
    pairings = tuple(
        pairing(results[0], res, (labels[0], label))
        for label, res in zip(labels[1:], results[1:], strict=True)
    )
    for label, res in zip(labels[1:], results[1:], strict=True):
        if (why := posterior_mismatch(results[0], res, (labels[0], label))) is not None:
            warnings.warn(
                f"{labels[0]} vs {label}: {why}, so run i is not the same world in both and "
                "their difference mixes the scenarios' effect with the change of beliefs; "
                "run both with the same --posterior (and seed) for a paired comparison",
                stacklevel=2,
            )
    kept: Given | None = None
    if given is not None:  # paired as whole studies; the kept runs are then the same worlds
        kept = keep_given(results, given, labels)
        results = tuple(subset(res, kept.index) for res in results)
    summaries = {
        label: {s.name: s for s in res.summary(names)}
        for label, res in zip(labels, results, strict=True)
    }
    jobs = []
    for name in names:
        a = results[0].outcome(name)
        unit = str(results[0].outcomes[name]["unit"])
        for label, res, p in zip(labels[1:], results[1:], pairings, strict=True):
            jobs.append((a, res.outcome(name), p.paired, name, (labels[0], label), unit))
    one = functools.partial(_difference_of, confidence=confidence, n_resamples=n_resamples)
    differences = list(mapper(one, jobs))
    return Comparison(
        scenarios=tuple(labels),
        outcomes=tuple(names),
        summaries=summaries,
        differences=tuple(differences),
        pairings=pairings,
        runs=tuple(r.runs.num_rows for r in results),
        confidence=confidence,
        notes=tuple(notes),
        given=kept,
        thresholds=tuple(
            threshold(results, text, labels, pairings, confidence)
            for text in dict.fromkeys(thresholds)
        ),
        posteriors=tuple(posterior_of(res) for res in results),
    )


# -- conditions: --given and --threshold ----------------------------------------------------


def keep_given(
    results: Sequence[Results], condition: str, labels: Sequence[str] | None = None
) -> Given:
    """The runs of the first study where `condition`, over parameters, holds.

    Refused (`ScenarioError`, a user's mistake) for an expression that isn't a condition or
    names something that is not a parameter of every study, for studies that are not paired
    with the first or whose values of a named parameter differ (then run i is not the same
    world in each), and for a condition no run meets.
    """
    labels = list(labels or _labels(results))
    first = results[0]
    known = {name: "parameter" for res in results for name in res.parameters}
    known.update({name: "outcome" for name in first.outcomes if name not in known})
    names = namespace(known, dimensions_of(first.manifest))
    expr = _compiled(condition, names, "--given")
    for name in sorted(expr.names):
        missing = [
            lab
            for lab, res in zip(labels, results, strict=True)
            if any(c not in res.parameters for c in names.columns.get(name, (name,)))
        ]
        if not missing:
            continue
        if names.kinds[name] == "outcome":
            why = f"'{name}' is an outcome, not a parameter"
            hint = "--given conditions on parameters; for outcomes use --threshold"
        else:
            why = f"'{name}' is not a parameter of {', '.join(missing)}"
            shared = [n for n in first.parameters if all(n in r.parameters for r in results)]
            hint = did_you_mean(name, shared) or "parameters of every study: " + ", ".join(shared)
        raise ScenarioError.one(f'--given "{condition}": {why}', hint=hint)
    for lab, res in zip(labels[1:], results[1:], strict=True):
        p = pairing(first, res, (labels[0], lab))
        if not p.paired:
            raise ScenarioError.one(
                f'--given "{condition}": the studies must be paired run by run ({p.reason})',
                hint="run them with the same --seed, --sampler and --runs",
            )
        for name in sorted(c for n in expr.names for c in names.columns.get(n, (n,))):
            va, vb = first.parameter(name), res.parameter(name)
            differ = np.flatnonzero(~((va == vb) | (np.isnan(va) & np.isnan(vb))))
            if differ.size:
                k = int(differ[0])
                raise ScenarioError.one(
                    f'--given "{condition}": parameter {name} differs between {labels[0]} and '
                    f"{lab} in {differ.size:,} runs (e.g. row {k}: {va[k]:g} vs {vb[k]:g}), "
                    "so the condition would not pick the same worlds in both",
                    hint="condition on a parameter the scenarios share unchanged",
                )
    holds = _truth(expr, condition, "--given", first, names)
    index = np.flatnonzero(holds)
    if not index.size:
        raise ScenarioError.one(
            f'--given "{condition}" holds in none of the {first.n_runs:,} runs',
            hint="loosen the condition",
        )
    return Given(condition, int(index.size), first.n_runs, index)


def subset(res: Results, index: np.ndarray) -> Results:
    """The study restricted to the runs at `index` (rows of runs.parquet), in memory.

    Bands (per-tick quantiles over all runs) are kept as they are: they can't be recomputed
    from the kept runs, so fan charts of a subset still show every run.
    """
    manifest = dict(res.manifest)
    manifest["runs"] = len(index)
    manifest.pop("nonfinite", None)  # counted over every run; recounted from the kept ones
    return Results(manifest, res.runs.take(pa.array(index)), res.bands, None, res.folder)


def kept_runs(results: Sequence[Results], given: Given | None) -> list[Results]:
    """The studies as a comparison with `given` saw them: only the kept runs (all if None)."""
    if given is None:
        return list(results)
    return [subset(res, given.index) for res in results]


def threshold(
    results: Sequence[Results],
    condition: str,
    labels: Sequence[str] | None = None,
    pairings: Sequence[Pairing] | None = None,
    confidence: float = CONFIDENCE,
) -> Threshold:
    """P(condition) in each study, and each one's difference from the first's.

    The condition is an expression over the run's outcomes and parameters, evaluated in each
    study on its own values; runs that went non-finite are left out. A condition on a `first`
    outcome that never happened is false (NaN compares false). Intervals: Wilson score for
    each probability; for a difference, Newcombe's hybrid score interval (Newcombe 1998),
    built from the two Wilson intervals and, for paired studies, the correlation between the
    paired runs' 0/1 results (his method 10), so a shift that few runs make is not swamped
    by the spread shared by both. Deterministic, and sound near 0 and 1 where a bootstrap of
    a rare event is not.
    """
    labels = list(labels or _labels(results))
    if pairings is None:
        pairings = [
            pairing(results[0], r, (labels[0], lab))
            for lab, r in zip(labels[1:], results[1:], strict=True)
        ]
    hits: list[np.ndarray] = []
    usable: list[np.ndarray] = []
    for lab, res in zip(labels, results, strict=True):
        known = {name: "outcome" for name in res.outcomes}
        known.update({name: "parameter" for name in res.parameters})
        names = namespace(known, dimensions_of(res.manifest))
        try:
            expr = names.compile(condition, "--threshold")
        except ExprError as exc:
            raise _located(exc, condition, "--threshold", f" in {lab}") from None
        hits.append(_truth(expr, condition, "--threshold", res, names))
        usable.append(np.asarray(res.status == STATUS_OK))
    probabilities = tuple(
        _probability(condition, lab, int(np.sum(y & ok)), int(np.sum(ok)), confidence)
        for lab, y, ok in zip(labels, hits, usable, strict=True)
    )
    differences = []
    for k, p in enumerate(pairings, start=1):
        ya, yb, oka, okb = hits[0], hits[k], usable[0], usable[k]
        if p.paired:
            both = oka & okb
            ya, yb = ya[both], yb[both]
            table = (
                int(np.sum(ya & yb)),
                int(np.sum(ya & ~yb)),
                int(np.sum(~ya & yb)),
                int(np.sum(~ya & ~yb)),
            )
            n_a = n_b = int(both.sum())
        else:
            table = None
            n_a, n_b = int(oka.sum()), int(okb.sum())
            ya, yb = ya[oka], yb[okb]
        differences.append(
            _newcombe(condition, (labels[0], labels[k]), ya, yb, n_a, n_b, table, confidence)
        )
    return Threshold(condition, probabilities, tuple(differences))


def _compiled(condition: str, names: Namespace, flag: str) -> Expr:
    try:
        return names.compile(condition, flag)
    except ExprError as exc:
        raise _located(exc, condition, flag) from None


def _located(exc: ExprError, condition: str, flag: str, where: str = "") -> ScenarioError:
    pointer = f" (at column {exc.offset + 1})" if exc.offset else ""
    return ScenarioError.one(
        f'{flag} "{condition}"{where}: {exc.message}{pointer}',
        hint=exc.hint or "a condition over outcome and parameter names, e.g. x > 24",
    )


def _values(res: Results, expr: Expr, names: Namespace) -> dict[str, np.ndarray]:
    outcomes = res.outcomes
    return names.values(expr, lambda c: res.outcome(c) if c in outcomes else res.parameter(c))


def _truth(expr: Expr, condition: str, flag: str, res: Results, names: Namespace) -> np.ndarray:
    """True where the condition holds, per run; refused if it gives numbers, as discover does,
    or one truth per cell of an array."""
    if expr.dims:
        raise ScenarioError.one(
            f'{flag} "{condition}" is over ({", ".join(expr.dims)}): one truth per cell, '
            "not one per run",
            hint="pick a cell, e.g. x[elem], or reduce the array, e.g. max(x) or sum(x)",
        )
    values = _values(res, expr, names)
    n = res.n_runs
    with np.errstate(all="ignore"):
        y = np.broadcast_to(np.asarray(expr(values), dtype=float), (n,))
    finite = y[np.isfinite(y)]
    if not np.all((finite == 0) | (finite == 1)):
        raise ScenarioError.one(
            f'{flag} "{condition}" gives numbers, not true or false',
            hint="make it a condition over run values, e.g. with >, <, == or and/or",
        )
    return np.isfinite(y) & (y != 0)


def _wilson(hits: int, n: int, confidence: float) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    ci = stats.binomtest(hits, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def _probability(condition: str, label: str, hits: int, n: int, confidence: float) -> Probability:
    low, high = _wilson(hits, n, confidence)
    return Probability(condition, label, hits, n, hits / n if n else math.nan, low, high)


def _newcombe(
    condition: str,
    labels: tuple[str, str],
    ya: np.ndarray,
    yb: np.ndarray,
    n_a: int,
    n_b: int,
    table: tuple[int, int, int, int] | None,
    confidence: float,
) -> ProbabilityDifference:
    """P_B − P_A with Newcombe's hybrid score interval; `table` = (both, A only, B only,
    neither) for paired runs, None for independent samples (correlation 0)."""
    ha, hb = int(ya.sum()), int(yb.sum())
    pa_, pb_ = (ha / n_a if n_a else math.nan), (hb / n_b if n_b else math.nan)
    la, ua = _wilson(ha, n_a, confidence)
    lb, ub = _wilson(hb, n_b, confidence)
    phi = 0.0
    if table is not None:
        n11, n10, n01, n00 = table
        denominator = math.sqrt(float((n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00)))
        phi = (n11 * n00 - n10 * n01) / denominator if denominator else 0.0
    diff = pb_ - pa_
    down = math.sqrt(
        max(0.0, (pb_ - lb) ** 2 - 2 * phi * (pb_ - lb) * (ua - pa_) + (ua - pa_) ** 2)
    )
    up = math.sqrt(max(0.0, (ub - pb_) ** 2 - 2 * phi * (ub - pb_) * (pa_ - la) + (pa_ - la) ** 2))
    return ProbabilityDifference(
        condition,
        labels[0],
        labels[1],
        table is not None,
        n_a,
        n_b,
        pa_,
        pb_,
        diff,
        max(-1.0, diff - down),
        min(1.0, diff + up),
    )


def posterior_of(res: Results) -> dict[str, Any] | None:
    """The posterior a study drew parameters from (its manifest's `posterior`), or None."""
    info = res.manifest.get("posterior")
    return info if isinstance(info, dict) else None


def posterior_mismatch(a: Results, b: Results, labels: tuple[str, str] | None = None) -> str | None:
    """Why `a` and `b` did not draw from the same posterior, or None if they did (or both
    drew from their priors)."""
    name_a, name_b = labels or (a.name, b.name)
    pa_, pb_ = posterior_of(a), posterior_of(b)
    if pa_ is None and pb_ is None:
        return None
    if pa_ is None or pb_ is None:
        one = name_a if pa_ is not None else name_b
        sha = str((pa_ or pb_ or {}).get("sha256", ""))[:12]
        return f"only {one} drew parameters from a posterior ({sha}…), the other from priors"
    if pa_.get("sha256") != pb_.get("sha256"):
        return (
            f"drawn from different posteriors ({str(pa_.get('sha256'))[:12]}… vs "
            f"{str(pb_.get('sha256'))[:12]}…)"
        )
    return None


def pairing(a: Results, b: Results, labels: tuple[str, str] | None = None) -> Pairing:
    """Whether run i of `b` is paired with run i of `a`: same seed, sampler, run count and
    posterior (or both on their priors)."""
    name_a, name_b = labels or (a.name, b.name)
    why = []
    if a.seed != b.seed:
        why.append(f"seeds differ ({a.seed} vs {b.seed})")
    if a.sampler != b.sampler:
        why.append(f"samplers differ ({a.sampler} vs {b.sampler})")
    if (mismatch := posterior_mismatch(a, b, (name_a, name_b))) is not None:
        why.append(mismatch)
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
    shared = posterior_of(a)
    on = f", posterior {str(shared.get('sha256'))[:12]}…" if shared is not None else ""
    return Pairing(
        True,
        f"{name_a} vs {name_b}: paired run by run (same seed {a.seed}, sampler {a.sampler}, "
        f"{a.n_runs:,} runs{on}: common random numbers{caveat})",
    )


def _sampled(res: Results) -> set[str]:
    return {name for name, spec in res.parameters.items() if spec.get("sampled")}


def _difference_of(
    job: tuple[np.ndarray, np.ndarray, bool, str, tuple[str, str], str],
    confidence: float,
    n_resamples: int,
) -> Difference:
    a, b, paired, outcome, labels, unit = job
    return difference(
        a,
        b,
        paired=paired,
        outcome=outcome,
        labels=labels,
        unit=unit,
        confidence=confidence,
        n_resamples=n_resamples,
    )


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
    if paired and len(a_own) and a.shape == b.shape and np.array_equal(a, b, equal_nan=True):
        # The same value in every run (a 2024 figure two scenarios share): the distances are
        # 0 and KS's p-value 1, as scipy would find after sorting both samples twice.
        ks_d, ks_p, wasserstein = 0.0, 1.0, 0.0
    elif len(a_own) and len(b_own):
        ks_d, ks_p, wasserstein = distances(a_own, b_own)
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
        (m_lo, md_lo), (m_hi, md_hi), used = _intervals(
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
        (m_lo, md_lo), (m_hi, md_hi), used = _intervals(
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


def distances(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """The two-sample KS statistic, its p-value and the Wasserstein distance of two non-empty
    finite samples: the numbers `stats.ks_2samp` and `stats.wasserstein_distance` give, from
    one sort of each sample and one merge of the two (each scipy function sorts both again;
    at 100,000 runs those sorts were most of a comparison's time). Both distances are
    functions of the two empirical CDFs at the pooled values, computed here as scipy does
    (the same searchsorted counts, the same sum); the KS p-value is scipy's: for samples
    small enough for its exact distribution `ks_2samp` itself, else Smirnov's asymptotic
    `stats.kstwo.sf` as `ks_2samp` takes it. tests/test_compare.py checks all three against
    scipy on random samples, ties included."""
    sa, sb = np.sort(a), np.sort(b)
    pooled = np.sort(np.concatenate([sa, sb]), kind="stable")  # two sorted runs: one merge
    gaps = np.searchsorted(sa, pooled, side="right") / len(sa)
    gaps -= np.searchsorted(sb, pooled, side="right") / len(sb)
    spans = np.abs(gaps[:-1])
    steps = np.diff(pooled)
    # scipy's np_vecdot: numpy's vecdot where there is one
    vecdot = getattr(np, "vecdot", None)
    wasserstein = float(vecdot(spans, steps) if vecdot else np.sum(spans * steps))
    if max(len(sa), len(sb)) <= KS_EXACT_UP_TO:
        ks = stats.ks_2samp(sa, sb)
        return float(ks.statistic), float(ks.pvalue), wasserstein
    below, above = float(np.clip(-gaps.min(), 0, 1)), float(gaps.max())
    d = below if below > above else above
    m, n = sorted((float(len(sa)), float(len(sb))), reverse=True)
    p = np.clip(stats.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1)
    return d, float(p), wasserstein


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


def _intervals(
    samples: tuple[np.ndarray, ...],
    statistic: Statistic,
    center: tuple[float, float],
    confidence: float,
    n_resamples: int,
) -> tuple[tuple[float, float], tuple[float, float], int]:
    """Intervals of (mean, median) — of one sample (paired differences) or of the shift
    between two — as (lows, highs, bootstrap resamples used: 0 for the large-sample ones)."""
    if min(len(s) for s in samples) < ASYMPTOTIC_FROM or all(np.ptp(s) == 0 for s in samples):
        return _bootstrap(samples, statistic, center, confidence, n_resamples)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    se_mean = math.sqrt(sum(mean_sd(s)[1] ** 2 / len(s) for s in samples))
    medians = [stats.quantile_test(s, p=0.5).confidence_interval(confidence) for s in samples]
    if len(samples) == 1:
        md_lo, md_hi = float(medians[0].low), float(medians[0].high)
    else:
        se_median = math.hypot(*((float(ci.high) - float(ci.low)) / (2 * z) for ci in medians))
        md_lo, md_hi = center[1] - z * se_median, center[1] + z * se_median
    return (center[0] - z * se_mean, md_lo), (center[0] + z * se_mean, md_hi), 0


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


def _plain_dict(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in d.items()}


def _plain(v: Any) -> Any:
    """A value JSON can hold: NaN and infinity become None."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
