"""Figures of the analyses: ranked Sobol' indices, outcome curves against a lever, PRIM boxes,
given-data indices.

Like `sim.present.figures`, every function returns a `matplotlib.figure.Figure` built without `pyplot`;
`sim.present.figures.save` and `sim.present.figures.png_bytes` write it.

>>> import sim
>>> from sim.analysis.sweep import sweep
>>> res = sweep(sim.load("examples/bakery.yaml"), "strike_month", "6,18", runs=50)
>>> len(sweep_figure(res, ["bread_eaten"]).axes)
1
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import Any

import matplotlib.dates as mdates
import numpy as np
from matplotlib import colormaps
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from sim.analysis.cells import grouped, split
from sim.analysis.discover import Discovery
from sim.analysis.drivers import FLOOR_QUANTILE, Drivers
from sim.analysis.drivers import TOP as DRIVERS_TOP
from sim.analysis.sensitivity import TOP, Sensitivity
from sim.analysis.sweep import Sweep
from sim.present.figures import COLORS, DPI, FAN_CELLS, MAX_CELLS, literal_text, unit_label
from sim.present.numbers import number


@literal_text
def sensitivity_figure(res: Sensitivity, top: int = TOP) -> Figure:
    """Per outcome, the `top` parameters by total index: total and first-order bars with CIs."""
    n = len(res.outcomes)
    shown = min(top, len(res.parameters))
    fig = Figure(figsize=(10, (0.32 * shown + 1.4) * n + 0.6), dpi=DPI, layout="constrained")
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    pair = ""
    if res.baseline:
        pair = ", B / A − 1" if res.ratio else ", B − A"
    for ax, outcome in zip(axes, res.outcomes, strict=True):
        ranked = res.ranked(outcome)[:shown]
        y = np.arange(len(ranked))[::-1]
        total = np.array([ix.total for ix in ranked])
        first = np.array([ix.first for ix in ranked])
        t_err = _errors(total, [ix.total_low for ix in ranked], [ix.total_high for ix in ranked])
        f_err = _errors(first, [ix.first_low for ix in ranked], [ix.first_high for ix in ranked])
        ax.barh(y + 0.2, total, height=0.38, color=COLORS[0], alpha=0.45, label="total (ST)")
        ax.errorbar(total, y + 0.2, xerr=t_err, fmt="none", ecolor=COLORS[0], capsize=2, lw=1)
        ax.barh(y - 0.2, first, height=0.38, color=COLORS[0], label="first order (S1)")
        ax.errorbar(first, y - 0.2, xerr=f_err, fmt="none", ecolor="black", capsize=2, lw=1)
        ax.set_yticks(y, [ix.parameter for ix in ranked])
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlim(min(0.0, float(np.nanmin([ix.first_low for ix in ranked] + [0]))) - 0.02, None)
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlabel(
            "share of the difference's variance"
            if res.baseline
            else "share of the outcome's variance"
        )
        unit = unit_label(res.units.get(outcome, ""))
        ax.set_title(
            f"{outcome}{unit}{pair}: Sobol' indices, top {len(ranked)} of {len(res.parameters)} "
            f"parameters (S1 sum {res.explained(outcome):.2f})",
            loc="left",
            fontsize=11,
        )
        ax.legend(fontsize=9, loc="lower right")
    fig.suptitle(
        (
            f"What drives {'B / A − 1' if res.ratio else 'B − A'} "
            f"(B = {res.scenario}, A = {res.baseline})"
            if res.baseline
            else f"What drives the outcome: {res.scenario}"
        )
        + f", N = {res.runs:,} ({res.evaluations:,} runs); bars: {res.confidence:.0%} intervals",
        fontsize=12,
        fontweight="bold",
        x=0.01,
        ha="left",
    )
    return fig


@literal_text
def drivers_figure(res: Drivers, top: int = DRIVERS_TOP) -> Figure:
    """Per outcome (or paired difference), the `top` inputs by η² from given data: a bar
    each with its interval, and the noise floor (what an input that does not matter scores)
    as a grey band from 0."""
    n = len(res.outcomes)
    shown = min(top, len(res.inputs))
    fig = Figure(figsize=(10, (0.32 * shown + 1.4) * n + 0.8), dpi=DPI, layout="constrained")
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, outcome in zip(axes, res.outcomes, strict=True):
        ranked = res.ranked(outcome)[:shown]
        y = np.arange(len(ranked))[::-1]
        index = np.array([r.index for r in ranked])
        err = _errors(index, [r.low for r in ranked], [r.high for r in ranked])
        floor = np.array([r.floor for r in ranked])
        ax.barh(
            y,
            floor,
            height=0.8,
            color="0.85",
            label=f"noise floor (p{round(FLOOR_QUANTILE * 100)} of {res.permutations} shuffles)",
        )
        colors = [COLORS[0] if r.above_floor else "0.6" for r in ranked]
        ax.barh(y, index, height=0.45, color=colors, label="η² (first order, given data)")
        ax.errorbar(index, y, xerr=err, fmt="none", ecolor="black", capsize=2, lw=1)
        ax.set_yticks(y, [r.input for r in ranked])
        ax.axvline(0, color="black", lw=0.8)
        lowest = float(np.nanmin([r.low for r in ranked] + [0.0]))
        ax.set_xlim(min(0.0, lowest) - 0.02, None)
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlabel(
            "share of the difference's variance that knowing the input removes"
            if res.baseline
            else "share of the outcome's variance that knowing the input removes"
        )
        k = res.outcomes.index(outcome)
        ax.set_title(
            textwrap.fill(
                f"{res.label(outcome)}{unit_label(res.units.get(outcome, ''))}: top "
                f"{len(ranked)} of {len(res.inputs)} inputs, {res.used[k]:,} runs",
                90,
                break_long_words=False,
                break_on_hyphens=False,
            ),
            loc="left",
            fontsize=11,
        )
        ax.legend(fontsize=9, loc="lower right")
    fig.suptitle(
        (
            f"What decides B − A (B = {res.scenario}, A = {res.baseline})"
            if res.baseline
            else f"What decides the outcome: {res.scenario}"
        )
        + f"\nbars: {res.confidence:.0%} intervals; grey: the noise floor; correlated inputs "
        "share the credit",
        fontsize=12,
        fontweight="bold",
        x=0.01,
        ha="left",
    )
    return fig


@literal_text
def sweep_figure(res: Sweep, outcomes: Sequence[str] | None = None) -> Figure:
    """Per outcome, its median (line), p25–p75 and p05–p95 (bands) against the lever.

    With a second lever, a median line and a p05–p95 band per by-value, a colour each.
    """
    names = list(outcomes or res.outcomes)
    names, arrays = _sweep_panels(names, res)
    cols = 1 if len(names) == 1 else 2 if len(names) <= 4 else 3
    rows = math.ceil(len(names) / cols)
    # Two levers put several curves in each panel: larger panels, so that they stay apart.
    width, height = (6.8, 4.6) if res.by else (5.2, 3.4)
    fig = Figure(figsize=(width * cols + 0.8, height * rows + 1.4), dpi=DPI, layout="constrained")
    palette = _by_palette(res.by_values) if res.by else []
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    x: Any = np.asarray(res.values)
    if res.dates:
        x = np.array([np.datetime64(f"{label}-01") for label in res.labels]).astype("datetime64[D]")
    for ax, name in zip(axes.flat, names, strict=False):
        if name in arrays:  # an array of many cells: one panel, a median line per cell
            _sweep_cells(ax, res, name, arrays[name], x)
            continue
        if res.by:
            for j, by_label in enumerate(res.by_labels):
                c = res.curve(name, by=by_label)
                color = palette[j]
                ax.fill_between(x, c["p05"], c["p95"], color=color, alpha=0.1, lw=0)
                # Dotted edges: where bands overlap, the fill alone hides which is which.
                ax.plot(x, c["p05"], color=color, lw=0.8, ls=":")
                ax.plot(x, c["p95"], color=color, lw=0.8, ls=":")
                ax.plot(x, c["p50"], color=color, lw=2, marker="o", ms=3.5)
        else:
            c = res.curve(name)
            ax.fill_between(x, c["p05"], c["p95"], color=COLORS[0], alpha=0.15, lw=0)
            ax.fill_between(x, c["p25"], c["p75"], color=COLORS[0], alpha=0.3, lw=0)
            ax.plot(x, c["p50"], color=COLORS[0], lw=2, marker="o", ms=3.5)
            ax.plot(x, c["mean"], color=COLORS[1], lw=1, ls="--")
        ax.set_title(
            textwrap.fill(
                f"{name}{unit_label(res.units.get(name, ''))}",
                48,
                break_long_words=False,
                break_on_hyphens=False,
            ),
            loc="left",
            fontsize=10.5,
        )
        _lever_axes(ax, res)
    handles: list[Artist]
    if res.by:
        order = np.argsort(np.asarray(res.by_values, dtype=float), kind="stable")
        handles = [
            Line2D([], [], color=palette[j], lw=2, marker="o", ms=3.5, label=res.by_labels[j])
            for j in order
        ]
        handles.append(
            Patch(facecolor="0.9", edgecolor="0.4", ls=":", label="p05–p95, same colour")
        )
        fig.legend(  # beside the panels, level with their middle row: in reach of each
            handles=handles,
            loc="outside right center",
            frameon=False,
            title=f"median for each\n{res.by}{unit_label(res.by_unit)}\n(darker: larger)",
        )
        what = f"{res.parameter}, by {res.by}"
        per = "grid point"
    else:
        handles = [
            Line2D([], [], color=COLORS[0], lw=2, marker="o", ms=3.5, label="median"),
            Line2D([], [], color=COLORS[1], lw=1, ls="--", label="mean"),
            Patch(color=COLORS[0], alpha=0.45, label="p25–p75"),
            Patch(color=COLORS[0], alpha=0.15, label="p05–p95"),
        ]
        fig.legend(handles=handles, loc="outside right center", frameon=False)
        what = f"{res.parameter} (prior {res.prior})"
        per = "value"
    title = f"{res.scenario}: outcomes against {what}; {res.runs:,} runs per {per}, common random numbers"
    fig.suptitle(
        # The one-lever title is left unwrapped, as its figures have always been drawn.
        textwrap.fill(title, int(8.5 * fig.get_figwidth())) if res.by else title,
        fontsize=12,
        fontweight="bold",
        x=0.01,
        ha="left",
    )
    return fig


@literal_text
def discover_figure(res: Discovery) -> Figure:
    """Left: the peeling trajectory (density against coverage). Right: each box's ranges."""
    restrictions = [(box.number, r) for box in res.boxes for r in box.restrictions]
    height = max(4.2, 0.42 * len(restrictions) + 1.6)
    fig = Figure(figsize=(13, height), dpi=DPI, layout="constrained")
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": (1, 1.15)})
    for box in res.boxes:
        coverage = [s.coverage for s in box.trajectory]
        density = [s.density for s in box.trajectory]
        restricted = [s.restricted for s in box.trajectory]
        points = left.scatter(
            coverage, density, c=restricted, cmap="viridis", s=18, zorder=3, label=None
        )
        left.plot(coverage, density, color="0.6", lw=0.8, zorder=2)
        chosen = box.trajectory[box.chosen]
        left.scatter(
            [chosen.coverage],
            [chosen.density],
            s=150,
            facecolors="none",
            edgecolors=COLORS[1],
            lw=1.5,
            zorder=4,
        )
        # The reported box: the circled step, pasted, less the edges pruned as noise.
        left.scatter([box.coverage], [box.density], marker="*", s=220, color=COLORS[1], zorder=5)
        left.annotate(
            f"box {box.number}",
            (box.coverage, box.density),
            xytext=(-10, -16),
            textcoords="offset points",
            ha="right",
            color=COLORS[1],
            fontsize=9,
            fontweight="bold",
        )
    if res.boxes:
        fig.colorbar(points, ax=left, label="parameters restricted")
    left.axhline(res.base_density, color="black", lw=0.8, ls=":")
    left.text(
        0.02,
        res.base_density,
        " base rate",
        va="bottom",
        fontsize=8,
        transform=left.get_yaxis_transform(),
    )
    left.set_xlim(-0.02, 1.02)
    left.set_ylim(0, 1.02)
    left.set_xlabel("coverage: share of all cases inside the box")
    left.set_ylabel("density: share of the box's runs that are cases")
    left.grid(alpha=0.3)
    left.set_title(
        "Peeling trajectory (circle: the step chosen; star: the box after pasting and pruning)",
        loc="left",
        fontsize=11,
    )
    _box_ranges(right, res, restrictions)
    fig.suptitle(
        textwrap.fill(
            f"{res.scenario}: where {res.where or 'the cases'} ({res.cases:,} of {res.runs:,} "
            f"runs, {res.base_density:.0%})",
            110,
        ),
        fontsize=12,
        fontweight="bold",
        x=0.01,
        ha="left",
    )
    return fig


