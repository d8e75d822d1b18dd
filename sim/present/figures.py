"""Figures of a comparison, made to be opened by people: outcome distributions and fan charts.

Every function returns a `matplotlib.figure.Figure` built without `pyplot`, so nothing here
touches matplotlib's global state (beyond the length of a call) or needs a display: saving
goes through the Agg canvas.
`save` writes a figure to a file; `png_bytes` gives the bytes for embedding in a report.

Text from scenarios (names, units, descriptions) is shown as written: every figure is built
and drawn under `literal_text`, with matplotlib's math text and TeX off, so a unit such as
`$_$` or `$\\frac{` is characters, not a formula that fails to parse.

>>> import sim
>>> from sim.analysis.compare import compare
>>> a = sim.run(sim.load("examples/bakery.yaml"), runs=200, seed=1)
>>> fig = outcome_figure(compare(a, a), [a, a])
>>> len(fig.axes)
8
"""

from __future__ import annotations

import functools
import io
import math
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from sim.analysis.cells import grouped, split
from sim.analysis.compare import Comparison, Given
from sim.present.numbers import number
from sim.study import store
from sim.study.results import Results

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
ECDF_POINTS = 2001  # an ECDF drawn through this many quantiles looks exact and stays light
HIST_BINS = 60
MAX_CELLS = 20  # an arrayed outcome's panel draws at most this many cells, the largest shifts
FAN_CELLS = 4  # an arrayed series of more cells is one panel of medians, not a fan per cell
_STYLES = ("-", "--", ":", "-.")  # a scenario's line in a panel of medians per cell
_STYLE_WORDS = ("solid", "dashed", "dotted", "dash-dotted")
DPI = 110

F = TypeVar("F", bound=Callable[..., Any])


