"""Prints what dimensions buy: an arrayed trade model (20 partners x 10 goods, 120 ticks)
against the same model written out by hand as scalar stocks and flows (generated here), run
side by side on the same draws through the numpy kernel. A measurement, not a test: it never
fails on a time (it does check that both give the same numbers at every block size).

For each block size it prints seconds per run of each model (the median of --repeat runs of
one block, in CPU seconds of this process, which a busy shared machine disturbs less than
the wall clock), their ratio, then each model's best block size and the runner's default
one; and the memory of one arrayed block (tracemalloc's peak while the kernel runs it, the
draws it is given apart), to show that the kernel's memory is bounded by the slice of runs
it steps together, whatever the block.

    python benchmarks/dimensions.py [--partners 20] [--goods 10]
        [--blocks 20,200,1000,8192] [--repeat 3]

About three minutes with the defaults on 2 cores.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.engine import kernel
from sim.model import Model, load
from sim.sampling.draws import noise_draws, parameter_draws
from sim.study.runner import DEFAULT_BLOCK


def arrayed(partners: list[str], goods: list[str]) -> dict[str, Any]:
    """The model written once, over partner x good."""
    rng = np.random.default_rng(0)
    share = rng.dirichlet(np.ones(len(partners)), size=len(goods)).T.round(4)
    return {
        "name": "trade_arrayed",
        "start": "2024-01",
        "months": 120,
        "dimensions": {"partner": partners, "good": goods},
        "parameters": {
            "need": {"over": "good", "dist": "uniform", "low": 50, "high": 150, "unit": "t/month"},
            "share": {
                "over": ["partner", "good"],
                "unit": "1",
                "value": {p: share[i].tolist() for i, p in enumerate(partners)},
            },
            "price": {"over": "good", "value": [10.0 + i for i in range(len(goods))]},
        },
        "stocks": {
            "supplier": {"over": "partner", "unit": "t", "kind": "source"},
            "port": {"over": ["partner", "good"], "unit": "t"},
            "store": {"over": "good", "unit": "t", "initial": 50},
            "used": {"over": "good", "unit": "t", "kind": "sink"},
            "bank": {"over": "partner", "unit": "usd", "kind": "source"},
            "exporter": {"over": "partner", "unit": "usd"},
        },
        "flows": {
            "imports": {
                "over": ["partner", "good"],
                "from": "supplier[partner]",
                "to": "port",
                "rate": "share * need * 1.05",
                "delay": 1,
                "noise": {"dist": "lognormal", "median": 1, "p95": 1.3},
            },
            "clear": {
                "over": ["partner", "good"],
                "from": "port",
                "to": "store[good]",
                "rate": "0.5 * port",
            },
            "use": {"over": "good", "from": "store", "to": "used", "rate": "need"},
            "pay": {
                "over": ["partner", "good"],
                "from": "bank[partner]",
                "to": "exporter[partner]",
                "rate": "price * flow.clear",
            },
        },
        "variables": {"arrived": "sum(flow.clear, partner)", "held": "sum(store)"},
        "outcomes": {
            "store_end": {"of": "store", "stat": "final"},
            "short": {"of": "store < 1", "stat": "count"},
            "held_mean": {"of": "held", "stat": "mean"},
            "paid": {"of": "sum(exporter)", "stat": "final"},
        },
        "record": ["store"],
    }


def by_hand(partners: list[str], goods: list[str], model: dict[str, Any]) -> dict[str, Any]:
    """The same model as one scalar stock, flow and parameter per cell, sums written out in
    the order the arrayed model takes them."""
    params = model["parameters"]
    share = params["share"]["value"]
    parameters: dict[str, Any] = {}
    for g in goods:
        parameters[f"need_{g}"] = {"dist": "uniform", "low": 50, "high": 150}
    for g, v in zip(goods, params["price"]["value"], strict=True):
        parameters[f"price_{g}"] = v
    for p in partners:
        for g, v in zip(goods, share[p], strict=True):
            parameters[f"share_{p}_{g}"] = v
    stocks: dict[str, Any] = {f"supplier_{p}": {"unit": "t", "kind": "source"} for p in partners}
    stocks |= {f"port_{p}_{g}": {"unit": "t"} for p, g in itertools.product(partners, goods)}
    stocks |= {f"store_{g}": {"unit": "t", "initial": 50} for g in goods}
    stocks |= {f"used_{g}": {"unit": "t", "kind": "sink"} for g in goods}
    stocks |= {f"bank_{p}": {"unit": "usd", "kind": "source"} for p in partners}
    stocks |= {f"exporter_{p}": {"unit": "usd"} for p in partners}
    cells = list(itertools.product(partners, goods))
    flows: dict[str, Any] = {}
    for p, g in cells:
        flows[f"imports_{p}_{g}"] = {
            "from": f"supplier_{p}",
            "to": f"port_{p}_{g}",
            "delay": 1,
            "rate": f"share_{p}_{g} * need_{g} * 1.05",
            "noise": {"dist": "lognormal", "median": 1, "p95": 1.3},
        }
    for p, g in cells:
        flows[f"clear_{p}_{g}"] = {
            "from": f"port_{p}_{g}",
            "to": f"store_{g}",
            "rate": f"0.5 * port_{p}_{g}",
        }
    for g in goods:
        flows[f"use_{g}"] = {"from": f"store_{g}", "to": f"used_{g}", "rate": f"need_{g}"}
    for p, g in cells:
        flows[f"pay_{p}_{g}"] = {
            "from": f"bank_{p}",
            "to": f"exporter_{p}",
            "rate": f"price_{g} * flow.clear_{p}_{g}",
        }

    def add(terms: list[str]) -> str:
        return "(" + " + ".join(terms) + ")"

    variables = {f"arrived_{g}": add([f"flow.clear_{p}_{g}" for p in partners]) for g in goods}
    variables["held"] = add([f"store_{g}" for g in goods])
    outcomes: dict[str, Any] = {
        f"store_end_{g}": {"of": f"store_{g}", "stat": "final"} for g in goods
    }
    outcomes |= {f"short_{g}": {"of": f"store_{g} < 1", "stat": "count"} for g in goods}
    outcomes["held_mean"] = {"of": "held", "stat": "mean"}
    outcomes["paid"] = {"of": add([f"exporter_{p}" for p in partners]), "stat": "final"}
    return {
        "name": "trade_by_hand",
        "start": "2024-01",
        "months": 120,
        "parameters": parameters,
        "stocks": stocks,
        "flows": flows,
        "variables": variables,
        "outcomes": outcomes,
        "record": [f"store_{g}" for g in goods],
    }


def hand_name(name: str) -> str:
    return name.replace("[", "_").replace(",", "_").replace("]", "")


def draws(model: Model, runs: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    params = parameter_draws(model.parameters, "mc", 1, runs, 0, runs)
    return params, noise_draws(model.noises, 1, runs, model.ticks, 0, runs)


def timed(model: Model, params: Any, noise: Any, repeat: int) -> tuple[float, Any]:
    """The median CPU seconds of `repeat` runs of one block, and the block."""
    times, block = [], None
    for _ in range(repeat):
        start = time.process_time()
        block = kernel.run_block(model, params, noise)
        times.append(time.process_time() - start)
    return statistics.median(times), block


def peak_bytes(model: Model, params: Any, noise: Any) -> int:
    """tracemalloc's peak while the kernel runs one block (its draws already made)."""
    tracemalloc.start()
    kernel.run_block(model, params, noise)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def renamed(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {hand_name(k): v for k, v in values.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partners", type=int, default=20)
    parser.add_argument("--goods", type=int, default=10)
    parser.add_argument("--blocks", default=f"20,200,1000,{DEFAULT_BLOCK}")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    blocks = [int(b) for b in args.blocks.split(",")]
    partners = [f"p{i}" for i in range(args.partners)]
    goods = [f"g{i}" for i in range(args.goods)]
    with tempfile.TemporaryDirectory() as tmp:
        spec = arrayed(partners, goods)
        paths = []
        for data in (spec, by_hand(partners, goods, spec)):
            path = Path(tmp) / f"{data['name']}.yaml"
            path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
            paths.append(path)
        model, hand = load(paths[0]), load(paths[1])
    cells = sum(s.size for s in model.stocks), sum(f.size for f in model.flows)
    print(
        f"machine: {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}, numpy {np.__version__}, {platform.system()}; "
        f"load average {os.getloadavg()[0]:.1f} at the start"
    )
    print(
        f"model: {args.partners} partners x {args.goods} goods, {model.ticks} ticks: "
        f"{len(model.stocks)} arrayed stocks ({cells[0]} cells), {len(model.flows)} arrayed "
        f"flows ({cells[1]} cells); by hand: {len(hand.stocks)} stocks, {len(hand.flows)} flows"
    )
    steps = [kernel.slice_runs(m) for m in (model, hand)]
    shown = [f"{s:,} runs" if s < sys.maxsize else "the whole block" for s in steps]
    print(f"the kernel steps together: arrayed {shown[0]}, by hand {shown[1]} (slice_runs)")
    print(f"ms per run (CPU), median of {args.repeat}:")
    print(f"  {'runs in block':>13}  {'arrayed':>8}  {'by hand':>8}  {'ratio':>6}  outcomes")
    per_run: dict[int, tuple[float, float]] = {}
    for runs in blocks:
        params, noise = draws(model, runs)
        t_arrayed, block = timed(model, params, noise, args.repeat)
        t_hand, hand_block = timed(hand, renamed(params), renamed(noise), args.repeat)
        same = all(
            np.array_equal(v, hand_block.outcomes[hand_name(k)]) for k, v in block.outcomes.items()
        )
        per_run[runs] = (t_arrayed / runs * 1e3, t_hand / runs * 1e3)
        a, h = per_run[runs]
        print(
            f"  {runs:>13,}  {a:>8.3f}  {h:>8.3f}  {h / a:>5.1f}x  "
            f"{'bit-identical' if same else 'DIFFERENT'}",
            flush=True,
        )
    best_a = min(per_run, key=lambda b: per_run[b][0])
    best_h = min(per_run, key=lambda b: per_run[b][1])
    a, h = per_run[best_a][0], per_run[best_h][1]
    print(
        f"  each at its best block size: arrayed {a:.3f} ms ({best_a:,} runs), by hand "
        f"{h:.3f} ms ({best_h:,} runs): {h / a:.1f}x"
    )
    if DEFAULT_BLOCK in per_run:
        a, h = per_run[DEFAULT_BLOCK]
        print(f"  at the runner's default block size ({DEFAULT_BLOCK:,}): {h / a:.1f}x")
    print("memory of one arrayed block:")
    for runs in blocks:
        params, noise = draws(model, runs)
        drawn = sum(v.nbytes for v in params.values()) + sum(v.nbytes for v in noise.values())
        peak = peak_bytes(model, params, noise)
        print(
            f"  {runs:>6,} runs: kernel peak {peak / 2**20:7.1f} MiB "
            f"({peak / runs / 1024:6.1f} KiB per run); its draws {drawn / 2**20:7.1f} MiB"
        )


if __name__ == "__main__":
    main()
