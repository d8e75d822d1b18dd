"""Balances (stocks that may go below zero) and two-way flows, with exact answers, through
both engines, which must agree bit for bit."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.engine.des import run_one
from sim.errors import ScenarioError
from sim.model import load
from tests.helpers import draws, kernel, scenario


def both(model: Any, runs: int = 3) -> dict[str, np.ndarray]:
    """Every recorded series and outcome of run 0, after checking both engines agree exactly."""
    block = kernel(model, runs)
    params, noise = draws(model, runs)
    for k in range(runs):
        r = run_one(
            model, {a: v[k] for a, v in params.items()}, {a: v[:, k] for a, v in noise.items()}, k
        )
        for name, path in r.series.items():
            np.testing.assert_array_equal(block.series[name][:, k], path, err_msg=name)
        for name, value in r.outcomes.items():
            np.testing.assert_array_equal(block.outcomes[name][k], value, err_msg=name)
    out = {name: values[:, 0] for name, values in block.series.items()}
    out.update({name: values[0] for name, values in block.outcomes.items()})
    return out


def test_a_balance_goes_below_zero_and_back() -> None:
    m = scenario(
        months=8,
        stocks={
            "income": {"unit": "usd", "kind": "source"},
            "account": {"unit": "usd", "kind": "balance", "initial": 5},
            "spent": {"unit": "usd", "kind": "sink"},
        },
        flows={
            "earn": {"from": "income", "to": "account", "rate": "where(t >= 4, 10, 0)"},
            "spend": {"from": "account", "to": "spent", "rate": 4},
        },
        outcomes={
            "low": {"of": "account", "stat": "min"},
            "end": {"of": "account", "stat": "final"},
        },
        record=["account", "flow.spend"],
    )
    out = both(m)
    # Never rationed: it gives 4 a tick whatever it holds.
    np.testing.assert_array_equal(out["flow.spend"], [4.0] * 8)
    np.testing.assert_array_equal(out["account"], [1, -3, -7, -11, -5, 1, 7, 13])
    assert out["low"] == -11 and out["end"] == 13


def test_a_balance_may_start_below_zero_an_ordinary_stock_may_not() -> None:
    stocks = {
        "debt": {"unit": "usd", "kind": "balance", "initial": "-10 * owed"},
        "w": {"unit": "usd"},
    }
    params = {"owed": {"dist": "uniform", "low": 1, "high": 2, "unit": "usd", "source": "test"}}
    m = scenario(months=2, parameters=params, stocks=stocks, record=["debt"])
    assert (kernel(m, 5).series["debt"] <= -10).all()
    m = scenario(months=2, stocks={"debt": {"unit": "usd", "kind": "balance", "initial": -3}})
    assert m.stock("debt").initial.constant == -3
    with pytest.raises(ScenarioError, match="initial amount is negative"):
        scenario(months=2, stocks={"debt": {"unit": "usd", "initial": -3}})
    ordinary = {"debt": {"unit": "usd", "initial": "-10 * owed"}}
    with pytest.raises(ScenarioError, match="can't start below zero"):
        kernel(scenario(months=2, parameters=params, stocks=ordinary), 2)


def test_a_two_way_flow_turns_round_with_its_rate() -> None:
    m = scenario(
        months=7,
        stocks={"a": {"unit": "t", "initial": 10}, "b": {"unit": "t", "initial": 10}},
        flows={"move": {"from": "a", "to": "b", "rate": "3 - t", "two_way": True}},
        outcomes={"moved": {"of": "cum.move", "stat": "final"}},
        record=["a", "b", "flow.move", "cum.move"],
    )
    out = both(m)
    np.testing.assert_array_equal(out["flow.move"], [3, 2, 1, 0, -1, -2, -3])
    np.testing.assert_array_equal(out["cum.move"], [3, 5, 6, 6, 5, 3, 0])
    np.testing.assert_array_equal(out["a"], [7, 5, 4, 4, 5, 7, 10])
    np.testing.assert_array_equal(out["b"], [13, 15, 16, 16, 15, 13, 10])
    assert out["moved"] == 0


def test_a_one_way_flow_still_asks_nothing_for_a_negative_rate() -> None:
    m = scenario(
        months=3,
        stocks={"a": {"unit": "t", "initial": 10}, "b": {"unit": "t", "initial": 10}},
        flows={"move": {"from": "a", "to": "b", "rate": "1 - t"}},
        record=["a", "flow.move"],
    )
    out = both(m)
    np.testing.assert_array_equal(out["flow.move"], [1, 0, 0])
    np.testing.assert_array_equal(out["a"], [9, 9, 9])


def test_a_stock_giving_through_a_two_way_and_a_one_way_flow_is_rationed_as_one() -> None:
    m = scenario(
        months=2,
        stocks={
            "shop": {"unit": "usd", "initial": 9},
            "owner": {"unit": "usd", "kind": "balance"},
            "spent": {"unit": "usd", "kind": "sink"},
        },
        flows={
            # declared first, so summed first: 10 + 2 asked of 9, each gets 9/12
            "draw": {"from": "owner", "to": "shop", "rate": -10, "two_way": True},
            "buy": {"from": "shop", "to": "spent", "rate": 2},
        },
        record=["shop", "owner", "spent", "flow.draw", "flow.buy"],
    )
    out = both(m)
    factor = 9.0 / 12.0
    assert out["flow.draw"][0] == -(10 * factor) and out["flow.buy"][0] == 2 * factor
    assert out["shop"][0] == 0 and out["owner"][0] == 10 * factor and out["spent"][0] == 2 * factor
    assert out["flow.draw"][1] == 0 and out["flow.buy"][1] == 0  # nothing left to give


def test_a_two_way_flow_taking_from_its_to_end_is_rationed_there_not_at_from() -> None:
    """The `from` end is empty but receives; only the giving end's content limits."""
    m = scenario(
        months=1,
        stocks={"a": {"unit": "t", "initial": 0}, "b": {"unit": "t", "initial": 4}},
        flows={"back": {"from": "a", "to": "b", "rate": -6, "two_way": True}},
        record=["a", "b", "flow.back"],
    )
    out = both(m)
    assert out["flow.back"][0] == -4 and out["a"][0] == 4 and out["b"][0] == 0


