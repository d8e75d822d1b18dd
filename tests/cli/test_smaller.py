"""Small things a new user trips on: trace columns, --resume on a finished folder, YAML
indentation, fan-chart units, the sweep figure's legend and palette."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.colors import to_rgb

import sim
from sim.analysis.sweep import sweep
from sim.cli import cli
from sim.errors import ScenarioError
from sim.model import load
from sim.present.analysis_figures import sweep_figure
from sim.present.figures import fan_figure, series_unit
from tests.helpers import BAKERY


def test_trace_columns_line_up_past_tick_nine():
    r = CliRunner().invoke(cli, ["trace", str(BAKERY), "--all"])
    assert r.exit_code == 0, r.output
    rows = [line for line in r.output.splitlines() if re.match(r"\d{4}-\d{2} \(tick", line)]
    ticks = [int(re.search(r"tick +(\d+)\)", row)[1]) for row in rows]  # type: ignore[index]
    assert min(ticks) < 10 <= max(ticks)
    starts = {re.search(r"\)  (\S)", row).start(1) for row in rows}  # type: ignore[union-attr]
    assert len(starts) == 1, rows  # the event kind starts in one column on every row
    follow = [line for line in r.output.splitlines() if line.startswith(" " * 10) and line.strip()]
    assert follow and {len(line) - len(line.lstrip()) for line in follow} == starts


def test_resume_on_a_finished_folder_says_it_was_already_complete(tmp_path):
    out = tmp_path / "r"
    args = ["run", str(BAKERY), "-n", "50", "-w", "1", "--out", str(out)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    finished = json.loads((out / "manifest.json").read_text())["finished"]
    r = CliRunner().invoke(cli, [*args, "--resume"])
    assert r.exit_code == 0, r.output
    assert "was already complete, nothing to resume" in r.output
    assert f"finished {finished}" in r.output and "wrote" not in r.output
    r = CliRunner().invoke(cli, [*args, "--resume", "--json"])
    assert json.loads(r.output)["already_complete"] is True
    r = CliRunner().invoke(cli, [*args, "--json"])
    assert json.loads(r.output)["already_complete"] is False


HEAD = "name: a\nstart: 2024-01\nmonths: 3\n"


@pytest.mark.parametrize(
    ("body", "line", "col", "words"),
    [
        ("  runs: 10\n", 4, 3, "indented 2 spaces, deeper than the line above it (0)"),
        ("stocks:\n  a:\n    unit: t\n   initial: 3\n", 7, 4, "matches no level above it"),
        ("record:\n  - a\n - b\n", 6, 2, "indented 1 space, which matches no level"),
        ("description: Claim: x\n", 4, 19, "a ': ' inside a plain value"),
    ],
)
def test_bad_indentation_is_said_in_plain_words_with_its_place(tmp_path, body, line, col, words):
    path = tmp_path / "a.yaml"
    path.write_text(HEAD + body)
    with pytest.raises(ScenarioError) as err:
        load(path)
    (problem,) = err.value.problems
    assert words in problem.message and problem.place is not None
    assert (problem.place.line, problem.place.col) == (line, col)
    if "indent" in words:
        assert "bad indentation" in problem.message and "spaces" in (problem.hint or "")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> sim.Results:
    path = tmp_path_factory.mktemp("fan") / "m.yaml"
    path.write_text(
        HEAD.replace("months: 3", "months: 6")
        + "parameters:\n  k: {dist: uniform, low: 1, high: 2, source: assumption}\n"
        "variables:\n  ratio: silo / 10\n"
        "stocks:\n  mill: {unit: t, kind: source}\n  silo: {unit: t, description: Grain}\n"
        "flows:\n  fill: {from: mill, to: silo, rate: k}\n"
        "outcomes:\n  s: {of: silo, stat: final}\n"
        "record: [silo, flow.fill, cum.fill, ratio]\n"
    )
    return sim.run(load(path), runs=20, seed=1)


def test_every_fan_panel_names_its_unit(recorded):
    units = {s: series_unit(recorded, s) for s in recorded.series_names}
    assert units == {"silo": "t", "flow.fill": "t/month", "cum.fill": "t", "ratio": ""}
    fig = fan_figure([recorded])
    assert fig is not None
    shown = {ax.get_title(loc="left").split(" ")[0]: ax for ax in fig.axes if ax.get_visible()}
    assert shown["silo"].get_title(loc="left").startswith("silo (t): Grain")
    assert shown["flow.fill"].get_ylabel() == "t/month"
    assert "(no unit declared)" in shown["ratio"].get_title(loc="left")
    assert shown["ratio"].get_ylabel() == "no unit declared"


def _luminance(color: object) -> float:
    r, g, b = to_rgb(color)  # type: ignore[arg-type]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_two_lever_sweep_is_larger_with_an_ordered_palette_and_a_legend_beside():
    model = load(BAKERY)
    two = sweep(model, "strike_month", "6,18,30", runs=20, by=("mill_output", "130,80,100"))
    one = sweep(model, "strike_month", "6,18,30", runs=20)
    fig2, fig1 = sweep_figure(two, ["bread_eaten"]), sweep_figure(one, ["bread_eaten"])
    assert fig2.get_figwidth() > fig1.get_figwidth() and fig2.get_figheight() > fig1.get_figheight()
    (legend,) = fig2.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[:3] == ["80", "100", "130"]  # in the order of the values
    lum = [_luminance(h.get_color()) for h in legend.legend_handles[:3]]  # type: ignore[union-attr]
    assert lum[0] > lum[1] > lum[2]  # one sequential colormap: darker for larger values
    medians = [line for line in fig2.axes[0].get_lines() if line.get_linewidth() == 2]
    by_value = dict(zip((130.0, 80.0, 100.0), medians, strict=True))
    assert np.allclose(
        to_rgb(by_value[80.0].get_color()), to_rgb(legend.legend_handles[0].get_color())
    )  # type: ignore[union-attr]
    # Beside the panels (right of every axes), not under the last row.
    fig1.draw_without_rendering()
    fig2.draw_without_rendering()
    box = legend.get_window_extent()
    assert all(box.x0 >= ax.get_window_extent().x1 for ax in fig2.axes)
    assert fig1.legends[0].get_window_extent().x0 >= fig1.axes[0].get_window_extent().x1
