"""The compiled engine: a model turned into one straight-line numba function.

`run_block` (the `Engine` interface) generates Python source from the compiled `Model` — every
stock, flow, variable, built-in's state and outcome of every cell a local scalar, inside a
loop over runs with the tick loop inside — compiles it with numba and runs it. The tick is
the contract's (DESIGN.md, `sim.engine.semantics`), written as scalar statements in the
kernel's order with the kernel's floating-point operations: sums are taken in the same order
(declared flow order, then each flow's cell order), rationing scales by the same factor, the
built-ins advance by the same Euler step, and a run's first non-finite value is looked for in
the same order (event times, variables, rates, actual flows, stocks, outcomes).

Each expression is translated from the code the expression compiler generated (a small closed
language of numpy calls, `sim.scenario.expr`), evaluated symbolically over cells: a value over
dimensions is an array of scalar code, one per cell, aligned by dimension name as the kernel's
arrays are, and reductions fold the cells one after another as `fold_rows` does.

The generated module is written to the cache directory (`$SIM_CACHE_DIR`, else
`$XDG_CACHE_HOME/sim/numba`, else `~/.cache/sim/numba`) under a name hashed from its source
(the model) and the numba version, never overwritten (written aside, then linked into place),
and numba caches its machine code beside it: a model compiled once is loaded, not compiled, by
the next process and by every worker of a pool or a Dask cluster.

What the kernel computes with numpy's vectorised `exp`, `log`, `pow` and trigonometry the
compiled code computes with the C library's scalar functions: both are within an ulp of the
exact value, but not always the same ulp, so a model using them agrees with the kernel to
~1e-15 relative rather than bit for bit. Everything else — arithmetic, comparisons, min/max,
interp, rationing, the built-ins — gives the kernel's bits.

The draws are the kernel's, read where they lie: parameters one column per run, each noisy
flow cell's (ticks, runs) multipliers as drawn, not copied (run after run, the cache lines a
run's ticks touch are the next run's too). A lognormal's `exp` stays in `noise_draws`'s one
vectorised pass: numpy's exp is ~3.5x faster than the scalar one in the loop, and its bits are
the kernel's.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import math
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.engine.semantics import (
    ORDER,
    Block,
    below_zero,
    cell_labels,
    fire_tick,
    giving,
    outcome_groups,
)
from sim.errors import ScenarioError
from sim.model import MemoryDef, Model
from sim.scenario.expr import Expr

LANES = 8  # running sums for the non-finite check
INSTALL_HINT = "pip install -e '.[fast]' (the fast extra installs numba)"
GENERATOR_VERSION = "1"  # bump when the generated code changes meaning


class NotCompilable(ValueError):
    """A construct the compiled engine can't translate (named in the message)."""


def available() -> bool:
    """Whether numba can be imported."""
    return importlib.util.find_spec("numba") is not None


def require() -> None:
    """Raise the user's error (exit 2) when numba is not installed."""
    if not available():
        raise ScenarioError.one(
            "--engine numba needs numba, which is not installed", hint=INSTALL_HINT
        )


def run_block(
    model: Model,
    params: Mapping[str, np.ndarray],
    noise: Mapping[str, np.ndarray],
    first_run: int = 0,
    n: int | None = None,
    keep: int | None = None,
) -> Block:
    """Run runs [first_run, first_run + n) of `model` on their draws (the `Engine`
    interface): the same results as `sim.engine.kernel.run_block` (see the module doc)."""
    require()
    program = compiled(model)
    if n is None:
        if params:
            n = len(next(iter(params.values())))
        elif noise:
            n = next(iter(noise.values())).shape[1]
        else:
            raise ValueError("a block needs at least one parameter or noise array to know its size")
    keep = n if keep is None else max(0, min(keep, n))
    return program.run(model, params, noise, first_run, n, keep)


# -- the generated program ---------------------------------------------------------------------
@dataclass
class Program:
    """A model's generated source and, once loaded, its compiled function."""

    source: str
    key: str
    params: list[str]  # P's columns: parameter cells, as drawn
    state: list[float]  # X0: every state cell's starting value
    noises: list[str]  # NZ's arrays: noisy flow cells
    data: list[tuple[int, tuple[int, ...]]]  # DATA's columns: (data index, cell)
    outcomes: list[str]
    series: list[str]
    labels: list[str]  # culprit names by code
    initial_stocks: list[int]  # stock index by bad-initial code
    fn: Callable[..., Any] | None = None

    def load(self) -> Callable[..., Any]:
        if self.fn is None:
            self.fn = _load(self.source, self.key)
        return self.fn

    def run(
        self,
        model: Model,
        params: Mapping[str, np.ndarray],
        noise: Mapping[str, np.ndarray],
        first_run: int,
        n: int,
        keep: int,
    ) -> Block:
        fn = self.load()
        ticks = model.ticks
        P = np.empty((n, max(1, len(self.params))))
        for k, name in enumerate(self.params):
            P[:, k] = np.broadcast_to(np.asarray(params[name], dtype=np.float64), (n,))
        X0 = np.array(self.state or [0.0], dtype=np.float64)
        # Each noisy flow cell's (ticks, runs) array as drawn, not copied: run after run,
        # the few cache lines a run's ticks touch are the next run's too.
        NZ = tuple(np.ascontiguousarray(noise[cell], dtype=np.float64) for cell in self.noises) or (
            np.zeros((ticks, 1)),
        )
        DATA = np.zeros((ticks, max(1, len(self.data))))
        for k, (d, cell) in enumerate(self.data):
            index: tuple[Any, ...] = (slice(None), *cell)
            DATA[:, k] = model.data[d].values[index]
        CAL = np.empty((ticks, 3))
        for t in range(ticks):
            year, month = model.calendar(t)
            CAL[t] = (model.time(t), float(month), float(year))
        OUT = np.empty((n, max(1, len(self.outcomes))))
        # Recorded series as the kernel holds them, (ticks, runs) each: run after run, the
        # few cache lines a run's ticks write are the next run's too, and no copy is needed.
        SER = np.empty((max(1, len(self.series)), ticks, max(1, keep)))
        BT = np.full(n, -1, dtype=np.int64)
        BC = np.full(n, -1, dtype=np.int64)
        BADI = np.full((n, 2), -1, dtype=np.int64)
        BADV = np.zeros(n)
        fn(P, X0, NZ, DATA, CAL, np.int64(n), np.int64(keep), OUT, SER, BT, BC, BADI, BADV)
        bad = np.flatnonzero(BADI[:, 0] >= 0)
        if bad.size:
            order = np.lexsort((bad, BADI[bad, 1], BADI[bad, 0]))
            run = int(bad[order[0]])
            s = model.stocks[self.initial_stocks[int(BADI[run, 0])]]
            where = cell_labels(model, s.name, s.dims)[int(BADI[run, 1])]
            raise below_zero(model, s, float(BADV[run]), where, first_run + run)
        names = np.array(["", *self.labels], dtype=object)
        outcomes = {name: OUT[:, k].copy() for k, name in enumerate(self.outcomes)}
        series = {name: SER[k, :, :keep] for k, name in enumerate(self.series)}
        return Block(outcomes, series, BT, names[BC + 1])


