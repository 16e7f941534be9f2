"""The ticket kiosk: swipe, choose, ticket on screen, faults explained, back to start by itself."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from playwright.async_api import Browser, expect

from hallctl import engine
from tests.ui.uihelpers import HallRunner, open_page, overflow, shot

HOLDER = engine.Holder(name="李四光", id_number="420103195001010017", birth=date(1990, 1, 1))


async def test_kiosk_faults_limits_appointments_and_idle_return(runner: HallRunner, browser: Browser) -> None:
    hall = runner.hall
    assert hall is not None
    svc = hall.service
    kiosk = await open_page(browser, runner.url("/kiosk/k1", "kiosk", idle=3), 1080, 1920)
    start, card, ticket, msg = (kiosk.locator(f"#v-{v}") for v in ("start", "card", "ticket", "msg"))

    # Closed category: disabled, with the reason.
    c = kiosk.locator('#cats .catbtn[data-category="C"]')
    await expect(c).to_be_disabled()
    await expect(c.locator(".reason")).to_contain_text("不在办理时间")
    await expect(kiosk.locator('#cats .catbtn[data-category="A"]')).to_be_enabled()

    # English on request, Chinese again after.
    await kiosk.locator(".langbtn").click()
    await expect(kiosk.locator("#v-start .prompt span").first).to_have_text("Take a number")
    await expect(c.locator(".reason")).to_contain_text("Closed now")
    await kiosk.locator(".langbtn").click()
    await expect(kiosk.locator("#v-start .prompt span").first).to_have_text("排队取号")

    # Per-ID limit (3 a day per category): the fourth swipe-and-choose is refused, clearly.
    for n in range(1, 4):
        await svc.card_read("k1", HOLDER)
        await expect(card).to_be_visible()
        await expect(kiosk.locator("#greet")).to_contain_text("李*光")
        await expect(kiosk.locator("#greet .green")).to_have_count(0)  # not elderly
        await kiosk.locator('#card-cats .catbtn[data-category="A"]').click()
        await expect(kiosk.locator("#t-num")).to_have_text(f"A{n:03d}")
        await kiosk.locator("#v-ticket [data-home]").click()
        await expect(start).to_be_visible()
    await svc.card_read("k1", HOLDER)
    await kiosk.locator('#card-cats .catbtn[data-category="A"]').click()
    await expect(msg).to_be_visible()
    await expect(kiosk.locator("#msg")).to_contain_text("已达上限")
    await expect(kiosk.locator("#msg")).to_have_attribute("data-code", "id_limit_reached")
    await expect(start).to_be_visible(timeout=10000)  # back to the start by itself

    # Printer out of paper: a banner, and the ticket still shown on screen with a warning.
    svc.device_health("prn-k1", "printer", "error", "paper_out")
    await expect(kiosk.locator("#printer-banner")).to_be_visible()
    await expect(kiosk.locator("#printer-banner")).to_contain_text("缺纸")
    await kiosk.locator('#cats .catbtn[data-category="B"]').click()
    await expect(kiosk.locator("#t-num")).to_have_text("B001")
    await expect(kiosk.locator("#t-note")).to_contain_text("记住您的号码")
    await expect(kiosk.locator("#slip")).to_be_hidden()
    await expect(start).to_be_visible(timeout=10000)
    svc.device_health("prn-k1", "printer", "ok", "")
    await expect(kiosk.locator("#printer-banner")).to_be_hidden()

    # A notice from the hardware side (e.g. a jam reported by the printer driver).
    svc.kiosk_notice("k1", "paper_jam", "打印机卡纸，请联系工作人员", "Printer jammed, please ask staff")
    await expect(kiosk.locator("#msg")).to_contain_text("打印机卡纸")
    await expect(start).to_be_visible(timeout=10000)

    # Appointment check-in by code on the on-screen keypad.
    # The next 30-minute slot (appointments are booked in the category's slots): it may be checked in now.
    now = datetime.now(UTC).astimezone(svc.cfg.hall.tz)
    slot = now.replace(minute=now.minute - now.minute % 30, second=0, microsecond=0) + timedelta(minutes=30)
    await svc.book("D", slot, code="20261123")
    await kiosk.locator("#to-appt").click()
    for digit in "20261123":
        await kiosk.locator("#keypad button", has_text=digit).first.click()
    await expect(kiosk.locator("#code")).to_have_text("20261123")
    await kiosk.locator("#appt-ok").click()
    await expect(kiosk.locator("#t-num")).to_have_text("D001")
    await expect(ticket).to_be_visible()
    await expect(start).to_be_visible(timeout=10000)

    # A wrong code is refused with the daemon's Chinese reason.
    await kiosk.locator("#to-appt").click()
    for digit in "9999":
        await kiosk.locator("#keypad button", has_text=digit).first.click()
    await kiosk.locator("#appt-ok").click()
    await expect(msg).to_be_visible()
    await expect(start).to_be_visible(timeout=10000)


async def test_single_category_kiosk_issues_on_the_swipe(runner: HallRunner, browser: Browser) -> None:
    hall = runner.hall
    assert hall is not None
    kiosk = await open_page(browser, runner.url("/kiosk/k2", "kiosk"), 1080, 1920)
    await expect(kiosk.locator("#cats .catbtn")).to_have_count(1)
    await hall.service.card_read("k2", HOLDER)
    await expect(kiosk.locator("#v-ticket")).to_be_visible()
    await expect(kiosk.locator("#t-num")).to_have_text("D001")
    await expect(kiosk.locator("#t-cat")).to_have_text("不动产登记")


async def test_unknown_kiosk_and_window_pages_are_404(runner: HallRunner, browser: Browser) -> None:
    page = await open_page(browser, f"{runner.base}/", 1280, 800, live=False)
    for path in ("/kiosk/nope", "/window/99", "/pad/99"):
        resp = await page.goto(f"{runner.base}{path}")
        assert resp is not None and resp.status == 404, path


READER_DOWN_ZH = "身份证阅读器暂停使用，请点击业务按钮取号或到导办台办理"
READER_DOWN_EN = "The ID card reader is out of service: tap a service to take a number, or see the guide desk"


async def test_reader_fault_shows_a_banner_and_the_buttons_still_issue(runner: HallRunner, browser: Browser) -> None:
    """A kiosk's offline ID-card reader shows a Chinese-then-English banner until it is ok; buttons keep issuing."""
    hall = runner.hall
    assert hall is not None
    svc = hall.service
    kiosk = await open_page(browser, runner.url("/kiosk/k1", "kiosk"), 1080, 1920)
    banner = kiosk.locator("#reader-banner")
    swipe = kiosk.locator("#v-start .swipe")
    await expect(kiosk.locator("#v-start")).to_be_visible()
    await expect(banner).to_be_hidden()
    await expect(swipe).to_be_visible()

    svc.device_health("idr-k1", "idcard", "offline", "port closed")
    await expect(banner).to_be_visible()
    await expect(banner).to_have_text(READER_DOWN_ZH + READER_DOWN_EN)  # Chinese first, English after
    await expect(banner.locator(".en")).to_have_text(READER_DOWN_EN)
    await expect(swipe).to_be_hidden()  # no invitation to swipe on a dead reader

    # A page opened (or reloaded) while the reader is down shows the banner from the retained state.
    await kiosk.reload()
    await kiosk.locator("#conn[data-state=live]").wait_for(timeout=15000)
    await expect(banner).to_have_text(READER_DOWN_ZH + READER_DOWN_EN)

    # The category buttons still issue, and the banner stays up on the ticket screen.
    a = kiosk.locator('#cats .catbtn[data-category="A"]')
    await expect(a).to_be_enabled()
    await a.click()
    await expect(kiosk.locator("#t-num")).to_have_text("A001")
    await expect(banner).to_be_visible()
    await kiosk.locator("#v-ticket [data-home]").click()
    await expect(kiosk.locator("#v-start")).to_be_visible()
    await expect(banner).to_be_visible()

    svc.device_health("idr-k1", "idcard", "ok", "")
    await expect(banner).to_be_hidden()
    await expect(swipe).to_be_visible()

    # Another kiosk's reader is not this kiosk's business; the printer banner is separate. Events arrive in
    # order, so once the printer banner is up the other reader's fault has been seen (and ignored).
    svc.device_health("idr-k2", "idcard", "error", "usb")
    svc.device_health("prn-k1", "printer", "error", "paper_out")
    await expect(kiosk.locator("#printer-banner")).to_be_visible()
    await expect(banner).to_be_hidden()


