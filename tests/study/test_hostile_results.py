"""Damaged or forged manifests are refused before use by every reader (Results.load, compare,
report, discover, --resume, analysis folders): one ResultsError naming the folder and the
field, exit 2, never an internal error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import sim
from sim.analysis import saved
from sim.cli import cli
from sim.errors import ResultsError
from sim.study import manifest as manifests
from sim.study import store
from sim.study.results import Results
from tests.helpers import BAKERY


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("good")
    for name, seed in (("a", "1"), ("b", "2")):
        r = CliRunner().invoke(
            cli, ["run", str(BAKERY), "-n", "120", "-s", seed, "--out", str(root / name)]
        )
        assert r.exit_code == 0, r.output
    r = CliRunner().invoke(
        cli, ["discover", str(root / "a"), "--where", "hungry_months > 5", "--out", str(root / "d")]
    )
    assert r.exit_code == 0, r.output
    return root / "a", root / "b", root / "d"


def _edit(folder: Path, change: Any) -> None:
    path = folder / store.MANIFEST
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _set(key: str, value: Any) -> Any:
    return lambda d: d.__setitem__(key, value)


def _replace(folder: Path, old: str, new: str) -> None:
    path = folder / store.MANIFEST
    text = json.dumps(json.loads(path.read_text()))
    assert old in text
    path.write_text(text.replace(old, new))


def _raw(text: str) -> Any:
    def write(folder: Path) -> None:
        (folder / store.MANIFEST).write_text(text)

    return write


RUN_DAMAGE: dict[str, tuple[Any, str]] = {
    "deeply nested": (_raw('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"), "nested deeper"),
    "runs 1e999": (
        lambda f: _replace(f, '"runs": 120', '"runs": 1e999'),
        "runs: Input should be a valid integer",
    ),
    "runs 1e999 alone": (_raw('{"format_version": 1, "runs": 1e999}'), "manifest.json"),
    "runs as text": (lambda f: _edit(f, _set("runs", "120")), "runs"),
    "runs edited": (lambda f: _edit(f, _set("runs", 50)), "runs.parquet holds 120"),
    "runs huge int": (_raw('{"runs": 1' + "0" * 5000 + "}"), "damaged manifest"),
    "seed negative": (lambda f: _edit(f, _set("seed", -3)), "seed"),
    "outcomes not a mapping": (lambda f: _edit(f, _set("outcomes", [1, 2])), "outcomes"),
    "outcome unit a number": (
        lambda f: _edit(f, lambda d: d["outcomes"]["bread_eaten"].__setitem__("unit", 7)),
        "outcomes.bread_eaten.unit",
    ),
    "outcome not in runs": (
        lambda f: _edit(
            f, lambda d: d["outcomes"].__setitem__("ghost", {"unit": "t", "stat": "final"})
        ),
        "ghost",
    ),
    "scenario name missing": (
        lambda f: _edit(f, lambda d: d["scenario"].pop("name")),
        "scenario.name",
    ),
    "sha256 path outside": (
        lambda f: _edit(f, lambda d: d["sha256"].__setitem__("../../etc/passwd", "0" * 64)),
        "sha256",
    ),
    "NaN": (lambda f: _replace(f, '"seed": 1', '"seed": NaN'), "NaN"),
    "huge file": (_raw(" " * (manifests.MAX_BYTES + 10) + "{}"), "larger than"),
    "not an object": (_raw("[1, 2]"), "not a JSON object"),
}


@pytest.mark.parametrize("damage", sorted(RUN_DAMAGE))
def test_every_reader_refuses_a_damaged_manifest(good, tmp_path, damage):
    a, b, _ = good
    harm, expected = RUN_DAMAGE[damage]
    bad = tmp_path / "bad"
    shutil.copytree(a, bad)
    harm(bad)
    with pytest.raises(ResultsError, match=expected) as caught:
        Results.load(bad)
    assert str(bad) in str(caught.value)
    for command in (
        ["compare", str(b), str(bad)],
        ["report", str(b), str(bad), "--out", str(tmp_path / "r.html")],
        ["discover", str(bad), "--where", "hungry_months > 5", "--out", str(tmp_path / "d")],
        ["run", str(BAKERY), "-n", "120", "-s", "1", "--out", str(bad), "--resume"],
    ):
        r = CliRunner().invoke(cli, command)
        assert r.exit_code == 2, (command, r.output)
        assert str(bad) in r.output and "internal error" not in r.output, r.output
    assert not (tmp_path / "r.html").exists()


def test_a_manifest_edited_to_other_runs_is_not_compared_unpaired(good, tmp_path):
    a, b, _ = good
    bad = tmp_path / "bad"
    shutil.copytree(a, bad)
    _edit(bad, _set("runs", 2000))
    r = CliRunner().invoke(cli, ["compare", str(b), str(bad)])
    assert r.exit_code == 2 and "says 2,000 runs" in r.output


ANALYSIS_DAMAGE: dict[str, tuple[Any, str]] = {
    "deeply nested": (
        _raw('{"kind": "discover", "x": ' + "{" * 5000 + "}" * 5000 + "}"),
        "nested deeper",
    ),
    "files outside": (
        lambda f: _edit(f, lambda d: d["sha256"].__setitem__("/etc/passwd", "0" * 64)),
        "sha256",
    ),
    "settings a list": (lambda f: _edit(f, _set("settings", [1])), "settings"),
    "complete as text": (lambda f: _edit(f, _set("complete", "yes")), "complete"),
}


@pytest.mark.parametrize("damage", sorted(ANALYSIS_DAMAGE))
def test_report_refuses_a_damaged_analysis_folder(good, tmp_path, damage):
    _, _, d = good
    harm, expected = ANALYSIS_DAMAGE[damage]
    bad = tmp_path / "bad"
    shutil.copytree(d, bad)
    harm(bad)
    with pytest.raises(ResultsError, match=expected):
        saved.load(bad)
    r = CliRunner().invoke(cli, ["report", str(bad), "--out", str(tmp_path / "r.html")])
    assert r.exit_code == 2 and str(bad) in r.output, r.output


def test_whole_folders_still_load(good):
    a, _, d = good
    assert Results.load(a).n_runs == 120
    assert saved.load(d).kind == "discover"
    assert sim.run(sim.load(BAKERY), runs=120, seed=1, out=a, resume=True).n_runs == 120
