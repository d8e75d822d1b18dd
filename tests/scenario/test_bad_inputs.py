"""The bad-input catalogue: every broken scenario in tests/bad_inputs/ gets exit 2 and one
located message, never a traceback. Expectations live in tests/bad_inputs/expected.yaml.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sim.cli import cli
from sim.model import MAX_PROBLEMS

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "bad_inputs"
EXPECTED: dict[str, str] = yaml.safe_load((CASES / "expected.yaml").read_text())
NOT_CASES = {"expected.yaml"}


def _validate(path: Path) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(cli, ["validate", str(path)])
    return result.exit_code, result.output, result.exception


def test_every_case_has_an_expectation() -> None:
    on_disk = {
        p.name
        for p in CASES.iterdir()
        if not p.name.startswith(("_", ".")) and p.name not in NOT_CASES
    }
    assert on_disk - set(EXPECTED) == set(), "cases without a line in expected.yaml"
    stale = {name for name in set(EXPECTED) - on_disk if name != "no_such_file.yaml"}
    assert stale == set(), "expected.yaml names files that are gone"
    assert len(EXPECTED) >= 45


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input(name: str) -> None:
    path = CASES / name
    want = EXPECTED[name].replace("{file}", str(path)).replace("{dir}", str(CASES))
    code, output, exc = _validate(path)
    assert "Traceback" not in output
    assert exc is None or isinstance(exc, SystemExit), repr(exc)
    assert code == 2, output
    assert output.splitlines()[0] == want


def test_no_marker_from_python_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, _ = _validate(CASES / "python_tag.yaml")
    assert code == 2
    assert list(tmp_path.iterdir()) == []


def test_the_design_example_is_valid() -> None:
    code, output, _ = _validate(ROOT / "examples" / "bakery.yaml")
    assert code == 0, output
    assert "Traceback" not in output


def test_the_base_is_valid() -> None:
    """Cases extend _base.yaml; if it broke, their messages would be about something else."""
    code, output, _ = _validate(CASES / "_base.yaml")
    assert code == 0, output


def test_many_unknown_names_stop_at_the_problem_cap(tmp_path: Path) -> None:
    """1,500 bad names give 50 problems and a note, not 1,500 lines (nor 1,500 look-ups)."""
    lines = ["name: many", "start: 2024-01", "months: 1", "state:"]
    lines += [f"  s{i:04d}: 0" for i in range(1000)]
    lines += ["record:"] + [f"- s{i:04d}x" for i in range(1500)]
    path = tmp_path / "many.yaml"
    path.write_text("\n".join(lines) + "\n")
    code, output, _ = _validate(path)
    assert code == 2, output
    shown = output.splitlines()
    assert len(shown) == MAX_PROBLEMS + 1
    assert shown[-1].endswith(
        f"stopped after {MAX_PROBLEMS} problems; fix these and validate again"
    )


def test_a_foreign_file_named_by_extends_is_never_quoted() -> None:
    """Nothing of a file that is not a scenario reaches the output, only its name."""
    foreign = (CASES / "_foreign.yaml").read_text()
    code, output, _ = _validate(CASES / "extends_foreign.yaml")
    assert code == 2
    for line in foreign.splitlines()[1:]:
        for part in ("root", "daemon", "SECRET", "19000", line):
            assert part not in output
