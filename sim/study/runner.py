"""Runs a study: cuts runs into blocks, runs them on an executor, and streams them to the store.

The block is the unit of work and of failure: a `BlockJob` turns a block index into that
block's rows, redrawing its own randomness (`sim.sampling.draws` keys draws by run, never by work
block), so a block gives the same bits in this process, in a pool worker or on a Dask
cluster, and any block size gives the same runs. Finished blocks land as parts in the results
folder in whatever order they finish; the study then streams them, in run order, into
`runs.parquet`. Memory holds the blocks in flight, not the runs, and a killed study resumes
from its parts.

With a precision target the study takes blocks in order and stops at the first prefix of
blocks whose outcome means are precise enough — decided on prefixes, never on arrival order,
so the stopping point is the same for any number of workers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import platform
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from sim.engine import ENGINES, missing
from sim.engine.des import Run as DesRun
from sim.engine.des import run_one
from sim.engine.semantics import STATUS_OK, Block
from sim.errors import ResultsError, ScenarioError, did_you_mean
from sim.model import Model, compile_scenario
from sim.sampling.distributions import Z_CI95
from sim.sampling.draws import SAMPLERS, threads_for
from sim.scenario.schema import SEED_LIMIT, Fixed
from sim.scenario.sources import entries_cited
from sim.study import guards, store
from sim.study.design import Design, Grid, Sampled, posterior_of
from sim.study.executors import EXECUTORS, check_scheduler, default_workers, open_executor
from sim.study.manifest import POSTERIOR_SAMPLE
from sim.study.posterior import Posterior, check, drawn_as_usual, read_posterior
from sim.study.provenance import build, scenario_sha256
from sim.study.results import QUANTILE_NAMES, QUANTILES, Results

DEFAULT_BLOCK = 8192
BAND_BUDGET_BYTES = 256 * 2**20  # recorded values kept for exact bands; beyond, a subsample
AUTO_POOL_SECONDS = 3.0  # serial time left above which an unset --workers starts a pool
MANIFEST_EVERY = 1.0  # seconds between progress notes in manifest.json while blocks land

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Plan:
    """What to run: the model and the study's settings, after defaults are applied.

    `runs` is the most runs the study may take; with `precision` (outcome -> relative 95%
    half-width of its mean) it stops at the first prefix of blocks that meets every target.
    `design` says what each run draws (`sim.study.design`); `sample_runs` is the run count
    its draws are made for (a sweep's runs per point; the study's runs otherwise)."""

    model: Model
    runs: int
    seed: int
    sampler: str
    engine: str
    block_size: int
    keep_paths: int
    precision: Mapping[str, float] = field(default_factory=dict)
    kept: int = 0  # leading runs whose recorded series are kept (bands, paths): `keep_runs`
    design: Design = field(default_factory=Sampled)
    sample_runs: int = 0  # the run count draws are made for (a sweep's runs per point)

    @property
    def blocks(self) -> list[tuple[int, int, int]]:
        """(block, first run, stop) for each block."""
        return [(b, *self.block_range(b)) for b in range(self.n_blocks)]

    @property
    def n_blocks(self) -> int:
        return math.ceil(self.runs / self.block_size)

    def block_range(self, b: int) -> tuple[int, int]:
        """The runs [first, stop) of block b."""
        return b * self.block_size, min(self.runs, (b + 1) * self.block_size)

    @property
    def study(self) -> dict[str, Any]:
        """What identifies the study's results: a resumed run must match it exactly."""
        return {
            "scenario_sha256": scenario_sha256(self.model),
            "seed": self.seed,
            "sampler": self.sampler,
            "runs": self.runs,
            "engine": self.engine,
            "block_size": self.block_size,
            "keep_paths": self.keep_paths,
            "precision": dict(sorted(self.precision.items())),
            "band_runs": self.kept,
        } | ({"design": design} if (design := self.design.identity()) else {})


@dataclass(frozen=True)
class Execution:
    """How an analysis's study runs, as `run` takes it: which engine, how many workers, on
    which executor, in blocks of what size, under what memory limit; `out` is the study's
    folder, which `resume` finishes and `force` may replace. None of it changes the results
    (the engines agree to 1e-9)."""

    engine: str = "kernel"
    workers: int | None = 1
    executor: str = "processes"
    scheduler: str | None = None
    block_size: int = DEFAULT_BLOCK
    max_memory: int | None = None
    out: str | Path | None = None
    resume: bool = False
    force: bool = False

    def options(self) -> dict[str, Any]:
        """The keyword arguments of `run`."""
        return dataclasses.asdict(self)


