"""Scaling out: workers, Dask, streaming parts, resume after Ctrl-C or SIGKILL, precision
stopping, the folder lock, and non-finite runs in the summary. The contract under test is
DESIGN.md's: the same runs.parquet whatever the workers, executor or interruption."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import sim
from sim.cli import cli
from sim.errors import ResultsError, ScenarioError
from sim.study import runner
from sim.study.results import Results
from tests.helpers import BAKERY, ROOT, bakery, wait_for_parts, write


def table(folder: Path, name: str = "runs.parquet"):
    return pq.read_table(folder / name)


def same_results(a: Path, b: Path) -> None:
    assert table(a).equals(table(b)), "runs.parquet differs"
    assert table(a, "bands.parquet").equals(table(b, "bands.parquet")), "bands.parquet differs"


@contextlib.contextmanager
def running(args: list[str]) -> Iterator[subprocess.Popen[str]]:
    """`sim run ARGS` in a subprocess, as a user's terminal would start it; killed if a
    check fails so that nothing outlives the test."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "run", *args, "--no-progress"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell starts background jobs with Ctrl-C ignored, and children inherit that;
        # a terminal's foreground job has it on.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


# -- same bits everywhere -------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [
        {"runs": 700, "block_size": 256, "keep_paths": 3},  # several blocks, paths
        {"runs": 300, "block_size": 300},  # one block
        {"runs": 4000, "block_size": 500, "precision": {"bread_eaten": 0.05}},  # stops early
    ],
)
def test_a_study_held_in_memory_is_the_folders_study(tmp_path, options, monkeypatch):
    model = bakery()
    monkeypatch.setattr(runner, "BAND_BUDGET_BYTES", 8 * model.ticks * len(model.record) * 500)
    written = sim.run(model, seed=4, out=tmp_path / "r", **options)
    held = sim.run(model, seed=4, **options)
    assert held.folder is None and held.runs.equals(table(tmp_path / "r"))
    assert held.bands.equals(table(tmp_path / "r", "bands.parquet"))
    if options.get("keep_paths"):
        assert held.paths.equals(table(tmp_path / "r", "paths.parquet"))
    drop = ("sha256", "started", "finished", "wall_seconds")
    assert {k: v for k, v in written.manifest.items() if k not in drop} == {
        k: v for k, v in held.manifest.items() if k not in drop
    }


@pytest.mark.slow
def test_serial_two_workers_and_dask_give_the_same_bits(tmp_path):
    model = bakery()
    common = {"runs": 3000, "seed": 4, "block_size": 500, "keep_paths": 2}
    sim.run(model, out=tmp_path / "serial", workers=1, **common)
    two = sim.run(model, out=tmp_path / "two", workers=2, **common)
    dask = sim.run(model, out=tmp_path / "dask", workers=2, executor="dask", **common)
    assert two.manifest["executor"] == {"kind": "processes", "workers": 2}
    assert dask.manifest["executor"] == {"kind": "dask", "workers": 2}
    same_results(tmp_path / "serial", tmp_path / "two")
    same_results(tmp_path / "serial", tmp_path / "dask")
    assert table(tmp_path / "serial", "paths.parquet").equals(
        table(tmp_path / "dask", "paths.parquet")
    )
    # and the same as one block held in memory, with no folder at all
    whole = sim.run(model, runs=3000, seed=4, block_size=3000)
    assert whole.runs.equals(table(tmp_path / "two"))


@pytest.mark.slow
def test_our_local_cluster_leaves_glibc_malloc_at_its_defaults():
    # Dask sets MALLOC_TRIM_THRESHOLD_ in its workers, which turns off glibc's adaptive mmap
    # threshold: every large numpy temporary is then a fresh mmap, and blocks ran about 14%
    # slower than in the process pool. Our own LocalCluster drops it, like the pool's workers.
    from sim.study.executors import open_executor

    ours = os.environ.get("MALLOC_TRIM_THRESHOLD_")  # before: Dask writes it into the parent
    with open_executor("dask", 1) as ex:
        seen = ex.client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_")  # type: ignore[attr-defined]
    assert list(seen.values()) == [ours]


