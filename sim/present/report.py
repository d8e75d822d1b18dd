"""The comparison report: one self-contained HTML page, figures embedded, nothing fetched.

It says what was run (scenarios, descriptions, seeds, runs, versions, scenario hashes), what
differs between the scenarios' inputs, the comparison table, the figures, and every parameter
with its source. All text that comes from scenarios or results is escaped, so a description
holding markup shows as text.

>>> import sim
>>> from sim.analysis.compare import compare
>>> a = sim.run(sim.load("examples/bakery.yaml"), runs=200, seed=1)
>>> page = render(compare(a, a), [a, a], figures=False)
>>> page.startswith("<!DOCTYPE html>")
True
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from html import escape, unescape
from typing import Any

from sim.analysis.cells import array_of, grouped
from sim.analysis.compare import Comparison, kept_runs
from sim.analysis.saved import Saved, stale
from sim.present.figures import fan_figure, outcome_figure, outcome_meaning, png_bytes
from sim.present.report_sections import (
    link_citations,
    posterior_section,
    sources_section,
    stale_note,
)
from sim.present.report_sections import section as analysis_section
from sim.present.summary import TOP, findings, ranked, summary_figure, threshold_sentences
from sim.present.tables import comparison_cells, threshold_cells
from sim.study.results import Results
from sim.study.store import REPORT_MARK as _MARK

REPORT_MARK = _MARK.decode()
# Rows of the report's outcome figure (an array's cells share one): as many as the summary
# has sentences, unless --outcome names what to show.
FIGURE_ROWS = TOP

_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; color: #1d2330; margin: 0; background: #f6f7f9; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 32px 60px; background: #fff;
  box-shadow: 0 0 0 1px #e3e6eb; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-top: 10px; border-top: 2px solid #e3e6eb; }
h3 { font-size: 16px; margin: 20px 0 6px; }
p, li { max-width: 900px; }
.sub { color: #5b6475; margin: 0 0 18px; }
.pairing { padding: 8px 12px; border-radius: 6px; margin: 6px 0; max-width: none; }
.paired { background: #e8f4ea; border-left: 4px solid #2e8b57; }
.unpaired { background: #fdf3e2; border-left: 4px solid #d98e04; }
.given { padding: 10px 14px; border-radius: 6px; margin: 8px 0 14px; max-width: none;
  background: #eef3fc; border-left: 4px solid #3465a4; font-size: 16px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 13.5px; }
th, td { padding: 5px 9px; border-bottom: 1px solid #e3e6eb; vertical-align: top;
  text-align: left; }
th { background: #eef1f5; font-weight: 600; white-space: nowrap; }
table.facts td { max-width: 420px; overflow-wrap: anywhere; }
tr:not(.group) td:first-child { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.group td { border-top: 2px solid #c9ced6; }
tr.diff td { background: #f3f6fb; font-weight: 600; }
tr.diff td .ci, td .ci { font-weight: 400; color: #5b6475; font-size: 12.5px; }
tr.differs td { background: #fff8e6; }
.tag { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 8px;
  background: #d98e04; color: #fff; margin-left: 6px; font-weight: 600; }
.tag.posterior { background: #3465a4; }
.what { color: #5b6475; font-size: 13px; margin-left: 8px; }
.legend { color: #444c5c; font-size: 13.5px; }
.legend li { margin: 2px 0; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: #f0f2f5; padding: 1px 4px; border-radius: 3px; overflow-wrap: anywhere; }
figure { margin: 10px 0; }
img { width: 100%; height: auto; border: 1px solid #e3e6eb; }
figure.small img { width: auto; max-width: 100%; }
#summary { background: #f3f6fb; border-left: 4px solid #3465a4; padding: 4px 18px 10px;
  margin: 14px 0; }
#summary h2 { border-top: none; margin-top: 10px; }
#summary li { margin: 4px 0; }
details.identical { margin: 10px 0 14px; }
details.identical summary { cursor: pointer; color: #3465a4; }
nav#contents ol { columns: 2; max-width: 900px; }
.wide { overflow-x: auto; }
footer { margin-top: 40px; color: #5b6475; font-size: 12.5px; }
"""


