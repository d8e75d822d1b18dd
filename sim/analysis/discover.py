"""Scenario discovery: which ranges of the uncertain parameters concentrate the runs of interest.

PRIM, the patient rule induction method (Friedman & Fisher 1999, "Bump hunting in
high-dimensional data"), as used for scenario discovery (Bryant & Lempert 2010). Start from a
box holding every run; at each step, try cutting off a slice of `alpha` (5%) of the runs
still inside at the low or the high end of each parameter, and keep the cut that raises the
share of cases of interest inside the box the most per run removed. Stop when the box holds
fewer than `min_mass` of all runs, or no cut helps. The boxes passed on the way form the
peeling trajectory, from everything (coverage 1, density = the base rate) to small and dense.

- coverage: the share of all cases of interest that lie inside the box;
- density: the share of runs inside the box that are cases of interest;
- mass: the share of all runs inside the box.

The box reported starts as the densest one on the trajectory whose coverage is at least
`min_coverage`. Pasting then widens it again (Friedman & Fisher's second phase): while some
edge can take back a slice of `alpha` of the box's runs from just outside it without
lowering the density, and the slice holds cases, the best such slice is added. Peeling cuts
a whole 5% slice at a time and can overshoot an edge; pasting takes the overshoot back.
Then edges that peeling noise left behind are dropped, one parameter end at a time: one
whose cut-off runs are not significantly less often cases than the box's runs (one-sided
binomial test at level `prune`, Bonferroni-corrected for the number of edges, two per
parameter). Each restriction left is reported with the density and coverage the box would
have without it, and its quasi-p-value (Bryant & Lempert 2010: a one-sided binomial test of
the box restricted on that parameter alone against the base rate). With `boxes` > 1 the
search repeats on the runs outside the boxes found so far (covering).

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> x = {"a": rng.random(2000), "b": rng.random(2000)}
>>> found = prim(x, x["a"] > 0.7)
>>> found.boxes[0].limits["a"][0] > 0.65, "b" in found.boxes[0].limits
(True, False)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from scipy import stats

from sim.analysis.cells import dimensions_of, expand, namespace
from sim.engine.semantics import STATUS_OK
from sim.errors import ScenarioError, did_you_mean
from sim.scenario.expr import ExprError
from sim.study.results import Results

ALPHA = 0.05
MIN_MASS = 0.05
MIN_COVERAGE = 0.5
PRUNE = 0.05


@dataclass(frozen=True)
class Step:
    """One box on a peeling trajectory; `limits` holds every parameter's [low, high]."""

    index: int
    coverage: float
    density: float
    mass: float
    restricted: int  # how many parameters the box restricts
    limits: dict[str, tuple[float, float]] = field(repr=False)


@dataclass(frozen=True)
class Restriction:
    """One parameter's range in a box, and how much it matters there."""

    parameter: str
    low: float
    high: float
    full_low: float  # the parameter's range over all runs, for comparison
    full_high: float
    density_without: float  # the box's density if this restriction were dropped
    coverage_without: float
    qp: float  # quasi-p-value: P(a box restricted on this alone is this dense by chance)


@dataclass(frozen=True)
class Box:
    """A box that concentrates the cases: its restrictions, coverage, density and mass."""

    number: int  # 1 for the first box; covering boxes follow
    coverage: float  # of every case of interest, not only those left by earlier boxes
    density: float
    mass: float
    cases: int  # cases of interest inside
    runs: int  # runs inside
    restrictions: tuple[Restriction, ...]
    trajectory: tuple[Step, ...] = field(repr=False)
    chosen: int = 0  # the trajectory step the box was taken from (before pruning)

    @property
    def limits(self) -> dict[str, tuple[float, float]]:
        return {r.parameter: (r.low, r.high) for r in self.restrictions}


