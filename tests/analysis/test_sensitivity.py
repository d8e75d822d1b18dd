"""sim.analysis.sensitivity and `sim sensitivity`: Sobol' indices checked against Ishigami's analytic values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

import sim
from sim.analysis import saved as analyses
from sim.analysis.sensitivity import sensitivity
from sim.cli import cli
from sim.errors import ScenarioError
from tests.helpers import ROOT, scenario, write

A, B = 7.0, 0.1  # Ishigami's constants in their usual setting
PI = math.pi


def ishigami_indices() -> tuple[np.ndarray, np.ndarray]:
    """Analytic first-order and total indices of the Ishigami function, x_i ~ U(-pi, pi)."""
    v1 = 0.5 * (1 + B * PI**4 / 5) ** 2
    v2 = A**2 / 8
    v13 = B**2 * PI**8 * (1 / 18 - 1 / 50)
    var = v1 + v2 + v13
    return np.array([v1, v2, 0]) / var, np.array([v1 + v13, v2, v13]) / var


ISHIGAMI = {
    "name": "ishigami",
    "description": "The Ishigami test function as a one-month scenario with no stocks.",
    "start": "2024-01",
    "months": 1,
    "seed": 11,
    "parameters": {
        f"x{i}": {"dist": "uniform", "low": -PI, "high": PI, "source": "test"} for i in (1, 2, 3)
    },
    "outcomes": {
        "y": {"of": f"sin(x1) + {A} * sin(x2)**2 + {B} * x3**4 * sin(x1)", "stat": "final"}
    },
}


@pytest.fixture(scope="module")
def ishigami_file(tmp_path_factory: pytest.TempPathFactory):
    return write(tmp_path_factory.mktemp("ishigami"), "ishigami.yaml", ISHIGAMI)


def test_ishigami_indices_match_the_analytic_values(ishigami_file):
    s1, st = ishigami_indices()
    assert np.allclose(s1, [0.3139, 0.4424, 0.0], atol=1e-3)  # the values the literature quotes
    assert np.allclose(st, [0.5576, 0.4424, 0.2437], atol=1e-3)
    res = sensitivity(sim.load(ishigami_file), "y", runs=4096)
    assert res.parameters == ("x1", "x2", "x3") and res.evaluations == 4096 * 5
    assert res.replicates == 8
    assert np.allclose(res.first[0], s1, atol=0.03)
    assert np.allclose(res.total[0], st, atol=0.05)  # x1's total is the noisiest estimate
    # The intervals are real intervals near the truth: one of six 95% intervals may miss it
    # (here S1 of x1, by 0.002), so allow half a width more; coverage is the next test's.
    for est, low, high, truth in (
        (res.first, res.first_low, res.first_high, s1),
        (res.total, res.total_low, res.total_high, st),
    ):
        width = high[0] - low[0]
        assert np.all(low[0] < est[0]) and np.all(est[0] < high[0])
        assert np.all(low[0] - width / 2 <= truth) and np.all(truth <= high[0] + width / 2)
    assert np.all(res.total_high - res.total_low < 0.1)
    assert [ix.parameter for ix in res.ranked("y")] == ["x1", "x2", "x3"]


def test_intervals_cover_the_truth_at_their_level_and_are_not_too_wide(ishigami_file):
    """Replicated RQMC: over 40 seeds, the 95% intervals of S1 and ST of the three parameters
    cover the analytic values about 95% of the time, and are as wide as the seed-to-seed
    spread of the estimates says (a bootstrap over the points was 2-7 times too wide)."""
    model = sim.load(ishigami_file)
    truth = np.concatenate(ishigami_indices())
    est, low, high = [], [], []
    for seed in range(100, 140):
        res = sensitivity(model, "y", runs=256, seed=seed)
        est.append(np.concatenate([res.first[0], res.total[0]]))
        low.append(np.concatenate([res.first_low[0], res.total_low[0]]))
        high.append(np.concatenate([res.first_high[0], res.total_high[0]]))
    e, lo, hi = np.array(est), np.array(low), np.array(high)
    coverage = np.mean((lo <= truth) & (truth <= hi))
    assert coverage >= 0.85, coverage
    ratio = np.mean(hi - lo, axis=0) / (2 * 1.96 * np.std(e, axis=0, ddof=1))
    assert np.all((ratio > 0.5) & (ratio < 2)), ratio


def test_same_seed_same_indices_and_intervals(ishigami_file):
    model = sim.load(ishigami_file)
    a = sensitivity(model, "y", runs=256)
    b = sensitivity(model, "y", runs=256)
    c = sensitivity(model, "y", runs=256, seed=12)
    assert np.array_equal(a.first, b.first) and np.array_equal(a.total_low, b.total_low)
    assert not np.array_equal(a.first, c.first)


def test_additive_model_first_equals_total_and_noise_is_unexplained():
    # y = a + 2 b, a and b ~ U(0, 1): S_a = 1/5, S_b = 4/5, no interactions.
    model = scenario(
        months=1,
        parameters={
            "a": {"dist": "uniform", "low": 0, "high": 1},
            "b": {"dist": "uniform", "low": 0, "high": 1},
            "unused": {"dist": "normal", "mean": 0, "sd": 1},
        },
        outcomes={"y": {"of": "a + 2 * b", "stat": "final"}},
    )
    res = sensitivity(model, ["y"], runs=1024)
    assert np.allclose(res.first[0], [0.2, 0.8, 0.0], atol=0.02)
    assert np.allclose(res.total[0], [0.2, 0.8, 0.0], atol=0.02)
    # A noisy flow: its noise is variance no parameter explains.
    noisy = scenario(
        months=12,
        parameters={"rate": {"dist": "uniform", "low": 5, "high": 10}},
        stocks={"src": {"unit": "t", "kind": "source"}, "bin": {"unit": "t"}},
        flows={
            "fill": {
                "from": "src",
                "to": "bin",
                "rate": "rate",
                "noise": {"dist": "lognormal", "median": 1, "p95": 2.5},
            }
        },
        outcomes={"filled": {"of": "bin", "stat": "final"}},
    )
    res = sensitivity(noisy, "filled", runs=512)
    assert res.noisy_flows == ("fill",)
    assert 0.2 < res.explained("filled") < 0.95


def test_table_has_a_row_per_outcome_and_parameter(ishigami_file):
    res = sensitivity(sim.load(ishigami_file), ["y"], runs=64)
    table = res.table()
    assert table.num_rows == 3
    assert table.column("rank").to_pylist() == [1, 2, 3]
    assert set(table.column_names) >= {"parameter", "first", "first_low", "total_high"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outcomes": "why"}, "has no outcome 'why'"),
        ({"outcomes": "y", "runs": 1000}, "power of 2"),
        ({"outcomes": "y", "runs": 4}, "power of 2"),
        ({"outcomes": "y", "runs": 16}, "at least 32"),
        ({"outcomes": []}, "at least one --outcome"),
    ],
)
def test_bad_requests_are_scenario_errors(ishigami_file, kwargs, message):
    with pytest.raises(ScenarioError, match=message):
        sensitivity(sim.load(ishigami_file), **kwargs)


def test_an_outcome_without_a_value_in_some_runs_is_refused():
    model = scenario(
        months=12,
        parameters={"x": {"dist": "uniform", "low": 0, "high": 20}},
        outcomes={"when": {"of": "t > x", "stat": "first"}},
    )
    with pytest.raises(ScenarioError, match="no value in"):
        sensitivity(model, "when", runs=64)
    fixed = scenario(months=1, parameters={"x": 1}, outcomes={"y": {"of": "x", "stat": "final"}})
    with pytest.raises(ScenarioError, match="no uncertain parameters"):
        sensitivity(fixed, "y", runs=64)


def test_cli_writes_a_folder_and_prints_the_ranking(ishigami_file, tmp_path):
    out = tmp_path / "s"
    r = CliRunner().invoke(
        cli,
        ["sensitivity", str(ishigami_file), "--outcome", "y", "--runs", "512", "--out", str(out)],
    )
    assert r.exit_code == 0, r.output
    assert "x2" in r.output and "ST (total)" in r.output and "wrote" in r.output
    saved = analyses.load(out)
    assert saved.kind == "sensitivity" and saved.png is not None and saved.png[:4] == b"\x89PNG"
    assert saved.manifest["scenario"]["name"] == "ishigami"
    assert saved.settings["runs"] == 512 and saved.settings["evaluations"] == 512 * 5
    assert saved.table.column("parameter").to_pylist()[0] == "x1"
    r = CliRunner().invoke(
        cli,
        [
            "sensitivity",
            str(ishigami_file),
            "--outcome",
            "y",
            "-n",
            "64",
            "--out",
            str(out),
            "--json",
            "--force",  # another study (N = 64) replaces the first only when forced
        ],
    )
    data = json.loads(r.output)
    assert data["kind"] == "sensitivity" and len(data["indices"]) == 3


def test_cli_refuses_an_unknown_outcome_with_exit_2(ishigami_file, tmp_path):
    r = CliRunner().invoke(
        cli, ["sensitivity", str(ishigami_file), "--outcome", "yy", "--out", str(tmp_path / "s")]
    )
    assert r.exit_code == 2
    assert "has no outcome 'yy'" in r.output and "did you mean 'y'" in r.output
    assert not (tmp_path / "s").exists()


def test_cli_does_not_write_over_a_runs_folder(ishigami_file, tmp_path):
    run = tmp_path / "run"
    assert (
        CliRunner().invoke(cli, ["run", str(ishigami_file), "-n", "10", "-o", str(run)]).exit_code
        == 0
    )
    r = CliRunner().invoke(
        cli, ["sensitivity", str(ishigami_file), "--outcome", "y", "-n", "64", "-o", str(run)]
    )
    assert r.exit_code == 2 and "a run's results" in r.output


def test_shipped_model_names_the_drivers_of_fx_from_russia():
    """The issue's done-criterion: the dominant parameters of fx_from_russia, with CIs."""
    res = sensitivity(sim.load(ROOT / "scenarios" / "war_ends.yaml"), "fx_from_russia", runs=256)
    top = [ix.parameter for ix in res.ranked("fx_from_russia")[:3]]
    assert {"cash_share", "paid_share"} <= set(top), top
    first = res.ranked("fx_from_russia")[0]
    assert first.total_low < first.total < first.total_high