def render(
    comparison: Comparison | None,
    results: Sequence[Results],
    *,
    title: str | None = None,
    generated: str = "",
    figures: bool = True,
    analyses: Sequence[Saved] = (),
    outcomes: Sequence[str] | None = None,
) -> str:
    """The report as one HTML page; `figures=False` leaves the plots out (quicker).

    `analyses` are folders written by `sim sensitivity`, `sim sweep` and `sim discover`
    (`sim.analysis.saved.load`), each shown as a section after the comparison. With no
    comparison (None, and no results), the page holds only the analyses. `outcomes` (the
    report's --outcome) keeps only those outcomes in the analyses' sections too.
    """
    if comparison is None:
        labels = list(dict.fromkeys(a.scenario for a in analyses))
        title = title or "Analyses: " + ", ".join(labels)
    else:
        title = title or "Scenario comparison: " + " vs ".join(comparison.scenarios)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        REPORT_MARK,  # how `sim report --out` knows a file it may replace without --force
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{escape(title)}</h1>",
    ]
    detail: list[str] = []
    if comparison is not None:
        parts += [
            f'<p class="sub">{escape(_subtitle(results, generated))}</p>',
            _given(comparison),
            _summary(comparison, figures),
        ]
        detail += [
            _thresholds(comparison),
            _what_was_run(comparison, results),
            posterior_section(comparison.scenarios, _posteriors(comparison, results)),
            _differences_in_inputs(comparison, results),
            _table(comparison, results[0].outcomes),
            _reading(comparison),
        ]
        if figures:
            detail.append(_figures(comparison, results, every=outcomes is not None))
    elif generated:
        parts.append(f'<p class="sub">Generated {escape(generated)}.</p>')
    detail += [
        stale_note(a, why)
        if (why := stale(a, results))
        else analysis_section(a, figure=figures, outcomes=outcomes)
        for a in analyses
    ]
    if comparison is not None:
        detail.append(_parameters(comparison, results))
        detail.append(sources_section(results))
    contents, detail = _contents([p for p in detail if p])
    parts += [contents, *detail]
    rebuild = (
        "Every number above can be rebuilt with <code>sim compare</code> on the same "
        "results folders"
        if comparison is not None
        else "Every number above is in the analysis folders' tables"
    )
    parts += [
        f"<footer>Made by <code>sim report</code>. {rebuild}.</footer>",
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p)


# -- sections -----------------------------------------------------------------------------


def _summary(comparison: Comparison, figure: bool) -> str:
    """The opening: the differences that matter, in plain sentences, and one small chart."""
    found = findings(comparison)
    said = [f.sentence for f in found] + threshold_sentences(comparison)
    if not said:
        n = len(comparison.outcomes)
        said = [f"No outcome differs between the scenarios in any paired run ({n} compared)."]
    items = "".join(f"<li>{escape(s)}</li>" for s in said)
    differ = len(comparison.outcomes) - len(comparison.identical)
    lead = (
        f"{differ} of {len(comparison.outcomes)} outcomes differ between "
        f"{' and '.join(comparison.scenarios)}; the largest differences, relative to each "
        "outcome's spread:"
    )
    chart = summary_figure(found) if figure and found else None
    img = _img(png_bytes(chart), "The largest differences") if chart is not None else ""
    how = " ".join(f"{p.reason}." for p in comparison.pairings)
    return (
        f'<section id="summary"><h2>Summary</h2><p>{escape(lead)}</p><ul>{items}</ul>'
        f'<figure class="small">{img}</figure>'
        f'<p class="legend">{escape(how)} Intervals are {comparison.confidence:.0%} intervals '
        "for the mean difference; the detail below gives every outcome.</p></section>"
    )


