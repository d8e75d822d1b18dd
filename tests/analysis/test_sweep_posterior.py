"""`sim sweep --posterior`: run i of every point takes the same posterior sample, a lever the
posterior holds is refused; `sim sensitivity --posterior` is refused with the reason."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import sim
from sim.analysis import saved
from sim.cli import cli
from sim.errors import ScenarioError
from sim.present.report_sections import section
from sim.study.posterior import read_posterior
from tests.helpers import BAKERY, bakery, calibration_folder


@pytest.fixture(scope="module")
def cal(tmp_path_factory):
    rng = np.random.default_rng(7)
    folder = tmp_path_factory.mktemp("s") / "cal"
    return calibration_folder(
        folder, bakery(), {"mill_output": rng.uniform(80, 130, 60)}, rng.gamma(1, size=60)
    )


def test_a_sweep_on_a_posterior_records_it(cal):
    res = sim.sweep(bakery(), "strike_month", "6,18,30", runs=200, seed=3, posterior=cal)
    assert res.posterior is not None and res.posterior["parameters"] == ["mill_output"]
    assert "strike_month" not in res.posterior["drawn_as_usual"]
    assert "J(i)" in res.settings()["common_random_numbers"]
    without = sim.sweep(bakery(), "strike_month", "6,18,30", runs=200, seed=3)
    assert not np.array_equal(
        res.outcome_values["bread_eaten"], without.outcome_values["bread_eaten"]
    )


def test_the_sweep_study_records_the_rows(cal, tmp_path):
    from sim.study.runner import Execution

    sim.sweep(
        bakery(),
        "strike_month",
        "6,30",
        runs=100,
        seed=2,
        posterior=cal,
        execution=Execution(out=tmp_path / "study"),
    )
    study = sim.Results.load(tmp_path / "study")
    rows = study.runs.column("posterior_sample").to_numpy().reshape(2, 100)
    assert np.array_equal(rows[0], rows[1])
    mill = study.parameter("mill_output").reshape(2, 100)
    assert np.array_equal(mill[0], mill[1])
    assert np.array_equal(mill[0], read_posterior(cal).values["mill_output"][rows[0]])


def test_a_lever_the_posterior_holds_is_refused(cal):
    with pytest.raises(ScenarioError, match=r"--set mill_output: the posterior in .* holds it"):
        sim.sweep(bakery(), "mill_output", "90,110", runs=50, posterior=cal)


def test_the_cli_sweep_saves_and_reports_the_posterior(cal, tmp_path):
    out = tmp_path / "sweep"
    r = CliRunner().invoke(
        cli,
        ["sweep", str(BAKERY), "--set", "strike_month=6,30", "-n", "100", "--posterior", str(cal)]
        + ["--out", str(out), "--outcome", "bread_eaten"],
    )
    assert r.exit_code == 0, r.output
    assert "1 parameter drawn from the posterior" in r.output
    html = section(saved.load(out), figure=False)
    assert "came from the posterior" in html and "mill_output" in html


def test_sensitivity_refuses_a_posterior_and_says_why(cal):
    r = CliRunner().invoke(
        cli, ["sensitivity", str(BAKERY), "--outcome", "bread_eaten", "--posterior", str(cal)]
    )
    assert r.exit_code == 2 and "a posterior is joint" in r.output
