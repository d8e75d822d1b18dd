"""`Results`: one scenario's runs, bands and manifest, in memory or loaded from a folder."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sim.engine.semantics import STATUS_OK
from sim.errors import ResultsError
from sim.study.store import check_folder, read_manifest

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)  # a series' bands, a sweep point's spread
QUANTILE_NAMES = tuple(f"p{round(100 * q):02d}" for q in QUANTILES)  # p05 ... p95: their columns
STATUS_COLUMNS = ("status", "bad_tick", "bad_name")


@dataclass(frozen=True)
class OutcomeSummary:
    """One outcome over all runs: centre, spread, and how sure the mean is."""

    name: str
    unit: str
    stat: str
    mean: float
    sd: float
    mcse: float  # Monte Carlo standard error of the mean
    p05: float
    p50: float
    p95: float
    n: int  # runs with a value (a `first` outcome is empty when it never happened)
    empty: int
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key, value in out.items():
            if isinstance(value, float) and not np.isfinite(value):
                out[key] = None
        return out


def mean_sd(x: np.ndarray) -> tuple[float, float]:
    """Mean and sample sd (ddof=1; 0 for one value) of finite `x`, finite whenever they are
    representable: values near 1e300 overflow a plain sum or square, so then they are summed
    scaled by a power of two (exact), and only the final numbers may be infinite."""
    with np.errstate(all="ignore"):
        mean = float(np.mean(x))
        sd = float(np.std(x, ddof=1)) if len(x) > 1 else 0.0
        if not (np.isfinite(mean) and np.isfinite(sd)):
            scale = 2.0 ** int(np.frexp(np.max(np.abs(x)))[1])
            y = x / scale
            mean = float(np.mean(y) * scale)
            sd = float(np.std(y, ddof=1) * scale) if len(x) > 1 else 0.0
    if len(x) > 1 and np.all(x == x[0]):
        sd = 0.0  # a constant outcome: no spread, whatever the rounding of its mean says
    return mean, sd


class Results:
    """A finished study of one scenario.

    >>> import sim
    >>> res = sim.run(sim.load("examples/bakery.yaml"), runs=200, seed=1)
    >>> round(float(res.outcome("bread_eaten").mean()))  # doctest: +SKIP
    2172
    """

    def __init__(
        self,
        manifest: dict[str, Any],
        runs: pa.Table | None,
        bands: pa.Table,
        paths: pa.Table | None = None,
        folder: Path | None = None,
    ):
        if runs is None and folder is None:
            raise ValueError("Results needs its runs or the folder that holds them")
        self.manifest = manifest
        self._runs = runs
        self.bands = bands
        self.paths = paths
        self.folder = folder

    @property
    def runs(self) -> pa.Table:
        """A row per run; read from the folder on first use (a million runs is big)."""
        if self._runs is None:
            self._runs = self._read("runs.parquet")
        return self._runs

    def _read(self, name: str, columns: list[str] | None = None) -> pa.Table:
        assert self.folder is not None
        try:
            return pq.read_table(self.folder / name, columns=columns)
        except (OSError, pa.ArrowException) as exc:
            raise ResultsError(f"{self.folder}: cannot read {name} ({exc})") from None

    def _column(self, name: str) -> np.ndarray:
        table = self._runs if self._runs is not None else self._read("runs.parquet", [name])
        return table.column(name).to_numpy(zero_copy_only=False)

    # -- loading -----------------------------------------------------------------------
    @classmethod
    def load(cls, folder: str | Path) -> Results:
        """Read a results folder written by `sim run`, verifying it is complete and intact."""
        folder = Path(folder)
        manifest = read_manifest(folder)
        check_folder(folder, manifest)
        try:
            bands = pq.read_table(folder / "bands.parquet")
            paths_file = folder / "paths.parquet"
            paths = pq.read_table(paths_file) if paths_file.is_file() else None
        except (OSError, pa.ArrowException) as exc:
            raise ResultsError(f"{folder}: cannot read results ({exc})") from None
        return cls(manifest, None, bands, paths, folder)

    # -- what is in it -----------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.manifest["scenario"]["name"])

    @property
    def description(self) -> str:
        return str(self.manifest["scenario"].get("description") or "")

    @property
    def seed(self) -> int:
        return int(self.manifest["seed"])

    @property
    def sampler(self) -> str:
        return str(self.manifest["sampler"])

    @property
    def n_runs(self) -> int:
        return int(self.manifest["runs"])

    @property
    def outcomes(self) -> dict[str, dict[str, Any]]:
        """Outcome name -> {unit, stat, description}, in scenario order."""
        return dict(self.manifest["outcomes"])

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        """Parameter name -> {distribution, unit, source, sampled}."""
        return dict(self.manifest["parameters"])

    def outcome(self, name: str) -> np.ndarray:
        """One value per run (NaN where a `first` outcome never happened)."""
        if name not in self.outcomes:
            from sim.errors import did_you_mean

            hint = did_you_mean(name, self.outcomes)
            raise KeyError(f"no outcome '{name}' in {self.name}" + (f"; {hint}" if hint else ""))
        return self._column(name).astype(float)

    def parameter(self, name: str) -> np.ndarray:
        """The parameter's value in each run (fixed parameters repeat their value)."""
        if name in self.parameters and self.parameters[name].get("sampled"):
            return self._column(name).astype(float)
        if name in self.parameters:
            return np.full(self.n_runs, float(self.parameters[name]["value"]))
        raise KeyError(f"no parameter '{name}' in {self.name}")

    @property
    def status(self) -> np.ndarray:
        return self._column("status")

    @property
    def nonfinite(self) -> dict[str, Any]:
        """Runs whose numbers went non-finite: {runs, by_name: culprit -> runs, first: {run,
        tick, name} or None}. The batch went on; those runs' status is "nonfinite"."""
        if "nonfinite" in self.manifest:
            return dict(self.manifest["nonfinite"])
        status = self.status
        bad = np.flatnonzero(status != STATUS_OK)
        names = self._column("bad_name")[bad]
        counts: dict[str, int] = {}
        for n in names:
            counts[str(n)] = counts.get(str(n), 0) + 1
        first = None
        if bad.size:
            k = int(bad[0])
            first = {
                "run": int(self._column("run")[k]),
                "tick": int(self._column("bad_tick")[k]),
                "name": str(names[0]),
            }
        by_name = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
        return {"runs": int(bad.size), "by_name": by_name, "first": first}

    def band(self, series: str) -> dict[str, np.ndarray]:
        """Per-tick mean and quantiles of a recorded series: keys tick, date, mean, p05..p95."""
        mask = pc.equal(self.bands.column("series"), series)
        sub = self.bands.filter(mask)
        if sub.num_rows == 0:
            raise KeyError(f"no recorded series '{series}' in {self.name}")
        return {
            c: sub.column(c).to_numpy(zero_copy_only=False)
            for c in sub.column_names
            if c != "series"
        }

    @property
    def series_names(self) -> list[str]:
        return list(self.manifest.get("record", []))

    def summary(self, names: Iterable[str] | None = None) -> list[OutcomeSummary]:
        """Mean, sd, Monte Carlo standard error and p05/p50/p95 of every outcome (or of
        those in `names`, in the results' order)."""
        rows = []
        wanted = None if names is None else set(names)
        for name, info in self.outcomes.items():
            if wanted is not None and name not in wanted:
                continue
            x = self.outcome(name)
            finite = x[np.isfinite(x)]
            n = len(finite)
            if n:
                mean, sd = mean_sd(finite)
                p05, p50, p95 = (float(q) for q in np.quantile(finite, [0.05, 0.5, 0.95]))
            else:
                mean = sd = p05 = p50 = p95 = float("nan")
            rows.append(
                OutcomeSummary(
                    name,
                    info["unit"],
                    info["stat"],
                    mean,
                    sd,
                    float(sd / np.sqrt(n)) if n else float("nan"),
                    p05,
                    p50,
                    p95,
                    n,
                    len(x) - n,
                    info.get("description") or "",
                )
            )
        return rows

    def long_bands(self) -> pa.Table:
        """The bands in long ("tidy") form: a row per (series, tick, statistic), with the
        tick's time columns (tick, date), `series`, `statistic` (mean, p05 ... p95) and
        `value` — the shape a plotting library or a groupby wants."""
        return _longer(self.bands, ["series"], ["mean", *QUANTILE_NAMES], "statistic")

    def long_paths(self) -> pa.Table:
        """The kept paths (`--keep-paths`) in long form: a row per (run, tick, series), with
        run, the tick's time columns, `series` and `value`. Empty when none were kept."""
        if self.paths is None:
            return _longer(_NO_PATHS, ["run"], [], "series")
        keys = [c for c in self.paths.column_names if c in _PATH_KEYS]
        values = [c for c in self.paths.column_names if c not in _PATH_KEYS]
        return _longer(self.paths, keys, values, "series")

    def to_pandas(self, table: str = "runs") -> Any:
        """A pandas DataFrame (needs pandas installed) of `table`: "runs" (a row per run, as
        runs.parquet), "bands" (`long_bands`) or "paths" (`long_paths`)."""
        tables = {"runs": lambda: self.runs, "bands": self.long_bands, "paths": self.long_paths}
        if table not in tables:
            raise ValueError(f"table must be one of {', '.join(tables)} (got {table!r})")
        try:
            import pandas  # noqa: F401  (pyarrow's to_pandas needs it; say so plainly)
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("to_pandas() needs pandas: pip install pandas") from exc
        return tables[table]().to_pandas()

    def __repr__(self) -> str:
        where = f" at {self.folder}" if self.folder else ""
        return f"<Results {self.name}: {self.n_runs} runs, seed {self.seed}, {self.sampler}{where}>"


