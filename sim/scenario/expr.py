"""The safe expression language: parsed with `ast` against a whitelist, compiled once.

An expression is text such as ``"min(stockpile, 0.4 * demand) * war"``. `compile_expr` parses
it, refuses anything outside the whitelist, resolves every name against the names the caller
allows, and generates a small Python function from the *validated tree* (never from the raw
text). The function reads names from a mapping and uses numpy ufuncs throughout, so the same
callable works on arrays (the kernel: one value per run) and on floats (the SimPy engine), and
gives the same bits on both.

Booleans are numbers: comparisons and and/or/not give 1.0 or 0.0.
"""

from __future__ import annotations

import ast
import itertools
import keyword
import unicodedata
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.scenario.dims import fold_rows, to_front

MAX_CHARS = 4000
MAX_NODES = 1000
MAX_DEPTH = 40
MAX_NAME = 64  # names become Parquet columns, results folders and CLI arguments

PREFIXES = ("flow", "cum", "transit")
CALENDAR = ("t", "month", "year")
FUNCTIONS: dict[str, tuple[int, int | None]] = {  # name: (min args, max args or None)
    "min": (1, None),  # min(x): every cell; min(x, dim): one dimension; min(a, b): elementwise
    "max": (1, None),
    "clip": (3, 3),
    "abs": (1, 1),
    "exp": (1, 1),
    "log": (1, 1),
    "sqrt": (1, 1),
    "sin": (1, 1),  # radians; periodic rates (seasons) and analytic test functions (Ishigami)
    "cos": (1, 1),
    "where": (3, 3),
    "interp": (3, 3),
    "floor": (1, 1),
    "ceil": (1, 1),
    "round": (1, 1),  # half away from zero, as Stella, XMILE and spreadsheets round
    "mod": (2, 2),  # Vensim's MODULO: the sign of the dividend (C's fmod)
    "tan": (1, 1),
    "arcsin": (1, 1),
    "arccos": (1, 1),
    "arctan": (1, 1),
    "step": (2, 2),  # step(height, at), pulse(at, width), ramp(slope, start[, end]): Vensim's
    "pulse": (2, 2),
    "ramp": (2, 3),
    "sum": (1, 2),  # sum(x) over every cell, sum(x, dim) over one dimension
    "mean": (1, 2),
}
REDUCTIONS = ("sum", "mean", "min", "max")
# Built-ins with memory: each call site keeps state per run (see `Memory`).
MEMORY: dict[str, tuple[int, int | None]] = {
    "smooth": (2, 2),
    "smooth3": (2, 2),
    "delay1": (2, 2),
    "delay3": (2, 2),
    "delay_fixed": (3, 3),
    "init": (1, 1),
}
FUNCTIONS.update(MEMORY)
TIMED = ("step", "pulse", "ramp")  # read the calendar's t and the model's step
RESERVED = frozenset(
    {*PREFIXES, *CALENDAR, *FUNCTIONS, "and", "or", "not", "True", "False", "None"}
)


