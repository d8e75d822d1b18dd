"""Summaries of awkward outcomes: constant ones have sd 0, huge ones (near 1e300) stay finite
and raise no numpy RuntimeWarning; a rerun of a killed folder leaves no stale temporaries."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from click.testing import CliRunner

import sim
from sim.analysis.compare import compare, difference
from sim.cli import cli
from sim.study import store
from sim.study.results import mean_sd
from tests.helpers import BAKERY, scenario

HUGE = dict(
    parameters={"x": {"dist": "uniform", "low": 0.5, "high": 1, "unit": "1", "source": "s"}},
    stocks={
        "a": {"unit": "t", "initial": 0.1},
        "b": {"unit": "t", "kind": "sink"},
        "huge": {"unit": "h", "initial": 1e300},
        "gone": {"unit": "h", "kind": "sink"},
    },
    flows={
        "f": {"from": "a", "to": "b", "rate": "0 * x"},
        "g": {
            "from": "huge",
            "to": "gone",
            "rate": "huge * 0.5 * x",
            "noise": {"dist": "lognormal", "median": 1, "p95": 1.0e200},
        },
    },
    outcomes={
        "constant": {"of": "a", "stat": "final", "unit": "t"},
        "constant_huge": {"of": "1.5e300 + 0 * x", "stat": "final", "unit": "h"},
        "big": {"of": "huge", "stat": "max", "unit": "h"},
        "bigsum": {"of": "huge * 1.7", "stat": "sum", "unit": "h"},
    },
)


@pytest.mark.parametrize(
    "x, sd",
    [
        (np.full(50, 0.1), 0.0),
        (np.full(50, 1.5e300), 0.0),
        (np.full(7, -3.0), 0.0),
        (np.array([1e300, 1.5e300, 1.7e300]), float(np.std([1.0, 1.5, 1.7], ddof=1) * 1e300)),
        (np.array([2.0]), 0.0),
    ],
)
def test_mean_sd(x, sd):
    mean, got = mean_sd(x)
    assert np.isfinite(mean) and got == pytest.approx(sd, rel=1e-12, abs=0)


def test_huge_and_constant_outcomes_are_summarised_quietly(tmp_path):
    model = scenario(**HUGE)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        a = sim.run(model, runs=300, seed=1, out=tmp_path / "a")
        b = sim.run(model, runs=300, seed=2, out=tmp_path / "b")
        rows = {s.name: s for s in a.summary()}
        table = compare(a, b)
        compare(a, a)
        difference(a.outcome("big"), b.outcome("big"), paired=False)
    for name in ("constant", "constant_huge"):
        assert rows[name].sd == 0.0 and rows[name].mcse == 0.0
        assert rows[name].as_dict()["sd"] == 0.0  # not null in --json
    for name in ("big", "bigsum"):
        assert np.isfinite(rows[name].sd) and np.isfinite(rows[name].mcse)
    assert all(np.isfinite(d.mcse) for d in table.differences)


def test_sim_run_json_has_no_nulls_and_stderr_no_warnings(tmp_path):
    path = tmp_path / "h.yaml"
    import yaml

    path.write_text(yaml.safe_dump({"name": "toy", "start": "2024-01", "months": 12, **HUGE}))
    r = CliRunner().invoke(
        cli, ["run", str(path), "-n", "200", "--out", str(tmp_path / "r"), "--json"]
    )
    assert r.exit_code == 0, r.output
    assert "RuntimeWarning" not in r.output
    import json

    outcomes = {o["name"]: o for o in json.loads(r.stdout)["outcomes"]}
    assert outcomes["constant"]["sd"] == 0.0 and outcomes["big"]["sd"] is not None


@pytest.mark.parametrize("where", ["", "parts"])
def test_a_rerun_without_resume_clears_a_killed_runs_temporaries(tmp_path, where):
    out = tmp_path / "r"
    sim.run(sim.load(BAKERY), runs=50, out=out)
    stale = out / where / ".runs.parquet.abc123.tmp"
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"half")
    r = CliRunner().invoke(cli, ["run", str(BAKERY), "-n", "50", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert not stale.exists()
    assert not list(out.rglob("*.tmp"))
    assert store.MANIFEST in {p.name for p in out.iterdir()}