# Columns of paths.parquet that say which run and when; every other column is a series.
_PATH_KEYS = ("run", "tick", "date", "t")
_NO_PATHS = pa.table(
    {
        "run": pa.array([], pa.int64()),
        "tick": pa.array([], pa.int64()),
        "date": pa.array([], pa.string()),
    }
)


def _longer(table: pa.Table, keys: list[str], values: list[str], name: str) -> pa.Table:
    """`table` unpivoted: a row per (row of `table`, column in `values`), holding `keys`, the
    other non-value columns (the time: tick, date), `name` = the value column's name and
    `value`. Columns in the order run, time, keys, name, value."""
    time = [c for c in table.column_names if c not in values and c not in keys]
    lead = [k for k in keys if k == "run"]
    order = lead + time + [k for k in keys if k not in lead] + [name, "value"]
    pieces = []
    for column in values:
        piece = {k: table.column(k) for k in [*keys, *time]}
        piece[name] = pa.array([column] * table.num_rows, pa.string())
        piece["value"] = table.column(column).cast(pa.float64())
        pieces.append(pa.table(piece).select(order))
    if not pieces:
        empty = {k: table.column(k) for k in [*keys, *time]}
        empty[name] = pa.array([], pa.string())
        empty["value"] = pa.array([], pa.float64())
        return pa.table(empty).slice(0, 0).select(order)
    return pa.concat_tables(pieces)
