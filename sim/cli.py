"""The `sim` command line: parse arguments, call the library, print. Nothing else lives here."""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from sim import describe
from sim.errors import ResultsError, ScenarioError
from sim.model import Model, load

USER_ERROR = 2
OUR_ERROR = 1


def _err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _out_console() -> Console:
    return Console(highlight=False, soft_wrap=False)


class _Group(click.Group):
    """Prints a user's mistake once, located, with exit 2; our own bugs exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except ScenarioError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            ctx.exit(USER_ERROR)
        except ResultsError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(USER_ERROR)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            else:
                click.echo(
                    f"internal error: {type(exc).__name__}: {exc}\n"
                    "This is a bug in sim, not in your scenario; rerun with --debug for a traceback.",
                    err=True,
                )
            ctx.exit(OUR_ERROR)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show a traceback for internal errors.")
@click.version_option(package_name="sim")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """sim: scenario simulation with stocks, flows and events, run as Monte Carlo."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


_FILE = click.Path(path_type=Path, dir_okay=False)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="Print only problems.")
def validate(files: tuple[Path, ...], quiet: bool) -> None:
    """Check scenario FILES: prints `ok` per file, or every problem found (exit 2)."""
    failed = False
    for file in files:
        try:
            model = load(file)
        except ScenarioError as exc:
            failed = True
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            continue
        if not quiet:
            missing = [n for n, spec in model.parameters.items() if not spec.source]
            note = f" ({len(missing)} parameters without a source: {', '.join(missing[:5])})" if missing else ""
            click.echo(f"{file}: ok{note}")
    if failed:
        sys.exit(USER_ERROR)


@cli.command()
@click.argument("file", type=_FILE)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "yaml", "dot"]),
    default="text",
    show_default=True,
    help="text for people; json/yaml (loads back) for tools; dot for Graphviz.",
)
def show(file: Path, fmt: str) -> None:
    """Show FILE's resolved scenario: parameters, stocks, flows, events, outcomes."""
    model = load(file)
    if fmt == "text":
        _out_console().print(describe.as_rich(model))
    elif fmt == "json":
        click.echo(describe.as_json(model))
    elif fmt == "yaml":
        click.echo(describe.as_yaml(model), nl=False)
    else:
        click.echo(describe.as_dot(model), nl=False)


def _load(file: Path) -> Model:
    return load(file)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="sim")


def _dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False, default=str)


if __name__ == "__main__":  # pragma: no cover
    main()
