"""Invariants restated per cell, on generated arrayed models (tests/properties/scenarios.py,
`arrayed_scenarios`): conservation per unit summed over every cell, non-negativity per cell
(but sources and balances), bit-for-bit engine agreement, and independence of the block size."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings

from sim.engine import ENGINES, kernel
from sim.model import Model
from sim.sampling.draws import noise_draws, parameter_draws
from tests.properties.scenarios import arrayed_scenarios, compile_dict

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RUNS = 6


def draws(model: Model) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    seed = model.scenario.seed
    params = parameter_draws(model.parameters, "mc", seed, RUNS, 0, RUNS)
    return params, noise_draws(model.noises, seed, RUNS, model.ticks, 0, RUNS)


def start_totals(model: Model) -> dict[str, float]:
    totals: dict[str, float] = {}
    for s in model.stocks:
        start = np.broadcast_to(s.initial({}), (*s.shape, 1)).sum()
        totals[s.unit] = totals.get(s.unit, 0.0) + float(start)
    return totals


def rows(model: Model, unit: str) -> list[int]:
    return [r for s in model.stocks if s.unit == unit for r in range(s.row, s.row + s.size)]


@SETTINGS
@given(arrayed_scenarios())
def test_conservation_per_unit_summed_over_every_cell(data: dict[str, Any]) -> None:
    model = compile_dict(data)
    params, noise = draws(model)
    units = {u: rows(model, u) for u in model.units}
    flow_rows = {
        u: [r for f in model.flows if f.unit == u for r in range(f.row, f.row + f.size)]
        for u in model.units
    }
    start = start_totals(model)

    def observe(t: int, S: np.ndarray, TR: np.ndarray) -> None:
        for unit, held in units.items():
            total = S[held].sum(axis=0) + TR[flow_rows[unit]].sum(axis=0)
            scale = max(1.0, float(np.abs(S[held]).sum(axis=0).max()))
            np.testing.assert_allclose(total, start[unit], rtol=0, atol=1e-9 * scale)

    block = kernel.run_block(model, params, noise, 0, RUNS, observer=observe)
    assert (block.bad_tick < 0).all()


@SETTINGS
@given(arrayed_scenarios())
def test_no_stock_cell_but_a_source_or_a_balance_goes_below_zero(data: dict[str, Any]) -> None:
    model = compile_dict(data)
    params, noise = draws(model)
    limited = [r for s in model.stocks if not s.unlimited for r in range(s.row, s.row + s.size)]

    def observe(t: int, S: np.ndarray, TR: np.ndarray) -> None:
        assert (S[limited] >= 0).all(), t

    kernel.run_block(model, params, noise, 0, RUNS, observer=observe)


@SETTINGS
@given(arrayed_scenarios())
def test_engines_agree_bit_for_bit_on_arrayed_models(data: dict[str, Any]) -> None:
    model = compile_dict(data)
    params, noise = draws(model)
    reference = kernel.run_block(model, params, noise, 0, RUNS)
    for name in sorted(set(ENGINES) - {"numba"}):  # numba: tests/properties/test_numba.py
        block = ENGINES[name](model, params, noise, 0, RUNS, None)
        for key, values in reference.outcomes.items():
            assert np.array_equal(values, block.outcomes[key], equal_nan=True), (name, key)
        for key, values in reference.series.items():
            assert np.array_equal(values, block.series[key], equal_nan=True), (name, key)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrayed_scenarios())
def test_arrayed_results_do_not_depend_on_block_size(data: dict[str, Any]) -> None:
    model = compile_dict(data)
    params, noise = draws(model)
    whole = kernel.run_block(model, params, noise, 0, RUNS)
    for lo, hi in ((0, 1), (1, 4), (4, RUNS)):
        part = kernel.run_block(
            model,
            {k: v[lo:hi] for k, v in params.items()},
            {k: v[:, lo:hi] for k, v in noise.items()},
            lo,
            hi - lo,
        )
        for key, values in whole.outcomes.items():
            assert np.array_equal(values[lo:hi], part.outcomes[key], equal_nan=True), key
