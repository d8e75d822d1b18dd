"""Prints runs/s of the numpy kernel and the SimPy engine on a scenario, their ratio, and
peak memory. A measurement, not a test: it never fails on a time.

Wall and CPU seconds are both printed, with the load average: on a busy machine the CPU
seconds are the fairer figure for one core's speed.

    python benchmarks/engines.py [scenarios/war_ends.yaml] [--runs 100000] [--des-runs 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

import sim
from sim.engine.kernel import run_block
from sim.study.runner import draw, execute, plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", nargs="?", default="scenarios/war_ends.yaml")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--des-runs", type=int, default=20)
    parser.add_argument("--block-size", type=int, default=8192)
    args = parser.parse_args()

    model = sim.load(args.scenario)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"scenario: {args.scenario} ({len(model.stocks)} stocks, {len(model.flows)} flows, "
        f"{model.ticks} ticks)"
    )

    print(f"load average before: {os.getloadavg()[0]:.2f}")
    p = plan(model, args.runs, 1, block_size=args.block_size)
    t_draw = t_kernel = 0.0
    cpu0 = time.process_time()
    for _, start, stop in p.blocks:
        t0 = time.perf_counter()
        params, noise = draw(p, start, stop)
        t1 = time.perf_counter()
        # As a study does past the runs whose series it keeps for bands.
        run_block(model, params, noise, first_run=start, n=stop - start, keep=0)
        t2 = time.perf_counter()
        t_draw += t1 - t0
        t_kernel += t2 - t1
    total = t_draw + t_kernel
    cpu = time.process_time() - cpu0
    print(
        f"kernel: {args.runs:,} runs x {model.ticks} ticks in {total:.2f} s wall "
        f"({cpu:.2f} s CPU) = {args.runs / total:,.0f} runs/s "
        f"(drawing {t_draw:.2f} s, stepping {t_kernel:.2f} s)"
    )

    pd = plan(model, args.des_runs, 1, engine="des", block_size=args.des_runs)
    t0 = time.perf_counter()
    params, noise = draw(pd, 0, args.des_runs)
    execute(pd, params, noise, 0, args.des_runs)
    t_des = time.perf_counter() - t0
    des_rate = args.des_runs / t_des
    print(f"SimPy engine: {args.des_runs} runs in {t_des:.2f} s = {des_rate:,.1f} runs/s")
    print(f"kernel / SimPy: {args.runs / total / des_rate:,.0f}x")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:,.0f} MiB (block size {args.block_size})")


if __name__ == "__main__":
    main()
