"""Fuzzing the front door: whatever text a user hands us, the loader and the expression compiler
either accept it or raise the one error type (ScenarioError; ExprError for bare expressions).

Never another exception, never a hang (each example runs under a hard timer), never a side
effect (nothing appears in the working directory). Accepted expressions must give the same
value on numpy arrays (the kernel) as on floats (the SimPy engine).
"""

from __future__ import annotations

import contextlib
import os
import signal
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.errors import ScenarioError
from sim.model import Model, load
from sim.scenario.expr import FUNCTIONS, ExprError, compile_expr
from tests.properties.scenarios import scenarios

BAKERY = Path(__file__).resolve().parents[2] / "examples" / "bakery.yaml"
HARD_LIMIT = 30.0  # seconds; only so a hang fails the example instead of stalling CI


def fuzz(examples: int) -> Any:
    return settings(
        max_examples=examples,
        deadline=None,  # speed is not a property here: a busy CI machine must not fail it
        database=None,  # nothing written to disk, so "no side effect" can be checked
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


class Hang(BaseException):
    """Raised by the timer; a BaseException so no `except Exception` in sim can swallow it."""


@contextlib.contextmanager
def bounded(seconds: float = HARD_LIMIT) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[Path, Path]]:
    """(folder for scenario files, empty working directory that must stay empty)."""
    with tempfile.TemporaryDirectory() as files, tempfile.TemporaryDirectory() as cwd:
        old = os.getcwd()
        os.chdir(cwd)
        try:
            yield Path(files), Path(cwd)
        finally:
            os.chdir(old)


def load_or_refuse(sandbox: tuple[Path, Path], content: bytes | str) -> Model | None:
    """Load `content` as a scenario file: a Model, or None after a ScenarioError. Else fail."""
    files, cwd = sandbox
    path = files / "case.yaml"
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogatepass")
    path.write_bytes(content)
    try:
        with bounded():
            return load(path)
    except ScenarioError as exc:
        assert exc.problems, "a ScenarioError must hold at least one problem"
        for problem in exc.problems:
            assert str(problem).strip()
        return None
    finally:
        assert list(cwd.iterdir()) == [], "loading a scenario created files"


# -- scenario documents ----------------------------------------------------------------------

JUNK_TEXT = [
    "",
    " ",
    "never",
    "2024-13",
    "2024-00",
    "1e999",
    "-0",
    "t",
    "flow.f0",
    "cum.nope",
    "__import__('os').system('touch MARKER')",
    "().__class__",
    "lambda: 1",
    "[1, 2][0]",
    "min(1)",
    "where(1, 2)",
    "interp(t, [1, 0], [0, 1])",
    "p0 +",
    "p0 ** p0 ** p0",
    "1/0",
    "log(0)",
    "x" * 5000,
    "(" * 300 + "1" + ")" * 300,
    "-" * 500 + "1",
    "a\x00b",
    "silo",
    "source",
    "sink",
    "mc",
    "choice",
    "../../etc/passwd",
    "case.yaml",
    "/dev/zero",
    ".",
]

junk = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**30), 10**30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        st.sampled_from(JUNK_TEXT),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def bakery() -> dict[str, Any]:
    data = yaml.safe_load(BAKERY.read_text())
    data.pop("extends", None)
    return data


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            out += paths(value, prefix + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += paths(value, prefix + (i,))
    return out


def typo(word: str, draw: st.DrawFn) -> str:
    if not word:
        return "x"
    i = draw(st.integers(0, len(word) - 1))
    how = draw(st.sampled_from(["drop", "double", "swap", "upper", "append"]))
    if how == "drop":
        return word[:i] + word[i + 1 :] or "x"
    if how == "double":
        return word[:i] + word[i] + word[i:]
    if how == "swap" and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if how == "upper":
        return word.upper()
    return word + "_"


@st.composite
def nearly_valid(draw: st.DrawFn) -> dict[str, Any]:
    """A valid scenario, then one mutation: drop, replace, retype, rename or add something."""
    data = draw(st.one_of(st.just(None), scenarios(max_units=2)))
    data = bakery() if data is None else data
    path = draw(st.sampled_from(paths(data)))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    how = draw(st.sampled_from(["drop", "replace", "replace", "rename", "add", "copy"]))
    if how == "drop":
        del parent[last]
    elif how == "replace":
        parent[last] = draw(junk)
    elif how == "rename" and isinstance(parent, dict):
        parent[typo(str(last), draw)] = parent.pop(last)
    elif how == "add" and isinstance(parent, dict):
        parent[draw(st.sampled_from([*map(str, path), "extends", "dist", "kind", "t"]))] = draw(
            junk
        )
    elif how == "copy":  # a value moved somewhere it doesn't belong (e.g. a name clash)
        other = draw(st.sampled_from(paths(data)))
        source = data
        for part in other:
            source = source[part]
        parent[last] = source
    return data


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@fuzz(60)
@given(scenarios(max_units=2))
def test_valid_scenarios_load(sandbox: tuple[Path, Path], data: dict[str, Any]) -> None:
    assert load_or_refuse(sandbox, dump(data)) is not None


@fuzz(120)
@given(nearly_valid())
def test_nearly_valid_scenarios_load_or_refuse(
    sandbox: tuple[Path, Path], data: dict[str, Any]
) -> None:
    load_or_refuse(sandbox, dump(data))


# Distributions with numbers from anywhere in float range: refused, or accepted and usable.
wide = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(-10, 10),
    st.floats(1, 1e308),
    st.sampled_from([0.0, 1.0, -1.0, 1e308, -1e308, 5e-324, 709.0, 710.0, 1e-300]),
)
DIST_KEYS = {
    "uniform": ["low", "high"],
    "triangular": ["low", "mode", "high"],
    "pert": ["low", "mode", "high", "lamb"],
    "normal": ["mean", "sd", "low", "high"],
    "lognormal": ["median", "p95"],
    "beta": ["a", "b", "low", "high"],
    "fixed": ["value"],
}
distributions = st.one_of(
    *[
        st.fixed_dictionaries({"dist": st.just(name)}, optional=dict.fromkeys(keys, wide))
        for name, keys in DIST_KEYS.items()
    ],
    st.fixed_dictionaries({"dist": st.just("lognormal"), "mu": wide, "sigma": wide}),
    st.fixed_dictionaries(
        {"dist": st.just("choice"), "values": st.lists(wide, min_size=1, max_size=3)},
        optional={"weights": st.lists(wide, min_size=1, max_size=3)},
    ),
)