def literal_text(fn: F) -> F:
    """`fn` run with every Text it creates, and every Text drawn, shown as written.

    Applied to every function here and in `sim.present.analysis_figures` that builds or draws
    a figure: the one place that decides how scenario text reaches matplotlib."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # No math text, no TeX (a user's matplotlibrc may turn it on): text as written.
        with mpl.rc_context({"text.parse_math": False, "text.usetex": False}):
            return fn(*args, **kwargs)

    return cast(F, wrapper)


_STAT_WORDS = {
    "final": "value of {of} at the end",
    "mean": "average of {of} over the horizon",
    "min": "lowest {of} over the horizon",
    "max": "highest {of} over the horizon",
    "sum": "total of {of} over the horizon",
    "count": "months in which {of}",
    "first": "first month in which {of}",
}


def outcome_meaning(info: dict[str, Any]) -> str:
    """An outcome in words: its description, or what its stat and expression compute."""
    if info.get("description"):
        return str(info["description"])
    words = _STAT_WORDS.get(str(info.get("stat")), "{of}")
    return words.format(of=info.get("of", "?"))


def unit_label(unit: str) -> str:
    """A unit for an axis label: empty for dimensionless."""
    return "" if unit in ("", "1") else f" ({unit})"


@literal_text
def outcome_figure(comparison: Comparison, results: Sequence[Results]) -> Figure:
    """Per outcome, a row of two panels: the scenarios' ECDFs, and B − A.

    The right panel shows the run-by-run differences as a histogram for paired scenarios, and
    for every pair the mean difference with its confidence interval as a line and a band.
    """
    labels = comparison.scenarios
    groups = list(grouped(comparison.outcomes).values())
    heights = [
        3.6 if not split(g[0])[1] else max(3.6, 0.32 * min(len(g), MAX_CELLS) + 1.4) for g in groups
    ]
    height = sum(heights) + 0.9
    fig = Figure(figsize=(12, height), dpi=DPI)
    # Margins in inches, fixed: a constrained layout of a dozen panel rows cost more than
    # drawing them (the report's main wait), and every row has the same furniture. An
    # array's panels carry its cells' names as y labels: room for the longest.
    tick = max((len(c) - len(split(c)[0]) for c in comparison.outcomes if split(c)[1]), default=0)
    axes = fig.subplots(
        len(groups),
        2,
        squeeze=False,
        gridspec_kw={
            "width_ratios": (1.25, 1),
            "height_ratios": heights,
            "left": max(0.75, 0.35 + 0.08 * tick) / 12,
            "right": 1 - 0.2 / 12,
            "top": 1 - (0.95 + 0.25 * (comparison.given is not None)) / height,
            "bottom": 0.55 / height,
            "hspace": 1.15 / (sum(heights) / len(groups) - 1.1),
            "wspace": 0.22 + 0.012 * tick,
        },
    )
    first = results[0]
    for row, cells in enumerate(groups):
        name = cells[0]
        info = first.outcomes[name]
        unit = str(info["unit"])
        left, right = axes[row]
        if split(name)[1]:  # an array: one row of panels, a line per cell, not a row per cell
            _cells(left, right, comparison, cells, unit)
            continue
        _ecdfs(left, comparison, results, name, unit)
        _differences(right, comparison, results, name, unit)
        left.set_title(_wrap(f"{name}: {outcome_meaning(info)}", 72), loc="left", fontsize=11)
    given = f"\n{comparison.given.text()}" if comparison.given is not None else ""
    fig.suptitle(
        f"Outcomes: {' vs '.join(labels)}{given}",
        fontsize=13,
        fontweight="bold",
        x=0.01,
        ha="left",
        y=1 - 0.15 / height,  # in inches from the top, whatever the figure's height
        va="top",
    )
    return fig


@literal_text
def fan_figure(
    results: Sequence[Results], labels: Sequence[str] | None = None, given: Given | None = None
) -> Figure | None:
    """Fan charts of every series recorded in all scenarios, scenarios overlaid, dates along x.

    Each scenario gets a colour: its median is the line, the darker band holds the middle 50%
    of runs (p25 to p75) and the lighter band 90% (p05 to p95). None if no series is shared.
    With `given`, the title says the bands are still over every run: they are stored as
    quantiles per tick, not per run, so a condition on runs can't narrow them.
    """
    labels = list(labels or [r.name for r in results])
    shared = [s for s in results[0].series_names if all(s in r.series_names for r in results[1:])]
    shared = [s for s in shared if all(_has_band(r, s) for r in results)]
    if not shared:
        return None
    # An array of more than FAN_CELLS cells is one panel of medians, not a fan per cell.
    panels: list[list[str]] = []
    for cells in grouped(shared).values():
        many = len(cells) > FAN_CELLS and all(split(c)[1] for c in cells)
        panels += [cells] if many else [[c] for c in cells]
    cols = 1 if len(panels) == 1 else 2
    rows = math.ceil(len(panels) / cols)
    height = 3.8 * rows + 1.2
    fig = Figure(figsize=(12, height), dpi=DPI)
    # Fixed margins in inches (as the outcome figure): room for the title above and the
    # legend below; a constrained layout of the panels cost more than drawing them.
    axes = fig.subplots(
        rows,
        cols,
        squeeze=False,
        gridspec_kw={
            "left": 0.8 / 12,
            "right": 1 - 0.2 / 12,
            "bottom": 1.15 / height,
            "hspace": 1.05 / 2.9,
            "wspace": 0.2,
        },
    )
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, cells in zip(axes.flat, panels, strict=False):
        if len(cells) > 1:
            _medians(ax, results, labels, cells)
            continue
        series = cells[0]
        unit = series_unit(results[0], split(series)[0])  # a cell's unit is its array's
        for k, (label, res) in enumerate(zip(labels, results, strict=True)):
            band = res.band(series)
            dates = _times(band)
            color = COLORS[k % len(COLORS)]
            # The 90% band as edges, not a fill: overlapping fills of two scenarios turn to mud.
            ax.plot(dates, band["p05"], color=color, lw=0.9, ls="--", alpha=0.8)
            ax.plot(dates, band["p95"], color=color, lw=0.9, ls="--", alpha=0.8)
            ax.fill_between(dates, band["p25"], band["p75"], color=color, alpha=0.22, lw=0)
            ax.plot(dates, band["p50"], color=color, lw=2, label=label)
        locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        shown = unit_label(unit) if unit else " (no unit declared)"
        ax.set_title(
            _wrap(f"{series}{shown}{series_meaning(results[0], series)}", 64),
            loc="left",
            fontsize=11,
        )
        ax.set_ylabel({"": "no unit declared", "1": "dimensionless"}.get(unit, unit))
        ax.grid(alpha=0.3)
        ax.yaxis.set_major_formatter(_tick)
    handles: list[Any] = [
        Line2D([], [], color=COLORS[k % len(COLORS)], lw=2, label=f"{label}: median")
        for k, label in enumerate(labels)
    ] + [
        Patch(color="0.45", alpha=0.35, label="shaded: middle 50% of runs (p25–p75)"),
        Line2D([], [], color="0.45", lw=0.9, ls="--", label="dashed: 90% of runs (p05–p95)"),
    ]
    fig.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.1 / height),
        ncol=min(len(handles), 4),
        frameon=False,
    )
    notes = sorted(
        {str(r.manifest.get("bands", {}).get("method", "")) for r in results}
        - {"", "exact over all runs"}
    )
    title = "Recorded series over time"
    if given is not None:
        title += f" (every run: the stored bands can't be restricted to 'given {given.condition}')"
    heading = _wrap(title + (f" (bands {'; '.join(notes)})" if notes else ""), 110)
    lines = heading.count("\n") + 1
    fig.suptitle(
        heading, fontsize=13, fontweight="bold", x=0.01, ha="left", y=1 - 0.15 / height, va="top"
    )
    # below the heading: its lines, then room for a panel's two-line title
    fig.subplots_adjust(top=1 - (0.15 + 0.26 * lines + 0.6) / height)
    return fig


def _medians(ax: Any, results: Sequence[Results], labels: Sequence[str], cells: list[str]) -> None:
    """An arrayed series in one panel: each cell's median over time, a colour per cell and a
    line style per scenario; past MAX_CELLS cells, those whose medians end furthest apart
    between the scenarios (with one scenario: highest) are drawn, and the title says so."""
    array = split(cells[0])[0]

    def last(res: Results, cell: str) -> float:
        end = res.band(cell)["p50"][-1:]
        return float(end[0]) if len(end) and math.isfinite(end[0]) else 0.0

    def size(cell: str) -> float:
        ends = [last(r, cell) for r in results]
        return max(ends) - min(ends) if len(ends) > 1 else abs(ends[0])

    shown = cells
    if len(cells) > MAX_CELLS:
        keep = set(sorted(cells, key=size, reverse=True)[:MAX_CELLS])
        shown = [c for c in cells if c in keep]
    palette = mpl.colormaps["tab20"]
    for j, cell in enumerate(shown):
        color = palette(j % 20)
        for k, res in enumerate(results):
            band = res.band(cell)
            ax.plot(
                _times(band),
                band["p50"],
                color=color,
                lw=1.6,
                ls=_STYLES[k % len(_STYLES)],
                label=f"[{','.join(split(cell)[1])}]" if k == 0 else None,
            )
    locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    unit = series_unit(results[0], array)
    left_out = len(cells) - len(shown)
    more = f"; {left_out} cells not drawn (their medians differ least)" if left_out else ""
    styles = ", ".join(
        f"{label} {_STYLE_WORDS[k % len(_STYLES)]}" for k, label in enumerate(labels)
    )
    ax.set_title(
        _wrap(
            f"{array}{unit_label(unit)}: median per cell, {len(cells)} cells{more}; {styles}", 64
        ),
        loc="left",
        fontsize=11,
    )
    ax.set_ylabel(unit if unit not in ("", "1") else array)
    ax.grid(alpha=0.3)
    ax.yaxis.set_major_formatter(_tick)
    ax.legend(fontsize=7, ncol=2 if len(shown) > 10 else 1, loc="best")


def series_unit(res: Results, series: str) -> str:
    """The unit of a recorded series: a stock's; a flow's per month (`flow.NAME`, or a flow's
    name); a flow's total (`cum.NAME`); else unknown (""): variables and expressions carry none.
    """
    scenario = res.manifest.get("scenario", {})
    stocks = scenario.get("stocks", {})
    flows = scenario.get("flows", {})
    name = series.strip()
    if name in stocks:
        return str(stocks[name].get("unit", ""))
    prefix, dot, rest = name.partition(".")
    flow = flows.get(rest) if dot and prefix in ("flow", "cum") else flows.get(name)
    if isinstance(flow, dict) and flow.get("from") in stocks:
        unit = str(stocks[flow["from"]].get("unit", ""))
        return unit if prefix == "cum" and dot else f"{unit}/month"
    return ""


def series_meaning(res: Results, series: str) -> str:
    """ ": its description" for a recorded stock or flow that has one, else ""."""
    scenario = res.manifest.get("scenario", {})
    prefix, dot, rest = series.partition(".")
    name = rest if dot and prefix in ("flow", "cum") else series
    for section in ("stocks", "flows"):
        spec = scenario.get(section, {}).get(name if section == "flows" else series)
        if isinstance(spec, dict) and spec.get("description"):
            return f": {spec['description']}"
    return ""


@literal_text
def save(fig: Figure, path: str | Path) -> Path:
    """Write a figure to `path` (format from the suffix, e.g. .png, .svg, .pdf; PNG without
    one), atomically: the file appears whole or not at all."""
    path = Path(path)
    FigureCanvasAgg(fig)
    with store.atomic(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format=path.suffix.lstrip(".").lower() or "png")
    return path


def image_path_problem(path: Path) -> str | None:
    """Why a figure can't be written to `path`, or None if it can."""
    kinds = FigureCanvasAgg(Figure()).get_supported_filetypes()
    suffix = path.suffix.lstrip(".").lower()
    if suffix and suffix not in kinds:
        return f"no .{suffix} images; use one of .{', .'.join(sorted(kinds))}"
    if not path.parent.is_dir():
        return f"no such folder: {path.parent}"
    return None


