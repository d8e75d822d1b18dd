"""The scenario explorer behind `sim explore`: levers, the study a setting runs, and what the
page shows of it.

An `Explorer` holds one or two scenario files, read once when it starts. Its `levers` are the
scenario's parameters and event times, grouped as `sim show` lists them. A *setting* maps some
levers to numbers (the rest stay as written: uncertain parameters drawn from their
distributions, events at their written times). `Explorer.update(setting, outcomes)` checks the
setting like a scenario value (a number, inside the distribution's support; then the schema and
the compiler, exactly as for a file), runs each scenario with it — in memory, on the same seed,
sampler and run count, so runs pair up (common random numbers: fixing one lever leaves every
other draw alone) — and compares them with `sim.analysis.compare`. `save(setting)` writes the
setting as a scenario file beside each original that `extends:` it, so that `sim run` and
`sim compare` of the saved files give the page's numbers: the page's runs are those very files'
runs, merged in memory (`sim.scenario.loader.extend`) instead of read back.

The two studies of a setting run side by side in warm worker processes, each holding a
`Studies` (the files as read at start) and keeping its noise draws, which no setting changes;
the comparison's bootstraps are mapped over them too. With `workers=0` everything runs in this
process instead.

Nothing of a setting is evaluated or used as a path: names must be levers, values finite
numbers; saved files are named by the original's name and a hash of the setting.

With one scenario, the comparison is the scenario as written (A) against it with the setting
applied (B); with two, both are run with the setting, A against B.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import hashlib
import io
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sim.analysis.compare import ROW_FIELDS, Comparison, compare
from sim.errors import ResultsError, ScenarioError
from sim.model import Model, compile_scenario
from sim.present.describe import declared_parameters
from sim.present.figures import series_unit
from sim.present.numbers import number
from sim.present.summary import findings, threshold_sentences
from sim.sampling.distributions import Choice
from sim.sampling.draws import keep_noise
from sim.scenario.loader import Document, extend, load_document
from sim.scenario.schema import Distribution, Fixed, parse
from sim.study.executors import guard_worker, process_context
from sim.study.posterior import Posterior, read_posterior
from sim.study.results import Results
from sim.study.runner import run

DEFAULT_OUTCOMES = 3  # outcomes shown when none is picked: the first ones the scenarios share
ECDF_POINTS = 201  # quantiles an ECDF is drawn through on the page: exact enough, light to send
SLIDER_STEPS = 200  # a slider's steps across its range
CACHE = 16  # studies (and comparisons) kept, so moving a lever back is instant
TAIL = 0.001  # an unbounded distribution's slider spans its 0.1% to 99.9% quantiles
WORKER_NOISE_BYTES = 256 * 2**20  # noise draws a worker keeps across settings


@dataclass(frozen=True)
class Lever:
    """One control: a parameter (or a cell of an arrayed one) or an event's time.

    `low`..`high` is the slider's range; `allowed` the values a setting may take (a
    distribution's support; an event's horizon); `options` a choice's values. A lever that
    can't be set (`settable` false: a parameter drawn from a posterior, a cell of an arrayed
    parameter) is shown with `why` and stays as written."""

    name: str
    kind: str  # "parameter" or "event"
    group: str
    unit: str
    written: str  # as the scenario writes it: a distribution, or an event's `at:`
    description: str
    source: str
    low: float
    high: float
    step: float
    initial: float
    allowed: tuple[float, float]
    uncertain: bool = True  # drawn from a distribution (or an event not at a plain number)
    options: tuple[float, ...] = ()
    settable: bool = True
    why: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["allowed"] = [_finite(v) for v in self.allowed]
        out["options"] = list(self.options)
        return out


@dataclass
class Opened:
    """One scenario file the explorer was started with, read once."""

    path: Path
    doc: Document
    model: Model


@dataclass(frozen=True)
class View:
    """What the page shows of one setting: the comparison, its studies, and its key (for the
    CSV link)."""

    key: str
    setting: dict[str, float]
    comparison: Comparison
    results: tuple[Results, ...]
    seconds: float
    data: dict[str, Any] = field(repr=False)


class SettingError(ValueError):
    """A setting refused, with the reason per lever (`""` for the setting as a whole)."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" if k else v for k, v in problems.items()))
        self.problems = problems


