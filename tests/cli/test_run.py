"""`sim run` and `sim trace` end to end: the folder, the table, refusals, the story."""

from __future__ import annotations

import json

from click.testing import CliRunner

import sim
from sim.cli import cli
from sim.study.results import Results
from tests.helpers import BAKERY, write


def test_run_writes_a_complete_folder_and_prints_the_table(tmp_path):
    out = tmp_path / "res"
    r = CliRunner().invoke(
        cli,
        [
            "run",
            str(BAKERY),
            "--runs",
            "300",
            "--seed",
            "2",
            "--out",
            str(out),
            "--keep-paths",
            "3",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "bread_eaten" in r.output and "p95" in r.output
    for name in ("manifest.json", "runs.parquet", "bands.parquet", "paths.parquet"):
        assert (out / name).is_file(), name
    assert not (out / "parts").exists()
    res = Results.load(out)
    assert res.n_runs == 300 and res.runs.num_rows == 300
    assert res.paths is not None and res.paths.num_rows == 3 * 36
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["seed"] == 2


def test_run_json_summary(tmp_path):
    r = CliRunner().invoke(
        cli, ["run", str(BAKERY), "-n", "50", "--out", str(tmp_path / "x"), "--json"]
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert {row["name"] for row in data["outcomes"]} >= {"bread_eaten", "first_empty"}


def test_run_refuses_another_scenarios_folder(tmp_path):
    out = tmp_path / "res"
    assert (
        CliRunner().invoke(cli, ["run", str(BAKERY), "-n", "20", "--out", str(out)]).exit_code == 0
    )
    other = write(tmp_path, "other.yaml", f"extends: {BAKERY}\nname: other\n")
    r = CliRunner().invoke(cli, ["run", str(other), "-n", "20", "--out", str(out)])
    assert r.exit_code == 2 and "holds results of scenario 'bakery'" in r.output
    assert (
        CliRunner()
        .invoke(cli, ["run", str(other), "-n", "20", "--out", str(out), "--force"])
        .exit_code
        == 0
    )


def test_edited_results_are_refused(tmp_path):
    out = tmp_path / "res"
    CliRunner().invoke(cli, ["run", str(BAKERY), "-n", "20", "--out", str(out)])
    with (out / "runs.parquet").open("ab") as fh:
        fh.write(b"x")
    try:
        Results.load(out)
    except Exception as exc:
        assert "checksum" in str(exc)
    else:
        raise AssertionError("an edited runs.parquet was accepted")


def test_des_engine_gives_the_same_runs(tmp_path):
    a = CliRunner().invoke(cli, ["run", str(BAKERY), "-n", "20", "--out", str(tmp_path / "a")])
    b = CliRunner().invoke(
        cli, ["run", str(BAKERY), "-n", "20", "--engine", "des", "--out", str(tmp_path / "b")]
    )
    assert a.exit_code == b.exit_code == 0
    assert Results.load(tmp_path / "a").runs.equals(Results.load(tmp_path / "b").runs)


def test_trace_tells_a_dated_story():
    r = CliRunner().invoke(cli, ["trace", str(BAKERY), "--run", "3"])
    assert r.exit_code == 0, r.output
    assert "drawn: mill_output" in r.output
    assert "event    strike" in r.output and "2026-" in r.output
    j = CliRunner().invoke(cli, ["trace", str(BAKERY), "--run", "3", "--json"])
    log = json.loads(j.output)["log"]
    assert any(e["kind"] == "event" and e["name"] == "strike" for e in log)


def test_trace_refuses_a_run_past_the_study():
    # LHS and Sobol' designs depend on the run count: tracing run N of a silently bigger study
    # would not be run N of the user's study.
    runs = sim.load(BAKERY).scenario.runs
    r = CliRunner().invoke(cli, ["trace", str(BAKERY), "--run", str(runs)])
    assert r.exit_code == 2 and "past the study's" in r.output and "--runs" in r.output
    r = CliRunner().invoke(cli, ["trace", str(BAKERY), "--run", str(runs), "--runs", str(runs + 1)])
    assert r.exit_code == 0, r.output
