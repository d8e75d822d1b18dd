"""The fast engine: one block of runs at once, as numpy arrays, tick by tick.

State is stock-major: `S[i]` is stock cell i's content in every run of the block (one
contiguous row per stock cell); an arrayed stock is a contiguous slice of rows, read as one
array of shape (*sizes, runs), and so are an arrayed flow's rows of the flow matrices. Per tick the work is a fixed sequence of array operations — events, variables,
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
from typing import Any

import numpy as np

from sim.engine.semantics import (
    Block,
    Memories,
    NonFinite,
    Outcomes,
    Role,
    asked,
    assemble,
    below_zero,
    calendar,
    cell_labels,
    deliver,
    fire_tick,
    giving,
    moved,
    ration_cells,
    received,
    signed,
)
from sim.model import MemoryDef, Model
from sim.scenario.expr import Expr

Observer = Callable[[int, np.ndarray, np.ndarray], None]

NOISE_BUFFER = 4 * 2**20  # bytes of noise copied ahead, a few ticks of every noisy flow cell


def run_block(
    model: Model,
    params: Mapping[str, np.ndarray],
    noise: Mapping[str, np.ndarray],
    first_run: int = 0,
    n: int | None = None,
    keep: int | None = None,
    *,
    observer: Observer | None = None,
) -> Block:
    """Run every run of one block (the `Engine` interface). `params[name]` has one value per
    run; `noise[flow]` is (ticks, runs). Recorded series are kept for the first `keep` runs of
    the block (all when None): a series nobody keeps costs a fresh (ticks x runs) array per block for nothing.
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
        self.P.update(assemble(model, params, n))  # an arrayed parameter: one array of its cells
        ns.update(self.P)
        self.X = {
            k: np.array(np.broadcast_to(np.asarray(v)[..., np.newaxis], (*np.shape(v), n)))
            for k, v in model.state.items()
        }
        ns.update(self.X)
        self.S = np.zeros((sum(s.size for s in model.stocks), n))
        k = sum(f.size for f in model.flows)
        self.F = np.zeros((k, n))  # last tick's actual amounts
        self.C = np.zeros((k, n))  # cumulative actual amounts
        self.TR = np.zeros((k, n))  # amounts under way
        self.R = np.zeros((k, n))  # this tick's requests
        # This tick's actual amounts are written over last tick's: nothing reads flow.NAME
        # after the requests (step 3), and from the record on (step 6) it is this tick's.
        self.A = self.F
        # Each stock's and flow's rows, as one array over its dimensions (views, no copies).
        self.stock_at = [_view(self.S, s.row, s.shape) for s in model.stocks]
        self.R_at = [_view(self.R, f.row, f.shape) for f in model.flows]
        self.A_at = [_view(self.A, f.row, f.shape) for f in model.flows]
        self.TR_at = [_view(self.TR, f.row, f.shape) for f in model.flows]
        self.ring = {f.index: np.zeros((f.delay, *f.shape, n)) for f in model.flows if f.delay}
        for f in model.flows:
            ns[f"flow.{f.name}"] = _view(self.F, f.row, f.shape)
            ns[f"cum.{f.name}"] = _view(self.C, f.row, f.shape)
            ns[f"transit.{f.name}"] = self.TR_at[f.index]
        self.ns = ns
        self.memory = Memories(model, n)
        self.start()
        # Cumulative amounts are kept only for the flows some expression reads as cum.NAME:
        # adding up all of them every tick is work nobody looks at.
        cums = {n for e in _expressions(model) for n in e.names if n.startswith("cum.")}
        self.cum_rows = [
            slice(f.row, f.row + f.size) for f in model.flows if f"cum.{f.name}" in cums
        ]
        # Event times, from the parameters as sampled (before any event scales them).
        self.fire: list[Any] = []
        for e in model.events:
            if e.kind == "never":
                self.fire.append(math.inf)
            elif e.kind == "tick":
                self.fire.append(float(fire_tick(e.at, model.step)))
            else:
                at = np.broadcast_to(e.at(ns), (n,))  # type: ignore[operator]
                self.fire.append(fire_tick(at, model.step))
        self.health = NonFinite(n)
        for e, at in zip(model.events, self.fire, strict=True):
            self.health.mark(0, f"events.{e.name}", np.isnan(at))  # NaN is no time, not "never"
        # The ticks at which each event fires in some run of the block.
        self.fire_ticks = [
            {int(x) for x in np.unique(fire) if math.isfinite(x)} for fire in self.fire
        ]
        self.variables = [
            (name, f"variables.{name}", expr, expr.alias is not None)
            for name, expr in model.variables
        ]
        self.cells = {  # an arrayed variable's or built-in's culprit names, per cell
            name: cell_labels(model, label, model.dims(name))
            for name, label in [(v[0], v[1]) for v in self.variables]
            + [(mem.name, mem.label) for mem in model.memories]
            if model.dims(name)
        }
        # Stage 2 in the model's order: a variable, or a built-in's output (a MemoryDef).
        by_name: dict[str, Any] = {v[0]: v for v in self.variables}
        by_name |= {mem.name: mem for mem in model.memories}
        self.stage2 = [by_name[name] for name in model.stage2] or self.variables
        self.rates = [(f.index, f.rate) for f in model.flows]
        # Every noisy flow cell's noise, (ticks, runs) each (a cell is drawn on its own), in
        # row order; rows next to each other are multiplied as one span, from a buffer that
        # holds a few ticks of all of them (copying a whole block's noise would double it).
        cells = [
            (f.row + j, noise[c])
            for f in model.flows
            if f.noise
            for j, c in enumerate(model.cells(f.name) if f.dims else [f.name])
        ]
        self.noisy = [row for row, _ in cells]
        self.noise_spans = _spans(self.noisy)
        self.noise_cells = [z for _, z in cells]
        per_tick = max(1, len(cells) * n * 8)
        self.noise_ticks = max(1, min(model.ticks, NOISE_BUFFER // per_tick))
        self.noise_buffer = np.empty((self.noise_ticks, len(cells), n))
        self.flow_labels = [
            c for f in model.flows for c in cell_labels(model, f"flows.{f.name}", f.dims)
        ]
        self.stock_labels = [
            c for s in model.stocks for c in cell_labels(model, f"stocks.{s.name}", s.dims)
        ]
        # Outflows per giving stock, in declared flow order (the order sums are taken in),
        # each with its role: a two-way flow is an outflow of both its ends (semantics.giving).
        self.outflows: list[tuple[int, bool, list[tuple[int, Role, tuple[str, ...]]]]] = [
            (s.index, s.unlimited, [(f.index, role, f.dims) for f, role in flows])
            for s, flows in giving(model)
        ]
        self.two_way = [f.index for f in model.flows if f.two_way]
        self.one_way = [slice(f.row, f.row + f.size) for f in model.flows if not f.two_way]

    def run(self, observer: Observer | None, keep: int | None) -> Block:
        m, n = self.m, self.n
        keep = n if keep is None else max(0, min(keep, n))
        outcomes = Outcomes(m, n)
        series = {name: np.empty((m.ticks, keep)) for name, expr in m.record if not expr.whole}
        # An arrayed record's cells: one (ticks, cells, kept runs) array, a view per cell.
        self.recorded: list[tuple[Expr, np.ndarray]] = []
        for name, expr in m.record:
            whole = expr.whole
            if whole is None:
                continue
            if not self.recorded or self.recorded[-1][0] is not whole:
                size = math.prod(m.shape_of(whole.dims))
                self.recorded.append((whole, np.empty((m.ticks, size, keep))))
            row = int(np.ravel_multi_index(expr.cell, m.shape_of(whole.dims)))
            series[name] = self.recorded[-1][1][:, row, :]
        for t in range(m.ticks):
            self.ns.update(calendar(m, t))
            self.events(t)
            self.evaluate_variables(t)
            self.request(t)
            self.advance_memories(t)
            self.ration()
            self.transfer(t)
            self.record(t, outcomes, series, keep)
            if observer is not None:
                observer(t, self.S, self.TR)
        return Block(outcomes.result(), series, self.health.tick, self.health.name)

    def start(self) -> None:
        """Before the first tick: stocks' initial values, built-ins' starting states and the
        variables they read, in dependency order, at tick 0's time and before its events."""
        m, ns, n = self.m, self.ns, self.n
        ns.update(calendar(m, 0))
        stocks = {s.name: s for s in m.stocks}
        variables = dict(m.variables)
        memories = {mem.name: mem for mem in m.memories}
        for name in m.initial or [s.name for s in m.stocks]:
            if name in stocks:
                s = stocks[name]
                held = self.stock_at[s.index]
                held[...] = s.initial(ns)
                ns[name] = held
                if not s.unlimited:  # a source or a balance may start below zero
                    rows = self.S[s.row : s.row + s.size]
                    cell, bad = np.nonzero(~(rows >= 0))
                    if bad.size:
                        run = self.first_run + int(bad[0])
                        where = cell_labels(m, s.name, s.dims)[int(cell[0])]
                        raise below_zero(m, s, float(rows[cell[0], bad[0]]), where, run)
            elif name in variables:
                shape = m.shape(name)
                ns[name] = np.array(np.broadcast_to(variables[name](ns), (*shape, n)))
            else:
                ns[name] = self.memory.start(memories[name], ns)

    # -- the tick's stages, in the contract's order ------------------------------------
    def events(self, t: int) -> None:
        """1. Events due at t, in declared order: set state, scale parameters."""
        ns = self.ns
        for e, fire, when in zip(self.m.events, self.fire, self.fire_ticks, strict=True):
            if t not in when:
                continue
            mask: Any = True if isinstance(fire, float) else fire == t
            for name, expr in e.sets:
                base, index = e.target(name)
                held = self.X[base][index] if index else self.X[base]
                np.copyto(held, expr(ns), where=mask)
            for name, expr in e.scales:
                base, index = e.target(name)
                held = self.P[base][index] if index else self.P[base]
                np.multiply(held, expr(ns), out=held, where=mask)

    def evaluate_variables(self, t: int) -> None:
        """2. Variables and built-ins' outputs, in dependency order."""
        ns = self.ns
        for item in self.stage2:
            if isinstance(item, MemoryDef):
                ns[item.name] = value = self.memory.output(item, ns, t)
                self.health.see(t, item.label, value, self.cells.get(item.name))
                continue
            name, label, expr, alias = item
            # A bare alias of a stock would follow the stock through the transfer; copy it.
            ns[name] = value = np.array(expr(ns)) if alias else expr(ns)
            self.health.see(t, label, value, self.cells.get(name))

    def request(self, t: int) -> None:
        """3. Requests: max(0, rate) times the tick's noise; a two-way flow's keeps its sign."""
        R, ns, at = self.R, self.ns, self.R_at
        for i, rate in self.rates:
            at[i][...] = rate(ns)
        self.health.check_rows(t, self.flow_labels, R)  # before max(0, .) hides a -inf
        if not self.two_way:
            np.maximum(R, 0.0, out=R)
        else:
            for rows in self.one_way:
                np.maximum(R[rows], 0.0, out=R[rows])
        if self.noisy:
            k = t % self.noise_ticks
            if k == 0:
                ticks = min(self.noise_ticks, self.m.ticks - t)
                chunk = [z[t : t + ticks] for z in self.noise_cells]
                np.stack(chunk, axis=1, out=self.noise_buffer[:ticks])
            noise = self.noise_buffer[k]
            for start, stop, at in self.noise_spans:
                R[start:stop] *= noise[at : at + stop - start]
        moved(R, self.m.step)

    def advance_memories(self, t: int) -> None:
        """3b. Built-ins advance from this tick's inputs (flow.NAME still last tick's)."""
        if self.m.memories:
            self.memory.advance(t, self.ns)

    def ration(self) -> None:
        """4. Rationing, and what leaves each giving stock. A two-way flow asks of both its
        ends (zero of the one it gives to, run by run); its amount is what its `from` gave
        minus what its `to` gave."""
        R, A = self.R_at, self.A_at
        np.copyto(self.A, self.R)
        gave: dict[tuple[int, Role], np.ndarray] = {}
        for s, unlimited, flows in self.outflows:
            requests = [asked(R[i], role) for i, role, _ in flows]
            over = [have for _, _, have in flows]
            given, _ = ration_cells(
                self.stock_at[s], requests, over, self.m.stocks[s].dims, unlimited
            )
            for (i, role, _), amount in zip(flows, given or requests, strict=True):
                if role != "out":
                    gave[i, role] = amount
                elif given is not None:
                    A[i][...] = amount
        for i in self.two_way:
            A[i][...] = signed(gave[i, "from"], gave[i, "to"])

    def transfer(self, t: int) -> None:
        """5. Transfer: arrivals in declared flow order; delayed amounts wait in a ring."""
        S, A, TR = self.stock_at, self.A_at, self.TR_at
        for f in self.m.flows:
            a = A[f.index]
            if f.two_way:  # never delayed (a load error)
                into_to, into_from = received(a)
                deliver(S[f.target], into_to, f.dims, f.target_dims)
                deliver(S[f.source], into_from, f.dims, f.source_dims)
            elif f.delay == 0:
                deliver(S[f.target], a, f.dims, f.target_dims)
            else:
                slot = self.ring[f.index][t % f.delay]
                if t >= f.delay:
                    deliver(S[f.target], slot, f.dims, f.target_dims)
                    TR[f.index] -= slot
                slot[...] = a
                TR[f.index] += a

    def record(self, t: int, outcomes: Outcomes, series: dict[str, np.ndarray], keep: int) -> None:
        """6. Record: this tick's amounts, then outcomes and series on the new state."""
        A, C, ns = self.A, self.C, self.ns
        for i in self.cum_rows:
            C[i] += A[i]
        self.health.check_rows(t, self.flow_labels, A)
        self.health.check_rows(t, self.stock_labels, self.S)
        outcomes.update(t, ns, self.health)
        if keep:
            for name, expr in self.m.record:
                if expr.whole is None:
                    series[name][t] = np.broadcast_to(expr(ns), (self.n,))[:keep]
            for whole, held in self.recorded:
                shape = self.m.shape_of(whole.dims)
                value = np.broadcast_to(whole(ns), (*shape, self.n))
                held[t] = value.reshape((held.shape[1], self.n))[:, :keep]


def _expressions(m: Model) -> list[Expr]:
    """Every expression a model evaluates while it steps."""
    out = [f.rate for f in m.flows] + [e for _, e in m.variables]
    out += [a for mem in m.memories for a in mem.args]
    out += [o.expr for o in m.outcomes] + [e for _, e in m.record]
    for ev in m.events:
        out += [e for _, e in ev.sets] + [e for _, e in ev.scales]
    return out


def _view(matrix: np.ndarray, row: int, shape: tuple[int, ...]) -> np.ndarray:
    """A stock's or flow's rows of a (cells, runs) matrix as one array over its dimensions,
    (*shape, runs); a scalar's one row. A view: writing it writes the matrix."""
    if not shape:
        return matrix[row]
    return matrix[row : row + math.prod(shape)].reshape((*shape, matrix.shape[1]))


def _spans(rows: list[int]) -> list[tuple[int, int, int]]:
    """Increasing row numbers as runs of consecutive rows: (first, stop, position in `rows`)."""
    out: list[tuple[int, int, int]] = []
    for at, row in enumerate(rows):
        if out and out[-1][1] == row:
            out[-1] = (out[-1][0], row + 1, out[-1][2])
        else:
            out.append((row, row + 1, at))
    return out


def _block_size(noise: Mapping[str, np.ndarray]) -> int:
    if not noise:
        raise ValueError("a block needs at least one parameter or noise array to know its size")
    return next(iter(noise.values())).shape[1]
