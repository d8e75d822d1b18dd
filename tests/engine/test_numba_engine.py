"""The compiled engine's own machinery: the refusal without numba, the on-disk cache, and a
run through the study runner (its agreement with the kernel is tests/properties/test_numba.py
and every engine-parametrized test)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sim.cli import cli
from sim.engine import kernel, missing, numba_engine
from sim.model import load
from sim.study.runner import run
from tests.helpers import BAKERY, draws

needs_numba = pytest.mark.skipif(missing("numba") is not None, reason=str(missing("numba")))


def test_without_numba_the_engine_is_refused_saying_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(numba_engine, "available", lambda: False)
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["run", str(BAKERY), "--engine", "numba", "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert "pip install -e '.[fast]'" in r.output
    assert not out.exists()


@needs_numba
def test_a_model_compiles_once_into_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SIM_CACHE_DIR", str(tmp_path))
    model = load(BAKERY)
    program = numba_engine.generate(model)
    assert numba_engine.generate(model).key == program.key  # the same model, the same name
    params, noise = draws(model, 7)
    block = numba_engine.run_block(model, params, noise)
    (module,) = (tmp_path / "numba").glob("sim_*.py")
    assert module.name == f"sim_{program.key}.py"
    assert module.read_text() == program.source
    stamp = module.stat().st_mtime_ns
    # Another process (a worker) loads the module where it lies: never rewritten.
    numba_engine._LOADED.clear()
    again = numba_engine.Program(**{**program.__dict__, "fn": None})
    again.load()
    assert module.stat().st_mtime_ns == stamp
    assert not list((tmp_path / "numba").glob(".tmp-*"))
    reference = kernel.run_block(model, params, noise)
    for name, values in reference.outcomes.items():
        np.testing.assert_array_equal(block.outcomes[name], values, err_msg=name)


@needs_numba
def test_a_study_on_the_numba_engine_matches_the_kernel_row_for_row() -> None:
    model = load(BAKERY)
    kernel_runs = run(model, runs=50, seed=2, block_size=16, workers=1).runs
    numba_runs = run(model, runs=50, seed=2, block_size=16, workers=1, engine="numba").runs
    assert kernel_runs.equals(numba_runs)