class Explorer:
    """The scenario files of one `sim explore`, their levers, and the studies settings run.

    `workers` warm processes run a setting's two studies side by side (`sim explore` starts
    two); the default, 0, runs them here one after the other: safe from a plain script or a
    notebook, where worker processes would need an `if __name__ == "__main__":` guard.

    >>> ex = Explorer(["examples/bakery.yaml"], runs=200)
    >>> view = ex.update({"strike_month": 6.0})
    >>> view.comparison.scenarios
    ('bakery', 'bakery-explored')
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        runs: int | None = None,
        seed: int | None = None,
        sampler: str | None = None,
        posterior: str | Path | Posterior | None = None,
        outcomes: Sequence[str] = (),
        thresholds: Sequence[str] = (),
        engine: str = "kernel",
        workers: int = 0,
    ):
        if not 1 <= len(paths) <= 2:
            raise ScenarioError.one("sim explore takes one scenario file or two")
        self.scenarios = []
        for p in paths:
            doc = load_document(p)
            self.scenarios.append(Opened(Path(p), doc, compile_scenario(parse(doc), doc)))
        first = self.scenarios[0].model.scenario
        self.runs = first.runs if runs is None else runs
        self.seed = first.seed if seed is None else seed
        self.sampler = sampler or first.sampler
        self.posterior = (
            read_posterior(posterior) if isinstance(posterior, str | Path) else posterior
        )
        self.thresholds = tuple(thresholds)
        models = [s.model for s in self.scenarios]
        self.outcomes = [
            o.name
            for o in models[0].outcomes
            if all(o.name in _outcome_names(m) for m in models[1:])
        ]
        unknown = [o for o in outcomes if o not in self.outcomes]
        if unknown:
            raise ScenarioError.one(
                f"--outcome {unknown[0]}: not an outcome of every scenario",
                hint="outcomes: " + ", ".join(self.outcomes),
            )
        self.default_outcomes = list(outcomes) or self.outcomes[:DEFAULT_OUTCOMES]
        self.levers = levers(models, self.posterior)
        self._by_name = {lever.name: lever for lever in self.levers}
        self._studies: OrderedDict[tuple[int, str], Results] = OrderedDict()
        self._views: OrderedDict[str, View] = OrderedDict()
        self._lock = threading.Lock()
        self.studies = Studies(
            tuple((o.path, o.doc) for o in self.scenarios),
            {lever.name: lever.kind for lever in self.levers},
            self.runs,
            self.seed,
            self.sampler,
            self.posterior,
            engine,
        )
        self.engine = engine
        self.workers = workers
        self._pool: cf.ProcessPoolExecutor | None = None
        self._alive: tuple[Connection, Connection] | None = None  # the workers' parent pipe
        # The first comparison (every lever as written) checks the thresholds at start.
        try:
            self.update({})
        except SettingError as exc:
            self.close()
            raise ScenarioError.one(str(exc)) from None

    @property
    def labels(self) -> tuple[str, str]:
        """The page's names of A and B."""
        first = self.scenarios[0].model.name
        if len(self.scenarios) == 1:
            return first, f"{first}-explored"
        second = self.scenarios[1].model.name
        return (first, second) if first != second else (f"{first} #1", f"{second} #2")

    # -- a setting ---------------------------------------------------------------------------

    def check(self, setting: Mapping[str, Any]) -> dict[str, float]:
        """The setting as lever -> number, or `SettingError` with the reason for each bad
        value: not a lever, not a number, outside the distribution's support."""
        problems: dict[str, str] = {}
        out: dict[str, float] = {}
        if not isinstance(setting, Mapping):
            raise SettingError({"": "a setting is a mapping of lever names to numbers"})
        for name, value in setting.items():
            lever = self._by_name.get(name) if isinstance(name, str) else None
            if lever is None:
                problems[str(name)[:80]] = "no such lever"
                continue
            if not lever.settable:
                problems[name] = lever.why
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems[name] = "expected a number"
                continue
            x = float(value)
            if not math.isfinite(x):
                problems[name] = "expected a finite number"
                continue
            why = self._outside(lever, x)
            if why:
                problems[name] = why
                continue
            out[name] = x
        if problems:
            raise SettingError(problems)
        return dict(sorted(out.items()))

    def _outside(self, lever: Lever, x: float) -> str:
        if lever.kind == "event":
            low, high = lever.allowed
            if not low <= x <= high:
                return f"{x:g} is outside the horizon ({low:g} to {high:g} months)"
            return ""
        for s in self.scenarios:
            spec = s.model.parameters.get(lever.name)
            if spec is None or isinstance(spec, Fixed):
                continue  # a fixed parameter takes any number the model accepts
            if isinstance(spec, Choice) and x not in spec.values:
                return f"{x:g} is not one of the values of {spec.describe()}"
            low, high = spec.support()
            if not low <= x <= high:
                return (
                    f"{x:g} is outside the support of {spec.describe()} "
                    f"({low:g} to {high:g}) in {s.model.name}"
                )
        return ""

    def overlay(self, index: int, setting: Mapping[str, float]) -> dict[str, Any]:
        """The scenario file (as data) that applies `setting` to scenario `index`
        (`Studies.overlay`)."""
        return self.studies.overlay(index, setting)

    def model_for(self, index: int, setting: Mapping[str, float]) -> Model:
        """Scenario `index` with the setting applied (`Studies.model_for`)."""
        return self.studies.model_for(index, setting)

    # -- running -----------------------------------------------------------------------------

    def update(self, setting: Mapping[str, Any], outcomes: Sequence[str] | None = None) -> View:
        """Run the setting (or take it from the cache) and compare: what the page shows."""
        started = time.perf_counter()
        checked = self.check(setting)
        picked = self._picked(outcomes)
        key = setting_key(checked, picked)
        with self._lock:
            if key in self._views:
                self._views.move_to_end(key)
                return self._views[key]
        # One scenario: as written (A) against the setting (B). Two: both with the setting.
        single = len(self.scenarios) == 1
        jobs: list[tuple[int, dict[str, float]]] = (
            [(0, {}), (0, checked)] if single else [(0, checked), (1, checked)]
        )
        # The schema, the compiler and the engine judge the setting as they would a file.
        results = self._run(jobs)
        try:
            comparison = self._compare(results, picked)
        except ScenarioError as exc:
            raise SettingError({"": "; ".join(str(p) for p in exc.problems)}) from None
        except ResultsError as exc:
            raise SettingError({"": str(exc)}) from None
        comparison = _relabelled(comparison, self.labels)
        seconds = time.perf_counter() - started
        data = page_data(comparison, results, self.labels, picked, checked, key, seconds)
        view = View(key, checked, comparison, results, seconds, data)
        with self._lock:
            self._views[key] = view
            while len(self._views) > CACHE:
                self._views.popitem(last=False)
        return view

    def _run(self, jobs: Sequence[tuple[int, dict[str, float]]]) -> tuple[Results, ...]:
        """The studies of `jobs` ((scenario, setting) pairs), from the cache or run: side by
        side in the warm worker processes, or here with no workers."""
        keys = [(i, json.dumps(job, sort_keys=True)) for i, job in jobs]
        found: dict[int, Results] = {}
        with self._lock:
            for k, key in enumerate(keys):
                if key in self._studies:
                    self._studies.move_to_end(key)
                    found[k] = self._studies[key]
        todo = [k for k in range(len(jobs)) if k not in found]
        if self.workers < 1:
            done = [self.studies.run(*jobs[k]) for k in todo]
        else:
            done = self._in_workers([jobs[k] for k in todo])
        refused = [d for d in done if isinstance(d, Refused)]
        if refused:
            raise SettingError({"": "; ".join(refused[0].problems)})
        with self._lock:
            for k, res in zip(todo, done, strict=True):
                assert isinstance(res, Results)
                found[k] = self._studies[keys[k]] = res
            while len(self._studies) > CACHE:
                self._studies.popitem(last=False)
        return tuple(found[k] for k in range(len(jobs)))

    def _compare(self, results: Sequence[Results], picked: list[str]) -> Comparison:
        """The comparison, its differences' bootstraps side by side in the workers (the same
        numbers as one after the other); here if there are none, or they died."""
        if self.workers >= 1:
            pool = self._workers()
            try:
                return compare(
                    *results, outcomes=picked, thresholds=self.thresholds, mapper=pool.map
                )
            except cf.process.BrokenProcessPool:
                self._forget(pool)
        return compare(*results, outcomes=picked, thresholds=self.thresholds)

    def _in_workers(self, jobs: Sequence[tuple[int, dict[str, float]]]) -> list[Results | Refused]:
        for attempt in (1, 2):  # a worker that died (killed, out of memory) is replaced once
            pool = self._workers()
            try:  # a pool found broken refuses the submit; one that breaks, the result
                futures = [pool.submit(_study_in_worker, i, setting) for i, setting in jobs]
                return [f.result() for f in futures]
            except cf.process.BrokenProcessPool:
                self._forget(pool)
                if attempt == 2:
                    raise SettingError(
                        {"": "the explorer's worker processes died twice; restart sim explore"}
                    ) from None
        raise AssertionError("unreachable")

    def _forget(self, pool: cf.ProcessPoolExecutor) -> None:
        """Drop a pool whose workers died: the next use starts a new one."""
        with self._lock:
            if self._pool is pool:
                self._pool = None

    def _workers(self) -> cf.ProcessPoolExecutor:
        """The warm worker processes, started on first use: each holds the scenario files as
        read at start (never reading a file again) and compiles and runs one setting's
        study at a time."""
        with self._lock:
            if self._pool is None:
                ctx = process_context()
                if self._alive is None:
                    self._alive = ctx.Pipe(duplex=False)
                self._pool = cf.ProcessPoolExecutor(
                    self.workers,
                    mp_context=ctx,
                    initializer=_start_worker,
                    initargs=(self.studies, self._alive[0]),
                )
            return self._pool

    def _picked(self, outcomes: Sequence[str] | None) -> list[str]:
        if outcomes is None:
            return list(self.default_outcomes)
        if isinstance(outcomes, str) or not all(isinstance(o, str) for o in outcomes):
            raise SettingError({"": "outcomes are a list of names"})
        unknown = [o for o in outcomes if o not in self.outcomes]
        if unknown:
            raise SettingError({"": f"no outcome '{unknown[0][:80]}' shared by the scenarios"})
        return list(dict.fromkeys(outcomes)) or list(self.default_outcomes)

    def view(self, key: str) -> View | None:
        """A comparison the page was shown, by its key (for the CSV download)."""
        with self._lock:
            return self._views.get(key)

    # -- saving ------------------------------------------------------------------------------

    def saved_files(self, setting: Mapping[str, Any]) -> list[tuple[Path, str]]:
        """(path, text) of the scenario files that save `setting`: one beside each original
        (`extends:` reaches only files in its own folder), named by the original and a hash of
        the setting. With one scenario, the file is its B; with two, one file per scenario."""
        checked = self.check(setting)
        study = [self.runs, self.seed, self.sampler]
        study += [self.posterior.sha256] if self.posterior is not None else []
        digest = setting_key(checked, [str(x) for x in study])[:8]
        out = []
        for index, s in enumerate(self.scenarios):
            name = f"{s.model.name}-explored-{digest}"
            data: dict[str, Any] = {
                "extends": s.path.name,
                "name": name,
                "description": f"{s.model.name} with {describe_setting(checked, self._by_name)} "
                "(saved by sim explore).",
            }
            if self.runs != s.model.scenario.runs:
                data["runs"] = self.runs
            if self.seed != s.model.scenario.seed:
                data["seed"] = self.seed
            if self.sampler != s.model.scenario.sampler:
                data["sampler"] = self.sampler
            data.update(self.overlay(index, checked))
            head = (
                f"# Saved by `sim explore` from {s.path.name}: rerun it with `sim run`, compare "
                "it with `sim compare`.\n"
            )
            text = head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
            out.append((s.path.parent / f"{s.path.stem}-explored-{digest}.yaml", text))
        return out

    def commands(self, files: Sequence[Path]) -> list[str]:
        """The commands that rerun and compare the saved files, as the page shows them."""
        # The saved files carry the runs, seed and sampler; a posterior is the command's.
        # `sim compare` of files runs them on the kernel: the numba engine agrees to 1e-12.
        options = f" --posterior {self.posterior.folder}" if self.posterior is not None else ""
        engine = f" --engine {self.engine}" if self.engine != "kernel" else ""
        pair = (
            [str(self.scenarios[0].path), str(files[0])]
            if len(self.scenarios) == 1
            else [str(f) for f in files]
        )
        return [f"sim run {f}" + options + engine for f in files] + [
            f"sim compare {' '.join(pair)}" + options
        ]

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            alive, self._alive = self._alive, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if alive is not None:
            for end in alive:
                end.close()


