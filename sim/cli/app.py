"""The `sim` command group: every command, and how a user's mistake is printed (once, exit 2)."""

from __future__ import annotations

import importlib
import traceback
import warnings
from typing import Any

import click

from sim.errors import OUR_ERROR, USER_ERROR, ResultsError, ScenarioError

# Every command: its name, the module and attribute that define it, and its one-line help as
# `sim --help` lists it. A command's module (and so numpy, scipy, pyarrow...) is imported
# only when that command runs, so `sim --help` and `sim CMD --help` of another stay quick;
# tests/cli/test_lazy.py checks each line against the command's own docstring.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate": (
        "sim.cli.run",
        "validate",
        "Check scenario FILES: prints `ok` per file, or every...",
    ),
    "show": ("sim.cli.run", "show", "Show FILE's resolved scenario: parameters, stocks, flows,..."),
    "run": (
        "sim.cli.run",
        "run_command",
        "Run FILE's scenario many times and summarise every outcome.",
    ),
    "trace": (
        "sim.cli.run",
        "trace",
        "Tell one run's story through the SimPy engine: its draws,...",
    ),
    "compare": (
        "sim.cli.compare",
        "compare",
        "Compare the outcome distributions of SOURCES, each against...",
    ),
    "report": (
        "sim.cli.compare",
        "report",
        "Write one self-contained HTML report comparing SOURCES...",
    ),
    "sensitivity": (
        "sim.cli.analyse",
        "sensitivity_command",
        "Which uncertain parameters drive an outcome: Sobol'...",
    ),
    "sweep": (
        "sim.cli.analyse",
        "sweep_command",
        "Run FILE at each value of one parameter (or two), with...",
    ),
    "discover": (
        "sim.cli.analyse",
        "discover_command",
        "Find the parameter ranges behind the runs in RESULTS where...",
    ),
    "drivers": (
        "sim.cli.analyse",
        "drivers_command",
        "What decides an outcome in RESULTS' runs as they are:...",
    ),
    "import": (
        "sim.cli.imports",
        "import_command",
        "Write a Vensim (.mdl) or XMILE (.xmile, .stmx) MODEL as a...",
    ),
    "explore": (
        "sim.cli.explore",
        "explore_command",
        "Explore SCENARIO's levers in the browser, against...",
    ),
    "calibrate": (
        "sim.cli.calibrate",
        "calibrate_command",
        "The posterior of FILE's uncertain parameters given observed...",
    ),
}


class _Group(click.Group):
    """Prints a user's mistake once, located, with exit 2; our own bugs exit 1. Loads each
    command's module when the command is asked for (`COMMANDS`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[name]
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="sim")
