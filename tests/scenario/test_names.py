"""Names: one spelling, one meaning. ASCII only, at most MAX_NAME characters, the same rule for
the keys of every section and for the names inside expressions."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli import cli
from sim.errors import ScenarioError
from sim.model import load
from sim.scenario.expr import MAX_NAME, ExprError, compile_expr, is_name, name_problem

# Each looks like an ASCII name; Python's parser would read the first three as that name.
LOOK_ALIKES = {
    "ﬁll": "fill",  # U+FB01 ligature: NFKC folds it
    "ｔ": "t",  # fullwidth: NFKC folds it
    "silo²": "silo2",  # superscript two: NFKC folds it
    "оpen": "open",  # Cyrillic o: NFKC keeps it, and it still looks like "open"
    "ѕilo": "silo",  # Cyrillic dze
}

BASE = """\
name: names
start: 2024-01
months: 3
parameters:
  fill: 2
state:
  open: 1
stocks:
  mill: {unit: t, kind: source}
  silo: {unit: t, initial: 10}
flows:
  grind: {from: mill, to: silo, rate: "fill * open"}
outcomes:
  kept: {of: silo, stat: final}
"""


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        load(path)
    return [p.message for p in err.value.problems]


def test_the_base_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(BASE)
    load(path)


@pytest.mark.parametrize("odd", sorted(LOOK_ALIKES))
@pytest.mark.parametrize(
    "section", ["parameters", "state", "variables", "stocks", "flows", "outcomes"]
)
def test_a_non_ascii_key_is_refused_in_every_section(
    tmp_path: Path, section: str, odd: str
) -> None:
    item = {
        "parameters": "3",
        "state": "0",
        "variables": '"1"',
        "stocks": "{unit: t}",
        "flows": "{from: mill, to: silo, rate: 1}",
        "outcomes": "{of: silo, stat: max}",
    }[section]
    text = BASE.replace(f"{section}:\n", f"{section}:\n  {odd}: {item}\n", 1)
    if section not in BASE:
        text = BASE + f"{section}:\n  {odd}: {item}\n"
    (message,) = _problems(tmp_path, text)
    assert message.startswith(f"'{odd}' is not a valid name: '")
    assert message.endswith("is not an ASCII letter, digit or _")


@pytest.mark.parametrize("odd", sorted(LOOK_ALIKES))
@pytest.mark.parametrize(
    "where",
    [
        ("flows:\n  grind: {from: mill, to: silo, rate: ", '"fill * open"', "}"),
        ("outcomes:\n  kept: {of: ", "silo", ", stat: final}"),
        ("stocks:\n  mill: {unit: t, kind: source}\n  silo: {unit: t, initial: ", "10", "}"),
    ],
)
def test_a_non_ascii_name_in_an_expression_is_refused(
    tmp_path: Path, odd: str, where: tuple[str, str, str]
) -> None:
    head, expr, tail = where
    text = BASE.replace(head + expr + tail, head + f'"{odd} * 1"' + tail)
    assert text != BASE
    (message,) = _problems(tmp_path, text)
    assert "is not allowed in an expression" in message


@pytest.mark.parametrize(
    "text", ["ﬁll", "1 + ｔ", "x × 2", "a − b", "flow.ｇrind", "2 * fill # größe"]
)
def test_compile_expr_refuses_any_non_ascii_character(text: str) -> None:
    names = {"fill": "parameter", "x": "parameter", "a": "parameter", "b": "parameter"}
    with pytest.raises(ExprError) as err:
        compile_expr(text, names, {"grind"})
    assert not text[err.value.offset].isascii()


def test_an_ascii_look_alike_is_never_read_as_the_ascii_name() -> None:
    """Python's parser alone would read ﬁll as fill; the rule must come first."""
    for odd, plain in LOOK_ALIKES.items():
        with pytest.raises(ExprError):
            compile_expr(odd, {plain: "parameter"})


def test_names_have_a_maximum_length() -> None:
    assert MAX_NAME == 64
    assert is_name("a" * MAX_NAME)
    assert not is_name("a" * (MAX_NAME + 1))
    assert name_problem("a" * 5000) == "a name of 5,000 characters is too long (at most 64)"


@pytest.mark.parametrize("section", ["parameters", "state", "stocks", "outcomes", "events"])
def test_a_long_item_name_is_refused_where_written(tmp_path: Path, section: str) -> None:
    long = "n" * (MAX_NAME + 1)
    item = {
        "parameters": "3",
        "state": "0",
        "stocks": "{unit: t}",
        "outcomes": "{of: silo, stat: max}",
        "events": "{at: 1, set: {open: 0}}",
    }[section]
    text = BASE.replace(f"{section}:\n", f"{section}:\n  {long}: {item}\n", 1)
    if section not in BASE:
        text = BASE + f"{section}:\n  {long}: {item}\n"
    assert _problems(tmp_path, text) == [
        f"a name of {MAX_NAME + 1} characters is too long (at most {MAX_NAME})"
    ]


def test_a_long_scenario_name_is_refused_by_validate_not_by_run(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(BASE.replace("name: names", "name: " + "x" * 5000))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"{path}:1:7: name: a name of 5,000 characters is too long (at most 64; it names the "
        "results folder)"
    ]