def keep_runs(model: Model, runs: int, keep_paths: int) -> int:
    """How many leading runs keep their recorded series: all while they fit the budget."""
    if not model.record:
        return 0
    budget = max(1000, BAND_BUDGET_BYTES // (8 * model.ticks * len(model.record)))
    return min(runs, max(budget, keep_paths))


def plan(
    model: Model,
    runs: int | None = None,
    seed: int | None = None,
    sampler: str | None = None,
    engine: str = "kernel",
    block_size: int = DEFAULT_BLOCK,
    keep_paths: int = 0,
    precision: Mapping[str, float] | None = None,
    design: Design | None = None,
) -> Plan:
    """Apply the scenario's defaults and check the settings. With a `design`, `runs` is the
    run count its draws are made for, and the study runs `design.size(runs)` runs."""
    sc = model.scenario
    runs = sc.runs if runs is None else runs
    seed = sc.seed if seed is None else seed
    sampler = sampler or sc.sampler
    precision = dict(precision or {})
    problems = []
    if runs < 1:
        problems.append(f"--runs must be at least 1 (got {runs})")
    if not 0 <= seed < SEED_LIMIT:  # the scenario file's limit
        problems.append(f"--seed must be from 0 to 2**63-1 (got {seed})")
    if sampler not in SAMPLERS:
        problems.append(f"unknown sampler '{sampler}' (use {', '.join(SAMPLERS)})")
    if engine not in ENGINES:
        problems.append(f"unknown engine '{engine}' (use {', '.join(ENGINES)})")
    elif missing(engine):
        problems.append(str(missing(engine)))
    if block_size < 1:
        problems.append(f"block size must be at least 1 (got {block_size})")
    elif block_size < min(256, runs) and runs > 16 * block_size:  # ~10 ms set-up a block
        warnings.warn(
            f"block size {block_size} makes {math.ceil(runs / block_size):,} blocks of "
            "set-up work; 256 or more is much faster (the results are the same bits)",
            stacklevel=3,
        )
    if keep_paths < 0:
        problems.append(f"--keep-paths must be >= 0 (got {keep_paths})")
    outcomes = [o.name for o in model.outcomes]
    for name, rel in precision.items():
        if name not in outcomes:
            hint = did_you_mean(name, outcomes)
            problems.append(f"--precision: no outcome '{name}'" + (f"; {hint}" if hint else ""))
        if not (isinstance(rel, float | int) and 0 < rel < 1):
            problems.append(f"--precision {name}: REL must be between 0 and 1 (got {rel})")
    design = design or Sampled()
    if precision and not isinstance(design, Sampled):
        problems.append("--precision needs a plain study (not a sweep or a sensitivity design)")
    if problems:
        raise ScenarioError.one("; ".join(problems))
    if (posterior := posterior_of(design)) is not None:
        check(posterior, model)  # every mismatched parameter at once, before anything runs
    total = design.size(runs)
    keep_paths = min(keep_paths, total)
    return Plan(
        model,
        total,
        seed,
        sampler,
        engine,
        block_size,
        keep_paths,
        precision,
        keep_runs(model, total, keep_paths),
        design,
        runs,
    )


def run(
    model: Model,
    runs: int | None = None,
    seed: int | None = None,
    sampler: str | None = None,
    engine: str = "kernel",
    block_size: int = DEFAULT_BLOCK,
    out: str | Path | None = None,
    keep_paths: int = 0,
    force: bool = False,
    progress: Progress | None = None,
    workers: int | None = 1,
    executor: str = "processes",
    scheduler: str | None = None,
    resume: bool = False,
    precision: Mapping[str, float] | None = None,
    max_memory: int | None = None,
    design: Design | None = None,
    posterior: str | Path | Posterior | None = None,
) -> Results:
    """Run a study of `model` and return its `Results`; with `out`, also write the folder.

    `workers` (default 1, serial: safe from a plain script or a notebook, where worker
    processes would need an `if __name__ == "__main__":` guard; None: every core, once the
    first block shows the study is long enough to repay a pool's start-up, as `sim run`
    does) run blocks in a local process pool, or on Dask with
    `executor="dask"` (a LocalCluster, or the cluster at `scheduler`); the results are the
    same bits either way. `resume=True` finishes an interrupted study in `out`. `precision`
    maps outcomes to a relative 95% half-width of their mean: blocks are added until every
    target is met, with `runs` as the cap. A study that would not fit this machine's memory
    (or `max_memory` bytes) or the free disk is refused before it starts (`sim.study.guards`).
    `posterior` (a calibration folder, or its `read_posterior`) draws the parameters it holds
    from it: run i takes posterior sample J(i), chosen by the seed and i alone, so two
    scenarios run on one posterior with one seed stay paired; the rest is drawn as usual.

    >>> import sim
    >>> res = sim.run(sim.load("examples/bakery.yaml"), runs=100, seed=3)
    >>> res.n_runs
    100
    """
    if posterior is not None:
        if design is not None and not isinstance(design, Sampled):
            raise ScenarioError.one(
                f"a posterior applies to a plain study, not a {design.kind} design"
            )
        design = with_posterior(posterior)
    p = plan(model, runs, seed, sampler, engine, block_size, keep_paths, precision, design)
    auto = workers is None
    workers = default_workers() if workers is None else workers
    problems = []
    if workers < 1:
        problems.append(f"--workers must be at least 1 (got {workers})")
    if executor not in EXECUTORS:
        problems.append(f"unknown executor '{executor}' (use {', '.join(EXECUTORS)})")
    if scheduler and executor != "dask":
        problems.append("--scheduler needs --executor dask")
    if resume and out is None:
        problems.append("resume needs the results folder (out) of the interrupted run")
    if problems:
        raise ScenarioError.one("; ".join(problems))
    if executor == "dask" and scheduler:
        check_scheduler(scheduler)  # before anything is written to the results folder
    need = guards.estimate(model, p.runs, p.block_size, workers, p.kept, p.keep_paths)
    # Without `out` nothing is written: only memory is checked.
    guards.check(need, Path(out) if out is not None else None, max_memory)
    study = _Study(p, progress, workers, executor, scheduler, auto)
    if out is None:
        # The same blocks, tally and summaries, held in memory instead of written: what the
        # guard counted (the rows and the kept runs' series), and no files to write or read.
        return study.run(None, force=True, resume=False)
    folder = Path(out)
    if not resume:
        store.check_target(folder, model.name, force, model.files)
    with store.lock(folder):
        try:
            return study.run(folder, force, resume)
        except ScenarioError:
            # A model that fails in every run is found after a block has landed: leave no
            # folder that looks like the start of a study (unless it is one being resumed).
            if not resume:
                store.discard(folder)
            raise
        except OSError as exc:
            if store.is_disk_full(exc):  # the parts written so far stay, for --resume
                raise store.disk_full(folder, exc) from None
            raise


def with_posterior(posterior: str | Path | Posterior) -> Sampled:
    """The sampled design whose runs draw the posterior's parameters from it."""
    return Sampled(posterior if isinstance(posterior, Posterior) else read_posterior(posterior))


def draw(p: Plan, start: int, stop: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Parameter values and noise paths for runs [start, stop) of a plan, as its design says."""
    return p.design.draw(p.model, p.seed, p.sampler, p.sample_runs, start, stop)


def execute(
    p: Plan,
    params: dict[str, np.ndarray],
    noise: dict[str, np.ndarray],
    start: int,
    stop: int,
    keep: int | None = None,
) -> Block:
    """Run runs [start, stop) of a plan with its engine, on their draws; recorded series are
    kept for the first `keep` of them (all when None)."""
    return ENGINES[p.engine](p.model, params, noise, first_run=start, n=stop - start, keep=keep)


@dataclass(frozen=True)
class BlockResult:
    """A finished block: its rows (runs.parquet) and the recorded series of its kept runs."""

    block: int
    table: pa.Table
    series: dict[str, np.ndarray]  # (ticks, kept runs of this block)


class BlockJob:
    """One study's block work as a picklable callable: block index -> `BlockResult`.

    Pickles as the resolved scenario and the plan's settings (a compiled model holds
    functions, which don't pickle); a worker compiles the model once, on first use. It also
    carries the parent's `build()`: a worker whose libraries or sim code differ (a Dask worker
    on another machine, installed at another time) refuses to run rather than return
    different bits."""

    def __init__(self, p: Plan):
        self._plan: Plan | None = p
        m = p.model
        settings = {f.name: getattr(p, f.name) for f in dataclasses.fields(p) if f.name != "model"}
        settings["precision"] = dict(p.precision)
        self._state = (m.scenario, m.files, dict(m.place), settings, build())

    def __getstate__(self) -> tuple[Any, ...]:
        return self._state

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self._state = state
        self._plan = None

    @property
    def plan(self) -> Plan:
        if self._plan is None:
            scenario, files, place, settings, theirs = self._state
            ours = build()
            if ours != theirs:
                differ = [
                    f"{k} {theirs.get(k, 'missing')} where the study started, "
                    f"{ours.get(k, 'missing')} on the worker"
                    for k in sorted(set(ours) | set(theirs))
                    if ours.get(k) != theirs.get(k)
                ]
                raise ScenarioError.one(
                    f"a worker on {platform.node()} runs other code ({'; '.join(differ)}): "
                    "its blocks would not be the same bits",
                    hint="install the same sim and the same numpy, scipy and simpy on every worker",
                )
            model = dataclasses.replace(compile_scenario(scenario), files=files, place=place)
            self._plan = Plan(**(settings | {"model": model}))
        return self._plan

    def __call__(self, b: int) -> BlockResult:
        p = self.plan
        m = p.model
        start, stop = p.block_range(b)
        keep = max(0, min(stop, p.kept) - start)
        params, noise = draw(p, start, stop)
        block = execute(p, params, noise, start, stop, keep)
        extra = p.design.columns(p.sample_runs, start, stop)
        if isinstance(p.design, Sampled | Grid) and p.design.posterior is not None:
            extra[POSTERIOR_SAMPLE] = p.design.rows(p.seed, p.sample_runs, start, stop)
        table = _rows(m, start, stop, extra | {n: params[n] for n in m.sampled}, block)
        series = {name: np.ascontiguousarray(block.series[name][:, :keep]) for name, _ in m.record}
        return BlockResult(b, table, series)


@dataclass(frozen=True)
class Story:
    """One run through the SimPy engine, with what was drawn for it."""

    run: DesRun
    parameters: dict[str, float]
    seed: int
    sampler: str
    runs: int
    posterior_sample: int | None = None  # the posterior's row it drew from, if any


def trace_run(
    model: Model,
    index: int,
    runs: int | None = None,
    seed: int | None = None,
    sampler: str | None = None,
    posterior: str | Path | Posterior | None = None,
) -> Story:
    """Run number `index` of a study through the SimPy engine, with its event log (and,
    with a `posterior`, the draws a `posterior` study gives it)."""
    runs = runs or model.scenario.runs
    if index < 0:
        raise ScenarioError.one(f"--run must be >= 0 (got {index})")
    if index >= runs:
        raise ScenarioError.one(
            f"--run {index} is past the study's {runs:,} runs (0 to {runs - 1:,})",
            hint="pass --runs to trace a run of a bigger study",
        )
    design = with_posterior(posterior) if posterior is not None else None
    p = plan(model, runs, seed, sampler, engine="des", design=design)
    params, noise = draw(p, index, index + 1)
    values = {a: float(v[0]) for a, v in params.items()}
    result = run_one(model, values, {a: v[:, 0] for a, v in noise.items()}, index)
    drawn = {a: values[a] for a in model.sampled}
    row = None
    if isinstance(p.design, Sampled) and p.design.posterior is not None:
        row = int(p.design.rows(p.seed, p.sample_runs, index, index + 1)[0])
    return Story(result, drawn, p.seed, p.sampler, p.runs, row)


# -- what the study keeps of each block: small, order-independent summaries -----------------
@dataclass(frozen=True)
class _Moments:
    """Count, mean and sum of squared deviations of an outcome's finite values."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def of(cls, x: np.ndarray) -> _Moments:
        x = x[np.isfinite(x)]
        if not len(x):
            return cls()
        mean = float(np.mean(x))
        return cls(len(x), mean, float(np.sum((x - mean) ** 2)))

    def merge(self, other: _Moments) -> _Moments:
        """Chan et al.'s pairwise update; merged in block order, so the same bits every time."""
        if not other.n:
            return self
        if not self.n:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        return _Moments(
            n,
            self.mean + delta * other.n / n,
            self.m2 + other.m2 + delta * delta * self.n * other.n / n,
        )

    @property
    def half_width(self) -> float:
        """Half-width of the 95% confidence interval of the mean."""
        if self.n < 2:
            return math.inf
        return Z_CI95 * math.sqrt(self.m2 / (self.n - 1) / self.n)


@dataclass(frozen=True)
class _BlockSummary:
    runs: int
    moments: dict[str, _Moments]
    nonfinite: int
    culprits: dict[str, int]
    first_bad: tuple[int, int, str] | None  # run, tick, name


def _summarise(table: pa.Table, outcomes: Iterable[str]) -> _BlockSummary:
    moments = {
        name: _Moments.of(table.column(name).to_numpy(zero_copy_only=False).astype(float))
        for name in outcomes
    }
    status = table.column("status").to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(status != STATUS_OK)
    first_bad = None
    culprits: dict[str, int] = {}
    if bad.size:
        names = table.column("bad_name").to_numpy(zero_copy_only=False)[bad]
        culprits = dict(Counter(str(n) for n in names))
        k = int(bad[0])
        first_bad = (
            int(table.column("run")[k].as_py()),
            int(table.column("bad_tick")[k].as_py()),
            str(names[0]),
        )
    return _BlockSummary(table.num_rows, moments, int(bad.size), culprits, first_bad)


class _Tally:
    """Block summaries as they arrive, and the prefix of blocks the results will hold."""

    def __init__(self, p: Plan):
        self.p = p
        self.summaries: dict[int, _BlockSummary] = {}
        self.prefix = 0  # blocks 0..prefix-1 have all arrived
        self.moments = {name: _Moments() for name in p.precision}
        self.stop: int | None = None  # blocks the results hold, once decided

    def add(self, b: int, summary: _BlockSummary) -> None:
        self.summaries[b] = summary
        while self.stop is None and self.prefix in self.summaries:
            s = self.summaries[self.prefix]
            self.moments = {n: m.merge(s.moments[n]) for n, m in self.moments.items()}
            self.prefix += 1
            if self.prefix == self.p.n_blocks or (self.p.precision and self.precise()):
                self.stop = self.prefix

    def precise(self) -> bool:
        return all(
            self.moments[name].half_width <= rel * abs(self.moments[name].mean)
            for name, rel in self.p.precision.items()
        )

    @property
    def runs_done(self) -> int:
        return sum(s.runs for s in self.summaries.values())

    def reached(self) -> dict[str, Any]:
        out = {}
        for name, rel in self.p.precision.items():
            m = self.moments[name]
            half = m.half_width
            out[name] = {
                "requested": rel,
                "mean": m.mean if m.n else None,
                "half_width": half if math.isfinite(half) else None,
                "relative": half / abs(m.mean) if m.mean and math.isfinite(half) else None,
            }
        return out

    def nonfinite(self, blocks: range) -> dict[str, Any]:
        culprits: Counter[str] = Counter()
        first = None
        for b in blocks:
            s = self.summaries[b]
            culprits.update(s.culprits)
            if first is None and s.first_bad is not None:
                first = s.first_bad
        return {
            "runs": sum(culprits.values()),
            "by_name": dict(culprits.most_common()),
            "first": None
            if first is None
            else dict(zip(("run", "tick", "name"), first, strict=True)),
        }


class _Parts:
    """A folder's block parts, written on a thread of their own while the next block steps
    (file writes release the GIL): each block's series part, then its runs part, so a runs
    part on disk still means its block landed. At most `AHEAD` blocks wait to be written. A
    write that failed raises in the study's thread, at a later block or when drained."""

    AHEAD = 2

    def __init__(self, folder: Path):
        self.folder = folder
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="sim-parts")
        self.pending: list[Future[None]] = []

    def write(self, b: int, result: BlockResult) -> None:
        while self.pending and (self.pending[0].done() or len(self.pending) >= self.AHEAD):
            self.pending.pop(0).result()
        self.pending.append(self.pool.submit(_write_parts, self.folder, b, result))

    def drain(self) -> None:
        """Every part asked for is on disk (or its failure raised)."""
        while self.pending:
            self.pending.pop(0).result()

    def close(self) -> None:
        """Wait for the write under way and drop the rest: nothing writes into the folder
        after the study has stopped."""
        self.pool.shutdown(wait=True, cancel_futures=True)