def _box_ranges(ax: Any, res: Discovery, restrictions: list[tuple[int, Any]]) -> None:
    """Each restriction as a bar over its parameter's whole range (scaled to 0–1)."""
    if not restrictions:
        ax.text(0.5, 0.5, "no restriction: the cases are not concentrated", ha="center")
        ax.set_axis_off()
        return
    y = np.arange(len(restrictions))[::-1]
    for k, (number_, r) in zip(y, restrictions, strict=True):
        span = (r.full_high - r.full_low) or 1.0
        lo, hi = (r.low - r.full_low) / span, (r.high - r.full_low) / span
        color = COLORS[(number_ - 1) % len(COLORS)]
        ax.barh(k, 1.0, left=0.0, height=0.6, color="0.92")
        if r.high == r.low:  # one value (a choice, say): a mark and one label
            ax.plot([lo, lo], [k - 0.3, k + 0.3], color=color, linewidth=4, solid_capstyle="butt")
            where = "right" if lo > 0.5 else "left"
            ax.text(lo, k + 0.36, number(r.low), ha=where, va="bottom", fontsize=8)
            continue
        ax.barh(k, hi - lo, left=lo, height=0.6, color=color, alpha=0.75)
        ax.text(lo, k + 0.36, number(r.low), ha="left", va="bottom", fontsize=8)
        ax.text(hi, k + 0.36, number(r.high), ha="right", va="bottom", fontsize=8)
    labels = [
        f"box {b}: {r.parameter}" if len(res.boxes) > 1 else r.parameter for b, r in restrictions
    ]
    ax.set_yticks(y, labels)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.7, len(restrictions) - 0.1)
    ax.set_xticks([0, 1], ["lowest drawn", "highest drawn"])
    boxes = "; ".join(
        f"box {b.number}: coverage {b.coverage:.0%}, density {b.density:.0%}" for b in res.boxes
    )
    ax.set_title(
        textwrap.fill(f"The box's ranges (grey: all runs). {boxes}", 70), loc="left", fontsize=10.5
    )


