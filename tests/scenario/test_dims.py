"""Dimensions in the language: arrayed values, x[elem], reductions, broadcasting by name, and
a located problem for each way of getting them wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.errors import ScenarioError
from sim.model import load
from sim.scenario.dims import expand
from sim.scenario.expr import ExprError, compile_expr

HEAD = """name: t
start: 2024-01
months: 3
dimensions:
  partner: [china, russia]
  good: [food, fuel, medicine]
"""


def problem(tmp_path: Path, body: str) -> str:
    path = tmp_path / "t.yaml"
    path.write_text(HEAD + body, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load(path)
    return str(info.value).replace(str(path), "t.yaml")


BAD = [
    (
        "parameters:\n  need: {over: goods, value: 1}\n",
        "t.yaml:8:16: parameters.need.over: unknown dimension 'goods'; did you mean 'good'?",
    ),
    (
        "parameters:\n  need: {over: good, dist: uniform, low: [1, 2], high: 3}\n",
        "t.yaml:8:42: parameters.need.low: a list of 2 for dimension 'good', which has 3 "
        "elements (food, fuel, medicine)",
    ),
    (
        "parameters:\n  need: {over: good, dist: uniform, low: [1, 2, 5], high: 3}\n",
        "parameters.need: need[medicine]: low (5.0) must be below high (3.0)",
    ),
    (
        "parameters:\n  s: {over: [partner, good], value: {china: [1, 2, 3], russa: [1, 2, 3]}}\n",
        "parameters.s.value.russa: 'russa' is not an element of dimension 'partner'; "
        "did you mean 'russia'?",
    ),
    (
        "stocks:\n  a: {over: partner, unit: t, initial: {china: 1}}\n",
        "stocks.a.initial: no value for russia of dimension 'partner'",
    ),
    (
        "parameters:\n  need: {over: good, value: [1, 2, 3]}\n"
        "stocks:\n  a: {over: partner, unit: t, kind: source}\n  b: {over: partner, unit: t}\n"
        "flows:\n  f: {over: partner, from: a, to: b, rate: need}\n",
        "t.yaml:13:44: flows.f.rate: the rate is over (good) but flow f is over (partner); "
        "reduce good",
    ),
    (
        'stocks:\n  b: {over: partner, unit: t}\noutcomes:\n  x: {of: "b[chna]", stat: final}\n',
        "t.yaml:10:14: outcomes.x.of: unknown element 'chna'; did you mean 'china'?",
    ),
    (
        'stocks:\n  b: {over: partner, unit: t}\noutcomes:\n  y: {of: "sum(b, good)", stat: final}\n',
        "outcomes.y.of: sum(x, good): 'b' is over (partner)",
    ),
    (
        'stocks:\n  b: {over: partner, unit: t}\noutcomes:\n  y: {of: "b", stat: final}\n'
        '  z: {of: "b[food]", stat: final}\n',
        "outcomes.z.of: 'food' is an element of 'good', but 'b' is over (partner)",
    ),
    (
        "parameters:\n  food: 1\n",
        "parameters.food: 'food' is already an element of dimension 'good'",
    ),
    (
        "stocks:\n  c: {over: good, unit: t, kind: source}\n  b: {over: partner, unit: t}\n"
        'flows:\n  f: {over: partner, from: "c[good]", to: b, rate: 1}\n',
        "flows.f.from: stock c is over (good) but flow f is over (partner)",
    ),
    (
        "stocks:\n  c: {over: good, unit: t, kind: source}\n  b: {unit: t}\n"
        'flows:\n  f: {over: good, from: "c[partner]", to: b, rate: 1}\n',
        "flows.f.from: 'c[partner]' names (partner) but stock c is over (good)",
    ),
    (
        "state:\n  open: {over: partner, value: [1, 1, 1]}\n",
        "state.open.value: a list of 3 for dimension 'partner', which has 2 elements",
    ),
    (
        'state:\n  open: {over: partner, value: 1}\nevents:\n  e: {at: 1, set: {"open[food]": 0}}\n',
        "events.e.set.open[food]: unknown element 'food' of 'open', which is over (partner)",
    ),
    (
        "parameters:\n  p: {over: good, value: [1, 2, 3]}\nstocks:\n  b: {unit: t}\n"
        'outcomes:\n  x: {of: "sum(b)", stat: final}\n',
        "outcomes.x.of: sum(b) reduces cells, but 'b' is not over any dimension",
    ),
    (
        'stocks:\n  b: {over: partner, unit: t}\nvariables:\n  v: "partner * 2"\n',
        "variables.v: 'partner' is a dimension, not a value",
    ),
    (
        "dimensions:\n  a: [x, y]\n  b: [y, z]\n",
        "dimensions.b[0]: 'y' is already an element of dimension 'a'",
    ),
]


@pytest.mark.parametrize(("body", "want"), BAD, ids=[w.split(": ")[1] for _, w in BAD])
def test_bad_dimensions_are_located(tmp_path: Path, body: str, want: str) -> None:
    if body.startswith("dimensions:"):
        text = HEAD.split("dimensions:")[0] + body
        path = tmp_path / "t.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ScenarioError) as info:
            load(path)
        assert want in str(info.value)
        return
    assert want in problem(tmp_path, body)


DIMENSIONS = {"partner": ["china", "russia"], "good": ["food", "fuel", "medicine"]}
DIMS = {"share": ("partner", "good"), "need": ("good",), "open": ("partner",)}
NAMES = {"share": "parameter", "need": "parameter", "open": "state", "k": "parameter"}


def arrays(runs: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "share": rng.random((2, 3, runs)),
        "need": rng.random((3, runs)),
        "open": rng.random((2, runs)),
        "k": rng.random(runs),
    }


def compiled(text: str):  # type: ignore[no-untyped-def]
    return compile_expr(text, NAMES, dims=DIMS, dimensions=DIMENSIONS)


def test_broadcasting_is_by_name_not_by_position() -> None:
    ns = arrays()
    e = compiled("need * open + k")
    assert e.dims == ("partner", "good")
    got = e(ns)
    want = ns["need"][None, :, :] * ns["open"][:, None, :] + ns["k"]
    assert np.array_equal(got, want)
    # The same, written the other way round: the dimensions, not the order, decide.
    other = ns["k"] + ns["open"][:, None, :] * ns["need"][None, :, :]
    assert np.array_equal(compiled("k + open * need")(ns), other)


def test_picks_and_reductions() -> None:
    ns = arrays()
    share, need = ns["share"], ns["need"]
    assert compiled("share[russia]").dims == ("good",)
    assert np.array_equal(compiled("share[russia]")(ns), share[1])
    assert np.array_equal(compiled("share[fuel, china]")(ns), share[0, 1])
    per_good = compiled("sum(share, partner)")
    assert per_good.dims == ("good",)
    assert np.array_equal(per_good(ns), share[0] + share[1])
    total = compiled("sum(share)")(ns)
    rows = [share[p, 0] + share[p, 1] + share[p, 2] for p in range(2)]
    assert np.array_equal(total, rows[0] + rows[1])
    assert np.array_equal(compiled("mean(need)")(ns), (need[0] + need[1] + need[2]) / 3.0)
    assert np.array_equal(compiled("max(share, good)")(ns), share.max(axis=1))
    assert np.array_equal(compiled("min(need)")(ns), need.min(axis=0))
    # min(a, b) of two values stays elementwise, over the union of their dimensions.
    both = compiled("min(need, open)")
    assert both.dims == ("partner", "good")
    assert np.array_equal(both(ns), np.minimum(need[None], ns["open"][:, None]))


def test_where_fills_every_cell_even_with_one_condition() -> None:
    ns = {**arrays(), "t": 3.0}
    e = compile_expr("where(t > 1, need, 0)", {**NAMES}, dims=DIMS, dimensions=DIMENSIONS)
    assert np.array_equal(e(ns), ns["need"])
    assert e(ns) is not ns["need"]


def test_a_sum_along_a_long_dimension_is_sequential() -> None:
    # numpy's own sum is pairwise along a contiguous axis; ours adds in element order.
    items = [f"e{i}" for i in range(40)]
    rng = np.random.default_rng(2)
    x = rng.lognormal(0, 3, size=(40, 1))
    e = compile_expr(
        "sum(x)", {"x": "parameter"}, dims={"x": ("item",)}, dimensions={"item": items}
    )
    want = x[0].copy()
    for row in x[1:]:
        want = want + row
    assert np.array_equal(e({"x": x}), want)


def test_expand_inserts_the_missing_axes() -> None:
    v = np.zeros((3, 5))
    assert expand(v, ("good",), ("partner", "good")).shape == (1, 3, 5)
    assert expand(v, ("partner",), ("partner", "good")).shape == (3, 1, 5)


def test_subscripts_need_dimensions() -> None:
    with pytest.raises(ExprError, match="subscripts"):
        compile_expr("k[food]", NAMES)
