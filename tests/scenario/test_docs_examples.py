"""Every complete scenario shown in docs/language.md compiles: the reference's examples are
kept true as the language grows (a new function name, a changed rule)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from sim.model import load
from tests.helpers import ROOT

LANGUAGE = ROOT / "docs" / "language.md"
# Blocks that show a mistake on purpose, by their scenario's name.
WRONG_ON_PURPOSE = {"mistakes"}
BLOCKS = [
    b for b in re.findall(r"```yaml\n(.*?)```", LANGUAGE.read_text(), re.S) if b.startswith("name:")
]


def _name(block: str) -> str:
    return block.split("\n", 1)[0].removeprefix("name:").strip()


@pytest.mark.parametrize("block", BLOCKS, ids=_name)
def test_a_documented_scenario_validates(block: str, tmp_path: Path) -> None:
    if _name(block) in WRONG_ON_PURPOSE:
        pytest.skip("shows a mistake on purpose")
    shutil.copy(ROOT / "examples" / "orders.csv", tmp_path)  # the data section's file
    path = tmp_path / "example.yaml"
    path.write_text(block)
    load(path)


def test_there_are_examples_to_check() -> None:
    assert len(BLOCKS) >= 10
