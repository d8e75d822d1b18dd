"""What every command shares: consoles, exit codes, the progress bar, JSON output."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from sim.engine import ENGINES
from sim.errors import OUR_ERROR as OUR_ERROR  # re-exported: what the commands exit with
from sim.errors import USER_ERROR as USER_ERROR
from sim.study.executors import EXECUTORS
from sim.study.runner import DEFAULT_BLOCK

F = TypeVar("F", bound=Callable[..., Any])

FILE = click.Path(path_type=Path, dir_okay=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def out_console() -> Console:
    # Piped output goes to files and scripts: don't squeeze tables into 80 columns (unless
    # COLUMNS says how wide, as for any terminal program).
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
    return Console(highlight=False, soft_wrap=False, width=width)


def progress_bar(enabled: bool) -> Any:
    if not enabled:
        return contextlib.nullcontext(None)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console(),
        transient=True,
    )


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False, default=str)


def finite(data: Any) -> Any:
    """NaN and infinities as null: JSON has no word for them."""
    if isinstance(data, float):
        return data if data == data and abs(data) != float("inf") else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite(v) for v in data]
    return data


# -- how a study runs: the same options on every command that runs one ---------------------
engine_option = click.option(
    "--engine",
    type=click.Choice(list(ENGINES)),
    default="kernel",
    show_default=True,
    help="kernel (numpy, fast), des (SimPy reference, slow) or numba (compiled; needs "
    "pip install -e '.[fast]').",
)
block_size_option = click.option(
    "--block-size",
    type=int,
    default=DEFAULT_BLOCK,
    show_default=True,
    help="Runs per block (the unit of work; results don't depend on it).",
)
workers_option = click.option(
    "--workers",
    "-w",
    type=int,
    help="Blocks run at once in worker processes; 1 = serial [default: all cores, "
    "when the first block shows the study will take more than a few seconds].",
)
executor_option = click.option(
    "--executor",
    type=click.Choice(EXECUTORS),
    default="processes",
    show_default=True,
    help="processes (a local pool) or dask (needs the Dask extra: pip install -e '.[dask]' "
    "in the checkout).",
)
scheduler_option = click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="With --executor dask: join the cluster at ADDRESS [default: start a local one].",
)
max_memory_option = click.option(
    "--max-memory",
    metavar="SIZE",
    help="Run even if the study's memory estimate exceeds 3/4 of this machine's, up to "
    "SIZE (e.g. 40GiB).",
)


def resume_option(what: str) -> Any:
    return click.option(
        "--resume",
        is_flag=True,
        help=f"Finish an interrupted {what} in its folder (same options as it started with).",
    )


seed_option = click.option("--seed", "-s", type=int, help="Seed [default: the scenario's seed].")
progress_option = click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar [default: on when stderr is a terminal].",
)


def study_options(what: str) -> Callable[[F], F]:
    """Every option of how a study runs, for a command whose runs are a study of `what`."""
    options = [
        engine_option,
        block_size_option,
        workers_option,
        executor_option,
        scheduler_option,
        resume_option(what),
        max_memory_option,
    ]

    def apply(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return apply
