"""The fast engine: one block of runs at once, as numpy arrays, tick by tick.

State is stock-major: `S[i]` is stock i's content in every run of the block (one contiguous
row per stock). Per tick the work is a fixed sequence of array operations — events, variables,
requests, rationing, transfer, record — exactly the semantics contract of DESIGN.md, in the
same order and with the same floating-point operations as the SimPy engine (`sim.engine.des`),
so both give the same bits for the same draws.

    >>> from sim.model import load
    >>> from sim.sampling.draws import parameter_draws, noise_draws
    >>> model = load("examples/bakery.yaml")
    >>> p = parameter_draws(model.parameters, "mc", 1, 100, 0, 100)
    >>> z = noise_draws(model.noises, 1, 100, model.ticks, 0, 100)
    >>> block = run_block(model, p, z)
    >>> block.outcomes["bread_eaten"].shape
    (100,)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.errors import ScenarioError
from sim.model import Model
from sim.scenario.expr import Expr

Observer = Callable[[int, np.ndarray, np.ndarray], None]

STATUS_OK = "ok"
STATUS_NONFINITE = "nonfinite"


@dataclass
class Block:
    """What a block of runs produced: outcomes per run, recorded series (ticks x runs), status."""

    outcomes: dict[str, np.ndarray]
    series: dict[str, np.ndarray]
    bad_tick: np.ndarray  # -1 where the run stayed finite
    bad_name: np.ndarray  # object array: the first non-finite variable/flow/stock, or ""
    paths: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def status(self) -> np.ndarray:
        return np.where(self.bad_tick < 0, STATUS_OK, STATUS_NONFINITE)


def calendar(model: Model, t: int) -> dict[str, float]:
    year, month = model.calendar(t)
    return {"t": float(t), "month": float(month), "year": float(year)}


def fire_tick(at: Any) -> Any:
    """The tick at which an event scheduled at time `at` (ticks) takes effect: ceil, >= 0."""
    return np.ceil(np.maximum(at, 0.0))


def run_block(
    model: Model,
    params: Mapping[str, np.ndarray],
    noise: Mapping[str, np.ndarray],
    observer: Observer | None = None,
    first_run: int = 0,
    n: int | None = None,
    keep: int | None = None,
) -> Block:
    """Run every run of one block. `params[name]` has one value per run; `noise[flow]` is
    (ticks, runs). Recorded series are kept for the first `keep` runs of the block (all when
    None): a series nobody keeps costs a fresh (ticks x runs) array per block for nothing.
    `observer(t, S, transit)` is called after each tick's transfer (tests use it to check
    conservation). Raises ScenarioError if a stock starts negative."""
    with np.errstate(all="ignore"):
        return _Kernel(model, params, noise, first_run, n).run(observer, keep)


class _Kernel:
    def __init__(
        self,
        model: Model,
        params: Mapping[str, np.ndarray],
        noise: Mapping[str, np.ndarray],
        first_run: int,
        n: int | None,
    ):
        self.m = model
        if n is None:
            n = len(next(iter(params.values()))) if params else _block_size(noise)
        self.n = n
        self.noise = noise
        self.first_run = first_run
        ns: dict[str, Any] = {}
        self.P = {k: np.array(v, dtype=np.float64) for k, v in params.items()}  # events scale these
        ns.update(self.P)
        self.X = {k: np.full(n, v) for k, v in model.state.items()}
        ns.update(self.X)
        self.S = np.zeros((len(model.stocks), n))
        for s in model.stocks:
            self.S[s.index] = s.initial(ns)
            if s.kind != "source":
                bad = np.flatnonzero(~(self.S[s.index] >= 0))
                if bad.size:
                    run = first_run + int(bad[0])
                    raise ScenarioError.one(
                        f"initial amount is {self.S[s.index][bad[0]]:g} in run {run}; "
                        "a stock can't start below zero",
                        model.place.get(("stocks", s.name, "initial")),
                        f"stocks.{s.name}.initial",
                    )
        for s in model.stocks:
            ns[s.name] = self.S[s.index]
        k = len(model.flows)
        self.F = np.zeros((k, n))  # last tick's actual amounts
        self.C = np.zeros((k, n))  # cumulative actual amounts
        self.TR = np.zeros((k, n))  # amounts under way
        self.R = np.zeros((k, n))  # this tick's requests
        # This tick's actual amounts are written over last tick's: nothing reads flow.NAME
        # after the requests (step 3), and from the record on (step 6) it is this tick's.
        self.A = self.F
        self.ring = {f.index: np.zeros((f.delay, n)) for f in model.flows if f.delay}
        for f in model.flows:
            ns[f"flow.{f.name}"] = self.F[f.index]
            ns[f"cum.{f.name}"] = self.C[f.index]
            ns[f"transit.{f.name}"] = self.TR[f.index]
        self.ns = ns
        # Cumulative amounts are kept only for the flows some expression reads as cum.NAME:
        # adding up all of them every tick is work nobody looks at.
        cums = {n for e in _expressions(model) for n in e.names if n.startswith("cum.")}
        self.cum_rows = [f.index for f in model.flows if f"cum.{f.name}" in cums]
        # Event times, from the parameters as sampled (before any event scales them).
        self.fire: list[Any] = []
        for e in model.events:
            if e.kind == "never":
                self.fire.append(math.inf)
            elif e.kind == "tick":
                self.fire.append(float(fire_tick(e.at)))
            else:
                at = np.broadcast_to(e.at(ns), (n,))  # type: ignore[operator]
                self.fire.append(fire_tick(at))
        # The ticks at which each event fires in some run of the block.
        self.fire_ticks = [
            {int(x) for x in np.unique(fire) if math.isfinite(x)} for fire in self.fire
        ]
        self.variables = [(name, expr, expr.alias is not None) for name, expr in model.variables]
        self.rates = [(f.index, f.rate, noise.get(f.name) if f.noise else None) for f in model.flows]
        # Outflows per giving stock, in declared flow order (the order sums are taken in).
        self.outflows: list[tuple[int, bool, list[int]]] = []
        for s in model.stocks:
            out = [f.index for f in model.flows if f.source == s.index]
            if out:
                self.outflows.append((s.index, s.kind == "source", out))

    def run(self, observer: Observer | None, keep: int | None) -> Block:
        m, n, ns = self.m, self.n, self.ns
        T = m.ticks
        keep = n if keep is None else max(0, min(keep, n))
        acc = _Accumulators(m, n)
        series = {name: np.empty((T, keep)) for name, _ in m.record}
        record = m.record if keep else ()
        bad_tick = np.full(n, -1, dtype=np.int64)
        bad_name = np.full(n, "", dtype=object)
        S, R, A, C, TR = self.S, self.R, self.A, self.C, self.TR
        for t in range(T):
            ns.update(calendar(m, t))
            # 1. events, in declared order
            for e, fire, when in zip(m.events, self.fire, self.fire_ticks, strict=True):
                if t not in when:
                    continue
                mask: Any = True if isinstance(fire, float) else fire == t
                for name, expr in e.sets:
                    np.copyto(self.X[name], expr(ns), where=mask)
                for name, expr in e.scales:
                    np.multiply(self.P[name], expr(ns), out=self.P[name], where=mask)
            # 2. variables, in dependency order
            for name, expr, alias in self.variables:
                # A bare alias of a stock would follow the stock through the transfer; copy it.
                ns[name] = np.array(expr(ns)) if alias else expr(ns)
            # 3. requests
            for i, rate, noise in self.rates:
                np.maximum(rate(ns), 0.0, out=R[i])
                if noise is not None:
                    R[i] *= noise[t]
            # 4. rationing, and what leaves each giving stock
            np.copyto(A, R)
            for s, unlimited, flows in self.outflows:
                if len(flows) == 1:
                    out = R[flows[0]]
                else:
                    out = R[flows[0]] + R[flows[1]]
                    for i in flows[2:]:
                        out += R[i]
                if unlimited or not (short := out > S[s]).any():
                    S[s] -= out
                    continue
                factor = S[s] / out
                for i in flows:
                    A[i] = np.where(short, R[i] * factor, R[i])
                S[s] = np.where(short, 0.0, S[s] - out)
            # 5. transfer: arrivals in declared flow order
            for f in m.flows:
                if f.delay == 0:
                    S[f.target] += A[f.index]
                else:
                    slot = self.ring[f.index][t % f.delay]
                    if t >= f.delay:
                        S[f.target] += slot
                        TR[f.index] -= slot
                    slot[:] = A[f.index]
                    TR[f.index] += A[f.index]
            # 6. record: this tick's amounts, then outcomes and series on the new state
            for i in self.cum_rows:
                C[i] += A[i]
            acc.update(t, ns)
            for name, expr in record:
                series[name][t] = np.broadcast_to(expr(ns), (n,))[:keep]
            # Any NaN or inf poisons the total; a finite total (the usual case) spares the
            # per-run check. An overflowing total of finite stocks only costs the slow path.
            if not np.isfinite(S.sum()) and not (ok := np.isfinite(S).all(axis=0)).all():
                fresh = (~ok) & (bad_tick < 0)
                if fresh.any():
                    bad_tick[fresh] = t
                    bad_name[fresh] = _culprits(m, ns, A, S, fresh)
            if observer is not None:
                observer(t, S, TR)
        return Block(acc.result(), series, bad_tick, bad_name)


def _expressions(m: Model) -> list[Expr]:
    """Every expression a model evaluates while it steps."""
    out = [f.rate for f in m.flows] + [e for _, e in m.variables]
    out += [o.expr for o in m.outcomes] + [e for _, e in m.record]
    for ev in m.events:
        out += [e for _, e in ev.sets] + [e for _, e in ev.scales]
    return out


def _block_size(noise: Mapping[str, np.ndarray]) -> int:
    if not noise:
        raise ValueError("a block needs at least one parameter or noise array to know its size")
    return next(iter(noise.values())).shape[1]


def _culprits(
    m: Model, ns: Mapping[str, Any], A: np.ndarray, S: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """For runs that just went non-finite: the first variable, flow or stock (in evaluation
    order) holding a non-finite value."""
    names = np.full(int(rows.sum()), "", dtype=object)
    pending = np.ones(len(names), dtype=bool)
    candidates: list[tuple[str, Any]] = [(f"variables.{n}", ns[n]) for n, _ in m.variables]
    candidates += [(f"flows.{f.name}", A[f.index]) for f in m.flows]
    candidates += [(f"stocks.{s.name}", S[s.index]) for s in m.stocks]
    for label, value in candidates:
        bad = ~np.isfinite(np.broadcast_to(value, rows.shape)[rows])
        hit = bad & pending
        names[hit] = label
        pending &= ~hit
    return names


class _Accumulators:
    """Running outcome statistics over ticks (final, mean, min, max, sum, count, first)."""

    def __init__(self, m: Model, n: int):
        self.m = m
        self.n = n
        self.values: dict[str, np.ndarray] = {}
        for o in m.outcomes:
            start = {
                "final": np.nan,
                "mean": 0.0,
                "sum": 0.0,
                "count": 0.0,
                "min": np.inf,
                "max": -np.inf,
                "first": np.nan,
            }[o.stat]
            self.values[o.name] = np.full(n, start)

    def update(self, t: int, ns: Mapping[str, Any]) -> None:
        last = t == self.m.ticks - 1
        for o in self.m.outcomes:
            if o.stat == "final" and not last:
                continue  # only the last tick's value counts
            v = self.values[o.name]
            x = np.broadcast_to(o.expr(ns), (self.n,))
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
        out = {}
        for o in self.m.outcomes:
            v = self.values[o.name]
            out[o.name] = v / self.m.ticks if o.stat == "mean" else v
        return out
