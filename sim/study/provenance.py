"""Provenance: what a study's bits depend on, as hashes and versions a manifest records."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from sim.model import Model
from sim.study import store


@functools.cache
def build() -> dict[str, str]:
    """What a block's bits depend on besides the study itself: the versions of the numeric
    libraries, and sim's own code (a hash of its sources, so checkouts at two commits differ)."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]  # sim/
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    wanted = ("numpy", "scipy", "simpy")
    return {name: v for name, v in store.versions().items() if name in wanted} | {
        "sim code": digest.hexdigest()[:12]
    }


def scenario_sha256(model: Model) -> str:
    """The resolved scenario's hash (after `extends`), canonical JSON: what a study ran."""
    resolved = model.scenario.dump()
    if model.data:  # what the data files held: an edited file is a changed scenario
        resolved["data sha256"] = {d.name: d.sha256 for d in model.data}
    canonical = json.dumps(resolved, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
