"""Supervision (电子监察): stored alerts, deduplicated, escalated, handled by a named person, kept across restarts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import httpx

from hallctl import events as ev
from hallctl.supervision.cases import add_working_days
from tests.core.core_helpers import SHANGHAI, Daemon, FakeClock, LiveHall

DaemonFactory = Callable[..., Daemon]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def settle(live: LiveHall) -> None:
    """Let a raise request reach the alert service and its stored alert reach every subscriber."""
    for _ in range(3):
        await live.hall.bus.drain()


async def query(live: LiveHall, who: str, **body: Any) -> list[dict[str, Any]]:
    resp = await live.client.post("/api/v1/alerts/query", json=body, headers=live.auth(who))
    assert resp.status_code == 200, resp.text
    alerts: list[dict[str, Any]] = resp.json()["alerts"]
    return alerts


async def test_overdue_wait_is_stored_handled_by_name_and_kept_after_restart(daemon_factory: DaemonFactory) -> None:
    """A real daemon: an overdue wait raises an alert; it is acknowledged and resolved by named people
    with notes, and after a restart the record is still there with who and what."""
    d = daemon_factory(
        calendar={"statutory": False},
        supervision={"check_interval_s": 0.2, "wait_alert_minutes": 0.01, "escalate_after_s": 3600},
    )
    tokens = await d.create_tokens({"kiosk": ("kiosk", ()), "guide": ("guide", ()), "admin": ("admin", ())})
    d.start()
    async with httpx.AsyncClient(base_url=d.url, timeout=20) as c:
        t = (await c.post("/api/v1/tickets", json={"category": "A"}, headers=bearer(tokens["kiosk"]))).json()
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + 20
        while not found and time.monotonic() < deadline:
            resp = await c.post(
                "/api/v1/alerts/query", json={"kind": ["wait_exceeded"]}, headers=bearer(tokens["guide"])
            )
            found = resp.json()["alerts"]
            if not found:
                await asyncio.sleep(0.1)  # polling the daemon process for an observable condition, bounded
        assert len(found) == 1, "no wait_exceeded alert within 20 s"
        a = found[0]
        assert a["subject"] == "A" and a["data"]["number"] == t["number"] and a["state"] == "open"
        aid = a["id"]
        ack = await c.post(
            f"/api/v1/alerts/{aid}/ack", json={"by": "张主任", "note": "已通知1号窗口"}, headers=bearer(tokens["guide"])
        )
        assert ack.status_code == 200, ack.text
        assert ack.json()["alert"]["state"] == "acknowledged"
        again = await c.post(f"/api/v1/alerts/{aid}/ack", json={"by": "张主任"}, headers=bearer(tokens["guide"]))
        assert again.status_code == 409 and again.json()["code"] == "alert_acknowledged"
        # The visitor is called, then the alert is resolved.
        assert (await c.post("/api/v1/windows/1/call-next", headers=bearer(tokens["admin"]))).status_code == 200
        res = await c.post(
            f"/api/v1/alerts/{aid}/resolve",
            json={"by": "王科长", "note": "已叫号办理"},
            headers=bearer(tokens["guide"]),
        )
        assert res.status_code == 200, res.text
    d.stop()
    d.start()
    async with httpx.AsyncClient(base_url=d.url, timeout=20) as c:
        resp = await c.post("/api/v1/alerts/query", json={"kind": ["wait_exceeded"]}, headers=bearer(tokens["admin"]))
        kept = [x for x in resp.json()["alerts"] if x["id"] == aid]
        assert len(kept) == 1, "the alert is gone after a restart"
        k = kept[0]
        assert (k["state"], k["acked_by"], k["ack_note"], k["resolved_by"], k["resolve_note"]) == (
            "resolved",
            "张主任",
            "已通知1号窗口",
            "王科长",
            "已叫号办理",
        )
        assert k["acked_at"] is not None and k["resolved_at"] is not None and k["opened_at"] is not None
        # The recent list (big screen, guide desk) reads the stored record too.
        recent = (await c.get("/api/v1/alerts", headers=bearer(tokens["admin"]))).json()
        assert [(x["id"], x["state"]) for x in recent if x["id"] == aid] == [(aid, "resolved")]


async def test_one_unresolved_alert_per_kind_and_subject(hall_factory: Any, clock: FakeClock) -> None:
    """Two overdue tickets of one category are one alert; once it is resolved the next overdue ticket opens another."""
    live: LiveHall = await hall_factory(clock=clock, supervision={"wait_alert_minutes": 20})
    kiosk = live.auth("kiosk")
    for _ in range(2):
        assert (await live.client.post("/api/v1/tickets", json={"category": "A"}, headers=kiosk)).status_code == 201
    clock.advance(minutes=21)
    live.hall.supervision.check()
    await settle(live)
    alerts = await query(live, "guide", kind=["wait_exceeded"])
    assert [(a["subject"], a["state"]) for a in alerts] == [("A", "open")]
    # The same problem raised again while it is open changes nothing.
    clock.advance(minutes=1)
    live.hall.bus.publish(
        ev.Alert(at=clock(), alert="wait_exceeded", severity="warning", message="x", subject="A", data={})
    )
    await settle(live)
    assert len(await query(live, "guide", kind=["wait_exceeded"])) == 1
    aid = alerts[0]["id"]
    resp = await live.client.post(f"/api/v1/alerts/{aid}/resolve", json={"by": "张主任"}, headers=live.auth("guide"))
    assert resp.status_code == 200
    assert (await live.client.post("/api/v1/tickets", json={"category": "A"}, headers=kiosk)).status_code == 201
    clock.advance(minutes=21)
    live.hall.supervision.check()
    await settle(live)
    alerts = await query(live, "guide", kind=["wait_exceeded"])
    assert [a["state"] for a in alerts] == ["open", "resolved"]


async def test_an_unacknowledged_alert_escalates_up_to_the_limit(hall_factory: Any, clock: FakeClock) -> None:
    """Open past escalate_after_s: one level up each period (a typed event), never past the limit;
    an acknowledged alert does not escalate."""
    live: LiveHall = await hall_factory(clock=clock, supervision={"escalate_after_s": 600, "escalate_max_level": 2})
    seen: list[ev.AlertEscalated] = []

    def keep(e: ev.Event) -> None:
        if isinstance(e, ev.AlertEscalated):
            seen.append(e)

    live.hall.bus.subscribe("test-escalations", keep, (ev.AlertEscalated,))
    sup = live.hall.supervision
    for device in ("printer1", "printer2"):
        live.svc.device_health(device, "printer", "error", "paper_out")
    await settle(live)
    first, second = sorted((await query(live, "guide", kind=["device_fault"])), key=lambda a: a["subject"])
    assert (
        first["message"] == "打印机printer1故障：缺纸" and first["message_en"] == "printer printer1 fault: out of paper"
    )
    ack = await live.client.post(f"/api/v1/alerts/{second['id']}/ack", json={"by": "李明"}, headers=live.auth("guide"))
    assert ack.status_code == 200
    clock.advance(seconds=599)
    assert await sup.escalate() == []
    clock.advance(seconds=2)
    assert [(a.id, a.level) for a in await sup.escalate()] == [(first["id"], 1)]
    clock.advance(seconds=601)
    assert [(a.id, a.level) for a in await sup.escalate()] == [(first["id"], 2)]
    clock.advance(seconds=3600)
    assert await sup.escalate() == []  # the limit
    await settle(live)
    assert [(e.id, e.level) for e in seen] == [(first["id"], 1), (first["id"], 2)]
    stored = {a["id"]: a for a in await query(live, "admin")}
    assert stored[first["id"]]["level"] == 2 and stored[second["id"]]["level"] == 0


async def test_a_window_token_sees_and_handles_only_its_own_alerts(hall_factory: Any, clock: FakeClock) -> None:
    """A clerk's token lists its own window's alerts and may not acknowledge another window's."""
    live: LiveHall = await hall_factory(clock=clock, supervision={"window_paused_alert_minutes": 5})
    for w in (1, 2):
        resp = await live.client.post(f"/api/v1/windows/{w}/pause", headers=live.auth(f"w{w}"))
        assert resp.status_code == 200, resp.text
    live.hall.supervision.check()  # the pause is seen ...
    clock.advance(minutes=6)
    live.hall.supervision.check()  # ... and is still there past the limit
    await settle(live)
    mine = await query(live, "w1")
    assert [(a["alert"], a["window"]) for a in mine if a["alert"] == "window_paused"] == [("window_paused", 1)]
    other = next(a for a in await query(live, "guide", kind=["window_paused"]) if a["window"] == 2)
    resp = await live.client.post(f"/api/v1/alerts/{other['id']}/ack", json={"by": "李明"}, headers=live.auth("w1"))
    assert resp.status_code == 403 and resp.json()["code"] == "wrong_window"