def _cmp(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    return lambda a, b: op(a, b) * 1.0


def _reduce(op: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    def apply(*args: Any) -> Any:
        out = args[0]
        for arg in args[1:]:
            out = op(out, arg)
        return out

    return apply


def _round(x: Any) -> Any:
    """Round half away from zero (2.5 -> 3, -2.5 -> -3); numpy's own rounds half to even."""
    whole = np.trunc(x)
    return np.where(np.abs(x - whole) == 0.5, whole + np.sign(x), np.round(x))


def _step(height: Any, at: Any, t: Any, half: float) -> Any:
    """Vensim's STEP: `height` once t + step/2 > at, else 0."""
    return _where(np.greater(t + half, at), height, 0.0)


def _pulse(at: Any, width: Any, t: Any, half: float) -> Any:
    """Vensim's PULSE: 1 for at <= t + step/2 < at + width; a width of 0 is one step."""
    width = np.equal(width, 0.0) * (2 * half) + width
    mid = t + half
    return np.logical_and(np.greater_equal(mid, at), np.less(mid, at + width)) * 1.0


def _ramp(slope: Any, start: Any, t: Any, end: Any = None) -> Any:
    """Vensim's RAMP: 0 before `start`, rising by `slope` per month, flat after `end`."""
    held = np.maximum(t, start)
    if end is not None:
        held = np.minimum(held, end)
    return slope * (held - start)


def _fold(op: Callable[[Any, Any], Any], x: Any, axis: int) -> Any:
    """Reduce one axis in element order, one element after another (`fold_rows`): the same
    sums in both engines whatever the other axes' sizes. A new array."""
    return fold_rows(op, to_front(np.asarray(x), [axis]))


def _pick(x: Any, axes: tuple[int, ...], index: tuple[int, ...]) -> Any:
    """x[elem]: the element `index[i]` along axis `axes[i]` (highest axis first), a copy."""
    for axis, i in sorted(zip(axes, index, strict=True), reverse=True):
        x = np.take(x, i, axis=axis)
    return x


def _where(c: Any, a: Any, b: Any) -> Any:
    if np.ndim(c) == 0:
        # A condition on the calendar alone (or any condition in the SimPy engine): pick a
        # branch rather than fill an array with it. A picked array is copied, so it never
        # aliases a stock's row.
        picked = a if c else b
        return np.array(picked) if isinstance(picked, np.ndarray) else picked
    return np.where(c, a, b)


# What generated code may call: numpy ufuncs only, the same on arrays and on scalars.
_RUNTIME: dict[str, Any] = {
    "__builtins__": {},
    "_div": np.true_divide,
    "_pow": np.power,
    "_lt": _cmp(np.less),
    "_le": _cmp(np.less_equal),
    "_gt": _cmp(np.greater),
    "_ge": _cmp(np.greater_equal),
    "_eq": _cmp(np.equal),
    "_ne": _cmp(np.not_equal),
    "_and": _reduce(lambda a, b: np.logical_and(a, b) * 1.0),
    "_or": _reduce(lambda a, b: np.logical_or(a, b) * 1.0),
    "_not": lambda a: np.logical_not(a) * 1.0,
    "_min": _reduce(np.minimum),
    "_max": _reduce(np.maximum),
    "_clip": lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
    "_abs": np.abs,
    "_exp": np.exp,
    "_log": np.log,
    "_sqrt": np.sqrt,
    "_sin": np.sin,
    "_cos": np.cos,
    "_where": lambda c, a, b: _where(c, a, b),
    "_interp": np.interp,
    "_floor": np.floor,
    "_ceil": np.ceil,
    "_round": _round,
    "_mod": np.fmod,
    "_tan": np.tan,
    "_arcsin": np.arcsin,
    "_arccos": np.arccos,
    "_arctan": np.arctan,
    "_step": _step,
    "_pulse": _pulse,
    "_ramp": _ramp,
    "_ex": np.expand_dims,
    "_fold": lambda op, x, axis: _fold(op, x, axis),
    "_pick": lambda x, axes, index: _pick(x, axes, index),
    "_full_where": np.where,
    "_add": np.add,
    "_minimum": np.minimum,
    "_maximum": np.maximum,
}

_COMPARE = {
    ast.Lt: "_lt",
    ast.LtE: "_le",
    ast.Gt: "_gt",
    ast.GtE: "_ge",
    ast.Eq: "_eq",
    ast.NotEq: "_ne",
}


# How refused operators are written, for messages.
_SYMBOLS: dict[type[ast.AST], str] = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}


class ExprError(ValueError):
    """An expression is not valid: what is wrong, and where in the text (0-based column)."""

    def __init__(self, message: str, offset: int = 0, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.hint = hint


@dataclass(frozen=True)
class Expr:
    """A compiled expression: its text, the names it reads, and the callable.

    `names` holds plain names (`stockpile`) and prefixed ones (`flow.ship`). Call it with a
    mapping from those names (and `t`, `month`, `year`) to floats or equal-length arrays.
    """

    text: str
    names: frozenset[str]
    code: str
    fn: Callable[[Mapping[str, Any]], Any]
    constant: float | None = None
    memories: tuple[Memory, ...] = ()  # its calls of built-ins with memory, inner ones first
    dims: tuple[str, ...] = ()  # its value's dimensions (canonical order); () for a scalar
    whole: Expr | None = None  # a cell of an arrayed expression: that expression (pick_cell)
    cell: tuple[int, ...] = ()  # ... and the cell's index in its value

    def __call__(self, ns: Mapping[str, Any]) -> Any:
        return self.fn(ns)

    @property
    def alias(self) -> str | None:
        """The name this expression merely repeats (`x` for "x"), else None."""
        if len(self.names) == 1:
            (name,) = self.names
            if self.code == f"ns[{name!r}]":
                return name
        return None


@dataclass(frozen=True)
class Memory:
    """One call site of a built-in with memory (`smooth(x, 3)`), rewritten as a read of `name`.

    The expression that holds the call reads its output as `ns[name]`, a hidden name (it
    starts with `__`, which no user name may). The engines keep its state per run and
    `sim.engine.semantics` says how it starts and advances; `args` are the call's arguments,
    compiled on their own, which the engines evaluate each tick.
    """

    name: str
    kind: str
    args: tuple[Expr, ...]
    offset: int  # the call's column in the expression's text
    ticks: int = 0  # delay_fixed: how many ticks back it reads
    dims: tuple[str, ...] = ()  # its state's and output's dimensions: its arguments' union

    @property
    def call(self) -> str:
        """The call as written, for messages: smooth(x, 3)."""
        return f"{self.kind}({', '.join(a.text for a in self.args)})"


def is_name(text: str) -> bool:
    """Whether `text` may name a parameter, stock, flow, state or variable."""
    return name_problem(text) is None


def name_problem(text: str) -> str | None:
    """Why `text` may not be a name (too long, not ASCII, not an identifier), or None.

    Names are ASCII only. Python reads identifiers after NFKC normalisation, so a ligature
    `ﬁll` in an expression would silently mean `fill`, and no normalisation folds look-alikes
    from other scripts (Cyrillic `а` and Latin `a`). With ASCII, a name is what it looks like.
    """
    if len(text) > MAX_NAME:
        return f"a name of {len(text):,} characters is too long (at most {MAX_NAME})"
    odd = next((ch for ch in text if not ch.isascii()), None)
    if odd is not None:
        return f"'{text}' is not a valid name: {_describe(odd)} is not an ASCII letter, digit or _"
    if not text.isidentifier() or keyword.iskeyword(text) or text.startswith("__"):
        return f"'{text}' is not a valid name (letters, digits, _)"
    return None


def _describe(ch: str) -> str:
    return f"'{ch}' (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')})"


def _ascii_hint(ch: str) -> str:
    plain = unicodedata.normalize("NFKC", ch)
    if plain != ch and plain.isascii():
        return f"type '{plain}' instead; expressions are plain ASCII"
    return "expressions are plain ASCII: names, numbers and + - * / ** < > = ( ) , ."


def compile_expr(
    text: str | float | int,
    names: Mapping[str, str],
    flows: frozenset[str] | set[str] = frozenset(),
    calendar: bool = True,
    label: str = "expression",
    *,
    step: float = 1.0,
    memory: bool = False,
    dims: Mapping[str, tuple[str, ...]] | None = None,
    dimensions: Mapping[str, Sequence[str]] | None = None,
) -> Expr:
    """Compile `text` allowing `names` (name -> kind, for messages), `flow.X` etc. for X in `flows`.

    `step` is the model's tick in months (step, pulse and ramp read it; a delay_fixed must be
    a whole number of them); `memory` allows built-ins with memory (in variables and rates).
    `dims` gives the dimensions of the arrayed names (`flow.X` etc. included) and `dimensions`
    every dimension's elements: each part of the expression knows its dimensions, arrays are
    aligned by name at compile time, and the Expr's `dims` are its value's.
    Raises ExprError for anything not in the language, with the column of the offending part.
    """
    if isinstance(text, bool):
        raise ExprError("expected a number or an expression, got true/false")
    if isinstance(text, int | float):
        value = float(text)
        if not np.isfinite(value):
            raise ExprError(f"{text} is not a finite number")

        def fixed(ns: Mapping[str, Any]) -> float:
            return value

        return Expr(repr(value), frozenset(), repr(value), fixed, value)
    if len(text) > MAX_CHARS:
        raise ExprError(f"expression longer than {MAX_CHARS} characters")
    if not text.strip():
        raise ExprError("empty expression")
    # Before parsing: Python folds identifiers by NFKC, so `ﬁll` would parse as `fill`.
    odd = next((i for i, ch in enumerate(text) if not ch.isascii()), None)
    if odd is not None:
        raise ExprError(
            f"{_describe(text[odd])} is not allowed in an expression", odd, _ascii_hint(text[odd])
        )
    try:
        with warnings.catch_warnings():  # e.g. "invalid escape sequence": refused below anyway
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        offset = (exc.offset or 1) - 1 + (len(text) - len(text.lstrip()))
        raise ExprError(f"syntax error: {exc.msg}", offset) from None
    except (RecursionError, MemoryError):
        raise ExprError("expression nested too deeply") from None
    except ValueError as exc:  # e.g. an integer past Python's digit limit
        raise ExprError(f"not a valid expression: {exc}") from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise ExprError(f"expression too large ({count} parts; at most {MAX_NODES})")
    emitter = _Emitter(names, frozenset(flows), calendar, len(text) - len(text.lstrip()))
    emitter.step, emitter.memory, emitter.label = step, memory, label
    emitter.dims = dict(dims or {})
    emitter.dimensions = {d: tuple(e) for d, e in (dimensions or {}).items()}
    emitter.element = {e: d for d, es in emitter.dimensions.items() for e in es}
    code, shape = emitter.emit(tree.body, 0)
    return _function(text, code, emitter.used, label, tuple(emitter.memories), shape)


def array_expr(text: str, values: np.ndarray, dims: tuple[str, ...]) -> Expr:
    """An Expr whose value is a fixed array over `dims` (a per-cell value as written)."""
    held = np.array(values, dtype=np.float64)[..., np.newaxis]  # runs last
    held.setflags(write=False)

    def fixed(ns: Mapping[str, Any]) -> np.ndarray:
        return held

    return Expr(text, frozenset(), "<per-cell values>", fixed, None, (), dims)


def pick_cell(expr: Expr, index: tuple[int, ...], elements: Sequence[str]) -> Expr:
    """One cell of an arrayed expression's value, as an Expr of its own (an outcome's or a
    record's cell). `whole` is the arrayed expression, evaluated once for all its cells;
    the text is the cell as an expression would pick it (`store[food]`)."""

    def fn(ns: Mapping[str, Any]) -> Any:
        return expr.fn(ns)[index]

    whole = expr.text.strip()
    text = f"{whole}[{','.join(elements)}]"
    if not whole.replace(".", "").replace("_", "").isalnum():
        text = f"({whole})[{','.join(elements)}]"
    return Expr(text, expr.names, expr.code, fn, None, expr.memories, (), expr, index)


def _function(
    text: str,
    code: str,
    used: set[str],
    label: str,
    memories: tuple[Memory, ...] = (),
    dims: tuple[str, ...] = (),
) -> Expr:
    """An Expr from generated code (which reads exactly the names in `used`)."""
    source = f"def _expr(ns):\n    return {code}\n"
    scope = dict(_RUNTIME)
    exec(compile(source, f"<{label}>", "exec"), scope)  # generated from the checked tree only
    constant = None
    if not used:
        with np.errstate(all="ignore"):
            value = scope["_expr"]({})
        constant = float(value)
    return Expr(text, frozenset(used), code, scope["_expr"], constant, memories, dims)


Dims = tuple[str, ...]
Code = tuple[str, Dims]  # generated Python, and the dimensions of its value


class _Emitter:
    """Walks a parsed expression, refusing what is not whitelisted, and writes Python for it.

    Each part's code comes with its dimensions (canonical order): operands over different
    dimensions are aligned here, once, by inserting axes (`_ex`), so that numpy broadcasts
    them by name; the generated code does no name matching at run time."""

    def __init__(self, names: Mapping[str, str], flows: frozenset[str], calendar: bool, lead: int):
        self.names = names
        self.flows = flows
        self.calendar = calendar
        self.lead = lead
        self.used: set[str] = set()
        self.step = 1.0
        self.memory = False
        self.label = "expression"
        self.memories: list[Memory] = []
        self.dims: dict[str, Dims] = {}
        self.dimensions: dict[str, tuple[str, ...]] = {}
        self.element: dict[str, str] = {}

    def fail(self, node: ast.AST, message: str, hint: str | None = None) -> ExprError:
        return ExprError(message, self.lead + getattr(node, "col_offset", 0), hint)

    # -- dimensions ----------------------------------------------------------------------
    def union(self, *parts: Dims) -> Dims:
        rank = {d: i for i, d in enumerate(self.dimensions)}
        return tuple(sorted({d for p in parts for d in p}, key=lambda d: rank[d]))

    def align(self, code: Code, want: Dims) -> str:
        """`code` with an axis inserted for each dimension of `want` it lacks."""
        text, have = code
        if not have or have == want:
            return text
        missing = tuple(i for i, d in enumerate(want) if d not in have)
        return f"_ex({text}, {missing!r})"

    def combine(self, codes: list[Code]) -> tuple[list[str], Dims]:
        want = self.union(*(d for _, d in codes))
        return [self.align(c, want) for c in codes], want

    # -- the tree ------------------------------------------------------------------------
    def emit(self, node: ast.AST, depth: int) -> Code:
        if depth > MAX_DEPTH:
            raise self.fail(node, f"expression nested deeper than {MAX_DEPTH} levels")
        d = depth + 1
        match node:
            case ast.Constant(value=bool() as v):
                return ("1.0" if v else "0.0"), ()
            case ast.Constant(value=int() | float() as v):
                return repr(self.number(node, v)), ()
            case ast.Constant(value=str() | bytes()):
                raise self.fail(node, "strings are not allowed in expressions")
            case ast.Constant():
                raise self.fail(node, f"{node.value!r} is not allowed in expressions")
            case ast.Name(id=name):
                return self.name(node, name)
            case ast.Attribute(value=ast.Name(id=prefix), attr=attr) if prefix in PREFIXES:
                if attr not in self.flows:
                    from sim.errors import did_you_mean

                    raise self.fail(
                        node,
                        f"unknown flow '{attr}' in {prefix}.{attr}",
                        did_you_mean(attr, self.flows),
                    )
                key = f"{prefix}.{attr}"
                self.used.add(key)
                return f"ns[{key!r}]", self.dims.get(key, ())
            case ast.Attribute():
                raise self.fail(
                    node,
                    "attribute access is not allowed",
                    "only flow.NAME, cum.NAME and transit.NAME",
                )
            case ast.BinOp(left=left, op=op, right=right):
                (a, b), dims = self.combine([self.emit(left, d), self.emit(right, d)])
                if isinstance(op, ast.Add):
                    return f"({a} + {b})", dims
                if isinstance(op, ast.Sub):
                    return f"({a} - {b})", dims
                if isinstance(op, ast.Mult):
                    return f"({a} * {b})", dims
                if isinstance(op, ast.Div):
                    return f"_div({a}, {b})", dims
                if isinstance(op, ast.Pow):
                    return f"_pow({a}, {b})", dims
                raise self.fail(
                    node,
                    f"operator {_SYMBOLS.get(type(op), type(op).__name__)} is not allowed",
                    "use + - * / **",
                )
            case ast.UnaryOp(op=ast.USub(), operand=x):
                code, dims = self.emit(x, d)
                return f"(-{code})", dims
            case ast.UnaryOp(op=ast.UAdd(), operand=x):
                return self.emit(x, d)
            case ast.UnaryOp(op=ast.Not(), operand=x):
                code, dims = self.emit(x, d)
                return f"_not({code})", dims
            case ast.UnaryOp():
                raise self.fail(node, "operator ~ is not allowed")
            case ast.BoolOp(op=op, values=values):
                fn = "_and" if isinstance(op, ast.And) else "_or"
                codes, dims = self.combine([self.emit(v, d) for v in values])
                return f"{fn}({', '.join(codes)})", dims
            case ast.Compare(left=left, ops=ops, comparators=rights):
                for cmp in ops:
                    if type(cmp) not in _COMPARE:
                        shown = _SYMBOLS.get(type(cmp), type(cmp).__name__)
                        raise self.fail(node, f"comparison '{shown}' is not allowed")
                codes, dims = self.combine([self.emit(x, d) for x in [left, *rights]])
                parts = [
                    f"{_COMPARE[type(cmp)]}({a}, {b})"
                    for cmp, a, b in zip(ops, codes, codes[1:], strict=False)
                ]
                return (parts[0] if len(parts) == 1 else f"_and({', '.join(parts)})"), dims
            case ast.Call():
                return self.call(node, d)
            case ast.IfExp():
                raise self.fail(node, "if/else is not allowed", "use where(condition, a, b)")
            case ast.Lambda():
                raise self.fail(node, "lambda is not allowed")
            case ast.ListComp() | ast.SetComp() | ast.DictComp() | ast.GeneratorExp():
                raise self.fail(node, "comprehensions are not allowed")
            case ast.Subscript(value=value, slice=index):
                return self.subscript(node, value, index, d)
            case ast.List() | ast.Tuple() | ast.Set() | ast.Dict():
                raise self.fail(node, "lists are allowed only as interp()'s points")
            case ast.JoinedStr() | ast.FormattedValue():
                raise self.fail(node, "strings are not allowed in expressions")
            case ast.NamedExpr():
                raise self.fail(node, "assignment (:=) is not allowed in expressions")
            case _:
                raise self.fail(node, f"{type(node).__name__} is not allowed in expressions")

    def name(self, node: ast.AST, name: str) -> Code:
        if name.startswith("__"):
            raise self.fail(node, f"name '{name}' is not allowed (no dunder names)")
        if name in CALENDAR:
            if not self.calendar:
                raise self.fail(node, f"'{name}' (the calendar) is not available here")
            self.used.add(name)
            return f"ns[{name!r}]", ()
        if name in PREFIXES:
            raise self.fail(node, f"'{name}' needs a flow name: {name}.NAME")
        if name in FUNCTIONS:
            raise self.fail(node, f"'{name}' is a function; call it: {name}(...)")
        if name not in self.names:
            if name in self.dimensions:
                raise self.fail(
                    node,
                    f"'{name}' is a dimension, not a value",
                    f"it names what a reduction reduces: sum(x, {name}), mean(x, {name}), ...",
                )
            if name in self.element:
                raise self.fail(
                    node,
                    f"'{name}' is an element of dimension '{self.element[name]}', not a value",
                    f"pick it from an array over {self.element[name]}: x[{name}]",
                )
            from sim.errors import did_you_mean

            options = [*self.names, *(CALENDAR if self.calendar else ())]
            hint = did_you_mean(name, options)
            if hint is None and name in self.flows:
                hint = f"a flow's amount is flow.{name} (last tick) or cum.{name}"
            raise self.fail(node, f"unknown name '{name}'", hint)
        self.used.add(name)
        return f"ns[{name!r}]", self.dims.get(name, ())

    def subscript(self, node: ast.AST, value: ast.AST, index: ast.AST, depth: int) -> Code:
        """x[elem] or x[elem1, elem2]: one element of some of x's dimensions."""
        if not self.dimensions:
            raise self.fail(node, "subscripts ([...]) are not allowed")
        code, dims = self.emit(value, depth)
        shown = ast.unparse(value)
        if not dims:
            raise self.fail(node, f"'{shown}' is not over any dimension, so it has no elements")
        items = index.elts if isinstance(index, ast.Tuple) else [index]
        axes: list[int] = []
        picks: list[int] = []
        for item in items:
            if not isinstance(item, ast.Name):
                raise self.fail(item, "x[...] takes element names, like x[food] or x[china, food]")
            elem = item.id
            dim = self.element.get(elem)
            if dim is None:
                from sim.errors import did_you_mean

                if elem in self.dimensions:
                    raise self.fail(
                        item,
                        f"'{elem}' is a dimension; x[...] picks elements",
                        f"sum(x, {elem}) etc. reduce a dimension",
                    )
                known = [e for dd in dims for e in self.dimensions[dd]]
                raise self.fail(
                    item,
                    f"unknown element '{elem}'",
                    did_you_mean(elem, known) or f"'{shown}' is over ({', '.join(dims)})",
                )
            if dim not in dims:
                raise self.fail(
                    item,
                    f"'{elem}' is an element of '{dim}', but '{shown}' is over ({', '.join(dims)})",
                )
            axis = dims.index(dim)
            if axis in axes:
                raise self.fail(item, f"two elements of dimension '{dim}' in one subscript")
            axes.append(axis)
            picks.append(list(self.dimensions[dim]).index(elem))
        rest = tuple(dd for i, dd in enumerate(dims) if i not in axes)
        return f"_pick({code}, {tuple(axes)!r}, {tuple(picks)!r})", rest

    def reduction(self, node: ast.Call, kind: str, depth: int) -> Code:
        """sum/mean/min/max of one value: over one dimension (second argument), or all."""
        code, dims = self.emit(node.args[0], depth)
        op = {"sum": "_add", "mean": "_add", "min": "_minimum", "max": "_maximum"}[kind]
        if len(node.args) == 2:
            arg = node.args[1]
            assert isinstance(arg, ast.Name)
            dim = arg.id
            if dim not in dims:
                shown = ast.unparse(node.args[0])
                over = f"over ({', '.join(dims)})" if dims else "not over any dimension"
                raise self.fail(arg, f"{kind}(x, {dim}): '{shown}' is {over}")
            axes = [dims.index(dim)]
        else:
            axes = list(range(len(dims)))
        if not axes:
            if kind in ("min", "max"):
                raise self.fail(node, f"{kind}() takes at least 2 arguments, got 1")
            shown = ast.unparse(node.args[0])
            raise self.fail(
                node, f"{kind}({shown}) reduces cells, but '{shown}' is not over any dimension"
            )
        count = 1
        for axis in sorted(axes, reverse=True):  # the innermost first
            code = f"_fold({op}, {code}, {axis})"
            count *= len(self.dimensions[dims[axis]])
        if kind == "mean":
            code = f"_div({code}, {float(count)!r})"
        return code, tuple(dd for i, dd in enumerate(dims) if i not in axes)

    def is_dimension(self, node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Name) and node.id in self.dimensions and node.id not in self.names
        )

    def call(self, node: ast.Call, depth: int) -> Code:
        func = node.func
        if not isinstance(func, ast.Name):
            raise self.fail(node, "only the listed functions may be called", _functions_hint())
        if func.id not in FUNCTIONS:
            raise self.fail(node, f"function '{func.id}' is not allowed", _functions_hint())
        if node.keywords:
            raise self.fail(node, f"{func.id}() takes no keyword arguments")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(node, f"{func.id}() takes no *arguments")
        low, high = FUNCTIONS[func.id]
        n = len(node.args)
        if n < low or (high is not None and n > high):
            want = (
                f"{low}" if low == high else f"at least {low}" if high is None else f"{low}-{high}"
            )
            raise self.fail(node, f"{func.id}() takes {want} arguments, got {n}")
        if func.id in REDUCTIONS:
            second_dim = n == 2 and self.is_dimension(node.args[1])
            if func.id in ("sum", "mean") and n == 2 and not second_dim:
                raise self.fail(
                    node.args[1],
                    f"{func.id}(x, DIM)'s second argument is a dimension",
                    "declared dimensions: " + ", ".join(self.dimensions)
                    if self.dimensions
                    else "no dimensions: are declared",
                )
            if n == 1 or second_dim:
                return self.reduction(node, func.id, depth)
        if func.id == "interp":
            x = self.emit(node.args[0], depth)
            xp = self.points(node.args[1])
            fp = self.points(node.args[2])
            if len(xp) != len(fp) or len(xp) < 2:
                raise self.fail(
                    node, "interp(x, [x1, x2, ...], [y1, y2, ...]) needs equal lists of 2+"
                )
            if any(b <= a for a, b in itertools.pairwise(xp)):
                raise self.fail(node.args[1], "interp()'s x points must increase")
            return f"_interp({x[0]}, {xp!r}, {fp!r})", x[1]
        if func.id in MEMORY:
            return self.memory_call(node, func.id, depth)
        codes, dims = self.combine([self.emit(a, depth) for a in node.args])
        if func.id in TIMED:
            if not self.calendar:
                raise self.fail(node, f"{func.id}() reads the time, which is not available here")
            self.used.add("t")
            if func.id == "ramp":  # t goes between start and the optional end
                return "_ramp(" + ", ".join([*codes[:2], "ns['t']", *codes[2:]]) + ")", dims
            return f"_{func.id}({', '.join(codes)}, ns['t'], {self.step / 2!r})", dims
        if func.id == "where" and dims:
            return f"_full_where({', '.join(codes)})", dims  # every cell, even if c is one
        return f"_{func.id}({', '.join(codes)})", dims

    def memory_call(self, node: ast.Call, kind: str, depth: int) -> Code:
        """A built-in with memory: its arguments compiled on their own, its output a name."""
        if not self.memory:
            raise self.fail(
                node,
                f"{kind}() keeps state from tick to tick, which only a variable or a rate may do",
                f"define a variable as {kind}(...) and read the variable here",
            )
        args = []
        for arg in node.args:
            outer, self.used = self.used, set()
            code, dims = self.emit(arg, depth)
            args.append(_function(ast.unparse(arg), code, self.used, self.label, (), dims))
            self.used = outer  # the call's output is a name of its own, not its inputs
        ticks = 0
        if kind in ("smooth", "smooth3", "delay1", "delay3", "delay_fixed"):
            time = args[1]
            if time.constant is not None and not time.constant > 0:
                raise self.fail(node.args[1], f"{kind}()'s time must be > 0, got {time.text}")
        if kind == "delay_fixed":
            time = args[1]
            if time.constant is None:
                raise self.fail(
                    node.args[1],
                    "delay_fixed()'s delay must be a number of months, the same in every run",
                    "a delay that varies by run or over time is delay1() or delay3()",
                )
            ticks = round(time.constant / self.step)
            if abs(ticks * self.step - time.constant) > 1e-9 * max(1.0, time.constant):
                raise self.fail(
                    node.args[1],
                    f"delay_fixed()'s delay {time.constant:g} is not a whole number of ticks "
                    f"(step {self.step:g})",
                )
        dims = self.union(*(a.dims for a in args))
        name = f"__{kind}:{self.label}:{len(self.memories)}"
        col = self.lead + node.col_offset
        self.memories.append(Memory(name, kind, tuple(args), col, ticks, dims))
        self.used.add(name)
        self.dims[name] = dims
        return f"ns[{name!r}]", dims

    def points(self, node: ast.AST) -> list[float]:
        if not isinstance(node, ast.List | ast.Tuple):
            raise self.fail(node, "interp() needs a list of numbers here, like [0, 12, 24]")
        out = []
        for item in node.elts:
            sign = 1.0
            if isinstance(item, ast.UnaryOp) and isinstance(item.op, ast.USub | ast.UAdd):
                sign = -1.0 if isinstance(item.op, ast.USub) else 1.0
                item = item.operand
            value = item.value if isinstance(item, ast.Constant) else None
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise self.fail(item, "interp()'s points must be plain numbers")
            out.append(sign * self.number(item, value))
        return out

    def number(self, node: ast.AST, literal: int | float) -> float:
        try:
            value = float(literal)
        except OverflowError:  # an integer literal beyond float range
            value = np.inf
        if not np.isfinite(value):  # 1e999 reads as inf, which generated code can't spell
            raise self.fail(node, "number too large", "at most about 1.8e308")
        return value


def _functions_hint() -> str:
    return "allowed: " + ", ".join(FUNCTIONS)
