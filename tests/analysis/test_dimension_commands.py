"""The analyses on arrayed models: compare groups and selects cells, conditions read cells
and reduce arrays, sensitivity takes cells or groups (checked against analytic indices),
sweep sets one cell, discover boxes cells."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import sim
from sim.analysis import cells
from sim.analysis.compare import compare, keep_given
from sim.analysis.discover import discover
from sim.analysis.sensitivity import sensitivity
from sim.analysis.sweep import sweep
from sim.errors import ScenarioError
from sim.model import Model
from tests.helpers import scenario

GOODS = ["food", "fuel", "soap"]


def pantry(cut_at: Any = 6, **extra: Any) -> Model:
    """Three goods restocked and eaten; a strike at `cut_at` cuts the restocking."""
    return scenario(
        name=extra.pop("name", "pantry"),
        dimensions={"good": GOODS},
        parameters={
            "need": {
                "over": "good",
                "dist": "uniform",
                "low": [80, 40, 5],
                "high": [120, 60, 10],
                "unit": "t/month",
                "source": "test",
            },
            "supply": {
                "over": "good",
                "dist": "uniform",
                "low": [70, 45, 4],
                "high": [130, 55, 12],
                "unit": "t/month",
                "source": "test",
            },
            "cut": {"dist": "uniform", "low": 0.5, "high": 1.0, "source": "test"},
        },
        state={"open": 1},
        stocks={
            "shop": {"over": "good", "unit": "t", "kind": "source"},
            "store": {"over": "good", "unit": "t", "initial": [20, 10, 2]},
            "used": {"over": "good", "unit": "t", "kind": "sink"},
        },
        flows={
            "restock": {
                "over": "good",
                "from": "shop",
                "to": "store",
                "rate": "supply * where(open > 0, 1, cut)",
            },
            "eat": {"over": "good", "from": "store", "to": "used", "rate": "need"},
        },
        events=extra.pop("events", {"strike": {"at": cut_at, "set": {"open": 0}}}),
        outcomes={
            "store_end": {"of": "store", "stat": "final", "unit": "t"},
            "soap_end": {"of": "store[soap]", "stat": "final", "unit": "t"},
            "total_end": {"of": "sum(store)", "stat": "final", "unit": "t"},
        },
        **extra,
    )


@pytest.fixture(scope="module")
def two() -> tuple[Any, Any]:
    return (
        sim.run(pantry(), runs=120, seed=3),
        sim.run(pantry("never", name="pantry_open"), runs=120, seed=3),
    )


def test_cell_names_split_group_and_expand():
    assert cells.split("imports[china,food]") == ("imports", ("china", "food"))
    assert cells.split("total") == ("total", ())
    columns = ["store_end[food]", "store_end[fuel]", "total_end"]
    assert cells.grouped(columns) == {
        "store_end": ["store_end[food]", "store_end[fuel]"],
        "total_end": ["total_end"],
    }
    assert cells.expand(["store_end", "total_end"], columns) == columns
    assert cells.expand(["store_end[fuel]", "nope"], columns) == ["store_end[fuel]", "nope"]


def test_compare_selects_an_array_or_one_cell_and_names_them_in_rows(two):
    whole = compare(*two, outcomes=["store_end"])
    assert whole.outcomes == tuple(f"store_end[{g}]" for g in GOODS)
    one = compare(*two, outcomes=["store_end[fuel]"])
    assert one.outcomes == ("store_end[fuel]",)
    rows = compare(*two, outcomes=["store_end", "total_end"]).rows()
    fuel = [r for r in rows if r["outcome"] == "store_end[fuel]"]
    assert fuel and all(r["array"] == "store_end" and r["element"] == "fuel" for r in fuel)
    assert all(r["array"] is None for r in rows if r["outcome"] == "total_end")


def test_identical_folding_is_per_cell():
    # A scenario that scales only food's need: the other cells are the same in every
    # paired run and fold; food's cell is compared.
    base = sim.run(pantry(name="calm", events={}), runs=60, seed=2)
    hungry = pantry(name="hungry", events={"rush": {"at": 2, "scale": {"need[food]": 1.3}}})
    table = compare(base, sim.run(hungry, runs=60, seed=2), outcomes=["store_end"])
    assert table.identical == ("store_end[fuel]", "store_end[soap]")


def test_conditions_pick_cells_and_reduce_arrays(two):
    a, _ = two
    food = a.parameter("need[food]")
    given = keep_given(two, "need[food] > 100 and max(supply) < 120")
    expect = (food > 100) & (np.max([a.parameter(f"supply[{g}]") for g in GOODS], 0) < 120)
    assert np.array_equal(given.index, np.flatnonzero(expect))
    table = compare(*two, thresholds=["store_end[food] < 60", "min(store_end) < 5"])
    p = table.thresholds[0].probabilities[0]
    assert p.hits == int(np.sum(a.outcome("store_end[food]") < 60))
    with pytest.raises(ScenarioError, match=r"over \(good\): one truth per cell"):
        compare(*two, thresholds=["store_end < 60"])
    with pytest.raises(ScenarioError, match="did you mean 'food'"):
        compare(*two, thresholds=["store_end[foood] < 60"])


def test_discover_boxes_cells_and_reads_cells_in_where(two):
    a, _ = two
    found = discover(a, "store_end[food] < 60")
    assert found.cases == int(np.sum(a.outcome("store_end[food]") < 60))
    assert {r.parameter for b in found.boxes for r in b.restrictions} <= set(a.parameters)
    only = discover(a, "store_end[food] < 60", parameters=["need"])
    assert only.parameters == tuple(f"need[{g}]" for g in GOODS)


def test_sweep_sets_one_cell_and_refuses_a_whole_array():
    model = pantry()
    res = sweep(model, "need[food]", "80,120", runs=40, seed=1, outcomes=["store_end"])
    assert res.outcomes == tuple(f"store_end[{g}]" for g in GOODS)
    food, fuel = res.outcome_values["store_end[food]"], res.outcome_values["store_end[fuel]"]
    assert not np.array_equal(food[0], food[1])  # the swept cell moves its good...
    assert np.array_equal(fuel[0], fuel[1])  # ...and leaves the others' draws alone
    with pytest.raises(ScenarioError, match=r"'need' is arrayed over \(good\)") as err:
        sweep(model, "need", "80,120", runs=40)
    assert "need[food]" in str(err.value)


def additive(outcome: str) -> Model:
    return scenario(
        name="additive",
        months=1,
        dimensions={"good": GOODS},
        parameters={
            "x": {"over": "good", "dist": "uniform", "low": 0, "high": 1, "source": "test"},
            "w": {"over": "good", "value": [1, 2, 3], "source": "test"},
            "z": {"dist": "uniform", "low": 0, "high": 1, "source": "test"},
        },
        stocks={"s": {"unit": "t"}},
        outcomes={"y": {"of": outcome, "stat": "final"}},
    )


def test_sensitivity_cells_and_groups_match_the_analytic_shares():
    # y = x[food] + 2 x[fuel] + 3 x[soap] + 2 z, all U(0, 1): variances 1, 4, 9, 4 (/12),
    # so the cells' shares are 1/18, 4/18, 9/18, z's 4/18, and the group x's 14/18.
    model = additive("sum(w * x) + 2 * z")
    cells_ = sensitivity(model, "y", runs=1024, seed=5)
    assert cells_.parameters == ("x[food]", "x[fuel]", "x[soap]", "z")
    assert np.allclose(cells_.first[0], np.array([1, 4, 9, 4]) / 18, atol=0.02)
    group = sensitivity(model, "y", runs=1024, seed=5, groups=["x"])
    assert group.parameters == ("x", "z")
    assert group.groups == {"x": ("x[food]", "x[fuel]", "x[soap]")}
    assert group.evaluations == 1024 * 4
    assert np.allclose(group.first[0], [14 / 18, 4 / 18], atol=0.02)
    assert np.allclose(group.total[0], [14 / 18, 4 / 18], atol=0.02)


def test_a_group_holds_its_cells_interaction():
    # y = x[food] * x[fuel]: each alone explains 3/7 of the variance, the two together all.
    model = additive("x[food] * x[fuel]")
    apart = sensitivity(model, "y", runs=1024, seed=5)
    assert np.allclose(apart.first[0][:2], 3 / 7, atol=0.03)
    together = sensitivity(model, "y", runs=1024, seed=5, groups=["x"])
    assert together.first[0][0] == pytest.approx(1.0, abs=0.03)


def test_a_group_must_be_an_arrayed_uncertain_parameter():
    model = additive("sum(w * x) + 2 * z")
    for name, why in (("z", "not arrayed"), ("w", "no uncertain cell"), ("xx", "did you mean")):
        with pytest.raises(ScenarioError, match=why):
            sensitivity(model, "y", runs=64, groups=[name])
