"""Prints how long `sim.compare` takes on two large studies, paired and unpaired, and its
peak traced memory. A measurement, not a test: it never fails on a time (the test suite checks
the numbers, tests/analysis/test_compare.py).

The studies are the bakery (examples/bakery.yaml) at --runs runs: against itself six months
longer with the same seed (paired run by run), and against itself with another seed
(unpaired). The studies are run first, in memory, and not timed.

    python benchmarks/compare.py [--runs 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import tracemalloc
from pathlib import Path

import sim
from sim.model import compile_scenario

BAKERY = Path(__file__).resolve().parent.parent / "examples" / "bakery.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f}")

    model = sim.load(BAKERY)
    longer = compile_scenario(model.scenario.model_copy(update={"months": model.ticks + 6}))
    a = sim.run(model, runs=args.runs, seed=1, workers=1)
    pairs = {
        "paired (same seed, 6 months longer)": sim.run(longer, runs=args.runs, seed=1, workers=1),
        "unpaired (another seed)": sim.run(model, runs=args.runs, seed=2, workers=1),
    }
    for label, b in pairs.items():
        walls, cpus = [], []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            table = sim.compare(a, b)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        tracemalloc.start()
        sim.compare(a, b)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(
            f"{label:<38} {args.runs:,} runs x {len(table.outcomes)} outcomes: "
            f"median {statistics.median(walls):.2f} s wall, {statistics.median(cpus):.2f} s CPU "
            f"(of {args.repeat}); peak traced {peak / 2**20:.0f} MiB"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
