"""Readers (`Results.load`, `sim compare`, `sim report`) refuse results that are not whole:
truncated, edited, missing a file, incomplete, or written by another format version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli import cli
from sim.errors import ResultsError
from sim.study import store
from sim.study.results import Results
from tests.helpers import BAKERY


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("res")
    for name, seed in (("a", "1"), ("b", "2")):
        r = CliRunner().invoke(
            cli, ["run", str(BAKERY), "-n", "200", "--seed", seed, "--out", str(root / name)]
        )
        assert r.exit_code == 0, r.output
    return root / "a", root / "b"


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _truncate(folder: Path) -> None:
    data = (folder / "runs.parquet").read_bytes()
    (folder / "runs.parquet").write_bytes(data[: len(data) // 2])


def _edit(folder: Path) -> None:
    path = folder / "bands.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _remove(folder: Path) -> None:
    (folder / "bands.parquet").unlink()


def _foreign(folder: Path) -> None:
    manifest = json.loads((folder / store.MANIFEST).read_text())
    manifest["format_version"] = store.FORMAT_VERSION + 1
    (folder / store.MANIFEST).write_text(json.dumps(manifest))


def _incomplete(folder: Path) -> None:
    manifest = json.loads((folder / store.MANIFEST).read_text())
    manifest["complete"] = False
    (folder / store.MANIFEST).write_text(json.dumps(manifest))


def _garbled_manifest(folder: Path) -> None:
    (folder / store.MANIFEST).write_text('{"format_version": 1, "compl')


DAMAGE = {
    "truncated": (_truncate, "does not match its checksum"),
    "edited": (_edit, "does not match its checksum"),
    "missing": (_remove, "bands.parquet is missing"),
    "foreign": (_foreign, "results format version"),
    "incomplete": (_incomplete, "incomplete results"),
    "garbled": (_garbled_manifest, "damaged manifest"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_readers_refuse_damaged_results(folders, tmp_path, damage):
    good, other = folders
    harm, expected = DAMAGE[damage]
    bad = _copy(good, tmp_path / "bad")
    harm(bad)
    with pytest.raises(ResultsError, match=expected):
        Results.load(bad)
    for command in (
        ["compare", str(other), str(bad)],
        ["report", str(other), str(bad), "--out", str(tmp_path / "r.html")],
    ):
        r = CliRunner().invoke(cli, command)
        assert r.exit_code == 2, (command, r.output)
        assert expected in r.output and str(bad) in r.output
        assert "Traceback" not in r.output
    assert not (tmp_path / "r.html").exists()  # nothing half-written


def test_whole_results_load(folders):
    good, _ = folders
    assert Results.load(good).n_runs == 200
