"""compare's pairing rule with posteriors: paired needs the same seed, sampler, run count and
posterior; two posteriors, or a posterior and priors, are unpaired, with a warning; the report
shows the posterior's observation table and marks the parameters drawn from it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import sim
from sim.analysis.compare import compare, pairing
from sim.present.report import render
from tests.helpers import bakery, calibration_folder

OBSERVATIONS = {
    "eaten_2024": {
        "use": "calibrate",
        "observed": 1000.0,
        "sd": 100.0,
        "unit": "t",
        "source": "the bakery's books",
        "of": "eaten",
        "stat": "final",
        "p05": 820.0,
        "p50": 990.0,
        "p95": 1170.0,
        "z": 0.12,
    },
    "till_2025": {
        "use": "validate",
        "observed": 5000.0,
        "sd": 900.0,
        "unit": "usd",
        "source": "<b>bank</b>",
        "of": "till",
        "stat": "mean",
        "p05": 3000.0,
        "p50": 4000.0,
        "p95": 4800.0,
        "z": 1.9,
        "covered": False,
    },
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("posteriors")
    m = bakery()
    out = []
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        values = {"mill_output": rng.uniform(80, 130, 200)}
        out.append(
            calibration_folder(tmp / f"cal{seed}", m, values, rng.uniform(size=200), OBSERVATIONS)
        )
    return out


def run(posterior=None, seed=1):
    return sim.run(bakery(), runs=300, seed=seed, posterior=posterior)


def test_the_same_posterior_pairs_and_says_which(folders):
    a, b = run(folders[0]), run(folders[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = compare(a, b)
    p = table.pairings[0]
    assert p.paired and "posterior" in p.reason
    assert table.difference("bread_eaten", table.scenarios[1]).mean == 0.0
    assert [q["sha256"] for q in table.posteriors] == [a.manifest["posterior"]["sha256"]] * 2
    assert table.as_dict()["posteriors"][0]["posterior"]["parameters"] == ["mill_output"]


@pytest.mark.parametrize("which", ["two posteriors", "a posterior and priors"])
def test_different_posteriors_are_unpaired_with_a_warning(folders, which):
    a = run(folders[0])
    b = run(folders[1]) if which == "two posteriors" else run()
    p = pairing(a, b)
    assert not p.paired
    expected = "different posteriors" if which == "two posteriors" else "the other from priors"
    assert expected in p.reason
    with pytest.warns(UserWarning, match="not the same world"):
        table = compare(a, b)
    assert not table.pairings[0].paired


def test_priors_on_both_sides_pair_as_before():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = compare(run(), run())
    assert table.pairings[0].paired and "posterior" not in table.pairings[0].reason
    assert table.posteriors == (None, None)


def test_the_report_shows_the_posterior_and_marks_its_parameters(folders):
    a, b = run(folders[0]), run(folders[0])
    page = render(compare(a, b), [a, b], figures=False)
    assert 'id="parameters-from-a-posterior">Parameters from a posterior</h2>' in page
    sha = a.manifest["posterior"]["sha256"]
    assert sha in page and f"posterior {sha[:12]}…" in page
    assert "eaten_2024" in page and "till_2025" in page and ">no</td>" in page
    assert "&lt;b&gt;bank&lt;/b&gt;" in page and "<b>bank</b>" not in page  # escaped
    assert 'class="tag posterior"' in page
    plain = render(compare(run(), run()), [run(), run()], figures=False)
    assert "Parameters from a posterior" not in plain and "tag posterior" not in plain


def test_the_report_says_when_the_posteriors_differ(folders):
    a, b = run(folders[0]), run()
    with pytest.warns(UserWarning):
        table = compare(a, b)
    page = render(table, [a, b], figures=False)
    assert "did not all draw from the same posterior" in page
    assert "posteriors differ" in page