@literal_text
def png_bytes(fig: Figure) -> bytes:
    """A figure as PNG bytes."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


# -- panels -------------------------------------------------------------------------------


def _ecdfs(
    ax: Any, comparison: Comparison, results: Sequence[Results], name: str, unit: str
) -> None:
    empty = "never" if results[0].outcomes[name].get("stat") == "first" else "no value"
    curves: list[tuple[np.ndarray, np.ndarray]] = []
    for k, (label, res) in enumerate(zip(comparison.scenarios, results, strict=True)):
        x = res.outcome(name)
        finite = np.sort(x[np.isfinite(x)])
        if not len(finite):
            continue
        never = 1 - len(finite) / len(x)
        p = np.linspace(0, 1, min(ECDF_POINTS, len(finite)))
        q = np.quantile(finite, p, method="inverted_cdf")
        # The curve tops out at the share of runs with a value; the rest never happened.
        share = p * (1 - never)
        note = f" ({never:.0%} {empty})" if never else ""
        color = COLORS[k % len(COLORS)]
        ax.step(q, share, where="post", color=color, lw=1.8, label=f"{label}{note}")
        curves.append((q, share))
        ax.axvline(float(np.median(finite)), color=color, lw=0.8, ls=":")
    ax.set_xlabel(f"{name}{unit_label(unit)}")
    ax.set_ylabel("share of runs ≤ x")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    _numbers_on_x(ax)
    if not curves:
        ax.text(0.5, 0.5, f"no run has a value ({empty})", ha="center", transform=ax.transAxes)
        return
    ax.legend(
        fontsize=9,
        loc=_empty_corner(ax, curves),
        title="cumulative share; dotted: median",
        title_fontsize=8,
    )


def _empty_corner(ax: Any, curves: list[tuple[np.ndarray, np.ndarray]]) -> str:
    """Top left or bottom right, whichever the ECDF curves cross less (they rise left to right)."""
    lo, hi = ax.get_xlim()
    span = (hi - lo) or 1.0
    top_left = bottom_right = 0
    for q, share in curves:
        x = (q - lo) / span
        top_left += int(np.sum((x < 0.45) & (share > 0.6)))
        bottom_right += int(np.sum((x > 0.55) & (share < 0.4)))
    return "upper left" if top_left <= bottom_right else "lower right"


def _differences(
    ax: Any, comparison: Comparison, results: Sequence[Results], name: str, unit: str
) -> None:
    a = results[0].outcome(name)
    diffs = [d for d in comparison.differences if d.outcome == name]
    paired_values: list[tuple[int, np.ndarray]] = []
    for k, (d, res) in enumerate(zip(diffs, results[1:], strict=True), start=1):
        if d.paired:
            b = res.outcome(name)
            both = np.isfinite(a) & np.isfinite(b)
            paired_values.append((k, b[both] - a[both]))
    if paired_values:
        pooled = np.concatenate([v for _, v in paired_values])
        if len(pooled):
            lo, hi = np.quantile(pooled, [0.005, 0.995])
            lo, hi = min(lo, 0.0), max(hi, 0.0)
            if lo == hi:
                lo, hi = lo - 0.5, hi + 0.5
            bins = np.linspace(lo, hi, HIST_BINS + 1)
            if np.allclose(pooled, np.round(pooled)) and hi - lo <= HIST_BINS:
                bins = np.arange(math.floor(lo) - 0.5, math.ceil(hi) + 1.5)  # whole numbers
            for k, v in paired_values:
                ax.hist(
                    v,  # the 1% of runs beyond the bins is left out, not piled on the edges
                    bins=bins,
                    weights=np.full(len(v), 1 / max(len(v), 1)),
                    histtype="stepfilled",
                    alpha=0.35,
                    color=COLORS[k % len(COLORS)],
                    edgecolor=COLORS[k % len(COLORS)],
                )
    for k, d in enumerate(diffs, start=1):
        color = COLORS[k % len(COLORS)]
        if math.isfinite(d.mean_low) and math.isfinite(d.mean_high) and d.mean_high > d.mean_low:
            ax.axvspan(d.mean_low, d.mean_high, color=color, alpha=0.25, lw=0)
        if d.paired:
            lower = max(0.0, 1 - d.p_greater - d.p_equal)
            label = (
                f"{d.b} − {d.a} (paired): mean {number(d.mean, signed=True)};\n"
                f"{d.b} higher in {_share(d.p_greater)}, lower in {_share(lower)} of runs"
            )
        else:
            label = (
                f"{d.b} − {d.a} (unpaired): mean {number(d.mean, signed=True)};\n"
                f"P(random {d.b} run > random {d.a} run) = {number(d.p_greater)}"
            )
        ax.axvline(d.mean, color=color, lw=2, ls="-" if d.paired else "--", label=label)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"difference in {name}{unit_label(unit)}")
    if paired_values:
        ax.set_ylabel("share of runs")
        low, high = ax.get_ylim()
        ax.set_ylim(low, high * 1.45)  # headroom for the legend
    else:
        ax.set_yticks([])
    ax.grid(alpha=0.3)
    _numbers_on_x(ax)
    title = "Run-by-run difference (middle 99%)" if paired_values else "Difference of means"
    ax.set_title(
        _wrap(f"{title}; band: {comparison.confidence:.0%} CI of the mean", 64),
        loc="left",
        fontsize=10,
    )
    ax.legend(fontsize=8.5, loc="upper left")


def _cells(left: Any, right: Any, comparison: Comparison, cells: Sequence[str], unit: str) -> None:
    """An arrayed outcome in one row: per cell, each scenario's median and 90% range (left),
    and each B − A's mean with its confidence interval (right). Past MAX_CELLS cells only
    those with the largest differences (relative to their spread) are drawn, and the title
    says how many are left out (the table has them all)."""
    array = split(cells[0])[0]
    shown = list(cells)
    if len(shown) > MAX_CELLS:
        first = comparison.scenarios[0]

        def size(cell: str) -> float:
            spread = comparison.summary(cell, first).sd or 1.0
            found = [abs(d.mean) / spread for d in comparison.differences if d.outcome == cell]
            finite = [v for v in found if math.isfinite(v)]
            return max(finite, default=0.0)

        keep = set(sorted(shown, key=size, reverse=True)[:MAX_CELLS])
        shown = [c for c in shown if c in keep]
    y = np.arange(len(shown))[::-1].astype(float)
    names = [f"[{','.join(split(c)[1])}]" for c in shown]
    k_all = len(comparison.scenarios)
    for k, label in enumerate(comparison.scenarios):
        offset = (k - (k_all - 1) / 2) * 0.8 / max(k_all, 1)
        s = [comparison.summary(c, label) for c in shown]
        color = COLORS[k % len(COLORS)]
        left.hlines(y + offset, [v.p05 for v in s], [v.p95 for v in s], color=color, lw=1.6)
        left.plot([v.p50 for v in s], y + offset, "o", color=color, ms=4, label=label)
    pairs = comparison.scenarios[1:]
    for k, b in enumerate(pairs, start=1):
        offset = (k - 1 - (len(pairs) - 1) / 2) * 0.8 / max(len(pairs), 1)
        ds = [comparison.difference(c, b) for c in shown]
        color = COLORS[k % len(COLORS)]
        right.hlines(
            y + offset, [d.mean_low for d in ds], [d.mean_high for d in ds], color=color, lw=2.2
        )
        right.plot(
            [d.mean for d in ds],
            y + offset,
            "o",
            color=color,
            ms=4,
            label=f"{b} − {comparison.scenarios[0]}",
        )
    right.axvline(0, color="#555555", lw=0.8)
    for ax in (left, right):
        ax.set_yticks(y, names)
        ax.set_ylim(-0.7, len(shown) - 0.3)
        ax.grid(axis="x", alpha=0.3)
    left.set_xlabel(f"{array}{unit_label(unit)}: median and 5–95% of runs")
    right.set_xlabel(f"B − A{unit_label(unit)}: mean difference and its interval")
    left.legend(fontsize=8, loc="best")
    right.legend(fontsize=8, loc="best")
    more = (
        f"; {len(cells) - len(shown)} cells with smaller differences not drawn"
        if len(shown) < len(cells)
        else ""
    )
    left.set_title(_wrap(f"{array}: {len(cells)} cells{more}", 72), loc="left", fontsize=11)


def _wrap(text: str, width: int) -> str:
    return textwrap.fill(text, width=width, break_long_words=False)


def _share(p: float) -> str:
    return f"{p:.0%}" if math.isfinite(p) else "–"


def _has_band(res: Results, series: str) -> bool:
    try:
        res.band(series)
    except KeyError:
        return False
    return True


def _numbers_on_x(ax: Any) -> None:
    """x tick labels in the table's style, few enough that wide labels (−1.25bn) don't touch."""
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
    ax.xaxis.set_major_formatter(_tick)


def _tick(x: float, _pos: Any = None) -> str:
    """An axis number in the table's style (k, M, bn), so figures and tables read alike."""
    return number(x) if x != 0 else "0"


def _times(band: dict[str, np.ndarray]) -> np.ndarray:
    """Each tick's moment on a date axis: its month's first day, or, when ticks are shorter
    than a month (bands carry `t`), as far into that month as t says."""
    months = np.array([np.datetime64(f"{d}-01") for d in band["date"]]).astype("datetime64[D]")
    if "t" not in band:
        return months
    t = band["t"].astype(float)
    into = t - np.floor(t + 1e-9)
    length = (months.astype("datetime64[M]") + 1).astype("datetime64[D]") - months
    minutes = np.round(into * length.astype(float) * 24 * 60).astype("timedelta64[m]")
    return months.astype("datetime64[m]") + minutes