@fuzz(90)
@given(distributions, st.booleans())
def test_distributions_with_extreme_numbers_load_or_refuse(
    sandbox: tuple[Path, Path], spec: dict[str, Any], as_noise: bool
) -> None:
    data = bakery()
    if as_noise:
        data["flows"]["eat"]["noise"] = spec
    else:
        data["parameters"]["price"] = spec
    load_or_refuse(sandbox, dump(data))


YAML_BITS = [
    *"{}[]:,-&*!|>'\"#%@`?\t\n ",
    "\n  ",
    ": ",
    "- ",
    "<<: ",
    "&a ",
    "*a",
    "!!python/name:os.system ",
    "---\n",
    "...\n",
    "\ufeff",
    "\x00",
]


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    """A valid scenario's YAML text with a few characters inserted, dropped or lines shuffled."""
    text = dump(draw(st.one_of(st.just(bakery()), scenarios(max_units=1))))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        how = draw(st.sampled_from(["insert", "delete", "truncate", "dup_line"]))
        if how == "insert":
            text = text[:i] + draw(st.sampled_from(YAML_BITS)) + text[i:]
        elif how == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 8)) :]
        elif how == "truncate":
            text = text[:i]
        else:
            lines = text.splitlines(keepends=True)
            if lines:
                k = draw(st.integers(0, len(lines) - 1))
                lines.insert(draw(st.integers(0, len(lines))), lines[k])
            text = "".join(lines)
    return text


@fuzz(90)
@given(mutated_text())
def test_mutated_yaml_text_loads_or_refuses(sandbox: tuple[Path, Path], text: str) -> None:
    load_or_refuse(sandbox, text)


@fuzz(200)
@given(st.binary(max_size=2000))
def test_garbage_bytes_are_refused(sandbox: tuple[Path, Path], raw: bytes) -> None:
    assert load_or_refuse(sandbox, raw) is None


@fuzz(300)
@given(
    st.one_of(
        st.text(max_size=1000),
        st.lists(
            st.sampled_from([*YAML_BITS, "name", "start", "months", "1", "x"]), max_size=80
        ).map("".join),
    )
)
def test_garbage_text_is_refused(sandbox: tuple[Path, Path], text: str) -> None:
    assert load_or_refuse(sandbox, text) is None


# -- expressions -----------------------------------------------------------------------------

NAMES = {"a": "parameter", "b": "stock", "c": "variable", "d": "state"}
FLOWS = frozenset({"f", "g"})
VARIABLES = [*NAMES, "t", "month", "year", "flow.f", "cum.g", "transit.f"]

number = st.one_of(
    st.integers(0, 10**6).map(str),
    st.floats(0, 1e6, allow_nan=False).map(repr),
    st.sampled_from(["0", "1", "0.5", "1e-3", "2.5e2", "True", "False"]),
)
leaf = st.one_of(number, st.sampled_from(VARIABLES))
points = st.lists(st.floats(-100, 100, allow_nan=False), min_size=2, max_size=5, unique=True)


def grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    ops = ["+", "-", "*", "/", "**", "<", "<=", ">", ">=", "==", "!=", "and", "or"]
    return st.one_of(
        st.tuples(inner, st.sampled_from(ops), inner).map(lambda x: f"({x[0]} {x[1]} {x[2]})"),
        st.tuples(st.sampled_from(["-", "+", "not "]), inner).map(lambda x: f"({x[0]}{x[1]})"),
        st.tuples(st.sampled_from(["abs", "exp", "log", "sqrt"]), inner).map(
            lambda x: f"{x[0]}({x[1]})"
        ),
        st.tuples(st.sampled_from(["min", "max"]), st.lists(inner, min_size=2, max_size=4)).map(
            lambda x: f"{x[0]}({', '.join(x[1])})"
        ),
        st.tuples(st.sampled_from(["clip", "where"]), inner, inner, inner).map(
            lambda x: f"{x[0]}({x[1]}, {x[2]}, {x[3]})"
        ),
        st.tuples(inner, points).map(
            lambda x: f"interp({x[0]}, {sorted(x[1])}, {[v * 2 for v in x[1]]})"
        ),
        st.tuples(inner, inner).map(lambda x: f"({x[0]} < {x[1]} <= {x[0]})"),
    )


expressions = st.recursive(leaf, grow, max_leaves=40)

TOKENS = [
    *VARIABLES,
    *FUNCTIONS,
    "1",
    "2.5",
    "-",
    "+",
    "*",
    "/",
    "**",
    "//",
    "%",
    "@",
    "~",
    "<<",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    ".",
    "..",
    "=",
    ":=",
    "==",
    "<",
    "and",
    "or",
    "not",
    "is",
    "in",
    "if",
    "else",
    "for",
    "lambda",
    "yield",
    "await",
    "__class__",
    "__import__",
    "'s'",
    '"',
    "f'",
    "\\",
    "#",
    ";",
    "\n",
    "flow",
    "cum",
    "transit",
    "eval",
    "exec",
    "open",
    "getattr",
    "os",
    "sys",
    "None",
    "...",
    "1j",
    "0x1f",
    "1_000",
    "1e999",
    "*",
    "**kw",
]
soup = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=30).flatmap(
    lambda parts: st.sampled_from([" ".join(parts), "".join(parts)])
)
garbage = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=string.printable, max_size=300),
    st.integers(3990, 4100).map(lambda n: ("1+" * n)[:n] + "1"),
    st.integers(1, 200).map(lambda n: "(" * n + "1" + ")" * n),
    st.integers(1, 200).map(lambda n: "-" * n + "1"),
)


def compile_or_refuse(text: str) -> Any:
    cwd = Path.cwd()
    try:
        with bounded():
            return compile_expr(text, NAMES, FLOWS)
    except ExprError as exc:
        assert str(exc.message).strip()
        return None
    finally:
        assert list(cwd.iterdir()) == [], "compiling an expression created files"


SAMPLES = 5


@st.composite
def inputs(draw: st.DrawFn) -> dict[str, np.ndarray]:
    value = st.one_of(
        st.floats(-1e3, 1e3, allow_nan=False), st.sampled_from([0.0, 1.0, -1.0, 0.5, 1e-9])
    )
    ns = {
        n: np.array(draw(st.lists(value, min_size=SAMPLES, max_size=SAMPLES)))
        for n in [*NAMES, "flow.f", "cum.g", "transit.f"]
    }
    ns["t"] = np.array(
        draw(st.lists(st.integers(0, 500), min_size=SAMPLES, max_size=SAMPLES)), float
    )
    ns["month"] = ns["t"] % 12 + 1
    ns["year"] = 2024 + ns["t"] // 12
    return ns


# Few examples: tests/scenario/test_expr_oracle.py checks both forms against a reference.
@fuzz(100)
@given(expressions, inputs())
def test_generated_expressions_agree_on_arrays_and_floats(
    sandbox: tuple[Path, Path], text: str, ns: dict[str, np.ndarray]
) -> None:
    expr = compile_or_refuse(text)
    if expr is None:
        return
    with np.errstate(all="ignore"), bounded():
        on_arrays = np.broadcast_to(np.asarray(expr(ns), dtype=float), (SAMPLES,))
        on_floats = [float(expr({k: float(v[i]) for k, v in ns.items()})) for i in range(SAMPLES)]
    for i, (x, y) in enumerate(zip(on_arrays, on_floats, strict=True)):
        if np.isfinite(x) and np.isfinite(y):
            # Bit-identical here; the tolerance is for CPUs where exp/log on arrays take a
            # SIMD path whose last bit may differ from the scalar one.
            assert x == pytest.approx(y, rel=1e-12, abs=1e-300), (text, i)


@fuzz(400)
@given(soup)
def test_token_soup_compiles_or_is_refused(sandbox: tuple[Path, Path], text: str) -> None:
    compile_or_refuse(text)


@fuzz(300)
@given(garbage)
def test_garbage_expressions_are_refused_cleanly(sandbox: tuple[Path, Path], text: str) -> None:
    compile_or_refuse(text)
