"""`sim validate`, `sim show`, `sim run` and `sim trace`: one scenario at a time."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.markup import escape
from rich.table import Table

from sim.cli.common import (
    FILE,
    USER_ERROR,
    block_size_option,
    dump_json,
    engine_option,
    executor_option,
    max_memory_option,
    out_console,
    progress_bar,
    progress_option,
    resume_option,
    scheduler_option,
    seed_option,
    workers_option,
)
from sim.errors import ResultsError, ScenarioError
from sim.model import Model, load
from sim.present import describe
from sim.present.numbers import number
from sim.present.tables import Fit
from sim.sampling.samplers import SAMPLERS
from sim.scenario import sources
from sim.study.guards import parse_size
from sim.study.posterior import Posterior, check, read_posterior
from sim.study.results import Results
from sim.study.runner import run as api_run
from sim.study.runner import trace_run


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="Print only problems.")
def validate(files: tuple[Path, ...], quiet: bool) -> None:
    """Check scenario FILES: prints `ok` per file, or every problem found (exit 2).

    Two passes: the file's shape (keys, types, allowed values), then, once that is right, the
    names and expressions that connect its sections."""
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
            note = (
                f" ({len(missing)} parameter{'s' * (len(missing) != 1)} without a source: "
                f"{', '.join(missing[:5])})"
                if missing
                else ""
            )
            click.echo(f"{file}: ok{note}")
            for warning in sources.warnings(model.scenario, model.place):
                click.echo(f"warning: {warning}", err=True)
    if failed:
        sys.exit(USER_ERROR)


posterior_option = click.option(
    "--posterior",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Draw the parameters the calibration folder DIR holds (written by `sim calibrate`) "
    "from its posterior, run i taking sample J(i) chosen by seed and run alone, so studies "
    "on one posterior stay paired; the others as usual.",
)


def _posterior(folder: Path | None, model: Model) -> Posterior | None:
    """The posterior at `folder`, checked against `model` (every mismatch at once)."""
    if folder is None:
        return None
    posterior = read_posterior(folder)
    check(posterior, model)
    return posterior


@click.command()
@click.argument("file", type=FILE)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "yaml", "dot"]),
    default="text",
    show_default=True,
    help="text for people; json/yaml (loads back) for tools; dot for Graphviz.",
)
@click.option(
    "--posterior",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Also say which parameters a run with --posterior DIR draws from that calibration "
    "(text format).",
)
def show(file: Path, fmt: str, posterior: Path | None) -> None:
    """Show FILE's resolved scenario: parameters, stocks, flows, events, outcomes."""
    model = load(file)
    drawn_from = _posterior(posterior, model)
    if fmt == "text":
        out_console().print(describe.as_rich(model, drawn_from))
    elif fmt == "json":
        click.echo(describe.as_json(model))
    elif fmt == "yaml":
        click.echo(describe.as_yaml(model), nl=False)
    else:
        click.echo(describe.as_dot(model), nl=False)


def _precision(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, float]:
    out = {}
    for value in values:
        name, sep, rel = value.rpartition(":")
        try:
            out[name] = float(rel.rstrip("%")) / (100 if rel.endswith("%") else 1)
        except ValueError:
            name, sep = "", ""
        if not sep or not name:
            raise click.BadParameter(f"'{value}' is not OUTCOME:REL (e.g. fx_from_russia:0.01)")
    return out


