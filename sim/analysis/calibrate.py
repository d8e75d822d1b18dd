"""Calibration: the posterior of a scenario's uncertain parameters given observations.

The method is a sequential Monte Carlo sampler with adaptive likelihood tempering (Del Moral,
Doucet & Jasra 2006), run on the study runner. It works in the prior's standard-normal space:
each sampled parameter is θ_k = ppf_k(Φ(z_k)) with z ~ N(0, I), so the prior is N(0, I) in z
whatever the distributions (bounded, skewed or discrete). A particle is a parameter vector z
*and the noise path of the run made at it*: per-tick flow noise is part of a run, so the
target is the joint posterior over (θ, noise)

    π_φ(z, noise) ∝ N(z; 0, I) · p(noise) · Π_j N(y_j; f_j(θ(z), noise), sd_j)^φ,

whose θ-marginal at φ = 1 is the posterior with the noise integrated out. The sampler:

1. draws N particles from the prior (one run each);
2. chooses the next temperature φ by root finding (`scipy.optimize.brentq`) so the effective
   sample size of the incremental weights is `ess_fraction`·N, reweights, and resamples
   (systematic resampling) to N equally weighted particles;
3. moves every particle by Metropolis–Hastings steps targeting π_φ: a Gaussian random walk in
   z with covariance scale²·Cov(particles) (scale starting at 2.38/√d, adapted towards a 25%
   acceptance rate) and, with each proposal, a FRESH noise path (the proposal for the noise is
   its prior, which cancels in the ratio), accepted with probability
   min(1, N(z'; 0, I) L(z')^φ / N(z; 0, I) L(z)^φ). One step measures the acceptance rate a;
   then steps are repeated until a particle has moved at least once with probability 99%
   (R = ⌈log 0.01 / log(1 − a)⌉ steps in all, Drovandi & Pettitt 2011), at most `max_moves`;
4. repeats 2–3 until φ = 1. The last reweighting (to φ = 1) is not followed by resampling:
   the posterior is the N particles with their weights.

Every batch of N runs goes through `sim.study.runner.run` with a `Given` design (its
parameter values, and noise from a stream keyed by the batch), so it has workers, Dask,
guards and progress, and the same bits for any number of workers. All the sampler's own
randomness (resampling, proposals, acceptances) comes from one generator seeded by `seed`.

Budget: `runs` is the total number of simulations. N = clamp(runs // 100, 100, 4000); the
moves of each stage take what the budget has left. If the budget runs out before φ = 1,
the last step jumps to φ = 1 by reweighting alone (still a valid importance-sampling
estimate, with a smaller effective sample size) and says so in a warning.

Held-out observations (`use: validate`) are computed in every run but never enter a weight,
an acceptance or a temperature: the particles, and so posterior.parquet, don't depend on them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import platform
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from scipy import optimize, special

from sim.analysis.targets import Target, compile_targets, study_model
from sim.engine.semantics import STATUS_OK
from sim.errors import Problem, ResultsError, ScenarioError, did_you_mean
from sim.model import Model
from sim.scenario.observations import Observations
from sim.scenario.schema import SEED_LIMIT, Fixed
from sim.study import store
from sim.study.design import Given
from sim.study.manifest import read_json
from sim.study.posterior import KIND, POSTERIOR_FILE
from sim.study.provenance import scenario_sha256
from sim.study.runner import Execution, run

DEFAULT_RUNS = 200_000
MIN_PARTICLES = 100
MAX_PARTICLES = 4000
RUNS_PER_PARTICLE = 100  # N = runs // 100: a budget for ~99 move steps in all
ESS_FRACTION = 0.5
TARGET_ACCEPTANCE = 0.25
MOVE_MISS = 0.01  # stage moves: until a particle stayed put with at most this chance
MAX_MOVES = 10
CALIBRATE_KEY = 0xCA11  # keeps the sampler's streams apart from the runner's
LOW_ESS = 0.25  # a final effective sample size below this share of N is warned about
CONFLICT_SDS = 3.0  # prior-data conflict: observed beyond the prior runs' range ± this many sds
BOUND_SHARE = 0.05  # a posterior median within this prior probability of a bound piles onto it

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Calibration:
    """A posterior as weighted particles, with what made it and how well it fits.

    `values` holds each sampled parameter's value per particle, `simulated` each observation's
    simulated value per particle (the run's value, without observation error), `weight` the
    normalised weights.
    """

    scenario: str
    parameters: tuple[str, ...]
    targets: tuple[Target, ...]
    values: dict[str, np.ndarray]
    simulated: dict[str, np.ndarray]
    weight: np.ndarray
    seed: int
    runs: int  # simulations spent
    budget: int
    settings: dict[str, Any]
    stages: list[dict[str, Any]]
    priors: dict[str, Any]  # parameter -> its Distribution
    prior_simulated: dict[str, np.ndarray]  # observation -> values in the N prior runs
    warnings: list[str] = field(default_factory=list)

    kind = KIND

    @property
    def n(self) -> int:
        return len(self.weight)

    @property
    def ess(self) -> float:
        """Kish's effective sample size of the final weights."""
        return float(1.0 / np.sum(self.weight**2))

    @property
    def unique(self) -> int:
        """Distinct particles (resampling duplicates some; moves make them distinct again)."""
        rows = np.stack([self.values[k] for k in self.parameters], axis=1)
        return int(np.unique(rows, axis=0).shape[0])

    def table(self) -> pa.Table:
        """posterior.parquet: sample, the parameters, weight, the observations (the contract)."""
        columns: dict[str, Any] = {"sample": pa.array(np.arange(self.n, dtype=np.int64))}
        for name in self.parameters:
            columns[name] = pa.array(self.values[name].astype(np.float64))
        columns["weight"] = pa.array(self.weight.astype(np.float64))
        for t in self.targets:
            columns[t.name] = pa.array(self.simulated[t.name].astype(np.float64))
        return pa.table(columns)

    def prior_quantiles(self, name: str) -> dict[str, float]:
        q = self.priors[name].ppf(np.array([0.05, 0.5, 0.95]))
        return {"p05": float(q[0]), "p50": float(q[1]), "p95": float(q[2])}

    def posterior_quantiles(self, name: str) -> dict[str, float]:
        q = weighted_quantile(self.values[name], self.weight, (0.05, 0.5, 0.95))
        return {"p05": q[0], "p50": q[1], "p95": q[2]}

    def narrowed(self, name: str) -> float:
        """How much the 90% interval narrowed, as a share of the prior's (negative: widened)."""
        pr, po = self.prior_quantiles(name), self.posterior_quantiles(name)
        width = pr["p95"] - pr["p05"]
        return float(1.0 - (po["p95"] - po["p05"]) / width) if width > 0 else 0.0

    def fit(self, t: Target) -> dict[str, Any]:
        """The posterior predictive of one observation (simulated value plus observation
        error): p05/p50/p95 of the mixture Σ w_i N(y_i, sd²), z and, held out, coverage."""
        y = self.simulated[t.name]
        ok = np.isfinite(y)
        w = self.weight[ok] / self.weight[ok].sum() if ok.any() else self.weight[ok]
        out: dict[str, Any] = {
            "use": t.use,
            "observed": t.observed,
            "sd": t.sd,
            "unit": t.unit,
            "source": t.source,
            "of": t.of,
            "stat": t.stat,
        }
        if not ok.any():
            return (
                out
                | {"p05": None, "p50": None, "p95": None, "z": None}
                | ({"covered": False} if t.use == "validate" else {})
            )
        q = predictive_quantiles(y[ok], w, t.sd, (0.05, 0.5, 0.95))
        mean = float(np.sum(w * y[ok]))
        sd = math.sqrt(float(np.sum(w * (y[ok] - mean) ** 2)) + t.sd**2)
        out |= {"p05": q[0], "p50": q[1], "p95": q[2], "z": (t.observed - mean) / sd}
        if ok.sum() < len(y):
            out["missing_share"] = float(self.weight[~ok].sum())
        if t.use == "validate":
            out["covered"] = bool(q[0] <= t.observed <= q[2])
        return out

    def summary(self) -> dict[str, Any]:
        """The manifest's parameter and observation sections (the contract's fields)."""
        return {
            "parameters": {
                name: {
                    "prior": self.priors[name].model_dump(
                        mode="json", exclude={"unit", "source", "description"}
                    ),
                    "prior_quantiles": self.prior_quantiles(name),
                    "posterior_quantiles": self.posterior_quantiles(name),
                    "narrowed": self.narrowed(name),
                    "unit": self.priors[name].unit,
                }
                for name in self.parameters
            },
            "observations": {t.name: self.fit(t) for t in self.targets},
        }


def weighted_quantile(x: np.ndarray, w: np.ndarray, q: tuple[float, ...]) -> list[float]:
    """Quantiles of the weighted sample (the inverse of its empirical CDF)."""
    return [float(v) for v in np.quantile(x, q, weights=w, method="inverted_cdf")]


def predictive_quantiles(
    y: np.ndarray, w: np.ndarray, sd: float, q: tuple[float, ...]
) -> list[float]:
    """Quantiles of the mixture Σ w_i N(y_i, sd²), exactly (root finding on its CDF)."""
    low, high = float(y.min()) - 10 * sd, float(y.max()) + 10 * sd
    out = []
    for level in q:

        def cdf(x: float, level: float = level) -> float:
            return float(np.sum(w * special.ndtr((x - y) / sd))) - level

        out.append(float(optimize.brentq(cdf, low, high, xtol=1e-12 * max(1.0, abs(high)))))
    return out


def particles_for(runs: int) -> int:
    """The number of particles for a budget of `runs` simulations."""
    return max(MIN_PARTICLES, min(MAX_PARTICLES, runs // RUNS_PER_PARTICLE))


def calibrate(
    model: Model,
    observations: Observations,
    runs: int = DEFAULT_RUNS,
    seed: int | None = None,
    progress: Progress | None = None,
    *,
    execution: Execution | None = None,
    particles: int | None = None,
    keep_prior: Sequence[str] = (),
) -> Calibration:
    """The posterior of `model`'s sampled parameters given the `use: calibrate` observations.

    Parameters named in `keep_prior` (or in the observations file's `keep_prior:`; an
    arrayed parameter's name means all its cells) are not sampled by the calibration: every
    run draws them afresh from their priors, as it draws its noise, so they are integrated
    out and the posterior does not hold them (`sim run --posterior` then draws them as usual).
    That is for parameters no observation can inform (they act after the observed period),
    which a sampler in many dimensions would otherwise carry along with Monte Carlo error.

    `runs` is the simulation budget (N = `particles_for(runs)` particles unless `particles`
    says); `seed` defaults to the scenario's. Same model, observations, seed and runs give the
    same posterior, bit for bit, on any number of workers. Warnings (`warnings.warn`, also kept
    in `Calibration.warnings`) name targets no run can inform, prior-data conflicts, a small
    effective sample size and a posterior piled onto a prior bound.
    """
    targets = compile_targets(model, observations)
    seed = model.scenario.seed if seed is None else seed
    n = particles or particles_for(runs)
    problems = []
    if not 0 <= seed < SEED_LIMIT:
        problems.append(f"--seed must be from 0 to 2**63-1 (got {seed})")
    if n < 2:
        problems.append(f"at least 2 particles are needed (got {n})")
    if runs < 2 * n:
        problems.append(
            f"--runs {runs:,} is too small: the {n:,} particles need at least {2 * n:,} runs "
            f"(the prior's, and one move); the default is {DEFAULT_RUNS:,}"
        )
    kept = _kept(model, observations, keep_prior)
    sampled = tuple(c for c in model.sampled if c not in kept)
    if not sampled:
        problems.append(f"scenario '{model.name}' has no uncertain parameters to calibrate")
    if problems:
        raise ScenarioError.one("; ".join(problems))
    return _Sampler(model, targets, sampled, n, runs, seed, progress, execution, kept).run()


def _kept(model: Model, observations: Observations, extra: Sequence[str]) -> tuple[str, ...]:
    """The sampled parameters (cells) held at their priors: the observations file's
    `keep_prior:` and `extra`, each a parameter, a cell or an arrayed parameter's name.
    A name that is not an uncertain parameter of `model` is a located error."""
    sampled = tuple(model.sampled)
    problems = []
    kept: list[str] = []
    asked: list[tuple[str, tuple[str, int] | None]] = [
        (name, ("keep_prior", i)) for i, name in enumerate(observations.keep_prior)
    ]
    asked += [(name, None) for name in extra]
    for name, path in asked:
        cells = [c for c in sampled if c == name or c.startswith(name + "[")]
        if cells:
            kept += cells
            continue
        why = (
            f"'{name}' is fixed in scenario '{model.name}': only uncertain parameters can be kept at their prior"
            if name in model.parameters
            else f"'{name}' is not a parameter of scenario '{model.name}'"
        )
        place = observations.doc.place(path) if path is not None else None
        field = f"keep_prior[{path[1]}]" if path is not None else "--keep-prior"
        problems.append(Problem(why, place, field, did_you_mean(name, model.parameters) or ""))
    if problems:
        raise ScenarioError(problems)
    return tuple(dict.fromkeys(kept))


class _Sampler:
    """One calibration's state: the particles, their runs, and the budget spent."""

    def __init__(
        self,
        model: Model,
        targets: tuple[Target, ...],
        sampled: tuple[str, ...],
        n: int,
        budget: int,
        seed: int,
        progress: Progress | None,
        execution: Execution | None,
        kept: tuple[str, ...] = (),
    ):
        self.model = model
        self.kept = kept
        self.kept_specs = [model.parameters[k] for k in kept]
        self.study = study_model(model, targets)
        self.targets = targets
        self.fitted = [t for t in targets if t.use == "calibrate"]
        self.held = {f"outcomes.{t.column}" for t in targets if t.use == "validate"}
        self.sampled = sampled
        self.specs = [model.parameters[k] for k in sampled]
        self.n, self.budget, self.seed = n, budget, seed
        self.progress = progress
        ex = execution or Execution()
        # The study runs in memory: a calibration's folder is written by `save`, not by them.
        self.options = ex.options() | {"out": None, "resume": False, "force": False}
        self.rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(CALIBRATE_KEY,)))
        self.spent = 0
        self.batches = 0
        self.notes: list[str] = []

    # -- runs ----------------------------------------------------------------------------
    def simulate(self, z: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Run each row of z (fresh noise); the fitted targets' log-likelihood and every
        target's value."""
        theta = {
            name: np.asarray(spec.ppf(special.ndtr(z[:, k])), dtype=np.float64)
            for k, (name, spec) in enumerate(zip(self.sampled, self.specs, strict=True))
        }
        if self.kept:
            # held at their priors: drawn afresh for every run, as its noise path is
            fresh = np.random.default_rng(
                np.random.SeedSequence(self.seed, spawn_key=(CALIBRATE_KEY, 2, self.batches))
            )
            u = fresh.random((len(z), len(self.kept)))
            for k, (name, spec) in enumerate(zip(self.kept, self.kept_specs, strict=True)):
                theta[name] = np.asarray(spec.ppf(u[:, k]), dtype=np.float64)
        noise_seed = int(
            np.random.SeedSequence(
                self.seed, spawn_key=(CALIBRATE_KEY, 1, self.batches)
            ).generate_state(1, np.uint64)[0]
            % SEED_LIMIT
        )
        self.batches += 1
        done = self.spent

        def tick(k: int, _: int) -> None:
            if self.progress is not None:
                self.progress(done + k, self.budget)

        res = run(
            self.study,
            len(z),
            self.seed,
            None,
            progress=tick if self.progress else None,
            design=Given(theta, noise_seed),
            **self.options,
        )
        self.spent += len(z)
        y = {t.name: res.outcome(t.column) for t in self.targets}
        status = res.runs.column("status").to_numpy(zero_copy_only=False)
        culprit = res.runs.column("bad_name").to_numpy(zero_copy_only=False)
        # A run that went non-finite counts as impossible, unless only a held-out target did.
        ok = (status == STATUS_OK) | np.isin(culprit, list(self.held))
        ll = np.zeros(len(z))
        for t in self.fitted:
            ll -= 0.5 * ((y[t.name] - t.observed) / t.sd) ** 2
        ll[~(ok & np.isfinite(ll))] = -np.inf
        return ll, y

    # -- the sampler ---------------------------------------------------------------------
    def run(self) -> Calibration:
        n, d = self.n, len(self.sampled)
        z = self.rng.standard_normal((n, d))
        ll, y = self.simulate(z)
        prior_y = {k: v.copy() for k, v in y.items()}
        self.check_prior(ll, prior_y)
        phi = 0.0
        scale = 2.38 / math.sqrt(d)
        stages: list[dict[str, Any]] = []
        while True:
            step, forced = self.next_step(ll, phi)
            logw = np.where(np.isfinite(ll), step * np.where(np.isfinite(ll), ll, 0.0), -np.inf)
            w = np.exp(logw - special.logsumexp(logw))
            phi = 1.0 if phi + step >= 1.0 - 1e-12 else phi + step
            stage = {"phi": phi, "ess": float(1 / np.sum(w**2))}
            if phi >= 1.0:
                stages.append(stage | {"moves": 0, "acceptance": None})
                if forced:
                    self.warn(
                        f"the budget of {self.budget:,} runs ran out at temperature "
                        f"{stages[-2]['phi'] if len(stages) > 1 else 0:.3g}; the last step "
                        "to 1 is importance weighting alone; pass a larger --runs"
                    )
                break
            keep = self.resample(w)
            z, ll, y = z[keep], ll[keep], {k: v[keep] for k, v in y.items()}
            z, ll, y, moves, acceptance, scale = self.move(z, ll, y, phi, scale)
            stages.append(stage | {"moves": moves, "acceptance": acceptance})
        cal = Calibration(
            scenario=self.model.name,
            parameters=self.sampled,
            targets=self.targets,
            values={
                name: np.asarray(spec.ppf(special.ndtr(z[:, k])), dtype=np.float64)
                for k, (name, spec) in enumerate(zip(self.sampled, self.specs, strict=True))
            },
            simulated=y,
            weight=w,
            seed=self.seed,
            runs=self.spent,
            budget=self.budget,
            settings=self.method_settings(),
            stages=stages,
            priors=dict(zip(self.sampled, self.specs, strict=True)),
            prior_simulated=prior_y,
            warnings=self.notes,
        )
        self.check_posterior(cal, z)
        return cal

    def next_step(self, ll: np.ndarray, phi: float) -> tuple[float, bool]:
        """The temperature increment keeping the incremental weights' ESS at the target share
        of the particles that can be weighted at all; the rest of the way if the budget for
        another stage is gone (then True)."""
        finite = np.isfinite(ll)
        rest = 1.0 - phi
        if self.budget - self.spent < self.n:
            return rest, True
        llf = ll[finite] - ll[finite].max()
        want = ESS_FRACTION * finite.sum()

        def gap(step: float) -> float:
            lw = step * llf
            return float(math.exp(2 * special.logsumexp(lw) - special.logsumexp(2 * lw))) - want

        if gap(rest) >= 0:
            return rest, False
        return float(optimize.brentq(gap, 0.0, rest, xtol=1e-14, rtol=1e-12)), False

    def resample(self, w: np.ndarray) -> np.ndarray:
        """Systematic resampling: indexes of N particles, each chosen in proportion to w."""
        edges = np.cumsum(w)
        edges[-1] = 1.0
        u = (self.rng.random() + np.arange(self.n)) / self.n
        return np.searchsorted(edges, u, side="right")

    def move(
        self,
        z: np.ndarray,
        ll: np.ndarray,
        y: dict[str, np.ndarray],
        phi: float,
        scale: float,
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], int, float, float]:
        """Metropolis–Hastings random-walk steps at temperature phi, each with fresh noise."""
        n, d = z.shape
        cov = np.atleast_2d(np.cov(z, rowvar=False))
        cov += np.eye(d) * 1e-10 * max(float(np.trace(cov)) / d, 1e-12)
        root = np.linalg.cholesky(cov)
        accepted = 0
        steps = 0
        wanted = 1
        while steps < wanted and self.budget - self.spent >= n:
            proposal = z + scale * (self.rng.standard_normal((n, d)) @ root.T)
            ll_new, y_new = self.simulate(proposal)
            log_ratio = -0.5 * (np.sum(proposal**2, axis=1) - np.sum(z**2, axis=1))
            with np.errstate(invalid="ignore"):
                gain = phi * (ll_new - ll)
            gain = np.where(np.isneginf(ll_new), -np.inf, np.where(np.isneginf(ll), np.inf, gain))
            take = np.log(self.rng.random(n)) < log_ratio + gain
            z = np.where(take[:, None], proposal, z)
            ll = np.where(take, ll_new, ll)
            y = {k: np.where(take, y_new[k], v) for k, v in y.items()}
            accepted += int(take.sum())
            steps += 1
            if steps == 1:
                rate = max(accepted / n, 1e-3)
                wanted = (
                    MAX_MOVES
                    if rate >= 1
                    else min(MAX_MOVES, max(1, math.ceil(math.log(MOVE_MISS) / math.log1p(-rate))))
                )
        acceptance = accepted / (n * max(steps, 1))
        # Towards the acceptance rate that suits a random walk; bounded so one bad stage
        # can't shrink the steps to nothing.
        scale *= math.exp(min(1.0, max(-1.0, 2 * (acceptance - TARGET_ACCEPTANCE))))
        return z, ll, y, steps, acceptance, scale

    # -- diagnostics ---------------------------------------------------------------------
    def warn(self, message: str) -> None:
        self.notes.append(message)
        warnings.warn(message, stacklevel=4)

    def check_prior(self, ll: np.ndarray, y: dict[str, np.ndarray]) -> None:
        for t in self.targets:
            v = y[t.name][np.isfinite(y[t.name])]
            if v.size == 0:
                self.warn(
                    f"observation '{t.name}': no prior run gives it a value; it can't inform "
                    "anything"
                )
                continue
            if float(np.ptp(v)) <= 1e-12 * max(1.0, float(np.abs(v).max())):
                self.warn(
                    f"observation '{t.name}': '{t.of}' ({t.stat}) is {float(v[0]):g} in every "
                    "prior run; it can't inform anything"
                )
            if t.use == "calibrate" and not (
                v.min() - CONFLICT_SDS * t.sd <= t.observed <= v.max() + CONFLICT_SDS * t.sd
            ):
                self.warn(
                    f"prior-data conflict: observation '{t.name}' = {t.observed:g} is outside "
                    f"anything the prior produces ({float(v.min()):g} to {float(v.max()):g} in "
                    f"{v.size:,} prior runs, ± {CONFLICT_SDS:g} sd); the posterior will strain "
                    "towards it; check the observation, its sd, or the model"
                )
        if not np.isfinite(ll).any():
            raise ScenarioError.one(
                "no prior run gives every calibration target a finite value; nothing to weight",
                hint="check the observations' expressions with `sim run` and its status column",
            )

    def check_posterior(self, cal: Calibration, z: np.ndarray) -> None:
        if cal.ess < LOW_ESS * self.n:
            self.warn(
                f"effective sample size {cal.ess:.0f} of {self.n:,} particles is small: the "
                "posterior's quantiles are rough; pass a larger --runs"
            )
        for k, (name, spec) in enumerate(zip(self.sampled, self.specs, strict=True)):
            low, high = spec.support()
            u = float(weighted_quantile(special.ndtr(z[:, k]), cal.weight, (0.5,))[0])
            for side, bounded, near in (
                ("lower", math.isfinite(low), u < BOUND_SHARE),
                ("upper", math.isfinite(high), u > 1 - BOUND_SHARE),
            ):
                if bounded and near and not isinstance(spec, Fixed):
                    bound = low if side == "lower" else high
                    self.warn(
                        f"parameter '{name}': the posterior piles onto its prior's {side} bound "
                        f"({bound:g}; posterior median at the prior's "
                        f"{100 * u:.1f}th percentile); the data may want values the prior "
                        "rules out"
                    )
        for t in self.fitted:
            fit = cal.fit(t)
            if fit["z"] is not None and abs(fit["z"]) > CONFLICT_SDS:
                self.warn(
                    f"observation '{t.name}': the posterior can't reach it (z = "
                    f"{fit['z']:.1f}); the model, its priors or the observation disagree"
                )

    def method_settings(self) -> dict[str, Any]:
        return {
            "particles": self.n,
            "ess_fraction": ESS_FRACTION,
            "move": "Gaussian random walk in the prior's standard-normal space, covariance "
            "scale² × the particles' covariance, a fresh noise path per proposal",
            "target_acceptance": TARGET_ACCEPTANCE,
            "move_miss": MOVE_MISS,
            "max_moves": MAX_MOVES,
            "resampling": "systematic",
            "kept_at_prior": list(self.kept),
            "likelihood": "Gaussian, independent errors (observation sd)",
            "budget": self.budget,
        }


METHOD = "smc-tempering"  # Del Moral, Doucet & Jasra (2006), on the study runner


# -- the calibration folder (the contract shared with `sim run --posterior`) ----------------

FOLDER_FORMAT = 1


def default_folder(scenario: str) -> Path:
    """results/<scenario>-calibration."""
    return Path("results") / f"{scenario}-calibration"


def manifest(
    cal: Calibration,
    model: Model,
    observations: Observations,
    posterior_sha256: str,
    wall_seconds: float | None = None,
) -> dict[str, Any]:
    """manifest.json of a calibration folder."""
    return _finite(
        {
            "kind": Calibration.kind,
            "format": FOLDER_FORMAT,
            "complete": True,
            "scenario": {
                "name": model.name,
                "description": model.scenario.description or "",
                "sha256": scenario_sha256(model),
                "files": list(model.files),
            },
            "observations_file": {
                "path": str(observations.path),
                "sha256": store.sha256_file(observations.path),
            },
            "method": {"name": METHOD, "settings": cal.settings},
            "seed": cal.seed,
            "runs": cal.runs,
            "budget": cal.budget,
            "particles": cal.n,
            "ess": cal.ess,
            "unique_particles": cal.unique,
            "stages": cal.stages,
            "warnings": list(cal.warnings),
            **cal.summary(),
            "files": [POSTERIOR_FILE],
            "posterior_sha256": posterior_sha256,
            "versions": store.versions(),
            "machine": {"python": platform.python_version(), "platform": platform.platform()},
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "wall_seconds": None if wall_seconds is None else round(wall_seconds, 3),
        }
    )


def save(
    cal: Calibration,
    folder: str | Path,
    model: Model,
    observations: Observations,
    force: bool = False,
    wall_seconds: float | None = None,
) -> dict[str, Any]:
    """Write the calibration folder: posterior.parquet, then manifest.json (last, atomically).
    Returns the manifest."""
    folder = Path(folder)
    check_target(folder, model.name, force)
    folder.mkdir(parents=True, exist_ok=True)
    # The old manifest goes first: a folder half rewritten must not pass for complete.
    with contextlib.suppress(FileNotFoundError):
        (folder / store.MANIFEST).unlink()
    store.write_table(cal.table(), folder / POSTERIOR_FILE)
    data = manifest(
        cal, model, observations, store.sha256_file(folder / POSTERIOR_FILE), wall_seconds
    )
    store.write_json(data, folder / store.MANIFEST)
    return data


def check_target(folder: Path, scenario: str, force: bool) -> None:
    """Refuse to write over anything but a calibration of the same scenario, unless `force`."""
    if folder.exists() and not folder.is_dir():
        raise ResultsError(f"{folder}: exists and is not a folder")
    if force or not folder.is_dir():
        return
    contents = {p.name for p in folder.iterdir()} - {store.LOCK}
    if not contents:
        return
    path = folder / store.MANIFEST
    try:
        held = read_json(path, folder) if path.is_file() else None
    except ResultsError:
        held = None
    if not isinstance(held, dict) or held.get("kind") != Calibration.kind:
        what = "a run's or an analysis's results" if held else "files that are not a calibration"
        raise ResultsError(
            f"{folder} holds {what}; choose another --out or pass --force to write there"
        )
    other = held.get("scenario", {}).get("name") if isinstance(held.get("scenario"), dict) else None
    if other != scenario:
        raise ResultsError(
            f"{folder} holds a calibration of scenario '{other}', not '{scenario}'; choose "
            "another --out or pass --force to replace it"
        )


def _finite(data: Any) -> Any:
    """NaN and infinities as null: JSON has no word for them."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(v) for v in data]
    return data
