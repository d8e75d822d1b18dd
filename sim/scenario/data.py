"""Data series: named time series read from CSV files (the scenario's `data:` section).

A CSV has a `date` column (`YYYY-MM`, one row per date, increasing) and one column per
series; an empty cell means the series has no value at that row's date. `read_series` returns a series' dates, as months from the scenario's start, and its
values; `at_ticks` turns them into the value at each tick (linear interpolation in time, flat
beyond the ends). Every problem is a `ScenarioError` placed in the CSV file (line, and the
column's position) or at the scenario's `data.NAME` entry when the file itself is missing.
"""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from sim.errors import Place, Problem, ScenarioError, did_you_mean
from sim.scenario.schema import parse_month

MAX_BYTES = 64 * 2**20  # a series file is a table of dates, not a data lake


@dataclass(frozen=True)
class Series:
    """One series as read: dates in months from the start, values, and the file's hash."""

    months: np.ndarray
    values: np.ndarray
    file: str
    sha256: str

    def at_ticks(self, ticks: int, step: float) -> np.ndarray:
        """The value at each tick's time t = k * step: linear in time, flat beyond the ends."""
        return np.interp(np.arange(ticks) * step, self.months, self.values)


def read_series(
    path: Path, column: str, start: tuple[int, int], place: Place | None, field: str
) -> Series:
    """Read `column` of the CSV at `path`; `place` and `field` locate the scenario's entry."""

    def fail(
        message: str, line: int | None = None, col: int = 1, hint: str | None = None
    ) -> NoReturn:
        where = Place(str(path), line, col) if line is not None else place
        raise ScenarioError([Problem(message, where, field, hint)])

    try:
        if path.stat().st_size > MAX_BYTES:
            fail(f"data file {path} is larger than {MAX_BYTES // 2**20} MiB")
        raw = path.read_bytes()
    except FileNotFoundError:
        fail(f"data file {path} not found", hint="a data file's path is relative to the scenario")
    except IsADirectoryError:
        fail(f"data file {path} is a directory")
    except OSError as exc:
        fail(f"data file {path} can't be read: {exc.strerror}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        fail("not UTF-8 text", line)
    rows = list(csv.reader(text.splitlines()))
    if not rows or not any(cell.strip() for cell in rows[0]):
        fail("the file is empty; it needs a header row with a `date` column", 1)
    header = [cell.strip() for cell in rows[0]]
    if "date" not in header:
        fail("no `date` column in the header", 1, hint=f"columns: {', '.join(header)}")
    if column not in header:
        named = did_you_mean(column, [h for h in header if h != "date"])
        fail(f"no column '{column}'", 1, hint=named or f"columns: {', '.join(header)}")
    d, c = header.index("date"), header.index(column)
    y0, m0 = start
    dates: list[float] = []  # every row's, to check their order
    months: list[float] = []
    values: list[float] = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        if len(row) <= max(d, c):
            fail(f"{len(row)} fields; the header has {len(header)}", number)
        try:
            year, month = parse_month(row[d])
        except ValueError as exc:
            fail(f"date: {exc}", number, d + 1)
        at = float((year - y0) * 12 + (month - m0))
        if dates and at <= dates[-1]:
            again = "repeats" if at == dates[-1] else "comes before"
            fail(f"date {row[d].strip()} {again} the row above; dates must increase", number, d + 1)
        dates.append(at)
        if not row[c].strip():
            continue  # no value of this series at this date (another column has one)
        try:
            value = float(row[c])
        except ValueError:
            fail(f"{column}: {row[c].strip()!r} is not a number", number, c + 1)
        if not math.isfinite(value):
            fail(f"{column}: {row[c].strip()} is not a finite number", number, c + 1)
        months.append(at)
        values.append(value)
    if not months:
        fail("no rows under the header", 1)
    return Series(np.array(months), np.array(values), str(path), hashlib.sha256(raw).hexdigest())
