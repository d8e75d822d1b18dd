"""An imported model run once and set beside the reference output Vensim (or Stella) wrote.

sim records a stock after tick k's transfer, which is the model's value at Time = INITIAL +
(k + 1) * TIME STEP, and a variable as computed in tick k, the value at INITIAL + k * TIME
STEP (tests/peers/make_expected.py says the same for PySD). Reference files are saved every
SAVEPER, so each series is compared at the saved times its ticks fall on.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.engine import ENGINES
from sim.imports import Imported, translate
from sim.imports.expressions import key
from sim.model import load
from sim.sampling.draws import noise_draws, parameter_draws

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models"
RTOL = 1e-5  # Vensim's output files carry six or seven significant digits


def model_file(case: str) -> Path:
    found = sorted(
        p for p in (MODELS / case).iterdir() if p.suffix.lower() in (".mdl", ".xmile", ".stmx")
    )
    assert len(found) == 1, f"{case}: one model file expected, found {found}"
    return found[0]


def reference(case: str) -> dict[str, np.ndarray]:
    """The reference output by column (names compared loosely), Time included."""
    folder = MODELS / case
    path = next(p for p in (folder / "output.tab", folder / "output.csv") if p.exists())
    text = path.read_text(encoding="utf-8", errors="replace")
    rows = [
        r
        for r in csv.reader(
            io.StringIO(text, newline=None), delimiter="\t" if path.suffix == ".tab" else ","
        )
        if r
    ]
    header = [c.strip() for c in rows[0]]
    out: dict[str, np.ndarray] = {}
    if key(header[0]) == "time" and not _number(header[1]):  # one column per variable
        for i, name in enumerate(header):
            out[column(name)] = np.array([_value(r[i]) for r in rows[1:]])
    else:  # one row per variable
        for r in rows:
            out[column(r[0])] = np.array([_value(v) for v in r[1:]])
    return out


def column(name: str) -> str:
    name = name.strip().strip('"')
    if "[" in name:
        base, subs = name.split("[", 1)
        return f"{key(base)}[{','.join(key(s) for s in subs.rstrip(']').split(','))}]"
    return key(name)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _value(text: str) -> float:
    return float(text) if text.strip() not in ("", "N/A", "NA") else np.nan


@dataclass
class Run:
    imported: Imported
    series: dict[str, np.ndarray]  # sim's series name -> its values per tick


def run(case: str, folder: Path) -> Run:
    """Import the case's model, write the scenario, and run it once with the kernel."""
    imported = translate(model_file(case))
    scenario = folder / f"{case}.yaml"
    scenario.write_text(imported.text)
    model = load(scenario)
    assert not model.sampled and not model.noises, "an imported model has no uncertainty"
    params = parameter_draws(model.parameters, "mc", 1, 1, 0, 1)
    noise = noise_draws(model.noises, 1, 1, model.ticks, 0, 1)
    block = ENGINES["kernel"](model, params, noise, 0, 1, None)
    return Run(imported, {name: values[:, 0] for name, values in block.series.items()})


def reference_name(imported: Imported, series: str, ref: dict[str, np.ndarray]) -> str:
    """The reference column of one of sim's series (`stock_a[entry_1]` -> its original).
    sim names a cell's elements in the order the dimensions are declared; the reference in
    the order the equation writes them, so cells are matched as sets."""
    base, _, subs = series.partition("[")
    name = column(imported.original[base])
    if not subs:
        return name
    cells = {key(imported.original[s]) for s in subs.rstrip("]").split(",")}
    for col in ref:
        head, _, tail = col.partition("[")
        if head == name and set(tail.rstrip("]").split(",")) == cells:
            return col
    return f"{name}[{','.join(sorted(cells))}]"


def mismatches(
    case: str, result: Run, until: float | None = None
) -> tuple[list[str], int, list[str]]:
    """What differs from the reference (empty when all matches), how many series match, and
    which series the reference file didn't save (up to Time `until`, when given)."""
    ref = reference(case)
    times = ref["time"]
    imported = result.imported
    problems, matched, unsaved = [], 0, []
    for series, values in result.series.items():
        name = reference_name(imported, series, ref)
        if name not in ref:
            unsaved.append(series)
            continue
        base = series.partition("[")[0]
        shift = 1 if base in imported.stocks else 0
        t = imported.initial_time + (np.arange(len(values)) + shift) * imported.step
        at = np.searchsorted(times, t - 1e-9 * max(1.0, abs(t[-1])))
        ok = (at < len(times)) & (np.abs(times[np.minimum(at, len(times) - 1)] - t) < 1e-6)
        if until is not None:
            ok &= t <= until
        got, want = values[ok], ref[name][at[ok]]
        if not ok.any():
            problems.append(f"{series}: no reference value at its times")
            continue
        scale = max(1e-6, float(np.nanmax(np.abs(want))))
        bad = ~np.isclose(got, want, rtol=RTOL, atol=RTOL * scale, equal_nan=True)
        if bad.any():
            i = int(np.argmax(bad))
            problems.append(
                f"{series}: at Time {t[ok][i]:g} sim has {got[i]!r}, the reference {want[i]!r}"
                f" ({int(bad.sum())} of {len(got)} values differ)"
            )
        else:
            matched += 1
    return problems, matched, unsaved