def _contents(parts: list[str]) -> tuple[str, list[str]]:
    """A table of contents of the detail's sections, and the sections with anchors."""
    entries: list[tuple[str, str]] = []
    used: set[str] = set()

    def anchor(match: re.Match[str]) -> str:
        title = match.group(1)
        slug = base = (
            re.sub(r"[^a-z0-9]+", "-", unescape(re.sub(r"<[^>]+>", "", title)).lower()).strip("-")
            or "section"
        )
        k = 2
        while slug in used or slug in ("summary", "contents"):
            slug, k = f"{base}-{k}", k + 1
        used.add(slug)
        entries.append((slug, title))
        return f'<h2 id="{slug}">{title}</h2>'

    parts = [re.sub(r"<h2>(.*?)</h2>", anchor, p) for p in parts]
    if not entries:
        return "", parts
    items = "".join(f'<li><a href="#{slug}">{title}</a></li>' for slug, title in entries)
    return f'<nav id="contents"><h2>Contents</h2><ol>{items}</ol></nav>', parts


def _subtitle(results: Sequence[Results], generated: str) -> str:
    versions = results[0].manifest.get("versions", {})
    made = f"Generated {generated} by sim {versions.get('sim', '?')}. " if generated else ""
    runs = ", ".join(f"{r.n_runs:,}" for r in results)
    return f"{made}Monte Carlo runs per scenario: {runs}."


def _given(comparison: Comparison) -> str:
    """The condition the comparison is restricted to, said before any number."""
    g = comparison.given
    if g is None:
        return ""
    return (
        f'<p class="given"><b>Only the runs where <code>{escape(g.condition)}</code></b>: '
        f"{g.kept:,} of {g.of:,} runs kept (<b>{g.share:.0%}</b>). Every table and figure "
        "below is over those runs, the same runs in every scenario; the fan charts of "
        "recorded series are the exception (their bands are stored over every run).</p>"
    )


def _thresholds(comparison: Comparison) -> str:
    """P(condition | scenario) and its difference: the numbers a decision asks for first."""
    if not comparison.thresholds:
        return ""
    rows = threshold_cells(comparison)
    head = "".join(f"<th>{_cell(c)}</th>" for c in rows[0][1])
    width = len(rows[0][1])
    body = []
    for kind, cells in rows[1:]:
        if kind == "outcome":
            body.append(
                f'<tr class="group"><td colspan="{width}"><b>{escape(cells[0])}</b></td></tr>'
            )
            continue
        tds = [f"<td>{_cell(cells[0].strip())}</td>"]
        tds += [f'<td class="num">{_cell(c)}</td>' for c in cells[1:]]
        body.append(f'<tr class="{"diff" if kind == "difference" else ""}">{"".join(tds)}</tr>')
    pct = f"{comparison.confidence:.0%}"
    return (
        "<h2>Threshold probabilities</h2>"
        f'<div class="wide"><table><tr>{head}</tr>{"".join(body)}</table></div>'
        f'<ul class="legend"><li>P(condition): the share of runs where the condition holds, '
        f"with a {pct} Wilson score interval. B − A: the difference in percentage points, "
        "with Newcombe's hybrid score interval (for paired scenarios it uses the run-by-run "
        "correlation, so it is narrower when the same runs cross the threshold in both).</li>"
        "<li>These intervals measure simulation noise only, not whether the model is "
        "right.</li></ul>"
    )


