"""DESIGN.md's invariants on generated scenarios, for both engines: conservation per unit at
every tick, non-negativity of every stock but a source or a balance, engine agreement (outcomes and every
recorded series, tick by tick) and independence of the block size.

The kernel's stocks are watched through its observer. The SimPy engine has none, so its
stocks are read from its recorded series: the generator records every stock and every flow's
`transit.NAME`, which is all conservation needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.engine.des import Run, run_one
from sim.engine.kernel import Block, run_block
from sim.model import Model
from sim.study.runner import run
from tests.helpers import draws
from tests.properties.scenarios import (
    balance_scenarios,
    compile_dict,
    scenarios,
    timed_scenarios,
)

RTOL = 1e-9
RUNS = 4
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
samplers = st.sampled_from(["mc", "lhs", "sobol"])


def both_engines(model: Model, sampler: str, observer: Any = None) -> tuple[Block, list[Run]]:
    params, noise = draws(model, RUNS, seed=3, sampler=sampler)
    block = run_block(model, params, noise, observer=observer, n=RUNS)
    runs = [
        run_one(
            model, {k: v[i] for k, v in params.items()}, {k: v[:, i] for k, v in noise.items()}, i
        )
        for i in range(RUNS)
    ]
    return block, runs


def initial_totals(model: Model, sampler: str) -> dict[str, np.ndarray]:
    """Per unit, what the stocks hold before the first tick (the same draws as both_engines)."""
    params, _ = draws(model, RUNS, seed=3, sampler=sampler)
    ns: dict[str, Any] = {**params, **model.state}
    totals = {u: np.zeros(RUNS) for u in model.units}
    for s in model.stocks:
        totals[s.unit] = totals[s.unit] + np.broadcast_to(s.initial(ns), (RUNS,))
    return totals


def assert_conserved(
    model: Model, t: int, stocks: np.ndarray, transit: np.ndarray, totals: dict[str, np.ndarray]
) -> None:
    """stocks: (stocks, runs) at tick t; transit: (flows, runs)."""
    for unit in model.units:
        s = np.array([x.unit == unit for x in model.stocks])
        f = np.array([x.unit == unit for x in model.flows], dtype=bool)
        held = stocks[s].sum(axis=0) + transit[f].sum(axis=0)
        scale = np.abs(stocks[s]).sum(axis=0) + np.abs(transit[f]).sum(axis=0)
        np.testing.assert_allclose(
            held,
            totals[unit],
            rtol=0,
            atol=RTOL * np.maximum(scale, 1).max(),
            err_msg=f"unit {unit!r}, tick {t}",
        )


def des_paths(model: Model, runs: list[Run]) -> tuple[np.ndarray, np.ndarray]:
    """The SimPy engine's stocks (ticks, stocks, runs) and transit (ticks, flows, runs)."""
    stocks = np.stack([np.stack([r.series[s.name] for s in model.stocks]) for r in runs], axis=-1)
    transit = np.stack(
        [np.stack([r.series[f"transit.{f.name}"] for f in model.flows]) for r in runs], axis=-1
    )
    return stocks.transpose(1, 0, 2), transit.transpose(1, 0, 2)


@SETTINGS
@given(scenarios(), samplers)
def test_conservation_per_unit_at_every_tick(data: dict[str, Any], sampler: str) -> None:
    model = compile_dict(data)
    totals = initial_totals(model, sampler)
    seen = []

    def check(t: int, S: np.ndarray, TR: np.ndarray) -> None:
        assert_conserved(model, t, S, TR, totals)
        seen.append(t)

    _, runs = both_engines(model, sampler, observer=check)
    assert seen == list(range(model.ticks))
    stocks, transit = des_paths(model, runs)
    for t in range(model.ticks):
        assert_conserved(model, t, stocks[t], transit[t], totals)


@SETTINGS
@given(scenarios(), samplers)
def test_no_stock_but_a_source_goes_below_zero(data: dict[str, Any], sampler: str) -> None:
    model = compile_dict(data)
    holders = np.array([s.kind not in ("source", "balance") for s in model.stocks])

    def check(t: int, S: np.ndarray, TR: np.ndarray) -> None:
        assert (S[holders] >= 0).all(), f"kernel, tick {t}: {S[holders].min()}"

    _, runs = both_engines(model, sampler, observer=check)
    stocks, _ = des_paths(model, runs)
    assert (stocks[:, holders] >= 0).all(), f"SimPy engine: {stocks[:, holders].min()}"


def assert_bit_for_bit(block: Block, runs: list[Run]) -> None:
    """The kernel's block and the SimPy engine's runs hold the same bits: every outcome, every
    recorded series tick by tick, and each run's first non-finite tick and culprit."""
    for name, values in block.outcomes.items():
        des = np.array([r.outcomes[name] for r in runs])
        np.testing.assert_array_equal(values, des, err_msg=name)
    for name, values in block.series.items():
        des = np.stack([r.series[name] for r in runs], axis=-1)
        np.testing.assert_array_equal(values, des, err_msg=name)
    assert (block.bad_tick == [r.bad_tick for r in runs]).all()
    assert list(block.bad_name) == [r.bad_name for r in runs]


