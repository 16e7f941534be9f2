"""The window terminal marks a ticket whose slip could not be printed, and reprints it."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, expect

from tests.ui.uihelpers import HallRunner, open_page, shot


async def test_window_terminal_shows_print_failed_and_reprints(runner: HallRunner, browser: Browser) -> None:
    hall = runner.hall
    assert hall is not None
    async with httpx.AsyncClient(base_url=runner.base, timeout=10) as http:
        r = await http.post(
            "/api/v1/tickets",
            json={"category": "A", "kiosk": "k1"},
            headers={"Authorization": f"Bearer {runner.tokens['kiosk']}"},
        )
        assert r.status_code == 201, r.text
    tid, number = r.json()["id"], r.json()["number"]
    window = await open_page(browser, runner.url("/window/1", "window1"), 1600, 1000)
    row = window.locator("#queue tr", has_text=number)
    await expect(row).to_be_visible()
    await expect(row.locator("button.reprint")).to_have_count(0)

    # The kiosk's printer could not print it (the tests play the hardware's part through the service).
    await hall.service.print_result(tid, "k1", False, "offline")
    await expect(row).to_have_attribute("data-print-failed", "true")
    await expect(row.locator("button.reprint")).to_contain_text("补打")
    await shot(window, "window-print-failed")
    await window.locator(".langbtn").first.click()  # English, for the person who reads the screenshots
    await expect(row.locator("button.reprint")).to_contain_text("Reprint")
    await shot(window, "window-print-failed-en")

    reprinted: list[str] = []
    window.on("request", lambda req: reprinted.append(req.url) if req.url.endswith(f"/{tid}/reprint") else None)
    await row.locator("button.reprint").click()
    await expect(window.locator("#result")).to_contain_text(number)
    assert len(reprinted) == 1
    log = [e.kind for e in await hall.service.ticket_history(tid)]
    assert "reprinted" in log

    # The reprint came out: the mark goes.
    await hall.service.print_result(tid, "k1", True)
    await expect(row.locator("button.reprint")).to_have_count(0)
    await expect(row).not_to_have_attribute("data-print-failed", "true")
