"""Runs a study: cuts runs into blocks, draws, runs an engine, and hands the rows to the store.

The block is the unit of work; randomness never depends on it (`sim.sampling`), so any block
size gives the same bits. Serial for now; each block is independent, which is what a process
pool or a Dask cluster needs later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from sim import store
from sim.distributions import describe as describe_dist
from sim.engine.des import Run as DesRun
from sim.engine.des import run_one
from sim.engine.kernel import Block, run_block
from sim.errors import ScenarioError
from sim.model import Model
from sim.results import QUANTILES, Results
from sim.sampling import SAMPLERS, noise_draws, parameter_draws
from sim.schema import Fixed

ENGINES = ("kernel", "des")
DEFAULT_BLOCK = 8192
BAND_BUDGET_BYTES = 256 * 2**20  # recorded values kept for exact bands; beyond, a subsample

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Plan:
    """What to run: the model and the study's settings, after defaults are applied."""

    model: Model
    runs: int
    seed: int
    sampler: str
    engine: str
    block_size: int
    keep_paths: int

    @property
    def blocks(self) -> list[tuple[int, int, int]]:
        """(block, first run, stop) for each block."""
        n = math.ceil(self.runs / self.block_size)
        return [
            (b, b * self.block_size, min(self.runs, (b + 1) * self.block_size)) for b in range(n)
        ]

    @property
    def kept(self) -> int:
        """How many leading runs keep their recorded series (for bands and paths)."""
        series = max(1, len(self.model.record))
        budget = max(1000, BAND_BUDGET_BYTES // (8 * self.model.ticks * series))
        return min(self.runs, max(budget, self.keep_paths)) if self.model.record else 0


def plan(
    model: Model,
    runs: int | None = None,
    seed: int | None = None,
    sampler: str | None = None,
    engine: str = "kernel",
    block_size: int = DEFAULT_BLOCK,
    keep_paths: int = 0,
) -> Plan:
    """Apply the scenario's defaults and check the settings."""
    sc = model.scenario
    runs = sc.runs if runs is None else runs
    seed = sc.seed if seed is None else seed
    sampler = sampler or sc.sampler
    problems = []
    if runs < 1:
        problems.append(f"--runs must be at least 1 (got {runs})")
    if seed < 0:
        problems.append(f"--seed must be >= 0 (got {seed})")
    if sampler not in SAMPLERS:
        problems.append(f"unknown sampler '{sampler}' (use {', '.join(SAMPLERS)})")
    if engine not in ENGINES:
        problems.append(f"unknown engine '{engine}' (use {', '.join(ENGINES)})")
    if block_size < 1:
        problems.append(f"block size must be at least 1 (got {block_size})")
    if keep_paths < 0:
        problems.append(f"--keep-paths must be >= 0 (got {keep_paths})")
    if problems:
        raise ScenarioError.one("; ".join(problems))
    return Plan(model, runs, seed, sampler, engine, block_size, min(keep_paths, runs))


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
) -> Results:
    """Run a study of `model` and return its `Results`; with `out`, also write the folder.

    >>> import sim
    >>> res = sim.run(sim.load("examples/bakery.yaml"), runs=100, seed=3)
    >>> res.n_runs
    100
    """
    p = plan(model, runs, seed, sampler, engine, block_size, keep_paths)
    return _Study(p, Path(out) if out is not None else None, force, progress).run()


