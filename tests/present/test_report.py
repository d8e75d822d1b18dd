"""sim.present.report: a self-contained page with every section, escaped text, rendered by Chromium."""

from __future__ import annotations

import base64
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from click.testing import CliRunner

import sim
from sim.analysis.compare import compare
from sim.cli import cli
from sim.present.report import FIGURE_ROWS, drawn_outcomes, render
from sim.study.results import Results
from tests.analysis.test_compare import synthetic, variant_file
from tests.helpers import BAKERY, CHROMIUM_FLAGS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
EVIL = '<script>document.body.setAttribute("data-owned", "yes")</script><b>bold?</b>'


class Page(HTMLParser):
    """What a browser would see: tags opened, text shown, image sources."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[Results]]:
    tmp = tmp_path_factory.mktemp("report")
    variant = variant_file(tmp)
    text = variant.read_text().replace("The bakery with a bigger mill.", "'" + EVIL + "'")
    variant.write_text(text)
    results = [
        sim.run(sim.load(BAKERY), runs=300, seed=4, out=tmp / "bakery"),
        sim.run(sim.load(variant), runs=300, seed=4, out=tmp / "bigmill"),
    ]
    assert results[1].description == EVIL
    return render(compare(*results), results, generated="2024-01-01 00:00 UTC"), results


def test_sections_and_facts(report: tuple[str, list[Results]]) -> None:
    html, results = report
    page = parse(html)
    shown = " ".join(page.text)
    for heading in (
        "What was run",
        "What differs between the scenarios",
        "Comparison",
        "Outcome distributions",
        "Recorded series over time",
        "How to read the differences",
        "Parameters and their sources",
    ):
        assert heading in shown
    for res in results:
        assert res.manifest["scenario_sha256"] in shown
    assert "Flour to bread to customers, with a strike." in shown
    assert "paired run by run" in shown
    assert "assumption: a bigger mill" in shown and "assumption: a mid-size mill" in shown
    assert "triangular(90, 115, 140)" in shown  # the parameter that differs
    assert "numpy" in shown and "seed, sampler" in shown


def test_figures_are_embedded(report: tuple[str, list[Results]], tmp_path: Path) -> None:
    html, _ = report
    page = parse(html)
    assert len(page.images) == 3  # the summary's chart, the outcomes, the fan charts
    for k, src in enumerate(page.images):
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert len(png) > (10_000 if k == 0 else 20_000)
        (tmp_path / f"{k}.png").write_bytes(png)
        assert mpimg.imread(tmp_path / f"{k}.png").shape[1] > 600
    # Self-contained: nothing is fetched from anywhere.
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html


def test_script_in_a_description_is_text(report: tuple[str, list[Results]]) -> None:
    html, _ = report
    page = parse(html)
    assert "script" not in page.tags and "b" in page.tags  # our <b>, never theirs
    assert any(EVIL in t for t in page.text)
    assert "&lt;script&gt;" in html


def test_without_figures_and_with_unpaired_results() -> None:
    rng = np.random.default_rng(0)
    a = synthetic("A", {"x": rng.normal(size=100)}, seed=1, description="first")
    b = synthetic("B", {"x": rng.normal(size=100)}, seed=2, description="second")
    html = render(compare(a, b), [a, b], figures=False)
    page = parse(html)
    assert not page.images
    assert "These scenarios are not paired" in " ".join(page.text)


def test_cli_report(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        cli,
        ["report", str(BAKERY), str(variant_file(tmp_path)), "--runs", "200", "--out", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 50_000
    assert "Scenario comparison: bakery vs bakery_bigmill" in out.read_text()


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp / 'profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")
def test_chromium_renders_the_report(report: tuple[str, list[Results]], tmp_path: Path) -> None:
    html, _ = report
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    shot = tmp_path / "shot.png"
    done = chromium(f"--screenshot={shot}", "--window-size=1200,3000", page.as_uri(), tmp=tmp_path)
    assert shot.is_file(), done.stderr
    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (3000, 1200)
    # Text, tables and figures: far from a blank page.
    assert pixels[..., :3].std() > 0.05
    dom = chromium("--dump-dom", page.as_uri(), tmp=tmp_path).stdout
    assert "Parameters and their sources" in dom
    # A reader meets the summary first, then the contents, then the detail.
    assert dom.index('id="summary"') < dom.index('id="contents"') < dom.index('id="what-was-run"')
    assert 'href="#comparison"' in dom
    assert 'data-owned="yes"' not in dom  # the description's script never ran
    assert "&lt;script&gt;document.body" in dom


def test_report_states_the_condition_and_the_thresholds_near_the_top(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    args = ["report", str(BAKERY), str(variant_file(tmp_path)), "--runs", "200", "--out", str(out)]
    given, crisis = "strike_month <= 12", "hungry_months > 12"
    result = CliRunner().invoke(
        cli, [*args, "--given", given, "--threshold", crisis], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    html = out.read_text()
    text = " ".join(" ".join(parse(html).text).split())
    a = sim.run(sim.load(BAKERY), runs=200)
    kept = int(np.sum(a.parameter("strike_month") <= 12))
    assert f"{kept:,} of 200 runs kept ({kept / 200:.0%})" in text
    assert f"Only the runs where {given}" in text
    assert f"P({crisis})" in text
    # the decision-maker's numbers come before the detail
    assert html.index("Threshold probabilities") < html.index("What was run")
    bad = CliRunner().invoke(cli, [*args, "--given", "price > 1000"])
    assert bad.exit_code == 2 and "holds in none" in bad.output
    assert "Threshold probabilities" not in html.split('<h2 id="comparison">Comparison</h2>')[1]


def test_outcome_figure_draws_the_outcomes_that_differ_most() -> None:
    rng = np.random.default_rng(3)
    base = {f"x{k}": rng.normal(size=400) for k in range(9)}
    a = synthetic("A", base, seed=1)
    b = synthetic("B", {name: v + 0.1 * k for k, (name, v) in enumerate(base.items())}, seed=1)
    table = compare(a, b)
    assert table.identical == ("x0",)
    largest = [f"x{k}" for k in range(8, 8 - FIGURE_ROWS, -1)]
    assert drawn_outcomes(table) == sorted(largest)
    html = render(table, [a, b])
    rest = [f"x{k}" for k in range(1, 9 - FIGURE_ROWS)]
    assert f"Not drawn, their numbers in the table above: {', '.join(rest)}." in html
    # an outcome a threshold names is drawn however little it differs
    named = compare(a, b, thresholds=["x1 > 0"])
    assert "x1" in drawn_outcomes(named) and len(drawn_outcomes(named)) == FIGURE_ROWS
    # outcomes named with --outcome are all drawn
    every = render(compare(a, b, outcomes=list(base)), [a, b], outcomes=list(base))
    assert "Not drawn" not in every and len(parse(every).images) == 2  # no series: no fan