_LOCK = threading.Lock()
_PROGRAMS: dict[int, tuple[Model, Program]] = {}
_LOADED: dict[str, Callable[..., Any]] = {}


def compiled(model: Model) -> Program:
    """The model's program, generated once per process per model (and compiled once per
    machine: see the module doc)."""
    with _LOCK:
        held = _PROGRAMS.get(id(model))
        if held is not None and held[0] is model:
            return held[1]
    program = generate(model)
    with _LOCK:
        if len(_PROGRAMS) >= 32:
            _PROGRAMS.pop(next(iter(_PROGRAMS)))
        _PROGRAMS[id(model)] = (model, program)
    return program


def cache_dir() -> Path:
    """Where generated modules and numba's machine code are kept."""
    if os.environ.get("SIM_CACHE_DIR"):
        return Path(os.environ["SIM_CACHE_DIR"]) / "numba"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sim" / "numba"


def _load(source: str, key: str) -> Callable[..., Any]:
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"sim_{key}.py"
    if not path.exists():
        # Written aside, then linked into place: never a half-written module, and never
        # rewritten (numba's cache beside it is keyed by the file's time stamp).
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".py")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(source)
            os.chmod(tmp, 0o644)
            with suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    name = f"sim_numba_{key}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    fn = module.run
    with _LOCK:
        _LOADED[key] = fn
    return fn


# -- symbolic values over cells ---------------------------------------------------------------
_NUMBER = re.compile(r"^\(?-?[0-9.]+(?:e[-+]?[0-9]+)?\)?$")
_ATOM = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*|-?[0-9.]+(?:e[-+]?[0-9]+)?)$")


@dataclass
class Sym:
    """A value as code: its dimensions and one scalar expression per cell (an object array
    shaped like the cells; 0-d for a scalar)."""

    dims: tuple[str, ...]
    cells: np.ndarray


def _number(x: float) -> str:
    if math.isnan(x):
        return "math.nan"
    if math.isinf(x):
        return "math.inf" if x > 0 else "(-math.inf)"
    text = repr(float(x))
    return f"({text})" if text.startswith("-") else text


def _obj(shape: tuple[int, ...], fill: Callable[[tuple[int, ...]], str]) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        out[index] = fill(index)
    return out


# numpy's calls in generated expression code, as scalar code (an f-string over the args).
_SIMPLE = {
    "_div": "({0} / {1})",
    "_pow": "({0} ** {1})",
    "_lt": "(({0} < {1}) * 1.0)",
    "_le": "(({0} <= {1}) * 1.0)",
    "_gt": "(({0} > {1}) * 1.0)",
    "_ge": "(({0} >= {1}) * 1.0)",
    "_eq": "(({0} == {1}) * 1.0)",
    "_ne": "(({0} != {1}) * 1.0)",
    "_not": "(({0} == 0.0) * 1.0)",
    "_clip": "_mn(_mx({0}, {1}), {2})",
    "_abs": "abs({0})",
    "_exp": "math.exp({0})",
    "_log": "np.log({0})",
    "_sqrt": "np.sqrt({0})",
    "_sin": "math.sin({0})",
    "_cos": "math.cos({0})",
    "_tan": "math.tan({0})",
    "_arcsin": "np.arcsin({0})",
    "_arccos": "np.arccos({0})",
    "_arctan": "math.atan({0})",
    "_floor": "np.floor({0})",
    "_ceil": "np.ceil({0})",
    "_round": "_round({0})",
    "_mod": "np.fmod({0}, {1})",
    "_where": "_sel({0}, {1}, {2})",
    "_full_where": "_sel({0}, {1}, {2})",
    "_pulse": "_pulse({0}, {1}, {2}, {3})",
}
_PAIRWISE = {"_min": "_mn", "_max": "_mx", "_and": "_and", "_or": "_or"}
_FOLD = {"_add": "({0} + {1})", "_minimum": "_mn({0}, {1})", "_maximum": "_mx({0}, {1})"}


