"""An oracle for the expression language: sim's compiled expressions against a reference.

The reference evaluator below walks Python's `ast` of the same text itself and computes with
plain Python floats and the `math` module, following the meaning docs/language.md gives each
operator and function (section 9). It shares nothing with `sim.scenario.expr` but the parser,
so a wrong operator, a swapped argument or a short-cut chain in the compiler shows up as a
value that differs from the reference's.

Every generated expression is compiled once and evaluated twice, as the two engines do: on
numpy arrays (the kernel; parameters and stocks are arrays, the calendar plain floats) and
on plain floats, one run at a time (the SimPy engine). Both must equal the reference exactly
(NaN where the reference gives NaN). Exact is possible because the reference does the same
IEEE operations: + - * / on floats round identically in Python and numpy.

Where the meaning leaves a last bit open the reference says which bit it takes, and why:

- exp, log, sin, cos and ** are computed with `math` (the meaning, with IEEE's answers
  where `math` raises: log(0) = -inf, exp(1000) = inf, sqrt(-1) = nan, 0 ** -1 = inf, ...)
  and then checked against numpy's value of the same call to a relative 1e-12: the two
  libraries may round the last bit differently. The reference then carries numpy's bit on,
  so that a 1-ulp difference can't be amplified by a later subtraction or comparison into a
  false alarm.
- Division by zero gives IEEE's ±inf (0/0: nan), as docs/language.md's "non-finite runs"
  section expects, where Python would raise.
- min, max and clip propagate NaN (a non-finite value is never silently dropped). Between
  equal arguments (0.0 and -0.0) the later one is taken, numpy's choice, since the sign of a
  zero may show later as 1/x = ±inf.
- clip(x, low, high) is min(max(x, low), high), so low > high gives high.
"""

from __future__ import annotations

import ast
import bisect
import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from sim.scenario.expr import FUNCTIONS, MEMORY, compile_expr

NAMES = {"p": "parameter", "s": "stock", "v": "variable", "k": "state"}
FLOWS = frozenset({"f", "g"})
FLOW_NAMES = ["flow.f", "cum.f", "transit.g", "flow.g"]
RUNS = 4  # values per name in the array evaluation

INF, NAN = math.inf, math.nan


# -- the reference evaluator ----------------------------------------------------------------


def _odd_integer(y: float) -> bool:
    return math.isfinite(y) and y.is_integer() and abs(y) < 2**53 and int(y) % 2 == 1


def _pow(x: float, y: float) -> float:
    if x == -INF and y == 0.5:
        # numpy gives NaN with a scalar exponent (it takes a square root) and +inf with an
        # array one (C's pow): unspecified; a run holding -inf is non-finite anyway.
        reject()
    try:
        return math.pow(x, y)
    except OverflowError:
        return -INF if x < 0 and _odd_integer(y) else INF
    except ValueError:  # 0 ** negative, or a negative base to a non-integer power
        if x == 0:
            return math.copysign(INF, x) if _odd_integer(y) else INF
        return NAN


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return INF


def _log(x: float) -> float:
    if x == 0:
        return -INF
    try:
        return math.log(x)
    except ValueError:  # negative, or -inf
        return NAN


def _domain(fn: Callable[[float], float]) -> Callable[[float], float]:
    def apply(x: float) -> float:
        try:
            return fn(x)
        except ValueError:  # sqrt of a negative, sin/cos of an infinity
            return NAN

    return apply


# Each: the meaning (math), and numpy's function whose last bit the reference carries on.
ELEMENTARY: dict[str, tuple[Callable[..., float], Callable[..., Any]]] = {
    "exp": (_exp, np.exp),
    "log": (_log, np.log),
    "sqrt": (_domain(math.sqrt), np.sqrt),
    "sin": (_domain(math.sin), np.sin),
    "cos": (_domain(math.cos), np.cos),
    "tan": (_domain(math.tan), np.tan),
    "arcsin": (_domain(math.asin), np.arcsin),
    "arccos": (_domain(math.acos), np.arccos),
    "arctan": (_domain(math.atan), np.arctan),
    "**": (_pow, np.power),
}
ELEMENTARY_RTOL = 1e-12


