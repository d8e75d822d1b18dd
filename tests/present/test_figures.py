"""sim.present.figures: figures are made, readable (titles, units, legends, dates) and written as files."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib.dates as mdates
import matplotlib.image as mpimg
import numpy as np
import pytest
from click.testing import CliRunner

import sim
from sim.analysis.compare import compare
from sim.cli import cli
from sim.present import figures as plots
from sim.study.results import Results
from tests.analysis.test_compare import synthetic, variant_file
from tests.helpers import BAKERY


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> list[Results]:
    tmp = tmp_path_factory.mktemp("plots")
    return [
        sim.run(sim.load(BAKERY), runs=300, seed=3),
        sim.run(sim.load(variant_file(tmp)), runs=300, seed=3),
    ]


def assert_real_png(path: Path, min_bytes: int = 20_000) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > min_bytes
    pixels = mpimg.imread(path)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 600
    assert pixels[..., :3].std() > 0.05  # not a blank canvas


def legend(ax: Any) -> list[str]:
    box = ax.get_legend()
    assert box is not None
    return [t.get_text() for t in box.get_texts()]


def test_outcome_figure(pair: list[Results], tmp_path: Path) -> None:
    table = compare(*pair)
    fig = plots.outcome_figure(table, pair)
    assert len(fig.axes) == 2 * len(table.outcomes)
    left, right = fig.axes[0], fig.axes[1]
    assert "bread_eaten" in left.get_title(loc="left") and "(t)" in left.get_xlabel()
    assert legend(left) == ["bakery", "bakery_bigmill"]
    assert "paired" in legend(right)[0]
    assert right.get_xlabel() == "difference in bread_eaten (t)"
    never = legend(fig.axes[4])[0]  # first_empty
    assert "never" in never
    assert_real_png(plots.save(fig, tmp_path / "outcomes.png"))


def test_outcome_figure_unpaired_and_empty(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a = synthetic("A", {"x": rng.normal(size=300), "f": np.full(300, math.nan)}, seed=1)
    b = synthetic("B", {"x": rng.normal(1, 1, 300), "f": np.full(300, math.nan)}, seed=2)
    fig = plots.outcome_figure(compare(a, b), [a, b])
    assert "unpaired" in legend(fig.axes[1])[0]
    assert fig.axes[1].get_title(loc="left").startswith("Difference of means")
    plots.save(fig, tmp_path / "unpaired.png")
    assert (tmp_path / "unpaired.png").stat().st_size > 10_000


def test_fan_figure_has_dates_units_and_a_legend(pair: list[Results], tmp_path: Path) -> None:
    fig = plots.fan_figure(pair)
    assert fig is not None
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title(loc="left") for ax in shown] == ["silo (t)", "bakery (t)", "till (usd)"]
    for ax in shown:
        assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
        low, high = (mdates.num2date(x) for x in ax.get_xlim())
        assert low.year <= 2024 and high.year >= 2026
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "bakery: median" in labels and any("p25–p75" in t for t in labels)
    assert_real_png(plots.save(fig, tmp_path / "fan.png"))


def test_fan_figure_none_without_shared_series() -> None:
    a = synthetic("A", {"x": np.arange(10.0)})
    assert plots.fan_figure([a, a]) is None


def test_outcome_meaning() -> None:
    assert plots.outcome_meaning({"stat": "first", "of": "silo < 1"}) == (
        "first month in which silo < 1"
    )
    assert plots.outcome_meaning({"stat": "final", "of": "x", "description": "Stock"}) == "Stock"


def test_cli_plot_writes_outcomes_and_fan(tmp_path: Path) -> None:
    out = tmp_path / "cmp.png"
    result = CliRunner().invoke(
        cli,
        ["compare", str(BAKERY), str(variant_file(tmp_path)), "--runs", "200", "--plot", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert_real_png(out)
    assert_real_png(tmp_path / "cmp_fan.png")
    assert f"wrote {out}" in result.output


def test_band_of_results_made_in_memory() -> None:
    # A fresh interpreter that never imports sim.present.figures (which imports pyarrow.compute).
    code = (
        "import sim\n"
        f"res = sim.run(sim.load({str(BAKERY)!r}), runs=5, seed=1)\n"
        "assert len(res.band('silo')['p50']) == 36\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
