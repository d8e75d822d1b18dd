"""A study at a step other than a month says the time right: bands and paths carry `t`, the
manifest the step, figures place ticks within their month, and a trace's times are months."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sim.model import Model
from sim.present.figures import _times
from sim.study.runner import run, trace_run
from tests.helpers import scenario


def quarter() -> Model:
    return scenario(
        months=3,
        step=0.25,
        state={"on": 1},
        stocks={"src": {"unit": "t", "kind": "source"}, "sink": {"unit": "t", "kind": "sink"}},
        flows={"f": {"from": "src", "to": "sink", "rate": "4 * on"}},
        events={"stop": {"at": 1.5, "set": {"on": 0}}},
        outcomes={"got": {"of": "sink", "stat": "final"}},
        record=["sink"],
    )


def test_bands_and_paths_carry_t_and_the_month(tmp_path: Path) -> None:
    model = quarter()
    res = run(model, runs=3, seed=1, out=tmp_path / "q", keep_paths=2)
    bands = pq.read_table(tmp_path / "q" / "bands.parquet").to_pydict()
    assert bands["tick"] == list(range(12))
    assert bands["t"] == [k * 0.25 for k in range(12)]
    assert bands["date"][:5] == ["2024-01"] * 4 + ["2024-02"]
    paths = pq.read_table(tmp_path / "q" / "paths.parquet").to_pydict()
    assert paths["t"][:5] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert res.manifest["step"] == 0.25 and res.manifest["ticks"] == 12
    assert res.outcome("got").tolist() == [6.0] * 3  # 4 a month for the first 1.5 months
    when = _times(res.band("sink"))
    assert (np.diff(when.astype("int64")) > 0).all()  # four ticks a month, in order
    assert str(when[2]) == "2024-01-16T12:00"  # half of January's 31 days


def test_a_trace_gives_times_in_months() -> None:
    story = trace_run(quarter(), 0, runs=1)
    stop = next(e for e in story.run.log if e.kind == "event")
    assert stop.tick == 6 and stop.time == 1.5
