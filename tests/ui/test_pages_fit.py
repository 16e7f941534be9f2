"""Every page fits its screen in both languages: measured in the DOM, not only looked at.

A page that fits in Chinese can overflow in English (longer words), and the screens
have no scroll bar (``body { overflow: hidden }``): whatever leaves the viewport or is
cut by its box is simply not seen. Each page is opened at its target size with some
state on it (a called ticket, a ticket on the kiosk, a signed-in window), in each
language, and the test lists every visible element that

* leaves the viewport (its bounding box), unless it sits in a box that scrolls on
  purpose (``overflow: auto``/``scroll``, e.g. a long list on an operator's page), or
* is a text box narrower or lower than its text while it clips (``overflow`` not
  ``visible``: an ellipsis or a cut-off line).

Screenshots in both languages go to tests/artifacts/screenshots/ (``fit-<page>-<lang>``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date

import pytest
from playwright.async_api import Browser, Page, expect

from hallctl import engine
from tests.ui.uihelpers import HallRunner, open_page, overflow, shot

HOLDER = engine.Holder(name="欧阳娜娜", id_number="420103195001010017", birth=date(1950, 1, 1))


async def _kiosk(runner: HallRunner, page: Page, lang: str) -> list[str]:
    hall = runner.hall
    assert hall is not None
    problems = await overflow(page, "start")
    await expect(page.locator("#to-appt")).to_be_visible()
    # At normal size every category is on screen without scrolling its list.
    if await page.evaluate(
        "(() => { const c = document.getElementById('cats'); return c.scrollHeight > c.clientHeight + 1; })()"
    ):
        problems.append("start: the category list needs scrolling")
    # Large text (适老化): the list may scroll, but nothing leaves the screen or is cut.
    await page.locator("#big-btn").click()
    problems += await overflow(page, "start, large text")
    await shot(page, f"fit-kiosk-large-{lang}")
    await page.locator("#big-btn").click()
    await page.locator('#cats .catbtn[data-category="A"]').click()
    await expect(page.locator("#v-ticket")).to_be_visible()
    problems += await overflow(page, "ticket")
    await shot(page, f"fit-kiosk-ticket-{lang}")
    await page.locator("#v-ticket [data-home]").click()
    await page.locator("#to-appt").click()
    await expect(page.locator("#v-appt")).to_be_visible()
    problems += await overflow(page, "appointment")
    await page.locator("#v-appt [data-home]").first.click()
    await hall.service.card_read("k1", HOLDER)
    await expect(page.locator("#v-card")).to_be_visible()
    problems += await overflow(page, "card")
    await shot(page, f"fit-kiosk-card-{lang}")
    await page.locator("#v-card [data-home]").click()
    await expect(page.locator("#v-start")).to_be_visible()
    return problems


async def _called(runner: HallRunner) -> None:
    hall = runner.hall
    assert hall is not None
    svc = hall.service
    for cat in ("A", "B", "D", "A"):
        await svc.issue(cat, channel="kiosk", kiosk="k1")
    for w, staff in ((1, "0231"), (3, "0232")):
        await svc.sign_in(w, staff)
        await svc.call_next(w)


async def _screen(runner: HallRunner, page: Page, lang: str) -> list[str]:
    await expect(page.locator("body")).to_contain_text("A001")
    return await overflow(page, "called")


async def _plain(runner: HallRunner, page: Page, lang: str) -> list[str]:
    return await overflow(page, "open")


# page, path, token role, width, height, state before opening, checks after opening
PAGES: dict[str, tuple[str, str, int, int, bool, Callable[[HallRunner, Page, str], Awaitable[list[str]]]]] = {
    "kiosk": ("/kiosk/k1", "kiosk", 1080, 1920, False, _kiosk),
    "screen": ("/screen", "display", 1920, 1080, True, _screen),
    "window": ("/window/1", "window1", 1600, 1000, True, _plain),
    "pad": ("/pad/1", "pad1", 1280, 800, True, _plain),
    "bigscreen": ("/bigscreen", "display", 1920, 1080, True, _plain),
    "guide": ("/guide", "guide", 1366, 768, True, _plain),
}


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("name", list(PAGES))
async def test_page_fits_its_screen(runner: HallRunner, browser: Browser, name: str, lang: str) -> None:
    path, role, width, height, busy, check = PAGES[name]
    if busy:
        await _called(runner)
    page = await open_page(
        browser, runner.url(path, role), width, height, init_script=f"localStorage.setItem('hallctl.lang', '{lang}')"
    )
    await expect(page.locator("html")).to_have_attribute("lang", "en" if lang == "en" else "zh-CN")
    await page.evaluate("document.fonts.ready")
    problems = await check(runner, page, lang)
    await shot(page, f"fit-{name}-{lang}")
    assert problems == [], "\n".join(problems)
