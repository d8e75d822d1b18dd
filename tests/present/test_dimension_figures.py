"""Figures and the report on arrayed outcomes: one row of panels per array (a line per
cell), at most MAX_CELLS cells drawn with the rest said, and the report's table heading
each array's cells."""

from __future__ import annotations

from typing import Any

import sim
from sim.analysis.compare import compare
from sim.present.figures import FAN_CELLS, MAX_CELLS, fan_figure, outcome_figure
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


def test_a_wide_recorded_array_is_one_panel_of_medians_and_a_narrow_one_a_fan_per_cell():
    def recorded(n: int, name: str, rate: str) -> Any:
        model = scenario(
            name=name,
            months=3,
            dimensions={"good": [f"g{k}" for k in range(n)]},
            parameters={
                "need": {"over": "good", "dist": "uniform", "low": 1, "high": 2, "source": "t"}
            },
            stocks={
                "shop": {"over": "good", "unit": "t", "kind": "source"},
                "store": {"over": "good", "unit": "t"},
            },
            flows={"buy": {"over": "good", "from": "shop", "to": "store", "rate": rate}},
            record=["store"],
        )
        return sim.run(model, runs=20, seed=1)

    wide = [recorded(MAX_CELLS + 3, k, r) for k, r in (("a", "need"), ("b", "need * need"))]
    fig = fan_figure(wide, ["a", "b"])
    assert fig is not None
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == 1
    title = shown[0].get_title(loc="left")
    assert "median per cell" in title and "3 cells not drawn" in title
    assert len(shown[0].get_lines()) == 2 * MAX_CELLS  # a line per cell and scenario
    narrow = [recorded(FAN_CELLS, k, "need") for k in ("a", "b")]
    fig = fan_figure(narrow, ["a", "b"])
    assert fig is not None
    assert len([ax for ax in fig.axes if ax.get_visible()]) == FAN_CELLS
    assert fig.axes[0].get_title(loc="left").startswith("store[g0] (t)")  # its array's unit


def test_a_sweep_draws_a_wide_array_as_one_panel_of_medians():
    from sim.analysis.sweep import sweep
    from sim.present.analysis_figures import sweep_figure

    n = MAX_CELLS + 2
    model = scenario(
        name="wide",
        months=2,
        dimensions={"good": [f"g{k}" for k in range(n)]},
        parameters={
            "need": {"over": "good", "dist": "uniform", "low": 1, "high": 2, "source": "t"}
        },
        stocks={
            "shop": {"over": "good", "unit": "t", "kind": "source"},
            "store": {"over": "good", "unit": "t"},
        },
        flows={"buy": {"over": "good", "from": "shop", "to": "store", "rate": "need"}},
        outcomes={
            "store_end": {"of": "store", "stat": "final", "unit": "t"},
            "total": {"of": "sum(store)", "stat": "final", "unit": "t"},
        },
    )
    res = sweep(model, "need[g1]", "1,2", runs=10, seed=1)
    fig = sweep_figure(res)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == 2  # store_end's cells in one panel, and total
    title = " ".join(shown[0].get_title(loc="left").split())
    assert title.startswith("store_end (t): median per cell") and "2 cells not drawn" in title
    labels = [line.get_label() for line in shown[0].get_lines()]
    assert len(labels) == MAX_CELLS and "[g1]" in labels  # the swept cell moves most
