"""Start-up chores that run on their own after the start, not in front of a restart's first requests
(issue 12, goal 4): the retention pass (with a year of history it held the writer ≈0.1 s) and the
search for 差评 whose case a crash lost (a scan of 60 days of ratings)."""

from __future__ import annotations

import asyncio
import time
from datetime import date
from pathlib import Path

import pytest

from hallctl import engine
from hallctl import service as service_mod
from hallctl.supervision import alerts as alerts_mod
from tests.core.conftest import HallFactory
from tests.core.core_helpers import FakeClock
from tests.core.test_core_supervision import cases, serve_and_rate, settle

HOLDER = engine.Holder(name="张三丰", id_number="11010519491231002X", birth=date(1949, 12, 31))
DEADLINE_S = 10.0


async def test_personal_data_past_retention_is_purged_after_the_start_not_during_it(
    hall_factory: HallFactory, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_mod, "RETENTION_START_DELAY_S", 0.5, raising=False)
    over = {"store": {"path": str(tmp_path / "purge.db")}, "privacy": {"retention_days": 30}}
    first = await hall_factory(clock=clock, **over)
    old = (await first.svc.issue("A", holder=HOLDER)).ticket
    await first.hall.stop()

    clock.advance(days=31)
    again = await hall_factory(clock=clock, **over)
    store = again.hall.store
    # Started and serving: the holder is still there (the pass waits), and tickets are issued meanwhile.
    assert await store.holder(old.id) is not None, "purged during the start: the first tickets waited for it"
    r = await again.client.post("/api/v1/tickets", json={"category": "A"}, headers=again.auth("kiosk"))
    assert r.status_code == 201, r.text
    # Then the daemon purges on its own, without `hallctl purge` or a call to purge().
    deadline = time.monotonic() + DEADLINE_S
    while await store.holder(old.id) is not None:
        assert time.monotonic() < deadline, "the daemon's retention pass never ran"
        await asyncio.sleep(0.05)  # bounded poll for the pass
    ticket = await store.ticket(old.id)
    assert ticket is not None and ticket.holder_masked is None and ticket.id_hash is None


async def test_a_lost_case_is_opened_after_the_start_not_during_it(
    hall_factory: HallFactory, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alerts_mod, "RECONCILE_DELAY_S", 0.5, raising=False)
    over = {"store": {"path": str(tmp_path / "cases.db")}, "calendar": {"statutory": False}}
    first = await hall_factory(clock=clock, **over)
    bad = await serve_and_rate(first, 2)
    await settle(first)
    # A crash between the rating's commit and its case.
    await first.hall.store.write(lambda c: c.execute("DELETE FROM evaluation_cases"))
    await first.hall.stop()

    again = await hall_factory(clock=clock, **over)
    assert await cases(again) == [], "looked for during the start: the first requests waited for it"
    deadline = time.monotonic() + DEADLINE_S
    while not (found := await cases(again)):
        assert time.monotonic() < deadline, "the lost case was never opened"
        await asyncio.sleep(0.05)  # bounded poll for the search
    assert [k["ticket_id"] for k in found] == [bad]
