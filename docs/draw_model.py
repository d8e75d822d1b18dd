"""Draw a scenario's stocks and flows with matplotlib: one band per unit, flows as arrows.

    python docs/draw_model.py [scenarios/base.yaml] [docs/model.png]

Stocks are laid out left to right by how far they sit from a source; sources have a dashed
edge, sinks are grey. Solid arrows are flows (labelled with the flow's name). Dotted arrows
join a flow to a flow whose rate reads it through `flow.NAME` or `cum.NAME` - that is how an
exchange across units (shells paid for in oil) is written.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from sim.model import Model, load

HERE = Path(__file__).resolve().parent
UNIT_ORDER = ["shells", "persons", "usd", "bbl", "t", "index", "factories"]
BOX_W, BOX_H = 1.9, 0.42


def layout(model: Model) -> tuple[dict[str, tuple[float, float]], list[tuple[str, float, float]]]:
    """Position of every stock, and (unit, y_top, y_bottom) of every band.

    A stock's column is its distance from a source (a sink sits just right of the furthest
    stock feeding it); within a column, stocks are ordered by the mean height of what feeds
    them, so arrows cross as little as this simple scheme allows.
    """
    by_unit: dict[str, list] = defaultdict(list)
    for s in model.stocks:
        by_unit[s.unit].append(s)
    units = [u for u in UNIT_ORDER if u in by_unit] + sorted(set(by_unit) - set(UNIT_ORDER))
    names = [s.name for s in model.stocks]
    inflows: dict[str, list[str]] = defaultdict(list)
    for f in model.flows:
        inflows[names[f.target]].append(names[f.source])
    kind = {s.name: s.kind for s in model.stocks}
    depth: dict[str, int] = {}

    def depth_of(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name in depth:
            return depth[name]
        if kind[name] == "source" or name in seen:
            return 0
        ups = [depth_of(u, seen | {name}) for u in inflows[name] if u != name]
        depth[name] = 1 + max(ups, default=-1)
        return depth[name]

    pos: dict[str, tuple[float, float]] = {}
    bands = []
    y = 0.0
    step = 0.8
    for unit in units:
        cols: dict[int, list[str]] = defaultdict(list)
        for s in by_unit[unit]:
            cols[depth_of(s.name)].append(s.name)
        rows = max(len(v) for v in cols.values())
        height = step * rows + 0.65
        slot: dict[str, float] = {}
        for col in sorted(cols):
            members = cols[col]
            if col > 0:
                members.sort(
                    key=lambda n: (
                        sum(slot.get(u, 0.0) for u in inflows[n]) / max(1, len(inflows[n]))
                    )
                )
            offset = (rows - len(members)) / 2
            for i, name in enumerate(members):
                slot[name] = offset + i
                pos[name] = (col * 3.4, y - 0.75 - step * (offset + i))
        bands.append((unit, y, y - height))
        y -= height + 0.3
    return pos, bands


def draw(model: Model, out: Path) -> None:
    pos, bands = layout(model)
    width = max(x for x, _ in pos.values()) + BOX_W + 1.2
    depth = -bands[-1][2]
    fig, ax = plt.subplots(figsize=((width + 1.6) * 1.0, (depth + 0.9) * 1.0))
    ax.set_xlim(-1.6, width)
    ax.set_ylim(bands[-1][2] - 0.2, 0.7)
    ax.set_aspect("equal")
    ax.axis("off")

    for i, (unit, top, bottom) in enumerate(bands):
        ax.add_patch(
            FancyBboxPatch(
                (-1.5, bottom),
                width + 1.4,
                top - bottom,
                boxstyle="round,pad=0.02",
                fc="#f4f6fb" if i % 2 == 0 else "#fbf8f2",
                ec="#c8ccd6",
                lw=0.8,
                zorder=0,
            )
        )
        ax.text(
            -1.4, top - 0.12, f"[{unit}]", fontsize=11, weight="bold", va="top", color="#34406b"
        )

    kinds = {s.name: s.kind for s in model.stocks}
    for name, (x, y) in pos.items():
        kind = kinds[name]
        ax.add_patch(
            FancyBboxPatch(
                (x - BOX_W / 2, y - BOX_H / 2),
                BOX_W,
                BOX_H,
                boxstyle="round,pad=0.04",
                fc={"source": "white", "sink": "#dddddd"}.get(kind, "#d6e4ff"),
                ec="#333333",
                lw=1.2,
                ls="--" if kind == "source" else "-",
                zorder=3,
            )
        )
        ax.text(x, y, name, ha="center", va="center", fontsize=8.5, zorder=4)

    names = [s.name for s in model.stocks]
    kinds = {s.name: s.kind for s in model.stocks}
    mids: dict[str, tuple[float, float]] = {}
    pair_count: dict[tuple[str, str], int] = defaultdict(int)
    for f in model.flows:
        a, b = names[f.source], names[f.target]
        (x1, y1), (x2, y2) = pos[a], pos[b]
        k = pair_count[(a, b)]
        pair_count[(a, b)] += 1
        rad = 0.0 if k == 0 else (-1) ** k * 0.12 * ((k + 1) // 2)
        between = [
            py
            for n, (px, py) in pos.items()
            if min(x1, x2) < px < max(x1, x2)
            and kinds[n] != "source"
            and min(y1, y2) - 0.5 < py < max(y1, y2) + 0.5
        ]
        if between:  # skips a column: bow around the boxes in between, on the source's side
            below = y1 < sum(between) / len(between) or (y1 == y2 == between[0])
            rad = (0.3 if below else -0.3) * (1 if x2 > x1 else -1) + 0.06 * k
        dx = BOX_W / 2 if x2 > x1 else -BOX_W / 2 if x2 < x1 else 0
        dy = 0 if dx else (BOX_H / 2 if y2 > y1 else -BOX_H / 2)
        start, end = (x1 + dx, y1 + dy), (x2 - dx, y2 - dy)
        ax.add_patch(
            FancyArrowPatch(
                start,
                end,
                connectionstyle=f"arc3,rad={rad}",
                arrowstyle="-|>",
                mutation_scale=11,
                lw=1.1,
                color="#1f3a93",
                zorder=2,
            )
        )
        # a quadratic arc's midpoint: halfway from the chord's middle to the control point
        cx, cy = end[0] - start[0], end[1] - start[1]
        mx = (start[0] + end[0]) / 2 + 0.5 * rad * cy
        my = (start[1] + end[1]) / 2 - 0.5 * rad * cx
        mids[f.name] = (mx, my)
        label = f.name + (f" (+{f.delay})" if f.delay else "")
        ax.text(
            mx,
            my,
            label,
            fontsize=6.5,
            ha="center",
            va="center",
            color="#1f3a93",
            zorder=5,
            bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 0.4},
        )

    for f in model.flows:
        for ref in f.rate.names:
            prefix, _, other = ref.partition(".")
            if prefix in ("flow", "cum") and other in mids and other != f.name:
                ax.add_patch(
                    FancyArrowPatch(
                        mids[other],
                        mids[f.name],
                        connectionstyle="arc3,rad=0.15",
                        arrowstyle="-|>",
                        mutation_scale=8,
                        lw=0.9,
                        ls=":",
                        color="#b3541e",
                        alpha=0.7,
                        zorder=1,
                    )
                )

    ax.set_title(
        f"{model.name}: {len(model.stocks)} stocks, {len(model.flows)} flows "
        "(dashed box = source, grey = sink, (+d) = delay in months, dotted = rate reads flow.X)",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> None:
    scenario = Path(argv[1]) if len(argv) > 1 else HERE.parent / "scenarios" / "base.yaml"
    out = Path(argv[2]) if len(argv) > 2 else HERE / "model.png"
    draw(load(scenario), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv)