class _Writer:
    """Lines of the generated function, with temporaries and indentation."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0
        self.count = 0

    def line(self, text: str) -> None:
        self.lines.append("    " * self.depth + text)

    def temp(self, code: str) -> str:
        if _ATOM.match(code):
            return code
        self.count += 1
        name = f"_t{self.count}"
        self.line(f"{name} = {code}")
        return name

    @contextmanager
    def block(self, head: str) -> Iterator[None]:
        self.line(head)
        self.depth += 1
        before = len(self.lines)
        yield
        if len(self.lines) == before:
            self.line("pass")
        self.depth -= 1


class _Generator:
    def __init__(self, model: Model):
        self.m = model
        self.w = _Writer()
        self.rank = {d: i for i, d in enumerate(model.dimensions)}
        self.names: dict[str, Sym] = {}  # what ns[name] reads: locals per cell
        self.all_locals: list[str] = []
        self.labels: list[str] = []
        self.label_code: dict[str, int] = {}
        self.checks = 1  # CHK's size: the most values one stage looks at

    # -- names ------------------------------------------------------------------------
    def declare(self, name: str, prefix: str, dims: tuple[str, ...]) -> Sym:
        shape = self.m.shape_of(dims)
        k = len(self.all_locals)
        base = f"{prefix}{k}"
        cells = _obj(shape, lambda index: base + "".join(f"_{i}" for i in index))
        self.all_locals += list(cells.reshape(-1))
        sym = Sym(dims, cells)
        self.names[name] = sym
        return sym

    def code_of(self, label: str) -> int:
        if label not in self.label_code:
            self.labels.append(label)
            self.label_code[label] = len(self.labels) - 1
        return self.label_code[label]

    # -- dimensions ---------------------------------------------------------------------
    def union(self, *dims: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted({d for ds in dims for d in ds}, key=lambda d: self.rank[d]))

    def broadcast(self, sym: Sym, want: tuple[str, ...], what: str = "") -> Sym:
        if sym.dims == want:
            return sym
        if not set(sym.dims) <= set(want):
            raise NotCompilable(f"{what}: a value over {sym.dims} where {want} was expected")
        cells = sym.cells
        if math.prod(self.m.shape_of(want)) > cells.size:  # used by several cells: once
            cells = _obj(cells.shape, lambda i: self.w.temp(sym.cells[i]))
        missing = tuple(i for i, d in enumerate(want) if d not in sym.dims)
        expanded = np.expand_dims(cells, missing) if missing else cells
        return Sym(want, np.broadcast_to(expanded, self.m.shape_of(want)))

    def cellwise(self, template: str, args: Sequence[Sym]) -> Sym:
        want = self.union(*(a.dims for a in args))
        parts = [self.broadcast(a, want) for a in args]
        shape = self.m.shape_of(want)
        return Sym(want, _obj(shape, lambda i: template.format(*(p.cells[i] for p in parts))))

    # -- expressions --------------------------------------------------------------------
    def value(self, expr: Expr, what: str) -> Sym:
        if expr.whole is not None:
            whole = self.value(expr.whole, what)
            return self.scalar(whole.cells[expr.cell])
        if expr.code == "<per-cell values>":
            held = np.asarray(expr.fn({}))[..., 0]
            return Sym(expr.dims, _obj(held.shape, lambda i: _number(float(held[i]))))
        try:
            tree = ast.parse(expr.code, mode="eval").body
            sym = self.node(tree)
        except NotCompilable as exc:
            raise NotCompilable(f"{what} ('{expr.text}'): {exc}") from None
        return self.broadcast(sym, expr.dims, what)

    def hoist(self, sym: Sym) -> Sym:
        """`sym` with each cell's code computed now, into a temporary (an atom as it is)."""
        cells = sym.cells
        return Sym(sym.dims, _obj(cells.shape, lambda i: self.w.temp(cells[i])))

    def scalar(self, code: str) -> Sym:
        cells = np.empty((), dtype=object)
        cells[()] = code
        return Sym((), cells)

    def node(self, node: ast.AST) -> Sym:
        match node:
            case ast.Constant(value=float() | int() as v) if not isinstance(v, bool):
                return self.scalar(_number(float(v)))
            case ast.Subscript(value=ast.Name(id="ns"), slice=ast.Constant(value=str() as name)):
                if name not in self.names:
                    raise NotCompilable(f"the name '{name}' is not known to the compiled engine")
                return self.names[name]
            case ast.BinOp(left=left, op=op, right=right):
                sign = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}.get(type(op))
                if sign is None:
                    raise NotCompilable(f"operator {type(op).__name__}")
                return self.cellwise(f"({{0}} {sign} {{1}})", [self.node(left), self.node(right)])
            case ast.UnaryOp(op=ast.USub(), operand=x):
                return self.cellwise("(-{0})", [self.node(x)])
            case ast.Call(func=ast.Name(id=fn), args=args):
                return self.call(fn, args)
        raise NotCompilable(f"the construct '{ast.unparse(node)}'")

    def call(self, fn: str, args: list[ast.expr]) -> Sym:
        if fn == "_ex":
            return self.node(args[0])  # alignment is by name here
        if fn == "_fold":
            assert isinstance(args[0], ast.Name) and isinstance(args[2], ast.Constant)
            return self.fold(_FOLD[args[0].id], self.node(args[1]), int(ast.literal_eval(args[2])))
        if fn == "_pick":
            axes = ast.literal_eval(args[1])
            index = ast.literal_eval(args[2])
            return self.pick(self.node(args[0]), tuple(axes), tuple(index))
        if fn == "_interp":
            xp = tuple(float(v) for v in ast.literal_eval(args[1]))
            fp = tuple(float(v) for v in ast.literal_eval(args[2]))
            points = f"({', '.join(map(_number, xp))},), ({', '.join(map(_number, fp))},)"
            return self.cellwise(f"_interp({{0}}, {points})", [self.node(args[0])])
        if fn == "_step":
            half = _number(float(ast.literal_eval(args[3])))
            return self.cellwise(
                f"_step({{0}}, {{1}}, {{2}}, {half})", [self.node(a) for a in args[:3]]
            )
        if fn == "_ramp":
            template = "_ramp({0}, {1}, {2})" if len(args) == 3 else "_ramp_to({0}, {1}, {2}, {3})"
            return self.cellwise(template, [self.node(a) for a in args])
        if fn in _PAIRWISE:
            syms = [self.node(a) for a in args]
            out = syms[0]
            for s in syms[1:]:
                out = self.cellwise(f"{_PAIRWISE[fn]}({{0}}, {{1}})", [out, s])
            return out
        if fn in _SIMPLE:
            if fn == "_pulse":
                half = _number(float(ast.literal_eval(args[3])))
                return self.cellwise(
                    f"_pulse({{0}}, {{1}}, {{2}}, {half})", [self.node(a) for a in args[:3]]
                )
            return self.cellwise(_SIMPLE[fn], [self.node(a) for a in args])
        raise NotCompilable(f"the function {fn.lstrip('_')}()")

    def fold(self, template: str, sym: Sym, axis: int) -> Sym:
        rest = tuple(d for i, d in enumerate(sym.dims) if i != axis)
        moved = np.moveaxis(sym.cells, axis, 0)

        def cell(index: tuple[int, ...]) -> str:
            out = moved[(0, *index)]
            for k in range(1, moved.shape[0]):
                out = self.w.temp(template.format(out, moved[(k, *index)]))
            return out

        return Sym(rest, _obj(moved.shape[1:], cell))

    def pick(self, sym: Sym, axes: tuple[int, ...], index: tuple[int, ...]) -> Sym:
        where: list[Any] = [slice(None)] * len(sym.dims)
        for a, i in zip(axes, index, strict=True):
            where[a] = i
        rest = tuple(d for i, d in enumerate(sym.dims) if i not in axes)
        return Sym(
            rest, np.asarray(sym.cells[tuple(where)], dtype=object).reshape(self.m.shape_of(rest))
        )

    # -- statements ---------------------------------------------------------------------
    def assign(self, target: Sym, value: Sym, what: str) -> None:
        """target's cells = value's (over the same or fewer dims), all read before any set."""
        value = self.broadcast(value, target.dims, what)
        codes = (
            [self.w.temp(c) for c in value.cells.reshape(-1)]
            if target.cells.size > 1
            else [value.cells.reshape(-1)[0]]
        )
        for local, code in zip(target.cells.reshape(-1), codes, strict=True):
            if local != code:
                self.w.line(f"{local} = {code}")

    def check(self, items: Sequence[tuple[str, str]]) -> None:
        """Values to look at for the run's first non-finite one (local, culprit label), in
        the tick's order, at the end of their stage. Finite values cost one addition each
        (into up to LANES running sums, so they don't wait on each other) and one test; only
        when the sum is not finite are the values laid out in CHK, in order, and scanned
        (`_scan`: a sum of finite values that overflowed finds nothing). A literal number is
        finite (the compiler refuses others): it is not looked at."""
        items = [(local, label) for local, label in items if not _NUMBER.match(local)]
        if not items:
            return
        first = len(self.labels)
        lanes = min(LANES, len(items))
        sums = [f"_e{k}" for k in range(lanes)]
        for k, (local, label) in enumerate(items):
            self.labels.append(label)
            lane = sums[k % lanes]
            self.w.line(f"{lane} = {local}" if k < lanes else f"{lane} = {lane} + {local}")
        self.checks = max(self.checks, len(items))
        with self.w.block(f"if bt < 0 and not math.isfinite({' + '.join(sums)}):"):
            for k, (local, _) in enumerate(items):
                self.w.line(f"CHK[{k}] = {local}")
            self.w.line(f"_k = _scan(CHK[:{len(items)}])")
            with self.w.block("if _k >= 0:"):
                self.w.line(f"bt = t; bc = _k + {first}")

    def labelled(self, sym: Sym, label: str, dims: tuple[str, ...]) -> list[tuple[str, str]]:
        cells = sym.cells.reshape(-1)
        if not dims:
            return [(cells[0], label)]
        return list(zip(cells, cell_labels(self.m, label, dims), strict=True))


