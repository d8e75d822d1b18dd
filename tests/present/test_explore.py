"""sim explore: levers, checked settings, saved settings that reproduce the page, the web app's
routes and its dropping of stale updates, and the page itself in headless Chromium."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import shutil
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import sim
from sim.cli import cli
from sim.study.results import Results
from tests.helpers import BAKERY, CHROMIUM_FLAGS

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from sim.present.explore import Explorer, SettingError, comparison_csv
from sim.present.explore_app import app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
RUNS = 300
SEED = 5


def bakery_pair(tmp: Path) -> tuple[Path, Path]:
    """The bakery and a variant with a bigger mill, side by side in `tmp` (saved settings go
    beside them)."""
    a = tmp / "bakery.yaml"
    shutil.copy(BAKERY, a)
    b = tmp / "bigmill.yaml"
    b.write_text(
        "extends: bakery.yaml\nname: bigmill\nparameters:\n"
        "  mill_output: {dist: triangular, low: 90, mode: 115, high: 140, unit: t/month,\n"
        "                source: 'assumption: a bigger mill'}\n"
    )
    return a, b


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return bakery_pair(tmp_path_factory.mktemp("explore"))


@pytest.fixture(scope="module")
def explorer(pair: tuple[Path, Path]) -> Iterator[Explorer]:
    # Two warm worker processes, as `sim explore` runs it.
    ex = Explorer(pair, runs=RUNS, seed=SEED, thresholds=["hungry_months > 3"], workers=2)
    yield ex
    ex.close()


def test_levers_are_every_parameter_and_event_grouped(explorer: Explorer) -> None:
    by = {lever.name: lever for lever in explorer.levers}
    assert list(by) == ["mill_output", "strike_month", "price", "strike"]
    assert [by[n].group for n in by] == [
        "Uncertain parameters",
        "Uncertain parameters",
        "Fixed parameters",
        "Event times",
    ]
    mill = by["mill_output"]
    # the union of both scenarios' supports: 80-130 and 90-140; a value must fit both
    assert (mill.low, mill.high, mill.allowed) == (80, 140, (90, 130))
    assert mill.unit == "t/month" and "assumption" in mill.source
    assert "triangular(80, 100, 130)" in mill.written and "triangular(90, 115, 140)" in mill.written
    assert by["strike_month"].initial == pytest.approx(18)  # the median
    assert by["strike"].kind == "event" and by["strike"].high == 36
    assert by["strike"].written == "bakery: strike_month; bigmill: strike_month"


@pytest.mark.parametrize(
    ("setting", "lever", "reason"),
    [
        ({"strike_month": 31}, "strike_month", "outside the support of uniform(6, 30)"),
        ({"mill_output": 85}, "mill_output", "outside the support of triangular(90, 115, 140)"),
        ({"strike_month": "7"}, "strike_month", "expected a number"),
        ({"strike_month": True}, "strike_month", "expected a number"),
        ({"strike_month": math.inf}, "strike_month", "finite"),
        ({"strike": 40}, "strike", "outside the horizon"),
        ({"__import__('os')": 1}, "__import__('os')", "no such lever"),
    ],
)
def test_bad_values_are_refused_with_the_reason(
    explorer: Explorer, setting: dict[str, Any], lever: str, reason: str
) -> None:
    with pytest.raises(SettingError) as caught:
        explorer.update(setting)
    assert reason in caught.value.problems[lever]


def test_a_value_the_model_refuses_is_refused_with_its_reason(tmp_path: Path) -> None:
    model = tmp_path / "m.yaml"
    model.write_text(
        "name: m\nstart: 2024-01\nmonths: 4\nruns: 20\n"
        "parameters:\n  rate: {dist: uniform, low: 1, high: 2}\n  size: 2\n"
        "stocks:\n  src: {unit: t, kind: source}\n  s: {unit: t, initial: 'size - 1'}\n"
        "flows:\n  f: {from: src, to: s, rate: rate}\n"
        "outcomes:\n  end: {of: s, stat: final, unit: t}\n"
    )
    ex = Explorer([model])
    try:
        with pytest.raises(SettingError) as caught:
            ex.update({"size": 0})  # any number for a fixed parameter, but the stock starts at -1
        assert "can't start below zero" in caught.value.problems[""]
    finally:
        ex.close()


def test_a_lever_changes_only_what_it_changes(tmp_path: Path) -> None:
    a, _ = bakery_pair(tmp_path)
    ex = Explorer([a], runs=RUNS, seed=SEED)
    try:
        view = ex.update({"strike_month": 12.0})
        before, after = view.results
        # common random numbers: the other parameter and the noise are drawn as before
        assert np.array_equal(before.parameter("mill_output"), after.parameter("mill_output"))
        assert np.all(after.parameter("strike_month") == 12.0)
        assert view.comparison.pairings[0].paired
        assert view.comparison.scenarios == ("bakery", "bakery-explored")
    finally:
        ex.close()


def test_the_warm_workers_give_the_bits_of_this_process(
    explorer: Explorer, pair: tuple[Path, Path]
) -> None:
    setting = {"strike_month": 14.0}
    here = Explorer(pair, runs=RUNS, seed=SEED, thresholds=["hungry_months > 3"])
    try:
        for _ in range(2):  # the second time, the workers' noise is the noise they kept
            setting["strike_month"] += 1
            there, mine = explorer.update(setting), here.update(setting)
            for ours, theirs in zip(mine.results, there.results, strict=True):
                assert ours.runs.equals(theirs.runs) and ours.bands.equals(theirs.bands)
            # ... and the differences bootstrapped in the workers are the ones made here
            assert comparison_csv(mine.comparison) == comparison_csv(there.comparison)
    finally:
        here.close()


def csv_numbers(text: str) -> list[dict[str, str]]:
    """The CSV's rows without the columns that name the scenarios."""
    rows = list(csv.DictReader(io.StringIO(text)))
    return [{k: v for k, v in r.items() if k not in ("scenario", "a", "b")} for r in rows]


