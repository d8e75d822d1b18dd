"""The scenario's shape as pydantic models: what each section may hold, and its basic checks.

`parse(document)` validates a loaded `Document` and turns pydantic's errors into located
`ScenarioError`s. Cross-references (names, units, expressions) are checked later by
`sim.model.compile_scenario`, which knows the whole scenario.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from sim.errors import Problem, ScenarioError, did_you_mean, dotted
from sim.sampling.distributions import REGISTRY, STRICT
from sim.sampling.distributions import Distribution as Distribution  # re-exported
from sim.sampling.distributions import Fixed as Fixed  # re-exported
from sim.sampling.samplers import SamplerName
from sim.scenario.dims import (
    DimsError,
    arrayed,
    cell_name,
    cells,
    check_over,
    is_arrayed_value,
    over_list,
    shape,
)
from sim.scenario.expr import MAX_NAME, name_problem
from sim.scenario.loader import Document, PathKey

Number = float
Expr = float | str  # a number, or an expression in the safe language (sim.scenario.expr)
_CONFIG = STRICT

SEED_LIMIT = 2**63  # seeds are 0 .. 2**63-1, in a file and on the command line


class _Spec(BaseModel):
    model_config = _CONFIG


# -- distributions -------------------------------------------------------------------------
# Each distribution is one class in sim.sampling.distributions, registered there by name; the
# union below, the names in messages and the valid keys all read that registry.

DIST_NAMES = tuple(REGISTRY)
if TYPE_CHECKING:
    AnyDistribution = Distribution
else:
    _ANY = Union[tuple(REGISTRY.values())]  # noqa: UP007 - built from the registry at run time
    AnyDistribution = Annotated[_ANY, Field(discriminator="dist")]


def _as_distribution(value: Any) -> Any:
    """Shorthands: a bare number is fixed; a mapping with `value` and no `dist` is fixed."""
    if isinstance(value, bool):
        return value  # let strict validation refuse it
    if isinstance(value, int | float):
        return {"dist": "fixed", "value": value}
    if isinstance(value, dict) and "dist" not in value and "value" in value:
        return {"dist": "fixed", **value}
    return value


# -- sections ------------------------------------------------------------------------------


StockKind = Literal["stock", "source", "sink", "balance"]
STOCK_KINDS: tuple[str, ...] = typing.get_args(StockKind)  # what a stock's `kind:` may be


class Stock(_Spec):
    unit: str
    initial: Expr | list[Any] | dict[str, Any] = 0.0  # a list or mapping: per cell (over:)
    kind: StockKind = "stock"
    description: str | None = None
    source: str | None = None
    over: str | list[str] | None = None  # dimensions: one stock per cell


class Flow(_Spec):
    model_config = ConfigDict(**_CONFIG, populate_by_name=True)
    from_: str = Field(alias="from")
    to: str
    rate: Expr
    delay: int | float = Field(0, ge=0)  # months; a whole number of ticks (sim.model checks)
    noise: AnyDistribution | None = None
    description: str | None = None
    source: str | None = None
    two_way: bool = False  # a negative rate moves the amount from `to` to `from`
    over: str | list[str] | None = None  # dimensions: one flow per cell

    @field_validator("noise", mode="before")
    @classmethod
    def _noise(cls, value: Any) -> Any:
        return _as_distribution(value)

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> Any:
        # A one-way flow dumps as before two_way existed: a scenario's sha256 (the manifest's,
        # --resume's check) stays what it was for every scenario that doesn't use it.
        data = handler(self)
        if not self.two_way and isinstance(data, dict):
            data.pop("two_way", None)
        return data


class DataSeries(_Spec):
    """A time series read from a CSV file (`data:`; sim.scenario.data reads it)."""

    file: str
    column: str | None = None  # default: the column named like the series
    extrapolate: Literal["flat", "error"] = "flat"
    over: str | list[str] | None = None  # dimensions: columns name[elem], name[elem1,elem2]
    description: str | None = None
    source: str | None = None
    # The file as found from the scenario file that declares it (set by `parse`), so that
    # `extends:` works and a recompiled copy of the scenario (a worker's) finds it too.
    _path: str | None = PrivateAttr(default=None)

    @property
    def path(self) -> str:
        return self._path or self.file


class Event(_Spec):
    at: float | str
    set: dict[str, Expr] = Field(default_factory=dict)
    scale: dict[str, Expr] = Field(default_factory=dict)
    description: str | None = None
    source: str | None = None

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, value: Any) -> Any:
        if isinstance(value, dt.date):
            raise ValueError(
                f"a date ({value}) is not a time here; write a year-month in quotes, "
                f'like "{value.year:04d}-{value.month:02d}", or a number of ticks'
            )
        return value

    @model_validator(mode="after")
    def _does_something(self) -> Event:
        if not self.set and not self.scale:
            raise ValueError("an event needs `set:` or `scale:` (or both)")
        return self


Stat = Literal["final", "mean", "min", "max", "sum", "count", "first"]
OUTCOME_STATS: tuple[str, ...] = typing.get_args(Stat)  # what an outcome's `stat:` may be


class Outcome(_Spec):
    of: Expr
    stat: Stat
    unit: str | None = None
    description: str | None = None


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")


def parse_month(text: str) -> tuple[int, int]:
    """'2024-03' as (2024, 3); ValueError with a readable reason otherwise."""
    match = _MONTH.match(text.strip())
    if not match:
        raise ValueError(f"'{text}' is not a year-month like 2024-01")
    year, month = int(match[1]), int(match[2])
    if not 1 <= month <= 12:
        raise ValueError(f"'{text}': month {month} is not 1-12")
    return year, month


class Scenario(_Spec):
    """A whole scenario after `extends:` is resolved (DESIGN.md, "Scenario files")."""

    name: str
    description: str | None = None
    start: str
    months: int = Field(gt=0, le=100_000)
    seed: int = Field(0, ge=0, lt=SEED_LIMIT)
    runs: int = Field(1000, gt=0)
    sampler: SamplerName = "mc"
    parameters: dict[str, AnyParameter] = Field(default_factory=dict)
    state: dict[str, Number | ArrayedState] = Field(default_factory=dict)
    variables: dict[str, Expr | ArrayedVariable] = Field(default_factory=dict)
    stocks: dict[str, Stock] = Field(default_factory=dict)
    flows: dict[str, Flow] = Field(default_factory=dict)
    events: dict[str, Event] = Field(default_factory=dict)
    outcomes: dict[str, Outcome] = Field(default_factory=dict)
    record: list[str] = Field(default_factory=list)
    # None when absent, so that a scenario without them dumps (and hashes) as before.
    step: float | None = Field(None, gt=0, le=1200)  # months per tick (default 1)
    data: dict[str, DataSeries] | None = None
    sources: str | None = None  # the file `source:` texts cite by [KEY] (sim.scenario.sources)
    dimensions: dict[str, list[str]] | None = None  # name -> its elements, in order

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if len(value) > MAX_NAME:  # not quoted back: it would fill the screen
            raise ValueError(
                f"a name of {len(value):,} characters is too long (at most {MAX_NAME}; "
                "it names the results folder)"
            )
        if not _NAME.match(value):
            raise ValueError(
                f"'{value}' is not a usable name (letters, digits, _ . -; it names the results folder)"
            )
        return value

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, value: Any) -> Any:
        if isinstance(value, dt.date):
            return f"{value.year:04d}-{value.month:02d}"
        if isinstance(value, str):
            year, month = parse_month(value)
            return f"{year:04d}-{month:02d}"
        return value

    @field_validator("parameters", mode="before")
    @classmethod
    def _parameters(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: _as_distribution(v) for k, v in value.items()}
        return value

    @property
    def start_year_month(self) -> tuple[int, int]:
        return parse_month(self.start)

    @property
    def tick(self) -> float:
        """The length of a tick in months."""
        return 1.0 if self.step is None else float(self.step)

    def dump(self) -> dict[str, Any]:
        """The scenario as plain data that loads back to an equal Scenario."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# -- error translation ---------------------------------------------------------------------


