"""A drivers analysis (`sim drivers`) as a report section: heading, what was run, the tables.

`drivers_section(saved)` returns what each of `sim.present.report_sections`' section builders
returns, (heading, what, tables) as HTML, so wiring it into the report is one entry in that
module's `section` table (and `sim.analysis.saved.REPORTED`). All text from scenarios and
settings is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from sim.analysis.compare import CONFIDENCE
from sim.analysis.drivers import TOP
from sim.analysis.saved import Saved


def drivers_section(saved: Saved) -> tuple[str, str, str]:
    """The section's heading, its paragraph on what was run, and a table per outcome."""
    s = saved.settings
    outcomes = [str(o) for o in s.get("outcomes", [])]
    labels = s.get("explained") or {}
    shown = [str(labels.get(o, o)) for o in outcomes]
    rows = saved.table.to_pylist()
    confidence = float(s.get("confidence", CONFIDENCE))
    baseline = str(s.get("baseline") or "")
    heading = (
        f"Drivers: what decides {', '.join(shown)}"
        if baseline
        else f"Drivers: what decides {', '.join(outcomes)} in {saved.scenario}"
    )
    source = s.get("source") or {}
    folders = [str((source.get(k) or {}).get("folder") or "?") for k in ("b", "a") if k in source]
    paired = (
        f"The indices explain the paired difference, run by run, of "
        f"<code>{escape(folders[0])}</code> and <code>{escape(folders[-1])}</code> "
        f"({escape(str(s.get('pairing', '')))}). "
        if baseline
        else f"From the runs of <code>{escape(folders[0])}</code>. "
    )
    posterior = s.get("posterior") or {}
    drawn = (
        f"{len(posterior.get('parameters', []))} parameters were drawn from the posterior "
        f"<code>{escape(str(posterior.get('sha256', ''))[:12])}…</code>, so inputs are "
        "correlated. "
        if posterior
        else ""
    )
    what = (
        paired
        + drawn
        + f"First-order indices from given data over {len(s.get('inputs', []))} inputs: "
        "<b>η²</b> = Var(E[Y | input]) / Var(Y), the share of the variance that knowing the "
        "input alone removes, from equal-count bins on the input's quantiles, bias-corrected "
        "(Plischke, Borgonovo &amp; Smith 2013). Brackets: "
        f"{confidence:.0%} bootstrap intervals. <b>floor</b>: what an input that does not "
        "matter scores (the input shuffled). <b>Not a variance decomposition</b>: correlated "
        "inputs share the credit, and the indices need not sum to 1."
    )
    parts = []
    for outcome in outcomes:
        mine = [r for r in rows if r["outcome"] == outcome]
        unit = str(s.get("units", {}).get(outcome, ""))
        body = "".join(_row(r) for r in mine[:TOP])
        more = (
            f"<p class='legend'>… and {len(mine) - TOP} more inputs, in "
            "<code>drivers.parquet</code>.</p>"
            if len(mine) > TOP
            else ""
        )
        of_unit = f" <span class='what'>({escape(unit)})</span>" if unit not in ("", "1") else ""
        parts.append(
            f"<h3>{escape(str(labels.get(outcome, outcome)))}{of_unit}</h3>"
            "<div class='wide'><table><tr><th>input</th><th>η²</th><th>floor</th>"
            f"<th>Spearman</th><th>drawn from</th></tr>{body}</table></div>{more}"
        )
    return heading, what, "".join(parts)


def _row(r: dict[str, Any]) -> str:
    """One input's row; an input not above its noise floor is greyed."""
    style = "" if r["above_floor"] else " style='color:#888'"
    return (
        f"<tr{style}><td>{escape(str(r['input']))}</td>"
        f"<td class='num'>{r['index']:.3f}<br><span class='ci'>"
        f"[{r['low']:.3f}, {r['high']:.3f}]</span></td>"
        f"<td class='num'>{r['floor']:.3f}</td>"
        f"<td class='num'>{r['spearman']:+.2f}</td>"
        f"<td>{escape(str(r.get('distribution', '')))}</td></tr>"
    )
