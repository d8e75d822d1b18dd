"""sim.analysis.drivers and `sim drivers`: given-data first-order indices on synthetic data with
known answers, dependent inputs, the noise floor, determinism, the paired difference of two
folders (by hand), unpaired folders refused, runs drawn from a posterior, and the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import sim
from sim.analysis import saved as analyses
from sim.analysis.drivers import bins_for, drivers, first_order
from sim.cli import cli
from sim.errors import ScenarioError
from sim.present.analysis_figures import drivers_figure
from sim.study.results import Results
from tests.helpers import ROOT, bakery, calibration_folder, scenario

PANTRY, PANTRY_OPEN = ROOT / "examples" / "pantry.yaml", ROOT / "examples" / "pantry_open.yaml"


def invoke(*args: object) -> tuple[int, str]:
    r = CliRunner().invoke(cli, [str(a) for a in args])
    return r.exit_code, r.output


def linear(n: int, seed: int, sd: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y = X1 + 0.5·X2 + noise, X1, X2, X3 independent uniforms (X3 unused); the true η²."""
    rng = np.random.default_rng(seed)
    x = rng.random((3, n))
    y = x[0] + 0.5 * x[1] + sd * rng.standard_normal(n)
    var = 1 / 12 + 0.25 / 12 + sd**2
    return x, y, np.array([1 / 12 / var, 0.25 / 12 / var, 0.0])


def test_known_indices_of_a_linear_model():
    x, y, truth = linear(8000, seed=1)
    est = first_order(x, y)
    m = bins_for(8000)
    assert m == 20 and list(est.bins) == [m] * 3
    # Bins of a uniform input keep 1 - 1/M² of a straight line's variance.
    binned = truth * (1 - 1 / m**2)
    assert est.index == pytest.approx(binned, abs=0.015)
    assert np.all(est.low <= binned) and np.all(binned <= est.high)
    assert np.all(est.high - est.low < 0.05)
    assert est.index[0] > est.floor[0] and est.index[1] > est.floor[1]
    assert est.index[2] < est.floor[2]  # the unused input: at the noise floor
    assert abs(est.index[2]) < 0.01
    assert est.spearman[0] > est.spearman[1] > 0.3 and abs(est.spearman[2]) < 0.05


def test_the_noise_floor_is_what_an_input_that_does_not_matter_scores():
    """Over many samples, an independent input's corrected index averages 0 (the uncorrected
    one would average (M−1)/(N−1)), and exceeds its floor about 5% of the time."""
    rng = np.random.default_rng(2)
    n, reps = 200, 300
    index, above = [], 0
    for _ in range(reps):
        est = first_order(rng.random((1, n)), rng.standard_normal(n), resamples=10, seed=1)
        index.append(est.index[0])
        above += int(est.index[0] > est.floor[0])
    index = np.array(index)
    m = bins_for(n)
    assert abs(index.mean()) < 3 * index.std() / np.sqrt(reps)
    assert (m - 1) / (n - 1) > 6 * index.std() / np.sqrt(reps)  # what the correction removes
    assert 0.01 < above / reps < 0.1


def test_dependent_inputs_share_the_credit():
    """X2 = X1 + small noise: E[Y|X2] is nearly E[Y|X1], so both score high, and the indices
    sum to more than 1: not a variance decomposition."""
    rng = np.random.default_rng(3)
    n = 4000
    x1 = rng.random(n)
    x2 = x1 + 0.02 * rng.standard_normal(n)
    x3 = rng.random(n)
    y = x1 + 0.1 * rng.standard_normal(n)
    est = first_order(np.stack([x1, x2, x3]), y)
    assert est.index[0] > 0.85 and est.index[1] > 0.85
    assert est.index.sum() > 1.5
    assert est.index[2] < est.floor[2]


def test_an_effect_that_is_not_monotone_is_found_where_spearman_sees_none():
    rng = np.random.default_rng(4)
    x = rng.random((1, 3000))
    y = (x[0] - 0.5) ** 2 + 0.01 * rng.standard_normal(3000)
    est = first_order(x, y)
    assert est.index[0] > 0.9 and abs(est.spearman[0]) < 0.1


def test_runs_tied_on_a_value_share_a_bin():
    rng = np.random.default_rng(5)
    x = np.stack([rng.integers(0, 3, 1000).astype(float), rng.random(1000)])
    y = x[0] + 0.1 * rng.standard_normal(1000)
    est = first_order(x, y)
    assert est.bins[0] == 3 and est.bins[1] == bins_for(1000)
    assert est.index[0] > 0.95


