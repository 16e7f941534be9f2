"""Daemon restarted under open pages: they show it, reconnect by themselves, catch up silently."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.ui.uihelpers import HallRunner, open_page


async def test_pages_reconnect_after_restart_and_do_not_replay_calls(runner: HallRunner, browser: Browser) -> None:
    hall = runner.hall
    assert hall is not None
    await hall.service.sign_in(1, "0231")
    await hall.service.issue("A", channel="kiosk", kiosk="k1")
    await hall.service.issue("A", channel="kiosk", kiosk="k1")

    screen = await open_page(browser, runner.url("/screen", "display", rate=10), 1920, 1080)
    kiosk = await open_page(browser, runner.url("/kiosk/k1", "kiosk"), 1080, 1920)
    big = await open_page(browser, runner.url("/bigscreen", "display"), 1920, 1080)
    window = await open_page(browser, runner.url("/window/1", "window1"), 1600, 1000)

    await hall.service.call_next(1)
    await expect(screen.locator("#newest-num")).to_have_text("A001")
    await screen.wait_for_function("window.__voiceLog.filter(e => e.ev === 'end').length >= 2")
    before = await screen.evaluate("window.__voiceLog.length")

    await runner.stop()
    for page in (screen, kiosk, big, window):
        await expect(page.locator("#conn")).to_have_attribute("data-state", "offline", timeout=15000)
        await expect(page.locator("#conn")).to_contain_text("连接中断")

    # Same database, same port: the pages come back by themselves.
    hall = await runner.start()
    for page in (screen, kiosk, big, window):
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=20000)
    await screen.wait_for_function("window.__hallStreamReady >= 2")

    # Caught up from retained state and today's tickets, without announcing A001 again.
    await expect(screen.locator('.win[data-window="1"] .cur')).to_have_text("A001")
    await expect(screen.locator("#newest-num")).to_have_text("A001")
    await expect(screen.locator('.cat[data-category="A"] .w')).to_contain_text("1")
    await expect(kiosk.locator('.catbtn[data-category="A"] .w b')).to_have_text("1")
    await expect(big.locator("#k-issued")).to_have_text("2")
    await expect(window.locator("#cur")).to_have_text("A001")
    assert await screen.evaluate("window.__voiceLog.length") == before

    # And the new daemon's calls are live again.
    await hall.service.call_next(1)
    await expect(screen.locator("#newest-num")).to_have_text("A002")
    await screen.wait_for_function("window.__voiceLog.filter(e => e.ev === 'end').length >= 4")
    said = await screen.evaluate("window.__voiceLog.filter(e => e.ev === 'start').map(e => e.number)")
    assert said == ["A001", "A001", "A002", "A002"]
    await expect(window.locator("#cur")).to_have_text("A002")
    await expect(big.locator("#k-waiting")).to_have_text("0")
