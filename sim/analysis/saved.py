"""Analysis folders: where `sim sensitivity`, `sweep`, `discover` and `drivers` leave their results.

A folder per analysis, like a run's (default `results/<scenario>-<kind>-<what>/`):

    manifest.json       kind (sensitivity | sweep | discover | drivers), the scenario (name, sha256,
                        files), the settings, package versions, timing, sha256 of each file;
                        `complete: true` only once every file it lists is in place
    <kind>.parquet      the main table: ranked indices | outcome spread per value | boxes |
                        ranked given-data indices
    sweep_runs.parquet  (sweep) every run's outcomes at every value, run i the same world
    trajectory.parquet  (discover) every box on every peeling trajectory
    <kind>.png          the figure
    study/              (sensitivity, sweep) the study the analysis ran: a run's folder
                        (manifest.json, runs.parquet of every run), which --resume finishes
    baseline_study/     (sensitivity --baseline) the baseline scenario's study, same design

Files are written atomically (`sim.study.store.write_table` / `write_json`), the manifest last.
`load` reads a folder back, checking it is complete and unaltered; `sim report` embeds it (all
kinds but drivers, which has no report section yet: `load` refuses it unless asked for).

An analysis never silently replaces a different one: the manifest records its `identity` (what
was asked for, and the hashes of what it read: the scenario, or a results folder's runs), and
`check_target` refuses a folder holding another analysis of the same kind unless forced. A
saved analysis whose input has changed since is `stale`, and the report leaves it out.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sim.analysis.discover import Discovery
from sim.analysis.drivers import Drivers
from sim.analysis.sensitivity import BASELINE_STUDY as BASELINE_STUDY  # its baseline's study
from sim.analysis.sensitivity import Sensitivity
from sim.analysis.sweep import Sweep
from sim.errors import ResultsError, ScenarioError
from sim.model import Model
from sim.model import load as load_model
from sim.study import store
from sim.study.manifest import ANALYSIS_FORMAT
from sim.study.provenance import scenario_sha256

KINDS = ("sensitivity", "sweep", "discover", "drivers")
REPORTED = KINDS  # the kinds `sim report` has a section for (all of them)
FORMAT_VERSION = ANALYSIS_FORMAT
Analysis = Sensitivity | Sweep | Discovery | Drivers


STUDY = "study"  # the subfolder holding the runs of a sensitivity or sweep study


def sensitivity_folder(scenario: str, outcomes: Sequence[str], baseline: str = "") -> Path:
    """results/<scenario>[-vs-<baseline>]-sensitivity[-<outcome>] (the outcome when there
    is one)."""
    what = outcomes[0] if len(outcomes) == 1 else ""
    who = f"{scenario}-vs-{baseline}" if baseline else scenario
    return Path("results") / "-".join(p for p in (who, "sensitivity", what) if p)


def sweep_folder(scenario: str, parameter: str, by: str = "") -> Path:
    """results/<scenario>-sweep-<parameter>[-by-<parameter>]."""
    return Path("results") / f"{scenario}-sweep-{parameter}{f'-by-{by}' if by else ''}"


def drivers_folder(scenario: str, outcomes: Sequence[str], baseline: str = "") -> Path:
    """results/<scenario>[-vs-<baseline>]-drivers[-<outcome>] (the outcome when there is
    one)."""
    what = outcomes[0] if len(outcomes) == 1 else ""
    who = f"{scenario}-vs-{baseline}" if baseline else scenario
    return Path("results") / "-".join(p for p in (who, "drivers", what) if p)


def default_folder(result: Analysis) -> Path:
    """results/<scenario>-sensitivity-<outcome>, -sweep-<parameter>[-by-<parameter>],
    -discover, or -drivers-<outcome>."""
    if isinstance(result, Drivers):
        return drivers_folder(result.scenario, result.outcomes, result.baseline)
    if isinstance(result, Sensitivity):
        return sensitivity_folder(result.scenario, result.outcomes, result.baseline)
    if isinstance(result, Sweep):
        return sweep_folder(result.scenario, result.parameter, result.by)
    return Path("results") / f"{result.scenario}-discover"


def names(kind: str) -> list[str]:
    """The files an analysis of this kind writes (and clears) in its folder."""
    stems = {
        "sensitivity": ("sensitivity",),
        "sweep": ("sweep", "sweep_runs"),
        "discover": ("discover", "trajectory"),
        "drivers": ("drivers",),
    }
    return [f"{stem}.parquet" for stem in stems[kind]] + [f"{kind}.png"]


def tables(result: Analysis) -> dict[str, pa.Table]:
    """Each table an analysis writes, by file name."""
    if isinstance(result, Sensitivity):
        return {"sensitivity.parquet": result.table()}
    if isinstance(result, Drivers):
        return {"drivers.parquet": result.table()}
    if isinstance(result, Sweep):
        return {"sweep.parquet": result.table(), "sweep_runs.parquet": result.run_table()}
    return {"discover.parquet": result.table(), "trajectory.parquet": result.trajectory_table()}


def save(
    result: Analysis,
    folder: str | Path,
    png: bytes | None = None,
    model: Model | None = None,
    wall_seconds: float | None = None,
    force: bool = False,
    identity: dict[str, Any] | None = None,
) -> Path:
    """Write `result`'s folder: its tables, the figure (PNG bytes) and the manifest, last.

    `identity` (from `identity()`) is recorded, so that a later analysis of another study is
    refused this folder unless forced."""
    folder = Path(folder)
    _prepare(folder, result.kind, force, identity)
    files = tables(result)
    for name, table in files.items():
        store.write_table(table, folder / name)
    written = list(files)
    if png is not None:
        store.write_bytes(png, folder / f"{result.kind}.png")
        written.append(f"{result.kind}.png")
    manifest = {
        "analysis_format": FORMAT_VERSION,
        "kind": result.kind,
        "complete": True,
        "scenario": _scenario(result, model),
        "settings": result.settings(),
        "files": written,
        "sha256": {name: store.sha256_file(folder / name) for name in written},
        "versions": store.versions(),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "wall_seconds": None if wall_seconds is None else round(wall_seconds, 3),
        **({"identity": identity} if identity is not None else {}),
    }
    store.write_json(manifest, folder / store.MANIFEST)
    return folder


@dataclass(frozen=True)
class Saved:
    """An analysis folder read back: its manifest, tables and figure."""

    folder: Path
    manifest: dict[str, Any]
    tables: dict[str, pa.Table]
    png: bytes | None

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.manifest.get("settings", {}))

    @property
    def scenario(self) -> str:
        return str(self.manifest.get("scenario", {}).get("name", "?"))

    @property
    def table(self) -> pa.Table:
        """The main table (`<kind>.parquet`)."""
        return self.tables[f"{self.kind}.parquet"]


def kind_of(folder: str | Path) -> str | None:
    """The analysis kind a folder holds, or None (a run's folder, or not a folder at all)."""
    try:
        manifest = store.read_manifest(Path(folder))
    except ResultsError:
        return None
    kind = manifest.get("kind")
    return kind if kind in KINDS else None


def load(folder: str | Path, kinds: Sequence[str] = REPORTED) -> Saved:
    """Read an analysis folder, refusing one that is incomplete, altered or not an analysis.

    `kinds` are the kinds accepted: by default those `sim report` has a section for; a
    drivers analysis (`sim drivers`) is read with `kinds=KINDS`."""
    folder = Path(folder)
    manifest = store.read_manifest(folder)
    kind = manifest.get("kind")
    if kind not in KINDS:
        raise ResultsError(
            f"{folder}: not an analysis folder (written by `sim run`, not by sim "
            f"{' / '.join(KINDS)})"
        )
    if kind not in kinds:
        raise ResultsError(
            f"{folder}: a {kind} analysis; `sim report` does not show {kind} analyses yet "
            f"(its table is {kind}.parquet, its figure {kind}.png)"
        )
    if manifest.get("analysis_format") != FORMAT_VERSION:
        raise ResultsError(
            f"{folder}: analysis format {manifest.get('analysis_format')!r}; "
            f"this sim reads {FORMAT_VERSION}"
        )
    if not manifest.get("complete"):
        raise ResultsError(f"{folder}: incomplete analysis; run it again")
    for name, expected in manifest.get("sha256", {}).items():
        path = folder / name
        if not path.is_file():
            raise ResultsError(f"{folder}: {name} is missing")
        if store.sha256_file(path) != expected:
            raise ResultsError(
                f"{folder}: {name} does not match its checksum in {store.MANIFEST} "
                "(edited or truncated)"
            )
    read: dict[str, pa.Table] = {}
    png = None
    for name in manifest.get("files", []):
        try:
            if name.endswith(".parquet"):
                read[name] = pq.read_table(folder / name)
            elif name.endswith(".png"):
                png = (folder / name).read_bytes()
        except (OSError, pa.ArrowException) as exc:
            raise ResultsError(f"{folder}: cannot read {name} ({exc})") from None
    if f"{kind}.parquet" not in read:
        raise ResultsError(f"{folder}: {kind}.parquet is missing")
    return Saved(folder, manifest, read, png)


# -- helpers ------------------------------------------------------------------------------

_OURS = ("sensitivity", "sweep", "sweep_runs", "discover", "trajectory", "drivers")


def check_target(
    folder: Path, kind: str, force: bool, identity: dict[str, Any] | None = None
) -> None:
    """Refuse to write a `kind` analysis over a run's results, unrelated files, another kind
    of analysis, or (given its `identity`) another analysis of this kind, unless `force`. Its
    own study subfolder, left by an interrupted analysis, is its own."""
    if folder.exists() and not folder.is_dir():
        raise ResultsError(f"{folder}: exists and is not a folder")
    own = (STUDY, BASELINE_STUDY)
    held = [p for p in folder.iterdir() if p.name not in own] if folder.is_dir() else []
    if held and not force:
        other = kind_of(folder)
        if other is None:
            what = (
                "a run's results"
                if (folder / store.MANIFEST).is_file()
                else "files that are not sim results"
            )
            raise ResultsError(
                f"{folder} holds {what}; choose another --out or pass --force to write there"
            )
        if other != kind:
            raise ResultsError(
                f"{folder} holds a {other} analysis, not a {kind} one; choose another --out "
                "or pass --force to replace it"
            )
        theirs = store.read_manifest(folder).get("identity")
        if identity is not None and isinstance(theirs, dict) and theirs != identity:
            raise ResultsError(
                f"{folder} holds another {kind} analysis ({_differences(theirs, identity)}); "
                "choose another --out to keep both, or pass --force to replace it"
            )


def identity(kind: str, **request: Any) -> dict[str, Any]:
    """What tells an analysis from another of its kind: what it was asked, what it read.

    `request` holds the settings that change its numbers (outcomes, runs, seed, the --where
    condition, ...) and the sha256 of its inputs (the scenario; for discover, the results'
    runs.parquet). Plain JSON data, so it compares equal to itself read back."""
    return json.loads(json.dumps({"kind": kind, **dict(sorted(request.items()))}))


def _differences(theirs: dict[str, Any], ours: dict[str, Any]) -> str:
    def shown(value: Any) -> str:
        if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value):
            return value[:12] + "…"  # a hash: its start tells two apart
        return json.dumps(value, ensure_ascii=False)

    keys = [k for k in dict.fromkeys([*ours, *theirs]) if theirs.get(k) != ours.get(k)]
    return "; ".join(f"{k} {shown(theirs.get(k))} there, {shown(ours.get(k))} now" for k in keys)


