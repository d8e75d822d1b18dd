"""What a `manifest.json` may hold, and reading one that may have been damaged or forged.

Every reader of a results folder (`Results.load`, compare, report, discover, `--resume`) and
of an analysis folder (`sim.analysis.saved.load`) goes through here before it trusts a
field: the file is parsed with bounds (size, nesting, no NaN or infinities: Python's json
module recurses, so a deeply nested file would otherwise end in RecursionError), checked
against a schema (pydantic), and, for finished results, against the Parquet files it
describes (`check_data`: the row count is `runs`, every outcome and sampled parameter has its
column). Each problem is one `ResultsError` naming the folder and the field.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "manifest.json").write_text('{"a": [[[1]]]}')
    >>> read_json(folder / "manifest.json", folder)
    {'a': [[[1]]]}
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sim.errors import ResultsError

ANALYSIS_FORMAT = 1  # sim.analysis.saved writes this version
MAX_BYTES = 64 * 2**20  # a manifest holds the resolved scenario: large models stay far below
MAX_DEPTH = 64  # nesting of a resolved scenario is a dozen levels at most
MAX_RUNS = 2**53  # beyond, run indices are no longer exact as doubles
RUNS_TABLE_COLUMNS = ("run", "status", "bad_tick", "bad_name")
BANDS_COLUMNS = ("series", "tick", "date", "mean", "p05", "p25", "p50", "p75", "p95")
RUN_DATA_FILES = ("runs.parquet", "bands.parquet", "paths.parquet")
POSTERIOR_SAMPLE = "posterior_sample"  # runs.parquet's column: the posterior row run i took

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_FILE_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"  # a file of the folder itself: no '/', no '..'
_SHA256 = r"^[0-9a-f]{64}$"


def read_json(path: Path, folder: Path) -> Any:
    """Parse `path` as JSON within bounds; a ResultsError naming `folder` if it can't be."""
    where = f"{folder}: {path.name}"
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ResultsError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    if len(raw) > MAX_BYTES:
        raise ResultsError(f"{where}: damaged manifest (larger than {MAX_BYTES // 2**20} MiB)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{where}: damaged manifest (not UTF-8: {exc.reason})") from None
    depth = deepest = 0
    for bracket in _BRACKETS.finditer(_STRINGS.sub('""', text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_DEPTH:
                raise ResultsError(
                    f"{where}: damaged manifest (nested deeper than {MAX_DEPTH} levels)"
                )
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise ResultsError(f"{where}: damaged manifest ({exc})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


# -- the schema ------------------------------------------------------------------------------

Name = Annotated[str, Field(min_length=1)]
Count = Annotated[int, Field(ge=0, le=MAX_RUNS)]
Number = Annotated[float, Field(allow_inf_nan=False)]
FileName = Annotated[str, Field(pattern=_FILE_NAME)]
Sha256 = Annotated[str, Field(pattern=_SHA256)]


class _Part(BaseModel):
    # Strict: a number where text belongs (or 1e999 where a count belongs) is damage, not
    # something to coerce. Extra keys are allowed: newer sims may note more.
    model_config = ConfigDict(strict=True, extra="allow")


class ScenarioInfo(_Part):
    name: Name
    description: str | None = None
    stocks: dict[str, dict[str, Any]] = Field(default_factory=dict)
    flows: dict[str, dict[str, Any]] = Field(default_factory=dict)


class OutcomeInfo(_Part):
    unit: str
    stat: Name
    of: str = ""
    description: str | None = ""


class ParameterInfo(_Part):
    distribution: str
    unit: str
    source: str | None = ""
    sampled: bool
    value: Number | None = None

    @model_validator(mode="after")
    def _fixed_has_value(self) -> ParameterInfo:
        if not self.sampled and self.value is None:
            raise ValueError("a fixed parameter needs its value")
        return self


class FirstBad(_Part):
    run: Count
    tick: int
    name: str


class NonFinite(_Part):
    runs: Count
    by_name: dict[str, Count]
    first: FirstBad | None = None


class DataInfo(_Part):
    file: str
    sha256: Sha256


class PosteriorInfo(_Part):
    """The calibration a study drew parameters from (`sim run --posterior`)."""

    folder: str
    sha256: Sha256
    samples: Annotated[int, Field(ge=1)] | None = None
    parameters: list[Name]
    drawn_as_usual: list[Name] = Field(default_factory=list)
    observations: dict[str, dict[str, Any]] = Field(default_factory=dict)
    method: dict[str, Any] = Field(default_factory=dict)
    ess: Number | None = None
    scenario: dict[str, Any] = Field(default_factory=dict)


class RunManifest(_Part):
    """A `sim run` folder's manifest, as `sim.study.runner` writes it (partial while running)."""

    format_version: int
    complete: bool
    scenario: ScenarioInfo
    scenario_sha256: Sha256
    files: list[str] = Field(default_factory=list)
    seed: Count
    sampler: Name
    runs: Annotated[int, Field(ge=1, le=MAX_RUNS)]
    engine: Name = "kernel"
    block_size: Annotated[int, Field(ge=1, le=MAX_RUNS)] | None = None
    blocks_total: Count | None = None
    blocks_done: Count | None = None
    study: dict[str, Any] = Field(default_factory=dict)
    ticks: Annotated[int, Field(ge=1)] | None = None
    outcomes: dict[str, OutcomeInfo]
    parameters: dict[str, ParameterInfo]
    record: list[Name] = Field(default_factory=list)
    bands: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    nonfinite_runs: Count | None = None
    nonfinite: NonFinite | None = None
    wall_seconds: Number | None = None
    precision: dict[str, Any] | None = None
    posterior: PosteriorInfo | None = None
    sha256: dict[FileName, Sha256] = Field(default_factory=dict)
    step: Annotated[float, Field(gt=0)] | None = None  # months per tick, when not 1
    data: dict[str, DataInfo] | None = None  # each data series' file, as it was read

    @model_validator(mode="after")
    def _complete_lists_its_files(self) -> RunManifest:
        unknown = sorted(set(self.sha256) - set(RUN_DATA_FILES))
        if unknown:
            raise ValueError(f"sha256 lists {', '.join(unknown)}, which no sim run writes")
        if self.complete:
            missing = [n for n in ("runs.parquet", "bands.parquet") if n not in self.sha256]
            if missing:
                raise ValueError(f"complete, but sha256 lacks {', '.join(missing)}")
        return self


class AnalysisManifest(_Part):
    """A `sim sensitivity` / `sweep` / `discover` folder's manifest (`sim.analysis.saved`)."""

    analysis_format: int
    kind: Name
    complete: bool
    scenario: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    files: list[FileName] = Field(default_factory=list)
    sha256: dict[FileName, Sha256] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    finished: str | None = None
    wall_seconds: Number | None = None


def is_analysis(data: dict[str, Any]) -> bool:
    return "analysis_format" in data or "kind" in data


def validate(folder: Path, data: Any, run_format: int, analysis_format: int) -> dict[str, Any]:
    """`data` (a parsed manifest) if it fits its schema; else a ResultsError naming the field.

    A manifest of another format version is passed through unchecked: its reader says
    which version it is, which says more than a list of fields that changed."""
    if not isinstance(data, dict):
        raise ResultsError(f"{folder}: manifest.json: damaged manifest (not a JSON object)")
    if is_analysis(data):
        schema: type[_Part] = AnalysisManifest
        if data.get("analysis_format") != analysis_format:
            return data
    else:
        schema = RunManifest
        if data.get("format_version") != run_format:
            return data
    try:
        schema.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise ResultsError(
            f"{folder}: manifest.json: {field}: {_plain(error)}{more}; the manifest is damaged "
            "or was edited"
        ) from None
    return data


def _plain(error: Any) -> str:
    message = str(error["msg"])
    if error["type"] == "missing":
        return "missing"
    if error["type"] in ("int_type", "float_type", "string_type", "bool_type", "dict_type"):
        return f"{message} (found {_shown(error.get('input'))})"
    return message.removeprefix("Value error, ")


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_data(folder: Path, manifest: dict[str, Any]) -> None:
    """Refuse a finished run folder whose Parquet files don't hold what its manifest says.

    Reads only the files' footers (row counts and column names), not their data."""
    runs = _footer(folder, "runs.parquet")
    if runs.num_rows != manifest["runs"]:
        raise ResultsError(
            f"{folder}: manifest.json: runs: says {manifest['runs']:,} runs, but runs.parquet "
            f"holds {runs.num_rows:,}; the manifest was edited"
        )
    sampled = [n for n, p in manifest["parameters"].items() if p.get("sampled")]
    wanted = [*RUNS_TABLE_COLUMNS, *manifest["outcomes"], *sampled]
    if manifest.get("posterior") is not None:
        wanted.append(POSTERIOR_SAMPLE)
    missing = [c for c in wanted if c not in runs.schema.names]
    if missing:
        raise ResultsError(
            f"{folder}: runs.parquet has no column {', '.join(missing)} "
            "(named in manifest.json: outcomes, parameters); the manifest was edited"
        )
    bands = _footer(folder, "bands.parquet")
    missing = [c for c in BANDS_COLUMNS if c not in bands.schema.names]
    if missing:
        raise ResultsError(f"{folder}: bands.parquet has no column {', '.join(missing)}")


def _footer(folder: Path, name: str) -> pq.FileMetaData:
    try:
        with pq.ParquetFile(folder / name) as file:
            return file.metadata
    except (OSError, pa.ArrowException) as exc:
        raise ResultsError(f"{folder}: cannot read {name} ({exc})") from None
