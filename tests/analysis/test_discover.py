"""sim.analysis.discover and `sim discover`: a known box found in synthetic data, --where, the folder, report."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from sim.analysis import saved as analyses
from sim.analysis.discover import ALPHA, _density, _inside, _pasted, discover, prim
from sim.cli import cli
from sim.errors import ScenarioError
from sim.study.results import Results
from tests.helpers import BAKERY, ROOT


def known_box(seed: int, n: int = 4000, d: int = 6) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Uniform inputs; cases are 90% likely in x0 >= 0.6 and x2 <= 0.3, 5% elsewhere."""
    rng = np.random.default_rng(seed)
    x = {f"x{i}": rng.random(n) for i in range(d)}
    inside = (x["x0"] >= 0.6) & (x["x2"] <= 0.3)
    return x, np.where(inside, rng.random(n) < 0.9, rng.random(n) < 0.05)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_prim_finds_the_known_box(seed):
    x, y = known_box(seed)
    found = prim(x, y)
    box = found.boxes[0]
    assert set(box.limits) == {"x0", "x2"}, box.limits
    assert box.limits["x0"][0] == pytest.approx(0.6, abs=0.05)
    assert box.limits["x2"][1] == pytest.approx(0.3, abs=0.05)
    # Each parameter is held only at the end that matters: peeling noise at the other is pruned.
    assert box.limits["x0"][1] == x["x0"].max() and box.limits["x2"][0] == x["x2"].min()
    assert box.density > 0.85 and box.coverage > 0.5
    # The trajectory runs from everything towards small dense boxes.
    first, last = box.trajectory[0], box.trajectory[-1]
    assert first.coverage == 1 and first.mass == 1 and first.restricted == 0
    assert first.density == pytest.approx(y.mean())
    assert last.density > first.density and last.mass < 0.2
    # The restrictions that matter are significant; dropping one costs density.
    for r in box.restrictions:
        assert r.qp < 1e-6 and r.density_without < box.density - 0.3


def test_without_pruning_peeling_noise_stays_in_the_box():
    x, y = known_box(3)
    assert len(prim(x, y, prune=0).boxes[0].limits) > len(prim(x, y).boxes[0].limits)


def test_pasting_takes_back_an_edge_peeled_too_far():
    rng = np.random.default_rng(7)
    data = rng.random((4000, 3))
    cases = data[:, 0] > 0.5
    full = np.column_stack([data.min(axis=0), data.max(axis=0)])
    box = full.copy()
    box[0, 0] = 0.6  # a tenth of the cases left outside
    left = np.ones(len(cases), dtype=bool)
    pasted = _pasted(data, cases, left, box, full, ALPHA)
    assert 0.5 < pasted[0, 0] < 0.53  # back to the true edge, within one slice
    assert np.array_equal(pasted[1:], full[1:]) and pasted[0, 1] == full[0, 1]
    assert cases[_inside(data, pasted)].all()  # and no non-case taken in


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rate=st.floats(0.05, 0.95), d=st.integers(1, 4))
def test_pasting_only_widens_and_never_lowers_the_density(seed, rate, d):
    rng = np.random.default_rng(seed)
    data = rng.random((500, d))
    cases = rng.random(500) < rate * (1 + data[:, 0]) / 2
    full = np.column_stack([data.min(axis=0), data.max(axis=0)])
    box = np.sort(rng.uniform(full[:, :1], full[:, 1:], size=(d, 2)), axis=1)
    left = rng.random(500) < 0.9
    pasted = _pasted(data, cases, left, box, full, ALPHA)
    assert np.all(pasted[:, 0] <= box[:, 0]) and np.all(pasted[:, 1] >= box[:, 1])
    before, hits_before, _ = _density(data, cases, left, box)
    after, hits_after, _ = _density(data, cases, left, pasted)
    assert after >= before and hits_after >= hits_before


def test_covering_finds_a_second_box():
    rng = np.random.default_rng(5)
    n = 6000
    x = {f"x{i}": rng.random(n) for i in range(4)}
    one = x["x0"] >= 0.75
    two = (x["x1"] <= 0.2) & (x["x0"] < 0.75)
    y = np.where(one | two, rng.random(n) < 0.9, rng.random(n) < 0.03)
    found = prim(x, y, boxes=2)
    assert [set(b.limits) for b in found.boxes] == [{"x0"}, {"x1"}]
    assert found.boxes[0].limits["x0"][0] == pytest.approx(0.75, abs=0.05)
    assert found.boxes[1].limits["x1"][1] == pytest.approx(0.2, abs=0.05)
    assert sum(b.coverage for b in found.boxes) > 0.8
    assert found.trajectory_table().num_rows == sum(len(b.trajectory) for b in found.boxes)


