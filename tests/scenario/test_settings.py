"""Study settings that the command line and the scenario file must limit alike (seed), and
block sizes so small that the study is mostly set-up work."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli import cli
from sim.errors import ScenarioError
from sim.model import load
from sim.study.runner import plan
from tests.helpers import BAKERY

BASE = """\
name: settings
start: 2024-01
months: 3
stocks:
  silo: {unit: t, initial: 10}
"""


@pytest.mark.parametrize("seed", [2**63, 2**64, 10**30])
def test_a_seed_past_the_files_limit_is_refused_on_the_command_line(
    tmp_path: Path, seed: int
) -> None:
    for args in (["run", str(BAKERY), "-n", "5", "--out", str(tmp_path / "o")],
                 ["trace", str(BAKERY), "--run", "0"]):  # fmt: skip
        result = CliRunner().invoke(cli, [*args, "--seed", str(seed)])
        assert result.exit_code == 2, result.output
        assert f"--seed must be from 0 to 2**63-1 (got {seed})" in result.output
    assert not (tmp_path / "o").exists()


def test_the_seed_limit_is_the_same_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(BASE + f"seed: {2**63}\n")
    with pytest.raises(ScenarioError, match="seed: must be less than"):
        load(path)
    path.write_text(BASE + f"seed: {2**63 - 1}\n")
    model = load(path)
    assert plan(model).seed == 2**63 - 1
    assert plan(model, seed=2**63 - 1).seed == 2**63 - 1
    with pytest.raises(ScenarioError, match="--seed must be from 0"):
        plan(model, seed=2**63)


@pytest.mark.parametrize(("runs", "block", "warned"), [
    (2000, 20, True), (10_000, 255, True), (300, 1, True), (100, 20, False),
    (2000, 256, False), (100, 100, False), (10, 10, False), (50, 64, False), (500, 200, False),
])  # fmt: skip
def test_a_small_block_size_is_warned_about(runs: int, block: int, warned: bool) -> None:
    """Below 256 runs (or the whole study, if smaller) a block is mostly set-up work; a few
    such blocks cost little, more than 16 are warned about."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan(load(BAKERY), runs=runs, block_size=block)
    slow = [w for w in caught if "block size" in str(w.message)]
    assert bool(slow) == warned
