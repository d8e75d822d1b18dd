"""Suite-wide settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent


# CI runs the same examples every time (a property that fails there fails on every rerun and
# names its example); elsewhere hypothesis explores anew each run, as it should.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test run against `--engine numba` is skipped, saying why, where numba is not
    installed (CI installs it: the test extra lists it)."""
    from sim.engine import missing

    why = missing("numba")
    if why is None:
        return
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "numba" in params.values():
            item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture(autouse=True, scope="session")
def _shipped_scenarios_may_be_extended() -> Iterator[None]:
    """Tests write variants of examples/bakery.yaml and scenarios/base.yaml in a temporary
    folder that extend them by absolute path. `extends:` reaches outside its own folder only
    where SIM_EXTENDS_ROOT allows (docs/language.md), so allow those two folders, and only them.
    Session-wide, so that module-scoped fixtures see it too.
    """
    shipped = [str(ROOT / "examples"), str(ROOT / "scenarios")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIM_EXTENDS_ROOT", os.pathsep.join(shipped))
        yield
