"""Personal data stays off the public screens; the index hands each screen its token in the demo."""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qs, urlsplit

from playwright.async_api import Browser, expect

from hallctl import engine
from tests.ui.uihelpers import HallRunner, open_page, shot

NAME = "张三丰"
ID_NUMBER = "11010519491231002X"
HOLDER = engine.Holder(
    name=NAME, id_number=ID_NUMBER, birth=date(1949, 12, 31), sex="男", address="北京市西城区示范路1号"
)


async def test_full_details_only_on_the_window_terminal_after_a_scan(runner: HallRunner, browser: Browser) -> None:
    hall = runner.hall
    assert hall is not None
    kiosk = await open_page(browser, runner.url("/kiosk/k1", "kiosk"), 1080, 1920)
    screen = await open_page(browser, runner.url("/screen", "display", rate=10), 1920, 1080)
    big = await open_page(browser, runner.url("/bigscreen", "display"), 1920, 1080)
    window = await open_page(browser, runner.url("/window/1", "window1"), 1600, 1000)

    await hall.service.card_read("k1", HOLDER)
    await kiosk.locator('#card-cats .catbtn[data-category="A"]').click()
    await expect(kiosk.locator("#t-num")).to_have_text("A001")
    src = await kiosk.locator("#slip img").get_attribute("src")
    assert src is not None
    qr = parse_qs(urlsplit(src).query)["data"][0]  # what the printed ticket's QR carries

    await hall.service.sign_in(1, "0231")
    await window.locator('[data-act="call-next"]').click()
    await expect(screen.locator("#newest-num")).to_have_text("A001")
    await expect(big.locator('.w[data-window="1"] .t')).to_have_text("A001")

    # Not before the scan: the terminal's queue shows numbers, not people.
    assert NAME not in await window.content()

    # Keyboard-wedge scanner: types the code and Enter into the focused field.
    await window.locator("#qr").focus()
    await window.keyboard.type(qr)
    await window.keyboard.press("Enter")
    await expect(window.locator("#holder")).to_contain_text(NAME)
    await expect(window.locator("#holder")).to_contain_text(ID_NUMBER)
    await expect(window.locator("#holder")).to_contain_text("北京市西城区示范路1号")
    await expect(window.locator("#qr-result")).to_contain_text("A001")
    await shot(window, "window")

    for page in (kiosk, screen, big):
        html = await page.content()
        for secret in (NAME, ID_NUMBER, "三丰", ID_NUMBER[-8:], "示范路1号"):
            assert secret not in html, (page.url, secret)
    # And the kiosk's own token cannot ask for them.
    status = await kiosk.evaluate(
        "async (qr) => (await fetch('/api/v1/tickets/by-qr/' + encodeURIComponent(qr),"
        " {headers: {Authorization: 'Bearer ' + localStorage.getItem('hallctl.token.kiosk.k1')}})).status",
        qr,
    )
    assert status == 403


async def test_index_links_carry_role_tokens_in_the_demo(runner: HallRunner, browser: Browser) -> None:
    tokens = runner.tokens
    page = await open_page(browser, runner.url("/", "admin"), 1280, 1000, live=False)
    hrefs = await page.locator("ul.screens a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    expected = {
        "/kiosk/k1": "kiosk",
        "/kiosk/k2": "kiosk",
        "/screen": "display",
        "/bigscreen": "display",
        **{f"/window/{n}": f"window{n}" for n in range(1, 7)},
        **{f"/pad/{n}": f"pad{n}" for n in range(1, 7)},
    }
    found = {urlsplit(h).path: parse_qs(urlsplit(h).query).get("token", [None])[0] for h in hrefs}
    for path, role in expected.items():
        assert found.get(path) == tokens[role], path
    await shot(page, "index", full_page=True)

    # A new user just clicks: the calling screen opens with its token and goes live.
    await page.locator('a[href^="/screen"]').click()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    assert "token=" not in page.url  # kept in localStorage, dropped from the address bar

    # Without the admin token, the index lists the screens but hands out no tokens.
    page2 = await open_page(browser, runner.url("/", "display"), 1280, 1000, live=False)
    hrefs2 = await page2.locator("ul.screens a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert "/screen" in hrefs2 and not any("token=" in h for h in hrefs2)


async def test_index_and_pages_load_without_a_failed_request(runner: HallRunner, browser: Browser) -> None:
    """No 404 in the browser's log on the index or a screen: the favicon is served (issue 14 §7)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 1000}, locale="zh-CN")
    page = await context.new_page()
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    await page.goto(runner.url("/", "admin"))
    icon = await page.locator("link[rel=icon]").get_attribute("href")
    assert icon == "/static/favicon.svg"
    await page.goto(runner.url("/screen", "display"))
    await page.locator("#conn[data-state=live]").wait_for(timeout=15000)
    # Headless Chromium does not fetch icons itself; a desktop browser asks for both.
    for path in (icon, "/favicon.ico"):
        r = await page.request.get(runner.base + path)
        assert (r.status, r.headers["content-type"]) == (200, "image/svg+xml"), path
    assert failed == []
    await context.close()
