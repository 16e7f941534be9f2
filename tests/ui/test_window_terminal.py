"""The clerk's screen (issue 14, section 4): sign in before calling, the three choices when the called
visitor never came, overtime in red, today's own figures, a transfer's note at the receiving window,
refusals in the page's language; screenshots in both languages at the terminal's size, overflow measured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

import hallctl.daemon
from hallctl.service import utcnow
from tests.ui.uihelpers import HallRunner, open_page, shot

# The window terminal is a desktop page (docs/screens.md); the page tests open it at 1600×1000.
WIDTH, HEIGHT = 1600, 1000


class ShiftClock:
    """Real time plus an offset the test moves: waits and services grow without sleeping.

    It starts at 10:00 in the hall's time zone today, so the minutes the test adds never cross the
    business day's reset hour (03:00), whenever CI happens to run."""

    def __init__(self, tz: ZoneInfo) -> None:
        now = utcnow()
        self.offset = now.astimezone(tz).replace(hour=10, minute=0, second=0, microsecond=0) - now

    def __call__(self) -> datetime:
        return utcnow() + self.offset


@pytest.fixture
async def product(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[HallRunner, ShiftClock]]:
    """The demo hall with the product's window policy: sign-in required, call next asks."""
    monkeypatch.setattr(hallctl.daemon, "component_factories", list)
    clock = ShiftClock(ZoneInfo("Asia/Shanghai"))  # the demo hall's [hall] timezone
    r = HallRunner(tmp_path, clock, require_sign_in=True, call_next_unstarted="ask")
    await r.start()
    try:
        yield r, clock
    finally:
        await r.stop()


async def overflow(page: Page) -> dict[str, Any]:
    """What sticks out: the document beyond the viewport, and any element wider than its box."""
    result: dict[str, Any] = await page.evaluate(
        """() => {
          const d = document.documentElement;
          const out = { docW: d.scrollWidth, docH: d.scrollHeight, vw: innerWidth, vh: innerHeight, clipped: [] };
          for (const el of document.querySelectorAll("main *")) {
            if (el.offsetParent === null || el.tagName === "OPTION") continue;
            if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== "visible")
              out.clipped.push(el.id || el.className || el.tagName);
            const r = el.getBoundingClientRect();
            if (r.right > innerWidth + 1) out.clipped.push(`${el.id || el.className || el.tagName} right ${r.right}`);
          }
          return out;
        }"""
    )
    return result


async def assert_fits(page: Page) -> None:
    o = await overflow(page)
    assert o["docW"] <= o["vw"] and o["docH"] <= o["vh"] and not o["clipped"], o


