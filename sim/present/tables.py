"""Tables as people read them, shared by the terminal and the HTML report."""

from __future__ import annotations

import math

from sim.analysis.cells import split
from sim.analysis.compare import Comparison
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