def _what_was_run(comparison: Comparison, results: Sequence[Results]) -> str:
    """A column per scenario, a row per fact: reads well for the usual two to four scenarios."""
    facts: list[tuple[str, list[str]]] = [
        ("description", [escape(r.description) or "–" for r in results]),
        ("runs", [f"{r.n_runs:,}" for r in results]),
        ("seed, sampler", [f"{r.seed}, {escape(r.sampler)}" for r in results]),
        ("engine", [escape(str(r.manifest.get("engine", "?"))) for r in results]),
        (
            "scenario files",
            [
                "<br>".join(f"<code>{escape(str(f))}</code>" for f in r.manifest.get("files", []))
                or "–"
                for r in results
            ],
        ),
        (
            "results folder",
            [
                f"<code>{escape(str(r.folder))}</code>" if r.folder else "(run in memory)"
                for r in results
            ],
        ),
        (
            "scenario sha256",
            [
                f"<code>{escape(str(r.manifest.get('scenario_sha256', '–')))}</code>"
                for r in results
            ],
        ),
        (
            "started (UTC), seconds",
            [
                f"{escape(str(r.manifest.get('started', '?')))}, "
                f"{_num(r.manifest.get('wall_seconds'))} s"
                for r in results
            ],
        ),
        ("non-finite runs", [f"{int(r.manifest.get('nonfinite_runs', 0)):,}" for r in results]),
    ]
    posteriors = _posteriors(comparison, results)
    if any(p is not None for p in posteriors):
        facts.append(
            (
                "parameters from",
                [
                    f"posterior <code>{escape(str(p.get('sha256', ''))[:12])}…</code> "
                    f"({len(p.get('parameters', []))} parameters)"
                    if p is not None
                    else "priors"
                    for p in posteriors
                ],
            )
        )
    head = "".join(f"<th>{escape(label)}</th>" for label in comparison.scenarios)
    body = "".join(
        f"<tr><th>{escape(fact)}</th>{''.join(f'<td>{v}</td>' for v in values)}</tr>"
        for fact, values in facts
    )
    pairings = "".join(
        f'<p class="pairing {"paired" if p.paired else "unpaired"}">{escape(p.reason)}.</p>'
        for p in comparison.pairings
    )
    return (
        "<h2>What was run</h2>"
        f'<div class="wide"><table class="facts"><tr><th></th>{head}</tr>{body}</table></div>'
        f"{pairings}<p class='legend'>Software: {_versions(comparison, results)}</p>"
    )


def _versions(comparison: Comparison, results: Sequence[Results]) -> str:
    seen: dict[str, list[str]] = {}
    for label, res in zip(comparison.scenarios, results, strict=True):
        v = res.manifest.get("versions", {})
        text = ", ".join(f"{k} {v[k]}" for k in v)
        seen.setdefault(text or "unknown", []).append(label)
    if len(seen) == 1:
        return escape(next(iter(seen)))
    return "; ".join(f"{escape(', '.join(who))}: {escape(text)}" for text, who in seen.items())


def _differences_in_inputs(comparison: Comparison, results: Sequence[Results]) -> str:
    """Parameters, events and settings whose definitions differ between the scenarios."""
    rows = []
    for kind, names, describe in (
        ("setting", ["start", "months"], _setting_text),
        ("parameter", _union(r.parameters for r in results), _parameter_text),
        ("event", _union(_section(r, "events") for r in results), _event_text),
        ("state", _union(_section(r, "state") for r in results), _state_text),
        ("flow", _union(_section(r, "flows") for r in results), _flow_text),
    ):
        for name in names:
            texts = [describe(r, name) for r in results]
            if len(set(texts)) > 1:
                cells = "".join(f"<td>{escape(t)}</td>" for t in texts)
                rows.append(f"<tr><td>{kind}</td><td><b>{escape(name)}</b></td>{cells}</tr>")
    head = "".join(f"<th>{escape(label)}</th>" for label in comparison.scenarios)
    if not rows:
        body = (
            "<p>The scenarios define their horizon and every parameter, event, state and flow "
            "the same way.</p>"
        )
    else:
        body = (
            f'<div class="wide"><table><tr><th>kind</th><th>name</th>{head}</tr>'
            + "".join(rows)
            + "</table></div>"
        )
    return "<h2>What differs between the scenarios</h2>" + body


def _table(comparison: Comparison, outcomes: dict[str, dict[str, Any]]) -> str:
    """The comparison table of the outcomes that differ (each row also says what the outcome
    is), then the outcomes identical in every paired run, listed once and folded."""
    same = comparison.identical
    folded = _identical(comparison, outcomes) if same else ""
    differing = [o for o in comparison.outcomes if o not in same]
    if not differing:
        return "<h2>Comparison</h2>" + folded
    return _differing(comparison.select(differing), outcomes) + folded