@dataclass(frozen=True)
class Refused:
    """A setting the schema, the compiler or the engine refused, as a worker reports it."""

    problems: tuple[str, ...]


@dataclass(frozen=True)
class Studies:
    """How a setting becomes a study, and nothing of the page: the scenario files as read at
    start, the levers' kinds, and the study's runs, seed, sampler and posterior. It pickles,
    so each warm worker process holds one."""

    files: tuple[tuple[Path, Document], ...]
    kinds: Mapping[str, str]  # lever -> "parameter" or "event"
    runs: int
    seed: int
    sampler: str
    posterior: Posterior | None = None
    engine: str = "kernel"

    def overlay(self, index: int, setting: Mapping[str, float]) -> dict[str, Any]:
        """The scenario file (as data) that applies `setting` to scenario `index`, as a file
        that `extends:` it writes it: each set parameter fixed (its distribution's keys
        deleted with null), each set event at a number of months."""
        written = self.files[index][1].data
        params: dict[str, Any] = {}
        events: dict[str, Any] = {}
        for name, value in setting.items():
            if self.kinds[name] == "event":
                if name in written.get("events", {}):
                    events[name] = {"at": value}
                continue
            spec = written.get("parameters", {}).get(name)
            if spec is None:
                continue
            if isinstance(spec, dict):
                body: dict[str, Any] = {"dist": "fixed", "value": value}
                body |= {k: None for k in spec if k not in (*body, "unit", "source", "description")}
            else:
                body = {"value": value}
            params[name] = body
        out: dict[str, Any] = {}
        if params:
            out["parameters"] = params
        if events:
            out["events"] = events
        return out

    def model_for(self, index: int, setting: Mapping[str, float]) -> Model:
        """Scenario `index` with the setting applied: validated by the schema and compiled,
        as the saved file would be."""
        path, doc = self.files[index]
        if setting:
            doc = extend(doc, self.overlay(index, setting), f"{path} (explored)")
        return compile_scenario(parse(doc), doc)

    def run(self, index: int, setting: Mapping[str, float]) -> Results | Refused:
        """The study of scenario `index` with `setting`, held in memory: `sim run` of the
        saved file, bit for bit. A setting the schema, compiler or engine refuses is
        `Refused` with their reasons."""
        try:
            return run(
                self.model_for(index, setting),
                runs=self.runs,
                seed=self.seed,
                sampler=self.sampler,
                engine=self.engine,
                posterior=self.posterior,
            )
        except ScenarioError as exc:
            return Refused(tuple(str(p) for p in exc.problems))
        except ResultsError as exc:
            return Refused((str(exc),))


