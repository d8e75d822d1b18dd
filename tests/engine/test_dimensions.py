"""Dimensions in both engines: a model over partners and goods, and the same model written
out by hand (one stock, flow and parameter per cell, generated here) give the same bits; the
engines agree on arrayed models; conservation per unit is summed over every cell."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from sim.engine import ENGINES, kernel
from sim.errors import ScenarioError
from sim.model import Model, load
from sim.sampling.draws import noise_draws, parameter_draws
from tests.helpers import RUNNABLE

PARTNERS = ["china", "russia", "other"]
GOODS = ["food", "fuel", "machinery", "medicine"]
NEED_LOW = [80.0, 40.0, 10.0, 5.0]
NEED_HIGH = [120.0, 60.0, 20.0, 8.0]
SHARE = {
    "china": [0.9, 0.5, 0.95, 0.9],
    "russia": [0.05, 0.45, 0.03, 0.05],
    "other": [0.05, 0.05, 0.02, 0.05],
}
STORE0 = [10.0, 5.0, 3.0, 1.0]


def arrayed() -> dict[str, Any]:
    """A trade model over partner x good: every construct that has a per-cell meaning."""
    return {
        "name": "arrayed",
        "start": "2024-01",
        "months": 18,
        "dimensions": {"partner": PARTNERS, "good": GOODS},
        "parameters": {
            "need": {
                "over": "good",
                "dist": "uniform",
                "low": NEED_LOW,
                "high": NEED_HIGH,
                "unit": "t/month",
                "source": "test",
            },
            "share": {"over": ["partner", "good"], "value": SHARE, "unit": "1", "source": "test"},
            "pace": {"dist": "uniform", "low": 0.5, "high": 1.5, "source": "test"},
        },
        "state": {"open": {"over": "partner", "value": 1}},
        "stocks": {
            "supplier": {"over": "partner", "unit": "t", "kind": "source"},
            "store": {"over": "good", "unit": "t", "initial": STORE0},
            "pool": {"unit": "t", "initial": 30},
            "ledger": {"over": "good", "unit": "t", "kind": "balance"},
            "used": {"over": "good", "unit": "t", "kind": "sink"},
        },
        "flows": {
            "imports": {
                "over": ["partner", "good"],
                "from": "supplier[partner]",
                "to": "store[good]",
                "rate": "share * need * open * pace",
                "delay": 1,
                "noise": {"dist": "lognormal", "median": 1, "p95": 1.3},
            },
            "top_up": {"over": "good", "from": "pool", "to": "store", "rate": 4},
            "adjust": {
                "over": "good",
                "from": "store",
                "to": "ledger",
                "two_way": True,
                "rate": "0.2 * (store - 15)",
            },
            "use": {"over": "good", "from": "store", "to": "used", "rate": "smooth(need, 2) * 1.1"},
        },
        "variables": {
            "arrived": "sum(flow.imports, partner)",
            "lagged": "delay1(flow.use, 2)",
            "total": "sum(store)",
        },
        "events": {
            "sanctions": {"at": 6, "set": {"open[russia]": 0}},
            "rush": {"at": 4, "scale": {"need[fuel]": 1.5}},
        },
        "outcomes": {
            "store_end": {"of": "store", "stat": "final"},
            "store_low": {"of": "store", "stat": "min"},
            "total_end": {"of": "total", "stat": "final"},
            "china_cum": {"of": "sum(cum.imports[china])", "stat": "final"},
            "lag_mean": {"of": "sum(lagged) + mean(arrived)", "stat": "mean"},
            "pool_end": {"of": "pool", "stat": "final"},
            "ledger_low": {"of": "ledger[food]", "stat": "min"},
        },
        "record": ["store", "total"],
    }


def _add(terms: list[str]) -> str:
    return "(" + " + ".join(terms) + ")" if len(terms) > 1 else terms[0]


def by_hand() -> dict[str, Any]:
    """The same model written out cell by cell, as one would without dimensions. Sums are
    written in the order the arrayed model folds them (element order, innermost first)."""
    P, G = PARTNERS, GOODS
    parameters: dict[str, Any] = {"pace": {"dist": "uniform", "low": 0.5, "high": 1.5}}
    for g, lo, hi in zip(G, NEED_LOW, NEED_HIGH, strict=True):
        parameters[f"need_{g}"] = {"dist": "uniform", "low": lo, "high": hi}
    for p in P:
        for g, v in zip(G, SHARE[p], strict=True):
            parameters[f"share_{p}_{g}"] = v
    stocks: dict[str, Any] = {f"supplier_{p}": {"unit": "t", "kind": "source"} for p in P}
    stocks |= {f"store_{g}": {"unit": "t", "initial": v} for g, v in zip(G, STORE0, strict=True)}
    stocks["pool"] = {"unit": "t", "initial": 30}
    stocks |= {f"ledger_{g}": {"unit": "t", "kind": "balance"} for g in G}
    stocks |= {f"used_{g}": {"unit": "t", "kind": "sink"} for g in G}
    flows: dict[str, Any] = {}
    for p, g in itertools.product(P, G):
        flows[f"imports_{p}_{g}"] = {
            "from": f"supplier_{p}",
            "to": f"store_{g}",
            "delay": 1,
            "rate": f"share_{p}_{g} * need_{g} * open_{p} * pace",
            "noise": {"dist": "lognormal", "median": 1, "p95": 1.3},
        }
    for g in G:
        flows[f"top_up_{g}"] = {"from": "pool", "to": f"store_{g}", "rate": 4}
    for g in G:
        flows[f"adjust_{g}"] = {
            "from": f"store_{g}",
            "to": f"ledger_{g}",
            "two_way": True,
            "rate": f"0.2 * (store_{g} - 15)",
        }
    for g in G:
        flows[f"use_{g}"] = {
            "from": f"store_{g}",
            "to": f"used_{g}",
            "rate": f"smooth(need_{g}, 2) * 1.1",
        }
    variables: dict[str, Any] = {}
    for g in G:
        variables[f"arrived_{g}"] = _add([f"flow.imports_{p}_{g}" for p in P])
        variables[f"lagged_{g}"] = f"delay1(flow.use_{g}, 2)"
    variables["total"] = _add([f"store_{g}" for g in G])
    outcomes: dict[str, Any] = {}
    for g in G:
        outcomes[f"store_end_{g}"] = {"of": f"store_{g}", "stat": "final"}
    for g in G:
        outcomes[f"store_low_{g}"] = {"of": f"store_{g}", "stat": "min"}
    mean_arrived = f"{_add([f'arrived_{g}' for g in G])} / {float(len(G))!r}"
    outcomes |= {
        "total_end": {"of": "total", "stat": "final"},
        "china_cum": {"of": _add([f"cum.imports_china_{g}" for g in G]), "stat": "final"},
        "lag_mean": {"of": f"{_add([f'lagged_{g}' for g in G])} + {mean_arrived}", "stat": "mean"},
        "pool_end": {"of": "pool", "stat": "final"},
        "ledger_low": {"of": "ledger_food", "stat": "min"},
    }
    return {
        "name": "by_hand",
        "start": "2024-01",
        "months": 18,
        "parameters": parameters,
        "state": {f"open_{p}": 1 for p in P},
        "stocks": stocks,
        "flows": flows,
        "variables": variables,
        "events": {
            "sanctions": {"at": 6, "set": {"open_russia": 0}},
            "rush": {"at": 4, "scale": {"need_fuel": 1.5}},
        },
        "outcomes": outcomes,
        "record": [f"store_{g}" for g in G] + ["total"],
    }


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def hand_name(name: str) -> str:
    """A cell's name in the arrayed model (`need[food]`) as the model by hand spells it."""
    return name.replace("[", "_").replace(",", "_").replace("]", "")


