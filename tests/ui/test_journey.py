"""A visitor's whole visit across the five screens, in real headless Chromium."""

from __future__ import annotations

import re
from datetime import date

from playwright.async_api import Browser, Request, expect

from hallctl import engine
from tests.ui.uihelpers import HallRunner, open_page, shot

HOLDER = engine.Holder(name="张三丰", id_number="11010519491231002X", birth=date(1949, 12, 31))


async def test_visit_kiosk_screen_window_pad_bigscreen(runner: HallRunner, browser: Browser) -> None:
    hall = runner.hall
    assert hall is not None
    hall.service.sensor_reading("floor1", 24.5, 50.0)
    hall.service.sensor_reading("floor2", 25.8, 56.0)

    kiosk = await open_page(browser, runner.url("/kiosk/k1", "kiosk"), 1080, 1920)
    screen = await open_page(browser, runner.url("/screen", "display", rate=8), 1920, 1080)
    big = await open_page(browser, runner.url("/bigscreen", "display"), 1920, 1080)
    window = await open_page(browser, runner.url("/window/1", "window1"), 1600, 1000)
    pad = await open_page(browser, runner.url("/pad/1", "pad1", back=1), 1280, 800)
    wav: list[str] = []

    def on_request(req: Request) -> None:
        if "/api/v1/voice/" in req.url:
            wav.append(req.url)

    screen.on("request", on_request)
    await expect(big.locator("#k-issued")).to_have_text("0")
    await expect(kiosk.locator('.catbtn[data-category="A"] .w b')).to_have_text("0")
    await shot(kiosk, "kiosk-start")

    # The visitor swipes the ID card: the kiosk greets with the masked name and offers categories.
    await hall.service.card_read("k1", HOLDER)
    await expect(kiosk.locator("#v-card")).to_be_visible()
    await expect(kiosk.locator("#greet")).to_contain_text("张*丰")
    await expect(kiosk.locator("#greet .green")).to_be_visible()  # born 1949: green channel
    await kiosk.locator('#card-cats .catbtn[data-category="A"]').click()
    await expect(kiosk.locator("#v-ticket")).to_be_visible()
    await expect(kiosk.locator("#t-num")).to_have_text("A001")
    await expect(kiosk.locator("#t-ahead")).to_contain_text("0")
    await expect(kiosk.locator("#slip img")).to_be_visible()  # demo: simulated printed ticket
    await shot(kiosk, "kiosk-ticket")
    await expect(big.locator("#k-issued")).to_have_text("1")
    await expect(screen.locator('.cat[data-category="A"] .w')).to_contain_text("1")

    # The clerk signs in and calls: the calling screen shows it and fetches the announcement.
    await window.locator("#staff-id").fill("0231")
    await window.locator("#signin-form button").click()
    await expect(window.locator("#staff")).to_contain_text("李明")
    await window.locator('[data-act="call-next"]').click()
    await expect(window.locator("#cur")).to_have_text("A001")
    await expect(screen.locator("#newest-num")).to_have_text("A001")
    await expect(screen.locator("#newest-to")).to_contain_text("1")
    await expect(screen.locator('.win[data-window="1"] .cur')).to_have_text("A001")
    await screen.wait_for_function("window.__voiceLog.filter(e => e.ev === 'end').length >= 2")
    assert any(re.search(r"/api/v1/voice/\d{8}-A001\.wav", u) for u in wav), wav
    log = await screen.evaluate("window.__voiceLog")
    # The caption says 请A001号到1号窗口办理; the voice says it in words.
    await expect(screen.locator("#newest-to")).to_have_text("请A001号到1号窗口办理")
    assert [(e["ev"], e["text"]) for e in log] == [
        ("start", "请A零零一号到一号窗口办理"),
        ("end", "请A零零一号到一号窗口办理"),
    ] * 2
    assert all(e["how"] == "ended" for e in log if e["ev"] == "end"), log

    # The clerk finishes: the pad asks about exactly this ticket, the visitor rates it.
    await window.locator('[data-act="finish"]').click()
    await expect(pad.locator("#v-ask")).to_be_visible()
    await expect(pad.locator("#ask-number")).to_have_text("A001")
    await expect(pad.locator("#ask-staff")).to_contain_text("李明")
    await shot(pad, "pad")
    await pad.locator('#levels button[data-level="5"]').click()
    await expect(pad.locator("#v-thanks")).to_be_visible()
    await expect(pad.locator("#v-idle")).to_be_visible()  # returns by itself
    rows = await hall.store.read(
        lambda c: [
            tuple(r)
            for r in c.execute(
                "SELECT t.number, e.level, e.channel FROM evaluations e JOIN tickets t ON t.id = e.ticket_id"
            )
        ]
    )
    assert [r[:2] for r in rows] == [("A001", 5)]

    # The big screen follows: one done, 100% satisfaction, the window grid and climate.
    await expect(big.locator("#k-done")).to_have_text("1")
    await expect(big.locator("#k-sat")).to_contain_text("100")
    await expect(big.locator('.floor[data-floor="1"] .lbl b')).to_have_text("24.5°C")
    await expect(window.locator("#served")).to_have_text("1")
    await shot(big, "bigscreen")