def parse(doc: Document) -> Scenario:
    """Validate a loaded document; every problem becomes a located `Problem`."""
    problems = _check_distribution_names(doc)
    try:
        scenario = Scenario.model_validate(doc.data)
    except ValidationError as exc:
        bad = {p.path for p in problems}
        problems += [
            p
            for p in _translate(exc, doc)
            if not any(p.path.startswith(b[: -len(".dist")]) for b in bad)
        ]
        problems.sort(key=lambda p: (p.place.line, p.place.col) if p.place else (0, 0))
        raise ScenarioError(problems) from None
    problems += check_dimensions(doc, scenario)
    if problems:
        raise ScenarioError(problems)
    for name, series in (scenario.data or {}).items():
        place = doc.place(("data", name, "file"))
        if place is not None:
            series._path = str(Path(place.file).absolute().parent / series.file)
    return scenario


def _check_distribution_names(doc: Document) -> list[Problem]:
    """Pydantic's own message for an unknown union tag is cryptic; say it plainly first."""
    problems = []
    candidates: list[tuple[PathKey, Any]] = []
    params = doc.data.get("parameters")
    if isinstance(params, dict):
        candidates += [(("parameters", k), v) for k, v in params.items()]
    flows = doc.data.get("flows")
    if isinstance(flows, dict):
        candidates += [
            (("flows", k, "noise"), v.get("noise")) for k, v in flows.items() if isinstance(v, dict)
        ]
    for path, spec in candidates:
        if isinstance(spec, dict) and "dist" in spec and spec["dist"] not in DIST_NAMES:
            problems.append(
                Problem(
                    f"unknown distribution '{spec['dist']}'",
                    doc.place(path + ("dist",)),
                    dotted(path + ("dist",)),
                    did_you_mean(str(spec["dist"]), DIST_NAMES)
                    or f"use one of {', '.join(DIST_NAMES)}",
                )
            )
    return problems


