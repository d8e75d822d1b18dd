"""sim.analysis.compare: the statistics against independent computations, pairing, errors, the CLI."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import sim
from sim.analysis.compare import (
    KS_EXACT_UP_TO,
    MIN_RESAMPLES,
    N_RESAMPLES,
    ROW_FIELDS,
    compare,
    difference,
    distances,
    pairing,
    resamples_for,
)
from sim.cli import cli
from sim.errors import ResultsError
from sim.present.numbers import number
from sim.present.tables import comparison_cells
from sim.study.results import Results
from tests.helpers import BAKERY

# -- builders ---------------------------------------------------------------------------------


def synthetic(
    name: str,
    outcomes: dict[str, np.ndarray],
    *,
    seed: int = 1,
    sampler: str = "mc",
    units: dict[str, str] | None = None,
    stats_: dict[str, str] | None = None,
    complete: bool = True,
    description: str = "",
    series: dict[str, np.ndarray] | None = None,
) -> Results:
    """A Results held in memory, with the given values per run and a minimal manifest.

    `series` maps a recorded series name to a (ticks, runs) array; bands are made from it.
    """
    n = len(next(iter(outcomes.values())))
    units = units or {}
    stats_ = stats_ or {}
    manifest: dict[str, Any] = {
        "format_version": 1,
        "complete": complete,
        "scenario": {"name": name, "description": description, "stocks": {}},
        "scenario_sha256": "0" * 64,
        "files": [f"{name}.yaml"],
        "seed": seed,
        "sampler": sampler,
        "runs": n,
        "engine": "kernel",
        "outcomes": {
            k: {
                "unit": units.get(k, "t"),
                "stat": stats_.get(k, "final"),
                "of": k,
                "description": "",
            }
            for k in outcomes
        },
        "parameters": {
            "p": {"distribution": "uniform(0, 1)", "unit": "1", "source": "test", "sampled": True}
        },
        "record": list(series or {}),
        "versions": {"sim": "test"},
        "started": "2024-01-01T00:00:00+00:00",
        "wall_seconds": 0.0,
        "nonfinite_runs": 0,
    }
    columns: dict[str, Any] = {"run": np.arange(n, dtype=np.int64)}
    for k, v in outcomes.items():
        columns[k] = np.asarray(v, dtype=float)
    columns["status"] = ["ok"] * n
    runs = pa.table(columns)
    band_rows: dict[str, list[Any]] = {
        k: [] for k in ("series", "tick", "date", "mean", "p05", "p25", "p50", "p75", "p95")
    }
    for s, values in (series or {}).items():
        ticks = values.shape[0]
        q = np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95], axis=1)
        band_rows["series"] += [s] * ticks
        band_rows["tick"] += list(range(ticks))
        band_rows["date"] += [f"{2024 + t // 12}-{t % 12 + 1:02d}" for t in range(ticks)]
        band_rows["mean"] += values.mean(axis=1).tolist()
        for key, row in zip(("p05", "p25", "p50", "p75", "p95"), q, strict=True):
            band_rows[key] += row.tolist()
    return Results(manifest, runs, pa.table(band_rows))


def normal_pair(shift: float, n: int = 4000, paired: bool = True) -> tuple[Results, Results]:
    """A ~ N(10, 2); B = A + shift + N(0, 0.5) when paired, else an independent N(10 + shift, 2)."""
    rng = np.random.default_rng(42)
    a = rng.normal(10, 2, n)
    if paired:
        b = a + shift + rng.normal(0, 0.5, n)
        return synthetic("A", {"x": a}, seed=1), synthetic("B", {"x": b}, seed=1)
    b = rng.normal(10 + shift, 2, n)
    return synthetic("A", {"x": a}, seed=1), synthetic("B", {"x": b}, seed=2)


def variant_file(tmp: Path, name: str = "bakery_bigmill") -> Path:
    """A scenario that extends the bakery and only makes the mill bigger."""
    path = tmp / f"{name}.yaml"
    data = {
        "extends": str(BAKERY),
        "name": name,
        "description": "The bakery with a bigger mill.",
        "parameters": {
            "mill_output": {
                "dist": "triangular",
                "low": 90,
                "mode": 115,
                "high": 140,
                "unit": "t/month",
                "source": "assumption: a bigger mill",
            }
        },
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Results folders: bakery and a bigger-mill variant (same seed), and bakery on seed 8."""
    tmp = tmp_path_factory.mktemp("compare")
    base = sim.load(BAKERY)
    variant = sim.load(variant_file(tmp))
    out = {"bakery": tmp / "bakery", "bigmill": tmp / "bigmill", "seed8": tmp / "seed8"}
    sim.run(base, runs=400, seed=7, out=out["bakery"])
    sim.run(variant, runs=400, seed=7, out=out["bigmill"])
    sim.run(base, runs=400, seed=8, out=out["seed8"])
    return out


