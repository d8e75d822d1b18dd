"""sim.lever and `sim sweep`: values and ranges, common random numbers, the folder, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import sim
from sim import analyses
from sim.cli import cli
from sim.errors import ScenarioError
from sim.lever import parse_values, sweep
from tests.helpers import BAKERY, ROOT, scenario


def toy() -> sim.model.Model:
    """A lever `k`, an unrelated uncertain `other`, and a noisy flow, over 12 months."""
    return scenario(
        seed=3,
        runs=200,
        parameters={
            "k": {"dist": "uniform", "low": 1, "high": 3, "unit": "t/month"},
            "other": {"dist": "normal", "mean": 10, "sd": 2},
        },
        stocks={"src": {"unit": "t", "kind": "source"}, "bin": {"unit": "t"}},
        flows={
            "fill": {
                "from": "src",
                "to": "bin",
                "rate": "k",
                "noise": {"dist": "lognormal", "median": 1, "p95": 1.5},
            }
        },
        outcomes={
            "filled": {"of": "bin", "stat": "final"},
            "other_out": {"of": "other", "stat": "final"},
        },
    )


def test_lists_and_ranges_are_parsed():
    model = toy()
    assert parse_values(model, "k", "1, 2.5,4") == ([1.0, 2.5, 4.0], ["1", "2.5", "4"])
    assert parse_values(model, "k", "0:10:5")[0] == [0.0, 5.0, 10.0]  # STOP included
    assert parse_values(model, "k", "0:0.3:0.1")[0] == pytest.approx([0, 0.1, 0.2, 0.3])
    assert parse_values(model, "k", "1:2:5")[0] == [1.0]


def test_event_times_take_dates():
    model = sim.load(BAKERY)  # the strike happens `at: strike_month`
    values, labels = parse_values(model, "strike_month", "2024-07,2025-01")
    assert values == [6.0, 12.0] and labels == ["2024-07", "2025-01"]
    values, labels = parse_values(model, "strike_month", "2024-03:2025-03:6")
    assert values == [2.0, 8.0, 14.0] and labels == ["2024-03", "2024-09", "2025-03"]
    assert parse_values(model, "strike_month", "6.5")[1] == ["2024-07"]


@pytest.mark.parametrize(
    ("parameter", "text", "message"),
    [
        ("kk", "1,2", "has no parameter 'kk'; did you mean 'k'"),
        ("k", "", "no values given"),
        ("k", "1,x", "'x' is not a number"),
        ("k", "1,2,1", "1 is given twice"),
        ("k", "1:5", "START:STOP:STEP"),
        ("k", "1:5:0", "positive"),
        ("k", "5:1:1", "STOP is below START"),
        ("k", "0:1000:1", "at most 200"),
        ("k", "1,inf", "not a finite number"),
        ("k", "2027-06", "is not an event's time"),
    ],
)
def test_bad_values_are_one_clear_error(parameter, text, message):
    with pytest.raises(ScenarioError, match=message):
        parse_values(toy(), parameter, text)


def test_bad_dates_are_refused():
    with pytest.raises(ScenarioError, match="month 13"):
        parse_values(sim.load(BAKERY), "strike_month", "2024-13")


def test_common_random_numbers_across_values():
    res = sweep(toy(), "k", "1,2,4")
    assert res.runs == 200 and res.values == (1.0, 2.0, 4.0)
    other = res.outcome_values["other_out"]
    # Every other parameter draws the same values at every point ...
    assert np.array_equal(other[0], other[1]) and np.array_equal(other[0], other[2])
    # ... and so does the noise: the fill scales exactly with the lever, run by run.
    filled = res.outcome_values["filled"]
    assert np.allclose(filled[1], 2 * filled[0]) and np.allclose(filled[2], 4 * filled[0])
    curve = res.curve("filled")
    assert np.all(np.diff(curve["p50"]) > 0)
    assert np.allclose(curve["p50"], res.stats["filled"][:, 3])
    # The same study as `sim run` with the lever fixed: same seed, same runs.
    fixed = sim.run(
        sim.model.compile_scenario(
            toy().scenario.model_copy(
                update={"parameters": {**toy().scenario.parameters, "k": sim.schema.Fixed(value=2.0)}}
            )
        )
    )
    assert np.allclose(fixed.outcome("filled"), filled[1])


def test_tables_long_and_per_run():
    res = sweep(toy(), "k", [1, 2], runs=50, outcomes=["filled"])
    table = res.table()
    assert table.num_rows == 2 and table.column("outcome").to_pylist() == ["filled", "filled"]
    assert table.column("n").to_pylist() == [50, 50]
    runs = res.run_table()
    assert runs.num_rows == 100 and runs.column_names == ["value", "label", "run", "filled"]
    assert res.settings()["outside_prior"] == []
    assert sweep(toy(), "k", "0.5,2", runs=10).outside == ("0.5",)


def test_unknown_outcome_is_refused():
    with pytest.raises(ScenarioError, match="no outcome 'fill'"):
        sweep(toy(), "k", "1,2", outcomes=["fill"])


def test_shipped_model_outcomes_against_the_war_end_date():
    """The issue's done-criterion: DPRK's fx and fuel from Russia against the war's end."""
    model = sim.load(ROOT / "scenarios" / "war_ends.yaml")
    res = sweep(
        model,
        "war_end_month",
        "2026-01:2029-01:12",
        runs=300,
        outcomes=["fx_from_russia", "fuel_from_russia", "food_shortfall_months"],
    )
    assert res.dates and res.labels == ("2026-01", "2027-01", "2028-01", "2029-01")
    for name in ("fx_from_russia", "fuel_from_russia"):
        assert np.all(np.diff(res.curve(name)["p50"]) > 0), name


def test_cli_writes_a_folder_with_a_figure(tmp_path):
    out = tmp_path / "sw"
    r = CliRunner().invoke(
        cli,
        [
            "sweep",
            str(BAKERY),
            "--set",
            "strike_month=2024-07:2026-07:12",
            "--outcome",
            "bread_eaten",
            "-n",
            "100",
            "-o",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "bread_eaten" in r.output and "2025-07" in r.output
    saved = analyses.load(out)
    assert saved.kind == "sweep" and saved.png is not None
    assert saved.settings["labels"] == ["2024-07", "2025-07", "2026-07"]
    assert saved.tables["sweep_runs.parquet"].num_rows == 300
    r = CliRunner().invoke(
        cli, ["sweep", str(BAKERY), "--set", "price=400,500", "-n", "20", "-o", str(out), "--json"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["settings"]["values"] == [400.0, 500.0]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("strike_month", "expected PARAM=VALUES"),
        ("strike=1,2", "no parameter 'strike'"),
        ("price=2027-06", "not an event's time"),
    ],
)
def test_cli_bad_set_exits_2(tmp_path, setting, message):
    r = CliRunner().invoke(cli, ["sweep", str(BAKERY), "--set", setting, "-o", str(tmp_path / "x")])
    assert r.exit_code == 2 and message in r.output, r.output