def generate(model: Model) -> Program:
    """The model's program: its source, and how to lay out its inputs and read its outputs."""
    import numba

    g = _Generator(model)
    m, w = model, g.w
    step = m.step

    # Inputs: parameters (as drawn, and assembled over dimensions), state, data, calendar.
    param_cols: list[str] = []
    param_cells: dict[str, Sym] = {}
    for cell in m.parameters:
        name = cell.split("[", 1)[0]
        if name in param_cells:
            continue
        param_cells[name] = g.declare(name, "p", m.dims(name))
        param_cols += m.cells(name)
    state_vals: list[float] = []
    for name, value in m.state.items():
        g.declare(name, "x", m.dims(name))
        state_vals += [float(v) for v in np.asarray(value, dtype=np.float64).reshape(-1)]
    stocks = [g.declare(s.name, "s", s.dims) for s in m.stocks]
    amount = [g.declare(f"flow.{f.name}", "a", f.dims) for f in m.flows]
    cum = [g.declare(f"cum.{f.name}", "c", f.dims) for f in m.flows]
    transit = [g.declare(f"transit.{f.name}", "tr", f.dims) for f in m.flows]
    requests = [g.declare(f"__request.{f.name}", "rq", f.dims) for f in m.flows]
    rates = [g.declare(f"__rate.{f.name}", "q", f.dims) for f in m.flows]
    for name, _ in m.variables:
        g.declare(name, "v", m.dims(name))
    for mem in m.memories:
        g.declare(mem.name, "mo", m.dims(mem.name))
    data_cols: list[tuple[int, tuple[int, ...]]] = []
    data_syms = []
    for k, d in enumerate(m.data):
        sym = g.declare(d.name, "d", d.dims)
        data_syms.append((sym, len(data_cols)))
        data_cols += [(k, index) for index in np.ndindex(*m.shape_of(d.dims))]
    g.names["t"], g.names["month"], g.names["year"] = (g.scalar(x) for x in ("tt", "mon", "yr"))

    # Built-ins' state: stages per cell (a delay_fixed: a ring per cell).
    stages: dict[str, list[Sym]] = {}
    rings: dict[str, str] = {}
    for i, mem in enumerate(m.memories):
        dims = m.dims(mem.name)
        if mem.kind == "delay_fixed":
            rings[mem.name] = f"RM{i}"
        else:
            stages[mem.name] = [
                g.declare(f"__stage{j}:{mem.name}", "ms", dims)
                for j in range(ORDER.get(mem.kind, 1))
            ]
    mems = {mem.name: mem for mem in m.memories}

    # Noise: each noisy flow cell's multipliers, as drawn.
    noise_cols: list[str] = []
    noise_at: dict[int, list[int]] = {}
    for f in m.flows:
        if f.noise is None:
            continue
        cols = []
        for cell in m.cells(f.name):
            noise_cols.append(cell)
            cols.append(len(noise_cols) - 1)
        noise_at[f.index] = cols

    outcome_names = [o.name for o in m.outcomes]
    series_names = [name for name, _ in m.record]
    initial_stocks: list[int] = []

    w.line("@njit(cache=True, nogil=True, error_model='numpy')")
    w.line("def run(P, X0, NZ, DATA, CAL, n, keep, OUT, SER, BT, BC, BADI, BADV):")
    w.depth = 1
    for f in m.flows:
        if f.delay:
            w.line(f"RF{f.index} = np.zeros(({f.delay}, {f.size}))")
    for i, mem in enumerate(m.memories):
        if mem.kind == "delay_fixed":
            w.line(f"RM{i} = np.zeros(({mem.ticks}, {max(1, math.prod(mem.shape))}))")
    w.line("CHK = np.zeros(CHECKS)")
    with w.block("for r in range(n):"):
        init_at = len(w.lines)  # every local starts at 0.0 (filled in at the end)
        w.line("bt = -1; bc = -1; t = 0")
        for f in m.flows:
            if f.delay:
                w.line(f"RF{f.index}[:, :] = 0.0")
        k = 0
        for sym in param_cells.values():
            for local in sym.cells.reshape(-1):
                w.line(f"{local} = P[r, {k}]")
                k += 1
        k = 0
        for name in m.state:
            for local in g.names[name].cells.reshape(-1):
                w.line(f"{local} = X0[{k}]")
                k += 1
        # Before the first tick, at tick 0's time: the model's initial order.
        _calendar(g, data_syms, "0")
        stock_by_name = {s.name: s for s in m.stocks}
        variables = dict(m.variables)
        bad_init = False
        for name in m.initial or [s.name for s in m.stocks]:
            if name in stock_by_name:
                s = stock_by_name[name]
                g.assign(stocks[s.index], g.value(s.initial, f"stock {s.name}'s initial"), s.name)
                if not s.unlimited:
                    code = len(initial_stocks)
                    initial_stocks.append(s.index)
                    for c, local in enumerate(stocks[s.index].cells.reshape(-1)):
                        w.line(f"_below(BADI, BADV, r, {code}, {c}, {local})")
                    bad_init = True
            elif name in variables:
                g.assign(g.names[name], g.value(variables[name], f"variable {name}"), name)
            else:
                _memory_start(g, mems[name], stages, rings)
        if bad_init:
            with w.block("if BADI[r, 0] >= 0:"):
                w.line("continue")
        # Event times, from the parameters as sampled; a NaN time is the run's culprit.
        fires: list[str] = []
        for i, e in enumerate(m.events):
            if e.kind == "never":
                fires.append("")
            elif e.kind == "tick":
                fires.append(repr(float(fire_tick(e.at, step))))
            else:
                assert isinstance(e.at, Expr)
                at = g.value(e.at, f"event {e.name}'s time").cells[()]
                w.line(f"fe{i} = np.ceil(_mx({at}, 0.0) / {_number(step)})")
                fires.append(f"fe{i}")
                with w.block(f"if bt < 0 and fe{i} != fe{i}:"):
                    w.line(f"bt = 0; bc = {g.code_of(f'events.{e.name}')}")
        # Outcomes' running values.
        start = {"final": "math.nan", "mean": "0.0", "sum": "0.0", "count": "0.0",
                 "min": "math.inf", "max": "(-math.inf)", "first": "math.nan"}  # fmt: skip
        for k, o in enumerate(m.outcomes):
            w.line(f"o{k} = {start[o.stat]}")
        with w.block(f"for t in range({m.ticks}):"):
            w.line("tt = CAL[t, 0]; mon = CAL[t, 1]; yr = CAL[t, 2]")
            _calendar(g, data_syms, "t")
            _events(g, fires)
            _stage2(g, stages, rings)
            _requests(g, rates, requests, noise_at)
            _advance(g, stages, rings)
            _ration(g, stocks, requests, amount)
            _transfer(g, stocks, amount, transit)
            _record(g, amount, cum, stocks, series_names)
        for k, o in enumerate(m.outcomes):
            result = f"o{k}"
            if o.stat == "mean":
                result = f"o{k} / {_number(float(m.ticks))}"
            elif o.stat in ("count", "first") and step != 1:
                result = f"o{k} * {_number(step)}"
            w.line(f"OUT[r, {k}] = {result}")
        w.line("BT[r] = bt; BC[r] = bc")

    w.lines[init_at:init_at] = [f"        {local} = 0.0" for local in g.all_locals]
    body = "\n".join(w.lines)
    source = _HEADER + f"\nCHECKS = {g.checks}\n\n\n" + body + "\n"
    key = hashlib.sha256(
        "\0".join([source, numba.__version__, sys.version, GENERATOR_VERSION]).encode()
    ).hexdigest()[:24]
    return Program(
        source,
        key,
        param_cols,
        state_vals,
        noise_cols,
        data_cols,
        outcome_names,
        series_names,
        g.labels,
        initial_stocks,
    )


