"""The report's sections for analysis folders: sensitivity indices, lever sweeps, PRIM boxes;
and the section on the posterior a comparison's studies drew their parameters from.

Each section is built from the folder as written (`sim.analysis.saved.load`): what was run, the
table, and the figure, embedded. All text from scenarios and settings is escaped.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Sequence
from dataclasses import replace
from html import escape
from typing import Any

from sim.analysis.compare import CONFIDENCE
from sim.analysis.saved import Saved
from sim.analysis.sensitivity import TOP
from sim.analysis.sweep import SUMMARY_COLUMNS
from sim.present.drivers_section import drivers_section
from sim.present.numbers import number
from sim.scenario.sources import KEY, cited, is_key
from sim.study.results import Results


def about(saved: Saved) -> tuple[str, ...]:
    """The outcomes an analysis is about: a sensitivity's or a sweep's outcomes, the outcome
    names a discovery's condition reads."""
    if saved.kind == "discover":
        return tuple(
            dict.fromkeys(
                re.findall(r"[A-Za-z_][A-Za-z0-9_]*", str(saved.settings.get("where", "")))
            )
        )
    return tuple(str(o) for o in saved.settings.get("outcomes", []))


def section(saved: Saved, figure: bool = True, outcomes: Sequence[str] | None = None) -> str:
    """One analysis as an HTML section: heading, settings, table, and its figure.

    With `outcomes` (the report's --outcome), only those outcomes' tables are shown, and ""
    when the analysis is about none of them; its saved figure is shown only when it holds no
    other outcome (it is an image of the whole analysis), and a note says so otherwise."""
    note = ""
    if outcomes is not None:
        mine = about(saved)
        keep = [o for o in mine if o in set(outcomes)]
        if not keep:
            return ""
        if saved.kind != "discover" and len(keep) < len(mine):
            settings = {**saved.settings, "outcomes": keep}
            saved = replace(saved, manifest={**saved.manifest, "settings": settings})
            if figure and saved.png is not None:
                note = (
                    "<p class='legend'>The figure of this analysis is left out: it also shows "
                    f"outcomes not asked for ({escape(', '.join(o for o in mine if o not in keep))});"
                    f" it is <code>{escape(str(saved.folder))}</code>'s image.</p>"
                )
                figure = False
    body = {
        "sensitivity": _sensitivity,
        "sweep": _sweep,
        "discover": _discover,
        "drivers": drivers_section,
    }[saved.kind]
    heading, what, tables = body(saved)
    tables += note
    img = ""
    if figure and saved.png is not None:
        data = base64.b64encode(saved.png).decode("ascii")
        img = f'<figure><img alt="{escape(heading)}" src="data:image/png;base64,{data}"></figure>'

    scenario = saved.manifest.get("scenario", {})
    facts = (
        f"Folder <code>{escape(str(saved.folder))}</code>; scenario "
        f"<code>{escape(saved.scenario)}</code>"
        + (
            f", sha256 <code>{escape(str(scenario['sha256'])[:16])}…</code>"
            if scenario.get("sha256")
            else ""
        )
        + f"; made by sim {escape(str(saved.manifest.get('versions', {}).get('sim', '?')))}"
        f" on {escape(str(saved.manifest.get('finished', '?')))}."
    )
    return f'<h2>{escape(heading)}</h2><p>{what}</p>{tables}{img}<p class="legend">{facts}</p>'