def _write_parts(folder: Path, b: int, result: BlockResult) -> None:
    runs_part, series_part = store.part_paths(folder, b)
    store.write_series_part(result.series, series_part)
    store.write_part(result.table, runs_part)  # last: the block is in


class _InMemory:
    """The rows of a study that has no folder, in run order: `TableWriter`'s calls, kept."""

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []
        self.table: pa.Table | None = None

    def append(self, table: pa.Table) -> None:
        # Every block's rows take the first block's schema, as runs.parquet's writer does.
        self.tables.append(table.cast(self.tables[0].schema) if self.tables else table)

    def commit(self) -> None:
        self.table = pa.concat_tables(self.tables)
        self.tables = []

    def abort(self) -> None:
        self.tables = []


class _Output:
    """runs.parquet, bands and paths, built from the prefix of finished blocks as it grows.

    Blocks join runs.parquet in run order while later ones still run, so the parent's writing
    overlaps the workers' stepping and the study ends without a pass over all its runs. A
    block that finished ahead of the prefix waits here (at most the executor's window of
    them); one finished before a resume is read back from its part. Without a folder the rows
    and the kept runs' series stay in memory instead."""

    def __init__(self, p: Plan, folder: Path | None, parts: _Parts | None = None):
        self.p = p
        self.folder = folder
        self.parts = parts  # a folder's parts, drained before its series are read back
        self.runs: store.TableWriter | _InMemory = (
            _InMemory() if folder is None else store.TableWriter(folder / "runs.parquet")
        )
        self.next = 0  # blocks 0..next-1 are in runs.parquet
        self.waiting: dict[int, BlockResult] = {}
        self.series: dict[int, dict[str, np.ndarray]] = {}  # in memory: blocks with kept runs
        self.bands: pa.Table | None = None
        self.paths: pa.Table | None = None

    def hold(self, b: int, result: BlockResult) -> None:
        self.waiting[b] = result
        if self.folder is None and self.p.block_range(b)[0] < self.p.kept:
            self.series[b] = result.series

    def advance(self, tally: _Tally) -> None:
        while self.next < tally.prefix:
            result = self.waiting.pop(self.next, None)
            if result is None:  # it landed before a resume: only a folder has such blocks
                assert self.folder is not None
                self.runs.append(store.read_part(self.folder, self.next))
            else:
                self.runs.append(result.table)
            self.next += 1
        if self.bands is None and self.next:
            done = self.p.block_range(self.next - 1)[1]
            if tally.stop is not None or done >= self.p.kept:
                self.summarise_series(min(self.p.kept, done))

    def summarise_series(self, kept: int) -> None:
        p, m = self.p, self.p.model
        blocks = range(math.ceil(kept / p.block_size))
        recorded = {name: k for k, (name, _) in enumerate(m.record)}  # a part's order
        if self.parts is not None:
            self.parts.drain()

        def part(b: int, name: str) -> np.ndarray:
            if self.folder is None:
                return self.series[b][name]
            return store.read_series_part(self.folder, b, recorded[name])

        def series(name: str, k: int) -> np.ndarray:
            parts = [part(b, name) for b in blocks]
            return (parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1))[:, :k]

        self.bands = _bands(m, kept, series)
        keep_paths = min(p.keep_paths, kept)
        self.paths = _paths(m, keep_paths, series) if keep_paths and m.record else None

    def abort(self) -> None:
        self.runs.abort()


