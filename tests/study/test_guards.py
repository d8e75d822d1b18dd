"""Resource guards size a study before it runs; a model failing in every run is one error."""

from __future__ import annotations

import numpy as np
import pytest

from sim.errors import ScenarioError
from sim.model import load
from sim.study.guards import EVIDENCE, Health, check, estimate, parse_size, size
from sim.study.runner import run
from tests.helpers import BAKERY, bakery, write

BOOM = {
    "name": "boom",
    "start": "2024-01",
    "months": 6,
    "parameters": {"k": {"dist": "uniform", "low": 0, "high": 2, "unit": "x", "source": "test"}},
    "stocks": {"s": {"unit": "u", "kind": "source"}, "d": {"unit": "u"}},
    "variables": {"boom": "where(t >= 3, 1 / (k - k), 1)"},
    "flows": {"f": {"from": "s", "to": "d", "rate": "boom"}},
    "outcomes": {"got": {"of": "d", "stat": "final", "unit": "u"}},
}


def test_estimate_grows_with_what_the_study_keeps():
    m = bakery()
    small = estimate(m, runs=1000, block_size=1000)
    assert 0 < small.memory_bytes < 50 * 2**20
    assert estimate(m, runs=1000, block_size=1000, workers=4).memory_bytes > small.memory_bytes
    assert estimate(m, runs=1000, block_size=1000, kept=1000).memory_bytes > small.memory_bytes
    more = estimate(m, runs=10**6, block_size=1000)
    assert more.per_block_bytes == small.per_block_bytes  # bounded by the block, not the runs
    assert more.output_bytes > 500 * small.output_bytes


def test_a_study_beyond_the_memory_limit_is_refused_with_the_estimate_and_the_override():
    est = estimate(bakery(), runs=10**5, block_size=8192, workers=2, kept=1000)
    with pytest.raises(ScenarioError) as err:
        check(est, None, max_memory=est.memory_bytes // 2)
    text = str(err.value)
    assert "this study needs about" in text and "per block of 8,192 runs" in text
    assert "--max-memory" in text and "--block-size" in text
    check(est, None, max_memory=est.memory_bytes)  # at the limit: fine


def test_a_long_horizon_with_noise_needs_a_smaller_block(tmp_path):
    text = BAKERY.read_text().replace("months: 36", "months: 100000")
    m = load(write(tmp_path, "long.yaml", text))
    est = estimate(m, runs=10**6, block_size=8192, workers=2, kept=1000)
    assert est.memory_bytes > 10 * 2**30  # 100,000 ticks of noise for 8192 runs, twice
    with pytest.raises(ScenarioError, match="--max-memory"):
        check(est, None, max_memory=4 * 2**30)
    smaller = estimate(m, runs=10**6, block_size=64, workers=2, kept=1000)
    assert smaller.per_block_bytes < est.per_block_bytes / 2


def test_results_larger_than_the_free_disk_are_refused(tmp_path):
    est = estimate(bakery(), runs=10**15, block_size=8192)
    with pytest.raises(
        ScenarioError, match=r"would need about .* at its peak .* free; choose another --out"
    ):
        check(est, tmp_path / "not" / "yet" / "there", max_memory=2**62)


def test_every_run_nonfinite_is_one_located_error(tmp_path):
    m = load(write(tmp_path, "boom.yaml", BOOM))
    out = tmp_path / "res"
    with pytest.raises(ScenarioError) as err:
        run(m, runs=5, out=out, workers=1)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'boom.yaml'}:")
    assert (
        "variables.boom: non-finite (NaN or infinite) in every one of the 5 runs so far" in message
    )
    assert "first at tick 3 (2024-04)" in message
    assert not out.exists()  # nothing half-written


def test_some_runs_nonfinite_is_a_result_not_an_error(tmp_path):
    data = dict(BOOM, variables={"boom": "where(k > 1, 1 / (k - k), 1)"})
    m = load(write(tmp_path, "some.yaml", data))
    res = run(m, runs=40, workers=1)
    status = res.runs.column("status").to_numpy(zero_copy_only=False)
    assert 0 < np.sum(status != "ok") < 40
    Health(m, 40).add(res.runs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("40GiB", 40 * 2**30), ("512M", 512 * 2**20), ("2g", 2 * 2**30), ("1e9", 10**9), ("100", 100)],
)
def test_sizes_parse(text, expected):
    assert parse_size(text) == expected


def test_a_bad_size_is_a_clear_error():
    with pytest.raises(ScenarioError, match="'lots' is not a size"):
        parse_size("lots")
    assert size(1536 * 2**20) == "1.5 GiB"


def test_one_bad_run_in_a_block_of_one_is_not_a_broken_model(tmp_path):
    # With tiny blocks a block can hold nothing but a failed run: the evidence is all the
    # runs so far, not one block.
    data = dict(BOOM, variables={"boom": "where(k > 1.5, 1 / (k - k), 1)"})
    m = load(write(tmp_path, "few.yaml", data))
    res = run(m, runs=EVIDENCE + 50, block_size=1, workers=1)
    status = res.runs.column("status").to_numpy(zero_copy_only=False)
    assert 0 < np.sum(status != "ok") < EVIDENCE


def test_an_outcome_nonfinite_in_every_run_is_one_located_error(tmp_path):
    data = dict(
        BOOM,
        variables={"boom": "1"},
        outcomes={"x": {"of": "log(d - d)", "stat": "mean", "unit": "u"}},
    )
    m = load(write(tmp_path, "out.yaml", data))
    with pytest.raises(
        ScenarioError, match=r"outcomes\.x\.of: non-finite .* in every one of the 3 runs so far"
    ):
        run(m, runs=3, workers=1)


def test_sim_run_refuses_an_oversized_study_with_exit_2_and_writes_nothing(tmp_path):
    from click.testing import CliRunner

    from sim.cli import cli

    out = tmp_path / "res"
    r = CliRunner().invoke(
        cli, ["run", str(BAKERY), "-n", "100000", "--max-memory", "1MiB", "--out", str(out)]
    )
    assert r.exit_code == 2, r.output
    assert "this study needs about" in r.output and "limit you set (1.0 MiB)" in r.output
    assert not out.exists()
    r = CliRunner().invoke(cli, ["run", str(BAKERY), "-n", str(10**15), "--out", str(out)])
    assert r.exit_code == 2 and "free" in r.output and not out.exists()
    r = CliRunner().invoke(
        cli, ["run", str(BAKERY), "-n", "200", "--max-memory", "2GiB", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
