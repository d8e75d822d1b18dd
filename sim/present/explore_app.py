"""The web page of `sim explore`: a Starlette app over an `Explorer`, with Bokeh charts.

Why these: Starlette (with uvicorn) is a small, well-kept ASGI framework — a few routes and
JSON, nothing more is needed — and Bokeh draws interactive charts in the browser from a
JavaScript library (BokehJS, with its plotting API) that ships inside the Python package, so
the page loads nothing from the internet: the app serves BokehJS from the installed package at
/static/. The page draws the charts itself from the numbers an update returns (ECDFs through
quantiles, bands per tick) and, when a lever moves, only replaces their data: building them in
Python and sending Bokeh's JSON took seconds per update for the war model's charts.

Routes: `/` the page; `/api/update` (POST, JSON: a setting and the outcomes picked) the
comparison as numbers, sentences and charts; `/api/save` (POST) writes the setting as
scenario files that `extends:` the originals; `/download/KEY.csv` the comparison shown.
Only JSON requests are taken (a page elsewhere cannot post one without the browser asking
first), only the app's own host names are answered, and nothing a request carries is used as
a path or evaluated: a setting is lever names and numbers, checked by `Explorer.check`.

A newer update makes an older one stale: each update takes a number; one still waiting when
a newer one arrives is answered `{"stale": true}` without running, and the page drops any
answer that is not for its latest request.
"""

from __future__ import annotations

import asyncio
import html
import json
from pathlib import Path
from typing import Any

import bokeh
from bokeh.util.paths import bokehjs_path
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from sim.present.explore import Explorer, SettingError, comparison_csv
from sim.present.figures import COLORS
from sim.study import store

# BokehJS and its plotting API, from the installed bokeh package: the page's only scripts.
STATIC = {name: Path(bokehjs_path()) / "js" / name for name in ("bokeh.min.js", "bokeh-api.min.js")}
MAX_BODY = 1_000_000  # bytes of a request: a setting is small


class Updates:
    """The newest update wins: a number per request, and one study at a time."""

    def __init__(self) -> None:
        self.latest = 0
        self.lock = asyncio.Lock()

    def ticket(self) -> int:
        self.latest += 1
        return self.latest


def app(explorer: Explorer, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Starlette:
    """The explorer's web app."""
    updates = Updates()

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(render_page(explorer))

    async def static(request: Request) -> Response:
        path = STATIC.get(request.path_params["name"])
        if path is None:
            return Response("not found", status_code=404)
        return FileResponse(path, media_type="text/javascript")

    async def update(request: Request) -> JSONResponse:
        body = await _json(request)
        if isinstance(body, JSONResponse):
            return body
        ticket = updates.ticket()
        async with updates.lock:
            if ticket != updates.latest:
                return JSONResponse({"stale": True, "ticket": ticket})
            try:
                view = await run_in_threadpool(
                    explorer.update, body.get("setting") or {}, body.get("outcomes")
                )
            except SettingError as exc:
                return JSONResponse({"errors": exc.problems}, status_code=422)
        return JSONResponse(view.data | {"ticket": ticket})

    async def save(request: Request) -> JSONResponse:
        body = await _json(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            files = explorer.saved_files(body.get("setting") or {})
        except SettingError as exc:
            return JSONResponse({"errors": exc.problems}, status_code=422)
        for path, text in files:
            store.write_bytes(text.encode(), path)
        paths = [p for p, _ in files]
        return JSONResponse(
            {"files": [str(p) for p in paths], "commands": explorer.commands(paths)}
        )

    async def download(request: Request) -> Response:
        view = explorer.view(request.path_params["key"])
        if view is None:
            return Response("no such comparison (move a lever to make it again)", status_code=404)
        return Response(
            comparison_csv(view.comparison),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="comparison-{view.key}.csv"'},
        )

    return Starlette(
        routes=[
            Route("/", page),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            Route("/static/{name}", static),
            Route("/api/update", update, methods=["POST"]),
            Route("/api/save", save, methods=["POST"]),
            Route("/download/{key}.csv", download),
        ],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))],
    )


async def _json(request: Request) -> dict[str, Any] | JSONResponse:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return JSONResponse({"errors": {"": "send JSON"}}, status_code=415)
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return JSONResponse({"errors": {"": "request too large"}}, status_code=413)
    try:
        body = json.loads(raw)
    except ValueError:
        return JSONResponse({"errors": {"": "not JSON"}}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"errors": {"": "expected a JSON object"}}, status_code=400)
    return body