def test_discrete_parameters_are_peeled_by_whole_values():
    rng = np.random.default_rng(2)
    n = 3000
    x = {"level": rng.integers(0, 4, n).astype(float), "noise": rng.random(n)}
    y = np.where(x["level"] == 3, rng.random(n) < 0.8, rng.random(n) < 0.1)
    box = prim(x, y).boxes[0]
    assert box.limits == {"level": (3.0, 3.0)}


@pytest.mark.parametrize(
    ("y", "message"),
    [(np.zeros(10, bool), "no run of 10"), (np.ones(10, bool), "every run of 10")],
)
def test_nothing_to_discover(y, message):
    with pytest.raises(ScenarioError, match=message):
        prim({"a": np.arange(10.0)}, y)


def synthetic_results(seed: int = 0, n: int = 3000) -> Results:
    """A Results in memory: two sampled parameters, one fixed, two outcomes, a bad run."""
    x, y = known_box(seed, n, d=3)
    status = np.array(["ok"] * n, dtype=object)
    status[7] = "nonfinite"
    manifest: dict[str, Any] = {
        "format_version": 1,
        "complete": True,
        "scenario": {"name": "syn"},
        "scenario_sha256": "0" * 64,
        "seed": 1,
        "sampler": "mc",
        "runs": n,
        "outcomes": {
            "crisis": {"unit": "month", "stat": "count", "of": "c", "description": ""},
            "size": {"unit": "t", "stat": "final", "of": "s", "description": ""},
        },
        "parameters": {
            **{k: {"distribution": "uniform(0, 1)", "unit": "1", "sampled": True} for k in x},
            "fixed": {"distribution": "5", "unit": "t", "sampled": False, "value": 5.0},
        },
    }
    runs = pa.table(
        {
            "run": np.arange(n),
            **x,
            "crisis": np.where(y, 30.0, 3.0),
            "size": x["x1"] * 100,
            "status": status.astype(str),
        }
    )
    return Results(manifest, runs, pa.table({"series": pa.array([], pa.string())}))


def test_discover_reads_where_over_outcomes_and_parameters():
    res = synthetic_results()
    found = discover(res, "crisis > 24")
    assert found.runs == 2999 and found.excluded == 1
    assert set(found.boxes[0].limits) == {"x0", "x2"}
    assert found.source["scenario"] == "syn"
    # Parameters and outcomes mix; a parameter in --where is found as the box.
    both = discover(res, "crisis > 24 and x1 > 0.5 and fixed == 5")
    assert "x1" in both.boxes[0].limits
    only = discover(res, "crisis > 24", parameters=["x0"])
    assert only.parameters == ("x0",) and set(only.boxes[0].limits) == {"x0"}


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("crisiss > 24", "unknown name 'crisiss'; did you mean 'crisis'"),
        ("crisis >", "syntax error"),
        ("__import__('os').system('true')", "only the listed functions may be called"),
        ("crisis.real > 1", "attribute access is not allowed"),
        ("(lambda: 1)()", "only the listed functions may be called"),
        ("lambda: 1", "lambda is not allowed"),
        ("open", "unknown name 'open'"),
        ("t > 3", "calendar"),
        ("crisis > 1000", "no run of"),
        ("crisis + 1", "gives numbers, not true or false"),
    ],
)
def test_bad_where_is_one_clear_error(where, message):
    with pytest.raises(ScenarioError, match=message):
        discover(synthetic_results(), where)


def test_bad_parameter_names_are_refused():
    with pytest.raises(ScenarioError, match="'fixed' is fixed"):
        discover(synthetic_results(), "crisis > 24", parameters=["fixed"])
    with pytest.raises(ScenarioError, match="did you mean 'x1'"):
        discover(synthetic_results(), "crisis > 24", parameters=["x11"])


