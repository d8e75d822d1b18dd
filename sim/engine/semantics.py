"""What every engine must do the same way: the parts of DESIGN.md's tick written once.

An engine owns its state and its mechanism (the kernel holds every run of a block as numpy
rows and delays as ring buffers; the SimPy engine holds one run as floats and delays as
processes). What a tick *means* lives here, as functions over numpy arrays of runs, so an
engine with one run calls them on arrays of one:

- `fire_tick`: the tick at which an event due at a (possibly fractional) time takes effect;
- `calendar`: the names `t`, `month` and `year` at a tick, and each data series' value;
- `Memories`: how each built-in with memory (smooth, delay1, ...) starts, reads and advances;
- `ration`: what each outflow of a stock gets when the stock can't give all that is asked;
  `giving`, `asked`, `signed` and `received`: which flows take from a stock (a two-way flow
  takes from whichever end its sign says), and where a two-way flow's amount goes;
- `Outcomes`: the running statistics of outcomes (final, mean, min, max, sum, count, first);
- `NonFinite`: which runs went non-finite, first at which tick and at which name.

Before the first tick, stocks' initial values, built-ins' starting states and the variables
they read are computed in the model's `initial` order. The order of a tick is the contract's:
events, variables (and built-ins' outputs), requests, the built-ins' advance, rationing,
transfer, record. A tick is `model.step` months: t = k * step, and a flow moves rate * step. A run is non-finite from the first value in that order that is NaN or infinite: an
event's time (at the start), a variable, a flow's rate or actual amount, a stock, an outcome's
value; the culprit is named `events.X`, `variables.X`, `flows.X`, `stocks.X` or `outcomes.X`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from sim.errors import ScenarioError
from sim.model import BALANCE_HINT, FlowDef, MemoryDef, Model, OutcomeDef, StockDef
from sim.scenario.dims import Dims, cell_names, expand, fold_rows, to_front
from sim.scenario.expr import Expr

STATUS_OK = "ok"
STATUS_NONFINITE = "nonfinite"
STATUSES = (STATUS_OK, STATUS_NONFINITE)


@dataclass
class Block:
    """What a block of runs produced: outcomes per run, recorded series (ticks x runs), status."""

    outcomes: dict[str, np.ndarray]
    series: dict[str, np.ndarray]
    bad_tick: np.ndarray  # -1 where the run stayed finite
    bad_name: np.ndarray  # object array: the first non-finite name (see the module doc), or ""
    paths: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def status(self) -> np.ndarray:
        return np.where(self.bad_tick < 0, STATUS_OK, STATUS_NONFINITE)


# -- time -----------------------------------------------------------------------------------
def calendar(model: Model, t: int) -> dict[str, float]:
    """The names an expression reads at tick t that depend on time only: the calendar (`t` in
    months from the start) and each data series' value."""
    year, month = model.calendar(t)
    out = {"t": model.time(t), "month": float(month), "year": float(year)}
    for d in model.data:
        out[d.name] = d.values[t][..., np.newaxis] if d.dims else float(d.values[t])
    return out


def fire_tick(at: Any, step: float = 1.0) -> Any:
    """The tick at which an event scheduled at time `at` (months) takes effect: the first
    tick whose t >= at (ceil), >= 0."""
    return np.ceil(np.maximum(at, 0.0) / step)


def moved(request: np.ndarray, step: float) -> np.ndarray:
    """What a request (a rate per month) moves in a tick of `step` months, in place."""
    if step != 1:
        request *= step
    return request


# -- built-ins with memory ------------------------------------------------------------------
ORDER = {"smooth": 1, "smooth3": 3, "delay1": 1, "delay3": 3}