def _calendar(g: _Generator, data_syms: list[tuple[Sym, int]], t: str) -> None:
    if t == "0":
        g.w.line("tt = CAL[0, 0]; mon = CAL[0, 1]; yr = CAL[0, 2]")
    for sym, col in data_syms:
        for k, local in enumerate(sym.cells.reshape(-1)):
            g.w.line(f"{local} = DATA[{t}, {col + k}]")


def _memory_start(
    g: _Generator, mem: MemoryDef, stages: dict[str, list[Sym]], rings: dict[str, str]
) -> None:
    """A built-in's starting state, from the values before the first tick, and its output."""
    w, dims = g.w, g.m.dims(mem.name)
    used = {"delay_fixed": (2,), "delay1": (0, 1), "delay3": (0, 1)}.get(mem.kind, (0,))
    arg: dict[int, Sym] = {
        i: g.broadcast(g.value(mem.args[i], mem.label), dims, mem.label) for i in used
    }
    if mem.kind == "delay_fixed":
        first = [w.temp(c) for c in arg[2].cells.reshape(-1)]
        for c, code in enumerate(first):
            w.line(f"{rings[mem.name]}[:, {c}] = {code}")
    elif mem.kind in ("delay1", "delay3"):
        order = ORDER[mem.kind]
        stage = g.cellwise(f"(({{0}} * {{1}}) / {_number(float(order))})", [arg[0], arg[1]])
        for s in stages[mem.name]:
            g.assign(s, stage, mem.label)
    else:
        for s in stages[mem.name]:
            g.assign(s, arg[0], mem.label)
    _memory_output(g, mem, stages, rings, "0")


