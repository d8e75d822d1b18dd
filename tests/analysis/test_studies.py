"""Sweeps and sensitivity studies run through the one study runner: any workers, executor or
engine gives the same bits, progress and guards apply, and an interrupted study resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import sim
from sim.analysis.sensitivity import sensitivity
from sim.analysis.sweep import sweep
from sim.cli import cli
from sim.errors import ScenarioError
from sim.scenario.schema import Fixed
from sim.study.design import Grid, Sampled, saltelli
from sim.study.runner import Execution
from tests.helpers import BAKERY, ROOT, wait_for_parts


def invoke(*args: str) -> str:
    r = CliRunner().invoke(cli, [*args, "--no-progress"])
    assert r.exit_code == 0, r.output
    return r.output


def same(a: Path, b: Path, name: str) -> None:
    assert pq.read_table(a / name).equals(pq.read_table(b / name)), f"{name} differs"


@pytest.mark.parametrize(
    ("command", "table"),
    [
        (
            ["sweep", str(BAKERY), "--set", "strike_month=6:30:12", "-n", "600"],
            "sweep_runs.parquet",
        ),
        (
            [
                "sweep",
                str(BAKERY),
                "--set",
                "strike_month=6,18",
                "--set",
                "mill_output=90,120",
                "-n",
                "300",
            ],
            "sweep_runs.parquet",
        ),
        (
            [
                "sensitivity",
                str(BAKERY),
                "--outcome",
                "bread_eaten",
                "-n",
                "256",
            ],
            "sensitivity.parquet",
        ),
    ],
    ids=["sweep", "sweep-grid", "sensitivity"],
)
def test_two_workers_write_the_same_bits_as_one(tmp_path, command, table):
    invoke(*command, "--out", str(tmp_path / "one"), "-w", "1", "--block-size", "256")
    invoke(*command, "--out", str(tmp_path / "two"), "-w", "2", "--block-size", "256")
    same(tmp_path / "one", tmp_path / "two", table)
    same(tmp_path / "one" / "study", tmp_path / "two" / "study", "runs.parquet")
    manifest = sim.Results.load(tmp_path / "two" / "study").manifest
    assert manifest["executor"] == {"kind": "processes", "workers": 2}


@pytest.mark.slow
def test_dask_writes_the_same_bits_as_serial(tmp_path):
    model = sim.load(BAKERY)
    one = sweep(model, "strike_month", "6,18", runs=500, execution=Execution(block_size=200))
    dask = sweep(
        model,
        "strike_month",
        "6,18",
        runs=500,
        execution=Execution(block_size=200, workers=2, executor="dask"),
    )
    for name in one.outcomes:
        assert np.array_equal(one.outcome_values[name], dask.outcome_values[name], equal_nan=True)


def test_the_simpy_engine_gives_the_same_sweep_and_indices():
    model = sim.load(BAKERY)
    kernel = sweep(model, "strike_month", "6,18", runs=20)
    des = sweep(model, "strike_month", "6,18", runs=20, execution=Execution(engine="des"))
    for name in kernel.outcomes:
        np.testing.assert_allclose(des.outcome_values[name], kernel.outcome_values[name], rtol=1e-9)
    a = sensitivity(model, "bread_eaten", runs=32)
    b = sensitivity(model, "bread_eaten", runs=32, execution=Execution(engine="des"))
    np.testing.assert_allclose(a.total, b.total, rtol=1e-9)


def test_a_sweep_study_is_point_major_with_the_same_draws_at_every_point():
    model = sim.load(BAKERY)
    points = tuple(
        {"strike_month": Fixed(value=v, unit="month", source="test")} for v in (6.0, 18.0)
    )
    res = sim.run(model, runs=50, seed=2, design=Grid(points), workers=1)
    assert res.n_runs == 100
    point = res.runs.column("point").to_numpy()
    sample = res.runs.column("sample").to_numpy()
    assert list(point) == [0] * 50 + [1] * 50 and list(sample) == list(range(50)) * 2
    mill = res.runs.column("mill_output").to_numpy()
    assert np.array_equal(mill[:50], mill[50:])  # common random numbers
    plain = sim.run(model, runs=50, seed=2, workers=1)
    assert np.array_equal(plain.runs.column("mill_output").to_numpy(), mill[:50])


def test_designs_name_themselves_in_the_study_a_resume_must_match(tmp_path):
    model = sim.load(BAKERY)
    assert Sampled().identity() is None
    design = saltelli(model, 8, 1, model.sampled)
    assert design.identity() == {
        "kind": "saltelli",
        "n": 8,
        "parameters": model.sampled,
        "seed": 1,
        "replicates": 8,
    }
    res = sim.run(model, runs=8, design=design, out=tmp_path / "s", workers=1)
    assert res.manifest["study"]["design"]["kind"] == "saltelli"
    assert res.n_runs == 8 * (len(model.sampled) + 2)
    with pytest.raises(sim.errors.ResultsError, match="different study"):
        other = saltelli(model, 8, 2, model.sampled)
        sim.run(model, runs=8, design=other, out=tmp_path / "s", workers=1, resume=True)


def test_precision_needs_a_plain_study():
    model = sim.load(BAKERY)
    with pytest.raises(ScenarioError, match="--precision needs a plain study"):
        sim.run(model, runs=10, precision={"bread_eaten": 0.1}, design=Grid(()), workers=1)


def test_memory_guard_applies_to_a_sweep(tmp_path):
    r = CliRunner().invoke(
        cli,
        [
            "sweep",
            str(BAKERY),
            "--set",
            "strike_month=6,18",
            "-n",
            "100000",
            "--max-memory",
            "1MiB",
            "--out",
            str(tmp_path / "sw"),
            "--no-progress",
        ],
    )
    assert r.exit_code == 2, r.output
    assert "this study needs about" in r.output


def test_progress_reaches_the_whole_study():
    seen: list[tuple[int, int]] = []
    sweep(
        sim.load(BAKERY),
        "strike_month",
        "6,18,30",
        runs=100,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert seen[-1] == (300, 300)


@pytest.mark.slow
def test_a_killed_study_resumes_to_the_same_bits(tmp_path):
    # A sweep; a sensitivity study resumes through the same runner path.
    command = "sweep"
    args = [str(BAKERY), "--set", "strike_month=6:30:6", "-n", "4000"]
    table = "sweep_runs.parquet"
    common = [*args, "-w", "1", "--block-size", "256", "--no-progress"]
    invoke(command, *args, "--out", str(tmp_path / "whole"), "-w", "1", "--block-size", "256")
    folder = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", command, *common, "--out", str(folder)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_parts(proc, folder / "study" / "parts", 3)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert not (folder / table).exists()
    r = CliRunner().invoke(cli, [command, *common, "--out", str(folder), "--resume"])
    assert r.exit_code == 0, r.output
    same(tmp_path / "whole", folder, table)