class _Study:
    def __init__(
        self,
        p: Plan,
        progress: Progress | None,
        workers: int,
        executor: str,
        scheduler: str | None,
        auto: bool = False,
    ):
        self.p = p
        self.progress = progress
        self.workers = workers
        self.auto = auto
        self.executor = executor
        self.scheduler = scheduler

    def run(self, folder: Path | None, force: bool, resume: bool) -> Results:
        """The study, written to `folder` (resumed there with `resume`), or held in memory
        when `folder` is None."""
        p, m = self.p, self.p.model
        clock = time.perf_counter()
        tally = _Tally(p)
        health = guards.Health(m, p.runs)
        if folder is None:
            manifest = self.manifest(dt.datetime.now(dt.UTC))
        elif resume:
            manifest = self.resumable(folder)
            if manifest.get("complete"):
                store.finish_folder(folder)  # killed between completing and tidying up
                return Results.load(folder)
            store.clear_temporaries(folder)
            (folder / "parts").mkdir(exist_ok=True)
            manifest["resumed"] = int(manifest.get("resumed", 0)) + 1
            for b in range(p.n_blocks):
                start, stop = p.block_range(b)
                if store.finished_part(folder, b, stop - start):
                    needed = ["run", *p.precision, "status", "bad_tick", "bad_name"]
                    tally.add(b, _summarise(store.read_part(folder, b, needed), p.precision))
        else:
            store.prepare_folder(folder, m.name, force)
            manifest = self.manifest(dt.datetime.now(dt.UTC))
        if folder is not None:
            store.write_json(manifest, folder / store.MANIFEST)
        if self.progress is not None:
            self.progress(tally.runs_done, p.runs)

        todo = [b for b in range(p.n_blocks) if b not in tally.summaries]
        parts = _Parts(folder) if folder is not None else None
        output = _Output(p, folder, parts)
        noted = time.perf_counter()  # blocks_done in the manifest: a note; the parts are the record
        try:
            output.advance(tally)
            for kind, blocks in self.phases(todo):
                if tally.stop is not None:
                    break
                manifest["executor"] = {"kind": kind, "workers": 1}
                with open_executor(kind, self.workers, self.scheduler) as ex:
                    manifest["executor"]["workers"] = ex.workers
                    finished = ex.completed(BlockJob(p), blocks)
                    try:
                        for b, result in finished:
                            if parts is not None:
                                parts.write(b, result)
                            health.add(result.table)
                            output.hold(b, result)
                            tally.add(b, _summarise(result.table, p.precision))
                            output.advance(tally)
                            manifest["blocks_done"] = len(tally.summaries)
                            if folder is not None and time.perf_counter() - noted >= MANIFEST_EVERY:
                                store.write_json(manifest, folder / store.MANIFEST)
                                noted = time.perf_counter()
                            if self.progress is not None:
                                self.progress(tally.runs_done, p.runs)
                            if tally.stop is not None:
                                break
                    finally:
                        finished.close()  # cancels blocks past a precision stop, or on Ctrl-C
            manifest.setdefault("executor", {"kind": "serial", "workers": 1})
            assert tally.stop is not None
            if parts is not None:
                parts.drain()
            return self.finish(folder, manifest, tally, output, clock)
        finally:
            if parts is not None:
                parts.close()
            output.abort()  # a no-op once runs.parquet is committed

    def phases(self, todo: list[int]) -> Iterator[tuple[str, list[int]]]:
        """(executor kind, blocks) in turn. Left to choose (`workers=None`), the study runs
        its first block here and starts a pool only if the rest would take a while."""
        kind = self.executor
        if kind == "processes" and min(self.workers, len(todo)) <= 1:
            kind = "serial"
        if not (self.auto and kind == "processes"):
            yield kind, todo
            return
        clock = time.perf_counter()
        yield "serial", todo[:1]
        rest = todo[1:]
        alone = (time.perf_counter() - clock) * len(rest)
        yield ("processes" if alone > AUTO_POOL_SECONDS else "serial"), rest

    def resumable(self, folder: Path) -> dict[str, Any]:
        """The interrupted study's manifest, if it is this study; else a ResultsError."""
        if not (folder / store.MANIFEST).is_file():
            raise ResultsError(
                f"{folder}: nothing to resume (no {store.MANIFEST}); run without --resume"
            )
        manifest = store.read_manifest(folder)
        if manifest.get("format_version") != store.FORMAT_VERSION:
            raise ResultsError(f"{folder}: written by another version of sim; run without --resume")
        theirs, ours = manifest.get("study", {}), self.p.study
        # Every key either holds: a design (a posterior) there and none now differs too.
        differ = [
            f"{key} {_shown(key, theirs.get(key))} there, {_shown(key, ours.get(key))} now"
            for key in [*ours, *(k for k in theirs if k not in ours)]
            if theirs.get(key) != ours.get(key)
        ]
        if differ:
            raise ResultsError(
                f"{folder} holds a different study ({'; '.join(differ)}); resume with the "
                "options it was started with, or run without --resume to start over"
            )
        return manifest

    def finish(
        self,
        folder: Path | None,
        manifest: dict[str, Any],
        tally: _Tally,
        output: _Output,
        clock: float,
    ) -> Results:
        p = self.p
        assert tally.stop is not None and output.bands is not None
        used = range(tally.stop)
        n = p.block_range(tally.stop - 1)[1]
        output.runs.commit()
        if folder is not None:
            store.write_table(output.bands, folder / "bands.parquet")
            if output.paths is not None:
                store.write_table(output.paths, folder / "paths.parquet")
        nonfinite = tally.nonfinite(used)
        manifest.update(
            runs=n,
            blocks_done=len(used),
            bands=_band_method(min(p.kept, n), n),
            finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            wall_seconds=round(time.perf_counter() - clock, 3),
            nonfinite_runs=nonfinite["runs"],
            nonfinite=nonfinite,
        )
        if p.precision:
            manifest["precision"] = {
                "met": tally.precise(),
                "runs_used": n,
                "runs_cap": p.runs,
                "outcomes": tally.reached(),
            }
        if folder is None:  # nothing written, so nothing to hash
            manifest["complete"] = True
            assert isinstance(output.runs, _InMemory) and output.runs.table is not None
            return Results(manifest, output.runs.table, output.bands, output.paths, None)
        written = [name for name in store.DATA_FILES if (folder / name).is_file()]
        manifest["sha256"] = {name: store.sha256_file(folder / name) for name in written}
        manifest["complete"] = True
        store.write_json(manifest, folder / store.MANIFEST)
        store.finish_folder(folder)
        return Results(manifest, None, output.bands, output.paths, folder)

    def manifest(self, started: dt.datetime) -> dict[str, Any]:
        p, m = self.p, self.p.model
        return {
            "format_version": store.FORMAT_VERSION,
            "complete": False,
            "scenario": m.scenario.dump(),
            "scenario_sha256": scenario_sha256(m),
            "files": list(m.files),
            "seed": p.seed,
            "sampler": p.sampler,
            "runs": p.runs,
            "engine": p.engine,
            "block_size": p.block_size,
            "blocks_total": p.n_blocks,
            "blocks_done": 0,
            "study": p.study,
            "ticks": m.ticks,
            "start": m.scenario.start,
            **({"step": m.step} if m.step != 1 else {}),
            **(
                {"data": {d.name: {"file": d.file, "sha256": d.sha256} for d in m.data}}
                if m.data
                else {}
            ),
            "outcomes": {
                o.name: {
                    "unit": o.unit,
                    "stat": o.stat,
                    "of": o.expr.text,
                    "description": m.scenario.outcomes[o.declared].description or "",
                }
                for o in m.outcomes
            },
            "parameters": {
                name: {
                    "distribution": spec.describe(),
                    "unit": spec.unit,
                    "source": spec.source or "",
                    "sampled": not isinstance(spec, Fixed),
                    **({"value": float(spec.value)} if isinstance(spec, Fixed) else {}),
                }
                for name, spec in m.parameters.items()
            },
            "record": [name for name, _ in m.record],
            **(
                {"posterior": posterior.summary(drawn_as_usual(posterior, m))}
                if (posterior := posterior_of(p.design)) is not None
                else {}
            ),
            "sources": {k: e.as_dict() for k, e in entries_cited(m.scenario, m.place).items()},
            "bands": _band_method(p.kept, p.runs),
            "keep_paths": p.keep_paths,
            "versions": store.versions(),
            "machine": {"python": platform.python_version(), "platform": platform.platform()},
            "started": started.isoformat(timespec="seconds"),
        }


