"""The results folder on disk: atomic writes, block parts, the manifest, integrity checks.

Layout (DESIGN.md, "Results"):

    results/<name>/manifest.json   what was run, by whom, and sha256 of each data file
    results/<name>/runs.parquet    a row per run: run, sampled parameters, outcomes, status
    results/<name>/bands.parquet   per series and tick: mean and p05/p25/p50/p75/p95
    results/<name>/paths.parquet   optional: full recorded paths of the first K runs
    results/<name>/parts/          finished blocks while a run is under way
    results/<name>/.lock           held (flock) by the one `sim run` writing the folder

Every file is written to a temporary name in the same folder and renamed into place
(`os.replace` is atomic on POSIX), and the manifest says `complete: true` only after every
data file it lists is in place. Readers refuse anything else. A block's series part is written
before its runs part, so a runs part on disk means the whole block landed (what `--resume`
trusts). The lock is an OS lock on an open file: the OS drops it when its process dies, so a
killed run never blocks the next one.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

from sim.errors import ResultsError
from sim.study import manifest

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATA_FILES = ("runs.parquet", "bands.parquet", "paths.parquet")
LOCK = ".lock"

try:  # POSIX; elsewhere the folder is not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


@functools.cache  # asked once per study; a calibration runs dozens (metadata costs ~30 ms)
def versions() -> dict[str, str]:
    """Versions of sim and the libraries whose behaviour its results depend on."""
    out = {}
    for package in ("sim", "numpy", "scipy", "simpy", "pyarrow", "pydantic", "matplotlib"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:  # pragma: no cover
            out[package] = "unknown"
    return out


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# The process's umask, read once (os.umask both sets and returns it). mkstemp makes files
# 0600 whatever the umask; what sim writes should be as readable as any file the user makes.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def temporary(path: Path) -> Path:
    """A new, empty temporary file beside `path` (hidden, `.tmp`), with the permissions a
    file made under the user's umask has, ready to be renamed onto `path`."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
    finally:
        os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`; renamed onto it only if the block succeeds."""
    tmp = temporary(path)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_table(table: pa.Table, path: Path) -> None:
    with atomic(path) as tmp:
        pq.write_table(table, tmp)


def write_json(data: Any, path: Path) -> None:
    with atomic(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def write_bytes(data: bytes, path: Path) -> None:
    with atomic(path) as tmp:
        tmp.write_bytes(data)


def write_series_part(arrays: dict[str, np.ndarray], path: Path) -> None:
    """A block's kept series as one .npy array (series, ticks, runs), the series in the
    dict's order (the model's record): written as they lie, one after the other, with no
    stacked copy and no zip checksum; a series reads back alone through a memory map."""
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) > 1:
        raise ValueError(f"a block's series differ in shape: {sorted(shapes)}")
    shape = (len(arrays), *(shapes.pop() if shapes else ()))
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float64)), "fortran_order": False}
    with atomic(path) as tmp, tmp.open("wb") as fh:
        np.lib.format.write_array_header_2_0(fh, header | {"shape": shape})
        for values in arrays.values():
            fh.write(np.ascontiguousarray(values, dtype=np.float64).data)


def read_manifest(folder: Path) -> dict[str, Any]:
    """`folder`'s manifest, parsed within bounds and checked against its schema
    (`sim.study.manifest`); a ResultsError naming the folder and the field if it is damaged."""
    path = folder / MANIFEST
    if not folder.exists():
        raise ResultsError(f"{folder}: no such results folder")
    if not path.is_file():
        raise ResultsError(f"{folder}: not a results folder (no {MANIFEST})")
    data = manifest.read_json(path, folder)
    return manifest.validate(folder, data, FORMAT_VERSION, manifest.ANALYSIS_FORMAT)


def check_folder(folder: Path, data: dict[str, Any]) -> None:
    """Refuse results that are incomplete, from another format version, or altered."""
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ResultsError(
            f"{folder}: results format version {version!r}; this sim reads version {FORMAT_VERSION}"
        )
    if manifest.is_analysis(data):
        raise ResultsError(f"{folder} holds an analysis, not a run's results")
    if not data.get("complete"):
        done, total = data.get("blocks_done", "?"), data.get("blocks_total", "?")
        raise ResultsError(
            f"{folder}: incomplete results ({done} of {total} blocks); "
            "finish it with the same `sim run` command plus --resume"
        )
    check_checksums(folder, data)
    manifest.check_data(folder, data)


def check_checksums(folder: Path, data: dict[str, Any]) -> None:
    """Refuse a folder whose files don't match the sha256 its manifest lists."""
    for name, expected in data.get("sha256", {}).items():
        path = folder / name
        if not path.is_file():
            raise ResultsError(f"{folder}: {name} is missing")
        if sha256_file(path) != expected:
            raise ResultsError(
                f"{folder}: {name} does not match its checksum in {MANIFEST} (edited or truncated)"
            )


RUN_WRITES = (MANIFEST, *DATA_FILES, "parts", LOCK)  # what a run writes or clears in its folder


def check_target(
    folder: Path, scenario_name: str, force: bool, inputs: Iterable[str | Path] = ()
) -> None:
    """Refuse to start a run in `folder` if it holds another scenario's or anything not ours,
    or if starting would replace one of its `inputs` (the scenario files), whatever `force`."""
    check_output_folder(folder, inputs, RUN_WRITES)
    if folder.exists() and not folder.is_dir():
        raise ResultsError(f"{folder}: exists and is not a folder")
    if not folder.is_dir() or force:
        return
    contents = {p.name for p in folder.iterdir()} - {LOCK}
    if not contents:
        return
    manifest_path = folder / MANIFEST
    if manifest_path.is_file():
        try:
            other = manifest.read_json(manifest_path, folder).get("scenario", {}).get("name")
        except (ResultsError, AttributeError):
            other = None
        if other != scenario_name:
            raise ResultsError(
                f"{folder} holds results of scenario '{other}', not '{scenario_name}'; "
                "choose another --out or pass --force to replace them"
            )
    elif "parts" not in contents:
        raise ResultsError(
            f"{folder} is not empty and holds no sim results; choose another --out or pass --force"
        )


# What each kind of output starts with: an existing file that starts otherwise is not one of
# ours (a scenario, a Parquet file, someone's notes) and is replaced only with --force.
REPORT_MARK = b'<meta name="generator" content="sim report">'
SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "xlsx": (b"PK\x03\x04",),  # a zip, as every Office Open XML file
    "pdf": (b"%PDF",),
    "svg": (b"<?xml", b"<svg"),
    "svgz": (b"\x1f\x8b",),
    "eps": (b"%!PS",),
    "ps": (b"%!PS",),
    "jpg": (b"\xff\xd8\xff",),
    "jpeg": (b"\xff\xd8\xff",),
    "tif": (b"II*\x00", b"MM\x00*"),
    "tiff": (b"II*\x00", b"MM\x00*"),
    "webp": (b"RIFF",),
    "gif": (b"GIF87a", b"GIF89a"),
}
KIND_WORDS = {
    "html": "an HTML report written by sim report",
    "xlsx": "an Excel workbook",
}


def check_output(
    path: Path, kind: str, inputs: Iterable[str | Path], force: bool, option: str
) -> None:
    """Refuse to write a `kind` file ("html", or an image suffix such as "png") at `path` if
    that is one of the command's `inputs` (or a file of an input folder), whatever --force
    says, or an existing file that is not already such an output, unless `force`.

    One rule for every option that writes a file (`sim report --out`, `sim compare --plot`,
    `--fan`): paths are compared resolved, so a symlink or a hard link to an input counts."""
    shown = f"{option} {path}"
    for source, read in _read_files(inputs):
        if same_file(path, read):
            what = "" if read == source else f" (a file of {source})"
            raise ResultsError(
                f"{shown}: that is one of this command's inputs{what}; choose another file"
            )
    if not path.exists():
        return
    if path.is_dir():
        raise ResultsError(f"{shown}: is a folder; give a file name")
    if force or _looks_like(path, kind):
        return
    what = KIND_WORDS.get(kind, f"a .{kind} image")
    raise ResultsError(
        f"{shown}: exists and is not {what}; choose another file, or pass --force to replace it"
    )


def check_output_folder(
    folder: Path, inputs: Iterable[str | Path], replaces: Iterable[str], option: str = "--out"
) -> None:
    """Refuse an output folder that is one of the command's inputs, or would replace one:
    an input at one of the names (`replaces`: files or subfolders) the command writes or
    clears there. --force does not lift this."""
    names = set(replaces)
    for source, read in _read_files(inputs):
        if same_file(folder, read):
            raise ResultsError(
                f"{option} {folder}: that is this command's input; choose another folder"
            )
        try:
            inside = read.resolve().relative_to(folder.resolve())
        except ValueError:
            continue
        if inside.parts and inside.parts[0] in names:
            raise ResultsError(
                f"{option} {folder}: writing there would replace {source}, one of this "
                "command's inputs; choose another folder"
            )


def _read_files(inputs: Iterable[str | Path]) -> Iterator[tuple[Path, Path]]:
    """(input, a path it reads): the input itself and, for a results or analysis folder, its
    manifest and the files that manifest lists."""
    for source in map(Path, inputs):
        yield source, source
        if not source.is_dir():
            continue
        names = {MANIFEST, *DATA_FILES}
        with contextlib.suppress(ResultsError, AttributeError, TypeError):
            listed = manifest.read_json(source / MANIFEST, source)
            names |= {str(n) for n in listed.get("sha256", {})}
            names |= {str(n) for n in listed.get("files", []) if "/" not in str(n)}
        for name in sorted(names):
            yield source, source / name


def same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)  # symlinks and hard links
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _looks_like(path: Path, kind: str) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    if kind == "html":
        return head.lstrip().lower().startswith(b"<!doctype html>") and REPORT_MARK in head
    return any(head.startswith(sig) for sig in SIGNATURES.get(kind, ()))


def is_disk_full(exc: BaseException) -> bool:
    """True for an OSError that says the disk (or the user's quota) is full: an errno, or
    only the words when it comes through Arrow, which keeps the message and drops the errno."""
    if not isinstance(exc, OSError):
        return False
    codes = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
    if exc.errno in codes:
        return True
    text = str(exc)
    return any(os.strerror(code) in text for code in codes)


def disk_full(folder: Path, exc: OSError, resumable: bool = True) -> ResultsError:
    """The error for a study whose disk filled up while it wrote `folder`."""
    again = (
        "free some space, then finish the study with the same `sim run` command plus --resume"
        if resumable and (folder / MANIFEST).is_file()
        else "free some space, then run it again"
    )
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    return ResultsError(f"{folder}: the disk is full{where}; {again}")


def prepare_folder(folder: Path, scenario_name: str, force: bool) -> None:
    """Make `folder` ready for a new run; refuse to clobber another scenario's results."""
    check_target(folder, scenario_name, force)
    if folder.is_dir():
        for name in [MANIFEST, *DATA_FILES]:
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()
        shutil.rmtree(folder / "parts", ignore_errors=True)
        clear_temporaries(folder)  # a killed run's half-written files, resumed or not
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "parts").mkdir(exist_ok=True)


@contextlib.contextmanager
def lock(folder: Path) -> Iterator[None]:
    """Hold `folder`'s lock for the block; a second holder is refused with ResultsError."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / LOCK).open("a+") as fh:
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                fh.seek(0)
                holder = fh.read().strip() or "?"
                raise ResultsError(
                    f"{folder} is being written by another sim run (pid {holder}); "
                    "wait for it to finish or choose another --out"
                ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        yield  # closing the file releases the lock


def part_paths(folder: Path, block: int) -> tuple[Path, Path]:
    """A block's rows (Arrow IPC: a scratch file, fast to write and read) and kept series."""
    return (
        folder / "parts" / f"runs-{block:06d}.arrow",
        folder / "parts" / f"series-{block:06d}.npy",
    )


def write_part(table: pa.Table, path: Path) -> None:
    with atomic(path) as tmp:
        feather.write_feather(table, tmp, compression="uncompressed")


def finished_part(folder: Path, block: int, rows: int) -> bool:
    """True if block `block` landed whole: both parts present and the runs part readable."""
    runs_part, series_part = part_paths(folder, block)
    if not (runs_part.is_file() and series_part.is_file()):
        return False
    try:
        with pa.memory_map(str(runs_part)) as source:
            return bool(pa.ipc.open_file(source).read_all().num_rows == rows)
    except (OSError, pa.ArrowException):
        return False


def clear_temporaries(folder: Path) -> None:
    """Remove half-written temporary files a killed run left behind."""
    for where in (folder, folder / "parts"):
        if where.is_dir():
            for tmp in where.glob(".*.tmp"):
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()


def read_part(folder: Path, block: int, columns: list[str] | None = None) -> pa.Table:
    try:
        return feather.read_table(part_paths(folder, block)[0], columns=columns, memory_map=False)
    except (OSError, pa.ArrowException) as exc:
        raise ResultsError(
            f"{folder}: block {block} is damaged ({exc}); run again without --resume"
        ) from None


def read_series_part(folder: Path, block: int, index: int) -> np.ndarray:
    """Series number `index` (in the model's record) of a block's part: read alone."""
    return np.array(np.load(part_paths(folder, block)[1], mmap_mode="r")[index])


class TableWriter:
    """A Parquet file written a table at a time, appearing at `path` only when committed.

    Memory holds the table being appended, never the file: how `runs.parquet` is built from
    block parts, in run order, while later blocks are still running."""

    def __init__(self, path: Path):
        self.path = path
        self.tmp = temporary(path)
        self.writer: pq.ParquetWriter | None = None

    def append(self, table: pa.Table) -> None:
        if self.writer is None:
            # Dictionary-encoding columns of distinct floats costs 4x the time for nothing;
            # only the text columns (status, culprit) repeat.
            text = [f.name for f in table.schema if pa.types.is_string(f.type)]
            self.writer = pq.ParquetWriter(self.tmp, table.schema, use_dictionary=text)
        self.writer.write_table(table.cast(self.writer.schema))

    def commit(self) -> None:
        if self.writer is None:
            raise ValueError("no table was appended")
        self.writer.close()
        self.writer = None
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


def discard(folder: Path) -> None:
    """Remove what a failed, fresh run wrote to `folder` (and the folder, if that leaves it
    empty), so no half-written results remain."""
    for name in [MANIFEST, *DATA_FILES]:
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    shutil.rmtree(folder / "parts", ignore_errors=True)
    clear_temporaries(folder)
    with contextlib.suppress(OSError):
        (folder / LOCK).unlink()
        folder.rmdir()  # only if empty


def finish_folder(folder: Path) -> None:
    shutil.rmtree(folder / "parts", ignore_errors=True)
