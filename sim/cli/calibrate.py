"""`sim calibrate`: a posterior from observations; parse arguments, call the library, print."""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from sim.analysis.calibrate import (
    DEFAULT_RUNS,
    RUNS_PER_PARTICLE,
    calibrate,
    check_target,
    default_folder,
    save,
)
from sim.cli.common import (
    FILE,
    block_size_option,
    dump_json,
    engine_option,
    executor_option,
    finite,
    max_memory_option,
    out_console,
    progress_bar,
    progress_option,
    scheduler_option,
    seed_option,
    workers_option,
)
from sim.model import load
from sim.present.calibration import TOP, held_out_summary, observation_cells, parameter_cells
from sim.scenario.observations import load_observations
from sim.study import store
from sim.study.guards import parse_size
from sim.study.posterior import POSTERIOR_FILE
from sim.study.runner import Execution


@click.command("calibrate")
@click.argument("file", type=FILE)
@click.option(
    "--observations",
    "observations_file",
    type=FILE,
    required=True,
    help='The observations file (YAML; docs/language.md, "Observations files").',
)
@click.option(
    "--runs",
    "-n",
    type=int,
    default=DEFAULT_RUNS,
    show_default=True,
    help=f"The simulation budget: at most this many runs in all; the sampler uses runs // "
    f"{RUNS_PER_PARTICLE} particles (100 to 4,000).",
)
@seed_option
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder to write [default: results/<scenario>-calibration].",
)
@click.option(
    "--force", is_flag=True, help="Write into a folder holding other files (or another scenario's)."
)
@click.option(
    "--plot",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a figure (prior vs posterior marginals, predictive intervals) to this image file.",
)
@click.option(
    "--keep-prior",
    "keep_prior",
    multiple=True,
    metavar="NAME",
    help="Hold this uncertain parameter at its prior (repeatable; an arrayed parameter's name "
    "means all its cells): every run draws it afresh and the posterior does not hold it. For "
    "parameters no observation can inform; the observations file's `keep_prior:` lists more.",
)
@click.option(
    "--top",
    type=int,
    default=TOP,
    show_default=True,
    help="Parameters to list: those that moved most (all are in manifest.json).",
)
@engine_option
@block_size_option
@workers_option
@executor_option
@scheduler_option
@max_memory_option
@click.option("--json", "as_json", is_flag=True, help="Print the folder's manifest as JSON.")
@progress_option
def calibrate_command(
    file: Path,
    observations_file: Path,
    runs: int,
    seed: int | None,
    out: Path | None,
    force: bool,
    plot: Path | None,
    keep_prior: tuple[str, ...],
    top: int,
    as_json: bool,
    progress: bool | None,
    max_memory: str | None,
    **study: Any,
) -> None:
    """The posterior of FILE's uncertain parameters given observed values.

    Fits the observations marked `use: calibrate` (Gaussian errors with the given sd) by
    sequential Monte Carlo with likelihood tempering on the scenario's own runs, per-tick
    noise included; held-out observations (`use: validate`) are only predicted. Writes
    posterior.parquet (one weighted row per posterior sample) and manifest.json to the
    folder, which `sim run --posterior` reads, and prints the parameters that moved most
    (prior vs posterior) and every observation against its posterior prediction.
    """
    if top < 1:
        raise click.UsageError("--top must be at least 1")
    model = load(file)
    observations = load_observations(observations_file)
    folder = out or default_folder(model.name)
    inputs = [*model.files, str(observations_file)]
    store.check_output_folder(folder, inputs, [store.MANIFEST, POSTERIOR_FILE])
    check_target(folder, model.name, force)  # before any run, as `sim run` does
    if plot is not None:
        from sim.present.figures import image_path_problem

        if why := image_path_problem(plot):
            raise click.UsageError(f"--plot {plot}: {why}")
        store.check_output(plot, plot.suffix.lstrip(".").lower() or "png", inputs, force, "--plot")
    execution = Execution(
        **study, max_memory=parse_size(max_memory) if max_memory is not None else None
    )
    show = sys.stderr.isatty() if progress is None else progress
    clock = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with progress_bar(show and not as_json) as bar:
            task = bar.add_task(f"{model.name}: calibrate", total=runs) if bar else None

            def tick(done: int, total: int) -> None:
                if bar is not None:
                    bar.update(task, completed=done, total=total)

            cal = calibrate(
                model,
                observations,
                runs=runs,
                seed=seed,
                progress=tick,
                execution=execution,
                keep_prior=keep_prior,
            )
    wall = time.perf_counter() - clock
    manifest = save(cal, folder, model, observations, force=force, wall_seconds=wall)
    written = [f"{folder}/"]
    if plot is not None:
        from sim.present.calibration import calibration_figure
        from sim.present.figures import save as save_figure

        written.append(str(save_figure(calibration_figure(cal, manifest), plot)))
    for w in caught:
        if not issubclass(w.category, DeprecationWarning):
            click.echo(f"warning: {w.message}", err=True)
    if as_json:
        click.echo(dump_json(finite({"folder": str(folder), **manifest})))
        return
    console = out_console()
    console.print(_table(parameter_cells(manifest, top), f"{model.name}: parameters"))
    hidden = len(cal.parameters) - min(top, len(cal.parameters))
    if hidden:
        console.print(
            f"[dim]The {min(top, len(cal.parameters))} parameters that moved most; "
            f"{hidden} more in {folder / store.MANIFEST}.[/dim]"
        )
    console.print(_table(observation_cells(manifest), "observations"))
    note = held_out_summary(manifest)
    console.print(
        "[dim]pred.: posterior predictive (simulated value plus observation error); z = "
        "(observed − predictive mean) / predictive sd." + (f" {note}." if note else "") + "[/dim]"
    )
    console.print(
        f"ESS {cal.ess:,.0f} of {cal.n:,} particles, {len(cal.stages)} tempering stages, "
        f"{cal.runs:,} runs; wrote {', '.join(written)} in {wall:.1f} s"
    )


def _table(cells: list[list[str]], title: str) -> Table:
    table = Table(title=escape(title), title_justify="left")
    head, *rows = cells
    for k, name in enumerate(head):
        table.add_column(escape(name), justify="left" if k == 0 else "right")
    for row in rows:
        table.add_row(*(escape(c) for c in row))
    return table
