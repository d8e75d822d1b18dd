"""Scenario text reaches figures as written: units, descriptions and titles holding
matplotlib math-text characters (`$_$`, `$\\frac{`) are drawn literally, in every figure."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import sim
from sim.analysis.compare import compare
from sim.analysis.discover import discover
from sim.analysis.sensitivity import sensitivity
from sim.analysis.sweep import sweep
from sim.cli import cli
from sim.present import analysis_figures, figures
from tests.helpers import BAKERY

HOSTILE = ("$_$", "$\\frac{", "a $x^$ b", "$$", "\\$ $\\sqrt{")


def hostile(tmp: Path, text: str | tuple[str, ...], name: str = "bakery") -> Path:
    """The bakery with hostile text in its units, descriptions and outcome descriptions: one
    text everywhere, or a tuple of five, one per place (so one study draws them all)."""
    texts = (text,) * 5 if isinstance(text, str) else text
    data = yaml.safe_load(BAKERY.read_text())
    data["name"] = name
    data["description"] = f"costs {texts[3]}"
    units = {"t": texts[0], "t/month": f"{texts[1]}/month", "usd": f"{texts[2]}usd"}
    for section in ("parameters", "stocks", "outcomes"):
        for spec in data[section].values():
            if isinstance(spec, dict) and spec.get("unit") in units:
                spec["unit"] = units[spec["unit"]]
    data["outcomes"]["bread_eaten"]["description"] = f"bread {texts[4]} eaten"
    data["stocks"]["silo"]["description"] = f"the silo {texts[4]}"
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# Every hostile text in one study: each in its own place (units, descriptions).


@pytest.mark.parametrize("texts", [HOSTILE], ids=["all"])
def test_every_figure_draws_hostile_text_literally(tmp_path, texts):
    text = texts[0]  # the outcomes' unit, drawn on the outcome figure's axes
    model = sim.load(hostile(tmp_path, texts))
    a = sim.run(model, runs=64, seed=1)
    b = sim.run(model, runs=64, seed=2)
    drawn = [
        figures.outcome_figure(compare(a, b), [a, b]),
        figures.fan_figure([a, b]),
        analysis_figures.sensitivity_figure(sensitivity(model, "bread_eaten", runs=32)),
        analysis_figures.sweep_figure(sweep(model, "strike_month", "6,18", runs=32)),
        analysis_figures.sweep_figure(
            sweep(model, "strike_month", "6,18", runs=32, by=("mill_output", "90,110"))
        ),
        analysis_figures.discover_figure(discover(a, "hungry_months > 5")),
    ]
    for fig in drawn:
        assert fig is not None
        assert figures.png_bytes(fig).startswith(b"\x89PNG")
        shown = [t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text"))]
        if fig is drawn[0]:
            assert any(text in s for s in shown)  # as written, not rendered as a formula
    figures.save(drawn[0], tmp_path / "out.svg")


def test_compare_plot_and_report_survive_hostile_units(tmp_path):
    # The same hostile units in both (outcomes of different units are not compared), and a
    # price that differs: outcomes identical in every paired run are listed, not drawn.
    a, b = hostile(tmp_path, HOSTILE, "a"), hostile(tmp_path, HOSTILE, "b")
    b.write_text(b.read_text().replace("price: 450", "price: 500"))
    r = CliRunner().invoke(
        cli, ["compare", str(a), str(b), "-n", "40", "--plot", str(tmp_path / "p.png")]
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "p.png").is_file() and (tmp_path / "p_fan.png").is_file()
    r = CliRunner().invoke(
        cli, ["report", str(a), str(b), "-n", "40", "--out", str(tmp_path / "r.html")]
    )
    assert r.exit_code == 0, r.output


def test_text_stays_literal_under_a_tex_matplotlibrc(tmp_path):
    import matplotlib as mpl

    model = sim.load(hostile(tmp_path, "$\\frac{"))
    a = sim.run(model, runs=32, seed=1)
    with mpl.rc_context({"text.usetex": True}):  # as a user's matplotlibrc may say
        assert figures.png_bytes(figures.outcome_figure(compare(a, a), [a, a]))
