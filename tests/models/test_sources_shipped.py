"""The shipped scenarios' provenance: every source cites docs/sources.md or is an assumption,
every key resolves, every entry is cited, and nothing points at the old figures.md."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sim.model import load
from sim.scenario.sources import cited, entries_cited, is_assumption, read, texts

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "docs" / "sources.md"


def _is_scenario(path: Path) -> bool:
    data = yaml.safe_load(path.read_text())
    return isinstance(data, dict) and ("extends" in data or "stocks" in data)


SHIPPED = sorted(p for p in (ROOT / "scenarios").glob("*.yaml") if _is_scenario(p))
WAR = [p for p in SHIPPED if p.name != "base.yaml"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_scenario_names_the_sources_file_and_every_key_resolves(path):
    model = load(path)  # an unknown key or a free-text source would raise here
    assert model.scenario.sources == "../docs/sources.md"
    keys = {k for _, text in texts(model.scenario) for k in cited(text)}
    assert keys and keys == set(entries_cited(model.scenario, model.place))
    for field, text in texts(model.scenario):
        assert is_assumption(text) or cited(text), f"{path.name}: {field} cites nothing"


def test_every_entry_of_docs_sources_is_cited_by_a_shipped_scenario():
    entries = read(SOURCES)
    used = {k for p in SHIPPED for _, text in texts(load(p).scenario) for k in cited(text)}
    assert set(entries) - used == set(), "entries no scenario cites; cite them or drop them"
    for entry in entries.values():  # every entry says what it gives and how far to trust it
        assert entry.figures and entry.reliability and entry.publisher and entry.date


def test_the_example_cites_only_assumptions_and_validates_without_a_sources_file():
    model = load(ROOT / "examples" / "bakery.yaml")
    assert model.scenario.sources is None
    assert all(is_assumption(text) for _, text in texts(model.scenario))


@pytest.mark.parametrize(
    "path",
    [*SHIPPED, ROOT / "examples" / "bakery.yaml", ROOT / "docs" / "model.md"],
    ids=lambda p: p.name,
)
def test_nothing_points_at_figures_md_any_more(path):
    text = path.read_text()
    assert "figures.md" not in text and "§" not in text


def test_a_run_records_the_entries_it_cites(tmp_path):
    import sim

    res = sim.run(load(ROOT / "scenarios" / "war_ends.yaml"), runs=4, seed=1)
    recorded = res.manifest["sources"]
    assert "MSMT-2025-05" in recorded
    assert recorded["MSMT-2025-05"]["publisher"].startswith("Multilateral Sanctions")
    assert set(recorded) <= set(read(SOURCES))