# ---- 好差评 follow-up cases ------------------------------------------------------------------------


async def serve_and_rate(live: LiveHall, level: int) -> str:
    """Issue, call and finish one ticket at window 1; the visitor rates it on window 1's pad."""
    t = (await live.client.post("/api/v1/tickets", json={"category": "A"}, headers=live.auth("kiosk"))).json()
    w1 = live.auth("w1")
    assert (await live.client.post("/api/v1/windows/1/call-next", headers=w1)).status_code == 200
    assert (await live.client.post("/api/v1/windows/1/finish", headers=w1)).status_code == 200
    resp = await live.client.post("/api/v1/windows/1/evaluation", json={"level": level}, headers=live.auth("p1"))
    assert resp.status_code == 201, resp.text
    return str(t["id"])


async def cases(live: LiveHall, **body: Any) -> list[dict[str, Any]]:
    resp = await live.client.post("/api/v1/cases/query", json=body, headers=live.auth("guide"))
    assert resp.status_code == 200, resp.text
    found: list[dict[str, Any]] = resp.json()["cases"]
    return found


async def test_a_bad_rating_opens_a_case_due_in_working_days_skipping_a_holiday(
    hall_factory: Any, clock: FakeClock
) -> None:
    """差评 on Monday 2026-11-23: 15 working days later skips the weekends and the hall's two closed days
    (calendar overrides, so the test does not depend on the statutory data): due 2026-12-16, not 12-14.
    The visitor's reason comes from the pad, once, from the configured list; a good rating opens nothing."""
    closed = {"statutory": False, "closed_days": ["2026-12-01", "2026-12-02"]}
    live: LiveHall = await hall_factory(clock=clock, calendar=closed)
    assert add_working_days(live.hall.cfg, date(2026, 11, 23), 15) == date(2026, 12, 16)
    plain = live.hall.cfg.model_copy(update={"calendar": live.hall.cfg.calendar.model_copy(update={"closed_days": ()})})
    assert add_working_days(plain, date(2026, 11, 23), 15) == date(2026, 12, 14)

    await serve_and_rate(live, 4)
    bad = await serve_and_rate(live, 2)
    await settle(live)
    (case,) = await cases(live)
    assert (case["ticket_id"], case["level"], case["window"], case["state"]) == (bad, 2, 1, "open")
    assert (case["due_day"], case["overdue"], case["reasons"]) == ("2026-12-16", False, [])

    reason = f"/api/v1/tickets/{bad}/evaluation/reason"
    refused = await live.client.post(reason, json={"reasons": ["办事效率低"]}, headers=live.auth("guide"))
    assert refused.status_code == 403 and refused.json()["code"] == "rating_from_visitor_only"
    odd = await live.client.post(reason, json={"reasons": ["太慢"]}, headers=live.auth("p1"))
    assert odd.status_code == 422 and odd.json()["code"] == "bad_reason"
    ok = await live.client.post(reason, json={"reasons": ["办事效率低"]}, headers=live.auth("p1"))
    assert ok.status_code == 200, ok.text
    again = await live.client.post(reason, json={"reasons": ["其他"]}, headers=live.auth("p1"))
    assert again.status_code == 409 and again.json()["code"] == "reason_given"
    assert (await cases(live))[0]["reasons"] == ["办事效率低"]


