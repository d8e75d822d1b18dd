"""Calibration on an arrayed model: an observation reads a cell or a reduction (one number;
a whole array is refused, located), the posterior's columns are cells, and `sim run
--posterior` draws them cell by cell, checking each cell's prior.

Needs sim calibrate (sim.analysis.calibrate, sim.study.posterior): skipped without it."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import sim
from sim.errors import ScenarioError

calibrate_module = pytest.importorskip("sim.analysis.calibrate")
observations_module = pytest.importorskip("sim.scenario.observations")
posterior_module = pytest.importorskip("sim.study.posterior")

MU, SD = [10.0, 20.0], 2.0


def model_data(low: float = 10.0) -> dict[str, Any]:
    """s[a] and s[b] end at x[a] and x[b]: one month of a flow at rate x."""
    return {
        "name": "cells",
        "start": "2024-01",
        "months": 1,
        "dimensions": {"good": ["a", "b"]},
        "parameters": {
            "x": {
                "over": "good",
                "dist": "normal",
                "mean": [low, MU[1]],
                "sd": SD,
                "unit": "t/month",
                "source": "assumption: test",
            },
        },
        "stocks": {
            "shop": {"over": "good", "unit": "t", "kind": "source"},
            "s": {"over": "good", "unit": "t"},
        },
        "flows": {"buy": {"over": "good", "from": "shop", "to": "s", "rate": "x"}},
        "outcomes": {"s_end": {"of": "s", "stat": "final", "unit": "t"}},
    }


def write(tmp: Path, name: str, data: dict[str, Any]) -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def observe(tmp: Path, of: str, value: float = 12.0, sd: float = 1.0) -> Any:
    data = {
        "observations": {
            "seen": {
                "of": of,
                "stat": "final",
                "value": value,
                "sd": sd,
                "unit": "t",
                "source": "assumption: test",
            }
        }
    }
    return observations_module.load_observations(write(tmp, "obs.yaml", data))


def test_a_cell_is_calibrated_and_the_other_keeps_its_prior(tmp_path):
    model = sim.load(write(tmp_path, "cells.yaml", model_data()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = calibrate_module.calibrate(model, observe(tmp_path, "s[a]"), runs=20_000, seed=3)
    assert set(cal.values) == {"x[a]", "x[b]"}
    # Normal prior N(10, 2²), y = 12 ± 1: the posterior of x[a] is N(11.6, 0.894²).
    precision = 1 / SD**2 + 1
    mean, sd = (MU[0] / SD**2 + 12.0) / precision, precision**-0.5
    w = cal.weight
    got = float(np.sum(w * cal.values["x[a]"]))
    assert abs(got - mean) < 4 * sd / np.sqrt(cal.ess)
    other = float(np.sum(w * cal.values["x[b]"]))
    assert abs(other - MU[1]) < 4 * SD / np.sqrt(cal.ess)


def test_a_reduction_is_one_number_and_a_whole_array_is_refused(tmp_path):
    model = sim.load(write(tmp_path, "cells.yaml", model_data()))
    targets = calibrate_module.compile_targets(model, observe(tmp_path, "sum(s)"))
    assert targets[0].of == "sum(s)"
    with pytest.raises(ScenarioError, match=r"'s' is over \(good\), but an observation is one"):
        calibrate_module.compile_targets(model, observe(tmp_path, "s"))
    try:
        calibrate_module.compile_targets(model, observe(tmp_path, "s"))
    except ScenarioError as exc:
        place = exc.problems[0].place
        assert place is not None and place.line == 3  # the observation's `of:`


def test_run_posterior_draws_cells_and_checks_each_cells_prior(tmp_path):
    path = write(tmp_path, "cells.yaml", model_data())
    model = sim.load(path)
    obs = observe(tmp_path, "s[a]")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = calibrate_module.calibrate(model, obs, runs=2_000, seed=3)
    folder = tmp_path / "cal"
    calibrate_module.save(cal, folder, model, obs)
    post = posterior_module.read_posterior(folder)
    assert post.names == ("x[a]", "x[b]")
    res = sim.run(model, runs=50, seed=1, posterior=post)
    rows = res.runs.column("posterior_sample").to_numpy()
    for cell in post.names:
        assert np.array_equal(res.parameter(cell), post.values[cell][rows])
    other = sim.load(write(tmp_path, "other.yaml", model_data(low=11.0)))
    problems = posterior_module.match(post, other)
    assert [p.path for p in problems] == ["parameters.x[a]"]
    assert problems[0].place is not None  # at the arrayed parameter's entry