def elementary(name: str, *args: float) -> float:
    meaning, numpy_fn = ELEMENTARY[name]
    expected = meaning(*args)
    with np.errstate(all="ignore"):
        got = float(numpy_fn(*args))
    if math.isnan(expected) or math.isinf(expected):
        assert same(got, expected), f"{name}{args}: math gives {expected}, numpy {got}"
    else:
        assert math.isclose(got, expected, rel_tol=ELEMENTARY_RTOL, abs_tol=0), (
            f"{name}{args}: math gives {expected!r}, numpy {got!r}"
        )
    return got


def _divide(a: float, b: float) -> float:
    if b == 0:
        if a == 0 or math.isnan(a):
            return NAN
        return math.copysign(INF, a) * math.copysign(1.0, b)
    return a / b


def _pick(values: list[float], better: Callable[[float, float], bool]) -> float:
    out = values[0]
    for x in values[1:]:
        # NaN wins; otherwise the better one, and between equals the later one
        out = NAN if math.isnan(out) or math.isnan(x) else out if better(out, x) else x
    return out


def _least(values: list[float]) -> float:
    return _pick(values, lambda a, b: a < b)


def _most(values: list[float]) -> float:
    return _pick(values, lambda a, b: a > b)


def _interp(x: float, xs: list[float], ys: list[float]) -> float:
    """Piecewise linear through (xs, ys), flat beyond the ends."""
    if math.isnan(x):
        return NAN
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    j = bisect.bisect_right(xs, x) - 1  # xs[j] <= x < xs[j + 1]
    if x == xs[j]:
        return ys[j]
    slope = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j])
    return slope * (x - xs[j]) + ys[j]


def _whole(fn: Callable[[float], int]) -> Callable[[float], float]:
    """floor and ceil: an infinity or NaN is itself."""
    return lambda x: float(fn(x)) if math.isfinite(x) else x


def _round(x: float) -> float:
    """Half away from zero: 2.5 -> 3, -2.5 -> -3 (docs/language.md)."""
    if not math.isfinite(x):
        return x
    whole = math.floor(abs(x))
    return math.copysign(whole + 1.0 if abs(x) - whole >= 0.5 else float(whole), x)


def _mod(a: float, b: float) -> float:
    """Vensim's MODULO: the remainder with the dividend's sign (C's fmod)."""
    try:
        return math.fmod(a, b)
    except ValueError:  # b == 0, or a infinite
        return NAN


HALF = 0.5  # half of the step compile_expr assumes by default (1 month)


def _timed(fn: str, args: list[float], t: float) -> float:
    """step, pulse and ramp at time t, Vensim's meanings with the half-step rule."""
    if fn == "step":
        height, at = args
        return height if t + HALF > at else 0.0
    if fn == "pulse":
        at, width = args
        width = width + (2 * HALF if width == 0 else 0.0)
        return 1.0 if at <= t + HALF < at + width else 0.0
    slope, start, *end = args
    held = _most([t, start])
    if end:
        held = _least([held, end[0]])
    return slope * (held - start)


def _truth(x: float) -> bool:
    return x != 0  # NaN is non-zero, so true, in the language as in Python


def _points(node: ast.AST) -> list[float]:
    assert isinstance(node, ast.List | ast.Tuple)
    out = []
    for item in node.elts:
        sign = 1.0
        if isinstance(item, ast.UnaryOp):
            sign = -1.0 if isinstance(item.op, ast.USub) else 1.0
            item = item.operand
        assert isinstance(item, ast.Constant) and isinstance(item.value, int | float)
        out.append(sign * float(item.value))
    return out


COMPARE: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
}


def reference(text: str, ns: Mapping[str, float]) -> float:
    """The value docs/language.md gives `text` with names bound to the floats in `ns`."""
    return _ref(ast.parse(text.strip(), mode="eval").body, ns)


