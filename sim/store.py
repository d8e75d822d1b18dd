"""The results folder on disk: atomic writes, block parts, the manifest, integrity checks.

Layout (DESIGN.md, "Results"):

    results/<name>/manifest.json   what was run, by whom, and sha256 of each data file
    results/<name>/runs.parquet    a row per run: run, sampled parameters, outcomes, status
    results/<name>/bands.parquet   per series and tick: mean and p05/p25/p50/p75/p95
    results/<name>/paths.parquet   optional: full recorded paths of the first K runs
    results/<name>/parts/          finished blocks while a run is under way

Every file is written to a temporary name in the same folder and renamed into place
(`os.replace` is atomic on POSIX), and the manifest says `complete: true` only after every
data file it lists is in place. Readers refuse anything else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sim.errors import ResultsError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATA_FILES = ("runs.parquet", "bands.parquet", "paths.parquet")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`; renamed onto it only if the block succeeds."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_table(table: pa.Table, path: Path) -> None:
    with _atomic(path) as tmp:
        pq.write_table(table, tmp)


def write_json(data: Any, path: Path) -> None:
    with _atomic(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def write_npz(arrays: dict[str, np.ndarray], path: Path) -> None:
    with _atomic(path) as tmp, tmp.open("wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not folder.exists():
        raise ResultsError(f"{folder}: no such results folder")
    if not path.is_file():
        raise ResultsError(f"{folder}: not a results folder (no {MANIFEST})")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: damaged manifest ({exc})") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: damaged manifest (not a JSON object)")
    return data


def check_folder(folder: Path, manifest: dict[str, Any]) -> None:
    """Refuse results that are incomplete, from another format version, or altered."""
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ResultsError(
            f"{folder}: results format version {version!r}; this sim reads version {FORMAT_VERSION}"
        )
    if not manifest.get("complete"):
        done, total = manifest.get("blocks_done", "?"), manifest.get("blocks_total", "?")
        raise ResultsError(
            f"{folder}: incomplete results ({done} of {total} blocks); "
            "run it again (an interrupted run leaves its finished blocks in parts/)"
        )
    for name, expected in manifest.get("sha256", {}).items():
        path = folder / name
        if not path.is_file():
            raise ResultsError(f"{folder}: {name} is missing")
        if sha256_file(path) != expected:
            raise ResultsError(
                f"{folder}: {name} does not match its checksum in {MANIFEST} (edited or truncated)"
            )


def prepare_folder(folder: Path, scenario_name: str, force: bool) -> None:
    """Make `folder` ready for a new run; refuse to clobber another scenario's results."""
    if folder.exists() and not folder.is_dir():
        raise ResultsError(f"{folder}: exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        manifest_path = folder / MANIFEST
        if manifest_path.is_file():
            try:
                other = json.loads(manifest_path.read_text()).get("scenario", {}).get("name")
            except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
                other = None
            if other != scenario_name and not force:
                raise ResultsError(
                    f"{folder} holds results of scenario '{other}', not '{scenario_name}'; "
                    "choose another --out or pass --force to replace them"
                )
        elif not force and not (folder / "parts").is_dir():
            raise ResultsError(
                f"{folder} is not empty and holds no sim results; choose another --out or pass --force"
            )
        for name in [MANIFEST, *DATA_FILES]:
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()
        shutil.rmtree(folder / "parts", ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "parts").mkdir(exist_ok=True)


def part_paths(folder: Path, block: int) -> tuple[Path, Path]:
    return (
        folder / "parts" / f"runs-{block:06d}.parquet",
        folder / "parts" / f"series-{block:06d}.npz",
    )


def finish_folder(folder: Path) -> None:
    shutil.rmtree(folder / "parts", ignore_errors=True)
