"""The service's memory of calls stays bounded and says what the screens and the kiosk rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hallctl import events as ev
from hallctl.service.calls import CallRate, CallRecord

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def called(n: int, recall: int = 0) -> ev.TicketCalled:
    return ev.TicketCalled(
        at=T0 + timedelta(seconds=n),
        ticket_id=f"t{n}",
        number=f"A{n:03d}",
        category="A",
        window=1,
        window_name="1号窗口",
        recall=recall,
        announcement=f"请A{n:03d}号到1号窗口办理",
        announcement_en=f"Number A{n:03d}, please go to window 1",
    )


def test_call_record_keeps_the_latest_call_per_ticket_and_forgets_the_oldest_ticket() -> None:
    """A recall replaces the ticket's entry; past the size, the ticket called longest ago is forgotten."""
    record = CallRecord(size=3)
    for n in range(1, 5):
        record.remember(called(n))
    record.remember(called(2, recall=1))
    assert record.last("t1") is None
    recall = record.last("t2")
    assert recall is not None and recall.recall == 1
    assert [e.ticket_id for e in record.recent(9)] == ["t2", "t4", "t3"]


def test_call_rate_needs_three_recent_calls_and_counts_a_burst_as_five_minutes() -> None:
    """Two calls give no rate; three within a minute count over 300 s; calls older than the window drop out."""
    rate = CallRate(window=timedelta(minutes=30))
    rate.note("A", T0)
    rate.note("A", T0 + timedelta(seconds=30))
    assert rate.seconds_per_call("A", T0 + timedelta(minutes=1)) is None
    rate.note("A", T0 + timedelta(seconds=60))
    assert rate.seconds_per_call("A", T0 + timedelta(minutes=1)) == 100.0
    assert rate.seconds_per_call("A", T0 + timedelta(minutes=31)) is None
    assert rate.seconds_per_call("B", T0) is None