@pytest.mark.slow
# Each executor and each way of failing once: the two causes share one message per executor.
@pytest.mark.parametrize(("executor", "how"), [("processes", "unguarded file"), ("dask", "stdin")])
def test_workers_that_cannot_import_the_calling_script_are_a_clear_error(executor, how, tmp_path):
    # Worker processes import the calling script: one read from standard input has no file,
    # and one without the __main__ guard starts the study again in each worker.
    out = tmp_path / "out"
    script = (
        "import sim\n"
        f"sim.run(sim.load({str(BAKERY)!r}), runs=4000, seed=1, workers=2, block_size=1000,"
        f" executor={executor!r}, out={str(out)!r})\n"
    )
    if how == "stdin":
        command, given = [sys.executable, "-"], script
    else:
        (tmp_path / "study.py").write_text(script)
        command, given = [sys.executable, str(tmp_path / "study.py")], None
    done = subprocess.run(
        command, input=given, capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert not out.exists()
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("sim.errors.ScenarioError: "), done.stderr
    assert "read from standard input" in last and 'if __name__ == "__main__":' in last


@pytest.mark.parametrize(
    "executor", ["serial", "processes", pytest.param("dask", marks=pytest.mark.slow)]
)
def test_a_worker_running_other_code_refuses_with_a_clear_error(executor):
    # A Dask worker installed at another time: its numpy (or sim) differs from the parent's.
    from sim.study.executors import open_executor

    p = runner.plan(bakery(), runs=200, seed=1, block_size=100)
    job = runner.BlockJob(p)
    *state, build = job._state
    job._state = (*state, build | {"numpy": "0.0.1"})
    job = pickle.loads(pickle.dumps(job))  # as a worker receives it
    with pytest.raises(ScenarioError) as err, open_executor(executor, 2) as ex:
        list(ex.completed(job, [0, 1]))
    message = str(err.value)
    assert f"numpy 0.0.1 where the study started, {np.__version__} on the worker" in message
    assert "would not be the same bits" in message and len(err.value.problems) == 1


def test_joining_a_cluster_checks_every_worker_first():
    # One worker without sim, one at another numpy, one like this machine.
    from sim.study.executors import _check_workers

    ours = runner.build()

    class Client:
        def run(self, function, on_error):
            assert on_error == "return"
            return {
                "tcp://a:1": ModuleNotFoundError("No module named 'sim'"),
                "tcp://b:1": ours | {"numpy": "0.0.1"},
                "tcp://c:1": function(),
            }

    with pytest.raises(ScenarioError) as err:
        _check_workers(Client())
    message = str(err.value)
    assert "tcp://a:1 can't import sim (ModuleNotFoundError" in message
    assert f"tcp://b:1 runs other code: numpy 0.0.1 (here {np.__version__})" in message
    assert "tcp://c:1" not in message


def test_the_worker_probe_travels_to_a_worker_without_sim():
    # Sent by value: unpickling it needs no sim; running it there says sim is missing.
    import cloudpickle

    from sim.study.executors import _PROBE

    code = (
        "import sys, pickle; sys.modules['sim'] = None; probe = pickle.loads(sys.stdin.buffer.read())\n"
        "try:\n    probe()\nexcept ImportError as exc:\n    print('no sim:', exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=cloudpickle.dumps(_PROBE),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().startswith("no sim:")


def test_the_build_covers_sims_own_code():
    build = runner.build()
    assert set(build) == {"numpy", "scipy", "simpy", "sim code"}
    assert len(build["sim code"]) == 12


def test_many_blocks_stream_into_one_file_in_run_order(tmp_path):
    model = bakery()
    sim.run(model, runs=1500, seed=9, block_size=11, out=tmp_path / "small", workers=1)
    sim.run(model, runs=1500, seed=9, block_size=1500, out=tmp_path / "one", workers=1)
    same_results(tmp_path / "small", tmp_path / "one")
    # each part was appended as it was read (a row group per block), never all held at once
    assert pq.ParquetFile(tmp_path / "small" / "runs.parquet").num_row_groups == 137
    assert not (tmp_path / "small" / "parts").exists()


def test_left_to_choose_a_quick_study_stays_in_this_process(tmp_path):
    res = sim.run(bakery(), runs=3000, seed=9, block_size=500, out=tmp_path / "auto")
    assert res.manifest["executor"] == {"kind": "serial", "workers": 1}


def test_bands_beyond_the_budget_are_a_stated_subsample(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "BAND_BUDGET_BYTES", 8 * 36 * 3 * 1000)  # 1000 runs of bakery
    res = sim.run(bakery(), runs=2500, seed=1, block_size=700, out=tmp_path / "a", workers=2)
    bands = res.manifest["bands"]
    assert bands["runs_used"] == 1000 and "first 1000 of 2500" in bands["method"]
    assert bands["quantile_error"] == pytest.approx(np.sqrt(np.log(40) / 2000), abs=1e-6)
    first = sim.run(bakery(), runs=2500, seed=1, block_size=2500, out=tmp_path / "b", workers=1)
    assert first.bands.equals(res.bands)
    exact = sim.run(bakery(), runs=500, seed=1)
    assert exact.manifest["bands"]["quantile_error"] == 0.0


# -- resume -----------------------------------------------------------------------------
class Stop(KeyboardInterrupt):
    pass


def interrupted(folder: Path, after: int, **kw) -> None:
    """A study stopped (as by Ctrl-C) once `after` runs are done."""

    def progress(done: int, total: int) -> None:
        if done >= after:
            raise Stop

    with pytest.raises(Stop):
        sim.run(bakery(), out=folder, progress=progress, **kw)


def test_resume_finishes_an_interrupted_run_with_the_same_bits(tmp_path):
    common = {"runs": 2000, "seed": 5, "block_size": 300}
    interrupted(tmp_path / "a", 900, workers=1, **common)
    with pytest.raises(ResultsError, match="--resume"):
        Results.load(tmp_path / "a")
    assert len(list((tmp_path / "a" / "parts").glob("runs-*"))) == 3
    # a different study is refused, naming what differs
    with pytest.raises(ResultsError, match="seed 5 there, 6 now"):
        sim.run(bakery(), out=tmp_path / "a", resume=True, **{**common, "seed": 6})
    res = sim.run(bakery(), out=tmp_path / "a", resume=True, workers=2, **common)
    assert res.manifest["resumed"] == 1 and res.n_runs == 2000
    sim.run(bakery(), out=tmp_path / "b", runs=2000, seed=5, workers=1)
    same_results(tmp_path / "a", tmp_path / "b")
    # resuming a finished run changes nothing
    again = sim.run(bakery(), out=tmp_path / "a", resume=True, **common)
    assert again.runs.equals(res.runs)


def test_resume_needs_something_to_resume(tmp_path):
    with pytest.raises(ResultsError, match="nothing to resume"):
        sim.run(bakery(), runs=10, out=tmp_path / "none", resume=True)
    with pytest.raises(ScenarioError, match="needs the results folder"):
        sim.run(bakery(), runs=10, resume=True)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_gives_the_same_bits(tmp_path):
    out = tmp_path / "killed"
    args = [str(BAKERY), "-n", "60000", "--seed", "3", "--block-size", "600", "--out", str(out)]
    with running([*args, "--workers", "2"]) as proc:
        wait_for_parts(proc, out / "parts", 3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    manifest = json.loads((out / "manifest.json").read_text())
    assert not manifest["complete"]
    r = CliRunner().invoke(cli, ["run", *args, "--workers", "2", "--resume"])
    assert r.exit_code == 0, r.output
    ref = CliRunner().invoke(
        cli,
        [
            "run",
            str(BAKERY),
            "-n",
            "60000",
            "--seed",
            "3",
            "--out",
            str(tmp_path / "ref"),
            "-w",
            "1",
        ],
    )
    assert ref.exit_code == 0, ref.output
    same_results(out, tmp_path / "ref")


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_prints_the_resume_command(tmp_path):
    out = tmp_path / "stopped"
    with running(
        [
            str(BAKERY),
            "-n",
            "60000",
            "--seed",
            "8",
            "--block-size",
            "500",
            "--out",
            str(out),
            "-w",
            "2",
        ]
    ) as proc:
        wait_for_parts(proc, out / "parts", 2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    hint = err.split("resume with: ", 1)[1].strip()
    args = shlex.split(hint)
    assert args[:2] == ["sim", "run"] and args[-1] == "--resume"
    r = CliRunner().invoke(cli, args[1:])
    assert r.exit_code == 0, r.output
    sim.run(bakery(), runs=60000, seed=8, out=tmp_path / "ref", workers=1)
    same_results(out, tmp_path / "ref")


# -- the lock ---------------------------------------------------------------------------
@pytest.mark.slow
def test_a_second_run_into_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "busy"
    with running(
        [
            str(BAKERY),
            "-n",
            "40000",
            "--seed",
            "2",
            "--block-size",
            "400",
            "--out",
            str(out),
            "-w",
            "1",
        ]
    ) as proc:
        wait_for_parts(proc, out / "parts", 1)
        for extra in ([], ["--force"], ["--resume"]):
            r = CliRunner().invoke(
                cli, ["run", str(BAKERY), "-n", "100", "--out", str(out), *extra]
            )
            assert r.exit_code == 2, r.output
            assert "being written by another sim run" in r.output
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    res = Results.load(out)
    assert res.n_runs == 40000 and res.runs.num_rows == 40000


# -- precision ----------------------------------------------------------------------------
def test_precision_stops_at_the_first_precise_prefix_whatever_the_workers(tmp_path):
    common = {"runs": 40000, "seed": 2, "block_size": 500, "precision": {"bread_eaten": 0.01}}
    one = sim.run(bakery(), out=tmp_path / "one", workers=1, **common)
    two = sim.run(bakery(), out=tmp_path / "two", workers=2, **common)
    assert two.manifest["executor"]["kind"] == "processes"
    same_results(tmp_path / "one", tmp_path / "two")
    n = one.n_runs
    assert n < 40000 and n % 500 == 0 and one.runs.num_rows == n
    p = one.manifest["precision"]
    assert p["met"] and p["runs_used"] == n and p["runs_cap"] == 40000
    reached = p["outcomes"]["bread_eaten"]
    assert reached["requested"] == 0.01 and reached["relative"] <= 0.01

    def relative(x: np.ndarray) -> float:
        return 1.959963984540054 * x.std(ddof=1) / np.sqrt(len(x)) / abs(x.mean())

    x = one.outcome("bread_eaten")
    assert relative(x) == pytest.approx(reached["relative"], rel=1e-9)
    assert relative(x[: n - 500]) > 0.01  # one block fewer was not enough


def test_precision_on_the_command_line(tmp_path):
    r = CliRunner().invoke(
        cli,
        [
            "run",
            str(BAKERY),
            "-n",
            "20000",
            "--block-size",
            "1000",
            "--precision",
            "bread_eaten:2%",
            "--out",
            str(tmp_path / "p"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "precision met after" in r.output and "bread_eaten ±" in r.output
    bad = CliRunner().invoke(
        cli, ["run", str(BAKERY), "--precision", "bread:0.01", "--out", str(tmp_path / "q")]
    )
    assert bad.exit_code == 2 and "no outcome 'bread'" in bad.output
    bad = CliRunner().invoke(
        cli, ["run", str(BAKERY), "--precision", "bread_eaten", "--out", str(tmp_path / "q")]
    )
    assert bad.exit_code == 2 and "OUTCOME:REL" in bad.output


# -- failures and a missing extra ---------------------------------------------------------------
def test_nonfinite_runs_are_counted_and_their_culprit_named(tmp_path):
    bad = write(
        tmp_path,
        "bad.yaml",
        f"extends: {BAKERY}\nname: bad\nvariables:\n"
        '  supply: "mill_output * open * log(t + 1 - 21 * (mill_output <= 95))"\n',
    )
    r = CliRunner().invoke(cli, ["run", str(bad), "-n", "400", "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert "runs went non-finite" in r.output and "variables.supply" in r.output
    j = CliRunner().invoke(
        cli, ["run", str(bad), "-n", "400", "--out", str(tmp_path / "a"), "--json"]
    )
    data = json.loads(j.output)
    res = Results.load(tmp_path / "a")
    count = int(np.sum(res.status != "ok"))
    assert 0 < count < 400
    assert data["nonfinite"]["runs"] == data["nonfinite_runs"] == count
    assert data["nonfinite"]["by_name"] == {"variables.supply": count}
    first = data["nonfinite"]["first"]
    row = res.runs.slice(first["run"], 1).to_pylist()[0]
    assert row["status"] == "nonfinite" and row["bad_tick"] == first["tick"]


def test_dask_not_installed_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    r = CliRunner().invoke(
        cli, ["run", str(BAKERY), "-n", "10", "--executor", "dask", "--out", str(tmp_path / "d")]
    )
    assert r.exit_code == 2, r.output
    assert "pip install -e '.[dask]'" in r.output


def test_the_library_runs_serially_unless_asked_and_sim_run_chooses(tmp_path, monkeypatch):
    # From a plain script (no __main__ guard) worker processes would re-run the script, so
    # sim.run stays serial by default however slow the first block looks; `sim run` (and
    # workers=None) still starts a pool when the rest would take a while.
    monkeypatch.setattr(runner, "AUTO_POOL_SECONDS", -1.0)  # every study "takes a while"
    res = sim.run(bakery(), runs=600, seed=1, block_size=200)
    assert res.manifest["executor"] == {"kind": "serial", "workers": 1}
    chosen = sim.run(bakery(), runs=600, seed=1, block_size=200, workers=None)
    assert chosen.manifest["executor"]["kind"] == "processes"
    assert chosen.runs.equals(res.runs)
    r = CliRunner().invoke(
        cli,
        [
            "run",
            str(BAKERY),
            "-n",
            "600",
            "--block-size",
            "200",
            "--out",
            str(tmp_path / "c"),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["executor"]["kind"] == "processes"


def test_bands_skip_a_runs_nonfinite_values_tick_by_tick():
    # Bands are quantiles over runs at each tick: a run that went non-finite drops out of the
    # ticks where its value is NaN, and a series with no NaN takes the plain quantile.
    m = sim.load(BAKERY)
    values = np.random.default_rng(5).normal(size=(m.ticks, 301))
    values[10:, 7] = np.nan  # one run gone non-finite from tick 10
    values[20:, 40] = np.nan
    clean = np.random.default_rng(6).normal(size=(m.ticks, 301))

    def series(name: str, k: int) -> np.ndarray:
        return (values if name == m.record[0][0] else clean)[:, :k]

    bands = runner._bands(m, 301, series).to_pandas()
    for name, expect in ((m.record[0][0], values), (m.record[1][0], clean)):
        got = bands[bands["series"] == name]
        q = np.nanquantile(expect, runner.QUANTILES, axis=1)
        for key, row in zip(runner.QUANTILE_NAMES, q, strict=True):
            assert np.array_equal(got[key].to_numpy(), row), (name, key)
        assert np.array_equal(got["mean"].to_numpy(), np.nanmean(expect, axis=1))
    assert not bands[runner.QUANTILE_NAMES[0]].isna().any()


def test_bands_on_threads_are_the_bands_on_one(monkeypatch):
    model = bakery()
    from sim.sampling import draws

    monkeypatch.setattr(draws, "THREADED_FROM", 0)  # a series per thread, even this small
    monkeypatch.setattr(draws._THREADS, "n", 4)
    threaded = sim.run(model, runs=600, seed=2).bands
    monkeypatch.setattr(draws, "THREADED_FROM", 10**18)  # one series after another
    assert threaded.equals(sim.run(model, runs=600, seed=2).bands)
