"""A hypothesis strategy for whole scenarios: random stock-and-flow graphs across units,
random rates, delays, noise, events and outcomes. Every generated scenario is valid."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from sim.model import Model, compile_scenario
from sim.scenario.schema import Scenario

coef = st.floats(0.01, 0.95, allow_nan=False).map(lambda x: round(x, 3))
amount = st.floats(0, 50, allow_nan=False).map(lambda x: round(x, 2))


@st.composite
def scenarios(draw: st.DrawFn, max_units: int = 3) -> dict[str, Any]:
    months = draw(st.integers(1, 18))
    n_units = draw(st.integers(1, max_units))
    parameters: dict[str, Any] = {
        "p0": {"dist": "uniform", "low": 0.5, "high": 2.0},
        "p1": {"dist": "triangular", "low": 0, "mode": 3, "high": 10},
        "when": {"dist": "uniform", "low": -2, "high": months + 2},
    }
    state = {"on": 1.0}
    stocks: dict[str, Any] = {}
    by_unit: dict[str, list[tuple[str, str]]] = {}
    for u in range(n_units):
        unit = f"u{u}"
        n = draw(st.integers(2, 5))
        for i in range(n):
            name = f"s{u}_{i}"
            kind = draw(st.sampled_from(["stock", "stock", "stock", "source", "sink"]))
            spec: dict[str, Any] = {"unit": unit, "kind": kind}
            if kind != "sink":
                spec["initial"] = draw(st.sampled_from([draw(amount), "10 * p0", 0]))
            stocks[name] = spec
            by_unit.setdefault(unit, []).append((name, kind))
    flows: dict[str, Any] = {}
    n_flows = draw(st.integers(1, 9))
    for j in range(n_flows):
        unit = draw(st.sampled_from(sorted(by_unit)))
        givers = [s for s, k in by_unit[unit] if k != "sink"]
        takers = [s for s, k in by_unit[unit] if k != "source"]
        src = draw(st.sampled_from(givers)) if givers else None
        options = [s for s in takers if s != src]
        if src is None or not options:
            continue
        dst = draw(st.sampled_from(options))
        earlier = list(flows)
        templates = [
            f"{draw(amount)}",
            f"{draw(coef)} * {src}",
            f"min({src}, {draw(amount)}) * on",
            f"p0 * {draw(amount)}",
            f"where(t > {draw(st.integers(0, months))}, p1, 0)",
            f"{draw(amount)} - {draw(amount)}",  # may be negative: max(0, .) applies
            f"{draw(coef)} * {dst} + 1",
            f"sqrt(abs({src}) + 1) * (month > 6)",
        ]
        if earlier:
            other = draw(st.sampled_from(earlier))
            templates += [
                f"{draw(coef)} * flow.{other} + 0.5",
                f"cum.{other} / (t + 1)",
                f"{draw(coef)} * transit.{other}",
            ]
        spec = {"from": src, "to": dst, "rate": draw(st.sampled_from(templates))}
        delay = draw(st.sampled_from([0, 0, 0, 1, 2, 3]))
        if delay:
            spec["delay"] = delay
        if draw(st.booleans()):
            spec["noise"] = draw(
                st.sampled_from(
                    [
                        {"dist": "lognormal", "median": 1, "p95": 1.4},
                        {"dist": "uniform", "low": 0, "high": 2},
                        {"dist": "triangular", "low": 0.5, "mode": 1, "high": 1.2},
                        {"dist": "pert", "low": 0.7, "mode": 1, "high": 1.5},
                        {"dist": "normal", "mean": 1, "sd": 0.2, "low": 0},
                    ]
                )
            )
        flows[f"f{j}"] = spec
    if not flows:  # always at least one flow
        unit = sorted(by_unit)[0]
        stocks["extra_src"] = {"unit": unit, "kind": "source"}
        stocks["extra_dst"] = {"unit": unit}
        flows["f_extra"] = {"from": "extra_src", "to": "extra_dst", "rate": "p1"}
    events: dict[str, Any] = {}
    if draw(st.booleans()):
        events["stop"] = {"at": draw(st.sampled_from(["when", months / 2 + 0.25, "2024-03", 0])), "set": {"on": 0}}
    if draw(st.booleans()):
        events["boost"] = {"at": "when + 1", "scale": {"p0": 1.5}}
    names = list(stocks)
    outcomes: dict[str, Any] = {}
    for k, stat in enumerate(["final", "mean", "min", "max", "sum", "count", "first"]):
        target = draw(st.sampled_from(names))
        of = target if stat not in ("count", "first") else f"{target} > {draw(amount)}"
        outcomes[f"o{k}"] = {"of": of, "stat": stat}
    outcomes["o_flow"] = {"of": f"cum.{next(iter(flows))}", "stat": "final"}
    return {
        "name": "generated",
        "start": "2024-01",
        "months": months,
        "parameters": parameters,
        "state": state,
        "stocks": stocks,
        "flows": flows,
        "events": events,
        "outcomes": outcomes,
        "record": [names[0]],
    }


def compile_dict(data: dict[str, Any]) -> Model:
    return compile_scenario(Scenario.model_validate(data))
