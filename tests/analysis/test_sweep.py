"""sim.analysis.sweep and `sim sweep`: values and ranges, common random numbers, the folder, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import sim
from sim.analysis import saved as analyses
from sim.analysis.sweep import SUMMARY_COLUMNS, parse_values, sweep
from sim.cli import cli
from sim.errors import ScenarioError
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
                update={
                    "parameters": {
                        **toy().scenario.parameters,
                        "k": sim.scenario.schema.Fixed(value=2.0),
                    }
                }
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
        cli,
        ["sweep", str(BAKERY), "--set", "price=400,500", "-n", "20", "-o", str(out), "--json"]
        + ["--force"],  # another sweep replaces the first only when forced
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


# -- two levers ---------------------------------------------------------------------------


def toy_two() -> sim.model.Model:
    """Two levers `k` and `m` multiplying one noisy flow, and an unrelated uncertain `other`."""
    return scenario(
        seed=5,
        runs=40,
        sampler="lhs",
        parameters={
            "k": {"dist": "uniform", "low": 1, "high": 3, "unit": "t/month"},
            "m": {"dist": "uniform", "low": 0.5, "high": 2, "unit": "1"},
            "other": {"dist": "normal", "mean": 10, "sd": 2},
        },
        stocks={"src": {"unit": "t", "kind": "source"}, "bin": {"unit": "t"}},
        flows={
            "fill": {
                "from": "src",
                "to": "bin",
                "rate": "k * m",
                "noise": {"dist": "lognormal", "median": 1, "p95": 1.5},
            }
        },
        outcomes={
            "filled": {"of": "bin", "stat": "final", "unit": "t"},
            "other_out": {"of": "other", "stat": "final"},
        },
    )


def test_two_levers_make_a_grid():
    res = sweep(sim.load(BAKERY), "strike_month", "6,18,30", runs=20, by=("mill_output", "70,120"))
    assert res.by == "mill_output" and res.by_values == (70.0, 120.0)
    assert res.by_labels == ("70", "120") and not res.by_dates and res.by_unit == "t/month"
    assert res.labels == ("2024-07", "2025-07", "2026-07") and res.dates
    assert res.by_outside == ("70",) and res.outside == ()  # the prior draws 80 to 130
    assert res.stats["bread_eaten"].shape == (2, 3, 6)
    assert res.outcome_values["bread_eaten"].shape == (2, 3, 20)
    assert len(res.nonfinite) == 6
    # Its default folder is not the one-lever sweep's of the same first lever.
    assert analyses.default_folder(res).name == "bakery-sweep-strike_month-by-mill_output"
    # A curve per by-value, picked by label or value; the one-lever call needs `by` here.
    high = res.curve("bread_eaten", by="120")
    assert np.array_equal(high["p50"], res.stats["bread_eaten"][1, :, 3])
    assert np.array_equal(
        res.curve("bread_eaten", by=70)["mean"], res.stats["bread_eaten"][0, :, 0]
    )
    assert np.all(high["p50"] > res.curve("bread_eaten", by="70")["p50"])
    with pytest.raises(KeyError, match="give `by`"):
        res.curve("bread_eaten")
    with pytest.raises(KeyError, match="100 is not in this sweep"):
        res.curve("bread_eaten", by="100")
    # Tables: a row per outcome, by-value and value (by-value first), led by the by columns.
    table = res.table()
    assert table.column_names[:6] == ["outcome", "unit", "by", "by_label", "value", "label"]
    assert table.num_rows == 4 * 6
    first = table.slice(0, 6)
    assert first.column("outcome").to_pylist() == ["bread_eaten"] * 6
    assert first.column("by_label").to_pylist() == ["70"] * 3 + ["120"] * 3
    assert first.column("label").to_pylist() == list(res.labels) * 2
    assert first.column("p50").to_pylist() == res.stats["bread_eaten"][:, :, 3].reshape(-1).tolist()
    runs = res.run_table()
    assert runs.num_rows == 2 * 3 * 20
    assert runs.column_names[:5] == ["by", "by_label", "value", "label", "run"]
    assert (
        runs.column("bread_eaten").to_pylist()[20:40]
        == res.outcome_values["bread_eaten"][0, 1].tolist()
    )
    settings = res.settings()
    assert settings["parameter"] == "strike_month" and settings["by"] == "mill_output"
    assert settings["by_labels"] == ["70", "120"] and settings["by_outside_prior"] == ["70"]


def test_common_random_numbers_across_the_grid():
    model = toy_two()
    res = sweep(model, "k", "1,2,4", by=("m", "0.5,1,1.5,2"))
    assert res.runs == 40 and res.sampler == "lhs"
    # An outcome neither lever touches is the same, run by run, at every grid point ...
    other = res.outcome_values["other_out"]
    assert np.all(other == other[0, 0])
    # ... and so is the noise: the fill scales exactly with k·m, run by run.
    filled = res.outcome_values["filled"]
    scale = np.outer(res.by_values, res.values)[:, :, None]
    assert np.allclose(filled / scale, filled[0, 0] / scale[0, 0])
    # A grid point is the study with both levers fixed: same seed, sampler and runs.
    fixed = {"k": sim.scenario.schema.Fixed(value=2.0), "m": sim.scenario.schema.Fixed(value=1.5)}
    scenario_ = model.scenario.model_copy(
        update={"parameters": {**model.scenario.parameters, **fixed}}
    )
    assert np.allclose(
        sim.run(sim.model.compile_scenario(scenario_)).outcome("filled"), filled[2, 1]
    )
    # A by-value's curve is the one-lever sweep of the scenario with that value fixed.
    one = sweep(
        sim.model.compile_scenario(
            model.scenario.model_copy(
                update={"parameters": {**model.scenario.parameters, "m": fixed["m"]}}
            )
        ),
        "k",
        "1,2,4",
    )
    assert np.allclose(one.outcome_values["filled"], filled[2])


def test_one_lever_sweep_is_unchanged_by_the_second_lever():
    res = sweep(toy(), "k", "1,2", runs=10)
    assert res.by == "" and res.by_values == () and res.stats["filled"].shape == (2, 6)
    assert res.table().column_names == [
        "outcome",
        "unit",
        "value",
        "label",
        *SUMMARY_COLUMNS,
        "n",
        "empty",
        "nonfinite",
    ]
    assert res.run_table().column_names == ["value", "label", "run", "filled", "other_out"]
    assert not any(k.startswith("by") for k in res.settings())
    assert res.settings()["common_random_numbers"] == "same seed, sampler and runs at every value"
    with pytest.raises(KeyError, match="one curve per outcome"):
        res.curve("filled", by=1.0)


def test_cli_two_levers_write_a_folder(tmp_path):
    out = tmp_path / "grid"
    args = [
        "sweep",
        str(BAKERY),
        "--set",
        "strike_month=2024-07:2026-07:12",
        "--set",
        "mill_output=90,120",
    ]
    r = CliRunner().invoke(cli, [*args, "--outcome", "bread_eaten", "-n", "30", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "bread_eaten (t) against strike_month, by mill_output: median [p05, p95]" in r.output
    assert "mill_output = 90 t/month" in r.output and "mill_output = 120 t/month" in r.output
    assert "30 runs per grid point (3 values of strike_month × 2 of mill_output)" in r.output
    assert f"wrote {out}/" in r.output and "(180 runs)" in r.output
    saved = analyses.load(out)
    assert saved.kind == "sweep" and saved.png is not None
    assert saved.settings["by"] == "mill_output" and saved.settings["by_labels"] == ["90", "120"]
    assert saved.table.column("by_label").to_pylist() == ["90"] * 3 + ["120"] * 3
    assert saved.tables["sweep_runs.parquet"].num_rows == 180
    r = CliRunner().invoke(cli, [*args, "-n", "10", "-o", str(out), "--json", "--force"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)["rows"]
    assert len(rows) == 4 * 6 and rows[0]["by_label"] == "90" and rows[0]["label"] == "2024-07"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["price=400,500", "mill_output=90", "strike_month=6"], "--set is given 3 times"),
        (["price=400,500", "price=450"], "--set price is given twice"),
        (["strike_month=6:30:1", "mill_output=81:130:1"], "= 1250 grid points; at most 200"),
        (["price=400,500", "mill_output=2027-06"], "not an event's time"),
        (["price=400,500", "mill_output"], "expected PARAM=VALUES"),
    ],
)
def test_cli_bad_second_set_exits_2(tmp_path, settings, message):
    args = ["sweep", str(BAKERY), "-o", str(tmp_path / "x")]
    for setting in settings:
        args += ["--set", setting]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2 and message in r.output, r.output
    assert not (tmp_path / "x").exists()


def test_report_embeds_a_two_lever_sweep(tmp_path):
    out = tmp_path / "grid"
    r = CliRunner().invoke(
        cli,
        [
            "sweep",
            str(BAKERY),
            "--set",
            "price=400,500",
            "--set",
            "mill_output=90,120",
            "--outcome",
            "mean_till",
            "-n",
            "20",
            "-o",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    page = tmp_path / "r.html"
    r = CliRunner().invoke(cli, ["report", str(out), "--out", str(page)])
    assert r.exit_code == 0, r.output
    html = page.read_text()
    assert "Sweep: outcomes of bakery against price, by mill_output" in html
    assert "<th>mill_output</th><th>price</th><th>mean</th>" in html
    assert "<tr><td>120</td><td>500</td>" in html
    assert html.count("data:image/png;base64,") == 1