async def test_kiosk_for_everyone_large_text_guide_help_qr_and_no_wait(runner: HallRunner, browser: Browser) -> None:
    """适老化: large text until the visit ends, 办事指南 per category, 需要帮助 reaches the guide desk at once,
    a booking's QR checks in, and nobody ahead says 无需等待 rather than an average."""
    hall = runner.hall
    assert hall is not None
    svc = hall.service
    kiosk = await open_page(browser, runner.url("/kiosk/k1", "kiosk", idle=3), 1080, 1920)
    guide = await open_page(browser, runner.url("/guide", "guide"), 1366, 768)
    name = kiosk.locator('#cats .catbtn[data-category="A"] .n')
    normal = float(await name.evaluate("(e) => parseFloat(getComputedStyle(e).fontSize)"))

    # Large text: bigger words, kept while the visitor takes a number, off when the visit ends.
    await kiosk.locator("#big-btn").click()
    await expect(kiosk.locator("#big-btn")).to_have_attribute("aria-pressed", "true")
    big = float(await name.evaluate("(e) => parseFloat(getComputedStyle(e).fontSize)"))
    assert big >= normal * 1.2, (normal, big)
    await expect(kiosk.locator("#to-appt")).to_be_in_viewport(ratio=1)
    await kiosk.locator('#cats .catbtn[data-category="A"]').click()
    await expect(kiosk.locator("#t-num")).to_have_text("A001")
    await expect(kiosk.locator("body")).to_have_class(re.compile(r"\bbig\b"))
    # Nobody ahead: no invented "about 5 minutes".
    await expect(kiosk.locator("#t-eta")).to_have_text("无需等待，请留意叫号")
    await kiosk.locator("#v-ticket [data-home]").click()
    await expect(kiosk.locator("body")).not_to_have_class(re.compile(r"\bbig\b"))
    await expect(kiosk.locator("#big-btn")).to_have_attribute("aria-pressed", "false")
    # Someone ahead: the estimate.
    await kiosk.locator('#cats .catbtn[data-category="A"]').click()
    await expect(kiosk.locator("#t-num")).to_have_text("A002")
    await expect(kiosk.locator("#t-eta")).to_contain_text("预计等候约")
    # Large text left on goes off when the kiosk returns to the start by itself (?idle=3).
    await kiosk.locator("#big-btn").click()
    await expect(kiosk.locator("#v-start")).to_be_visible(timeout=10000)
    await expect(kiosk.locator("body")).not_to_have_class(re.compile(r"\bbig\b"), timeout=10000)

    # 办事指南 from the config, in both languages.
    await kiosk.locator("#guide-btn").click()
    section = kiosk.locator('#guidelist section[data-category="D"]')
    await expect(section).to_contain_text("不动产权证书")
    await kiosk.locator(".langbtn").click()
    await expect(section).to_contain_text("Real estate title certificate")
    assert await overflow(kiosk, "guide (en)") == []
    await shot(kiosk, "kiosk-guide-en")
    await kiosk.locator(".langbtn").click()
    await shot(kiosk, "kiosk-guide-zh")
    await kiosk.locator("#v-guide [data-home]").click()

    # 需要帮助: the guide desk's alert list shows it at once, first.
    await kiosk.locator("#help-btn").click()
    await expect(kiosk.locator("#msg")).to_contain_text("已通知导办台")
    await expect(kiosk.locator("#help-btn")).to_be_disabled()
    first = guide.locator("#faults li").first
    await expect(first).to_have_attribute("data-kind", "help_requested")
    await expect(first).to_contain_text("1楼k1号取号机有群众需要帮助")
    await guide.locator(".langbtn").click()
    await expect(first).to_contain_text("A visitor at kiosk k1 (floor 1) needs help")
    await guide.locator(".langbtn").click()

    # A booking's QR, read by a scanner that types it, checks in on the start screen.
    await expect(kiosk.locator("#v-start")).to_be_visible(timeout=10000)
    now = datetime.now(UTC).astimezone(svc.cfg.hall.tz)
    slot = now.replace(minute=now.minute - now.minute % 30, second=0, microsecond=0) + timedelta(minutes=30)
    booking, _ = await svc.book("D", slot)
    await kiosk.keyboard.type(svc.appointment_qr(booking))
    await kiosk.keyboard.press("Enter")
    await expect(kiosk.locator("#t-num")).to_have_text("D001")
    # A ticket's QR is not a booking's: refused in the page's language.
    await kiosk.locator("#v-ticket [data-home]").click()
    await kiosk.locator(".langbtn").click()
    ticket_qr = (await svc.issue("A")).qr
    await kiosk.keyboard.type(ticket_qr)
    await kiosk.keyboard.press("Enter")
    await expect(kiosk.locator("#msg")).to_have_text("this QR is a ticket's, not a booking's")