def _shown(key: str, value: Any) -> str:
    if key == "design" and (value is None or "posterior" in value):
        held = (value or {}).get("posterior")
        return f"posterior {str(held['sha256'])[:12]}…" if held else "no posterior"
    if value is None:
        return "unset"
    if key == "scenario_sha256":
        return f"{str(value)[:12]}…"
    return json.dumps(value) if isinstance(value, dict) else str(value)


def _band_method(kept: int, runs: int) -> dict[str, Any]:
    """How bands were computed and how far their quantiles may be off."""
    if kept >= runs:
        return {"runs_used": kept, "method": "exact over all runs", "quantile_error": 0.0}
    # Dvoretzky-Kiefer-Wolfowitz: with 95% confidence the empirical CDF of K runs is within
    # eps of the true one everywhere, so a reported p05 lies between the true p(5-100eps)
    # and p(5+100eps).
    eps = math.sqrt(math.log(2 / 0.05) / (2 * kept)) if kept else 1.0
    return {
        "runs_used": kept,
        "method": (
            f"over the first {kept} of {runs} runs, a uniform subsample (runs are "
            "exchangeable draws); the mean is the subsample's mean"
        ),
        "quantile_error": round(eps, 6),
        "quantile_error_means": (
            "with 95% confidence (DKW bound), each band quantile q is between the true "
            "quantiles at levels q - quantile_error and q + quantile_error, per tick and series"
        ),
    }


