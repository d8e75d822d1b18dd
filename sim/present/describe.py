"""A compiled model described for people: rich renderables, JSON-ready data, YAML and dot."""

from __future__ import annotations

import json
from typing import Any

import yaml
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from sim.model import Model
from sim.present.numbers import number
from sim.present.tables import Fit
from sim.scenario.sources import entries_cited
from sim.study.posterior import Posterior, drawn_as_usual


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
    shapes = {"source": "ellipse", "sink": "ellipse", "stock": "box", "balance": "box"}
    for i, unit in enumerate(model.units):
        lines.append(f'  subgraph cluster_{i} {{ label="{unit}"; style=rounded; color=gray;')
        for s in model.stocks:
            if s.unit == unit:
                style = {"source": ", style=dashed", "sink": ", style=dashed"}.get(s.kind, "")
                style += ", peripheries=2" if s.kind == "balance" else ""  # may go below zero
                label = f', label="{_over(s.name, s.dims)}"' if s.dims else ""
                lines.append(f'    "{s.name}" [shape={shapes[s.kind]}{style}{label}];')
        lines.append("  }")
    names = [s.name for s in model.stocks]
    for f in model.flows:
        label = _over(f.name, f.dims) + (f" (+{f.delay * model.step:g})" if f.delay else "")
        both = ", dir=both" if f.two_way else ""  # either way, by the rate's sign
        lines.append(f'  "{names[f.source]}" -> "{names[f.target]}" [label="{label}"{both}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def as_rich(model: Model, posterior: Posterior | None = None) -> Group:
    """Parameters, stocks by unit, the flow graph, events and outcomes as rich tables; with
    a `posterior`, which parameters a run with it draws from the posterior."""
    sc = model.scenario
    head = Text()
    head.append(f"{sc.name}", style="bold")
    if sc.description:
        head.append(f" — {sc.description}")
    head.append(
        f"\n{sc.start}, {sc.months} months"
        + (f" in ticks of {model.step:g} months" if model.step != 1 else "")
        + f"; {sc.runs} runs, seed {sc.seed}, sampler {sc.sampler}"
    )
    if len(model.files) > 1:
        head.append("\nfiles: " + " <- ".join(model.files))
    held: set[str] = set()
    if posterior is not None:
        held = set(posterior.names)
        usual = drawn_as_usual(posterior, model)
        head.append(
            f"\nwith --posterior {posterior.folder} (sha256 {posterior.short}…, "
            f"{posterior.samples:,} samples, calibrated on "
            f"{_calibrated_on(posterior.manifest)}): {len(held)} parameter"
            f"{'s' * (len(held) != 1)} drawn from the posterior, "
            + (f"{len(usual)} from their priors" if usual else "none from priors")
        )

    parts: list[Any] = [head]
    if model.dimensions:
        dims = Table(title="Dimensions", title_justify="left")
        dims.add_column("dimension")
        dims.add_column("elements", overflow="fold")
        for dim, elements in model.dimensions.items():
            dims.add_row(escape(dim), escape(", ".join(elements)) + f" ({len(elements)})")
        parts.append(Fit(dims))

    params = Table(title="Parameters", title_justify="left", expand=False)
    for col in ("name", "distribution", "unit", "source"):
        params.add_column(col, overflow="fold")
    if posterior is not None:
        params.add_column("drawn from")
    for name, specs in _parameters(model):
        first = specs[0][1]
        shown = {spec.describe() for _, spec in specs}
        if len(shown) == 1:
            described = first.describe() + (" in every cell" if len(specs) > 1 else "")
        else:  # each cell by its elements: food: U(80, 120); fuel: ...
            described = "; ".join(f"{cell}: {spec.describe()}" for cell, spec in specs)
        source = Text(first.source) if first.source else Text("none given", style="red")
        row: list[str | Text] = [Text(name), Text(described), first.unit, source]
        if posterior is not None:
            cells = {cell for cell, _ in specs} | {name}
            row.append(
                "posterior" if cells & held else "prior" if cells & set(model.sampled) else "fixed"
            )
        params.add_row(*row)
    parts.append(Fit(params))
    cited = Table(title="Sources cited", title_justify="left")
    for col in ("key", "title", "publisher", "date", "reliability"):
        cited.add_column(col)
    for key, entry in entries_cited(sc, model.place).items():
        cited.add_row(
            *(Text(x) for x in (key, entry.title, entry.publisher, entry.date)),
            Text(entry.reliability),
        )
    if cited.rows:
        parts.append(Fit(cited))
    if posterior is not None and observations(posterior.manifest.get("observations")):
        parts.append(observation_table(posterior.manifest.get("observations")))

    stocks = Table(title="Stocks by unit", title_justify="left")
    for col in ("unit", "stock", "kind", "initial"):
        stocks.add_column(col)
    for unit in model.units:
        for s in model.stocks:
            if s.unit == unit:
                stocks.add_row(unit, escape(_over(s.name, s.dims)), s.kind, escape(s.initial.text))

    names = [s.name for s in model.stocks]
    flows = Table(title="Flows", title_justify="left")
    for col in ("flow", "from → to", "rate", "delay", "noise"):
        flows.add_column(col, overflow="fold")
    for f in model.flows:
        ends = (
            _over(names[f.source], f.source_dims),
            _over(names[f.target], f.target_dims),
        )
        flows.add_row(
            escape(_over(f.name, f.dims)),
            escape(f"{ends[0]} {'↔' if f.two_way else '→'} {ends[1]}"),
            escape(f.rate.text),
            f"{f.delay * model.step:g}" if f.delay else "",  # months, as written
            (f.noise.describe() + (" per cell" if f.dims else "")) if f.noise else "",
        )
    parts += [Fit(stocks, whole=(0, 1)), Fit(flows)]
    if model.data:
        data = Table(title="Data series", title_justify="left")
        for col in ("name", "file", "column", "beyond the rows"):
            data.add_column(col, overflow="fold")
        for d in model.data:
            series = (sc.data or {})[d.name]
            column = series.column or d.name
            column += "[" + ",".join(d.dims) + "]" if d.dims else ""
            data.add_row(
                escape(_over(d.name, d.dims)), series.file, escape(column), series.extrapolate
            )
        parts.append(Fit(data))
    if model.variables:
        variables = Table(title="Variables (evaluation order)", title_justify="left")
        variables.add_column("name")
        variables.add_column("expression", overflow="fold")
        for name, expr in model.variables:
            variables.add_row(escape(_over(name, model.dims(name))), escape(expr.text))
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
                unit = "tick" if model.step == 1 else "month"  # at: is in months
                at = f"{unit} {e.at:g} ({model.date_at(max(e.at, 0.0))})"
            else:
                at = getattr(e.at, "text", str(e.at))
            does = [f"{k} = {v.text}" for k, v in e.sets] + [
                f"{k} ×= {v.text}" for k, v in e.scales
            ]
            events.add_row(e.name, escape(at), escape("; ".join(does)))
        parts.append(Fit(events))
    outcomes = Table(title="Outcomes", title_justify="left")
    for col in ("outcome", "stat", "of", "unit"):
        outcomes.add_column(col, overflow="fold")
    shown_outcomes: set[str] = set()
    for o in model.outcomes:
        if o.declared in shown_outcomes:
            continue
        shown_outcomes.add(o.declared)
        whole = o.expr.whole
        if whole is None:
            outcomes.add_row(escape(o.name), o.stat, escape(o.expr.text), o.unit)
        else:  # an arrayed outcome: one column per cell
            name = _over(o.declared, whole.dims) + " (a column per cell)"
            outcomes.add_row(escape(name), o.stat, escape(whole.text), o.unit)
    parts.append(Fit(outcomes))
    if model.record:
        recorded: dict[str, None] = {}
        for name, expr in model.record:
            whole = expr.whole
            recorded[_over(name.split("[")[0], whole.dims) if whole else name] = None
        parts.append(Text("recorded: " + ", ".join(recorded)))
    return Group(*parts)


def _over(name: str, dims: tuple[str, ...]) -> str:
    """An arrayed item as people read it: store[good], imports[partner, good]."""
    return f"{name}[{', '.join(dims)}]" if dims else name


def declared_parameters(model: Model) -> list[tuple[str, list[tuple[str, Any]]]]:
    """Parameters grouped as `sim show` lists them (`_parameters`): for `sim explore`."""
    return _parameters(model)


def _parameters(model: Model) -> list[tuple[str, list[tuple[str, Any]]]]:
    """Parameters as declared: a scalar on its own, an arrayed one with its cells (by their
    elements: `food`, `china,food`), in the scenario's order."""
    out: list[tuple[str, list[tuple[str, Any]]]] = []
    arrayed: dict[str, list[tuple[str, Any]]] = {}
    for cell, spec in model.parameters.items():
        base = cell.split("[", 1)[0]
        dims = model.dims(base)
        if not dims or "[" not in cell:
            out.append((cell, [(cell, spec)]))
            continue
        if base not in arrayed:
            arrayed[base] = []
            out.append((_over(base, dims), arrayed[base]))
        arrayed[base].append((cell[len(base) + 1 : -1], spec))
    return out


# -- a posterior a study drew from: said wherever its results are shown ----------------------


def _calibrated_on(manifest: dict[str, Any]) -> str:
    scenario = manifest.get("scenario")
    name = scenario.get("name") if isinstance(scenario, dict) else None
    return f"scenario {name}" if name else "an unnamed scenario"


def posterior_line(info: dict[str, Any]) -> str:
    """One sentence on the posterior a study drew from (a run manifest's `posterior`)."""
    held = list(info.get("parameters", []))
    usual = list(info.get("drawn_as_usual", []))
    ess = info.get("ess")
    text = (
        f"{len(held)} parameter{'s' * (len(held) != 1)} drawn from the posterior in "
        f"{info.get('folder')} (sha256 {str(info.get('sha256', ''))[:12]}…"
        + (f", effective sample size {number(float(ess))}" if isinstance(ess, int | float) else "")
        + f"): {_names(held)}"
    )
    if usual:
        text += f"; drawn from their priors as usual: {_names(usual)}"
    return text


NAMES_SHOWN = 12  # a line names at most this many parameters; the manifest lists them all


def _names(names: list[str]) -> str:
    if len(names) <= NAMES_SHOWN:
        return ", ".join(names)
    shown = ", ".join(names[:NAMES_SHOWN])
    return f"{shown} and {len(names) - NAMES_SHOWN} more (manifest.json lists them)"


def observations(data: Any) -> dict[str, dict[str, Any]]:
    """A calibration's observation table, keeping only well-formed rows."""
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, dict)}


