"""The loader: places of values, YAML merge keys, extends chains, bounded reads."""

from __future__ import annotations

import datetime as dt
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.errors import Place, ScenarioError
from sim.scenario.loader import SCENARIO_KEYS, load_document, read_yaml
from sim.scenario.schema import Scenario

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
    """A regular file can be huge; the loader stops reading past the limit."""
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * 1_000_001 + "\n")
    with pytest.raises(ScenarioError, match="larger than"):
        read_yaml(big)


# -- YAML 1.2 ------------------------------------------------------------------------------
READ_AS = {
    # YAML 1.1 (PyYAML) read these differently: 1:30 as 90, yes/on/off/no/y as booleans,
    # 1e300 as text, 1_000 as 1000, 0b101 as 5.
    "1:30": "1:30",
    "yes": "yes",
    "no": "no",
    "on": "on",
    "off": "off",
    "y": "y",
    "1_000": "1_000",
    "0b101": "0b101",
    "1e300": 1e300,
    "1E3": 1000.0,
    "-2.5e-3": -0.0025,
    "1.": 1.0,
    ".5": 0.5,
    "0o17": 15,
    "0x1F": 31,
    "17": 17,
    "+12": 12,
    "-0": 0,
    "0": 0,
    "0.5": 0.5,
    "017.5": 17.5,
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "FALSE": False,
    "tRUE": "tRUE",
    "~": None,
    "null": None,
    "Null": None,
    "NULL": None,
    "": None,
    "nULL": "nULL",
    ".inf": math.inf,
    "-.Inf": -math.inf,
    "+.INF": math.inf,
    "2024-01-15": dt.date(2024, 1, 15),
    "2024-01": "2024-01",
    "'017'": "017",
    '"true"': "true",
}


@pytest.mark.parametrize("written", sorted(READ_AS))
def test_scalars_are_read_as_yaml_1_2(tmp_path: Path, written: str) -> None:
    doc = read_yaml(write(tmp_path, f"value: {written}\n"))
    got, want = doc.data["value"], READ_AS[written]
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize("written", [".nan", ".NaN", ".NAN"])
def test_nan_is_a_number(tmp_path: Path, written: str) -> None:
    assert math.isnan(read_yaml(write(tmp_path, f"value: {written}\n")).data["value"])


@pytest.mark.parametrize("written", ["017", "-017", "+012", "00", "0001"])
def test_a_leading_zero_integer_is_refused_where_written(tmp_path: Path, written: str) -> None:
    path = write(tmp_path, HEAD + f"state:\n  s: {written}\n")
    with pytest.raises(ScenarioError) as err:
        read_yaml(path)
    assert str(err.value).startswith(f"{path}:5:6: state.s: {written} has a leading zero")


def test_yaml_1_1_booleans_are_names(tmp_path: Path) -> None:
    """A state called `on` was refused as "not a name": YAML 1.1 read the key as true."""
    doc = load_document(write(tmp_path, HEAD + "state:\n  on: 1\n  off: 0\n  yes: 1\n  no: 0\n"))
    assert list(doc.data["state"]) == ["on", "off", "yes", "no"]


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("!!str 5", "!!str"),
        ("!!int 5", "!!int"),
        ("!!float 5", "!!float"),
        ("!!bool true", "!!bool"),
        ("!!null ~", "!!null"),
        ("!!binary aGk=", "!!binary"),
        ("!!timestamp 2024-01-01", "!!timestamp"),
        ("!!map {a: 1}", "!!map"),
        ("!!seq [1]", "!!seq"),
        ("!!set {a}", "!!set"),
        ("! 5", "!"),
        ("!local 5", "!local"),
        ("!<tag:yaml.org,2002:str> 5", "!!str"),
        ("[1, !!str 2]", "!!str"),
        ("{<<: !!map {a: 1}}", "!!map"),
        ("{<<: [!!map {a: 1}]}", "!!map"),
        ("{!!str k: 1}", "!!str"),
    ],
)
def test_every_explicit_tag_is_refused_with_its_place(
    tmp_path: Path, written: str, shown: str
) -> None:
    path = write(tmp_path, HEAD + f"value: {written}\n")
    with pytest.raises(ScenarioError) as err:
        read_yaml(path)
    (problem,) = err.value.problems
    assert problem.message == f"YAML tag '{shown}' is not allowed (plain data only)"
    assert problem.place is not None and problem.place.line == 4


