"""An arrayed scenario through the commands: run's columns and bands by cell, show and trace
naming cells readably (never eaten as markup), validate's located errors."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from sim.cli import cli
from tests.helpers import ROOT

TRADE = ROOT / "examples" / "trade.yaml"
GOODS = ["food", "fuel", "machinery", "medicine"]


def test_run_writes_a_column_per_cell_and_bands_per_cell(tmp_path: Path) -> None:
    out = tmp_path / "res"
    r = CliRunner().invoke(cli, ["run", str(TRADE), "--runs", "60", "--out", str(out), "-w", "1"])
    assert r.exit_code == 0, r.output
    assert "store_low[fuel]" in r.output
    columns = pq.read_table(out / "runs.parquet").column_names
    assert [f"need[{g}]" for g in GOODS] == [c for c in columns if c.startswith("need[")]
    assert "share[china,food]" not in columns  # fixed: not a sampled column
    assert [f"store_low[{g}]" for g in GOODS] == [c for c in columns if c.startswith("store_low")]
    series = set(pq.read_table(out / "bands.parquet").column("series").to_pylist())
    assert {f"store[{g}]" for g in GOODS} | {f"arrived[{g}]" for g in GOODS} <= series


def test_show_lists_dimensions_and_arrays(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["show", str(TRADE)], env={"COLUMNS": "200"})  # rows whole
    assert r.exit_code == 0, r.output
    assert "food, fuel, machinery, medicine (4)" in r.output
    assert "imports[partner, good]" in r.output
    assert "supplier[partner] → store[good]" in r.output
    assert "store_low[good] (a column per cell)" in r.output
    assert "food: triangular(80, 100, 130)" in r.output


def test_trace_names_cells(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["trace", str(TRADE), "--runs", "10"])
    assert r.exit_code == 0, r.output
    assert "need[food] = " in r.output
    assert "open[russia] = 0" in r.output
    assert "store_low[medicine] = " in r.output


def test_validate_locates_a_bad_element(tmp_path: Path) -> None:
    text = TRADE.read_text().replace('"open[russia]": 0', '"open[rusia]": 0')
    path = tmp_path / "trade.yaml"
    path.write_text(text)
    r = CliRunner().invoke(cli, ["validate", str(path)])
    assert r.exit_code == 2
    assert "events.sanctions.set.open[rusia]: unknown element 'rusia'" in r.output
    assert "did you mean 'russia'?" in r.output
