"""The report's opening for a decision-maker: the differences that matter, in sentences.

`findings(comparison)` ranks the outcomes by how far apart the scenarios put them — the mean
difference in standard deviations of the first scenario's outcome, so outcomes in different
units compare — and says each one plainly: how often one scenario is higher or lower run by
run (paired runs) or by chance (unpaired), the average difference with its interval, and
whether the runs can tell it from zero. Threshold probabilities (`--threshold`) are said as
"P(X) is 28% against 23%". `summary_figure` draws the same ranking as one small chart.
Outcomes identical in every paired run are left out (the report lists them once, folded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from matplotlib.figure import Figure

from sim.analysis.compare import Comparison, Difference, Threshold
from sim.present.figures import COLORS, DPI, literal_text
from sim.present.numbers import number

TOP = 6  # sentences in the summary: what a reader takes in before the detail


@dataclass(frozen=True)
class Finding:
    """One outcome's difference between two scenarios, ranked and said in words."""

    outcome: str
    a: str
    b: str
    effect: float  # mean difference / sd of the outcome in scenario a (inf if a has no spread)
    low: float  # the interval of `effect`
    high: float
    sentence: str


def findings(comparison: Comparison, top: int = TOP) -> list[Finding]:
    """The `top` outcome differences that are largest relative to the outcome's spread."""
    same = set(comparison.identical)
    out = []
    for d in comparison.differences:
        if d.outcome in same or not math.isfinite(d.mean):
            continue
        sd = _spread(comparison, d)
        effect = (
            d.mean / sd if sd > 0 else (0.0 if d.mean == 0 else math.copysign(math.inf, d.mean))
        )
        low = d.mean_low / sd if sd > 0 else effect
        high = d.mean_high / sd if sd > 0 else effect
        out.append(Finding(d.outcome, d.a, d.b, effect, low, high, _sentence(d, comparison)))
    out.sort(key=lambda f: (-abs(f.effect), f.outcome))
    return out[:top]


def ranked(comparison: Comparison) -> list[str]:
    """Every outcome that differs between the scenarios, most different first, as `findings`
    ranks them (an outcome's largest |mean difference| in sds over the scenarios after the
    first). Outcomes with no finite mean difference (no run with a value in both scenarios,
    though they differ) come first: a summary sentence can't say them, a figure must."""
    same = set(comparison.identical)
    differing = [o for o in comparison.outcomes if o not in same]
    found = findings(comparison, top=len(comparison.differences))
    said = list(dict.fromkeys(f.outcome for f in found))
    unsaid = [o for o in differing if o not in set(said)]
    return unsaid + said


def threshold_sentences(comparison: Comparison) -> list[str]:
    """ "P(food_shortfall_months > 24) is 28% in war_ends against 23% in war_continues (+5
    points, 95% interval +3 to +7)." per threshold and scenario after the first."""
    return [s for t in comparison.thresholds for s in _threshold(t, comparison.confidence)]


@literal_text
def summary_figure(found: list[Finding]) -> Figure | None:
    """The findings as one small chart: each mean difference in sds with its interval."""
    finite = [f for f in found if math.isfinite(f.effect)]
    if not finite:
        return None
    fig = Figure(figsize=(7.5, 0.42 * len(finite) + 1.3), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    ys = list(range(len(finite)))[::-1]
    pairs = sorted({(f.a, f.b) for f in finite}, key=lambda p: [f.b for f in finite].index(p[1]))
    for k, (a, b) in enumerate(pairs):
        rows = [(y, f) for y, f in zip(ys, finite, strict=True) if f.b == b]
        ax.errorbar(
            [f.effect for _, f in rows],
            [y for y, _ in rows],
            xerr=[
                [max(f.effect - f.low, 0.0) for _, f in rows],
                [max(f.high - f.effect, 0.0) for _, f in rows],
            ],
            fmt="o",
            color=COLORS[(k + 1) % len(COLORS)],
            capsize=3,
            label=f"{b} − {a}",
        )
    ax.axvline(0, color="#5b6475", lw=1)
    ax.set_yticks(ys, [f.outcome for f in finite])
    ax.set_xlabel(f"mean difference, in standard deviations of the outcome in {finite[0].a}")
    ax.grid(axis="x", alpha=0.3)
    if len(pairs) > 1:
        ax.legend(loc="best", fontsize=9)
    return fig


# -- sentences ------------------------------------------------------------------------------


def _spread(comparison: Comparison, d: Difference) -> float:
    sd = comparison.summary(d.outcome, d.a).sd
    if not (math.isfinite(sd) and sd > 0):
        sd = comparison.summary(d.outcome, d.b).sd
    return sd if math.isfinite(sd) else 0.0


def _amount(x: float, unit: str, signed: bool = False) -> str:
    text = number(x, signed=signed)
    return text if unit in ("", "1") else f"{text} {unit}"


def _sentence(d: Difference, comparison: Comparison) -> str:
    name = d.outcome
    level = f"{comparison.confidence:.0%}"
    mean = _amount(d.mean, d.unit, signed=True)
    between = f"{number(d.mean_low, signed=True)} to {number(d.mean_high, signed=True)}"
    sure = d.mean_low > 0 or d.mean_high < 0
    if d.paired:
        lower = max(0.0, 1.0 - d.p_greater - d.p_equal)
        higher = d.p_greater
        way, share = ("higher", higher) if higher >= lower else ("lower", lower)
        head = f"In {_share(share)} of paired runs, {d.b} has {way} {name} than {d.a}"
        if d.p_equal >= 0.05:
            head += f" (equal in {_share(d.p_equal)})"
    else:
        head = (
            f"A random {d.b} run has a higher {name} than a random {d.a} run with probability "
            f"{_share(d.p_greater)}"
        )
    against = d.paired and (d.mean > 0) != (way == "higher") and d.mean != 0
    if sure:
        # most runs one way, the mean the other (a few large differences): say so
        tail = f"{'but ' if against else ''}on average {mean} ({level} interval {between})"
        if against:
            tail = tail.replace("on average", "on average the other way,", 1)
    else:
        runs = f"{d.n_a:,}" if d.paired else f"{d.n_a:,} and {d.n_b:,}"
        tail = (
            f"the average difference, {mean}, can't be told from zero with {runs} runs "
            f"({level} interval {between})"
        )
    return f"{head}{', ' if against and sure else ': '}{tail}."


def _threshold(t: Threshold, confidence: float) -> list[str]:
    by = {p.scenario: p for p in t.probabilities}
    out = []
    for d in t.differences:
        a, b = by[d.a], by[d.b]
        points = f"{100 * d.diff:+.0f} points, {confidence:.0%} interval "
        points += f"{100 * d.low:+.0f} to {100 * d.high:+.0f}"
        how = "paired runs" if d.paired else "unpaired runs"
        out.append(
            f"P({t.condition}) is {_share(b.p)} in {d.b} against {_share(a.p)} in {d.a} "
            f"({points}; {how})."
        )
    return out


def _share(p: float) -> str:
    """A probability as a reader quotes it: whole percent, but never 0% or 100% unless exact."""
    if not math.isfinite(p):
        return "–"
    if 0 < p < 0.005:
        return "under 1%"
    if 0.995 < p < 1:
        return "over 99%"
    return f"{p:.0%}"
