"""Guards that refuse a study which can't end well, before it starts or after its first block.

Before: `estimate` sizes a study from runs x ticks x what is kept (memory per block in flight,
the series kept for bands and paths, the files written, and the block parts that stay on disk
until the study ends: the disk's peak), and `check` refuses one that would not fit this machine, with the estimate and what to change. The memory limit can be raised
(`--max-memory`: the user may know of swap or a quieter machine); the disk can't.

As blocks land: `Health` turns "every run went non-finite" into one located error, since a
model that fails in every run is a mistake in the model, not a result.

    >>> from sim.model import load
    >>> est = estimate(load("examples/bakery.yaml"), runs=1000, block_size=1000)
    >>> est.memory_bytes < 50 * 2**20
    True
"""

from __future__ import annotations

import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from sim.engine.semantics import STATUS_OK
from sim.errors import Place, ScenarioError
from sim.model import Model
from sim.sampling.draws import NOISE_CACHE, NOISE_CACHE_ITEM_BYTES, RANDOM_BLOCK

FLOAT = 8  # bytes
MEMORY_SHARE = 0.75  # of physical memory a study may plan to use unless told otherwise
ROW_OVERHEAD = 24  # bytes a run costs in runs.parquet beyond its numbers (status, bad_name)
PART_OVERHEAD = 16 * 2**10  # bytes per block of part headers (Arrow IPC schema, .npy header)
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


@dataclass(frozen=True)
class Estimate:
    """What a study will need: peak memory, and bytes written to its results folder."""

    memory_bytes: int
    output_bytes: int
    per_block_bytes: int  # one block in flight, in one worker
    kept_bytes: int  # recorded series kept for bands and paths, in the parent
    workers: int
    block_size: int
    parts_bytes: int = 0  # block parts, kept under parts/ until the study ends

    @property
    def disk_bytes(self) -> int:
        """The results folder at its largest: every block's parts and the finished files."""
        return self.parts_bytes + self.output_bytes

    def describe(self) -> str:
        return (
            f"about {size(self.memory_bytes)} of memory ({self.workers} x "
            f"{size(self.per_block_bytes)} per block of {self.block_size:,} runs, plus "
            f"{size(self.kept_bytes)} of recorded series) and {size(self.disk_bytes)} on disk"
        )


