"""`sim run --posterior`: a calibration folder read back and refused when it isn't one, run i
taking posterior sample J(i) keyed by seed and run alone, so the posterior is reproduced,
two scenarios on it stay paired, and everything else draws exactly as without it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sim
from sim.errors import ResultsError, ScenarioError
from sim.model import Model, load
from sim.study.design import Sampled
from sim.study.posterior import match, read_posterior
from tests.helpers import BAKERY, bakery, calibration_folder, write

HELD = ("mill_output", "strike_month")


def unequal(model: Model, folder: Path, n: int = 400, seed: int = 0) -> Path:
    """A posterior over mill_output and strike_month with very unequal weights (and a few
    zero ones), correlated: a joint posterior, not a product of marginals."""
    rng = np.random.default_rng(seed)
    mill = rng.uniform(80, 130, n)
    strike = 6 + 24 * np.clip((mill - 80) / 50 + rng.normal(0, 0.1, n), 0, 1)
    weight = rng.gamma(0.5, size=n)
    weight[:10] = 0.0
    return calibration_folder(folder, model, {"mill_output": mill, "strike_month": strike}, weight)


@pytest.fixture(scope="module")
def cal(tmp_path_factory) -> Path:
    return unequal(bakery(), tmp_path_factory.mktemp("cal") / "bakery-calibration")


def other_scenario(tmp: Path) -> Model:
    """bakery with another eating rate, itself uncertain: shares the posterior's parameters
    and samples one of its own."""
    return load(
        write(
            tmp,
            "hungrier.yaml",
            {
                "extends": str(BAKERY),
                "name": "hungrier",
                "parameters": {
                    "eat_rate": {"dist": "uniform", "low": 80, "high": 120, "source": "test"}
                },
                "flows": {"eat": {"rate": "eat_rate"}},
            },
        )
    )


# -- reading the folder ---------------------------------------------------------------------


def test_read_posterior_gives_the_columns_weights_priors_and_hash(cal):
    p = read_posterior(cal)
    assert p.names == HELD and p.samples == 400
    assert abs(p.weight.sum() - 1) < 1e-12 and (p.weight[:10] == 0).all()
    assert p.priors["strike_month"] == {"dist": "uniform", "low": 6.0, "high": 30.0}
    assert p.sha256 == json.loads((cal / "manifest.json").read_text())["posterior_sha256"]
    assert p == read_posterior(cal) and hash(p) == hash(read_posterior(cal))


def _copy(cal: Path, to: Path) -> Path:
    to.mkdir()
    for name in ("manifest.json", "posterior.parquet"):
        (to / name).write_bytes((cal / name).read_bytes())
    return to


def _rewrite(folder: Path, table: pa.Table) -> None:
    """posterior.parquet replaced and its hash updated: damage the hash check can't see."""
    import hashlib

    pq.write_table(table, folder / "posterior.parquet")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["posterior_sha256"] = hashlib.sha256(
        (folder / "posterior.parquet").read_bytes()
    ).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _weights(table: pa.Table, w: np.ndarray) -> pa.Table:
    return table.set_column(table.column_names.index("weight"), "weight", pa.array(w))


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda f: f.rename(f.with_name("gone")), "no such calibration folder"),
        (lambda f: (f / "manifest.json").unlink(), "not a calibration folder (no manifest.json)"),
        (
            lambda f: (f / "manifest.json").write_text('{"kind": "sweep"}'),
            'not a calibration folder (its kind is "sweep"',
        ),
        (
            lambda f: (f / "manifest.json").write_text(
                json.dumps(json.loads((f / "manifest.json").read_text()) | {"complete": False})
            ),
            "an incomplete calibration",
        ),
        (lambda f: (f / "posterior.parquet").unlink(), "posterior.parquet is missing"),
        (
            lambda f: (f / "posterior.parquet").write_bytes(
                (f / "posterior.parquet").read_bytes() + b"x"
            ),
            "does not match posterior_sha256",
        ),
        (
            lambda f: _rewrite(f, pq.read_table(f / "posterior.parquet").drop(["strike_month"])),
            "has no column strike_month",
        ),
        (
            lambda f: _rewrite(f, pq.read_table(f / "posterior.parquet").drop(["weight"])),
            "has no column weight",
        ),
        (
            lambda f: _rewrite(
                f, _weights(pq.read_table(f / "posterior.parquet"), np.r_[-0.5, 1.5, np.zeros(398)])
            ),
            "weight holds a negative",
        ),
        (
            lambda f: _rewrite(
                f, _weights(pq.read_table(f / "posterior.parquet"), np.r_[np.nan, np.ones(399)])
            ),
            "weight holds a negative, NaN or infinite",
        ),
        (
            lambda f: _rewrite(
                f, _weights(pq.read_table(f / "posterior.parquet"), np.full(400, 1 / 399))
            ),
            "weights sum to",
        ),
    ],
    ids=[
        "no folder",
        "no manifest",
        "not a calibration",
        "incomplete",
        "no parquet",
        "edited parquet",
        "missing parameter column",
        "missing weight",
        "negative weight",
        "nan weight",
        "weights not summing to 1",
    ],
)
def test_a_damaged_or_foreign_folder_is_refused_naming_it(cal, tmp_path, damage, says):
    folder = _copy(cal, tmp_path / "cal")
    damage(folder)
    with pytest.raises(ResultsError, match="cal") as info:
        read_posterior(folder)
    assert says in str(info.value)


