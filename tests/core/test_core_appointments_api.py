"""Appointments and the green channel over the command table (HTTP, as a mini-program or the guide desk uses them)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import date, datetime
from typing import Any

from hallctl import events as ev
from hallctl.engine import Holder
from tests.core.conftest import HallFactory
from tests.core.core_helpers import SHANGHAI, FakeClock, LiveHall

HOURS = ["mon-fri 09:00-12:00", "mon-fri 13:30-17:00"]
MONDAY = datetime(2026, 11, 23, 8, 50, tzinfo=SHANGHAI)
CARD = "11010519491231002X"


async def office_hall(hall_factory: HallFactory, clock: FakeClock) -> LiveHall:
    live: LiveHall = await hall_factory(
        clock=clock,
        category=[
            {"prefix": "A", "name": "便民服务", "name_en": "Citizen", "hours": HOURS},
            {"prefix": "B", "name": "法人服务", "name_en": "Company", "hours": HOURS},
            {"prefix": "C", "name": "公安户政", "name_en": "Police", "hours": HOURS},
        ],
        appointments={"slot_minutes": 30, "capacity": 1},
    )
    return live


def slot(day: date, hh: int, mm: int = 0) -> str:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=SHANGHAI).isoformat()


async def problem(live: LiveHall, path: str, body: dict[str, Any], status: int, code: str) -> dict[str, Any]:
    resp = await live.client.post(path, json=body, headers=live.auth("guide"))
    assert resp.status_code == status, resp.text
    out: dict[str, Any] = resp.json()
    assert out["code"] == code, out
    return out


async def test_book_list_reschedule_cancel_and_refusals(hall_factory: HallFactory) -> None:
    """A booking gets a digits-only code; 03:00 and 1 January are refused in zh and en; a full slot is 409."""
    clock = FakeClock(datetime(2025, 12, 29, 8, 50, tzinfo=SHANGHAI))  # the Monday before New Year
    live = await office_hall(hall_factory, clock)
    guide = live.auth("guide")
    day = date(2025, 12, 30)
    resp = await live.client.post(
        "/api/v1/appointments", json={"category": "A", "slot_start": slot(day, 9)}, headers=guide
    )
    assert resp.status_code == 201, resp.text
    booked = resp.json()
    assert booked["code"].isdigit() and len(booked["code"]) == 8 and booked["qr"].startswith("T1.")
    assert booked["slot_end"] == slot(day, 9, 30)

    night = await problem(
        live, "/api/v1/appointments", {"category": "A", "slot_start": slot(day, 3)}, 422, "outside_hours"
    )
    assert "办公时间" in night["detail"] and "opening hours" in night["detail_en"]
    jan1 = await problem(
        live, "/api/v1/appointments", {"category": "A", "slot_start": slot(date(2026, 1, 1), 9)}, 422, "closed_day"
    )
    assert "元旦" in jan1["detail"] and "public holiday" in jan1["detail_en"]
    # 4 Jan 2026 is a Sunday worked in lieu of the holiday (调休): it has Monday's slots.
    sunday = {"category": "A", "slot_start": slot(date(2026, 1, 4), 9)}
    assert (await live.client.post("/api/v1/appointments", json=sunday, headers=guide)).status_code == 201
    await problem(live, "/api/v1/appointments", {"category": "A", "slot_start": slot(day, 9)}, 409, "slot_full")
    await problem(
        live,
        "/api/v1/appointments",
        {"category": "A", "slot_start": slot(day, 9), "code": "AP1234"},
        422,
        "invalid_arguments",
    )

    slots = (await live.client.get(f"/api/v1/appointments/slots/A/{day.isoformat()}", headers=guide)).json()
    assert slots["day_kind"] == "workday" and slots["slots"][0] == {
        "start": slot(day, 9),
        "end": slot(day, 9, 30),
        "capacity": 1,
        "booked": 1,
        "free": 0,
    }
    code = booked["code"]
    moved = await live.client.post(
        f"/api/v1/appointments/{code}/reschedule", json={"slot_start": slot(day, 14)}, headers=guide
    )
    assert moved.status_code == 200 and moved.json()["slot_start"] == slot(day, 14)
    slots = (await live.client.get(f"/api/v1/appointments/slots/A/{day.isoformat()}", headers=guide)).json()
    assert slots["slots"][0]["free"] == 1  # the old slot is free again
    listed = (await live.client.get("/api/v1/appointments", headers=guide)).json()["appointments"]
    assert (listed[0]["code"], listed[0]["slot_start"]) == (code, slot(day, 14))
    assert (await live.client.post(f"/api/v1/appointments/{code}/cancel", headers=guide)).json()["state"] == "cancelled"

    def log(c: sqlite3.Connection) -> list[str]:
        return [r[0] for r in c.execute("SELECT kind FROM event_log WHERE kind LIKE 'appointment_%' ORDER BY seq")]

    assert await live.svc._store.read(log) == [
        "appointment_booked",
        "appointment_booked",
        "appointment_rescheduled",
        "appointment_cancelled",
    ]


async def test_booking_is_idempotent_with_a_key(hall_factory: HallFactory) -> None:
    """A mini-program that retries with the same Idempotency-Key gets the same booking, not a second place."""
    live = await office_hall(hall_factory, FakeClock(MONDAY))
    headers = {**live.auth("guide"), "Idempotency-Key": "wx-order-42"}
    body = {"category": "A", "slot_start": slot(date(2026, 11, 24), 10)}
    first = await live.client.post("/api/v1/appointments", json=body, headers=headers)
    again = await live.client.post("/api/v1/appointments", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true" and "Idempotent-Replayed" not in first.headers
    assert again.json()["code"] == first.json()["code"]
    assert len(live.svc.appointments()) == 1


async def test_simultaneous_bookings_with_one_key_make_one_booking(hall_factory: HallFactory) -> None:
    """Two requests with the same key in flight at once (a retry before the first answer): one place, one code."""
    live = await office_hall(hall_factory, FakeClock(MONDAY))
    headers = {**live.auth("guide"), "Idempotency-Key": "wx-order-43"}
    body = {"category": "A", "slot_start": slot(date(2026, 11, 24), 10)}
    answers = await asyncio.gather(
        *(live.client.post("/api/v1/appointments", json=body, headers=headers) for _ in range(4))
    )
    assert [a.status_code for a in answers] == [201] * 4
    assert len({a.json()["code"] for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 3
    assert len(live.svc.appointments()) == 1


async def test_check_in_by_code_card_and_qr(hall_factory: HallFactory) -> None:
    """On the day: the keypad's digits, the ID card that booked, or the booking's QR each give a ticket."""
    clock = FakeClock(MONDAY)
    live = await office_hall(hall_factory, clock)
    guide, kiosk = live.auth("guide"), live.auth("kiosk")
    today = MONDAY.date()

    async def book(category: str, **extra: Any) -> dict[str, Any]:
        body = {"category": category, "slot_start": slot(today, 9), **extra}
        resp = await live.client.post("/api/v1/appointments", json=body, headers=guide)
        assert resp.status_code == 201, resp.text
        out: dict[str, Any] = resp.json()
        return out

    by_code, by_card, by_qr = await book("A"), await book("B", name="张三", id_number=CARD), await book("C")
    assert by_card["holder"] == "张*" and CARD not in json.dumps(by_card)

    t1 = await live.client.post(f"/api/v1/appointments/{by_code['code']}/check-in", headers=kiosk)
    assert t1.status_code == 201 and t1.json()["priority"] == "appointment"
    t2 = await live.client.post("/api/v1/appointments/check-in", json={"id_number": CARD}, headers=kiosk)
    assert t2.status_code == 201 and t2.json()["appointment_code"] == by_card["code"] and t2.json()["category"] == "B"
    t3 = await live.client.post("/api/v1/appointments/check-in", json={"qr": by_qr["qr"]}, headers=guide)
    assert t3.status_code == 201 and t3.json()["appointment_code"] == by_qr["code"]

    other = await live.client.post(
        "/api/v1/appointments/check-in", json={"id_number": "110105194912310011"}, headers=kiosk
    )
    assert other.status_code == 404 and other.json()["code"] == "no_appointment_for_card"
    ticket_qr = t1.json()["qr"]  # a ticket's QR is not a booking's
    wrong = await live.client.post("/api/v1/appointments/check-in", json={"qr": ticket_qr}, headers=kiosk)
    assert wrong.status_code == 422 and wrong.json()["code"] == "not_an_appointment_qr"
    both = await live.client.post("/api/v1/appointments/check-in", json={"qr": "x", "id_number": CARD}, headers=kiosk)
    assert both.status_code == 422 and both.json()["code"] == "invalid_arguments"


async def test_green_channel_reason_is_logged_and_counted(live: LiveHall, clock: FakeClock) -> None:
    """A guide issues for a pregnant visitor and a key enterprise: logged with the reason, counted in /stats."""
    guide = live.auth("guide")
    for reason in ("pregnant", "key_enterprise", "pregnant"):
        body = {"category": "A", "priority": "green", "priority_reason": reason}
        resp = await live.client.post("/api/v1/tickets", json=body, headers=guide)
        assert resp.status_code == 201 and resp.json()["priority"] == "green", resp.text
    bad = {"category": "A", "priority": "green", "priority_reason": "vip"}
    resp = await live.client.post("/api/v1/tickets", json=bad, headers=guide)
    assert resp.status_code == 422 and resp.json()["code"] == "unknown_green_reason"

    def log(c: sqlite3.Connection) -> list[str | None]:
        rows = c.execute("SELECT data FROM event_log WHERE kind = 'issued' ORDER BY seq")
        return [json.loads(r[0]).get("reason") for r in rows]

    assert await live.svc._store.read(log) == ["pregnant", "key_enterprise", "pregnant"]
    stats = (await live.client.get("/api/v1/stats", headers=live.auth("admin"))).json()
    assert stats["green_channel"] == {"key_enterprise": 1, "pregnant": 2}


async def test_swiping_the_booking_card_at_a_kiosk_checks_in(hall_factory: HallFactory) -> None:
    """The card that booked checks in at the swipe (appointment ticket, offer spent); too early is told on the kiosk."""
    clock = FakeClock(MONDAY)
    live: LiveHall = await hall_factory(clock=clock, kiosk=[{"id": "k1", "categories": ["A", "B"]}])
    guide = live.auth("guide")
    today = MONDAY.date()
    for start in (slot(today, 9), slot(today, 11)):
        body = {"category": "B", "slot_start": start, "name": "张三", "id_number": CARD}
        if start == slot(today, 11):
            body["category"] = "A"
        assert (await live.client.post("/api/v1/appointments", json=body, headers=guide)).status_code == 201
    notices: list[ev.KioskNotice] = []
    sub = live.svc.bus.subscribe("test.notice", lambda e: notices.append(e) if isinstance(e, ev.KioskNotice) else None)
    out = await live.svc.card_read("k1", Holder(name="张三", id_number=CARD))
    assert out is not None and out.ticket.priority == "appointment" and out.ticket.category == "B"
    assert out.ticket.channel == "appointment" and out.ticket.kiosk == "k1"
    # The 11:00 booking is too early at 08:50: an ordinary swipe (offer, no ticket), and the kiosk says why.
    again = await live.svc.card_read("k1", Holder(name="张三", id_number=CARD))
    await live.svc.bus.drain()
    await live.svc.bus.unsubscribe(sub)
    assert again is None
    assert [n.code for n in notices] == ["appointment_too_early"] and "预约签到最早" in notices[0].message
    # Another card: no booking, the swipe is an ordinary one.
    assert await live.svc.card_read("k1", Holder(name="李四", id_number="110105194912310011")) is None