def stale(saved: Saved, results: Sequence[Any] = ()) -> str | None:
    """Why a saved analysis no longer describes its input, or None if nothing says so.

    Stale when a compared result of the same scenario ran another version of it, when the
    results folder a discovery searched has been run again since (its runs.parquet changed),
    or when the scenario file a sensitivity or sweep ran has changed since."""
    recorded = saved.manifest.get("scenario", {}).get("sha256")
    for res in results:
        theirs = res.manifest.get("scenario_sha256")
        if res.name == saved.scenario and recorded and theirs and theirs != recorded:
            return (
                f"it ran another version of scenario {saved.scenario} than the results "
                f"compared here (scenario sha256 {str(recorded)[:12]}… there, "
                f"{str(theirs)[:12]}… here)"
            )
    source = saved.settings.get("source") or {}
    if saved.kind == "discover" and source.get("folder") and source.get("runs_sha256"):
        folder = Path(str(source["folder"]))
        try:
            now = store.read_manifest(folder).get("sha256", {}).get("runs.parquet")
        except ResultsError:
            return None  # moved or removed: nothing to compare with
        if now and now != source["runs_sha256"]:
            return f"the results it searched, {folder}, have been run again since"
    files = saved.manifest.get("scenario", {}).get("files") or []
    if saved.kind != "discover" and files and recorded:
        try:
            now = scenario_sha256(load_model(files[-1]))
        except (ScenarioError, OSError):
            return None  # not here any more, or broken: nothing to compare with
        if now != recorded:
            return f"its scenario file {files[-1]} has changed since it ran"
    return None


def _prepare(folder: Path, kind: str, force: bool, identity: dict[str, Any] | None = None) -> None:
    """Make `folder` ready; refuse to write over a run's results or unrelated files."""
    check_target(folder, kind, force, identity)
    folder.mkdir(parents=True, exist_ok=True)
    # The old manifest goes first: a folder half rewritten must not pass for complete.
    names = [store.MANIFEST] + [f"{s}.{e}" for s in _OURS for e in ("parquet", "png")]
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()


def _scenario(result: Analysis, model: Model | None) -> dict[str, Any]:
    if model is not None:
        return {
            "name": model.name,
            "description": model.scenario.description or "",
            "sha256": scenario_sha256(model),
            "files": list(model.files),
        }
    if isinstance(result, Discovery):
        source = result.source
        return {
            "name": result.scenario,
            "sha256": source.get("scenario_sha256"),
            "results": source.get("folder"),
        }
    if isinstance(result, Drivers):
        b = result.source.get("b", {})
        return {
            "name": result.scenario,
            "sha256": b.get("scenario_sha256"),
            "results": b.get("folder"),
            **({"baseline_results": result.source["a"].get("folder")} if result.baseline else {}),
        }
    return {"name": result.scenario}