@SETTINGS
@given(scenarios(), samplers)
def test_simpy_engine_agrees_with_the_kernel(data: dict[str, Any], sampler: str) -> None:
    model = compile_dict(data)
    block, runs = both_engines(model, sampler)
    for name, values in block.outcomes.items():
        des = np.array([r.outcomes[name] for r in runs])
        np.testing.assert_allclose(values, des, rtol=RTOL, atol=0, equal_nan=True, err_msg=name)
    for name, values in block.series.items():  # every stock and transit, tick by tick
        des = np.stack([r.series[name] for r in runs], axis=-1)
        np.testing.assert_allclose(values, des, rtol=RTOL, atol=0, equal_nan=True, err_msg=name)
    assert (block.bad_tick == [r.bad_tick for r in runs]).all()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(max_units=2))
def test_results_do_not_depend_on_block_size(data: dict[str, Any]) -> None:
    model = compile_dict(data)
    tables = [
        run(model, runs=20, seed=5, sampler="lhs", block_size=b, workers=1).runs
        for b in (1, 7, 4096)
    ]
    assert tables[0].equals(tables[1])
    assert tables[0].equals(tables[2])


@pytest.mark.parametrize(("mean", "sd"), [(0.7, 0.15), (0.7, 0.3), (20.25, 19.69)])
def test_normal_noise_with_low_zero_is_accepted(mean: float, sd: float) -> None:
    """docs/language.md: a normal noise with `low: 0` is allowed (found by the generator)."""
    data = {
        "name": "noise",
        "start": "2024-01",
        "months": 3,
        "stocks": {"shelf": {"unit": "t", "initial": 100}, "sold": {"unit": "t", "kind": "sink"}},
        "flows": {
            "sell": {
                "from": "shelf",
                "to": "sold",
                "rate": 8,
                "noise": {"dist": "normal", "mean": mean, "sd": sd, "low": 0},
            }
        },
    }
    assert compile_dict(data).flows[0].noise is not None


# -- balances and two-way flows (issue 17): the same invariants on models that use them --------
BALANCE_SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@BALANCE_SETTINGS
@given(balance_scenarios(), samplers)
def test_conservation_with_balances_and_two_way_flows(data: dict[str, Any], sampler: str) -> None:
    model = compile_dict(data)
    totals = initial_totals(model, sampler)
    seen = []

    def check(t: int, S: np.ndarray, TR: np.ndarray) -> None:
        assert_conserved(model, t, S, TR, totals)
        seen.append(t)

    _, runs = both_engines(model, sampler, observer=check)
    assert seen == list(range(model.ticks))
    stocks, transit = des_paths(model, runs)
    for t in range(model.ticks):
        assert_conserved(model, t, stocks[t], transit[t], totals)


@BALANCE_SETTINGS
@given(balance_scenarios(), samplers)
def test_no_stock_but_a_source_or_a_balance_goes_below_zero(
    data: dict[str, Any], sampler: str
) -> None:
    """A two-way flow takes from whichever end its sign says: that end is rationed too."""
    model = compile_dict(data)
    holders = np.array([s.kind not in ("source", "balance") for s in model.stocks])

    def check(t: int, S: np.ndarray, TR: np.ndarray) -> None:
        assert (S[holders] >= 0).all(), f"kernel, tick {t}: {S[holders].min()}"

    _, runs = both_engines(model, sampler, observer=check)
    stocks, _ = des_paths(model, runs)
    assert (stocks[:, holders] >= 0).all(), f"SimPy engine: {stocks[:, holders].min()}"


@BALANCE_SETTINGS
@given(balance_scenarios(), samplers)
def test_engines_agree_bit_for_bit_with_balances_and_two_way_flows(
    data: dict[str, Any], sampler: str
) -> None:
    assert_bit_for_bit(*both_engines(compile_dict(data), sampler))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(balance_scenarios(max_units=2))
def test_results_with_two_way_flows_do_not_depend_on_block_size(data: dict[str, Any]) -> None:
    model = compile_dict(data)
    tables = [
        run(model, runs=20, seed=5, sampler="lhs", block_size=b, workers=1).runs
        for b in (1, 7, 4096)
    ]
    assert tables[0].equals(tables[1])
    assert tables[0].equals(tables[2])


# -- the time step and the built-ins with memory ------------------------------------------------
@SETTINGS
@given(timed_scenarios(), samplers)
def test_a_time_step_and_builtins_keep_conservation(data: dict[str, Any], sampler: str) -> None:
    model = compile_dict(data)
    totals = initial_totals(model, sampler)
    holders = np.array([s.kind != "source" for s in model.stocks])

    def check(t: int, S: np.ndarray, TR: np.ndarray) -> None:
        assert_conserved(model, t, S, TR, totals)
        assert (S[holders] >= 0).all(), f"kernel, tick {t}: {S[holders].min()}"

    _, runs = both_engines(model, sampler, observer=check)
    stocks, transit = des_paths(model, runs)
    for t in range(model.ticks):
        assert_conserved(model, t, stocks[t], transit[t], totals)


@SETTINGS
@given(timed_scenarios(), samplers)
def test_engines_agree_bit_for_bit_with_a_step_and_builtins(
    data: dict[str, Any], sampler: str
) -> None:
    assert_bit_for_bit(*both_engines(compile_dict(data), sampler))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timed_scenarios(max_units=2))
def test_builtins_do_not_depend_on_block_size(data: dict[str, Any]) -> None:
    model = compile_dict(data)
    tables = [run(model, runs=12, seed=5, block_size=b, workers=1).runs for b in (1, 5, 4096)]
    assert tables[0].equals(tables[1])
    assert tables[0].equals(tables[2])
