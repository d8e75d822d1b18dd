"""sim: scenario simulation with stocks, flows and events, run as Monte Carlo.

>>> import sim
>>> model = sim.load("examples/bakery.yaml")
>>> results = sim.run(model, runs=500, seed=1)
>>> [row.name for row in results.summary()][:2]
['bread_eaten', 'hungry_months']
"""

from sim.compare import compare
from sim.model import load
from sim.results import Results
from sim.runner import run

__all__ = ["Results", "compare", "load", "run"]
