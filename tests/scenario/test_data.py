"""`data:` series from CSV files: reading, interpolation in time, and every bad file located."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from sim.errors import ResultsError, ScenarioError
from sim.model import load
from sim.study.provenance import scenario_sha256
from tests.engine.test_builtins import both

CSV = "date,price,diesel\n2024-01,10,1\n2024-03,20,2\n2024-04,,3\n"


def files(tmp_path: Path, csv: str = CSV, **extra: object) -> Path:
    (tmp_path / "prices.csv").write_text(csv)
    data = {
        "name": "d",
        "start": "2024-01",
        "months": 6,
        "data": {
            "price": {"file": "prices.csv"},
            "fuel": {"file": "prices.csv", "column": "diesel"},
        },
        "variables": {"p": "price", "f": "fuel * 2"},
        "record": ["p", "f"],
    }
    data.update(extra)
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_series_is_interpolated_in_time_and_flat_beyond_its_ends(tmp_path: Path) -> None:
    csv = "date,price,diesel\n2024-01,10,1\n2024-03,20,2\n2024-05,20,4\n"
    model = load(files(tmp_path, csv, step=0.5))
    got = both(model, runs=1).series
    want = np.interp(np.arange(12) * 0.5, [0, 2, 4], [10, 20, 20])
    np.testing.assert_array_equal(got["p"][:, 0], want)
    np.testing.assert_array_equal(
        got["f"][:, 0], 2 * np.interp(np.arange(12) * 0.5, [0, 2, 4], [1, 2, 4])
    )
    assert got["f"][-1, 0] == 8  # flat after the last row


def _problem(path: Path) -> str:
    with pytest.raises(ScenarioError) as exc:
        load(path)
    return str(exc.value)


@pytest.mark.parametrize(
    ("csv", "where", "message"),
    [
        ("day,price\n2024-01,1\n", ":1:1:", "no `date` column"),
        ("date,prices,diesel\n2024-01,1,1\n", ":1:1:", "no column 'price'; did you mean 'prices'?"),
        ("date,price,diesel\n2024-01,1,1\n2024-13,2,2\n", ":3:1:", "month 13 is not 1-12"),
        ("date,price,diesel\n2024-01,1,1\n24/02,2,2\n", ":3:1:", "is not a year-month"),
        ("date,price,diesel\n2024-01,1,1\n2024-02,lots,2\n", ":3:2:", "'lots' is not a number"),
        ("date,price,diesel\n2024-02,1,1\n2024-01,2,2\n", ":3:1:", "comes before the row above"),
        ("date,price,diesel\n2024-02,1,1\n2024-02,2,2\n", ":3:1:", "repeats the row above"),
        ("date,price,diesel\n2024-02,nan,1\n", ":2:2:", "nan is not a finite number"),
        ("", ":1:1:", "the file is empty"),
    ],
)
def test_a_bad_file_is_located_in_the_csv(
    tmp_path: Path, csv: str, where: str, message: str
) -> None:
    text = _problem(files(tmp_path, csv))
    assert f"prices.csv{where}" in text and message in text, text


def test_a_missing_file_is_located_at_its_entry(tmp_path: Path) -> None:
    path = files(tmp_path)
    (tmp_path / "prices.csv").unlink()
    text = _problem(path)
    assert "d.yaml:" in text and "data.price.file: data file" in text and "not found" in text


def test_extrapolate_error_refuses_a_horizon_not_covered(tmp_path: Path) -> None:
    strict = {"file": "prices.csv", "extrapolate": "error"}
    path = files(
        tmp_path, data={"price": strict, "fuel": {"file": "prices.csv", "column": "diesel"}}
    )
    text = _problem(path)
    assert "data.price.extrapolate: the data cover 2024-01 to 2024-03, not the horizon" in text
    covered = "date,price,diesel\n2023-12,1,1\n2024-07,2,\n"
    load(
        files(
            tmp_path,
            covered,
            data={"price": strict, "fuel": {"file": "prices.csv", "column": "diesel"}},
        )
    )


def test_over_names_a_declared_dimension(tmp_path: Path) -> None:
    path = files(tmp_path, data={"price": {"file": "prices.csv", "over": "partner"}})
    assert "data.price.over: unknown dimension 'partner'" in _problem(path)


def test_a_series_is_a_name_in_the_one_namespace(tmp_path: Path) -> None:
    path = files(tmp_path, parameters={"price": 3})
    assert "'price' is already defined" in _problem(path)


def test_the_path_is_relative_to_the_file_that_declares_it(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    files(base)
    child = tmp_path / "child.yaml"
    child.write_text("extends: base/d.yaml\nmonths: 3\n")
    model = load(child)
    assert both(model, runs=1).series["p"][:, 0].tolist() == [10, 15, 20]


def test_the_files_hash_is_in_the_manifest_and_changes_the_scenario(tmp_path: Path) -> None:
    from sim.study.runner import run

    path = files(tmp_path)
    model = load(path)
    first = scenario_sha256(model)
    out = tmp_path / "out"
    run(model, runs=2, seed=1, out=out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data"]["price"]["sha256"] == model.data[0].sha256
    (tmp_path / "prices.csv").write_text(CSV.replace("20", "21"))
    edited = load(path)
    assert scenario_sha256(edited) != first
    with pytest.raises(ResultsError, match="scenario_sha256"):
        run(edited, runs=2, seed=1, out=out, resume=True)
