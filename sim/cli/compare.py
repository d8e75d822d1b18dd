"""`sim compare` and `sim report`: parse arguments, gather results, call the library, print.

Both take results folders or scenario files; scenario files are run first (in memory, not
written to disk) with one seed, sampler and run count, taken from the options, else from the
first results folder given, else from the first scenario, so that they come out paired.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from sim.analysis.compare import ROW_FIELDS, Comparison, kept_runs
from sim.analysis.compare import compare as compare_results
from sim.cli.common import dump_json
from sim.errors import ResultsError
from sim.model import load
from sim.present.tables import Fit, comparison_cells, threshold_cells
from sim.sampling.samplers import SAMPLERS
from sim.study import store
from sim.study.manifest import is_analysis, read_json
from sim.study.results import Results

if TYPE_CHECKING:
    from sim.study.posterior import Posterior

# Analysis folders, scenario files and posteriors are the less common sources: what reads or
# runs them is imported when they are given (a comparison of two results folders waits for
# the imports it needs, nothing more).

SCENARIO_SUFFIXES = (".yaml", ".yml")

_sources = click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
_outcome = click.option(
    "--outcome",
    "outcomes",
    multiple=True,
    metavar="NAME",
    help="Compare only this outcome (repeatable) [default: every shared outcome]: an arrayed "
    'outcome\'s name for every cell of it, or one cell, quoted: "store_end[food]".',
)
_given = click.option(
    "--given",
    metavar="EXPR",
    help="Compare only the runs where this condition on parameters holds, e.g. "
    '"war_end_month <= 35": evaluated on the first study, the same runs kept in every study '
    "(they must be paired). Output says how many runs were kept.",
)
_threshold = click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="EXPR",
    help='P(condition) per scenario and its difference B − A, e.g. "food_shortfall_months '
    "> 24\": a condition over each run's outcomes and parameters (repeatable).",
)
_runs = click.option("--runs", "-n", type=int, help="Runs for scenario files given as SOURCES.")
_seed = click.option("--seed", "-s", type=int, help="Seed for scenario files given as SOURCES.")
_sampler = click.option(
    "--sampler", type=click.Choice(SAMPLERS), help="Sampler for scenario files given as SOURCES."
)
_posterior = click.option(
    "--posterior",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Draw scenario files' parameters from this calibration folder's posterior, as "
    "`sim run --posterior` does (every scenario file on the same one, so they stay paired).",
)


@click.command()
@_sources
@_outcome
@_given
@_threshold
@_runs
@_seed
@_sampler
@_posterior
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the comparison as CSV rows.")
@click.option(
    "--xlsx",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the comparison (the --csv rows, and what they mean) to this Excel "
    "workbook; needs openpyxl (pip install -e '.[excel]').",
)
@click.option(
    "--plot",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the outcome figure (ECDFs and differences) to this image file; also writes "
    "fan charts of recorded series beside it as <name>_fan<suffix> unless --fan is given.",
)
@click.option(
    "--fan",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write fan charts of the recorded series to this image file.",
)
@click.option("--force", is_flag=True, help="Replace existing files that are not sim figures.")
def compare(
    sources: tuple[Path, ...],
    outcomes: tuple[str, ...],
    given: str | None,
    thresholds: tuple[str, ...],
    runs: int | None,
    seed: int | None,
    sampler: str | None,
    posterior: Path | None,
    as_json: bool,
    as_csv: bool,
    xlsx: Path | None,
    plot: Path | None,
    fan: Path | None,
    force: bool,
) -> None:
    """Compare the outcome distributions of SOURCES, each against the first.

    SOURCES are results folders written by `sim run`, or scenario files, which are run
    first with the same seed, sampler and runs. Per shared outcome it prints each scenario's
    mean, p05, p50, p95 and Monte Carlo standard error, and each scenario minus the first:
    the mean and median difference with 95% intervals (a percentile bootstrap below 5,000
    runs, normal and order-statistic intervals from there), P(B > A), the two-sample
    KS statistic and the Wasserstein distance. Runs are paired (common random numbers) when
    the results share their seed, sampler, run count and posterior (`sim run --posterior`,
    or none); the output says so, and which posterior, with its observation table. --given
    keeps the paired runs where a condition on parameters holds; --threshold adds
    P(condition) per scenario and its paired difference, with Newcombe's interval.
    """

    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    if plot is not None or fan is not None:
        from sim.present.figures import (
            image_path_problem,  # matplotlib only when a figure is asked for
        )

        fan = fan or (_fan_beside(plot) if plot is not None else None)
        if plot is not None and fan is not None and store.same_file(plot, fan):
            raise click.UsageError("--plot and --fan name the same file")
        for flag, path in (("--plot", plot), ("--fan", fan)):
            if path is not None and (why := image_path_problem(path)):
                raise ResultsError(f"{flag} {path}: {why}")  # before anything runs
            if path is not None:
                store.check_output(path, _image_kind(path), sources, force, flag)
    if xlsx is not None:
        store.check_output(xlsx, "xlsx", sources, force, "--xlsx")
    results = _gather(sources, runs, seed, sampler, quiet=as_json or as_csv, posterior=posterior)
    table = compare_results(*results, outcomes=outcomes or None, given=given, thresholds=thresholds)
    written = _write_plots(table, results, plot, fan)
    if xlsx is not None:
        from sim.present.workbook import comparison_workbook  # openpyxl only when asked

        store.write_bytes(comparison_workbook(table, _about(results)), xlsx)
        written.append(xlsx)
    if as_json:
        click.echo(dump_json(table.as_dict()))
    elif as_csv:
        click.echo(_csv(table), nl=False)
    else:
        console = _console()
        _print_table(console, table, results)
        if table.thresholds:
            rows = threshold_cells(table)
            console.print(
                Fit(
                    _rich_table(
                        "Threshold probabilities"
                        + (f" ({table.given.kept:,} kept runs)" if table.given else ""),
                        rows,
                        list(range(len(rows[0][1]))),
                        {"outcome", "scenario", "difference"},
                    )
                )
            )
        for line in table.legend():
            console.print(f"[dim]{escape(line)}[/dim]", soft_wrap=True)
        _print_posteriors(console, table)
    for path in written:
        click.echo(f"wrote {path}", err=as_json or as_csv)


@click.command()
@_sources
@_outcome
@_given
@_threshold
@_runs
@_seed
@_sampler
@_posterior
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("report.html"),
    show_default=True,
    help="The HTML file to write.",
)
@click.option("--title", help="Page title [default: 'Scenario comparison: A vs B'].")
@click.option("--force", is_flag=True, help="Replace an existing file that is not a sim report.")
def report(
    sources: tuple[Path, ...],
    outcomes: tuple[str, ...],
    given: str | None,
    thresholds: tuple[str, ...],
    runs: int | None,
    seed: int | None,
    sampler: str | None,
    posterior: Path | None,
    out: Path,
    title: str | None,
    force: bool,
) -> None:
    """Write one self-contained HTML report comparing SOURCES (figures embedded).

    SOURCES are as for `sim compare`. The page lists what was run (scenarios, descriptions,
    seeds, runs, versions, scenario hashes), what differs between the scenarios, the
    comparison table, outcome and fan-chart figures, and every parameter with its source.
    SOURCES may also be folders written by `sim sensitivity`, `sim sweep` or `sim discover`:
    each becomes a section with its table and figure (a report may hold only those).
    """
    from sim.analysis.saved import load as load_analysis
    from sim.analysis.saved import stale as stale_analysis
    from sim.present.report import render

    store.check_output(out, "html", sources, force, "--out")  # before anything runs
    studies = tuple(p for p in sources if not _analysis_folder(p))
    shown = [load_analysis(p) for p in sources if _analysis_folder(p)]
    if len(studies) == 1:
        raise click.UsageError(
            "give at least two results folders or scenario files to compare, "
            "or only analysis folders"
        )
    if studies:
        results = _gather(studies, runs, seed, sampler, quiet=False, posterior=posterior)
        table: Comparison | None = compare_results(
            *results, outcomes=outcomes or None, given=given, thresholds=thresholds
        )
    else:
        if (
            runs is not None
            or seed is not None
            or sampler is not None
            or posterior is not None
            or given is not None
            or thresholds
        ):
            raise click.UsageError(
                "--runs, --seed, --sampler, --posterior, --given and --threshold apply only to "
                "a comparison"
            )
        results, table = [], None
        if outcomes:
            from sim.present.report_sections import about

            known = list(dict.fromkeys(o for a in shown for o in about(a)))
            if not any(o in known for o in outcomes):
                raise ResultsError(
                    f"--outcome {', '.join(outcomes)}: none of the analyses is about it "
                    f"(they are about: {', '.join(known) or 'nothing'})"
                )
    for saved in shown:
        if why := stale_analysis(saved, results):
            click.echo(f"warning: left {saved.folder} out of the report: {why}", err=True)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = render(
        table, results, title=title, generated=now, analyses=shown, outcomes=outcomes or None
    )
    try:
        with store.atomic(out) as tmp:
            tmp.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ResultsError(f"{out}: cannot write the report ({exc.strerror})") from None
    click.echo(f"wrote {out} ({len(page) / 1e6:.1f} MB)")


# -- helpers ------------------------------------------------------------------------------


def _gather(
    sources: tuple[Path, ...],
    runs: int | None,
    seed: int | None,
    sampler: str | None,
    quiet: bool,
    posterior: Path | None = None,
) -> list[Results]:
    """Results for each source: folders loaded, scenario files run with shared settings
    (and, with `posterior`, all drawn from that calibration)."""
    if len(sources) < 2:
        raise click.UsageError("give at least two results folders or scenario files")
    is_scenario = [p.suffix.lower() in SCENARIO_SUFFIXES and not p.is_dir() for p in sources]
    loaded: dict[int, Results] = {}
    for k, path in enumerate(sources):
        if not is_scenario[k]:
            if _analysis_folder(path):
                from sim.analysis.saved import kind_of

                kind = kind_of(path) or "damaged"
                raise ResultsError(
                    f"{path} holds a {kind} analysis, not a run's results; "
                    "`sim report` can show it beside a comparison"
                )
            loaded[k] = Results.load(path)
    if any(is_scenario):
        from sim.study.posterior import read_posterior
        from sim.study.runner import run as run_model

        models = {k: load(p) for k, p in enumerate(sources) if is_scenario[k]}
        base = next(iter(loaded.values()), None)
        first = next(iter(models.values()))
        runs = runs if runs is not None else (base.n_runs if base else first.scenario.runs)
        seed = seed if seed is not None else (base.seed if base else first.scenario.seed)
        sampler = sampler or (base.sampler if base else first.scenario.sampler)
        drawn: Posterior | None = read_posterior(posterior) if posterior is not None else None
        err = Console(stderr=True, highlight=False)
        for k, model in models.items():
            if not quiet and sys.stderr.isatty():
                on = f", posterior {drawn.short}…" if drawn is not None else ""
                err.print(f"running {sources[k]}: {runs:,} runs, seed {seed}, {sampler}{on}")
            loaded[k] = run_model(model, runs=runs, seed=seed, sampler=sampler, posterior=drawn)
    elif runs is not None or seed is not None or sampler is not None or posterior is not None:
        raise click.UsageError(
            "--runs, --seed, --sampler and --posterior apply only to scenario files"
        )
    return [loaded[k] for k in range(len(sources))]


def _print_posteriors(console: Console, table: Comparison) -> None:
    """Which posterior each scenario's parameters came from, and each one's observation
    table (observed against posterior predictive), once per posterior."""
    shown: dict[str, list[str]] = {}
    info: dict[str, dict] = {}
    for label, p in zip(table.scenarios, table.posteriors, strict=True):
        if p is not None:
            shown.setdefault(str(p.get("sha256")), []).append(label)
            info[str(p.get("sha256"))] = p
    if not shown:
        return
    from sim.present.describe import observation_table, posterior_line

    for sha, labels in shown.items():
        p = info[sha]
        console.print(escape(f"{', '.join(labels)}: {posterior_line(p)}"), soft_wrap=True)
        if p.get("observations"):
            console.print(
                observation_table(
                    p["observations"],
                    f"Observations of the posterior {sha[:12]}… (posterior predictive)",
                )
            )


def _write_plots(
    table: Comparison, results: list[Results], plot: Path | None, fan: Path | None
) -> list[Path]:
    if plot is None and fan is None:
        return []
    from sim.present import figures as plots

    written = []
    differing = [o for o in table.outcomes if o not in table.identical]
    if plot is not None and not differing:
        click.echo(f"not writing {plot}: no outcome differs in any paired run", err=True)
    elif plot is not None:  # outcomes identical in every paired run are listed, not drawn
        studies = kept_runs(results, table.given)
        written.append(plots.save(plots.outcome_figure(table.select(differing), studies), plot))
    if fan is not None:
        figure = plots.fan_figure(results, table.scenarios, given=table.given)
        if figure is not None:
            written.append(plots.save(figure, fan))
    return written


def _analysis_folder(path: Path) -> bool:
    """True for a folder whose manifest is an analysis's, even a damaged one: its reader
    (`sim.analysis.saved.load`) then says what is wrong, rather than a run's reader."""
    if not (path / store.MANIFEST).is_file():
        return False
    data = read_json(path / store.MANIFEST, path)  # unreadable: that is the error to show
    return isinstance(data, dict) and is_analysis(data)


