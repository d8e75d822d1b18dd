"""The shipped Russia–DPRK–China model: interface, 2024 calibration, the argument's direction,
and a located error for a user's edit that breaks a reference.

Calibration ranges are read from the one table in docs/calibration.md; nothing here repeats them.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import sim
from sim.errors import ScenarioError
from sim.model import Model

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
CALIBRATION = ROOT / "docs" / "calibration.md"

# The interface every scenario defines (MODEL.md, "Outcomes every scenario must define").
INTERFACE = {
    "shells_delivered": "shells",
    "fx_from_russia": "usd",
    "fx_reserves_end": "usd",
    "fuel_from_russia": "bbl",
    "fuel_shortfall_months": "month",
    "food_from_russia": "t",
    "food_shortfall_months": "month",
    "china_import_share_end": "share",
    "workers_in_russia_end": "persons",
    "veterans_end": "persons",
    "casualties": "persons",
    "military_tech_end": "index",
    "factories_built_end": "factories",
    "gdp_index_end": "index",
}

SCENARIO_FILES = sorted(SCENARIOS.glob("*.yaml"))
CALIBRATION_RUNS = 2000
DIRECTION_RUNS = 4000
SEED = 1


# -- (a) every scenario loads and defines the interface ----------------------------------------


def test_the_shipped_scenarios_exist():
    names = {p.stem for p in SCENARIO_FILES}
    assert {"base", "war_continues", "war_ends"} <= names
    assert len(names - {"base"}) >= 5, "war_continues, war_ends and at least three more"


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.name)
def test_scenario_loads_and_defines_every_interface_outcome(path: Path):
    model = sim.load(path)
    units = {o.name: o.unit for o in model.outcomes}
    for name, unit in INTERFACE.items():
        assert name in units, f"{path.name} does not define outcome '{name}'"
        assert units[name] == unit, f"{path.name}: {name} is in {units[name]}, not {unit}"
    assert model.ticks == 120
    assert model.scenario.start == "2024-01"
    assert model.scenario.description, f"{path.name} must say which claim it represents"


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.name)
def test_every_parameter_has_a_unit_and_a_source(path: Path):
    model = sim.load(path)
    for name, spec in model.parameters.items():
        assert spec.source and spec.source.strip(), f"{path.name}: parameter {name} has no source"
        assert spec.unit, f"{path.name}: parameter {name} has no unit"


# -- (b) calibration against docs/calibration.md -----------------------------------------------


def _number(text: str) -> float:
    return float(text.replace(",", "").replace("_", "").replace(" ", ""))


def calibration_targets() -> list[tuple[str, str, float, float]]:
    """(quantity, outcome, low, high) for each row of the first table in docs/calibration.md
    whose header has `quantity`, `outcome`, `low` and `high` columns."""
    header: list[str] | None = None
    rows: list[list[str]] = []
    for raw in CALIBRATION.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line.startswith("|"):
            if rows:
                break  # the table has ended
            header = None
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            lowered = [c.lower() for c in cells]
            if {"quantity", "outcome", "low", "high"} <= set(lowered):
                header = lowered
        elif not set("".join(cells)) <= set("-: "):  # skip the |---| separator
            rows.append(cells)
    assert header is not None and rows, f"no calibration table found in {CALIBRATION}"
    q, o, lo, hi = (header.index(k) for k in ("quantity", "outcome", "low", "high"))
    return [(r[q], r[o].strip("` "), _number(r[lo]), _number(r[hi])) for r in rows]


def test_the_calibration_table_parses():
    targets = calibration_targets()
    outcomes = {t[1] for t in targets}
    assert {
        "shells_2024",
        "oil_from_russia_2024",
        "workers_entering_2024",
        "china_imports_2024",
        "harvest_2024",
    } <= outcomes
    for quantity, _, low, high in targets:
        assert 0 <= low < high, quantity


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["war_continues", "war_ends"])
def test_2024_totals_fall_inside_the_published_ranges(scenario: str):
    res = sim.run(sim.load(SCENARIOS / f"{scenario}.yaml"), runs=CALIBRATION_RUNS, seed=SEED)
    failures = []
    for quantity, outcome, low, high in calibration_targets():
        x = res.outcome(outcome)
        p05, p50, p95 = np.quantile(x, [0.05, 0.5, 0.95])
        if not low <= p50 <= high:
            failures.append(
                f"{quantity} ({outcome}): median {p50:,.0f} outside [{low:,.0f}, {high:,.0f}]"
            )
        if p95 < low or p05 > high:
            failures.append(
                f"{quantity} ({outcome}): band {p05:,.0f}..{p95:,.0f} misses [{low:,.0f}, {high:,.0f}]"
            )
    assert not failures, "\n".join(failures)


# -- (c) the argument's direction, on paired runs ------------------------------------------------


@pytest.fixture(scope="module")
def paired() -> tuple[sim.Results, sim.Results]:
    cont = sim.run(sim.load(SCENARIOS / "war_continues.yaml"), runs=DIRECTION_RUNS, seed=SEED)
    ends = sim.run(sim.load(SCENARIOS / "war_ends.yaml"), runs=DIRECTION_RUNS, seed=SEED)
    return cont, ends


def _paired_difference(cont: sim.Results, ends: sim.Results, name: str) -> tuple[float, float]:
    """Mean of (war_ends - war_continues) run by run, and its standard error."""
    d = ends.outcome(name) - cont.outcome(name)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


@pytest.mark.slow
def test_the_runs_are_paired(paired):
    cont, ends = paired
    assert cont.seed == ends.seed and cont.sampler == ends.sampler
    # Common random numbers: a shared parameter has the same draw in the same run.
    np.testing.assert_array_equal(cont.parameter("shell_demand"), ends.parameter("shell_demand"))
    np.testing.assert_array_equal(cont.parameter("paid_share"), ends.parameter("paid_share"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fx_from_russia", "fuel_from_russia", "shells_delivered"])
def test_russian_flows_are_lower_when_the_war_ends(paired, name: str):
    mean, se = _paired_difference(*paired, name)
    assert mean + 3 * se < 0, f"{name}: mean paired difference {mean:.4g} (se {se:.3g}) is not < 0"


@pytest.mark.slow
def test_china_share_of_imports_is_higher_when_the_war_ends(paired):
    mean, se = _paired_difference(*paired, "china_import_share_end")
    assert mean - 3 * se > 0, f"mean paired difference {mean:.4g} (se {se:.3g}) is not > 0"


@pytest.mark.slow
@pytest.mark.parametrize("which", [0, 1], ids=["war_continues", "war_ends"])
def test_military_tech_ends_above_its_2024_level(paired, which: int):
    res = paired[which]
    d = res.outcome("military_tech_end") - res.outcome("military_tech_2024")
    se = d.std(ddof=1) / np.sqrt(len(d))
    assert d.mean() - 3 * se > 0, f"military tech falls: mean {d.mean():.3g}"
    assert np.median(d) > 0


# -- (d) a user's edit that breaks a reference gets a located error ----------------------------


def test_renaming_a_stock_base_uses_gives_a_located_error(tmp_path: Path):
    edit = tmp_path / "my_edit.yaml"
    edit.write_text(
        "extends: " + str(SCENARIOS / "base.yaml") + "\n"
        "name: my_edit\n"
        "stocks:\n"
        "  dprk_fuel: null            # renamed ...\n"
        "  fuel_tank: {unit: bbl}     # ... to this\n",
        encoding="utf-8",
    )
    with pytest.raises(ScenarioError) as info:
        sim.load(edit)
    message = str(info.value)
    base = str(SCENARIOS / "base.yaml")
    # Every problem names base.yaml (where the broken references are) with a line and column.
    located = re.findall(re.escape(base) + r":(\d+):(\d+): (\S+)", message)
    assert located, message
    assert any(field.startswith("flows.burn_fuel.from") for _, _, field in located), message
    assert "unknown stock 'dprk_fuel'" in message
    # The line is the one where burn_fuel's `from: dprk_fuel` is written.
    lines = (SCENARIOS / "base.yaml").read_text(encoding="utf-8").splitlines()
    line = next(int(ln) for ln, _, field in located if field.startswith("flows.burn_fuel.from"))
    assert "dprk_fuel" in lines[line - 1]


def _model(name: str) -> Model:
    return sim.load(SCENARIOS / f"{name}.yaml")


def test_war_ends_only_changes_when_the_war_ends():
    """war_ends differs from war_continues by the war_ends event's time, nothing else."""
    cont, ends = _model("war_continues"), _model("war_ends")
    assert [s.name for s in cont.stocks] == [s.name for s in ends.stocks]
    assert [f.name for f in cont.flows] == [f.name for f in ends.flows]
    assert set(cont.parameters) == set(ends.parameters)
    by_name = {e.name: e for e in ends.events}
    assert by_name["war_ends"].kind == "expr"
    assert {e.name: e for e in cont.events}["war_ends"].kind == "never"
