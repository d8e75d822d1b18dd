"""Cells of arrayed results: how the analyses and presentations read `name[elem]` columns.

An arrayed parameter or outcome is one column per cell in runs.parquet, named `name[elem]` or
`name[elem1,elem2]` (no spaces; DESIGN.md Part 2, "Dimensions"). Names in the language are
identifiers, so a `[` in a column's name always means a cell. This module groups cells under
their array, expands an array's name to its cells where a command takes names (`--outcome
store_end`), and compiles conditions over results (`--where`, `--given`, `--threshold`) with
each array's dimensions, so `store_end[food] < 10` picks a cell and `max(store_end) > 50`
reduces the array, as in a scenario.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.scenario.expr import Expr, compile_expr


def split(column: str) -> tuple[str, tuple[str, ...]]:
    """A column's array and elements: `store_end[food]` -> ("store_end", ("food",));
    a scalar's name -> (name, ())."""
    if not column.endswith("]") or "[" not in column:
        return column, ()
    array, inside = column[:-1].split("[", 1)
    return array, tuple(inside.split(","))


def array_of(column: str) -> str:
    """The array a cell belongs to (a scalar's own name)."""
    return split(column)[0]


def element_text(column: str) -> str | None:
    """A cell's elements as written in its name (`china,food`); None for a scalar."""
    elements = split(column)[1]
    return ",".join(elements) if elements else None


def grouped(columns: Iterable[str]) -> dict[str, list[str]]:
    """Each array's cells (a scalar: itself alone), in the order the columns come."""
    out: dict[str, list[str]] = {}
    for column in columns:
        out.setdefault(array_of(column), []).append(column)
    return out


def is_array(name: str, columns: Iterable[str]) -> bool:
    """Whether `name` is an array whose cells are among `columns`."""
    return any(split(c)[1] and array_of(c) == name for c in columns)


def expand(names: Iterable[str], columns: Sequence[str]) -> list[str]:
    """Names as a user gives them, each array's name replaced by its cells (in column order);
    a cell or a scalar is kept as given, as is a name that is neither (the caller says so)."""
    groups = grouped(columns)
    out: list[str] = []
    for name in names:
        cells = groups.get(name, [])
        if name not in columns and cells and all(split(c)[1] for c in cells):
            out += cells
        else:
            out.append(name)
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Namespace:
    """What a condition over a study's results may name: every scalar column, and every
    array (its cells stacked along its dimensions, so `x[elem]`, `sum(x)` and `max(x, dim)`
    mean what they mean in a scenario). `kinds` says what each name is, for messages."""

    kinds: Mapping[str, str]
    columns: Mapping[str, tuple[str, ...]]  # a name -> its columns (an array: row-major cells)
    dims: Mapping[str, tuple[str, ...]]  # an array -> its dimensions (canonical order)
    dimensions: Mapping[str, tuple[str, ...]]

    def compile(self, text: str, label: str) -> Expr:
        """The condition compiled by the safe expression compiler (ExprError if it isn't)."""
        return compile_expr(
            text,
            dict(self.kinds),
            calendar=False,
            label=label,
            dims=self.dims,
            dimensions=self.dimensions,
        )

    def values(self, expr: Expr, read: Callable[[str], np.ndarray]) -> dict[str, np.ndarray]:
        """The values `expr` reads, one per run; an array as (*sizes, runs)."""
        out: dict[str, np.ndarray] = {}
        for name in expr.names:
            columns = self.columns.get(name, (name,))
            if name not in self.dims:
                out[name] = read(columns[0])
                continue
            sizes = tuple(len(self.dimensions[d]) for d in self.dims[name])
            stacked = np.stack([read(c) for c in columns])
            out[name] = stacked.reshape(*sizes, stacked.shape[-1])
        return out


def namespace(
    kinds: Mapping[str, str], dimensions: Mapping[str, Sequence[str]] | None
) -> Namespace:
    """The names a condition may use, given each result column's kind (`outcome`,
    `parameter`) and the study's `dimensions:`. A cell's column stays readable only through
    its array (`need[food]`), which is how a scenario writes it too."""
    axes = {d: tuple(e) for d, e in (dimensions or {}).items()}
    element_dim = {e: d for d, es in axes.items() for e in es}
    rank = {d: i for i, d in enumerate(axes)}
    names: dict[str, str] = {}
    columns: dict[str, tuple[str, ...]] = {}
    dims: dict[str, tuple[str, ...]] = {}
    for array, cells in grouped(kinds).items():
        elements = [split(c)[1] for c in cells]
        if not elements[0]:
            names[array], columns[array] = kinds[cells[0]], (cells[0],)
            continue
        found = [element_dim.get(e) for e in elements[0]]
        if None in found:  # not cells of a dimension we know: leave them unnamed
            continue
        these = tuple(sorted((d for d in found if d is not None), key=lambda d: rank[d]))
        by_elements = dict(zip(elements, cells, strict=True))
        try:
            ordered = [by_elements[c] for c in itertools.product(*(axes[d] for d in these))]
        except KeyError:  # not every cell is a column: an array we can't stack
            continue
        names[array], columns[array], dims[array] = kinds[cells[0]], tuple(ordered), these
    return Namespace(names, columns, dims, axes)


def dimensions_of(manifest: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """A study's `dimensions:` as its manifest's resolved scenario records them."""
    scenario = manifest.get("scenario")
    found = (scenario.get("dimensions") if isinstance(scenario, Mapping) else None) or {}
    return {str(d): tuple(str(e) for e in es) for d, es in found.items()}
