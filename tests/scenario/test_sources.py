"""A scenario's sources file and its citations: parsing, located errors, warnings, extends."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli import cli
from sim.errors import ScenarioError
from sim.model import load
from sim.scenario.sources import cited, entries_cited, is_assumption, read

SOURCES = """\
# Sources

Free text before the first entry is allowed.

## Munitions

### [MSMT-2025-05] Monitoring team, first report
- publisher: Multilateral Sanctions Monitoring Team
- date: 2025-05-29
- url: http://example.org/msmt
- figures: ~9 M rounds in 2024,
  delivered in 49 shipments
- reliability: intelligence

### [RUSI-2025-04] Reuters and RUSI
- publisher: Reuters
- date: 2025-04
- figures: 4–6 M shells
- reliability: OSINT
"""


def model_text(source: str, sources: str | None = "sources.md") -> str:
    head = f"sources: {sources}\n" if sources else ""
    return (
        f"name: m\nstart: 2024-01\nmonths: 3\n{head}"
        "parameters:\n"
        f"  demand: {{dist: uniform, low: 1, high: 2, unit: t, source: {source!r}}}\n"
        "stocks:\n  a: {unit: t, kind: source}\n  b: {unit: t}\n"
        "flows:\n  f: {from: a, to: b, rate: demand}\n"
        "outcomes:\n  total: {of: b, stat: final}\n"
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "sources.md").write_text(SOURCES)
    return tmp_path


def test_entries_are_parsed_with_continuation_lines_and_places(folder):
    entries = read(folder / "sources.md")
    assert list(entries) == ["MSMT-2025-05", "RUSI-2025-04"]
    msmt = entries["MSMT-2025-05"]
    assert msmt.title == "Monitoring team, first report"
    assert msmt.figures == "~9 M rounds in 2024, delivered in 49 shipments"
    assert msmt.url == "http://example.org/msmt" and entries["RUSI-2025-04"].url == ""
    assert msmt.place is not None and (msmt.place.line, msmt.place.col) == (7, 5)


def test_keys_in_text_and_what_is_not_a_key():
    text = "[MSMT-2025-05] ~9 M; [RUSI-2025-04] 4–6 M; [O] tag, [95% CI], [MSMT-2025-05] again"
    assert cited(text) == ["MSMT-2025-05", "RUSI-2025-04"]
    assert cited("[38NORTH-2024-08] and [UNSCR-2397]") == ["38NORTH-2024-08", "UNSCR-2397"]
    assert cited("[1] and [kdi-2024]") == []
    assert is_assumption("  Assumption: x") and not is_assumption("an assumption")


@pytest.mark.parametrize(
    ("text", "line", "col", "words"),
    [
        ("### [A-1] t\n- publisher: p\n- date: d\n- figures: f\n", 1, 5, "lacks reliability"),
        ("### [A-1] t\n- publisher: p\n- colour: red\n", 3, 3, "unknown field 'colour'"),
        ("### [A-1] t\n- publisher: p\nstray text\n", 3, 1, "expected '- field: value'"),
        (SOURCES + "\n### [RUSI-2025-04] again\n" + SOURCES.split("Reuters and RUSI\n")[1], 21, 5,
         "duplicate key [RUSI-2025-04] (first at"),
    ],
)  # fmt: skip
def test_a_malformed_sources_file_is_located(tmp_path, text, line, col, words):
    path = tmp_path / "s.md"
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        read(path)
    problem = next(p for p in err.value.problems if words in p.message)
    assert problem.place is not None
    assert (problem.place.file, problem.place.line, problem.place.col) == (str(path), line, col)


def test_an_unknown_key_is_a_located_error_with_the_nearest_key(folder):
    path = folder / "m.yaml"
    path.write_text(model_text("[MSMT-2025-5] ~9 M; [RUSI-2025-04] 4–6 M"))
    with pytest.raises(ScenarioError) as err:
        load(path)
    (problem,) = err.value.problems
    assert problem.path == "parameters.demand.source"
    assert "unknown source key [MSMT-2025-5]" in problem.message
    assert problem.hint == "did you mean 'MSMT-2025-05'?"
    assert problem.place is not None and problem.place.line == 6
    r = CliRunner().invoke(cli, ["validate", str(path)])
    assert r.exit_code == 2 and f"{path}:6:" in r.output and "Traceback" not in r.output


def test_with_a_sources_file_free_text_is_an_error_and_assumptions_pass(folder):
    path = folder / "m.yaml"
    path.write_text(model_text("a mid-size mill"))
    with pytest.raises(ScenarioError, match=r"neither cites a key of sources\.md nor starts"):
        load(path)
    path.write_text(model_text("assumption: a mid-size mill, bounded by [RUSI-2025-04]"))
    assert list(entries_cited(load(path).scenario, load(path).place)) == ["RUSI-2025-04"]
    path.write_text(model_text("assumption: bounded by [NOPE-1]"))
    with pytest.raises(ScenarioError, match=r"unknown source key \[NOPE-1\]"):
        load(path)


def test_a_missing_sources_file_is_an_error_at_the_key(folder):
    path = folder / "m.yaml"
    path.write_text(model_text("[MSMT-2025-05]", sources="docs/none.md"))
    with pytest.raises(ScenarioError) as err:
        load(path)
    (problem,) = err.value.problems
    assert problem.path == "sources" and "does not exist" in problem.message
    assert problem.place is not None and problem.place.line == 4


def test_a_broken_sources_file_is_reported_in_that_file(folder):
    (folder / "sources.md").write_text("### [A-1] t\n- publisher: p\n")
    path = folder / "m.yaml"
    path.write_text(model_text("[A-1]"))
    with pytest.raises(ScenarioError) as err:
        load(path)
    assert err.value.problems[0].place.file == str(folder / "sources.md")  # type: ignore[union-attr]


def test_the_path_is_relative_to_the_file_that_names_it_through_extends(folder):
    sub = folder / "scenarios"
    sub.mkdir()
    (sub / "base.yaml").write_text(model_text("[RUSI-2025-04] 4–6 M", sources="../sources.md"))
    (sub / "child.yaml").write_text("extends: base.yaml\nname: child\n")
    model = load(sub / "child.yaml")
    assert list(entries_cited(model.scenario, model.place)) == ["RUSI-2025-04"]


def test_without_a_sources_file_validate_warns_but_passes(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(model_text("payroll 2023", sources=None))
    r = CliRunner().invoke(cli, ["validate", str(path)])
    assert r.exit_code == 0, r.output
    assert f"{path}: ok" in r.output
    assert f"warning: {path}:5:" in r.output and "the source is free text" in r.output
    path.write_text(model_text("[MSMT-2025-05] ~9 M", sources=None))
    r = CliRunner().invoke(cli, ["validate", str(path)])
    assert r.exit_code == 0 and "cite keys like [MSMT-2025-05]" in r.output
    assert "no key is checked" in r.output
    path.write_text(model_text("assumption: a guess", sources=None))
    r = CliRunner().invoke(cli, ["validate", str(path)])
    assert r.exit_code == 0 and "warning" not in r.output


def test_show_prints_the_cited_entries(folder):
    path = folder / "m.yaml"
    path.write_text(model_text("[RUSI-2025-04] 4–6 M"))
    r = CliRunner().invoke(cli, ["show", str(path)])
    assert r.exit_code == 0, r.output
    assert "Sources cited" in r.output
    assert "RUSI-2025-04" in r.output and "Reuters and RUSI" in r.output and "OSINT" in r.output
    assert "MSMT-2025-05" not in r.output  # defined but not cited