def test_same_bits_twice_and_a_constant_outcome():
    x, y, _ = linear(500, seed=6)
    one, two = first_order(x, y), first_order(x, y)
    for key in ("index", "low", "high", "floor", "spearman"):
        assert getattr(one, key).tobytes() == getattr(two, key).tobytes()
    flat = first_order(x, np.ones(500))
    assert np.all(np.isnan(flat.index))


# -- over results ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pantries(tmp_path_factory):
    """pantry (A) and pantry_open (B), paired run by run, saved as `sim run` saves them."""
    tmp = tmp_path_factory.mktemp("pantries")
    out = []
    for path in (PANTRY, PANTRY_OPEN):
        res = sim.run(sim.load(path), runs=300, seed=2, out=tmp / path.stem)
        out.append(Results.load(res.folder))
    return out


def test_the_paired_difference_is_the_index_of_b_minus_a_by_hand(pantries):
    a, b = pantries
    res = drivers(b, "short_months", a, resamples=50)
    y = b.outcome("short_months") - a.outcome("short_months")
    names = [n for n, s in b.parameters.items() if s.get("sampled")]
    assert list(res.inputs) == names and not res.sources  # every parameter shared, unchanged
    x = np.stack([b.parameter(n) for n in names])
    assert np.array_equal(x, np.stack([a.parameter(n) for n in names]))
    by_hand = first_order(x, y, resamples=50)
    assert res.index[0].tobytes() == by_hand.index.tobytes()
    assert res.low[0].tobytes() == by_hand.low.tobytes()
    assert res.floor[0].tobytes() == by_hand.floor.tobytes()
    assert res.label("short_months") == "short_months(pantry_open) − short_months(pantry)"
    assert "paired run by run" in res.pairing
    assert res.mean[0] == pytest.approx(float(np.mean(y)))
    # What decides the strike's effect: the deliveries during it.
    assert res.ranked("short_months")[0].input in ("supply[soap]", "cut")


def test_an_arrayed_outcome_is_each_of_its_cells(pantries):
    res = drivers(pantries[1], "store_end", resamples=20)
    assert res.outcomes == ("store_end[food]", "store_end[fuel]", "store_end[soap]")
    top = res.ranked("store_end[fuel]")[0].input
    assert top in ("supply[fuel]", "need[fuel]")


def test_a_parameter_one_scenario_has_comes_from_its_folder():
    base = {
        "parameters": {"p": {"dist": "uniform", "low": 0, "high": 1}},
        "stocks": {"s": {"unit": "t", "kind": "source"}, "held": {"unit": "t"}},
        "flows": {"f": {"from": "s", "to": "held", "rate": "p"}},
        "outcomes": {"end": {"of": "held", "stat": "final", "unit": "t"}},
    }
    extra = {
        **base,
        "name": "more",
        "parameters": {**base["parameters"], "q": {"dist": "uniform", "low": 0, "high": 1}},
        "flows": {"f": {"from": "s", "to": "held", "rate": "p + 3 * q"}},
    }
    wider = {**base, "name": "wider", "parameters": {"p": {"dist": "uniform", "low": 0, "high": 2}}}
    a = sim.run(scenario(**base), runs=200, seed=1)
    b = sim.run(scenario(**extra), runs=200, seed=1)
    res = drivers(b, "end", a, resamples=20)
    assert res.inputs == ("p", "q") and res.sources == {"q": "more"}
    assert res.ranked("end")[0].input == "q" and res.ranked("end")[0].index > 0.9
    c = sim.run(scenario(**wider), runs=200, seed=1)
    res = drivers(c, "end", a, resamples=20)
    assert res.inputs == ("p (wider)", "p (toy)")
    assert res.sources == {"p (wider)": "wider", "p (toy)": "toy"}


def test_unpaired_folders_are_refused(pantries, tmp_path, monkeypatch):
    b = pantries[1]
    monkeypatch.chdir(tmp_path)  # where the default folder would go
    other = sim.run(sim.load(PANTRY), runs=300, seed=3)
    with pytest.raises(ScenarioError, match="seeds differ"):
        drivers(b, "short_months", other)
    fewer = sim.run(sim.load(PANTRY), runs=200, seed=2, out=tmp_path / "fewer")
    code, out = invoke("drivers", b.folder, "--baseline", fewer.folder, "--outcome", "eaten")
    assert code == 2, out
    assert f"--baseline {fewer.folder}" in out and "run counts differ (200 vs 300)" in out
    assert "Traceback" not in out and not Path("results").exists()  # nothing written


