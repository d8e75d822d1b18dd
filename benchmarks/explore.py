"""Prints how long one `sim explore` redraw takes on the shipped war model: the two studies (one
after the other, and side by side on two threads as the explorer runs them), the comparison of
the outcomes shown, and the whole update with the CPU time it took (on a busy machine, the
wall time of a quiet one is near it, less what the two threads overlap). A measurement, not a test: it never fails on a time.

    python benchmarks/explore.py [--runs 2000] [--repeat 3] [--outcomes 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sim
from sim.present.explore import Explorer

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "scenarios" / "war_continues.yaml", ROOT / "scenarios" / "war_ends.yaml"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=None, help="default: the scenario's")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--outcomes", type=int, default=3)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    ex = Explorer(FILES, runs=args.runs)
    print(f"start (read, compile, first comparison): {time.perf_counter() - t0:.2f} s")
    outcomes = ex.outcomes[: args.outcomes]
    rows: dict[str, list[float]] = {
        k: [] for k in ("serial", "threads", "compare", "update", "update_cpu")
    }
    for k in range(args.repeat):
        setting = {"war_end_month": 30.0 + k}
        models = [ex.model_for(i, setting) for i in (0, 1)]
        t = time.perf_counter()
        res = [sim.run(m, runs=ex.runs, seed=ex.seed) for m in models]
        rows["serial"].append(time.perf_counter() - t)
        t = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda m: sim.run(m, runs=ex.runs, seed=ex.seed), models))
        rows["threads"].append(time.perf_counter() - t)
        t = time.perf_counter()
        sim.compare(*res, outcomes=outcomes)
        rows["compare"].append(time.perf_counter() - t)
        t, c = time.perf_counter(), time.process_time()
        ex.update({"war_end_month": 40.0 + k}, outcomes)  # a setting not cached
        rows["update"].append(time.perf_counter() - t)
        rows["update_cpu"].append(time.process_time() - c)
    print(f"{ex.runs:,} runs a scenario, {len(outcomes)} outcomes shown; median of {args.repeat}:")
    for what, label in (
        ("serial", "two studies, one after the other"),
        ("threads", "two studies on two threads"),
        ("compare", f"compare {len(outcomes)} outcomes"),
        ("update", "one update (what the page waits for)"),
        ("update_cpu", "  its CPU time, all threads"),
    ):
        print(f"  {label:40s} {statistics.median(rows[what]):6.2f} s")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    ex.close()


if __name__ == "__main__":
    main()
