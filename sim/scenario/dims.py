"""Dimensions (subscripts): their elements, the canonical order of axes, cells and their names.

An arrayed item is over a tuple of dimensions, always kept in the *canonical* order — the
order of `dimensions:` in the scenario — whatever order its `over:` lists them in. Its value
is a numpy array of shape (*sizes, runs), runs last, so a scalar (one value per run) broadcasts
with any array by numpy's own rules, and two arrays over different dimensions are aligned by
inserting axes (`expand`), never by position.

A cell is named `name[elem]` or `name[elem1,elem2]` (no spaces), elements in canonical order;
results, culprits and sampling streams use these names.

Arrayed values in a scenario (`value:`, distribution arguments, a stock's `initial`, state):
a scalar for every cell, a list with one entry per element (one dimension; nested lists for
more, outer dimension first), or a mapping by element name (nested, outer dimension first),
whose leaves may again be scalars (the same for the rest) or lists.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sim.errors import did_you_mean

Dims = tuple[str, ...]
Dimensions = Mapping[str, Sequence[str]]


class DimsError(ValueError):
    """An arrayed value or a dimension reference is wrong; `at` is the path below the value."""

    def __init__(self, message: str, at: tuple[str | int, ...] = (), hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.at = at
        self.hint = hint


def over_list(over: str | Sequence[str] | None) -> list[str]:
    """`over:` as written: a name or a list of names, as a list."""
    if over is None:
        return []
    return [over] if isinstance(over, str) else list(over)


def canonical(dims: Sequence[str], dimensions: Dimensions) -> Dims:
    """`dims` in the order `dimensions:` declares them."""
    rank = {d: i for i, d in enumerate(dimensions)}
    return tuple(sorted(dims, key=lambda d: rank[d]))


def union(a: Dims, b: Dims, dimensions: Dimensions) -> Dims:
    """The dimensions of a value combining two others, in canonical order."""
    return canonical(list(dict.fromkeys([*a, *b])), dimensions)


def check_over(over: str | Sequence[str] | None, dimensions: Dimensions) -> Dims:
    """`over:` checked against `dimensions:` (DimsError: an unknown or repeated dimension)."""
    names = over_list(over)
    if not names:
        raise DimsError("over: names no dimension")
    for i, d in enumerate(names):
        at: tuple[str | int, ...] = (i,) if not isinstance(over, str) else ()
        if d not in dimensions:
            raise DimsError(
                f"unknown dimension '{d}'",
                at,
                did_you_mean(d, dimensions) or _declared(dimensions),
            )
        if names.index(d) != i:
            raise DimsError(f"dimension '{d}' is listed twice", at)
    return canonical(names, dimensions)


def _declared(dimensions: Dimensions) -> str:
    shown = ", ".join(dimensions)
    return f"declared dimensions: {shown}" if shown else "declare it under dimensions:"


def shape(dims: Dims, dimensions: Dimensions) -> tuple[int, ...]:
    return tuple(len(dimensions[d]) for d in dims)


def size(dims: Dims, dimensions: Dimensions) -> int:
    return int(np.prod(shape(dims, dimensions), dtype=np.int64))


def cell_name(name: str, elements: Sequence[str]) -> str:
    """`name[elem1,elem2]`: how results and messages name one cell."""
    return f"{name}[{','.join(elements)}]" if elements else name


def cells(dims: Dims, dimensions: Dimensions) -> list[tuple[str, ...]]:
    """Every cell's elements, in row-major order of the canonical axes."""
    return list(itertools.product(*(dimensions[d] for d in dims)))


def cell_names(name: str, dims: Dims, dimensions: Dimensions) -> list[str]:
    return [cell_name(name, c) for c in cells(dims, dimensions)]


def element_dim(dimensions: Dimensions) -> dict[str, str]:
    """Each element's dimension (elements are unique across dimensions: one namespace)."""
    return {e: d for d, elems in dimensions.items() for e in elems}


def expand(value: Any, have: Dims, want: Dims) -> Any:
    """A value over `have` (shape (*sizes, runs), or a scalar when `have` is empty) aligned to
    `want` ⊇ `have`: a size-1 axis inserted for each dimension `have` lacks, so the value has
    one axis per dimension of `want`, then runs."""
    if not have or have == want:
        return value
    return np.expand_dims(value, tuple(i for i, d in enumerate(want) if d not in have))