def _ref(node: ast.AST, ns: Mapping[str, float]) -> float:
    def r(n: ast.AST) -> float:
        return _ref(n, ns)

    match node:
        case ast.Constant(value=int() | float() as value):  # True is 1, False 0
            return float(value)
        case ast.Name(id=name):
            return ns[name]
        case ast.Attribute(value=ast.Name(id=prefix), attr=attr):
            return ns[f"{prefix}.{attr}"]
        case ast.UnaryOp(op=ast.USub(), operand=x):
            return -r(x)
        case ast.UnaryOp(op=ast.UAdd(), operand=x):
            return r(x)
        case ast.UnaryOp(op=ast.Not(), operand=x):
            return 0.0 if _truth(r(x)) else 1.0
        case ast.BinOp(left=left, op=op, right=right):
            a, b = r(left), r(right)
            match op:
                case ast.Add():
                    return a + b
                case ast.Sub():
                    return a - b
                case ast.Mult():
                    return a * b
                case ast.Div():
                    return _divide(a, b)
                case ast.Pow():
                    return elementary("**", a, b)
        case ast.BoolOp(op=ast.And(), values=values):
            return 1.0 if all(_truth(r(v)) for v in values) else 0.0
        case ast.BoolOp(op=ast.Or(), values=values):
            return 1.0 if any(_truth(r(v)) for v in values) else 0.0
        case ast.Compare(left=left, ops=ops, comparators=rights):
            # a < b <= c means a < b and b <= c
            operands = [r(left), *(r(x) for x in rights)]
            pairs = itertools.pairwise(operands)
            ok = all(COMPARE[type(op)](a, b) for op, (a, b) in zip(ops, pairs, strict=True))
            return 1.0 if ok else 0.0
        case ast.Call(func=ast.Name(id=fn), args=args):
            if fn == "interp":
                return _interp(r(args[0]), _points(args[1]), _points(args[2]))
            got = [r(a) for a in args]
            if fn == "min":
                return _least(got)
            if fn == "max":
                return _most(got)
            if fn == "clip":
                v, low, high = got
                return _least([_most([v, low]), high])
            if fn == "abs":
                return abs(got[0])
            if fn == "where":
                cond, yes, no = got
                return yes if _truth(cond) else no
            if fn in ("floor", "ceil"):
                return _whole(math.floor if fn == "floor" else math.ceil)(got[0])
            if fn == "round":
                return _round(got[0])
            if fn == "mod":
                return _mod(*got)
            if fn in ("step", "pulse", "ramp"):
                return _timed(fn, got, ns["t"])
            return elementary(fn, got[0])
    raise AssertionError(f"the reference does not know {ast.dump(node)}")


def same(got: float, want: float) -> bool:
    return got == want or (math.isnan(got) and math.isnan(want))


# -- generated expressions ------------------------------------------------------------------

LEAF_NAMES = [*NAMES, *FLOW_NAMES, "t", "month", "year"]
number = st.one_of(
    st.integers(0, 1000).map(str),
    st.floats(0, 1e4, allow_nan=False).map(repr),
    st.sampled_from(["0", "0.0", "1", "2", "3", "0.5", "1e-3", "2.5e2", "1e300", "True", "False"]),
)
leaf = st.one_of(number, st.sampled_from(LEAF_NAMES), st.sampled_from(LEAF_NAMES))
comparison = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
point = st.floats(-100, 100, allow_nan=False).map(lambda x: round(x, 2))

# The functions the generator calls; test_every_function_is_generated holds it to FUNCTIONS.
GENERATED_FUNCTIONS = {"min", "max", "clip", "abs", "exp", "log", "sqrt", "sin", "cos"}
GENERATED_FUNCTIONS |= {"where", "interp"}
GENERATED_FUNCTIONS |= {"floor", "ceil", "round", "mod", "tan", "arcsin", "arccos", "arctan"}
GENERATED_FUNCTIONS |= {"step", "pulse", "ramp"}


def _wrap(x: str) -> str:
    return f"({x})"


def grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    operand = inner.map(_wrap)
    binary = st.tuples(operand, st.sampled_from(["+", "-", "*", "/", "**"]), operand).map(" ".join)
    unary = st.tuples(st.sampled_from(["-", "+", "not "]), operand).map("".join)
    chain = st.lists(st.tuples(comparison, operand), min_size=1, max_size=3).flatmap(
        lambda rest: operand.map(lambda first: first + "".join(f" {o} {x}" for o, x in rest))
    )
    logic = st.tuples(
        st.sampled_from([" and ", " or "]), st.lists(operand, min_size=2, max_size=3)
    ).map(lambda x: x[0].join(x[1]))
    variadic = st.tuples(st.sampled_from(["min", "max"]), st.lists(inner, min_size=2, max_size=4))
    one = st.tuples(
        st.sampled_from(["abs", "exp", "log", "sqrt", "sin", "cos"]), inner.map(lambda x: [x])
    )
    one_more = st.tuples(
        st.sampled_from(["floor", "ceil", "round", "tan", "arcsin", "arccos", "arctan"]),
        inner.map(lambda x: [x]),
    )
    two = st.tuples(
        st.sampled_from(["mod", "step", "pulse", "ramp"]), st.lists(inner, min_size=2, max_size=2)
    )
    three = st.tuples(
        st.sampled_from(["clip", "where", "ramp"]), st.lists(inner, min_size=3, max_size=3)
    )
    calls = st.one_of(variadic, one, one_more, two, three).map(
        lambda x: f"{x[0]}({', '.join(x[1])})"
    )
    interp = st.tuples(
        inner,
        st.lists(point, min_size=2, max_size=5, unique=True).map(sorted),
        st.lists(point, min_size=5, max_size=5),
    ).map(lambda x: f"interp({x[0]}, {x[1]}, {x[2][: len(x[1])]})")
    return st.one_of(binary, unary, chain, logic, calls, interp)


expressions = st.recursive(leaf, grow, max_leaves=25)

special = st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.0, 1e-300, 1e300, -1e300])
value = st.one_of(
    st.floats(-1e3, 1e3, allow_nan=False),
    special,
    special,
    st.sampled_from([INF, -INF, NAN]),
)


