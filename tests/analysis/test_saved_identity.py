"""Analyses never replace each other silently, and a report never mixes in a stale one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.analysis import saved as analyses
from sim.cli import cli
from sim.study import store
from tests.helpers import BAKERY


def sim_(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, [str(a) for a in args])
    return r.exit_code, r.output


@pytest.fixture
def bakery(tmp_path: Path) -> Path:
    """A copy of the bakery beside its results, so that tests may edit it."""
    path = tmp_path / "bakery.yaml"
    path.write_text(BAKERY.read_text())
    return path


@pytest.fixture
def runs(tmp_path: Path, bakery: Path) -> Path:
    out = tmp_path / "runs"
    code, output = sim_("run", bakery, "-n", "200", "-s", "1", "-w", "1", "--out", out)
    assert code == 0, output
    return out


def test_a_second_discover_with_another_condition_is_refused_unless_forced(tmp_path, runs):
    out = tmp_path / "d"
    assert sim_("discover", runs, "--where", "hungry_months > 3", "-o", out)[0] == 0
    code, output = sim_("discover", runs, "--where", "hungry_months > 9", "-o", out)
    assert code == 2 and "Traceback" not in output
    assert "holds another discover analysis" in output
    assert 'where "hungry_months > 3" there, "hungry_months > 9" now' in output
    assert analyses.load(out).settings["where"] == "hungry_months > 3"  # untouched
    assert sim_("discover", runs, "--where", "hungry_months > 3", "-o", out)[0] == 0  # the same
    code, _ = sim_("discover", runs, "--where", "hungry_months > 9", "-o", out, "--force")
    assert code == 0 and analyses.load(out).settings["where"] == "hungry_months > 9"


def test_a_sensitivity_with_other_runs_is_refused_before_its_study_starts(tmp_path, bakery):
    out = tmp_path / "s"
    args = ["sensitivity", bakery, "--outcome", "bread_eaten", "-w", "1", "-o", out]
    assert sim_(*args, "--runs", "32")[0] == 0
    study = (out / "study" / store.MANIFEST).read_bytes()
    code, output = sim_(*args, "--runs", "64")
    assert code == 2 and "runs 32 there, 64 now" in output
    assert (out / "study" / store.MANIFEST).read_bytes() == study  # its runs were not replaced
    assert analyses.load(out).settings["runs"] == 32


def test_a_sweep_of_other_values_is_refused(tmp_path, bakery):
    out = tmp_path / "w"
    args = ["sweep", bakery, "-n", "20", "-w", "1", "-o", out]
    assert sim_(*args, "--set", "strike_month=6,18")[0] == 0
    code, output = sim_(*args, "--set", "strike_month=6,12,18")
    assert code == 2 and "levers" in output and "--force" in output
    manifest = json.loads((out / store.MANIFEST).read_text())
    assert manifest["identity"]["levers"] == ["strike_month=6,18"]


def test_the_report_leaves_out_a_discovery_whose_results_ran_again(tmp_path, bakery, runs):
    found = tmp_path / "d"
    assert sim_("discover", runs, "--where", "hungry_months > 3", "-o", found)[0] == 0
    page = tmp_path / "r.html"
    code, output = sim_("report", found, "--out", page)
    assert code == 0 and "warning" not in output
    assert "Discovery: where hungry_months &gt; 3" in page.read_text()

    assert sim_("run", bakery, "-n", "200", "-s", "2", "-w", "1", "--out", runs)[0] == 0
    saved = analyses.load(found)
    assert analyses.stale(saved) == f"the results it searched, {runs}, have been run again since"
    code, output = sim_("report", found, "--out", page)
    assert code == 0 and f"warning: left {found} out of the report" in output
    html = page.read_text()
    assert "Left out: discover of bakery" in html and "Discovery: where" not in html


def test_an_analysis_of_an_edited_scenario_is_stale(tmp_path, bakery):
    out = tmp_path / "w"
    assert (
        sim_("sweep", bakery, "--set", "strike_month=6,18", "-n", "20", "-w", "1", "-o", out)[0]
        == 0
    )
    assert analyses.stale(analyses.load(out)) is None
    bakery.write_text(
        bakery.read_text().replace(
            "mill_output: {dist: triangular, low: 80", "mill_output: {dist: triangular, low: 70"
        )
    )
    assert (
        analyses.stale(analyses.load(out)) == f"its scenario file {bakery} has changed since it ran"
    )


def test_an_analysis_of_another_version_than_the_compared_results_is_stale(tmp_path, bakery, runs):
    import sim

    out = tmp_path / "w"
    assert (
        sim_("sweep", bakery, "--set", "strike_month=6,18", "-n", "20", "-w", "1", "-o", out)[0]
        == 0
    )
    saved = analyses.load(out)
    same = sim.Results.load(runs)
    assert analyses.stale(saved, [same]) is None
    other = tmp_path / "other.yaml"
    other.write_text(bakery.read_text().replace("price: 450", "price: 460"))
    changed = sim.run(sim.load(other), runs=20, seed=1)
    why = analyses.stale(saved, [changed])
    assert why is not None and why.startswith("it ran another version of scenario bakery")