@click.command("run")
@click.argument("file", type=FILE)
@click.option(
    "--runs",
    "-n",
    type=int,
    help="Number of runs (with --precision, the cap) [default: the scenario's runs].",
)
@seed_option
@click.option(
    "--sampler",
    type=click.Choice(SAMPLERS),
    help=f"{', '.join(SAMPLERS[:-1])} or {SAMPLERS[-1]} [default: the scenario's].",
)
@engine_option
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path, file_okay=False),
    help="Results folder [default: results/<scenario name>].",
)
@click.option(
    "--keep-paths",
    type=int,
    default=0,
    show_default=True,
    help="Also write full recorded paths of the first K runs (paths.parquet).",
)
@block_size_option
@workers_option
@executor_option
@scheduler_option
@resume_option("run")
@click.option(
    "--precision",
    "precision",
    multiple=True,
    metavar="OUTCOME:REL",
    callback=_precision,
    help="Add blocks until the 95% half-width of OUTCOME's mean is below REL of it "
    "(0.01 or 1%); repeatable; --runs is the cap.",
)
@posterior_option
@max_memory_option
@click.option("--force", is_flag=True, help="Replace a folder holding another scenario's results.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@progress_option
def run_command(
    file: Path,
    runs: int | None,
    seed: int | None,
    sampler: str | None,
    engine: str,
    out: Path | None,
    keep_paths: int,
    block_size: int,
    workers: int | None,
    executor: str,
    scheduler: str | None,
    resume: bool,
    precision: dict[str, float],
    posterior: Path | None,
    max_memory: str | None,
    force: bool,
    as_json: bool,
    progress: bool | None,
) -> None:
    """Run FILE's scenario many times and summarise every outcome.

    Writes manifest.json, runs.parquet and bands.parquet (and paths.parquet with
    --keep-paths) into the results folder, then prints mean, p05, p50 and p95 per outcome.
    Blocks of runs go to every core (or a Dask cluster) and land in the folder as they
    finish; the results are the same bits for any --workers, --executor or --block-size.
    Interrupted (Ctrl-C, a kill, a power cut), it resumes with --resume. With --posterior
    DIR the parameters a calibration holds come from its posterior (runs.parquet then has
    a posterior_sample column: the posterior row each run took).
    """
    model = load(file)
    drawn_from = _posterior(posterior, model)  # refused before any folder is touched
    folder = out or Path("results") / model.name
    finished = resume and _complete(folder)  # then nothing runs: say so, not "wrote"
    memory_limit = parse_size(max_memory) if max_memory is not None else None
    show_bar = sys.stderr.isatty() if progress is None else progress
    try:
        with progress_bar(show_bar and not as_json) as bar:
            task = bar.add_task(model.name, total=runs or model.scenario.runs) if bar else None

            def tick(done: int, total: int) -> None:
                if bar is not None:
                    bar.update(task, completed=done, total=total)

            res = api_run(
                model,
                runs=runs,
                seed=seed,
                sampler=sampler,
                engine=engine,
                block_size=block_size,
                out=folder,
                keep_paths=keep_paths,
                force=force,
                progress=tick,
                workers=workers,
                executor=executor,
                scheduler=scheduler,
                resume=resume,
                precision=precision,
                max_memory=memory_limit,
                posterior=drawn_from,
            )
    except KeyboardInterrupt:
        again = _resume_command(file, model, folder, click.get_current_context().params)
        click.echo(f"interrupted; resume with: {again}", err=True)
        sys.exit(130)
    _print_summary(res, folder, engine, as_json, finished)


def _complete(folder: Path) -> bool:
    """Whether `folder` holds a finished study (one `--resume` has nothing left to do for)."""
    try:
        return bool(Results.load(folder).manifest.get("complete"))
    except ResultsError:
        return False


def _resume_command(file: Path, model: Model, folder: Path, params: dict[str, Any]) -> str:
    """The `sim run` command that finishes this study: every setting spelled out."""
    sc = model.scenario
    args = ["sim", "run", str(file), "--out", str(folder)]
    args += ["--runs", str(params["runs"] if params["runs"] is not None else sc.runs)]
    args += ["--seed", str(params["seed"] if params["seed"] is not None else sc.seed)]
    args += ["--sampler", params["sampler"] or sc.sampler, "--engine", params["engine"]]
    args += ["--block-size", str(params["block_size"])]
    if params["keep_paths"]:
        args += ["--keep-paths", str(params["keep_paths"])]
    for name, rel in params["precision"].items():
        args += ["--precision", f"{name}:{rel:g}"]
    if params["workers"] is not None:
        args += ["--workers", str(params["workers"])]
    if params["executor"] != "processes":
        args += ["--executor", params["executor"]]
    if params["scheduler"]:
        args += ["--scheduler", params["scheduler"]]
    if params["max_memory"]:
        args += ["--max-memory", params["max_memory"]]
    if params.get("posterior"):
        args += ["--posterior", str(params["posterior"])]
    return shlex.join([*args, "--resume"])


def _print_summary(
    res: Results, folder: Path, engine: str, as_json: bool, finished: bool = False
) -> None:
    summary = res.summary()
    nonfinite = res.nonfinite
    precision = res.manifest.get("precision")
    if as_json:
        click.echo(
            dump_json(
                {
                    "scenario": res.name,
                    "folder": str(folder),
                    "runs": res.n_runs,
                    "seed": res.seed,
                    "sampler": res.sampler,
                    "engine": engine,
                    "executor": res.manifest.get("executor"),
                    "wall_seconds": res.manifest["wall_seconds"],
                    "already_complete": finished,
                    "nonfinite_runs": nonfinite["runs"],
                    "nonfinite": nonfinite,
                    "precision": precision,
                    "posterior": res.manifest.get("posterior"),
                    "outcomes": [row.as_dict() for row in summary],
                }
            )
        )
        return
    table = Table(
        title=f"{res.name}: {res.n_runs:,} runs, seed {res.seed}, {res.sampler}",
        title_justify="left",
    )
    table.add_column("outcome")
    for col in ("mean", "p05", "p50", "p95"):
        table.add_column(col, justify="right")
    table.add_column("± mcse", justify="right", style="dim")
    table.add_column("unit")
    for row in summary:
        name = row.name + (f" ({row.empty} never)" if row.empty else "")
        table.add_row(
            escape(name),  # a cell's name, store[food], is not markup
            number(row.mean),
            number(row.p05),
            number(row.p50),
            number(row.p95),
            number(row.mcse),
            row.unit,
        )
    console = out_console()
    console.print(Fit(table))
    if (drawn := res.manifest.get("posterior")) is not None:
        console.print(escape(describe.posterior_line(drawn)))
    if finished:
        console.print(
            f"{folder}/ was already complete, nothing to resume: it finished "
            f"{res.manifest.get('finished', '?')} after {res.manifest['wall_seconds']:.2f} s"
        )
    else:
        console.print(f"wrote {folder}/ in {res.manifest['wall_seconds']:.2f} s")
    if precision:
        reached = ", ".join(
            f"{name} ±{_pct(o['relative'])} (target {_pct(o['requested'])})"
            for name, o in precision["outcomes"].items()
        )
        verdict = "met" if precision["met"] else "[yellow]not met[/yellow]"
        console.print(
            f"precision {verdict} after {precision['runs_used']:,} of at most "
            f"{precision['runs_cap']:,} runs: {reached}"
        )
    if nonfinite["runs"]:
        culprits = ", ".join(f"{name} ({n:,} runs)" for name, n in nonfinite["by_name"].items())
        first = nonfinite["first"]
        console.print(
            f"[yellow]{nonfinite['runs']:,} runs went non-finite (the batch went on); "
            f"culprit: {culprits}; first: run {first['run']} at tick {first['tick']}. "
            "See the status, bad_tick and bad_name columns of runs.parquet.[/yellow]"
        )


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.3g}%"