def render_page(explorer: Explorer) -> str:
    """The page: levers and outcome picker on the left, numbers and charts on the right.
    Scenario text reaches it as JSON and is shown with textContent, never as markup."""
    state = {
        "labels": list(explorer.labels),
        "files": [s.path.name for s in explorer.scenarios],
        "levers": [lever.as_dict() for lever in explorer.levers],
        "outcomes": [
            {"name": o.name, "unit": o.unit, "description": _meaning(explorer, o.declared)}
            for o in explorer.scenarios[0].model.outcomes
            if o.name in explorer.outcomes
        ],
        "picked": explorer.default_outcomes,
        "runs": explorer.runs,
        "seed": explorer.seed,
        "posterior": str(explorer.posterior.folder) if explorer.posterior is not None else None,
    }
    # JSON inside <script>: "<" escaped so no text can close the element.
    blob = json.dumps(state, allow_nan=False).replace("<", "\\u003c")
    title = html.escape(" vs ".join(explorer.labels))
    return (
        PAGE.replace("__TITLE__", title)
        .replace("__COLORS__", json.dumps(list(COLORS)))
        .replace("__STATE__", blob)
        .replace("__BOKEH__", bokeh.__version__)
    )


def _meaning(explorer: Explorer, declared: str) -> str:
    spec = explorer.scenarios[0].model.scenario.outcomes.get(declared)
    return (spec.description or "") if spec is not None else ""


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>sim explore: __TITLE__</title>
<script src="/static/bokeh.min.js?v=__BOKEH__"></script>
<script src="/static/bokeh-api.min.js?v=__BOKEH__"></script>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{padding:10px 18px;background:#1d2330;color:#fff;display:flex;gap:18px;align-items:center}
header h1{font-size:18px;margin:0;font-weight:600}
header .meta{font-size:13px;opacity:.8}
#status{margin-left:auto;font-size:13px;display:flex;align-items:center;gap:8px}
#status .spin{width:14px;height:14px;border:2px solid #fff;border-top-color:transparent;border-radius:50%;visibility:hidden}
#status[data-state=busy] .spin{visibility:visible;animation:spin .8s linear infinite}
@keyframes spin{to{transform:rotate(360deg)}}
main{display:grid;grid-template-columns:360px 1fr;gap:0;min-height:calc(100vh - 44px)}
aside{background:#fff;border-right:1px solid #dde1e7;padding:10px 14px;overflow-y:auto;max-height:calc(100vh - 64px);position:sticky;top:0}
aside h2{font-size:14px;margin:14px 0 6px;text-transform:uppercase;letter-spacing:.04em;color:#5b6475}
.lever{padding:6px 0;border-bottom:1px solid #eef0f3}
.lever .top{display:flex;justify-content:space-between;align-items:baseline;gap:6px}
.lever .name{font-weight:600;font-size:13px;cursor:help;overflow-wrap:anywhere}
.lever .unit{font-weight:400;color:#5b6475;font-size:12px}
.lever .keep{font-size:12px;color:#5b6475;white-space:nowrap}
.lever .ctl{display:flex;gap:6px;align-items:center;margin-top:3px}
.lever input[type=range]{flex:1}
.lever input[type=number]{width:84px}
.lever[data-keep=true] .ctl{opacity:.45}
.lever .err{color:#b00020;font-size:12px}
.lever .why{color:#5b6475;font-size:12px}
#outcomes label{display:block;font-size:13px;cursor:help}
#picker{margin-top:10px;font-size:13px}#picker summary{cursor:pointer;font-weight:600}
section{padding:10px 18px}
table{border-collapse:collapse;background:#fff;font-size:13px}
th,td{padding:5px 9px;border-bottom:1px solid #e3e6eb;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#eef0f3;font-weight:600}
#sentences li{margin:3px 0;font-size:14px}
#problem{color:#b00020;font-weight:600;min-height:1em}
.chart{background:#fff;margin:6px 0;display:inline-block}
#fans{display:flex;flex-wrap:wrap;gap:6px}
button{font-size:13px;padding:5px 10px}
#saved{font-size:12px;font-family:ui-monospace,monospace;white-space:pre-wrap}
.actions{display:flex;gap:10px;align-items:center;margin-top:8px}
</style></head>
<body>
<header><h1>sim explore</h1><span class="meta" id="meta"></span>
<div id="status" data-state="busy"><span class="spin"></span><span id="status-text">running…</span></div></header>
<main>
<aside>
<div class="actions"><button id="save" type="button">Save this setting</button>
<a id="csv" href="#" download>Download comparison (CSV)</a></div>
<div id="saved"></div>
<details id="picker"><summary>Outcomes shown (pick)</summary><div id="outcomes"></div></details>
<div id="levers"></div>
</aside>
<div>
<section><div id="problem"></div>
<table id="numbers"><thead><tr><th>outcome</th><th class="la"></th><th class="lb"></th>
<th>B − A: median (90% of runs)</th><th>P(B &gt; A)</th></tr></thead><tbody></tbody></table>
<ul id="sentences"></ul><ul id="thresholds"></ul><p id="notes"></p>
</section>
<section><div id="charts"></div></section>
<section><h3>Recorded series (median, 50% and 90% bands)</h3><div id="fans"></div></section>
</div>
</main>
<script id="state" type="application/json">__STATE__</script>
<script>
"use strict";
const S = JSON.parse(document.getElementById("state").textContent);
const setting = {};            // lever name -> number, for levers not kept as written
let picked = S.picked.slice();
let seq = 0, shown = 0, controller = null, timer = null;
const el = (tag, attrs, text) => { const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text; return e; };
const status = (state, text) => { const s = document.getElementById("status");
  s.dataset.state = state; document.getElementById("status-text").textContent = text; };
document.getElementById("meta").textContent =
  `${S.labels[0]} vs ${S.labels[1]} · ${S.runs.toLocaleString()} runs · seed ${S.seed}` +
  (S.posterior ? ` · posterior ${S.posterior}` : "");
document.querySelector("th.la").textContent = `A: ${S.labels[0]} median (90%)`;
document.querySelector("th.lb").textContent = `B: ${S.labels[1]} median (90%)`;

function tip(l) {
  return [l.written && `as written: ${l.written}`, l.description, l.unit && `unit: ${l.unit}`,
          l.source && `source: ${l.source}`].filter(Boolean).join("\\n");
}
function buildLevers() {
  const box = document.getElementById("levers"); let group = null;
  for (const l of S.levers) {
    if (l.group !== group) { group = l.group; box.appendChild(el("h2", {}, group)); }
    const d = el("div", {class: "lever", "data-name": l.name, "data-keep": "true"});
    const top = el("div", {class: "top"}); const name = el("span", {class: "name", title: tip(l)}, l.name);
    if (l.unit && l.unit !== "1") name.appendChild(el("span", {class: "unit"}, ` ${l.unit}`));
    top.appendChild(name);
    const keepLabel = el("label", {class: "keep"}); const keep = el("input", {type: "checkbox", class: "keep-box"});
    keep.checked = true; keepLabel.appendChild(keep);
    keepLabel.appendChild(document.createTextNode(l.kind === "event" ? " as written" : (l.uncertain ? " keep uncertain" : " as written")));
    top.appendChild(keepLabel); d.appendChild(top);
    const ctl = el("div", {class: "ctl"});
    const range = el("input", {type: "range", min: l.low, max: l.high, step: l.step, value: l.initial, "aria-label": l.name});
    const num = el("input", {type: "number", step: "any", value: +l.initial.toPrecision(6), "aria-label": l.name + " value"});
    ctl.appendChild(range); ctl.appendChild(num); d.appendChild(ctl);
    d.appendChild(el("div", {class: "err"}));
    if (!l.settable) { keep.disabled = range.disabled = num.disabled = true; d.appendChild(el("div", {class: "why"}, l.why)); }
    const set = (v) => { d.dataset.keep = "false"; keep.checked = false; setting[l.name] = v; schedule(); };
    range.addEventListener("input", () => { num.value = range.value; set(Number(range.value)); });
    num.addEventListener("change", () => { if (num.value !== "") { range.value = num.value; set(Number(num.value)); } });
    keep.addEventListener("change", () => {
      if (keep.checked) { d.dataset.keep = "true"; delete setting[l.name]; schedule(); }
      else set(Number(num.value));
    });
    box.appendChild(d);
  }
}
function buildOutcomes() {
  const box = document.getElementById("outcomes");
  for (const o of S.outcomes) {
    const lab = el("label", {title: [o.description, o.unit && `unit: ${o.unit}`].filter(Boolean).join("\\n")});
    const c = el("input", {type: "checkbox", value: o.name}); c.checked = picked.includes(o.name);
    c.addEventListener("change", () => {
      picked = S.outcomes.map(x => x.name).filter(n => box.querySelector(`input[value="${CSS.escape(n)}"]`).checked);
      schedule(); });
    lab.appendChild(c); lab.appendChild(document.createTextNode(" " + o.name)); box.appendChild(lab);
  }
}
function schedule() { clearTimeout(timer); timer = setTimeout(update, 60); }
async function update() {
  const mine = ++seq;
  if (controller) controller.abort();      // the older request is stale: drop it
  controller = new AbortController();
  status("busy", "running…");
  let resp, data;
  try {
    resp = await fetch("/api/update", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({setting, outcomes: picked}), signal: controller.signal});
    data = await resp.json();
  } catch (e) { if (e.name === "AbortError") return; status("error", "connection lost"); return; }
  if (mine !== seq || data.stale) return;  // a newer request is on its way
  for (const e of document.querySelectorAll(".lever .err")) e.textContent = "";
  if (!resp.ok) {
    const errs = data.errors || {}; const general = [];
    for (const [name, why] of Object.entries(errs)) {
      const d = document.querySelector(`.lever[data-name="${CSS.escape(name)}"] .err`);
      if (d) d.textContent = why; else general.push(name ? `${name}: ${why}` : why);
    }
    document.getElementById("problem").textContent = "Not run: " + (general.join("; ") || "see the lever marked in red") + ". The charts show the last setting that ran.";
    status("error", "refused"); document.body.dataset.refused = String(mine); return;
  }
  document.getElementById("problem").textContent = "";
  await draw(data); shown = mine;
  document.body.dataset.key = data.key; document.body.dataset.shown = String(mine);
  status("ready", `${data.seconds.toFixed(2)} s`);
}
function cell(tr, text, attrs) { tr.appendChild(el("td", attrs || {}, text)); }
async function draw(data) {
  window.explored = data;
  const tbody = document.querySelector("#numbers tbody"); tbody.textContent = "";
  const ul = document.getElementById("sentences"); ul.textContent = "";
  for (const o of data.outcomes) {
    const tr = el("tr", {"data-outcome": o.outcome});
    const name = el("td", {title: o.description}, o.outcome); tr.appendChild(name);
    cell(tr, o.text.a, {class: "a", "data-p50": o.a.p50}); cell(tr, o.text.b, {class: "b", "data-p50": o.b.p50});
    cell(tr, o.text.difference, {class: "diff", "data-median": o.difference.median});
    cell(tr, o.text.p_greater, {class: "pgt", "data-p": o.difference.p_greater});
    tbody.appendChild(tr); ul.appendChild(el("li", {}, o.sentence));
  }
  const th = document.getElementById("thresholds"); th.textContent = "";
  for (const t of data.thresholds) th.appendChild(el("li", {}, t));
  document.getElementById("notes").textContent = [...data.pairing, ...data.notes].join(" ");
  document.getElementById("csv").href = `/download/${data.key}.csv`;
  await drawCharts(data);
}
const COLORS = __COLORS__;
const P = Bokeh.Plotting;
const made = {};   // chart key -> {sources}: built once, then only their data replaced
const numeral = () => new Bokeh.NumeralTickFormatter({format: "0.[00]a"});
const probs = n => Array.from({length: n}, (_, i) => n > 1 ? i / (n - 1) : 0);
function chartBox(parent, id) {
  let d = document.getElementById(id);
  if (!d) { d = el("div", {id, class: "chart"}); parent.appendChild(d); }
  return d;
}
async function drawCharts(data) {
  const jobs = [];
  const charts = document.getElementById("charts");
  const wanted = new Set(data.outcomes.map(o => "chart-" + o.outcome));
  for (const d of [...charts.children]) if (!wanted.has(d.id)) { d.remove(); delete made[d.id]; }
  for (const o of data.outcomes) {
    const id = "chart-" + o.outcome;
    const sides = {a: o.ecdf.a, b: o.ecdf.b, d: o.ecdf.difference};
    if (!made[id]) {
      const box = chartBox(charts, id); box.textContent = "";
      const unit = (o.unit && o.unit !== "1") ? ` (${o.unit})` : "";
      const src = {};
      for (const k of ["a", "b", "d"])
        src[k] = new Bokeh.ColumnDataSource({data: {x: [], p: []}, name: `ecdf-${k}-${o.outcome}`});
      const left = P.figure({width: 380, height: 230, title: `${o.outcome}: each scenario`, toolbar_location: null});
      ["a", "b"].forEach((k, i) => left.step({x: {field: "x"}, y: {field: "p"}, mode: "after", source: src[k],
        line_color: COLORS[i], line_width: 2, legend_label: data.labels[i]}));
      left.legend.location = "bottom_right";
      left.xaxis.axis_label = o.outcome + unit; left.yaxis.axis_label = "share of runs ≤ x";
      left.xaxis.formatter = numeral();
      const right = P.figure({width: 380, height: 230, title: `${data.labels[1]} − ${data.labels[0]}, run by run`, toolbar_location: null});
      right.step({x: {field: "x"}, y: {field: "p"}, mode: "after", source: src.d, line_color: COLORS[2], line_width: 2});
      right.add_layout(new Bokeh.Span({location: 0, dimension: "height", line_color: "#5b6475"}));
      right.xaxis.axis_label = "B − A" + unit; right.yaxis.axis_label = "share of runs ≤ x";
      right.xaxis.formatter = numeral();
      jobs.push(P.show(new Bokeh.Row({children: [left, right]}), box));
      made[id] = src;
    }
    for (const k of ["a", "b", "d"]) made[id][k].data = {x: sides[k], p: probs(sides[k].length)};
  }
  const fans = document.getElementById("fans");
  data.fans.forEach((fan, n) => {
    const id = "fan-" + fan.series;
    const cols = fan.bands.map(b => ({x: b.date.map(d => Date.parse(d + "-01T00:00:00Z")),
      p05: b.p05.map(v => v ?? NaN), p25: b.p25.map(v => v ?? NaN), p50: b.p50.map(v => v ?? NaN),
      p75: b.p75.map(v => v ?? NaN), p95: b.p95.map(v => v ?? NaN)}));
    if (!made[id]) {
      const src = cols.map((c, k) => new Bokeh.ColumnDataSource({data: c, name: `fan-${k}-${fan.series}`}));
      const p = P.figure({width: 380, height: 210, title: fan.series + (fan.unit ? ` (${fan.unit})` : ""),
        x_axis_type: "datetime", toolbar_location: null});
      src.forEach((s, k) => {
        p.varea({x: {field: "x"}, y1: {field: "p05"}, y2: {field: "p95"}, source: s, fill_color: COLORS[k], fill_alpha: 0.15});
        p.varea({x: {field: "x"}, y1: {field: "p25"}, y2: {field: "p75"}, source: s, fill_color: COLORS[k], fill_alpha: 0.25});
        p.line({x: {field: "x"}, y: {field: "p50"}, source: s, line_color: COLORS[k], line_width: 2, legend_label: data.labels[k]});
      });
      p.legend.location = "top_left"; p.legend.label_text_font_size = "8pt"; p.legend.background_fill_alpha = 0.6;
      p.yaxis.formatter = numeral();
      jobs.push(P.show(p, chartBox(fans, id)));
      made[id] = src;
    } else made[id].forEach((s, k) => { s.data = cols[k]; });
  });
  await Promise.all(jobs);
}
function source(name) {   // a chart's data by its name (for tests and the curious)
  for (const d of Bokeh.documents) { const m = d.get_model_by_name(name); if (m) return m.data; }
  return null;
}
document.getElementById("save").addEventListener("click", async () => {
  const out = document.getElementById("saved"); out.textContent = "saving…";
  const resp = await fetch("/api/save", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({setting})});
  const data = await resp.json();
  out.textContent = resp.ok ? "Saved:\\n" + data.files.join("\\n") + "\\n\\nRerun and compare:\\n" + data.commands.join("\\n")
                            : "Not saved: " + Object.values(data.errors).join("; ");
});
buildLevers(); buildOutcomes(); update();
</script></body></html>
"""
