"""Sweeping a lever: the same study run at each of several values of one parameter.

At each value the parameter is fixed (a `Fixed` spec in a copy of the scenario) and the
study runs with the same seed, sampler and run count, so every other parameter and every
noise path draws the same values at every point (common random numbers: draws are keyed by
name, DESIGN.md "Randomness"). Run i at one value and run i at another are the same world
with only the lever moved, and the curves of an outcome against the lever are smooth.

Values are numbers, or year-months ("2027-06") for a parameter that is an event's time (an
event with `at: PARAMETER`), turned into ticks from the scenario's start. A list is
"V1,V2,..."; a range is "START:STOP:STEP" with STOP included.

>>> import sim
>>> res = sweep(sim.load("examples/bakery.yaml"), "strike_month", "6:30:12", runs=100)
>>> res.labels
('2024-07', '2025-07', '2026-07')
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from sim.distributions import describe, support
from sim.errors import ScenarioError, did_you_mean
from sim.expr import Expr
from sim.model import Model, compile_scenario
from sim.runner import draw, execute, plan
from sim.schema import Distribution, Fixed, parse_month
from sim.sobol import check_outcomes

MAX_VALUES = 200
STATS = ("mean", "p05", "p25", "p50", "p75", "p95")
_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_DATE = re.compile(r"^\d{4}-\d{1,2}$")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Sweep:
    """Outcome distributions of one scenario at each value of one parameter.

    `stats[outcome]` is (values, 6): mean, p05, p25, p50, p75, p95 over the runs with a value;
    `outcome_values[outcome]` is (values, runs), run i of each row being the same world.
    """

    scenario: str
    parameter: str
    values: tuple[float, ...]
    labels: tuple[str, ...]
    dates: bool  # the parameter is an event's time, and labels are year-months
    runs: int
    seed: int
    sampler: str
    outcomes: tuple[str, ...]
    stats: dict[str, np.ndarray]
    outcome_values: dict[str, np.ndarray] = field(repr=False)
    nonfinite: tuple[int, ...]  # runs that went non-finite, per value
    units: dict[str, str] = field(default_factory=dict)
    parameter_unit: str = ""
    prior: str = ""  # the parameter's own distribution, replaced at each point
    outside: tuple[str, ...] = ()  # labels of values its prior can't produce

    kind = "sweep"

    def curve(self, outcome: str) -> dict[str, np.ndarray]:
        """One outcome against the lever: value, and mean/p05/.../p95 per value."""
        if outcome not in self.stats:
            raise KeyError(f"no outcome '{outcome}' in this sweep")
        s = self.stats[outcome]
        return {"value": np.asarray(self.values), **{k: s[:, i] for i, k in enumerate(STATS)}}

    def table(self) -> pa.Table:
        """A row per outcome and value: the lever's value and label, and the outcome's spread."""
        columns: dict[str, list[Any]] = {
            k: [] for k in ("outcome", "unit", "value", "label", *STATS, "n", "empty", "nonfinite")
        }
        for name in self.outcomes:
            x = self.outcome_values[name]
            for k, (value, label) in enumerate(zip(self.values, self.labels, strict=True)):
                columns["outcome"].append(name)
                columns["unit"].append(self.units.get(name, ""))
                columns["value"].append(value)
                columns["label"].append(label)
                for i, stat in enumerate(STATS):
                    columns[stat].append(float(self.stats[name][k, i]))
                n = int(np.sum(np.isfinite(x[k])))
                columns["n"].append(n)
                columns["empty"].append(self.runs - n)
                columns["nonfinite"].append(self.nonfinite[k])
        return pa.table(columns)

    def run_table(self) -> pa.Table:
        """A row per value and run: the value, its label, the run, and every outcome."""
        k = len(self.values)
        columns: dict[str, Any] = {
            "value": np.repeat(np.asarray(self.values), self.runs),
            "label": np.repeat(np.asarray(self.labels, dtype=object), self.runs).tolist(),
            "run": np.tile(np.arange(self.runs, dtype=np.int64), k),
        }
        for name in self.outcomes:
            x = self.outcome_values[name].reshape(-1)
            columns[name] = pa.array(x, mask=np.isnan(x))
        return pa.table(columns)

    def settings(self) -> dict[str, Any]:
        return {
            "parameter": self.parameter,
            "parameter_unit": self.parameter_unit,
            "prior": self.prior,
            "values": list(self.values),
            "labels": list(self.labels),
            "dates": self.dates,
            "runs": self.runs,
            "seed": self.seed,
            "sampler": self.sampler,
            "outcomes": list(self.outcomes),
            "units": dict(self.units),
            "common_random_numbers": "same seed, sampler and runs at every value",
            "nonfinite_runs": list(self.nonfinite),
            "outside_prior": list(self.outside),
        }


def event_time(model: Model, parameter: str) -> bool:
    """Whether some event happens at exactly `parameter` ticks (`at: PARAMETER`)."""
    return any(isinstance(e.at, Expr) and e.at.alias == parameter for e in model.events)


def parse_values(model: Model, parameter: str, text: str) -> tuple[list[float], list[str]]:
    """Values and their labels from "V1,V2,..." or "START:STOP:STEP" (STOP included).

    For an event-time parameter, values may be year-months and every label is a date.
    """
    check_parameter(model, parameter)
    dates = event_time(model, parameter)
    text = text.strip()
    if not text:
        raise _bad(parameter, text, "no values given")
    if ":" in text:
        parts = [p.strip() for p in text.split(":")]
        if len(parts) != 3:
            raise _bad(parameter, text, "a range is START:STOP:STEP")
        start, stop = (_number(model, parameter, p, dates, text) for p in parts[:2])
        try:
            step = float(parts[2])
        except ValueError:
            raise _bad(parameter, text, f"step '{parts[2]}' is not a number") from None
        if not math.isfinite(step) or step <= 0:
            raise _bad(parameter, text, "the step must be a positive number")
        if stop < start:
            raise _bad(parameter, text, "STOP is below START")
        count = math.floor((stop - start) / step + 1e-9) + 1
        if count > MAX_VALUES:
            raise _bad(parameter, text, f"{count} values; at most {MAX_VALUES}")
        values = [start + k * step for k in range(count)]
    else:
        values = [_number(model, parameter, p.strip(), dates, text) for p in text.split(",")]
    return _checked(model, parameter, values, dates, text)


def _checked(
    model: Model, parameter: str, values: list[float], dates: bool, text: str
) -> tuple[list[float], list[str]]:
    if not values:
        raise _bad(parameter, text, "no values given")
    if len(values) > MAX_VALUES:
        raise _bad(parameter, text, f"{len(values)} values; at most {MAX_VALUES}")
    seen: set[float] = set()
    for v in values:
        if v in seen:
            raise _bad(parameter, text, f"{_g(v)} is given twice")
        seen.add(v)
    return values, [label(model, v, dates) for v in values]


def label(model: Model, value: float, dates: bool) -> str:
    """A value as shown: its year-month for an event time (fractional ticks: the month it falls in)."""
    return model.date(value) if dates else _g(value)


def check_parameter(model: Model, parameter: str) -> None:
    if parameter not in model.parameters:
        raise ScenarioError.one(
            f"scenario '{model.name}' has no parameter '{parameter}'",
            hint=did_you_mean(parameter, model.parameters)
            or "parameters: " + ", ".join(list(model.parameters)[:12]),
        )


def sweep(
    model: Model,
    parameter: str,
    values: str | Sequence[float | str],
    runs: int | None = None,
    seed: int | None = None,
    sampler: str | None = None,
    outcomes: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> Sweep:
    """Run `model` with `parameter` fixed at each of `values`, with common random numbers.

    `values` is a string as `parse_values` reads it, or a list of numbers (and year-months
    for an event time). Runs, seed and sampler default to the scenario's.
    """
    check_parameter(model, parameter)
    dates = event_time(model, parameter)
    if isinstance(values, str):
        points, labels = parse_values(model, parameter, values)
    else:
        joined = ",".join(str(v) for v in values)
        points = [_number(model, parameter, str(v).strip(), dates, joined) for v in values]
        points, labels = _checked(model, parameter, points, dates, joined)
    names = tuple(dict.fromkeys(outcomes)) if outcomes else tuple(o.name for o in model.outcomes)
    check_outcomes(model, names)
    spec = model.parameters[parameter]
    # Recorded series are not summarised here; leaving them out saves memory and time.
    base = model.scenario.model_copy(update={"record": []})
    first = plan(model, runs, seed, sampler)
    total = first.runs * len(points)
    stats = {name: np.empty((len(points), len(STATS))) for name in names}
    per_run = {name: np.empty((len(points), first.runs)) for name in names}
    nonfinite = []
    done = 0
    for k, value in enumerate(points):
        fixed = Fixed(
            value=value,
            unit=spec.unit,
            source=f"sweep of {parameter}: {labels[k]}",
            description=spec.description,
        )
        scenario = base.model_copy(update={"parameters": {**base.parameters, parameter: fixed}})
        p = plan(compile_scenario(scenario), first.runs, first.seed, first.sampler)
        bad = 0
        for _, start, stop in p.blocks:
            params, noise = draw(p, start, stop)
            block = execute(p, params, noise, start, stop)
            ok = block.bad_tick < 0
            bad += int(np.sum(~ok))
            for name in names:
                per_run[name][k, start:stop] = np.where(ok, block.outcomes[name], np.nan)
            done += stop - start
            if progress is not None:
                progress(done, total)
        nonfinite.append(bad)
        for name in names:
            stats[name][k] = _spread(per_run[name][k])
    return Sweep(
        scenario=model.name,
        parameter=parameter,
        values=tuple(points),
        labels=tuple(labels),
        dates=dates,
        runs=first.runs,
        seed=first.seed,
        sampler=first.sampler,
        outcomes=names,
        stats=stats,
        outcome_values=per_run,
        nonfinite=tuple(nonfinite),
        units={o.name: o.unit for o in model.outcomes if o.name in names},
        parameter_unit=spec.unit,
        prior=describe(spec),
        outside=_outside(spec, points, labels),
    )


def _outside(spec: Distribution, values: list[float], labels: list[str]) -> tuple[str, ...]:
    """Labels of the values outside what the parameter's own distribution draws."""
    if isinstance(spec, Fixed):
        return ()
    low, high = support(spec)
    return tuple(lab for v, lab in zip(values, labels, strict=True) if not low <= v <= high)