def _sensitivity(saved: Saved) -> tuple[str, str, str]:
    s = saved.settings
    outcomes = [str(o) for o in s.get("outcomes", [])]
    rows = saved.table.to_pylist()
    confidence = float(s.get("confidence", CONFIDENCE))
    base = s.get("baseline") or {}
    labels = s.get("explained") or {}
    shown = [str(labels.get(o, o)) for o in outcomes]
    heading = (
        f"Sensitivity: what drives {', '.join(shown)}"
        if base
        else f"Sensitivity: what drives {', '.join(outcomes)} in {saved.scenario}"
    )
    paired = (
        f"The indices explain the paired difference {escape(', '.join(shown))}: both "
        f"scenarios ran the same design rows with the same noise (baseline "
        f"<code>{escape(str(base.get('name', '?')))}</code>, sha256 "
        f"<code>{escape(str(base.get('sha256', ''))[:16])}…</code>). "
        if base
        else ""
    )
    what = paired + (
        f"Sobol' indices over {len(s.get('parameters', []))} uncertain parameters, each drawn "
        f"from its own distribution: N = {int(s.get('runs', 0)):,} base samples, "
        f"{int(s.get('evaluations', 0)):,} runs, seed {escape(str(s.get('seed')))}. "
        "<b>S1</b> (first order) is the share of the outcome's variance a parameter explains "
        "on its own; <b>ST</b> (total) adds every interaction it takes part in. Brackets: "
        f"{confidence:.0%} intervals, Student's t over {int(s.get('replicates', 0))} "
        "independently scrambled replicates. Flow noise is common to "
        "the runs of a sample, so the variance no parameter explains is noise and "
        "interactions."
    )
    parts = []
    for outcome in outcomes:
        mine = [r for r in rows if r["outcome"] == outcome]
        explained = sum(float(r["first"]) for r in mine)
        unit = s.get("units", {}).get(outcome, "")
        body = "".join(
            f"<tr><td class='num'>{r['rank']}</td><td>{escape(str(r['parameter']))}</td>"
            f"<td class='num'>{r['total']:.3f}<br><span class='ci'>"
            f"[{r['total_low']:.3f}, {r['total_high']:.3f}]</span></td>"
            f"<td class='num'>{r['first']:.3f}<br><span class='ci'>"
            f"[{r['first_low']:.3f}, {r['first_high']:.3f}]</span></td>"
            f"<td>{escape(str(r.get('distribution', '')))}</td></tr>"
            for r in mine[:TOP]
        )
        more = (
            f"<p class='legend'>… and {len(mine) - TOP} more parameters, in "
            "<code>sensitivity.parquet</code>.</p>"
            if len(mine) > TOP
            else ""
        )
        parts.append(
            f"<h3>{escape(str(labels.get(outcome, outcome)))}{_unit(unit)}</h3>"
            "<div class='wide'><table><tr><th>#</th><th>parameter</th><th>ST (total)</th>"
            f"<th>S1 (first order)</th><th>distribution</th></tr>{body}</table></div>{more}"
            f"<p class='legend'>First-order indices sum to {explained:.2f}.</p>"
        )
    return heading, what, "".join(parts)


def _sweep(saved: Saved) -> tuple[str, str, str]:
    s = saved.settings
    parameter = str(s.get("parameter", "?"))
    by = str(s.get("by", ""))
    rows = saved.table.to_pylist()
    outside = [str(v) for v in s.get("outside_prior", [])]
    by_outside = [str(v) for v in s.get("by_outside_prior", [])]
    if by:
        heading = f"Sweep: outcomes of {saved.scenario} against {parameter}, by {by}"
        what = (
            f"The scenario run at each of {len(s.get('values', []))} values of "
            f"<b>{escape(parameter)}</b> (its prior: {escape(str(s.get('prior', '')))}) for "
            f"each of {len(s.get('by_values', []))} values of <b>{escape(by)}</b> (its prior: "
            f"{escape(str(s.get('by_prior', '')))}), {int(s.get('runs', 0)):,} runs per grid "
            f"point, seed {escape(str(s.get('seed')))}, {escape(str(s.get('sampler', '')))}. "
            "Every other parameter and noise path draws the same values at every point "
            "(common random numbers), so the curves show the two levers' effect alone."
        )
    else:
        heading = f"Sweep: outcomes of {saved.scenario} against {parameter}"
        what = (
            f"The scenario run at each of {len(s.get('values', []))} values of "
            f"<b>{escape(parameter)}</b> (its prior: {escape(str(s.get('prior', '')))}), "
            f"{int(s.get('runs', 0)):,} runs per value, seed {escape(str(s.get('seed')))}, "
            f"{escape(str(s.get('sampler', '')))}. Every other parameter and noise path draws "
            "the same values at every point (common random numbers), so the curves show the "
            "lever's effect alone."
        )
    if isinstance(drawn := s.get("posterior"), dict):
        what += (
            f" The parameters {escape(', '.join(map(str, drawn.get('parameters', []))))} came "
            f"from the posterior in <code>{escape(str(drawn.get('folder', '?')))}</code> "
            f"(sha256 <code>{escape(str(drawn.get('sha256', ''))[:12])}…</code>), run <i>i</i> "
            "of every point taking the same posterior sample."
        )
    for name, values in ((parameter, outside), (by, by_outside)):
        if values:
            prior = f"{escape(name)}'s prior" if by else "the prior"
            what += f" Outside what {prior} draws (extrapolated): {escape(', '.join(values))}."
    by_head = f"<th>{escape(by)}</th>" if by else ""
    parts = []
    for outcome in s.get("outcomes", []):
        mine = [r for r in rows if r["outcome"] == outcome]
        unit = mine[0]["unit"] if mine else ""
        body = "".join(
            "<tr>"
            + (f"<td>{escape(str(r['by_label']))}</td>" if by else "")
            + f"<td>{escape(str(r['label']))}</td>"
            + "".join(
                f"<td class='num'>{escape(number(_float(r[k])))}</td>" for k in SUMMARY_COLUMNS
            )
            + "</tr>"
            for r in mine
        )
        parts.append(
            f"<h3>{escape(str(outcome))}{_unit(unit)}</h3><div class='wide'><table><tr>"
            f"{by_head}<th>{escape(parameter)}</th>"
            + "".join(f"<th>{k}</th>" for k in SUMMARY_COLUMNS)
            + f"</tr>{body}</table></div>"
        )
    return heading, what, "".join(parts)