class Memories:
    """The state of every built-in with memory of a model, for n runs (1 in the SimPy engine).

    A built-in's output at tick k is its state at the start of tick k; its state then
    advances by one explicit Euler step of the model's step (Vensim's and PySD's
    integration) from its inputs as evaluated in tick k, after the requests and before
    rationing (so `flow.NAME` still reads the previous tick's amount):

    - smooth, smooth3 (Vensim SMOOTH, SMOOTH3): stages s_i, s_i' = (in_i - s_i) / (T/order),
      in_0 = x and in_i = s_(i-1); they start at x's first value; the output is the last;
    - delay1, delay3 (Vensim DELAY1, DELAY3, material delays): stages L_i holding what is in
      transit, out_i = L_i / (T/order), L_i' = in_i - out_i with in_0 = x and in_i =
      out_(i-1); each starts at x0 * T / order, so the output starts at x's first value;
    - delay_fixed(x, T, init) (Vensim DELAY FIXED): a ring of T/step ticks, x as it was T
      months ago, `init` (evaluated at the start) before that;
    - init(x) (Vensim INITIAL): x's value at the start, held.
    """

    def __init__(self, model: Model, n: int):
        self.m = model
        self.n = n
        self.state: dict[str, list[np.ndarray]] = {}

    def _arg(self, mem: MemoryDef, i: int, ns: Mapping[str, Any]) -> np.ndarray:
        return np.broadcast_to(mem.args[i](ns), (*mem.shape, self.n))

    def start(self, mem: MemoryDef, ns: Mapping[str, Any]) -> np.ndarray:
        """Set the starting state from `ns` (the values before the first tick); its output."""
        if mem.kind == "delay_fixed":
            first = self._arg(mem, 2, ns)
            self.state[mem.name] = [np.array(first) for _ in range(mem.ticks)]
        elif mem.kind in ("delay1", "delay3"):
            order = ORDER[mem.kind]
            stage = self._arg(mem, 0, ns) * self._arg(mem, 1, ns) / order
            self.state[mem.name] = [np.array(stage) for _ in range(order)]
        else:
            x = self._arg(mem, 0, ns)
            self.state[mem.name] = [np.array(x) for _ in range(ORDER.get(mem.kind, 1))]
        return self.output(mem, ns, 0)

    def output(self, mem: MemoryDef, ns: Mapping[str, Any], t: int) -> np.ndarray:
        """The output at tick t (a new array, never a view of the state)."""
        state = self.state[mem.name]
        if mem.kind == "delay_fixed":
            return np.array(state[t % mem.ticks])
        if mem.kind in ("delay1", "delay3"):
            return state[-1] / (self._arg(mem, 1, ns) / ORDER[mem.kind])
        return np.array(state[-1])

    def advance(self, t: int, ns: Mapping[str, Any]) -> None:
        """One step of every built-in from its inputs in tick t (all read before any moves)."""
        step = self.m.step
        reads = {"init": 0, "delay_fixed": 1}
        inputs = [
            [self._arg(mem, i, ns) for i in range(reads.get(mem.kind, 2))]
            for mem in self.m.memories
        ]
        for mem, args in zip(self.m.memories, inputs, strict=True):
            state = self.state[mem.name]
            if mem.kind == "delay_fixed":
                state[t % mem.ticks][...] = args[0]
            elif mem.kind in ("smooth", "smooth3"):
                x, tau = args[0], args[1] / ORDER[mem.kind]
                rates = [(target - s) / tau for target, s in zip([x, *state], state, strict=False)]
                for s, rate in zip(state, rates, strict=True):
                    s += rate * step
            elif mem.kind in ("delay1", "delay3"):
                x, tau = args[0], args[1] / ORDER[mem.kind]
                out = [s / tau for s in state]
                for s, arriving, leaving in zip(state, [x, *out], out, strict=False):
                    s += (arriving - leaving) * step


def below_zero(m: Model, s: StockDef, amount: float, where: str, run: int) -> ScenarioError:
    """The error for stock `s` starting at `amount` (< 0, or NaN) in `run` (cell `where`):
    only a source or a balance may start below zero."""
    shown = f" of {where}" if s.dims else ""
    return ScenarioError.one(
        f"initial amount{shown} is {amount:g} in run {run}; a stock can't start below zero",
        m.place.get(("stocks", s.name, "initial")),
        f"stocks.{s.name}.initial",
        BALANCE_HINT,
    )


# -- rationing ------------------------------------------------------------------------------
def outflow(requests: Sequence[np.ndarray]) -> np.ndarray:
    """What is asked of a stock: its outflows' requests summed in declared flow order."""
    if len(requests) == 1:
        return requests[0]
    out = requests[0] + requests[1]
    for r in requests[2:]:
        out += r
    return out


