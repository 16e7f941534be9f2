"""The guide desk page (/guide) at 1366×768: book, check in (card and code), a green-channel ticket, both languages."""

from __future__ import annotations

import json
import re
import sqlite3

from playwright.async_api import Browser, Page, expect

from tests.ui.uihelpers import HallRunner, open_page, shot

CARD = "11010519491231002X"
WIDTH, HEIGHT = 1366, 768


# Inside the page too: a column or a box whose content is wider than itself is cut off, even
# when the document as a whole fits (the columns clip what overflows them).
CLIPPED = """() => [...document.querySelectorAll('main .col, .panel, .queue, .reasons button, button')]
  .filter((e) => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
  .map((e) => (e.id || e.className) + ': ' + e.textContent.trim().slice(0, 30))"""


async def no_overflow(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    height = await page.evaluate("document.documentElement.scrollHeight")
    assert width <= WIDTH and height <= HEIGHT, (width, height)
    assert await page.evaluate(CLIPPED) == []


async def booked_code(page: Page) -> str:
    await expect(page.locator("#book-msg")).to_contain_text("预约成功")
    m = re.search(r"预约码 (\d+)", await page.locator("#book-msg").inner_text())
    assert m is not None
    return m.group(1)


async def test_guide_desk_books_checks_in_and_issues_green(runner: HallRunner, browser: Browser) -> None:
    hall = runner.hall
    assert hall is not None
    page = await open_page(browser, runner.url("/guide", "guide"), WIDTH, HEIGHT)
    await expect(page.locator("#slot option").first).to_be_attached()
    if await page.locator("#slot option").count() > 1:
        # The next slot rather than the one under way: it cannot end between showing and booking.
        await page.select_option("#slot", index=1)

    # Book with the visitor's ID card, then check in by swiping (typing) that card.
    await page.fill("#appt-name", "张三")
    await page.fill("#appt-id", CARD)
    await page.click("#book-btn")
    by_card = await booked_code(page)
    assert by_card.isdigit() and len(by_card) == 8
    await expect(page.locator(f"#appts tr[data-code='{by_card}']")).to_contain_text("张*")
    await page.fill("#idno", CARD)
    await page.click("#checkin-card")
    await expect(page.locator("#checkin-msg")).to_contain_text("签到成功")
    await expect(page.locator(f"#appts tr[data-code='{by_card}']")).to_contain_text("已签到")

    # Book without a card and check in with the digits a kiosk keypad would take.
    if await page.locator("#slot option").count() > 1:
        await page.select_option("#slot", index=1)
    await page.click("#book-btn")
    by_code = await booked_code(page)
    await page.fill("#code", by_code)
    await page.click("#checkin-code")
    await expect(page.locator("#checkin-msg")).to_contain_text("签到成功")
    # Again: refused, in Chinese (the daemon's English detail is not shown).
    await page.fill("#code", by_code)
    await page.click("#checkin-code")
    await expect(page.locator("#checkin-msg")).to_have_text("该预约已签到或已取消")

    # A green-channel ticket for a pregnant visitor.
    await page.click("#reasons button[data-reason=pregnant]")
    await page.click("#issue-btn")
    await expect(page.locator("#issue-msg")).to_contain_text("绿色通道：孕妇")
    number = (await page.locator("#issued").inner_text()).strip()
    await expect(page.locator("#queues .queue[data-category=A] b")).not_to_have_text("0")
    # It was printed at the desk's own printer ([guide] kiosk); reprint it there (a lost slip),
    # then cancel it (the visitor left).
    await expect(page.locator("#issue-msg")).to_contain_text("正在打印号票")
    await page.fill("#ticket-no", number)
    await page.click("#reprint-btn")
    await expect(page.locator("#ticket-msg")).to_contain_text(f"{number} 已送去打印（导办台打印机）")
    await page.click("#cancel-btn")
    await expect(page.locator("#ticket-msg")).to_have_text(f"{number} 已取消")
    # A third booking moved to the first slot shown, then cancelled.
    await page.click("#book-btn")
    moved = await booked_code(page)
    await page.select_option("#slot", index=0)
    await page.locator(f"#appts tr[data-code='{moved}'] button", has_text="改约").click()
    await expect(page.locator("#book-msg")).to_contain_text(f"已改约 {moved}")
    await page.locator(f"#appts tr[data-code='{moved}'] button", has_text="取消").click()
    await expect(page.locator(f"#appts tr[data-code='{moved}']")).to_contain_text("已取消")
    # A reader unplugged: the desk reads the driver's detail in Chinese (in English after the switch).
    absent = "cannot open /dev/hallctl/idr-k1: [Errno 2] could not open port /dev/hallctl/idr-k1"
    hall.service.device_health("idr-k1", "idcard", "offline", absent)
    await expect(page.locator("#faults")).to_contain_text("idr-k1 · 离线 · 无法打开端口 /dev/hallctl/idr-k1")
    await no_overflow(page)
    await shot(page, "guide")

    await page.locator(".langbtn").first.click()
    await expect(page.locator("#issue-btn")).to_have_text("Issue ticket")
    await expect(page.locator("#checkin-msg")).to_have_text("This appointment is already checked in or cancelled")
    await expect(page.locator("#issue-msg")).to_contain_text("green channel: Pregnant")
    await expect(page.locator("#issue-msg")).to_contain_text("; printing the ticket")
    await expect(page.locator("#faults")).to_contain_text(f"idr-k1 · offline · {absent}")
    await no_overflow(page)
    await shot(page, "guide-en")

    def issued(c: sqlite3.Connection) -> list[tuple[str, str | None, str | None]]:
        rows = c.execute("SELECT data FROM event_log WHERE kind = 'issued' ORDER BY seq")
        return [(d["number"], d.get("channel"), d.get("reason")) for d in (json.loads(r[0]) for r in rows)]

    log = await hall.store.read(issued)
    assert (number, "guide", "pregnant") in log
    kinds = [e.kind for e in await hall.service.ticket_history(f"{hall.service.day:%Y%m%d}-{number}")]
    assert "reprinted" in kinds and "cancelled" in kinds
    assert [ch for _, ch, _ in log].count("appointment") == 2