@dataclass(frozen=True)
class Discovery:
    """The boxes PRIM found, with the settings and what was searched."""

    boxes: tuple[Box, ...]
    parameters: tuple[str, ...]
    cases: int
    runs: int
    alpha: float
    min_mass: float
    min_coverage: float
    prune: float
    paste: bool = True
    where: str = ""
    scenario: str = ""
    excluded: int = 0  # runs left out (non-finite)
    source: dict[str, Any] = field(default_factory=dict)  # the results searched
    units: dict[str, str] = field(default_factory=dict)  # parameter -> unit

    kind = "discover"

    @property
    def base_density(self) -> float:
        return self.cases / self.runs if self.runs else math.nan

    def table(self) -> pa.Table:
        """A row per box and restriction: the box's figures and the parameter's range."""
        limits = (
            "low",
            "high",
            "full_low",
            "full_high",
            "density_without",
            "coverage_without",
            "qp",
        )
        heads = ("box", "coverage", "density", "mass", "parameter", "unit")
        columns: dict[str, list[Any]] = {k: [] for k in (*heads, *limits)}
        for box in self.boxes:
            for r in box.restrictions or (None,):
                columns["box"].append(box.number)
                columns["coverage"].append(box.coverage)
                columns["density"].append(box.density)
                columns["mass"].append(box.mass)
                columns["parameter"].append(r.parameter if r else "")
                columns["unit"].append(self.units.get(r.parameter, "") if r else "")
                for key in limits:
                    columns[key].append(getattr(r, key) if r else math.nan)
        return pa.table(columns)

    def trajectory_table(self) -> pa.Table:
        """A row per box and peeling step: coverage, density, mass, restricted parameters."""
        rows = [(box, step) for box in self.boxes for step in box.trajectory]
        return pa.table(
            {
                "box": [b.number for b, _ in rows],
                "step": [s.index for _, s in rows],
                "coverage": [s.coverage for _, s in rows],
                "density": [s.density for _, s in rows],
                "mass": [s.mass for _, s in rows],
                "restricted": [s.restricted for _, s in rows],
                "chosen": [s.index == b.chosen for b, s in rows],
            }
        )

    def settings(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "parameters": list(self.parameters),
            "runs": self.runs,
            "cases": self.cases,
            "base_density": self.base_density,
            "excluded_runs": self.excluded,
            "alpha": self.alpha,
            "min_mass": self.min_mass,
            "min_coverage": self.min_coverage,
            "prune": self.prune,
            "paste": self.paste,
            "boxes": len(self.boxes),
            "method": "PRIM peeling "
            + ("and pasting " if self.paste else "without pasting ")
            + "(Friedman & Fisher 1999); covering for boxes > 1",
            "source": dict(self.source),
            "units": dict(self.units),
        }


def prim(
    x: Mapping[str, np.ndarray],
    y: np.ndarray,
    alpha: float = ALPHA,
    min_mass: float = MIN_MASS,
    min_coverage: float = MIN_COVERAGE,
    prune: float = PRUNE,
    boxes: int = 1,
    paste: bool = True,
) -> Discovery:
    """PRIM on inputs `x` (name -> one value per run) and cases of interest `y` (booleans)."""
    names = tuple(x)
    data = np.column_stack([np.asarray(x[n], dtype=float) for n in names]) if names else None
    cases = np.asarray(y, dtype=bool)
    problems = []
    if data is None:
        problems.append("no parameters to search over")
    elif data.shape[0] != len(cases):
        problems.append(f"{len(cases)} case flags for {data.shape[0]} runs")
    if not 0 < alpha < 0.5:
        problems.append(f"alpha must be between 0 and 0.5 (got {alpha})")
    if not 0 < min_mass < 1:
        problems.append(f"the minimum mass must be between 0 and 1 (got {min_mass})")
    if not 0 < min_coverage <= 1:
        problems.append(f"the minimum coverage must be in (0, 1] (got {min_coverage})")
    if not 0 <= prune < 1:
        problems.append(f"prune must be a significance level in [0, 1) (got {prune})")
    if boxes < 1:
        problems.append(f"boxes must be at least 1 (got {boxes})")
    if problems:
        raise ScenarioError.one("; ".join(problems))
    assert data is not None
    if not np.all(np.isfinite(data)):
        raise ScenarioError.one("parameter values must be finite")
    total = int(cases.sum())
    n = len(cases)
    if total == 0:
        raise ScenarioError.one(f"no run of {n} is a case of interest; nothing to discover")
    if total == n:
        raise ScenarioError.one(f"every run of {n} is a case of interest; nothing to discover")
    full = np.column_stack([data.min(axis=0), data.max(axis=0)])
    found: list[Box] = []
    left = np.ones(n, dtype=bool)
    for number in range(1, boxes + 1):
        if not cases[left].any() or cases[left].all():
            break
        box = _one_box(
            data,
            cases,
            left,
            full,
            names,
            total,
            alpha,
            min_mass,
            min_coverage,
            prune,
            paste,
            number,
        )
        if found and not box.restrictions:
            break  # nothing left to concentrate: the other cases are spread out
        found.append(box)
        left &= ~_inside(data, np.array([box.limits.get(p, full[j]) for j, p in enumerate(names)]))
    return Discovery(
        boxes=tuple(found),
        parameters=names,
        cases=total,
        runs=n,
        alpha=alpha,
        min_mass=min_mass,
        min_coverage=min_coverage,
        prune=prune,
        paste=paste,
    )


def discover(
    results: Results,
    where: str,
    parameters: Sequence[str] | None = None,
    alpha: float = ALPHA,
    min_mass: float = MIN_MASS,
    min_coverage: float = MIN_COVERAGE,
    prune: float = PRUNE,
    boxes: int = 1,
    paste: bool = True,
) -> Discovery:
    """PRIM over the sampled parameters of `results`, for the runs where `where` holds.

    `where` is an expression in the scenario language over outcome and parameter names,
    e.g. "food_shortfall_months > 24"; runs that went non-finite are left out.
    """
    sampled = [n for n, info in results.parameters.items() if info.get("sampled")]
    if parameters:
        parameters = expand(parameters, list(results.parameters))  # an array: its cells
        for name in parameters:
            if name not in sampled:
                why = "is fixed" if name in results.parameters else "is not a parameter"
                raise ScenarioError.one(
                    f"--parameter {name}: '{name}' {why} in {results.name}",
                    hint=did_you_mean(name, sampled) or "sampled: " + ", ".join(sampled[:12]),
                )
        sampled = list(dict.fromkeys(parameters))
    y, ok = cases_where(results, where)
    x = {name: results.parameter(name)[ok] for name in sampled}
    found = prim(x, y[ok], alpha, min_mass, min_coverage, prune, boxes, paste)
    units = {name: str(results.parameters[name].get("unit", "")) for name in sampled}
    source = {
        "folder": str(results.folder) if results.folder else None,
        "scenario": results.name,
        "scenario_sha256": results.manifest.get("scenario_sha256"),
        "runs_sha256": results.manifest.get("sha256", {}).get("runs.parquet"),
        "runs": results.n_runs,
        "seed": results.seed,
        "sampler": results.sampler,
    }
    return dataclasses.replace(
        found,
        where=where,
        scenario=results.name,
        excluded=int(np.sum(~ok)),
        source=source,
        units=units,
    )