def test_a_run_folder_is_not_a_calibration(tmp_path):
    sim.run(bakery(), runs=20, out=tmp_path / "res")
    with pytest.raises(ResultsError, match="holds a run's results"):
        read_posterior(tmp_path / "res")


# -- matching the scenario --------------------------------------------------------------------


def test_every_mismatch_is_named_at_once_and_nothing_is_written(tmp_path):
    m = bakery()
    rng = np.random.default_rng(1)
    values = {k: rng.uniform(0, 1, 20) for k in ("mill_output", "strike_month", "price", "flour")}
    folder = calibration_folder(tmp_path / "cal", m, values, np.ones(20))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["parameters"]["mill_output"]["prior"]["high"] = 140.0
    (folder / "manifest.json").write_text(json.dumps(manifest))
    problems = match(read_posterior(folder), m)
    assert [p.path for p in problems] == ["parameters.mill_output", "parameters.price", ""]
    assert "triangular(80, 100, 130), differs" in problems[0].message
    assert problems[0].message.endswith("calibrated under, triangular(80, 100, 140)")
    assert problems[0].place is not None and problems[0].place.file.endswith("bakery.yaml")
    assert "fixed at 450" in problems[1].message
    assert "'flour', which scenario 'bakery' does not have" in problems[2].message
    with pytest.raises(ScenarioError) as info:
        sim.run(m, runs=20, out=tmp_path / "res", posterior=folder)
    assert len(info.value.problems) == 3
    assert not (tmp_path / "res").exists()


def test_a_prior_differing_only_in_its_notes_is_the_same_prior(cal, tmp_path):
    noted = load(
        write(
            tmp_path,
            "noted.yaml",
            {
                "extends": str(BAKERY),
                "parameters": {
                    "strike_month": {
                        "dist": "uniform",
                        "low": 6,
                        "high": 30,
                        "unit": "month",
                        "source": "another citation",
                        "description": "reworded",
                    }
                },
            },
        )
    )
    assert match(read_posterior(cal), noted) == []


# -- drawing from it --------------------------------------------------------------------------


