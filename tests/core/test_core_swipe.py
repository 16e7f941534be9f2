"""A card swipe at a kiosk: one offer gives at most one ticket, and a retried redemption gets that ticket back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from hallctl import events as ev
from hallctl.engine import Holder
from tests.core.core_helpers import FakeClock, LiveHall

HallFactory = Callable[..., Any]
KIOSK = {"kiosk": [{"id": "k1", "categories": ["A", "B"]}]}
HOLDER = Holder(name="张三丰", id_number="11010519491231002X")


async def _offer(live: LiveHall, holder: Holder = HOLDER) -> ev.CardRead:
    seen: list[ev.CardRead] = []
    sub = live.svc.bus.subscribe("test.card", lambda e: seen.append(e) if isinstance(e, ev.CardRead) else None)
    await live.svc.card_read("k1", holder)
    await live.svc.bus.drain()
    await live.svc.bus.unsubscribe(sub)
    assert len(seen) == 1
    return seen[0]


async def test_two_concurrent_redemptions_of_one_offer_give_one_ticket(
    hall_factory: HallFactory, clock: FakeClock
) -> None:
    live: LiveHall = await hall_factory(clock=clock, **KIOSK)
    read = await _offer(live)
    body = {"offer": read.offer, "category": "A"}
    r1, r2 = await asyncio.gather(
        live.client.post("/api/v1/tickets", json=body, headers=live.auth("kiosk")),
        live.client.post("/api/v1/tickets", json=body, headers=live.auth("kiosk")),
    )
    statuses = sorted([r1.status_code, r2.status_code])
    assert statuses == [201, 422], (r1.text, r2.text)
    refused = r1 if r1.status_code == 422 else r2
    assert refused.json()["code"] == "offer_expired"
    issued = await live.svc._store.tickets(day=live.svc._q.day, state=None, category=None, limit=50)
    assert [t.number for t in issued] == ["A001"]


async def test_retried_redemption_with_the_same_key_returns_the_same_ticket(
    hall_factory: HallFactory, clock: FakeClock
) -> None:
    live: LiveHall = await hall_factory(clock=clock, **KIOSK)
    read = await _offer(live)
    body = {"offer": read.offer, "category": "A"}
    headers = live.auth("kiosk") | {"Idempotency-Key": "swipe-1"}
    first = await live.client.post("/api/v1/tickets", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = await live.client.post("/api/v1/tickets", json=body, headers=headers)  # the first answer was lost
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    a: dict[str, Any] = first.json()
    b: dict[str, Any] = again.json()
    assert (b["id"], b["number"], b["qr"]) == (a["id"], a["number"], a["qr"])
    issued = await live.svc._store.tickets(day=live.svc._q.day, state=None, category=None, limit=50)
    assert [t.number for t in issued] == ["A001"]


async def test_concurrent_redemptions_with_one_key_give_one_ticket_twice(
    hall_factory: HallFactory, clock: FakeClock
) -> None:
    live: LiveHall = await hall_factory(clock=clock, **KIOSK)
    read = await _offer(live)
    body = {"offer": read.offer, "category": "B"}
    headers = live.auth("kiosk") | {"Idempotency-Key": "swipe-2"}
    r1, r2 = await asyncio.gather(
        live.client.post("/api/v1/tickets", json=body, headers=headers),
        live.client.post("/api/v1/tickets", json=body, headers=headers),
    )
    assert (r1.status_code, r2.status_code) == (201, 201), (r1.text, r2.text)
    assert r1.json()["number"] == r2.json()["number"] == "B001"


async def test_a_refused_redemption_keeps_the_offer_for_another_category(
    hall_factory: HallFactory, clock: FakeClock
) -> None:
    live: LiveHall = await hall_factory(clock=clock, queue={"per_id_daily_limit": 1}, **KIOSK)
    await live.svc.issue("A", holder=HOLDER, channel="kiosk", kiosk="k1")
    read = await _offer(live)
    r = await live.client.post(
        "/api/v1/tickets", json={"offer": read.offer, "category": "A"}, headers=live.auth("kiosk")
    )
    assert r.status_code == 422 and r.json()["code"] == "id_limit_reached", r.text
    r = await live.client.post(
        "/api/v1/tickets", json={"offer": read.offer, "category": "B"}, headers=live.auth("kiosk")
    )
    assert r.status_code == 201 and r.json()["number"] == "B001", r.text


async def _swipe_and_issue(live: LiveHall, holder: Holder) -> tuple[bool, str]:
    read = await _offer(live, holder)
    out = await live.svc.issue_from_offer(read.offer, "A")
    return read.elderly, out.ticket.priority


async def test_card_read_elderly_flag_and_ticket_priority_agree_at_the_age_boundary(
    hall_factory: HallFactory, clock: FakeClock
) -> None:
    """elderly_age 65: 65 today is elderly on the kiosk and green on the ticket; one day short is neither."""
    live: LiveHall = await hall_factory(clock=clock, queue={"elderly_age": 65}, **KIOSK)
    today = clock().astimezone(live.svc.cfg.hall.tz).date()
    birthday = today.replace(year=today.year - 65)
    exactly = Holder(name="王老五", id_number="110105196111230019", birth=birthday)
    short = Holder(name="赵六", id_number="110105196111240014", birth=birthday + timedelta(days=1))
    assert await _swipe_and_issue(live, exactly) == (True, "green")
    assert await _swipe_and_issue(live, short) == (False, "normal")


async def test_without_auto_elderly_priority_the_kiosk_does_not_promise_the_green_channel(
    hall_factory: HallFactory, clock: FakeClock
) -> None:
    """The kiosk's 绿色通道 badge (CardRead.elderly) and the ticket's priority come from one rule."""
    live: LiveHall = await hall_factory(clock=clock, queue={"elderly_age": 65, "auto_elderly_priority": False}, **KIOSK)
    old = Holder(name="王老五", id_number="11010519491231002X", birth=clock().date().replace(year=1949))
    assert await _swipe_and_issue(live, old) == (False, "normal")


async def test_the_service_leaves_card_de_duplication_to_the_reader(
    hall_factory: HallFactory, clock: FakeClock
) -> None:
    """The reader driver de-duplicates (queue.card_dedupe_seconds); a read it reports is always offered."""
    live: LiveHall = await hall_factory(clock=clock, **KIOSK)
    first = await _offer(live)
    second = await _offer(live)
    assert first.offer != second.offer


async def test_a_kiosk_issue_carries_one_print_job_with_the_answered_count_and_token(
    hall_factory: HallFactory, clock: FakeClock
) -> None:
    live: LiveHall = await hall_factory(clock=clock, **KIOSK)
    jobs: list[ev.PrintRequested] = []
    live.svc.bus.subscribe("test.print", lambda e: jobs.append(e) if isinstance(e, ev.PrintRequested) else None)
    await live.svc.issue("A", channel="kiosk", kiosk="k1")
    r = await live.client.post("/api/v1/tickets", json={"category": "A", "kiosk": "k1"}, headers=live.auth("kiosk"))
    assert r.status_code == 201, r.text
    await live.svc.bus.drain()
    answer = r.json()
    job = jobs[-1].job
    assert (job.number, job.waiting_ahead, job.qr) == (answer["number"], answer["waiting_ahead"], answer["qr"])
    assert len(jobs) == 2


async def test_reprint_is_a_logged_decision_with_its_own_print_job(hall_factory: HallFactory, clock: FakeClock) -> None:
    live: LiveHall = await hall_factory(clock=clock, **KIOSK)
    jobs: list[ev.PrintRequested] = []
    live.svc.bus.subscribe("test.print", lambda e: jobs.append(e) if isinstance(e, ev.PrintRequested) else None)
    t = (await live.svc.issue("A", channel="api")).ticket  # not at a kiosk: nothing printed
    await live.svc.bus.drain()
    assert jobs == []
    r = await live.client.post(f"/api/v1/tickets/{t.id}/reprint", json={"kiosk": "k1"}, headers=live.auth("guide"))
    assert r.status_code == 202, r.text
    await live.svc.bus.drain()
    assert [(j.kiosk, j.job.number) for j in jobs] == [("k1", "A001")]
    assert live.svc.qr.verify(jobs[0].job.qr) == t.id
    log = (await live.client.get(f"/api/v1/tickets/{t.id}", headers=live.auth("admin"))).json()["events"]
    assert "reprinted" in [row["kind"] for row in log], log