def _discover(saved: Saved) -> tuple[str, str, str]:
    s = saved.settings
    where = str(s.get("where", ""))
    heading = f"Discovery: where {where} in {saved.scenario}"
    runs, cases = int(s.get("runs", 0)), int(s.get("cases", 0))
    what = (
        f"PRIM over {len(s.get('parameters', []))} sampled parameters of "
        f"<code>{escape(str(s.get('source', {}).get('folder') or saved.scenario))}</code>: "
        f"{cases:,} of {runs:,} runs are cases (<code>{escape(where)}</code>, base rate "
        f"{_share(cases / runs if runs else math.nan)}). <b>Coverage</b>: share of all cases "
        "inside the box; <b>density</b>: share of the box's runs that are cases. "
        "'Without': the box's density and coverage if that restriction were dropped; qp: the "
        "chance that a box restricted on that parameter alone is this dense by luck."
    )
    rows = saved.table.to_pylist()
    parts = []
    for number_ in sorted({int(r["box"]) for r in rows}):
        mine = [r for r in rows if int(r["box"]) == number_]
        head = mine[0]
        body = "".join(
            f"<tr><td>{escape(str(r['parameter']))}</td>"
            f"<td class='num'>{escape(number(r['low']))} – {escape(number(r['high']))}"
            f"{escape(_unit_text(str(r['unit'])))}</td>"
            f"<td class='num'>{escape(number(r['full_low']))} – "
            f"{escape(number(r['full_high']))}</td>"
            f"<td class='num'>{_share(r['density_without'])}</td>"
            f"<td class='num'>{_share(r['coverage_without'])}</td>"
            f"<td class='num'>{escape(_p(r['qp']))}</td></tr>"
            for r in mine
            if r["parameter"]
        )
        parts.append(
            f"<h3>Box {number_}: coverage {_share(head['coverage'])}, density "
            f"{_share(head['density'])}, {_share(head['mass'])} of the runs</h3>"
            "<div class='wide'><table><tr><th>parameter</th><th>box</th><th>all runs</th>"
            "<th>density without</th><th>coverage without</th><th>qp</th></tr>"
            f"{body}</table></div>"
        )
    return heading, what, "".join(parts)


def _p(p: Any) -> str:
    p = _float(p)
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _float(x: Any) -> float:
    return math.nan if x is None else float(x)


def _share(x: Any) -> str:
    x = _float(x)
    return f"{x:.1%}" if math.isfinite(x) else "–"


def _unit(unit: str) -> str:
    return f" <span class='what'>({escape(unit)})</span>" if unit not in ("", "1") else ""


