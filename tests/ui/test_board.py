"""The 日公示 board (/board) at 1920×1080 in both languages: yesterday's and this month's figures, charts, no overflow.

The demo hall on a fake clock: a scripted Monday is served, then the clock moves to Tuesday
morning and the board shows Monday as yesterday.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

import hallctl.daemon
from tests.core.core_helpers import SHANGHAI, FakeClock
from tests.ui.uihelpers import HallRunner, open_page, shot


@pytest.fixture
async def board_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[HallRunner, FakeClock]]:
    monkeypatch.setattr(hallctl.daemon, "component_factories", list)
    clock = FakeClock(datetime(2026, 11, 23, 8, 30, tzinfo=SHANGHAI))
    r = HallRunner(tmp_path, clock=clock)
    await r.start()
    try:
        yield r, clock
    finally:
        await r.stop()


async def serve_day(r: HallRunner, clock: FakeClock) -> None:
    """Window 1 (李明) serves six A tickets, window 3 (王芳) four B tickets; ratings 5,5,4,2 and some unrated."""
    hall = r.hall
    assert hall is not None
    svc = hall.service
    await svc.sign_in(1, "0231")
    await svc.sign_in(3, "0232")
    clock.set(datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI))
    for _ in range(6):
        await svc.issue("A")
    for _ in range(4):
        await svc.issue("B")
    levels = [5, 5, 4, 2]
    for i in range(6):
        clock.advance(minutes=4)
        await svc.call_next(1)
        await svc.start_service(1)
        clock.advance(minutes=6)
        await svc.finish(1)
        if i < len(levels):
            await svc.evaluate(1, levels[i], "pad")
        if i < 4:
            await svc.call_next(3)
            await svc.start_service(3)
            clock.advance(minutes=3)
            await svc.finish(3)
            await svc.evaluate(3, None, "timeout")
    await svc.sign_in(1, None)
    clock.set(datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI))


async def fits(page: Page) -> None:
    assert await page.evaluate("document.documentElement.scrollWidth") <= 1920
    assert await page.evaluate("document.documentElement.scrollHeight") <= 1080
    overflowing = await page.evaluate(
        """[...document.querySelectorAll('.topbar .title, .kpi, .panel .body, td, th')]
             .filter((e) => e.offsetParent !== null
               && (e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1))
             .map((e) => e.className + ':' + e.textContent)"""
    )
    assert overflowing == []


async def test_board_shows_yesterday_and_the_month_in_both_languages(
    board_runner: tuple[HallRunner, FakeClock], browser: Browser
) -> None:
    r, clock = board_runner
    await serve_day(r, clock)
    page = await open_page(browser, r.url("/board", "display"), 1920, 1080, live=False)
    await page.wait_for_function("window.__boardDrawn >= 1", timeout=15000)
    y = page.locator("#yesterday")
    await expect(y.locator(".period")).to_have_text("2026-11-23")
    await expect(y.locator('.kpi[data-col="served"] .v')).to_have_text("10")
    await expect(y.locator('.kpi[data-col="satisfaction"] .v')).to_have_text("75%")  # 3 of 4 rated were 4-5
    await expect(y.locator('.kpi[data-col="bad_ratings"] .v')).to_have_text("1")
    first_row = y.locator(".windows tr").nth(1)
    await expect(first_row.locator("td").first).to_have_text("1号窗口 便民")
    await expect(first_row.locator('td[data-col="served"]')).to_have_text("6")
    await expect(y.locator(".staff")).to_contain_text("李明")
    await expect(y.locator(".staff")).to_contain_text("王芳")
    await expect(page.locator("#month .kpi[data-col='served'] .v")).to_have_text("10")
    # The clock is the hall's (Tuesday 24 November, 10:00 on the fake clock), not this browser's own.
    await expect(page.locator("#clock")).to_contain_text("2026/11/24 周二 10:0")
    await expect(page.locator("#updated")).to_have_text("更新于 10:00")  # by the same clock
    assert await page.locator("#c-hour svg").count() == 1  # inline SVG, drawn offline
    assert await page.locator("#c-ratings svg").count() == 1
    await fits(page)
    await shot(page, "board-zh")

    await page.locator(".langbtn").click()
    await expect(y.locator("h1 span")).to_have_text("Yesterday")
    await expect(first_row.locator("td").first).to_have_text("Window 1")
    await expect(y.locator('.kpi[data-col="avg_wait_s"] .k')).to_have_text("Avg wait")
    await expect(page.locator("#updated")).to_contain_text("Updated")
    # The clock's weekday changes with the language at once (it showed 周一 until its next tick).
    weekday = await page.locator("#clock").text_content()
    assert weekday is not None and "周" not in weekday
    assert "Tue" in weekday, weekday
    await fits(page)
    await shot(page, "board-en")
    await page.context.close()