@st.composite
def bindings(draw: st.DrawFn) -> dict[str, Any]:
    """Names bound as the kernel binds them: an array of RUNS values, or one float (a
    variable that came out constant); the calendar is always plain floats."""
    ns: dict[str, Any] = {}
    for name in [*NAMES, *FLOW_NAMES]:
        if draw(st.integers(0, 4)) == 0:
            ns[name] = draw(value)
        else:
            ns[name] = np.array(draw(st.lists(value, min_size=RUNS, max_size=RUNS)))
    t = draw(st.integers(0, 500))
    ns.update(t=float(t), month=float(t % 12 + 1), year=float(2024 + t // 12))
    return ns


def run_value(ns: Mapping[str, Any], i: int) -> dict[str, float]:
    return {k: float(np.broadcast_to(v, (RUNS,))[i]) for k, v in ns.items()}


def check(text: str, ns: Mapping[str, Any]) -> None:
    expr = compile_expr(text, NAMES, FLOWS)
    with np.errstate(all="ignore"):
        on_arrays = np.broadcast_to(np.asarray(expr(ns), dtype=float), (RUNS,))
    for i in range(RUNS):
        one = run_value(ns, i)
        want = reference(text, one)
        with np.errstate(all="ignore"):
            on_float = float(expr(one))
        assert same(float(on_arrays[i]), want), (text, one, "arrays", on_arrays[i], want)
        assert same(on_float, want), (text, one, "floats", on_float, want)


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(expressions, bindings())
def test_compiled_expressions_agree_with_the_reference(text: str, ns: dict[str, Any]) -> None:
    check(text, ns)


def test_every_function_is_generated() -> None:
    """A function added to the language must be taught to the reference and the generator
    (built-ins with memory need an engine: tests/engine/test_builtins.py holds them; sum and
    mean reduce arrays, which need dimensions: tests/scenario/test_dims.py holds them)."""
    assert set(FUNCTIONS) - set(MEMORY) - {"sum", "mean"} == GENERATED_FUNCTIONS


# Cases that pin each meaning on its own, whatever the generator happens to draw.
PINNED = [
    "clip(p, 0, 1)",
    "clip(p, -2, 5) + clip(s, 1, 0)",
    "p < s <= v",
    "0 < p < 1 != s",
    "p > s > v",
    "(s <= v) + (s >= v == s) * 2 + (s < v) * 4 + (s != v) * 8",
    "where(p > 0, s, v)",
    "where(p, 1, 2)",
    "interp(p, [0, 1, 10], [5, -1, 3])",
    "interp(s, [-3.5, 2], [1, 7])",
    "min(p, s, v)",
    "max(p, s, v, k)",
    "p and s or not v",
    "p / s - v ** 2",
    "-p ** 2 + abs(s) * sqrt(abs(v))",
    "exp(p / 100) + log(abs(s) + 1) + sin(v) * cos(k)",
    "flow.f + cum.f - transit.g * flow.g",
    "where(month >= 11 or month <= 1, t, year)",
    "p ** 0.5 + (-p) ** 3 + 0 ** p",
    "round(p) + round(s * 2.5) + round(-2.5) + round(0.49999999999999994)",
    "floor(p) + ceil(s) + mod(p, 3) + mod(-5, 3) + mod(s, v)",
    "tan(p) + arcsin(clip(s, -1, 1)) + arccos(v) + arctan(k)",
    "step(p, 13) + step(2, 13.5) + step(v, t) + pulse(13, 0) + pulse(12, 2) + pulse(p, s)",
    "ramp(2, 10, 20) + ramp(p, s) + ramp(1, 14, 15) + ramp(s, v, k)",
    "1 / p + 1 / -p",
]
PINNED_VALUES = {
    "p": np.array([0.5, -2.0, 0.0, 12.0]),
    "s": np.array([1.0, -3.0, 0.0, 0.25]),
    "v": np.array([2.0, -4.0, 0.0, 0.25]),
    "k": np.array([-1.0, 7.0, 0.0, 3.0]),
    "flow.f": np.array([1.0, 2.0, 3.0, 4.0]),
    "cum.f": np.array([10.0, 20.0, 30.0, 40.0]),
    "transit.g": np.array([0.0, 1.5, -0.0, 2.0]),
    "flow.g": 3.0,
    "t": 13.0,
    "month": 2.0,
    "year": 2025.0,
}


@pytest.mark.parametrize("text", PINNED)
def test_pinned_expressions_agree_with_the_reference(text: str) -> None:
    check(text, PINNED_VALUES)


def test_the_reference_itself() -> None:
    """The reference's own meanings, by hand: a wrong oracle would bless a wrong compiler."""
    ns = {"p": 0.5, "s": 2.0, "v": -1.0}
    assert reference("clip(p, 1, 3)", ns) == 1.0
    assert reference("clip(s, 0, 1)", ns) == 1.0
    assert reference("clip(p, 0, 1)", ns) == 0.5
    assert reference("0 < p < 1", ns) == 1.0
    assert reference("0 < s < 1", ns) == 0.0  # first pair true, second false
    assert reference("where(v, 1, 2)", ns) == 1.0
    assert reference("where(0, 1, 2)", ns) == 2.0
    assert reference("interp(-5, [0, 1], [2, 4])", ns) == 2.0
    assert reference("interp(5, [0, 1], [2, 4])", ns) == 4.0
    assert reference("interp(p, [0, 1], [2, 4])", ns) == 3.0
    assert reference("p and 0", ns) == 0.0
    assert reference("v or 0", ns) == 1.0
    assert reference("not v", ns) == 0.0
    assert reference("1 / 0", ns) == INF
    assert reference("-1 / 0", ns) == -INF
    assert math.isnan(reference("0 / 0", ns))
    assert reference("log(0)", ns) == -INF
    assert math.isnan(reference("sqrt(v)", ns))
    assert math.isnan(reference("v ** p", ns))
    assert reference("0 ** v", ns) == INF
    assert math.isnan(reference("min(p, 0 / 0)", ns))
