"""What decides an outcome, read from the runs as they are: first-order indices from given data.

Sobol' indices (`sim.analysis.sensitivity`) need their own design, Saltelli's, whose inputs
are independent, each drawn from its prior. Runs drawn from a calibration posterior
(`sim run --posterior`) are not: the data correlate the parameters. This analysis needs no
design. It reads any results folder and, for each input X_i (every sampled parameter column
of runs.parquet, a cell of an arrayed parameter on its own), estimates

    η²_i = Var(E[Y | X_i]) / Var(Y),

the share of the outcome's variance that knowing X_i alone removes (Pearson's correlation
ratio; the first-order index when the inputs are independent). The estimator is the binning
one of Plischke, Borgonovo & Smith (2013, "Global sensitivity measures from given data",
EJOR 226(3)) and Li & Mahadevan (2016, RESS 153): sort the runs on X_i, cut them into M
equal-count bins at its quantiles, and take the variance of the bin means of Y. The bin
means carry sampling noise, which inflates that variance by (M − 1)/(N − M) times the
within-bin variance on average even when Y does not depend on X_i (the one-way analysis of
variance's expected between-group sum of squares under independence, whatever the group
sizes), so that is subtracted:

    η²_i = (SS_between − (M − 1)/(N − M) · SS_within) / SS_total.

The corrected estimate can come out slightly below 0: that means "nothing found". M is
`bins_for(N)` = round(N^(1/3)), at least 2 and at most 100 (Plischke et al. 2013 discuss the
N^(1/3) rate: enough runs per bin for its mean, enough bins to follow E[Y | X_i]); coarse
bins miss a little of a curved E[Y | X_i] (a straight line over a uniform input loses 1/M² of
its share). Runs tied on X_i stay in one bin, so a discrete input has at most one bin per
value.

What it is not: a variance decomposition. With dependent inputs, E[Y | X_i] also carries the
effect of every input correlated with X_i, so two correlated inputs both get the credit one
of them earns, and the shares need not sum to 1 (nor to less than 1). Read η²_i as "how much
knowing X_i tells about Y", not "how much of Y X_i causes". Spearman's rank correlation is
given beside it: its sign says the direction, and it misses an effect that is not monotone,
which η² does not.

Each index has a percentile bootstrap interval (`resamples` resamples of the runs with
replacement, the bins kept where the full sample put them; a fixed seed) and a noise floor:
the 95th percentile of the index over `permutations` random permutations of X_i against Y,
which is what the index of an input that does not matter looks like with this many runs and
bins. An index below its floor is indistinguishable from zero (a permutation test at the 5%
level). Runs drawn from one posterior sample share its parameters; they are resampled and
permuted as a group (`groups`), so repeats don't count as independent evidence.

With a `baseline` folder A, Y is the paired difference B − A of each run: the folders must be
paired run by run (the same seed, sampler, run count and posterior: `sim compare`'s
`pairing`), so run i is the same world in both. A parameter both share with the same values
is one input; one only a scenario samples, or samples differently, is taken from that
scenario's folder (labelled with its scenario when both have it).

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> x = rng.random((2, 4000))
>>> est = first_order(x, x[0] + 0.1 * rng.random(4000))
>>> round(float(est.index[0]), 2), bool(est.index[1] < est.floor[1])
(0.99, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from scipy import sparse, stats

from sim.analysis.cells import expand
from sim.analysis.compare import CONFIDENCE, pairing, posterior_of
from sim.engine.semantics import STATUS_OK
from sim.errors import ScenarioError, did_you_mean
from sim.study.results import Results

RESAMPLES = 500  # bootstrap resamples for the intervals
PERMUTATIONS = 100  # permutations for the noise floor
FLOOR_QUANTILE = 0.95
SEED = 20130  # the bootstrap's and permutations' seed: the analysis is a function of its input
MIN_RUNS = 20
MAX_BINS = 100
TOP = 15  # inputs listed and drawn per outcome by the CLI and the figure
_CHUNK = 50  # resamples (or permutations) per matrix product: bounds the memory


def bins_for(n: int) -> int:
    """M, the bins for n runs: round(n^(1/3)), at least 2, at most 100."""
    return int(min(MAX_BINS, max(2, round(n ** (1 / 3)))))


@dataclass(frozen=True)
class Estimates:
    """Per input (arrays of length d): η², its interval, its noise floor, Spearman's ρ, and
    the bins each input's runs were cut into."""

    index: np.ndarray
    low: np.ndarray
    high: np.ndarray
    floor: np.ndarray
    spearman: np.ndarray
    bins: np.ndarray