def test_the_saved_setting_reproduces_the_page_with_sim_run_and_sim_compare(
    explorer: Explorer, tmp_path: Path
) -> None:
    setting = {"strike_month": 9.5, "price": 500.0, "strike": 11.0}
    view = explorer.update(setting, ["bread_eaten", "hungry_months"])
    files = explorer.saved_files(setting)
    for path, text in files:
        path.write_text(text)
        saved = yaml.safe_load(text)
        assert saved["extends"] in ("bakery.yaml", "bigmill.yaml")
        assert saved["parameters"]["strike_month"] == {
            "dist": "fixed",
            "value": 9.5,
            "low": None,
            "high": None,
        }
        assert saved["events"] == {"strike": {"at": 11.0}}
    saved_a, saved_b = (p for p, _ in files)
    runner = CliRunner()
    for k, path in enumerate((saved_a, saved_b)):
        out = tmp_path / f"run{k}"
        done = runner.invoke(cli, ["run", str(path), "--out", str(out)], catch_exceptions=False)
        assert done.exit_code == 0, done.output
        again = Results.load(out)
        for name in ("bread_eaten", "hungry_months", "mean_till"):
            assert np.array_equal(again.outcome(name), view.results[k].outcome(name))
    done = runner.invoke(
        cli,
        [
            "compare",
            str(saved_a),
            str(saved_b),
            "--outcome",
            "bread_eaten",
            "--outcome",
            "hungry_months",
            "--threshold",
            "hungry_months > 3",
            "--csv",
        ],
        catch_exceptions=False,
    )
    assert done.exit_code == 0, done.output
    assert csv_numbers(done.output) == csv_numbers(comparison_csv(view.comparison))
    assert explorer.commands([saved_a, saved_b])[-1].startswith(f"sim compare {saved_a}")