def _identical(comparison: Comparison, outcomes: dict[str, dict[str, Any]]) -> str:
    first = comparison.scenarios[0]
    rows = []
    for name in comparison.identical:
        s = comparison.summary(name, first)
        info = outcomes[name]
        rows.append(
            f"<tr><td><b>{escape(name)}</b></td><td>{escape(outcome_meaning(info))}</td>"
            f'<td class="num">{escape(_num(s.p50))}</td>'
            f'<td class="num">{escape(_num(s.p05))} – {escape(_num(s.p95))}</td>'
            f"<td>{escape(str(info.get('unit', '')))}</td></tr>"
        )
    n = len(comparison.identical)
    return (
        f'<details class="identical"><summary>{n} outcome{"s" * (n != 1)} identical in every '
        f"paired run of every scenario (not drawn)</summary>"
        "<table><tr><th>outcome</th><th>what it is</th><th>p50</th><th>p05 – p95</th>"
        f"<th>unit</th></tr>{''.join(rows)}</table></details>"
    )


def _differing(comparison: Comparison, outcomes: dict[str, dict[str, Any]]) -> str:
    rows = comparison_cells(comparison)
    names = iter(comparison.outcomes)
    head = "".join(f"<th>{_cell(c)}</th>" for c in rows[0][1])
    width = len(rows[0][1])
    body = []
    for kind, cells in rows[1:]:
        if kind == "array":  # the heading of an arrayed outcome's cells
            body.append(
                f'<tr class="group array"><td colspan="{width}"><b>{escape(cells[0])}</b></td></tr>'
            )
            continue
        if kind == "outcome":
            info = outcomes[next(names)]
            what = (
                f"{escape(outcome_meaning(info))} <code>{escape(str(info.get('stat', '')))} of "
                f"{escape(str(info.get('of', '')))}</code>"
            )
            body.append(
                f'<tr class="group"><td colspan="{width}"><b>{escape(cells[0])}</b>'
                f' <span class="what">{what}</span></td></tr>'
            )
            continue
        tds = [f"<td>{_cell(cells[0].strip())}</td>"]
        tds += [f'<td class="num">{_cell(c)}</td>' for c in cells[1:]]
        body.append(f'<tr class="{"diff" if kind == "difference" else ""}">{"".join(tds)}</tr>')
    legend = "".join(f"<li>{escape(line)}</li>" for line in comparison.legend())
    return (
        "<h2>Comparison</h2>"
        f'<div class="wide"><table><tr>{head}</tr>{"".join(body)}</table></div>'
        f'<ul class="legend">{legend}</ul>'
    )


def _figures(comparison: Comparison, results: Sequence[Results], every: bool = False) -> str:
    """The outcome figure (the FIGURE_ROWS outcomes that differ most; `every`: all that
    differ) and the fan charts."""
    differing = [o for o in comparison.outcomes if o not in comparison.identical]
    out = [] if differing else ["<h2>Outcome distributions</h2><p>No outcome differs.</p>"]
    if differing:
        rows = len(grouped(differing)) if every else FIGURE_ROWS
        out += _outcome_figures(comparison.select(differing), results, rows)
    fan = fan_figure(results, comparison.scenarios, given=comparison.given)
    if fan is not None:
        out += [
            "<h2>Recorded series over time</h2>",
            "<p>For each month: the median over runs (line), the middle half of runs "
            "(shaded) and 90% of runs (dashed).</p>",
            _img(png_bytes(fan), "Recorded series over time"),
        ]
    return "".join(out)


def drawn_outcomes(comparison: Comparison, rows: int = FIGURE_ROWS) -> list[str]:
    """The differing outcomes the report's outcome figure draws, in the comparison's order:
    those a --threshold condition names (the summary quotes them), then those that differ
    most as the summary ranks them, up to `rows` figure rows (an array's cells share one).
    Drawing is most of a report's wait, and a row per differing outcome made a figure four
    feet tall; the table above has every outcome's numbers."""
    rank = ranked(comparison)
    named = [
        o
        for o in rank
        if any(
            re.search(rf"(?<![\w.]){re.escape(array_of(o))}\b", t.condition)
            for t in comparison.thresholds
        )
    ]
    picked: list[str] = list(grouped(named))
    for array in grouped(rank):
        if len(picked) >= rows:
            break
        if array not in picked:
            picked.append(array)
    keep, differing = set(picked), set(rank)
    return [o for o in comparison.outcomes if array_of(o) in keep and o in differing]