def _memory_output(
    g: _Generator, mem: MemoryDef, stages: dict[str, list[Sym]], rings: dict[str, str], t: str
) -> None:
    out = g.names[mem.name]
    if mem.kind == "delay_fixed":
        for c, local in enumerate(out.cells.reshape(-1)):
            g.w.line(f"{local} = {rings[mem.name]}[{t} % {mem.ticks}, {c}]")
    elif mem.kind in ("delay1", "delay3"):
        tau = g.value(mem.args[1], mem.label)
        order = _number(float(ORDER[mem.kind]))
        value = g.cellwise(f"({{0}} / ({{1}} / {order}))", [stages[mem.name][-1], tau])
        g.assign(out, value, mem.label)
    else:
        g.assign(out, stages[mem.name][-1], mem.label)


def _events(g: _Generator, fires: list[str]) -> None:
    """1. Events due at t, in declared order: set state, scale parameters."""
    m, w = g.m, g.w
    for e, fire in zip(m.events, fires, strict=True):
        if not fire or not (e.sets or e.scales):
            continue
        if e.kind == "tick" and not float(fire) < m.ticks:
            continue
        with w.block(f"if t == {fire}:"):
            for written, expr in e.sets:
                base, index = e.target(written)
                target = _target(g, base, index)
                g.assign(target, g.value(expr, f"event {e.name}"), f"event {e.name}")
            for written, expr in e.scales:
                base, index = e.target(written)
                target = _target(g, base, index)
                factor = g.value(expr, f"event {e.name}")
                g.assign(target, g.cellwise("({0} * {1})", [target, factor]), e.name)


def _target(g: _Generator, base: str, index: tuple[Any, ...]) -> Sym:
    sym = g.names[base]
    if not index:
        return sym
    rest = tuple(d for d, i in zip(sym.dims, index, strict=True) if isinstance(i, slice))
    picked = np.asarray(sym.cells[index], dtype=object).reshape(g.m.shape_of(rest))
    return Sym(rest, picked)


def _stage2(g: _Generator, stages: dict[str, list[Sym]], rings: dict[str, str]) -> None:
    """2. Variables and built-ins' outputs, in dependency order; then their checks."""
    m = g.m
    variables = dict(m.variables)
    mems = {mem.name: mem for mem in m.memories}
    checks: list[tuple[str, str]] = []
    for name in m.stage2 or [v for v, _ in m.variables]:
        if name in mems:
            mem = mems[name]
            _memory_output(g, mem, stages, rings, "t")
            checks += g.labelled(g.names[name], mem.label, m.dims(name))
        else:
            g.assign(g.names[name], g.value(variables[name], f"variable {name}"), name)
            checks += g.labelled(g.names[name], f"variables.{name}", m.dims(name))
    g.check(checks)


def _requests(
    g: _Generator, rates: list[Sym], requests: list[Sym], noise_at: dict[int, list[int]]
) -> None:
    """3. Requests: max(0, rate) times the tick's noise, times the step; a two-way flow's
    keeps its sign. The rates are checked before max(0, .) hides a -inf."""
    m, w = g.m, g.w
    checks: list[tuple[str, str]] = []
    for f in m.flows:
        g.assign(rates[f.index], g.value(f.rate, f"flow {f.name}'s rate"), f.name)
        checks += g.labelled(rates[f.index], f"flows.{f.name}", f.dims)
    g.check(checks)
    for f in m.flows:
        cols = noise_at.get(f.index)
        for c, (q, rq) in enumerate(
            zip(rates[f.index].cells.reshape(-1), requests[f.index].cells.reshape(-1), strict=True)
        ):
            code = q if f.two_way else f"_mx({q}, 0.0)"
            if cols is not None:
                k = cols[c]
                code = f"{code} * NZ[{k}][t, r]"
            if m.step != 1:
                code = f"({code}) * {_number(m.step)}"
            w.line(f"{rq} = {code}")