def first_order(
    x: np.ndarray,
    y: np.ndarray,
    bins: int | None = None,
    resamples: int = RESAMPLES,
    permutations: int = PERMUTATIONS,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
    groups: np.ndarray | None = None,
) -> Estimates:
    """η² of `y` (n,) on each row of `x` (d, n) from given data, with intervals and floors.

    `bins` defaults to `bins_for(n)`. The same inputs give the same bits: the resamples and
    permutations come from `seed`.

    `groups` (n,) labels runs that are not independent: runs drawn from the same posterior
    sample share every parameter the posterior holds. The bootstrap then resamples groups,
    and an input constant within groups is permuted between groups (an input that varies
    within them, between runs), so neither the interval nor the floor takes repeated runs of
    one sample for independent evidence."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    y = np.asarray(y, dtype=float)
    d, n = x.shape
    m = bins_for(n) if bins is None else bins
    if len(y) != n:
        raise ValueError(f"{len(y)} outcome values for {n} runs")
    if n < MIN_RUNS or not 2 <= m <= n // 2:
        raise ValueError(f"{n} runs cannot be cut into {m} bins of two runs or more")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("inputs and outcome must be finite")
    sd = float(np.std(y))
    if sd == 0.0 or d == 0:
        nan = np.full(d, math.nan)
        return Estimates(nan, nan, nan, nan, nan, np.zeros(d, dtype=int))
    z = (y - y.mean()) / sd  # η² is scale-free; centring keeps the sums of squares exact
    one_hot, starts, used = _partition(x, m)
    rng = np.random.default_rng(seed)
    index = _eta(one_hot, starts, np.ones((n, 1)), z)[:, 0]
    if groups is None:
        boot = np.concatenate(
            [_eta(one_hot, starts, _multiplicities(rng, n, k), z) for k in _chunks(resamples)],
            axis=1,
        )
        perm = np.concatenate(
            [
                _eta(
                    one_hot,
                    starts,
                    np.ones((n, k)),
                    np.stack([rng.permutation(z) for _ in range(k)], 1),
                )
                for k in _chunks(permutations)
            ],
            axis=1,
        )
    else:
        boot, perm = _grouped(x, z, m, one_hot, starts, groups, resamples, permutations, rng)
    tail = (1 - confidence) / 2
    # The resamples are drawn from the sample itself, whose η² is the uncorrected one: their
    # indices sit higher than the estimate by about the correction. The interval is their
    # percentile interval moved back by that shift (the bootstrap's estimate of bias).
    shift = boot.mean(axis=1) - index
    low, high = np.quantile(boot, [tail, 1 - tail], axis=1) - shift
    rho = np.asarray(stats.spearmanr(np.vstack([x, y]), axis=1).statistic, dtype=float)
    rho = rho[-1, :-1] if rho.ndim == 2 else np.array([float(rho)])
    return Estimates(
        index=index,
        low=low,
        high=high,
        floor=np.quantile(perm, FLOOR_QUANTILE, axis=1),
        spearman=rho,
        bins=used,
    )


def _grouped(
    x: np.ndarray,
    z: np.ndarray,
    m: int,
    one_hot: sparse.csc_matrix,
    starts: np.ndarray,
    groups: np.ndarray,
    resamples: int,
    permutations: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap indices (d, resamples) resampling whole groups, and permutation indices
    (d, permutations) moving an input constant within groups between groups (one that varies
    within them between runs): see `first_order`."""
    labels, first, group = np.unique(np.asarray(groups), return_index=True, return_inverse=True)
    g = len(labels)
    boot = np.concatenate(
        [_eta(one_hot, starts, _multiplicities(rng, g, k)[group], z) for k in _chunks(resamples)],
        axis=1,
    )
    # an input is constant within groups when every run has its group's first value
    constant = np.all(x == x[:, first][:, group], axis=1)
    d = x.shape[0]
    perm = np.empty((d, permutations))
    for k in range(permutations):
        moved = x[:, first][:, rng.permutation(g)][:, group]  # groups swap their values
        shuffled = x[:, rng.permutation(x.shape[1])]
        xp = np.where(constant[:, None], moved, shuffled)
        oh, st, _ = _partition(xp, m)
        perm[:, k] = _eta(oh, st, np.ones((x.shape[1], 1)), z)[:, 0]
    return boot, perm