def test_an_unknown_outcome_is_refused_with_a_hint(pantries):
    with pytest.raises(ScenarioError, match="did you mean 'short_months'"):
        drivers(pantries[0], "short_month")


def test_runs_drawn_from_a_posterior_dependent_inputs_share_credit(tmp_path):
    """On a posterior where mill_output follows strike_month, mill_output gets the credit
    strike_month earns (it tells as much about the outcome); on the priors it gets little."""
    model = bakery()
    rng = np.random.default_rng(8)
    strike = rng.uniform(6, 30, 300)
    mill = np.clip(80 + 2 * (strike - 6) + rng.normal(0, 2, 300), 80, 130)
    cal = calibration_folder(
        tmp_path / "cal", model, {"mill_output": mill, "strike_month": strike}, np.ones(300)
    )
    on_posterior = sim.run(model, runs=600, seed=1, posterior=cal)
    res = drivers(on_posterior, "bread_eaten", resamples=50)
    index = dict(zip(res.inputs, res.index[0], strict=True))
    assert index["strike_month"] > 0.8 and index["mill_output"] > 0.6
    assert res.distributions["mill_output"].startswith("posterior")
    assert res.posterior is not None and res.settings()["posterior"]["sha256"]
    on_priors = drivers(sim.run(model, runs=600, seed=1), "bread_eaten", resamples=50)
    assert dict(zip(on_priors.inputs, on_priors.index[0], strict=True))["mill_output"] < 0.2


# -- the command, its folder and its figure ----------------------------------------------------


def test_the_command_prints_a_table_and_writes_its_folder(pantries, tmp_path):
    a, b = pantries
    out = tmp_path / "d"
    plot = tmp_path / "d.svg"
    code, text = invoke(
        "drivers", b.folder, "--baseline", a.folder, "--outcome", "short_months",
        "--top", "3", "--resamples", "50", "-o", out, "--plot", plot,
    )  # fmt: skip
    assert code == 0, text
    assert "what decides short_months(pantry_open) − short_months(pantry)" in text
    assert "input (by η²)" in text and "floor" in text and "Spearman" in text
    assert "share the credit" in text and "… 4 more inputs (in drivers.parquet)" in text
    assert plot.is_file() and (out / "drivers.png").is_file()
    saved = analyses.load(out, kinds=analyses.KINDS)
    assert saved.kind == "drivers" and saved.table.num_rows == 7
    assert saved.manifest["identity"]["runs_sha256"][1] == a.manifest["sha256"]["runs.parquet"]
    # `sim report` shows it, with the studies it was computed from
    code, text = invoke("report", a.folder, b.folder, out, "-o", tmp_path / "r.html")
    assert code == 0, text
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "short_months" in page and "η²" in page


def test_json_and_csv_are_the_table(pantries, tmp_path):
    b = pantries[1]
    code, text = invoke(
        "drivers",
        b.folder,
        "--outcome",
        "total_end",
        "--json",
        "-o",
        tmp_path / "j",
        "--resamples",
        20,
    )
    assert code == 0, text
    data = json.loads(text)
    assert data["kind"] == "drivers" and data["settings"]["inputs"][0] == "need[food]"
    rows = data["drivers"]
    assert {r["input"] for r in rows} == set(data["settings"]["inputs"])
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert "not a variance decomposition" in data["settings"]["caveat"]
    code, text = invoke(
        "drivers",
        b.folder,
        "--outcome",
        "total_end",
        "--csv",
        "-o",
        tmp_path / "j",
        "--resamples",
        20,
    )
    assert code == 0, text
    lines = text.splitlines()
    assert lines[0].startswith("outcome,input,rank,index,low,high,floor,spearman")
    assert len(lines) == 1 + len(rows)
    same = [float(v.split(",")[3]) for v in lines[1:]]
    assert same == [r["index"] for r in rows]  # the same numbers: deterministic


def test_the_figure_has_a_panel_per_outcome(pantries):
    res = drivers(pantries[1], ["total_end", "short_months"], resamples=20)
    fig = drivers_figure(res, top=4)
    assert len(fig.axes) == 2
    assert len(fig.axes[0].get_yticklabels()) == 4


def test_sensitivity_on_a_posterior_points_to_drivers():
    code, text = invoke("sensitivity", ROOT / "examples" / "bakery.yaml", "--outcome", "x",
                        "--posterior", "somewhere")  # fmt: skip
    assert code == 2 and "sim drivers" in text


