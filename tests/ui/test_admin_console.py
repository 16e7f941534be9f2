"""The admin console in Chromium: login, lockout, a live window edit seen on the window page, audit, TOML.

The hall runs from a real TOML file (the demo hall's, with its comments) so the test can
compare the file the console wrote back with the one it started from.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pyotp
import pytest
import tomlkit
from playwright.async_api import Browser, Page, expect

import hallctl.daemon
from hallctl import config
from hallctl.daemon import Hall
from hallctl.demo import DEMO_TOML, demo_tokens
from tests.ui.uihelpers import open_page, shot

PASSWORD = "correct horse battery"
WINDOW1_BEFORE = 'number = 1\nname = "1号窗口 便民"\nname_en = "Window 1 · Citizen"\ncategories = ["A"]\n'
WINDOW1_AFTER = 'number = 1\nname = "1号窗口 综合"\nname_en = "Window 1 · Citizen"\ncategories = ["A", "B"]\n'


@pytest.fixture
async def hall(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Hall, Path, dict[str, str]]]:
    # Core and HTTP only, as the other page tests: no drivers, simulators or broker.
    monkeypatch.setattr(hallctl.daemon, "component_factories", list)
    doc = tomlkit.parse(DEMO_TOML)
    doc["store"]["path"] = str(tmp_path / "hallctl.db")
    doc["api"] = {"host": "127.0.0.1", "port": 0}
    # The real clock, any day: without the statutory calendar the hall works on a holiday too.
    doc["calendar"] = {"statutory": False}
    path = tmp_path / "hallctl.toml"
    path.write_text(doc.as_string(), encoding="utf-8")
    h = Hall(config.load(path), demo=True, state_dir=tmp_path, config_path=path)
    await h.start()
    try:
        tokens = await demo_tokens(h, tmp_path)
        await h.admin.add_account("boss", "hall_admin", PASSWORD, "test")
        await h.admin.add_account("clerk", "readonly", PASSWORD, "test")
        yield h, path, tokens
    finally:
        await h.stop()


async def login(page: Page, name: str, password: str) -> None:
    await page.fill("#name", name)
    await page.fill("#password", password)
    await page.click("#login-form button[type=submit]")


async def test_login_lockout_live_window_edit_audit_and_toml(
    hall: tuple[Hall, Path, dict[str, str]], browser: Browser
) -> None:
    h, path, tokens = hall
    base = f"http://127.0.0.1:{h.api.port}"
    before_text = path.read_text(encoding="utf-8")
    assert WINDOW1_BEFORE in before_text
    b_ticket = (await h.service.issue("B")).ticket  # window 1 does not serve B yet

    window = await open_page(browser, f"{base}/window/1?token={tokens['window1']}", 1366, 768)
    await expect(window.locator("#title")).to_have_text("1号窗口 便民 · 窗口终端")
    await expect(window.locator("#queue")).not_to_contain_text(b_ticket.number)

    admin = await open_page(browser, f"{base}/admin", 1366, 768, live=False)
    await expect(admin.locator("#login-form")).to_be_visible()
    await shot(admin, "admin-login-zh")
    await admin.click(".langbtn")
    await expect(admin.locator("#login-view h2")).to_have_text("Log in")
    await shot(admin, "admin-login-en")
    await admin.click(".langbtn")

    # Lockout: five wrong passwords, then even the right one is refused with the time it ends.
    for _ in range(5):
        await login(admin, "clerk", "wrong password")
        await expect(admin.locator("#login-msg")).to_have_text("账号或密码错误")
        await admin.locator("#login-msg").evaluate("e => e.textContent = ''")
    await login(admin, "clerk", PASSWORD)
    await expect(admin.locator("#login-msg")).to_contain_text("账号已锁定至")
    await shot(admin, "admin-lockout-zh")

    await login(admin, "boss", PASSWORD)
    await expect(admin.locator("#console")).to_be_visible()
    await expect(admin.locator("#who")).to_have_text("boss · 大厅管理员")
    await expect(admin.locator("tr[data-key='1']")).to_contain_text("1号窗口 便民")
    await shot(admin, "admin-windows-zh")

    await admin.click("button[data-edit='1']")
    form = admin.locator("#edit-window")
    await form.locator("[data-field=name]").fill("1号窗口 综合")
    await form.locator("[data-field=categories] input[value=B]").check()
    await shot(admin, "admin-window-edit-zh")
    await form.locator("button[type=submit]").click()
    await expect(admin.locator("tr[data-key='1']")).to_contain_text("1号窗口 综合")

    # The window page follows without a reload: new name, and the B visitor now waits for it.
    await expect(window.locator("#title")).to_have_text("1号窗口 综合 · 窗口终端")
    await expect(window.locator("#queue")).to_contain_text(b_ticket.number)
    await shot(window, "admin-window-page-after-edit-zh")

    # The file: the same text but the two lines of window 1, comments and layout untouched.
    assert path.read_text(encoding="utf-8") == before_text.replace(WINDOW1_BEFORE, WINDOW1_AFTER, 1)
    assert config.load(path) == h.service.cfg

    # 亮牌上岗: a photo uploaded in the console appears beside the clerk's name on the window page.
    photo = path.parent / "photo.png"
    from PIL import Image

    Image.new("RGB", (600, 800), (40, 120, 200)).save(photo)
    await admin.goto(f"{base}/admin#staff")
    await admin.locator("input[data-photo='0231']").set_input_files(str(photo))
    await expect(admin.locator(".msg.ok")).to_have_text("已更新 0231 的照片")
    await h.service.sign_in(1, "0231")
    await expect(window.locator("#staff-photo")).to_be_visible()
    assert await window.locator("#staff-photo").evaluate("img => img.naturalWidth") == 240
    await shot(window, "admin-window-page-photo-zh")

    await admin.goto(f"{base}/admin#audit")
    row = admin.locator("tbody tr", has_text="修改窗口").first
    await expect(row).to_contain_text("window:1")
    assert await row.locator("td[title]").get_attribute("title") == "config.window.update"
    await expect(row).to_contain_text("boss")
    await admin.click("#audit-verify")
    await expect(admin.locator("#audit-state")).to_contain_text("校验通过")
    await shot(admin, "admin-audit-zh")

    await admin.click(".langbtn")
    await expect(admin.locator("#audit-state")).to_have_text("")  # redrawn in English
    await admin.click("#audit-verify")
    await expect(admin.locator("#audit-state")).to_contain_text("Verified")
    await shot(admin, "admin-audit-en")
    await admin.goto(f"{base}/admin#window")
    await expect(admin.locator("#who")).to_have_text("boss · Hall admin")
    await expect(admin.locator("nav a[href='#window']")).to_have_text("Windows")
    await shot(admin, "admin-windows-en")
    await admin.goto(f"{base}/admin#tokens")
    await admin.select_option("#tok-role", "display")
    await admin.fill("#tok-label", "lobby screen")
    await admin.click("#tok-create")
    await expect(admin.locator("#tok-qr svg")).to_be_visible()
    url = await admin.locator("#tok-url").inner_text()
    assert url.startswith(f"{base}/screen?token=hct_")
    assert (await h.auth.authenticate(url.split("token=", 1)[1])).role == "display"  # the QR provisions a screen
    await shot(admin, "admin-tokens-en")
    await admin.goto(f"{base}/admin#accounts")
    await expect(admin.locator("#acc-name")).to_be_visible()
    # Another account's role and its disable button; none on one's own row.
    await admin.select_option('[data-account-role="clerk"]', "supervisor")
    await expect(admin.locator('[data-account-role="clerk"]')).to_have_value("supervisor")
    await admin.click('[data-account-toggle="clerk"]')
    await expect(admin.locator('[data-account-toggle="clerk"]')).to_have_text("Enable")
    await expect(admin.locator('[data-account-role="boss"], [data-account-toggle="boss"]')).to_have_count(0)
    clerk = next(a for a in await h.admin.accounts() if a["name"] == "clerk")
    assert clerk["role"] == "supervisor" and clerk["disabled"] is True
    await shot(admin, "admin-accounts-en")


async def test_totp_enrolment_and_the_two_step_login_in_the_page(
    hall: tuple[Hall, Path, dict[str, str]], browser: Browser
) -> None:
    h, _, _ = hall
    base = f"http://127.0.0.1:{h.api.port}"
    admin = await open_page(browser, f"{base}/admin", 1366, 768, live=False)
    await login(admin, "boss", PASSWORD)
    await expect(admin.locator("#console")).to_be_visible()
    await admin.goto(f"{base}/admin#accounts")
    await admin.get_by_role("button", name="开始启用：显示二维码").click()
    await expect(admin.locator(".qr svg")).to_be_visible()
    await shot(admin, "admin-totp-enrol-zh")
    secret = (await admin.locator(".qr .secret").inner_text()).strip()
    totp = pyotp.TOTP(secret)
    await admin.fill("#totp-code", totp.now())
    await admin.get_by_role("button", name="确认").click()
    await expect(admin.locator(".ok-badge")).to_have_text("已启用")

    await admin.click("#logout")
    await expect(admin.locator("#login-form")).to_be_visible()
    await login(admin, "boss", PASSWORD)
    await expect(admin.locator("#totp-form")).to_be_visible()
    await admin.fill("#totp", "000000" if totp.now() != "000000" else "111111")
    await admin.click("#totp-form button[type=submit]")
    await expect(admin.locator("#login-msg")).to_have_text("动态验证码错误")
    await admin.click(".langbtn")
    await expect(admin.locator("#totp-form label")).to_have_text("One-time code from your authenticator app")
    await shot(admin, "admin-totp-login-en")
    await admin.fill("#totp", totp.now())
    await admin.click("#totp-form button[type=submit]")
    await expect(admin.locator("#who")).to_have_text("boss · Hall admin")
