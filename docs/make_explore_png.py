"""Writes docs/explore.png: `sim explore` on the war model, with war_end_month set to 30, as
headless Chromium (Debian's, driven by playwright) shows it. Needs the explore and test extras.

Usage: `python docs/make_explore_png.py`
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from sim.present.explore import Explorer
from sim.present.explore_app import app

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    files = [ROOT / "scenarios" / f"{n}.yaml" for n in ("war_continues", "war_ends")]
    explorer = Explorer(files)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    server = uvicorn.Server(uvicorn.Config(app(explorer), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    time.sleep(1)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_function("Number(document.body.dataset.shown) >= 1", timeout=120_000)
        box = page.locator('.lever[data-name="war_end_month"] input[type=number]')
        box.fill("30")
        box.dispatch_event("change")
        page.wait_for_function("Number(document.body.dataset.shown) >= 2", timeout=120_000)
        page.wait_for_timeout(500)
        page.screenshot(path=str(ROOT / "docs" / "explore.png"))
        browser.close()
    server.should_exit = True
    thread.join(timeout=10)
    explorer.close()


if __name__ == "__main__":
    main()
