"""Waiting time has one definition (engine.waiting_time): the queue state, /stats and supervision agree.

A ticket waits from joining its current queue (``issued_at``; for a transfer follow-up the
transfer) to its first call; a recall or a no-show called back does not restart or extend it.
The follow-up's place in line still comes from the original issue (``sort_at``).
"""

from __future__ import annotations

from typing import Any

from hallctl import engine
from hallctl.engine import Ticket
from hallctl.service import HallService
from tests.core.core_helpers import FakeClock, LiveHall


async def called(svc: HallService, window: int) -> Ticket:
    """call-next at ``window``, which must find someone."""
    t = await svc.call_next(window)
    assert t is not None, f"window {window} found nobody to call"
    return t


async def _figures(live: LiveHall, category: str) -> tuple[Any, Any, Any]:
    """(queue state, /api/v1/stats, /api/v1/stats/live) average wait of ``category`` as a visitor sees them."""
    cats = (await live.client.get("/api/v1/categories", headers=live.auth("display"))).json()
    queue = next(c["avg_wait_s"] for c in cats if c["prefix"] == category)
    stats = (await live.client.get("/api/v1/stats", headers=live.auth("admin"))).json()
    day = stats["by_category"][category]["avg_wait_s"]
    live_stats = (await live.client.get("/api/v1/stats/live", headers=live.auth("admin"))).json()
    streamed = next(c["avg_wait_s"] for c in live_stats["categories"] if c["category"] == category)
    return queue, day, streamed


async def test_transferred_ticket_waits_from_the_transfer_in_queue_state_and_stats(
    live: LiveHall, clock: FakeClock
) -> None:
    """A001 waits 10 min, is served 6 min, sent to B; B001 is called 5 min later: B's wait is 300 s everywhere."""
    svc = live.svc
    a = (await svc.issue("A")).ticket
    clock.advance(minutes=10)
    assert (await called(svc, 1)).id == a.id
    await svc.start_service(1)
    clock.advance(minutes=6)
    follow = await svc.transfer(1, "B", None)
    assert follow.category == "B" and follow.sort_at == a.issued_at  # keeps its place in line
    clock.advance(minutes=5)
    follow_call = await svc.call_next(3)
    assert follow_call is not None and follow_call.id == follow.id
    assert await _figures(live, "B") == (300.0, 300.0, 300.0)
    assert await _figures(live, "A") == (600.0, 600.0, 600.0)  # the first window's wait stays on A001
    stats = (await live.client.get("/api/v1/stats", headers=live.auth("admin"))).json()
    assert stats["total"]["avg_wait_s"] == 450.0  # (600 + 300) / 2: nothing counted twice


async def test_supervision_measures_a_transferred_ticket_from_the_transfer(live: LiveHall, clock: FakeClock) -> None:
    """B's alert limit is 2 x 15 min: the follow-up is overdue 30 min after the transfer, not after the issue."""
    svc = live.svc
    await svc.issue("A")
    clock.advance(minutes=10)
    await svc.call_next(1)
    clock.advance(minutes=6)
    follow = await svc.transfer(1, "B", None)
    clock.advance(minutes=29)  # 45 min since the original issue, 29 since the transfer
    assert [(k, t.id) for k, t, _ in svc.overdue()] == []
    clock.advance(minutes=2)
    assert [(k, t.id, m) for k, t, m in svc.overdue()] == [("wait_exceeded", follow.id, 31)]
    waited = engine.waiting_time(svc._q.tickets[follow.id], clock())
    assert waited is not None and waited.total_seconds() == 31 * 60
    # Called now: the wait it ends with is the wait supervision reported, in the queue state and /stats.
    await svc.call_next(3)
    assert svc.overdue() == []
    assert await _figures(live, "B") == (31 * 60.0, 31 * 60.0, 31 * 60.0)


async def test_recalls_do_not_extend_the_wait(live: LiveHall, clock: FakeClock) -> None:
    svc = live.svc
    await svc.issue("A")
    clock.advance(minutes=4)
    await svc.call_next(1)
    for _ in range(2):
        clock.advance(minutes=2)
        await svc.recall(1)
    assert await _figures(live, "A") == (240.0, 240.0, 240.0)


async def test_a_no_show_called_back_keeps_its_first_wait(live: LiveHall, clock: FakeClock) -> None:
    svc = live.svc
    t = (await svc.issue("A")).ticket
    clock.advance(minutes=3)
    first = await svc.call_next(1)
    assert first is not None
    await svc.no_show(1)
    clock.advance(minutes=20)
    assert [k for k, *_ in svc.overdue()] == []  # a no-show is not waiting: supervision leaves it alone
    back = await svc.call(1, t.number)
    assert back.id == t.id and back.first_called_at == first.first_called_at
    assert await _figures(live, "A") == (180.0, 180.0, 180.0)
    stats = (await live.client.get("/api/v1/stats", headers=live.auth("admin"))).json()
    assert stats["total"]["called"] == 1 and stats["total"]["p90_wait_s"] == 180.0