def estimate(
    model: Model,
    runs: int,
    block_size: int,
    workers: int = 1,
    kept: int = 0,
    keep_paths: int = 0,
) -> Estimate:
    """Size a study. `kept`: leading runs whose recorded series are kept for bands."""
    n = min(block_size, runs)
    ticks = model.ticks
    # Counted per cell: an arrayed stock or flow is a row per cell in the kernel, and an
    # arrayed flow's noise is held twice (its cells' draws and their stack).
    flows, stocks = sum(f.size for f in model.flows), sum(s.size for s in model.stocks)
    noisy = len(model.noises) + sum(f.size for f in model.flows if f.noise is not None and f.dims)
    record = len(model.record)
    columns = len(model.parameters) + len(model.outcomes) + 3
    # Per run in a block: stocks, flows' requests/amounts/cumulative/transit, delay rings,
    # parameters, state, variables with as many temporaries again, outcome accumulators, the
    # block's noise paths and its row of results.
    per_run = (
        stocks
        + 4 * flows
        + sum(f.delay * f.size for f in model.flows)
        + len(model.parameters)
        + sum(int(np.size(v)) for v in model.state.values())
        + 2 * sum(math.prod(model.shape(name)) for name, _ in model.variables)
        + 2 * len(model.outcomes)
        + noisy * ticks
        + columns
    )
    series_in_block = min(kept, n) * ticks * record
    # Noise is drawn a whole random block at a time, and small ones are cached.
    raw = ticks * RANDOM_BLOCK
    cached = min(NOISE_CACHE, 2 * noisy) if FLOAT * raw <= NOISE_CACHE_ITEM_BYTES else 0
    raw_noise = (1 + cached) * raw if noisy else 0
    per_block = FLOAT * (per_run * n + series_in_block + raw_noise)
    kept_bytes = FLOAT * ticks * record * max(kept, keep_paths)
    output = (FLOAT * columns + ROW_OVERHEAD) * runs + FLOAT * keep_paths * ticks * (record + 2)
    output += FLOAT * ticks * record * 6  # bands: mean and five quantiles per tick
    # Every block lands as parts (its rows uncompressed, its kept runs' series) that stay
    # until runs.parquet, bands and paths are written from them: the disk's peak holds both.
    blocks = -(-runs // max(1, block_size))
    parts = (FLOAT * columns + ROW_OVERHEAD) * runs + FLOAT * ticks * record * min(kept, runs)
    parts += PART_OVERHEAD * blocks
    return Estimate(
        memory_bytes=workers * per_block + kept_bytes,
        output_bytes=output,
        per_block_bytes=per_block,
        kept_bytes=kept_bytes,
        workers=workers,
        block_size=n,
        parts_bytes=parts,
    )


def check(est: Estimate, folder: Path | None, max_memory: int | None = None) -> None:
    """Refuse a study that would not fit: memory above `max_memory` (default: three quarters
    of this machine's), or a results folder larger than the free space where it goes."""
    limit = max_memory if max_memory is not None else int(MEMORY_SHARE * physical_memory())
    if est.memory_bytes > limit:
        whose = "the limit you set" if max_memory is not None else "3/4 of this machine's memory"
        raise ScenarioError.one(
            f"this study needs {est.describe()}; that is more than {whose} ({size(limit)})",
            hint="lower --block-size, --workers or --keep-paths, or shorten months (noise is "
            f"drawn {RANDOM_BLOCK:,} runs x months at a time per noisy flow); "
            "pass --max-memory SIZE (e.g. 40GiB) to run it anyway",
        )
    if folder is not None:
        # Parts already there (a study being resumed, or replaced) are part of the peak.
        free = free_space(folder) + folder_bytes(folder / "parts")
        if est.disk_bytes > free:
            raise ScenarioError.one(
                f"this study would need about {size(est.disk_bytes)} in {folder} at its peak "
                f"({size(est.parts_bytes)} of block parts, kept until the end, and "
                f"{size(est.output_bytes)} of results), which has {size(free)} free",
                hint="choose another --out, or fewer --runs or --keep-paths",
            )


EVIDENCE = 256  # runs that must all have failed before a study is called broken


class Health:
    """Watches a study's rows as blocks land and refuses a broken model: every run so far
    non-finite, or an outcome non-finite in every run so far, once at least `EVIDENCE` runs
    (or all of a smaller study) are in. Some runs going non-finite is a result, counted and
    named in the summary; a block of one bad run among many good ones is not a broken model.
    """

    def __init__(self, model: Model, runs: int):
        self.model = model
        self.needed = min(runs, EVIDENCE)
        self.seen = 0
        self.bad = 0
        self.culprits: dict[str, tuple[int, int]] = {}  # name -> (runs, first tick)
        self.finite = {o.name for o in model.outcomes if o.stat == "first"}  # never faults

    def add(self, rows: pa.Table) -> None:
        """Take a block's rows (runs.parquet's columns); raise ScenarioError if broken."""
        if rows.num_rows == 0:
            return
        self.seen += rows.num_rows
        status = rows.column("status").to_numpy(zero_copy_only=False)
        bad = status != STATUS_OK
        self.bad += int(bad.sum())
        if bad.any():
            names = rows.column("bad_name").to_numpy(zero_copy_only=False).astype(str)[bad]
            ticks = rows.column("bad_tick").to_numpy()[bad]
            for name in np.unique(names):
                mine = names == name
                count, tick = self.culprits.get(name, (0, self.model.ticks))
                self.culprits[name] = (count + int(mine.sum()), min(tick, int(ticks[mine].min())))
        for o in self.model.outcomes:
            if o.name not in self.finite:
                values = rows.column(o.name).to_numpy(zero_copy_only=False).astype(float)
                if np.isfinite(values).any():
                    self.finite.add(o.name)
        if self.seen >= self.needed:
            self.check()

    def check(self) -> None:
        where = f"in every one of the {self.seen:,} runs so far"
        if self.bad == self.seen:
            culprit = max(self.culprits, key=lambda n: self.culprits[n][0])
            tick = self.culprits[culprit][1]
            raise ScenarioError.one(
                f"non-finite (NaN or infinite) {where}, first at tick {tick} "
                f"({self.model.date(tick)})",
                place_of(self.model, culprit),
                field_of(culprit),
                hint="look for log or sqrt of something that reaches 0 or below, a division "
                "by something that reaches 0, or a power that overflows",
            )
        for o in self.model.outcomes:
            if o.name not in self.finite:
                raise ScenarioError.one(
                    f"non-finite (NaN or infinite) {where}",
                    self.model.place.get(("outcomes", o.name, "of")),
                    f"outcomes.{o.name}.of",
                    hint="an outcome that is never a number says nothing; check its expression",
                )


def field_of(label: str) -> str:
    """The field a culprit label points at: an outcome's `of`, an event's `at`, else itself."""
    section = label.partition(".")[0]
    return {"outcomes": f"{label}.of", "events": f"{label}.at"}.get(section, label)


def place_of(model: Model, label: str) -> Place | None:
    """Where a culprit ('variables.x', 'flows.x', 'stocks.x', 'outcomes.x', 'events.x') is
    defined in the scenario."""
    section, _, name = label.partition(".")
    sections: dict[str, list[tuple[str, ...]]] = {
        "variables": [("variables", name)],
        "flows": [("flows", name, "rate"), ("flows", name)],
        "stocks": [("stocks", name)],
        "outcomes": [("outcomes", name, "of"), ("outcomes", name)],
        "events": [("events", name, "at"), ("events", name)],
    }
    keys = sections.get(section, [])
    for key in keys:
        if key in model.place:
            return model.place[key]
    return None


def parse_size(text: str) -> int:
    """'40GiB', '512M', '2g', '1e9' -> bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if not m:
        raise ScenarioError.one(
            f"'{text}' is not a size", hint="write a number of bytes with a unit, e.g. 40GiB"
        )
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def size(n: float) -> str:
    """Bytes for people: 1.5 GiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 8 * 2**30


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under `folder` (0 if there is none)."""
    if not folder.is_dir():
        return 0
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def free_space(folder: Path) -> int:
    """Free bytes on the file system that holds (or will hold) `folder`."""
    path = folder.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free
