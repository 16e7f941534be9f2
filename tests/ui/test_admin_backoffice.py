"""The admin console's 监察 and 报表 views in Chromium (issue 15): people act as themselves.

A supervisor acknowledges and resolves an alert and closes a 差评 case; the stored records
carry the account's name (the page sends no name) and the audit log has a row for each. A
read-only account sees both lists without a button, and the daemon refuses it (403) when
asked directly. A hall admin gives a category its 进驻部门 and 办事指南 lines, a window its
English name and a clerk a department (written back to the TOML), and the report view shows
the same figures as the hall's own ``/api/v1/reports/daily``; its XLSX opens with openpyxl.
"""

from __future__ import annotations

import asyncio
import io
import json
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import tomlkit
from playwright.async_api import Browser, Page, expect

import hallctl.daemon
from hallctl import config
from hallctl import events as ev
from hallctl.daemon import Hall
from hallctl.demo import DEMO_TOML, demo_tokens
from tests.ui.uihelpers import open_page, overflow, shot

PASSWORD = "correct horse battery"

Setup = tuple[Hall, Path, dict[str, str]]


@pytest.fixture
async def hall(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Setup]:
    # Core and HTTP only, as the other page tests; a real TOML file so that edits are written back.
    monkeypatch.setattr(hallctl.daemon, "component_factories", list)
    doc = tomlkit.parse(DEMO_TOML)
    doc["store"]["path"] = str(tmp_path / "hallctl.db")
    doc["api"] = {"host": "127.0.0.1", "port": 0}
    doc["calendar"] = {"statutory": False}  # the real clock, any day
    path = tmp_path / "hallctl.toml"
    path.write_text(doc.as_string(), encoding="utf-8")
    h = Hall(config.load(path), demo=True, state_dir=tmp_path, config_path=path)
    await h.start()
    try:
        tokens = await demo_tokens(h, tmp_path)
        await h.admin.add_account("boss", "hall_admin", PASSWORD, "test")
        await h.admin.add_account("li", "supervisor", PASSWORD, "test")
        await h.admin.add_account("clerk", "readonly", PASSWORD, "test")
        yield h, path, tokens
    finally:
        await h.stop()


async def served_with_a_bad_rating(h: Hall) -> str:
    """One visitor served at window 1 by 0231 and rated 1/5 on the pad: a 差评 that opens a case."""
    svc = h.service
    await svc.sign_in(1, "0231")
    t = (await svc.issue("A")).ticket
    await svc.call_next(1)
    await svc.finish(1)
    await svc.evaluate(1, 1, "pad")
    for _ in range(3):
        await h.bus.drain()
    return t.id


def raise_alert(h: Hall) -> None:
    h.bus.publish(
        ev.Alert(
            at=h.service.clock(),
            alert="device_fault",
            severity="warning",
            message="打印机printer-k1故障：缺纸",
            message_en="printer printer-k1: out of paper",
            subject="printer-k1",
            data={},
        )
    )


async def stored_alert_id(h: Hall) -> int:
    for _ in range(3):
        await h.bus.drain()
    found = await h.supervision.find(kinds=("device_fault",))
    assert len(found) == 1
    return found[0].id