def _fan_beside(plot: Path) -> Path:
    """Where fan charts go when only --plot is given: <name>_fan<suffix> beside it."""
    return plot.with_name(f"{plot.stem}_fan{plot.suffix or '.png'}")


def _about(results: list[Results]) -> list[tuple[str, str]]:
    """Where each compared study came from, for the workbook's notes."""
    lines = [("written by", f"sim {store.versions()['sim']}")]
    for res in results:
        where = str(res.folder) if res.folder else "run for this comparison"
        lines.append(
            (res.name, f"{res.n_runs:,} runs, seed {res.seed}, sampler {res.sampler} ({where})")
        )
    return lines


def _image_kind(path: Path) -> str:
    return path.suffix.lstrip(".").lower() or "png"


def _print_table(console: Console, table: Comparison, results: list[Results]) -> None:
    """The comparison as one table; as two (scenarios, then differences) if that is too wide."""
    runs = " / ".join(f"{r.n_runs:,}" for r in results)
    kinds = {p.paired for p in table.pairings}
    how = "paired" if kinds == {True} else "unpaired" if kinds == {False} else "partly paired"
    title = f"{' vs '.join(table.scenarios)}: {runs} runs, {how}"
    if table.given is not None:
        title += f"; {table.given.text()}"
    same = table.identical
    if len(same) < len(table.outcomes):
        _print_rows(console, title, table.select([o for o in table.outcomes if o not in same]))
    if same:
        console.print(
            f"[bold]Identical in every paired run[/bold] ({len(same)} of "
            f"{len(table.outcomes)}, not tabled; --json and --csv have them): "
            + escape(", ".join(same)),
            highlight=False,
        )  # wrapped at the console's width, between names


