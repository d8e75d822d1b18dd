"""Saltelli's design with groups: AB_g is A with every column of group g from B, nothing
else; without groups it is the design it always was, bit for bit."""

from __future__ import annotations

import numpy as np

from sim.study.design import saltelli
from tests.helpers import scenario


def test_each_ab_matrix_swaps_its_groups_columns_together():
    model = scenario(
        dimensions={"good": ["a", "b", "c"]},
        parameters={
            "x": {"over": "good", "dist": "uniform", "low": 0, "high": 1, "source": "t"},
            "z": {"dist": "normal", "mean": 0, "sd": 1, "source": "t"},
        },
        stocks={"s": {"unit": "t"}},
    )
    names = ["x[a]", "x[b]", "x[c]", "z"]
    n = 64
    plain = saltelli(model, n, 7, names)
    grouped = saltelli(model, n, 7, names, groups=[["x[a]", "x[b]", "x[c]"], ["z"]])
    assert grouped.size(n) == n * 4 and plain.size(n) == n * 6
    m = grouped.matrix
    a, b = m[:, :n], m[:, n : 2 * n]
    assert np.array_equal(a, plain.matrix[:, :n]) and np.array_equal(b, plain.matrix[:, n : 2 * n])
    ab_x, ab_z = m[:, 2 * n : 3 * n], m[:, 3 * n :]
    assert np.array_equal(ab_x[:3], b[:3]) and np.array_equal(ab_x[3], a[3])
    assert np.array_equal(ab_z[:3], a[:3]) and np.array_equal(ab_z[3], b[3])
    assert "groups" in grouped.identity() and "groups" not in plain.identity()
    for k in range(4):  # without groups: AB_k swaps column k alone
        ab = plain.matrix[:, (2 + k) * n : (3 + k) * n]
        assert np.array_equal(ab[k], b[k])
        assert np.array_equal(np.delete(ab, k, 0), np.delete(a, k, 0))
