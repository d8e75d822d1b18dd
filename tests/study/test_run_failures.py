"""A study that can't go on says why, with exit 2, and leaves a folder it can resume:
a full disk at any write, a Dask scheduler address that is malformed or unreachable."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

import sim
from sim.cli import cli
from sim.errors import ResultsError, ScenarioError
from sim.study import executors, store
from sim.study.results import Results
from tests.helpers import BAKERY

RUNS, BLOCK = 400, 100


def full(*_: Any, **__: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def full_arrow(*_: Any, **__: Any) -> None:
    raise pa.lib.ArrowIOError(
        "[Errno 28] Error writing bytes to file. Detail: [errno 28] No space left on device"
    )


def after(n: int, real: Any, fail: Any = full) -> Any:
    """`real` for its first n calls, then a full disk."""
    calls = {"n": 0}

    def write(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > n:
            fail(*args, **kwargs)
        return real(*args, **kwargs)

    return write


POINTS = {
    "first part": ("write_part", 0, full),
    "third part": ("write_part", 2, full),
    "series part": ("write_series_part", 1, full),
    "manifest at the start": ("write_json", 0, full),
    "manifest at the end": ("write_json", 1, full),
    "bands": ("write_table", 0, full_arrow),
}


@pytest.mark.parametrize("point", sorted(POINTS))
def test_a_full_disk_is_a_user_error_and_the_study_resumes(tmp_path, monkeypatch, point):
    name, n, fail = POINTS[point]
    model = sim.load(BAKERY)
    out = tmp_path / "res"
    monkeypatch.setattr(store, name, after(n, getattr(store, name), fail))
    with pytest.raises(ResultsError, match="disk is full") as caught:
        sim.run(model, runs=RUNS, seed=3, block_size=BLOCK, workers=1, out=out)
    assert str(out) in str(caught.value)
    monkeypatch.undo()
    resumable = (out / store.MANIFEST).is_file()
    assert ("--resume" in str(caught.value)) == resumable
    done = sim.run(
        model, runs=RUNS, seed=3, block_size=BLOCK, workers=1, out=out, resume=resumable, force=True
    )
    clean = sim.run(model, runs=RUNS, seed=3, block_size=BLOCK, workers=1)
    assert done.runs.equals(clean.runs)
    assert Results.load(out).n_runs == RUNS


def test_a_full_disk_while_streaming_runs_parquet(tmp_path, monkeypatch):
    model = sim.load(BAKERY)
    out = tmp_path / "res"
    monkeypatch.setattr(store.TableWriter, "append", after(2, store.TableWriter.append))
    with pytest.raises(ResultsError, match="disk is full"):
        sim.run(model, runs=RUNS, seed=3, block_size=BLOCK, workers=1, out=out)
    monkeypatch.undo()
    assert not list(out.glob(".*.tmp"))  # the half-written runs.parquet is gone
    done = sim.run(model, runs=RUNS, seed=3, block_size=BLOCK, workers=1, out=out, resume=True)
    assert np.array_equal(
        done.outcome("bread_eaten"), sim.run(model, runs=RUNS, seed=3).outcome("bread_eaten")
    )


def test_sim_run_says_the_disk_is_full_with_exit_2(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "write_part", after(1, store.write_part))
    r = CliRunner().invoke(
        cli,
        [
            "run",
            str(BAKERY),
            "-n",
            str(RUNS),
            "--block-size",
            str(BLOCK),
            "-w",
            "1",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert r.exit_code == 2, r.output
    assert "disk is full" in r.output and "--resume" in r.output and str(tmp_path / "r") in r.output
    assert "internal error" not in r.output


def test_a_study_without_a_folder_writes_nothing_so_a_full_disk_cannot_stop_it(monkeypatch):
    for writer in (
        "write_part",
        "write_series_part",
        "write_json",
        "write_table",
        "prepare_folder",
    ):
        monkeypatch.setattr(store, writer, full)
    monkeypatch.setattr(store.TableWriter, "append", full)
    res = sim.run(sim.load(BAKERY), runs=50, workers=1, keep_paths=2)
    assert res.folder is None and res.n_runs == 50 and res.paths is not None


BAD_ADDRESSES = ["not a url:::", "bogus://x:1", "tcp://", "tcp://127.0.0.1:1"]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_a_bad_scheduler_address_writes_nothing(tmp_path, monkeypatch, address):
    pytest.importorskip("distributed")
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT", "1s")
    out = tmp_path / "res"
    with pytest.raises(ScenarioError, match="Dask scheduler"):
        sim.run(sim.load(BAKERY), runs=20, executor="dask", scheduler=address, out=out)
    assert not out.exists()
    r = CliRunner().invoke(
        cli,
        [
            "run",
            str(BAKERY),
            "-n",
            "20",
            "--executor",
            "dask",
            "--scheduler",
            address,
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 2 and "internal error" not in r.output, r.output
    assert not out.exists()


def test_a_scheduler_address_is_checked_on_resume_too(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    out = tmp_path / "res"
    sim.run(sim.load(BAKERY), runs=20, out=out)
    before = {p.name: p.stat().st_mtime_ns for p in Path(out).iterdir()}
    with pytest.raises(ScenarioError, match="not a Dask scheduler address"):
        sim.run(sim.load(BAKERY), runs=20, executor="dask", scheduler="::::", out=out, resume=True)
    assert {p.name: p.stat().st_mtime_ns for p in Path(out).iterdir()} == before
