"""compare --given and --threshold: the kept runs and probabilities against direct computations."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sim.analysis.compare import compare, keep_given, threshold
from sim.errors import ScenarioError
from sim.study.results import Results
from tests.analysis.test_compare import folders, invoke, synthetic

__all__ = ["folders"]  # the module-scoped fixture: bakery, bigmill (seed 7) and seed8

GIVEN = "strike_month <= 12 or strike_month > 25"
CRISIS = "hungry_months > 12"


def direct(folder: Path, column: str) -> np.ndarray:
    """A column of runs.parquet read straight from the file, not through Results."""
    return pq.read_table(folder / "runs.parquet").column(column).to_numpy().astype(float)


def test_given_keeps_exactly_the_runs_that_satisfy_it(folders: dict[str, Path]) -> None:
    a, b = Results.load(folders["bakery"]), Results.load(folders["bigmill"])
    month = direct(folders["bakery"], "strike_month")
    mask = (month <= 12) | (month > 25)
    assert 0 < mask.sum() < len(mask)
    table = compare(a, b, given=GIVEN)
    assert table.given is not None
    np.testing.assert_array_equal(table.given.index, np.flatnonzero(mask))
    assert (table.given.kept, table.given.of) == (int(mask.sum()), len(mask))
    assert table.runs == (int(mask.sum()), int(mask.sum()))
    eaten_a = direct(folders["bakery"], "bread_eaten")[mask]
    eaten_b = direct(folders["bigmill"], "bread_eaten")[mask]
    assert table.summary("bread_eaten", "bakery").mean == pytest.approx(eaten_a.mean())
    assert table.summary("bread_eaten", "bakery_bigmill").p50 == pytest.approx(np.median(eaten_b))
    d = table.difference("bread_eaten", "bakery_bigmill")
    assert d.paired and d.n_a == mask.sum()
    assert d.mean == pytest.approx(np.mean(eaten_b - eaten_a))
    assert d.median == pytest.approx(np.median(eaten_b - eaten_a))
    assert d.mean_low <= d.mean <= d.mean_high
    assert "kept" in table.legend()[0] and f"{mask.mean():.0%}" in table.legend()[0]


def test_thresholds_match_a_direct_count(folders: dict[str, Path]) -> None:
    a, b = Results.load(folders["bakery"]), Results.load(folders["bigmill"])
    ya = direct(folders["bakery"], "hungry_months") > 12
    yb = direct(folders["bigmill"], "hungry_months") > 12
    (t,) = compare(a, b, thresholds=[CRISIS, CRISIS]).thresholds  # repeated: counted once
    assert [p.hits for p in t.probabilities] == [ya.sum(), yb.sum()]
    assert [p.p for p in t.probabilities] == pytest.approx([ya.mean(), yb.mean()])
    for p in t.probabilities:
        assert p.low <= p.p <= p.high
    (d,) = t.differences
    assert d.paired and d.diff == pytest.approx(yb.mean() - ya.mean())
    assert d.low <= yb.mean() - ya.mean() <= d.high
    # with --given: on the kept runs only
    month = direct(folders["bakery"], "strike_month")
    mask = (month <= 12) | (month > 25)
    (t,) = compare(a, b, given=GIVEN, thresholds=[CRISIS]).thresholds
    assert [p.n for p in t.probabilities] == [mask.sum(), mask.sum()]
    assert t.differences[0].diff == pytest.approx(yb[mask].mean() - ya[mask].mean())


def test_unpaired_threshold(folders: dict[str, Path]) -> None:
    a, b = Results.load(folders["bakery"]), Results.load(folders["seed8"])
    ya = direct(folders["bakery"], "first_empty") < 20  # NaN (never empty) counts as false
    yb = direct(folders["seed8"], "first_empty") < 20
    (d,) = compare(a, b, thresholds=["first_empty < 20"]).thresholds[0].differences
    assert not d.paired
    assert d.diff == pytest.approx(yb.mean() - ya.mean())
    assert d.low < d.diff < d.high


def test_newcombe_intervals_match_the_published_examples() -> None:
    """Newcombe (1998), Stat Med 17:873, example (a): 56/70 − 48/80, method 10: 0.0524 to 0.3339."""
    b = synthetic("B", {"x": np.r_[np.ones(56), np.zeros(14)]}, seed=1)
    a = synthetic("A", {"x": np.r_[np.ones(48), np.zeros(32)]}, seed=2)
    (d,) = threshold([a, b], "x > 0.5").differences
    assert not d.paired
    assert (d.low, d.high) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    # Paired: the interval narrows as the runs agree more (positive correlation).
    x = np.r_[np.ones(30), np.zeros(70)]
    same = synthetic("A", {"x": x}), synthetic("B", {"x": np.r_[np.ones(35), np.zeros(65)]})
    apart = synthetic("A", {"x": x}), synthetic("B", {"x": np.r_[np.zeros(65), np.ones(35)]})
    (near,) = threshold(same, "x > 0.5").differences
    (far,) = threshold(apart, "x > 0.5").differences
    assert near.paired and near.diff == far.diff == pytest.approx(0.05)
    assert near.high - near.low < far.high - far.low


def test_given_refusals(folders: dict[str, Path]) -> None:
    a, b = Results.load(folders["bakery"]), Results.load(folders["bigmill"])
    cases = {
        "strike_mont < 12": "did you mean 'strike_month'",
        "bread_eaten > 2000": "is an outcome, not a parameter",
        "mill_output > 100": "differs between bakery and bakery_bigmill",
        "strike_month < 0": "holds in none",
        "strike_month * 2": "gives numbers",
        "strike_month <": "syntax error",
    }
    for condition, message in cases.items():
        with pytest.raises(ScenarioError) as caught:
            keep_given([a, b], condition)
        assert message in str(caught.value), condition
    with pytest.raises(ScenarioError, match="must be paired"):
        keep_given([a, Results.load(folders["seed8"])], "strike_month < 12")


def test_cli_given_and_threshold(folders: dict[str, Path]) -> None:
    args = [str(folders["bakery"]), str(folders["bigmill"]), "--given", GIVEN]
    result = invoke("compare", *args, "--threshold", CRISIS)
    assert result.exit_code == 0, result.output
    month = direct(folders["bakery"], "strike_month")
    kept = int(((month <= 12) | (month > 25)).sum())
    assert f"given {GIVEN}: {kept} of 400 runs kept ({kept / 400:.0%})" in result.output
    assert "Threshold probabilities" in result.output and f"P({CRISIS})" in result.output
    data = json.loads(invoke("compare", *args, "--threshold", CRISIS, "--json").output)
    assert data["given"] == {
        "condition": GIVEN,
        "kept": kept,
        "of": 400,
        "share": pytest.approx(kept / 400),
    }
    assert data["thresholds"][0]["probabilities"][0]["n"] == kept
    rows = list(csv.DictReader(io.StringIO(invoke("compare", *args, "--csv").output)))
    assert {r["given"] for r in rows} == {GIVEN} and {r["given_kept"] for r in rows} == {str(kept)}
    rows = list(
        csv.DictReader(io.StringIO(invoke("compare", *args, "--threshold", CRISIS, "--csv").output))
    )
    kinds = [r["kind"] for r in rows]
    assert kinds[-3:] == ["probability", "probability", "probability difference"]
    assert rows[-1]["condition"] == CRISIS and rows[-1]["paired"] == "True"


def test_cli_bad_conditions_exit_2(folders: dict[str, Path]) -> None:
    pair = [str(folders["bakery"]), str(folders["bigmill"])]
    cases = [
        (["--given", "strike_mont < 12"], "did you mean 'strike_month'"),
        (["--given", "strike_month < 0"], "holds in none"),
        (["--given", "strike_month"], "gives numbers"),
        (["--threshold", "hungry_month > 3"], "did you mean 'hungry_months'"),
        (["--threshold", "hungry_months + 3"], "gives numbers"),
        (["--threshold", "hungry_months > 3 or 2 >> 1"], "(at column 22)"),
    ]
    for extra, message in cases:
        result = invoke("compare", *pair, *extra)
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output, (extra, result.output)
        assert "Traceback" not in result.output
    result = invoke("compare", str(folders["bakery"]), str(folders["seed8"]), "--given", GIVEN)
    assert result.exit_code == 2 and "paired" in result.output


def test_figure_titles_say_the_condition(folders: dict[str, Path]) -> None:
    from sim.analysis.compare import kept_runs
    from sim.present.figures import fan_figure, outcome_figure

    results = [Results.load(folders["bakery"]), Results.load(folders["bigmill"])]
    table = compare(*results, outcomes=["bread_eaten"], given=GIVEN)
    assert table.given is not None
    figure = outcome_figure(table, kept_runs(results, table.given))
    assert table.given.text() in figure.get_suptitle()
    fan = fan_figure(results, table.scenarios, given=table.given)
    assert fan is not None and "every run" in fan.get_suptitle()