RUNS = 40


def draws(model: Model) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    params = parameter_draws(model.parameters, "mc", 3, RUNS, 0, RUNS)
    noise = noise_draws(model.noises, 3, RUNS, model.ticks, 0, RUNS)
    return params, noise


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Model, Model]:
    folder = tmp_path_factory.mktemp("dims")
    return load(write(folder, arrayed())), load(write(folder, by_hand()))


def test_the_model_by_hand_gives_the_same_bits(models: tuple[Model, Model]) -> None:
    model, hand = models
    params, noise = draws(model)
    block = kernel.run_block(model, params, noise)
    # The same draws, under the names the model by hand gives its cells.
    hand_block = kernel.run_block(
        hand,
        {hand_name(k): v for k, v in params.items()},
        {hand_name(k): v for k, v in noise.items()},
    )
    assert set(map(hand_name, block.outcomes)) == set(hand_block.outcomes)
    for name, values in block.outcomes.items():
        assert np.array_equal(values, hand_block.outcomes[hand_name(name)]), name
    for name, values in block.series.items():
        assert np.array_equal(values, hand_block.series[hand_name(name)]), name
    assert (block.bad_tick < 0).all()
    # It did ration the one pool every good's top-up takes from, and the balance went negative.
    assert (block.outcomes["pool_end"] == 0).all()
    assert (block.outcomes["ledger_low"] < 0).any()


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_engines_agree_bit_for_bit(models: tuple[Model, Model], engine: str) -> None:
    model, _ = models
    params, noise = draws(model)
    reference = kernel.run_block(model, params, noise)
    block = ENGINES[engine](model, params, noise, 0, RUNS, None)
    for name, values in reference.outcomes.items():
        assert np.array_equal(values, block.outcomes[name]), name
    for name, values in reference.series.items():
        assert np.array_equal(values, block.series[name]), name


