"""`posterior_rows`: run i's posterior sample J(i), by weighted resampling keyed by seed and i."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.sampling.draws import RANDOM_BLOCK, posterior_rows

RUNS = 20_000


@settings(max_examples=40, deadline=None)
@given(
    weights=st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 1.0)), min_size=1, max_size=12).filter(
        lambda w: sum(w) > 0
    ),
    seed=st.integers(0, 2**63 - 1),
)
def test_row_frequencies_follow_the_weights(weights, seed):
    w = np.array(weights) / np.sum(weights)
    rows = posterior_rows(w, seed, RUNS, 0, RUNS)
    assert rows.dtype == np.int64 and rows.min() >= 0 and rows.max() < len(w)
    share = np.bincount(rows, minlength=len(w)) / RUNS
    assert (share[w == 0] == 0).all()  # a zero weight is never taken
    # each share within 5 binomial sds of its weight (one false alarm in ~10^6 per check)
    assert (np.abs(share - w) <= 5 * np.sqrt(w * (1 - w) / RUNS) + 1e-12).all()


@settings(max_examples=25, deadline=None)
@given(
    runs=st.integers(1, 3 * RANDOM_BLOCK),
    cut=st.integers(1, RANDOM_BLOCK + 7),
    seed=st.integers(0, 2**32),
)
def test_rows_depend_on_seed_and_run_alone(runs, cut, seed):
    w = np.linspace(1, 3, 9)
    w /= w.sum()
    whole = posterior_rows(w, seed, runs, 0, runs)
    pieces = [
        posterior_rows(w, seed, runs, start, min(runs, start + cut))
        for start in range(0, runs, cut)
    ]
    assert np.array_equal(np.concatenate(pieces), whole)  # any block cut: the same rows
    longer = posterior_rows(w, seed, runs + 500, 0, runs + 500)
    assert np.array_equal(longer[:runs], whole)  # and any run count