def _errors(point: np.ndarray, low: Sequence[float], high: Sequence[float]) -> np.ndarray:
    """Asymmetric error bars from interval ends (never negative, whatever the bootstrap did)."""
    lo = np.maximum(0.0, point - np.asarray(low))
    hi = np.maximum(0.0, np.asarray(high) - point)
    return np.vstack([lo, hi])


def _tick(x: float, _pos: Any = None) -> str:
    return number(x) if x != 0 else "0"


def _by_palette(values: Sequence[float]) -> list[Any]:
    """A colour per value of the second lever from one sequential colormap, by rank: the
    order of the colours is the order of the values, whatever order they were given in."""
    ranks = np.argsort(np.argsort(np.asarray(values, dtype=float), kind="stable"), kind="stable")
    n = len(values)
    cmap = colormaps["viridis"].reversed()  # light for small values, dark for large
    return [cmap(0.15 + 0.75 * (r / (n - 1) if n > 1 else 0.5)) for r in ranks]


def _sweep_panels(names: list[str], res: Sweep) -> tuple[list[str], dict[str, list[str]]]:
    """The panels of a one-lever sweep: an outcome each, but an arrayed outcome of more than
    FAN_CELLS cells is one panel (named by its array) holding a median line per cell."""
    if res.by:
        return names, {}
    panels: list[str] = []
    arrays: dict[str, list[str]] = {}
    for array, cells in grouped(names).items():
        if len(cells) > FAN_CELLS and all(split(c)[1] for c in cells):
            panels.append(array)
            arrays[array] = cells
        else:
            panels += cells
    return panels, arrays


