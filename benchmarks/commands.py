"""Prints how long the commands an analyst waits for take, against the targets of issue #18:
`sim compare` of two studies in at most a quarter of the time `sim run` takes to make one of
them with one worker, `sim report` in at most half, and `sim --help` at most 3x the time of
`python -c "import click, rich"`. A measurement, not a test: it never fails on a time.

Every command runs as a subprocess (`python -m sim.cli ...`, this checkout's sim), side by
side in one session, and is timed by wall clock and by the CPU time of the child (which a
busy machine disturbs less); each figure is the median of --repeat turns.

    python benchmarks/commands.py [--runs 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIM = [sys.executable, "-m", "sim.cli"]


def timed(args: list[str]) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of one command, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def median_of(args: list[str], repeat: int) -> tuple[float, float]:
    turns = [timed(args) for _ in range(repeat)]
    return statistics.median(w for w, _ in turns), statistics.median(c for _, c in turns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    n = str(args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        cont, ends = Path(tmp) / "cont", Path(tmp) / "ends"
        run = [
            *SIM,
            "run",
            "scenarios/war_ends.yaml",
            "-n",
            n,
            "-w",
            "1",
            "--out",
            str(ends),
            "--force",
        ]
        run_time = median_of(run, args.repeat)
        subprocess.run(
            [*SIM, "run", "scenarios/war_continues.yaml", "-n", n, "-w", "1", "--out", str(cont)],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        compare = median_of([*SIM, "compare", str(cont), str(ends)], args.repeat)
        page = Path(tmp) / "report.html"
        report = median_of(
            [*SIM, "report", str(cont), str(ends), "--out", str(page), "--force"], args.repeat
        )
    helps = median_of([*SIM, "--help"], max(args.repeat, 5))
    bare = median_of([sys.executable, "-c", "import click, rich"], max(args.repeat, 5))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    rows = [
        ("sim run war_ends (1 worker)", run_time, None, None),
        ("sim compare of the two", compare, run_time, 0.25),
        ("sim report of the two", report, run_time, 0.5),
        ("python -c 'import click, rich'", bare, None, None),
        ("sim --help", helps, bare, 3.0),
    ]
    print(
        f"\n{args.runs:,} runs a study; median of {args.repeat} turns (--help: {max(args.repeat, 5)})"
    )
    print(f"{'':34} {'wall s':>8} {'CPU s':>8}   ratio (wall, CPU) vs target")
    for label, (wall, cpu), against, target in rows:
        line = f"{label:34} {wall:8.2f} {cpu:8.2f}"
        if against is not None and target is not None:
            rw, rc = wall / against[0], cpu / against[1]
            verdict = "meets" if max(rw, rc) <= target else "misses"
            line += f"   {rw:.2f}, {rc:.2f} vs <= {target:g}: {verdict}"
        print(line)


if __name__ == "__main__":
    main()
