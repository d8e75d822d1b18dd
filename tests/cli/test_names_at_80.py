"""At 80 columns no table cuts a name: the war model's long, alike names print whole.

`china_import_share_end` and `china_import_share_2024` used to print as `china_import_sha…`
both; sensitivity's parameter names were cut until the table was useless.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console
from rich.table import Table

from sim.cli import cli
from sim.model import load
from sim.present.tables import Fit

ROOT = Path(__file__).resolve().parents[2]
WAR_ENDS = ROOT / "scenarios" / "war_ends.yaml"
WAR_CONTINUES = ROOT / "scenarios" / "war_continues.yaml"
ALIKE = ("china_import_share_end", "china_import_share_2024")


def invoke(*args: str, prose: int = 0) -> str:
    """The output of `sim ARGS` at 80 columns, all but its last `prose` lines within them
    (compare's legend is soft-wrapped prose, which the terminal wraps)."""
    r = CliRunner().invoke(cli, list(args), env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert max(len(line.rstrip()) for line in lines[: len(lines) - prose]) <= 80
    assert not re.search(r"\w…", r.output)  # no name ends in an ellipsis
    return r.output


def words(text: str) -> set[str]:
    """Every name in `text`: plain words, and cells (`imports_total[food,china]`) whole."""
    return set(re.findall(r"[A-Za-z0-9_]+", text)) | set(
        re.findall(r"[A-Za-z0-9_]+\[[A-Za-z0-9_,]+\]", text)
    )


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    tmp = tmp_path_factory.mktemp("w80")
    a, b = tmp / "continues", tmp / "ends"
    invoke("run", str(WAR_CONTINUES), "-n", "20", "-s", "1", "-w", "1", "--out", str(a))
    out = invoke("run", str(WAR_ENDS), "-n", "20", "-s", "1", "-w", "1", "--out", str(b))
    return a, b, out


def test_run_prints_every_outcome_name_whole(studies):
    _, _, out = studies
    model = load(WAR_ENDS)
    assert {o.name for o in model.outcomes} <= words(out)
    assert all(name in out for name in ALIKE)


def test_compare_prints_every_outcome_name_whole(studies):
    a, b, _ = studies
    out = invoke("compare", str(a), str(b), "--threshold", "china_import_share_end>0.9", prose=6)
    model = load(WAR_ENDS)
    # compare groups an array's cells under the array's name, each cell as [elements]
    for name in (o.name for o in model.outcomes):
        array, _, cell = name.partition("[")
        assert array in words(out), name
        assert not cell or f"[{cell}" in out or name in out, name
    # the one that differs is tabled with its unit; the one identical in every paired run is
    # listed whole in the line under the table
    assert "china_import_share_end (share)" in out
    assert "china_import_share_2024" in words(out.split("Identical in every paired run")[1])


def test_show_prints_every_name_whole():
    out = invoke("show", str(WAR_ENDS))
    model = load(WAR_ENDS)
    names = (
        {o.name for o in model.outcomes} | set(model.parameters) | {s.name for s in model.stocks}
    )
    # show lists an arrayed item once, with its dimensions: `russia_range[good]`
    assert {n.partition("[")[0] for n in names} <= words(out)


def test_sensitivity_prints_every_parameter_name_whole(tmp_path):
    out = invoke(
        "sensitivity", str(WAR_ENDS), "--outcome", ALIKE[0], "--runs", "32", "--top", "200",
        "-w", "1", "--out", str(tmp_path / "s"),
    )  # fmt: skip
    assert set(load(WAR_ENDS).sampled) <= words(out)
    assert ALIKE[0] in out


def render(renderable: object, width: int) -> str:
    console = Console(width=width, record=True, highlight=False)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()


def table(*rows: tuple[str, ...]) -> Table:
    out = Table("outcome", "mean", "p95", "unit", title="t")
    for row in rows:
        out.add_row(*row)
    return out


def test_fit_draws_a_table_that_fits_as_it_is():
    shown = render(Fit(table(("a", "1", "2", "t"))), 80)
    assert "┃ outcome ┃" in shown


def test_fit_widens_columns_by_whole_words_when_it_must_squeeze():
    long = "a description with many words that must wrap somewhere"
    shown = render(Fit(table(("china_import_share_end", "0.935", "0.962", long))), 60)
    assert "china_import_share_end" in shown and "0.935" in shown and "│" in shown
    assert "somewhere" in shown and "…" not in shown
    assert max(len(line) for line in shown.splitlines()) <= 60


def test_fit_stacks_the_rows_when_the_names_cannot_fit_beside_the_values():
    rows = [(name, "0.935", "0.962", "share") for name in ALIKE]
    shown = render(Fit(table(*rows)), 30)
    lines = shown.splitlines()
    assert ALIKE[0] in lines and ALIKE[1] in lines  # each name on a line of its own
    assert "0.935" in shown and "share" in shown and "…" not in shown
    narrow = render(Fit(table(*rows)), 16)  # too narrow even for the values in columns
    assert "china_import_sha" in narrow and "mean 0.935" in narrow