_WORKER: Studies | None = None  # a worker process's studies, set as it starts


def _start_worker(studies: Studies, parent_alive: Connection) -> None:
    guard_worker(parent_alive)  # Ctrl-C stops the server, which stops us; so does its death
    global _WORKER
    _WORKER = studies
    keep_noise(WORKER_NOISE_BYTES)  # a setting never changes a run's noise: draw it once


def _study_in_worker(index: int, setting: dict[str, float]) -> Results | Refused:
    assert _WORKER is not None, "not started by Explorer._workers"
    return _WORKER.run(index, setting)


def _outcome_names(model: Model) -> set[str]:
    return {o.name for o in model.outcomes}


# -- levers ----------------------------------------------------------------------------------


def levers(models: Sequence[Model], posterior: Posterior | None = None) -> list[Lever]:
    """Every parameter and event of the scenarios as a lever, in the first scenario's order
    (then any the second adds): uncertain parameters, then fixed ones, then events."""
    held = set(posterior.names) if posterior is not None else set()
    uncertain: list[Lever] = []
    fixed: list[Lever] = []
    seen: set[str] = set()
    for model in models:
        for shown, cells in declared_parameters(model):
            for cell, _ in cells:
                name = (
                    cell if len(cells) == 1 and cell == shown else f"{shown.split('[')[0]}[{cell}]"
                )
                if name in seen:
                    continue
                seen.add(name)
                specs = [m.parameters[name] for m in models if name in m.parameters]
                lever = _parameter_lever(name, specs, shown if len(cells) > 1 else "")
                if name in held:
                    lever = _unsettable(lever, f"drawn from the posterior in {posterior.folder}")  # type: ignore[union-attr]
                elif "[" in name:
                    lever = _unsettable(lever, "a cell of an arrayed parameter: set it in the file")
                (uncertain if lever.uncertain else fixed).append(lever)
    events: list[Lever] = []
    seen = set()
    for model in models:
        for e in model.events:
            if e.name in seen:
                continue
            seen.add(e.name)
            events.append(_event_lever(e.name, models))
    # An arrayed parameter's cells are grouped under its name; the rest by whether drawn.
    return (
        [replace(lever, group=lever.group or "Uncertain parameters") for lever in uncertain]
        + [replace(lever, group=lever.group or "Fixed parameters") for lever in fixed]
        + events
    )