def _advance(g: _Generator, stages: dict[str, list[Sym]], rings: dict[str, str]) -> None:
    """3b. Built-ins advance from this tick's inputs (all read before any moves)."""
    m, w = g.m, g.w
    if not m.memories:
        return
    reads = {"init": 0, "delay_fixed": 1}
    inputs = []
    for mem in m.memories:
        dims = m.dims(mem.name)
        args = []
        for i in range(reads.get(mem.kind, 2)):
            sym = g.broadcast(g.value(mem.args[i], mem.label), dims, mem.label)
            args.append(g.hoist(sym))
        inputs.append(args)
    stepc = _number(m.step)
    for mem, args in zip(m.memories, inputs, strict=True):
        if mem.kind == "delay_fixed":
            for c, code in enumerate(args[0].cells.reshape(-1)):
                w.line(f"{rings[mem.name]}[t % {mem.ticks}, {c}] = {code}")
        elif mem.kind in ("smooth", "smooth3"):
            order = _number(float(ORDER[mem.kind]))
            tau = g.cellwise(f"({{0}} / {order})", [args[1]])
            tau = g.hoist(tau)
            state = stages[mem.name]
            rate_syms = []
            for target, s in zip([args[0], *state], state, strict=False):
                rate = g.cellwise("(({0} - {1}) / {2})", [target, s, tau])
                rate_syms.append(g.hoist(rate))
            for s, rate in zip(state, rate_syms, strict=True):
                g.assign(s, g.cellwise(f"({{0}} + ({{1}} * {stepc}))", [s, rate]), mem.label)
        elif mem.kind in ("delay1", "delay3"):
            order = _number(float(ORDER[mem.kind]))
            tau = g.cellwise(f"({{0}} / {order})", [args[1]])
            state = stages[mem.name]
            outs = []
            for s in state:
                out = g.cellwise("({0} / {1})", [s, tau])
                outs.append(g.hoist(out))
            for s, arriving, leaving in zip(state, [args[0], *outs], outs, strict=False):
                g.assign(
                    s,
                    g.cellwise(f"({{0}} + (({{1}} - {{2}}) * {stepc}))", [s, arriving, leaving]),
                    mem.label,
                )


def _parts(
    f_dims: tuple[str, ...], shape: tuple[int, ...], dims: tuple[str, ...], m: Model
) -> dict[tuple[int, ...], list[int]]:
    """For each cell of a stock over `dims`, the flat indexes of the flow cells (over
    `f_dims`) that reach or leave it, in the order `semantics.pieces` adds them."""
    keep = [i for i, d in enumerate(f_dims) if d in dims]
    extra = [i for i, d in enumerate(f_dims) if d not in dims]
    index = np.arange(math.prod(shape)).reshape(shape)
    out: dict[tuple[int, ...], list[int]] = {}
    moved = np.moveaxis(index, extra + keep, list(range(len(f_dims)))) if f_dims else index
    front = math.prod(shape[i] for i in extra)
    rows = moved.reshape((front, *[shape[i] for i in keep]))
    for cell in np.ndindex(*[shape[i] for i in keep]):
        out[cell] = [int(rows[(k, *cell)]) for k in range(front)]
    return out


def _ration(g: _Generator, stocks: list[Sym], requests: list[Sym], amount: list[Sym]) -> None:
    """4. Rationing: what each flow cell gets of what it asks of each giving stock cell."""
    m, w = g.m, g.w
    gave: dict[tuple[int, str], np.ndarray] = {}
    for s, flows in giving(m):
        content = stocks[s.index].cells
        sshape = m.shape_of(s.dims)
        asks = []  # per flow: (flow, role, flat asked codes)
        for f, role in flows:
            cells = requests[f.index].cells.reshape(-1)
            if role == "from":
                codes = [w.temp(f"_mx({c}, 0.0)") for c in cells]
            elif role == "to":
                codes = [w.temp(f"_mx((-{c}), 0.0)") for c in cells]
            else:
                codes = list(cells)
            asks.append((f, role, codes))
        given: dict[int, list[str]] = {f.index: list(codes) for f, _, codes in asks}
        for cell in np.ndindex(*sshape):
            terms: list[tuple[int, int]] = []  # (flow index, flat flow cell)
            for f, _, _ in asks:
                for j in _parts(f.dims, f.shape, s.dims, m)[cell]:
                    terms.append((f.index, j))
            by_flow = {f.index: c for f, _, c in asks}
            total = by_flow[terms[0][0]][terms[0][1]]
            for fi, j in terms[1:]:
                total = w.temp(f"({total} + {by_flow[fi][j]})")
            total = w.temp(total)
            held = content[cell]
            if s.unlimited:
                w.line(f"{held} = {held} - {total}")
                continue
            names = []
            for fi, j in terms:
                name = f"g{fi}_{j}_{s.index}"
                names.append(name)
                given[fi][j] = name
            w.line(f"_had = {held}")
            w.line(f"{held}, _fac, _how = _ration({held}, {total})")
            for (fi, j), name in zip(terms, names, strict=True):
                w.line(f"{name} = _give({by_flow[fi][j]}, {total}, _had, _fac, _how)")
        for f, role, _ in asks:
            if role == "out":
                for local, code in zip(
                    amount[f.index].cells.reshape(-1), given[f.index], strict=True
                ):
                    if local != code:
                        w.line(f"{local} = {code}")
            else:
                gave[f.index, role] = np.array(given[f.index], dtype=object)
    for f in m.flows:
        if f.two_way:
            for local, a, b in zip(
                amount[f.index].cells.reshape(-1),
                gave[f.index, "from"],
                gave[f.index, "to"],
                strict=True,
            ):
                w.line(f"{local} = {a} - {b}")


