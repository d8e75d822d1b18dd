"""Prints how long one `sim explore` redraw takes on the shipped war model: the two studies one
after the other in this process, the comparison of the outcomes shown, and the whole update as
`sim explore` runs it (the two studies side by side in two warm worker processes, then the
comparison here), with the CPU time this process spent on it. With `--engine numba` (the fast
extra installed), the update again on the compiled engine. A measurement, not a test: it never
fails on a time.

    python benchmarks/explore.py [--runs 2000] [--repeat 3] [--outcomes 3] [--engine numba]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import sim
from sim.present.explore import Explorer

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "scenarios" / "war_continues.yaml", ROOT / "scenarios" / "war_ends.yaml"]


def updates(ex: Explorer, outcomes: list[str], repeat: int, first: float) -> list[float]:
    """Wall and CPU seconds of `repeat` updates, each a setting not run before."""
    wall, cpu = [], []
    for k in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        ex.update({"war_end_month": first + k}, outcomes)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return [statistics.median(wall), statistics.median(cpu)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=None, help="default: the scenario's")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--outcomes", type=int, default=3)
    parser.add_argument("--engine", default=None, help="also time the update on this engine")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    here = Explorer(FILES, runs=args.runs)  # no workers: the studies in this process
    outcomes = here.outcomes[: args.outcomes]
    serial, compared = [], []
    for k in range(args.repeat):
        setting = {"war_end_month": 30.0 + k}
        t = time.perf_counter()
        res = [here.studies.run(i, setting) for i in (0, 1)]
        serial.append(time.perf_counter() - t)
        t = time.perf_counter()
        sim.compare(*res, outcomes=outcomes)
        compared.append(time.perf_counter() - t)
    here.close()
    rows = [
        ("two studies, one after the other, here", statistics.median(serial)),
        (f"compare {len(outcomes)} outcomes", statistics.median(compared)),
    ]
    for engine in ["kernel", *([args.engine] if args.engine else [])]:
        t = time.perf_counter()
        ex = Explorer(FILES, runs=args.runs, engine=engine, workers=2)
        rows.append((f"start, two warm workers, {engine}", time.perf_counter() - t))
        wall, cpu = updates(ex, outcomes, args.repeat, 40.0)
        rows.append((f"one update, {engine} (what the page waits for)", wall))
        rows.append(("  of it, CPU time in this process", cpu))
        ex.close()
    print(
        f"{here.runs:,} runs a scenario, {len(outcomes)} outcomes shown; median of {args.repeat}:"
    )
    for label, seconds in rows:
        print(f"  {label:48s} {seconds:6.2f} s")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