@click.command()
@click.argument("file", type=FILE)
@click.option(
    "--run", "run_index", type=int, default=0, show_default=True, help="Which run to trace."
)
@click.option(
    "--runs", "-n", type=int, help="The study's run count (LHS and Sobol draws depend on it)."
)
@seed_option
@click.option("--sampler", type=click.Choice(SAMPLERS), help="[default: the scenario's sampler].")
@posterior_option
@click.option("--all", "everything", is_flag=True, help="Also list every shipment and arrival.")
@click.option("--json", "as_json", is_flag=True, help="Print the event log as JSON.")
def trace(
    file: Path,
    run_index: int,
    runs: int | None,
    seed: int | None,
    sampler: str | None,
    posterior: Path | None,
    everything: bool,
    as_json: bool,
) -> None:
    """Tell one run's story through the SimPy engine: its draws, events and outcomes."""
    model = load(file)
    drawn_from = _posterior(posterior, model)
    story = trace_run(model, run_index, runs=runs, seed=seed, sampler=sampler, posterior=drawn_from)
    if as_json:
        click.echo(
            dump_json(
                {
                    "scenario": model.name,
                    "run": run_index,
                    "posterior_sample": story.posterior_sample,
                    "parameters": story.parameters,
                    "log": [
                        {**entry.__dict__, "date": model.date(entry.tick)}
                        for entry in story.run.log
                    ],
                    "outcomes": {
                        k: (v if np.isfinite(v) else None) for k, v in story.run.outcomes.items()
                    },
                }
            )
        )
        return
    console = out_console()
    console.print(
        f"[bold]{model.name}[/bold], run {run_index} (seed {story.seed}, {story.sampler}, "
        f"of {story.runs} runs)"
    )
    if drawn_from is not None:
        console.print(
            escape(
                f"posterior sample {story.posterior_sample} of {drawn_from.folder} "
                f"(sha256 {drawn_from.short}…) for: {', '.join(drawn_from.names)}"
            )
        )
    if story.parameters:
        console.print(
            "drawn: " + escape(", ".join(f"{k} = {number(v)}" for k, v in story.parameters.items()))
        )
    quiet = set() if everything else {"ship", "arrive"}
    last = None
    digits = len(str(max(model.ticks - 1, 0)))  # ticks padded alike, so columns line up
    for entry in story.run.log:
        if entry.kind in quiet:
            continue
        date = model.date(entry.tick)
        head = (
            f"{date} (tick {entry.tick:>{digits}})"
            if date != last
            else " " * (len(date) + digits + 8)
        )
        last = date
        amount = (
            f" {number(entry.amount)}"
            if entry.amount is not None and entry.kind != "ration"
            else ""
        )
        told = f"{entry.kind:<8} {entry.name}{amount} {entry.detail}".rstrip()
        console.print(f"{head}  {escape(told)}")  # cells (store[food]) are not markup
    console.print(
        "outcomes: "
        + escape(
            ", ".join(
                f"{o.name} = {number(story.run.outcomes[o.name])} {o.unit}" for o in model.outcomes
            )
        )
    )
