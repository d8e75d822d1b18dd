"""The reference engine: one run as a SimPy discrete-event simulation, with an event log.

Readable first, fast never. One `simpy.Environment` per run holds:

- an **event process** per scenario event: a timeout at its exact (possibly fractional,
  possibly sampled) time, after which the event waits in `pending` for the next tick boundary;
- a **shipment process** per delayed flow amount: a timeout of `delay` ticks, after which the
  amount waits in `arrived` for that tick's transfer;
- the **tick process**, which at each whole time t applies the semantics contract of
  DESIGN.md: events, variables, requests, rationing, transfer, record.

Ordering at equal times relies on SimPy's documented rule that events scheduled for the same
time are processed in the order they were scheduled: the tick process first yields a zero
timeout, so every event and shipment due at time t (all scheduled earlier) is processed before
the tick runs. What a tick means (event timing, rationing, outcome statistics, which value
makes a run non-finite) is `sim.engine.semantics`, shared with `sim.engine.kernel`, called here
on arrays of one run; the rest of the arithmetic mirrors the kernel operation for operation, so
the two engines agree bit for bit on the same draws.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from sim.engine.semantics import (
    Block,
    Memories,
    NonFinite,
    Outcomes,
    asked,
    assemble,
    below_zero,
    calendar,
    cell_labels,
    deliver,
    evaluate,
    fire_tick,
    giving,
    moved,
    ration_cells,
    received,
    signed,
)
from sim.model import EventDef, FlowDef, Model


@dataclass(frozen=True)
class LogEntry:
    """One line of a run's story."""

    tick: int
    time: float  # the exact simulation time (an event's own time may be fractional)
    kind: str  # event | ship | arrive | ration | flow | outcome | nonfinite
    name: str
    detail: str = ""
    amount: float | None = None


@dataclass
class Run:
    """One run's outcomes, recorded series (one value per tick) and its event log."""

    outcomes: dict[str, float]
    series: dict[str, np.ndarray]
    log: list[LogEntry] = field(default_factory=list)
    bad_tick: int = -1
    bad_name: str = ""


def run_block(
    model: Model,
    params: Mapping[str, np.ndarray],
    noise: Mapping[str, np.ndarray],
    first_run: int = 0,
    n: int | None = None,
    keep: int | None = None,
) -> Block:
    """Run a block of runs one at a time (the `Engine` interface, as `kernel.run_block`)."""
    if n is None:
        n = len(next(iter(params.values()))) if params else next(iter(noise.values())).shape[1]
    keep = n if keep is None else max(0, min(keep, n))
    outcomes = {o.name: np.empty(n) for o in model.outcomes}
    series = {name: np.empty((model.ticks, keep)) for name, _ in model.record}
    bad_tick = np.full(n, -1, dtype=np.int64)
    bad_name = np.full(n, "", dtype=object)
    for k in range(n):
        r = run_one(
            model,
            {a: v[k] for a, v in params.items()},
            {a: v[:, k] for a, v in noise.items()},
            first_run + k,
        )
        for name, value in r.outcomes.items():
            outcomes[name][k] = value
        if k < keep:
            for name, path in r.series.items():
                series[name][:, k] = path
        bad_tick[k], bad_name[k] = r.bad_tick, r.bad_name
    return Block(outcomes, series, bad_tick, bad_name)


def run_one(
    model: Model,
    params: Mapping[str, float],
    noise: Mapping[str, np.ndarray],
    run: int = 0,
) -> Run:
    """Simulate one run. `params[name]` is this run's value, `noise[flow]` its per-tick path."""
    with np.errstate(all="ignore"):
        return _World(model, params, noise, run).simulate()