def _outcome_figures(
    comparison: Comparison, results: Sequence[Results], rows: int = FIGURE_ROWS
) -> list[str]:
    drawn = set(drawn_outcomes(comparison, rows))
    shown = comparison.select([o for o in comparison.outcomes if o in drawn])
    rest = list(grouped(o for o in comparison.outcomes if o not in drawn))
    which = "that differ most, relative to their spread (as the summary ranks them)"
    if comparison.thresholds:
        which = "a --threshold condition names, and those " + which
    left_out = (
        f'<p class="legend">Drawn: the outcomes {which}. Not drawn, their numbers in the '
        f"table above: {escape(', '.join(rest))}. <code>sim compare --plot</code> draws "
        "every outcome.</p>"
        if rest
        else ""
    )
    return [
        "<h2>Outcome distributions</h2>",
        "<p>Left: each scenario's cumulative distribution (the share of runs at or below a "
        "value; a curve further right means larger values). Right: the run-by-run "
        "differences against the first scenario when runs are paired, with the mean "
        "difference and its confidence band.</p>",
        _img(
            png_bytes(outcome_figure(shown, kept_runs(results, comparison.given))),
            "Outcome distributions",
        ),
        left_out,
    ]


def _reading(comparison: Comparison) -> str:
    paired = any(p.paired for p in comparison.pairings)
    text = (
        "<h2>How to read the differences</h2>"
        "<p>With the same seed, sampler and number of runs, run <i>i</i> of every scenario "
        "draws the same values for the uncertain parameters the scenarios share (common "
        "random numbers). The difference between two scenarios in run <i>i</i> is then the "
        "effect of what the scenarios change, with the shared uncertainty held fixed. Those "
        "<b>paired</b> differences are much less noisy than the scenarios themselves, so "
        "their confidence intervals are narrow even when the two distributions overlap "
        "widely.</p>"
        "<p>The confidence intervals and ± mcse measure <i>simulation</i> noise only: how "
        "much the numbers would move with more runs. They say nothing about whether the "
        "model or its parameter ranges are right; that uncertainty is the spread between "
        "p05 and p95. With many runs, the KS p-value is tiny for any visible difference; "
        "read D and the Wasserstein distance for how large the difference is.</p>"
    )
    if not paired:
        text += (
            "<p><b>These scenarios are not paired</b> (seeds, samplers, run counts or "
            "posteriors differ), "
            "so only whole distributions are compared. Run them with the same "
            "<code>--seed</code> and <code>--runs</code> to get run-by-run differences.</p>"
        )
    return text


def _posteriors(comparison: Comparison, results: Sequence[Results]) -> list[dict[str, Any] | None]:
    """Per scenario, the posterior its parameters came from (None: priors)."""
    if comparison.posteriors:
        return list(comparison.posteriors)
    return [p if isinstance(p := r.manifest.get("posterior"), dict) else None for r in results]


