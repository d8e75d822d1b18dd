"""A calibration folder read back: the posterior a study's runs may draw their parameters from.

`sim calibrate` writes the folder (see docs/calibration.md); `sim run --posterior DIR` reads
it here. The folder holds

    posterior.parquet   a row per posterior sample: `sample`, a float64 column per calibrated
                        parameter (named as in runs.parquet), `weight` (non-negative, summing
                        to 1), then a column per observation (that sample's simulated value)
    manifest.json       kind "calibration", the scenario calibrated, the observations file,
                        the method, ess, per parameter its prior (a Distribution's dump
                        without unit, source and description) and quantiles, per observation
                        the fit, and `posterior_sha256`: the sha256 of posterior.parquet

`read_posterior` refuses a folder that is not a calibration, or whose posterior.parquet was
edited, or whose weights are not a distribution; `match` says where a scenario's parameters
don't fit the posterior's (a parameter it lacks or fixes, a prior that differs). Every refusal
names the folder, or the scenario file's place, and what is wrong.

The posterior is joint: run i takes every posterior parameter from the same row J(i)
(`sim.sampling.draws.posterior_rows`), so correlations the data induced are kept.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sim.errors import Problem, ResultsError, ScenarioError, did_you_mean
from sim.model import Model
from sim.sampling.distributions import REGISTRY, Distribution, Fixed
from sim.study import store
from sim.study.manifest import read_json

POSTERIOR_FILE = "posterior.parquet"
KIND = "calibration"
WEIGHT_TOLERANCE = 1e-12  # the contract: weights sum to 1 within this
PRIOR_EXCLUDE = {"unit", "source", "description"}  # a prior is its shape, not its notes


def prior_of(spec: Distribution) -> dict[str, Any]:
    """A distribution as a calibration manifest records it: two priors are the same when
    these dicts are equal."""
    return spec.model_dump(mode="json", exclude=PRIOR_EXCLUDE)


@dataclass(frozen=True)
class Posterior:
    """A calibration's weighted posterior samples, and the manifest that describes them.

    `names` are the parameter columns (in the file's order), `values[name]` their samples,
    `weight` the samples' weights (summing to 1), `priors[name]` the prior each was
    calibrated under, `sha256` the sha256 of posterior.parquet. Equal posteriors are the same
    file: equality and hashing go by folder, names and sha256."""

    folder: Path
    names: tuple[str, ...]
    values: dict[str, np.ndarray] = field(compare=False, repr=False)
    weight: np.ndarray = field(compare=False, repr=False)
    priors: dict[str, dict[str, Any]] = field(compare=False, repr=False)
    sha256: str = ""
    manifest: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def samples(self) -> int:
        return len(self.weight)

    @property
    def ess(self) -> float:
        """Effective sample size of the weights (Kish): 1 / sum of squared weights."""
        return float(1.0 / np.sum(self.weight**2))

    @property
    def short(self) -> str:
        """The first 12 hex digits of the posterior's sha256: how output names it."""
        return self.sha256[:12]

    def summary(self, drawn_as_usual: list[str]) -> dict[str, Any]:
        """What a run's manifest records of the posterior it drew from."""
        m = self.manifest
        method = m.get("method")
        ess = m.get("ess")
        scenario = m.get("scenario")
        return {
            "folder": str(self.folder),
            "sha256": self.sha256,
            "samples": self.samples,
            "parameters": list(self.names),
            "drawn_as_usual": list(drawn_as_usual),
            "observations": m.get("observations")
            if isinstance(m.get("observations"), dict)
            else {},
            "method": method if isinstance(method, dict) else {},
            "ess": float(ess) if isinstance(ess, int | float) and _finite_number(ess) else self.ess,
            "scenario": (
                {k: scenario[k] for k in ("name", "sha256") if k in scenario}
                if isinstance(scenario, dict)
                else {}
            ),
        }


def _finite_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def read_posterior(folder: str | Path) -> Posterior:
    """The calibration folder `folder`, checked whole; else one ResultsError naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ResultsError(f"{folder}: no such calibration folder")
    path = folder / store.MANIFEST
    if not path.is_file():
        raise ResultsError(
            f"{folder}: not a calibration folder (no {store.MANIFEST}); "
            "make one with `sim calibrate SCENARIO --observations FILE`"
        )
    manifest = read_json(path, folder)
    if not isinstance(manifest, dict):
        raise ResultsError(f"{folder}: {store.MANIFEST}: damaged manifest (not a JSON object)")
    if manifest.get("kind") != KIND:
        what = (
            f"its kind is {json.dumps(manifest['kind'])}"
            if "kind" in manifest
            else "it holds a run's results"
            if "format_version" in manifest
            else "it has no kind"
        )
        raise ResultsError(
            f'{folder}: not a calibration folder ({what}, not "{KIND}"); '
            "--posterior takes the folder `sim calibrate` writes"
        )
    if manifest.get("complete") is False:
        raise ResultsError(
            f"{folder}: an incomplete calibration (its manifest says complete: false); "
            "run `sim calibrate` again"
        )
    expected = manifest.get("posterior_sha256")
    if not isinstance(expected, str) or len(expected) != 64:
        raise ResultsError(
            f"{folder}: {store.MANIFEST}: posterior_sha256: missing or not a sha256; "
            "the manifest is damaged or was edited"
        )
    data = folder / POSTERIOR_FILE
    if not data.is_file():
        raise ResultsError(f"{folder}: {POSTERIOR_FILE} is missing")
    if store.sha256_file(data) != expected:
        raise ResultsError(
            f"{folder}: {POSTERIOR_FILE} does not match posterior_sha256 in {store.MANIFEST} "
            "(edited or truncated)"
        )
    parameters = manifest.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise ResultsError(
            f"{folder}: {store.MANIFEST}: parameters: missing or empty; the manifest is damaged"
        )
    priors: dict[str, dict[str, Any]] = {}
    for name, info in parameters.items():
        prior = info.get("prior") if isinstance(info, dict) else None
        if not isinstance(prior, dict) or not isinstance(prior.get("dist"), str):
            raise ResultsError(
                f"{folder}: {store.MANIFEST}: parameters.{name}.prior: missing or not a "
                "distribution; the manifest is damaged"
            )
        priors[name] = prior
    try:
        table = pq.read_table(data)
    except (OSError, pa.ArrowException) as exc:
        raise ResultsError(f"{folder}: cannot read {POSTERIOR_FILE} ({exc})") from None
    names = tuple(parameters)
    missing = [c for c in ("sample", *names, "weight") if c not in table.column_names]
    if missing:
        raise ResultsError(
            f"{folder}: {POSTERIOR_FILE} has no column {', '.join(missing)} (a calibration "
            f"writes sample, a column per parameter in {store.MANIFEST}, and weight)"
        )
    between = table.column_names[1 : table.column_names.index("weight")]
    if table.column_names[0] != "sample" or sorted(between) != sorted(names):
        raise ResultsError(
            f"{folder}: {POSTERIOR_FILE}: its parameter columns ({', '.join(between) or 'none'}, "
            f"between sample and weight) are not the parameters {store.MANIFEST} lists "
            f"({', '.join(names)})"
        )
    if table.num_rows == 0:
        raise ResultsError(f"{folder}: {POSTERIOR_FILE} holds no samples")
    values = {name: _floats(folder, table, name) for name in (*names, "weight")}
    weight = values.pop("weight")
    bad = [n for n in names if not np.all(np.isfinite(values[n]))]
    if bad:
        raise ResultsError(
            f"{folder}: {POSTERIOR_FILE}: column {', '.join(bad)} holds a NaN or infinity"
        )
    if not np.all(np.isfinite(weight)) or np.any(weight < 0):
        raise ResultsError(
            f"{folder}: {POSTERIOR_FILE}: weight holds a negative, NaN or infinite value; "
            "weights must be non-negative and sum to 1"
        )
    total = math.fsum(weight.tolist())
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise ResultsError(
            f"{folder}: {POSTERIOR_FILE}: weights sum to {total!r}, not 1 "
            f"(within {WEIGHT_TOLERANCE:g})"
        )
    sample = table.column("sample").to_numpy(zero_copy_only=False)
    if not np.array_equal(sample, np.arange(table.num_rows)):
        raise ResultsError(
            f"{folder}: {POSTERIOR_FILE}: sample is not 0, 1, … {table.num_rows - 1:,} in order"
        )
    for array in (*values.values(), weight):
        array.setflags(write=False)
    return Posterior(folder, names, values, weight, priors, expected, manifest)


def _floats(folder: Path, table: pa.Table, name: str) -> np.ndarray:
    column = table.column(name)
    if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
        raise ResultsError(
            f"{folder}: {POSTERIOR_FILE}: column {name} holds {column.type}, not numbers"
        )
    if column.null_count:
        raise ResultsError(f"{folder}: {POSTERIOR_FILE}: column {name} has empty values")
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def match(posterior: Posterior, model: Model) -> list[Problem]:
    """Where `model`'s parameters don't fit the posterior: every parameter the posterior holds
    must be one the scenario samples, under the same prior. One problem per parameter,
    located at the scenario's parameter where it has one."""
    problems = []
    where = f"the posterior in {posterior.folder}"
    for name in posterior.names:
        spec = model.parameters.get(name)
        # a cell (need[food]) is placed at its arrayed parameter's entry
        place = model.place.get(("parameters", name)) or model.place.get(
            ("parameters", name.split("[", 1)[0])
        )
        path = f"parameters.{name}"
        if spec is None:
            hint = did_you_mean(name, model.parameters)
            problems.append(
                Problem(
                    f"{where} holds parameter '{name}', which scenario '{model.name}' does not "
                    "have",
                    None,
                    "",
                    hint or "calibrate this scenario, or one that shares its parameters",
                )
            )
        elif isinstance(spec, Fixed):
            problems.append(
                Problem(
                    f"fixed at {spec.value:g} in scenario '{model.name}', but {where} holds a "
                    "distribution for it",
                    place,
                    path,
                    "give it the prior it was calibrated under, or calibrate this scenario",
                )
            )
        elif prior_of(spec) != posterior.priors[name]:
            problems.append(
                Problem(
                    f"its prior here, {spec.describe()}, differs from the one {where} was "
                    f"calibrated under, {_described(posterior.priors[name])}",
                    place,
                    path,
                    "a posterior only holds for the prior it was computed from: calibrate "
                    "this scenario",
                )
            )
    return problems


def check(posterior: Posterior, model: Model) -> None:
    """Raise one ScenarioError listing every mismatch `match` finds."""
    problems = match(posterior, model)
    if problems:
        raise ScenarioError(problems)


def drawn_as_usual(posterior: Posterior, model: Model) -> list[str]:
    """The parameters `model` samples that the posterior does not hold: drawn from their
    priors, as without a posterior."""
    held = set(posterior.names)
    return [n for n in model.sampled if n not in held]


def _described(prior: dict[str, Any]) -> str:
    """A recorded prior as `sim show` writes a distribution, or its JSON if it isn't one."""
    cls = REGISTRY.get(str(prior.get("dist")))
    if cls is not None:
        try:
            return cls.model_validate(prior).describe()
        except ValueError:
            pass
    return json.dumps(prior, sort_keys=True)
