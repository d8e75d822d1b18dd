"""A validated scenario compiled into what the engines run: indexes, expressions, order.

`load(path)` is the front door: YAML -> Document -> Scenario -> Model, every problem reported
with its file, line and column. Both engines take a `Model` and never look at YAML again.
"""

from __future__ import annotations

import ast
import dataclasses
import graphlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sim.errors import Place, Problem, ScenarioError, did_you_mean, dotted
from sim.scenario import sources
from sim.scenario.data import read_series
from sim.scenario.dims import DimsError, cell_name, cell_names, check_over, expand
from sim.scenario.dims import arrayed as arrayed_value
from sim.scenario.dims import cells as dim_cells
from sim.scenario.expr import (
    MAX_NAME,
    RESERVED,
    Expr,
    ExprError,
    array_expr,
    compile_expr,
    name_problem,
    pick_cell,
)
from sim.scenario.loader import Document, PathKey, load_document
from sim.scenario.schema import (
    ArrayedParameter,
    ArrayedVariable,
    CellError,
    Distribution,
    Fixed,
    Scenario,
    dimensions_of,
    parameter_cells,
    parse,
    parse_month,
    state_value,
)

EventKind = Literal["tick", "expr", "never"]
RESULT_COLUMNS = ("run", "status", "bad_tick", "bad_name")
MAX_PROBLEMS = 50
BALANCE_HINT = "a stock that may go below zero (a debt, a net position) is kind: balance"


class _TooMany(Exception):
    """Enough problems to report; the rest would only bury them."""


_DATE = re.compile(r"^\s*\d{4}-\d{1,2}\s*$")


@dataclass(frozen=True)
class StockDef:
    name: str
    index: int
    unit: str
    kind: Literal["stock", "source", "sink", "balance"]
    initial: Expr
    dims: tuple[str, ...] = ()  # its dimensions (canonical order); () for one stock
    shape: tuple[int, ...] = ()
    start: int = -1  # its first row among every stock's cells (the kernel's matrix); -1: index

    @property
    def row(self) -> int:
        """Its first cell's row among every stock's cells."""
        return self.index if self.start < 0 else self.start

    @property
    def size(self) -> int:
        """How many cells it has (1 without dimensions)."""
        return math.prod(self.shape)

    @property
    def unlimited(self) -> bool:
        """Whether the stock gives whatever is asked, going below zero if need be (never
        rationed): a source or a balance."""
        return self.kind in ("source", "balance")


@dataclass(frozen=True)
class FlowDef:
    name: str
    index: int
    source: int  # stock index
    target: int
    unit: str
    rate: Expr
    delay: int
    noise: Distribution | None
    two_way: bool = False  # the rate's sign sets the direction; negative: from `to` to `from`
    dims: tuple[str, ...] = ()  # one flow per cell of these (canonical order)
    shape: tuple[int, ...] = ()
    start: int = -1  # its first row among every flow's cells; -1: its index
    source_dims: tuple[str, ...] = ()  # the dimensions of `from` (a subset of `dims`)
    target_dims: tuple[str, ...] = ()

    @property
    def row(self) -> int:
        return self.index if self.start < 0 else self.start

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class EventDef:
    """An event: when (a fixed tick, an expression of parameters, or never) and what it does."""

    name: str
    kind: EventKind
    at: float | Expr  # a float for "tick"; an Expr of parameters for "expr"
    sets: tuple[tuple[str, Expr], ...]
    scales: tuple[tuple[str, Expr], ...]
    # A target that is a cell or a slice of an arrayed name (`open[china]`): its name and
    # the index into its value (ints for the picked axes, slices for the others).
    targets: Mapping[str, tuple[str, tuple[Any, ...]]] = field(default_factory=dict)

    def target(self, text: str) -> tuple[str, tuple[Any, ...]]:
        return self.targets.get(text, (text, ()))


@dataclass(frozen=True)
class OutcomeDef:
    name: str
    expr: Expr
    stat: str
    unit: str

    @property
    def label(self) -> str:
        """How a run's non-finite culprit names this outcome."""
        return f"outcomes.{self.name}"

    @property
    def declared(self) -> str:
        """The outcome as the scenario declares it (a cell `x[food]` of an arrayed one: x)."""
        return self.name.split("[", 1)[0]


@dataclass(frozen=True)
class MemoryDef:
    """A built-in with memory at one call site: what `sim.engine.semantics.Memories` runs.

    `name` is the hidden name its output is read by; `label` names, for a non-finite run,
    the variable or flow whose expression holds the call."""

    name: str
    kind: str
    args: tuple[Expr, ...]
    label: str
    ticks: int = 0  # delay_fixed: the ring's length
    shape: tuple[int, ...] = ()  # its state per cell of its arguments' dimensions

    @property
    def needs(self) -> frozenset[str]:
        """The names its output needs when it starts (and, for a delay, every tick)."""
        arg = {"delay_fixed": (2,), "delay1": (0, 1), "delay3": (0, 1)}.get(self.kind, (0,))
        return frozenset().union(*(self.args[i].names for i in arg))


@dataclass(frozen=True)
class DataDef:
    """A data series: its value at every tick (it depends on time only), and its file."""

    name: str
    values: np.ndarray  # (ticks,), or (ticks, *shape) over dimensions
    file: str
    sha256: str
    dims: tuple[str, ...] = ()


