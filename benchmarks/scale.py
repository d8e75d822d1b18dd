"""Prints how a study scales: runs/s and peak memory for 10k, 100k and 1M runs, the speedup
of 2 workers over 1, and a Dask LocalCluster against the process pool. A measurement, not a
test: it never fails on a time.

Each figure comes from a fresh Python process that runs `sim.run` into a scratch folder, so
start-up (the pool, the cluster) is counted and one measurement's memory can't hide another's.
Peak RSS is the largest sum, sampled every 50 ms, over the process and all its descendants
(workers included); the parent's own peak is printed beside it.

    python benchmarks/scale.py [scenarios/war_ends.yaml] [--sizes 10000,100000,1000000]
                               [--compare-runs 200000] [--repeat 3] [--no-dask]

About 6 minutes with the defaults on 2 cores (--repeat 1: about 2.5).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

GIB = 2**30
DEFAULT_BLOCK = 8192  # sim.study.runner.DEFAULT_BLOCK, without importing sim before a measurement


def tree_rss() -> int:
    """Resident bytes of this process and every descendant (0 without psutil)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover
        return 0
    me = psutil.Process()
    total = 0
    for proc in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def measure(scenario: str, runs: int, workers: int, executor: str, block: int) -> dict[str, Any]:
    """One study in this process; what it cost."""
    import sim

    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], tree_rss())

    model = sim.load(scenario)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with tempfile.TemporaryDirectory(prefix="sim-scale-") as tmp:
        t0 = time.perf_counter()
        res = sim.run(
            model,
            runs=runs,
            seed=1,
            out=Path(tmp) / "out",
            workers=workers,
            executor=executor,
            block_size=block,
        )
        wall = time.perf_counter() - t0
        size = (Path(tmp) / "out" / "runs.parquet").stat().st_size
    done.set()
    sampler.join()
    return {
        "runs": res.n_runs,
        "workers": workers,
        "executor": res.manifest["executor"]["kind"],
        "wall": wall,
        "runs_per_s": runs / wall,
        "peak_tree": peak[0],
        "peak_parent": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "runs_parquet": size,
        "bands": res.manifest["bands"]["method"].split(",")[0],
    }


def step_only(scenario: str, blocks: int, block: int) -> float:
    """Seconds to draw and step `blocks` blocks in this process, writing nothing."""
    import sim
    from sim.study.runner import BlockJob, plan

    job = BlockJob(plan(sim.load(scenario), runs=(blocks + 1) * block, seed=1, block_size=block))
    job(blocks)  # warm: compile, caches
    t0 = time.perf_counter()
    for b in range(blocks):
        job(b)
    return time.perf_counter() - t0


def ceiling(scenario: str, block: int, blocks: int = 8) -> tuple[float, float]:
    """Seconds for one process stepping alone, and for two stepping at once (mean)."""
    cmd = [sys.executable, __file__, scenario, "--step", f"{blocks},{block}"]
    alone = float(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    together = [float(p.communicate()[0]) for p in procs]
    return alone, sum(together) / 2


def run_one(
    scenario: str, runs: int, workers: int, block: int, executor: str = "processes"
) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, scenario, "--one", f"{runs},{workers},{executor},{block}"],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def median(ms: list[dict[str, Any]]) -> dict[str, Any]:
    """The measurement with the median wall time (the lower middle one of an even count)."""
    low = statistics.median_low(m["wall"] for m in ms)
    return next(m for m in ms if m["wall"] == low)


def ratios(these: list[dict[str, Any]], those: list[dict[str, Any]]) -> str:
    """Turn by turn, the runs/s of `these` over the runs/s of `those`."""
    return " ".join(f"{b['wall'] / a['wall']:.2f}" for a, b in zip(these, those, strict=True))