def test_one_scenario_saves_its_b(tmp_path: Path) -> None:
    a, _ = bakery_pair(tmp_path)
    ex = Explorer([a], runs=RUNS, seed=SEED)
    try:
        view = ex.update({"strike_month": 20.0})
        ((path, text),) = ex.saved_files({"strike_month": 20.0})
        path.write_text(text)
        res = sim.run(sim.load(path))  # the file carries the runs and seed the page used
        assert np.array_equal(res.outcome("bread_eaten"), view.results[1].outcome("bread_eaten"))
        assert path.parent == a.parent and path.name.startswith("bakery-explored-")
    finally:
        ex.close()


# -- the web app -------------------------------------------------------------------------------


async def asgi(
    application: Any,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request straight to the ASGI app: (status, body)."""
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    head = {"host": "127.0.0.1", "content-type": "application/json"} | (headers or {})
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in head.items()],
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1234),
    }
    sent = False
    out: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await application(scope, receive, send)
    return out["status"], out["body"]


def test_a_newer_update_makes_a_waiting_one_stale(explorer: Explorer) -> None:
    application = app(explorer)

    async def three() -> list[tuple[int, bytes]]:
        return await asyncio.gather(
            *(
                asgi(application, "POST", "/api/update", {"setting": {"strike_month": v}})
                for v in (7.0, 8.0, 9.0)
            )
        )

    answers = [json.loads(body) for _, body in asyncio.run(three())]
    assert "stale" not in answers[0] and answers[0]["setting"] == {"strike_month": 7.0}
    assert answers[1] == {"stale": True, "ticket": 2}
    assert answers[2]["setting"] == {"strike_month": 9.0}


def test_the_app_takes_only_json_from_its_own_host_and_downloads_what_it_showed(
    explorer: Explorer,
) -> None:
    application = app(explorer)
    status, body = asyncio.run(asgi(application, "GET", "/"))
    assert status == 200 and b"Bokeh" in body and b"cdn.bokeh.org" not in body
    status, _ = asyncio.run(asgi(application, "GET", "/static/bokeh.min.js"))
    assert status == 200
    status, _ = asyncio.run(asgi(application, "GET", "/static/..%2Fpyproject.toml"))
    assert status == 404
    status, _ = asyncio.run(asgi(application, "GET", "/", headers={"host": "evil.example"}))
    assert status == 400
    status, _ = asyncio.run(
        asgi(application, "POST", "/api/update", b"{}", {"content-type": "text/plain"})
    )
    assert status == 415
    status, body = asyncio.run(
        asgi(application, "POST", "/api/update", {"setting": {"strike_month": 99}})
    )
    assert status == 422 and "outside the support" in json.loads(body)["errors"]["strike_month"]
    status, body = asyncio.run(
        asgi(application, "POST", "/api/update", {"setting": {"strike_month": 8.0}})
    )
    key = json.loads(body)["key"]
    status, csv_body = asyncio.run(asgi(application, "GET", f"/download/{key}.csv"))
    assert status == 200
    view = explorer.view(key)
    assert view is not None and csv_body.decode() == comparison_csv(view.comparison)
    status, _ = asyncio.run(asgi(application, "GET", "/download/0123456789abcdef.csv"))
    assert status == 404


# -- in a real browser -------------------------------------------------------------------------


class Served:
    """The explorer's app on a free port of 127.0.0.1, in a thread."""

    def __init__(self, explorer: Explorer) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        config = uvicorn.Config(app(explorer), log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Served:
        self.thread.start()
        for _ in range(200):
            try:
                urllib.request.urlopen(self.url + "favicon.ico", timeout=1)
                return self
            except (urllib.error.URLError, ConnectionError):
                threading.Event().wait(0.05)
        raise AssertionError("the explorer's server did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def browser(playwright: Any, tmp: Path) -> Any:
    """Debian's Chromium, headless, with the report test's flags and a fresh profile."""
    return playwright.chromium.launch_persistent_context(
        str(tmp / "profile"),
        executable_path=CHROMIUM,
        headless=True,
        viewport={"width": 1400, "height": 1000},
        args=list(CHROMIUM_FLAGS),
    )


def wait_shown(page: Any, n: int) -> None:
    page.wait_for_function(f"Number(document.body.dataset.shown) >= {n}", timeout=120_000)


def shown_numbers(page: Any) -> dict[str, Any]:
    """What the page drew last: its data and the ECDF the chart holds for B's first outcome."""
    return page.evaluate(
        """() => ({data: window.explored,
                   chart: source("ecdf-b-" + window.explored.outcomes[0].outcome).x})"""
    )


needs_browser = pytest.mark.skipif(
    CHROMIUM is None, reason="needs chromium (apt-get install chromium)"
)


@needs_browser
def test_the_page_redraws_when_a_lever_moves_and_matches_sim_run(
    explorer: Explorer, tmp_path: Path
) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api")
    errors: list[str] = []
    with Served(explorer) as served, playwright_api.sync_playwright() as p:
        context = browser(p, tmp_path)
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(served.url)
        wait_shown(page, 1)
        first = shown_numbers(page)
        assert page.get_attribute("#status", "data-state") == "ready"
        # The busy indicator's states, as they change.
        page.evaluate(
            """() => { window.states = [];
                 new MutationObserver(() => states.push(status_state())).observe(
                   document.getElementById("status"), {attributes: true}); }""".replace(
                "status_state()", 'document.getElementById("status").dataset.state'
            )
        )
        # Move the strike lever with the keyboard, as a person would: to its lowest value.
        slider = page.locator('.lever[data-name="strike_month"] input[type=range]')
        slider.focus()
        slider.press("Home")
        wait_shown(page, 2)
        moved = shown_numbers(page)
        assert moved["data"]["setting"] == {"strike_month": 6.0}
        assert page.evaluate("window.states") == ["busy", "ready"]
        assert moved["data"]["outcomes"][0]["b"] != first["data"]["outcomes"][0]["b"]
        assert moved["chart"] != first["chart"]
        # The numbers and the chart are those of `sim run` of the saved setting.
        page.click("#save")
        page.wait_for_function("document.getElementById('saved').textContent.includes('Saved')")
        # "Saved:", a file a line, a blank line, then the commands that rerun them
        files = [Path(x) for x in page.inner_text("#saved").split("\n\n")[0].split("\n")[1:]]
        assert len(files) == 2 and all(f.is_file() for f in files)
        res = sim.run(sim.load(files[1]))
        name = moved["data"]["outcomes"][0]["outcome"]
        values = res.outcome(name)
        assert moved["chart"] == pytest.approx(
            np.quantile(values, np.linspace(0, 1, len(moved["chart"]))).tolist(), rel=1e-12
        )
        row = page.locator(f'#numbers tr[data-outcome="{name}"] td.b')
        assert float(row.get_attribute("data-p50")) == pytest.approx(np.median(values), rel=1e-12)
        # A bad value is refused on the page, with the reason, and nothing reruns.
        box = page.locator('.lever[data-name="strike_month"] input[type=number]')
        box.fill("40")
        box.dispatch_event("change")
        page.wait_for_function("document.body.dataset.refused !== undefined")
        reason = page.inner_text('.lever[data-name="strike_month"] .err')
        assert "outside the support of uniform(6, 30)" in reason
        assert page.evaluate("window.explored.setting") == {"strike_month": 6.0}
        # Quick moves: whatever was dropped on the way, the page ends on the last one.
        slider.press("Home")
        for _ in range(4):
            slider.press("ArrowRight")
        page.wait_for_function(
            "window.explored.setting.strike_month === 6.8"
            " && document.getElementById('status').dataset.state === 'ready'",
            timeout=120_000,
        )
        assert page.input_value('.lever[data-name="strike_month"] input[type=number]') == "6.8"
        context.close()
    assert not errors


def test_on_a_posterior_its_parameters_stay_drawn_and_the_saved_setting_reruns_on_it(
    tmp_path: Path,
) -> None:
    from tests.helpers import bakery, calibration_folder

    rng = np.random.default_rng(3)
    cal = calibration_folder(
        tmp_path / "bakery-calibration",
        bakery(),
        {"mill_output": rng.uniform(80, 130, 100)},
        rng.uniform(size=100),
        {},
    )
    a, _ = bakery_pair(tmp_path)
    ex = Explorer([a], runs=RUNS, seed=SEED, posterior=cal, workers=2)  # it travels to them
    try:
        mill = next(lever for lever in ex.levers if lever.name == "mill_output")
        assert not mill.settable and "posterior" in mill.why
        with pytest.raises(SettingError) as caught:
            ex.update({"mill_output": 100.0})
        assert "drawn from the posterior" in caught.value.problems["mill_output"]
        view = ex.update({"strike_month": 10.0})
        ((path, text),) = ex.saved_files({"strike_month": 10.0})
        path.write_text(text)
        again = sim.run(sim.load(path), posterior=cal)
        assert np.array_equal(again.outcome("bread_eaten"), view.results[1].outcome("bread_eaten"))
        assert f"--posterior {cal}" in ex.commands([path])[0]
    finally:
        ex.close()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--outcome", "nope"], "--outcome nope: not an outcome of every scenario"),
        (["--threshold", "nope > 1"], "unknown name 'nope'"),
    ],
)
def test_the_command_refuses_a_bad_start_once_with_exit_2(
    pair: tuple[Path, Path], args: list[str], said: str
) -> None:
    done = CliRunner().invoke(cli, ["explore", str(pair[0]), "--runs", "20", *args])
    assert done.exit_code == 2, done.output
    assert said in done.output and done.output.count("error:") == 1


WORKERS_OF_A_KILLED_EXPLORER = """
import sys
from sim.present.explore import Explorer

if __name__ == "__main__":
    ex = Explorer([sys.argv[1]], runs=50, workers=2)
    ex.update({"strike_month": 7.0})
    print(*ex._pool._processes, flush=True)
    sys.stdin.read()  # until killed
"""


def test_the_workers_of_a_killed_explorer_exit_with_it(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "explorer.py"
    script.write_text(WORKERS_OF_A_KILLED_EXPLORER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(BAKERY)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert proc.stdout is not None
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # a zombie (exited, not yet reaped by its parent) is gone for our purpose
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().split()[2] != "Z"
        except FileNotFoundError:  # it went between the two looks
            return False

    for _ in range(3000):  # a hang guard (about thirty seconds of sleeps), not a speed check
        if not any(alive(p) for p in pids):
            return
        time.sleep(0.01)
    raise AssertionError(f"worker processes {pids} outlived the explorer")


def test_a_worker_that_dies_is_replaced_and_the_update_still_comes(tmp_path: Path) -> None:
    import os
    import signal
    import time

    a, _ = bakery_pair(tmp_path)
    ex = Explorer([a], runs=RUNS, seed=SEED, workers=2)
    try:
        before = ex.update({"strike_month": 11.0})
        assert ex._pool is not None
        pool = ex._pool
        for pid in list(pool._processes):
            os.kill(pid, signal.SIGKILL)  # killed, or out of memory
        for _ in range(3000):  # until the pool knows (a hang guard, not a speed check)
            if pool._broken:
                break
            time.sleep(0.01)
        view = ex.update({"strike_month": 12.0})  # a new setting: the dead pool is replaced
        here = Explorer([a], runs=RUNS, seed=SEED)  # in this process, for the same bits
        try:
            mine = here.update({"strike_month": 12.0})
            assert view.results[1].runs.equals(mine.results[1].runs)
            assert before.results[0].runs.equals(mine.results[0].runs)
        finally:
            here.close()
    finally:
        ex.close()