OBSERVATION_COLUMNS = ("observation", "use", "observed", "sd", "p05", "p50", "p95", "z", "covered")


def observation_rows(data: Any) -> list[list[str]]:
    """The observation table as text cells, in OBSERVATION_COLUMNS order: observed value and
    its sd against the posterior predictive p05/p50/p95, z, and (held out) whether the 90%
    predictive interval covers it."""
    rows = []
    for name, o in observations(data).items():
        covered = o.get("covered")
        rows.append(
            [
                name,
                str(o.get("use", "")),
                _num(o.get("observed"))
                + (f" {o['unit']}" if o.get("unit") not in (None, "", "1") else ""),
                _num(o.get("sd")),
                _num(o.get("p05")),
                _num(o.get("p50")),
                _num(o.get("p95")),
                _num(o.get("z")),
                "yes" if covered is True else "no" if covered is False else "",
            ]
        )
    return rows


def observation_table(data: Any, title: str = "Observations (posterior predictive)") -> Table:
    """The calibration's observation table as a rich table."""
    table = Table(title=title, title_justify="left")
    for k, col in enumerate(OBSERVATION_COLUMNS):
        table.add_column(col, justify="left" if k < 2 or col == "covered" else "right")
    for row in observation_rows(data):
        style = "yellow" if row[-1] == "no" else None
        table.add_row(*(Text(cell) for cell in row), style=style)
    return table


def _num(x: Any) -> str:
    return number(float(x)) if isinstance(x, int | float) and not isinstance(x, bool) else "–"