def test_runs_reproduce_the_weighted_posterior_jointly(cal):
    p = read_posterior(cal)
    n = 20_000
    res = sim.run(bakery(), runs=n, seed=4, posterior=cal)
    rows = res.runs.column("posterior_sample").to_numpy()
    assert res.runs.schema.field("posterior_sample").type == pa.int64()
    # the run's values are the rows' values, every parameter from the same row
    for name in HELD:
        assert np.array_equal(res.parameter(name), p.values[name][rows])
    assert not np.isin(rows, np.arange(10)).any()  # zero weights are never taken
    # the empirical CDF of each parameter matches the weighted posterior's within MC error
    for name in HELD:
        x, w = p.values[name], p.weight
        for q in (0.05, 0.25, 0.5, 0.75, 0.95):
            at = np.sort(x)[np.searchsorted(np.cumsum(w[np.argsort(x)]), q)]
            target = w[x <= at].sum()
            share = np.mean(res.parameter(name) <= at)
            assert abs(share - target) < 4.5 * np.sqrt(target * (1 - target) / n), (name, q)
        mean, sd = np.sum(w * x), np.sqrt(np.sum(w * (x - np.sum(w * x)) ** 2))
        assert abs(res.parameter(name).mean() - mean) < 4.5 * sd / np.sqrt(n)
    # and the manifest says where they came from
    info = res.manifest["posterior"]
    assert info["sha256"] == p.sha256 and info["parameters"] == list(HELD)
    assert info["drawn_as_usual"] == [] and info["folder"] == str(cal)


def test_other_parameters_and_noise_are_the_bits_of_a_run_without_it(cal, tmp_path):
    m = other_scenario(tmp_path)
    for sampler in ("mc", "lhs", "sobol"):
        prior = sim.run(m, runs=700, seed=9, sampler=sampler)
        post = sim.run(m, runs=700, seed=9, sampler=sampler, posterior=cal)
        assert np.array_equal(prior.parameter("eat_rate"), post.parameter("eat_rate")), sampler
        assert post.manifest["posterior"]["drawn_as_usual"] == ["eat_rate"]
    # noise: the same draws as the plain design makes
    plain = Sampled().draw(m, 9, "lhs", 700, 0, 700)
    drawn = Sampled(read_posterior(cal)).draw(m, 9, "lhs", 700, 0, 700)
    for name, noise in plain[1].items():
        assert np.array_equal(noise, drawn[1][name])
    assert np.array_equal(plain[0]["eat_rate"], drawn[0]["eat_rate"])
    assert not np.array_equal(plain[0]["mill_output"], drawn[0]["mill_output"])


def test_two_scenarios_on_one_posterior_take_the_same_sample_in_every_run(cal, tmp_path):
    a = sim.run(bakery(), runs=900, seed=3, posterior=cal)
    b = sim.run(other_scenario(tmp_path), runs=900, seed=3, sampler="sobol", posterior=cal)
    assert a.runs.column("posterior_sample").equals(b.runs.column("posterior_sample"))
    for name in HELD:
        assert np.array_equal(a.parameter(name), b.parameter(name))
    # J(i) depends on the seed and i, not on the run count
    c = sim.run(bakery(), runs=5000, seed=3, posterior=cal)
    assert np.array_equal(
        c.runs.column("posterior_sample").to_numpy()[:900],
        a.runs.column("posterior_sample").to_numpy(),
    )
    other = sim.run(bakery(), runs=900, seed=4, posterior=cal)
    assert not other.runs.column("posterior_sample").equals(a.runs.column("posterior_sample"))


def test_war_scenarios_on_one_posterior_stay_paired():
    continues = load("scenarios/war_continues.yaml")
    ends = load("scenarios/war_ends.yaml")
    rng = np.random.default_rng(2)
    held = ["shell_demand", "oil_cap"]
    assert set(held) <= set(continues.sampled) & set(ends.sampled)
    values = {name: continues.parameters[name].ppf(rng.uniform(size=300)) for name in held}
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        folder = calibration_folder(Path(tmp) / "cal", continues, values, rng.uniform(size=300))
        a = sim.run(continues, runs=400, seed=1, posterior=folder)
        b = sim.run(ends, runs=400, seed=1, posterior=folder)
    assert a.runs.column("posterior_sample").equals(b.runs.column("posterior_sample"))
    for name in held:
        assert np.array_equal(a.parameter(name), b.parameter(name))
    assert "war_end_month" in b.manifest["posterior"]["drawn_as_usual"]
    plain = sim.run(ends, runs=400, seed=1)
    assert np.array_equal(plain.parameter("war_end_month"), b.parameter("war_end_month"))
    assert sim.compare(a, b).pairings[0].paired