def show(label: str, m: dict[str, Any]) -> None:
    print(
        f"{label:<34} {m['wall']:7.1f} s  {m['runs_per_s']:9,.0f} runs/s  "
        f"peak RSS {m['peak_tree'] / GIB:5.2f} GiB (parent {m['peak_parent'] / GIB:4.2f})  "
        f"runs.parquet {m['runs_parquet'] / 2**20:,.0f} MiB  load {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", nargs="?", default="scenarios/war_ends.yaml")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--compare-runs", type=int, default=200_000)
    parser.add_argument("--block-size", type=int, default=DEFAULT_BLOCK)
    parser.add_argument(
        "--repeat", type=int, default=3, help="measurements of each compared figure"
    )
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # runs,workers,executor,block
    parser.add_argument("--step", help=argparse.SUPPRESS)  # blocks,block: stepping only
    args = parser.parse_args()
    if args.step:
        blocks, size = args.step.split(",")
        print(step_only(args.scenario, int(blocks), int(size)))
        return
    if args.one:
        runs, workers, executor, block = args.one.split(",")
        print(json.dumps(measure(args.scenario, int(runs), int(workers), executor, int(block))))
        return

    import sim

    block = args.block_size

    model = sim.load(args.scenario)
    cores = os.cpu_count() or 1
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    print(
        f"machine: {platform.machine()}, {cores} cores, Python {platform.python_version()}, commit {commit}"
    )
    print(
        f"scenario: {args.scenario} ({len(model.stocks)} stocks, {len(model.flows)} flows, "
        f"{model.ticks} ticks, {len(model.record)} recorded series); block size {block:,}, seed 1"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f}")

    print(f"\nruns/s and peak memory, {cores} workers (the default):")
    by_size = {}
    for runs in (int(s) for s in args.sizes.split(",")):
        by_size[runs] = m = run_one(args.scenario, runs, cores, block)
        show(f"{runs:>9,} runs", m)
        if runs >= 1_000_000:
            verdict = "met" if m["peak_tree"] < 1.5 * GIB else "NOT met"
            print(
                f"{'':34} target: peak RSS < 1.5 GiB at 1M runs: {verdict}  (bands: {m['bands']})"
            )

    # This virtual machine's speed drifts by 10-15% over minutes, so each comparison takes its
    # measurements in turns (serial, pool, Dask; serial, pool, Dask; ...) and reports medians.
    biggest = max(by_size)
    print(f"\nspeedup of 2 workers over 1 at {biggest:,} runs, median of {args.repeat}:")
    serials, pools = [], [by_size[biggest]] if cores == 2 else []
    for _ in range(args.repeat):
        serials.append(run_one(args.scenario, biggest, 1, block))
        if len(pools) < args.repeat:
            pools.append(run_one(args.scenario, biggest, 2, block))
    serial, two_big = median(serials), median(pools)
    show("1 worker (serial)", serial)
    show("2 workers (process pool)", two_big)
    print(
        f"{'':34} 2 workers / 1: {serial['wall'] / two_big['wall']:.2f}x (target >= 1.6x); "
        f"in turn: {ratios(pools, serials)}"
    )
    alone, together = ceiling(args.scenario, block)
    print(
        f"{'':34} ceiling: 8 blocks stepped alone {alone:.2f} s, two processes at once "
        f"{together:.2f} s each: at most {2 * alone / together:.2f}x from 2 processes"
    )

    n = args.compare_runs
    print(f"\nat {n:,} runs, median of {args.repeat}, taken in turns:")
    kinds = [("1 worker (serial)", 1, "processes"), ("2 workers (process pool)", 2, "processes")]
    if not args.no_dask:
        kinds.append(("Dask LocalCluster, 2 workers", 2, "dask"))
    taken: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in kinds}
    for _ in range(args.repeat):
        for label, workers, executor in kinds:
            taken[label].append(run_one(args.scenario, n, workers, block, executor))
    med = {label: median(ms) for label, ms in taken.items()}
    for label in taken:
        show(label, med[label])
    one, two = med["1 worker (serial)"], med["2 workers (process pool)"]
    print(f"{'':34} 2 workers / 1: {one['wall'] / two['wall']:.2f}x (start-up included)")
    if not args.no_dask:
        dask = taken["Dask LocalCluster, 2 workers"]
        ratio = med["Dask LocalCluster, 2 workers"]["runs_per_s"] / two["runs_per_s"]
        print(
            f"{'':34} Dask / process pool: {ratio:.2f} (target >= 0.75); "
            f"in turn: {ratios(dask, taken['2 workers (process pool)'])}"
        )
        dask_big = run_one(args.scenario, biggest, 2, block, "dask")
        show(f"Dask LocalCluster at {biggest:,} runs", dask_big)
        ratio = dask_big["runs_per_s"] / two_big["runs_per_s"]
        print(f"{'':34} Dask / process pool at {biggest:,} runs: {ratio:.2f}")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
