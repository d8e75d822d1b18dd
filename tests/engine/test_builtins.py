"""Built-ins with memory, step/pulse/ramp, the time step and initial values, in both engines.

Every run here goes through both engines and must give the same bits; the values are then
checked against recurrences written out in the test (PySD's own numbers are tests/peers/)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sim.engine import ENGINES
from sim.engine.semantics import Block
from sim.errors import ScenarioError
from sim.model import Model
from tests.helpers import draws, scenario

SUPPLY = {"src": {"unit": "t", "kind": "source"}, "sink": {"unit": "t", "kind": "sink"}}


def both(model: Model, runs: int = 3) -> Block:
    """Run both engines on the same draws; they must agree bit for bit. The kernel's block."""
    params, noise = draws(model, runs)
    blocks = [ENGINES[e](model, params, noise, 0, runs, None) for e in ("kernel", "des")]
    a, b = blocks
    for name in a.series:
        np.testing.assert_array_equal(a.series[name], b.series[name], err_msg=name)
    for name in a.outcomes:
        np.testing.assert_array_equal(a.outcomes[name], b.outcomes[name], err_msg=name)
    np.testing.assert_array_equal(a.bad_tick, b.bad_tick)
    assert list(a.bad_name) == list(b.bad_name)
    return a


def toy(**sections: Any) -> Model:
    sections.setdefault("stocks", SUPPLY)
    return scenario(**sections)


def refused(**sections: Any) -> str:
    with pytest.raises(ScenarioError) as exc:
        toy(**sections)
    return str(exc.value)


# -- smooth and delays: their recurrences ----------------------------------------------------
def test_smooth_of_a_step_is_explicit_euler_from_the_first_value() -> None:
    m = toy(variables={"x": "step(10, 3) + 2", "s": "smooth(x, 4)"}, record=["x", "s"])
    got = both(m).series
    x = got["x"][:, 0]
    want = [x[0]]
    for k in range(m.ticks - 1):
        want.append(want[-1] + (x[k] - want[-1]) / 4 * 1.0)
    np.testing.assert_allclose(got["s"][:, 0], want, rtol=1e-14)
    assert got["s"][0, 0] == 2.0 and got["s"][4, 0] > 2.0  # starts at x's first value


def test_smooth3_and_delay3_at_a_quarter_month_step() -> None:
    m = toy(
        months=6,
        step=0.25,
        variables={"x": "pulse(1, 1) * 4 + 1", "s3": "smooth3(x, 2)", "d3": "delay3(x, 2)"},
        record=["x", "s3", "d3"],
    )
    got = both(m).series
    x, h, tau = got["x"][:, 0], 0.25, 2 / 3
    s = np.full(3, x[0])
    stage = np.full(3, x[0] * 2 / 3)
    for k in range(m.ticks):
        assert got["s3"][k, 0] == pytest.approx(s[-1], rel=1e-13)
        assert got["d3"][k, 0] == pytest.approx(stage[-1] / tau, rel=1e-13)
        s = s + (np.concatenate([[x[k]], s[:-1]]) - s) / tau * h
        out = stage / tau
        stage = stage + (np.concatenate([[x[k]], out[:-1]]) - out) * h
    # a material delay conserves what goes in: 4 per month for one month, all out eventually
    assert got["d3"][:, 0].sum() * h == pytest.approx(x.sum() * h, rel=0.02)


def test_delay1_output_starts_at_the_input() -> None:
    m = toy(variables={"x": "ramp(2, 2, 6) + 5", "d": "delay1(x, 3)"}, record=["x", "d"])
    got = both(m).series
    assert got["d"][0, 0] == pytest.approx(5.0, rel=1e-15)
    level = 5.0 * 3
    for k in range(m.ticks):
        assert got["d"][k, 0] == pytest.approx(level / 3, rel=1e-13)
        level += (got["x"][k, 0] - level / 3) * 1.0


def test_delay_fixed_reads_the_past_and_init_before() -> None:
    m = toy(
        months=6,
        step=0.5,
        variables={"x": "t * 10", "d": "delay_fixed(x, 1.5, -1)"},
        record=["x", "d"],
    )
    got = both(m).series
    np.testing.assert_array_equal(got["d"][:3, 0], [-1, -1, -1])
    np.testing.assert_array_equal(got["d"][3:, 0], got["x"][:-3, 0])


