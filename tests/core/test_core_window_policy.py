"""The clerk's window: sign-in before calling, call next over a visitor who never came, transfer notes,
overtime clocks in the window's queue view, bilingual refusals (issue 14, sections 4 and 6)."""

from __future__ import annotations

from typing import Any

import pytest

from hallctl import events as ev
from hallctl.errors import Conflict
from tests.core.conftest import HallFactory
from tests.core.core_harness import EngineHall
from tests.core.core_helpers import T0, FakeClock, LiveHall, make_config

# The product's policy (the test base turns both off for tests about other things).
PRODUCT = {"require_sign_in": True, "call_next_unstarted": "ask"}


def hall(**queue: Any) -> EngineHall:
    return EngineHall(make_config(queue={"recall_min_gap_s": 0, **PRODUCT, **queue}), T0)


def test_product_defaults_require_sign_in_and_ask() -> None:
    """Without a [queue] table a hall requires sign-in and asks about an unstarted ticket."""
    from hallctl import config

    q = config.QueueConfig()
    assert q.require_sign_in is True and q.call_next_unstarted == "ask"


# ---- sign-in required --------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["call_next", "call", "recall"])
def test_a_window_without_staff_cannot_call(action: str) -> None:
    """call-next, call by number and recall are refused (not_signed_in, zh and en) until someone signs in."""
    h = hall()
    a1 = h.issue("A")
    if action == "recall":  # a ticket called while signed in, then the clerk signed out
        h.apply_sign_in(1, "0231")
        h.call_next(1)
        h.apply_sign_in(1, None)
    with pytest.raises(Conflict) as exc:
        if action == "call_next":
            h.call_next(1)
        elif action == "call":
            h.call(1, a1.number)
        else:
            h.recall(1)
    assert exc.value.code == "not_signed_in"
    assert "签到" in exc.value.message and "sign in" in exc.value.message_en


def test_signed_in_window_calls_and_the_call_carries_the_staff() -> None:
    h = hall()
    h.issue("A")
    h.apply_sign_in(1, "0231")
    t = h.call_next(1)
    assert t is not None and t.staff == "0231"


def test_sign_in_not_required_when_configured_off() -> None:
    h = hall(require_sign_in=False)
    h.issue("A")
    assert h.call_next(1) is not None


# ---- call next over a called ticket that never started -----------------------------------------


def test_call_next_over_an_unstarted_ticket_asks_the_clerk() -> None:
    """The visitor may never have come: call next does not record the ticket as done, it asks."""
    h = hall()
    a1, a2 = h.issue("A"), h.issue("A")
    h.apply_sign_in(1, "0231")
    h.call_next(1)
    with pytest.raises(Conflict) as exc:
        h.call_next(1)
    assert exc.value.code == "current_not_started"
    assert exc.value.extra == {"ticket": a1.number, "choices": ["finish", "no_show", "recall"]}
    assert h.ticket(a1.id).state == "called" and h.ticket(a2.id).state == "waiting"
    # Calling by number over it is the same question.
    with pytest.raises(Conflict) as exc2:
        h.call(1, a2.number)
    assert exc2.value.code == "current_not_started"
    # The clerk answers "no-show"; the next call goes through.
    h.no_show(1)
    t = h.call_next(1)
    assert t is not None and t.id == a2.id
    assert h.ticket(a1.id).state == "no_show"


def test_call_next_over_a_started_ticket_finishes_it() -> None:
    """A ticket being served was served: call next finishes it (call_next_finishes_current)."""
    h = hall()
    a1, _ = h.issue("A"), h.issue("A")
    h.apply_sign_in(1, "0231")
    h.call_next(1)
    h.start(1)
    h.call_next(1)
    assert h.ticket(a1.id).state == "done"


@pytest.mark.parametrize(("policy", "state"), [("finish", "done"), ("no_show", "no_show")])
def test_call_next_unstarted_policy_finish_or_no_show(policy: str, state: str) -> None:
    """The two explicit alternatives: count it as served (the old behaviour) or as 过号."""
    h = hall(call_next_unstarted=policy)
    a1, a2 = h.issue("A"), h.issue("A")
    h.apply_sign_in(1, "0231")
    h.call_next(1)
    t = h.call_next(1)
    assert t is not None and t.id == a2.id
    assert h.ticket(a1.id).state == state
    kinds = [type(e) for e in h.decisions[-1].events]
    assert (ev.TicketFinished in kinds) == (state == "done")
    assert (ev.TicketNoShow in kinds) == (state == "no_show")


# ---- transfer note and origin -------------------------------------------------------------------