class _World:
    def __init__(
        self, model: Model, params: Mapping[str, float], noise: Mapping[str, np.ndarray], run: int
    ):
        self.m = model
        self.noise = noise
        self.env = simpy.Environment()
        self.log: list[LogEntry] = []
        self.health = NonFinite(1)
        ns: dict[str, Any] = {k: float(v) for k, v in params.items()}
        # An arrayed value is an array over its dimensions and one run, (*sizes, 1): the
        # kernel's arrays with one run, so both do the same arithmetic on each cell.
        ns.update(assemble(model, params, 1))
        for k, v in model.state.items():
            ns[k] = np.array(v)[..., np.newaxis] if np.ndim(v) else v
        for f in model.flows:
            for prefix in ("flow", "cum", "transit"):
                ns[f"{prefix}.{f.name}"] = np.zeros((*f.shape, 1)) if f.dims else 0.0
        self.ns = ns
        self.memory = Memories(model, 1)
        self.stock: dict[str, Any] = {}  # a float, or (*sizes, 1) for an arrayed stock
        self.start(run)
        self.pending: list[EventDef] = []  # fired, waiting for the next tick boundary
        self.arrived: dict[str, Any] = {}  # shipments due at this tick, by flow
        self.tick = 0
        self._note: dict[str, float] = {}  # each fired event's exact time
        for e in model.events:
            if e.kind == "never":
                continue
            at = e.at if isinstance(e.at, float) else float(e.at(ns))  # months
            if math.isnan(at):  # no time at all: the run is non-finite, and the event never comes
                self.health.mark(0, f"events.{e.name}", True)
                self.write("nonfinite", f"events.{e.name}", "its time is not a number")
                continue
            self.env.process(self.event_process(e, at))

    # -- processes ---------------------------------------------------------------------
    def event_process(self, event: EventDef, at: float) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(max(at, 0.0) / self.m.step)  # the clock counts ticks
        self.pending.append(event)
        self._note[event.name] = at

    def shipment(self, flow: str, amount: Any, delay: int) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(delay)
        self.arrived[flow] = amount

    def ticks(self) -> Generator[simpy.Event, Any, None]:
        for t in range(self.m.ticks):
            yield self.env.timeout(0)  # let everything due at time t happen first
            self.tick = t
            self.step(t)
            yield self.env.timeout(1)

    # -- the run -----------------------------------------------------------------------
    def simulate(self) -> Run:
        m = self.m
        self.outcomes = Outcomes(m, 1)
        self.series = {name: np.empty(m.ticks) for name, _ in m.record}
        self.rationed: set[str] = set()
        self.flowing: set[str] = set()
        self.direction: dict[str, float] = {}  # each two-way flow's last sign: 1, -1 or 0
        self.env.process(self.ticks())
        self.env.run(until=m.ticks)
        for e in m.events:  # events whose time fell after the last tick
            if e in self.pending:
                self.write("event", e.name, f"due at {self._note[e.name]:g}, after the horizon")
        outcomes = {name: float(v[0]) for name, v in self.outcomes.result().items()}
        bad_tick, bad_name = int(self.health.tick[0]), str(self.health.name[0])
        return Run(outcomes, self.series, self.log, bad_tick, bad_name)

    def write(self, kind: str, name: str, detail: str = "", amount: float | None = None) -> None:
        now = float(self.env.now) * self.m.step  # months, as t
        self.log.append(LogEntry(self.tick, now, kind, name, detail, amount))

    def start(self, run: int) -> None:
        """Before the first tick: stocks' initial values, built-ins' starting states and the
        variables they read, in dependency order, at tick 0's time and before its events."""
        m, ns = self.m, self.ns
        ns.update(calendar(m, 0))
        stocks = {s.name: s for s in m.stocks}
        variables = dict(m.variables)
        memories = {mem.name: mem for mem in m.memories}
        for name in m.initial or [s.name for s in m.stocks]:
            if name in stocks:
                s = stocks[name]
                value: Any = self.value(s.initial(ns), s.shape)
                low, where = lowest(value, cell_labels(m, s.name, s.dims))
                if not s.unlimited and not low >= 0:  # a source or a balance may start below 0
                    raise below_zero(m, s, low, where, run)
                self.stock[name] = ns[name] = value
            elif name in variables:
                ns[name] = self.value(variables[name](ns), m.shape(name))
            else:
                ns[name] = self.value(self.memory.start(memories[name], ns), m.shape(name))

    def value(self, value: Any, shape: tuple[int, ...]) -> Any:
        """A value as this engine holds it: a float, or an array (*shape, 1) of its own."""
        if not shape:
            return float(np.reshape(value, -1)[0]) if np.ndim(value) else float(value)
        return np.array(np.broadcast_to(value, (*shape, 1)))

    def step(self, t: int) -> None:
        """One tick, in the contract's order."""
        self.ns.update(calendar(self.m, t))
        self.fire_events(t)
        self.evaluate_variables(t)
        request = self.request(t)
        if self.m.memories:  # 3b. built-ins advance (flow.NAME is still last tick's)
            self.memory.advance(t, self.ns)
        actual = self.ration(request)
        self.transfer(actual)
        self.record(t, actual)

    # -- the tick's stages -------------------------------------------------------------
    def fire_events(self, t: int) -> None:
        """1. Events due by now, in declared order: set state, scale parameters."""
        ns = self.ns
        step = self.m.step
        due = [
            e
            for e in self.m.events
            if e in self.pending and fire_tick(self._note[e.name], step) <= t
        ]
        for e in due:
            self.pending.remove(e)
            did = []
            for name, expr in e.sets:
                base, index = e.target(name)
                if isinstance(ns[base], np.ndarray):
                    ns[base] = held = np.array(ns[base])
                    held[index] = expr(ns)
                    did.append(f"{name} = {_shown(held[index])}")
                    continue
                ns[name] = self.value(expr(ns), ())  # an element's pick is (1,) here
                did.append(f"{name} = {ns[name]:g}")
            for name, expr in e.scales:
                base, index = e.target(name)
                if isinstance(ns[base], np.ndarray):
                    ns[base] = held = np.array(ns[base])
                    held[index] = held[index] * expr(ns)
                    did.append(f"{name} scaled to {_shown(held[index])}")
                    continue
                ns[name] = self.value(ns[name] * expr(ns), ())
                did.append(f"{name} scaled to {ns[name]:g}")
            self.write("event", e.name, f"(due at {self._note[e.name]:g}) " + "; ".join(did))

    def evaluate_variables(self, t: int) -> None:
        """2. Variables and built-ins' outputs, in dependency order."""
        ns, m = self.ns, self.m
        variables = dict(m.variables)
        memories = {mem.name: mem for mem in m.memories}
        order = m.stage2 or tuple(variables)
        for name in order:
            if name in memories:
                ns[name] = self.value(self.memory.output(memories[name], ns, t), m.shape(name))
            else:
                ns[name] = self.value(variables[name](ns), m.shape(name))
        self.check(
            t,
            [
                (cell, v)
                for n in order
                for cell, v in self.cells(
                    memories[n].label if n in memories else f"variables.{n}", n, ns[n]
                )
            ],
        )

    def cells(self, label: str, name: str, value: Any) -> list[tuple[str, Any]]:
        """(label, value) of a scalar, or (label[cell], value) of each cell of an array."""
        dims = self.m.dims(name)
        if not dims:
            return [(label, value)]
        return list(zip(cell_labels(self.m, label, dims), np.reshape(value, -1), strict=True))

    def request(self, t: int) -> dict[str, Any]:
        """3. Each flow's request: max(0, rate) times its noise at t."""
        rates = {f.name: self.value(f.rate(self.ns), f.shape) for f in self.m.flows}
        self.check(
            t,
            [c for f in self.m.flows for c in self.cells(f"flows.{f.name}", f.name, rates[f.name])],
        )
        request: dict[str, Any] = {}
        for f in self.m.flows:
            if f.dims:  # an arrayed flow: the same steps on its cells
                r = rates[f.name] if f.two_way else np.maximum(rates[f.name], 0.0)
                if f.noise is not None:
                    cells = self.m.cells(f.name)
                    noise = np.array([self.noise[c][t] for c in cells]).reshape((*f.shape, 1))
                    r = r * noise
                request[f.name] = moved(np.array(r), self.m.step)
                continue
            # A two-way flow's request keeps its sign: its direction (semantics.asked).
            r = rates[f.name] if f.two_way else float(np.maximum(rates[f.name], 0.0))
            if f.noise is not None:
                r *= float(self.noise[f.name][t])
            request[f.name] = float(moved(np.array([r]), self.m.step)[0])
        return request

    def ration(self, request: dict[str, Any]) -> dict[str, Any]:
        """4. Rationing: a stock gives at most what it holds, all its outflows scaled alike.

        A two-way flow is an outflow of both its ends: it asks its request of `from` when
        positive, the request's size of `to` when negative, and zero of the other end; its
        amount is what `from` gave minus what `to` gave."""
        stock = self.stock
        actual = dict(request)
        gave: dict[tuple[str, str], np.ndarray] = {}
        for s, flows in giving(self.m):
            wanted = [asked(_runs(request[f.name]), role) for f, role in flows]
            held = stock[s.name]
            content = _runs(held).copy()
            over = [f.dims for f, _ in flows]
            given, short = ration_cells(content, wanted, over, s.dims, s.unlimited)
            stock[s.name] = content if s.dims else float(content[0])
            for (f, role), amount in zip(flows, given or wanted, strict=True):
                if role != "out":
                    gave[f.name, role] = amount
                elif given is not None:
                    actual[f.name] = amount if f.dims else float(amount[0])
            if s.dims:
                self.ration_cells(s.name, s.dims, held, short)
                continue
            if given is None:
                if s.name in self.rationed:
                    self.rationed.discard(s.name)
                    self.write("ration", s.name, "no longer short")
                continue
            if s.name not in self.rationed:
                self.rationed.add(s.name)
                out = sum(float(x) for a in wanted for x in np.reshape(a, -1))
                self.write(
                    "ration",
                    s.name,
                    f"short: holds {held:.4g} of {out:.4g} asked ({held / out:.0%} given)",
                    held,
                )
        for f in self.m.flows:
            if f.two_way:
                amount = signed(gave[f.name, "from"], gave[f.name, "to"])
                actual[f.name] = amount if f.dims else float(amount[0])
        return actual

    def ration_cells(self, name: str, dims: tuple[str, ...], held: Any, short: Any) -> None:
        """Log the cells of an arrayed stock that become short, or are no longer."""
        labels = cell_labels(self.m, name, dims)
        now = (
            set()
            if short is None
            else {c for c, x in zip(labels, np.reshape(short, -1), strict=True) if x}
        )
        for cell, amount in zip(labels, np.reshape(held, -1), strict=True):
            if cell in now and cell not in self.rationed:
                self.rationed.add(cell)
                self.write(
                    "ration", cell, f"short: holds {amount:.4g}, less than asked", float(amount)
                )
            elif cell not in now and cell in self.rationed:
                self.rationed.discard(cell)
                self.write("ration", cell, "no longer short")

    def transfer(self, actual: dict[str, Any]) -> None:
        """5. Transfer: arrivals in declared flow order; delayed amounts travel as processes."""
        m, ns, stock = self.m, self.ns, self.stock
        names = [s.name for s in m.stocks]
        for f in m.flows:
            a = actual[f.name]
            if f.dims:
                self.transfer_cells(f, a, names)
                continue
            target = names[f.target]
            if f.two_way:  # never delayed (a load error)
                into_to, into_from = received(np.array(a))
                stock[target] += float(into_to)
                stock[names[f.source]] += float(into_from)
                self.log_direction(f.name, names[f.source], target, a)
                continue
            if f.delay == 0:
                stock[target] += a
            else:
                if f.name in self.arrived:
                    got = self.arrived.pop(f.name)
                    stock[target] += got
                    ns[f"transit.{f.name}"] -= got
                    if got:
                        self.write("arrive", f.name, f"into {target}", got)
                self.env.process(self.shipment(f.name, a, f.delay))
                ns[f"transit.{f.name}"] += a
                if a:
                    self.write("ship", f.name, f"{names[f.source]} -> {target}, {f.delay} ticks", a)
            if (a > 0) != (f.name in self.flowing):
                if a > 0:
                    self.flowing.add(f.name)
                    self.write("flow", f.name, "starts", a)
                else:
                    self.flowing.discard(f.name)
                    self.write("flow", f.name, "stops", a)

    def transfer_cells(self, f: FlowDef, a: np.ndarray, names: list[str]) -> None:
        """5. for an arrayed flow: each stock cell receives its flow cells one after another
        (semantics.deliver); a delayed amount travels as one process for all its cells."""
        ns, stock = self.ns, self.stock
        source, target = names[f.source], names[f.target]
        if f.two_way:
            into_to, into_from = received(a)
            self.receive(target, into_to, f.dims, f.target_dims)
            self.receive(source, into_from, f.dims, f.source_dims)
            return
        if f.delay == 0:
            self.receive(target, a, f.dims, f.target_dims)
            return
        if f.name in self.arrived:
            got = self.arrived.pop(f.name)
            self.receive(target, got, f.dims, f.target_dims)
            ns[f"transit.{f.name}"] = ns[f"transit.{f.name}"] - got
        self.env.process(self.shipment(f.name, np.array(a), f.delay))
        ns[f"transit.{f.name}"] = ns[f"transit.{f.name}"] + a
        del stock  # (the stocks change through receive)

    def receive(
        self, name: str, amount: np.ndarray, have: tuple[str, ...], dims: tuple[str, ...]
    ) -> None:
        """Add a flow's amount into stock `name`, cell by cell in the kernel's order."""
        held = _runs(self.stock[name]).copy()
        deliver(held, amount, have, dims)
        self.stock[name] = held if dims else float(held[0])

    def log_direction(self, flow: str, source: str, target: str, amount: float) -> None:
        """Log a two-way flow starting, stopping or turning round, and which way it goes."""
        sign = float(np.sign(amount))
        was = self.direction.get(flow, 0.0)
        if sign == was or math.isnan(sign):
            return
        self.direction[flow] = sign
        way = f"{source} -> {target}" if sign > 0 else f"{target} -> {source}"
        if sign == 0:
            self.write("flow", flow, "stops", amount)
        else:
            self.write("flow", flow, ("turns, " if was else "starts, ") + way, amount)

    def record(self, t: int, actual: dict[str, Any]) -> None:
        """6. Record: this tick's amounts, then outcomes and series on the new state."""
        m, ns = self.m, self.ns
        ns.update(self.stock)
        for f in m.flows:
            ns[f"flow.{f.name}"] = actual[f.name]
            ns[f"cum.{f.name}"] = ns[f"cum.{f.name}"] + actual[f.name]
        self.check(t, [c for n, a in actual.items() for c in self.cells(f"flows.{n}", n, a)])
        self.check(t, [c for n, v in self.stock.items() for c in self.cells(f"stocks.{n}", n, v)])
        before = {o.name: float(self.outcomes.values[o.name][0]) for o in m.outcomes}
        self.outcomes.update(t, ns, self.health)
        if self.health.tick[0] == t and self.health.name[0].startswith("outcomes."):
            self.write("nonfinite", str(self.health.name[0]), "a value is no longer finite")
        for o in m.outcomes:
            now = self.outcomes.values[o.name][0]
            if o.stat == "first" and math.isnan(before[o.name]) and not math.isnan(now):
                self.write("outcome", o.name, f"first true: {o.expr.text}")
        wholes: dict[int, Any] = {}
        for name, expr in m.record:
            self.series[name][t] = np.reshape(evaluate(expr, ns, wholes), -1)[0]

    def check(self, t: int, values: list[tuple[str, float]]) -> None:
        """Mark the run non-finite at the first value (in order) that is NaN or infinite."""
        if self.health.tick[0] >= 0:
            return
        self.health.check(t, values)
        if self.health.tick[0] >= 0:
            self.write("nonfinite", str(self.health.name[0]), "a value is no longer finite")


def _runs(value: Any) -> np.ndarray:
    """A value as an array with the runs axis last: a float as (1,), an array as it is."""
    return value if isinstance(value, np.ndarray) else np.array([value])


def lowest(value: Any, labels: list[str]) -> tuple[float, str]:
    """The lowest cell of a value (a NaN first) and its label."""
    flat = np.reshape(value, -1)
    bad = np.flatnonzero(~(flat >= 0))
    i = int(bad[0]) if bad.size else int(np.argmin(flat))
    return float(flat[i]), labels[i]


def _shown(value: Any) -> str:
    """An event's new value for the log: a number, or the cells' numbers."""
    flat = np.reshape(value, -1)
    return f"{flat[0]:g}" if flat.size == 1 else "[" + ", ".join(f"{x:g}" for x in flat) + "]"
