"""A comparison as an Excel workbook: the rows `sim compare --csv` prints, as numbers, on one
sheet, and what they mean (pairing, intervals, sources) on another.

openpyxl is an optional dependency (`pip install -e '.[excel]'`): asking for a workbook
without it is a user's error that says how to install it, not a traceback.
"""

from __future__ import annotations

import io
import math
from typing import Any

from sim.analysis.compare import ROW_FIELDS, Comparison
from sim.errors import ResultsError

INSTALL = "pip install -e '.[excel]' (or: pip install openpyxl)"


def comparison_workbook(table: Comparison, about: list[tuple[str, str]]) -> bytes:
    """The workbook's bytes: sheet "comparison" (a header row of ROW_FIELDS, then a row per
    outcome and scenario, numbers as numbers, empty cells for no value) and sheet "about"
    (`about`'s key-value lines, then the comparison's legend)."""
    try:
        from openpyxl import Workbook
        from openpyxl.styles import Font
    except ImportError:
        raise ResultsError(f"--xlsx needs openpyxl: {INSTALL}") from None
    book = Workbook()
    sheet = book.active
    sheet.title = "comparison"
    sheet.append(list(ROW_FIELDS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in table.rows():
        sheet.append([_cell(row.get(k)) for k in ROW_FIELDS])
    sheet.freeze_panes = "D2"  # kind, outcome and scenario stay in view
    for column, name in zip(sheet.columns, ROW_FIELDS, strict=True):
        width = max(len(name), *(len(str(c.value)) for c in column if c.value is not None))
        sheet.column_dimensions[column[0].column_letter].width = min(max(width, 8), 48) + 2
    notes = book.create_sheet("about")
    for key, value in about:
        notes.append([key, value])
    notes.append([])
    for line in table.legend():
        notes.append([line])
    notes.column_dimensions["A"].width = 24
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cell(value: Any) -> Any:
    """A value Excel takes: numbers stay numbers, a non-finite number or None is empty."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)