def test_block_size_and_workers_do_not_change_the_bits(cal, tmp_path):
    one = sim.run(bakery(), runs=1500, seed=2, posterior=cal, out=tmp_path / "a")
    cut = sim.run(
        bakery(), runs=1500, seed=2, posterior=cal, out=tmp_path / "b", block_size=256, workers=2
    )
    assert pq.read_table(tmp_path / "a" / "runs.parquet").equals(
        pq.read_table(tmp_path / "b" / "runs.parquet")
    )
    assert one.manifest["posterior"] == cut.manifest["posterior"]


def test_precision_stops_on_a_posterior_study(cal):
    res = sim.run(
        bakery(),
        runs=60_000,
        seed=2,
        block_size=1000,
        posterior=cal,
        precision={"bread_eaten": 0.01},
    )
    assert res.manifest["precision"]["met"] and res.n_runs < 60_000
    assert "posterior" in res.manifest and res.runs.column("posterior_sample").null_count == 0


class Stop(KeyboardInterrupt):
    pass


def test_resume_needs_the_same_posterior(cal, tmp_path):
    other = unequal(bakery(), tmp_path / "other-calibration", seed=5)
    common = {"runs": 2000, "seed": 5, "block_size": 300, "workers": 1}

    def progress(done: int, total: int) -> None:
        if done >= 900:
            raise Stop

    with pytest.raises(Stop):
        sim.run(bakery(), out=tmp_path / "a", progress=progress, posterior=cal, **common)
    with pytest.raises(ResultsError, match=r"posterior .{12}… there, posterior .{12}… now"):
        sim.run(bakery(), out=tmp_path / "a", resume=True, posterior=other, **common)
    with pytest.raises(ResultsError, match="there, no posterior now"):
        sim.run(bakery(), out=tmp_path / "a", resume=True, **common)
    res = sim.run(bakery(), out=tmp_path / "a", resume=True, posterior=cal, **common)
    whole = sim.run(bakery(), runs=2000, seed=5, posterior=cal)
    assert res.manifest["resumed"] == 1 and res.runs.equals(whole.runs)


def test_a_plain_study_keeps_its_identity(tmp_path):
    # no posterior: the study's identity (what --resume compares) is what it always was
    res = sim.run(bakery(), runs=50, seed=1, out=tmp_path / "a")
    assert "design" not in res.manifest["study"] and "posterior" not in res.manifest
    assert "posterior_sample" not in res.runs.column_names


def test_trace_tells_the_posterior_row(cal):
    from sim.study.runner import trace_run

    res = sim.run(bakery(), runs=50, seed=8, posterior=cal)
    story = trace_run(bakery(), 17, runs=50, seed=8, posterior=cal)
    assert story.posterior_sample == res.runs.column("posterior_sample")[17].as_py()
    assert story.parameters["mill_output"] == res.parameter("mill_output")[17]


def test_parameter_columns_the_manifest_does_not_list_are_refused(cal, tmp_path):
    folder = _copy(cal, tmp_path / "cal")
    table = pq.read_table(folder / "posterior.parquet")
    extra = table.add_column(2, "yeast", pa.array(np.ones(table.num_rows)))
    _rewrite(folder, extra)
    with pytest.raises(ResultsError, match=r"are not the parameters manifest\.json lists"):
        read_posterior(folder)


def test_a_results_manifest_whose_posterior_record_was_edited_is_refused(cal, tmp_path):
    sim.run(bakery(), runs=50, posterior=cal, out=tmp_path / "a")
    path = tmp_path / "a" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["posterior"]["sha256"] = "not a hash"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ResultsError, match=r"posterior\.sha256"):
        sim.Results.load(tmp_path / "a")
    sim.run(bakery(), runs=50, out=tmp_path / "b")
    path = tmp_path / "b" / "manifest.json"
    plain = json.loads(path.read_text())
    path.write_text(json.dumps(plain | {"posterior": manifest["posterior"] | {"sha256": "0" * 64}}))
    with pytest.raises(ResultsError, match="no column posterior_sample"):
        sim.Results.load(tmp_path / "b")