def _deliver(g: _Generator, stock: Sym, codes: list[str], f: Any, dims: tuple[str, ...]) -> None:
    w = g.w
    parts = _parts(f.dims, f.shape, dims, g.m)
    for cell, flat in parts.items():
        held = stock.cells[cell]
        out = held
        for j in flat:
            out = f"({out} + {codes[j]})"
        w.line(f"{held} = {out}")


def _transfer(g: _Generator, stocks: list[Sym], amount: list[Sym], transit: list[Sym]) -> None:
    """5. Transfer: arrivals in declared flow order; delayed amounts wait in a ring."""
    m, w = g.m, g.w
    for f in m.flows:
        a = list(amount[f.index].cells.reshape(-1))
        if f.two_way:
            into_to = [w.temp(f"_mx({c}, 0.0)") for c in a]
            into_from = [w.temp(f"_mx((-{c}), 0.0)") for c in a]
            _deliver(g, stocks[f.target], into_to, f, f.target_dims)
            _deliver(g, stocks[f.source], into_from, f, f.source_dims)
        elif f.delay == 0:
            _deliver(g, stocks[f.target], a, f, f.target_dims)
        else:
            ring = f"RF{f.index}"
            slot = [f"{ring}[t % {f.delay}, {c}]" for c in range(f.size)]
            tr = list(transit[f.index].cells.reshape(-1))
            with w.block(f"if t >= {f.delay}:"):
                held = [w.temp(s) for s in slot]
                _deliver(g, stocks[f.target], held, f, f.target_dims)
                for local, h in zip(tr, held, strict=True):
                    w.line(f"{local} = {local} - {h}")
            for c, (local, code) in enumerate(zip(tr, a, strict=True)):
                w.line(f"{slot[c]} = {code}")
                w.line(f"{local} = {local} + {code}")


def _record(
    g: _Generator, amount: list[Sym], cum: list[Sym], stocks: list[Sym], series: list[str]
) -> None:
    """6. Record: this tick's amounts, then outcomes and series on the new state."""
    m, w = g.m, g.w
    read = set()
    for expr in _expressions(m):
        read |= {n for n in expr.names if n.startswith("cum.")}
    for f in m.flows:
        if f"cum.{f.name}" in read:
            for c, a in zip(
                cum[f.index].cells.reshape(-1), amount[f.index].cells.reshape(-1), strict=True
            ):
                w.line(f"{c} = {c} + {a}")
    checks: list[tuple[str, str]] = []
    for f in m.flows:
        checks += g.labelled(amount[f.index], f"flows.{f.name}", f.dims)
    for s in m.stocks:
        checks += g.labelled(stocks[s.index], f"stocks.{s.name}", s.dims)
    g.check(checks)
    # Outcomes: the cells of an arrayed one are one group, its expression evaluated once.
    outcomes = list(m.outcomes)
    for group in outcome_groups(outcomes):
        o = outcomes[group[0]]
        whole = o.expr.whole
        ctx = w.block(f"if t == {m.ticks - 1}:") if o.stat == "final" else _nothing()
        with ctx:
            if whole is not None:
                value = g.value(whole, f"outcome {o.declared}")
                codes = [w.temp(c) for c in value.cells.reshape(-1)]
                codes = [
                    codes[int(np.ravel_multi_index(outcomes[k].expr.cell, value.cells.shape))]
                    for k in group
                ]
            else:
                codes = [w.temp(g.value(o.expr, f"outcome {o.name}").cells.reshape(-1)[0])]
            if o.stat == "final":  # read at the last tick only: held where every tick sees it
                names = [f"fo{len(g.all_locals)}_{k}" for k in range(len(codes))]
                g.all_locals += names
                for name, c in zip(names, codes, strict=True):
                    w.line(f"{name} = {c}")
                codes = names
            g.check([(c, outcomes[k].label) for c, k in zip(codes, group, strict=True)])
            for c, k in zip(codes, group, strict=True):
                v = f"o{k}"
                if o.stat == "final":
                    w.line(f"{v} = {c}")
                elif o.stat in ("mean", "sum"):
                    w.line(f"{v} = {v} + {c}")
                elif o.stat == "count":
                    w.line(f"{v} = {v} + (({c} != 0.0) * 1.0)")
                elif o.stat == "min":
                    w.line(f"{v} = _mn({v}, {c})")
                elif o.stat == "max":
                    w.line(f"{v} = _mx({v}, {c})")
                else:
                    w.line(f"{v} = _first({v}, {c}, t)")
    if not series:
        return
    with w.block("if r < keep:"):
        wholes: dict[int, np.ndarray] = {}
        for k, (name, expr) in enumerate(m.record):
            whole = expr.whole
            if whole is None:
                code = g.value(expr, f"record {name}").cells.reshape(-1)[0]
            else:
                if id(whole) not in wholes:
                    value = g.value(whole, f"record {whole.text}")
                    wholes[id(whole)] = g.hoist(value).cells
                code = wholes[id(whole)][expr.cell]
            w.line(f"SER[{k}, t, r] = {code}")


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _expressions(m: Model) -> list[Expr]:
    out = [f.rate for f in m.flows] + [e for _, e in m.variables]
    out += [a for mem in m.memories for a in mem.args]
    out += [o.expr for o in m.outcomes] + [e for _, e in m.record]
    for ev in m.events:
        out += [e for _, e in ev.sets] + [e for _, e in ev.scales]
    return out


_HEADER = '''"""Generated by sim.engine.numba_engine from a compiled model: do not edit."""

import math

import numpy as np
from numba import njit

from sim.engine.numba_runtime import (
    _and, _below, _first, _give, _interp, _mn, _mx, _or, _pulse, _ramp, _ramp_to,
    _ration, _round, _scan, _sel, _step,
)
'''
