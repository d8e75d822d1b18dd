"""`--posterior DIR` at the command line: run, show, trace, compare and report say which
parameters came from which posterior; a mismatch or a foreign folder is exit 2, nothing
written."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest
from click.testing import CliRunner

from sim.cli import cli
from sim.cli.run import _resume_command
from tests.helpers import BAKERY, bakery, calibration_folder, write

OBS = {
    "eaten_2024": {
        "use": "validate",
        "observed": 1000.0,
        "sd": 100.0,
        "unit": "t",
        "source": "books",
        "of": "eaten",
        "stat": "final",
        "p05": 820.0,
        "p50": 990.0,
        "p95": 1170.0,
        "z": 0.12,
        "covered": True,
    }
}


@pytest.fixture(scope="module")
def cal(tmp_path_factory):
    rng = np.random.default_rng(3)
    folder = tmp_path_factory.mktemp("c") / "bakery-calibration"
    return calibration_folder(
        folder, bakery(), {"mill_output": rng.uniform(80, 130, 100)}, rng.uniform(size=100), OBS
    )


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_run_says_which_parameters_came_from_the_posterior(cal, tmp_path):
    r = invoke("run", BAKERY, "-n", "200", "--posterior", cal, "--out", tmp_path / "a", "-w", "1")
    assert r.exit_code == 0, r.output
    assert f"1 parameter drawn from the posterior in {cal}" in r.output
    assert (
        "mill_output" in r.output and "drawn from their priors as usual: strike_month" in r.output
    )
    r = invoke("run", BAKERY, "-n", "200", "--posterior", cal, "--out", tmp_path / "b", "--json")
    data = json.loads(r.output)
    assert data["posterior"]["parameters"] == ["mill_output"]
    assert data["posterior"]["observations"]["eaten_2024"]["covered"] is True


def test_a_mismatch_is_exit_2_naming_each_parameter_and_writes_nothing(tmp_path):
    rng = np.random.default_rng(0)
    values = {k: rng.uniform(1, 2, 10) for k in ("mill_output", "price", "yeast")}
    folder = calibration_folder(tmp_path / "cal", bakery(), values, np.ones(10))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["parameters"]["mill_output"]["prior"]["mode"] = 101.0
    (folder / "manifest.json").write_text(json.dumps(manifest))
    r = invoke("run", BAKERY, "-n", "20", "--posterior", folder, "--out", tmp_path / "res")
    assert r.exit_code == 2, r.output
    assert "bakery.yaml:10:" in r.output and "parameters.mill_output: its prior here" in r.output
    assert "parameters.price: fixed at 450" in r.output
    assert "holds parameter 'yeast'" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "res").exists()


@pytest.mark.parametrize("what", ["results folder", "edited parquet", "missing"])
def test_a_folder_that_is_not_an_intact_calibration_is_exit_2(cal, tmp_path, what):
    if what == "results folder":
        folder = tmp_path / "res"
        assert invoke("run", BAKERY, "-n", "20", "--out", folder).exit_code == 0
        says = "not a calibration folder"
    elif what == "edited parquet":
        folder = tmp_path / "copy"
        folder.mkdir()
        (folder / "manifest.json").write_bytes((cal / "manifest.json").read_bytes())
        (folder / "posterior.parquet").write_bytes((cal / "posterior.parquet").read_bytes()[:-9])
        says = "does not match posterior_sha256"
    else:
        folder, says = tmp_path / "nowhere", "no such calibration folder"
    r = invoke("run", BAKERY, "-n", "20", "--posterior", folder, "--out", tmp_path / "out")
    assert r.exit_code == 2 and says in r.output and str(folder) in r.output, r.output
    assert not (tmp_path / "out").exists()


def test_show_marks_the_parameters_drawn_from_the_posterior(cal):
    r = invoke("show", BAKERY, "--posterior", cal)
    assert r.exit_code == 0, r.output
    assert "drawn from" in r.output and f"with --posterior {cal}" in r.output
    rows = {line.split()[1]: line for line in r.output.splitlines() if line.startswith("│ ")}
    assert "posterior" in rows["mill_output"] and "prior" in rows["strike_month"]
    assert "fixed" in rows["price"]
    assert "eaten_2024" in r.output and "covered" in r.output


def test_trace_names_the_posterior_sample(cal):
    r = invoke("trace", BAKERY, "--run", "3", "--runs", "50", "--posterior", cal, "--json")
    assert r.exit_code == 0, r.output
    assert isinstance(json.loads(r.output)["posterior_sample"], int)


def test_compare_runs_scenario_files_on_the_posterior_paired(cal, tmp_path):
    hungry = write(
        tmp_path,
        "hungry.yaml",
        {"extends": str(BAKERY), "name": "hungry", "flows": {"eat": {"rate": 95}}},
    )
    r = invoke(
        "compare", BAKERY, hungry, "-n", "300", "--posterior", cal, "--outcome", "bread_eaten"
    )
    assert r.exit_code == 0, r.output
    assert "runs, paired" in r.output and "posterior" in r.output
    assert "bakery, hungry: 1 parameter drawn from the posterior" in r.output
    assert "Observations of the posterior" in r.output and "eaten_2024" in r.output


def test_compare_warns_when_one_study_drew_from_priors(cal, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert invoke("run", BAKERY, "-n", "200", "--posterior", cal, "--out", a).exit_code == 0
    assert invoke("run", BAKERY, "-n", "200", "--out", b).exit_code == 0
    with pytest.warns(UserWarning, match="the other from priors"):
        r = invoke("compare", a, b)
    assert r.exit_code == 0, r.output
    assert "unpaired, only bakery" in r.output and "drew parameters from a posterior" in r.output


def test_report_has_the_posterior_section(cal, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        assert (
            invoke("run", BAKERY, "-n", "200", "--posterior", cal, "--out", folder).exit_code == 0
        )
    r = invoke("report", a, b, "--out", tmp_path / "r.html")
    assert r.exit_code == 0, r.output
    page = (tmp_path / "r.html").read_text()
    assert "Parameters from a posterior" in page and "eaten_2024" in page


def test_the_resume_command_keeps_the_posterior(cal, tmp_path):
    params = {
        "runs": 100,
        "seed": 1,
        "sampler": None,
        "engine": "kernel",
        "block_size": 10,
        "keep_paths": 0,
        "precision": {},
        "workers": None,
        "executor": "processes",
        "scheduler": None,
        "max_memory": None,
        "posterior": cal,
    }
    args = shlex.split(_resume_command(BAKERY, bakery(), tmp_path / "x", params))
    assert args[args.index("--posterior") + 1] == str(cal)
