"""DESIGN.md's invariants on generated scenarios: conservation, non-negativity, engine
agreement and block-size independence."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings

from sim.study.runner import run
from tests.helpers import des_outcomes, kernel
from tests.properties.scenarios import compile_dict, scenarios

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(scenarios())
def test_conservation_per_unit_at_every_tick(data):
    model = compile_dict(data)
    units = model.units
    stock_unit = np.array([units.index(s.unit) for s in model.stocks])
    flow_unit = np.array([units.index(f.unit) for f in model.flows])
    totals: dict[int, np.ndarray] = {}

    def check(t, S, TR):
        for u in range(len(units)):
            held = S[stock_unit == u].sum(axis=0) + TR[flow_unit == u].sum(axis=0)
            scale = np.abs(S[stock_unit == u]).sum(axis=0) + np.abs(TR[flow_unit == u]).sum(axis=0)
            if u not in totals:
                totals[u] = initial[u]
            np.testing.assert_allclose(held, totals[u], rtol=0, atol=1e-9 * np.maximum(scale, 1).max())

    # The initial total per unit, from the same draws (stocks before any flow).
    from tests.helpers import draws

    params, _ = draws(model, 5)
    ns = dict(params)
    ns.update(model.state)
    initial = {}
    for u in range(len(units)):
        initial[u] = sum(
            np.broadcast_to(s.initial(ns), (5,)) for s in model.stocks if units.index(s.unit) == u
        )
    kernel(model, runs=5, observer=check)


@SETTINGS
@given(scenarios())
def test_no_stock_but_a_source_goes_below_zero(data):
    model = compile_dict(data)
    holders = np.array([s.kind != "source" for s in model.stocks])

    def check(t, S, TR):
        assert (S[holders] >= 0).all(), f"tick {t}: {S[holders].min()}"

    kernel(model, runs=5, observer=check)


@SETTINGS
@given(scenarios())
def test_simpy_engine_agrees_with_the_kernel(data):
    model = compile_dict(data)
    k = kernel(model, runs=3).outcomes
    d = des_outcomes(model, runs=3)
    for name in k:
        np.testing.assert_allclose(k[name], d[name], rtol=1e-9, atol=0, equal_nan=True, err_msg=name)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(max_units=2))
def test_results_do_not_depend_on_block_size(data):
    model = compile_dict(data)
    tables = [run(model, runs=30, seed=5, sampler="lhs", block_size=b).runs for b in (1, 7, 4096)]
    assert tables[0].equals(tables[1])
    assert tables[0].equals(tables[2])
