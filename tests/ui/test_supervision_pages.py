"""Supervision on the pages (issue 15 §2, §3): the clerk's screen shows only its own window's alerts and
handles them by the signed-in clerk's name; the guide desk lists the hall's; the pad asks why after a 差评.
Screenshots in both languages."""

from __future__ import annotations

from datetime import datetime

from playwright.async_api import Browser, expect

from hallctl import events as ev
from tests.ui.uihelpers import HallRunner, open_page, shot


def request(now: datetime, kind: str, subject: str, zh: str, en: str, window: int | None) -> ev.Alert:
    """A raise request, as every producer publishes one on the bus (the alert service stores it)."""
    data = {} if window is None else {"window": window}
    return ev.Alert(
        at=now,
        alert=kind,
        severity="warning",
        message=zh,
        message_en=en,
        subject=subject,
        data=data,
    )


async def test_window_page_shows_only_its_own_alerts_and_the_clerk_handles_them(
    runner: HallRunner, browser: Browser
) -> None:
    hall = runner.hall
    assert hall is not None
    svc = hall.service
    await svc.sign_in(1, "0231")
    now = svc.clock()
    mine = request(
        now, "service_overrun", "1", "1号窗口 A001办理已超时（25分钟）", "Window 1: A001 over time (25 min)", 1
    )
    theirs = request(now, "window_paused", "2", "2号窗口暂停服务已超过15分钟", "Window 2 paused for over 15 min", 2)
    hallwide = request(
        now, "device_fault", "printer-k9", "打印机printer-k9故障：缺纸", "printer printer-k9: out of paper", None
    )
    for a in (mine, theirs, hallwide):
        hall.bus.publish(a)
    for _ in range(3):
        await hall.bus.drain()

    big = await open_page(browser, runner.url("/bigscreen", "display"), 1920, 1080)
    await expect(big.locator("#alerts")).to_contain_text("1号窗口 A001办理已超时（25分钟）")
    await shot(big, "bigscreen-alerts")
    await big.locator(".langbtn").first.click()
    await expect(big.locator("#alerts")).to_contain_text("Window 1: A001 over time (25 min)")
    await shot(big, "bigscreen-alerts-en")
    await big.locator(".langbtn").first.click()

    page = await open_page(browser, runner.url("/window/1", "window1"), 1600, 1000)
    items = page.locator("#alert-list li")
    await expect(page.locator("#alerts")).to_be_visible()
    await expect(items).to_have_count(1)
    await expect(items.first).to_contain_text("1号窗口 A001办理已超时（25分钟）")
    await expect(items.first).to_contain_text("待处理")
    await shot(page, "window-alerts")
    await page.locator(".langbtn").first.click()
    await expect(page.locator("#alerts h2")).to_have_text("Alerts for this window")
    await expect(items.first).to_contain_text("Window 1: A001 over time (25 min)")
    await shot(page, "window-alerts-en")
    await page.locator(".langbtn").first.click()

    # Another window's alert raised while the page is open does not reach it; its own does.
    hall.bus.publish(request(now, "window_unstaffed", "2", "2号窗口无人", "Window 2 unstaffed", 2))
    hall.bus.publish(request(now, "bad_evaluation", "A001", "A001 在1号窗口评价为不满意", "A001 rated 2/5", 1))
    await expect(items).to_have_count(2)
    await expect(page.locator("#alert-list")).not_to_contain_text("2号窗口")

    first = page.locator("#alert-list li", has_text="办理已超时")
    await page.locator("#alert-note").fill("已加派人手")
    await first.locator('button[data-alert-act="ack"]').click()
    await expect(first).to_contain_text("已确认")
    await first.locator('button[data-alert-act="resolve"]').click()
    await expect(items).to_have_count(1)
    await expect(big.locator("#alerts")).not_to_contain_text("办理已超时")  # resolved: off the big screen
    stored = await hall.supervision.find(kinds=("service_overrun",))
    assert [(a.state, a.acked_by, a.ack_note, a.resolved_by) for a in stored] == [
        ("resolved", "李明", "已加派人手", "李明")
    ]

    # The guide desk sees the hall's unresolved alerts, the other window's and the hall-wide ones too.
    guide = await open_page(browser, runner.url("/guide", "guide"), 1366, 768)
    faults = guide.locator("#faults")
    await expect(faults).to_contain_text("2号窗口暂停服务已超过15分钟")
    await expect(faults).to_contain_text("打印机printer-k9故障：缺纸")
    await expect(faults).not_to_contain_text("办理已超时")
    await guide.locator("#alert-by").fill("张主任")
    await faults.locator("li", has_text="printer-k9").locator('button[data-alert-act="resolve"]').click()
    await expect(faults).not_to_contain_text("printer-k9")
    await shot(guide, "guide-alerts")
    await guide.locator(".langbtn").first.click()
    await expect(faults).to_contain_text("Window 2 paused for over 15 min")
    await shot(guide, "guide-alerts-en")
    stored = await hall.supervision.find(kinds=("device_fault",))
    assert [(a.subject, a.state, a.resolved_by) for a in stored if a.subject == "printer-k9"] == [
        ("printer-k9", "resolved", "张主任")
    ]


async def test_pad_asks_why_after_a_bad_rating_and_the_case_keeps_it(runner: HallRunner, browser: Browser) -> None:
    hall = runner.hall
    assert hall is not None
    svc = hall.service
    await svc.sign_in(1, "0231")
    t = await svc.issue("A")
    pad = await open_page(browser, runner.url("/pad/1", "pad1", back=1), 1280, 800)
    await svc.call_next(1)
    await svc.finish(1)
    await expect(pad.locator("#v-ask")).to_be_visible()
    await pad.locator('#levels button[data-level="2"]').click()
    await expect(pad.locator("#v-reason")).to_be_visible()
    await expect(pad.locator("#reasons button[data-reason]")).to_have_count(5)
    await shot(pad, "pad-reason")
    await pad.locator(".langbtn").first.click()
    await expect(pad.locator('#reasons button[data-reason="多次跑动"]')).to_contain_text("Had to come more than once")
    await shot(pad, "pad-reason-en")
    await pad.locator('#reasons button[data-reason="办事指南不清晰"]').click()
    await expect(pad.locator("#v-thanks")).to_be_visible()
    case = await hall.store.case_of_ticket(t.ticket.id)
    assert case is not None and case.reasons == ("办事指南不清晰",) and case.level == 2
