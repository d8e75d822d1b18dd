"""sim.analysis.calibrate: the posterior is right where it is known, held-out values change
nothing, the draws don't depend on how the runs are cut, and the diagnostics speak up.

Tolerances are Monte Carlo errors: the sd of a weighted mean is about σ/√ESS (σ the exact
posterior sd, ESS the final weights' effective sample size) and of a weighted sd about
σ/√(2·ESS); each check allows four of them. The seeds are fixed, so nothing is flaky.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy import integrate, stats

import sim
from sim.analysis.calibrate import Calibration, calibrate, save
from sim.errors import ResultsError, ScenarioError
from sim.scenario.observations import load_observations
from sim.study import store
from sim.study.runner import Execution
from tests.calibration.models import LINEAR, MONTHS, MU0, NOISY, S0, C, observations, write_yaml

Z = 4.0  # Monte Carlo errors allowed


def _calibrate(
    tmp: Path, scenario: dict, targets: dict, runs: int = 20_000, seed: int = 3, **kw
) -> tuple[Calibration, sim.Model]:
    model = sim.load(write_yaml(tmp, f"{scenario['name']}.yaml", scenario))
    obs = load_observations(write_yaml(tmp, "observations.yaml", observations(**targets)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return calibrate(model, obs, runs=runs, seed=seed, **kw), model


def _moments(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    mean = float(np.sum(w * x))
    return mean, float(np.sqrt(np.sum(w * (x - mean) ** 2)))


def _check(cal: Calibration, name: str, mean: float, sd: float) -> None:
    got_mean, got_sd = _moments(cal.values[name], cal.weight)
    se = sd / np.sqrt(cal.ess)
    assert abs(got_mean - mean) < Z * se, (got_mean, mean, se)
    assert abs(got_sd - sd) < Z * sd / np.sqrt(2 * cal.ess), (got_sd, sd)


def test_the_conjugate_normal_posterior(tmp_path: Path):
    # s_end = 12·a exactly; a ~ N(μ0, s0²), y ~ N(12·a, σ²): the posterior is normal.
    y, sd = 150.0, 12.0
    cal, _ = _calibrate(
        tmp_path, LINEAR, {"end": {"of": "s", "stat": "final", "value": y, "sd": sd}}
    )
    precision = 1 / S0**2 + MONTHS**2 / sd**2
    mean = (MU0 / S0**2 + MONTHS * y / sd**2) / precision
    _check(cal, "a", mean, precision**-0.5)
    assert cal.ess > 0.4 * cal.n
    assert np.isclose(cal.weight.sum(), 1.0, atol=1e-12)


def test_the_posterior_with_noise_integrated_out(tmp_path: Path):
    # s_end = a + C·U with the flow's noise U ~ uniform(0.5, 1.5): the exact posterior of a
    # integrates U out (tests/calibration/models.py), computed here by quadrature.
    y, sd = 16.0, 0.5
    cal, _ = _calibrate(
        tmp_path, NOISY, {"end": {"of": "s", "stat": "final", "value": y, "sd": sd}}
    )

    def density(a: float) -> float:
        like = stats.norm.cdf((y - a - 0.5 * C) / sd) - stats.norm.cdf((y - a - 1.5 * C) / sd)
        return float(stats.norm.pdf(a, MU0, S0) * like)

    lo, hi = MU0 - 8 * S0, MU0 + 8 * S0
    z = integrate.quad(density, lo, hi, points=[y - 1.5 * C, y - 0.5 * C])[0]
    mean = integrate.quad(lambda a: a * density(a), lo, hi)[0] / z
    var = integrate.quad(lambda a: (a - mean) ** 2 * density(a), lo, hi)[0] / z
    _check(cal, "a", mean, var**0.5)
    # The answer that leaves the noise out (the flow at its median, 1·C) would fail that check
    # by twice its tolerance: the noise's variance C²/12 is five times the observation error's.
    naive_sd = (1 / S0**2 + 1 / sd**2) ** -0.5
    assert abs(naive_sd - var**0.5) > 2 * Z * var**0.5 / np.sqrt(2 * cal.ess)


def test_an_unobserved_parameter_keeps_its_prior(tmp_path: Path):
    cal, _ = _calibrate(
        tmp_path, LINEAR, {"end": {"of": "s", "stat": "final", "value": 150, "sd": 12}}
    )
    b, w = cal.values["b"], cal.weight
    # The weighted ECDF against the prior's CDF: Kolmogorov's distribution with n = ESS.
    order = np.argsort(b)
    ecdf = np.cumsum(w[order])
    d = float(np.max(np.abs(ecdf - b[order])))
    assert stats.kstwobign.sf(d * np.sqrt(cal.ess)) > 0.001, d
    # Its quantiles match the prior's within the quantile's Monte Carlo error.
    for q, got in cal.posterior_quantiles("b").items():
        level = int(q[1:]) / 100
        assert abs(got - level) < Z * np.sqrt(level * (1 - level) / cal.ess), (q, got)
    assert abs(cal.narrowed("b")) < 0.15


def test_held_out_values_change_nothing(tmp_path: Path):
    def folder(value: float, sd: float, name: str) -> bytes:
        targets = {
            "end": {"of": "s", "stat": "final", "value": 150, "sd": 12},
            "mid": {"of": "where(t == 5, s, 0)", "stat": "max", "value": value, "sd": sd,
                    "use": "validate"},
        }  # fmt: skip
        model = sim.load(write_yaml(tmp_path, "linear.yaml", LINEAR))
        obs = load_observations(write_yaml(tmp_path, f"{name}.yaml", observations(**targets)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cal = calibrate(model, obs, runs=8000, seed=2)
        out = save(cal, tmp_path / name, model, obs)
        assert out["observations"]["mid"]["observed"] == value
        return (tmp_path / name / "posterior.parquet").read_bytes()

    assert folder(80.0, 5.0, "one") == folder(1e9, 0.001, "two")


def test_the_same_bits_for_any_block_size_and_worker_count(tmp_path: Path):
    target = {"end": {"of": "s", "stat": "final", "value": 16, "sd": 1}}
    one, _ = _calibrate(tmp_path, NOISY, target, runs=6000, seed=9)
    cut, _ = _calibrate(
        tmp_path, NOISY, target, runs=6000, seed=9, execution=Execution(block_size=37)
    )
    assert one.table().equals(cut.table())
    other, _ = _calibrate(tmp_path, NOISY, target, runs=6000, seed=10)
    assert not one.table().equals(other.table())


@pytest.mark.slow
def test_the_same_bits_on_two_workers(tmp_path: Path):
    target = {"end": {"of": "s", "stat": "final", "value": 16, "sd": 1}}
    one, _ = _calibrate(tmp_path, NOISY, target, runs=300, seed=9, particles=100)
    two, _ = _calibrate(
        tmp_path, NOISY, target, runs=300, seed=9, particles=100,
        execution=Execution(workers=2, block_size=50),
    )  # fmt: skip
    assert one.table().equals(two.table())


def test_the_folder_follows_the_contract(tmp_path: Path):
    targets = {
        "end": {"of": "s", "stat": "final", "value": 150, "low": 130, "high": 170, "unit": "kg",
                "source": "a test"},
        "mid": {"of": "where(t == 5, s, 0)", "stat": "max", "value": 70, "sd": 5,
                "use": "validate"},
    }  # fmt: skip
    model = sim.load(write_yaml(tmp_path, "linear.yaml", LINEAR))
    path = write_yaml(tmp_path, "obs.yaml", observations(**targets))
    obs = load_observations(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = calibrate(model, obs, runs=8000, seed=2)
    folder = tmp_path / "out"
    data = save(cal, folder, model, obs)
    table = pq.read_table(folder / "posterior.parquet")
    assert table.column_names == ["sample", "a", "b", "weight", "end", "mid"]
    assert str(table.schema.field("sample").type) == "int64"
    assert all(str(table.schema.field(c).type) == "double" for c in table.column_names[1:])
    weight = table.column("weight").to_numpy()
    assert (weight >= 0).all() and abs(weight.sum() - 1) < 1e-12
    manifest = store.manifest.read_json(folder / "manifest.json", folder)
    assert manifest == data
    assert manifest["kind"] == "calibration"
    assert manifest["posterior_sha256"] == store.sha256_file(folder / "posterior.parquet")
    assert manifest["observations_file"]["sha256"] == store.sha256_file(path)
    assert manifest["scenario"]["name"] == "linear" and len(manifest["scenario"]["sha256"]) == 64
    assert manifest["runs"] == cal.runs <= 8000 and manifest["ess"] == pytest.approx(cal.ess)
    prior = model.parameters["a"].model_dump(mode="json", exclude={"unit", "source", "description"})
    assert manifest["parameters"]["a"]["prior"] == prior
    assert prior["dist"] == "normal" and prior["mean"] == 10.0 and prior["sd"] == 2.0
    assert set(manifest["parameters"]["a"]["posterior_quantiles"]) == {"p05", "p50", "p95"}
    end, mid = manifest["observations"]["end"], manifest["observations"]["mid"]
    assert end["sd"] == pytest.approx(40 / (2 * stats.norm.ppf(0.95)))
    assert end["unit"] == "kg" and end["source"] == "a test" and "covered" not in end
    assert mid["use"] == "validate" and isinstance(mid["covered"], bool)
    assert mid["p05"] < mid["p50"] < mid["p95"]
    # The predictive interval is of the simulated value plus the observation error.
    y = table.column("mid").to_numpy()
    assert mid["p95"] - mid["p05"] > np.quantile(y, 0.95, weights=weight, method="inverted_cdf") - (
        np.quantile(y, 0.05, weights=weight, method="inverted_cdf")
    )


def test_a_calibration_folder_is_what_sim_run_posterior_reads(tmp_path: Path):
    """The two halves of the folder contract meet: what `save` writes, `read_posterior` takes
    whole, and a run on it draws the posterior's rows."""
    from sim.study.posterior import match, read_posterior

    model = sim.load(write_yaml(tmp_path, "linear.yaml", LINEAR))
    path = write_yaml(
        tmp_path, "obs.yaml", observations(end={"of": "s", "stat": "final", "value": 150, "sd": 5})
    )
    obs = load_observations(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = calibrate(model, obs, runs=4000, seed=3)
    save(cal, tmp_path / "cal", model, obs)
    posterior = read_posterior(tmp_path / "cal")
    assert list(posterior.names) == ["a", "b"] and not match(posterior, model)
    np.testing.assert_array_equal(posterior.weight, cal.weight)
    res = sim.run(model, runs=300, seed=4, posterior=tmp_path / "cal")
    rows = res.runs.column("posterior_sample").to_numpy()
    np.testing.assert_array_equal(res.parameter("a"), posterior.values["a"][rows])


def test_a_folder_of_another_scenario_is_not_replaced_without_force(tmp_path: Path):
    cal, model = _calibrate(
        tmp_path, LINEAR, {"end": {"of": "s", "stat": "final", "value": 150, "sd": 12}}, 4000
    )
    obs = load_observations(tmp_path / "observations.yaml")
    save(cal, tmp_path / "out", model, obs)
    save(cal, tmp_path / "out", model, obs)  # the same scenario's: replaced
    other = sim.load(write_yaml(tmp_path, "other.yaml", LINEAR | {"name": "other"}))
    with pytest.raises(ResultsError, match="calibration of scenario 'linear'"):
        save(cal, tmp_path / "out", other, obs)
    save(cal, tmp_path / "out", other, obs, force=True)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("x")
    with pytest.raises(ResultsError, match="not a calibration"):
        save(cal, tmp_path / "notes", model, obs)


# -- diagnostics --------------------------------------------------------------------------


def _warnings(tmp: Path, scenario: dict, targets: dict, **kw) -> list[str]:
    model = sim.load(write_yaml(tmp, f"{scenario['name']}.yaml", scenario))
    obs = load_observations(write_yaml(tmp, "observations.yaml", observations(**targets)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cal = calibrate(model, obs, **kw)
    said = [str(w.message) for w in caught]
    assert said == cal.warnings
    return said


def test_a_prior_data_conflict_names_the_target(tmp_path: Path):
    said = _warnings(
        tmp_path,
        LINEAR,
        {
            "fine": {"of": "s", "stat": "final", "value": 120, "sd": 12},
            "far": {"of": "where(t == 5, s, 0)", "stat": "max", "value": 1000, "sd": 5},
        },
        runs=6000,
        seed=1,
    )
    assert any("prior-data conflict: observation 'far'" in s for s in said), said
    assert not any("conflict: observation 'fine'" in s for s in said)


def test_a_target_no_run_can_move_is_flagged(tmp_path: Path):
    said = _warnings(
        tmp_path,
        LINEAR,
        {
            "end": {"of": "s", "stat": "final", "value": 120, "sd": 12},
            "flat": {"of": "t", "stat": "max", "value": 11, "sd": 1, "use": "validate"},
        },
        runs=6000,
        seed=1,
    )
    assert any("observation 'flat'" in s and "every prior run" in s for s in said), said


def test_a_small_effective_sample_size_warns(tmp_path: Path):
    # A budget of two batches: the sampler must jump to the posterior by weighting alone.
    said = _warnings(
        tmp_path,
        LINEAR,
        {"end": {"of": "s", "stat": "final", "value": 150, "sd": 0.5}},
        runs=200,
        seed=1,
        particles=100,
    )
    assert any("budget" in s for s in said), said
    assert any("effective sample size" in s for s in said), said


def test_a_posterior_on_a_prior_bound_warns(tmp_path: Path):
    bounded = LINEAR | {
        "parameters": {
            "a": {"dist": "uniform", "low": 5, "high": 10, "unit": "kg/month", "source": "t"},
            "b": {"dist": "uniform", "low": 0, "high": 1, "source": "t"},
        }
    }
    said = _warnings(
        tmp_path,
        bounded,
        {"end": {"of": "s", "stat": "final", "value": 150, "sd": 3}},
        runs=10_000,
        seed=1,
    )
    assert any("parameter 'a'" in s and "upper bound" in s for s in said), said
    assert not any("parameter 'b'" in s for s in said)


def test_bad_requests_are_refused(tmp_path: Path):
    with pytest.raises(ScenarioError, match="too small"):
        _calibrate(tmp_path, LINEAR, {"e": {"of": "s", "stat": "final", "value": 1, "sd": 1}}, 150)
    fixed = LINEAR | {"parameters": {"a": 3, "b": 1}}
    with pytest.raises(ScenarioError, match="no uncertain parameters"):
        _calibrate(tmp_path, fixed, {"e": {"of": "s", "stat": "final", "value": 1, "sd": 1}})


def test_the_given_design_runs_the_values_it_is_given(tmp_path: Path):
    from sim.study.design import Given

    model = sim.load(write_yaml(tmp_path, "noisy.yaml", NOISY | {"parameters": {
        "a": NOISY["parameters"]["a"], "b": 0.25}}))  # fmt: skip
    values = {"a": np.array([1.0, 2.0, 3.0, 4.0, 5.0])}
    design = Given(values, noise_seed=11)
    whole = design.draw(model, 0, "mc", 5, 0, 5)
    parts = [design.draw(model, 0, "mc", 5, lo, hi) for lo, hi in ((0, 2), (2, 5))]
    assert np.array_equal(whole[0]["a"], values["a"]) and np.all(whole[0]["b"] == 0.25)
    assert np.array_equal(whole[1]["jitter"], np.concatenate([p[1]["jitter"] for p in parts], 1))
    other = Given(values, noise_seed=12).draw(model, 0, "mc", 5, 0, 5)
    assert not np.array_equal(whole[1]["jitter"], other[1]["jitter"])
    res = run_study(model, design)
    assert np.array_equal(res.parameter("a"), values["a"])
    with pytest.raises(ValueError, match="no values for parameter 'a'"):
        Given({}, 1).draw(model, 0, "mc", 5, 0, 5)


def run_study(model: sim.Model, design: object) -> sim.Results:
    from sim.study.runner import run

    return run(model, 5, 1, design=design)  # type: ignore[arg-type]


def test_a_parameter_kept_at_its_prior_is_integrated_out(tmp_path: Path):
    """`keep_prior`: the parameter is drawn afresh in every run, as noise is, so the posterior
    of the others is the one with it integrated out (here exactly the noisy model's, with the
    noise written as a parameter u ~ uniform(0.5, 1.5)), and the posterior does not hold it."""
    scenario = {
        "name": "kept",
        "start": "2024-01",
        "months": 1,
        "seed": 5,
        "parameters": {
            "a": {"dist": "normal", "mean": MU0, "sd": S0, "unit": "kg/month", "source": "test"},
            "u": {"dist": "uniform", "low": 0.5, "high": 1.5, "source": "test"},
        },
        "stocks": {"src": {"unit": "kg", "kind": "source"}, "s": {"unit": "kg", "initial": 0}},
        "flows": {"grow": {"from": "src", "to": "s", "rate": f"a + {C} * u"}},
    }
    y, sd = 16.0, 0.5
    cal, model = _calibrate(
        tmp_path, scenario, {"end": {"of": "s", "stat": "final", "value": y, "sd": sd}},
        keep_prior=["u"],
    )  # fmt: skip
    assert cal.parameters == ("a",) and "u" not in cal.values

    def density(a: float) -> float:
        like = stats.norm.cdf((y - a - 0.5 * C) / sd) - stats.norm.cdf((y - a - 1.5 * C) / sd)
        return float(stats.norm.pdf(a, MU0, S0) * like)

    lo, hi = MU0 - 8 * S0, MU0 + 8 * S0
    z = integrate.quad(density, lo, hi, points=[y - 1.5 * C, y - 0.5 * C])[0]
    mean = integrate.quad(lambda a: a * density(a), lo, hi)[0] / z
    var = integrate.quad(lambda a: (a - mean) ** 2 * density(a), lo, hi)[0] / z
    _check(cal, "a", mean, var**0.5)
    # The folder records it, and a run on the posterior draws u from its prior as usual.
    obs = load_observations(write_yaml(tmp_path, "observations.yaml", observations(
        end={"of": "s", "stat": "final", "value": y, "sd": sd})))  # fmt: skip
    manifest = save(cal, tmp_path / "cal", model, obs)
    assert manifest["method"]["settings"]["kept_at_prior"] == ["u"]
    res = sim.run(model, runs=50, seed=1, posterior=tmp_path / "cal")
    assert len(np.unique(res.parameter("u"))) == 50


def test_keep_prior_in_the_file_is_located_and_checked(tmp_path: Path):
    model = sim.load(write_yaml(tmp_path, "linear.yaml", LINEAR))
    doc = observations(end={"of": "s", "stat": "final", "value": 150, "sd": 12})
    doc["keep_prior"] = ["b", "bb"]
    path = write_yaml(tmp_path, "obs.yaml", doc)
    with pytest.raises(ScenarioError) as info:
        calibrate(model, load_observations(path), runs=2000, seed=1)
    message = str(info.value)
    assert f"{path}:" in message and "keep_prior[1]" in message
    assert "'bb' is not a parameter of scenario 'linear'" in message and "'b'" in message
    doc["keep_prior"] = ["b"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = calibrate(model, load_observations(write_yaml(tmp_path, "ok.yaml", doc)), runs=4000)
    assert cal.parameters == ("a",)