def _unsettable(lever: Lever, why: str) -> Lever:
    return replace(lever, settable=False, why=why)


def _parameter_lever(name: str, specs: list[Distribution], group: str) -> Lever:
    shown = sorted({s.describe() for s in specs})
    first = specs[0]
    sampled = [s for s in specs if not isinstance(s, Fixed)]
    if sampled:
        lows, highs, allowed_low, allowed_high = [], [], [], []
        for s in sampled:
            lo, hi = s.support()
            allowed_low.append(lo)
            allowed_high.append(hi)
            a, b = (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else (math.nan, math.nan)
            if not math.isfinite(a):
                q = s.ppf(np.array([TAIL, 1 - TAIL]))
                a = lo if math.isfinite(lo) else float(q[0])
                b = hi if math.isfinite(hi) else float(q[1])
            lows.append(a)
            highs.append(b)
        low, high = min(lows), max(highs)
        initial = float(sampled[0].ppf(np.array([0.5]))[0])
        allowed = (max(allowed_low), min(allowed_high))
    else:
        value = float(first.value)  # type: ignore[attr-defined]
        low, high = (min(0.0, 2 * value), max(0.0, 2 * value)) if value else (0.0, 1.0)
        initial = value
        allowed = (-math.inf, math.inf)
    options = tuple(float(v) for v in first.values) if isinstance(first, Choice) else ()
    return Lever(
        name=name,
        kind="parameter",
        group=group,
        unit=first.unit,
        written="; ".join(shown),
        description=first.description or "",
        source=first.source or "",
        low=low,
        high=high,
        step=_step(low, high),
        initial=min(max(initial, low), high),
        allowed=allowed,
        uncertain=bool(sampled),
        options=options,
    )


def _event_lever(name: str, models: Sequence[Model]) -> Lever:
    written, times = [], []
    for m in models:
        for e in m.events:
            if e.name == name:
                if e.kind == "never":
                    written.append(f"{m.name}: never")
                elif e.kind == "tick":
                    assert isinstance(e.at, float)
                    written.append(f"{m.name}: {m.date_at(max(e.at, 0.0))}")
                    times.append(e.at)
                else:
                    written.append(f"{m.name}: {getattr(e.at, 'text', str(e.at))}")
    first = models[0]
    months = float(first.scenario.months)
    description = next(
        ((m.scenario.events[name].description or "") for m in models if name in m.scenario.events),
        "",
    )
    source = next(
        ((m.scenario.events[name].source or "") for m in models if name in m.scenario.events), ""
    )
    return Lever(
        name=name,
        kind="event",
        group="Event times",
        unit="month",
        written="; ".join(written),
        description=description,
        source=source,
        low=0.0,
        high=months,
        step=float(first.step),
        initial=times[0] if times else months / 2,
        allowed=(0.0, months),
        uncertain=len(times) < len(written),
    )


def _step(low: float, high: float) -> float:
    """A round slider step giving about SLIDER_STEPS steps over [low, high]."""
    span = high - low
    if not (math.isfinite(span) and span > 0):
        return 1.0
    raw = span / SLIDER_STEPS
    ten = 10 ** math.floor(math.log10(raw))
    return float(next(m * ten for m in (1, 2, 5, 10) if m * ten >= raw))


# -- what the page shows ---------------------------------------------------------------------


def setting_key(setting: Mapping[str, float], outcomes: Sequence[str]) -> str:
    """A setting's hash: names the cached comparison and the saved files."""
    text = json.dumps([sorted(setting.items()), list(outcomes)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_setting(setting: Mapping[str, float], levers: Mapping[str, Lever]) -> str:
    if not setting:
        return "every lever as written"
    parts = []
    for name, value in setting.items():
        unit = levers[name].unit
        if levers[name].kind == "event":
            parts.append(f"event {name} at month {value:g}")
        else:
            parts.append(f"{name} = {value:g}" + (f" ({unit})" if unit not in ("", "1") else ""))
    return ", ".join(parts)


def _relabelled(comparison: Comparison, labels: tuple[str, str]) -> Comparison:
    """The comparison under the page's labels (a single scenario's B is "NAME-explored")."""
    if comparison.scenarios == labels:
        return comparison
    old = comparison.scenarios
    rename = dict(zip(old, labels, strict=True))
    return replace(
        comparison,
        scenarios=labels,
        summaries={rename[k]: v for k, v in comparison.summaries.items()},
        differences=tuple(replace(d, a=rename[d.a], b=rename[d.b]) for d in comparison.differences),
        thresholds=tuple(
            replace(
                t,
                probabilities=tuple(
                    replace(p, scenario=rename[p.scenario]) for p in t.probabilities
                ),
                differences=tuple(replace(d, a=rename[d.a], b=rename[d.b]) for d in t.differences),
            )
            for t in comparison.thresholds
        ),
    )


def ecdf_points(values: np.ndarray) -> list[float | None]:
    """An ECDF as its values at ECDF_POINTS evenly spaced probabilities (NaNs left out)."""
    x = values[np.isfinite(values)]
    if not len(x):
        return []
    return [float(v) for v in np.quantile(x, np.linspace(0, 1, ECDF_POINTS))]


def page_data(
    comparison: Comparison,
    results: Sequence[Results],
    labels: tuple[str, str],
    outcomes: Sequence[str],
    setting: Mapping[str, float],
    key: str,
    seconds: float,
) -> dict[str, Any]:
    """Everything the page draws, JSON-ready: numbers, sentences, ECDFs, differences, bands."""
    a, b = results
    sentences = {f.outcome: f.sentence for f in findings(comparison, top=len(outcomes))}
    rows = []
    for name in comparison.outcomes:
        d = comparison.difference(name, labels[1])
        sa, sb = comparison.summary(name, labels[0]), comparison.summary(name, labels[1])
        va, vb = a.outcome(name), b.outcome(name)
        both = np.isfinite(va) & np.isfinite(vb)
        diff = (vb - va)[both] if d.paired else np.array([])
        rows.append(
            {
                "outcome": name,
                "unit": d.unit,
                "description": sa.description,
                "a": _summary(sa),
                "b": _summary(sb),
                "difference": {
                    "paired": d.paired,
                    "n": min(d.n_a, d.n_b),
                    "median": _finite(d.median),
                    "p05": _finite(d.p05),
                    "p95": _finite(d.p95),
                    "mean": _finite(d.mean),
                    "mean_low": _finite(d.mean_low),
                    "mean_high": _finite(d.mean_high),
                    "p_greater": _finite(d.p_greater),
                    "p_equal": _finite(d.p_equal),
                },
                "text": {
                    "a": _spread(sa.p50, sa.p05, sa.p95),
                    "b": _spread(sb.p50, sb.p05, sb.p95),
                    "difference": _spread(d.median, d.p05, d.p95, signed=True),
                    "p_greater": _percent(d.p_greater),
                },
                "sentence": sentences.get(
                    name, "The two scenarios give the same value in every run."
                ),
                "ecdf": {
                    "a": ecdf_points(va),
                    "b": ecdf_points(vb),
                    "difference": ecdf_points(diff),
                },
            }
        )
    fans = []
    for series in a.series_names:
        if series not in b.series_names:
            continue
        bands = []
        for res in results:
            band = res.band(series)
            bands.append(
                {
                    k: [_finite(float(v)) for v in band[k]]
                    for k in ("p05", "p25", "p50", "p75", "p95")
                }
                | {"date": [str(v) for v in band["date"]]}
            )
        fans.append({"series": series, "unit": series_unit(a, series), "bands": bands})
    return {
        "key": key,
        "labels": list(labels),
        "runs": a.n_runs,
        "seed": a.manifest.get("seed"),
        "paired": all(p.paired for p in comparison.pairings),
        "pairing": [p.reason for p in comparison.pairings],
        "setting": dict(setting),
        "outcomes": rows,
        "thresholds": threshold_sentences(comparison),
        "notes": list(comparison.notes),
        "fans": fans,
        "seconds": round(seconds, 3),
    }


def _summary(s: Any) -> dict[str, float | None]:
    return {k: _finite(getattr(s, k)) for k in ("mean", "p05", "p50", "p95")} | {"n": s.n}


def _spread(mid: float, low: float, high: float, signed: bool = False) -> str:
    if not math.isfinite(mid):
        return "–"
    text = number(mid, signed=signed)
    if math.isfinite(low) and math.isfinite(high):
        text += f" ({number(low, signed=signed)} to {number(high, signed=signed)})"
    return text


def _percent(p: float) -> str:
    return f"{p:.0%}" if math.isfinite(p) else "–"


def _finite(x: float) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def comparison_csv(comparison: Comparison) -> str:
    """The comparison as `sim compare --csv` writes it: one row per outcome and scenario,
    per difference, per threshold."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(ROW_FIELDS), lineterminator="\n")
    writer.writeheader()
    for row in comparison.rows():
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()