def ration(
    content: np.ndarray, requests: Sequence[np.ndarray], unlimited: bool
) -> tuple[list[np.ndarray] | None, np.ndarray | None]:
    """A stock giving to its outflows: what each flow gets, and the runs that were short.

    `content` is updated in place. A stock can't give more than it holds: where the requests
    exceed the content, every outflow is scaled by the same factor content / requested and
    the stock is left empty. A source or a balance is unlimited (it may go below zero). When
    no run is short, every flow gets what it asked (None, None)."""
    return ration_cells(content, requests, [()] * len(requests), (), unlimited)


def ration_cells(
    content: np.ndarray,
    requests: Sequence[np.ndarray],
    over: Sequence[Dims],
    dims: Dims,
    unlimited: bool,
) -> tuple[list[np.ndarray] | None, np.ndarray | None]:
    """`ration` per stock cell: `content` is a stock over `dims` (shape (*sizes, runs)), each
    request over its flow's dimensions `over[i]` ⊇ `dims`. What a stock cell is asked is the
    sum of every flow cell asking from it, in declared flow order and then in the flow's
    cell order (`pieces`); where a cell is short, every flow cell asking from it is scaled
    by that cell's factor content / requested."""
    out = asked_of(requests, over, dims)
    if unlimited or not (short := out > content).any():
        content -= out
        return None, None
    factor = content / out
    given = [
        np.where(expand(short, dims, have), r * expand(factor, dims, have), r)
        for r, have in zip(requests, over, strict=True)
    ]
    lost = short & (factor == 0) & (content > 0)
    if lost.any():
        # The share underflowed (a tiny stock asked for huge amounts): split what it holds
        # by each flow's part of the request instead, or the stock would vanish.
        given = [
            np.where(
                expand(lost, dims, have),
                r / expand(out, dims, have) * expand(content, dims, have),
                g,
            )
            for r, g, have in zip(requests, given, over, strict=True)
        ]
    content[...] = np.where(short, 0.0, content - out)
    return given, short


def asked_of(requests: Sequence[np.ndarray], over: Sequence[Dims], dims: Dims) -> np.ndarray:
    """What each cell of a stock over `dims` is asked: its flows' requests (each over its
    `over`) one after another, in declared flow order and each flow's cell order."""
    parts = [pieces(r, have, dims) for r, have in zip(requests, over, strict=True)]
    if all(p is None for p in parts):
        return outflow(requests)
    rows = [r[np.newaxis] if p is None else p for r, p in zip(requests, parts, strict=True)]
    shape = np.broadcast_shapes(*(row.shape[1:] for row in rows))
    stacked = np.concatenate([np.broadcast_to(row, (row.shape[0], *shape)) for row in rows])
    return fold_rows(np.add, stacked)


def pieces(amount: np.ndarray, have: Dims, dims: Dims) -> np.ndarray | None:
    """A flow's amount over `have` as the parts that reach (or leave) a stock over `dims`
    ⊆ `have`: None when the two agree (the amount is one part); otherwise (k, *cells of
    dims, runs), one part per element of the dimensions the stock lacks (row-major). Added
    one after another (`fold_rows`), as a stock cell receives them, in every engine."""
    extra = [i for i, d in enumerate(have) if d not in dims]
    if not extra:
        return None
    return to_front(np.asarray(amount), extra)


def deliver(stock: np.ndarray, amount: np.ndarray, have: Dims, dims: Dims) -> None:
    """Add a flow's amount (over `have`) into a stock over `dims`, in place: each stock cell
    receives its flow cells one after another (`pieces`)."""
    parts = pieces(amount, have, dims)
    if parts is None:
        stock += amount
        return
    stock[...] = fold_rows(np.add, np.concatenate([stock[np.newaxis], parts]))


