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

import itertools
import math
import sys
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
    fire_tick,
    giving,
    moved,
    pieces,
    received,
    signed,
)
from sim.errors import ScenarioError
from sim.model import MemoryDef, Model
from sim.scenario.dims import Dims, fold_rows
from sim.scenario.expr import Expr

Observer = Callable[[int, np.ndarray, np.ndarray], None]

NOISE_BUFFER = 4 * 2**20  # bytes of noise copied ahead, a few ticks of every noisy flow cell
# An arrayed model's block is stepped in slices of runs (`slice_runs`) whose matrices take
# about CACHE_BYTES (benchmarks/dimensions.py: on a machine with 1 MiB of L2 per core and a
# 32 MiB L3, a slice's state under ~10 MiB runs about twice as fast per run as one of 100 MiB).
CACHE_BYTES = 8 * 2**20
CELLS_PER_STEP = 32
MIN_SLICE = 64


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
    conservation). Raises ScenarioError if a stock starts negative.

    A big block is run in slices of runs (`slice_runs`) that keep the kernel's state small
    enough to stay in the processor's cache: every run is computed on its own, so the
    slices give the same bits as one pass over the block would."""
    if n is None:
        n = len(next(iter(params.values()))) if params else _block_size(noise)
    size = slice_runs(model)
    with np.errstate(all="ignore"):
        if observer is not None or n <= size:
            return _Kernel(model, params, noise, first_run, n).run(observer, keep)
        keep = n if keep is None else max(0, min(keep, n))
        cuts = -(-n // size)
        bounds = [n * i // cuts for i in range(cuts + 1)]
        blocks = []
        series: dict[str, np.ndarray] = {}  # the block's, each slice's kept runs copied in
        for lo, hi in itertools.pairwise(bounds):
            part = {k: v[lo:hi] if np.ndim(v) else v for k, v in params.items()}
            drawn = {k: v[:, lo:hi] for k, v in noise.items()}
            try:
                kernel = _Kernel(model, part, drawn, first_run + lo, hi - lo)
            except ScenarioError:
                # A stock starts below zero: name the cell and run that the block as one
                # would (the first cell with such a run, then that cell's first run).
                _Kernel(model, params, noise, first_run, n)
                raise
            kept = max(0, min(keep - lo, hi - lo))
            block = kernel.run(None, kept)
            for name, values in block.series.items():
                if name not in series:
                    series[name] = np.empty((model.ticks, keep))
                series[name][:, lo : lo + kept] = values
            block.series = {}
            blocks.append(block)
    first = blocks[0]
    return Block(
        {k: np.concatenate([b.outcomes[k] for b in blocks]) for k in first.outcomes},
        series,
        np.concatenate([b.bad_tick for b in blocks]),
        np.concatenate([b.bad_name for b in blocks]),
    )


def slice_runs(model: Model) -> int:
    """How many runs the kernel steps together at most. An arrayed model, whose each step of
    a tick (an expression, a group of stock cells) moves CELLS_PER_STEP cells or more, is
    bound by memory at big blocks: it is stepped in slices of runs whose matrices (stock
    cells, requests, amounts, rings, what is under way) fit in CACHE_BYTES. A model of
    scalar steps is bound by Python's cost per step and wants long rows: not sliced."""
    k = sum(f.size for f in model.flows)
    w = sum(f.size for f in model.flows if f.two_way)
    rows = sum(s.size for s in model.stocks) + 4 * k + 6 * w
    rows += sum(f.size * f.delay for f in model.flows)
    # An arrayed outcome's or record's cells are evaluated as one expression.
    exprs = [o.expr for o in model.outcomes] + [e for _, e in model.record]
    wholes = {id(e.whole or e) for e in exprs}
    steps = len(model.flows) + len(model.variables) + len(model.memories) + len(wholes)
    if rows < CELLS_PER_STEP * steps:
        return sys.maxsize
    return max(CACHE_BYTES // (8 * rows), MIN_SLICE)


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
        self.C = np.zeros((k, n))  # cumulative actual amounts
        self.TR = np.zeros((k, n))  # amounts under way
        # The two-way flows' rows: each asks of both its ends (semantics.giving).
        self.tw = np.array(
            [f.row + j for f in model.flows if f.two_way for j in range(f.size)], dtype=np.intp
        )
        w = len(self.tw)
        # Q: this tick's requests (R), then what each two-way flow cell asks of its `from`
        # end and of its `to` end: every row a stock cell is asked for, in one matrix.
        self.Q = np.zeros((k + 2 * w, n))
        self.R = self.Q[:k]
        # M: last tick's actual amounts (F), then what was given for the two-way rows of Q
        # (G = M[:k + 2w] is Q as rationed), then what each two-way flow cell brings to its
        # `to` end and to its `from` end, then the delay rings: every row a stock cell
        # receives from, in one matrix.
        delays = sorted({f.delay for f in model.flows if f.delay})
        delayed = {d: [f for f in model.flows if f.delay == d] for d in delays}
        ring_rows = {d: sum(f.size for f in fs) for d, fs in delayed.items()}
        self.M = np.zeros((k + 4 * w + sum(d * ring_rows[d] for d in delays), n))
        self.F = self.M[:k]
        self.G = self.M[: k + 2 * w]
        # This tick's actual amounts are written over last tick's: nothing reads flow.NAME
        # after the requests (step 3), and from the record on (step 6) it is this tick's.
        self.A = self.F
        # Each stock's and flow's rows, as one array over its dimensions (views, no copies).
        self.stock_at = [_view(self.S, s.row, s.shape) for s in model.stocks]
        self.R_at = [_view(self.R, f.row, f.shape) for f in model.flows]
        self.TR_at = [_view(self.TR, f.row, f.shape) for f in model.flows]
        # Each delay's ring: (delay, rows of its flows, runs), a slot per tick of the delay.
        self.rings: list[tuple[int, np.ndarray, list[tuple[int, int, int]]]] = []
        ring_at: dict[int, tuple[int, int]] = {}  # flow row -> (delay, its row in the ring)
        first = k + 4 * w
        for d in delays:
            rows = [f.row + j for f in delayed[d] for j in range(f.size)]
            ring_at |= {row: (d, first + i) for i, row in enumerate(rows)}
            ring = self.M[first : first + d * len(rows)].reshape((d, len(rows), n))
            self.rings.append((d, ring, _spans(rows)))
            first += d * len(rows)
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
        self.giving = _giving_plan(model, self.outflows, self.tw, n)
        self.nonpositive = np.empty(self.R.shape, dtype=bool)
        # What is under way (transit.NAME) is kept only when some expression reads it, or an
        # observer is given (`run`).
        read = {name for e in _expressions(model) for name in e.names}
        self.transit = any(name.startswith("transit.") for name in read)
        self.ring_at = ring_at
        self.arriving: dict[tuple[bool, ...], list[_Arriving]] = {}  # by which delays began

    def run(self, observer: Observer | None, keep: int | None) -> Block:
        m, n = self.m, self.n
        self.transit = self.transit or observer is not None
        keep = n if keep is None else max(0, min(keep, n))
        outcomes = Outcomes(m, n)
        series = {name: np.empty((m.ticks, keep)) for name, expr in m.record if not expr.whole}
        # An arrayed record's cells: one (ticks, cells, kept runs) array, a view per cell.
        self.recorded: list[tuple[Expr, np.ndarray, tuple[int, ...]]] = []
        for name, expr in m.record:
            whole = expr.whole
            if whole is None:
                continue
            if not self.recorded or self.recorded[-1][0] is not whole:
                shape = m.shape_of(whole.dims)
                held = np.empty((m.ticks, math.prod(shape), keep))
                self.recorded.append((whole, held, (*shape, n)))
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
            # max(0, R) in place, bit for bit (NaN kept, -0.0 made 0.0), in two fast passes
            # where np.maximum takes about three times as long.
            np.less_equal(R, 0.0, out=self.nonpositive)
            np.copyto(R, 0.0, where=self.nonpositive)
        else:
            for rows in self.one_way:
                np.maximum(R[rows], 0.0, out=R[rows])
        if self.noisy:
            k = t % self.noise_ticks
            if k == 0:
                ticks = min(self.noise_ticks, self.m.ticks - t)
                ahead = [z[t : t + ticks] for z in self.noise_cells]
                np.stack(ahead, axis=1, out=self.noise_buffer[:ticks])
            now = self.noise_buffer[k]
            for start, stop, pos in self.noise_spans:
                R[start:stop] *= now[pos : pos + stop - start]
        moved(R, self.m.step)

    def advance_memories(self, t: int) -> None:
        """3b. Built-ins advance from this tick's inputs (flow.NAME still last tick's)."""
        if self.m.memories:
            self.memory.advance(t, self.ns)

    def ration(self) -> None:
        """4. Rationing, and what leaves each giving stock. A two-way flow asks of both its
        ends (zero of the one it gives to, run by run); its amount is what its `from` gave
        minus what its `to` gave.

        All at once: the stock cells that are asked of come in groups of consecutive rows of
        S asked by the same number of flow cells; a group's requests are gathered from Q in
        the order `semantics.ration_cells` adds them (declared flow order, then each flow's
        cells, as `semantics.pieces` lays them out) and added up one after another."""
        Q, G, S, k = self.Q, self.G, self.S, len(self.R)
        w = len(self.tw)
        if w:
            two = self.R[self.tw]
            Q[k : k + w] = asked(two, "from")
            Q[k + w :] = asked(two, "to")
        np.copyto(G, Q)
        for g in self.giving:
            out = g.asked(Q)
            content = S[g.rows]
            if g.unlimited:
                content -= out
                continue
            short = out > content
            if not short.any():
                content -= out
                continue
            factor = content / out
            request = Q[g.qrows]
            given = np.where(short[g.pos], request * factor[g.pos], request)
            lost = short & (factor == 0) & (content > 0)
            if lost.any():
                # The share underflowed (a tiny stock asked for huge amounts): split what it
                # holds by each flow's part of the request instead, or the stock would vanish.
                share = request / out[g.pos] * content[g.pos]
                given = np.where(lost[g.pos], share, given)
            G[g.qrows] = given
            content[...] = np.where(short, 0.0, content - out)
        if w:
            self.F[self.tw] = signed(G[k : k + w], G[k + w :])

    def transfer(self, t: int) -> None:
        """5. Transfer: arrivals in declared flow order; delayed amounts wait in a ring.

        All at once, as rationing: the stock cells that receive come in groups of
        consecutive rows of S receiving the same number of flow cells; a group's arrivals are
        gathered from M in the order `semantics.deliver` adds them and added to the stock
        one after another."""
        M, S, k, w = self.M, self.S, len(self.F), len(self.tw)
        if w:
            M[k + 2 * w : k + 3 * w], M[k + 3 * w : k + 4 * w] = received(self.F[self.tw])
        began = tuple(t >= d for d, _, _ in self.rings)
        plan = self.arriving.get(began)
        if plan is None:
            plan = self.arriving[began] = _arriving_plan(self, began)
        phases = [t % d for d, _, _ in self.rings]
        for g in plan:
            g.deliver(M, S, phases)
        TR, transit = self.TR, self.transit
        for (_, ring, spans), phase, on in zip(self.rings, phases, began, strict=True):
            slot = ring[phase]
            for start, stop, at in spans:
                held = slot[at : at + stop - start]
                if on and transit:
                    TR[start:stop] -= held
                held[...] = M[start:stop]
                if transit:
                    TR[start:stop] += held

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
            for whole, held, shape in self.recorded:
                value = np.broadcast_to(whole(ns), shape)
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


class _Giving:
    """Consecutive stock cells (rows of S) each asked of by k flow cells: `idx[j, c]` is the
    row of Q that is the j-th to ask of cell c."""

    def __init__(self, rows: list[int], idx: np.ndarray, unlimited: bool, n: int):
        self.rows = slice(rows[0], rows[-1] + 1)
        self.unlimited = unlimited
        self.idx = idx
        k, m = idx.shape
        self.qrows = idx.reshape(-1)  # every Q row asking of the group, and its cell
        self.pos = np.tile(np.arange(m), k)
        self.view = _range(idx[0]) if k == 1 else None
        # Rows laid out cell after cell (idx[j, c] = first + c k + j) or flow cell after
        # flow cell (first + j m + c) are reduced where they are, along their axis: numpy
        # adds along an axis that is not the last one row after another, as fold_rows does
        # (a block of one run, whose rows are single values, is gathered instead).
        self.block: tuple[slice, tuple[int, int], int] | None = None
        if k > 1 and n > 1:
            first = int(idx[0, 0])
            if (idx == first + np.arange(m) * k + np.arange(k)[:, np.newaxis]).all():
                self.block = (slice(first, first + k * m), (m, k), 1)
            elif (idx == first + np.arange(m) + np.arange(k)[:, np.newaxis] * m).all():
                self.block = (slice(first, first + k * m), (k, m), 0)
        self.gathered = np.empty((k, m, n)) if k > 1 and self.block is None else None
        self.total = np.empty((m, n))

    def asked(self, Q: np.ndarray) -> np.ndarray:
        """What each cell is asked: its requests added one after another (`fold_rows`)."""
        if self.view is not None:
            return Q[self.view]
        if self.block is not None:
            span, shape, axis = self.block
            return np.add.reduce(Q[span].reshape((*shape, -1)), axis=axis, out=self.total)
        if self.gathered is None:
            return np.take(Q, self.idx[0], axis=0, out=self.total, mode="clip")
        rows = np.take(Q, self.idx, axis=0, out=self.gathered, mode="clip")
        if rows[0].size >= 2:
            return np.add.reduce(rows, axis=0, out=self.total)
        return fold_rows(np.add, rows)


class _Arriving:
    """Consecutive stock cells (rows of S) each receiving k flow cells: `idx[j, c]` is the
    row of M that is the j-th to arrive in cell c, with a delay ring's slot 0; `shift[i]`
    moves the entries of ring i to its slot of the tick."""

    def __init__(self, rows: list[int], idx: np.ndarray, shift: list[np.ndarray], n: int):
        self.rows = slice(rows[0], rows[-1] + 1)
        self.idx = idx
        self.shift = [(i, s) for i, s in enumerate(shift) if s.any()]
        k, m = idx.shape
        # One flow cell each from one run of rows of M (moved as one by a single ring).
        self.view = _range(idx[0]) if k == 1 else None
        self.ring, self.step = 0, 0
        if self.view is not None and self.shift:
            i, s = self.shift[0]
            if len(self.shift) == 1 and (s == s[0, 0]).all():
                self.ring, self.step = i, int(s[0, 0])
            else:
                self.view = None
        self.buffer = np.empty((k + 1, m, n)) if self.view is None else None

    def deliver(self, M: np.ndarray, S: np.ndarray, phases: list[int]) -> None:
        """Add each cell's arrivals to it, one after another (`semantics.deliver`)."""
        held = S[self.rows]
        if self.view is not None:
            at = phases[self.ring] * self.step if self.step else 0
            held += M[self.view.start + at : self.view.stop + at]
            return
        idx = self.idx
        for i, s in self.shift:
            idx = idx + s * phases[i]
        rows = self.buffer
        assert rows is not None
        rows[0] = held
        np.take(M, idx, axis=0, out=rows[1:], mode="clip")
        if rows[0].size >= 2:
            np.add.reduce(rows, axis=0, out=held)
        else:
            held[...] = fold_rows(np.add, rows)


def _cells(m: Model, stock: int, parts: list[np.ndarray]) -> list[list[int]]:
    """Each cell of a stock's list of rows, from `parts` (each (k, cells of the stock)) in
    order."""
    out: list[list[int]] = [[] for _ in range(m.stocks[stock].size)]
    for p in parts:
        for c, rows in enumerate(p.T.tolist()):
            out[c].extend(rows)
    return out


def _laid_out(rows: np.ndarray, shape: tuple[int, ...], have: Dims, dims: Dims) -> np.ndarray:
    """Rows numbering a flow's cells (over `have`) as the parts that reach, or leave, each
    cell of a stock over `dims` (shape `shape`): (k, cells of the stock), in the order
    `semantics.pieces` lays the flow's amounts out (the index is run through it)."""
    ids = rows.reshape((*np.shape(rows), 1))
    parts = pieces(ids, have, dims)
    if parts is None:
        parts = np.broadcast_to(ids, (*shape, 1))[np.newaxis]
    return parts.reshape((parts.shape[0], -1))


def _groups(
    cells: dict[int, list[int]], key: Callable[[int], Any]
) -> list[tuple[list[int], np.ndarray]]:
    """Rows of S (with their lists of rows) cut into runs of consecutive rows whose lists are
    as long and whose `key` is the same: (the rows, their lists as a (k, rows) matrix)."""
    out: list[tuple[list[int], list[list[int]]]] = []
    last: Any = None
    for row in sorted(cells):
        mark = (len(cells[row]), key(row))
        if out and mark == last and out[-1][0][-1] == row - 1:
            out[-1][0].append(row)
            out[-1][1].append(cells[row])
        else:
            out.append(([row], [cells[row]]))
        last = mark
    return [(rows, np.array(lists, dtype=np.intp).T) for rows, lists in out]


def _giving_plan(
    m: Model,
    outflows: list[tuple[int, bool, list[tuple[int, Role, tuple[str, ...]]]]],
    tw: np.ndarray,
    n: int,
) -> list[_Giving]:
    """The groups rationing works in: each stock cell asked of, with the rows of Q asking
    of it in the order `semantics.ration_cells` adds them."""
    k, w = sum(f.size for f in m.flows), len(tw)
    where = {int(row): i for i, row in enumerate(tw)}
    cells: dict[int, list[int]] = {}
    unlimited: dict[int, bool] = {}
    for s, free, flows in outflows:
        stock = m.stocks[s]
        parts = []
        for i, role, have in flows:
            f = m.flows[i]
            rows = f.row + np.arange(f.size).reshape(f.shape)
            if role == "from":
                rows = k + np.vectorize(where.__getitem__, otypes=[np.intp])(rows)
            elif role == "to":
                rows = k + w + np.vectorize(where.__getitem__, otypes=[np.intp])(rows)
            parts.append(_laid_out(rows, stock.shape, have, stock.dims))
        for c, rows_of in enumerate(_cells(m, s, parts)):
            cells[stock.row + c] = rows_of
            unlimited[stock.row + c] = free
    return [
        _Giving(rows, idx, unlimited[rows[0]], n)
        for rows, idx in _groups(cells, unlimited.__getitem__)
    ]


def _arriving_plan(kernel: _Kernel, began: tuple[bool, ...]) -> list[_Arriving]:
    """The groups the transfer works in while the delays in `began` deliver: each stock
    cell receiving, with the rows of M arriving in it in the order `semantics.deliver` adds
    them (declared flow order, then each flow's cells as `semantics.pieces` lays them out)."""
    m, k, w = kernel.m, len(kernel.F), len(kernel.tw)
    where = {int(row): i for i, row in enumerate(kernel.tw)}
    delays = [d for d, _, _ in kernel.rings]
    parts: dict[int, list[tuple[np.ndarray, int]]] = {}  # stock -> (parts, ring or -1)
    for f in m.flows:
        rows = f.row + np.arange(f.size).reshape(f.shape)
        ends: list[tuple[int, tuple[str, ...], np.ndarray, int]] = []
        if f.two_way:
            pos = np.vectorize(where.__getitem__, otypes=[np.intp])(rows)
            ends.append((f.target, f.target_dims, k + 2 * w + pos, -1))
            ends.append((f.source, f.source_dims, k + 3 * w + pos, -1))
        elif f.delay == 0:
            ends.append((f.target, f.target_dims, rows, -1))
        elif began[delays.index(f.delay)]:
            at = np.vectorize(lambda r: kernel.ring_at[r][1], otypes=[np.intp])(rows)
            ends.append((f.target, f.target_dims, at, delays.index(f.delay)))
        for stock, dims, ids, ring in ends:
            s = m.stocks[stock]
            parts.setdefault(stock, []).append((_laid_out(ids, s.shape, f.dims, dims), ring))
    cells: dict[int, list[int]] = {}
    rings: dict[int, list[int]] = {}
    for stock, laid in parts.items():
        row = m.stocks[stock].row
        for c, rows_of in enumerate(_cells(m, stock, [p for p, _ in laid])):
            cells[row + c] = rows_of
        marks = [np.full(p.shape, ring) for p, ring in laid]
        for c, rings_of in enumerate(_cells(m, stock, marks)):
            rings[row + c] = rings_of
    sizes = [ring.shape[1] for _, ring, _ in kernel.rings]
    out = []
    for group, idx in _groups(cells, lambda row: None):
        marked = np.array([rings[r] for r in group], dtype=np.intp).T
        shift = [np.where(marked == i, size, 0) for i, size in enumerate(sizes)]
        out.append(_Arriving(group, idx, shift, kernel.n))
    return out


def _range(rows: np.ndarray) -> slice | None:
    """A slice for increasing consecutive rows, or None."""
    if rows.size and (np.diff(rows) == 1).all():
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return None


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
