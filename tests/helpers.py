"""Small builders shared by the tests: scenarios from dicts, runs of both engines."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sim.engine import ENGINES, missing
from sim.engine.des import run_one
from sim.engine.kernel import run_block
from sim.engine.semantics import Block
from sim.model import Model, compile_scenario, load
from sim.sampling.draws import noise_draws, parameter_draws
from sim.scenario.schema import Scenario

# Headless Chromium as this machine's closed network needs it (no background connections)
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


ROOT = Path(__file__).resolve().parent.parent
# The engines this machine can run: every one in ENGINES but numba where it is not installed
# (tests parametrized by engine are skipped instead, saying so: tests/conftest.py).
RUNNABLE = [e for e in sorted(ENGINES) if missing(e) is None]
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


def calibration_folder(
    folder: Path,
    model: Model,
    values: dict[str, Any],
    weight: Any,
    observations: dict[str, dict[str, Any]] | None = None,
    simulated: dict[str, Any] | None = None,
) -> Path:
    """A calibration folder as `sim calibrate` writes it (the contract of `sim.study.posterior`),
    for `model`'s parameters `values` (name -> samples) with these weights: posterior.parquet
    (sample, the parameters, weight, a column per observation) and manifest.json, last."""
    import hashlib
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from sim.study.provenance import scenario_sha256

    folder.mkdir(parents=True, exist_ok=True)
    weight = np.asarray(weight, dtype=np.float64)
    weight = weight / weight.sum()
    n = len(weight)
    observations = observations or {}
    simulated = simulated or {k: np.zeros(n) for k in observations}
    columns: dict[str, Any] = {"sample": pa.array(np.arange(n, dtype=np.int64))}
    for name, v in values.items():
        columns[name] = pa.array(np.asarray(v, dtype=np.float64))
    columns["weight"] = pa.array(weight)
    for name in observations:
        columns[name] = pa.array(np.asarray(simulated[name], dtype=np.float64))
    pq.write_table(pa.table(columns), folder / "posterior.parquet")
    digest = hashlib.sha256((folder / "posterior.parquet").read_bytes()).hexdigest()

    def quantiles(x: Any, w: Any = None) -> dict[str, float]:
        x = np.asarray(x, dtype=float)
        order = np.argsort(x)
        cdf = np.cumsum(np.ones(len(x)) / len(x) if w is None else np.asarray(w)[order])
        return {
            f"p{round(100 * q):02d}": float(x[order][min(np.searchsorted(cdf, q), len(x) - 1)])
            for q in (0.05, 0.5, 0.95)
        }

    manifest = {
        "kind": "calibration",
        "scenario": {
            "name": model.name,
            "sha256": scenario_sha256(model),
            "files": list(model.files),
        },
        "observations_file": {"path": "observations.yaml", "sha256": "0" * 64},
        "method": {"name": "test helper", "settings": {}},
        "seed": 1,
        "runs": n,
        "ess": float(1 / np.sum(weight**2)),
        "parameters": {
            name: {
                "prior": model.parameters[name].model_dump(
                    mode="json", exclude={"unit", "source", "description"}
                )
                if name in model.parameters
                else {"dist": "uniform", "low": 0.0, "high": 1.0},
                "prior_quantiles": {"p05": 0.0, "p50": 0.0, "p95": 0.0},
                "posterior_quantiles": quantiles(v, weight),
            }
            for name, v in values.items()
        },
        "observations": observations,
        "posterior_sha256": digest,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder
