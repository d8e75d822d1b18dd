"""The report's opening for a decision-maker, and outcomes that don't differ.

The summary ranks outcome differences by size relative to the outcome's spread and says each
in a sentence whose numbers are the comparison's own; threshold probabilities are said as
"P(X) is a% in B against b% in A"; outcomes equal in every paired run are listed once,
folded, and neither tabled nor drawn; a table of contents links every detail section."""

from __future__ import annotations

import re

import numpy as np
import pytest

from sim.analysis.compare import compare
from sim.present.report import render
from sim.present.summary import findings, threshold_sentences
from tests.analysis.test_compare import synthetic

N = 400


@pytest.fixture(scope="module")
def two():
    rng = np.random.default_rng(3)
    base = rng.normal(100, 10, N)
    same = rng.uniform(0, 1, N)
    a = synthetic("calm", {"big": base, "small": base, "same": same, "none": base}, seed=5)
    b = synthetic(
        "storm",
        {
            "big": base - 30 + rng.normal(0, 1, N),  # 3 sds lower, nearly every run
            "small": base + rng.normal(0.2, 1, N),  # 0.02 sds: can't be told apart? close
            "same": same,
            "none": base.copy(),
        },
        seed=5,
    )
    return a, b


def test_identical_outcomes_are_those_equal_in_every_paired_run(two):
    table = compare(*two)
    assert table.identical == ("same", "none")
    unpaired = compare(two[0], synthetic("other", {"same": two[0].outcome("same")}, seed=9))
    assert unpaired.identical == ()  # equal samples are not equal runs
    part = table.select(["small", "big"])
    assert part.outcomes == ("big", "small")
    assert {d.outcome for d in part.differences} == {"big", "small"}


def test_findings_rank_by_spread_and_say_the_comparisons_numbers(two):
    table = compare(*two)
    found = findings(table)
    assert [f.outcome for f in found] == ["big", "small"]  # identical ones are left out
    big = table.difference("big", "storm")
    sd = table.summary("big", "calm").sd
    assert found[0].effect == pytest.approx(big.mean / sd)
    lower = 1 - big.p_greater - big.p_equal
    sentence = found[0].sentence
    assert sentence.startswith(f"In {lower:.0%} of paired runs, storm has lower big than calm")
    assert "on average −" in sentence and "95% interval" in sentence


def test_a_difference_the_runs_cannot_resolve_is_said_so():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, 200)
    a = synthetic("a", {"x": x}, seed=2)
    b = synthetic("b", {"x": x + rng.normal(0, 1, 200) * 0.01}, seed=2)
    d = compare(a, b).difference("x", "b")
    assert d.mean_low < 0 < d.mean_high  # the premise: the interval covers zero
    (found,) = findings(compare(a, b))
    assert "can't be told from zero with 200 runs" in found.sentence


def test_threshold_sentences_quote_both_probabilities(two):
    table = compare(*two, thresholds=["big > 90"])
    (line,) = threshold_sentences(table)
    (t,) = table.thresholds
    p = {q.scenario: q.p for q in t.probabilities}
    assert line.startswith(
        f"P(big > 90) is {p['storm']:.0%} in storm against {p['calm']:.0%} in calm"
    )
    assert "points" in line and "paired runs" in line


def test_the_report_opens_with_the_summary_then_contents_and_folds_identical(two):
    html = render(compare(*two, thresholds=["big > 90"]), list(two), figures=False)
    summary, contents = html.index('id="summary"'), html.index('id="contents"')
    assert summary < contents < html.index('id="comparison"')
    opening = html[summary:contents]
    assert "2 of 4 outcomes differ" in opening and "P(big &gt; 90)" in opening
    # every detail section is in the contents, and every link has its anchor
    links = re.findall(r'href="#([a-z0-9-]+)"', html[contents:])
    assert links and all(f'id="{slug}"' in html for slug in links)
    assert len(links) == len(set(links))
    # identical outcomes: once, folded, not in the comparison table
    fold = html[html.index('<details class="identical">') : html.index("</details>")]
    assert "2 outcomes identical" in fold and "<b>same</b>" in fold and "<b>none</b>" in fold
    table = html[html.index('id="comparison"') : html.index('<details class="identical">')]
    assert "<b>big (t)</b>" in table and "<b>same" not in table


def test_nothing_differs():
    x = np.arange(50.0)
    a, b = synthetic("a", {"x": x}, seed=1), synthetic("b", {"x": x.copy()}, seed=1)
    html = render(compare(a, b), [a, b], figures=False)
    assert "No outcome differs between the scenarios in any paired run" in html


def test_report_outcome_filters_the_analyses_too(tmp_path):
    from click.testing import CliRunner

    from sim.cli import cli
    from tests.helpers import BAKERY

    out = tmp_path / "sweep"
    args = ["sweep", str(BAKERY), "--set", "price=400,500", "-n", "20", "-o", str(out)]
    r = CliRunner().invoke(cli, [*args, "--outcome", "mean_till", "--outcome", "bread_eaten"])
    assert r.exit_code == 0, r.output
    page = tmp_path / "r.html"
    r = CliRunner().invoke(cli, ["report", str(out), "--outcome", "mean_till", "--out", str(page)])
    assert r.exit_code == 0, r.output
    html = page.read_text()
    assert "<h3>mean_till" in html and "<h3>bread_eaten" not in html
    assert "data:image/png;base64," not in html  # its figure shows bread_eaten too
    assert "figure of this analysis is left out" in html
    r = CliRunner().invoke(
        cli,
        [
            "report",
            str(out),
            "--outcome",
            "mean_till",
            "--outcome",
            "bread_eaten",
            "--out",
            str(page),
            "--force",
        ],
    )
    assert r.exit_code == 0, r.output
    assert page.read_text().count("data:image/png;base64,") == 1  # all its outcomes: figure kept
    r = CliRunner().invoke(
        cli, ["report", str(out), "--outcome", "hungry_months", "--out", str(tmp_path / "n.html")]
    )
    assert r.exit_code == 2 and "none of the analyses is about it" in r.output
    assert not (tmp_path / "n.html").exists()


def test_most_runs_one_way_and_the_mean_the_other_is_said_so():
    """60% of runs a little lower, 40% much higher: the sentence must not read as if the mean
    were lower too."""
    rng = np.random.default_rng(3)
    x = rng.normal(10, 1, 2000)
    up = rng.random(2000) < 0.4
    a = synthetic("a", {"x": x}, seed=2)
    b = synthetic("b", {"x": np.where(up, x + 5, x - 1)}, seed=2)
    (found,) = findings(compare(a, b))
    assert found.sentence.startswith("In 59% of paired runs, b has lower x than a")
    assert "than a, but on average the other way, +1.44" in found.sentence, found.sentence
