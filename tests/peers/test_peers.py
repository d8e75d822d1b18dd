"""sim against a peer: small Vensim models, each written again in sim's language, matched to
PySD's output (committed beside them as expected.csv, so CI needs no PySD) to 1e-9 over the
whole trajectory, in every engine. See make_expected.py for how a case is laid out."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml

from sim.engine import ENGINES
from sim.model import Model, load
from sim.sampling.draws import noise_draws, parameter_draws

HERE = Path(__file__).resolve().parent
CASES = sorted(p.parent.name for p in HERE.glob("*/expected.csv"))
RTOL = 1e-9


def series(model: Model, engine: str) -> dict[str, np.ndarray]:
    """Each recorded series of run 0 (every parameter of a peer model is fixed)."""
    params = parameter_draws(model.parameters, "mc", 1, 1, 0, 1)
    noise = noise_draws(model.noises, 1, 1, model.ticks, 0, 1)
    block = ENGINES[engine](model, params, noise, 0, 1, None)
    return {name: values[:, 0] for name, values in block.series.items()}


def expected(case: str) -> dict[str, np.ndarray]:
    with open(HERE / case / "expected.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0] if k != "tick"}


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("case", CASES)
def test_matches_pysd(case: str, engine: str) -> None:
    model = load(HERE / case / "model.yaml")
    assert not model.sampled and not model.noises, "a peer model has no uncertainty"
    peer = yaml.safe_load((HERE / case / "peer.yaml").read_text())["series"]
    want, got = expected(case), series(model, engine)
    assert set(want) == set(peer) <= set(got), "peer.yaml, expected.csv and record: disagree"
    for name, values in want.items():
        assert len(got[name]) == len(values), (
            f"{name}: {len(got[name])} ticks, PySD has {len(values)}"
        )
        scale = max(1.0, float(np.abs(values).max()))
        np.testing.assert_allclose(got[name], values, rtol=RTOL, atol=RTOL * scale, err_msg=name)


def test_every_case_is_complete() -> None:
    """A case folder without its PySD output would be silently skipped."""
    folders = sorted(p.parent.name for p in HERE.glob("*/model.yaml"))
    assert folders == CASES, "run make_expected.py for: " + ", ".join(set(folders) - set(CASES))
    for case in CASES:
        assert (HERE / case / "model.mdl").exists(), f"{case}: no Vensim model"
