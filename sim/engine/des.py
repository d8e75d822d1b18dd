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
the tick runs. Arithmetic mirrors `sim.engine.kernel` operation for operation, so the two
engines agree bit for bit on the same draws.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from sim.engine.kernel import calendar, fire_tick
from sim.errors import ScenarioError
from sim.model import EventDef, Model


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
        ns: dict[str, Any] = {k: float(v) for k, v in params.items()}
        ns.update(model.state)
        self.stock = {}
        for s in model.stocks:
            value = float(s.initial(ns))
            if s.kind != "source" and not value >= 0:
                raise ScenarioError.one(
                    f"initial amount is {value:g} in run {run}; a stock can't start below zero",
                    model.place.get(("stocks", s.name, "initial")),
                    f"stocks.{s.name}.initial",
                )
            self.stock[s.name] = value
        ns.update(self.stock)
        for f in model.flows:
            ns[f"flow.{f.name}"] = 0.0
            ns[f"cum.{f.name}"] = 0.0
            ns[f"transit.{f.name}"] = 0.0
        self.ns = ns
        self.pending: list[EventDef] = []  # fired, waiting for the next tick boundary
        self.arrived: dict[str, float] = {}  # shipments due at this tick, by flow
        self.tick = 0
        self._note: dict[str, float] = {}  # each fired event's exact time
        for e in model.events:
            if e.kind == "never":
                continue
            at = e.at if isinstance(e.at, float) else float(e.at(ns))
            self.env.process(self.event_process(e, at))

    # -- processes ---------------------------------------------------------------------
    def event_process(self, event: EventDef, at: float) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(max(at, 0.0))
        self.pending.append(event)
        self._note[event.name] = at

    def shipment(self, flow: str, amount: float, delay: int) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(delay)
        self.arrived[flow] = amount

    def ticks(self) -> Generator[simpy.Event, Any, None]:
        for t in range(self.m.ticks):
            yield self.env.timeout(0)  # let everything due at time t happen first
            self.tick = t
            self.step(t)
            yield self.env.timeout(1)

    # -- the tick ----------------------------------------------------------------------
    def simulate(self) -> Run:
        m = self.m
        self.outcome = {o.name: _start(o.stat) for o in m.outcomes}
        self.series = {name: np.empty(m.ticks) for name, _ in m.record}
        self.rationed: set[str] = set()
        self.flowing: set[str] = set()
        self.bad_tick, self.bad_name = -1, ""
        self.env.process(self.ticks())
        self.env.run(until=m.ticks)
        for e in m.events:  # events whose time fell after the last tick
            if e in self.pending:
                self.write("event", e.name, f"due at {self._note[e.name]:g}, after the horizon")
        outcomes = {
            o.name: (self.outcome[o.name] / m.ticks if o.stat == "mean" else self.outcome[o.name])
            for o in m.outcomes
        }
        return Run(outcomes, self.series, self.log, self.bad_tick, self.bad_name)

    def write(self, kind: str, name: str, detail: str = "", amount: float | None = None) -> None:
        self.log.append(LogEntry(self.tick, float(self.env.now), kind, name, detail, amount))

    def step(self, t: int) -> None:
        m, ns, stock = self.m, self.ns, self.stock
        ns.update(calendar(m, t))

        # 1. events due by now, in declared order
        due = [e for e in m.events if e in self.pending and fire_tick(self._note[e.name]) <= t]
        for e in due:
            self.pending.remove(e)
            did = []
            for name, expr in e.sets:
                ns[name] = float(expr(ns))
                did.append(f"{name} = {ns[name]:g}")
            for name, expr in e.scales:
                ns[name] = float(ns[name] * expr(ns))
                did.append(f"{name} scaled to {ns[name]:g}")
            self.write("event", e.name, f"(due at {self._note[e.name]:g}) " + "; ".join(did))

        # 2. variables
        for name, expr in m.variables:
            ns[name] = float(expr(ns))

        # 3. requests
        request = {}
        for f in m.flows:
            r = float(np.maximum(f.rate(ns), 0.0))
            if f.noise is not None:
                r *= float(self.noise[f.name][t])
            request[f.name] = r

        # 4. rationing: a stock gives at most what it holds, all its outflows scaled alike
        actual = dict(request)
        for s in m.stocks:
            out_flows = [f for f in m.flows if f.source == s.index]
            if not out_flows:
                continue
            out = request[out_flows[0].name]
            for f in out_flows[1:]:
                out += request[f.name]
            if s.kind == "source" or not out > stock[s.name]:
                stock[s.name] = stock[s.name] - out
                if s.name in self.rationed:
                    self.rationed.discard(s.name)
                    self.write("ration", s.name, "no longer short")
                continue
            factor = stock[s.name] / out
            for f in out_flows:
                actual[f.name] = request[f.name] * factor
            if s.name not in self.rationed:
                self.rationed.add(s.name)
                self.write(
                    "ration",
                    s.name,
                    f"short: holds {stock[s.name]:.4g} of {out:.4g} asked ({factor:.0%} given)",
                    stock[s.name],
                )
            stock[s.name] = 0.0

        # 5. transfer: arrivals in declared flow order; delayed amounts travel as processes
        names = [s.name for s in m.stocks]
        for f in m.flows:
            a = actual[f.name]
            target = names[f.target]
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

        # 6. record
        ns.update(stock)
        for f in m.flows:
            ns[f"flow.{f.name}"] = actual[f.name]
            ns[f"cum.{f.name}"] += actual[f.name]
        for o in m.outcomes:
            x = float(o.expr(ns))
            v = self.outcome[o.name]
            if o.stat == "final":
                v = x
            elif o.stat in ("mean", "sum"):
                v += x
            elif o.stat == "count":
                v += x != 0
            elif o.stat == "min":
                v = float(np.minimum(v, x))
            elif o.stat == "max":
                v = float(np.maximum(v, x))
            elif math.isnan(v) and x != 0:
                v = float(t)
                self.write("outcome", o.name, f"first true: {o.expr.text}")
            self.outcome[o.name] = v
        for name, expr in m.record:
            self.series[name][t] = expr(ns)
        if self.bad_tick < 0 and not all(math.isfinite(v) for v in stock.values()):
            self.bad_tick = t
            self.bad_name = _culprit(m, ns, actual, stock)
            self.write("nonfinite", self.bad_name, "a value is no longer finite")


def _start(stat: str) -> float:
    return {"final": math.nan, "min": math.inf, "max": -math.inf, "first": math.nan}.get(stat, 0.0)


def _culprit(
    m: Model, ns: Mapping[str, Any], actual: Mapping[str, float], stock: Mapping[str, float]
) -> str:
    for name, _ in m.variables:
        if not math.isfinite(ns[name]):
            return f"variables.{name}"
    for f in m.flows:
        if not math.isfinite(actual[f.name]):
            return f"flows.{f.name}"
    for s in m.stocks:
        if not math.isfinite(stock[s.name]):
            return f"stocks.{s.name}"
    return ""
