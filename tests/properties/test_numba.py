"""The compiled engine against the kernel on every kind of generated scenario: outcomes and
every recorded series tick by tick to 1e-12 relative (bit for bit but where the C library's
scalar exp, log, pow and trigonometry round differently from numpy's vectorised ones; see
sim/engine/numba_engine.py), and each run's first non-finite tick and culprit identical.

Each example is a new model, so a new compile (a second or so): fewer examples than the
kernel's own properties, over every generator (plain, balances and two-way flows, a time step
and the built-ins, dimensions). Skipped, saying why, where numba is not installed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.engine import kernel, missing
from sim.model import Model
from sim.study.runner import run
from tests.helpers import draws
from tests.properties.scenarios import (
    arrayed_scenarios,
    balance_scenarios,
    compile_dict,
    scenarios,
    timed_scenarios,
)

pytestmark = pytest.mark.skipif(missing("numba") is not None, reason=str(missing("numba")))

RTOL = 1e-12
RUNS = 5
SETTINGS = settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
samplers = st.sampled_from(["mc", "lhs", "sobol"])


def assert_agree(model: Model, sampler: str) -> None:
    from sim.engine import numba_engine

    params, noise = draws(model, RUNS, seed=3, sampler=sampler)
    reference = kernel.run_block(model, params, noise, n=RUNS)
    block = numba_engine.run_block(model, params, noise, n=RUNS)
    assert list(block.bad_name) == list(reference.bad_name)
    np.testing.assert_array_equal(block.bad_tick, reference.bad_tick)
    assert block.outcomes.keys() == reference.outcomes.keys()
    for name, values in reference.outcomes.items():
        np.testing.assert_allclose(
            block.outcomes[name], values, rtol=RTOL, atol=0, equal_nan=True, err_msg=name
        )
    assert block.series.keys() == reference.series.keys()
    for name, values in reference.series.items():
        np.testing.assert_allclose(
            block.series[name], values, rtol=RTOL, atol=1e-300, equal_nan=True, err_msg=name
        )


@SETTINGS
@given(scenarios(), samplers)
def test_numba_agrees_with_the_kernel(data: dict[str, Any], sampler: str) -> None:
    assert_agree(compile_dict(data), sampler)


@SETTINGS
@given(balance_scenarios(), samplers)
def test_numba_agrees_with_balances_and_two_way_flows(data: dict[str, Any], sampler: str) -> None:
    assert_agree(compile_dict(data), sampler)


@SETTINGS
@given(timed_scenarios(), samplers)
def test_numba_agrees_with_a_step_and_builtins(data: dict[str, Any], sampler: str) -> None:
    assert_agree(compile_dict(data), sampler)


@SETTINGS
@given(arrayed_scenarios(), samplers)
def test_numba_agrees_on_arrayed_models(data: dict[str, Any], sampler: str) -> None:
    assert_agree(compile_dict(data), sampler)


@settings(max_examples=1, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timed_scenarios(max_units=2))
def test_numba_results_do_not_depend_on_block_size(data: dict[str, Any]) -> None:
    model = compile_dict(data)
    tables = [
        run(model, runs=12, seed=5, block_size=b, workers=1, engine="numba").runs
        for b in (1, 5, 4096)
    ]
    assert tables[0].equals(tables[1])
    assert tables[0].equals(tables[2])