def _data_path(loc: tuple[Any, ...], data: Any, kind: str) -> PathKey:
    """Drop the parts of a pydantic location that are union tags, not keys in the data."""
    path: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            path.append(part)
            node = node[part]
        elif i == len(loc) - 1 and kind in ("missing", "extra_forbidden"):
            path.append(part)  # a missing field or an unknown key: name it
            node = None
    return tuple(path)


def _model_for(path: PathKey) -> type[BaseModel] | None:
    """Which model a mapping at `path` is, to suggest its valid keys."""
    if len(path) == 0:
        return Scenario
    section = path[0]
    if len(path) == 2:
        models: dict[str, type[BaseModel]] = {
            "stocks": Stock,
            "flows": Flow,
            "events": Event,
            "outcomes": Outcome,
            "data": DataSeries,
        }
        return models.get(str(section))
    return None


def _get(data: Any, path: PathKey) -> Any:
    for part in path:
        data = data[part]
    return data


def _valid_keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _translate(exc: ValidationError, doc: Document) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[PathKey, str]] = set()
    errors = _merge_union_types(exc.errors(include_url=False), doc)
    for err in errors:
        kind = err["type"]
        path = _data_path(tuple(err["loc"]), doc.data, kind)
        hint = None
        if kind == "extra_forbidden":
            parent, key = path[:-1], str(path[-1])
            model = _model_for(parent)
            is_dist = (len(parent) == 2 and parent[0] == "parameters") or (
                len(parent) == 3 and parent[0] == "flows" and parent[2] == "noise"
            )
            if model is None and is_dist:
                spec = _get(doc.data, parent)
                dist = spec.get("dist", "fixed") if isinstance(spec, dict) else "fixed"
                model = REGISTRY.get(dist)
            message = f"unknown key '{key}'"
            if model is not None:
                hint = did_you_mean(key, _valid_keys(model)) or (
                    "valid keys: " + ", ".join(_valid_keys(model))
                )
            place = doc.place(path, key=True)
        elif kind == "missing":
            if _typo_for(path, errors, doc):
                continue  # the unknown key's "did you mean" says it better
            message = f"missing required field '{path[-1]}'"
            place = doc.place(path[:-1])
        elif kind == "union_tag_not_found":
            message = "a distribution needs `dist:` (or `value:` for a fixed number)"
            hint = "use one of " + ", ".join(DIST_NAMES)
            place = doc.place(path)
        else:
            message = _message(err)
            place = doc.place(path)
            if kind == "literal_error" and len(path) == 3 and path[::2] == ("stocks", "kind"):
                hint = did_you_mean(str(err.get("input")), STOCK_KINDS)
        if (path, message) in seen:
            continue
        seen.add((path, message))
        problems.append(Problem(message, place, dotted(path), hint))
    problems.sort(key=lambda p: (p.place.line, p.place.col) if p.place else (0, 0))
    return problems