# -- statistics against independent computations ----------------------------------------------


def test_paired_known_shift() -> None:
    a, b = normal_pair(shift=1.5)
    table = compare(a, b)
    d = table.difference("x", "B")
    assert d.paired and table.pairings[0].paired
    diffs = b.outcome("x") - a.outcome("x")
    assert d.mean == pytest.approx(diffs.mean(), rel=1e-12)
    assert d.median == pytest.approx(np.median(diffs), rel=1e-12)
    assert d.mcse == pytest.approx(diffs.std(ddof=1) / math.sqrt(len(diffs)), rel=1e-12)
    # The bootstrap interval of a mean agrees with the t interval to within sampling noise.
    half = stats.t.ppf(0.975, len(diffs) - 1) * d.mcse
    assert d.mean_low == pytest.approx(d.mean - half, abs=0.15 * half)
    assert d.mean_high == pytest.approx(d.mean + half, abs=0.15 * half)
    assert d.mean_low < 1.5 < d.mean_high
    assert d.median_low < 1.5 < d.median_high
    assert d.p_greater == pytest.approx(np.mean(diffs > 0))
    assert d.p05 == pytest.approx(np.quantile(diffs, 0.05))
    assert d.p95 == pytest.approx(np.quantile(diffs, 0.95))


def test_unpaired_known_shift() -> None:
    a, b = normal_pair(shift=1.0, paired=False)
    table = compare(a, b)
    d = table.difference("x", "B")
    assert not d.paired
    x, y = a.outcome("x"), b.outcome("x")
    assert d.mean == pytest.approx(y.mean() - x.mean(), rel=1e-12)
    assert d.median == pytest.approx(np.median(y) - np.median(x), rel=1e-12)
    se = math.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y))
    assert d.mcse == pytest.approx(se, rel=1e-12)
    assert d.mean_low == pytest.approx(d.mean - 1.96 * se, abs=0.15 * 1.96 * se)
    assert d.mean_high == pytest.approx(d.mean + 1.96 * se, abs=0.15 * 1.96 * se)
    assert d.mean_low < 1.0 < d.mean_high
    # P(B > A) is the Mann-Whitney U over n_a n_b (no ties in continuous data) ...
    u = stats.mannwhitneyu(y, x).statistic / (len(x) * len(y))
    assert d.p_greater == pytest.approx(u, abs=1e-12)
    assert d.p_equal == 0
    # ... and close to its true value Phi(shift / sqrt(2 sd^2)).
    assert d.p_greater == pytest.approx(stats.norm.cdf(1.0 / math.sqrt(8)), abs=0.02)
    assert math.isnan(d.p05) and math.isnan(d.p95)


