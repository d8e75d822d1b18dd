"""Analytic cases with exact answers, run through both engines."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine.kernel import run_block
from sim.errors import ScenarioError
from tests.helpers import bakery, des_outcomes, draws, kernel, scenario


def both(model, runs=3):
    k = kernel(model, runs).outcomes
    d = des_outcomes(model, runs)
    for name in k:
        np.testing.assert_array_equal(k[name], d[name], err_msg=name)
    return k


def test_constant_flow_accumulates_exactly():
    m = scenario(
        stocks={"tap": {"unit": "l", "kind": "source"}, "tank": {"unit": "l", "kind": "sink"}},
        flows={"fill": {"from": "tap", "to": "tank", "rate": 5}},
        outcomes={
            "filled": {"of": "tank", "stat": "final"},
            "tap_final": {"of": "tap", "stat": "final"},
            "cum_fill": {"of": "cum.fill", "stat": "final"},
        },
    )
    out = both(m)
    assert np.all(out["filled"] == 60.0)
    assert np.all(out["tap_final"] == -60.0)  # a source goes negative by what it gave
    assert np.all(out["cum_fill"] == 60.0)


def test_proportional_outflow_decays_geometrically():
    m = scenario(
        months=24,
        stocks={"pool": {"unit": "kg", "initial": 100}, "gone": {"unit": "kg", "kind": "sink"}},
        flows={"leak": {"from": "pool", "to": "gone", "rate": "0.1 * pool"}},
        outcomes={"left": {"of": "pool", "stat": "final"}, "lost": {"of": "gone", "stat": "final"}},
    )
    out = both(m)
    np.testing.assert_allclose(out["left"], 100 * 0.9**24, rtol=1e-12)
    np.testing.assert_allclose(out["lost"], 100 - 100 * 0.9**24, rtol=1e-12)


def test_two_flows_from_one_stock_are_rationed_alike():
    m = scenario(
        months=1,
        stocks={
            "store": {"unit": "t", "initial": 10},
            "a": {"unit": "t"},
            "b": {"unit": "t"},
        },
        flows={
            "to_a": {"from": "store", "to": "a", "rate": 8},
            "to_b": {"from": "store", "to": "b", "rate": 12},
        },
        outcomes={
            "a": {"of": "a", "stat": "final"},
            "b_got": {"of": "b", "stat": "final"},
            "left": {"of": "store", "stat": "final"},
        },
    )
    out = both(m)
    assert np.all(out["a"] == 4.0) and np.all(out["b_got"] == 6.0) and np.all(out["left"] == 0.0)


def test_delay_pipeline_holds_amounts_in_transit():
    m = scenario(
        months=10,
        stocks={"port": {"unit": "box", "kind": "source"}, "depot": {"unit": "box"}},
        flows={"ship": {"from": "port", "to": "depot", "rate": 1, "delay": 3}},
        outcomes={
            "arrived": {"of": "depot", "stat": "final"},
            "afloat": {"of": "transit.ship", "stat": "final"},
            "first_arrival": {"of": "depot > 0", "stat": "first"},
        },
    )
    out = both(m)
    # Sent at ticks 0..9; an amount sent at t arrives in tick t+3's transfer.
    assert np.all(out["arrived"] == 7.0)
    assert np.all(out["afloat"] == 3.0)
    assert np.all(out["first_arrival"] == 3.0)


def test_event_at_fractional_time_takes_effect_next_tick():
    m = scenario(
        months=8,
        state={"open": 1},
        stocks={"mine": {"unit": "t", "kind": "source"}, "heap": {"unit": "t"}},
        flows={"dig": {"from": "mine", "to": "heap", "rate": "open"}},
        events={"close": {"at": 2.5, "set": {"open": 0}}, "edge": {"at": 6, "set": {"open": 1}}},
        outcomes={"dug": {"of": "heap", "stat": "final"}},
    )
    out = both(m)
    # Open in ticks 0, 1, 2 (closed from 3 = ceil(2.5)), reopened at tick 6 exactly: 6, 7.
    assert np.all(out["dug"] == 5.0)


def test_event_at_a_date_and_scaling_a_parameter():
    m = scenario(
        parameters={"rate": 2},
        stocks={"src": {"unit": "u", "kind": "source"}, "dst": {"unit": "u"}},
        flows={"f": {"from": "src", "to": "dst", "rate": "rate"}},
        events={"double": {"at": "2024-07", "scale": {"rate": 2}}},
        outcomes={"total": {"of": "dst", "stat": "final"}},
    )
    out = both(m)
    assert np.all(out["total"] == 6 * 2 + 6 * 4)


def test_first_and_count_outcomes():
    m = scenario(
        months=10,
        stocks={"clock": {"unit": "u", "kind": "source"}, "acc": {"unit": "u"}},
        flows={"tick": {"from": "clock", "to": "acc", "rate": 1}},
        outcomes={
            "first_over_3": {"of": "acc > 3", "stat": "first"},
            "months_over_3": {"of": "acc > 3", "stat": "count"},
            "never": {"of": "acc > 100", "stat": "first"},
            "mean_acc": {"of": "acc", "stat": "mean"},
            "min_acc": {"of": "acc", "stat": "min"},
            "max_acc": {"of": "acc", "stat": "max"},
            "sum_acc": {"of": "acc", "stat": "sum"},
        },
    )
    out = both(m)
    # acc after tick t is t+1: > 3 from tick 3 on.
    assert np.all(out["first_over_3"] == 3.0)
    assert np.all(out["months_over_3"] == 7.0)
    assert np.all(np.isnan(out["never"]))
    assert np.all(out["mean_acc"] == 5.5)
    assert np.all(out["min_acc"] == 1.0) and np.all(out["max_acc"] == 10.0)
    assert np.all(out["sum_acc"] == 55.0)


def test_flow_reads_last_ticks_amount_and_cumulative():
    m = scenario(
        months=4,
        stocks={
            "mint": {"unit": "usd", "kind": "source"},
            "seller": {"unit": "usd"},
            "farm": {"unit": "t", "kind": "source"},
            "buyer": {"unit": "t"},
        },
        flows={
            "goods": {"from": "farm", "to": "buyer", "rate": "t + 1"},
            "pay": {"from": "mint", "to": "seller", "rate": "10 * flow.goods"},
        },
        outcomes={
            "paid": {"of": "seller", "stat": "final"},
            "cum_goods_seen": {"of": "cum.goods", "stat": "final"},
        },
    )
    out = both(m)
    # Goods 1, 2, 3, 4; payment lags a tick: 0, 10, 20, 30.
    assert np.all(out["paid"] == 60.0)
    assert np.all(out["cum_goods_seen"] == 10.0)


def test_negative_initial_stock_from_a_parameter_is_a_located_error():
    m = scenario(
        parameters={"x": {"dist": "normal", "mean": 0, "sd": 1}},
        stocks={"s": {"unit": "u", "initial": "x"}, "t2": {"unit": "u"}},
        flows={"f": {"from": "s", "to": "t2", "rate": 1}},
    )
    with pytest.raises(ScenarioError, match=r"stocks\.s\.initial: initial amount is"):
        kernel(m, runs=50)


def test_nonfinite_runs_are_marked_with_tick_and_culprit():
    m = scenario(
        months=5,
        stocks={"s": {"unit": "u", "kind": "source"}, "d": {"unit": "u"}},
        variables={"boom": "where(t >= 2, 1 / (t - t), 1)"},
        flows={"f": {"from": "s", "to": "d", "rate": "boom"}},
        outcomes={"got": {"of": "d", "stat": "final"}},
    )
    block = kernel(m, runs=2)
    assert list(block.bad_tick) == [2, 2]
    assert list(block.bad_name) == ["variables.boom", "variables.boom"]
    assert list(block.status) == ["nonfinite", "nonfinite"]


def test_kernel_keeps_series_of_the_leading_runs_only_when_asked():
    model = bakery()
    params, noise = draws(model, 50, seed=2)
    full = run_block(model, params, noise, n=50)
    some = run_block(model, params, noise, n=50, keep=7)
    none = run_block(model, params, noise, n=50, keep=0)
    for name, series in full.series.items():
        assert series.shape == (model.ticks, 50)
        np.testing.assert_array_equal(some.series[name], series[:, :7])
        assert none.series[name].shape == (model.ticks, 0)
    for name, values in full.outcomes.items():  # outcomes never depend on what is kept
        np.testing.assert_array_equal(values, none.outcomes[name])


def test_a_variable_picking_a_stock_by_a_calendar_condition_keeps_its_start_of_tick_value():
    # where() with a condition on the calendar picks a branch instead of filling an array;
    # the stock's row it picks must be copied, or the variable would follow the transfer.
    m = scenario(
        months=6,
        stocks={"s": {"unit": "u", "initial": 10}, "d": {"unit": "u"}},
        variables={"v": "where(t >= 0, s, 0)"},
        flows={"f": {"from": "s", "to": "d", "rate": 1}},
        outcomes={"seen": {"of": "v", "stat": "final"}, "left": {"of": "s", "stat": "final"}},
    )
    out = both(m)
    np.testing.assert_array_equal(out["seen"], [5.0, 5.0, 5.0])  # s at the start of tick 5
    np.testing.assert_array_equal(out["left"], [4.0, 4.0, 4.0])
