"""What sim writes is as readable as any file the user makes: the umask decides, not
mkstemp's private 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli import cli
from tests.helpers import BAKERY


def modes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode)
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize("umask", [0o027])
def test_results_reports_and_analyses_follow_the_umask(tmp_path, umask, monkeypatch):
    from sim.study import store

    monkeypatch.setattr(store, "_UMASK", umask)
    old = os.umask(umask)
    try:
        run = tmp_path / "run"
        r = CliRunner().invoke(
            cli, ["run", str(BAKERY), "-n", "50", "-w", "1", "--out", str(run), "--no-progress"]
        )
        assert r.exit_code == 0, r.output
        r = CliRunner().invoke(
            cli, ["report", str(run), str(run), "--out", str(tmp_path / "r.html")]
        )
        assert r.exit_code == 0, r.output
        sweep = tmp_path / "sweep"
        r = CliRunner().invoke(
            cli,
            [
                "sweep",
                str(BAKERY),
                "--set",
                "strike_month=6,18",
                "-n",
                "20",
                "-w",
                "1",
                "--out",
                str(sweep),
                "--no-progress",
            ],
        )
        assert r.exit_code == 0, r.output
    finally:
        os.umask(old)
    want = 0o666 & ~umask
    written = (
        modes(run) | modes(sweep) | {"r.html": stat.S_IMODE((tmp_path / "r.html").stat().st_mode)}
    )
    assert written and all(m == want for m in written.values()), {
        k: oct(v) for k, v in written.items()
    }
