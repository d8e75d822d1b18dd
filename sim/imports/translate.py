"""A system-dynamics model (PySD's abstract model of a Vensim or XMILE file) as a sim scenario.

What each part becomes (docs/import.md says why):

- a stock (INTEG) -> a stock. Vensim never rations an outflow, so a stock with an outflow, or
  with an inflow or initial value that may be negative, is a `balance` (never rationed, may go
  below zero); one that only receives provably non-negative amounts is a plain `stock`;
- each term of a stock's net flow -> a flow. A named flow that leaves one stock and enters
  another joins the two; any other term comes from (or goes to) an `outside` balance, one per
  unit. A flow whose rate may be negative is `two_way`;
- a number -> a parameter (`source: "imported from MODEL"`); any other auxiliary, flows
  included -> a variable of the same (valid, unique) name, so its value can be recorded;
- lookups -> `interp`, subscript ranges -> dimensions, the clock -> start, months and step
  (one model time unit is one month).
"""

from __future__ import annotations

import keyword
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import yaml

from sim.errors import Place, Problem, ScenarioError
from sim.imports.expressions import Names, Unsupported, Writer, key, number
from sim.imports.reading import Source, read
from sim.scenario.expr import RESERVED

MAX_NAME = 64
START = "2000-01"  # sim's calendar needs a month; the model's own clock is kept in `t`


@dataclass
class Imported:
    """A translated model: the scenario's YAML text, and how its names map back."""

    text: str
    original: dict[str, str]  # sim name -> the model's name (stocks, variables, parameters)
    record: list[str]
    stocks: list[str]
    initial_time: float
    step: float
    saveper: float


@dataclass
class _Term:
    sign: int
    ast: Any
    ref: str | None  # the PySD reference when the term is one named variable


@dataclass
class _Stock:
    name: str
    element: Any
    component: Any
    dims: list[str]
    unit: str
    terms: list[_Term] = field(default_factory=list)
    ref: str = ""  # how expressions refer to it (PySD's reference)
    stage: bool = False  # a stage of a smooth or delay (not one of the model's stocks)


def translate(path: str | Path) -> Imported:
    """Read MODEL (`.mdl`, `.xmile`, `.stmx`) with PySD and write it as a sim scenario.

    Raises a ScenarioError naming every construct that has no translation, and where it is."""
    source = read(Path(path))
    imported = _Translator(source).run()
    _check(imported, source)
    return imported


def _check(imported: Imported, source: Source) -> None:
    """The scenario must load: a construct the translation missed is refused here, by what
    sim says of it, rather than written."""
    from sim.model import load

    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / f"{source.path.stem}.yaml"
        scenario.write_text(imported.text, encoding="utf-8")
        try:
            load(scenario)
        except ScenarioError as exc:
            raise ScenarioError(
                [
                    Problem(
                        f"the translation is not a valid scenario ({p.path + ': ' if p.path else ''}"
                        f"{p.message}), so it can't be imported",
                        Place(str(source.path), 1, 1),
                    )
                    for p in exc.problems
                ]
            ) from None


