"""Sweeping a lever: the same study run at each of several values of one parameter.

At each value the parameter is fixed (a `Fixed` spec in a copy of the scenario) and the
study runs with the same seed, sampler and run count, so every other parameter and every
noise path draws the same values at every point (common random numbers: draws are keyed by
name, DESIGN.md "Randomness"). Run i at one value and run i at another are the same world
with only the lever moved, and the curves of an outcome against the lever are smooth.

A second lever ("by") gives a grid: the study runs at every (by, lever) pair with both fixed,
still with the same seed, sampler and runs everywhere, and each by-value has its own curve.

Values are numbers, or year-months ("2027-06") for a parameter that is an event's time (an
event with `at: PARAMETER`), turned into ticks from the scenario's start. A list is
"V1,V2,..."; a range is "START:STOP:STEP" with STOP included.

>>> import sim
>>> res = sweep(sim.load("examples/bakery.yaml"), "strike_month", "6:30:12", runs=100)
>>> res.labels
('2024-07', '2025-07', '2026-07')
>>> two = sweep(sim.load("examples/bakery.yaml"), "strike_month", "6,18", runs=50,
...             by=("mill_output", "90,120"))
>>> two.by_labels, two.stats["bread_eaten"].shape
(('90', '120'), (2, 2, 6))
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from sim.analysis.cells import expand
from sim.engine.semantics import STATUS_OK
from sim.errors import ScenarioError, did_you_mean
from sim.model import Model, check_outcomes, compile_scenario
from sim.scenario.expr import Expr
from sim.scenario.schema import Distribution, Fixed, parse_month
from sim.study.design import Grid
from sim.study.posterior import Posterior, drawn_as_usual, read_posterior
from sim.study.results import QUANTILE_NAMES, QUANTILES
from sim.study.runner import Execution, plan, run

MAX_VALUES = 200
SUMMARY_COLUMNS = ("mean", *QUANTILE_NAMES)  # what a sweep reports of an outcome at each point
_DATE = re.compile(r"^\d{4}-\d{1,2}$")

Progress = Callable[[int, int], None]
# A grid point: its index into a sweep's arrays, the by-value and its label, value and label.
Point = tuple[tuple[int, ...], float, str, float, str]


@dataclass(frozen=True)
class Sweep:
    """Outcome distributions of one scenario at each value of one parameter (or of two).

    One lever: `stats[outcome]` is (values, 6): mean, p05, p25, p50, p75, p95 over the runs
    with a value; `outcome_values[outcome]` is (values, runs), run i of each row being the same
    world. With a second lever `by`, both gain a leading axis, one row per by-value:
    (by_values, values, 6) and (by_values, values, runs), and `nonfinite` counts per grid
    point in that order (each by-value, then each value).
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
    nonfinite: tuple[int, ...]  # runs that went non-finite, per value (per grid point)
    units: dict[str, str] = field(default_factory=dict)
    parameter_unit: str = ""
    prior: str = ""  # the parameter's own distribution, replaced at each point
    outside: tuple[str, ...] = ()  # labels of values its prior can't produce
    by: str = ""  # the second lever, one curve per value; "" for a one-lever sweep
    by_values: tuple[float, ...] = ()
    by_labels: tuple[str, ...] = ()
    by_dates: bool = False
    by_unit: str = ""
    by_prior: str = ""
    by_outside: tuple[str, ...] = ()
    posterior: dict[str, Any] | None = None  # the posterior drawn from, as a run records it

    kind = "sweep"

    def curve(self, outcome: str, by: float | str | None = None) -> dict[str, np.ndarray]:
        """One outcome against the lever: value, and mean/p05/.../p95 per value.

        For a two-lever sweep, `by` picks the curve: one of `by_values` or `by_labels`.
        """
        if outcome not in self.stats:
            raise KeyError(f"no outcome '{outcome}' in this sweep")
        s = self.stats[outcome]
        if self.by:
            s = s[self._by_index(by)]
        elif by is not None:
            raise KeyError("a one-lever sweep has one curve per outcome; leave out `by`")
        return {
            "value": np.asarray(self.values),
            **{k: s[:, i] for i, k in enumerate(SUMMARY_COLUMNS)},
        }

    def _by_index(self, by: float | str | None) -> int:
        if by is None:
            raise KeyError(f"this sweep has a curve per value of {self.by}; give `by`")
        if isinstance(by, str) and by in self.by_labels:
            return self.by_labels.index(by)
        if not isinstance(by, str) and by in self.by_values:
            return self.by_values.index(float(by))
        raise KeyError(f"{self.by} = {by} is not in this sweep ({', '.join(self.by_labels)})")

    def table(self) -> pa.Table:
        """A row per outcome and value: the lever's value and label, and the outcome's spread.

        With a second lever, a row per outcome, by-value and value, its `by` and `by_label`.
        """
        extra = ("by", "by_label") if self.by else ()
        columns: dict[str, list[Any]] = {
            k: []
            for k in (
                "outcome",
                "unit",
                *extra,
                "value",
                "label",
                *SUMMARY_COLUMNS,
                "n",
                "empty",
                "nonfinite",
            )
        }
        for name in self.outcomes:
            for point, (at, by, by_label, value, label) in enumerate(self._grid()):
                x = self.outcome_values[name][at]
                columns["outcome"].append(name)
                columns["unit"].append(self.units.get(name, ""))
                if self.by:
                    columns["by"].append(by)
                    columns["by_label"].append(by_label)
                columns["value"].append(value)
                columns["label"].append(label)
                for i, stat in enumerate(SUMMARY_COLUMNS):
                    columns[stat].append(float(self.stats[name][at][i]))
                n = int(np.sum(np.isfinite(x)))
                columns["n"].append(n)
                columns["empty"].append(self.runs - n)
                columns["nonfinite"].append(self.nonfinite[point])
        return pa.table(columns)

    def run_table(self) -> pa.Table:
        """A row per value and run: the value, its label, the run, and every outcome.

        With a second lever, a row per by-value, value and run, led by `by` and `by_label`.
        """
        grid = self._grid()
        columns: dict[str, Any] = {}
        if self.by:
            columns["by"] = np.repeat([g[1] for g in grid], self.runs)
            columns["by_label"] = np.repeat(
                np.asarray([g[2] for g in grid], dtype=object), self.runs
            ).tolist()
        columns["value"] = np.repeat([g[3] for g in grid], self.runs).astype(float)
        columns["label"] = np.repeat(
            np.asarray([g[4] for g in grid], dtype=object), self.runs
        ).tolist()
        columns["run"] = np.tile(np.arange(self.runs, dtype=np.int64), len(grid))
        for name in self.outcomes:
            x = self.outcome_values[name].reshape(-1)
            columns[name] = pa.array(x, mask=np.isnan(x))
        return pa.table(columns)

    def _grid(self) -> list[Point]:
        return grid(self.values, self.labels, self.by_values, self.by_labels)

    def settings(self) -> dict[str, Any]:
        settings = {
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
        if self.by:
            settings.update(
                {
                    "by": self.by,
                    "by_unit": self.by_unit,
                    "by_prior": self.by_prior,
                    "by_values": list(self.by_values),
                    "by_labels": list(self.by_labels),
                    "by_dates": self.by_dates,
                    "by_outside_prior": list(self.by_outside),
                    "common_random_numbers": "same seed, sampler and runs at every grid point "
                    f"({self.by} × {self.parameter})",
                }
            )
        if self.posterior is not None:
            settings["posterior"] = self.posterior
            settings["common_random_numbers"] = (
                f"{settings['common_random_numbers']}; the posterior's parameters from the "
                "same posterior sample J(i) everywhere"
            )
        return settings


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
    """A value as shown: its year-month for an event time (months from the start; a fraction: the month it falls in)."""
    return model.date_at(value) if dates else _g(value)  # event times are in months


def check_parameter(model: Model, parameter: str) -> None:
    cells = model.cells(parameter) if parameter in model.arrays else []
    if parameter not in model.parameters and parameter in model.scenario.parameters and cells:
        # One value for every cell would sweep all goods at one level: rarely what is meant.
        raise ScenarioError.one(
            f"--set {parameter}: '{parameter}' is arrayed over "
            f"({', '.join(model.dims(parameter))}); sweep one cell at a time",
            hint=f'e.g. --set "{cells[0]}=..." (quoted: the shell reads [ ]); cells: '
            + ", ".join(cells[:12])
            + (", …" if len(cells) > 12 else ""),
        )
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
    *,
    by: tuple[str, str | Sequence[float | str]] | None = None,
    execution: Execution | None = None,
    posterior: str | Path | Posterior | None = None,
) -> Sweep:
    """Run `model` with `parameter` fixed at each of `values`, with common random numbers.

    `values` is a string as `parse_values` reads it, or a list of numbers (and year-months
    for an event time). Runs, seed and sampler default to the scenario's. `by` is a second
    lever and its values, e.g. `("cash_share", "0.1,0.3,0.5")`: the study then runs at every
    (by, value) pair, at most MAX_VALUES of them, with one curve per by-value.

    Every point's runs go through the study runner as one study (`sim.study.design.Grid`);
    `execution` says how it runs (engine, workers, executor, its folder and whether to
    resume it; serial and in memory by default). With a `posterior` (a calibration folder),
    run i of every point takes the posterior's parameters from its sample J(i), the rest as
    usual; a lever the posterior holds is refused (fixing one coordinate of a joint posterior
    would keep the others' values from worlds where it had another value).
    """
    by_name = by[0] if by is not None else ""
    if by_name == parameter:
        raise ScenarioError.one(
            f"--set {parameter} is given twice",
            hint="sweep two different parameters: the lever, then the one giving a curve each",
        )
    points, labels, dates = _lever(model, parameter, values)
    by_points: list[float] = []
    by_labels: list[str] = []
    by_dates = False
    if by is not None:
        by_points, by_labels, by_dates = _lever(model, by_name, by[1])
        size = len(by_points) * len(points)
        if size > MAX_VALUES:
            raise ScenarioError.one(
                f"{len(points)} values of {parameter} × {len(by_points)} of {by_name} = {size} "
                f"grid points; at most {MAX_VALUES}",
                hint="give fewer values or a coarser STEP",
            )
    drawn = (
        None
        if posterior is None
        else posterior
        if isinstance(posterior, Posterior)
        else read_posterior(posterior)
    )
    if drawn is not None:
        held = [n for n in (parameter, by_name) if n and n in drawn.names]
        if held:
            raise ScenarioError.one(
                f"--set {', '.join(held)}: the posterior in {drawn.folder} holds "
                f"{'it' if len(held) == 1 else 'them'}, and a sweep would fix one coordinate "
                "of a joint posterior (its other parameters' values come from worlds where "
                f"{held[0]} had other values)",
                hint="sweep a parameter the posterior does not hold, or run without --posterior",
            )
    cells = grid(points, labels, by_points, by_labels)
    every = [o.name for o in model.outcomes]
    names = tuple(expand(outcomes, every)) if outcomes else tuple(every)  # an array: its cells
    check_outcomes(model, names)
    # Recorded series are not summarised here; leaving them out saves memory and time.
    lean = compile_scenario(model.scenario.model_copy(update={"record": []}))
    lean = dataclasses.replace(lean, files=model.files, place=model.place)
    first = plan(lean, runs, seed, sampler)
    fixed = []
    for _, by_value, by_label, value, label in cells:
        point = {parameter: _fixed(model, parameter, value, label)}
        if by_name:
            point[by_name] = _fixed(model, by_name, by_value, by_label)
        fixed.append(point)
    res = run(
        lean,
        first.runs,
        first.seed,
        first.sampler,
        progress=progress,
        **(execution or Execution()).options(),
        design=Grid(tuple(fixed), drawn),
    )
    shape = (len(by_points), len(points)) if by_name else (len(points),)
    ok = (res.runs.column("status").to_numpy(zero_copy_only=False) == STATUS_OK).reshape(
        len(cells), first.runs
    )
    nonfinite = [int(n) for n in np.sum(~ok, axis=1)]
    stats = {}
    per_run = {}
    for name in names:
        values_ = np.where(ok, res.outcome(name).reshape(len(cells), first.runs), np.nan)
        per_run[name] = values_.reshape(*shape, first.runs)
        stats[name] = np.stack([_spread(row) for row in values_]).reshape(
            *shape, len(SUMMARY_COLUMNS)
        )
    spec = model.parameters[parameter]
    by_spec = model.parameters[by_name] if by_name else None
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
        prior=spec.describe(),
        outside=_outside(spec, points, labels),
        by=by_name,
        by_values=tuple(by_points),
        by_labels=tuple(by_labels),
        by_dates=by_dates,
        by_unit=by_spec.unit if by_spec else "",
        by_prior=by_spec.describe() if by_spec else "",
        by_outside=_outside(by_spec, by_points, by_labels) if by_spec else (),
        posterior=None
        if drawn is None
        else drawn.summary(
            [n for n in drawn_as_usual(drawn, model) if n not in (parameter, by_name)]
        ),
    )


