"""Results in long ("tidy") form: one row per (series, tick, statistic) of the bands and per
(run, tick, series) of the kept paths, holding exactly the wide tables' numbers."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pytest

import sim
from sim.study.results import QUANTILE_NAMES
from tests.helpers import BAKERY


@pytest.fixture(scope="module")
def res() -> sim.Results:
    return sim.run(sim.load(BAKERY), runs=60, seed=2, keep_paths=4)


def test_long_bands_hold_every_band_number_once(res: sim.Results) -> None:
    long = res.long_bands()
    assert long.column_names == ["tick", "date", "series", "statistic", "value"]
    statistics = ["mean", *QUANTILE_NAMES]
    assert long.num_rows == res.bands.num_rows * len(statistics)
    for series in res.series_names:
        band = res.band(series)
        for stat in statistics:
            rows = long.filter(
                pc.and_(pc.equal(long["series"], series), pc.equal(long["statistic"], stat))
            )
            assert rows["tick"].to_pylist() == band["tick"].tolist()
            assert rows["date"].to_pylist() == band["date"].tolist()
            np.testing.assert_array_equal(rows["value"].to_numpy(), band[stat])


def test_long_paths_hold_every_kept_value_once(res: sim.Results) -> None:
    long = res.long_paths()
    assert long.column_names == ["run", "tick", "date", "series", "value"]
    assert res.paths is not None
    assert long.num_rows == res.paths.num_rows * len(res.series_names)
    for series in res.series_names:
        rows = long.filter(pc.equal(long["series"], series))
        np.testing.assert_array_equal(rows["value"].to_numpy(), res.paths[series].to_numpy())
        assert rows["run"].to_pylist() == res.paths["run"].to_pylist()


def test_no_kept_paths_is_an_empty_table_of_the_same_shape() -> None:
    res = sim.run(sim.load(BAKERY), runs=20, seed=2)
    long = res.long_paths()
    assert long.num_rows == 0
    assert long.column_names == ["run", "tick", "date", "series", "value"]


def test_to_pandas_names_its_tables(res: sim.Results) -> None:
    pytest.importorskip("pandas")
    assert len(res.to_pandas()) == res.n_runs
    assert list(res.to_pandas("bands").columns) == ["tick", "date", "series", "statistic", "value"]
    assert len(res.to_pandas("paths")) == res.long_paths().num_rows
    with pytest.raises(ValueError, match="runs, bands, paths"):
        res.to_pandas("band")
