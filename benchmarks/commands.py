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
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        sys.exit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


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
    helps_repeat = max(args.repeat, 5)
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in COMMANDS}
    with tempfile.TemporaryDirectory() as tmp:
        cont, ends, page = Path(tmp) / "cont", Path(tmp) / "ends", Path(tmp) / "report.html"
        run_cont = [*SIM, "run", "scenarios/war_continues.yaml", "-n", n, "-w", "1"]
        timed([*run_cont, "--out", str(cont)])
        commands = {
            "run": [*SIM, "run", "scenarios/war_ends.yaml", "-n", n, "-w", "1"]
            + ["--out", str(ends), "--force"],
            "compare": [*SIM, "compare", str(cont), str(ends)],
            "report": [*SIM, "report", str(cont), str(ends), "--out", str(page), "--force"],
        }
        for _ in range(args.repeat):
            for key, command in commands.items():
                times[key].append(timed(command))
        for _ in range(helps_repeat):
            times["bare"].append(timed([sys.executable, "-c", "import click, rich"]))
            times["help"].append(timed([*SIM, "--help"]))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"\n{args.runs:,} runs a study; median of {args.repeat} turns (--help: {helps_repeat})")
    print(f"{'':34} {'wall s':>8} {'CPU s':>8}   ratio (wall, CPU) vs target")
    for key, (label, against, target) in COMMANDS.items():
        walls, cpus = ([t[i] for t in times[key]] for i in (0, 1))
        line = f"{label:34} {statistics.median(walls):8.2f} {statistics.median(cpus):8.2f}"
        if against is not None and target is not None:
            ratios = [
                (w / rw, c / rc)
                for (w, c), (rw, rc) in zip(times[key], times[against], strict=True)
            ]
            rw_, rc_ = (statistics.median(r[i] for r in ratios) for i in (0, 1))
            # The targets are about waiting: the wall clock decides. CPU (every thread counted:
            # reading Parquet and sorting use several) is printed beside it; on a busy
            # machine, where the wall clock also counts other work, read the CPU ratio too.
            verdict = "meets" if rw_ <= target else "misses"
            verdict += " on wall" + ("" if rc_ <= target else f" (CPU {rc_:.2f} does not)")
            turns = " ".join(f"{w:.2f}/{c:.2f}" for w, c in ratios)
            line += f"   {rw_:.2f}, {rc_:.2f} vs <= {target:g}: {verdict} (turns {turns})"
        print(line)


# What each row is: (label, the row it is measured against, the target ratio).
COMMANDS: dict[str, tuple[str, str | None, float | None]] = {
    "run": ("sim run war_ends (1 worker)", None, None),
    "compare": ("sim compare of the two", "run", 0.25),
    "report": ("sim report of the two", "run", 0.5),
    "bare": ("python -c 'import click, rich'", None, None),
    "help": ("sim --help", "bare", 3.0),
}


if __name__ == "__main__":
    main()