async def test_window_terminal_sign_in_choices_overtime_figures_languages(
    product: tuple[HallRunner, ShiftClock], browser: Browser
) -> None:
    runner, clock = product
    hall = runner.hall
    assert hall is not None
    svc = hall.service
    for _ in range(3):
        await svc.issue("A")
    window = await open_page(browser, runner.url("/window/1", "window1"), WIDTH, HEIGHT)
    result = window.locator("#result")

    # Nobody signed in: the page says so, and a call is refused in Chinese.
    await expect(window.locator("#signin-needed")).to_be_visible()
    await window.locator('[data-act="call-next"]').click()
    await expect(result).to_have_text("1号窗口未签到，请先刷工牌或输入工号签到")
    await window.locator("#staff-id").fill("9999")
    await window.locator("#signin-form button").click()
    await expect(result).to_have_text("没有工号为9999的工作人员")
    # A refusal whose API text is English only (pydantic's validation): the page's own Chinese words.
    await window.locator("#call-number").fill("A")
    await window.locator("#call-form button").click()
    await expect(result).to_have_text("输入有误，请检查后重试")
    # The same refusal in English mode, and the page's static text in English too.
    await window.locator(".langbtn").first.click()
    await window.locator("#signin-form button").click()
    await expect(result).to_have_text("no staff member 9999")
    await window.locator('[data-act="call-next"]').click()
    await expect(result).to_contain_text("nobody is signed in")
    await expect(window.locator("#signin-needed")).to_contain_text("Sign in first")
    await expect(window.locator("#title")).to_have_text("Window 1 · Citizen · Window terminal")  # the window's name_en
    await window.locator(".langbtn").first.click()

    await window.locator("#staff-id").fill("0231")
    await window.locator("#signin-form button").click()
    await expect(window.locator("#staff")).to_contain_text("李明")
    await expect(window.locator("#signin-needed")).to_be_hidden()

    # A001 waited 12 minutes against category A's 10-minute target: the wait shows red once called.
    clock.offset += timedelta(minutes=12)
    await window.locator('[data-act="call-next"]').click()
    await expect(window.locator("#cur")).to_have_text("A001")
    await expect(window.locator("#clock-wait")).to_have_class("over")
    await expect(window.locator("#clock-wait")).to_contain_text("等候 12 分钟（目标 10）")

    # The visitor never comes: call next asks instead of recording A001 as done.
    await window.locator('[data-act="call-next"]').click()
    await expect(window.locator("#choices")).to_be_visible()
    await expect(window.locator("#choices [data-choice]")).to_have_count(3)
    await expect(window.locator("#choices-text")).to_contain_text("A001已叫号但未开始办理")
    assert svc.window_state(1).ticket == "A001"
    await shot(window, "window-choices")
    await assert_fits(window)
    await window.locator(".langbtn").first.click()
    await expect(window.locator('[data-choice="no-show"]')).to_have_text("No-show · next")
    await expect(window.locator("#choices-text")).to_contain_text("choose finish, no-show or recall")
    await expect(window.locator("#clock-wait")).to_contain_text("Waited 12 min (target 10)")
    await shot(window, "window-choices-en")
    await assert_fits(window)
    await window.locator(".langbtn").first.click()

    await window.locator('[data-choice="no-show"]').click()
    await expect(window.locator("#cur")).to_have_text("A002")
    await expect(window.locator("#choices")).to_be_hidden()
    assert (await svc.ticket(f"{svc.day:%Y%m%d}-A001")).state == "no_show"

    # A002 is served for 21 minutes against the 20-minute limit: red.
    await window.locator('[data-act="start"]').click()
    await expect(window.locator("#clock-service")).to_be_visible()
    await expect(window.locator("#clock-service")).not_to_have_class("over")
    clock.offset += timedelta(minutes=21)
    await svc.issue("A")  # any queue change redraws the page (the page also redraws every 20 s)
    await expect(window.locator("#clock-service")).to_have_class("over")
    await expect(window.locator("#clock-service")).to_contain_text("办理 21 分钟（时限 20）")
    await shot(window, "window-overtime")

    # Finished and rated 5: today's own figures.
    await window.locator('[data-act="finish"]').click()
    await svc.evaluate(1, 5, "pad")
    await expect(window.locator("#served")).to_have_text("1")
    await expect(window.locator("#f-rated")).to_have_text("1")
    await expect(window.locator("#f-sat")).to_have_text("100%")
    await expect(window.locator("#f-avg")).to_have_text("21.0分")

    # A transfer with a note: the receiving window's list shows where from and the note.
    await window.locator('[data-act="call-next"]').click()
    await expect(window.locator("#cur")).to_have_text("A003")
    await window.locator('[data-act="start"]').click()
    await window.locator("#transfer-win").select_option("2")
    await window.locator("#transfer-note").fill("身份证复印件已收，缺户口本")
    await window.locator("#transfer-form button").click()
    await expect(result).to_contain_text("已转移")
    other = await open_page(browser, runner.url("/window/2", "window2"), WIDTH, HEIGHT)
    row = other.locator('#queue tr[data-from-window="1"]')
    await expect(row).to_contain_text("← 1号窗口转来")
    await expect(other.locator("#queue tr.note")).to_have_text("备注：身份证复印件已收，缺户口本")
    await shot(other, "window-transfer-in")
    await assert_fits(other)
    await other.locator(".langbtn").first.click()
    await expect(row).to_contain_text("← from window 1")
    await expect(other.locator("#queue tr.note")).to_have_text("Note: 身份证复印件已收，缺户口本")
    await assert_fits(other)


async def test_device_fault_reaches_alerts_and_the_big_screen(
    product: tuple[HallRunner, ShiftClock], browser: Browser
) -> None:
    """A printer out of paper and a reader unplugged are alerts: GET /alerts and the big screen, in both languages."""
    runner, _ = product
    hall = runner.hall
    assert hall is not None
    big = await open_page(browser, runner.url("/bigscreen", "display"), 1920, 1080)
    await expect(big.locator("#alerts li").first).to_be_visible()  # drawn (other alerts may be there already)
    hall.service.device_health("printer-k1", "printer", "ok")
    hall.service.device_health("printer-k1", "printer", "error", "paper_out")
    hall.service.device_health("reader-k1", "idcard", "ok")
    hall.service.device_health("reader-k1", "idcard", "offline", "not opened")
    await expect(big.locator("#alerts")).to_contain_text("打印机printer-k1故障：缺纸")
    await expect(big.locator("#alerts")).to_contain_text("身份证读卡器reader-k1离线：未连接")
    await big.locator(".langbtn").first.click()
    await expect(big.locator("#alerts")).to_contain_text("printer printer-k1 fault: out of paper")
    await expect(big.locator("#alerts")).to_contain_text("ID card reader reader-k1 offline: not connected")
    async with httpx.AsyncClient(base_url=runner.base, timeout=10) as http:
        r = await http.get("/api/v1/alerts", headers={"Authorization": f"Bearer {runner.tokens['guide']}"})
    faults = [a for a in r.json() if a["alert"] == "device_fault"]
    assert [(a["subject"], a["severity"]) for a in faults] == [("printer-k1", "error"), ("reader-k1", "warning")]
    assert faults[0]["message_en"] == "printer printer-k1 fault: out of paper"
