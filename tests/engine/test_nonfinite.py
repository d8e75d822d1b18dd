"""No non-finite value passes as a number: every NaN or infinite rate, variable, event time or
outcome marks its run non-finite with its culprit, in both engines, at the same tick."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from sim.cli import cli
from sim.engine import ENGINES
from sim.errors import ScenarioError
from sim.model import Model, load
from sim.study.runner import run
from tests.helpers import draws, scenario, write

# k is 0.5, 1.5 or 2.5 by run: each case goes non-finite in the runs where k > 1 only, so a
# study of them is a result (some runs non-finite), never a broken model.
BASE = {
    "parameters": {
        "k": {"dist": "choice", "values": [0.5, 1.5, 2.5], "unit": "1", "source": "test"}
    },
    "stocks": {"src": {"unit": "u", "kind": "source"}, "a": {"unit": "u", "initial": 10}},
    "flows": {"f": {"from": "src", "to": "a", "rate": 1}},
    "outcomes": {"end": {"of": "a", "stat": "final", "unit": "u"}},
}

CASES = {
    # a variable that feeds nothing: it used to pass unseen
    "variable": (
        {"variables": {"v": "where(k > 1 and t >= 3, log(0), 1)"}},
        3,
        "variables.v",
    ),
    # a rate of -inf used to be clamped to a request of 0
    "rate": (
        {
            "flows": {
                "f": {"from": "src", "to": "a", "rate": "where(k > 1 and t >= 5, -1 / 0 * k, 1)"}
            }
        },
        5,
        "flows.f",
    ),
    # an event time that is NaN used to mean "never"
    "event": (
        {
            "events": {"e": {"at": "where(k > 1, sqrt(0 - k), 2)", "set": {"on": 0}}},
            "state": {"on": 1},
        },
        0,
        "events.e",
    ),
    # an outcome's value
    "outcome": (
        {
            "outcomes": {
                "end": {"of": "a", "stat": "final", "unit": "u"},
                "bad": {"of": "where(k > 1 and t >= 7, log(0), a)", "stat": "max", "unit": "u"},
            }
        },
        7,
        "outcomes.bad",
    ),
}


def _model(case: str) -> Model:
    extra, _, _ = CASES[case]
    return scenario(**(BASE | extra))


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_nonfinite_value_marks_its_run_with_tick_and_culprit(case, engine):
    m = _model(case)
    _, tick, culprit = CASES[case]
    params, noise = draws(m, 30)
    block = ENGINES[engine](m, params, noise, n=30)
    bad = params["k"] > 1
    assert bad.any() and (~bad).any()
    assert np.array_equal(block.bad_tick >= 0, bad)
    assert set(block.bad_tick[bad]) == {tick}
    assert set(block.bad_name[bad]) == {culprit}
    assert set(block.status[~bad]) == {"ok"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_both_engines_agree_on_nonfinite_runs(case):
    m = _model(case)
    params, noise = draws(m, 12)
    kernel = ENGINES["kernel"](m, params, noise, n=12)
    des = ENGINES["des"](m, params, noise, n=12)
    assert np.array_equal(kernel.bad_tick, des.bad_tick)
    assert list(kernel.bad_name) == list(des.bad_name)


def test_the_earliest_stage_of_a_tick_names_the_culprit():
    # A NaN variable that feeds a rate: the variable, evaluated first, is the culprit.
    m = scenario(
        **(
            BASE
            | {
                "variables": {"v": "where(k > 1 and t >= 2, log(0 - k), 1)"},
                "flows": {"f": {"from": "src", "to": "a", "rate": "v"}},
            }
        )
    )
    block = ENGINES["kernel"](m, *draws(m, 12), n=12)
    assert set(block.bad_name[block.bad_tick >= 0]) == {"variables.v"}


@pytest.mark.parametrize(
    ("section", "field"),
    [("variables", "variables.v"), ("events", "events.e.at"), ("outcomes", "outcomes.bad.of")],
)
def test_a_model_nonfinite_in_every_run_is_an_exit_2_error_naming_the_expression(
    tmp_path, section, field
):
    data = {
        "name": "boom",
        "start": "2024-01",
        "months": 6,
        "parameters": {
            "k": {"dist": "uniform", "low": 1, "high": 2, "unit": "1", "source": "test"}
        },
        "state": {"on": 1},
        "stocks": {"src": {"unit": "u", "kind": "source"}, "a": {"unit": "u"}},
        "flows": {"f": {"from": "src", "to": "a", "rate": 1}},
        "outcomes": {"end": {"of": "a", "stat": "final", "unit": "u"}},
    }
    if section == "variables":
        data["variables"] = {"v": "log(k - k)"}
    elif section == "events":
        data["events"] = {"e": {"at": "sqrt(0 - k)", "set": {"on": 0}}}
    else:
        data["outcomes"]["bad"] = {"of": "log(a - a)", "stat": "mean", "unit": "u"}
    path = write(tmp_path, "boom.yaml", data)
    with pytest.raises(ScenarioError) as err:
        run(load(path), runs=50, workers=1)
    assert field in str(err.value)
    out = tmp_path / "res"
    r = CliRunner().invoke(cli, ["run", str(path), "-n", "50", "-w", "1", "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert "boom.yaml:" in r.output and field in r.output and "Traceback" not in r.output
    assert not out.exists()


@pytest.mark.parametrize("text", ["1/0", "10**10**10", "sqrt(-1)", "log(0)", "exp(1000)"])
def test_a_constant_nonfinite_expression_is_refused_by_validate(tmp_path, text):
    data = {
        "name": "const",
        "start": "2024-01",
        "months": 6,
        "stocks": {"src": {"unit": "u", "kind": "source"}, "a": {"unit": "u"}},
        "flows": {"f": {"from": "src", "to": "a", "rate": text}},
        "outcomes": {"end": {"of": "a", "stat": "final", "unit": "u"}},
    }
    r = CliRunner().invoke(cli, ["validate", str(write(tmp_path, "c.yaml", data))])
    assert r.exit_code == 2, r.output
    assert "flows.f.rate" in r.output


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_a_tiny_stock_asked_for_huge_amounts_gives_what_it_holds(engine):
    # content / requested underflows to 0: the stock still empties into its outflows.
    m = scenario(
        stocks={
            "a": {"unit": "u", "initial": 1e-250},
            "x": {"unit": "u", "kind": "sink"},
            "y": {"unit": "u", "kind": "sink"},
        },
        flows={
            "f": {"from": "a", "to": "x", "rate": 1e300},
            "g": {"from": "a", "to": "y", "rate": 3e300},
        },
        outcomes={
            "x": {"of": "x", "stat": "final", "unit": "u"},
            "y": {"of": "y", "stat": "final", "unit": "u"},
        },
        months=2,
    )
    block = ENGINES[engine](m, *draws(m, 3), n=3)
    total = block.outcomes["x"] + block.outcomes["y"]
    np.testing.assert_allclose(total, 1e-250, rtol=1e-12)
    np.testing.assert_allclose(block.outcomes["y"] / block.outcomes["x"], 3, rtol=1e-12)