def _unit_text(unit: str) -> str:
    return f" {unit}" if unit not in ("", "1") else ""


# -- the posterior a comparison's studies drew their parameters from (`sim run --posterior`) --


def posterior_section(labels: Sequence[str], posteriors: Sequence[dict[str, Any] | None]) -> str:
    """Which scenarios drew parameters from a posterior, which one (folder, short hash, the
    calibration's method and effective sample size), and each posterior's observation table:
    observed against the posterior predictive p05/p50/p95, z, and whether a held-out
    observation's 90% predictive interval covers it. Empty when every study drew from priors."""
    if not any(p is not None for p in posteriors):
        return ""
    groups: dict[str, list[str]] = {}
    info: dict[str, dict[str, Any]] = {}
    for label, p in zip(labels, posteriors, strict=True):
        if p is not None:
            groups.setdefault(str(p.get("sha256")), []).append(label)
            info[str(p.get("sha256"))] = p
    priors = [label for label, p in zip(labels, posteriors, strict=True) if p is None]
    parts = ["<h2>Parameters from a posterior</h2>"]
    if len(groups) > 1 or priors:
        parts.append(
            '<p class="pairing unpaired">The scenarios did not all draw from the same '
            "posterior"
            + (f" ({escape(', '.join(priors))} from priors)" if priors else "")
            + ": run <i>i</i> is not the same world in each, so the differences mix the "
            "scenarios' effect with the change of beliefs.</p>"
        )
    for sha, who in groups.items():
        p = info[sha]
        held = [str(n) for n in p.get("parameters", [])]
        usual = [str(n) for n in p.get("drawn_as_usual", [])]
        method = _dict(p.get("method"))
        calibrated = _dict(p.get("scenario"))
        ess = _float(p.get("ess"))
        parts.append(
            f"<h3>{escape(', '.join(who))}: posterior <code>{escape(sha[:12])}…</code></h3>"
            f"<p>{len(held)} parameter{'s' * (len(held) != 1)} drawn jointly from the "
            f"calibration in <code>{escape(str(p.get('folder', '?')))}</code> (sha256 "
            f"<code>{escape(sha)}</code>"
            + (
                f", calibrated on scenario <code>{escape(str(calibrated['name']))}</code>"
                if calibrated.get("name")
                else ""
            )
            + (f", method {escape(str(method['name']))}" if method.get("name") else "")
            + (f", effective sample size {escape(number(ess))}" if math.isfinite(ess) else "")
            + f"): {escape(', '.join(held))}. "
            "Run <i>i</i> takes posterior sample J(i), chosen by the seed and <i>i</i> alone "
            "(its row is the <code>posterior_sample</code> column of runs.parquet), so every "
            "scenario run on this posterior with the same seed takes the same sample."
            + (f" Drawn from their priors as usual: {escape(', '.join(usual))}." if usual else "")
            + "</p>"
        )
        parts.append(_observations(p.get("observations")))
    return "".join(parts)


