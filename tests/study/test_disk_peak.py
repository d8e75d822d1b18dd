"""The pre-run disk check sizes the results folder at its peak: every block's parts (kept
until the study ends) plus the finished files, measured here on real runs."""

from __future__ import annotations

from pathlib import Path

import pytest

import sim
from sim.errors import ScenarioError
from sim.study import guards, runner, store
from tests.helpers import BAKERY, scenario

WIDE = dict(  # no recorded series, many outcomes: the rows are the parts
    parameters={
        f"p{k}": {"dist": "uniform", "low": 0, "high": 1, "unit": "t", "source": "s"}
        for k in range(6)
    },
    stocks={"a": {"unit": "t", "initial": 100}, "b": {"unit": "t", "kind": "sink"}},
    flows={"f": {"from": "a", "to": "b", "rate": "p0 + p1 + p2"}},
    outcomes={f"o{k}": {"of": f"b * p{k % 6}", "stat": "final", "unit": "t"} for k in range(12)},
)


def measured_peak(monkeypatch: pytest.MonkeyPatch, model, tmp: Path, **settings) -> int:
    peak = {}
    real = store.finish_folder

    def finish(folder: Path) -> None:  # the moment before parts are removed: the largest
        peak["bytes"] = guards.folder_bytes(folder)
        real(folder)

    monkeypatch.setattr(store, "finish_folder", finish)
    sim.run(model, out=tmp / "r", workers=1, **settings)
    monkeypatch.undo()
    return peak["bytes"]


@pytest.mark.parametrize(
    "which, runs, block, keep_paths",
    [
        ("bakery", 6000, 500, 0),
        ("bakery", 3000, 256, 40),
        ("bakery", 5000, 5000, 0),
        ("wide", 8000, 1000, 0),
    ],
)
def test_the_estimate_covers_the_measured_peak(
    monkeypatch, tmp_path, which, runs, block, keep_paths
):
    model = sim.load(BAKERY) if which == "bakery" else scenario(**WIDE)
    peak = measured_peak(
        monkeypatch, model, tmp_path, runs=runs, block_size=block, keep_paths=keep_paths
    )
    p = runner.plan(model, runs, block_size=block, keep_paths=keep_paths)
    est = guards.estimate(model, runs, block, 1, p.kept, p.keep_paths)
    final = guards.folder_bytes(tmp_path / "r")
    assert est.output_bytes < peak  # what the check sized before: the finished files only
    assert final < peak
    assert peak <= est.disk_bytes <= 2 * peak, (peak, est.disk_bytes)


def test_a_disk_with_room_for_the_results_but_not_the_parts_is_refused(monkeypatch, tmp_path):
    model = sim.load(BAKERY)
    est = guards.estimate(model, 20_000, 1000, 1, 20_000, 0)
    monkeypatch.setattr(guards, "free_space", lambda folder: est.output_bytes * 2)
    with pytest.raises(ScenarioError, match="at its peak"):
        guards.check(est, tmp_path, None)
    # Parts already on disk (a resume) count as room: they are part of the peak.
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "runs-000000.arrow").write_bytes(b"\0" * est.parts_bytes)
    guards.check(est, tmp_path, None)
