"""No command writes over one of its inputs, nor over a file that is not its own kind of
output without --force: `sim report --out`, `sim compare --plot/--fan` (and the fan chart
beside --plot), `sim run --out`, and the analyses' --out."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli import cli
from tests.helpers import BAKERY


def invoke(*args: object) -> tuple[int, str]:
    r = CliRunner().invoke(cli, [str(a) for a in args])
    return r.exit_code, r.output


@pytest.fixture()
def two(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    shutil.copy(BAKERY, a)
    b.write_text(BAKERY.read_text().replace("name: bakery", "name: bakery_b"))
    return a, b


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("res") / "a"
    code, output = invoke("run", BAKERY, "-n", "50", "--out", out)
    assert code == 0, output
    return out


def test_report_never_writes_over_an_input(two, folder, tmp_path):
    a, b = two
    before = a.read_bytes()
    link = tmp_path / "link.html"
    link.symlink_to(a)
    hard = tmp_path / "hard.html"
    os.link(a, hard)
    for out in (a, link, hard, folder / "runs.parquet", folder / "manifest.json"):
        sources = (
            (a, b) if out.suffix != ".parquet" and out.name != "manifest.json" else (folder, a)
        )
        for force in ([], ["--force"]):
            code, output = invoke("report", *sources, "-n", "20", "--out", out, *force)
            assert code == 2, (out, output)
            assert "one of this command's inputs" in output and str(out) in output
    assert a.read_bytes() == before


def test_report_replaces_only_its_own_kind_of_file(two, tmp_path):
    a, b = two
    notes = tmp_path / "notes.yaml"
    notes.write_text("keep: me\n")
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><html><body>someone's page</body></html>")
    for other in (notes, page):
        code, output = invoke("report", a, b, "-n", "20", "--out", other)
        assert code == 2 and "--force" in output and str(other) in output
    assert notes.read_text() == "keep: me\n"
    out = tmp_path / "r.html"
    assert invoke("report", a, b, "-n", "20", "--out", out)[0] == 0
    assert invoke("report", a, b, "-n", "20", "--out", out)[0] == 0  # its own report: replaced
    assert invoke("report", a, b, "-n", "20", "--out", notes, "--force")[0] == 0


def test_compare_figures_replace_only_figures(two, folder, tmp_path):
    a, b = two
    parquet = tmp_path / "p.png"
    shutil.copy(folder / "runs.parquet", parquet)
    code, output = invoke("compare", a, b, "-n", "20", "--plot", parquet)
    assert code == 2 and "--force" in output and "not a .png image" in output
    # The fan chart written beside --plot is checked too, before anything runs.
    plot = tmp_path / "q.png"
    beside = tmp_path / "q_fan.png"
    beside.write_text("precious")
    code, output = invoke("compare", a, b, "-n", "20", "--plot", plot)
    assert code == 2 and str(beside) in output and not plot.exists()
    assert beside.read_text() == "precious"
    code, output = invoke("compare", a, b, "-n", "20", "--fan", tmp_path / "f.svg")
    assert code == 0, output
    svg = tmp_path / "f.svg"
    assert invoke("compare", a, b, "-n", "20", "--fan", svg)[0] == 0  # an SVG over an SVG
    code, output = invoke("compare", a, b, "-n", "20", "--fan", a.with_suffix(".yaml"))
    assert code == 2
    code, output = invoke("compare", folder, a, "--fan", folder / "bands.parquet", "--force")
    assert code == 2 and "bands.parquet" in output
    assert invoke("compare", a, b, "-n", "20", "--plot", plot, "--force")[0] == 0
    assert beside.read_bytes().startswith(b"\x89PNG")


def test_run_and_analyses_never_replace_their_inputs(folder, tmp_path):
    scenario = tmp_path / "runs.parquet"  # a scenario a run's folder would clear
    shutil.copy(BAKERY, scenario)
    code, output = invoke("run", scenario, "-n", "20", "--out", tmp_path, "--force")
    assert code == 2 and "one of this command's inputs" in output
    assert scenario.read_text() == BAKERY.read_text()
    before = (folder / "manifest.json").read_bytes()
    code, output = invoke(
        "discover", folder, "--where", "hungry_months > 5", "--out", folder, "--force"
    )
    assert code == 2 and "input" in output
    assert (folder / "manifest.json").read_bytes() == before
    sweep_input = tmp_path / "sweep.parquet"
    shutil.copy(BAKERY, sweep_input)
    code, output = invoke(
        "sweep", sweep_input, "--set", "strike_month=6,18", "-n", "10", "--out", tmp_path, "--force"
    )
    assert code == 2 and "input" in output