def grid(
    values: Sequence[float],
    labels: Sequence[str],
    by_values: Sequence[float] = (),
    by_labels: Sequence[str] = (),
) -> list[Point]:
    """Every point of a sweep in table order: (index into the arrays, by-value, its label,
    value, its label); each by-value in turn, then each value. With no by-values, one lever."""
    levers = list(zip(values, labels, strict=True))
    if not by_values:
        return [((k,), math.nan, "", v, lab) for k, (v, lab) in enumerate(levers)]
    return [
        ((j, k), b, b_lab, v, lab)
        for j, (b, b_lab) in enumerate(zip(by_values, by_labels, strict=True))
        for k, (v, lab) in enumerate(levers)
    ]


def _fixed(model: Model, parameter: str, value: float, label: str) -> Fixed:
    """The lever's distribution replaced by one value, keeping its unit and description."""
    spec = model.parameters[parameter]
    return Fixed(
        value=value,
        unit=spec.unit,
        source=f"sweep of {parameter}: {label}",
        description=spec.description,
    )


def _lever(
    model: Model, parameter: str, values: str | Sequence[float | str]
) -> tuple[list[float], list[str], bool]:
    """A lever's values, their labels, and whether they are dates, checked."""
    check_parameter(model, parameter)
    dates = event_time(model, parameter)
    if isinstance(values, str):
        points, labels = parse_values(model, parameter, values)
    else:
        joined = ",".join(str(v) for v in values)
        points = [_number(model, parameter, str(v).strip(), dates, joined) for v in values]
        points, labels = _checked(model, parameter, points, dates, joined)
    return points, labels, dates


def _outside(spec: Distribution, values: list[float], labels: list[str]) -> tuple[str, ...]:
    """Labels of the values outside what the parameter's own distribution draws."""
    if isinstance(spec, Fixed):
        return ()
    low, high = spec.support()
    return tuple(lab for v, lab in zip(values, labels, strict=True) if not low <= v <= high)


def _spread(x: np.ndarray) -> np.ndarray:
    finite = x[np.isfinite(x)]
    if not len(finite):
        return np.full(len(SUMMARY_COLUMNS), np.nan)
    return np.concatenate([[np.mean(finite)], np.quantile(finite, QUANTILES)])


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