@dataclass(frozen=True)
class Model:
    """Everything an engine needs, in the order the semantics contract evaluates it."""

    scenario: Scenario
    files: tuple[str, ...]
    parameters: Mapping[str, Distribution]
    state: Mapping[str, float | np.ndarray]  # an array over its dimensions if arrayed
    stocks: tuple[StockDef, ...]
    flows: tuple[FlowDef, ...]
    variables: tuple[tuple[str, Expr], ...]  # dependency order
    events: tuple[EventDef, ...]
    outcomes: tuple[OutcomeDef, ...]
    record: tuple[tuple[str, Expr], ...]
    place: Mapping[PathKey, Place] = field(default_factory=dict, repr=False)
    memories: tuple[MemoryDef, ...] = ()
    # Stage 2's order: variables and built-ins' outputs (hidden names), dependencies first.
    stage2: tuple[str, ...] = ()
    # What is computed before the first tick, dependencies first: every stock's initial
    # value, every built-in's starting state, and the variables these read.
    initial: tuple[str, ...] = ()
    data: tuple[DataDef, ...] = ()
    dimensions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The dimensions of every arrayed name: parameters, state, stocks, flows (by name, and
    # flow./cum./transit.NAME), variables, data series and built-ins' hidden outputs.
    arrays: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def dims(self, name: str) -> tuple[str, ...]:
        """A name's dimensions; () for a scalar."""
        return self.arrays.get(name, ())

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(len(self.dimensions[d]) for d in self.arrays.get(name, ()))

    def shape_of(self, dims: tuple[str, ...]) -> tuple[int, ...]:
        return tuple(len(self.dimensions[d]) for d in dims)

    def cells(self, name: str) -> list[str]:
        """Its cells' names (`name[elem1,elem2]`, row-major); [name] for a scalar."""
        return cell_names(name, self.dims(name), self.dimensions)

    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def step(self) -> float:
        """A tick's length in months."""
        return self.scenario.tick

    @property
    def ticks(self) -> int:
        return round(self.scenario.months / self.step)

    def time(self, tick: int) -> float:
        """t at a tick: months from the start."""
        return float(tick) * self.step

    @property
    def sampled(self) -> list[str]:
        return [n for n, spec in self.parameters.items() if not isinstance(spec, Fixed)]

    @property
    def noises(self) -> dict[str, Distribution]:
        """Each noisy flow cell's noise (its own stream: `imports[china,food]`)."""
        return {
            cell: f.noise for f in self.flows if f.noise is not None for cell in self.cells(f.name)
        }

    @property
    def units(self) -> list[str]:
        return sorted({s.unit for s in self.stocks})

    def stock(self, name: str) -> StockDef:
        return next(s for s in self.stocks if s.name == name)

    def calendar(self, t: int) -> tuple[int, int]:
        """(year, month) of tick t: the month its time falls in (a tick of a quarter month
        shares its month with three others)."""
        year, month = self.scenario.start_year_month
        elapsed = t if self.step == 1 else math.floor(t * self.step + 1e-9)
        months = year * 12 + (month - 1) + elapsed
        return months // 12, months % 12 + 1

    def date(self, t: float) -> str:
        """The year-month of tick t (fractional: the tick it falls in)."""
        year, month = self.calendar(math.floor(t))
        return f"{year:04d}-{month:02d}"

    def date_at(self, months: float) -> str:
        """The year-month at a time given in months from the start."""
        return self.date(months / self.step)


def load(path: str | Path) -> Model:
    """Load, validate and compile a scenario file; raise ScenarioError listing every problem."""
    doc = load_document(path)
    return compile_scenario(parse(doc), doc)


def compile_scenario(scenario: Scenario, doc: Document | None = None) -> Model:
    """Check cross-references and compile every expression; collect all problems at once."""
    return _Compiler(scenario, doc).run()


class _Compiler:
    def __init__(self, scenario: Scenario, doc: Document | None):
        self.sc = scenario
        self.doc = doc
        self.problems: list[Problem] = []
        self.stock_initials: dict[str, Expr] = {}
        self.compiled_variables: dict[str, Expr] = {}
        self.calls: dict[str, MemoryDef] = {}
        self.dimensions = dimensions_of(scenario)
        self.arrays: dict[str, tuple[str, ...]] = {}  # every arrayed name's dimensions
        self.parameter_specs: dict[str, Distribution] = {}  # arrayed ones by cell
        self.state_values: dict[str, float | np.ndarray] = {}

    # -- reporting ---------------------------------------------------------------------
    def where(self, path: PathKey, key: bool = False) -> Place | None:
        return self.doc.place(path, key=key) if self.doc else None

    def problem(
        self, path: PathKey, message: str, hint: str | None = None, key: bool = False
    ) -> None:
        self.add(Problem(message, self.where(path, key), dotted(path), hint))

    def add(self, problem: Problem) -> None:
        self.problems.append(problem)
        if len(self.problems) >= MAX_PROBLEMS:
            raise _TooMany

    def expr(
        self,
        path: PathKey,
        text: str | float,
        names: Mapping[str, str],
        calendar: bool = True,
        flows: bool = True,
        memory: bool = False,
    ) -> Expr | None:
        try:
            expr = compile_expr(
                text,
                names,
                frozenset(self.sc.flows) if flows else frozenset(),
                calendar=calendar,
                label=dotted(path),
                step=self.sc.tick,
                memory=memory,
                dims=self.arrays,
                dimensions=self.dimensions,
            )
        except ExprError as exc:
            place = self.where(path)
            if place is not None and isinstance(text, str):
                place = Place(place.file, place.line, place.col + exc.offset)
            self.add(Problem(exc.message, place, dotted(path), exc.hint))
            return None
        if expr.constant is not None and not math.isfinite(expr.constant):
            # A constant that is no number would make every run non-finite: refuse it now.
            self.problem(
                path,
                f"'{expr.text}' is {expr.constant} (not a finite number) whatever the run",
                hint="check for a division by zero, log or sqrt of zero or less, or an overflow",
            )
            return None
        return expr

    # -- the compile -------------------------------------------------------------------
    def run(self) -> Model:
        try:
            return self.compile()
        except _TooMany:
            self.problems.append(
                Problem(f"stopped after {MAX_PROBLEMS} problems; fix these and validate again")
            )
            raise ScenarioError(self.ordered()) from None

    def file_rank(self, path: PathKey) -> int:
        """0 for the user's own file (last in the extends chain), growing towards the base."""
        place = self.where(path, key=True)
        files = list(self.doc.files) if self.doc else []
        if place is None or place.file not in files:
            return len(files)
        return len(files) - 1 - files.index(place.file)

    def ordered(self) -> list[Problem]:
        """Problems in the user's file first (the last of the extends chain), then by place."""
        files = list(self.doc.files) if self.doc else []

        def key(p: Problem) -> tuple[int, int, int]:
            if p.place is None:
                return (len(files) + 1, 0, 0)
            rank = (
                len(files) - 1 - files.index(p.place.file) if p.place.file in files else len(files)
            )
            return (rank, p.place.line, p.place.col)

        return sorted(self.problems, key=key)

    def compile(self) -> Model:
        sc = self.sc
        self.check_names()
        params = {n: "parameter" for n in sc.parameters}
        state = {n: "state" for n in sc.state}
        stocks = {n: "stock" for n in sc.stocks}
        variables = {n: "variable" for n in sc.variables}
        data = {n: "data series" for n in sc.data or {}}
        everything = {**params, **state, **stocks, **variables, **data}

        self.check_distributions()
        self.check_step()
        self.declare()
        data_defs = self.compile_data()
        # Variables first: a stock's initial value may read one, and must know its dimensions.
        var_defs = self.compile_variables(everything)
        stock_defs = self.compile_stocks({**params, **state, **stocks, **variables, **data})
        flow_defs = self.compile_flows(everything)
        event_defs = self.compile_events(params, {**params, **state, **stocks, **data})
        outcome_defs = self.compile_outcomes(everything)
        record_defs = self.compile_record(everything)
        memories = self.memories(flow_defs)
        stage2, initial = self.order(memories)
        by_name = dict(var_defs)
        var_defs = [(n, by_name[n]) for n in stage2 if n in by_name]
        if self.doc is not None:  # citations are checked against the file the scenario names
            for problem in sources.problems(sc, self.doc.places):
                self.add(problem)
        if self.problems:
            raise ScenarioError(self.ordered())
        return Model(
            scenario=sc,
            files=tuple(self.doc.files) if self.doc else (),
            parameters=self.parameter_specs,
            state=self.state_values,
            stocks=tuple(stock_defs),
            flows=tuple(flow_defs),
            variables=tuple(var_defs),
            events=tuple(event_defs),
            outcomes=tuple(outcome_defs),
            record=tuple(record_defs),
            place=dict(self.doc.places) if self.doc else {},
            memories=tuple(memories),
            stage2=tuple(stage2),
            initial=tuple(initial),
            data=tuple(data_defs),
            dimensions=self.dimensions,
            arrays=dict(self.arrays),
        )

    def check_names(self) -> None:
        seen: dict[str, str] = {}
        taken = {d: "a dimension" for d in self.dimensions}
        taken |= {
            e: f"an element of dimension '{d}'" for d, es in self.dimensions.items() for e in es
        }
        for d in self.dimensions:
            if d in RESERVED:
                self.problem(
                    ("dimensions", d), f"'{d}' is reserved by the expression language", key=True
                )
        for section in ("parameters", "state", "variables", "stocks", "flows", "data"):
            for name in getattr(self.sc, section) or {}:
                path: PathKey = (section, name)
                wrong = name_problem(name)
                if wrong:
                    self.problem(path, wrong, key=True)
                elif name in RESERVED:
                    self.problem(path, f"'{name}' is reserved by the expression language", key=True)
                elif name in taken:
                    self.problem(
                        path,
                        f"'{name}' is already {taken[name]}",
                        "names, dimensions and elements are one namespace: rename one",
                        key=True,
                    )
                if name in seen:
                    other: PathKey = (seen[name], name)
                    # Point at the definition in the later file of the extends chain: the
                    # user's edit, most likely, rather than the base it clashes with.
                    if self.file_rank(other) < self.file_rank(path):
                        path, other = other, path
                    where = self.where(other, key=True)
                    self.problem(
                        path,
                        f"'{name}' is already defined in {other[0]}"
                        + (f" at {where}" if where else ""),
                        "names are one namespace: rename one",
                        key=True,
                    )
                else:
                    seen[name] = section

    # -- dimensions ----------------------------------------------------------------------
    def declare(self) -> None:
        """Every arrayed name's dimensions, arrayed parameters' cells and state values."""
        sc, dimensions = self.sc, self.dimensions
        for name, spec in sc.parameters.items():
            if not isinstance(spec, ArrayedParameter):
                self.parameter_specs[name] = spec
                continue
            try:
                dims, cells = parameter_cells(name, spec, dimensions)
            except DimsError as exc:  # parse() tells these with their places; here as a net
                self.problem(("parameters", name, *exc.at), exc.message, exc.hint)
                continue
            except CellError as exc:
                for at, message in exc.problems():
                    self.problem(("parameters", name, *at), message)
                continue
            self.arrays[name] = dims
            self.parameter_specs.update(cells)
        for name, value in sc.state.items():
            try:
                dims, start = state_value(value, dimensions)
            except DimsError as exc:
                self.problem(("state", name, *exc.at), exc.message, exc.hint)
                continue
            if dims:
                self.arrays[name] = dims
            self.state_values[name] = start
        sections: list[tuple[str, Mapping[str, Any]]] = [
            ("stocks", sc.stocks),
            ("flows", sc.flows),
            ("data", sc.data or {}),
        ]
        for section, items in sections:
            for name, item in items.items():
                if item.over is None:
                    continue
                found = self.over(section, name, item.over)
                if found is None:
                    continue
                self.arrays[name] = found
                if section == "flows":
                    for prefix in ("flow", "cum", "transit"):
                        self.arrays[f"{prefix}.{name}"] = found

    def over(self, section: str, name: str, over: str | list[str]) -> tuple[str, ...] | None:
        """An item's `over:` in canonical order, or None (told) if it names no dimension."""
        try:
            return check_over(over, self.dimensions)
        except DimsError as exc:
            self.problem((section, name, "over", *exc.at), exc.message, exc.hint)
            return None

    def fits(self, path: PathKey, expr: Expr, want: tuple[str, ...], what: str, owner: str) -> bool:
        """Whether an expression's dimensions fit where it is used (a subset of `want`);
        a located problem naming both sets if not."""
        extra = [d for d in expr.dims if d not in want]
        if not extra:
            return True
        where = f"{owner} is over ({', '.join(want)})" if want else f"{owner} has no dimensions"
        self.problem(
            path,
            f"{what} is over ({', '.join(expr.dims)}) but {where}",
            f"reduce {', '.join(extra)} (sum(x, {extra[0]}), mean, min, max) or pick an "
            f"element (x[{self.dimensions[extra[0]][0]}])",
        )
        return False

    def arrayed_initial(self, path: PathKey, value: Any, written: list[str]) -> np.ndarray | None:
        try:
            return arrayed_value(value, written, self.dimensions, "initial value")
        except DimsError as exc:
            self.problem((*path, *exc.at), exc.message, exc.hint)
            return None

    def check_distributions(self) -> None:
        for name, spec in self.sc.parameters.items():
            if not isinstance(spec, Fixed):
                continue
            if not math.isfinite(spec.value):
                self.problem(("parameters", name), "not a finite number")

    def check_step(self) -> None:
        """Ticks of `step` months must add up to the horizon exactly."""
        step, months = self.sc.tick, self.sc.months
        ticks = round(months / step)
        if ticks < 1 or abs(ticks * step - months) > 1e-9 * months:
            self.problem(
                ("step",),
                f"{months} months is not a whole number of ticks of {step:g} months",
                "choose a step that divides the horizon, like 1, 0.5, 0.25 or 1/32 (0.03125)",
            )
        elif ticks > 1_000_000:
            self.problem(("step",), f"{ticks:,} ticks; at most 1,000,000")

    def compile_data(self) -> list[DataDef]:
        """Read each data series and precompute its value at every tick."""
        out = []
        step, months = self.sc.tick, self.sc.months
        ticks = max(1, round(months / step))
        for name, spec in (self.sc.data or {}).items():
            path: PathKey = ("data", name)
            dims = self.arrays.get(name, ())
            if spec.over is not None and not dims:
                continue  # its `over:` is told
            # An arrayed series reads a column per cell: name[elem] (or column[elem]).
            columns = cell_names(spec.column or name, dims, self.dimensions)
            values = []
            for column in columns:
                try:
                    series = read_series(
                        Path(spec.path),
                        column,
                        self.sc.start_year_month,
                        self.where(path + ("file",)),
                        dotted(path + ("file",)),
                    )
                except ScenarioError as exc:
                    for problem in exc.problems:
                        self.add(problem)
                    break
                last = (ticks - 1) * step
                if spec.extrapolate == "error" and (
                    series.months[0] > 0 or series.months[-1] < last
                ):
                    first, end = self.date_of(series.months[0]), self.date_of(series.months[-1])
                    self.problem(
                        path + ("extrapolate",),
                        f"the data{' of ' + column if dims else ''} cover {first} to {end}, "
                        f"not the horizon {self.date_of(0)} to {self.date_of(last)}",
                        "extend the file, or drop `extrapolate: error` to hold the ends flat",
                    )
                    break
                values.append(series.at_ticks(ticks, step))
            else:
                shaped = np.stack(values, axis=1).reshape((ticks, *self.shape_of(dims)))
                held = shaped if dims else values[0]
                out.append(DataDef(name, held, series.file, series.sha256, dims))
        return out

    def shape_of(self, dims: tuple[str, ...]) -> tuple[int, ...]:
        return tuple(len(self.dimensions[d]) for d in dims)

    def date_of(self, months: float) -> str:
        year, month = self.sc.start_year_month
        total = year * 12 + (month - 1) + math.floor(months + 1e-9)
        return f"{total // 12:04d}-{total % 12 + 1:02d}"

    def compile_stocks(self, names: Mapping[str, str]) -> list[StockDef]:
        out = []
        row = 0
        for i, (name, stock) in enumerate(self.sc.stocks.items()):
            path: PathKey = ("stocks", name, "initial")
            dims = self.arrays.get(name, ())
            shape = self.shape_of(dims)
            start, row = row, row + math.prod(shape)
            if stock.over is not None and not dims:
                continue  # its `over:` is told
            may_owe = stock.kind in ("source", "balance")  # may go below zero, so start there
            initial: Expr | None
            if isinstance(stock.initial, list | dict):
                if not dims:
                    self.problem(
                        path,
                        "a list or mapping gives a value per cell, but the stock has no over:",
                    )
                    continue
                grid = self.arrayed_initial(path, stock.initial, over_written(stock.over))
                if grid is None:
                    continue
                if grid.min() < 0 and not may_owe:
                    where = cell_names(name, dims, self.dimensions)[int(np.argmin(grid))]
                    self.problem(
                        path,
                        f"initial amount is negative ({grid.min():g}) in {where}",
                        BALANCE_HINT,
                    )
                initial = array_expr(str(stock.initial), grid, dims)
            else:
                initial = self.expr(path, stock.initial, names, calendar=False, flows=False)
                if initial is None:
                    continue
                if not self.fits(path, initial, dims, "the initial value", f"stock {name}"):
                    continue
                initial = aligned(initial, dims)
            if initial.constant is not None and initial.constant < 0 and not may_owe:
                self.problem(
                    path,
                    f"initial amount is negative ({initial.constant:g})",
                    BALANCE_HINT,
                )
            self.stock_initials[name] = initial
            out.append(StockDef(name, i, stock.unit, stock.kind, initial, dims, shape, start))
        return out

    def compile_flows(self, names: Mapping[str, str]) -> list[FlowDef]:
        out = []
        index = {n: i for i, n in enumerate(self.sc.stocks)}
        row = 0
        for i, (name, flow) in enumerate(self.sc.flows.items()):
            path: PathKey = ("flows", name)
            fdims = self.arrays.get(name, ())
            start, row = row, row + math.prod(self.shape_of(fdims))
            if flow.over is not None and not fdims:
                continue  # its `over:` is told
            ok = True
            ends: dict[str, tuple[str, tuple[str, ...]]] = {}
            for end, written in (("from", flow.from_), ("to", flow.to)):
                found = self.end(path + (end,), written, fdims, name)
                if found is None:
                    ok = False
                    continue
                ref, edims = found
                ends[end] = (ref, edims)
                if ref not in self.sc.stocks:
                    gone = self.doc.deleted.get(("stocks", ref)) if self.doc else None
                    hint = (
                        f"'{ref}' was deleted (set to null) at {gone}"
                        if gone
                        else did_you_mean(ref, self.sc.stocks) or _list("stocks", self.sc.stocks)
                    )
                    self.problem(path + (end,), f"unknown stock '{ref}'", hint)
                    ok = False
            rate = self.expr(path + ("rate",), flow.rate, names, memory=True)
            if rate is not None and not self.fits(
                path + ("rate",), rate, fdims, "the rate", f"flow {name}"
            ):
                rate = None
            if rate is not None:
                rate = aligned(rate, fdims)
            delay = round(flow.delay / self.sc.tick)
            if abs(delay * self.sc.tick - flow.delay) > 1e-9 * max(1.0, flow.delay):
                self.problem(
                    path + ("delay",),
                    f"a delay of {flow.delay:g} months is not a whole number of ticks "
                    f"(step {self.sc.tick:g})",
                )
                ok = False
            if flow.noise is not None:
                low, _ = flow.noise.support()
                if low < 0:
                    self.problem(
                        path + ("noise",),
                        f"noise can be negative (down to {low:g}); a multiplier must be >= 0",
                        "use lognormal, or a distribution with low >= 0",
                    )
            if not ok:
                continue
            (from_, from_dims), (to, to_dims) = ends["from"], ends["to"]
            src, dst = self.sc.stocks[from_], self.sc.stocks[to]
            if src.unit != dst.unit:
                self.problem(
                    path,
                    f"unit mismatch: '{from_}' holds {src.unit} but '{to}' holds {dst.unit}",
                    "an exchange across units is two flows, one each way, linked by flow.NAME",
                )
                continue
            if flow.two_way and not self.check_two_way(path, from_, to, flow.delay):
                continue
            if src.kind == "sink":
                self.problem(path + ("from",), f"'{from_}' is a sink; sinks only receive")
                continue
            if dst.kind == "source":
                self.problem(path + ("to",), f"'{to}' is a source; sources only give")
                continue
            if from_ == to:
                self.problem(path, "a flow must join two different stocks")
                continue
            if rate is None:
                continue
            out.append(
                FlowDef(
                    name,
                    i,
                    index[from_],
                    index[to],
                    src.unit,
                    rate,
                    delay,
                    flow.noise,
                    flow.two_way,
                    fdims,
                    self.shape_of(fdims),
                    start,
                    from_dims,
                    to_dims,
                )
            )
        return out

    def end(
        self, path: PathKey, written: str, fdims: tuple[str, ...], flow: str
    ) -> tuple[str, tuple[str, ...]] | None:
        """A flow's `from:` or `to:`: the stock, and its dimensions (those of the flow that
        index it). `stock[dim1, dim2]` names them; a bare name means the stock's own, which
        must be among the flow's (none: every cell of the flow takes from or gives to it)."""
        text = written.strip()
        listed: list[str] | None = None
        if text.endswith("]") and "[" in text:
            text, inner = text[:-1].split("[", 1)
            text = text.strip()
            listed = [p.strip() for p in inner.split(",")]
        if text not in self.sc.stocks:
            return text, ()  # an unknown stock: told by the caller
        sdims = self.arrays.get(text, ())
        shown = f"({', '.join(fdims)})" if fdims else "no dimensions"
        if listed is not None:
            for d in listed:
                if d not in self.dimensions:
                    element = next((k for k, es in self.dimensions.items() if d in es), None)
                    hint = (
                        f"'{d}' is an element of '{element}'; an end names dimensions"
                        if element
                        else did_you_mean(d, self.dimensions) or f"flow {flow} is over {shown}"
                    )
                    self.problem(path, f"unknown dimension '{d}' in '{written}'", hint)
                    return None
            if sorted(listed) != sorted(sdims):
                self.problem(
                    path,
                    f"'{written}' names ({', '.join(listed)}) but stock {text} is over "
                    f"({', '.join(sdims)})"
                    if sdims
                    else f"stock {text} has no dimensions",
                    f"write {text}[{', '.join(sdims)}]" if sdims else f"write {text}",
                )
                return None
        missing = [d for d in sdims if d not in fdims]
        if missing:
            self.problem(
                path,
                f"stock {text} is over ({', '.join(sdims)}) but flow {flow} is over {shown}",
                f"add {', '.join(missing)} to the flow's over:, or flow from/to a stock "
                "over the flow's dimensions",
            )
            return None
        return text, sdims

    def check_two_way(self, path: PathKey, source: str, target: str, delay: float) -> bool:
        """A two-way flow joins two stocks that can both give and receive, and moves its
        amount within the tick; whether it does, each problem reported at its key."""
        ok = True
        for end, ref in (("from", source), ("to", target)):
            kind = self.sc.stocks[ref].kind
            if kind in ("source", "sink"):
                does = "only gives" if kind == "source" else "only receives"
                self.problem(
                    path + (end,),
                    f"'{ref}' is a {kind}, which {does}; a two-way flow gives and receives at "
                    "both ends",
                    "join two ordinary stocks or balances (kind: balance may go below zero), "
                    "or drop two_way",
                )
                ok = False
        if delay:
            # A delayed amount would be under way in either direction at once: transit.NAME
            # could not be both the amount held in transit and its direction.
            self.problem(
                path + ("delay",),
                "a two-way flow can't have a delay",
                "write two one-way flows with the delay, one each way, with rates "
                "max(0, x) and max(0, -x)",
            )
            ok = False
        return ok

    def compile_variables(self, names: Mapping[str, str]) -> list[tuple[str, Expr]]:
        compiled: dict[str, Expr] = {}
        # In dependency order (where there is one), so each knows the dimensions it reads.
        texts = {
            n: (v.value if isinstance(v, ArrayedVariable) else v)
            for n, v in self.sc.variables.items()
        }
        reads = {n: _names_in(t) & set(texts) - {n} for n, t in texts.items()}
        declared_order = list(texts)
        order = (
            declared_order if _cycle(reads, declared_order) else _stable_topo(reads, declared_order)
        )
        for name in order:
            spec = self.sc.variables[name]
            path: PathKey = ("variables", name)
            if isinstance(spec, ArrayedVariable):
                path = path + ("value",)
            expr = self.expr(path, texts[name], names, memory=True)
            if expr is None:
                continue
            for m in expr.memories:
                self.arrays[m.name] = m.dims
            if isinstance(spec, ArrayedVariable):
                want = self.over("variables", name, spec.over)
                if want is None or not self.fits(
                    path, expr, want, "the expression", f"variable {name}"
                ):
                    continue
                expr = filled(expr, want, self.shape_of(want))
            if expr.dims:
                self.arrays[name] = expr.dims
            compiled[name] = expr
        compiled = {n: compiled[n] for n in declared_order if n in compiled}
        self.compiled_variables = compiled
        graph = {n: {d for d in e.names if d in self.sc.variables} for n, e in compiled.items()}
        try:
            order = list(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError as exc:
            cycle = exc.args[1]
            self.problem(
                ("variables", cycle[0]),
                "variables depend on each other in a cycle: " + " -> ".join(cycle),
                "break the cycle with a state value or a flow's last amount (flow.NAME)",
            )
            return []
        declared = list(self.sc.variables)
        # Stable: dependencies first, otherwise declared order.
        order = _stable_topo(graph, declared)
        return [(n, compiled[n]) for n in order if n in compiled]

    def memories(self, flows: Sequence[FlowDef]) -> list[MemoryDef]:
        """Every call site of a built-in with memory, in variables then flows, declared order."""
        held = [(f"variables.{n}", e) for n, e in self.compiled_variables.items()]
        held += [(f"flows.{f.name}", f.rate) for f in flows]
        out = []
        for label, expr in held:
            for m in expr.memories:
                args = tuple(aligned(a, m.dims) for a in m.args)
                if m.dims:
                    self.arrays[m.name] = m.dims
                out.append(MemoryDef(m.name, m.kind, args, label, m.ticks, self.shape_of(m.dims)))
        self.calls = {m.name: m for m in out}
        return out

    def shown(self, node: str) -> str:
        """A node of a dependency graph as a person reads it."""
        m = self.calls.get(node)
        if isinstance(m, MemoryDef):
            call = f"{m.kind}({', '.join(a.text for a in m.args)})"
            return f"{call} (in {m.label})"
        return node

    def order(self, memories: Sequence[MemoryDef]) -> tuple[list[str], list[str]]:
        """Stage 2's order (variables and built-ins' outputs) and the order of what is
        computed before the first tick; a cycle in either is a located problem."""
        variables = self.compiled_variables
        mems = {m.name: m for m in memories}
        inner = set(variables) | set(mems)
        stocks = set(self.sc.stocks)

        def deps(node: str, within: set[str]) -> set[str]:
            if node in mems:
                return set(mems[node].needs & within)
            if node in variables:
                return set(variables[node].names & within)
            initial = self.stock_initials.get(node)
            return set(initial.names & within) if initial is not None else set()

        if self.problems:  # a variable cycle is told already; expressions may be missing
            return list(variables), []
        graph = {n: deps(n, inner) for n in inner}
        declared = [*variables, *mems]
        cycle = _cycle(graph, declared)
        if cycle:
            self.cycle(cycle, "variables and built-ins depend on each other in a cycle")
            return [], []
        stage2 = _stable_topo(graph, declared)
        everything = inner | stocks
        full = {n: deps(n, everything) for n in everything}
        needed: set[str] = set()
        todo = [*self.sc.stocks, *mems]
        while todo:
            node = todo.pop()
            if node not in needed:
                needed.add(node)
                todo += full.get(node, set())
        graph = {n: full[n] & needed for n in needed if n in full}
        cycle = _cycle(graph, [*self.sc.stocks, *variables, *mems])
        if cycle:
            self.cycle(cycle, "initial values depend on each other in a cycle")
            return stage2, []
        return stage2, _stable_topo(graph, [*self.sc.stocks, *variables, *mems])

    def cycle(self, cycle: list[str], what: str) -> None:
        first = next((n for n in cycle if n in self.sc.stocks), None)
        first = first or next((n for n in cycle if n in self.sc.variables), None)
        mem = next((self.calls[n] for n in cycle if n in self.calls), None)
        if first in self.sc.stocks:
            path: PathKey = ("stocks", first, "initial")
        elif first is not None:
            path = ("variables", first)
        elif isinstance(mem, MemoryDef):
            path = tuple(mem.label.split(".", 1))
        else:
            path = ()
        hint = (
            "an initial value is computed once, before the first tick: start one of them "
            "from a number or a parameter"
            if first in self.sc.stocks
            else "a built-in starts from its input's first value: break the cycle with a "
            "state value, a flow's last amount (flow.NAME) or delay_fixed(x, T, init), "
            "whose start is given"
        )
        self.problem(path, f"{what}: " + " -> ".join(self.shown(n) for n in cycle), hint)

    def compile_events(
        self, params: Mapping[str, str], values: Mapping[str, str]
    ) -> list[EventDef]:
        out = []
        for name, event in self.sc.events.items():
            path: PathKey = ("events", name)
            if len(name) > MAX_NAME:  # events are named in traces, not in expressions
                too_long = f"a name of {len(name):,} characters is too long (at most {MAX_NAME})"
                self.problem(path, too_long, key=True)
            kind: EventKind
            at: float | Expr | None
            if isinstance(event.at, str) and event.at.strip() == "never":
                kind, at = "never", math.inf
            elif isinstance(event.at, str) and _DATE.match(event.at):
                try:
                    year, month = parse_month(event.at)
                except ValueError as exc:
                    self.problem(path + ("at",), str(exc))
                    continue
                y0, m0 = self.sc.start_year_month
                kind, at = "tick", float((year - y0) * 12 + (month - m0))
            elif isinstance(event.at, int | float):
                kind, at = "tick", float(event.at)
            else:
                at = self.expr(path + ("at",), event.at, params, calendar=False, flows=False)
                if at is not None and not self.fits(
                    path + ("at",), at, (), "the time", f"event {name}'s time"
                ):
                    at = None
                kind = "expr"
                if at is not None and at.constant is not None:
                    kind, at = "tick", at.constant
            sets = []
            targets: dict[str, tuple[str, tuple[Any, ...]]] = {}
            for written, text in event.set.items():
                found = self.target(path + ("set", written), written, self.sc.state)
                if found is None:
                    continue
                target, index, rest = found
                if index:
                    targets[written] = (target, index)
                if target not in self.sc.state:
                    hint = did_you_mean(target, self.sc.state)
                    if target in self.sc.parameters:
                        hint = f"'{target}' is a parameter; use scale: to change it"
                    self.problem(
                        path + ("set", target),
                        f"unknown state '{target}'",
                        hint or _list("state", self.sc.state),
                        key=True,
                    )
                    continue
                expr = self.expr(path + ("set", written), text, values)
                if expr is not None and self.fits(
                    path + ("set", written), expr, rest, "the value", f"'{written}'"
                ):
                    sets.append((written, aligned(expr, rest)))
            scales = []
            for written, text in event.scale.items():
                found = self.target(path + ("scale", written), written, self.sc.parameters)
                if found is None:
                    continue
                target, index, rest = found
                if index:
                    targets[written] = (target, index)
                if target not in self.sc.parameters:
                    self.problem(
                        path + ("scale", target),
                        f"unknown parameter '{target}'",
                        did_you_mean(target, self.sc.parameters)
                        or _list("parameters", self.sc.parameters),
                        key=True,
                    )
                    continue
                expr = self.expr(path + ("scale", written), text, values)
                if expr is not None and self.fits(
                    path + ("scale", written), expr, rest, "the factor", f"'{written}'"
                ):
                    scales.append((written, aligned(expr, rest)))
            if at is None:
                continue
            out.append(EventDef(name, kind, at, tuple(sets), tuple(scales), targets))
        return out

    def target(
        self, path: PathKey, written: str, known: Mapping[str, Any]
    ) -> tuple[str, tuple[Any, ...], tuple[str, ...]] | None:
        """An event's target: a name (the whole array), or `name[elem, ...]` (one element
        of some of its dimensions). Its name, the index into its value (ints for picked
        axes, slices for the rest; () for the whole) and the dimensions left."""
        text = written.strip()
        if not (text.endswith("]") and "[" in text):
            return text, (), self.arrays.get(text, ())
        base, inner = text[:-1].split("[", 1)
        base = base.strip()
        if base not in known:
            return base, (), ()  # unknown: told by the caller
        dims = self.arrays.get(base, ())
        if not dims:
            self.problem(
                path, f"'{base}' is not over any dimension, so it has no elements", key=True
            )
            return None
        index: list[Any] = [slice(None)] * len(dims)
        for elem in (p.strip() for p in inner.split(",")):
            dim = next((d for d in dims if elem in self.dimensions[d]), None)
            if dim is None:
                known_elems = [e for d in dims for e in self.dimensions[d]]
                self.problem(
                    path,
                    f"unknown element '{elem}' of '{base}', which is over ({', '.join(dims)})",
                    did_you_mean(elem, known_elems),
                    key=True,
                )
                return None
            index[dims.index(dim)] = list(self.dimensions[dim]).index(elem)
        rest = tuple(d for d, i in zip(dims, index, strict=True) if isinstance(i, slice))
        return base, tuple(index), rest

    def compile_outcomes(self, names: Mapping[str, str]) -> list[OutcomeDef]:
        out = []
        for name, outcome in self.sc.outcomes.items():
            path: PathKey = ("outcomes", name)
            wrong = name_problem(name)
            if wrong:
                self.problem(path, wrong, key=True)
            elif name in self.sc.parameters or name in RESULT_COLUMNS:
                self.problem(
                    path,
                    f"outcome '{name}' would share a column with "
                    + ("a parameter" if name in self.sc.parameters else "the results' own column")
                    + " in runs.parquet",
                    "rename the outcome",
                    key=True,
                )
            expr = self.expr(path + ("of",), outcome.of, names)
            if expr is None:
                continue
            unit = outcome.unit
            of = outcome.of.strip() if isinstance(outcome.of, str) else None
            if of in self.sc.stocks and outcome.stat not in ("count", "first"):
                stock_unit = self.sc.stocks[of].unit
                if unit is not None and unit != stock_unit:
                    self.problem(
                        path + ("unit",),
                        f"unit mismatch: '{of}' holds {stock_unit}, not {unit}",
                    )
                unit = unit or stock_unit
            if outcome.stat in ("count", "first"):
                unit = unit or "month"
            for cell, cell_expr in self.per_cell(name, expr):
                out.append(OutcomeDef(cell, cell_expr, outcome.stat, unit or "1"))
        return out

    def per_cell(self, name: str, expr: Expr) -> list[tuple[str, Expr]]:
        """An arrayed outcome or record is one per cell, named name[elem1,elem2]; each
        reads its cell of the one arrayed expression (evaluated once per tick for all)."""
        if not expr.dims:
            return [(name, expr)]
        shape = self.shape_of(expr.dims)
        return [
            (cell_name(name, elements), pick_cell(expr, index, elements))
            for index, elements in zip(
                np.ndindex(*shape), dim_cells(expr.dims, self.dimensions), strict=True
            )
        ]

    def compile_record(self, names: Mapping[str, str]) -> list[tuple[str, Expr]]:
        out = []
        seen = set()
        for i, text in enumerate(self.sc.record):
            if text in seen:
                self.problem(("record", i), f"'{text}' is recorded twice")
                continue
            seen.add(text)
            expr = self.expr(("record", i), text, names)
            if expr is not None:
                out += self.per_cell(text, expr)
        return out


def _cycle(graph: Mapping[str, set[str]], declared: Sequence[str]) -> list[str]:
    """A cycle of the graph, each node depending on the next, from its first declared node
    (which ends it again); [] when it has none. The same cycle on every run of Python."""
    rank = {n: i for i, n in enumerate(declared)}
    ordered = {n: sorted(graph[n], key=lambda d: (rank.get(d, len(rank)), d)) for n in graph}
    try:
        graphlib.TopologicalSorter(ordered).prepare()
    except graphlib.CycleError as exc:
        ring = list(reversed(exc.args[1]))[:-1]
        first = min(range(len(ring)), key=lambda i: (rank.get(ring[i], len(rank)), ring[i]))
        ring = ring[first:] + ring[:first]
        return [*ring, ring[0]]
    return []


def _stable_topo(graph: Mapping[str, set[str]], declared: list[str]) -> list[str]:
    """Dependencies first; among the ready ones, the declared order (so output is stable)."""
    sorter = graphlib.TopologicalSorter(graph)
    sorter.prepare()
    rank = {n: i for i, n in enumerate(declared)}
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=lambda n: rank.get(n, len(rank)))
        for node in ready:
            order.append(node)
            sorter.done(node)
    return order


def _list(what: str, names: Mapping[str, Any]) -> str:
    shown = ", ".join(list(names)[:12])
    return f"defined {what}: {shown}" if shown else f"no {what} are defined"


def check_outcomes(model: Model, names: Sequence[str]) -> None:
    """Refuse an empty list or an outcome the scenario doesn't define, naming the nearest."""
    known = [o.name for o in model.outcomes]
    if not names:
        raise ScenarioError.one("give at least one --outcome", hint=_some("outcomes", known))
    for name in names:
        if name not in known:
            raise ScenarioError.one(
                f"scenario '{model.name}' has no outcome '{name}'",
                hint=did_you_mean(name, known) or _some("outcomes", known),
            )


def _some(what: str, names: Sequence[str]) -> str:
    shown = ", ".join(list(names)[:12])
    more = f", … ({len(names)} in all)" if len(names) > 12 else ""
    return f"{what}: {shown}{more}"


# -- dimensions ------------------------------------------------------------------------------


def aligned(expr: Expr, want: tuple[str, ...]) -> Expr:
    """An expression whose value over `expr.dims` ⊆ `want` has an axis per dimension of
    `want` (size 1 where it lacks one), so it broadcasts into a value over `want`."""
    if not expr.dims or expr.dims == want:
        return expr
    inner, have = expr.fn, expr.dims

    def fn(ns: Mapping[str, Any]) -> Any:
        return expand(inner(ns), have, want)

    return dataclasses.replace(expr, fn=fn, dims=want)


def filled(expr: Expr, want: tuple[str, ...], shape: tuple[int, ...]) -> Expr:
    """An expression declared over `want` (a variable's `over:`): its value over every cell
    of `want`, whichever of them it reads (a read-only broadcast, no copy)."""
    if expr.dims == want:
        return expr
    inner, have = expr.fn, expr.dims

    def fn(ns: Mapping[str, Any]) -> Any:
        value = expand(inner(ns), have, want)
        runs = np.shape(value)[-1] if np.ndim(value) else 1
        return np.broadcast_to(value, (*shape, runs))

    return dataclasses.replace(expr, fn=fn, dims=want, constant=None)


def _names_in(text: Any) -> set[str]:
    """The plain names an expression's text mentions (its dependencies), or none if it
    doesn't parse (compiling it tells why)."""
    if not isinstance(text, str):
        return set()
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def over_written(over: str | list[str] | None) -> list[str]:
    """`over:` as written (its order: the outer dimension of a nested value first)."""
    if over is None:
        return []
    return [over] if isinstance(over, str) else list(over)
