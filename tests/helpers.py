"""Small builders shared by the tests: scenarios from dicts, runs of both engines."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sim.engine.des import run_one
from sim.engine.kernel import run_block
from sim.engine.semantics import Block
from sim.model import Model, compile_scenario, load
from sim.sampling.draws import noise_draws, parameter_draws
from sim.scenario.schema import Scenario

ROOT = Path(__file__).resolve().parent.parent
BAKERY = ROOT / "examples" / "bakery.yaml"


def scenario(**sections: Any) -> Model:
    """A compiled model from keyword sections; name/start/months default to a 12-month toy."""
    data: dict[str, Any] = {"name": "toy", "start": "2024-01", "months": 12}
    data.update(sections)
    return compile_scenario(Scenario.model_validate(data))


def write(tmp: Path, name: str, data: dict[str, Any] | str) -> Path:
    path = tmp / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def draws(
    model: Model, runs: int, seed: int = 1, sampler: str = "mc"
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    params = parameter_draws(model.parameters, sampler, seed, runs, 0, runs)
    noise = noise_draws(model.noises, seed, runs, model.ticks, 0, runs)
    return params, noise


def kernel(model: Model, runs: int = 4, seed: int = 1, observer: Any = None) -> Block:
    params, noise = draws(model, runs, seed)
    return run_block(model, params, noise, observer=observer, n=runs)


def des_outcomes(model: Model, runs: int = 4, seed: int = 1) -> dict[str, np.ndarray]:
    params, noise = draws(model, runs, seed)
    out: dict[str, list[float]] = {o.name: [] for o in model.outcomes}
    for k in range(runs):
        r = run_one(
            model, {a: v[k] for a, v in params.items()}, {a: v[:, k] for a, v in noise.items()}, k
        )
        for name, value in r.outcomes.items():
            out[name].append(value)
    return {k: np.array(v) for k, v in out.items()}


def bakery() -> Model:
    return load(BAKERY)


def wait_for_parts(proc: Any, parts: Path, n: int, polls: int = 12_000) -> None:
    """Wait until a study running in `proc` has written `n` block parts into `parts`.

    A hang guard, not a speed check: it polls a bounded number of times (about two minutes
    of sleeps) and reads no clock."""
    for _ in range(polls):
        if len(list(parts.glob("runs-*.arrow"))) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError(f"fewer than {n} parts appeared in {parts}")