async def test_an_unclosed_case_is_flagged_overdue_once_and_closed_by_a_named_person(
    hall_factory: Any, clock: FakeClock
) -> None:
    live: LiveHall = await hall_factory(clock=clock, calendar={"statutory": False})
    bad = await serve_and_rate(live, 1)
    await settle(live)
    (case,) = await cases(live)
    assert case["due_day"] == "2026-12-14"
    sup = live.hall.supervision
    clock.set(datetime(2026, 12, 14, 17, 0, tzinfo=SHANGHAI))
    assert await sup.cases.check_overdue() == []  # the due day itself is still in time
    clock.set(datetime(2026, 12, 15, 9, 0, tzinfo=SHANGHAI))
    assert [k.id for k in await sup.cases.check_overdue()] == [case["id"]]
    assert await sup.cases.check_overdue() == []  # flagged once
    await settle(live)
    (case,) = await cases(live, overdue=True)
    assert case["ticket_id"] == bad and case["overdue_alerted"] is True
    overdue_alerts = await query(live, "w1", kind=["case_overdue"])
    assert [(a["subject"], a["window"]) for a in overdue_alerts] == [(f"case {case['id']}", 1)]

    act = f"/api/v1/cases/{case['id']}"
    admin = live.auth("admin")
    denied = await live.client.post(f"{act}/close", json={"by": "李明"}, headers=live.auth("guide"))
    assert denied.status_code == 403
    r = await live.client.post(f"{act}/note", json={"by": "张主任", "note": "已电话回访"}, headers=admin)
    assert r.status_code == 200, r.text
    r = await live.client.post(f"{act}/verify", json={"by": "张主任", "note": "情况属实"}, headers=admin)
    assert r.json()["case"]["state"] == "verified" and r.json()["case"]["verified_by"] == "张主任"
    r = await live.client.post(f"{act}/close", json={"by": "王科长", "note": "已整改并反馈"}, headers=admin)
    closed = r.json()["case"]
    assert (closed["state"], closed["closed_by"], closed["overdue"]) == ("closed", "王科长", False)
    assert [(n["by"], n["note"]) for n in closed["notes"]] == [
        ("张主任", "已电话回访"),
        ("张主任", "情况属实"),
        ("王科长", "已整改并反馈"),
    ]
    r = await live.client.post(f"{act}/close", json={"by": "王科长"}, headers=admin)
    assert r.status_code == 409 and r.json()["code"] == "case_closed"
    assert await cases(live, overdue=True) == []


