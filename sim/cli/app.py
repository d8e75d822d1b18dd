"""The `sim` command group: every command, and how a user's mistake is printed (once, exit 2)."""

from __future__ import annotations

import traceback
import warnings
from typing import Any

import click

from sim.cli.analyse import discover_command, sensitivity_command, sweep_command
from sim.cli.calibrate import calibrate_command
from sim.cli.common import OUR_ERROR, USER_ERROR
from sim.cli.compare import compare, report
from sim.cli.run import run_command, show, trace, validate
from sim.errors import ResultsError, ScenarioError


class _Group(click.Group):
    """Prints a user's mistake once, located, with exit 2; our own bugs exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except ScenarioError as exc:
            # A located problem leads with file:line:col, like a compiler's; any other says
            # "error:", as a results folder's does.
            for problem in exc.problems:
                click.echo(str(problem) if problem.place else f"error: {problem}", err=True)
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
    warnings.formatwarning = _plain_warning


def _plain_warning(message: Warning | str, *_: Any, **__: Any) -> str:
    """A warning as the terminal shows it: `warning: ...`, not Python's file:line form."""
    return f"warning: {message}\n"


for command in (
    validate,
    show,
    run_command,
    trace,
    compare,
    report,
    sensitivity_command,
    sweep_command,
    discover_command,
    calibrate_command,
):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="sim")