def test_too_few_runs_are_refused():
    few = sim.run(sim.load(PANTRY), runs=12, seed=1)
    with pytest.raises(ScenarioError, match="at least 20"):
        drivers(few, "eaten")


def test_a_folder_that_does_not_exist_is_a_usage_error(tmp_path: Path):
    code, text = invoke("drivers", tmp_path / "nothing", "--outcome", "x")
    assert code == 2 and "does not exist" in text


def test_the_report_section_is_ready_to_wire(pantries, tmp_path):
    """`sim report` has no drivers section yet; `drivers_section` builds one from the folder,
    as the report's other section builders do (heading, what, tables), with text escaped."""
    from sim.present.drivers_section import drivers_section

    a, b = pantries
    out = tmp_path / "d"
    code, text = invoke(
        "drivers", b.folder, "--baseline", a.folder, "--outcome", "short_months",
        "--resamples", "20", "-o", out,
    )  # fmt: skip
    assert code == 0, text
    heading, what, tables = drivers_section(analyses.load(out, kinds=analyses.KINDS))
    assert heading == "Drivers: what decides short_months(pantry_open) − short_months(pantry)"
    assert "paired run by run" in what and "Not a variance decomposition" in what
    assert tables.count("<tr") == 1 + 7 and "supply[soap]" in tables
    assert "color:#888" in tables  # inputs at their noise floor are greyed


def test_sensitivity_given_a_results_folder_points_to_drivers(pantries):
    code, text = invoke("sensitivity", pantries[0].folder, "--outcome", "short_months")
    assert code == 2 and f"use `sim drivers {pantries[0].folder}" in text


def test_the_same_folders_give_the_same_table_and_runs_without_a_value_are_left_out(pantries):
    a, b = pantries
    one = drivers(b, ["short_months", "total_end"], a, resamples=30)
    two = drivers(b, ["short_months", "total_end"], a, resamples=30)
    assert one.table().equals(two.table())
    assert drivers(b, "total_end", bins=5, resamples=10).bins.max() == 5
    res = sim.run(bakery(), runs=400, seed=1)
    never = int(np.isnan(res.outcome("first_empty")).sum())
    assert never > 0
    found = drivers(res, "first_empty", resamples=10)
    assert found.used == (400 - never,)
    assert found.ranked("first_empty")[0].input == "strike_month"


def test_a_difference_that_is_zero_in_every_run_has_nothing_to_explain(pantries):
    b = pantries[1]
    res = drivers(b, "short_months", b, resamples=10)
    assert res.flat == ("short_months",) and np.all(np.isnan(res.index))
    code, text = invoke("drivers", b.folder, "--baseline", b.folder, "--outcome", "short_months",
                        "--resamples", "10", "-o", b.folder.parent / "self")  # fmt: skip
    assert code == 0 and "takes one value in every run: nothing decides it" in text


@pytest.mark.parametrize("columns", [80, 50])
def test_the_table_never_cuts_an_input_name(pantries, tmp_path, columns):
    a, b = pantries
    r = CliRunner().invoke(
        cli,
        ["drivers", str(b.folder), "--baseline", str(a.folder), "--outcome", "short_months",
         "--resamples", "10", "-o", str(tmp_path / "d")],
        env={"COLUMNS": str(columns)},
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert max(len(line.rstrip()) for line in r.output.splitlines()) <= columns
    names = [n for n, s in b.parameters.items() if s.get("sampled")]
    assert all(name in r.output for name in names) and "…" not in r.output.replace("… ", "")


def test_runs_of_one_posterior_sample_are_not_taken_for_independent_evidence():
    """Runs that repeat a posterior sample share its parameters: with `groups`, an irrelevant
    input held by the posterior passes its floor about as often as a 5% test should; taking
    the repeats as independent runs, it passes far more often."""
    rng = np.random.default_rng(4)
    passes = {True: 0, False: 0}
    trials = 40
    for _ in range(trials):
        g = 200
        group = rng.integers(0, g, 1400)  # ~7 runs per sample
        xc = rng.random((2, g))  # x[0] matters, x[1] does not; both held by the posterior
        x = xc[:, group]
        y = xc[0, group] + rng.normal(0, 0.5, g)[group] + rng.normal(0, 0.05, 1400)
        for grouped in (True, False):
            est = first_order(
                x, y, permutations=60, resamples=60, groups=group if grouped else None
            )
            passes[grouped] += bool(est.index[1] > est.floor[1])
    assert passes[True] <= 0.15 * trials, passes
    assert passes[False] >= 0.3 * trials, passes