def _merge_union_types(errors: list[Any], doc: Document) -> list[Any]:
    """A value failing every member of `float | str` is one problem: 'a number or a string'."""
    by_path: dict[PathKey, list[Any]] = {}
    for err in errors:
        if err["type"].endswith("_type"):
            by_path.setdefault(_data_path(tuple(err["loc"]), doc.data, err["type"]), []).append(err)
    out = []
    for err in errors:
        if not err["type"].endswith("_type"):
            out.append(err)
            continue
        group = by_path[_data_path(tuple(err["loc"]), doc.data, err["type"])]
        if len(group) == 1:
            out.append(err)
        elif err is group[0]:
            wanted = " or ".join(dict.fromkeys(_EXPECTED.get(e["type"], "?") for e in group))
            out.append({**err, "type": "union_type", "expected": wanted})
    return out


def _typo_for(path: PathKey, errors: list[Any], doc: Document) -> bool:
    """Whether an unknown key beside the missing field at `path` looks like a typo of it."""
    for err in errors:
        if err["type"] != "extra_forbidden":
            continue
        extra = _data_path(tuple(err["loc"]), doc.data, "extra_forbidden")
        if extra[:-1] == path[:-1] and did_you_mean(str(extra[-1]), [str(path[-1])]):
            return True
    return False


_EXPECTED = {
    "int_type": "a whole number",
    "float_type": "a number",
    "string_type": "a string",
    "dict_type": "a mapping",
    "list_type": "a list",
    "bool_type": "true or false",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_BOUNDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}


def _message(err: Any) -> str:
    kind = err["type"]
    value = err.get("input")
    if kind in ("finite_number",) or (isinstance(value, float) and not math.isfinite(value)):
        return f"{value} is not a finite number"
    shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    if isinstance(value, bool):
        shown = str(value).lower()  # as YAML wrote it
    if kind == "union_type":
        return f"expected {err['expected']}, got {shown}"
    if kind.endswith("_type") or kind in ("literal_error", "union_tag_invalid"):
        expected = _EXPECTED.get(kind)
        if (
            kind == "model_attributes_type"
            and len(err["loc"]) >= 2
            and (err["loc"][0] == "parameters" or err["loc"][-1] == "noise")
        ):
            expected = "a number or a distribution (a mapping with dist:)"
        if expected:
            return f"expected {expected}, got {shown}"
        if kind == "literal_error":
            return f"{shown} is not allowed: {err['ctx']['expected']}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        limit = err["ctx"][key]
        return f"must be {words} {limit:g}, got {shown}"
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg[0].lower() + msg[1:] if msg else msg