async def test_a_bad_rating_whose_case_was_lost_gets_one_at_start(hall_factory: Any, clock: FakeClock) -> None:
    """A crash between the rating's commit and its case: the next start opens the case."""
    live: LiveHall = await hall_factory(clock=clock, calendar={"statutory": False})
    bad = await serve_and_rate(live, 2)
    await settle(live)
    await live.hall.store.write(lambda c: c.execute("DELETE FROM evaluation_cases"))
    assert await cases(live) == []
    await live.hall.supervision.cases.start()
    assert [k["ticket_id"] for k in await cases(live)] == [bad]


async def test_unstaffed_windows_during_hours_and_stale_sensors_raise_once(hall_factory: Any, clock: FakeClock) -> None:
    """A window nobody signed in to for 10 minutes while open, and a sensor gone quiet, each raise one alert;
    a window whose categories are closed does not."""
    live: LiveHall = await hall_factory(
        clock=clock,
        category=[
            {"prefix": "A", "name": "便民服务", "target_wait_minutes": 10},
            {"prefix": "B", "name": "法人服务", "target_wait_minutes": 15, "hours": ["mon-fri 14:00-17:00"]},
        ],
        window=[
            {"number": 1, "categories": ["A"]},
            {"number": 2, "categories": ["A"]},
            {"number": 3, "categories": ["B"]},
        ],
        sensor=[{"id": "floor1", "source": "zigbee", "friendly_name": "th1", "stale_after_s": 60}],
    )
    svc, sup = live.svc, live.hall.supervision
    await svc.sign_in(1, "0231")
    svc.sensor_reading("floor1", 24.0, 50.0)
    sup.check()
    clock.advance(minutes=9)
    sup.check()
    await settle(live)
    assert await query(live, "guide", kind=["window_unstaffed", "sensor_stale"]) == []
    clock.advance(minutes=2)
    svc.expire_stale_sensors()
    for _ in range(2):
        sup.check()
    await settle(live)
    found = await query(live, "guide", kind=["window_unstaffed", "sensor_stale"])
    assert sorted((a["alert"], a["subject"], a["window"]) for a in found) == [
        ("sensor_stale", "floor1", None),
        ("window_unstaffed", "2", 2),
    ]


async def test_handled_alerts_and_closed_cases_are_deleted_after_keep_days_open_ones_stay(
    hall_factory: Any, clock: FakeClock
) -> None:
    """[supervision] keep_days: the hourly retention pass deletes what was resolved or closed that long
    ago; an alert still open and a case still open are kept, however old."""
    live: LiveHall = await hall_factory(clock=clock, supervision={"wait_alert_minutes": 20, "keep_days": 365})
    kiosk = live.auth("kiosk")
    for cat in ("A", "B"):
        assert (await live.client.post("/api/v1/tickets", json={"category": cat}, headers=kiosk)).status_code == 201
    clock.advance(minutes=21)
    live.hall.supervision.check()
    await settle(live)
    alerts = {a["subject"]: a for a in await query(live, "guide", kind=["wait_exceeded"])}
    assert set(alerts) == {"A", "B"}
    by = {"by": "张主任"}
    guide = live.auth("guide")
    assert (await live.client.post(f"/api/v1/alerts/{alerts['A']['id']}/resolve", json=by, headers=guide)).is_success
    # Two visits rated 差评: two cases, the first one closed.
    await serve_and_rate(live, 1)
    await serve_and_rate(live, 2)
    await settle(live)
    first, second = sorted(await cases(live), key=lambda k: k["id"])
    r = await live.client.post(f"/api/v1/cases/{first['id']}/close", json=by, headers=live.auth("admin"))
    assert r.status_code == 200, r.text

    clock.advance(days=364)
    await live.hall.service.purge()
    assert len(await query(live, "guide", kind=["wait_exceeded"])) == 2  # not yet a year
    clock.advance(days=2)
    await live.hall.service.purge()
    left = await query(live, "guide", kind=["wait_exceeded"], state=["open", "acknowledged", "resolved"])
    assert [(a["subject"], a["state"]) for a in left] == [("B", "open")]
    assert [k["id"] for k in await cases(live)] == [second["id"]]
