"""The daemon's own retention pass: it runs without anyone asking, but not in front of a restart's
first tickets (issue 12, goal 4: with a year of history it held the writer ≈0.1 s at start)."""

from __future__ import annotations

import asyncio
import time
from datetime import date
from pathlib import Path

import pytest

from hallctl import engine
from hallctl import service as service_mod
from tests.core.conftest import HallFactory
from tests.core.core_helpers import FakeClock

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
