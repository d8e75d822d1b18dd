"""Prints how long the given-data indices of `sim drivers` take (`sim.analysis.drivers.first_order`)
for some run counts and input counts, per outcome, with the default resamples and permutations.
A measurement, not a test: it never fails on a time (tests/analysis/test_drivers.py checks the
numbers).

    python benchmarks/drivers.py [--runs 2000,20000,100000] [--inputs 40] [--resamples 500]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from sim.analysis.drivers import PERMUTATIONS, RESAMPLES, bins_for, first_order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", default="2000,20000,100000")
    parser.add_argument("--inputs", type=int, default=40)
    parser.add_argument("--resamples", type=int, default=RESAMPLES)
    args = parser.parse_args()
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cpus, load "
        f"{os.getloadavg()[0]:.1f}; {args.inputs} inputs, {args.resamples} resamples, "
        f"{PERMUTATIONS} permutations"
    )
    rng = np.random.default_rng(0)
    for n in (int(v) for v in args.runs.split(",")):
        x = rng.random((args.inputs, n))
        y = x[0] + 0.5 * x[1] + rng.standard_normal(n)
        clock = time.perf_counter()
        first_order(x, y, resamples=args.resamples)
        wall = time.perf_counter() - clock
        print(f"{n:>9,} runs, {bins_for(n):>3} bins: {wall:6.2f} s per outcome")


if __name__ == "__main__":
    main()
