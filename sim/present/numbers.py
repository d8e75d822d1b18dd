"""Numbers as people read them: significant figures, signs, intervals, p-values."""

from __future__ import annotations

import math


def number(x: float | None, signed: bool = False) -> str:
    """A number for a table: 3 significant figures, thousands as k/M/bn, "–" when missing."""
    if x is None or not math.isfinite(x):
        return "–"
    sign = "+" if signed and x > 0 else ("−" if x < 0 else "")
    a = abs(x)
    for scale, suffix in ((1e12, "tn"), (1e9, "bn"), (1e6, "M"), (1e3, "k")):
        if a >= scale:
            return f"{sign}{a / scale:.3g}{suffix}"
    return f"{sign}{a:.3g}"


def interval(low: float, high: float) -> str:
    """A confidence interval as "[low, high]"."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return ""
    return f"[{number(low)}, {number(high)}]"


def pvalue(p: float) -> str:
    """A p-value as people quote it: "p<0.001" or "p=0.03"."""
    if not math.isfinite(p):
        return "p –"
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"


# -- internals ------------------------------------------------------------------------------