def test_conservation_per_unit_summed_over_every_cell(models: tuple[Model, Model]) -> None:
    model, _ = models
    params, noise = draws(model)
    totals: list[np.ndarray] = []

    def observe(t: int, S: np.ndarray, TR: np.ndarray) -> None:
        totals.append(S.sum(axis=0) + TR.sum(axis=0))

    kernel.run_block(model, params, noise, observer=observe)
    first = model.stocks
    start = sum(
        np.broadcast_to(s.initial({}), (*s.shape, 1)).sum() for s in first if s.name != "store"
    )
    start += sum(STORE0)
    for total in totals:
        np.testing.assert_allclose(total, start, rtol=1e-9)
    rows = sum(s.size for s in model.stocks)
    assert rows == 3 + 4 + 1 + 4 + 4  # one row per stock cell


def test_non_negative_per_cell_but_sources_and_balances(models: tuple[Model, Model]) -> None:
    model, _ = models
    params, noise = draws(model)
    lows: list[float] = []
    limited = [s for s in model.stocks if not s.unlimited]

    def observe(t: int, S: np.ndarray, TR: np.ndarray) -> None:
        lows.append(min(float(S[s.row : s.row + s.size].min()) for s in limited))

    kernel.run_block(model, params, noise, observer=observe)
    assert min(lows) >= 0


def test_block_size_does_not_change_the_bits(models: tuple[Model, Model]) -> None:
    model, _ = models
    params, noise = draws(model)
    whole = kernel.run_block(model, params, noise)
    for start, stop in ((0, 7), (7, 40)):
        part = kernel.run_block(
            model,
            {k: v[start:stop] for k, v in params.items()},
            {k: v[:, start:stop] for k, v in noise.items()},
            start,
        )
        for name, values in whole.outcomes.items():
            assert np.array_equal(values[start:stop], part.outcomes[name]), name


