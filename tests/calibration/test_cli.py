"""`sim calibrate` end to end, and bad observations files: one located message each, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import sim
from sim.cli import cli
from sim.scenario.observations import load_observations
from tests.calibration.models import LINEAR, write_yaml
from tests.helpers import ROOT

OBS = """\
observations:
  end:
    of: s
    stat: final
    value: 150
    sd: 12
    unit: kg
    source: a test
  mid: {of: "where(t == 5, s, 0)", stat: max, value: 70, low: 60, high: 80, use: validate}
"""


def _invoke(*args: str) -> object:
    return CliRunner().invoke(cli, ["calibrate", *args])


def test_calibrate_writes_the_folder_prints_both_tables_and_the_figure(tmp_path: Path):
    scenario = write_yaml(tmp_path, "linear.yaml", LINEAR)
    obs = tmp_path / "obs.yaml"
    obs.write_text(OBS)
    out, plot = tmp_path / "out", tmp_path / "fig.png"
    r = _invoke(str(scenario), "--observations", str(obs), "--runs", "5000", "--seed", "1",
                "--out", str(out), "--plot", str(plot), "-w", "1")  # fmt: skip
    assert r.exit_code == 0, r.output
    for text in ("parameters", "prior p05", "posterior p05", "narrowed", "observations",
                 "observed ± sd", "covered", "ESS"):  # fmt: skip
        assert text in r.output, text
    assert (out / "posterior.parquet").is_file() and (out / "manifest.json").is_file()
    assert plot.read_bytes().startswith(b"\x89PNG")
    # --json prints the manifest; the same seed gives the same posterior.
    again = _invoke(str(scenario), "--observations", str(obs), "--runs", "5000", "--seed", "1",
                    "--out", str(out), "--json")  # fmt: skip
    assert again.exit_code == 0, again.output
    data = json.loads(again.output)
    assert data["kind"] == "calibration" and data["folder"] == str(out)
    assert (
        data["posterior_sha256"]
        == json.loads((out / "manifest.json").read_text())["posterior_sha256"]
    )
    assert set(data["observations"]) == {"end", "mid"}


def test_another_scenarios_folder_is_refused_before_any_run(tmp_path: Path):
    scenario = write_yaml(tmp_path, "linear.yaml", LINEAR)
    other = write_yaml(tmp_path, "other.yaml", LINEAR | {"name": "other"})
    obs = tmp_path / "obs.yaml"
    obs.write_text(OBS)
    out = tmp_path / "out"
    assert _invoke(str(scenario), "--observations", str(obs), "--runs", "2000",
                   "--out", str(out)).exit_code == 0  # fmt: skip
    r = _invoke(str(other), "--observations", str(obs), "--runs", "2000", "--out", str(out))
    assert r.exit_code == 2 and "calibration of scenario 'linear'" in r.output
    r = _invoke(str(other), "--observations", str(obs), "--runs", "2000", "--out", str(out),
                "--force")  # fmt: skip
    assert r.exit_code == 0, r.output


# Each bad file and the first line `sim calibrate` prints for it ({file}: the file's path).
BAD: dict[str, tuple[str, str]] = {
    "unknown_name": (
        'observations:\n  x: {of: "sx + 1", stat: final, value: 1, sd: 1}\n',
        "{file}:2:12: observations.x.of: unknown name 'sx'; did you mean 's'?",
    ),
    "unknown_stat": (
        "observations:\n  x: {of: s, stat: fnal, value: 1, sd: 1}\n",
        "{file}:2:20: observations.x.stat: 'fnal' is not allowed: 'final', 'mean', 'min', "
        "'max', 'sum', 'count' or 'first'",
    ),
    "unknown_key": (
        "observations:\n  x: {of: s, stat: final, value: 1, sdd: 1}\n",
        "{file}:2:37: observations.x.sdd: unknown key 'sdd'; did you mean 'sd'?",
    ),
    "no_uncertainty": (
        "observations:\n  x: {of: s, stat: final, value: 1}\n",
        "{file}:2:6: observations.x: give the observation's uncertainty: sd, or a 90% "
        "interval low/high",
    ),
    "sd_and_interval": (
        "observations:\n  x: {of: s, stat: final, value: 1, sd: 1, low: 0, high: 2}\n",
        "{file}:2:6: observations.x: give either sd or a 90% interval low/high, not both",
    ),
    "half_interval": (
        "observations:\n  x: {of: s, stat: final, value: 1, low: 0}\n",
        "{file}:2:6: observations.x: a 90% interval needs both low and high",
    ),
    "value_outside_interval": (
        "observations:\n  x: {of: s, stat: final, value: 5, low: 0, high: 2}\n",
        "{file}:2:6: observations.x: value 5 is outside its own 90% interval [0, 2]",
    ),
    "zero_sd": (
        "observations:\n  x: {of: s, stat: final, value: 1, sd: 0}\n",
        "{file}:2:41: observations.x.sd: must be greater than 0, got 0",
    ),
    "infinite_value": (
        "observations:\n  x: {of: s, stat: final, value: .inf, sd: 1}\n",
        "{file}:2:34: observations.x.value: inf is not a finite number",
    ),
    "bad_use": (
        "observations:\n  x: {of: s, stat: final, value: 1, sd: 1, use: fit}\n",
        "{file}:2:49: observations.x.use: 'fit' is not allowed: 'calibrate' or 'validate'",
    ),
    "unit_mismatch": (
        "observations:\n  x: {of: s, stat: final, value: 1, sd: 1, unit: t}\n",
        "{file}:2:50: observations.x.unit: unit mismatch: 's' with stat final is in kg, not t",
    ),
    "count_unit": (
        'observations:\n  x: {of: "s > 3", stat: count, value: 1, sd: 1, unit: kg}\n',
        "{file}:2:56: observations.x.unit: unit mismatch: 's > 3' with stat count is in "
        "month, not kg",
    ),
    "flow_unit": (
        "observations:\n  x: {of: cum.grow, stat: final, value: 1, sd: 1, unit: t}\n",
        "{file}:2:57: observations.x.unit: unit mismatch: 'cum.grow' with stat final is in "
        "kg, not t",
    ),
    "only_validate": (
        "observations:\n  x: {of: s, stat: final, value: 1, sd: 1, use: validate}\n",
        "{file}:2:3: observations: no observation has `use: calibrate`; nothing to "
        "calibrate on; mark at least one observation `use: calibrate` (the default)",
    ),
    "clashes_with_a_parameter": (
        "observations:\n  a: {of: s, stat: final, value: 1, sd: 1}\n",
        "{file}:2:3: observations.a: observation 'a' would share a column with a parameter in "
        "posterior.parquet; rename the observation",
    ),
    "reserved_column": (
        "observations:\n  weight: {of: s, stat: final, value: 1, sd: 1}\n",
        "{file}:2:3: observations.weight: observation 'weight' would share a column with "
        "posterior.parquet's own column in posterior.parquet; rename the observation",
    ),
    "bad_name": (
        "observations:\n  2x: {of: s, stat: final, value: 1, sd: 1}\n",
        "{file}:2:3: observations.2x: '2x' is not a valid name (letters, digits, _)",
    ),
    "empty_mapping": (
        "observations: {}\n",
        "{file}:1:15: observations: no observations; give at least one",
    ),
    "empty_file": (
        "",
        "{file}:1:1: empty file; an observations file needs an `observations:` mapping",
    ),
    "top_level_typo": (
        "observation:\n  x: {of: s, stat: final, value: 1, sd: 1}\n",
        "{file}:1:1: observation: unknown key 'observation'; did you mean 'observations'?",
    ),
    "syntax_error": (
        'observations:\n  x: {of: "s +* 2", stat: final, value: 1, sd: 1}\n',
        "{file}:2:15: observations.x.of: syntax error: invalid syntax",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_observations_file_is_one_located_message_and_exit_2(tmp_path: Path, case: str):
    scenario = write_yaml(tmp_path, "linear.yaml", LINEAR)
    text, expected = BAD[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    r = _invoke(str(scenario), "--observations", str(path), "--runs", "2000",
                "--out", str(tmp_path / "out"))  # fmt: skip
    assert r.exit_code == 2, r.output
    assert r.output.splitlines()[0] == expected.format(file=path), r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


def test_the_shipped_observations_fit_the_war_model():
    """Every target of the shipped file compiles against both war scenarios, with sources."""
    from sim.analysis.targets import compile_targets

    obs = load_observations(ROOT / "scenarios" / "observations" / "war_2024_2025.yaml")
    assert len(obs.items) >= 14  # at least 8 to calibrate and 6 held out (#20)
    assert obs.named("calibrate") and obs.named("validate")
    for name in ("war_continues", "war_ends"):
        targets = compile_targets(sim.load(ROOT / "scenarios" / f"{name}.yaml"), obs)
        assert all(t.source.strip() and t.unit != "1" for t in targets)
    assert all(o.source.strip() for o in obs.items.values())