def _print_rows(console: Console, title: str, table: Comparison) -> None:
    rows = comparison_cells(table)
    every = list(range(len(rows[0][1])))
    whole = _rich_table(title, rows, every, {"array", "outcome", "scenario", "difference"})
    if (
        Measurement.get(console, console.options.update_width(10_000), whole).maximum
        <= console.width
    ):
        console.print(whole)
        return
    console.print(
        Fit(_rich_table(title, rows, [0, 1, 2, 3, 4, 5], {"array", "outcome", "scenario"}))
    )
    console.print(
        Fit(
            _rich_table(
                "Differences B − A", rows, [0, 1, 4, 6, 7, 8], {"array", "outcome", "difference"}
            )
        )
    )


def _rich_table(
    title: str, rows: list[tuple[str, list[str]]], columns: list[int], kinds: set[str]
) -> Table:
    out = Table(title=escape(title), title_justify="left")
    for k in columns:
        # fold, never ellipsis: a cut-off number would be a wrong number
        out.add_column(rows[0][1][k], justify="left" if k == 0 else "right", overflow="fold")
    body = [(kind, cells) for kind, cells in rows[1:] if kind in kinds]
    for k, (kind, cells) in enumerate(body):
        # a rule before each outcome or array, none under an array's heading
        last = kind != "array" and (k + 1 == len(body) or body[k + 1][0] in ("outcome", "array"))
        style = {"array": "bold", "outcome": "bold", "difference": "bold cyan"}.get(kind)
        out.add_row(*(escape(cells[c]) for c in columns), style=style, end_section=last)
    return out


def _console() -> Console:
    """stdout; when it is not a terminal, wide enough that the table is never squeezed."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return Console(highlight=False, soft_wrap=False)
    return Console(highlight=False, soft_wrap=False, width=200)


def _csv(table: Comparison) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(ROW_FIELDS), lineterminator="\n")
    writer.writeheader()
    for row in table.rows():
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()