@pytest.fixture(scope="module")
def bakery_runs(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("discover") / "bakery"
    sim.run(sim.load(BAKERY), runs=600, seed=2, out=out)
    return out


def test_cli_prints_the_box_and_writes_a_folder(bakery_runs, tmp_path):
    out = tmp_path / "d"
    r = CliRunner().invoke(
        cli, ["discover", str(bakery_runs), "--where", "hungry_months > 3", "-o", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert "strike_month" in r.output and "coverage" in r.output and "density" in r.output
    saved = analyses.load(out)
    assert saved.kind == "discover" and saved.png is not None
    assert saved.settings["where"] == "hungry_months > 3"
    assert saved.settings["paste"] is True and "and pasting" in saved.settings["method"]
    assert saved.manifest["scenario"]["results"] == str(bakery_runs)
    assert "trajectory.parquet" in saved.tables
    r = CliRunner().invoke(
        cli,
        [
            "discover",
            str(bakery_runs),
            "--where",
            "hungry_months > 3",
            "-o",
            str(out),
            "--json",
            "--no-paste",
            "--force",  # another analysis (no pasting) replaces the first only when forced
        ],
    )
    assert json.loads(r.output)["boxes"][0]["parameter"] == "strike_month"
    assert analyses.load(out).settings["paste"] is False


def test_cli_bad_where_exits_2(bakery_runs, tmp_path):
    r = CliRunner().invoke(
        cli,
        ["discover", str(bakery_runs), "--where", "hungry_month > 3", "-o", str(tmp_path / "d")],
    )
    assert r.exit_code == 2
    assert "unknown name 'hungry_month'" in r.output and "did you mean 'hungry_months'" in r.output
    r = CliRunner().invoke(cli, ["discover", str(tmp_path / "nope"), "--where", "x > 1"])
    assert r.exit_code == 2 and "no such results folder" in r.output


def test_report_embeds_analysis_folders(bakery_runs, tmp_path):
    found = tmp_path / "found"
    swept = tmp_path / "swept"
    runner = CliRunner()
    assert (
        runner.invoke(
            cli,
            [
                "discover",
                str(bakery_runs),
                "--where",
                "hungry_months > 3 and 1 < 2",
                "-o",
                str(found),
            ],
        ).exit_code
        == 0
    )
    assert (
        runner.invoke(
            cli, ["sweep", str(BAKERY), "--set", "price=400,500", "-n", "30", "-o", str(swept)]
        ).exit_code
        == 0
    )
    page = tmp_path / "only.html"
    r = runner.invoke(cli, ["report", str(found), str(swept), "--out", str(page)])
    assert r.exit_code == 0, r.output
    html = page.read_text()
    assert "Discovery: where hungry_months &gt; 3 and 1 &lt; 2 in bakery" in html
    assert "Sweep: outcomes of bakery against price" in html
    assert html.count("data:image/png;base64,") == 2
    # Beside a comparison of two runs.
    page = tmp_path / "both.html"
    r = runner.invoke(
        cli, ["report", str(bakery_runs), str(bakery_runs), str(found), "--out", str(page)]
    )
    assert r.exit_code == 0, r.output
    html = page.read_text()
    assert "Scenario comparison" in html and "Discovery: where" in html
    # One run is not a comparison; compare refuses an analysis folder.
    r = runner.invoke(cli, ["report", str(bakery_runs), str(found), "--out", str(page)])
    assert r.exit_code == 2 and "or only analysis folders" in r.output
    r = runner.invoke(cli, ["compare", str(bakery_runs), str(found)])
    assert r.exit_code == 2 and "holds a discover analysis" in r.output


def test_an_edited_analysis_folder_is_refused(bakery_runs, tmp_path):
    out = tmp_path / "d"
    CliRunner().invoke(
        cli, ["discover", str(bakery_runs), "--where", "hungry_months > 3", "-o", str(out)]
    )
    with (out / "discover.parquet").open("ab") as fh:
        fh.write(b"x")
    r = CliRunner().invoke(cli, ["report", str(out), "--out", str(tmp_path / "r.html")])
    assert r.exit_code == 2 and "checksum" in r.output


def test_shipped_model_fuel_crisis_box():
    """The issue's done-criterion: the assumption ranges behind a crisis in war_ends. A fuel
    crisis after the war comes first from a settlement that enforces the oil cap."""
    res = sim.run(sim.load(ROOT / "scenarios" / "war_ends.yaml"), runs=1500)
    found = discover(res, "fuel_crisis > 0.5")
    box = found.boxes[0]
    assert box.restrictions[0].parameter == "settlement"
    assert box.limits["settlement"] == (1.0, 1.0)
    assert box.density > 2 * found.base_density


def test_a_one_value_range_is_drawn_as_a_mark_with_one_label(tmp_path):
    """A box that keeps one value of a choice (settlement 1–1) draws a mark and one label,
    not an invisible bar with two labels on top of each other."""
    import yaml

    from sim.present.analysis_figures import discover_figure

    doc = {
        "name": "choice", "start": "2024-01", "months": 3,
        "parameters": {
            "regime": {"dist": "choice", "values": [0, 1], "weights": [0.6, 0.4],
                       "source": "assumption: a test"},
            "other": {"dist": "uniform", "low": 0, "high": 1, "source": "assumption: a test"},
        },
        "stocks": {"src": {"unit": "t", "kind": "source"}, "s": {"unit": "t"}},
        "flows": {"f": {"from": "src", "to": "s", "rate": "regime + 0.01 * other"}},
        "outcomes": {"end": {"of": "s", "stat": "final"}},
    }  # fmt: skip
    path = tmp_path / "choice.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    res = sim.run(sim.load(path), runs=400, seed=1)
    found = discover(res, "end > 1")
    (r,) = [r for r in found.boxes[0].restrictions if r.parameter == "regime"]
    assert r.low == r.high == 1
    fig = discover_figure(found)
    (ranges,) = [
        ax for ax in fig.axes if any(t.get_text() == "regime" for t in ax.get_yticklabels())
    ]
    labels = [t.get_text() for t in ranges.texts]
    assert labels.count("1") == 1, labels
