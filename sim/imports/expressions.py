"""PySD's abstract expressions written as sim's expression language (docs/language.md §9, §13).

Every construct either has a translation with the same meaning, or raises `Unsupported`
naming it: nothing is approximated.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Vensim's (and XMILE's) names of functions that have no translation yet, as a modeller
# knows them; anything else unknown is named by PySD's own spelling.
KNOWN_NAMES = {
    "AllocateAvailableStructure": "ALLOCATE AVAILABLE",
    "AllocateByPriorityStructure": "ALLOCATE BY PRIORITY",
    "GameStructure": "GAME",
    "GetConstantsStructure": "GET XLS CONSTANTS / GET DIRECT CONSTANTS",
    "GetDataStructure": "GET XLS DATA / GET DIRECT DATA",
    "GetLookupsStructure": "GET XLS LOOKUPS / GET DIRECT LOOKUPS",
    "DataStructure": "a data variable (:=)",
    "TrendStructure": "TREND",
    "ForecastStructure": "FORECAST",
    "SampleIfTrueStructure": "SAMPLE IF TRUE",
    "DelayNStructure": "DELAY N",
    "SmoothNStructure": "SMOOTH N",
}

# Functions with the same meaning and arguments in sim (Vensim name -> sim name).
SAME = {
    "abs": "abs",
    "exp": "exp",
    "sqrt": "sqrt",
    "ln": "log",
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "arcsin": "arcsin",
    "arccos": "arccos",
    "arctan": "arctan",
    "modulo": "mod",
}


class Unsupported(Exception):
    """A construct with no translation; its text names it as the modeller writes it."""


@dataclass
class Names:
    """What the expressions of one model refer to: sim's name for each of PySD's references,
    the model's lookups, its dimensions and elements, and its clock."""

    variables: dict[str, str]  # PySD reference -> sim name
    lookups: Mapping[str, tuple[list[float], list[float]]]  # PySD reference -> (x, y)
    dimensions: Mapping[str, str]  # PySD dimension name -> sim name
    elements: Mapping[str, str]  # PySD element name -> sim name
    initial_time: float
    step: float
    final_time: float
    saveper: float
    constants: dict[str, float] = field(default_factory=dict)  # scalar model constants
    # the memory built-ins used, by their Vensim names (for the docs' table)
    used: set[str] = field(default_factory=set)


def number(x: float) -> str:
    """A number as sim reads it back exactly (repr round-trips a float)."""
    value = float(x)
    if not math.isfinite(value):
        raise Unsupported(f"the number {value} (not finite)")
    text = repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return f"({text})" if value < 0 else text


def key(text: str) -> str:
    """PySD's reference spelling of a Vensim or XMILE name, compared loosely."""
    return "_".join(text.strip().strip('"').lower().replace("_", " ").split())


