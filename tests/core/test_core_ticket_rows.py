"""The start-up load builds tickets by position (hallctl.store.rows.tickets_from_tuples, a generated
constructor: issue 12, goal 4); they must be the tickets the per-row path builds, and still frozen.
The rows they load from are written by a generated ``ticket_row`` (issue 12, goal 1): every field
of every ticket must come back as it went in."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from hallctl.engine import Decision, Ticket
from hallctl.store import Store

DAY = date(2026, 11, 23)
AT = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def varied() -> list[Ticket]:
    """Every field set in one ticket or another, None or default in the others."""
    base = Ticket(
        id="20261123-A001",
        day=DAY,
        category="A",
        seq=1,
        number="A001",
        priority="normal",
        channel="kiosk",
        state="waiting",
        issued_at=AT,
        sort_at=AT,
    )
    full = dataclasses.replace(
        base,
        id="20261123-A002",
        seq=2,
        number="A002",
        priority="appointment",
        priority_reason="elderly",
        appointment_slot=AT + timedelta(hours=1),
        appointment_code="X7",
        state="serving",
        called_at=AT + timedelta(minutes=3),
        first_called_at=AT + timedelta(minutes=2),
        serving_at=AT + timedelta(minutes=4),
        window=2,
        staff="0231",
        recalls=1,
        target_window=2,
        origin_id="20261123-A001",
        holder_masked="李*",
        id_hash="ab" * 16,
        kiosk="k1",
        print_failed=True,
        from_window=1,
        transfer_note="补材料",
    )
    done = dataclasses.replace(
        base, id="20261123-A003", seq=3, number="A003", state="done", finished_at=AT, end_reason="no_show"
    )
    return [base, full, done]


async def test_loaded_tickets_are_the_tickets_the_row_path_builds(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "rows.db"))
    await store.open()
    try:
        made = varied()
        await store.apply(Decision(at=AT, tickets=made, counters={(DAY, "A"): 3}))
        q = await store.load_queue(DAY)
        for t in made:
            loaded = q.tickets[t.id]
            assert type(loaded) is Ticket
            assert loaded == t == await store.ticket(t.id)
            assert hash(loaded) == hash(t)
            with pytest.raises(dataclasses.FrozenInstanceError):
                loaded.state = "cancelled"  # type: ignore[misc]
            assert dataclasses.replace(loaded, state="cancelled").state == "cancelled"
    finally:
        await store.close()