def draw(p: Plan, start: int, stop: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Parameter values and noise paths for runs [start, stop) of a plan."""
    m = p.model
    params = parameter_draws(m.parameters, p.sampler, p.seed, p.runs, start, stop)
    noise = noise_draws(m.noises, p.seed, p.runs, m.ticks, start, stop)
    return params, noise


def execute(
    p: Plan, params: dict[str, np.ndarray], noise: dict[str, np.ndarray], start: int, stop: int
) -> Block:
    """Run runs [start, stop) of a plan with its engine, on their draws."""
    m = p.model
    if p.engine == "kernel":
        return run_block(m, params, noise, first_run=start, n=stop - start)
    n = stop - start
    outcomes = {o.name: np.empty(n) for o in m.outcomes}
    series = {name: np.empty((m.ticks, n)) for name, _ in m.record}
    bad_tick = np.full(n, -1, dtype=np.int64)
    bad_name = np.full(n, "", dtype=object)
    for k in range(n):
        r = run_one(
            m,
            {a: v[k] for a, v in params.items()},
            {a: v[:, k] for a, v in noise.items()},
            start + k,
        )
        for name, value in r.outcomes.items():
            outcomes[name][k] = value
        for name, path in r.series.items():
            series[name][:, k] = path
        bad_tick[k], bad_name[k] = r.bad_tick, r.bad_name
    return Block(outcomes, series, bad_tick, bad_name)


@dataclass(frozen=True)
class Story:
    """One run through the SimPy engine, with what was drawn for it."""

    run: DesRun
    parameters: dict[str, float]
    seed: int
    sampler: str
    runs: int


def trace_run(
    model: Model,
    index: int,
    runs: int | None = None,
    seed: int | None = None,
    sampler: str | None = None,
) -> Story:
    """Run number `index` of a study through the SimPy engine, with its event log."""
    runs = max(runs or model.scenario.runs, index + 1)
    if index < 0:
        raise ScenarioError.one(f"--run must be >= 0 (got {index})")
    p = plan(model, runs, seed, sampler, engine="des")
    params, noise = draw(p, index, index + 1)
    values = {a: float(v[0]) for a, v in params.items()}
    result = run_one(model, values, {a: v[:, 0] for a, v in noise.items()}, index)
    drawn = {a: values[a] for a in model.sampled}
    return Story(result, drawn, p.seed, p.sampler, p.runs)


def scenario_sha256(model: Model) -> str:
    canonical = json.dumps(model.scenario.dump(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class _Study:
    def __init__(self, p: Plan, folder: Path | None, force: bool, progress: Progress | None):
        self.p = p
        self.folder = folder
        self.force = force
        self.progress = progress

    def run(self) -> Results:
        p, m = self.p, self.p.model
        started = dt.datetime.now(dt.UTC)
        clock = time.perf_counter()
        manifest = self.manifest(started)
        if self.folder is not None:
            store.prepare_folder(self.folder, m.name, self.force)
            store.write_json(manifest, self.folder / store.MANIFEST)
        sampled = [n for n in m.parameters if not isinstance(m.parameters[n], Fixed)]
        tables: list[pa.Table] = []
        kept: dict[str, list[np.ndarray]] = {name: [] for name, _ in m.record}
        done = 0
        for b, start, stop in p.blocks:
            params, noise = draw(p, start, stop)
            block = execute(p, params, noise, start, stop)
            table = _rows(m, start, stop, {n: params[n] for n in sampled}, block)
            keep = max(0, min(stop, p.kept) - start)
            series = {name: block.series[name][:, :keep] for name, _ in m.record}
            if self.folder is not None:
                runs_part, series_part = store.part_paths(self.folder, b)
                store.write_table(table, runs_part)
                store.write_npz(series, series_part)
                manifest["blocks_done"] = b + 1
                store.write_json(manifest, self.folder / store.MANIFEST)
            tables.append(table)
            for name in kept:
                kept[name].append(series[name])
            done += stop - start
            if self.progress is not None:
                self.progress(done, p.runs)
        runs = pa.concat_tables(tables)
        paths_kept = {name: np.concatenate(v, axis=1) for name, v in kept.items()}
        bands = _bands(m, paths_kept)
        paths = _paths(m, paths_kept, p.keep_paths) if p.keep_paths and m.record else None
        finished = dt.datetime.now(dt.UTC)
        manifest.update(
            finished=finished.isoformat(timespec="seconds"),
            wall_seconds=round(time.perf_counter() - clock, 3),
            blocks_done=len(p.blocks),
            nonfinite_runs=int(
                np.sum(runs.column("status").to_numpy(zero_copy_only=False) != "ok")
            ),
        )
        if self.folder is not None:
            files = {"runs.parquet": runs, "bands.parquet": bands}
            if paths is not None:
                files["paths.parquet"] = paths
            for name, table in files.items():
                store.write_table(table, self.folder / name)
            manifest["sha256"] = {name: store.sha256_file(self.folder / name) for name in files}
            manifest["complete"] = True
            store.write_json(manifest, self.folder / store.MANIFEST)
            store.finish_folder(self.folder)
        else:
            manifest["complete"] = True
        return Results(manifest, runs, bands, paths, self.folder)

    def manifest(self, started: dt.datetime) -> dict[str, Any]:
        p, m = self.p, self.p.model
        kept = p.kept
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
            "blocks_total": len(p.blocks),
            "blocks_done": 0,
            "ticks": m.ticks,
            "start": m.scenario.start,
            "outcomes": {
                o.name: {
                    "unit": o.unit,
                    "stat": o.stat,
                    "of": o.expr.text,
                    "description": m.scenario.outcomes[o.name].description or "",
                }
                for o in m.outcomes
            },
            "parameters": {
                name: {
                    "distribution": describe_dist(spec),
                    "unit": spec.unit,
                    "source": spec.source or "",
                    "sampled": not isinstance(spec, Fixed),
                    **({"value": float(spec.value)} if isinstance(spec, Fixed) else {}),
                }
                for name, spec in m.parameters.items()
            },
            "record": [name for name, _ in m.record],
            "bands": {
                "runs_used": kept,
                "method": "exact over all runs"
                if kept == p.runs
                else f"over the first {kept} of {p.runs} runs (a uniform subsample: runs are exchangeable draws)",
            },
            "keep_paths": p.keep_paths,
            "versions": _versions(),
            "machine": {"python": platform.python_version(), "platform": platform.platform()},
            "started": started.isoformat(timespec="seconds"),
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


def _bands(m: Model, kept: dict[str, np.ndarray]) -> pa.Table:
    rows: dict[str, list[Any]] = {
        k: [] for k in ("series", "tick", "date", "mean", "p05", "p25", "p50", "p75", "p95")
    }
    ticks = np.arange(m.ticks)
    dates = [m.date(int(t)) for t in ticks]
    for name, values in kept.items():
        if values.shape[1] == 0:
            continue
        with np.errstate(all="ignore"):
            q = np.nanquantile(values, QUANTILES, axis=1)
            mean = np.nanmean(values, axis=1)
        rows["series"] += [name] * m.ticks
        rows["tick"] += ticks.tolist()
        rows["date"] += dates
        rows["mean"] += mean.tolist()
        for key, row in zip(("p05", "p25", "p50", "p75", "p95"), q, strict=True):
            rows[key] += row.tolist()
    return pa.table(rows)


def _paths(m: Model, kept: dict[str, np.ndarray], k: int) -> pa.Table:
    runs = np.repeat(np.arange(k), m.ticks)
    ticks = np.tile(np.arange(m.ticks), k)
    columns: dict[str, Any] = {"run": runs, "tick": ticks, "date": [m.date(int(t)) for t in ticks]}
    for name, values in kept.items():
        columns[name] = values[:, :k].T.reshape(-1)
    return pa.table(columns)


def _versions() -> dict[str, str]:
    out = {}
    for package in ("sim", "numpy", "scipy", "simpy", "pyarrow", "pydantic"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:  # pragma: no cover
            out[package] = "unknown"
    return out
