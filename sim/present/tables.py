"""Tables as people read them, shared by the terminal and the HTML report."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.markup import escape
from rich.measure import Measurement
from rich.padding import Padding
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from sim.analysis.cells import split
from sim.analysis.compare import Comparison
from sim.analysis.drivers import FLOOR_QUANTILE, Drivers
from sim.present.numbers import interval, number, pvalue


def comparison_cells(cmp: Comparison) -> list[tuple[str, list[str]]]:
    """The table as people read it, shared by the terminal and the HTML report.

    A list of (kind, cells): one "head" row, then per outcome an "outcome" row (its name
    and unit in the first cell), a "scenario" row per scenario and a "difference" row per
    scenario after the first. Intervals sit on a second line under their estimate. The cells
    of an arrayed outcome come under one "array" row (its name, unit and number of cells),
    each cell's "outcome" row naming only its elements (`[food]`), its rows indented.
    """
    pct = f"{cmp.confidence:.0%}"
    head = [
        "",
        f"mean\n[{pct} CI]",
        "± mcse",
        "p05",
        f"p50\n[{pct} CI]",
        "p95",
        "P(B>A)",
        "KS D\n(p)",
        "Wasser-\nstein",
    ]
    body: list[tuple[str, list[str]]] = [("head", head)]
    blank = [""] * (len(head) - 1)
    shown: set[str] = set()  # the arrays whose heading is out
    for name in cmp.outcomes:
        unit = cmp.summaries[cmp.scenarios[0]][name].unit
        array, elements = split(name)
        of_unit = f" ({unit})" if unit and unit != "1" else ""
        if elements and array not in shown:  # a cell: under its array's heading, as [elem]
            shown.add(array)
            cells = sum(1 for o in cmp.outcomes if split(o)[0] == array and split(o)[1])
            body.append(("array", [f"{array}{of_unit}, {cells} cells", *blank]))
        indent = "  " if elements else ""
        title = f"  [{','.join(elements)}]" if elements else name + of_unit
        body.append(("outcome", [title, *blank]))
        for label, runs in zip(cmp.scenarios, cmp.runs, strict=True):
            s = cmp.summaries[label][name]
            never = (
                f"\n  {s.empty / runs:.0%} {'never' if s.stat == 'first' else 'no value'}"
                if s.empty
                else ""
            )
            body.append(
                (
                    "scenario",
                    [
                        f"{indent}  {label}{never}",
                        number(s.mean),
                        number(s.mcse),
                        number(s.p05),
                        number(s.p50),
                        number(s.p95),
                        "",
                        "",
                        "",
                    ],
                )
            )
        for d in cmp.differences:
            if d.outcome != name:
                continue
            body.append(
                (
                    "difference",
                    [
                        f"{indent}  {d.b} − {d.a}\n{indent}  "
                        f"({'paired' if d.paired else 'unpaired'})",
                        f"{number(d.mean, signed=True)}\n{interval(d.mean_low, d.mean_high)}",
                        number(d.mcse),
                        number(d.p05, signed=True),
                        f"{number(d.median, signed=True)}\n{interval(d.median_low, d.median_high)}",
                        number(d.p95, signed=True),
                        number(d.p_greater),
                        f"{number(d.ks)}\n({pvalue(d.ks_pvalue)})",
                        number(d.wasserstein),
                    ],
                )
            )
    return body


def threshold_cells(cmp: Comparison) -> list[tuple[str, list[str]]]:
    """The threshold probabilities as people read them: the same (kind, cells) shape.

    A "head" row, then per condition a "outcome" row (the condition), a "scenario" row per
    scenario (P with its interval, and hits of runs) and a "difference" row per scenario after
    the first (P(B) − P(A) in percentage points, with its interval).
    """
    pct = f"{cmp.confidence:.0%}"
    body: list[tuple[str, list[str]]] = [("head", ["", "P(condition)", f"[{pct} CI]", "runs"])]
    for t in cmp.thresholds:
        body.append(("outcome", [f"P({t.condition})", "", "", ""]))
        for p in t.probabilities:
            body.append(
                (
                    "scenario",
                    [
                        f"  {p.scenario}",
                        _share(p.p),
                        _shares(p.low, p.high),
                        f"{p.hits:,} of {p.n:,}",
                    ],
                )
            )
        for d in t.differences:
            body.append(
                (
                    "difference",
                    [
                        f"  {d.b} − {d.a}\n  ({'paired' if d.paired else 'unpaired'})",
                        _share(d.diff, signed=True),
                        _shares(d.low, d.high, signed=True),
                        f"{min(d.n_a, d.n_b):,}" if d.paired else f"{d.n_b:,} / {d.n_a:,}",
                    ],
                )
            )
    return body


def _share(p: float, signed: bool = False) -> str:
    """A probability as a percentage with one decimal; a difference in percentage points."""
    if not math.isfinite(p):
        return "–"
    return f"{p * 100:+.1f} pp".replace("-", "−") if signed else f"{p:.1%}"


def _shares(low: float, high: float, signed: bool = False) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return ""
    if signed:
        return f"[{low * 100:+.1f}, {high * 100:+.1f}]".replace("-", "−")
    return f"[{low:.1%}, {high:.1%}]"


def drivers_table(res: Drivers, outcome: str, top: int) -> Table:
    """What decides `outcome` (or its paired difference): the `top` inputs by η², with the
    interval, the noise floor and Spearman's ρ; print it in a `Fit` (whole=WHOLE), so no
    input's name or distribution is cut."""
    k = res.outcomes.index(outcome)
    unit = res.units.get(outcome, "")
    ranked = res.ranked(outcome)
    title = (
        f"{res.scenario}: what decides {res.label(outcome)}"
        + (f" ({unit}; " if unit not in ("", "1") else " (")
        + f"mean {number(res.mean[k])}, sd {number(res.sd[k])}); {res.used[k]:,} of "
        f"{res.runs:,} runs" + (f", {_posterior_short(res)}" if res.posterior else "")
    )
    table = Table(title=escape(title), title_justify="left")
    for col, justify in (
        ("input (by η²)", "left"),
        ("η²", "right"),
        (f"[{res.confidence:.0%} CI]", "right"),
        ("floor", "right"),
        ("Spearman", "right"),
        ("drawn from", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in ranked[:top]:
        faint = "" if r.above_floor else "dim"
        table.add_row(
            escape(r.input)
            + (f" (only in {escape(r.source)})" if _only(r.input, r.source) else ""),
            _three(r.index),
            f"[{_three(r.low)}, {_three(r.high)}]",
            _three(r.floor),
            f"{r.spearman:+.2f}".replace("-", "−") if math.isfinite(r.spearman) else "–",
            escape(res.distributions.get(r.input, "")),
            style=faint,
        )
    if len(ranked) > top:  # a caption, not a row: the input column stays as wide as a name
        table.caption = f"… {len(ranked) - top} more inputs (in drivers.parquet)"
        table.caption_justify = "left"
    return table


DRIVERS_WHOLE = (0, 2, 5)  # columns never broken: the names, intervals and distributions


def drivers_legend(res: Drivers) -> list[str]:
    """What the drivers table's columns mean, and what they do not, one sentence each."""
    return [
        "η²: first-order index from the runs as given, the share of the variance that knowing "
        "the input alone removes, "
        "Var(E[Y | input]) / Var(Y) ("
        + ", ".join(sorted({f"{b} bins" for b in res.bins.ravel().tolist() if b}))
        + " on the input's quantiles, bias-corrected).",
        "Not a variance decomposition: inputs that are correlated (as a posterior's are) share "
        "the credit, and the shares need not sum to 1.",
        f"[ ]: {res.confidence:.0%} bootstrap interval over {res.resamples} resamples of the "
        f"runs. Floor: what an input that does not matter scores, the index of the input "
        f"shuffled against the outcome ({FLOOR_QUANTILE:.0%} quantile of {res.permutations} "
        "shuffles); dim rows are not above it.",
        "Spearman: rank correlation, its sign the direction (blind to effects that are not "
        "monotone).",
    ]


def _three(v: float) -> str:
    """An index to three decimals; one that rounds to zero is 0.000, never -0.000."""
    if not math.isfinite(v):
        return "–"
    text = f"{v:.3f}"
    return "0.000" if text == "-0.000" else text


def _only(name: str, source: str) -> bool:
    """Whether an input comes from one scenario's folder without saying so in its name."""
    return bool(source) and not name.endswith(f"({source})")


def _posterior_short(res: Drivers) -> str:
    info = res.posterior or {}
    held = list(info.get("parameters", []))
    return f"{len(held)} parameter{'s' * (len(held) != 1)} from posterior {str(info.get('sha256', ''))[:12]}…"


# -- terminal tables that never cut a name ---------------------------------------------------


class Fit:
    """A rich table drawn whole or not at all: no name is ever cut, folded or ellipsised.

    Printed on a console, it draws `table` as it is when that fits; otherwise with each column
    as wide as its longest word (its longest line for the `whole` columns, which hold names)
    plus a share of what is left, so nothing breaks inside a word; and when even that is too
    wide, stacked: each row's first cell on a line of its own, then its other cells as
    `header value` pairs, wrapped at spaces under it.

    >>> from rich.console import Console
    >>> table = Table("outcome", "mean")
    >>> table.add_row("china_import_share_end", "0.935")
    >>> console = Console(width=26)
    >>> console.print(Fit(table))
    china_import_share_end
        mean 0.935
    """

    def __init__(self, table: Table, whole: Sequence[int] = (0,)):
        self.table = table
        self.whole = set(whole)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = self.table
        width = options.max_width
        lines = [[_plain(c).split("\n") for c in (col.header, *col.cells)] for col in table.columns]
        longest = [
            max((cell_len(line) for cell in col for line in cell), default=0) for col in lines
        ]
        words = [
            longest[i]
            if i in self.whole
            else max(
                (cell_len(w) for cell in col for line in cell for w in line.split()), default=0
            )
            for i, col in enumerate(lines)
        ]
        for column, w in zip(table.columns, words, strict=True):
            column.overflow = "fold"  # belt and braces: rich never ellipsises these
            column.width = w
        wide = options.update_width(10**6)
        extra = Measurement.get(console, wide, table).maximum - sum(words)
        if sum(longest) + extra <= width:
            for column, w in zip(table.columns, longest, strict=True):
                column.width = w
            yield table
            return
        if sum(words) + extra > width:
            for column in table.columns:
                column.width = None
            grid = self._grid(table, longest)
            if Measurement.get(console, wide, grid).maximum <= width:
                yield from self._stacked_grid(table, grid, console, options)
            else:
                yield from self._stacked(table)
            return
        spare = width - sum(words) - extra
        room = [hi - lo for hi, lo in zip(longest, words, strict=True)]
        total = sum(room)
        grown = [
            lo + (spare * r // total if total else 0) for lo, r in zip(words, room, strict=True)
        ]
        for column, w in zip(table.columns, grown, strict=True):
            column.width = w
        yield table

    @staticmethod
    def _grid(table: Table, longest: list[int]) -> Table:
        """The table without its first column and borders: the values of the stacked form."""
        grid = Table(box=None, padding=(0, 1), header_style=table.header_style)
        grid.add_column("", width=2)  # the values sit indented under their row's name
        for column, w in zip(table.columns[1:], longest[1:], strict=True):
            grid.add_column(
                column.header, justify=column.justify, style=column.style, width=w, no_wrap=True
            )
        cells = [list(c.cells) for c in table.columns[1:]]
        for r, row in enumerate(table.rows):
            grid.add_row("", *(col[r] for col in cells), style=row.style)
        return grid

    def _stacked_grid(
        self, table: Table, grid: Table, console: Console, options: ConsoleOptions
    ) -> Iterator[RenderableType | Segment]:
        """Each row's name on a line of its own, its values under it, aligned in columns."""
        lines = console.render_lines(grid, options, pad=False)
        heads = max((len(_plain(c.header).split("\n")) for c in table.columns[1:]), default=1)
        if table.title:
            yield Text(_plain(table.title), style="bold")
        for line in lines[:heads]:
            yield from line
            yield Segment.line()
        at = heads
        names = list(table.columns[0].cells)
        values = [list(c.cells) for c in table.columns[1:]]
        for r, row in enumerate(table.rows):
            tall = max((len(_plain(col[r]).split("\n")) for col in values), default=1)
            yield Text(_plain(names[r]), style=row.style or "", overflow="fold")
            if any(_plain(col[r]).strip() for col in values):
                for line in lines[at : at + tall]:
                    yield from line
                    yield Segment.line()
            at += tall
        if table.caption:
            yield Text(_plain(table.caption), style="dim")

    @staticmethod
    def _stacked(table: Table) -> Iterator[RenderableType]:
        if table.title:
            yield Text(_plain(table.title), style="bold")
        columns = table.columns
        headers = [" ".join(_plain(c.header).split()) for c in columns]
        cells = [list(c.cells) for c in columns]
        for r, row in enumerate(table.rows):
            label = _plain(cells[0][r]) if columns else ""
            indent = len(label) - len(label.lstrip(" "))
            first, *more = label.split("\n")
            yield Text(first, style=row.style or "", overflow="fold")
            for line in more:
                yield Padding(
                    Text(line.strip(), overflow="fold"), (0, 0, 0, indent + 2), expand=False
                )
            pairs = Text(overflow="fold")
            for k in range(1, len(columns)):
                value = " ".join(_plain(cells[k][r]).split())
                if not value:
                    continue
                if pairs:
                    pairs.append("  ·  ", style="dim")
                if headers[k]:
                    pairs.append(headers[k] + " ", style="dim")
                pairs.append(value)
            if pairs:
                yield Padding(pairs, (0, 0, 0, indent + 4), expand=False)
            if row.end_section and r + 1 < len(table.rows):
                yield Text("")
        if table.caption:
            yield Text(_plain(table.caption), style="dim")


def _plain(cell: Any) -> str:
    """A table cell's text as shown: str cells are rich markup, Text cells are literal."""
    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        return Text.from_markup(cell).plain
    return str(cell)
