"""`sim show` on balances and two-way flows: the kind, the direction, and a dump that loads back."""

from __future__ import annotations

import yaml
from rich.console import Console

from sim.model import Model
from sim.present.describe import as_data, as_dot, as_rich, as_yaml
from sim.scenario.schema import Scenario
from tests.helpers import scenario


def model() -> Model:
    return scenario(
        stocks={
            "owed": {"unit": "usd", "kind": "balance", "initial": -4},
            "cash": {"unit": "usd", "initial": 10},
            "spent": {"unit": "usd", "kind": "sink"},
        },
        flows={
            "settle": {"from": "cash", "to": "owed", "rate": "-owed", "two_way": True},
            "buy": {"from": "cash", "to": "spent", "rate": 1},
        },
    )


def test_show_lists_the_kind_and_marks_a_two_way_flow() -> None:
    console = Console(width=200, record=True)
    console.print(as_rich(model()))
    text = console.export_text()
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines()]
    assert ["usd", "owed", "balance", "-4.0"] in rows
    assert "cash ↔ owed" in text and "cash → spent" in text


def test_dot_draws_a_two_way_flow_with_both_arrowheads() -> None:
    dot = as_dot(model())
    assert '"cash" -> "owed" [label="settle", dir=both];' in dot
    assert '"cash" -> "spent" [label="buy"];' in dot
    assert '"owed" [shape=box, peripheries=2];' in dot


def test_the_dump_loads_back_and_a_one_way_flow_dumps_as_before() -> None:
    m = model()
    data = as_data(m)
    assert data["flows"]["settle"]["two_way"] is True
    assert "two_way" not in data["flows"]["buy"]  # so old scenarios keep their sha256
    assert Scenario.model_validate(yaml.safe_load(as_yaml(m))) == m.scenario