def test_a_two_way_flow_between_two_balances_is_never_rationed() -> None:
    m = scenario(
        months=4,
        stocks={
            "exporter": {"unit": "usd", "kind": "balance", "initial": -1},
            "importer": {"unit": "usd", "kind": "balance", "initial": 1},
        },
        flows={
            "trade": {
                "from": "exporter",
                "to": "importer",
                "rate": "where(t < 2, 100, -300)",
                "two_way": True,
            }
        },
        record=["exporter", "importer", "flow.trade"],
    )
    out = both(m)
    np.testing.assert_array_equal(out["flow.trade"], [100, 100, -300, -300])
    np.testing.assert_array_equal(out["exporter"], [-101, -201, 99, 399])
    np.testing.assert_array_equal(out["exporter"] + out["importer"], [0, 0, 0, 0])


def test_signed_flow_and_cum_are_read_by_the_next_tick() -> None:
    m = scenario(
        months=4,
        stocks={
            "a": {"unit": "t", "kind": "balance"},
            "b": {"unit": "t", "kind": "balance"},
            "c": {"unit": "t", "kind": "balance"},
        },
        flows={
            "swing": {"from": "a", "to": "b", "rate": "where(t == 0, -5, 2)", "two_way": True},
            # reads last tick's signed amount and the signed running total
            "echo": {
                "from": "b",
                "to": "c",
                "rate": "flow.swing + 10 * cum.swing",
                "two_way": True,
            },
        },
        variables={"last": "flow.swing"},
        record=["flow.echo", "last"],
    )
    out = both(m)
    np.testing.assert_array_equal(out["last"], [0, -5, 2, 2])
    np.testing.assert_array_equal(out["flow.echo"], [0, -5 - 50, 2 - 30, 2 - 10])


def test_noise_scales_a_negative_request_and_keeps_its_direction() -> None:
    noise = {"dist": "uniform", "low": 0.5, "high": 1.5}
    m = scenario(
        months=5,
        stocks={"a": {"unit": "t", "kind": "balance"}, "b": {"unit": "t", "kind": "balance"}},
        flows={"back": {"from": "a", "to": "b", "rate": -2, "two_way": True, "noise": noise}},
        record=["flow.back"],
    )
    out = both(m)
    _, z = draws(m, 3)
    np.testing.assert_array_equal(out["flow.back"], -2 * z["back"][:, 0])
    assert (out["flow.back"] < 0).all()


def test_the_simpy_log_says_which_way_a_two_way_flow_goes() -> None:
    m = scenario(
        months=6,
        stocks={"a": {"unit": "t", "initial": 10}, "b": {"unit": "t", "initial": 10}},
        flows={
            "move": {
                "from": "a",
                "to": "b",
                "rate": "where(t < 2, 1, where(t < 3, 0, -1))",
                "two_way": True,
            }
        },
    )
    log = [(e.tick, e.detail) for e in run_one(m, {}, {}).log if e.name == "move"]
    assert log == [(0, "starts, a -> b"), (2, "stops"), (3, "starts, b -> a")]
    m = scenario(
        months=2,
        stocks={"a": {"unit": "t", "initial": 10}, "b": {"unit": "t", "initial": 10}},
        flows={"move": {"from": "a", "to": "b", "rate": "1 - 2 * t", "two_way": True}},
    )
    log = [(e.tick, e.detail) for e in run_one(m, {}, {}).log if e.name == "move"]
    assert log == [(0, "starts, a -> b"), (1, "turns, b -> a")]


