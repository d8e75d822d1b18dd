"""sim: scenario simulation with stocks, flows and events, run as Monte Carlo.

>>> import sim
>>> model = sim.load("examples/bakery.yaml")
>>> results = sim.run(model, runs=500, seed=1)
>>> [row.name for row in results.summary()][:2]
['bread_eaten', 'hungry_months']

What drives an outcome, how it moves with a lever, and where the bad cases lie:
`sim.sensitivity(model, "bread_eaten")`, `sim.sweep(model, "strike_month", "6:30:6")`,
`sim.discover(results, where="hungry_months > 3")`; what decides an outcome in any runs, a
posterior's included: `sim.drivers(results, "bread_eaten")`. What the observations say of the
parameters: `sim.calibrate(model, observations)` (`sim.scenario.observations.load_observations`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.analysis.calibrate import calibrate
    from sim.analysis.compare import compare
    from sim.analysis.discover import discover
    from sim.analysis.drivers import drivers
    from sim.analysis.sensitivity import sensitivity
    from sim.analysis.sweep import sweep
    from sim.model import load
    from sim.study.results import Results
    from sim.study.runner import run

# Imported on first use (PEP 562): `import sim` is instant, and `sim --help` never pays for
# numpy, scipy and pyarrow. Each name's home module:
_HOMES = {
    "Results": "sim.study.results",
    "calibrate": "sim.analysis.calibrate",
    "compare": "sim.analysis.compare",
    "discover": "sim.analysis.discover",
    "drivers": "sim.analysis.drivers",
    "load": "sim.model",
    "run": "sim.study.runner",
    "sensitivity": "sim.analysis.sensitivity",
    "sweep": "sim.analysis.sweep",
}

__all__ = [
    "Results",
    "calibrate",
    "compare",
    "discover",
    "drivers",
    "load",
    "run",
    "sensitivity",
    "sweep",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value  # once found, an ordinary attribute
        return value
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
