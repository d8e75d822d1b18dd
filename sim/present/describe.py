"""A compiled model described for people: rich renderables, JSON-ready data, YAML and dot."""

from __future__ import annotations

import json
from typing import Any

import yaml
from rich.console import Group
from rich.table import Table
from rich.text import Text

from sim.model import Model
from sim.present.tables import Fit
from sim.scenario.sources import entries_cited


def as_data(model: Model) -> dict[str, Any]:
    """The resolved scenario as plain data (loads back to an equal scenario)."""
    return model.scenario.dump()


def as_yaml(model: Model) -> str:
    return yaml.safe_dump(as_data(model), sort_keys=False, allow_unicode=True, width=100)


def as_json(model: Model) -> str:
    return json.dumps(as_data(model), indent=2, ensure_ascii=False)


def as_dot(model: Model) -> str:
    """A Graphviz digraph: stocks grouped by unit, flows as labelled edges."""
    lines = [
        f'digraph "{model.name}" {{',
        "  rankdir=LR;",
        '  node [shape=box, fontname="Helvetica"];',
    ]
    shapes = {"source": "ellipse", "sink": "ellipse", "stock": "box"}
    for i, unit in enumerate(model.units):
        lines.append(f'  subgraph cluster_{i} {{ label="{unit}"; style=rounded; color=gray;')
        for s in model.stocks:
            if s.unit == unit:
                style = ", style=dashed" if s.kind != "stock" else ""
                lines.append(f'    "{s.name}" [shape={shapes[s.kind]}{style}];')
        lines.append("  }")
    names = [s.name for s in model.stocks]
    for f in model.flows:
        label = f.name + (f" (+{f.delay})" if f.delay else "")
        lines.append(f'  "{names[f.source]}" -> "{names[f.target]}" [label="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def as_rich(model: Model) -> Group:
    """Parameters, stocks by unit, the flow graph, events and outcomes as rich tables."""
    sc = model.scenario
    head = Text()
    head.append(f"{sc.name}", style="bold")
    if sc.description:
        head.append(f" — {sc.description}")
    head.append(
        f"\n{sc.start}, {sc.months} months; {sc.runs} runs, seed {sc.seed}, sampler {sc.sampler}"
    )
    if len(model.files) > 1:
        head.append("\nfiles: " + " <- ".join(model.files))

    params = Table(title="Parameters", title_justify="left", expand=False)
    for col in ("name", "distribution", "unit", "source"):
        params.add_column(col, overflow="fold")
    for name, spec in model.parameters.items():
        source = Text(spec.source) if spec.source else Text("none given", style="red")
        params.add_row(name, spec.describe(), spec.unit, source)
    cited = Table(title="Sources cited", title_justify="left")
    for col in ("key", "title", "publisher", "date", "reliability"):
        cited.add_column(col)
    for key, entry in entries_cited(sc, model.place).items():
        cited.add_row(
            *(Text(x) for x in (key, entry.title, entry.publisher, entry.date)),
            Text(entry.reliability),
        )

    stocks = Table(title="Stocks by unit", title_justify="left")
    for col in ("unit", "stock", "kind", "initial"):
        stocks.add_column(col)
    for unit in model.units:
        for s in model.stocks:
            if s.unit == unit:
                stocks.add_row(unit, s.name, s.kind, s.initial.text)

    names = [s.name for s in model.stocks]
    flows = Table(title="Flows", title_justify="left")
    for col in ("flow", "from → to", "rate", "delay", "noise"):
        flows.add_column(col, overflow="fold")
    for f in model.flows:
        flows.add_row(
            f.name,
            f"{names[f.source]} → {names[f.target]}",
            f.rate.text,
            str(f.delay) if f.delay else "",
            f.noise.describe() if f.noise else "",
        )

    parts: list[Any] = [head, Fit(params)]
    if cited.rows:
        parts.append(Fit(cited))
    parts += [Fit(stocks, whole=(0, 1)), Fit(flows)]
    if model.variables:
        variables = Table(title="Variables (evaluation order)", title_justify="left")
        variables.add_column("name")
        variables.add_column("expression", overflow="fold")
        for name, expr in model.variables:
            variables.add_row(name, expr.text)
        parts.append(Fit(variables))
    if model.events:
        events = Table(title="Events", title_justify="left")
        for col in ("event", "at", "does"):
            events.add_column(col, overflow="fold")
        for e in model.events:
            if e.kind == "never":
                at = "never"
            elif e.kind == "tick":
                assert isinstance(e.at, float)
                at = f"tick {e.at:g} ({model.date(max(e.at, 0.0))})"
            else:
                at = getattr(e.at, "text", str(e.at))
            does = [f"{k} = {v.text}" for k, v in e.sets] + [
                f"{k} ×= {v.text}" for k, v in e.scales
            ]
            events.add_row(e.name, at, "; ".join(does))
        parts.append(Fit(events))
    outcomes = Table(title="Outcomes", title_justify="left")
    for col in ("outcome", "stat", "of", "unit"):
        outcomes.add_column(col, overflow="fold")
    for o in model.outcomes:
        outcomes.add_row(o.name, o.stat, o.expr.text, o.unit)
    parts.append(Fit(outcomes))
    if model.record:
        parts.append(Text("recorded: " + ", ".join(name for name, _ in model.record)))
    return Group(*parts)