def _dict(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _observations(data: Any) -> str:
    if not isinstance(data, dict) or not data:
        return "<p class='legend'>The calibration recorded no observation table.</p>"
    body = []
    for name, o in data.items():
        if not isinstance(o, dict):
            continue
        covered = o.get("covered")
        unit = str(o.get("unit") or "")
        body.append(
            f'<tr class="{"differs" if covered is False else ""}">'
            f"<td>{escape(str(name))}</td><td>{escape(str(o.get('use', '')))}</td>"
            f"<td class='num'>{escape(number(_float(o.get('observed'))))}"
            f"{escape(_unit_text(unit))}</td>"
            f"<td class='num'>{escape(number(_float(o.get('sd'))))}</td>"
            + "".join(
                f"<td class='num'>{escape(number(_float(o.get(k))))}</td>"
                for k in ("p05", "p50", "p95", "z")
            )
            + f"<td>{'yes' if covered is True else 'no' if covered is False else ''}</td>"
            f"<td>{escape(str(o.get('source', '')))}</td></tr>"
        )
    return (
        "<div class='wide'><table><tr><th>observation</th><th>use</th><th>observed</th>"
        "<th>sd</th><th>p05</th><th>p50</th><th>p95</th><th>z</th><th>covered</th>"
        f"<th>source</th></tr>{''.join(body)}</table></div>"
        "<p class='legend'>p05, p50, p95: the posterior predictive distribution (simulated "
        "value plus observation error); z: (observed − predictive mean) / predictive sd; "
        "covered: for held-out observations (<code>use: validate</code>), whether the 90% "
        "predictive interval holds the observed value.</p>"
    )


# -- sources ------------------------------------------------------------------------------


def sources_section(results: Sequence[Results]) -> str:
    """The sources the compared scenarios cite, as their results folders recorded them.

    Each entry gets an anchor (`source-KEY`), which the parameters' citations link to. A key
    cited but not recorded (results written before sim recorded sources, or a scenario that
    names no sources file) is listed as such rather than left out.
    """
    recorded: dict[str, dict[str, Any]] = {}
    keys: dict[str, None] = {}
    for res in results:
        for key, entry in (res.manifest.get("sources") or {}).items():
            if isinstance(entry, dict):
                recorded.setdefault(str(key), entry)
        keys.update(dict.fromkeys(k for text in _source_texts(res) for k in cited(text)))
    keys.update(dict.fromkeys(recorded))
    if not keys:
        return ""
    rows = []
    for key in keys:
        entry = recorded.get(key)
        anchor = f'<td id="source-{escape(key)}"><b>[{escape(key)}]</b></td>'
        if entry is None:
            rows.append(
                f'{anchor}<td colspan="4"><i>cited, but no entry is recorded in the results '
                "(the scenario names no sources file, or the results predate it)</i></td>"
            )
            continue
        title = escape(str(entry.get("title", "")))
        url = str(entry.get("url") or "")
        if url.startswith(("https://", "http://")):
            title = f'<a href="{escape(url)}">{title}</a>'
        rows.append(
            f"{anchor}<td>{title}<br><span class='what'>{escape(str(entry.get('publisher', '')))}"
            f"</span></td><td>{escape(str(entry.get('date', '')))}</td>"
            f"<td>{escape(str(entry.get('figures', '')))}</td>"
            f"<td>{escape(str(entry.get('reliability', '')))}</td>"
        )
    return (
        '<h2 id="sources">Sources</h2><p>Every source the parameters, flows and events above '
        "cite by key, as recorded when the studies ran: what figure is taken from it and how "
        "far it can be trusted.</p>"
        '<div class="wide"><table><tr><th>key</th><th>source</th><th>date</th>'
        "<th>figures taken</th><th>reliability</th></tr>"
        + "".join(f"<tr>{r}</tr>" for r in rows)
        + "</table></div>"
    )


def link_citations(html_text: str) -> str:
    """Escaped source text with each [KEY] linked to its entry in the Sources section."""
    return _CITATION.sub(
        lambda m: f'<a href="#source-{m[1]}">[{m[1]}]</a>' if is_key(m[1]) else m[0], html_text
    )


_CITATION = re.compile(rf"\[({KEY})\]")


def _source_texts(res: Results) -> list[str]:
    scenario = res.manifest.get("scenario") or {}
    texts = [str(p.get("source") or "") for p in res.parameters.values()]
    for section in ("stocks", "flows", "events"):
        for spec in (scenario.get(section) or {}).values():
            if isinstance(spec, dict):
                texts.append(str(spec.get("source") or ""))
                noise = spec.get("noise")
                if isinstance(noise, dict):
                    texts.append(str(noise.get("source") or ""))
    return texts


# -- stale analyses -----------------------------------------------------------------------


def stale_note(saved: Saved, reason: str) -> str:
    """What the report shows in place of an analysis it leaves out as stale."""
    return (
        f"<h2>Left out: {escape(saved.kind)} of {escape(saved.scenario)}</h2>"
        f'<p class="given">The {escape(saved.kind)} analysis in '
        f"<code>{escape(str(saved.folder))}</code> is not shown: {escape(reason)}. Its numbers "
        "would describe another study than the one in this report; run the analysis again "
        "to include it.</p>"
    )
