"""`sim sensitivity B --baseline A`: Sobol' indices of the paired difference X(B) − X(A)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import sim
from sim.analysis import saved as analyses
from sim.analysis.sensitivity import sensitivity
from sim.cli import cli
from sim.errors import ScenarioError
from tests.helpers import write


def pair(extra: str = " + 3 * r") -> dict[str, Any]:
    """A year of a noisy flow at rate p into a bin; y = bin + q, plus `extra` (in B)."""
    return {
        "name": "b",
        "start": "2024-01",
        "months": 12,
        "seed": 5,
        "parameters": {
            name: {"dist": "uniform", "low": 1, "high": 2, "source": "test"}
            for name in ("p", "q", "r")
        },
        "stocks": {"src": {"unit": "t", "kind": "source"}, "bin": {"unit": "t"}},
        "flows": {
            "fill": {
                "from": "src",
                "to": "bin",
                "rate": "p",
                "noise": {"dist": "lognormal", "median": 1, "p95": 2},
            }
        },
        "outcomes": {"y": {"of": f"bin + q{extra}", "stat": "final", "unit": "t"}},
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("pair")
    a = pair("")
    a["name"] = "a"
    return write(tmp, "b.yaml", pair()), write(tmp, "a.yaml", a)


def test_the_difference_is_driven_by_the_one_parameter_it_depends_on(files):
    b, a = sim.load(files[0]), sim.load(files[1])
    diff = sensitivity(b, "y", runs=1024, baseline=a)
    level = sensitivity(b, "y", runs=256)
    assert diff.parameters == ("p", "q", "r") and diff.baseline == "a"
    assert diff.label("y") == "y(b) − y(a)" and diff.noisy_flows == ("fill",)
    # B − A = 3 r exactly: the shared noise and the shared p and q cancel run by run.
    # p and q never move it (their indices are 0 to rounding); r is all of it, to the
    # estimator's precision (its ratio of two variance estimates is 1 only on average).
    assert np.allclose(diff.total[0][:2], 0, atol=1e-9)
    assert np.allclose(diff.first[0][:2], 0, atol=1e-9)
    assert diff.total[0][2] == pytest.approx(1, abs=0.02)
    assert diff.total_low[0][2] <= 1 <= diff.total_high[0][2]
    assert diff.mean[0] == pytest.approx(4.5, abs=0.05)
    # The level of B is mostly the flow and its noise, and r only a small share of it.
    assert level.total[0][0] > 0.5 and level.total[0][2] < 0.2
    settings = diff.settings()
    assert settings["baseline"]["name"] == "a" and settings["baseline"]["files"] == [str(files[1])]
    assert len(settings["baseline"]["sha256"]) == 64 and settings["explained"]["y"] == "y(b) − y(a)"


def test_the_ratio_is_relative_and_refuses_a_baseline_that_is_not_positive(files, tmp_path):
    b, a = sim.load(files[0]), sim.load(files[1])
    rel = sensitivity(b, "y", runs=64, baseline=a, ratio=True)
    assert rel.label("y") == "y(b) / y(a) − 1" and rel.units["y"] == "ratio" and rel.mean[0] > 0
    negative = pair(" - 100")
    negative["name"] = "a"
    a_neg = sim.load(write(tmp_path, "neg.yaml", negative))
    with pytest.raises(ScenarioError, match="not positive in 160 of 160 runs"):
        sensitivity(sim.load(files[0]), "y", runs=32, baseline=a_neg, ratio=True)
    with pytest.raises(ScenarioError, match="needs a --baseline"):
        sensitivity(b, "y", runs=32, ratio=True)


def test_mismatched_parameters_are_named_with_the_file_that_lacks_them(files, tmp_path):
    a = pair("")
    a["name"] = "a"
    a["parameters"]["q"] = {"dist": "uniform", "low": 1, "high": 3, "source": "test"}
    del a["parameters"]["r"]
    a["parameters"]["s"] = {"dist": "uniform", "low": 0, "high": 1, "source": "test"}
    bad = write(tmp_path, "bad.yaml", a)
    with pytest.raises(ScenarioError) as err:
        sensitivity(sim.load(files[0]), "y", runs=32, baseline=sim.load(bad))
    text = str(err.value)
    assert "parameter 'q' is uniform" in text and str(bad) in text
    assert f"parameter 'r' (uniform(1, 2)) of {files[0]} is missing from {bad}" in text
    assert "parameter 's' is uncertain in" in text and "'p'" not in text
    r = CliRunner().invoke(
        cli,
        [
            "sensitivity",
            str(files[0]),
            "--baseline",
            str(bad),
            "--outcome",
            "y",
            "-n",
            "32",
            "--out",
            str(tmp_path / "s"),
        ],
    )
    assert r.exit_code == 2 and "'q'" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "s").exists()


def test_the_cli_writes_both_studies_and_the_report_embeds_them(files, tmp_path):
    out = {w: tmp_path / f"w{w}" for w in (1, 2)}
    for workers, folder in out.items():
        r = CliRunner().invoke(
            cli,
            [
                "sensitivity",
                str(files[0]),
                "--baseline",
                str(files[1]),
                "--outcome",
                "y",
                "-n",
                "64",
                "-w",
                str(workers),
                "--block-size",
                "100",
                "--out",
                str(folder),
            ],
        )
        assert r.exit_code == 0, r.output
    assert "y(b) − y(a)" in r.output and "ST (total)" in r.output
    saved = analyses.load(out[2])
    assert saved.settings["baseline"]["name"] == "a" and saved.png is not None
    for sub in ("study", "baseline_study"):
        one = sim.Results.load(out[1] / sub)
        two = sim.Results.load(out[2] / sub)
        assert one.runs.equals(two.runs) and one.n_runs == 64 * 5
    assert saved.settings["evaluations"] == 2 * 64 * 5
    assert sim.Results.load(out[1] / "baseline_study").manifest["scenario"]["name"] == "a"
    assert saved.table.equals(analyses.load(out[1]).table)
    page = tmp_path / "r.html"
    r = CliRunner().invoke(cli, ["report", str(out[1]), "--out", str(page)])
    assert r.exit_code == 0, r.output
    html = page.read_text()
    assert "y(b) − y(a)" in html and "paired difference" in html and "data:image/png" in html


def test_the_default_folder_names_both_scenarios(files):
    res = sensitivity(sim.load(files[0]), "y", runs=32, baseline=sim.load(files[1]))
    assert analyses.default_folder(res) == Path("results/b-vs-a-sensitivity-y")


def test_resamples_is_deprecated_and_ignored(files, tmp_path):
    r = CliRunner().invoke(
        cli,
        [
            "sensitivity",
            str(files[1]),
            "--outcome",
            "y",
            "-n",
            "32",
            "--resamples",
            "100",
            "--out",
            str(tmp_path / "s"),
        ],
    )
    assert r.exit_code == 0 and "--resamples is deprecated" in r.output
    with pytest.warns(DeprecationWarning, match="ignored"):
        sensitivity(sim.load(files[1]), "y", runs=32, resamples=100)


def test_the_cli_ratio_needs_a_baseline_and_runs_with_one(files, tmp_path):
    r = CliRunner().invoke(cli, ["sensitivity", str(files[0]), "--outcome", "y", "--ratio"])
    assert r.exit_code == 2 and "--ratio needs --baseline" in r.output
    r = CliRunner().invoke(
        cli,
        [
            "sensitivity",
            str(files[0]),
            "--baseline",
            str(files[1]),
            "--ratio",
            "--outcome",
            "y",
            "-n",
            "32",
            "--json",
            "--out",
            str(tmp_path / "s"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert '"ratio": true' in r.output and "y(b) / y(a) − 1" in r.output
