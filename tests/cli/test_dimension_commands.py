"""The commands on an arrayed model: cells grouped under their array in compare's table,
cell names printed literally (not eaten as markup), quoting `name[elem]` in the shell's
arguments, sweep and sensitivity options on cells and groups."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sim.cli import cli

PANTRY = {
    "name": "pantry",
    "start": "2024-01",
    "months": 6,
    "dimensions": {"good": ["food", "fuel"]},
    "parameters": {
        "need": {
            "over": "good",
            "dist": "uniform",
            "low": [8, 4],
            "high": [12, 6],
            "unit": "t/month",
            "source": "test",
        },
        "cut": {"dist": "uniform", "low": 0.5, "high": 1.0, "source": "test"},
    },
    "state": {"open": 1},
    "stocks": {
        "shop": {"over": "good", "unit": "t", "kind": "source"},
        "store": {"over": "good", "unit": "t", "initial": [20, 10]},
        "used": {"over": "good", "unit": "t", "kind": "sink"},
    },
    "flows": {
        "restock": {
            "over": "good",
            "from": "shop",
            "to": "store",
            "rate": "10 * where(open > 0, 1, cut)",
        },
        "eat": {"over": "good", "from": "store", "to": "used", "rate": "need"},
    },
    "events": {"strike": {"at": 2, "set": {"open": 0}}},
    "outcomes": {
        "store_end": {"of": "store", "stat": "final", "unit": "t"},
        "total_end": {"of": "sum(store)", "stat": "final", "unit": "t"},
    },
}


def invoke(*args: object) -> tuple[int, str]:
    r = CliRunner().invoke(cli, [str(a) for a in args])
    return r.exit_code, r.output


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("dims")
    a, b = tmp / "a.yaml", tmp / "b.yaml"
    a.write_text(yaml.safe_dump(PANTRY, sort_keys=False))
    other = {**PANTRY, "name": "pantry_open", "events": {}}
    b.write_text(yaml.safe_dump(other, sort_keys=False))
    out = []
    for path, folder in ((a, tmp / "ra"), (b, tmp / "rb")):
        code, output = invoke("run", path, "-n", "60", "--out", folder, "-w", "1")
        assert code == 0, output
        out.append(folder)
    return out[0], out[1]


def test_compare_groups_cells_under_their_array(studies):
    code, out = invoke("compare", *studies)
    assert code == 0, out
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if "store_end (t), 2 cells" in line)
    below = "\n".join(lines[head : head + 12])
    assert "[food]" in below and "[fuel]" in below  # printed, not taken for markup
    assert below.index("[food]") < below.index("[fuel]")


def test_outcome_takes_an_array_or_one_quoted_cell(studies):
    code, out = invoke("compare", *studies, "--outcome", "store_end", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["outcomes"] == ["store_end[food]", "store_end[fuel]"]
    code, out = invoke("compare", *studies, "--outcome", "store_end[fuel]", "--csv")
    assert code == 0, out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["outcome"] for r in rows} == {"store_end[fuel]"}
    assert {(r["array"], r["element"]) for r in rows} == {("store_end", "fuel")}
    code, out = invoke("compare", *studies, "--outcome", "store_end[soap]")
    assert code == 2 and "did you mean" in out


def test_conditions_name_cells_in_the_legend(studies):
    code, out = invoke(
        "compare",
        *studies,
        "--outcome",
        "total_end",
        "--given",
        "need[food] > 10",
        "--threshold",
        "store_end[food] < 15",
    )
    assert code == 0, out
    assert "need[food] > 10" in out and "P(store_end[food] < 15)" in out


def test_discover_where_reads_a_cell(studies, tmp_path):
    code, out = invoke(
        "discover", studies[0], "--where", "store_end[food] < 15", "--out", tmp_path / "d"
    )
    assert code == 0, out
    assert "have store_end[food] < 15" in out


def test_sweep_a_cell_and_refuse_the_whole_array(studies, tmp_path):
    scenario = studies[0].parent / "a.yaml"
    code, out = invoke(
        "sweep",
        scenario,
        "--set",
        "need[food]=8,12",
        "--outcome",
        "store_end[food]",
        "-n",
        "20",
        "--out",
        tmp_path / "s",
        "-w",
        "1",
    )
    assert code == 0, out
    assert "store_end[food] (t) against need[food]" in out
    code, out = invoke("sweep", scenario, "--set", "need=8,12", "-n", "20", "--out", tmp_path / "t")
    assert code == 2
    assert "'need' is arrayed over (good)" in out and '--set "need[food]=..."' in out


def test_group_arrays_leaves_out_a_fixed_arrayed_parameter(tmp_path):
    """A fixed array (a 0/1 selector, say) is no input: --group-arrays groups only the
    arrayed parameters that have an uncertain cell."""
    doc = json.loads(json.dumps(PANTRY))
    doc["parameters"]["selector"] = {
        "over": "good",
        "value": [1, 0],
        "unit": "1",
        "source": "assumption: a selector",
    }
    path = tmp_path / "fixed_array.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, out = invoke(
        "sensitivity", path, "--outcome", "total_end", "-n", "32", "--group-arrays",
        "--out", tmp_path / "g", "-w", "1", "--json",
    )  # fmt: skip
    assert code == 0, out
    assert {r["parameter"] for r in json.loads(out)["indices"]} == {"need", "cut"}


def test_sensitivity_groups_an_arrayed_parameter(studies, tmp_path):
    scenario = studies[0].parent / "a.yaml"
    code, out = invoke(
        "sensitivity",
        scenario,
        "--outcome",
        "total_end",
        "-n",
        "32",
        "--group-arrays",
        "--out",
        tmp_path / "g",
        "-w",
        "1",
        "--json",
    )
    assert code == 0, out
    data = json.loads(out)
    assert {r["parameter"] for r in data["indices"]} == {"need", "cut"}
    code, out = invoke(
        "sensitivity",
        scenario,
        "--outcome",
        "total_end",
        "-n",
        "32",
        "--out",
        tmp_path / "c",
        "-w",
        "1",
    )
    assert code == 0, out
    assert "need[food]" in out and "need[fuel]" in out
    code, out = invoke(
        "sensitivity",
        scenario,
        "--outcome",
        "total_end",
        "-n",
        "32",
        "--group",
        "cut",
        "--out",
        tmp_path / "x",
    )
    assert code == 2 and "not arrayed" in out


def test_the_guides_arrayed_example_runs_and_compares(tmp_path):
    examples = Path(__file__).resolve().parents[2] / "examples"
    code, out = invoke("validate", examples / "pantry.yaml", examples / "pantry_open.yaml")
    assert code == 0, out
    code, out = invoke(
        "compare",
        examples / "pantry.yaml",
        examples / "pantry_open.yaml",
        "-n",
        "40",
        "--outcome",
        "store_end",
        "--threshold",
        "store_end[food] < 60",
    )
    assert code == 0, out
    assert "store_end (t), 3 cells" in out and "P(store_end[food] < 60)" in out
