"""`sim sensitivity`, `sim sweep`, `sim discover` and `sim drivers`: parse arguments, call the
library, print.

Each writes an analysis folder (`sim.analysis.saved`): a table as Parquet, a figure as PNG, and a
manifest, which `sim report` can embed.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.markup import escape
from rich.table import Table

from sim.analysis import saved as analyses
from sim.analysis.discover import ALPHA, MIN_COVERAGE, MIN_MASS, PRUNE, Discovery
from sim.analysis.discover import discover as run_discover
from sim.analysis.drivers import PERMUTATIONS, RESAMPLES
from sim.analysis.drivers import TOP as DRIVERS_TOP
from sim.analysis.drivers import drivers as run_drivers
from sim.analysis.sensitivity import DEFAULT_RUNS, TOP, Sensitivity, sensitivity
from sim.analysis.sweep import SUMMARY_COLUMNS, Sweep
from sim.analysis.sweep import sweep as run_sweep
from sim.cli.common import (
    FILE,
    dump_json,
    finite,
    out_console,
    progress_bar,
    progress_option,
    seed_option,
    study_options,
)
from sim.errors import ScenarioError
from sim.model import load
from sim.present.describe import posterior_line
from sim.present.numbers import number
from sim.present.tables import DRIVERS_WHOLE, Fit, drivers_legend, drivers_table
from sim.sampling.samplers import SAMPLERS
from sim.study import store
from sim.study.guards import parse_size
from sim.study.provenance import scenario_sha256
from sim.study.results import Results
from sim.study.runner import Execution

_out = click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder to write [default: results/<scenario>-<analysis>-<what>].",
)
_force = click.option(
    "--force",
    is_flag=True,
    help="Write into a folder holding other files, or another analysis of this kind.",
)
_json = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


class _ScenarioFile(click.Path):
    """A scenario file; a folder given instead (a run's results) is pointed to `sim drivers`."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if Path(value).is_dir():
            self.fail(
                f"{value} is a folder, not a scenario file; for what decides an outcome in "
                f"a results folder's runs (a posterior's included) use `sim drivers {value} "
                "--outcome NAME`",
                param,
                ctx,
            )
        return super().convert(value, param, ctx)


@click.command("sensitivity")
@click.argument("file", type=_ScenarioFile(path_type=Path, dir_okay=False))
@click.option(
    "--outcome",
    "outcomes",
    multiple=True,
    required=True,
    metavar="NAME",
    help="The outcome to explain (repeatable: several share the same runs); an arrayed "
    'outcome\'s name explains each of its cells, "store_end[food]" (quoted) one.',
)
@click.option(
    "--runs",
    "-n",
    type=int,
    default=DEFAULT_RUNS,
    show_default=True,
    help="N, the base sample (a power of 2, at least 32); the model runs N·(d+2) times for d "
    "parameters (twice with --baseline), in 8 independently scrambled replicates of N/8.",
)
@seed_option
@click.option(
    "--top",
    type=int,
    default=TOP,
    show_default=True,
    help="Parameters to list and plot per outcome (all are in the table file).",
)
@click.option(
    "--baseline",
    type=FILE,
    help="Explain the difference X(FILE) − X(BASELINE), both run on the same design and noise.",
)
@click.option(
    "--ratio",
    is_flag=True,
    help="With --baseline: explain X(FILE)/X(BASELINE) − 1 instead.",
)
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="NAME",
    help="Treat the arrayed parameter NAME as one input (repeatable): the design varies all "
    "its cells together and the indices are the group's, as SALib's groups. Without it "
    "each cell (need[food]) is an input of its own.",
)
@click.option(
    "--group-arrays",
    is_flag=True,
    help="Treat every arrayed parameter as one input, as --group does for one.",
)
@click.option("--resamples", type=int, hidden=True, help="Deprecated; ignored.")
@click.option(
    "--posterior",
    metavar="DIR",
    hidden=True,  # refused: said when tried, by analogy with `sim run --posterior`
    expose_value=False,
    callback=lambda ctx, param, value: _no_posterior(value),
)
@_out
@_force
@study_options("study")
@_json
@progress_option
def sensitivity_command(
    file: Path,
    outcomes: tuple[str, ...],
    runs: int,
    seed: int | None,
    top: int,
    baseline: Path | None,
    ratio: bool,
    groups: tuple[str, ...],
    group_arrays: bool,
    resamples: int | None,
    out: Path | None,
    force: bool,
    as_json: bool,
    progress: bool | None,
    **study: Any,
) -> None:
    """Which uncertain parameters drive an outcome: Sobol' first-order and total indices.

    Samples every uncertain parameter of FILE from its own distribution (a Saltelli design
    on a scrambled Sobol' sequence), runs the model N·(d+2) times, and prints the parameters
    ranked by total index, each index with a 95% interval (Student's t over 8 independently
    scrambled replicates). S1 is the share of the outcome's variance a parameter explains
    alone; ST adds its interactions. With --baseline, the same for the paired difference
    X(FILE) − X(BASELINE): both scenarios run the same design rows with the same noise. The
    runs are a study like `sim run`'s (workers, Dask, --resume), kept in the folder's study/
    (and baseline_study/).
    """
    if top < 1:
        raise click.UsageError("--top must be at least 1")
    if resamples is not None:
        click.echo(
            "warning: --resamples is deprecated and ignored: the intervals now come from "
            "replicated randomised QMC, not a bootstrap",
            err=True,
        )
    if ratio and baseline is None:
        raise click.UsageError("--ratio needs --baseline")
    model = load(file)
    base = load(baseline) if baseline is not None else None
    if group_arrays:
        # every arrayed parameter with an uncertain cell (a fixed array, such as a 0/1
        # selector, is no input at all)
        uncertain = {c.split("[", 1)[0] for c in model.sampled}
        groups = (
            *groups,
            *(a for a in model.arrays if a in model.scenario.parameters and a in uncertain),
        )
    folder = out or analyses.sensitivity_folder(
        model.name, outcomes, base.name if base is not None else ""
    )
    inputs = [*model.files, *(base.files if base is not None else [])]
    asked = analyses.identity(
        "sensitivity",
        scenario_sha256=scenario_sha256(model),
        baseline_sha256=scenario_sha256(base) if base is not None else None,
        outcomes=list(outcomes),
        runs=runs,
        seed=model.scenario.seed if seed is None else seed,
        ratio=ratio,
    )
    _check_folder(folder, "sensitivity", inputs, force, asked)
    clock = time.perf_counter()
    with _interruptible(folder, out), _bar(progress, as_json, f"{model.name}: sensitivity") as tick:
        res = sensitivity(
            model,
            outcomes,
            runs=runs,
            seed=seed,
            progress=tick,
            execution=_study(study, folder, force),
            baseline=base,
            ratio=ratio,
            groups=groups,
        )
    wall = time.perf_counter() - clock
    from sim.present.analysis_figures import sensitivity_figure

    folder = _save(res, _png(sensitivity_figure(res, top)), folder, force, wall, model, asked)
    if as_json:
        _echo_result(res, folder, "indices")
        return
    console = out_console()
    for outcome in res.outcomes:
        console.print(Fit(_sensitivity_table(res, outcome, top), whole=(1,)))
        console.print(
            f"[dim]First-order indices sum to {res.explained(outcome):.2f}: the rest of the "
            "variance comes from interactions"
            + (" and noise" if res.noisy_flows else "")
            + ".[/dim]"
        )
    console.print(
        "[dim]S1: share of the variance the parameter explains alone; ST: with all its "
        f"interactions. [ ]: {res.confidence:.0%} interval, Student's t over "
        f"{res.replicates} independently scrambled replicates.[/dim]"
    )
    console.print(f"wrote {folder}/ in {wall:.1f} s ({res.evaluations:,} runs)")