def assemble(model: Model, values: Mapping[str, Any], runs: int) -> dict[str, np.ndarray]:
    """Each arrayed parameter's value, (*sizes, runs), from its cells' values (one column
    each, named `name[elem1,elem2]`, as drawn)."""
    out = {}
    for name, dims in model.arrays.items():
        cells = model.cells(name)
        if not dims or cells[0] not in values:
            continue
        stacked = np.stack(
            [np.broadcast_to(np.asarray(values[c], dtype=np.float64), (runs,)) for c in cells]
        )
        out[name] = stacked.reshape((*model.shape(name), runs))
    return out


def cell_labels(model: Model, label: str, dims: Dims) -> list[str]:
    """`label[elem1,elem2]` for each cell over `dims` (how a culprit names a cell)."""
    return cell_names(label, dims, model.dimensions)


# -- who gives: one-way and two-way flows ---------------------------------------------------
# A flow takes from a stock in one of three roles: "out", a one-way flow from it (its request
# is max(0, rate) x noise, never negative); "from", a two-way flow from it, which takes in the
# runs where its signed request is positive; "to", a two-way flow into it, which takes (the
# request's size) in the runs where the request is negative. A two-way flow is thus an outflow
# of both its ends, asking zero of the end it gives to: rationing sums and scales the stock's
# outflows in declared flow order as before, and adding a zero changes no sum.
Role = Literal["out", "from", "to"]


def giving(m: Model) -> list[tuple[StockDef, list[tuple[FlowDef, Role]]]]:
    """Each stock that some flow may take from, with those flows and their roles, in declared
    stock and flow order."""
    out = []
    for s in m.stocks:
        flows: list[tuple[FlowDef, Role]] = []
        for f in m.flows:
            if f.source == s.index:
                flows.append((f, "from" if f.two_way else "out"))
            elif f.two_way and f.target == s.index:
                flows.append((f, "to"))
        if flows:
            out.append((s, flows))
    return out


def asked(request: np.ndarray, role: Role) -> np.ndarray:
    """What a flow asks of a stock it takes from in `role`, from its (signed) request."""
    if role == "out":
        return request
    if role == "from":
        return np.maximum(request, 0.0)
    return np.maximum(-request, 0.0)


def signed(from_gave: np.ndarray, to_gave: np.ndarray) -> np.ndarray:
    """A two-way flow's actual amount, positive from `from` to `to`: what its `from` end gave
    minus what its `to` end gave (in every run one of the two is zero)."""
    return from_gave - to_gave


