"""After a restart the calling screen's recent calls come back, however many tickets the day has.

They are rebuilt from the queue the start loads (every ticket of the day); they were read again
from the store, limited to the day's first 5,000 tickets by issue time, so in a day with more
the latest calls were lost at a restart (and that read cost ≈0.06 s of the cold start with
30,000 waiting, issue 12 goal 4).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hallctl import engine
from hallctl.engine import Decision, Ticket
from hallctl.engine.model import LogRow
from hallctl.store import Store
from tests.core.conftest import HallFactory
from tests.core.core_helpers import FakeClock

EARLY = 5_001  # more than the old read's 5,000


async def test_a_restart_brings_back_the_latest_calls_of_a_day_past_5000_tickets(
    hall_factory: HallFactory, clock: FakeClock, tmp_path: Path
) -> None:
    over = {"store": {"path": str(tmp_path / "busy.db")}}
    first = await hall_factory(clock=clock, **over)
    cfg = first.hall.cfg
    await first.hall.stop()

    # A busy day written straight into the store: 5,001 tickets issued early, still waiting,
    # then one issued after them that window 1 called and finished.
    now = clock()
    day = engine.business_day(now, cfg)
    start = now - timedelta(hours=1)
    d = Decision(at=now)
    for i in range(EARLY + 1):
        seq = i + 1
        at = start + timedelta(milliseconds=100 * i)
        late = i == EARLY
        t = Ticket(
            id=f"{day:%Y%m%d}-A{seq:04d}",
            day=day,
            category="A",
            seq=seq,
            number=f"A{seq:04d}",
            priority="normal",
            channel="kiosk",
            state="done" if late else "waiting",
            issued_at=at,
            sort_at=at,
            called_at=now - timedelta(minutes=5) if late else None,
            first_called_at=now - timedelta(minutes=5) if late else None,
            finished_at=now - timedelta(minutes=1) if late else None,
            window=1 if late else None,
        )
        d.tickets.append(t)
        d.log.append(LogRow("issued", t.id, None, {"number": t.number, "priority": "normal", "channel": "kiosk"}))
    d.counters = {(day, "A"): EARLY + 1}
    store = Store(str(tmp_path / "busy.db"))
    await store.open()
    try:
        await store.apply(d)
    finally:
        await store.close()

    again = await hall_factory(clock=clock, **over)
    r = await again.client.get("/api/v1/calls", headers=again.auth("display"))
    assert r.status_code == 200, r.text
    calls = r.json()
    assert [c["number"] for c in calls] == [f"A{EARLY + 1:04d}"], calls
    assert calls[0]["window"] == 1
