"""The console's 监察 and 报表 routes over real HTTP: the session's account acts, the service's rules hold.

A real hall in this process (FakeClock, SQLite, loopback HTTP), as tests/core/test_core_admin.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hallctl import config
from hallctl import events as ev
from hallctl.daemon import Hall
from tests.core.core_helpers import FakeClock
from tests.core.test_core_admin import PASSWORD, Console, write_config


async def started(tmp_path: Path, **over: object) -> AsyncIterator[Console]:
    path = write_config(tmp_path, **over)
    clock = FakeClock()
    hall = Hall(config.load(path), clock=clock, state_dir=tmp_path / "state", config_path=path)
    await hall.start()
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{hall.api.port}", timeout=20)
    try:
        await hall.admin.add_account("li", "supervisor", PASSWORD, "test")
        await hall.admin.add_account("viewer", "readonly", PASSWORD, "test")
        yield Console(hall, client, clock, path)
    finally:
        await client.aclose()
        await hall.stop()


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Console]:
    async for c in started(tmp_path):
        yield c


@pytest.fixture
async def strict_desk(tmp_path: Path) -> AsyncIterator[Console]:
    async for c in started(tmp_path, admin={"require_totp": True}):
        yield c


async def an_alert(hall: Hall) -> int:
    hall.bus.publish(
        ev.Alert(
            at=hall.service.clock(),
            alert="device_fault",
            severity="warning",
            message="打印机k1故障",
            message_en="printer k1 fault",
            subject="printer-k1",
            data={},
        )
    )
    for _ in range(3):
        await hall.bus.drain()
    (row,) = await hall.supervision.find(kinds=("device_fault",))
    return row.id


async def a_bad_rating(hall: Hall) -> int:
    svc = hall.service
    t = (await svc.issue("A")).ticket
    await svc.call_next(1)
    await svc.finish(1)
    await svc.evaluate(1, 2, "pad")
    for _ in range(3):
        await hall.bus.drain()
    case = await hall.store.case_of_ticket(t.id)
    assert case is not None
    return case.id


async def test_alert_actions_need_csrf_take_the_session_name_and_keep_the_services_rules(desk: Console) -> None:
    c = desk
    alert_id = await an_alert(c.hall)
    assert (await c.login("li")).status_code == 200
    url = f"/api/v1/admin/alerts/{alert_id}"
    r = await c.client.post(f"{url}/ack", json={"note": "x"})
    assert (r.status_code, r.json()["code"]) == (403, "csrf")
    r = await c.client.post(f"{url}/ack", json={"note": "去看了"}, headers=c.csrf())
    assert r.status_code == 200
    assert (r.json()["alert"]["acked_by"], r.json()["alert"]["ack_note"], r.json()["alert"]["acked_token"]) == (
        "li",
        "去看了",
        None,
    )
    r = await c.client.post(f"{url}/ack", json={}, headers=c.csrf())
    assert (r.status_code, r.json()["code"]) == (409, "alert_acknowledged")
    r = await c.client.post(f"{url}/resolve", json={"note": "换纸"}, headers=c.csrf())
    assert r.status_code == 200 and r.json()["alert"]["resolved_by"] == "li"
    r = await c.client.post(f"{url}/resolve", json={}, headers=c.csrf())
    assert (r.status_code, r.json()["code"]) == (409, "alert_resolved")
    r = await c.client.post("/api/v1/admin/alerts/999/ack", json={}, headers=c.csrf())
    assert (r.status_code, r.json()["code"]) == (404, "unknown_alert")
    listed = (await c.client.get("/api/v1/admin/alerts", params={"state": "resolved"})).json()["alerts"]
    assert [a["id"] for a in listed] == [alert_id]
    assert (await c.client.get("/api/v1/admin/alerts", params={"state": "open"})).json()["alerts"] == []
    rows = [(r.actor, r.action, r.before, r.after) for r in await c.hall.store.audit_rows()]
    assert ("li", "alert.ack", {"state": "open"}, {"state": "acknowledged", "note": "去看了"}) in rows
    assert ("li", "alert.resolve", {"state": "acknowledged"}, {"state": "resolved", "note": "换纸"}) in rows
    assert not [r for r in rows if r[1].startswith("alert.") and r[0] != "li"]  # the refused ones left no row


async def test_cases_listed_overdue_by_the_hall_calendar_and_closed_once(desk: Console) -> None:
    c = desk
    case_id = await a_bad_rating(c.hall)
    assert (await c.login("li")).status_code == 200
    overdue = (await c.client.get("/api/v1/admin/cases", params={"overdue": "true"})).json()
    assert overdue["cases"] == []
    c.clock.advance(days=40)  # past 15 working days, whatever the holidays
    assert (await c.login("li")).status_code == 200  # the old session ended long ago
    overdue = (await c.client.get("/api/v1/admin/cases", params={"overdue": "true"})).json()
    assert [k["id"] for k in overdue["cases"]] == [case_id]
    assert (await c.client.get("/api/v1/admin/cases", params={"overdue": "false"})).json()["cases"] == []
    r = await c.client.post(f"/api/v1/admin/cases/{case_id}/close", json={"note": "已整改"}, headers=c.csrf())
    assert r.status_code == 200
    assert (r.json()["case"]["closed_by"], r.json()["case"]["overdue"]) == ("li", False)
    r = await c.client.post(f"/api/v1/admin/cases/{case_id}/note", json={"note": "再补"}, headers=c.csrf())
    assert (r.status_code, r.json()["code"]) == (409, "case_closed")


async def test_acting_needs_the_second_factor_when_the_hall_requires_it(strict_desk: Console) -> None:
    c = strict_desk
    alert_id = await an_alert(c.hall)
    assert (await c.login("li")).status_code == 200
    assert (await c.client.get("/api/v1/admin/alerts")).status_code == 200  # looking is not a change
    r = await c.client.post(f"/api/v1/admin/alerts/{alert_id}/ack", json={}, headers=c.csrf())
    assert (r.status_code, r.json()["code"]) == (403, "totp_required")


async def test_console_reports_are_the_token_routes_answers(desk: Console) -> None:
    c = desk
    await a_bad_rating(c.hall)
    token = await c.hall.auth.create("admin", label="test")
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await c.client.get("/api/v1/admin/reports/daily")).status_code == 401  # no session
    assert (await c.login("viewer")).status_code == 200
    for kind, params in (("daily", {"day": "2026-11-23"}), ("monthly", {"month": "2026-11"})):
        mine = (await c.client.get(f"/api/v1/admin/reports/{kind}", params=params)).json()
        theirs = (await c.client.get(f"/api/v1/reports/{kind}", params=params, headers=bearer)).json()
        assert mine.pop("hall_name_en") == "测试政务服务中心"  # the test hall has no English name
        assert mine == theirs and mine["total"]["bad_ratings"] == 1
        csv = {"format": "csv", "table": "by_staff", **params}
        mine_csv = await c.client.get(f"/api/v1/admin/reports/{kind}", params=csv)
        assert mine_csv.content == (await c.client.get(f"/api/v1/reports/{kind}", params=csv, headers=bearer)).content
    r = await c.client.get("/api/v1/admin/reports/daily", params={"day": "2026-02-30"})
    assert (r.status_code, r.json()["code"]) == (422, "bad_day")
    exports = [(r.actor, r.after) for r in await c.hall.store.audit_rows() if r.action == "report.export"]
    assert exports == [
        ("viewer", {"period": "2026-11-23", "format": "csv", "table": "by_staff"}),
        ("viewer", {"period": "2026-11", "format": "csv", "table": "by_staff"}),
    ]
