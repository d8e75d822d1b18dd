"""sim: scenario simulation with stocks, flows and events, run as Monte Carlo.

>>> import sim
>>> model = sim.load("examples/bakery.yaml")
>>> results = sim.run(model, runs=500, seed=1)
>>> [row.name for row in results.summary()][:2]
['bread_eaten', 'hungry_months']

What drives an outcome, how it moves with a lever, and where the bad cases lie:
`sim.sensitivity(model, "bread_eaten")`, `sim.sweep(model, "strike_month", "6:30:6")`,
`sim.discover(results, where="hungry_months > 3")`.
"""

from sim.analysis.compare import compare
from sim.analysis.discover import discover
from sim.analysis.sensitivity import sensitivity
from sim.analysis.sweep import sweep
from sim.model import load
from sim.study.results import Results
from sim.study.runner import run

__all__ = ["Results", "compare", "discover", "load", "run", "sensitivity", "sweep"]
