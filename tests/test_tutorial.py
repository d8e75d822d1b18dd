"""The notebook tutorial (docs/tutorial.ipynb) runs: every cell executes against this sim, and
the committed notebook is the one docs/make_tutorial.py writes (its cells, with outputs)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("pandas")


def maker():
    spec = importlib.util.spec_from_file_location(
        "make_tutorial", ROOT / "docs" / "make_tutorial.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_tutorial"] = module
    spec.loader.exec_module(module)
    return module


def test_the_committed_notebook_is_the_generated_one():
    committed = nbformat.read(ROOT / "docs" / "tutorial.ipynb", as_version=4)
    built = maker().build()
    assert [(c.cell_type, c.source) for c in committed.cells] == [
        (c.cell_type, c.source) for c in built.cells
    ], "docs/tutorial.ipynb is stale: run python3 docs/make_tutorial.py"
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.outputs for c in code), "every code cell's output is stored (it reads on GitHub)"


@pytest.mark.slow
def test_every_cell_runs(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the kernel imports this checkout's sim
    module = maker()
    nb = module.execute(nbformat.read(ROOT / "docs" / "tutorial.ipynb", as_version=4))
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
