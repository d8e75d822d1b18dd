"""One registry of distributions and one of samplers: the schema, `sim show`, the docs table
and the draws all read them, so a distribution written as one class works everywhere."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from sim.cli import cli
from sim.sampling import samplers
from sim.sampling.distributions import REGISTRY, Distribution
from sim.sampling.draws import noise_draws, parameter_draws
from sim.scenario.schema import DIST_NAMES, Scenario
from tests.helpers import ROOT

LANGUAGE_MD = ROOT / "docs" / "language.md"


def _make_tables() -> Any:
    spec = importlib.util.spec_from_file_location("make_tables", ROOT / "docs" / "make_tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _documented_names() -> list[str]:
    text = LANGUAGE_MD.read_text(encoding="utf-8")
    table = re.search(r"<!-- distributions:start -->\n(.*?)<!-- distributions:end -->", text, re.S)
    assert table, "docs/language.md has no generated table of distributions"
    rows = table[1].splitlines()[2:]  # past the header and its rule
    return [re.match(r"\| `([a-z_]+)` \|", row)[1] for row in rows]  # type: ignore[index]


def _scenario_file(tmp_path: Path, name: str, spec: dict[str, Any]) -> Path:
    data = {
        "name": "registry",
        "start": "2024-01",
        "months": 2,
        "parameters": {"x": {"dist": name, **spec, "source": "test"}},
        "stocks": {"a": {"unit": "t", "initial": 1}},
        "outcomes": {"a_end": {"of": "a", "stat": "final"}},
    }
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_registry_schema_and_docs_agree():
    assert tuple(REGISTRY) == DIST_NAMES
    accepted = Scenario.model_json_schema()["properties"]["parameters"]["additionalProperties"]
    accepted = accepted["oneOf"][0]  # the scalar specs; the other is an arrayed parameter
    assert set(accepted["discriminator"]["mapping"]) == set(REGISTRY)
    assert _documented_names() == list(REGISTRY)
    text = LANGUAGE_MD.read_text(encoding="utf-8")
    tables = _make_tables()
    assert tables.replace(text, "distributions", tables.distribution_table()) == text, (
        "docs/language.md is stale: run python docs/make_tables.py"
    )


def test_samplers_are_one_registry():
    assert samplers.SAMPLERS == tuple(samplers.REGISTRY) == ("mc", "lhs", "sobol")
    sampler = Scenario.model_json_schema()["properties"]["sampler"]
    assert tuple(sampler["enum"]) == samplers.SAMPLERS


@pytest.mark.parametrize("name", list(REGISTRY))
def test_each_registered_distribution_is_accepted_shown_documented_and_sampled(name, tmp_path):
    cls = REGISTRY[name]
    path = _scenario_file(tmp_path, name, cls.EXAMPLE)
    assert CliRunner().invoke(cli, ["validate", str(path)]).exit_code == 0

    (spec,) = Scenario.model_validate(yaml.safe_load(path.read_text())).parameters.values()
    assert type(spec) is cls
    shown = CliRunner().invoke(cli, ["show", str(path)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and spec.describe() in shown.output

    assert name in _documented_names()

    low, high = spec.support()
    for sampler in samplers.SAMPLERS:
        x = parameter_draws({"x": spec}, sampler, 3, 300, 0, 300)["x"]
        assert x.shape == (300,) and np.all((low <= x) & (x <= high)), sampler
    if low >= 0:
        z = noise_draws({"x": spec}, 3, 50, 4, 0, 50)["x"]
        assert z.shape == (4, 50) and np.all((low <= z) & (z <= high))


def test_an_unknown_distribution_lists_the_registry(tmp_path):
    path = _scenario_file(tmp_path, "nosuch", {})
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert "use one of " + ", ".join(REGISTRY) in result.output


NEW_DISTRIBUTION = '''
import importlib, sys
from typing import Any, Literal
from pydantic import Field
from scipy import stats
from sim.sampling.distributions import Distribution

class Exponential(Distribution):
    """Waiting times: an exponential with the given mean."""
    dist: Literal["exponential"]
    mean: float = Field(gt=0)
    KEYS = "`mean`"
    RULES = "`mean > 0`"
    EXAMPLE = {"mean": 2.0}

    def frozen(self) -> Any:
        return stats.expon(scale=self.mean)

# The schema was built when sim was first imported; build it again, as a fresh process would
# with the class written in sim/sampling/distributions.py.
import sim.scenario.schema, sim.model
importlib.reload(sim.scenario.schema)
importlib.reload(sim.model)
from click.testing import CliRunner
from sim.cli import cli
import sim.cli.run
sim.cli.run.load = sim.model.load

from sim.sampling.draws import parameter_draws
spec_path = sys.argv[1]
model = sim.model.load(spec_path)
spec = model.parameters["x"]
assert type(spec).__name__ == "Exponential", type(spec)
shown = CliRunner().invoke(cli, ["show", spec_path], env={"COLUMNS": "200"})
assert "exponential(mean 2)" in shown.output, shown.output
x = parameter_draws(model.parameters, "lhs", 1, 1000, 0, 1000)["x"]
assert abs(x.mean() - 2.0) < 0.1, x.mean()
sys.path.insert(0, "docs")
import make_tables
assert "| `exponential` | `mean` | `mean > 0` |" in make_tables.distribution_table()
print("ok")
'''


def test_a_new_distribution_is_one_class(tmp_path):
    # In a fresh process, so the registry of this one stays as shipped.
    path = _scenario_file(tmp_path, "exponential", {"mean": 2.0})
    result = subprocess.run(
        [sys.executable, "-c", NEW_DISTRIBUTION, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    assert "exponential" not in REGISTRY


def test_a_distribution_needs_a_name_and_its_docs():
    with pytest.raises(TypeError, match="needs a field `dist"):

        class Nameless(Distribution):  # pragma: no cover - refused at definition
            low: float

    with pytest.raises(TypeError, match="needs KEYS, RULES, EXAMPLE"):

        class Undocumented(Distribution):  # pragma: no cover - refused at definition
            dist: Literal["undocumented"]

    assert "undocumented" not in REGISTRY