# -- dimensions ----------------------------------------------------------------------------
# An arrayed item carries `over:` (a dimension or a list of them); its values may be one
# number for every cell, a list per element, or a mapping by element name (sim.scenario.dims).
# Its cells are checked where `dimensions:` is known: `parse` (located) and `sim.model`.


class ArrayedParameter(BaseModel):
    """A parameter over dimensions: a distribution whose arguments may differ per cell.

    Its cells are scalar specs (`cells`), each validated by the distribution's own class,
    named `name[elem1,elem2]`; each draws from its own stream (sim.sampling.draws)."""

    model_config = ConfigDict(**{**_CONFIG, "extra": "allow"})
    over: str | list[str]
    dist: str = "fixed"
    unit: str | None = None
    source: str | None = None
    description: str | None = None

    @property
    def arguments(self) -> dict[str, Any]:
        """The distribution's arguments as written (a number, list or mapping each)."""
        return dict(self.model_extra or {})


class ArrayedState(_Spec):
    """A state value over dimensions: its starting value per cell (events change it)."""

    over: str | list[str]
    value: Number | list[Any] | dict[str, Any] = 0.0
    description: str | None = None


class ArrayedVariable(_Spec):
    """A variable declared over dimensions: its expression broadcast to every cell."""

    over: str | list[str]
    value: Expr
    unit: str | None = None
    description: str | None = None


def _parameter_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "arrayed" if "over" in value else "scalar"
    return "arrayed" if isinstance(value, ArrayedParameter) else "scalar"


if TYPE_CHECKING:
    AnyParameter = Distribution | ArrayedParameter
else:
    AnyParameter = Annotated[
        Union[  # noqa: UP007
            Annotated[AnyDistribution, Tag("scalar")], Annotated[ArrayedParameter, Tag("arrayed")]
        ],
        Discriminator(_parameter_kind),
    ]

Scenario.model_rebuild()


def dimensions_of(scenario: Scenario) -> dict[str, tuple[str, ...]]:
    """The scenario's dimensions, each with its elements, in declared order."""
    return {d: tuple(e) for d, e in (scenario.dimensions or {}).items()}


def parameter_cells(
    name: str, spec: ArrayedParameter, dimensions: Mapping[str, Sequence[str]]
) -> tuple[tuple[str, ...], dict[str, Distribution]]:
    """An arrayed parameter's dimensions (canonical) and its cells' scalar specs, by cell
    name, each validated by its distribution's class. Raises DimsError (its `at` the path
    below the parameter) or ValidationError (of one cell; `cell_problems` reads it)."""
    written = over_list(spec.over)
    dims = check_over(spec.over, dimensions)
    if spec.dist not in DIST_NAMES:
        raise DimsError(
            f"unknown distribution '{spec.dist}'",
            ("dist",),
            did_you_mean(spec.dist, DIST_NAMES) or f"use one of {', '.join(DIST_NAMES)}",
        )
    grids: dict[str, Any] = {}
    for key, value in spec.arguments.items():
        if is_arrayed_value(value):
            try:
                grids[key] = arrayed(value, written, dimensions, "parameter")
            except DimsError as exc:
                raise DimsError(exc.message, (key, *exc.at), exc.hint) from None
        else:
            grids[key] = value
    out: dict[str, Distribution] = {}
    adapter = _distribution_adapter()
    for index, elements in zip(
        np.ndindex(*shape(dims, dimensions)), cells(dims, dimensions), strict=True
    ):
        cell = {k: (float(v[index]) if isinstance(v, np.ndarray) else v) for k, v in grids.items()}
        body = {"dist": spec.dist, **cell, "unit": spec.unit, "source": spec.source}
        body = {k: v for k, v in body.items() if v is not None}
        try:
            out[cell_name(name, elements)] = adapter.validate_python(body)
        except ValidationError as exc:
            raise CellError(cell_name(name, elements), exc) from None
    return dims, out


