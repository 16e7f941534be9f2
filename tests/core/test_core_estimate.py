"""The kiosk's estimated wait: people ahead over the category's current call rate."""

from __future__ import annotations

from tests.core.core_helpers import FakeClock, LiveHall


async def test_estimate_uses_service_target_until_calls_show_the_real_rate(live: LiveHall, clock: FakeClock) -> None:
    """with no calls yet the service-time target per window is assumed; after calls, their measured rate."""
    svc = live.svc
    tickets = [(await svc.issue("A")).ticket for _ in range(9)]
    windows_serving_a = 3  # windows 1, 2 and 3 of the base hall all serve A
    cat = svc.cfg.category_by_prefix("A")
    assert cat is not None
    target = cat.service_minutes * 60
    assert svc.estimated_wait_s(tickets[2]) == 3 * target / windows_serving_a
    for _ in range(4):  # one first call every two minutes at window 1
        await svc.call_next(1)
        clock.advance(minutes=2)
    last = svc._q.tickets[tickets[8].id]
    assert svc.waiting_ahead(last) == 4
    # four calls over eight minutes: 120 s a person, five people up to and including this visitor
    assert svc.estimated_wait_s(last) == 5 * 120.0
    await svc.recall(1)  # a recall is not a new visitor called: the rate does not change
    assert svc.estimated_wait_s(last) == 5 * 120.0
    clock.advance(minutes=31)  # the calls age out of the window: back to the target
    assert svc.estimated_wait_s(last) == 5 * target / windows_serving_a
