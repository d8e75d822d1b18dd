"""Write docs/tutorial.ipynb: the notebook tutorial, executed, with its outputs stored so it
reads on GitHub. Run from anywhere: `python3 docs/make_tutorial.py` (needs the test extras:
nbformat, nbclient, ipykernel, pandas). CI executes the committed notebook again
(tests/test_tutorial.py), so a change in sim that breaks a cell fails the build.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "tutorial.ipynb"

CELLS: list[tuple[str, str]] = [
    (
        "md",
        """# `sim` from Python: load, run, compare, plot, DataFrames

This notebook asks the project's first question — *what happens to North Korea's exchange
flows if the war in Ukraine ends?* — from Python rather than the command line. Everything
here is also a `sim` command (see the README and `docs/guide.md`); the Python surface is
`sim.load`, `sim.run`, `sim.compare` and `sim.Results`.

It runs from the repository's root (the scenarios live in `scenarios/`).""",
    ),
    (
        "code",
        """import sim

war_continues = sim.load("scenarios/war_continues.yaml")
war_ends = sim.load("scenarios/war_ends.yaml")
print(war_ends.scenario.description)
print(f"{war_ends.ticks} months from {war_ends.scenario.start}; uncertain: {len(war_ends.sampled)}")
print("outcomes:", ", ".join(o.name for o in war_ends.outcomes))""",
    ),
    (
        "md",
        """## Run

`sim.run` samples the uncertain parameters and runs the model many times. It runs serially
unless you ask for workers (`workers=2`, or `workers=None` for every core), so it is safe in
a notebook and in a plain script. The same seed for both scenarios gives them the same
draws for the parameters they share: their runs are *paired* (common random numbers).""",
    ),
    (
        "code",
        """a = sim.run(war_continues, runs=2000, seed=1)
b = sim.run(war_ends, runs=2000, seed=1)
b""",
    ),
    (
        "md",
        """Each outcome is one number per run. `summary()` gives mean, sd, Monte Carlo
standard error and p05/p50/p95:""",
    ),
    (
        "code",
        """for s in b.summary()[:6]:
    print(f"{s.name:28} {s.p50:>14,.0f} {s.unit:8} [{s.p05:,.0f} .. {s.p95:,.0f}]")""",
    ),
    (
        "md",
        """## Compare

`sim.compare` lines up the runs of each scenario with the first's and gives, per outcome,
the difference with 95% intervals and P(B > A) — here *war ends* minus *war continues*.""",
    ),
    (
        "code",
        """table = sim.compare(a, b)
print(table.legend()[0])
rows = [r for r in table.rows() if r["kind"] == "difference"]
for r in rows[:8]:
    print(f"{r['outcome']:28} mean {r['mean']:>14,.1f}  P(B > A) = {r['p_greater']:.2f}")""",
    ),
    (
        "md",
        """## DataFrames

`to_pandas()` gives the runs (a row per run: parameters, outcomes, status);
`to_pandas("bands")` the recorded series' per-tick mean and quantiles in long ("tidy")
form — one row per (tick, series, statistic) — which is what `groupby` and plotting
libraries want; `to_pandas("paths")` the full paths of runs kept with `keep_paths=`.""",
    ),
    (
        "code",
        """runs = b.to_pandas()
runs[["war_end_month", "fx_from_russia", "china_imports_end"]].describe().round(1)""",
    ),
    (
        "code",
        """bands = b.to_pandas("bands")
bands.head()""",
    ),
    (
        "code",
        """# Does a crisis depend on when the war ends? The share of runs with one, by the year it ends.
runs["war_ends_in"] = (runs["war_end_month"] // 12 + 2024).astype(int)
runs.groupby("war_ends_in").agg(
    runs=("any_crisis", "size"), any_crisis=("any_crisis", "mean"), fuel_crisis=("fuel_crisis", "mean")
).round(2)""",
    ),
    (
        "md",
        """## Plot

The long bands plot directly; here the median and p05–p95 band of one recorded series in
both scenarios.""",
    ),
    (
        "code",
        """import matplotlib.pyplot as plt

series = b.series_names[0]
fig, ax = plt.subplots(figsize=(7, 3))
for res in (a, b):
    band = res.to_pandas("bands").pivot_table(
        index="date", columns=["series", "statistic"], values="value"
    )[series]
    ax.fill_between(band.index, band["p05"], band["p95"], alpha=0.25)
    ax.plot(band.index, band["p50"], label=res.name)
ax.set_title(f"{series}: median and p05-p95 of {b.n_runs:,} runs")
ax.set_xticks(band.index[::24])
ax.legend()
plt.show()""",
    ),
    (
        "md",
        """## Export

Tables go out as files: the runs as Parquet or CSV through pandas, a comparison as CSV rows
(`table.rows()`, as `sim compare --csv` prints) or an Excel workbook
(`sim compare ... --xlsx cmp.xlsx`).""",
    ),
    (
        "code",
        """import pandas as pd

pd.DataFrame(table.rows()).query("kind == 'difference'")[
    ["outcome", "unit", "mean", "mean_low", "mean_high", "p_greater"]
].head()""",
    ),
]


def build() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell(text) if kind == "md" else nbformat.v4.new_code_cell(text)
        for kind, text in CELLS
    ]
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int = 600) -> nbformat.NotebookNode:
    """Run every cell in the repository's root, in place; raises on the first failing cell."""
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    return nb


if __name__ == "__main__":
    notebook = execute(build())
    for cell in notebook.cells:  # outputs stay; what varies run to run does not
        cell.metadata.pop("execution", None)
    nbformat.write(notebook, OUT)
    print(f"wrote {OUT}")