def _parameters(comparison: Comparison, results: Sequence[Results]) -> str:
    names = _union(r.parameters for r in results)
    posteriors = _posteriors(comparison, results)
    rows = []
    for name in names:
        specs = [r.parameters.get(name) for r in results]
        dists = [
            str(s["distribution"]) + _from_posterior(p, name) if s else "–"
            for s, p in zip(specs, posteriors, strict=True)
        ]
        units = {str(s.get("unit", "")) for s in specs if s} - {"1", ""}
        sources = {str(s.get("source") or "") for s in specs if s}
        differs = len(set(dists)) > 1
        tag = '<span class="tag">differs</span>' if differs else ""
        if any(_from_posterior(p, name) for p in posteriors):
            tag += '<span class="tag posterior">posterior</span>'
        if len(set(dists)) == 1:
            dist_cells = f'<td colspan="{len(results)}">{escape(dists[0])}</td>'
        else:
            dist_cells = "".join(f"<td>{escape(d)}</td>" for d in dists)
        if len(sources) <= 1:
            source = link_citations(escape(next(iter(sources), ""))) or "<i>no source given</i>"
        else:
            source = "<br>".join(
                f"{escape(label)}: "
                + link_citations(escape(str(s.get("source") or "–") if s else "–"))
                for label, s in zip(comparison.scenarios, specs, strict=True)
            )
        rows.append(
            f'<tr class="{"differs" if differs else ""}"><td><b>{escape(name)}</b>{tag}</td>'
            f"<td>{escape(', '.join(sorted(units))) or '–'}</td>{dist_cells}<td>{source}</td></tr>"
        )
    head = "".join(f"<th>{escape(label)}</th>" for label in comparison.scenarios)
    return (
        "<h2>Parameters and their sources</h2>"
        + (
            "<p class='legend'>→ posterior: in that scenario, drawn from the posterior "
            "(see “Parameters from a posterior”), not from the distribution shown, which is "
            "the prior it was calibrated under.</p>"
            if any(p is not None for p in posteriors)
            else ""
        )
        + '<div class="wide"><table><tr><th>parameter</th><th>unit</th>'
        f"{head}<th>source</th></tr>" + "".join(rows) + "</table></div>"
    )


# -- helpers ------------------------------------------------------------------------------


def _from_posterior(posterior: dict[str, Any] | None, name: str) -> str:
    """' → posterior <hash>…' when the parameter was drawn from that posterior."""
    if posterior is None or name not in posterior.get("parameters", []):
        return ""
    return f" → posterior {str(posterior.get('sha256'))[:12]}…"


def _cell(text: str) -> str:
    """A table cell: the first line as is, later lines (intervals, notes) smaller."""
    first, *rest = text.split("\n")
    tail = "".join(f'<br><span class="ci">{escape(line.strip())}</span>' for line in rest)
    return escape(first) + tail


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img alt="{escape(alt)}" src="data:image/png;base64,{data}"></figure>'


def _num(x: Any) -> str:
    return f"{x:.2f}" if isinstance(x, int | float) else "–"


def _g(v: Any) -> str:
    return f"{v:g}" if isinstance(v, int | float) else str(v)


def _union(dicts: Any) -> list[str]:
    out: dict[str, None] = {}
    for d in dicts:
        out.update(dict.fromkeys(d))
    return list(out)


def _section(res: Results, name: str) -> dict[str, Any]:
    value = res.manifest.get("scenario", {}).get(name) or {}
    return value if isinstance(value, dict) else {}


def _setting_text(res: Results, name: str) -> str:
    return str(res.manifest.get("scenario", {}).get(name, "–"))


def _parameter_text(res: Results, name: str) -> str:
    spec = res.parameters.get(name)
    if spec is None:
        return "(absent)"
    unit = str(spec.get("unit", ""))
    return f"{spec['distribution']}" + (f" {unit}" if unit and unit != "1" else "")


def _event_text(res: Results, name: str) -> str:
    spec = _section(res, "events").get(name)
    if spec is None:
        return "(absent)"
    parts = [f"at {spec.get('at')}"]
    if spec.get("set"):
        parts.append("set " + ", ".join(f"{k} = {_g(v)}" for k, v in spec["set"].items()))
    if spec.get("scale"):
        parts.append("scale " + ", ".join(f"{k} × {_g(v)}" for k, v in spec["scale"].items()))
    return "; ".join(parts)


def _state_text(res: Results, name: str) -> str:
    value = _section(res, "state").get(name)
    return "(absent)" if value is None else f"starts at {_g(value)}"


def _flow_text(res: Results, name: str) -> str:
    spec = _section(res, "flows").get(name)
    if spec is None:
        return "(absent)"
    text = f"{spec.get('from')} → {spec.get('to')}, rate {spec.get('rate')}"
    if spec.get("delay"):
        text += f", delay {spec['delay']}"
    if spec.get("noise"):
        text += f", noise {json.dumps(spec['noise'], sort_keys=True)}"
    return text
