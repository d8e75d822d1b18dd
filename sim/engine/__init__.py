"""Engines: what runs a block of runs of a compiled model on its draws.

Every engine implements one function, `Engine`: (model, params, noise, first_run, n, keep)
-> `Block`, and obeys `sim.engine.semantics`, where what a tick means is written once. The
numpy kernel (`kernel`) runs a whole block as arrays; the SimPy engine (`des`) runs one run
at a time as a discrete-event simulation and is the readable reference; the compiled engine
(`numba_engine`, the optional `fast` extra) runs the model as generated numba code, run by run.
A new engine is one module with a `run_block` of that signature, added to `ENGINES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np

from sim.engine import des, kernel, numba_engine
from sim.engine.semantics import Block
from sim.model import Model


class Engine(Protocol):
    """Runs runs [first_run, first_run + n) of `model` on their draws; keeps recorded series
    for the first `keep` of them (all when None)."""

    def __call__(
        self,
        model: Model,
        params: Mapping[str, np.ndarray],
        noise: Mapping[str, np.ndarray],
        first_run: int = 0,
        n: int | None = None,
        keep: int | None = None,
    ) -> Block: ...


ENGINES: dict[str, Engine] = {
    "kernel": kernel.run_block,
    "des": des.run_block,
    "numba": numba_engine.run_block,  # needs numba (pip install -e '.[fast]')
}


def missing(engine: str) -> str | None:
    """Why `engine` can't run here (an optional dependency not installed), or None."""
    if engine == "numba" and not numba_engine.available():
        return f"--engine numba needs numba, which is not installed: {numba_engine.INSTALL_HINT}"
    return None