@pytest.mark.parametrize(
    ("ends", "where", "kind"),
    [
        (("src", "x"), "from", "source"),
        (("x", "src"), "to", "source"),
        (("sink", "x"), "from", "sink"),
        (("x", "sink"), "to", "sink"),
    ],
)
def test_a_two_way_flow_may_not_touch_a_source_or_a_sink(
    ends: tuple[str, str], where: str, kind: str
) -> None:
    stocks = {
        "src": {"unit": "t", "kind": "source"},
        "sink": {"unit": "t", "kind": "sink"},
        "x": {"unit": "t"},
    }
    flows = {"f": {"from": ends[0], "to": ends[1], "rate": 1, "two_way": True}}
    with pytest.raises(ScenarioError) as err:
        scenario(stocks=stocks, flows=flows)
    (problem,) = err.value.problems
    assert problem.path == f"flows.f.{where}"
    assert problem.message.startswith(f"'{ends[0 if where == 'from' else 1]}' is a {kind}")


def test_a_two_way_flow_may_not_be_delayed() -> None:
    stocks = {"a": {"unit": "t"}, "b": {"unit": "t"}}
    flows = {"f": {"from": "a", "to": "b", "rate": 1, "two_way": True, "delay": 1}}
    with pytest.raises(ScenarioError) as err:
        scenario(stocks=stocks, flows=flows)
    (problem,) = err.value.problems
    assert problem.path == "flows.f.delay"
    assert "two one-way flows" in (problem.hint or "")
    flows["f"]["delay"] = 0
    assert scenario(stocks=stocks, flows=flows).flows[0].two_way


def test_conservation_holds_with_balances_and_two_way_flows() -> None:
    m = scenario(
        months=12,
        stocks={
            "mine": {"unit": "t", "kind": "source"},
            "store": {"unit": "t", "initial": 5},
            "ledger": {"unit": "t", "kind": "balance", "initial": -7},
            "dump": {"unit": "t", "kind": "sink"},
        },
        flows={
            "dig": {"from": "mine", "to": "store", "rate": 3},
            "settle": {
                "from": "store",
                "to": "ledger",
                "rate": "ledger * -0.5 + 2 * (month - 6)",
                "two_way": True,
            },
            "waste": {"from": "ledger", "to": "dump", "rate": 1},
        },
    )
    seen = []

    def check(t: int, S: np.ndarray, TR: np.ndarray) -> None:
        np.testing.assert_allclose(S.sum(axis=0), -2.0, rtol=0, atol=1e-12)
        assert (S[1] >= 0).all()  # the ordinary stock, rationed when it gives
        seen.append(t)

    kernel(m, 3, observer=check)
    assert seen == list(range(12))


LANGUAGE_MD = Path(__file__).resolve().parents[2] / "docs" / "language.md"


def doc_examples() -> list[str]:
    """The scenarios docs/language.md shows with balances or two-way flows."""
    blocks = re.findall(r"```yaml\n(.*?)```", LANGUAGE_MD.read_text(), re.S)
    return [b for b in blocks if "kind: balance" in b or "two_way:" in b]


def test_docs_show_balances_and_two_way_flows() -> None:
    assert len(doc_examples()) >= 2


@pytest.mark.parametrize("text", doc_examples(), ids=lambda t: t.split("\n", 1)[0])
def test_the_docs_examples_of_balances_run_alike_in_both_engines(text: str, tmp_path: Path) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(text)
    model = load(path)  # what `sim validate` checks
    out = both(model, runs=2)
    balances = [s.name for s in model.stocks if s.kind == "balance" and s.name in out]
    assert any((out[name] < 0).any() for name in balances), "no balance goes below zero"


def test_balances_and_two_way_flows_meet_the_time_step_and_the_builtins() -> None:
    """The two halves of issue 17 together: a two-way flow whose rate reads smooth() of a
    balance, at a step of 0.25 months: each tick moves rate x step, signed, both engines alike,
    and the units' totals hold."""
    model = scenario(
        months=6,
        step=0.25,
        parameters={"goal": 40.0},
        stocks={"level": {"unit": "t", "initial": 100}, "debt": {"unit": "t", "kind": "balance"}},
        variables={"seen": "smooth(level, 1)"},
        flows={"adjust": {"from": "level", "to": "debt", "rate": "seen - goal", "two_way": True}},
        outcomes={
            "debt_end": {"of": "debt", "stat": "final"},
            "low": {"of": "level", "stat": "min"},
        },
        record=["level", "debt", "flow.adjust", "seen"],
    )
    assert model.ticks == 24
    out = both(model)
    first = out["flow.adjust"][0]
    np.testing.assert_allclose(first, (100 - 40) * 0.25)  # smooth starts at level's first value
    total = out["level"] + out["debt"]
    np.testing.assert_allclose(total, 100.0, rtol=1e-12)
    assert (out["flow.adjust"] < 0).any() and (out["flow.adjust"] > 0).any()  # it turns round