def _partition(x: np.ndarray, m: int) -> tuple[sparse.csc_matrix, np.ndarray, np.ndarray]:
    """Each input's bins as one sparse one-hot matrix (all bins, input after input, × runs),
    the first column of each input's bins, and how many bins each has.

    A run's bin is floor(r·M/N) for the smallest rank r of its value, so runs tied on a value
    share a bin; bins left empty by ties are dropped."""
    d, n = x.shape
    columns = np.empty((d, n), dtype=np.int64)
    used = np.empty(d, dtype=np.int64)
    offset = 0
    starts = np.empty(d, dtype=np.int64)
    for i in range(d):
        rank = stats.rankdata(x[i], method="min").astype(np.int64) - 1
        raw = rank * m // n
        kept = np.cumsum(np.bincount(raw, minlength=m) > 0) - 1  # empty bins dropped
        label = kept[raw]
        starts[i], used[i] = offset, kept[-1] + 1
        columns[i] = offset + label
        offset += int(used[i])
    rows = np.tile(np.arange(n), d)
    # Bins × runs, stored by run (CSC): a product with the runs' weights (runs × k) then
    # reads the weights in order and adds each run's row into its d bins, which stay cached.
    one_hot = sparse.csc_matrix(
        (np.ones(d * n), (columns.ravel(), rows)), shape=(offset, n), dtype=float
    )
    return one_hot, starts, used


def _eta(
    one_hot: sparse.csc_matrix, starts: np.ndarray, w: np.ndarray, z: np.ndarray
) -> np.ndarray:
    """Bias-corrected η² (d, k) for k weightings `w` (n, k) of the runs (bootstrap
    multiplicities, or ones), of `z` (n,) or k columns of it (n, k: permutations)."""
    wz = w * (z[:, None] if z.ndim == 1 else z)
    wzz = wz * (z[:, None] if z.ndim == 1 else z)
    count = np.asarray(one_hot @ w)  # (bins, k)
    total = np.asarray(one_hot @ wz)
    n, big_n = w.sum(axis=0), w.shape[0]
    ss_total = wzz.sum(axis=0) - wz.sum(axis=0) ** 2 / n
    with np.errstate(invalid="ignore", divide="ignore"):
        per_bin = np.where(count > 0, total**2 / count, 0.0)
    between = np.add.reduceat(per_bin, starts, axis=0) - wz.sum(axis=0) ** 2 / n
    m = np.add.reduceat((count > 0).astype(float), starts, axis=0)
    within = ss_total - between
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((between - (m - 1) / (big_n - m) * within) / ss_total)


