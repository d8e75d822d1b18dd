"""Figures and the report on arrayed outcomes: one row of panels per array (a line per
cell), at most MAX_CELLS cells drawn with the rest said, and the report's table heading
each array's cells."""

from __future__ import annotations

from typing import Any

import sim
from sim.analysis.compare import compare
from sim.present.figures import MAX_CELLS, outcome_figure
from sim.present.report import render
from sim.present.tables import comparison_cells
from tests.helpers import scenario


def shops(n: int, name: str, rate: str) -> Any:
    goods = [f"g{k}" for k in range(n)]
    model = scenario(
        name=name,
        months=3,
        dimensions={"good": goods},
        parameters={
            "need": {"over": "good", "dist": "uniform", "low": 1, "high": 2, "source": "t"},
        },
        stocks={
            "shop": {"over": "good", "unit": "t", "kind": "source"},
            "store": {"over": "good", "unit": "t"},
        },
        flows={"buy": {"over": "good", "from": "shop", "to": "store", "rate": rate}},
        outcomes={
            "store_end": {"of": "store", "stat": "final", "unit": "t"},
            "total": {"of": "sum(store)", "stat": "final", "unit": "t"},
        },
    )
    return sim.run(model, runs=30, seed=1)


def test_an_array_is_one_row_of_panels_with_a_line_per_cell():
    a, b = shops(3, "a", "need"), shops(3, "b", "need * 1.5")
    table = compare(a, b)
    fig = outcome_figure(table, [a, b])
    assert len(fig.axes) == 2 * 2  # store_end's row and total's row
    left = fig.axes[0]
    ticks = [t.get_text() for t in left.get_yticklabels()]
    assert ticks == ["[g0]", "[g1]", "[g2]"]  # g0 on top
    assert left.get_title(loc="left").startswith("store_end: 3 cells")


def test_a_large_array_draws_the_largest_shifts_and_says_how_many_are_left_out():
    n = MAX_CELLS + 5
    a = shops(n, "a", "need")
    rate = "need * (1 + 0.05 * need)"
    b = shops(n, "b", rate)
    table = compare(a, b, outcomes=["store_end"])
    fig = outcome_figure(table, [a, b])
    left = fig.axes[0]
    assert len(left.get_yticklabels()) == MAX_CELLS
    assert "5 cells with smaller differences not drawn" in left.get_title(loc="left")


def test_the_table_and_report_head_each_array():
    a, b = shops(2, "a", "need"), shops(2, "b", "need * 2")
    table = compare(a, b)
    rows = comparison_cells(table)
    kinds = [k for k, _ in rows]
    assert kinds[1] == "array" and rows[1][1][0] == "store_end (t), 2 cells"
    assert [c[0] for k, c in rows if k == "outcome"] == ["  [g0]", "  [g1]", "total (t)"]
    html = render(table, [a, b], figures=False)
    assert '<tr class="group array"><td colspan="9"><b>store_end (t), 2 cells</b>' in html
