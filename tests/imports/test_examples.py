"""The guide's imported example (docs/guide.md, section 17) without PySD: the imported SIR
model runs, the overlay's distributions replace the imported numbers, and the policy lowers
the peak run by run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import sim
from sim.model import load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_overlay_makes_three_imported_constants_uncertain() -> None:
    base, uncertain = load(EXAMPLES / "sir.yaml"), load(EXAMPLES / "sir_uncertain.yaml")
    assert not base.sampled
    assert set(uncertain.sampled) == {"contact_infectivity", "duration", "total_population"}


def test_distancing_lowers_the_peak_in_every_paired_run() -> None:
    a = sim.run(sim.load(EXAMPLES / "sir_uncertain.yaml"), runs=40, seed=7)
    b = sim.run(sim.load(EXAMPLES / "sir_distancing.yaml"), runs=40, seed=7)
    before = a.runs["peak_infectious"].to_numpy()
    after = b.runs["peak_infectious"].to_numpy()
    assert np.all(after <= before) and np.mean(before - after) > 10