def _sweep_cells(ax: Any, res: Sweep, array: str, cells: list[str], x: Any) -> None:
    """Each cell's median against the lever, a colour per cell; past MAX_CELLS cells, those
    whose medians move most across the lever's values are drawn, and the title says so."""

    def moved(cell: str) -> float:
        p50 = np.asarray(res.curve(cell)["p50"], dtype=float)
        finite = p50[np.isfinite(p50)]
        return float(np.ptp(finite)) if finite.size else 0.0

    shown = cells
    if len(cells) > MAX_CELLS:
        keep = set(sorted(cells, key=moved, reverse=True)[:MAX_CELLS])
        shown = [c for c in cells if c in keep]
    palette = _tab20()
    for j, cell in enumerate(shown):
        ax.plot(
            x,
            res.curve(cell)["p50"],
            color=palette(j % 20),
            lw=1.6,
            marker="o",
            ms=3,
            label=f"[{','.join(split(cell)[1])}]",
        )
    left_out = len(cells) - len(shown)
    more = f"; {left_out} cells not drawn (they move least)" if left_out else ""
    ax.set_title(
        textwrap.fill(
            f"{array}{unit_label(res.units.get(cells[0], ''))}: median per cell, "
            f"{len(cells)} cells{more}",
            48,
            break_long_words=False,
        ),
        loc="left",
        fontsize=10.5,
    )
    _lever_axes(ax, res)
    ax.legend(fontsize=7, ncol=2 if len(shown) > 10 else 1, loc="best")


def _tab20() -> Any:
    """Twenty distinct colours, one per cell of an array's panel."""
    import matplotlib as mpl

    return mpl.colormaps["tab20"]


def _lever_axes(ax: Any, res: Sweep) -> None:
    """A sweep panel's furniture: grid, number ticks, and the lever along x (dates for an
    event's time)."""
    ax.grid(alpha=0.3)
    ax.yaxis.set_major_formatter(_tick)
    if res.dates:
        locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    else:
        ax.xaxis.set_major_formatter(_tick)
    ax.set_xlabel(
        f"{res.parameter} (the date it falls on)"
        if res.dates
        else f"{res.parameter}{unit_label(res.parameter_unit)}"
    )