def received(amount: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What a two-way flow's signed amount brings to its ends: (into `to`, into `from`)."""
    return np.maximum(amount, 0.0), np.maximum(-amount, 0.0)


# -- outcomes -------------------------------------------------------------------------------
_START = {
    "final": np.nan,
    "mean": 0.0,
    "sum": 0.0,
    "count": 0.0,
    "min": np.inf,
    "max": -np.inf,
    "first": np.nan,
}


def due(o: OutcomeDef, t: int, ticks: int) -> bool:
    """Whether outcome o reads its expression at tick t: every tick, but `final` only at the last."""
    return o.stat != "final" or t == ticks - 1


def outcome_groups(outcomes: Sequence[OutcomeDef]) -> list[list[int]]:
    """The outcomes as groups of indexes: the cells of an arrayed outcome (those sharing its
    `whole` expression, consecutive) are one group, evaluated once; any other outcome is a
    group of its own."""
    groups: list[list[int]] = []
    i = 0
    while i < len(outcomes):
        whole = outcomes[i].expr.whole
        j = i + 1
        while j < len(outcomes) and whole is not None and outcomes[j].expr.whole is whole:
            j += 1
        groups.append(list(range(i, j)))
        i = j
    return groups


class Outcomes:
    """Running outcome statistics over ticks, one value per run, updated after each transfer."""

    def __init__(self, m: Model, n: int):
        self.m = m
        self.n = n
        # The cells of an arrayed outcome are one group: one matrix (cells, runs), updated
        # as one array; each cell's values are a row of it.
        self.groups: list[tuple[OutcomeDef, Expr, list[str], np.ndarray, tuple[int, ...]]] = []
        self.values: dict[str, np.ndarray] = {}
        outcomes = list(m.outcomes)
        for group in outcome_groups(outcomes):
            cells = [outcomes[k] for k in group]
            o = cells[0]
            held = np.full((len(cells), n), _START[o.stat])
            expr = o.expr.whole or o.expr
            shape = (*m.shape_of(expr.dims), n)
            self.groups.append((o, expr, [c.label for c in cells], held, shape))
            self.values |= {c.name: held[k] for k, c in enumerate(cells)}

    def update(self, t: int, ns: Mapping[str, Any], health: NonFinite) -> None:
        """Fold tick t's value of each due outcome into its statistic (in place)."""
        for o, expr, labels, v, shape in self.groups:
            if not due(o, t, self.m.ticks):
                continue
            if len(labels) == 1 and expr.whole is None and not expr.dims:
                x = np.broadcast_to(expr(ns), (1, self.n))
                health.see(t, o.label, x[0])
            else:
                x = np.broadcast_to(expr(ns), shape).reshape((len(labels), self.n))
                health.check_rows(t, labels, x)
            if o.stat == "final":
                v[:] = x
            elif o.stat in ("mean", "sum"):
                v += x
            elif o.stat == "count":
                v += x != 0
            elif o.stat == "min":
                np.minimum(v, x, out=v)
            elif o.stat == "max":
                np.maximum(v, x, out=v)
            else:  # first
                v[np.isnan(v) & (x != 0)] = t

    def result(self) -> dict[str, np.ndarray]:
        """Each outcome per run. `count` and `first` are in months (ticks true times the
        step; the t of the first true tick); `mean` is the mean over ticks, `sum` the sum."""
        out = {}
        step = self.m.step
        for o in self.m.outcomes:
            v = self.values[o.name]
            if o.stat == "mean":
                v = v / self.m.ticks
            elif o.stat in ("count", "first") and step != 1:
                v = v * step
            out[o.name] = v
        return out


def evaluate(expr: Expr, ns: Mapping[str, Any], wholes: dict[int, Any]) -> Any:
    """An expression's value; a cell of an arrayed one (an outcome's or a record's) reads
    its cell of the whole, evaluated once per `wholes` (one tick's) for all its cells."""
    whole = expr.whole
    if whole is None:
        return expr(ns)
    key = id(whole)
    if key not in wholes:
        wholes[key] = whole(ns)
    return wholes[key][expr.cell]


# -- non-finite runs ------------------------------------------------------------------------
class NonFinite:
    """Which runs have gone non-finite: the first tick, and the first name in the tick's order.

    Each stage of a tick shows it that stage's values in evaluation order; a run keeps the
    first culprit it is given. A finite value (the usual case) costs one sum: a NaN or an
    infinity poisons the total, and only then are runs looked at one by one (a total that
    overflows from finite values only costs the slow path)."""

    def __init__(self, n: int):
        self.n = n
        self.tick = np.full(n, -1, dtype=np.int64)
        self.name = np.full(n, "", dtype=object)

    def see(self, t: int, label: str, value: Any, cells: Sequence[str] | None = None) -> None:
        """Check one value (an array over runs, or one number for all of them) at tick t;
        an arrayed one (cells, then runs) names the first non-finite cell, `cells[i]`."""
        if np.isfinite(value.sum() if isinstance(value, np.ndarray) else value):
            return
        if cells is not None and np.ndim(value) > 1:
            rows = np.reshape(value, (len(cells), -1))
            self.check(t, zip(cells, rows, strict=True))
            return
        self.mark(t, label, ~np.isfinite(value))

    def check(self, t: int, values: Iterable[tuple[str, Any]]) -> None:
        """Check values in evaluation order: a run keeps the first culprit it is given."""
        for label, value in values:
            self.see(t, label, value)

    def mark(self, t: int, label: str, bad: Any) -> None:
        """Runs where `bad` is true are non-finite at t, culprit `label` (unless already)."""
        hit = (self.tick < 0) & np.broadcast_to(bad, (self.n,))
        if hit.any():
            self.tick[hit] = t
            self.name[hit] = label

    def check_rows(self, t: int, labels: Sequence[str], rows: np.ndarray) -> None:
        """`check` for a matrix whose row i holds the values labelled labels[i]: one sum when
        all are finite."""
        if np.isfinite(rows.sum()):
            return
        self.check(t, zip(labels, rows, strict=True))