def test_a_builtin_reading_flow_name_sees_the_previous_ticks_amount() -> None:
    """The kernel overwrites flow.NAME with this tick's amounts while rationing: the
    built-ins must have read their inputs before that, as the SimPy engine does."""
    m = toy(
        stocks={**SUPPLY, "s": {"unit": "t", "initial": 100}},
        flows={"f": {"from": "s", "to": "sink", "rate": "0.1 * s + t"}},
        variables={"seen": "flow.f", "d": "delay_fixed(flow.f, 1, -1)"},
        record=["flow.f", "seen", "d"],
    )
    got = both(m).series
    moved, seen, d = got["flow.f"][:, 0], got["seen"][:, 0], got["d"][:, 0]
    np.testing.assert_array_equal(seen[1:], moved[:-1])  # flow.f: last tick's amount
    assert d[0] == -1 and d[1] == 0.0  # tick 0 saw flow.f = 0
    np.testing.assert_array_equal(d[2:], moved[:-2])


def test_each_call_site_and_each_run_keeps_its_own_state() -> None:
    m = toy(
        parameters={"T": {"dist": "uniform", "low": 1, "high": 6}},
        variables={"x": "step(10, 2)", "a": "smooth(x, T)", "b": "smooth(x, T) + smooth(x, 1)"},
        record=["a", "b"],
    )
    got = both(m, runs=4).series
    assert len({float(v) for v in got["a"][-1]}) == 4  # a run's state is its own
    assert not np.array_equal(got["b"], 2 * got["a"])  # the second call site too


def test_init_holds_the_first_value() -> None:
    m = toy(
        stocks={**SUPPLY, "s": {"unit": "t", "initial": 7}},
        flows={"f": {"from": "src", "to": "s", "rate": 3}},
        variables={"first": "init(s)", "started": "init(year) * 100 + init(month)"},
        record=["s", "first", "started"],
    )
    got = both(m).series
    assert set(got["first"][:, 0]) == {7.0} and got["s"][-1, 0] == 7 + 36
    assert set(got["started"][:, 0]) == {202401.0}


def test_a_builtin_in_a_rate_and_nested_builtins() -> None:
    m = toy(
        flows={"f": {"from": "src", "to": "sink", "rate": "smooth(smooth(step(6, 1), 2), 2)"}},
        record=["flow.f"],
    )
    got = both(m).series["flow.f"][:, 0]
    assert list(got[:4]) == [0, 0, 0, 1.5]  # each smooth lags a tick: 6 / 2, then 3 / 2
    assert got[-1] < 6
    assert np.all(np.diff(got) >= 0)


def test_delay_fixed_of_itself_is_no_cycle() -> None:
    m = toy(variables={"n": "delay_fixed(n + 1, 2, 0)"}, record=["n"])
    np.testing.assert_array_equal(both(m).series["n"][:, 0], [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5])


def test_a_nonfinite_builtin_names_its_variable_or_flow() -> None:
    m = toy(
        parameters={"T": 0},
        variables={"x": "step(1, 3)", "v": "smooth(x, T + 0)", "w": "v * 2"},
        flows={"f": {"from": "src", "to": "sink", "rate": "delay1(1, T + 0)"}},
    )
    block = both(m)
    assert set(block.bad_name) == {"flows.f"}  # delay1's output 0 / 0 at the first tick
    m = toy(parameters={"T": 0}, variables={"x": "step(1, 3)", "v": "smooth(x, T + 0)"})
    block = both(m)
    assert set(block.bad_name) == {"variables.v"}
    assert set(block.bad_tick) == {1}  # (x - s) / 0 at tick 0 is 0 / 0: NaN from tick 1


# -- the time step ----------------------------------------------------------------------------
def test_a_tick_moves_rate_times_step_and_the_calendar_follows_months() -> None:
    m = toy(
        step=0.25,
        flows={"f": {"from": "src", "to": "sink", "rate": 10, "delay": 0.5}},
        variables={"m": "month", "time": "t"},
        outcomes={
            "got": {"of": "sink", "stat": "final"},
            "late": {"of": "t >= 6", "stat": "count"},
            "when": {"of": "sink > 50", "stat": "first"},
        },
        record=["m", "time", "sink"],
    )
    block = both(m, runs=1)
    assert m.ticks == 48
    np.testing.assert_array_equal(block.series["m"][:8, 0], [1, 1, 1, 1, 2, 2, 2, 2])
    np.testing.assert_array_equal(block.series["time"][:, 0], np.arange(48) * 0.25)
    assert block.outcomes["got"][0] == pytest.approx(10 * (12 - 0.5))  # two ticks in transit
    assert block.outcomes["late"][0] == 6.0  # months, not ticks
    # sink > 50 after the transfer of the tick at t: 2.5 * (k - 1) > 50 first at k = 22
    assert block.outcomes["when"][0] == 22 * 0.25


