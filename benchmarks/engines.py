"""Prints runs/s of the numpy kernel, the compiled engine (`--engine numba`, when numba is
installed) and the SimPy engine on a scenario, their ratios, and peak memory. A measurement,
not a test: it never fails on a time.

The kernel and numba step the same blocks on the same draws, block after block in turns, so
a busy machine slows both alike; then each runs a whole `sim run` study end to end (one
worker, numba's cache warm, results written to a temporary folder).

Wall and CPU seconds are both printed, with the load average: on a busy machine the CPU
seconds are the fairer figure for one core's speed.

    python benchmarks/engines.py [scenarios/war_ends.yaml] [--runs 100000] [--des-runs 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time

import numpy as np

import sim
from sim.engine import ENGINES, missing
from sim.engine.kernel import run_block
from sim.study.runner import draw, execute, plan, run


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
    numba = missing("numba") is None
    if numba:
        t0 = time.perf_counter()
        params, noise = draw(p, 0, min(args.runs, 10))
        ENGINES["numba"](model, params, noise, n=min(args.runs, 10), keep=0)
        print(f"numba: compiled or loaded from its cache in {time.perf_counter() - t0:.2f} s")
    else:
        print(f"numba: not measured ({missing('numba')})")
    t_draw = t_kernel = t_numba = 0.0
    c_kernel = c_numba = 0.0
    worst = 0.0
    for _, start, stop in p.blocks:
        t0 = time.perf_counter()
        params, noise = draw(p, start, stop)
        t1, c1 = time.perf_counter(), time.process_time()
        # As a study does past the runs whose series it keeps for bands.
        k = run_block(model, params, noise, first_run=start, n=stop - start, keep=0)
        t2, c2 = time.perf_counter(), time.process_time()
        t_draw += t1 - t0
        t_kernel += t2 - t1
        c_kernel += c2 - c1
        if numba:
            b = ENGINES["numba"](model, params, noise, first_run=start, n=stop - start, keep=0)
            t_numba += time.perf_counter() - t2
            c_numba += time.process_time() - c2
            for name, v in k.outcomes.items():
                w = b.outcomes[name]
                with np.errstate(all="ignore"):
                    rel = np.abs(v - w) / np.maximum(np.abs(v), 1e-300)
                worst = max(worst, float(np.nanmax(np.where(v == w, 0.0, rel))))
    total = t_draw + t_kernel
    print(
        f"kernel: {args.runs:,} runs x {model.ticks} ticks in {total:.2f} s wall "
        f"= {args.runs / total:,.0f} runs/s "
        f"(drawing {t_draw:.2f} s, stepping {t_kernel:.2f} s wall, {c_kernel:.2f} s CPU)"
    )
    if numba:
        print(
            f"numba: stepping {t_numba:.2f} s wall, {c_numba:.2f} s CPU = "
            f"{t_kernel / t_numba:.2f}x the kernel's speed wall, {c_kernel / c_numba:.2f}x CPU; "
            f"with the same drawing {(t_draw + t_kernel) / (t_draw + t_numba):.2f}x; "
            f"outcomes agree to {worst:.1e} relative"
        )
        ends = {}
        for engine in ("kernel", "numba"):
            with tempfile.TemporaryDirectory() as folder:
                t0, c0 = time.perf_counter(), time.process_time()
                run(model, runs=args.runs, seed=1, engine=engine, workers=1, out=folder)
                ends[engine] = (time.perf_counter() - t0, time.process_time() - c0)
            print(
                f"sim run, {engine}, one worker: {ends[engine][0]:.2f} s wall "
                f"({ends[engine][1]:.2f} s CPU)"
            )
        print(
            f"sim run end to end: numba {ends['kernel'][0] / ends['numba'][0]:.2f}x the "
            f"kernel's speed wall, {ends['kernel'][1] / ends['numba'][1]:.2f}x CPU"
        )
        target("stepping", c_kernel / c_numba, 3.0)
        target("sim run end to end", ends["kernel"][0] / ends["numba"][0], 2.0)

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


def target(what: str, got: float, wanted: float) -> None:
    """Issue #22's target for one figure, and by how much it is missed (why: the numba
    section of docs/performance.md)."""
    if got >= wanted:
        print(f"target {what} >= {wanted:g}x: met ({got:.2f}x)")
    else:
        print(
            f"target {what} >= {wanted:g}x: missed by {1 - got / wanted:.0%} ({got:.2f}x; "
            "why: docs/performance.md, the compiled engine)"
        )


if __name__ == "__main__":
    main()
