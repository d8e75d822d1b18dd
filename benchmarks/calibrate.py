"""Prints how long `sim calibrate` takes on the shipped war model with the shipped observations,
and the effective sample size it reaches. A measurement, not a test: it never fails on a time
(tests/calibration/ checks that the posterior is right).

    python benchmarks/calibrate.py [--runs 200000] [--workers 1] [--scenario war_continues]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import sim
from sim.analysis.calibrate import DEFAULT_RUNS, calibrate
from sim.scenario.observations import load_observations
from sim.study.runner import Execution

ROOT = Path(__file__).resolve().parent.parent
OBSERVATIONS = ROOT / "scenarios" / "observations" / "war_2024_2025.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenario", default="war_continues")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    model = sim.load(ROOT / "scenarios" / f"{args.scenario}.yaml")
    obs = load_observations(OBSERVATIONS)
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cal = calibrate(
            model, obs, runs=args.runs, seed=args.seed, execution=Execution(workers=args.workers)
        )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"{args.scenario}: {len(cal.parameters)} sampled parameters, {len(obs.items)} "
        f"observations ({len(obs.named('calibrate'))} calibrate, "
        f"{len(obs.named('validate'))} held out)"
    )
    print(
        f"budget {args.runs:,} runs, spent {cal.runs:,}; {cal.n:,} particles; "
        f"{len(cal.stages)} tempering stages; workers {args.workers}"
    )
    print(f"ESS {cal.ess:,.0f} of {cal.n:,}; {cal.unique:,} distinct particles")
    print(f"wall {wall:.1f} s, CPU in this process {cpu:.1f} s, {cal.runs / wall:,.0f} runs/s")
    for w in caught:
        print(f"warning: {w.message}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