def arrayed(
    value: Any, written: Sequence[str], dimensions: Dimensions, what: str = "value"
) -> np.ndarray:
    """An arrayed value as written (over `written`, outer first) as a float array over the
    canonical order of `written`. Leaves must be numbers (DimsError otherwise)."""
    grid = np.empty(tuple(len(dimensions[d]) for d in written))
    _fill(grid, value, list(written), dimensions, (), what)
    order = canonical(written, dimensions)
    return np.transpose(grid, [list(written).index(d) for d in order])


def _fill(
    grid: np.ndarray,
    value: Any,
    rest: list[str],
    dimensions: Dimensions,
    at: tuple[str | int, ...],
    what: str,
) -> None:
    if isinstance(value, bool) or value is None:
        raise DimsError(f"expected a number, got {str(value).lower()}", at)
    if isinstance(value, int | float):
        grid[...] = float(value)
        return
    if not rest:
        kind = "a list" if isinstance(value, list) else "a mapping"
        if isinstance(value, str):
            kind = f"'{value}'"
        raise DimsError(
            f"expected a number here, got {kind}",
            at,
            f"each cell of this {what} takes one number"
            if not isinstance(value, str)
            else "a per-cell value is a number; an expression applies to every cell",
        )
    dim, elements = rest[0], list(dimensions[rest[0]])
    if isinstance(value, list):
        if len(value) != len(elements):
            raise DimsError(
                f"a list of {len(value)} for dimension '{dim}', which has {len(elements)} "
                f"elements ({', '.join(elements)})",
                at,
            )
        for i, item in enumerate(value):
            _fill(grid[i, ...], item, rest[1:], dimensions, (*at, i), what)
        return
    if isinstance(value, dict):
        unknown = [k for k in value if k not in elements]
        if unknown:
            raise DimsError(
                f"'{unknown[0]}' is not an element of dimension '{dim}'",
                (*at, str(unknown[0])),
                did_you_mean(str(unknown[0]), elements) or f"its elements: {', '.join(elements)}",
            )
        missing = [e for e in elements if e not in value]
        if missing:
            raise DimsError(
                f"no value for {', '.join(missing)} of dimension '{dim}'",
                at,
                "give every element a value, or one number for all",
            )
        for i, e in enumerate(elements):
            _fill(grid[i, ...], value[e], rest[1:], dimensions, (*at, e), what)
        return
    raise DimsError(f"expected a number, a list or a mapping, got {type(value).__name__}", at)


def is_arrayed_value(value: Any) -> bool:
    """Whether a value as written is per cell (a list or a mapping) rather than one for all."""
    return isinstance(value, list | dict)


def fold_rows(op: Any, rows: np.ndarray) -> np.ndarray:
    """Reduce a C-contiguous array along its first axis one row after another,
    ((rows[0] op rows[1]) op rows[2]) ..., as a new array.

    Both engines reduce in this order whatever the other axes' sizes: numpy reduces a first
    axis row by row (a vectorised op per row) when a row holds two values or more, but sums a
    contiguous axis pairwise, which is what the one axis of a row of one value would be (the
    SimPy engine holds one run); then the rows are folded here, one by one."""
    if rows.shape[0] == 1:
        return np.array(rows[0])
    if rows[0].size >= 2:
        return op.reduce(rows, axis=0)
    out = op(rows[0], rows[1])
    for row in rows[2:]:
        out = op(out, row)
    return out


def to_front(x: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """`x` (cells' axes, then runs) with `axes` moved to the front and flattened into one:
    (k, *rest, runs), a new C-contiguous array (one gather of its rows)."""
    cells, runs = x.shape[:-1], x.shape[-1]
    order, front, rest = _order(cells, tuple(axes))
    return np.take(x.reshape((-1, runs)), order, axis=0).reshape((front, *rest, runs))


@functools.lru_cache(maxsize=256)
def _order(
    cells: tuple[int, ...], axes: tuple[int, ...]
) -> tuple[np.ndarray, int, tuple[int, ...]]:
    """The rows of a (cells, runs) array in the order `to_front` wants them."""
    index = np.arange(int(np.prod(cells, dtype=np.int64))).reshape(cells)
    moved = np.moveaxis(index, list(axes), list(range(len(axes))))
    front = int(np.prod(moved.shape[: len(axes)], dtype=np.int64))
    order = np.ascontiguousarray(moved).reshape(-1)
    order.setflags(write=False)
    return order, front, tuple(moved.shape[len(axes) :])