def test_transfer_carries_note_and_origin_window() -> None:
    h = hall()
    h.issue("A")
    h.apply_sign_in(1, "0231")
    h.call_next(1)
    d = h.transfer_d(1, to_category="B", note="营业执照复印件已收，缺法人授权书")
    new = d.result
    assert new.from_window == 1 and new.transfer_note == "营业执照复印件已收，缺法人授权书"
    assert [r.data.get("note") for r in d.log if r.kind == "transferred"] == ["营业执照复印件已收，缺法人授权书"]


# ---- over HTTP, on a running hall -----------------------------------------------------------------


async def test_http_refusals_say_zh_and_en(hall_factory: HallFactory, clock: FakeClock) -> None:
    """The window page shows `detail` in Chinese mode and `detail_en` in English: both are set."""
    live: LiveHall = await hall_factory(clock=clock, queue={"recall_min_gap_s": 0, **PRODUCT})
    await live.svc.issue("A")
    r = await live.client.post("/api/v1/windows/1/call-next", headers=live.auth("w1"))
    assert r.status_code == 409 and r.json()["code"] == "not_signed_in"
    assert "签到" in r.json()["detail"] and "sign in" in r.json()["detail_en"]
    r = await live.client.post("/api/v1/windows/1/sign-in", json={"staff": "9999"}, headers=live.auth("w1"))
    assert r.status_code == 404
    assert r.json()["detail"] == "没有工号为9999的工作人员" and r.json()["detail_en"] == "no staff member 9999"
    r = await live.client.post("/api/v1/windows/1/sign-in", json={"staff": "0231"}, headers=live.auth("w1"))
    assert r.status_code == 200
    await live.client.post("/api/v1/windows/1/pause", headers=live.auth("w1"))
    r = await live.client.post("/api/v1/windows/1/call-next", headers=live.auth("w1"))
    assert r.json()["detail"] == "1号窗口已暂停服务，请先恢复"
    assert r.json()["detail_en"] == "window 1 is paused; resume it first"
    await live.client.post("/api/v1/windows/1/resume", headers=live.auth("w1"))
    r = await live.client.post("/api/v1/windows/1/call-next", headers=live.auth("w1"))
    assert r.status_code == 200
    r = await live.client.post("/api/v1/windows/1/call-next", headers=live.auth("w1"))
    assert r.status_code == 409
    body = r.json()
    assert body["code"] == "current_not_started" and body["choices"] == ["finish", "no_show", "recall"]
    assert body["ticket"] == "A001" and "未到" in body["detail"] and "no-show" in body["detail_en"]


async def test_window_queue_shows_transfer_note_and_overtime(hall_factory: HallFactory, clock: FakeClock) -> None:
    """The receiving window's list shows origin and note; waits and services past their limits are flagged."""
    live: LiveHall = await hall_factory(clock=clock, queue={"recall_min_gap_s": 0, **PRODUCT})
    w1, w2 = live.auth("w1"), live.auth("w2")
    for w in (1, 2):
        await live.svc.sign_in(w, "0231")
    await live.svc.issue("A")
    await live.svc.issue("A")
    await live.client.post("/api/v1/windows/1/call-next", headers=w1)
    r = await live.client.post("/api/v1/windows/1/transfer", json={"to_window": 2, "note": " 缺户口本 "}, headers=w1)
    assert r.status_code == 200, r.text
    q = (await live.client.get("/api/v1/windows/2/queue", headers=w2)).json()
    moved = [t for t in q["waiting"] if t["from_window"] == 1]
    assert len(moved) == 1 and moved[0]["transfer_note"] == "缺户口本"
    # Other views do not carry the note (staff only).
    one = (await live.client.get(f"/api/v1/tickets/{moved[0]['id']}", headers=live.auth("admin"))).json()
    assert "transfer_note" not in one

    # A001's follow-up is for window 2; A002 waits. Category A's target wait is 10 min (test base).
    q1 = (await live.client.get("/api/v1/windows/1/queue", headers=w1)).json()
    assert q1["current"] is None
    waiting = {t["number"]: t for t in q1["waiting"]}
    assert waiting["A002"]["wait_over"] is False and waiting["A002"]["target_wait_s"] == 600
    clock.advance(minutes=11)
    q1 = (await live.client.get("/api/v1/windows/1/queue", headers=w1)).json()
    assert {t["number"]: t["wait_over"] for t in q1["waiting"]}["A002"] is True

    await live.client.post("/api/v1/windows/1/call-next", headers=w1)
    await live.client.post("/api/v1/windows/1/start", headers=w1)
    cur = (await live.client.get("/api/v1/windows/1/queue", headers=w1)).json()["current"]
    assert cur["number"] == "A002" and cur["wait_over"] is True and cur["service_over"] is False
    clock.advance(minutes=21)  # service_minutes defaults to 20
    cur = (await live.client.get("/api/v1/windows/1/queue", headers=w1)).json()["current"]
    assert cur["service_over"] is True and cur["service_s"] == 21 * 60 and cur["service_limit_s"] == 1200