@pytest.mark.parametrize("runs_per_slice", [1, 3])
def test_a_block_stepped_in_slices_gives_the_bits_of_one_pass(
    models: tuple[Model, Model], runs_per_slice: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel steps a big block in slices of runs (kernel.slice_runs); made to cut it
    into slices of one run and of three, it must give what one pass gives, kept series
    included."""
    for model in models:
        params, noise = draws(model)
        whole = kernel.run_block(model, params, noise, 5, keep=7)
        with monkeypatch.context() as patch:
            patch.setattr(kernel, "slice_runs", lambda _: runs_per_slice)
            sliced = kernel.run_block(model, params, noise, 5, keep=7)
        for name, values in whole.outcomes.items():
            assert np.array_equal(values, sliced.outcomes[name]), name
        assert whole.series.keys() == sliced.series.keys()
        for name, values in whole.series.items():
            assert values.shape == (model.ticks, 7)
            assert np.array_equal(values, sliced.series[name]), name
        assert np.array_equal(whole.bad_tick, sliced.bad_tick)
        assert list(whole.bad_name) == list(sliced.bad_name)


def wide(n: int) -> dict[str, Any]:
    """A dimension of n elements: sums along it must not switch to pairwise summation."""
    items = [f"e{i}" for i in range(n)]
    return {
        "name": "wide",
        "start": "2024-01",
        "months": 6,
        "dimensions": {"item": items, "side": ["a", "b"]},
        "parameters": {
            "x": {"over": "item", "dist": "lognormal", "median": 1, "p95": 30},
            "y": {"over": ["item", "side"], "dist": "uniform", "low": 0, "high": 1e-3},
        },
        "stocks": {
            "bin": {"over": "item", "unit": "u", "initial": "x"},
            "hub": {"unit": "u", "initial": 5},
            "out": {"unit": "u", "kind": "sink"},
        },
        "flows": {
            "drain": {"over": "item", "from": "bin", "to": "hub", "rate": "x * 0.37"},
            "spill": {"over": ["item", "side"], "from": "hub", "to": "out", "rate": "y * x + 0.1"},
        },
        "variables": {
            "s": "sum(bin)",
            "m": "mean(x * 1.1)",
            "hi": "max(bin)",
            "per_side": "sum(flow.spill, item)",
        },
        "outcomes": {
            "s_end": {"of": "s", "stat": "final"},
            "m_mean": {"of": "m", "stat": "mean"},
            "hi": {"of": "hi", "stat": "max"},
            "hub_end": {"of": "hub", "stat": "final"},
            "side": {"of": "per_side", "stat": "sum"},
            "all": {"of": "sum(y) * 1e3 + sum(cum.spill)", "stat": "final"},
        },
    }


def test_engines_agree_on_a_dimension_of_25_elements(tmp_path: Path) -> None:
    model = load(write(tmp_path, wide(25)))
    params, noise = draws(model)
    reference = kernel.run_block(model, params, noise)
    for engine in RUNNABLE:
        block = ENGINES[engine](model, params, noise, 0, RUNS, None)
        for name, values in reference.outcomes.items():
            assert np.array_equal(values, block.outcomes[name]), (engine, name)
    # A sum over 25 cells is the one sum, in element order, in every run.
    s = reference.outcomes["s_end"]
    assert np.isfinite(s).all() and (reference.outcomes["hub_end"] >= 0).all()


def test_adding_an_element_leaves_the_other_cells_draws(tmp_path: Path) -> None:
    small = load(write(tmp_path, wide(5)))
    grown = load(write(tmp_path, {**wide(6), "name": "wide6"}))
    a, _ = draws(small)
    b, _ = draws(grown)
    assert set(a) < set(b)
    for name, values in a.items():
        assert np.array_equal(values, b[name]), name
    assert not np.array_equal(a["x[e0]"], a["x[e1]"])  # each cell from its own stream


def test_a_culprit_names_the_cell(tmp_path: Path) -> None:
    data = wide(3)
    data["variables"]["bad"] = "log(abs(x - x[e1]))"  # -inf in e1's cell only
    data["outcomes"]["bad"] = {"of": "sum(bad)", "stat": "final"}
    model = load(write(tmp_path, data))
    params, noise = draws(model)
    for engine in RUNNABLE:
        block = ENGINES[engine](model, params, noise, 0, RUNS, None)
        assert set(block.bad_name) == {"variables.bad[e1]"}, engine


def test_an_arrayed_stock_starting_below_zero_names_its_cell(tmp_path: Path) -> None:
    data = wide(3)
    data["stocks"]["bin"]["initial"] = [1, -2, 3]
    with pytest.raises(ScenarioError, match=r"negative \(-2\) in bin\[e1\]"):
        load(write(tmp_path, data))
    data["stocks"]["bin"]["initial"] = "x - x[e2]"
    model = load(write(tmp_path, data))
    params, noise = draws(model)
    for engine in RUNNABLE:
        with pytest.raises(ScenarioError, match=r"initial amount of bin\[e[01]\] is -"):
            ENGINES[engine](model, params, noise, 0, RUNS, None)
    # Stepped in slices of runs, the kernel names the same cell and run as in one pass.
    with pytest.raises(ScenarioError) as whole:
        kernel.run_block(model, params, noise)
    slices = pytest.MonkeyPatch.context()
    with slices as patch, pytest.raises(ScenarioError) as sliced:
        patch.setattr(kernel, "slice_runs", lambda _: 1)
        kernel.run_block(model, params, noise)
    assert str(sliced.value) == str(whole.value)


def test_an_arrayed_data_series_reads_a_column_per_cell(tmp_path: Path) -> None:
    (tmp_path / "trade.csv").write_text(
        "date,imports[china],imports[russia]\n2024-01,10,1\n2024-03,30,3\n"
    )
    data = {
        "name": "series",
        "start": "2024-01",
        "months": 4,
        "dimensions": {"partner": ["china", "russia"]},
        "data": {"imports": {"file": "trade.csv", "over": "partner"}},
        "stocks": {
            "abroad": {"over": "partner", "unit": "t", "kind": "source"},
            "home": {"unit": "t"},
        },
        "flows": {"ship": {"over": "partner", "from": "abroad", "to": "home", "rate": "imports"}},
        "variables": {"smoothed": "smooth(imports, 2)"},
        "outcomes": {
            "home_end": {"of": "home", "stat": "final"},
            "seen": {"of": "imports", "stat": "sum"},
            "smoothed": {"of": "smoothed", "stat": "final"},
        },
    }
    model = load(write(tmp_path, data))
    params, noise = draws(model)
    blocks = [ENGINES[e](model, params, noise, 0, 2, None) for e in RUNNABLE]
    for block in blocks:
        # 10, 20, 30, 30 from china and a tenth of that from russia, month by month.
        assert block.outcomes["seen[china]"][0] == 90.0
        assert block.outcomes["seen[russia]"][0] == 9.0
        assert block.outcomes["home_end"][0] == 99.0
        for name, values in blocks[0].outcomes.items():
            assert np.array_equal(values, block.outcomes[name]), name
    (tmp_path / "trade.csv").write_text("date,imports[china]\n2024-01,10\n")
    with pytest.raises(ScenarioError, match=r"imports\[russia\]"):
        load(write(tmp_path, data))


def test_each_flow_cell_has_its_own_noise_stream(tmp_path: Path) -> None:
    small = load(write(tmp_path, arrayed()))
    data = arrayed()
    data["name"] = "grown"
    data["dimensions"] = {"partner": [*PARTNERS, "india"], "good": GOODS}
    data["parameters"]["share"]["value"]["india"] = [0.0, 0.0, 0.0, 0.0]
    grown = load(write(tmp_path, data))
    a = noise_draws(small.noises, 3, RUNS, small.ticks, 0, RUNS)
    b = noise_draws(grown.noises, 3, RUNS, grown.ticks, 0, RUNS)
    assert set(a) < set(b) and "imports[india,food]" in b
    for name, values in a.items():
        assert np.array_equal(values, b[name]), name
    assert not np.array_equal(a["imports[china,food]"], a["imports[china,fuel]"])


def test_every_builtin_with_memory_keeps_state_per_cell(tmp_path: Path) -> None:
    items = ["a", "b", "c"]
    data = {
        "name": "memories",
        "start": "2024-01",
        "months": 12,
        "step": 0.5,
        "dimensions": {"item": items},
        "parameters": {
            "x": {"over": "item", "dist": "uniform", "low": [1, 10, 100], "high": [2, 20, 200]}
        },
        "stocks": {
            "src": {"over": "item", "unit": "u", "kind": "source"},
            "bin": {"over": "item", "unit": "u", "initial": "x"},
            "hub": {"unit": "u", "kind": "balance"},
        },
        "flows": {
            "fill": {
                "over": "item",
                "from": "src",
                "to": "bin",
                "rate": "smooth3(x * (1 + step(1, 3)), 2)",
            },
            "swap": {
                "over": "item",
                "from": "bin",
                "to": "hub",
                "two_way": True,
                "rate": "0.1 * (bin - mean(bin))",
            },
        },
        "variables": {
            "d1": "delay1(flow.fill, 2)",
            "d3": "delay3(flow.fill, 3)",
            "df": "delay_fixed(x, 1.5, 0)",
            "s": "smooth(bin, 1)",
            "i": "init(bin)",
        },
        "outcomes": {k: {"of": k, "stat": "final"} for k in ("d1", "d3", "df", "s", "i")}
        | {"hub": {"of": "hub", "stat": "min"}},
    }
    model = load(write(tmp_path, data))
    params, noise = draws(model)
    blocks = [ENGINES[e](model, params, noise, 0, RUNS, None) for e in RUNNABLE]
    for block in blocks[1:]:
        for name, values in blocks[0].outcomes.items():
            assert np.array_equal(values, block.outcomes[name]), name
    out = blocks[0].outcomes
    # Each cell remembers its own input: the cells keep the order of their x.
    for k in ("d1", "d3", "s", "i"):
        assert (out[f"{k}[c]"] > out[f"{k}[b]"]).all() and (out[f"{k}[b]"] > out[f"{k}[a]"]).all()
    assert np.array_equal(out["df[a]"], params["x[a]"])
    assert np.array_equal(out["i[c]"], params["x[c]"])


def test_an_event_sets_and_scales_state_from_one_element_in_every_engine(tmp_path: Path) -> None:
    """An event's value may pick one element of an arrayed flow's total (`cum.buy[fuel]`):
    one number per run in every engine (the SimPy engine holds an element as a (1,) array)."""
    doc = {
        "name": "pick",
        "start": "2024-01",
        "months": 6,
        "dimensions": {"good": ["food", "fuel"]},
        "parameters": {
            "need": {
                "over": "good",
                "dist": "uniform",
                "low": [1, 2],
                "high": [3, 4],
                "unit": "t/month",
                "source": "assumption: a test",
            },
        },
        "state": {"ref": 1, "k": 1},
        "stocks": {
            "src": {"over": "good", "unit": "t", "kind": "source"},
            "store": {"over": "good", "unit": "t"},
        },
        "flows": {"buy": {"over": "good", "from": "src", "to": "store", "rate": "need * k"}},
        "events": {
            "snap": {"at": 2, "set": {"ref": "cum.buy[fuel] + 1"}},
            "grow": {"at": 3, "scale": {"need": "1"}, "set": {"k": "k * cum.buy[food] / ref"}},
        },
        "outcomes": {
            "ref_end": {"of": "ref", "stat": "final"},
            "k_end": {"of": "k", "stat": "final"},
        },
    }
    path = tmp_path / "pick.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    model = load(path)
    params, noise = draws(model)
    reference = kernel.run_block(model, params, noise)
    for engine in sorted(ENGINES):
        block = ENGINES[engine](model, params, noise, 0, RUNS, None)
        for name, values in reference.outcomes.items():
            assert np.array_equal(values, block.outcomes[name]), (engine, name)
    assert (reference.outcomes["ref_end"] > 1).all()