def cases_where(results: Results, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(case of interest, run usable) per run: `where` compiled by the safe expression compiler."""
    kinds = {name: "outcome" for name in results.outcomes}
    kinds.update({name: "parameter" for name in results.parameters})
    names = namespace(kinds, dimensions_of(results.manifest))
    try:
        expr = names.compile(where, "--where")
    except ExprError as exc:
        pointer = f" (at column {exc.offset + 1})" if exc.offset else ""
        raise ScenarioError.one(
            f'--where "{where}": {exc.message}{pointer}',
            hint=exc.hint or "an expression over outcome and parameter names, e.g. x > 24",
        ) from None
    if expr.dims:
        raise ScenarioError.one(
            f'--where "{where}" is over ({", ".join(expr.dims)}): one truth per cell, '
            "not one per run",
            hint="pick a cell, e.g. x[elem], or reduce the array, e.g. max(x) or sum(x)",
        )
    outcomes = results.outcomes
    values = names.values(
        expr, lambda c: results.outcome(c) if c in outcomes else results.parameter(c)
    )
    n = results.n_runs
    with np.errstate(all="ignore"):
        y = np.broadcast_to(np.asarray(expr(values), dtype=float), (n,))
    finite = y[np.isfinite(y)]
    if not np.all((finite == 0) | (finite == 1)):
        raise ScenarioError.one(
            f'--where "{where}" gives numbers, not true or false',
            hint="make it a condition, e.g. with >, <, == or and/or",
        )
    ok = np.asarray(results.status == STATUS_OK)
    return np.isfinite(y) & (y != 0), ok


# -- the algorithm ------------------------------------------------------------------------


def _inside(data: np.ndarray, limits: np.ndarray) -> np.ndarray:
    return np.all((data >= limits[:, 0]) & (data <= limits[:, 1]), axis=1)


def _one_box(
    data: np.ndarray,
    cases: np.ndarray,
    left: np.ndarray,
    full: np.ndarray,
    names: tuple[str, ...],
    total: int,
    alpha: float,
    min_mass: float,
    min_coverage: float,
    prune: float,
    paste: bool,
    number: int,
) -> Box:
    n = len(cases)
    limits = full.copy()
    inside = left.copy()
    trajectory = [_step(0, cases, inside, limits, full, names, total, n)]
    while True:
        cut = _best_peel(data, cases, inside, alpha)
        if cut is None:
            break
        j, side, keep = cut
        new_inside = inside & keep
        if new_inside.sum() < min_mass * n:
            break
        inside = new_inside
        values = data[inside, j]
        limits[j] = (values.min(), limits[j, 1]) if side == 0 else (limits[j, 0], values.max())
        trajectory.append(_step(len(trajectory), cases, inside, limits, full, names, total, n))
        if cases[inside].all():
            break
    # For a covering box, the coverage asked for is of the cases the earlier boxes left.
    share_left = cases[left].sum() / total
    eligible = [
        s for s in trajectory if s.coverage >= min_coverage * share_left - 1e-12
    ] or trajectory[:1]
    chosen = max(eligible, key=lambda s: (s.density, s.coverage))
    box = np.array([chosen.limits[p] for p in names])
    if paste:
        box = _pasted(data, cases, left, box, full, alpha)
    box = _pruned(data, cases, left, box, full, prune)
    return _box(number, data, cases, left, box, full, names, total, tuple(trajectory), chosen.index)


def _best_peel(
    data: np.ndarray, cases: np.ndarray, inside: np.ndarray, alpha: float
) -> tuple[int, int, np.ndarray] | None:
    """The cut (parameter, 0 low / 1 high, runs kept) that raises the density most per run cut."""
    x = data[inside]
    y = cases[inside]
    m = len(y)
    mean = y.mean()
    best: tuple[float, int, int, np.ndarray] | None = None
    for j in range(data.shape[1]):
        col = x[:, j]
        lo, hi = np.quantile(col, [alpha, 1 - alpha])
        for side, keep in ((0, col >= lo), (1, col <= hi)):
            if keep.all():
                # Ties at the end (a discrete parameter): cut the whole end value instead.
                end = col.min() if side == 0 else col.max()
                keep = col != end
            kept = int(keep.sum())
            if kept == 0 or kept == m:
                continue
            gain = (y[keep].mean() - mean) / (m - kept)
            if gain > 0 and (best is None or gain > best[0]):
                full_keep = inside.copy()
                full_keep[inside] = keep
                best = (gain, j, side, full_keep)
    return None if best is None else (best[1], best[2], best[3])


def _step(
    index: int,
    cases: np.ndarray,
    inside: np.ndarray,
    limits: np.ndarray,
    full: np.ndarray,
    names: tuple[str, ...],
    total: int,
    n: int,
) -> Step:
    k = int(inside.sum())
    hits = int(cases[inside].sum())
    restricted = int(np.sum(np.any(limits != full, axis=1)))
    return Step(
        index,
        hits / total,
        hits / k if k else math.nan,
        k / n,
        restricted,
        {p: (float(limits[j, 0]), float(limits[j, 1])) for j, p in enumerate(names)},
    )


def _density(
    data: np.ndarray, cases: np.ndarray, left: np.ndarray, box: np.ndarray
) -> tuple[float, int, int]:
    inside = left & _inside(data, box)
    k = int(inside.sum())
    hits = int(cases[inside].sum())
    return (hits / k if k else 0.0), hits, k


def _pasted(
    data: np.ndarray,
    cases: np.ndarray,
    left: np.ndarray,
    box: np.ndarray,
    full: np.ndarray,
    alpha: float,
) -> np.ndarray:
    """Widen the box, a slice of `alpha` of its runs at a time, while that keeps its density.

    A slice is the runs nearest to one edge just outside it, inside every other limit (at
    least one run, and every run tied with the farthest). Of the slices that hold cases and
    leave the density at least where it was, the one giving the densest box is added; ties
    go to the one adding more cases. The box only grows, so this ends.
    """
    box = box.copy()
    data = data[left]
    cases = cases[left]
    while True:
        outside = (data < box[:, 0]) | (data > box[:, 1])
        misses = outside.sum(axis=1)
        inside = misses == 0
        k, hits = int(inside.sum()), int(cases[inside].sum())
        density = hits / k if k else 0.0
        near = misses == 1  # outside the box on one parameter only
        edge_of = np.argmax(outside[near], axis=1)
        rows = np.flatnonzero(near)
        take = max(1, math.ceil(alpha * k))
        best: tuple[float, int, int, int, float] | None = None
        for j in np.unique(edge_of):
            these = rows[edge_of == j]
            values = data[these, j]
            for side in (0, 1):
                # How far beyond this edge each run lies (positive: on this side of it).
                gap = box[j, 0] - values if side == 0 else values - box[j, 1]
                beyond = gap > 0
                if not beyond.any():
                    continue
                reach = np.sort(gap[beyond])[min(take, int(beyond.sum())) - 1]
                slice_ = beyond & (gap <= reach)
                added = these[slice_]
                edge = values[slice_].min() if side == 0 else values[slice_].max()
                new_hits = hits + int(cases[added].sum())
                new_density = new_hits / (k + len(added))
                if new_hits == hits or new_density < density:
                    continue
                if best is None or (new_density, new_hits) > (best[0], best[1]):
                    best = (new_density, new_hits, int(j), side, float(edge))
        if best is None:
            return box
        _, _, j, side, edge = best
        box[j, side] = edge


def _pruned(
    data: np.ndarray,
    cases: np.ndarray,
    left: np.ndarray,
    box: np.ndarray,
    full: np.ndarray,
    level: float,
) -> np.ndarray:
    """Drop the edges that don't matter, the least significant first.

    An edge (a parameter's low or high limit) matters if the runs it cuts off (those inside
    the box once it is dropped, but not now) are cases of interest significantly less often
    than the runs in the box: a one-sided binomial test at `level`, Bonferroni-corrected for
    the edges searched, since peeling picked each cut as the best of them. Peeling noise (a 5%
    slice that happened to hold a few fewer cases) fails it; a real edge passes by orders of
    magnitude. Edges are judged one at a time, so a parameter that matters at one end is not
    also held at the other end by noise.
    """
    box = box.copy()
    level = level / box.size
    while True:
        edges = [
            (j, side) for j in range(len(box)) for side in (0, 1) if box[j, side] != full[j, side]
        ]
        if len(edges) <= 1 or level <= 0:
            return box
        density, hits, k = _density(data, cases, left, box)
        worst = None
        for j, side in edges:
            trial = box.copy()
            trial[j, side] = full[j, side]
            _, h_wide, k_wide = _density(data, cases, left, trial)
            added, added_hits = k_wide - k, h_wide - hits
            p = float(stats.binom.cdf(added_hits, added, density)) if added else 1.0
            if worst is None or p > worst[0]:
                worst = (p, j, side)
        assert worst is not None
        if worst[0] <= level:
            return box
        box[worst[1], worst[2]] = full[worst[1], worst[2]]


def _box(
    number: int,
    data: np.ndarray,
    cases: np.ndarray,
    left: np.ndarray,
    box: np.ndarray,
    full: np.ndarray,
    names: tuple[str, ...],
    total: int,
    trajectory: tuple[Step, ...],
    chosen: int,
) -> Box:
    density, hits, k = _density(data, cases, left, box)
    base = cases[left].mean()
    restrictions = []
    for j, name in enumerate(names):
        if not np.any(box[j] != full[j]):
            continue
        without = box.copy()
        without[j] = full[j]
        d_without, h_without, _ = _density(data, cases, left, without)
        alone = full.copy()
        alone[j] = box[j]
        _, h_alone, k_alone = _density(data, cases, left, alone)
        qp = float(stats.binom.sf(h_alone - 1, k_alone, base)) if k_alone else 1.0
        restrictions.append(
            Restriction(
                name,
                float(box[j, 0]),
                float(box[j, 1]),
                float(full[j, 0]),
                float(full[j, 1]),
                d_without,
                h_without / total,
                qp,
            )
        )
    # Most important first: the restriction whose loss would cost the most density.
    restrictions.sort(key=lambda r: (r.density_without, r.qp))
    return Box(
        number,
        hits / total,
        density,
        k / len(cases),
        hits,
        k,
        tuple(restrictions),
        trajectory,
        chosen,
    )