class Writer:
    """Writes one abstract expression as sim text."""

    def __init__(self, names: Names, structures: Any) -> None:
        self.names = names
        self.ae = structures
        # writes a chain of stages as stocks, returning the expression of its output
        self.chain: Callable[[bool, Any, Any, Any, int], str] | None = None
        self.calls: dict[str, Callable[[tuple[Any, ...]], str]] = {
            "if_then_else": self._if,
            "min": lambda a: self._minmax("min", a),
            "max": lambda a: self._minmax("max", a),
            "step": self._step,
            "pulse": self._pulse,
            "ramp": self._ramp,
            "pulse_train": self._pulse_train,
            "integer": lambda a: self._one(a, "where({0} >= 0, floor({0}), ceil({0}))"),
            "xidz": self._xidz,
            "zidz": self._zidz,
            "power": lambda a: f"({self.write(a[0])} ** {self.write(a[1])})",
            "log": self._log,
            "sinh": lambda a: self._one(a, "((exp({0}) - exp(-{0})) / 2)"),
            "cosh": lambda a: self._one(a, "((exp({0}) + exp(-{0})) / 2)"),
            "tanh": lambda a: self._one(a, "((exp({0}) - exp(-{0})) / (exp({0}) + exp(-{0})))"),
            "sum": lambda a: self._reduce("sum", a),
            "vmin": lambda a: self._reduce("min", a),
            "vmax": lambda a: self._reduce("max", a),
        }

    # -- the tree ---------------------------------------------------------------------------

    def write(self, node: Any) -> str:
        ae = self.ae
        if isinstance(node, bool):
            return "1" if node else "0"
        if isinstance(node, (int, float, np.integer, np.floating)):
            return number(float(node))
        if isinstance(node, np.ndarray):
            raise Unsupported("an array of numbers inside an expression")
        if isinstance(node, ae.ArithmeticStructure):
            return self._arithmetic(node)
        if isinstance(node, ae.LogicStructure):
            return self._logic(node)
        if isinstance(node, ae.ReferenceStructure):
            return self._reference(node)
        if isinstance(node, ae.CallStructure):
            return self._call(node)
        if isinstance(node, ae.InlineLookupsStructure):
            table = node.lookups
            return self._interp(node.argument, self._table(table))
        if isinstance(node, (ae.SmoothNStructure, ae.DelayNStructure)):
            vensim = "SMOOTH N" if isinstance(node, ae.SmoothNStructure) else "DELAY N"
            order = self.constant(node.order)
            if order is None or order < 1 or not float(order).is_integer():
                raise Unsupported(f"{vensim} whose order is not a fixed whole number")
            time = node.smooth_time if isinstance(node, ae.SmoothNStructure) else node.delay_time
            return self._chain(vensim, node.input, time, node.initial, int(order))
        if isinstance(node, ae.SmoothStructure):
            return self._memory(node, "smooth", "smooth3", "SMOOTH", node.smooth_time)
        if isinstance(node, ae.DelayStructure):
            return self._memory(node, "delay1", "delay3", "DELAY", node.delay_time)
        if isinstance(node, ae.DelayFixedStructure):
            self.names.used.add("DELAY FIXED")
            delay = self.constant(node.delay_time)
            ticks = None if delay is None else delay / self.names.step
            if ticks is None or ticks < 1 or abs(ticks - round(ticks)) > 1e-9:
                raise Unsupported(
                    "DELAY FIXED with a delay that is not a fixed whole number of TIME STEPs"
                    + ("" if delay is None else f" ({delay:g})")
                )
            return (
                f"delay_fixed({self.write(node.input)}, {self.write(node.delay_time)}, "
                f"{self.write(node.initial)})"
            )
        if isinstance(node, ae.InitialStructure):
            self.names.used.add("INITIAL")
            return f"init({self.write(node.initial)})"
        if isinstance(node, ae.IntegStructure):
            raise Unsupported("INTEG inside an expression (a stock is its own equation)")
        name = type(node).__name__
        raise Unsupported(KNOWN_NAMES.get(name, name))

    def constant(self, node: Any) -> float | None:
        """The value of a number, or of a reference to a model constant; else None."""
        if isinstance(node, (int, float)) and not isinstance(node, bool):
            return float(node)
        if isinstance(node, self.ae.ReferenceStructure) and not node.subscripts:
            found = self.names.constants.get(key(node.reference))
            return None if found is None else float(found)
        return None

    def _arithmetic(self, node: Any) -> str:
        ops, args = list(node.operators), list(node.arguments)
        if ops == ["negative"]:
            return f"(-{self.write(args[0])})"
        if ops == ["positive"]:
            return self.write(args[0])
        if set(ops) == {"^"}:  # a^b^c is a^(b^c), in Vensim as in Python
            out = self.write(args[-1])
            for arg in reversed(args[:-1]):
                out = f"({self.write(arg)} ** {out})"
            return out
        out = self.write(args[0])
        for op, arg in zip(ops, args[1:], strict=True):
            if op not in ("+", "-", "*", "/"):
                raise Unsupported(f"the operator {op}")
            out = f"({out} {op} {self.write(arg)})"
        return out

    def _logic(self, node: Any) -> str:
        ops, args = [o.lower() for o in node.operators], list(node.arguments)
        if ops == [":not:"]:
            return f"(not {self.write(args[0])})"
        spelled = {
            ":and:": "and",
            ":or:": "or",
            "and": "and",
            "or": "or",
            "=": "==",
            "<>": "!=",
            "<": "<",
            "<=": "<=",
            ">": ">",
            ">=": ">=",
        }
        out = self.write(args[0])
        for op, arg in zip(ops, args[1:], strict=True):
            if op not in spelled:
                raise Unsupported(f"the operator {op}")
            out = f"({out} {spelled[op]} {self.write(arg)})"
        return out

    def _reference(self, node: Any) -> str:
        ref = key(node.reference)
        names = self.names
        if ref == "time":
            if node.subscripts:
                raise Unsupported("a subscripted Time")
            return "t" if names.initial_time == 0 else f"(t + {number(names.initial_time)})"
        clock = {
            "time_step": names.step,
            "initial_time": names.initial_time,
            "final_time": names.final_time,
            "saveper": names.saveper,
        }
        if ref in clock:
            return number(clock[ref])
        if ref == "pi":
            return repr(math.pi)
        if ref in names.lookups:
            raise Unsupported(f"the lookup {node.reference} used without an argument")
        if ref not in names.variables:
            raise Unsupported(f"a reference to {node.reference}, which the model doesn't define")
        return names.variables[ref] + self._subscripts(node.subscripts)

    def _subscripts(self, subscripts: Any) -> str:
        """`x[dim]` reads the whole array in sim (arrays combine by dimension name); `x[elem]`
        picks the element."""
        if not subscripts:
            return ""
        picked: list[str] = []
        for sub in subscripts.subscripts:
            s = key(sub.rstrip("!"))
            if s in self.names.dimensions:
                if sub.endswith("!"):
                    continue  # reduced by the enclosing SUM/VMIN/VMAX
                continue
            if s in self.names.elements:
                picked.append(self.names.elements[s])
            else:
                raise Unsupported(f"the subscript {sub}")
        return f"[{', '.join(picked)}]" if picked else ""

    def _call(self, node: Any) -> str:
        ref = key(node.function.reference)
        args = tuple(node.arguments)
        if ref in self.names.lookups:
            if len(args) != 1:
                raise Unsupported(
                    f"the lookup {node.function.reference} with {len(args)} arguments"
                )
            return self._interp(args[0], self.names.lookups[ref])
        if ref in SAME:
            if len(args) != 1 and ref != "modulo":
                raise Unsupported(f"{ref.upper()} with {len(args)} arguments")
            return f"{SAME[ref]}({', '.join(self.write(a) for a in args)})"
        if ref == "pi" and not args:  # XMILE's PI()
            return repr(math.pi)
        if ref in self.calls:
            return self.calls[ref](args)
        raise Unsupported(ref.upper().replace("_", " "))

    # -- functions --------------------------------------------------------------------------

    def _one(self, args: tuple[Any, ...], template: str) -> str:
        return template.format(self.write(args[0]))

    def _if(self, args: tuple[Any, ...]) -> str:
        cond, a, b = (self.write(x) for x in args)
        return f"where({cond}, {a}, {b})"

    def _minmax(self, name: str, args: tuple[Any, ...]) -> str:
        if len(args) == 1:
            raise Unsupported(f"{name.upper()} with one argument")
        return f"{name}({', '.join(self.write(a) for a in args)})"

    def _shifted(self, node: Any) -> str:
        """A time argument (STEP's, PULSE's, RAMP's): model time, as sim's t counts from 0."""
        text = self.write(node)
        if self.names.initial_time == 0:
            return text
        return f"({text} - {number(self.names.initial_time)})"

    def _step(self, args: tuple[Any, ...]) -> str:
        return f"step({self.write(args[0])}, {self._shifted(args[1])})"

    def _pulse(self, args: tuple[Any, ...]) -> str:
        return f"pulse({self._shifted(args[0])}, {self.write(args[1])})"

    def _ramp(self, args: tuple[Any, ...]) -> str:
        if len(args) == 2:
            return f"ramp({self.write(args[0])}, {self._shifted(args[1])})"
        return f"ramp({self.write(args[0])}, {self._shifted(args[1])}, {self._shifted(args[2])})"

    def _pulse_train(self, args: tuple[Any, ...]) -> str:
        # PySD builds PULSE TRAIN(start, width, interval, end) as (start, interval, width,
        # end); Vensim's meaning: 1 while start <= Time < end and (Time - start) modulo
        # interval < width, read at the middle of the tick as PULSE is (docs/language.md §9)
        start, interval, width, end = args
        at = f"(t + {number(self.names.step / 2)})"
        s, i, w, e = (
            self._shifted(start),
            self.write(interval),
            self.write(width),
            self._shifted(end),
        )
        return (
            f"where(({at} >= {s}) and ({at} < {e}), "
            f"where(mod({at} - {s}, {i}) < where({w} > 0, {w}, {number(self.names.step)}), "
            "1, 0), 0)"
        )

    def _xidz(self, args: tuple[Any, ...]) -> str:
        # PySD's and Vensim's XIDZ: x where |b| is below 1e-6 (Vensim's "small"), else a / b
        a, b, x = (self.write(v) for v in args)
        return f"where(abs({b}) < 1e-06, {x}, {a} / where(abs({b}) < 1e-06, 1, {b}))"

    def _zidz(self, args: tuple[Any, ...]) -> str:
        a, b = (self.write(v) for v in args)
        return f"where(abs({b}) < 1e-06, 0, {a} / where(abs({b}) < 1e-06, 1, {b}))"

    def _log(self, args: tuple[Any, ...]) -> str:
        if len(args) == 1:  # XMILE's LOG10
            return f"(log({self.write(args[0])}) / log(10))"
        return f"(log({self.write(args[0])}) / log({self.write(args[1])}))"

    def _reduce(self, name: str, args: tuple[Any, ...]) -> str:
        (arg,) = args
        if not isinstance(arg, self.ae.ReferenceStructure) or not arg.subscripts:
            raise Unsupported(f"{name.upper()} of an expression (only of a subscripted name)")
        dims = [
            self.names.dimensions[key(s.rstrip("!"))]
            for s in arg.subscripts.subscripts
            if s.endswith("!") and key(s.rstrip("!")) in self.names.dimensions
        ]
        if not dims:
            raise Unsupported(f"{name.upper()} over no dimension marked with !")
        out = self._reference(arg)
        for dim in dims:
            out = f"{name}({out}, {dim})"
        return out

    def _table(self, table: Any) -> tuple[list[float], list[float]]:
        if getattr(table, "type", "interpolate") != "interpolate":
            raise Unsupported(f"a lookup of type {table.type}")
        return [float(v) for v in table.x], [float(v) for v in table.y]

    def _interp(self, argument: Any, table: tuple[list[float], list[float]]) -> str:
        xs, ys = table
        if len(xs) < 2:
            raise Unsupported("a lookup with fewer than two points")
        if any(b <= a for a, b in itertools.pairwise(xs)):
            raise Unsupported("a lookup whose x points repeat")
        points = ", ".join(number(v).strip("()") for v in xs)
        values = ", ".join(number(v).strip("()") for v in ys)
        return f"interp({self.write(argument)}, [{points}], [{values}])"

    def _memory(self, node: Any, first: str, third: str, vensim: str, time: Any) -> str:
        order = node.order
        if order not in (1, 3):
            raise Unsupported(f"{vensim} of order {order}")
        label = f"{vensim}{'3' if order == 3 else '1' if vensim == 'DELAY' else ''}"
        if node.initial != node.input:  # SMOOTHI, DELAY3I...: sim's built-ins start at x
            return self._chain(f"{label}I", node.input, time, node.initial, int(order))
        self.names.used.add(label)
        return f"{first if order == 1 else third}({self.write(node.input)}, {self.write(time)})"

    def _chain(self, vensim: str, x: Any, time: Any, initial: Any, order: int) -> str:
        """A smooth or delay that sim's built-ins don't write, as the stocks Vensim
        integrates: `order` stages of time/order each (docs/import.md)."""
        if self.chain is None:
            raise Unsupported(vensim)
        self.names.used.add(vensim)
        return self.chain(vensim.startswith("DELAY"), x, time, initial, order)