class CellError(ValueError):
    """One cell of an arrayed parameter fails its distribution's checks."""

    def __init__(self, cell: str, error: ValidationError):
        super().__init__(cell)
        self.cell = cell
        self.error = error

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(path below the parameter, message) per problem."""
        out = []
        for err in self.error.errors(include_url=False):
            loc = [p for p in err["loc"] if p not in DIST_NAMES]
            out.append((tuple(loc), f"{self.cell}: {_message(err)}"))
        return out


@functools.lru_cache(maxsize=1)
def _distribution_adapter() -> TypeAdapter[Any]:
    return TypeAdapter(AnyDistribution)


def state_value(
    spec: float | ArrayedState, dimensions: Mapping[str, Sequence[str]]
) -> tuple[tuple[str, ...], float | np.ndarray]:
    """A state value's dimensions and starting value (an array over them, canonical)."""
    if not isinstance(spec, ArrayedState):
        return (), float(spec)
    dims = check_over(spec.over, dimensions)
    value = spec.value
    if is_arrayed_value(value):
        return dims, arrayed(value, over_list(spec.over), dimensions, "state value")
    return dims, np.full(shape(dims, dimensions), float(value))  # type: ignore[arg-type]


def check_dimensions(doc: Document, scenario: Scenario) -> list[Problem]:
    """`dimensions:` itself, and every arrayed parameter's and state value's cells, located."""
    problems: list[Problem] = []
    dimensions = dimensions_of(scenario)
    seen: dict[str, str] = {}
    for dim, elements in dimensions.items():
        path: PathKey = ("dimensions", dim)
        wrong = name_problem(dim)
        if wrong:
            problems.append(Problem(wrong, doc.place(path, key=True), dotted(path)))
        if not elements:
            problems.append(
                Problem("a dimension needs at least one element", doc.place(path), dotted(path))
            )
        if dim in seen:
            problems.append(
                Problem(
                    f"'{dim}' is already an element of dimension '{seen[dim]}'",
                    doc.place(path, key=True),
                    dotted(path),
                    "dimension and element names are one namespace",
                )
            )
        seen.setdefault(dim, dim)
        for i, e in enumerate(elements):
            wrong = name_problem(e)
            where = doc.place((*path, i))
            if wrong:
                problems.append(Problem(wrong, where, dotted((*path, i))))
            elif e in seen:
                other = seen[e]
                problems.append(
                    Problem(
                        f"'{e}' is already "
                        + ("a dimension" if other == e else f"an element of dimension '{other}'"),
                        where,
                        dotted((*path, i)),
                        "dimension and element names are one namespace: rename one",
                    )
                )
            else:
                seen[e] = dim
    if problems:
        return problems
    for name, spec in scenario.parameters.items():
        if not isinstance(spec, ArrayedParameter):
            continue
        base: PathKey = ("parameters", name)
        try:
            parameter_cells(name, spec, dimensions)
        except DimsError as exc:
            at = exc.at if exc.at[:1] != () else ()
            if "dimension '" in exc.message and not exc.at:
                at = ("over",)
            path = (*base, *at)
            problems.append(Problem(exc.message, doc.place(path), dotted(path), exc.hint))
        except CellError as exc:
            for at, message in exc.problems():
                path = (*base, *at)
                problems.append(Problem(message, doc.place(path), dotted(path)))
    for name, value in scenario.state.items():
        if not isinstance(value, ArrayedState):
            continue
        base = ("state", name)
        try:
            state_value(value, dimensions)
        except DimsError as exc:
            at = (
                ("over", *exc.at)
                if "dimension '" in exc.message and "unknown" in exc.message
                else ("value", *exc.at)
            )
            if "listed twice" in exc.message:
                at = ("over", *exc.at)
            path = (*base, *at)
            problems.append(Problem(exc.message, doc.place(path), dotted(path), exc.hint))
    return problems