def test_distances_match_definitions() -> None:
    a, b = normal_pair(shift=0.7, n=1500, paired=False)
    d = compare(a, b).difference("x", "B")
    x, y = np.sort(a.outcome("x")), np.sort(b.outcome("x"))
    grid = np.concatenate([x, y])
    gap = np.abs(
        np.searchsorted(x, grid, side="right") / len(x)
        - np.searchsorted(y, grid, side="right") / len(y)
    )
    assert d.ks == pytest.approx(gap.max(), abs=1e-12)
    assert 0 <= d.ks_pvalue < 1e-6
    # Equal sizes: the 1-Wasserstein distance is the mean gap between sorted samples.
    assert d.wasserstein == pytest.approx(np.mean(np.abs(x - y)), rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.tuples(st.integers(1, 2 * KS_EXACT_UP_TO), st.integers(1, 2 * KS_EXACT_UP_TO)),
    levels=st.sampled_from([0, 3, 40]),  # 0: continuous values, else that many distinct ones
    shift=st.floats(-1, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_distances_are_scipys_to_the_bit(
    sizes: tuple[int, int], levels: int, shift: float, seed: int
) -> None:
    # `distances` computes KS and Wasserstein from one sort per sample: it must give exactly
    # what scipy gives, on both sides of ks_2samp's exact/asymptotic switch, ties and signed
    # zeros included.
    rng = np.random.default_rng(seed)
    a, b = (rng.normal(size=n) for n in sizes)
    b += shift
    if levels:
        a, b = np.round(a * levels / 4) * 1.0, np.round(b * levels / 4) * 1.0
        a[rng.random(len(a)) < 0.3] = -0.0
    ks = stats.ks_2samp(a, b)
    expected = (float(ks.statistic), float(ks.pvalue), float(stats.wasserstein_distance(a, b)))
    assert distances(a, b) == expected


def test_ties_split_between_greater_and_equal() -> None:
    a = synthetic("A", {"k": np.array([0, 0, 1, 2, 2, 3])}, seed=1)
    b = synthetic("B", {"k": np.array([0, 1, 1, 2, 3, 3, 3])}, seed=2)
    d = compare(a, b).difference("k", "B")
    x, y = a.outcome("k"), b.outcome("k")
    greater = np.mean(y[:, None] > x[None, :])
    equal = np.mean(y[:, None] == x[None, :])
    assert (d.p_greater, d.p_equal) == pytest.approx((greater, equal))
    u = stats.mannwhitneyu(y, x).statistic / (len(x) * len(y))
    assert d.p_greater + d.p_equal / 2 == pytest.approx(u)


def test_identical_scenarios_give_zero_difference() -> None:
    a, _ = normal_pair(shift=0)
    b = synthetic("A2", {"x": a.outcome("x")}, seed=1)
    d = compare(a, b).difference("x", "A2")
    assert d.paired
    assert (d.mean, d.median, d.p05, d.p95) == (0, 0, 0, 0)
    assert d.mean_low <= 0 <= d.mean_high and d.median_low <= 0 <= d.median_high
    assert (d.p_greater, d.p_equal, d.ks, d.wasserstein) == (0, 1, 0, 0)
    assert d.ks_pvalue == 1


def test_identical_bakery_runs(folders: dict[str, Path]) -> None:
    a = Results.load(folders["bakery"])
    table = compare(a, sim.run(sim.load(BAKERY), runs=400, seed=7))
    for d in table.differences:
        assert d.paired
        assert d.mean == 0 and d.mean_low <= 0 <= d.mean_high
    assert table.scenarios == ("bakery #1", "bakery #2")


def test_reproducible_and_independent_of_the_outcome_selection(folders: dict[str, Path]) -> None:
    a, b = Results.load(folders["bakery"]), Results.load(folders["seed8"])
    one = compare(a, b)
    two = compare(a, b, outcomes=["mean_till"])
    assert one.rows() == compare(a, b).rows()
    assert two.difference("mean_till", two.scenarios[1]) == one.difference(
        "mean_till", one.scenarios[1]
    )


def test_never_values_are_left_out_and_counted() -> None:
    nan = math.nan
    a = synthetic("A", {"f": np.array([3, 5, nan, 7, nan, 2])}, stats_={"f": "first"})
    b = synthetic("B", {"f": np.array([4, nan, nan, 9, 1, 2])}, stats_={"f": "first"})
    table = compare(a, b)
    d = table.difference("f", "B")
    assert d.paired
    both = np.array([4 - 3, 9 - 7, 2 - 2])  # runs 0, 3, 5 have a value in both
    assert (d.n_a, d.n_b) == (3, 3)
    assert d.mean == pytest.approx(both.mean())
    assert d.p_greater == pytest.approx(2 / 3)
    # Distances compare each scenario's own values (4 in A, 4 in B).
    assert d.wasserstein == pytest.approx(stats.wasserstein_distance([3, 5, 7, 2], [4, 9, 1, 2]))
    s = table.summary("f", "A")
    assert (s.n, s.empty) == (4, 2)
    text = "\n".join(" ".join(c) for _, c in comparison_cells(table))
    assert "33% never" in text


def test_all_never_gives_missing_numbers_not_errors() -> None:
    nan = np.full(5, math.nan)
    a = synthetic("A", {"f": nan}, stats_={"f": "first"})
    b = synthetic("B", {"f": nan}, stats_={"f": "first"})
    d = compare(a, b).difference("f", "B")
    assert math.isnan(d.mean) and math.isnan(d.mean_low) and math.isnan(d.ks)
    json.dumps(compare(a, b).as_dict(), allow_nan=False)


# -- pairing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "sampler", "n", "paired", "why"),
    [
        (1, "mc", 50, True, "same seed 1"),
        (2, "mc", 50, False, "seeds differ"),
        (1, "lhs", 50, False, "samplers differ"),
        (1, "mc", 60, False, "run counts differ"),
    ],
)
def test_pairing_exactly_when_seed_sampler_and_runs_agree(
    seed: int, sampler: str, n: int, paired: bool, why: str
) -> None:
    rng = np.random.default_rng(0)
    a = synthetic("A", {"x": rng.normal(size=50)}, seed=1, sampler="mc")
    b = synthetic("B", {"x": rng.normal(size=n)}, seed=seed, sampler=sampler)
    p = pairing(a, b)
    assert p.paired is paired and why in p.reason
    table = compare(a, b)
    assert table.difference("x", "B").paired is paired
    assert table.as_dict()["pairings"][0]["paired"] is paired


def test_sobol_pairing_warns_when_sampled_parameters_differ() -> None:
    x = np.arange(20.0)
    a = synthetic("A", {"x": x}, sampler="sobol")
    b = synthetic("B", {"x": x}, sampler="sobol")
    assert "helps less" not in pairing(a, b).reason
    b.manifest["parameters"]["q"] = {"distribution": "uniform(0, 1)", "sampled": True}
    p = pairing(a, b)
    assert p.paired and "Sobol draws differ" in p.reason


def test_pairing_sharpens_the_bakery_comparison(folders: dict[str, Path]) -> None:
    a, b = Results.load(folders["bakery"]), Results.load(folders["bigmill"])
    assert pairing(a, b).paired
    paired = compare(a, b).difference("bread_eaten", "bakery_bigmill")
    # The same draws, compared as if independent: the interval is several times wider.
    unpaired = difference(a.outcome("bread_eaten"), b.outcome("bread_eaten"), paired=False)
    assert paired.mean == pytest.approx(unpaired.mean)
    assert paired.mean > 0 and paired.mean_low > 0
    width = paired.mean_high - paired.mean_low
    assert unpaired.mean_high - unpaired.mean_low > 4 * width
    assert not compare(a, Results.load(folders["seed8"])).pairings[0].paired


# -- errors -----------------------------------------------------------------------------------


def test_errors_are_results_errors() -> None:
    a = synthetic("A", {"x": np.arange(5.0)})
    with pytest.raises(ResultsError, match="at least two"):
        compare(a)
    with pytest.raises(ResultsError, match="share no outcome"):
        compare(a, synthetic("B", {"y": np.arange(5.0)}))
    with pytest.raises(ResultsError, match="incomplete"):
        compare(a, synthetic("B", {"x": np.arange(5.0)}, complete=False))
    with pytest.raises(ResultsError, match="did you mean 'x'"):
        compare(a, synthetic("B", {"x": np.arange(5.0)}), outcomes=["xx"])
    with pytest.raises(ResultsError, match="different units"):
        compare(a, synthetic("B", {"x": np.arange(5.0)}, units={"x": "kg"}), outcomes=["x"])


def test_outcomes_not_shared_or_with_other_units_are_noted() -> None:
    a = synthetic("A", {"x": np.arange(5.0), "y": np.arange(5.0), "z": np.arange(5.0)})
    b = synthetic("B", {"x": np.arange(5.0), "y": np.arange(5.0)}, units={"y": "kg"})
    table = compare(a, b)
    assert table.outcomes == ("x",)
    assert any("z" in note for note in table.notes)
    assert any("different units" in note for note in table.notes)


# -- the table object ----------------------------------------------------------------------


def test_rows_and_json(folders: dict[str, Path]) -> None:
    a, b, c = (Results.load(folders[k]) for k in ("bakery", "bigmill", "seed8"))
    table = compare(a, b, c)
    rows = table.rows()
    assert all(tuple(r) == ROW_FIELDS for r in rows)
    kinds = [r["kind"] for r in rows]
    assert kinds.count("scenario") == 3 * len(table.outcomes)
    assert kinds.count("difference") == 2 * len(table.outcomes)
    data = json.loads(json.dumps(table.as_dict(), allow_nan=False))
    assert [p["paired"] for p in data["pairings"]] == [True, False]
    summary = {s.name: s for s in a.summary()}
    first = rows[0]
    assert first["mean"] == summary[first["outcome"]].mean


def test_resample_budget() -> None:
    assert resamples_for(1000) == N_RESAMPLES
    assert resamples_for(200_000) == MIN_RESAMPLES
    assert MIN_RESAMPLES <= resamples_for(60_000) < N_RESAMPLES
    assert resamples_for(10, n_resamples=100) == 100


def test_number_format() -> None:
    assert number(1234.5) == "1.23k"
    assert number(-0.5, signed=True) == "−0.5"
    assert number(2e6, signed=True) == "+2M"
    assert number(math.nan) == "–"


@pytest.mark.slow
def test_two_100k_studies_compare_right_in_bounded_memory() -> None:
    """At 100k paired runs: the right numbers, large-sample intervals (no bootstrap from
    ASYMPTOTIC_FROM runs) in bounded memory. Its speed is a figure of benchmarks/compare.py
    and benchmarks/commands.py, not a test."""
    import tracemalloc

    rng = np.random.default_rng(3)
    n = 100_000
    base = rng.lognormal(3, 0.5, (n, 4))
    shifted = base * 1.05 + rng.normal(0, 1, (n, 4))
    a = synthetic("A", {f"o{k}": base[:, k] for k in range(4)})
    b = synthetic("B", {f"o{k}": shifted[:, k] for k in range(4)})
    tracemalloc.start()
    try:
        table = compare(a, b)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20, f"compare traced {peak / 2**20:.0f} MiB"
    assert [d.outcome for d in table.differences] == [f"o{k}" for k in range(4)]
    for k, d in enumerate(table.differences):
        diff = shifted[:, k] - base[:, k]
        assert d.paired and d.n_a == d.n_b == n
        assert d.resamples == 0  # normal and order-statistic intervals
        assert d.mean == pytest.approx(np.mean(diff), rel=1e-12)
        assert d.median == pytest.approx(np.median(diff), rel=1e-12)
        assert d.p_greater == np.mean(diff > 0)
        assert d.mean_low < d.mean < d.mean_high
        assert d.median_low < d.median < d.median_high
        assert d.ks == pytest.approx(stats.ks_2samp(base[:, k], shifted[:, k]).statistic)
        assert d.wasserstein == pytest.approx(stats.wasserstein_distance(base[:, k], shifted[:, k]))


# -- the CLI ----------------------------------------------------------------------------------


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_compare_folders(folders: dict[str, Path]) -> None:
    result = invoke("compare", str(folders["bakery"]), str(folders["bigmill"]))
    assert result.exit_code == 0, result.output
    assert "bakery_bigmill − bakery" in result.output
    assert "paired run by run" in result.output
    for outcome in ("bread_eaten", "hungry_months", "first_empty", "mean_till"):
        assert outcome in result.output


def test_cli_compare_json_csv_and_outcome(folders: dict[str, Path]) -> None:
    args = [str(folders["bakery"]), str(folders["seed8"]), "--outcome", "bread_eaten"]
    result = invoke("compare", *args, "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["outcomes"] == ["bread_eaten"]
    assert data["pairings"][0]["paired"] is False
    result = invoke("compare", *args, "--csv")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["kind"] for r in rows] == ["scenario", "scenario", "difference"]
    assert float(rows[2]["mean"]) == pytest.approx(float(rows[1]["mean"]) - float(rows[0]["mean"]))
    assert invoke("compare", *args, "--json", "--csv").exit_code == 2


def test_cli_compare_runs_scenario_files_paired(tmp_path: Path) -> None:
    variant = variant_file(tmp_path)
    result = invoke("compare", str(BAKERY), str(variant), "--runs", "300", "--seed", "5", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["pairings"][0]["paired"] is True
    assert "same seed 5" in data["pairings"][0]["reason"]
    assert data["scenarios"][0]["runs"] == 300


def test_cli_compare_scenario_file_matches_a_folder(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    result = invoke("compare", str(folders["bakery"]), str(variant_file(tmp_path)), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["pairings"][0]["paired"] is True


def test_cli_compare_errors_exit_2(folders: dict[str, Path], tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(
        yaml.safe_dump(
            {
                "name": "other",
                "start": "2024-01",
                "months": 6,
                # a sampled parameter: a scenario without one can't run yet (sim run exits 1)
                "parameters": {"rate": {"dist": "uniform", "low": 1, "high": 2, "unit": "t"}},
                "stocks": {"src": {"unit": "t", "kind": "source"}, "box": {"unit": "t"}},
                "flows": {"fill": {"from": "src", "to": "box", "rate": "rate"}},
                "outcomes": {"boxed": {"of": "box", "stat": "final", "unit": "t"}},
            }
        )
    )
    sim.run(sim.load(other), runs=20, seed=1, out=tmp_path / "other")
    result = CliRunner().invoke(cli, ["compare", str(folders["bakery"]), str(tmp_path / "other")])
    assert result.exit_code == 2
    assert "share no outcome" in result.output
    # An incomplete folder: the manifest says so.
    broken = tmp_path / "broken"
    sim.run(sim.load(BAKERY), runs=20, seed=1, out=broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["complete"] = False
    (broken / "manifest.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(cli, ["compare", str(folders["bakery"]), str(broken)])
    assert result.exit_code == 2
    assert "incomplete" in result.output
    result = CliRunner().invoke(cli, ["compare", str(folders["bakery"])])
    assert result.exit_code == 2
    result = CliRunner().invoke(
        cli, ["compare", str(folders["bakery"]), str(folders["seed8"]), "--outcome", "bread"]
    )
    assert result.exit_code == 2
    assert "bread_eaten" in result.output
    result = CliRunner().invoke(
        cli, ["compare", str(folders["bakery"]), str(folders["seed8"]), "--seed", "3"]
    )
    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("flag", "name", "message"),
    [
        ("--plot", "no/such/folder/x.png", "no such folder"),
        ("--plot", "x.txt", "no .txt images"),
        ("--fan", "x.doc", "no .doc images"),
    ],
)
def test_cli_compare_figure_paths_that_cannot_be_written_exit_2(
    folders: dict[str, Path], tmp_path: Path, flag: str, name: str, message: str
) -> None:
    target = tmp_path / name
    result = CliRunner().invoke(
        cli, ["compare", str(folders["bakery"]), str(folders["seed8"]), flag, str(target)]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and flag in result.output
    assert "internal error" not in result.output
    assert list(tmp_path.iterdir()) == []  # nothing written, not even the other figure


def test_cli_compare_writes_figures_whole(folders: dict[str, Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "compare",
            str(folders["bakery"]),
            str(folders["seed8"]),
            "--plot",
            str(tmp_path / "c.svg"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.svg", "c_fan.svg"]
    assert (tmp_path / "c.svg").read_text().lstrip().startswith("<?xml")
