"""A calibration as people read it: its parameter and observation tables, and its figure.

The tables read a calibration folder's manifest (`sim.analysis.calibrate.manifest`), so the
terminal after `sim calibrate`, and anything showing a posterior's folder later, print the
same cells. The figure reads the particles themselves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from sim.analysis.calibrate import Calibration
from sim.present.figures import literal_text
from sim.present.numbers import number

TOP = 15  # parameters listed and drawn: the ones that moved most


def moved(entry: dict[str, Any]) -> float:
    """How far a parameter moved from its prior: the larger of how much its 90% interval
    narrowed and how far its median shifted, both as shares of the prior's 90% width."""
    pr, po = entry["prior_quantiles"], entry["posterior_quantiles"]
    width = pr["p95"] - pr["p05"]
    if not width > 0:
        return 0.0
    return max(abs(entry.get("narrowed") or 0.0), abs(po["p50"] - pr["p50"]) / width)


def ranked_parameters(manifest: dict[str, Any]) -> list[str]:
    """The manifest's parameters, those that moved most first."""
    params = manifest.get("parameters", {})
    return sorted(params, key=lambda k: -moved(params[k]))


def parameter_cells(manifest: dict[str, Any], top: int = TOP) -> list[list[str]]:
    """Head row, then a row per parameter (the `top` that moved most): prior and posterior
    p05/p50/p95, and how much the 90% interval narrowed."""
    head = [
        "parameter",
        "prior p05",
        "p50",
        "p95",
        "posterior p05",
        "p50",
        "p95",
        "narrowed",
    ]
    rows = [head]
    params = manifest.get("parameters", {})
    for name in ranked_parameters(manifest)[:top]:
        e = params[name]
        pr, po = e["prior_quantiles"], e["posterior_quantiles"]
        unit = e.get("unit") or "1"
        narrowed = e.get("narrowed")
        rows.append(
            [
                name + (f" ({unit})" if unit != "1" else ""),
                number(pr["p05"]),
                number(pr["p50"]),
                number(pr["p95"]),
                number(po["p05"]),
                number(po["p50"]),
                number(po["p95"]),
                "–" if narrowed is None else f"{100 * narrowed:.0f}%",
            ]
        )
    return rows


def observation_cells(manifest: dict[str, Any]) -> list[list[str]]:
    """Head row, then a row per observation: use, observed ± sd, the posterior predictive
    p05/p50/p95, z and, for held-out ones, whether the 90% predictive interval covers it."""
    rows = [["observation", "use", "observed ± sd", "pred. p05", "p50", "p95", "z", "covered"]]
    for name, o in manifest.get("observations", {}).items():
        unit = o.get("unit") or "1"
        z = o.get("z")
        covered = o.get("covered")
        rows.append(
            [
                name + (f" ({unit})" if unit != "1" else ""),
                o["use"],
                f"{number(o['observed'])} ± {number(o['sd'])}",
                number(o.get("p05")),
                number(o.get("p50")),
                number(o.get("p95")),
                "–" if z is None else f"{z:+.2f}".replace("-", "−"),
                "" if covered is None else ("yes" if covered else "NO"),
            ]
        )
    return rows


def held_out_summary(manifest: dict[str, Any]) -> str | None:
    """'3 of 5 held-out observations inside their 90% predictive interval', or None."""
    held = [o for o in manifest.get("observations", {}).values() if o.get("use") == "validate"]
    if not held:
        return None
    inside = sum(1 for o in held if o.get("covered"))
    return (
        f"{inside} of {len(held)} held-out observation{'s' if len(held) != 1 else ''} inside "
        "the 90% posterior predictive interval"
    )


@literal_text
def calibration_figure(cal: Calibration, manifest: dict[str, Any], top: int = 6) -> Figure:
    """Prior vs posterior marginals of the parameters that moved most (weighted histograms on
    the prior's draws' range), and each observation's 90% posterior predictive interval against
    its observed value ± 1.645 sd, held-out ones marked."""
    names = ranked_parameters(manifest)[:top]
    obs = list(manifest.get("observations", {}).items())
    cols = 3
    rows = (len(names) + cols - 1) // cols
    fig = Figure(figsize=(11, 2.6 * rows + 0.45 * len(obs) + 1.5), layout="constrained")
    grid = fig.add_gridspec(rows + 1, cols, height_ratios=[*([2.6] * rows), 0.45 * len(obs) + 1])
    for i, name in enumerate(names):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        prior = cal.priors[name]
        u = (np.arange(4000) + 0.5) / 4000  # the prior by its quantiles: no sampling noise
        draws = prior.ppf(u)
        post = cal.values[name]
        low, high = np.percentile(np.concatenate([draws, post]), [0.5, 99.5])
        bins: Any = np.linspace(low, high, 41) if high > low else 10
        ax.hist(draws, bins=bins, density=True, color="0.75", label="prior")
        ax.hist(post, bins=bins, weights=cal.weight, density=True, alpha=0.7, label="posterior")
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
        if i == 0:
            ax.legend(fontsize=7)
    ax = fig.add_subplot(grid[rows, :])
    for k, (_, o) in enumerate(obs):
        y = len(obs) - 1 - k
        if o.get("p05") is None:
            continue
        scale = abs(o["observed"]) or 1.0
        held = o["use"] == "validate"
        ax.plot([o["p05"] / scale, o["p95"] / scale], [y, y], color="C1" if held else "C0", lw=4)
        ax.plot([o["p50"] / scale], [y], "|", color="k", ms=10)
        err = 1.645 * o["sd"] / scale
        ax.errorbar(
            [1.0], [y], xerr=[[err], [err]], fmt="D" if held else "o", color="k", ms=5, capsize=3
        )
    ax.set_yticks(range(len(obs)))
    ax.set_yticklabels(
        [f"{n} (held out)" if o["use"] == "validate" else n for n, o in reversed(obs)], fontsize=8
    )
    ax.axvline(1.0, color="0.8", lw=0.8, zorder=0)
    ax.set_xlabel(
        "relative to the observed value: posterior predictive 90% (bar; orange = held out), "
        "observed ± 1.645 sd (black)",
        fontsize=8,
    )
    ax.tick_params(axis="x", labelsize=8)
    fig.suptitle(f"{cal.scenario}: calibration (ESS {cal.ess:,.0f} of {cal.n:,})", fontsize=11)
    return fig