def test_two_merge_keys_in_one_mapping_are_a_duplicate(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "a: &a {x: 1}\nb: &b {y: 2}\nc: {<<: *a, z: 3, <<: *b}\n")
    with pytest.raises(ScenarioError) as err:
        read_yaml(path)
    assert str(err.value).startswith(f"{path}:6:19: c.<<: duplicate key '<<'")


def test_merging_a_list_and_a_quoted_merge_key_still_work(tmp_path: Path) -> None:
    doc = read_yaml(
        write(tmp_path, "a: &a {x: 1}\nb: &b {y: 2}\nc: {<<: [*a, *b]}\nd: {'<<': 1}\n")
    )
    assert doc.data["c"] == {"x": 1, "y": 2}
    assert doc.data["d"] == {"<<": 1}


def test_the_loaders_section_list_is_the_schemas() -> None:
    assert set(Scenario.model_fields) | {"extends"} == SCENARIO_KEYS


# -- only regular files --------------------------------------------------------------------
def _not_regular(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.yaml"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "loop":
        os.symlink(tmp_path / "loop_b.yaml", path)
        os.symlink(path, tmp_path / "loop_b.yaml")
    elif kind == "device":
        os.symlink("/dev/zero", path)
    return path


NOT_REGULAR = {
    "folder": "is a folder, not a scenario file",
    "fifo": "is a FIFO (named pipe), not a scenario file",
    "loop": "is a symlink loop, not a scenario file",
    "device": "is a device, not a scenario file",
}


@pytest.mark.parametrize("kind", sorted(NOT_REGULAR))
def test_only_regular_files_are_read(tmp_path: Path, kind: str) -> None:
    path = _not_regular(tmp_path, kind)
    with pytest.raises(ScenarioError) as err:
        load_document(path)
    assert str(err.value) == f"{path}: {NOT_REGULAR[kind]}"


@pytest.mark.parametrize("kind", sorted(NOT_REGULAR))
def test_only_regular_files_are_extended(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIM_EXTENDS_ROOT", "/dev")  # so that the device is in bounds
    _not_regular(tmp_path, kind)
    child = write(tmp_path, f"extends: {kind}.yaml\n", "child.yaml")
    with pytest.raises(ScenarioError) as err:
        load_document(child)
    assert str(err.value) == f"{child}:1:10: extends: '{kind}.yaml' {NOT_REGULAR[kind]}"


def test_sim_validate_on_a_fifo_returns_at_once(tmp_path: Path) -> None:
    """It blocked forever, waiting for a writer. The timeout only guards against a hang."""
    fifo = _not_regular(tmp_path, "fifo")
    done = subprocess.run(
        [sys.executable, "-m", "sim.cli", "validate", str(fifo)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert done.returncode == 2
    assert (done.stdout + done.stderr).splitlines() == [f"{fifo}: {NOT_REGULAR['fifo']}"]


# -- the extends boundary ------------------------------------------------------------------
def _refusal(child: Path) -> str:
    with pytest.raises(ScenarioError) as err:
        load_document(child)
    return str(err.value)


def test_extends_stays_inside_the_naming_files_folder(tmp_path: Path) -> None:
    outside = write(tmp_path, HEAD, "outside.yaml")
    (tmp_path / "project" / "sub").mkdir(parents=True)
    project = tmp_path / "project"
    write(project / "sub", HEAD + "runs: 5\n", "inner.yaml")
    fine = write(project, "extends: sub/inner.yaml\n", "fine.yaml")
    assert load_document(fine).data["runs"] == 5
    for ref in ("../outside.yaml", str(outside), "sub/../../outside.yaml", "/etc/passwd"):
        child = write(project, f"extends: {ref}\n", "child.yaml")
        assert _refusal(child) == (
            f"{child}:1:10: extends: '{ref}' is outside this file's folder ({project}); "
            "extends may only name files in it or below; "
            "to allow another folder, set SIM_EXTENDS_ROOT to it"
        )


def test_each_file_of_a_chain_keeps_to_its_own_folder(tmp_path: Path) -> None:
    """A base in a subfolder may not climb back out, even into the top file's folder."""
    (tmp_path / "sub").mkdir()
    write(tmp_path, HEAD, "common.yaml")
    inner = write(tmp_path / "sub", "extends: ../common.yaml\n", "inner.yaml")
    top = write(tmp_path, "extends: sub/inner.yaml\n", "top.yaml")
    assert _refusal(top).startswith(f"{inner}:1:10: extends: '../common.yaml' is outside")


def test_a_symlink_out_of_the_folder_counts_as_outside(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    project = tmp_path / "project"
    os.symlink(write(tmp_path, HEAD, "secret.yaml"), project / "base.yaml")
    child = write(project, "extends: base.yaml\n", "child.yaml")
    assert _refusal(child).startswith(
        f"{child}:1:10: extends: 'base.yaml' leads, through a symlink, outside this file's folder"
    )


def test_a_symlink_inside_the_folder_is_followed(tmp_path: Path) -> None:
    os.symlink(write(tmp_path, HEAD + "runs: 7\n", "real.yaml"), tmp_path / "link.yaml")
    child = write(tmp_path, "extends: link.yaml\n", "child.yaml")
    assert load_document(child).data["runs"] == 7


def test_sim_extends_root_widens_the_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "project").mkdir()
    write(tmp_path / "shared", HEAD + "runs: 9\n", "base.yaml")
    child = write(tmp_path / "project", "extends: ../shared/base.yaml\n", "child.yaml")
    assert "is outside" in _refusal(child)
    monkeypatch.setenv("SIM_EXTENDS_ROOT", str(tmp_path / "shared"))
    assert load_document(child).data["runs"] == 9
    monkeypatch.setenv("SIM_EXTENDS_ROOT", os.pathsep.join(["/nowhere", str(tmp_path / "shared")]))
    assert load_document(child).data["runs"] == 9
    monkeypatch.setenv("SIM_EXTENDS_ROOT", str(tmp_path / "shared" / "deeper"))
    assert "is outside" in _refusal(child)


SECRET = "root:$6$hashhashhash:19000:0:99999:7:::"


@pytest.mark.parametrize(
    ("text", "what"),
    [
        (f"- {SECRET}\n- b\n", "its top level is a list"),
        (f"'{SECRET}'\n", "its top level is a string"),
        ("12\n", "its top level is a number"),
        ("~\n", "its top level is a null"),
        (
            f"user: '{SECRET}'\nother: 1\n",
            "none of its 2 top-level keys is a scenario's (name, start, months, parameters, "
            "stocks, ...)",
        ),
    ],
)
def test_a_file_that_is_not_a_scenario_is_named_not_quoted(
    tmp_path: Path, text: str, what: str
) -> None:
    write(tmp_path, text, "other.yaml")
    child = write(tmp_path, "extends: other.yaml\n", "child.yaml")
    message = _refusal(child)
    assert message == f"{child}:1:10: extends: 'other.yaml' is not a scenario: {what}"
    assert "hash" not in message


def test_a_partial_base_with_any_section_is_a_scenario(tmp_path: Path) -> None:
    write(tmp_path, "parameters:\n  p: 1\n", "library.yaml")
    child = write(tmp_path, "extends: library.yaml\n" + HEAD, "child.yaml")
    assert load_document(child).data["parameters"] == {"p": 1}