class _Translator:
    def __init__(self, source: Source) -> None:
        from pysd.translators.structures import abstract_expressions as ae
        from pysd.translators.structures import abstract_model as am

        self.ae, self.am = ae, am
        self.source = source
        self.problems: list[Problem] = []
        self.taken: set[str] = set()
        self.file = source.path.name

    # -- entry ------------------------------------------------------------------------------

    def run(self) -> Imported:
        main, *others = self.source.sections
        for section in others:
            if section.type == "macro":
                self.refuse(section.name, f"the macro {section.name}")
            else:
                self.refuse(section.name, f"the {section.type} section {section.name}")
        clock = self.clock(main)
        dims, elements = self.dimensions(main)
        model = [e for e in main.elements if not isinstance(e, self.am.AbstractControlElement)]
        variables: dict[str, str] = {}
        lookups: dict[str, tuple[list[float], list[float]]] = {}
        self.originals = {key(e.name): e.name for e in model}
        for element in model:
            if self.is_lookup(element):
                table = element.components[0].ast
                if getattr(table, "type", "interpolate") != "interpolate":
                    self.refuse(element.name, f"a lookup of type {table.type}")
                lookups[key(element.name)] = (
                    [float(v) for v in table.x],
                    [float(v) for v in table.y],
                )
            else:
                variables[key(element.name)] = self.name(element.name)
        names = Names(variables, lookups, dims, elements, *clock)
        for element in model:
            comps = element.components
            if len(comps) == 1 and not comps[0].subscripts[0]:
                ast = comps[0].ast
                if isinstance(ast, (int, float)) and not isinstance(ast, bool):
                    names.constants[key(element.name)] = float(ast)
        self.negated_powers()
        self.names = names
        self.writer = Writer(names, self.ae)
        self.writer.chain = self.chain
        self.stages: list[_Stock] = []
        self.indicators: dict[str, str] = {}  # sim element -> its indicator parameter
        self.indicator_specs: dict[str, Any] = {}
        self.current: tuple[str, list[str]] = ("", [])  # the element being written
        return self.build([e for e in model if not self.is_lookup(e)], clock)

    def negated_powers(self) -> None:
        """Vensim reads `-2^2` as -(2^2) = -4; PySD's parser folds the sign into the number
        first ((-2)^2 = 4), and its abstract model no longer tells the two apart."""
        pattern = re.compile(r"(^|[=(,*/>^+])\s*-\s*\d[\d.]*([eE][-+]?\d+)?\s*\^")
        for number_, line in enumerate(self.source.text, start=1):
            if pattern.search(line.split("~")[0]):
                self.problems.append(
                    Problem(
                        "a negated number raised to a power (such as -2^2) can't be imported: "
                        "PySD's parser reads it as (-2)^2, Vensim as -(2^2)",
                        Place(str(self.source.path), number_, 1),
                        hint="write it -(2^2) or (-2)^2 in the model, as meant",
                    )
                )

    def refuse(self, where: str, what: str) -> None:
        self.problems.append(
            Problem(
                f"{what} can't be imported: sim has no translation for it",
                self.source.place(where),
                where,
            )
        )

    # -- the clock and the dimensions -------------------------------------------------------

    def clock(self, section: Any) -> tuple[float, float, float, float]:
        values: dict[str, float] = {}
        controls = [e for e in section.elements if isinstance(e, self.am.AbstractControlElement)]
        for element in controls:
            ast = element.components[0].ast
            if isinstance(ast, (int, float)):
                values[key(element.name)] = float(ast)
        for element in controls:  # SAVEPER = TIME STEP, and the like
            ast = element.components[0].ast
            if isinstance(ast, self.ae.ReferenceStructure) and key(ast.reference) in values:
                values[key(element.name)] = values[key(ast.reference)]
        for want in ("initial_time", "final_time", "time_step"):
            if want not in values:
                label = want.replace("_", " ").upper()
                self.refuse(label, f"{label} that is not a number")
                values[want] = {"initial_time": 0.0, "final_time": 1.0, "time_step": 1.0}[want]
        start, final, step = values["initial_time"], values["final_time"], values["time_step"]
        saveper = values.get("saveper", step)
        months = final - start
        if months <= 0 or abs(months - round(months)) > 1e-9 * max(1.0, abs(months)):
            self.refuse(
                "FINAL TIME",
                f"a horizon of FINAL TIME - INITIAL TIME = {months:g} (not a whole number of "
                "months, at one month per model time unit)",
            )
        elif step <= 0 or abs(months / step - round(months / step)) > 1e-9:
            self.refuse("TIME STEP", f"a TIME STEP of {step:g} that doesn't divide the horizon")
        return start, step, final, saveper

    def dimensions(self, section: Any) -> tuple[dict[str, str], dict[str, str]]:
        dims: dict[str, str] = {}
        elements: dict[str, str] = {}
        self.members: dict[str, list[str]] = {}  # sim dimension -> sim elements
        self.subscript_names: dict[str, str] = {}  # sim name -> the model's
        owner: dict[str, str] = {}
        self.refused_ranges: set[str] = set()
        for rng in section.subscripts:
            self.refused_ranges.add(key(rng.name))  # until it is taken below
            if rng.mapping:
                self.refuse(rng.name, f"the subscript mapping of {rng.name}")
                continue
            if not isinstance(rng.subscripts, list):
                self.refuse(rng.name, f"the subscript range {rng.name} defined as a copy or range")
                continue
            shared = [s for s in rng.subscripts if key(s) in owner]
            if shared:
                self.refuse(
                    rng.name,
                    f"the subrange {rng.name} (its element {shared[0]} is also in "
                    f"{owner[key(shared[0])]})",
                )
                continue
            self.refused_ranges.discard(key(rng.name))
            dim = self.name(rng.name)
            self.subscript_names[dim] = rng.name
            dims[key(rng.name)] = dim
            self.members[dim] = []
            for sub in rng.subscripts:
                owner[key(sub)] = rng.name
                elements[key(sub)] = self.name(sub)
                self.subscript_names[elements[key(sub)]] = sub
                self.members[dim].append(elements[key(sub)])
        self.dims, self.elements = dims, elements
        return dims, elements

    # -- names ------------------------------------------------------------------------------

    def name(self, original: str, suffix: str = "") -> str:
        """A valid, unique sim name for `original` (docs/language.md §2)."""
        base = re.sub(r"[^a-z0-9]+", "_", original.lower()).strip("_") or "x"
        if base[0].isdigit():
            base = "v_" + base
        base = base[: MAX_NAME - len(suffix) - 3] + suffix
        if base in RESERVED or keyword.iskeyword(base) or base.startswith("__"):
            base += "_"
        name, n = base, 2
        while name in self.taken:
            name, n = f"{base}_{n}", n + 1
        self.taken.add(name)
        return name

    def is_lookup(self, element: Any) -> bool:
        return any(isinstance(c, self.am.AbstractLookup) for c in element.components) and (
            len(element.components) == 1
            and isinstance(element.components[0].ast, self.ae.LookupsStructure)
            and not element.components[0].subscripts[0]
        )

    # -- the scenario -----------------------------------------------------------------------

    def build(self, model: list[Any], clock: tuple[float, float, float, float]) -> Imported:
        start, step, final, saveper = clock
        parameters: dict[str, Any] = {}
        variables: dict[str, Any] = {}
        stocks: list[_Stock] = []
        original: dict[str, str] = {}
        self.asts: dict[str, Any] = {}  # PySD reference -> its equation (for the signs)
        self.values: dict[str, np.ndarray] = {}  # PySD reference -> a parameter's numbers
        for element in model:
            ref = key(element.name)
            name = self.names.variables[ref]
            original[name] = element.name
            try:
                comps = element.components
                if any(isinstance(c, self.am.AbstractData) for c in comps):
                    self.writer.write(comps[0].ast)  # names GET DATA and the like
                    raise Unsupported("a data variable")
                if len(comps) > 1 or comps[0].subscripts[1]:
                    numbers = all(
                        isinstance(c.ast, (int, float, np.ndarray)) and not isinstance(c.ast, bool)
                        for c in comps
                    )
                    if numbers:
                        parameters[name] = self.cells(element)
                    elif any(isinstance(c.ast, self.ae.IntegStructure) for c in comps):
                        raise Unsupported("a stock defined element by element")
                    else:
                        variables[name] = self.by_element(element, name, parameters)
                        self.asts[ref] = None
                    continue
                comp = comps[0]
                dims = self.over(comp.subscripts[0])
                self.current = (name, dims)
                ast = comp.ast
                if isinstance(ast, self.ae.IntegStructure):
                    if ast.non_negative:
                        raise Unsupported("a non-negative stock (Stella's rationing)")
                    stock = _Stock(name, element, comp, dims, element.units.strip() or "1", ref=ref)
                    stock.terms = self.terms(ast.flow, 1)
                    stocks.append(stock)
                elif isinstance(ast, (int, float, np.ndarray)) and not isinstance(ast, bool):
                    parameters[name] = self.parameter(element, dims, ast)
                    self.values[ref] = np.asarray(ast, dtype=float)
                else:
                    text = self.writer.write(ast)
                    self.asts[ref] = ast
                    variables[name] = (
                        {"over": dims if len(dims) > 1 else dims[0], "value": text}
                        if dims
                        else text
                    )
            except Unsupported as exc:
                self.refuse(element.name, str(exc))
        if self.problems:
            raise ScenarioError(self.problems)
        scenario_stocks, flows = self.stocks_and_flows(stocks + self.stages)
        record = [s.name for s in stocks] + list(variables)
        original.update({s.name: s.element.name for s in self.stages})
        data: dict[str, Any] = {
            "name": self.name(self.source.path.stem)[:MAX_NAME],
            "description": (
                f"Imported by `sim import` from {self.file} "
                f"({'Vensim' if self.source.kind == 'vensim' else 'XMILE'}); "
                f"one model time unit is one month. The model's Time is t"
                + (f" + {number(start)}" if start else "")
                + "."
            ),
            "start": START,
            "months": round(final - start),
            "runs": 1,
        }
        if step != 1:
            data["step"] = step
        if self.members:
            data["dimensions"] = self.members
        for section, value in (
            ("parameters", parameters),
            ("variables", variables),
            ("stocks", scenario_stocks),
            ("flows", flows),
        ):
            if value:
                data[section] = value
        data["record"] = record
        original.update(self.subscript_names)
        text = self.header(start, step) + self.dump(data, original)
        return Imported(text, original, record, [s.name for s in stocks], start, step, saveper)

    def dump(self, data: dict[str, Any], original: dict[str, str]) -> str:
        """The YAML text; each variable's original name as a comment (a plain variable has
        no description field)."""
        out = []
        for section, value in data.items():
            if section != "variables":
                out.append(_yaml({section: value}))
                continue
            out.append("variables:\n")
            for name, expr in value.items():
                lines = [f"# {original[name]}", *_yaml({name: expr}).splitlines()]
                out.append("".join(f"  {line}\n" for line in lines))
        return "".join(out)

    def chain(self, delay: bool, x: Any, time: Any, initial: Any, order: int) -> str:
        """Vensim's DELAY N (and DELAY1I, DELAY3I) and SMOOTH N (SMOOTHI, SMOOTH3I) as the
        stocks it integrates: `order` stages, each of time/order. A delay's stage holds
        what is in it (starting at initial x time/order) and passes on stage/(time/order);
        a smooth's stage holds the smoothed value (starting at initial) and moves by
        (what it follows - stage)/(time/order). The output is the last stage's."""
        ae = self.ae
        owner, dims = self.current
        part = ae.ArithmeticStructure(["/"], (time, order))
        refs = []
        for i in range(order):
            name = self.name(f"{owner}_stage_{i + 1}")
            ref = "\x00" + name  # never one of PySD's references
            self.names.variables[ref] = name
            refs.append(ae.ReferenceStructure(ref))
        stages = []
        for i, ref in enumerate(refs):
            upstream = x if i == 0 else refs[i - 1]
            if delay:
                into = upstream if i == 0 else ae.ArithmeticStructure(["/"], (upstream, part))
                terms = [
                    _Term(1, into, None),
                    _Term(-1, ae.ArithmeticStructure(["/"], (ref, part)), None),
                ]
                start = ae.ArithmeticStructure(["*"], (initial, part))
            else:
                gap = ae.ArithmeticStructure(["-"], (upstream, ref))
                terms = [_Term(1, ae.ArithmeticStructure(["/"], (gap, part)), None)]
                start = initial
            name = self.names.variables[ref.reference]
            label = f"stage {i + 1} of {order} of {self.original_of(owner)}'s " + (
                "delay" if delay else "smooth"
            )
            stages.append(
                _Stock(
                    name,
                    SimpleNamespace(name=label, documentation=""),
                    SimpleNamespace(ast=SimpleNamespace(initial=start)),
                    dims,
                    "1",
                    terms,
                    ref=ref.reference,
                    stage=True,
                )
            )
        self.stages += stages
        last = refs[-1]
        out = ae.ArithmeticStructure(["/"], (last, part)) if delay else last
        return self.writer.write(out)

    def original_of(self, name: str) -> str:
        return next(
            (o for r, o in self.originals.items() if self.names.variables.get(r) == name), name
        )

    def header(self, start: float, step: float) -> str:
        return (
            f"# Written by `sim import {self.file}`: every stock and variable of the model, "
            "recorded.\n"
            f"# One model time unit is one month of sim time (start {START} is t = 0, the model's "
            f"Time {number(start)});\n"
            "# stocks that Vensim lets go negative are balances. See docs/import.md.\n"
        )

    def over(self, subscripts: list[str]) -> list[str]:
        dims = []
        for sub in subscripts:
            if key(sub) in self.refused_ranges:
                raise Unsupported(f"an equation over the subscript range {sub}")
            if key(sub) not in self.dims:
                raise Unsupported(f"an equation for the element {sub} alone (not a whole range)")
            dims.append(self.dims[key(sub)])
        if len(set(dims)) < len(dims):
            raise Unsupported(f"one range twice in a subscript ([{', '.join(subscripts)}])")
        return dims

    def describe(self, element: Any) -> str:
        doc = " ".join(str(element.documentation or "").split())
        return f"{element.name}: {doc}" if doc else element.name

    def parameter(self, element: Any, dims: list[str], ast: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if dims:
            sizes = [len(self.members[d]) for d in dims]
            values = np.asarray(ast, dtype=float)
            if values.size == 1:
                out["over"] = dims if len(dims) > 1 else dims[0]
                out["value"] = float(values.reshape(-1)[0])
            elif values.size == int(np.prod(sizes)):
                out["over"] = dims if len(dims) > 1 else dims[0]
                out["value"] = values.reshape(sizes).tolist()
            else:
                raise Unsupported(f"an array of {values.size} numbers over {sizes}")
        else:
            out["value"] = float(ast)
        out["unit"] = element.units.strip() or "1"
        out["source"] = f"imported from {self.file}"
        out["description"] = self.describe(element)
        return out

    def cells(self, element: Any) -> dict[str, Any]:
        """A parameter defined element by element: each component sets some cells."""
        dims = self.positions(element)
        sizes = [len(self.members[d]) for d in dims]
        values = np.full(sizes, np.nan)
        for comp in element.components:
            ast = comp.ast
            if not isinstance(ast, (int, float, np.ndarray)) or isinstance(ast, bool):
                raise Unsupported(
                    "an equation defined element by element (only numbers may be, for now)"
                )
            if comp.subscripts[1]:
                raise Unsupported("EXCEPT")
            index: list[Any] = []
            for sub, dim in zip(comp.subscripts[0], dims, strict=True):
                if key(sub) in self.dims and self.dims[key(sub)] == dim:
                    index.append(slice(None))
                elif key(sub) in self.elements and self.dim_of(self.elements[key(sub)]) == dim:
                    index.append(self.members[dim].index(self.elements[key(sub)]))
                else:
                    raise Unsupported(f"the subscript {sub} where {dim} was expected")
            cell = np.shape(values[tuple(index)])
            given = np.asarray(ast, dtype=float)
            values[tuple(index)] = given if given.size == 1 else given.reshape(cell)
        if np.isnan(values).any():
            raise Unsupported("a subscripted constant that leaves some elements undefined")
        self.values[key(element.name)] = values
        return self.parameter(element, dims, values)

    def positions(self, element: Any) -> list[str]:
        """The dimension at each position of an element's subscripts."""
        first = element.components[0].subscripts[0]
        dims: list[str] = []
        for sub in first:
            if key(sub) in self.dims:
                dims.append(self.dims[key(sub)])
            elif key(sub) in self.elements:
                dims.append(self.dim_of(self.elements[key(sub)]))
            else:
                raise Unsupported(f"the subscript {sub}")
        if len(set(dims)) < len(dims):
            raise Unsupported(f"one range twice in a subscript ([{', '.join(first)}])")
        return dims

    def covers(self, subs: list[str], dims: list[str]) -> tuple[np.ndarray, list[str]]:
        """Which cells `subs` (elements or whole ranges, one per dimension) select: as a mask,
        and as a condition in sim's language (an indicator per element picked)."""
        mask = np.ones([len(self.members[d]) for d in dims], dtype=bool)
        terms = []
        for axis, (sub, dim) in enumerate(zip(subs, dims, strict=True)):
            if key(sub) in self.dims and self.dims[key(sub)] == dim:
                continue
            if key(sub) not in self.elements or self.dim_of(self.elements[key(sub)]) != dim:
                raise Unsupported(f"the subscript {sub} where {dim} was expected")
            elem = self.elements[key(sub)]
            keep = np.zeros(len(self.members[dim]), dtype=bool)
            keep[self.members[dim].index(elem)] = True
            shape = [1] * len(dims)
            shape[axis] = len(keep)
            mask &= keep.reshape(shape)
            terms.append(self.indicator(dim, elem))
        return mask, terms

    def indicator(self, dim: str, elem: str) -> str:
        """A parameter over `dim`: 1 at `elem`, 0 elsewhere (made once per element)."""
        if elem not in self.indicators:
            name = self.name(f"is_{elem}")
            self.indicators[elem] = name
            self.indicator_specs[name] = {
                "over": dim,
                "value": [1.0 if e == elem else 0.0 for e in self.members[dim]],
                "unit": "1",
                "source": f"imported from {self.file}",
                "description": f"1 at {self.subscript_names[elem]}, 0 elsewhere: which cells "
                "an equation written element by element covers",
            }
        return self.indicators[elem]

    def by_element(self, element: Any, name: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """A variable whose equation is written element by element (`x[a1] = ...`, `x[a2] =
        ...`, EXCEPT): one expression, each cell taking its own equation's value by `where`
        on indicators of the elements."""
        dims = self.positions(element)
        self.current = (name, dims)
        covered = np.zeros([len(self.members[d]) for d in dims], dtype=bool)
        pieces: list[tuple[str, str]] = []
        for comp in element.components:
            mask, terms = self.covers(comp.subscripts[0], dims)
            for excepted in comp.subscripts[1]:
                out, out_terms = self.covers(excepted, dims)
                mask &= ~out
                terms.append(f"not ({' and '.join(out_terms) or '1'})")
            if (mask & covered).any():
                raise Unsupported("an equation written twice for one cell")
            covered |= mask
            pieces.append((" and ".join(terms) or "1", self.writer.write(comp.ast)))
        if not covered.all():
            raise Unsupported("an equation written element by element that leaves cells out")
        text = pieces[-1][1]
        for cond, expr in reversed(pieces[:-1]):
            text = f"where({cond}, {expr}, {text})"
        parameters.update(self.indicator_specs)
        self.indicator_specs = {}
        return {"over": dims if len(dims) > 1 else dims[0], "value": text}

    def dim_of(self, element: str) -> str:
        return next(d for d, members in self.members.items() if element in members)

    # -- stocks and flows -------------------------------------------------------------------

    def terms(self, node: Any, sign: int) -> list[_Term]:
        ae = self.ae
        if isinstance(node, ae.ArithmeticStructure):
            ops = list(node.operators)
            if ops == ["negative"]:
                return self.terms(node.arguments[0], -sign)
            if ops and all(op in ("+", "-") for op in ops):
                out = self.terms(node.arguments[0], sign)
                for op, arg in zip(ops, node.arguments[1:], strict=True):
                    out += self.terms(arg, sign if op == "+" else -sign)
                return out
        if isinstance(node, (int, float)) and node == 0:
            return []
        ref = None
        if isinstance(node, ae.ReferenceStructure) and key(node.reference) in self.names.variables:
            subs = node.subscripts.subscripts if node.subscripts else []
            if all(key(s) in self.dims for s in subs):
                ref = key(node.reference)
        return [_Term(sign, node, ref)]

    def stocks_and_flows(self, stocks: list[_Stock]) -> tuple[dict[str, Any], dict[str, Any]]:
        by_name = {s.name: s for s in stocks}
        stock_refs = {s.ref: s.name for s in stocks}
        self.stock_refs = stock_refs
        # Where each named flow goes: (stock, sign) per appearance.
        seen: dict[str, list[tuple[str, _Term]]] = {}
        for stock in stocks:
            for term in stock.terms:
                if term.ref is not None:
                    seen.setdefault(term.ref, []).append((stock.name, term))
        links: list[tuple[str | None, str | None, str, Any, str]] = []  # from, to, name, ast, label
        paired: set[int] = set()
        for ref, uses in seen.items():
            if len(uses) == 2 and {t.sign for _, t in uses} == {1, -1}:
                (a, ta), (b, tb) = uses if uses[0][1].sign < 0 else uses[::-1]
                sa, sb = by_name[a], by_name[b]
                if a != b and sa.unit == sb.unit and sa.dims == sb.dims:
                    links.append((a, b, self.names.variables[ref], ta.ast, ref))
                    paired.update({id(ta), id(tb)})
        for stock in stocks:
            for term in stock.terms:
                if id(term) in paired:
                    continue
                label = term.ref or ""
                if term.sign > 0:
                    links.append((None, stock.name, self.writer.write(term.ast), term.ast, label))
                else:
                    links.append((stock.name, None, self.writer.write(term.ast), term.ast, label))
        # Which stocks provably never go below zero: no outflow, inflows and initial >= 0.
        proven: set[str] = set()
        changed = True
        while changed:
            changed = False
            for stock in stocks:
                if stock.name in proven:
                    continue
                outs = [lk for lk in links if lk[0] == stock.name]
                ins = [lk for lk in links if lk[1] == stock.name]
                if (
                    not outs
                    and all(self.nonneg(lk[3], proven) for lk in ins)
                    and self.nonneg(stock.component.ast.initial, proven)
                ):
                    proven.add(stock.name)
                    changed = True
        units = sorted({s.unit for s in stocks})
        outside = {u: self.name("outside" if len(units) == 1 else f"outside {u}") for u in units}
        out_stocks: dict[str, Any] = {}
        for stock in stocks:
            entry: dict[str, Any] = {}
            if stock.dims:
                entry["over"] = stock.dims if len(stock.dims) > 1 else stock.dims[0]
            entry["unit"] = stock.unit
            entry["kind"] = "stock" if stock.name in proven else "balance"
            entry["initial"] = self.initial(stock)
            entry["description"] = self.describe(stock.element)
            out_stocks[stock.name] = entry
        used_outside = set()
        flows: dict[str, Any] = {}
        for frm, to, rate, ast, label in links:
            end = by_name[frm or to or ""]
            cloud = outside[end.unit]
            if frm is None or to is None:
                used_outside.add(cloud)
            base = (
                label and self.names.variables[label]
            ) or f"{end.name}_{'in' if frm is None else 'out'}"
            name = self.name(base, "_flow" if label else "")
            flow: dict[str, Any] = {}
            if end.dims:
                flow["over"] = end.dims if len(end.dims) > 1 else end.dims[0]
            flow["from"] = frm or cloud
            flow["to"] = to or cloud
            flow["rate"] = rate
            if not self.nonneg(ast, proven):
                flow["two_way"] = True
            what = f"the flow {self.original(label)}" if label else "a term of the net flow"
            flow["description"] = (
                f"{what} of {end.element.name}"
                if frm is None or to is None
                else f"{what}, from {by_name[frm].element.name} to {by_name[to].element.name}"
            )
            flows[name] = flow
        for unit, cloud in outside.items():
            if cloud in used_outside:
                out_stocks[cloud] = {
                    "unit": unit,
                    "kind": "balance",
                    "description": "where the model's flows from and to clouds go (not in the "
                    "model: it keeps sim's conservation check)",
                }
        return out_stocks, flows

    def original(self, ref: str) -> str:
        return self.originals.get(ref, ref)

    def initial(self, stock: _Stock) -> Any:
        ast = stock.component.ast.initial
        if isinstance(ast, (int, float)) and not isinstance(ast, bool):
            return float(ast)
        if isinstance(ast, np.ndarray):
            sizes = [len(self.members[d]) for d in stock.dims]
            return np.asarray(ast, dtype=float).reshape(sizes).tolist()
        return self.writer.write(ast)

    # -- signs ------------------------------------------------------------------------------

    def nonneg(self, node: Any, stocks: set[str], seen: frozenset[str] = frozenset()) -> bool:
        """Whether `node` is >= 0 in every run and tick (False when unsure)."""
        ae = self.ae

        def each(args: Any) -> bool:
            return all(self.nonneg(a, stocks, seen) for a in args)

        if isinstance(node, bool):
            return True
        if isinstance(node, (int, float, np.ndarray)):
            return bool(np.all(np.asarray(node, dtype=float) >= 0))
        if isinstance(node, ae.ReferenceStructure):
            ref = key(node.reference)
            if ref == "time":
                return self.names.initial_time >= 0
            if ref in ("time_step", "initial_time", "final_time", "saveper"):
                return True
            if ref in self.values:
                return bool(np.all(self.values[ref] >= 0))
            if ref in self.stock_refs:
                return self.stock_refs[ref] in stocks
            if ref in self.asts and ref not in seen:
                return self.nonneg(self.asts[ref], stocks, seen | {ref})
            return False
        if isinstance(node, ae.ArithmeticStructure):
            ops = list(node.operators)
            if ops in (["negative"],) or "-" in ops:
                return False
            if "^" in ops:
                return len(ops) == 1 and self.nonneg(node.arguments[0], stocks, seen)
            return each(node.arguments)
        if isinstance(node, ae.LogicStructure):
            return True
        if isinstance(node, ae.InlineLookupsStructure):
            return all(v >= 0 for v in node.lookups.y)
        if isinstance(node, ae.InitialStructure):
            return self.nonneg(node.initial, stocks, seen)
        if isinstance(node, ae.CallStructure):
            ref = key(node.function.reference)
            args = node.arguments
            if ref in self.names.lookups:
                return all(v >= 0 for v in self.names.lookups[ref][1])
            if ref in ("abs", "exp", "sqrt", "pulse"):
                return True
            if ref == "max":
                return any(self.nonneg(a, stocks, seen) for a in args)
            if ref in ("min", "zidz", "xidz", "power"):
                return each(args)
            if ref == "if_then_else":
                return each(args[1:])
            if ref in ("step", "ramp", "integer", "modulo"):
                return self.nonneg(args[0], stocks, seen)
        return False


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # a scenario reads plainly: no anchors for lists shared in memory


def _yaml(data: Any) -> str:
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        width=100,
        allow_unicode=True,
        default_flow_style=False,
    )
