"""Observations files: what was observed, as outcome-like targets a calibration fits.

An observations file is YAML (DESIGN.md, "Observations, calibration and validation"):

    observations:
      china_imports_2024:
        of: "where(t == 11, china_sellers, 0)"   # as an outcome's `of`
        stat: max                                # as an outcome's `stat`
        value: 1.96e9                            # what was observed
        sd: 0.2e9                                # one sd of observation error (Gaussian)
        unit: usd
        source: "China customs, 2024 total"
        use: calibrate                           # or: validate (held out); default calibrate

`low`/`high`, a 90% interval of the observation error, may replace `sd`. This module reads and
validates the file on its own (every problem located at file:line:col); the expressions are
compiled against a scenario's model by `sim.analysis.targets`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from scipy import stats

from sim.errors import Place, Problem, ScenarioError, did_you_mean, dotted
from sim.sampling.distributions import STRICT
from sim.scenario.expr import name_problem
from sim.scenario.loader import Document, read_yaml
from sim.scenario.schema import Expr, Stat, _data_path, _merge_union_types, _message, _typo_for

Use = Literal["calibrate", "validate"]
INTERVAL = 0.90  # what `low`/`high` span
Z_INTERVAL = float(stats.norm.ppf(0.5 + INTERVAL / 2))  # its half-width in sds


class Observation(BaseModel):
    """One observed quantity: an outcome-like expression and statistic, and what was seen."""

    model_config = STRICT

    of: Expr
    stat: Stat
    value: float
    sd: float | None = Field(None, gt=0)
    low: float | None = None
    high: float | None = None
    unit: str | None = None
    source: str = ""
    description: str | None = None
    use: Use = "calibrate"

    @field_validator("value", "sd", "low", "high")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        return value

    @model_validator(mode="after")
    def _uncertainty(self) -> Observation:
        interval = (self.low is not None, self.high is not None)
        if self.sd is not None and any(interval):
            raise ValueError("give either sd or a 90% interval low/high, not both")
        if self.sd is None:
            if interval == (False, False):
                raise ValueError(
                    "give the observation's uncertainty: sd, or a 90% interval low/high"
                )
            if interval != (True, True):
                raise ValueError("a 90% interval needs both low and high")
            assert self.low is not None and self.high is not None
            if not self.low < self.high:
                raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
            if not self.low <= self.value <= self.high:
                raise ValueError(
                    f"value {self.value:g} is outside its own 90% interval "
                    f"[{self.low:g}, {self.high:g}]"
                )
        return self

    @property
    def error_sd(self) -> float:
        """One sd of the observation error: `sd`, or the 90% interval's width / (2 × 1.645)."""
        if self.sd is not None:
            return self.sd
        assert self.low is not None and self.high is not None
        return (self.high - self.low) / (2 * Z_INTERVAL)


class ObservationsFile(BaseModel):
    """A whole observations file."""

    model_config = STRICT

    description: str | None = None
    observations: dict[str, Observation] = Field(min_length=1)
    # parameters no observation can inform (they act after the observed period): the
    # calibration integrates them out at their priors instead of sampling them
    keep_prior: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Observations:
    """An observations file read and validated, with the place of every value."""

    path: Path
    description: str
    items: dict[str, Observation]
    doc: Document
    keep_prior: tuple[str, ...] = ()

    def place(self, name: str, key: str | None = None) -> Place | None:
        """Where observation `name` (or its field `key`) is written."""
        path = ("observations", name) + ((key,) if key else ())
        return self.doc.place(path, key=key is None)

    def named(self, use: Use) -> list[str]:
        return [n for n, o in self.items.items() if o.use == use]


def load_observations(path: str | Path) -> Observations:
    """Read and validate an observations file; every problem is located (ScenarioError)."""
    path = Path(path)
    if path.is_file() and not path.read_bytes().strip():
        raise ScenarioError.one(
            "empty file; an observations file needs an `observations:` mapping",
            Place(str(path), 1, 1),
        )
    doc = read_yaml(path)
    try:
        parsed = ObservationsFile.model_validate(doc.data)
    except ValidationError as exc:
        raise ScenarioError(_translate(exc, doc)) from None
    problems = []
    for name in parsed.observations:
        wrong = name_problem(name)
        if wrong:
            problems.append(
                Problem(wrong, doc.place(("observations", name), key=True), f"observations.{name}")
            )
    if problems:
        raise ScenarioError(problems)
    return Observations(
        path,
        parsed.description or "",
        dict(parsed.observations),
        doc,
        tuple(dict.fromkeys(parsed.keep_prior)),
    )


def _translate(exc: ValidationError, doc: Document) -> list[Problem]:
    """Pydantic's errors as located problems, with the valid keys for an unknown one."""
    problems: list[Problem] = []
    errors = _merge_union_types(exc.errors(include_url=False), doc)
    for err in errors:
        kind = err["type"]
        path = _data_path(tuple(err["loc"]), doc.data, kind)
        hint = None
        if kind == "extra_forbidden":
            key = str(path[-1])
            model = ObservationsFile if len(path) == 1 else Observation
            valid = list(model.model_fields)
            message = f"unknown key '{key}'"
            hint = did_you_mean(key, valid) or "valid keys: " + ", ".join(valid)
            place = doc.place(path, key=True)
        elif kind == "missing":
            if _typo_for(path, errors, doc):
                continue  # the unknown key's "did you mean" says it better
            message = f"missing required field '{path[-1]}'"
            place = doc.place(path[:-1])
        elif kind == "too_short":
            message = "no observations; give at least one"
            place = doc.place(path)
        else:
            message = _message(err)
            place = doc.place(path)
        problems.append(Problem(message, place, dotted(path), hint))
    problems.sort(key=lambda p: (p.place.line, p.place.col) if p.place else (0, 0))
    return problems
