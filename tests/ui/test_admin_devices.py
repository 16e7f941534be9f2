"""The console's 设备 and 自助取号机 views in Chromium, Chinese and English, at 1366×768.

A device's baud rate edited in the form is written to the demo hall's TOML (its comments
kept); deleting a printer a kiosk still uses shows the daemon's refusal naming the kiosk in
the page's language; a kiosk given another printer already in use is refused by the config
model, and one whose printer is taken off, floor and categories changed is taken by the
running hall and by the kiosk page already open (``config_changed``, no reload). The
driver swap itself is tested against simulators in tests/devices/test_live_device_edit.py.
"""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, Dialog, expect

from hallctl import config
from hallctl.daemon import Hall
from tests.ui.test_admin_console import PASSWORD, hall, login  # noqa: F401  (hall is a fixture)
from tests.ui.uihelpers import open_page, overflow, shot


async def test_devices_and_kiosks_views_edit_refuse_and_fit(
    hall: tuple[Hall, Path, dict[str, str]],  # noqa: F811
    browser: Browser,
) -> None:
    h, path, tokens = hall
    base = f"http://127.0.0.1:{h.api.port}"
    before = path.read_text(encoding="utf-8")
    comment = "# CP210x USB-serial, ESC/POS"
    assert comment in before

    kiosk_page = await open_page(browser, f"{base}/kiosk/k1?token={tokens['kiosk']}", 1080, 1920)
    await expect(kiosk_page.locator('#cats .catbtn[data-category="D"]')).to_be_visible()
    admin = await open_page(browser, f"{base}/admin#device", 1366, 768, live=False)

    async def accept(d: Dialog) -> None:
        await d.accept()

    admin.on("dialog", accept)
    await login(admin, "boss", PASSWORD)
    row = admin.locator("tr[data-key='prn-k1']")
    await expect(row).to_contain_text("号票打印机")
    await expect(row).to_contain_text("查询状态（默认）")

    await row.locator("[data-edit]").click()
    await admin.fill("#edit-device [data-field=baudrate]", "19200")
    await admin.click("#edit-device button[type=submit]")
    await expect(admin.locator("#view .msg.ok")).to_have_text("已保存，已生效")
    await expect(admin.locator("tr[data-key='prn-k1']")).to_contain_text("19200")
    text = path.read_text(encoding="utf-8")
    assert comment in text and 'id = "prn-k1"\nkind = "printer"' in text
    assert next(d for d in config.load(path).device if d.id == "prn-k1").baudrate == 19200
    assert next(d for d in h.service.cfg.device if d.id == "prn-k1").baudrate == 19200

    await admin.locator("tr[data-key='prn-k1'] button.danger").click()
    await expect(admin.locator("#view .msg.err")).to_contain_text("仍被 自助机 k1（打印机） 使用")
    assert any(d.id == "prn-k1" for d in h.service.cfg.device)
    found = await overflow(admin, "devices zh")
    await shot(admin, "admin-devices-zh")

    await admin.click(".langbtn")
    await expect(admin.locator("#nav a[href='#device']")).to_have_text("Devices")
    await expect(admin.locator("tr[data-key='prn-k1']")).to_contain_text("Ticket printer")
    await admin.locator("tr[data-key='prn-k1'] button.danger").click()
    await expect(admin.locator("#view .msg.err")).to_contain_text("still used by kiosk k1 (printer)")
    found += await overflow(admin, "devices en")
    await shot(admin, "admin-devices-en")

    await admin.click("#nav a[href='#kiosk']")
    k1 = admin.locator("tr[data-key='k1']")
    await expect(k1).to_contain_text("prn-k1")
    await k1.locator("[data-edit]").click()
    # One printer serves one kiosk (the config model): k2's printer is refused, naming the key.
    await admin.select_option("#edit-kiosk [data-field=printer]", "prn-k2")
    await admin.click("#edit-kiosk button[type=submit]")
    await expect(admin.locator("#edit-kiosk .msg.err")).to_contain_text(
        "'prn-k2': device already used by kiosk[0].printer"
    )
    await admin.select_option("#edit-kiosk [data-field=printer]", "")
    await admin.fill("#edit-kiosk [data-field=floor]", "2")
    await admin.locator("#edit-kiosk [data-field=categories] input[value=D]").uncheck()
    await admin.click("#edit-kiosk button[type=submit]")
    await expect(admin.locator("#view .msg.ok")).to_have_text("Saved and applied")
    await expect(admin.locator("tr[data-key='k1']")).not_to_contain_text("prn-k1")
    kiosk = h.service.cfg.kiosk_by_id("k1")
    assert kiosk is not None and kiosk.printer is None and kiosk.floor == 2 and "D" not in kiosk.categories
    # The open kiosk page took it (config_changed) without a reload: no D button any more.
    await expect(kiosk_page.locator('#cats .catbtn[data-category="D"]')).to_have_count(0)
    await expect(kiosk_page.locator('#cats .catbtn[data-category="A"]')).to_be_visible()
    assert "printer" not in str(config.load(path).kiosk[0].model_dump(exclude_none=True))
    found += await overflow(admin, "kiosks en")
    await shot(admin, "admin-kiosks-en")
    await admin.click(".langbtn")
    await expect(admin.locator("#view h2")).to_have_text("自助取号机")
    found += await overflow(admin, "kiosks zh")
    await shot(admin, "admin-kiosks-zh")
    assert found == []
