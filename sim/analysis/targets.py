"""Observations compiled against a scenario: each one an outcome the runner computes.

An observation's `of` and `stat` are an outcome's, so they compile with the same expression
compiler and the same name rules (did-you-mean on an unknown name, located at its column).
`study_model` gives the scenario with its outcomes replaced by one per observation, under
column names that can't clash with a parameter, and without recorded series: the runs a
calibration asks the study runner for compute just these.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from sim.errors import Place, Problem, ScenarioError
from sim.model import RESULT_COLUMNS, Model, compile_scenario
from sim.scenario.expr import ExprError, compile_expr
from sim.scenario.observations import Observations, Use
from sim.scenario.schema import Outcome

RESERVED_COLUMNS = ("sample", "weight")  # posterior.parquet's own columns


@dataclass(frozen=True)
class Target:
    """One observation, compiled: what to compute of a run, and what was observed."""

    name: str
    column: str  # its outcome's name in the study model
    of: str
    stat: str
    use: Use
    observed: float
    sd: float
    unit: str
    source: str


def compile_targets(model: Model, obs: Observations) -> tuple[Target, ...]:
    """Check every observation against `model`; a ScenarioError lists every problem, located."""
    sc = model.scenario
    names: dict[str, str] = {
        **{n: "parameter" for n in sc.parameters},
        **{n: "state" for n in sc.state},
        **{n: "stock" for n in sc.stocks},
        **{n: "variable" for n in sc.variables},
    }
    flow_units = {f.name: f.unit for f in model.flows}
    stock_units = {s.name: s.unit for s in model.stocks}
    problems: list[Problem] = []
    out = []
    taken = set(sc.parameters) | set(RESULT_COLUMNS)
    for i, (name, o) in enumerate(obs.items.items()):
        path = f"observations.{name}"
        if name in sc.parameters or name in RESERVED_COLUMNS:
            what = "a parameter" if name in sc.parameters else "posterior.parquet's own column"
            problems.append(
                Problem(
                    f"observation '{name}' would share a column with {what} in posterior.parquet",
                    obs.place(name),
                    path,
                    "rename the observation",
                )
            )
        try:
            expr = compile_expr(
                o.of,
                names,
                frozenset(sc.flows),
                calendar=True,
                label=f"{path}.of",
                dims=model.arrays,
                dimensions=model.dimensions,
            )
        except ExprError as exc:
            place = obs.place(name, "of")
            if place is not None and isinstance(o.of, str):
                place = Place(place.file, place.line, place.col + exc.offset)
            problems.append(Problem(exc.message, place, f"{path}.of", exc.hint))
            continue
        if expr.dims:  # an observation is one number: a cell, or a reduction of the array
            problems.append(
                Problem(
                    f"'{expr.text}' is over ({', '.join(expr.dims)}), but an observation is "
                    "one number",
                    obs.place(name, "of"),
                    f"{path}.of",
                    "pick a cell, e.g. x[elem], or reduce the array, e.g. sum(x) or max(x, dim)",
                )
            )
            continue
        if expr.constant is not None and not math.isfinite(expr.constant):
            problems.append(
                Problem(
                    f"'{expr.text}' is {expr.constant} (not a finite number) whatever the run",
                    obs.place(name, "of"),
                    f"{path}.of",
                )
            )
            continue
        known = _unit_of(expr.alias, o.stat, stock_units, flow_units)
        if known is not None and o.unit is not None and o.unit != known:
            problems.append(
                Problem(
                    f"unit mismatch: '{expr.text}' with stat {o.stat} is in {known}, not {o.unit}",
                    obs.place(name, "unit"),
                    f"{path}.unit",
                )
            )
        column = f"obs{i}"
        while column in taken:
            column = "_" + column
        taken.add(column)
        out.append(
            Target(
                name,
                column,
                expr.text,
                o.stat,
                o.use,
                float(o.value),
                float(o.error_sd),
                o.unit or known or "1",
                o.source,
            )
        )
    if problems:
        raise ScenarioError(problems)
    if not any(t.use == "calibrate" for t in out):
        raise ScenarioError.one(
            "no observation has `use: calibrate`; nothing to calibrate on",
            obs.doc.place(("observations",)),
            "observations",
            "mark at least one observation `use: calibrate` (the default)",
        )
    return tuple(out)


def _unit_of(
    alias: str | None, stat: str, stocks: Mapping[str, str], flows: Mapping[str, str]
) -> str | None:
    """The unit an outcome's value is in, where the expression says it: a month count, a
    bare stock, or a flow's flow./cum./transit. value; None where it can't be known."""
    if stat in ("count", "first"):
        return "month"
    if alias is None:
        return None
    if alias in stocks:
        return stocks[alias]
    prefix, _, rest = alias.partition(".")
    if prefix in ("flow", "cum", "transit") and rest in flows:
        return flows[rest]
    return None


def study_model(model: Model, targets: tuple[Target, ...]) -> Model:
    """`model` computing one outcome per target (and nothing recorded)."""
    outcomes = {t.column: Outcome(of=t.of, stat=t.stat, unit=t.unit) for t in targets}  # type: ignore[arg-type]
    lean = compile_scenario(model.scenario.model_copy(update={"outcomes": outcomes, "record": []}))
    return dataclasses.replace(lean, files=model.files, place=model.place)
