"""The loader: places of values, YAML merge keys, extends chains, bounded reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import Place, ScenarioError
from sim.scenario.loader import load_document, read_yaml

HEAD = "name: x\nstart: 2024-01\nmonths: 12\n"


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_merge_keys_follow_yaml_own_keys_override_first_merge_wins(tmp_path: Path) -> None:
    doc = read_yaml(
        write(
            tmp_path,
            HEAD
            + "stocks:\n"
            + "  silo: &s {unit: t, initial: 5}\n"
            + "  bin: &b {<<: *s, initial: 7}\n"
            + "  again: *b\n"
            + "  both: {<<: [*s, {unit: kg, kind: sink}]}\n",
        )
    )
    stocks = doc.data["stocks"]
    assert stocks["bin"] == {"unit": "t", "initial": 7}
    assert stocks["again"] == {"unit": "t", "initial": 7}
    assert stocks["both"] == {"unit": "t", "initial": 5, "kind": "sink"}


def test_a_mappings_own_duplicate_key_is_still_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "stocks:\n  s: &s {unit: t}\n  b: {<<: *s, unit: t, unit: kg}\n")
    with pytest.raises(ScenarioError) as err:
        read_yaml(path)
    assert str(err.value) == f"{path}:6:24: stocks.b.unit: duplicate key 'unit'"


def test_a_self_merging_anchor_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="used inside itself"):
        read_yaml(write(tmp_path, HEAD + "stocks:\n  a: &a {<<: *a}\n"))


def test_a_long_chain_of_merges_is_refused(tmp_path: Path) -> None:
    chain = "".join(f"  a{i}: &a{i} {{<<: *a{i - 1}}}\n" for i in range(1, 80))
    with pytest.raises(ScenarioError, match="merge keys"):
        read_yaml(write(tmp_path, HEAD + "stocks:\n  a0: &a0 {unit: t}\n" + chain))


def test_an_override_in_a_child_file_is_placed_in_the_child(tmp_path: Path) -> None:
    write(tmp_path, HEAD + "parameters:\n  p: {dist: uniform, low: 1, high: 2}\n", "_base.yaml")
    child = write(tmp_path, "extends: _base.yaml\nparameters:\n  p: {low: 3}\n")
    doc = load_document(child)
    assert doc.data["parameters"]["p"] == {"dist": "uniform", "low": 3, "high": 2}
    assert doc.place(("parameters", "p")) == Place(str(child), 3, 6)
    assert doc.place(("parameters", "p", "high")) == Place(str(tmp_path / "_base.yaml"), 5, 36)


def test_an_extends_cycle_names_files_as_written(tmp_path: Path) -> None:
    a = write(tmp_path, "extends: b.yaml\n", "a.yaml")
    write(tmp_path, "extends: a.yaml\n", "b.yaml")
    with pytest.raises(ScenarioError) as err:
        load_document(a)
    assert str(err.value) == (
        f"{a}:1:10: extends: files extend each other in a cycle: "
        f"{a} -> {tmp_path / 'b.yaml'} -> {tmp_path / 'a.yaml'}"
    )


def test_reads_are_bounded(tmp_path: Path) -> None:
    """/dev/zero never ends; the loader must stop reading, not hang."""
    with pytest.raises(ScenarioError, match="larger than"):
        read_yaml(Path("/dev/zero"))
