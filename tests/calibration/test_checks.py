"""Checks of the calibration beyond one synthetic case: simulation-based calibration
(Talts et al. 2018) on a small noisy model, and recovery of known parameters on a model with
a delay, rationing and an event."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

import sim
from sim.analysis.calibrate import calibrate, weighted_quantile
from sim.analysis.targets import compile_targets, study_model
from sim.scenario.observations import load_observations
from sim.study.design import Given
from sim.study.runner import run
from tests.calibration.models import NOISY, observations, write_yaml

REPS = 100  # SBC repetitions
SBC_SD = 1.0


def _simulate(
    model: sim.Model, targets: dict[str, Any], values: dict[str, np.ndarray], seed: int
) -> dict[str, np.ndarray]:
    """Each target's simulated value in runs at `values` (fresh noise keyed by `seed`)."""
    obs_path = Path(model.files[0]).parent / "truth.yaml"
    obs = load_observations(write_yaml(obs_path.parent, obs_path.name, observations(**targets)))
    compiled = compile_targets(model, obs)
    res = run(study_model(model, compiled), len(next(iter(values.values()))), 1,
              design=Given(values, seed))  # fmt: skip
    return {t.name: res.outcome(t.column) for t in compiled}


@pytest.mark.slow
def test_simulation_based_calibration_ranks_are_uniform(tmp_path: Path):
    """Draw θ* from the prior, simulate an observation at θ* (its noise and an observation
    error), calibrate, and take the posterior CDF at θ*: over repetitions, uniform if and only
    if the posterior is right on average (the noise integrated out included)."""
    model = sim.load(write_yaml(tmp_path, "noisy.yaml", NOISY))
    rng = np.random.default_rng(2018)
    truth = {
        "a": model.parameters["a"].ppf(rng.random(REPS)),
        "b": model.parameters["b"].ppf(rng.random(REPS)),
    }
    target = {"of": "s", "stat": "final", "value": 0.0, "sd": SBC_SD}
    simulated = _simulate(model, {"end": target}, truth, seed=77)["end"]
    y = simulated + SBC_SD * rng.standard_normal(REPS)
    ranks: dict[str, list[float]] = {"a": [], "b": []}
    for r in range(REPS):
        obs = load_observations(
            write_yaml(tmp_path, "obs.yaml", observations(end=target | {"value": float(y[r])}))
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cal = calibrate(model, obs, runs=5000, seed=r, particles=100)
        for name in ranks:
            ranks[name].append(float(np.sum(cal.weight[cal.values[name] < truth[name][r]])))
    for name, u in ranks.items():
        assert stats.kstest(u, "uniform").pvalue > 0.01, (name, sorted(u))
        counts = np.histogram(u, bins=5, range=(0, 1))[0]
        assert stats.chisquare(counts).pvalue > 0.01, (name, counts)


# A depot filled by production (noisy), emptied by shipments that take two months to arrive
# and are rationed when the depot runs short; at an uncertain month shipping is cut to half.
SUPPLY: dict[str, Any] = {
    "name": "supply",
    "start": "2024-01",
    "months": 12,
    "seed": 4,
    "parameters": {
        "output": {"dist": "uniform", "low": 50, "high": 150, "unit": "t/month", "source": "t"},
        "demand": {"dist": "uniform", "low": 40, "high": 160, "unit": "t/month", "source": "t"},
        "cut_month": {"dist": "uniform", "low": 2, "high": 10, "unit": "month", "source": "t"},
        "unseen": {"dist": "pert", "low": 0, "mode": 1, "high": 3, "source": "t"},
    },
    "state": {"open": 1},
    "stocks": {
        "factory": {"unit": "t", "kind": "source"},
        "depot": {"unit": "t", "initial": 50},
        "front": {"unit": "t", "kind": "sink"},
    },
    "flows": {
        "produce": {
            "from": "factory",
            "to": "depot",
            "rate": "output",
            "noise": {"dist": "lognormal", "median": 1, "p95": 1.1},
        },
        "ship": {"from": "depot", "to": "front", "rate": "demand * open", "delay": 2},
    },
    "events": {"cut": {"at": "cut_month", "set": {"open": 0.5}}},
    "outcomes": {"front_end": {"of": "front", "stat": "final"}},
}
TRUTH = {"output": 100.0, "demand": 130.0, "cut_month": 6.0, "unseen": 1.0}


def test_known_parameters_are_recovered_with_a_delay_rationing_and_an_event(tmp_path: Path):
    model = sim.load(write_yaml(tmp_path, "supply.yaml", SUPPLY))
    targets = {
        f"shipped_{t}": {"of": f"where(t == {t}, cum.ship, 0)", "stat": "max", "value": 0.0,
                         "sd": 10.0}
        for t in (2, 4, 6, 8, 11)
    } | {
        "depot_low": {"of": "depot < 1", "stat": "count", "value": 0.0, "sd": 0.5},
        "front_end": {"of": "front", "stat": "final", "value": 0.0, "sd": 10.0},
    }  # fmt: skip
    truth = {k: np.array([v]) for k, v in TRUTH.items()}
    simulated = _simulate(model, targets, truth, seed=5)
    # The observations are the truth run's values (its noise included, no observation error
    # added): the posterior must hold the truth, whatever the luck of an error draw.
    for name, spec in targets.items():
        spec["value"] = float(simulated[name][0])
    # The truth run is rationed (the depot can't ship all that is asked) and the cut happens.
    check = {
        "rationed": {"of": "flow.ship < demand * open - 1e-6", "stat": "count", "value": 0,
                     "sd": 1},
        "cut": {"of": "open < 1", "stat": "count", "value": 0, "sd": 1},
    }  # fmt: skip
    seen = _simulate(model, check, truth, seed=5)
    assert seen["rationed"][0] > 0 and seen["cut"][0] > 0
    obs = load_observations(write_yaml(tmp_path, "obs.yaml", observations(**targets)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = calibrate(model, obs, runs=40_000, seed=8)
    for name in ("output", "demand", "cut_month"):
        low, high = weighted_quantile(cal.values[name], cal.weight, (0.005, 0.995))
        assert low <= TRUTH[name] <= high, (name, low, high)
        assert cal.narrowed(name) > 0.5, (name, cal.narrowed(name))
    # What nothing observed reads keeps its prior's spread.
    assert abs(cal.narrowed("unseen")) < 0.2
    prior = cal.prior_quantiles("unseen")
    spread = prior["p95"] - prior["p05"]
    assert abs(cal.posterior_quantiles("unseen")["p50"] - prior["p50"]) < 0.1 * spread