def test_an_event_fires_at_the_first_tick_whose_time_has_come() -> None:
    m = toy(
        step=0.25,
        state={"on": 0},
        events={"go": {"at": 0.3, "set": {"on": 1}}, "date": {"at": "2024-03", "set": {"on": 2}}},
        variables={"v": "on"},
        record=["v"],
    )
    v = both(m, runs=1).series["v"][:, 0]
    assert list(v[:10]) == [0, 0, 1, 1, 1, 1, 1, 1, 2, 2]


def test_step_pulse_ramp_follow_vensim_at_a_fine_step() -> None:
    m = toy(
        months=4,
        step=0.5,
        variables={
            "s": "step(3, 1.25)",
            "p": "pulse(1, 1)",
            "p0": "pulse(2, 0)",
            "r": "ramp(2, 1, 2)",
        },
        record=["s", "p", "p0", "r"],
    )
    got = {k: list(v[:, 0]) for k, v in both(m, runs=1).series.items()}
    # t = 0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5
    assert got["s"] == [0, 0, 0, 3, 3, 3, 3, 3]  # t + step/2 > 1.25 from t = 1.5
    assert got["p"] == [0, 0, 1, 1, 0, 0, 0, 0]
    assert got["p0"] == [0, 0, 0, 0, 1, 0, 0, 0]  # a width of 0 lasts one step
    assert got["r"] == [0, 0, 0, 1, 2, 2, 2, 2]


def test_step_must_divide_the_horizon_and_delays_be_whole_ticks() -> None:
    assert "12 months is not a whole number of ticks of 0.7 months" in refused(step=0.7)
    text = refused(step=0.5, flows={"f": {"from": "src", "to": "sink", "rate": 1, "delay": 0.75}})
    assert "flows.f.delay: a delay of 0.75 months is not a whole number of ticks" in text
    text = refused(variables={"d": "delay_fixed(1, 1.5, 0)"})
    assert "not a whole number of ticks" in text
    assert "the same in every run" in refused(
        parameters={"T": {"dist": "uniform", "low": 1, "high": 2}},
        variables={"d": "delay_fixed(1, T, 0)"},
    )
    assert "time must be > 0" in refused(variables={"d": "smooth(1, 0)"})


@pytest.mark.parametrize(
    "sections",
    [
        {"outcomes": {"o": {"of": "smooth(src, 2)", "stat": "final"}}},
        {"record": ["delay1(src, 2)"]},
        {"state": {"k": 0}, "events": {"e": {"at": 2, "set": {"k": "init(src)"}}}},
        {"stocks": {**SUPPLY, "s": {"unit": "t", "initial": "init(3)"}}},
    ],
)
def test_a_memory_builtin_outside_variables_and_rates_is_refused(sections: Any) -> None:
    text = refused(**sections)
    assert "keeps state from tick to tick" in text and "define a variable" in text


def test_a_cycle_through_a_builtins_input_is_refused_by_name() -> None:
    text = refused(variables={"v": "smooth(w, 3)", "w": "v + 1"})
    assert "depend on each other in a cycle" in text
    assert "v -> smooth(w, 3) (in variables.v) -> w -> v" in text


# -- initial values ---------------------------------------------------------------------------
def test_initial_values_read_stocks_and_variables_in_dependency_order() -> None:
    m = toy(
        parameters={"p": 4},
        stocks={
            **SUPPLY,
            "b": {"unit": "t", "initial": "a * 2 + need"},
            "a": {"unit": "t", "initial": "p"},
        },
        variables={"need": "a + 1", "eq": "b / 2"},
        flows={"f": {"from": "b", "to": "sink", "rate": "eq"}},
        record=["a", "b", "need"],
    )
    got = both(m).series
    assert got["a"][0, 0] == 4 and got["b"][0, 0] == 13 - 6.5  # 4 * 2 + 5, less its outflow
    assert got["need"][0, 0] == 5


def test_a_cycle_among_initial_values_is_refused_by_name() -> None:
    text = refused(
        stocks={**SUPPLY, "a": {"unit": "t", "initial": "b"}, "b": {"unit": "t", "initial": "v"}},
        variables={"v": "a + 1"},
    )
    assert (
        "stocks.a.initial: initial values depend on each other in a cycle: a -> b -> v -> a" in text
    )
