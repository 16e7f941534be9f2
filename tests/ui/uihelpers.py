"""Helpers for the page tests: an in-process hall on a free port and headless Debian Chromium.

The browser is the system's ``/usr/bin/chromium`` driven by Playwright (no
browser download). Autoplay is allowed the way a calling screen's kiosk-mode
Chromium is set up, so the voice path really plays audio.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page

from hallctl import config
from hallctl.config import Config
from hallctl.daemon import Hall
from hallctl.demo import DEMO_TOML, demo_tokens
from hallctl.service import Clock, utcnow

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
# Every run saves screenshots under tests/artifacts (git-ignored); HALLCTL_UPDATE_SCREENSHOTS=1 refreshes the
# ones the README shows in docs/screenshots, so an ordinary test run leaves the work tree clean.
_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = (
    _ROOT / "docs" / "screenshots"
    if os.environ.get("HALLCTL_UPDATE_SCREENSHOTS") == "1"
    else _ROOT / "tests" / "artifacts" / "screenshots"
)


def make_config(data: Path, port: int = 0, **queue: Any) -> Config:
    """The demo hall, stored under ``data``; ``queue`` overrides ``[queue]`` keys."""
    raw: dict[str, Any] = tomllib.loads(DEMO_TOML)
    raw["store"] = {"path": str(data / "hallctl.db")}
    raw["api"] = {"host": "127.0.0.1", "port": port}
    # Sign-in stays required as in the demo (the pages' tests sign in as a clerk would); call next over
    # a called ticket counts it done unless a test asks for the product's "ask" (test_window_terminal.py).
    raw["queue"] = {**raw.get("queue", {}), "recall_min_gap_s": 0, "call_next_unstarted": "finish", **queue}
    raw["screen"] = {"announce_repeat": 2, "voice": "auto"}
    # The page tests run on the real clock: without the statutory calendar the hall works on any
    # day (a public holiday, or a year the calendar package has no data for yet). The calendar
    # has its own tests (tests/core/test_core_appointments.py).
    raw["calendar"] = {"statutory": False}
    # Category C is closed almost all day, so the kiosk shows a disabled button with its reason.
    for cat in raw["category"]:
        if cat["prefix"] == "C":
            cat["hours"] = ["mon-sun 00:00-00:01"]
    return config.parse(raw)


class HallRunner:
    """Starts and restarts a hall on one data directory and (after the first start) one port."""

    def __init__(self, data: Path, clock: Clock = utcnow, **queue: Any) -> None:
        self.data = data
        self.clock = clock
        self.queue = queue
        self.hall: Hall | None = None
        self.port = 0
        self.tokens: dict[str, str] = {}

    async def start(self) -> Hall:
        hall = Hall(make_config(self.data, self.port, **self.queue), clock=self.clock, demo=True, state_dir=self.data)
        await hall.start()
        assert hall.api.port is not None
        self.port = hall.api.port
        self.hall = hall
        self.tokens = await demo_tokens(hall, self.data)
        return hall

    async def stop(self) -> None:
        if self.hall is not None:
            hall, self.hall = self.hall, None
            await hall.stop()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str, role: str, **params: str | int) -> str:
        query = "&".join([f"token={self.tokens[role]}", *(f"{k}={v}" for k, v in params.items())])
        return f"{self.base}{path}?{query}"


async def open_page(
    browser: Browser, url: str, width: int, height: int, *, live: bool = True, init_script: str | None = None
) -> Page:
    """Open a page at its target size; by default wait until its event stream is live.

    ``init_script`` runs in the page before any of its own scripts (e.g. to stub a browser API).
    """
    context = await browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = await context.new_page()
    if init_script is not None:
        await page.add_init_script(init_script)
    # Printed, so pytest shows a page's own errors next to a failing assertion.
    page.on("pageerror", lambda exc: print(f"[{url.split('?')[0]}] page error: {exc}"))
    page.on("console", lambda msg: print(f"[{url.split('?')[0]}] console.{msg.type}: {msg.text}"))
    await page.goto(url)
    if live:
        await page.locator("#conn[data-state=live]").wait_for(timeout=15000)
    return page


async def shot(page: Page, name: str, *, full_page: bool = False) -> None:
    """Save ``<name>.png`` at the page's target size (see SCREENSHOTS for where)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


# What sticks out: outside the viewport, cut by its box, or spilling sideways over its box's edge
# (a word wider than its tile). Elements inside a scrolling box are checked against that box's clipping only; a
# ``data-marquee`` box (a ticker whose text scrolls through it on purpose) is left out with its text.
OVERFLOW = """() => {
  const vw = innerWidth, vh = innerHeight, out = [];
  const name = (e) => (e.id ? '#' + e.id
      : e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).split(' ')[0] : ''))
    + ' "' + (e.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 40) + '"';
  const scrolling = (v) => /(auto|scroll)/.test(v);
  const scrolls = (e) => {
    for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (scrolling(s.overflowY + s.overflowX)) return true;
    }
    return false;
  };
  for (const e of document.body.querySelectorAll('*')) {
    // A chart's SVG text has no CSS box to be cut by: the chart's own element is checked instead.
    if (e.closest('.hidden, script, style, option, .tokenbox, [data-marquee], svg')) continue;
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const s = getComputedStyle(e);
    if (s.visibility === 'hidden') continue;
    if (!scrolls(e) && (r.right > vw + 1 || r.bottom > vh + 1 || r.left < -1 || r.top < -1)) {
      const box = [r.left, r.top, r.right, r.bottom].map(Math.round).join(',');
      out.push(`${name(e)} outside the ${vw}x${vh} viewport: ${box}`);
    }
    if (s.overflowX !== 'visible' && !scrolling(s.overflowX) && e.scrollWidth > e.clientWidth + 1)
      out.push(`${name(e)} cut: text ${e.scrollWidth} px wide in ${e.clientWidth} px`);
    else if (s.overflowX === 'visible' && e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1)
      out.push(`${name(e)} spills: content ${e.scrollWidth} px wide in a ${e.clientWidth} px box`);
    if (s.overflowY !== 'visible' && !scrolling(s.overflowY) && e.scrollHeight > e.clientHeight + 1)
      out.push(`${name(e)} cut: text ${e.scrollHeight} px high in ${e.clientHeight} px`);
  }
  const d = document.documentElement;
  if (d.scrollWidth > vw + 1 || d.scrollHeight > vh + 1) out.push(`document ${d.scrollWidth}x${d.scrollHeight}`);
  return out;
}"""


async def overflow(page: Page, what: str) -> list[str]:
    """What on ``page`` leaves the viewport or is cut by its box (see tests/ui/test_pages_fit.py), as ``what: …``."""
    found: list[str] = await page.evaluate(OVERFLOW)
    return [f"{what}: {f}" for f in found]