def _spread(x: np.ndarray) -> np.ndarray:
    finite = x[np.isfinite(x)]
    if not len(finite):
        return np.full(len(STATS), np.nan)
    return np.concatenate([[np.mean(finite)], np.quantile(finite, _QUANTILES)])


def _number(model: Model, parameter: str, text: str, dates: bool, whole: str) -> float:
    if _DATE.match(text):
        if not dates:
            raise _bad(
                parameter,
                whole,
                f"'{text}' is a date, but '{parameter}' is not an event's time; give numbers",
            )
        try:
            year, month = parse_month(text)
        except ValueError as exc:
            raise _bad(parameter, whole, str(exc)) from None
        y0, m0 = model.scenario.start_year_month
        return float((year - y0) * 12 + (month - m0))
    try:
        value = float(text)
    except ValueError:
        what = "a number or a year-month like 2027-06" if dates else "a number"
        raise _bad(parameter, whole, f"'{text}' is not {what}") from None
    if not math.isfinite(value):
        raise _bad(parameter, whole, f"'{text}' is not a finite number")
    return value


def _bad(parameter: str, text: str, why: str) -> ScenarioError:
    return ScenarioError.one(
        f"--set {parameter}={text}: {why}",
        hint="give V1,V2,... or START:STOP:STEP (STOP included)",
    )


def _g(v: float) -> str:
    return f"{v:g}"
