"""Write each peer case's expected.csv from PySD's run of its Vensim model.

Run it with a Python that has PySD (not a dependency of sim; CI only reads the committed
CSVs):

    python3 -m venv /tmp/pysd-venv && /tmp/pysd-venv/bin/pip install pysd pyyaml
    /tmp/pysd-venv/bin/python tests/peers/make_expected.py            # every case
    /tmp/pysd-venv/bin/python tests/peers/make_expected.py smooth     # one case

A case is a folder here with `model.mdl` (the Vensim model), `model.yaml` (the same model in
sim's language) and `peer.yaml`, which maps each series sim records to a PySD column and says
when PySD reports it: sim records a stock (and flow.NAME, cum.NAME) after tick k's transfer,
which is PySD's value at t_k + step (`at: end`), and a variable as computed at the start of
tick k, PySD's value at t_k (`at: start`). `scale` multiplies PySD's value (a flow's amount in
a tick is its rate times the step). The CSV has a `tick` column and one column per series, at
full precision.
"""

from __future__ import annotations

import csv
import shutil
import sys
import tempfile
from pathlib import Path

import pysd  # type: ignore[import-not-found]
import yaml

HERE = Path(__file__).resolve().parent


def expected(case: Path) -> None:
    scenario = yaml.safe_load((case / "model.yaml").read_text())
    peer = yaml.safe_load((case / "peer.yaml").read_text())["series"]
    step = float(scenario.get("step", 1))
    ticks = round(scenario["months"] / step)
    columns = sorted({spec["pysd"] for spec in peer.values()})
    with tempfile.TemporaryDirectory() as tmp:  # PySD writes its translation beside the model
        shutil.copy(case / "model.mdl", tmp)
        out = pysd.read_vensim(str(Path(tmp) / "model.mdl")).run(return_columns=columns)
    times = out.index.to_numpy()
    rows = []
    for k in range(ticks):
        row = {"tick": k}
        for name, spec in peer.items():
            t = k * step + (step if spec.get("at", "start") == "end" else 0.0)
            i = int(abs(times - t).argmin())
            if abs(times[i] - t) > 1e-9:
                raise SystemExit(f"{case.name}: PySD saved no value at time {t}")
            row[name] = repr(float(out[spec["pysd"]].iloc[i]) * float(spec.get("scale", 1)))
        rows.append(row)
    with open(case / "expected.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["tick", *peer])
        writer.writeheader()
        writer.writerows(rows)
    print(f"{case.name}: {ticks} ticks, {len(peer)} series (PySD {pysd.__version__})")


def main(names: list[str]) -> None:
    cases = (
        [HERE / n for n in names] if names else sorted(p.parent for p in HERE.glob("*/peer.yaml"))
    )
    for case in cases:
        expected(case)


if __name__ == "__main__":
    main(sys.argv[1:])