def _rows(m: Model, start: int, stop: int, params: dict[str, np.ndarray], block: Block) -> pa.Table:
    columns: dict[str, Any] = {"run": pa.array(np.arange(start, stop, dtype=np.int64))}
    for name, values in params.items():
        columns[name] = pa.array(values)
    for o in m.outcomes:
        values = block.outcomes[o.name]
        columns[o.name] = (
            pa.array(values, mask=np.isnan(values)) if o.stat == "first" else pa.array(values)
        )
    columns["status"] = pa.array(block.status.astype(str))
    columns["bad_tick"] = pa.array(block.bad_tick)
    columns["bad_name"] = pa.array(block.bad_name.astype(str))
    return pa.table(columns)


SeriesOf = Callable[[str, int], np.ndarray]  # (series, first k runs) -> (ticks, k)


def _bands(m: Model, kept: int, series: SeriesOf) -> pa.Table:
    # With a step other than a month, several ticks share a date: `t` (months from the start)
    # says when each is. At step 1 t is the tick, and the table stays as it always was.
    timed = ("t",) if m.step != 1 else ()
    rows: dict[str, list[Any]] = {
        k: [] for k in ("series", "tick", *timed, "date", "mean", *QUANTILE_NAMES)
    }
    ticks = np.arange(m.ticks)
    dates = [m.date(int(t)) for t in ticks]
    if kept == 0:
        return pa.table(rows)

    def one(name: str) -> tuple[np.ndarray, np.ndarray]:
        # A quantile partitions around the order statistics it needs: measured on the war
        # model's series, 0.6x the time of sorting first, for the same numbers. nanquantile
        # skips NaNs run by run; without any, quantile is faster.
        values = series(name, kept)
        quantile = np.nanquantile if np.isnan(values).any() else np.quantile
        with np.errstate(all="ignore"):
            q = quantile(values, QUANTILES, axis=1)
            mean = np.nanmean(values, axis=1)  # summed in run order, as it always was
        return q, mean

    # A series at a time on each core (numpy partitions without the GIL): memory holds kept
    # runs x ticks once per thread, at most the kept series the guard counted. 20,000 runs
    # of the war model's 16 series: 1.0 s on one core, 0.6 s on two; the same numbers.
    names = [name for name, _ in m.record]
    threads = threads_for(kept * m.ticks * len(names), len(names))
    if threads <= 1:
        computed = [one(name) for name in names]
    else:
        with ThreadPoolExecutor(threads) as pool:
            computed = list(pool.map(one, names))
    for name, (q, mean) in zip(names, computed, strict=True):
        rows["series"] += [name] * m.ticks
        rows["tick"] += ticks.tolist()
        if timed:
            rows["t"] += [m.time(int(t)) for t in ticks]
        rows["date"] += dates
        rows["mean"] += mean.tolist()
        for key, row in zip(QUANTILE_NAMES, q, strict=True):
            rows[key] += row.tolist()
    return pa.table(rows)


def _paths(m: Model, k: int, series: SeriesOf) -> pa.Table:
    runs = np.repeat(np.arange(k), m.ticks)
    ticks = np.tile(np.arange(m.ticks), k)
    columns: dict[str, Any] = {"run": runs, "tick": ticks}
    if m.step != 1:
        columns["t"] = ticks * m.step
    columns["date"] = [m.date(int(t)) for t in ticks]
    for name, _ in m.record:
        columns[name] = series(name, k).T.reshape(-1)
    return pa.table(columns)