def _no_posterior(value: str | None) -> None:
    if value is not None:
        raise click.UsageError(
            "--posterior: Sobol' indices split an outcome's variance among independent "
            "parameters, each drawn from its own distribution; a posterior is joint (the data "
            "correlate its parameters), so the indices would not mean what they say. Run "
            "`sim run --posterior` and then `sim drivers` on its results folder (given-data "
            "indices, valid for dependent inputs), `sim sensitivity` on the priors, or "
            "`sim sweep --posterior` to see one lever's effect on the posterior"
        )


@click.command("sweep")
@click.argument("file", type=FILE)
@click.option(
    "--set",
    "settings",
    multiple=True,
    required=True,
    metavar="PARAM=VALUES",
    help="The lever and its values: V1,V2,... or START:STOP:STEP (STOP included); one cell "
    'of an arrayed parameter, quoted: "need[food]=80:120:10"; '
    "year-months (2027-06) for an event's time. Give it twice for two levers: the first "
    "on the x axis, the second a curve per value.",
)
@click.option(
    "--outcome",
    "outcomes",
    multiple=True,
    metavar="NAME",
    help="Outcome to show (repeatable; an arrayed outcome: every cell) [default: every outcome].",
)
@click.option(
    "--runs",
    "-n",
    type=int,
    help="Runs per value (per pair of values with two levers) [default: the scenario's runs].",
)
@seed_option
@click.option("--sampler", type=click.Choice(SAMPLERS), help="[default: the scenario's sampler].")
@click.option(
    "--posterior",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Draw the parameters the calibration folder DIR holds from its posterior (run i of "
    "every point the same sample, as `sim run --posterior`); a lever it holds is refused.",
)
@_out
@_force
@study_options("study")
@_json
@progress_option
def sweep_command(
    file: Path,
    settings: tuple[str, ...],
    outcomes: tuple[str, ...],
    runs: int | None,
    seed: int | None,
    sampler: str | None,
    posterior: Path | None,
    out: Path | None,
    force: bool,
    as_json: bool,
    progress: bool | None,
    **study: Any,
) -> None:
    """Run FILE at each value of one parameter (or two), with common random numbers.

    The parameter is fixed at each value in turn; every other parameter and noise path draws
    the same values at every point, so the outcome curves show the lever's effect alone.
    Prints each outcome's mean and p05/p25/p50/p75/p95 per value and draws them against it.
    With a second --set, runs every pair of values and prints, per value of the first, the
    median [p05, p95] for each value of the second, drawn as one curve each. The runs are a
    study like `sim run`'s (workers, Dask, --resume), kept in the folder's study/.
    """
    if len(settings) > 2:
        raise ScenarioError.one(
            f"--set is given {len(settings)} times; a sweep takes one lever, or two",
            hint="the first --set is the x axis, the second gives a curve per value",
        )
    levers = [_lever(setting) for setting in settings]
    model = load(file)
    by = levers[1][0] if len(levers) == 2 else ""
    folder = out or analyses.sweep_folder(model.name, levers[0][0], by)
    asked = analyses.identity(
        "sweep",
        scenario_sha256=scenario_sha256(model),
        levers=[f"{name}={values.strip()}" for name, values in levers],
        outcomes=list(outcomes),
        runs=model.scenario.runs if runs is None else runs,
        seed=model.scenario.seed if seed is None else seed,
        sampler=sampler or model.scenario.sampler,
    )
    _check_folder(folder, "sweep", model.files, force, asked)
    clock = time.perf_counter()
    with _interruptible(folder, out), _bar(progress, as_json, f"{model.name}: sweep") as tick:
        res = run_sweep(
            model,
            *levers[0],
            runs=runs,
            seed=seed,
            sampler=sampler,
            outcomes=outcomes or None,
            progress=tick,
            by=levers[1] if len(levers) == 2 else None,
            execution=_study(study, folder, force),
            posterior=posterior,
        )
    wall = time.perf_counter() - clock
    from sim.present.analysis_figures import sweep_figure

    folder = _save(res, _png(sweep_figure(res)), folder, force, wall, model, asked)
    if as_json:
        _echo_result(res, folder, "rows")
        return
    console = out_console()
    for name in res.outcomes:
        console.print(Fit(_sweep_grid_table(res, name) if res.by else _sweep_table(res, name)))
    points = len(res.values) * max(1, len(res.by_values))
    if res.by:
        console.print(
            "[dim]"
            + escape(
                f"{res.runs:,} runs per grid point ({len(res.values)} values of "
                f"{res.parameter} × {len(res.by_values)} of {res.by}), seed {res.seed}, "
                f"{res.sampler}; the same draws for every other parameter at every point "
                f"(priors: {res.parameter} {res.prior}; {res.by} {res.by_prior})."
            )
            + "[/dim]"
        )
    else:
        console.print(
            "[dim]"
            + escape(
                f"{res.runs:,} runs per value, seed {res.seed}, {res.sampler}; the same draws "
                f"for every other parameter at every value of {res.parameter} "
                f"(its prior: {res.prior})."
            )
            + "[/dim]"
        )
    for parameter, outside, prior in (
        (res.parameter, res.outside, res.prior),
        (res.by, res.by_outside, res.by_prior),
    ):
        if outside:
            console.print(
                "[yellow]"
                + escape(
                    f"{', '.join(outside)}: outside the range {parameter}'s prior "
                    f"draws ({prior}); the model is extrapolated there"
                )
                + "[/yellow]"
            )
    if any(res.nonfinite):
        per = f"per value of {res.by}, then of {res.parameter}" if res.by else "per value"
        console.print(
            f"[yellow]runs that went non-finite, {per}: {list(res.nonfinite)}; "
            "they are left out of the figures[/yellow]"
        )
    if res.posterior is not None:
        console.print(escape(posterior_line(res.posterior)))
    console.print(f"wrote {folder}/ in {wall:.1f} s ({res.runs * points:,} runs)")


def _lever(setting: str) -> tuple[str, str]:
    """PARAM and VALUES from one --set."""
    parameter, sep, values = setting.partition("=")
    if not sep or not parameter.strip():
        raise ScenarioError.one(
            f"--set {setting}: expected PARAM=VALUES",
            hint="e.g. --set war_end_month=2026-01:2029-12:6 or --set paid_share=0.2,0.5,0.8",
        )
    return parameter.strip(), values


@click.command("discover")
@click.argument("results", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--where",
    required=True,
    metavar="EXPR",
    help='Which runs are cases of interest, e.g. "food_shortfall_months > 24" '
    "(outcome and parameter names, the scenario expression language).",
)
@click.option(
    "--parameter",
    "parameters",
    multiple=True,
    metavar="NAME",
    help="Search only these parameters (repeatable) [default: every sampled parameter].",
)
@click.option("--boxes", type=int, default=1, show_default=True, help="Boxes to find (covering).")
@click.option(
    "--min-coverage",
    type=float,
    default=MIN_COVERAGE,
    show_default=True,
    help="Report the densest box holding at least this share of the cases.",
)
@click.option(
    "--alpha",
    type=float,
    default=ALPHA,
    show_default=True,
    help="Share of the box's runs peeled off per step.",
)
@click.option(
    "--min-mass",
    type=float,
    default=MIN_MASS,
    show_default=True,
    help="Stop peeling when the box holds less than this share of all runs.",
)
@click.option(
    "--prune",
    type=float,
    default=PRUNE,
    show_default=True,
    help="Significance level for keeping a box edge (0: keep every one).",
)
@click.option(
    "--paste/--no-paste",
    default=True,
    show_default=True,
    help="Widen the chosen box again while that keeps its density (PRIM's pasting).",
)
@_out
@_force
@_json
def discover_command(
    results: Path,
    where: str,
    parameters: tuple[str, ...],
    boxes: int,
    min_coverage: float,
    alpha: float,
    min_mass: float,
    prune: float,
    paste: bool,
    out: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Find the parameter ranges behind the runs in RESULTS where EXPR holds (PRIM).

    RESULTS is a folder written by `sim run`. PRIM peels the box of all runs, 5% at a time,
    towards the ranges of the sampled parameters where the cases of interest concentrate,
    and prints the box with its coverage (share of all cases inside) and density (share of
    the box's runs that are cases), and each restriction with what dropping it would cost.
    """
    clock = time.perf_counter()
    searched = Results.load(results)
    asked = analyses.identity(
        "discover",
        results=str(results),
        scenario_sha256=searched.manifest.get("scenario_sha256"),
        runs_sha256=searched.manifest.get("sha256", {}).get("runs.parquet"),
        where=where,
        parameters=list(parameters),
        boxes=boxes,
        min_coverage=min_coverage,
        alpha=alpha,
        min_mass=min_mass,
        prune=prune,
        paste=paste,
    )
    res = run_discover(
        searched,
        where,
        parameters=parameters or None,
        alpha=alpha,
        min_mass=min_mass,
        min_coverage=min_coverage,
        prune=prune,
        boxes=boxes,
        paste=paste,
    )
    wall = time.perf_counter() - clock
    from sim.present.analysis_figures import discover_figure

    folder = _save(res, _png(discover_figure(res)), out, force, wall, None, asked)
    if as_json:
        _echo_result(res, folder, "boxes")
        return
    console = out_console()
    console.print(
        escape(
            f"{res.scenario}: {res.cases:,} of {res.runs:,} runs have {res.where} "
            f"(base rate {res.base_density:.1%})"
            + (f"; {res.excluded} non-finite runs left out" if res.excluded else "")
        )
    )
    for box in res.boxes:
        console.print(Fit(_box_table(res, box.number)))
    console.print(
        "[dim]coverage: share of all cases inside the box; density: share of the box's runs "
        "that are cases. 'without': the box's density and coverage if that restriction were "
        "dropped. qp: chance that a box restricted on that parameter alone is this dense by "
        "luck (one-sided binomial).[/dim]"
    )
    console.print(f"wrote {folder}/")


_DIR = click.Path(path_type=Path, file_okay=False, exists=True)


@click.command("drivers")
@click.argument("results", type=_DIR)
@click.option(
    "--outcome",
    "outcomes",
    multiple=True,
    required=True,
    metavar="NAME",
    help="The outcome to explain (repeatable); an arrayed outcome's name explains each of "
    'its cells, "store_end[food]" (quoted) one.',
)
@click.option(
    "--baseline",
    type=_DIR,
    metavar="DIR",
    help="Explain the paired difference X(RESULTS) − X(DIR) run by run; the folders must be "
    "paired (same seed, sampler, runs and posterior, as `sim compare` pairs them).",
)
@click.option(
    "--top",
    type=int,
    default=DRIVERS_TOP,
    show_default=True,
    help="Inputs to list and plot per outcome (all are in the table file).",
)
@click.option(
    "--bins",
    type=int,
    metavar="M",
    help="Bins per input [default: round(N^(1/3)) for N runs, 2 to 100].",
)
@click.option(
    "--resamples",
    type=int,
    default=RESAMPLES,
    show_default=True,
    help="Bootstrap resamples of the runs for the intervals.",
)
@click.option(
    "--plot",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the figure (bars with intervals and noise floors) to this image file "
    "(.png, .svg, .pdf...).",
)
@_out
@_force
@_json
@click.option("--csv", "as_csv", is_flag=True, help="Print the table as CSV rows.")
def drivers_command(
    results: Path,
    outcomes: tuple[str, ...],
    baseline: Path | None,
    top: int,
    bins: int | None,
    resamples: int,
    plot: Path | None,
    out: Path | None,
    force: bool,
    as_json: bool,
    as_csv: bool,
) -> None:
    """What decides an outcome in RESULTS' runs as they are: given-data first-order indices.

    RESULTS is a folder written by `sim run`, with or without --posterior: no special design
    is needed, so the inputs may be dependent, as a posterior's are. For each sampled
    parameter (each cell of an arrayed one) it estimates η² = Var(E[Y|X])/Var(Y) by cutting
    the runs into equal-count bins on the parameter's quantiles (bias-corrected), with a
    bootstrap interval, a noise floor (the index of the parameter shuffled) and Spearman's
    rank correlation. With --baseline, Y is the paired difference RESULTS − DIR, run by run.
    Correlated inputs share credit: the shares need not sum to 1. Writes an analysis folder
    (drivers.parquet, drivers.png, manifest.json), which `sim report` shows.
    """
    if top < 1:
        raise click.UsageError("--top must be at least 1")
    if as_json and as_csv:
        raise click.UsageError("--json and --csv: choose one")
    clock = time.perf_counter()
    b = Results.load(results)
    a = Results.load(baseline) if baseline is not None else None
    if plot is not None:
        from sim.present.figures import image_path_problem

        if (why := image_path_problem(plot)) is not None:
            raise click.UsageError(f"--plot {plot}: {why}")
    runs_sha = [r.manifest.get("sha256", {}).get("runs.parquet") for r in (b, a) if r]
    asked = analyses.identity(
        "drivers",
        results=str(results),
        baseline=str(baseline) if baseline is not None else None,
        runs_sha256=runs_sha,
        outcomes=list(outcomes),
        bins=bins,
        resamples=resamples,
    )
    res = run_drivers(b, outcomes, a, bins=bins, resamples=resamples, permutations=PERMUTATIONS)
    wall = time.perf_counter() - clock
    from sim.present.analysis_figures import drivers_figure

    figure = drivers_figure(res, top)
    target = out or analyses.default_folder(res)
    inputs = [str(p) for p in (results, baseline) if p is not None]
    if plot is not None:
        store.check_output(plot, plot.suffix.lstrip(".").lower() or "png", inputs, force, "--plot")
    analyses.check_target(Path(target), "drivers", force, asked)
    writes = [store.MANIFEST, *analyses.tables(res), "drivers.png"]
    store.check_output_folder(Path(target), inputs, writes)
    analyses.save(res, target, _png(figure), wall_seconds=wall, force=force, identity=asked)
    if plot is not None:
        from sim.present.figures import save as save_figure

        save_figure(figure, plot)
    folder = Path(target)
    if as_json:
        _echo_result(res, folder, "drivers")
        return
    if as_csv:
        click.echo(_csv_rows(res.table().to_pylist()), nl=False)
        return
    console = out_console()
    for outcome in res.outcomes:
        console.print(Fit(drivers_table(res, outcome, top), whole=DRIVERS_WHOLE))
    for line in drivers_legend(res):
        console.print(f"[dim]{escape(line)}[/dim]")
    for name in res.flat:
        console.print(
            "[yellow]"
            + escape(f"{res.label(name)} takes one value in every run: nothing decides it")
            + "[/yellow]"
        )
    if res.constant:
        console.print(escape(f"left out, taking one value in every run: {', '.join(res.constant)}"))
    if res.baseline:
        console.print(f"[dim]{escape(res.pairing)}.[/dim]")
    if res.posterior is not None:
        console.print(escape(posterior_line(res.posterior)))
    console.print(f"wrote {folder}/" + (f" and {plot}" if plot is not None else ""))


def _csv_rows(rows: list[dict[str, Any]]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


# -- printing -----------------------------------------------------------------------------


def _sensitivity_table(res: Sensitivity, outcome: str, top: int) -> Table:
    ranked = res.ranked(outcome)
    unit = res.units.get(outcome, "")
    k = res.outcomes.index(outcome)
    table = Table(
        title=escape(
            f"{res.scenario}: what drives {res.label(outcome)} ({unit}; "
            f"mean {number(res.mean[k])}, sd {number(res.sd[k])}); N = {res.runs:,}, "
            f"{res.evaluations:,} runs, seed {res.seed}"
        ),
        title_justify="left",
    )
    ci = f"[{res.confidence:.0%} CI]"
    for col, justify in (
        ("#", "right"),
        ("parameter", "left"),
        ("ST (total)", "right"),
        (ci, "right"),
        ("S1 (first order)", "right"),
        (ci, "right"),
        ("distribution", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for ix in ranked[:top]:
        table.add_row(
            str(ix.rank),
            escape(ix.parameter)
            + (f" ({len(res.groups[ix.parameter])} cells)" if ix.parameter in res.groups else ""),
            f"{ix.total:.3f}",
            f"[{ix.total_low:.3f}, {ix.total_high:.3f}]",
            f"{ix.first:.3f}",
            f"[{ix.first_low:.3f}, {ix.first_high:.3f}]",
            res.distributions.get(ix.parameter, ""),
        )
    if len(ranked) > top:
        table.add_row("", f"… {len(ranked) - top} more (in sensitivity.parquet)", *[""] * 5)
    return table


def _sweep_table(res: Sweep, name: str) -> Table:
    unit = res.units.get(name, "")
    table = Table(title=escape(f"{name} ({unit}) against {res.parameter}"), title_justify="left")
    table.add_column(escape(res.parameter), justify="right")
    for stat in SUMMARY_COLUMNS:
        table.add_column(stat, justify="right")
    empty = res.runs - (res.outcome_values[name] == res.outcome_values[name]).sum(axis=1)
    if empty.any():
        table.add_column("no value", justify="right")
    for k, label in enumerate(res.labels):
        row = [label, *(number(float(v)) for v in res.stats[name][k])]
        if empty.any():
            row.append(f"{int(empty[k]):,}")
        table.add_row(*row)
    return table


def _sweep_grid_table(res: Sweep, name: str) -> Table:
    """A two-lever sweep: a row per value of the lever, a column per by-value."""
    unit = res.units.get(name, "")
    table = Table(
        title=escape(f"{name} ({unit}) against {res.parameter}, by {res.by}: median [p05, p95]"),
        title_justify="left",
    )
    table.add_column(escape(res.parameter), justify="right")
    by_unit = f" {res.by_unit}" if res.by_unit not in ("", "1") else ""
    for by_label in res.by_labels:
        table.add_column(escape(f"{res.by} = {by_label}{by_unit}"), justify="right")
    p05, p50, p95 = (SUMMARY_COLUMNS.index(k) for k in ("p05", "p50", "p95"))
    s = res.stats[name]
    for k, label in enumerate(res.labels):
        cells = [
            escape(
                f"{number(float(s[j, k, p50]))} [{number(float(s[j, k, p05]))}, "
                f"{number(float(s[j, k, p95]))}]"
            )
            for j in range(len(res.by_values))
        ]
        table.add_row(label, *cells)
    x = res.outcome_values[name]
    empty = int(np.isnan(x).sum())  # the run has no value, or went non-finite
    if empty:
        table.caption = (
            f"{empty:,} of {x.size:,} runs have no value; the count per point is in "
            "sweep.parquet (empty)"
        )
        table.caption_justify = "left"
    return table


def _box_table(res: Discovery, number_: int) -> Table:
    box = res.boxes[number_ - 1]
    table = Table(
        title=f"box {box.number}: coverage {box.coverage:.1%}, density {box.density:.1%}, "
        f"{box.runs:,} runs ({box.mass:.1%}) of which {box.cases:,} cases",
        title_justify="left",
    )
    for col, justify in (
        ("parameter", "left"),
        ("box", "right"),
        ("all runs", "right"),
        ("density without", "right"),
        ("coverage without", "right"),
        ("qp", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in box.restrictions:
        unit = res.units.get(r.parameter, "")
        shown = f" {unit}" if unit not in ("", "1") else ""
        table.add_row(
            escape(r.parameter),
            f"{number(r.low)} – {number(r.high)}{shown}",
            f"{number(r.full_low)} – {number(r.full_high)}",
            f"{r.density_without:.1%}",
            f"{r.coverage_without:.1%}",
            _p(r.qp),
        )
    if not box.restrictions:
        table.add_row("(none: no peel raised the density)", "", "", "", "", "")
    return table


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


# -- helpers ------------------------------------------------------------------------------


class _bar:
    """A progress bar on stderr when it is a terminal (or asked for); gives a tick callback."""

    def __init__(self, progress: bool | None, quiet: bool, label: str):
        show = sys.stderr.isatty() if progress is None else progress
        self.context = progress_bar(show and not quiet)
        self.label = label

    def __enter__(self) -> Callable[[int, int], None]:
        bar = self.context.__enter__()
        task = bar.add_task(self.label, total=None) if bar else None

        def tick(done: int, total: int) -> None:
            if bar is not None:
                bar.update(task, completed=done, total=total)

        return tick

    def __exit__(self, *exc: Any) -> None:
        self.context.__exit__(*exc)


def _check_folder(
    folder: Path, kind: str, inputs: Sequence[str], force: bool, asked: dict[str, Any]
) -> None:
    """Before a study starts: the folder may take this analysis (not another one of its kind,
    unless forced), and holds none of its inputs."""
    analyses.check_target(folder, kind, force, asked)
    store.check_output_folder(
        folder,
        inputs,
        [store.MANIFEST, analyses.STUDY, analyses.BASELINE_STUDY, *analyses.names(kind)],
    )


def _study(options: dict[str, Any], folder: Path, force: bool) -> Execution:
    """How a sweep or sensitivity command's study runs, its folder folder/study."""
    limit = options.pop("max_memory")
    return Execution(
        **options,
        out=folder / analyses.STUDY,
        force=force,
        max_memory=parse_size(limit) if limit is not None else None,
    )


@contextlib.contextmanager
def _interruptible(folder: Path, out: Path | None) -> Iterator[None]:
    """On Ctrl-C: exit 130 with the command that finishes the study."""
    try:
        yield
    except KeyboardInterrupt:
        args = ["sim", *sys.argv[1:]]
        if out is None:
            args += ["--out", str(folder)]
        if "--resume" not in args:
            args.append("--resume")
        click.echo(f"interrupted; resume with: {shlex.join(args)}", err=True)
        sys.exit(130)


def _save(
    res: Any,
    png: bytes,
    out: Path | None,
    force: bool,
    wall: float,
    model: Any,
    asked: dict[str, Any],
) -> Path:
    """Write an analysis folder (default: named after the analysis); return where."""
    folder = out or analyses.default_folder(res)
    inputs = model.files if model is not None else [res.source["folder"]]
    writes = [store.MANIFEST, *analyses.tables(res), f"{res.kind}.png"]
    store.check_output_folder(Path(folder), [p for p in inputs if p], writes)
    analyses.save(res, folder, png, model=model, wall_seconds=wall, force=force, identity=asked)
    return Path(folder)


def _echo_result(res: Any, folder: Path, key: str) -> None:
    """An analysis as JSON for scripts: what, where, its settings, and its rows under `key`."""
    _echo_json(
        {
            "kind": res.kind,
            "scenario": res.scenario,
            "folder": str(folder),
            "settings": res.settings(),
            key: res.table().to_pylist(),
        }
    )


def _png(figure: Any) -> bytes:
    # Figures are imported in the commands: matplotlib loads only when one is drawn.
    from sim.present.figures import png_bytes

    return png_bytes(figure)


def _echo_json(data: Any) -> None:
    click.echo(dump_json(finite(data)))
