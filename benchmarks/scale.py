"""Prints how a study scales: runs/s and peak memory for 10k, 100k and 1M runs, the speedup
of 2 workers over 1, and a Dask LocalCluster against the process pool. A measurement, not a
test: it never fails on a time.

Each figure comes from a fresh Python process that runs `sim.run` into a scratch folder, so
start-up (the pool, the cluster) is counted and one measurement's memory can't hide another's.
Peak RSS is the largest sum, sampled every 50 ms, over the process and all its descendants
(workers included); the parent's own peak is printed beside it.

    python benchmarks/scale.py [scenarios/war_ends.yaml] [--sizes 10000,100000,1000000]
                               [--compare-runs 200000] [--no-dask]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

GIB = 2**30
DEFAULT_BLOCK = 8192  # sim.runner.DEFAULT_BLOCK, without importing sim before a measurement


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


def show(label: str, m: dict[str, Any]) -> None:
    print(
        f"{label:<34} {m['wall']:7.1f} s  {m['runs_per_s']:9,.0f} runs/s  "
        f"peak RSS {m['peak_tree'] / GIB:5.2f} GiB (parent {m['peak_parent'] / GIB:4.2f})  "
        f"runs.parquet {m['runs_parquet'] / 2**20:,.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", nargs="?", default="scenarios/war_ends.yaml")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--compare-runs", type=int, default=200_000)
    parser.add_argument("--block-size", type=int, default=DEFAULT_BLOCK)
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # runs,workers,executor,block
    args = parser.parse_args()
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
    print(f"machine: {platform.machine()}, {cores} cores, Python {platform.python_version()}, commit {commit}")
    print(
        f"scenario: {args.scenario} ({len(model.stocks)} stocks, {len(model.flows)} flows, "
        f"{model.ticks} ticks, {len(model.record)} recorded series); block size {block:,}, seed 1"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f}")

    print(f"\nruns/s and peak memory, {cores} workers (the default):")
    for runs in (int(s) for s in args.sizes.split(",")):
        m = run_one(args.scenario, runs, cores, block)
        show(f"{runs:>9,} runs", m)
        if runs >= 1_000_000:
            verdict = "met" if m["peak_tree"] < 1.5 * GIB else "NOT met"
            print(f"{'':34} target: peak RSS < 1.5 GiB at 1M runs: {verdict}  (bands: {m['bands']})")

    n = args.compare_runs
    print(f"\nspeedup at {n:,} runs:")
    one = run_one(args.scenario, n, 1, block)
    two = run_one(args.scenario, n, 2, block)
    show("1 worker (serial)", one)
    show("2 workers (process pool)", two)
    speedup = one["wall"] / two["wall"]
    print(f"{'':34} 2 workers / 1: {speedup:.2f}x (target >= 1.6x)")

    if not args.no_dask:
        dask = run_one(args.scenario, n, 2, block, "dask")
        show("Dask LocalCluster, 2 workers", dask)
        ratio = dask["runs_per_s"] / two["runs_per_s"]
        print(f"{'':34} Dask / process pool: {ratio:.2f} (target >= 0.75)")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