def _multiplicities(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """k bootstrap resamples of n runs as how often each run is drawn: (n, k)."""
    draws = rng.integers(0, n, size=(k, n)) + (np.arange(k) * n)[:, None]
    return np.bincount(draws.ravel(), minlength=k * n).reshape(k, n).T.astype(float)


def _chunks(total: int) -> list[int]:
    return [min(_CHUNK, total - start) for start in range(0, total, _CHUNK)]


# -- over results folders -----------------------------------------------------------------


@dataclass(frozen=True)
class Driver:
    """One input's first-order index for one outcome, with its interval and noise floor."""

    outcome: str
    input: str
    rank: int  # 1 = largest index
    index: float
    low: float
    high: float
    floor: float
    spearman: float
    bins: int
    source: str  # the folder's scenario it comes from ("" when both share it)

    @property
    def above_floor(self) -> bool:
        """Whether the index is told apart from zero: above its noise floor (a permutation
        test at the 5% level)."""
        return bool(self.index > self.floor)


@dataclass(frozen=True)
class Drivers:
    """First-order indices from given data of some outcomes (or their paired differences).

    Arrays are (outcomes, inputs), in the order of `outcomes` and `inputs`."""

    scenario: str
    outcomes: tuple[str, ...]
    inputs: tuple[str, ...]
    index: np.ndarray
    low: np.ndarray
    high: np.ndarray
    floor: np.ndarray
    spearman: np.ndarray
    bins: np.ndarray
    runs: int  # runs in the folder(s)
    used: tuple[int, ...]  # per outcome: runs with a finite value (in both, for a difference)
    mean: tuple[float, ...]
    sd: tuple[float, ...]
    resamples: int
    permutations: int
    confidence: float
    seed: int
    units: dict[str, str] = field(default_factory=dict)  # outcome -> unit
    distributions: dict[str, str] = field(default_factory=dict)  # input -> where it is from
    sources: dict[str, str] = field(default_factory=dict)  # input -> its scenario, if one only
    constant: tuple[str, ...] = ()  # sampled columns that take one value only: left out
    baseline: str = ""
    pairing: str = ""
    source: dict[str, Any] = field(default_factory=dict)  # the folders read
    posterior: dict[str, Any] | None = None

    kind = "drivers"

    def label(self, outcome: str) -> str:
        """What the indices explain: `outcome`, or its paired difference B − A."""
        if not self.baseline:
            return outcome
        return f"{outcome}({self.scenario}) − {outcome}({self.baseline})"

    @property
    def flat(self) -> tuple[str, ...]:
        """Outcomes that take one value in every run used: nothing decides them (NaN)."""
        return tuple(o for o, sd in zip(self.outcomes, self.sd, strict=True) if not sd > 0)

    def ranked(self, outcome: str) -> list[Driver]:
        """The inputs for `outcome`, largest index first (NaN last)."""
        k = self._row(outcome)
        key = np.where(np.isnan(self.index[k]), -np.inf, self.index[k])
        order = np.argsort(-key, kind="stable")
        return [
            Driver(
                outcome,
                self.inputs[i],
                rank + 1,
                float(self.index[k, i]),
                float(self.low[k, i]),
                float(self.high[k, i]),
                float(self.floor[k, i]),
                float(self.spearman[k, i]),
                int(self.bins[k, i]),
                self.sources.get(self.inputs[i], ""),
            )
            for rank, i in enumerate(order)
        ]

    def table(self) -> pa.Table:
        """A row per outcome and input, ranked within each outcome."""
        rows = [r for name in self.outcomes for r in self.ranked(name)]
        columns: dict[str, Any] = {
            key: [getattr(r, key) for r in rows] for key in Driver.__dataclass_fields__
        }
        columns["above_floor"] = [r.above_floor for r in rows]
        columns["distribution"] = [self.distributions.get(r.input, "") for r in rows]
        return pa.table(columns)

    def settings(self) -> dict[str, Any]:
        """What an analysis manifest records about how the indices were computed."""
        return {
            "outcomes": list(self.outcomes),
            "explained": {n: self.label(n) for n in self.outcomes},
            "inputs": list(self.inputs),
            "runs": self.runs,
            "used": dict(zip(self.outcomes, self.used, strict=True)),
            "estimator": "first-order index from given data, η² = Var(E[Y|X_i])/Var(Y): "
            "equal-count bins on X_i's quantiles, variance of the bin means, minus "
            "(M−1)/(N−M) × the within-bin variance (Plischke, Borgonovo & Smith 2013; "
            "Li & Mahadevan 2016)",
            "bins": "round(N^(1/3)), 2 to 100; runs tied on a value share a bin",
            "interval": f"percentile bootstrap over {self.resamples} resamples of the runs "
            "(bins fixed)",
            "noise_floor": f"{FLOOR_QUANTILE:.0%} quantile of the index over "
            f"{self.permutations} random permutations of the input",
            "confidence": self.confidence,
            "seed": self.seed,
            "caveat": "not a variance decomposition: dependent inputs share credit and the "
            "indices need not sum to 1",
            "outcome_mean": dict(zip(self.outcomes, self.mean, strict=True)),
            "outcome_sd": dict(zip(self.outcomes, self.sd, strict=True)),
            "units": dict(self.units),
            "constant": list(self.constant),
            "source": dict(self.source),
            **({"baseline": self.baseline, "pairing": self.pairing} if self.baseline else {}),
            **({"posterior": self.posterior} if self.posterior else {}),
        }

    def _row(self, outcome: str) -> int:
        if outcome not in self.outcomes:
            raise KeyError(f"no outcome '{outcome}' in this analysis")
        return self.outcomes.index(outcome)


def drivers(
    results: Results,
    outcomes: str | Sequence[str],
    baseline: Results | None = None,
    *,
    bins: int | None = None,
    resamples: int = RESAMPLES,
    permutations: int = PERMUTATIONS,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> Drivers:
    """First-order indices from given data of `outcomes` in `results` on every sampled
    parameter (per cell), or with `baseline` A of the paired difference results − A.

    Runs that went non-finite, or where an outcome has no value (a `first` that never
    happened), are left out of that outcome's indices; the count used is kept. Refused
    (`ScenarioError`): an unknown outcome, unpaired folders, too few runs.
    """
    asked = [outcomes] if isinstance(outcomes, str) else list(outcomes)
    names = tuple(expand(asked, list(results.outcomes)))  # an arrayed outcome: its cells
    b_label, a_label = _labels(results, baseline)
    _check_outcomes(names, results, baseline, b_label, a_label)
    problems = []
    if resamples < 10:
        problems.append(f"--resamples must be at least 10 (got {resamples})")
    if permutations < 10:
        problems.append(f"permutations must be at least 10 (got {permutations})")
    if not 0 < confidence < 1:
        problems.append(f"confidence must be between 0 and 1 (got {confidence})")
    if bins is not None and bins < 2:
        problems.append(f"--bins must be at least 2 (got {bins})")
    if problems:
        raise ScenarioError.one("; ".join(problems))
    paired_why = ""
    if baseline is not None:
        p = pairing(baseline, results, (a_label, b_label))
        if not p.paired:
            raise ScenarioError.one(
                f"--baseline {baseline.folder or a_label}: the paired difference needs run i to be the same world "
                f"in both folders, and they are not paired ({p.reason})",
                hint="run both scenarios with the same --seed, --sampler, --runs and --posterior",
            )
        paired_why = p.reason
    x, labels, sources, distributions, constant = _inputs(results, baseline, b_label, a_label)
    if not labels:
        raise ScenarioError.one(
            f"{b_label}: no sampled parameter varies across its runs; nothing to attribute to",
            hint="run a scenario with uncertain parameters",
        )
    ok = results.status == STATUS_OK
    if baseline is not None:
        ok &= baseline.status == STATUS_OK
    d = len(labels)
    shape = (len(names), d)
    out = {k: np.full(shape, math.nan) for k in ("index", "low", "high", "floor", "spearman")}
    used_bins = np.zeros(shape, dtype=int)
    used, means, sds = [], [], []
    for k, name in enumerate(names):
        y = results.outcome(name)
        if baseline is not None:
            y = y - baseline.outcome(name)
        keep = ok & np.isfinite(y)
        n = int(keep.sum())
        m = bins_for(n) if bins is None else bins
        if n < MIN_RUNS or m > n // 2:
            raise ScenarioError.one(
                f"outcome '{name}' has a finite value in {n:,} of {results.n_runs:,} runs"
                + (" (in both folders)" if baseline is not None else "")
                + f"; given-data indices need at least {max(MIN_RUNS, 2 * m)}",
                hint="run more runs, or choose an outcome defined in most runs",
            )
        group = _posterior_samples(results)
        est = first_order(
            x[:, keep],
            y[keep],
            m,
            resamples,
            permutations,
            confidence,
            seed,
            None if group is None else group[keep],
        )
        for key in out:
            out[key][k] = getattr(est, key)
        used_bins[k] = est.bins
        used.append(n)
        means.append(float(np.mean(y[keep])))
        sds.append(float(np.std(y[keep], ddof=1)))
    units = {n: str(results.outcomes[n].get("unit", "")) for n in names}
    source = {"b": _source(results)}
    if baseline is not None:
        source["a"] = _source(baseline)
    return Drivers(
        scenario=b_label,
        outcomes=names,
        inputs=tuple(labels),
        bins=used_bins,
        runs=results.n_runs,
        used=tuple(used),
        mean=tuple(means),
        sd=tuple(sds),
        resamples=resamples,
        permutations=permutations,
        confidence=confidence,
        seed=seed,
        units=units,
        distributions=distributions,
        sources=sources,
        constant=tuple(constant),
        baseline=a_label,
        pairing=paired_why,
        source=source,
        posterior=posterior_of(results),
        **out,
    )


def _posterior_samples(res: Results) -> np.ndarray | None:
    """Which posterior sample each run drew (runs.parquet's `posterior_sample`), or None for
    runs drawn from their priors: runs of one sample share its parameters."""
    if "posterior_sample" not in res.runs.column_names:
        return None
    return np.asarray(res.runs.column("posterior_sample").to_numpy(zero_copy_only=False))


def _labels(results: Results, baseline: Results | None) -> tuple[str, str]:
    """The two scenarios' names, told apart by their folders when they are the same."""
    b = results.name
    if baseline is None:
        return b, ""
    a = baseline.name
    if a == b:
        b = f"{b} [{results.folder.name}]" if results.folder else f"{b} #2"
        a = f"{a} [{baseline.folder.name}]" if baseline.folder else f"{a} #1"
        if a == b:
            b, a = f"{b} #2", f"{a} #1"
    return b, a


def _check_outcomes(
    names: Sequence[str],
    results: Results,
    baseline: Results | None,
    b_label: str,
    a_label: str,
) -> None:
    """Every outcome in every folder, with one unit."""
    for name in names:
        for label, res in ((b_label, results), (a_label, baseline)):
            if res is not None and name not in res.outcomes:
                hint = did_you_mean(name, list(res.outcomes))
                raise ScenarioError.one(
                    f"--outcome {name}: not an outcome of {label}"
                    + (f" ({res.folder})" if res.folder else ""),
                    hint=hint or "outcomes: " + ", ".join(list(res.outcomes)[:12]),
                )
        if baseline is not None:
            units = {str(r.outcomes[name].get("unit", "")) for r in (results, baseline)}
            if len(units) > 1:
                raise ScenarioError.one(
                    f"--outcome {name}: its units differ ({' vs '.join(sorted(units))}), so "
                    f"{b_label} − {a_label} is not a difference of like quantities"
                )


def _sampled(res: Results) -> list[str]:
    columns = set(res.runs.column_names)
    return [n for n, spec in res.parameters.items() if spec.get("sampled") and n in columns]


def _described(res: Results, name: str) -> str:
    info = posterior_of(res)
    if info is not None and name in info.get("parameters", []):
        return f"posterior ({info.get('folder')})"
    return str(res.parameters[name].get("distribution", ""))


def _inputs(
    results: Results, baseline: Results | None, b_label: str, a_label: str
) -> tuple[np.ndarray, list[str], dict[str, str], dict[str, str], list[str]]:
    """The inputs (d, runs), their labels, which scenario each comes from when not both, how
    each was drawn, and the sampled columns left out for taking one value only.

    Alone: every sampled parameter column. With a baseline: a parameter sampled in both with
    the same values is one input; sampled in one only, it is that folder's; sampled in both
    with different values, it is two inputs, `name (scenario)`."""
    columns: list[np.ndarray] = []
    labels: list[str] = []
    sources: dict[str, str] = {}
    described: dict[str, str] = {}
    b_names = _sampled(results)
    a_names = _sampled(baseline) if baseline is not None else []
    for name in dict.fromkeys([*b_names, *a_names]):
        here = name in b_names
        there = name in a_names
        xb = results.parameter(name) if here else None
        xa = baseline.parameter(name) if there and baseline is not None else None
        if xb is not None and xa is not None and not np.array_equal(xb, xa, equal_nan=True):
            assert baseline is not None
            found = [
                (f"{name} ({b_label})", xb, results, b_label),
                (f"{name} ({a_label})", xa, baseline, a_label),
            ]
        elif xb is not None:
            found = [(name, xb, results, b_label if baseline is not None and not there else "")]
        else:
            assert xa is not None and baseline is not None
            found = [(name, xa, baseline, a_label)]
        for label, values, res, who in found:
            columns.append(values)
            labels.append(label)
            described[label] = _described(res, name)
            if who:
                sources[label] = who
    keep = [i for i, c in enumerate(columns) if np.unique(c[np.isfinite(c)]).size > 1]
    constant = [labels[i] for i in range(len(labels)) if i not in keep]
    x = np.stack([columns[i] for i in keep]) if keep else np.empty((0, results.n_runs))
    labels = [labels[i] for i in keep]
    return x, labels, sources, {k: described[k] for k in labels}, constant


def _source(res: Results) -> dict[str, Any]:
    return {
        "folder": str(res.folder) if res.folder else None,
        "scenario": res.name,
        "scenario_sha256": res.manifest.get("scenario_sha256"),
        "runs_sha256": res.manifest.get("sha256", {}).get("runs.parquet"),
        "runs": res.n_runs,
        "seed": res.seed,
        "sampler": res.sampler,
    }
