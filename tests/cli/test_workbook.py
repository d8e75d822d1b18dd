"""`sim compare --xlsx`: the --csv rows as numbers in an Excel workbook, with a sheet saying
what they mean; only its own kind of file replaced without --force; without openpyxl, one
clear error before anything runs."""

from __future__ import annotations

import builtins
import csv
import io
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sim.cli import cli
from tests.helpers import BAKERY

openpyxl = pytest.importorskip("openpyxl")


def invoke(*args: object) -> tuple[int, str]:
    r = CliRunner().invoke(cli, [str(a) for a in args])
    return r.exit_code, r.output


@pytest.fixture()
def two(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    shutil.copy(BAKERY, a)
    b.write_text(BAKERY.read_text().replace("price: 450", "price: 500"))
    return a, b


def test_the_workbook_holds_the_csv_rows_as_numbers(two, tmp_path):
    a, b = two
    book_path = tmp_path / "cmp.xlsx"
    code, out = invoke("compare", a, b, "-n", "40", "--csv", "--xlsx", book_path)
    assert code == 0, out
    rows = list(csv.DictReader(io.StringIO(out[: out.index("wrote ")])))
    book = openpyxl.load_workbook(book_path)
    assert book.sheetnames == ["comparison", "about"]
    sheet = list(book["comparison"].iter_rows(values_only=True))
    header, body = sheet[0], sheet[1:]
    assert list(header) == list(rows[0])
    assert len(body) == len(rows)
    for got, want in zip(body, rows, strict=True):
        for key, value in zip(header, got, strict=True):
            if want[key] == "":
                assert value is None, key
            elif isinstance(value, int | float) and not isinstance(value, bool):
                assert value == pytest.approx(float(want[key]), rel=1e-12), key
            else:
                assert str(value) == want[key], key
    about = [r[0] for r in book["about"].iter_rows(values_only=True) if r and r[0]]
    assert "written by" in about and any("paired" in str(line) for line in about)


def test_only_a_workbook_is_replaced_without_force(two, tmp_path):
    a, b = two
    target = tmp_path / "notes.xlsx"
    target.write_text("my notes")
    code, out = invoke("compare", a, b, "-n", "20", "--xlsx", target)
    assert code == 2 and "not an Excel workbook" in out
    assert target.read_text() == "my notes"
    code, out = invoke("compare", a, b, "-n", "20", "--xlsx", target, "--force")
    assert code == 0, out
    code, out = invoke("compare", a, b, "-n", "20", "--xlsx", target)  # now it is one
    assert code == 0, out
    code, out = invoke("compare", a, b, "-n", "20", "--xlsx", a)
    assert code == 2 and "inputs" in out


def test_without_openpyxl_it_says_how_to_install(two, tmp_path, monkeypatch):
    a, b = two
    real = builtins.__import__

    def no_openpyxl(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("openpyxl"):
            raise ImportError("no openpyxl here")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openpyxl)
    code, out = invoke("compare", a, b, "-n", "20", "--xlsx", tmp_path / "c.xlsx")
    assert code == 2 and "pip install" in out and "openpyxl" in out
    assert not (tmp_path / "c.xlsx").exists()
