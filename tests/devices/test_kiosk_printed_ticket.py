"""The demo kiosk shows the ticket exactly as the simulated printer printed it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Response, async_playwright, expect

from hallctl import auth
from hallctl.daemon import Hall
from tests.devices.test_hall_devices import hall_config, zbar
from tests.ui.uihelpers import overflow

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def demo_hall(tmp_path: Path) -> AsyncIterator[Hall]:
    h = Hall(hall_config(tmp_path, keep_kinds=("idcard", "printer")), demo=True, state_dir=tmp_path)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


async def test_kiosk_shows_the_png_the_printer_simulator_rendered(demo_hall: Hall, tmp_path: Path) -> None:
    """Take a number on the kiosk page: the slip shown is the simulator's PNG, and its QR is the ticket's."""
    token = await auth.create_token(demo_hall.store, "kiosk")
    base = f"http://127.0.0.1:{demo_hall.api.port}"
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1080, "height": 1920})
            answers: list[Response] = []
            page.on(
                "response",
                lambda r: (
                    answers.append(r) if r.request.method == "POST" and r.url.endswith("/api/v1/tickets") else None
                ),
            )
            await page.goto(f"{base}/kiosk/k1?token={token}")
            await page.locator("#conn[data-state=live]").wait_for(timeout=15000)
            await page.locator('#cats .catbtn[data-category="B"]').click()
            await expect(page.locator("#t-num")).to_have_text("B001")
            printed = page.locator("#slip img.printed")
            await expect(printed).to_be_visible()
            await page.wait_for_function("document.querySelector('#slip img.printed').naturalWidth > 0")
            # The demo kiosk fits its 1920 px with the printed slip shown: 完成 is on the screen, nothing cut.
            assert await overflow(page, "ticket with the printed slip") == []
            done = await page.locator("#v-ticket [data-home]").bounding_box()
            assert done is not None and done["y"] + done["height"] <= 1920
            src = await printed.get_attribute("src")
            assert src is not None and "/api/v1/sim/printers/prn-k1/tickets/" in src
            png = await page.request.get(base + src)
            assert png.ok and png.headers["content-type"] == "image/png"
            path = tmp_path / "shown.png"
            path.write_bytes(await png.body())
            assert len(answers) == 1
            answer = await answers[0].json()
        finally:
            await browser.close()
    sim_ticket = demo_hall.sims["prn-k1"].tickets[-1]
    assert "B001" in sim_ticket.text_lines
    ticket = demo_hall.service._q.find_number("B001")
    assert ticket is not None and demo_hall.service.qr.verify(zbar(path)) == ticket.id
    # The slip is what the kiosk was answered: the same QR token and the same count of people ahead.
    assert answer["number"] == "B001"
    assert zbar(path) == answer["qr"]
    assert f"您前面还有 {answer['waiting_ahead']} 人等候" in sim_ticket.text_lines
    # The hall's notice ([hall] notice) is printed, as docs/config.md says: wrapped to the paper, every character.
    notice = demo_hall.cfg.hall.notice
    assert notice and notice.replace(" ", "") in "".join(sim_ticket.text_lines).replace(" ", "")
