"""`sim import`: a Vensim or XMILE model written as a scenario file."""

from __future__ import annotations

from pathlib import Path

import click

from sim.cli.common import FILE


@click.command("import")
@click.argument("model", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--out",
    "-o",
    type=FILE,
    default=None,
    help="Write the scenario here (default: print it).",
)
def import_command(model: Path, out: Path | None) -> None:
    """Write a Vensim (.mdl) or XMILE (.xmile, .stmx) MODEL as a scenario file.

    Every stock and variable is kept and recorded; what has no translation is refused, each
    construct named with its line (exit 2). Needs PySD: pip install -e '.[import]'. See
    docs/import.md."""
    from sim.imports import translate
    from sim.study.store import write_bytes

    imported = translate(model)
    if out is None:
        click.echo(imported.text, nl=False)
        return
    write_bytes(imported.text.encode("utf-8"), out)
    stocks = len(imported.stocks)
    click.echo(
        f"{out}: {stocks} stock{'s' * (stocks != 1)}, {len(imported.record)} recorded series "
        f"(from {model.name})",
        err=True,
    )
