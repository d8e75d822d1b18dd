"""Issue 23's check on the shipped war model: `sim explore war_continues war_ends`, move
`war_end_month` in the browser, both distributions and their difference redraw, and the saved
setting gives the page's numbers with `sim run` and `sim compare`."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import sim
from sim.cli import cli
from tests.present.test_explore import CHROMIUM, Served, browser, csv_numbers, wait_shown

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
playwright_api = pytest.importorskip("playwright.sync_api")

from sim.present.explore import Explorer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RUNS = 400  # fewer than the scenario's 2,000, to keep the suite quick; the same code path


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")
def test_moving_war_end_month_redraws_and_the_saved_setting_reproduces_it(
    tmp_path: Path,
) -> None:
    # A copy of the shipped files, so that saved settings land beside the copies.
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "sources.md", tmp_path / "docs" / "sources.md")
    files = [tmp_path / "scenarios" / f"{n}.yaml" for n in ("war_continues", "war_ends")]
    explorer = Explorer(files, runs=RUNS)
    try:
        with Served(explorer) as served, playwright_api.sync_playwright() as p:
            context = browser(p, tmp_path)
            page = context.new_page()
            page.goto(served.url)
            wait_shown(page, 1)
            name = page.evaluate("window.explored.outcomes[0].outcome")
            charts = (
                f"() => ['ecdf-a-{name}', 'ecdf-b-{name}', 'ecdf-d-{name}'].map(n => source(n).x)"
            )
            before = page.evaluate(charts)
            box = page.locator('.lever[data-name="war_end_month"] input[type=number]')
            box.fill("30")
            box.dispatch_event("change")
            wait_shown(page, 2)
            after = page.evaluate(charts)
            data = page.evaluate("window.explored")
            assert data["setting"] == {"war_end_month": 30.0}
            # war_continues never ends the war, so its runs are unchanged (common random
            # numbers); war_ends and the difference redraw.
            assert after[0] == before[0]
            assert after[1] != before[1] and after[2] != before[2]
            csv_text = page.request.get(served.url + f"download/{data['key']}.csv").text()
            page.click("#save")
            page.wait_for_function("document.getElementById('saved').textContent.includes('Saved')")
            shown = page.inner_text("#saved").split("\n\n")[0].split("\n")[1:]
            saved = [Path(line) for line in shown]
            context.close()
    finally:
        explorer.close()
    assert [f.parent for f in saved] == [f.parent for f in files]
    ends = sim.run(sim.load(saved[1]))
    assert np.quantile(ends.outcome(name), 0.5) == pytest.approx(data["outcomes"][0]["b"]["p50"])
    picked = [o["outcome"] for o in data["outcomes"]]
    args = ["compare", *map(str, saved), "--csv"] + [x for o in picked for x in ("--outcome", o)]
    done = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert csv_numbers(done.output) == csv_numbers(csv_text)
