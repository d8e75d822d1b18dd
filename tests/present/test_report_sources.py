"""The report's Sources section: the entries the compared scenarios cite, linked from each
parameter's source, as the results recorded them."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

import sim
from sim.analysis.compare import compare
from sim.present.report import render
from sim.scenario.sources import read

ROOT = Path(__file__).resolve().parents[2]


def test_the_report_lists_and_links_every_cited_source():
    a = sim.run(sim.load(ROOT / "scenarios" / "war_continues.yaml"), runs=10, seed=1)
    b = sim.run(sim.load(ROOT / "scenarios" / "war_ends.yaml"), runs=10, seed=1)
    page = render(compare(a, b), [a, b], figures=False)
    assert '<h2 id="sources">Sources</h2>' in page
    anchors = set(re.findall(r'<td id="source-([A-Z0-9-]+)">', page))
    links = set(re.findall(r'<a href="#source-([A-Z0-9-]+)">', page))
    assert links and links <= anchors  # every citation in the parameters leads to its entry
    entries = read(ROOT / "docs" / "sources.md")
    assert anchors <= set(entries)
    msmt = entries["MSMT-2025-05"]
    assert escape(msmt.figures) in page and escape(msmt.reliability) in page
    assert escape(msmt.title) in page
    assert "figures.md" not in page and "§" not in page
    assert "no entry is recorded" not in page


def test_keys_a_result_did_not_record_are_listed_as_such():
    a = sim.run(sim.load(ROOT / "scenarios" / "war_ends.yaml"), runs=10, seed=1)
    del a.manifest["sources"]  # as an older sim wrote it
    page = render(compare(a, a), [a, a], figures=False)
    assert 'id="source-MSMT-2025-05"' in page
    assert "cited, but no entry is recorded in the results" in page


def test_a_scenario_without_sources_has_no_sources_section():
    a = sim.run(sim.load(ROOT / "examples" / "bakery.yaml"), runs=20, seed=1)
    page = render(compare(a, a), [a, a], figures=False)
    assert 'id="sources"' not in page