async def login(page: Page, name: str) -> None:
    await page.fill("#name", name)
    await page.fill("#password", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#console")).to_be_visible()


async def fits(page: Page, what: str) -> None:
    assert await overflow(page, what) == []


async def test_supervisor_handles_an_alert_and_a_case_under_their_own_name(hall: Setup, browser: Browser) -> None:
    h, _, _ = hall
    base = f"http://127.0.0.1:{h.api.port}"
    ticket_id = await served_with_a_bad_rating(h)
    case = await h.store.case_of_ticket(ticket_id)
    assert case is not None and case.state == "open"
    raise_alert(h)
    alert_id = await stored_alert_id(h)

    page = await open_page(browser, f"{base}/admin", 1366, 768, live=False)
    await login(page, "li")
    await expect(page.locator("#who")).to_have_text("li · 监察员")
    await page.goto(f"{base}/admin#alerts")
    row = page.locator(f"tr[data-alert='{alert_id}']")
    await expect(row).to_contain_text("打印机printer-k1故障：缺纸")
    await expect(row).to_contain_text("待确认")
    await fits(page, "alerts zh")
    await shot(page, "admin-alerts-zh")
    # The page sends no name, and a name slipped into the body is refused rather than believed.
    post = """async ([path, body]) => {
      const csrf = decodeURIComponent(document.cookie.match(/hallctl_csrf=([^;]*)/)[1]);
      const headers = { "X-CSRF-Token": csrf, "Content-Type": "application/json" };
      const r = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
      return r.status;
    }"""
    assert await page.evaluate(post, [f"/api/v1/admin/alerts/{alert_id}/ack", {"by": "张三", "note": "x"}]) == 422
    await page.fill("#alert-note", "已通知设备科补纸")
    await row.locator("button[data-act=ack]").click()
    await expect(row).to_contain_text("已确认")
    await expect(row).to_contain_text("li · 已通知设备科补纸")
    await row.locator("button[data-act=resolve]").click()
    await expect(row).to_have_count(0)  # the default list is what is not resolved yet
    await page.select_option("#alert-state", "resolved")
    await expect(row).to_contain_text("已处理")

    stored = await h.store.alert(alert_id)
    assert stored is not None
    assert (stored.state, stored.acked_by, stored.ack_note, stored.resolved_by) == (
        "resolved",
        "li",
        "已通知设备科补纸",
        "li",
    )

    await page.goto(f"{base}/admin#cases")
    crow = page.locator(f"tr[data-case='{case.id}']")
    await expect(crow).to_contain_text("1/5")
    await expect(crow).to_contain_text("李明")  # 0231 by name
    await expect(crow).to_contain_text(case.due_day.isoformat())
    await fits(page, "cases zh")
    await shot(page, "admin-cases-zh")
    await page.fill("#case-note", "已回访群众，窗口加强引导")
    await crow.locator("button[data-act=verify]").click()
    await expect(crow).to_contain_text("已核实")
    await crow.locator("button[data-act=close]").click()
    await expect(crow).to_have_count(0)
    closed = await h.store.case(case.id)
    assert closed is not None
    assert (closed.state, closed.verified_by, closed.closed_by) == ("closed", "li", "li")
    assert [(n.by, n.note) for n in closed.notes] == [("li", "已回访群众，窗口加强引导")]

    audit = [(r.actor, r.action, r.target) for r in await h.store.audit_rows()]
    assert ("li", "alert.ack", f"alert:{alert_id}") in audit
    assert ("li", "alert.resolve", f"alert:{alert_id}") in audit
    assert ("li", "case.verify", f"case:{case.id}") in audit
    assert ("li", "case.close", f"case:{case.id}") in audit

    await page.select_option("#case-state", "closed")
    await expect(crow).to_contain_text("已办结")
    await page.click(".langbtn")
    await expect(crow).to_contain_text("Closed")
    await expect(crow).to_contain_text("closed: li")
    await fits(page, "cases en")
    await shot(page, "admin-cases-en")
    await page.goto(f"{base}/admin#alerts")
    await page.select_option("#alert-state", "all")
    await expect(page.locator(f"tr[data-alert='{alert_id}']")).to_contain_text("printer printer-k1: out of paper")
    await expect(page.locator("nav a[href='#cases']")).to_have_text("Bad-rating cases")
    await fits(page, "alerts en")
    await shot(page, "admin-alerts-en")
    await page.goto(f"{base}/admin#audit")
    await expect(page.locator("tbody tr", has_text="Case closed").first).to_contain_text("li")


async def test_readonly_account_sees_but_cannot_act(hall: Setup, browser: Browser) -> None:
    h, _, _ = hall
    base = f"http://127.0.0.1:{h.api.port}"
    ticket_id = await served_with_a_bad_rating(h)
    case = await h.store.case_of_ticket(ticket_id)
    assert case is not None
    raise_alert(h)
    alert_id = await stored_alert_id(h)

    page = await open_page(browser, f"{base}/admin", 1366, 768, live=False)
    await login(page, "clerk")
    await page.goto(f"{base}/admin#alerts")
    await expect(page.locator(f"tr[data-alert='{alert_id}']")).to_contain_text("打印机printer-k1故障")
    await expect(page.locator("#view button[data-act]")).to_have_count(0)
    await expect(page.locator("#alert-note")).to_have_count(0)
    await page.goto(f"{base}/admin#cases")
    await expect(page.locator(f"tr[data-case='{case.id}']")).to_contain_text("1/5")
    await expect(page.locator("#view button[data-act]")).to_have_count(0)

    # Asked directly, with the session's own CSRF token, the daemon refuses too.
    post = """async (path) => {
      const csrf = decodeURIComponent(document.cookie.match(/hallctl_csrf=([^;]*)/)[1]);
      const headers = { "X-CSRF-Token": csrf, "Content-Type": "application/json" };
      const r = await fetch(path, { method: "POST", headers, body: JSON.stringify({ note: "x" }) });
      return [r.status, (await r.json()).code];
    }"""
    for path in (f"/api/v1/admin/alerts/{alert_id}/ack", f"/api/v1/admin/cases/{case.id}/close"):
        assert await page.evaluate(post, path) == [403, "forbidden"]
    stored = await h.store.alert(alert_id)
    kept = await h.store.case(case.id)
    assert stored is not None and stored.state == "open" and stored.acked_by is None
    assert kept is not None and kept.state == "open"
    assert not [r for r in await h.store.audit_rows() if r.action.startswith(("alert.", "case."))]


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as r:
        data: dict[str, Any] = json.loads(r.read())
    return data


async def test_new_fields_and_the_report_view_match_the_report_api_and_the_xlsx_opens(
    hall: Setup, browser: Browser
) -> None:
    h, path, tokens = hall
    base = f"http://127.0.0.1:{h.api.port}"
    page = await open_page(browser, f"{base}/admin", 1366, 768, live=False)
    await login(page, "boss")

    # The fields the kiosk and the reports added: edited in the console, checked by the config model, written back.
    await page.goto(f"{base}/admin#category")
    await page.click("button[data-edit='A']")
    form = page.locator("#edit-category")
    await form.locator("[data-field=department]").fill("公安局")
    await form.locator("[data-field=guide]").fill("本人身份证原件\n户口簿")
    await form.locator("[data-field=guide_en]").fill("Your ID card (original)")  # one line short: refused
    await form.locator("button[type=submit]").click()
    await expect(form.locator(".msg.err")).to_contain_text("guide_en")
    await form.locator("[data-field=guide_en]").fill("Your ID card (original)\nHousehold register")
    await form.locator("button[type=submit]").click()
    await expect(page.locator("tr[data-key='A']")).to_contain_text("公安局")
    await page.goto(f"{base}/admin#window")
    await page.click("button[data-edit='1']")
    await page.locator("#edit-window [data-field=name_en]").fill("Window 1 · Public security")
    await page.locator("#edit-window button[type=submit]").click()
    await expect(page.locator("tr[data-key='1']")).to_contain_text("Window 1 · Public security")
    await page.goto(f"{base}/admin#staff")
    await page.click("button[data-edit='0231']")
    await page.locator("#edit-staff [data-field=department]").fill("公安局")
    await page.locator("#edit-staff button[type=submit]").click()
    await expect(page.locator("tr[data-key='0231']")).to_contain_text("公安局")
    written = config.load(path)
    cat_a = next(c for c in written.category if c.prefix == "A")
    assert (cat_a.department, cat_a.guide, cat_a.guide_en) == (
        "公安局",
        ("本人身份证原件", "户口簿"),
        ("Your ID card (original)", "Household register"),
    )
    assert next(w for w in written.window if w.number == 1).name_en == "Window 1 · Public security"
    assert next(s for s in written.staff if s.id == "0231").department == "公安局"
    assert written == h.service.cfg

    # A day of work: two served at window 1 (one rated 5, one 1), one no-show (C) at window 2.
    await served_with_a_bad_rating(h)
    svc = h.service
    await svc.issue("A")
    await svc.call_next(1)
    await svc.finish(1)
    await svc.evaluate(1, 5, "pad")
    await svc.sign_in(2, "0232")
    await svc.issue("C")
    await svc.call_next(2)
    await svc.no_show(2)
    for _ in range(3):
        await h.bus.drain()

    await page.goto(f"{base}/admin#reports")
    figures = page.locator("#report-figures")
    await expect(figures.locator("[data-fig=issued] .v")).not_to_have_text("—")
    day = await page.locator("#report-day").input_value()
    # In a thread: the daemon serving it runs on this test's event loop.
    api = await asyncio.to_thread(get_json, f"{base}/api/v1/reports/daily?day={day}&token={tokens['admin']}")
    total = api["total"]
    assert total["issued"] == 3 and total["served"] == 2 and total["bad_ratings"] == 1
    expected = {
        "issued": str(total["issued"]),
        "served": str(total["served"]),
        "no_show": str(total["no_show"]),
        "avg_wait_s": f"{total['avg_wait_s'] / 60:.1f}",
        "satisfaction": f"{total['satisfaction'] * 100:.1f}%",
        "bad_ratings": str(total["bad_ratings"]),
        "bad_cases": str(total["bad_cases"]),
    }
    for key, text in expected.items():
        await expect(figures.locator(f"[data-fig={key}] .v")).to_have_text(text)
    # The charts (vendored ECharts as SVG): one bar per window in calls per window, one per rating level.
    calls = page.locator("#chart-calls svg")
    await expect(calls).to_have_count(1)
    await expect(page.locator("#chart-ratings svg")).to_have_count(1)
    await expect(page.locator("#chart-hour svg")).to_have_count(1)
    assert await calls.locator("text", has_text="1号").count() == 1
    await page.click("button[data-tab=by_department]")
    dept = page.locator("#report-table tbody tr", has_text="公安局")
    api_dept = next(r for r in api["by_department"] if r["department"] == "公安局")
    await expect(dept.locator("td[data-col=issued]")).to_have_text(str(api_dept["issued"]))
    await page.click("button[data-tab=by_staff]")
    await expect(page.locator("#report-table tbody tr", has_text="李明").locator("td[data-col=served]")).to_have_text(
        "2"
    )
    await fits(page, "reports zh")
    await shot(page, "admin-reports-zh")

    async with page.expect_download() as dl:
        await page.click("#report-xlsx")
    saved = await (await dl.value).path()
    book = openpyxl.load_workbook(io.BytesIO(await asyncio.to_thread(saved.read_bytes)))
    assert book.sheetnames[:3] == ["汇总", "部门", "业务类别"]
    summary = list(book["汇总"].iter_rows(values_only=True))
    assert summary[0][:3] == ("统计期", "取号量", "叫号量") and summary[1][:2] == (day, 3)
    async with page.expect_download() as dl:
        await page.click("#report-csv")
    csv_file = await (await dl.value).path()
    csv_text = (await asyncio.to_thread(csv_file.read_bytes)).decode("utf-8-sig")
    assert csv_text.splitlines()[0].startswith("姓名,工号,进驻部门")  # the table on screen: staff
    exports = [r for r in await h.store.audit_rows() if r.action == "report.export"]
    assert [(r.actor, (r.after or {}).get("format")) for r in exports] == [("boss", "xlsx"), ("boss", "csv")]

    await page.click(".langbtn")
    await expect(figures.locator("[data-fig=satisfaction] .k")).to_have_text("Satisfaction")
    await page.click("button[data-tab=by_category]")
    await expect(page.locator("#report-table tbody tr").first).to_contain_text("Citizen services")
    await fits(page, "reports en")
    await shot(page, "admin-reports-en")
    await page.select_option("#report-kind", "monthly")
    await expect(page.locator("button[data-tab=by_day]")).to_be_visible()
    await expect(figures.locator("[data-fig=issued] .v")).to_have_text("3")
    await fits(page, "monthly report en")
    await page.goto(f"{base}/admin#category")
    await page.click("button[data-edit='A']")
    await expect(page.locator("#edit-category [data-field=guide_en]")).to_have_value(
        "Your ID card (original)\nHousehold register"
    )
    await fits(page, "category form en")
    await shot(page, "admin-category-form-en")
