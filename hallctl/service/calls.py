"""What the service remembers of calls: the latest announcement per ticket, and how fast each queue moves.

Both are memory only and bounded: the call record keeps the latest call of the
last :data:`CALL_RECORD` tickets (for the voice endpoint and screens catching up),
the call rate keeps first calls of the last :data:`RATE_WINDOW` per category (for
the kiosk's wait estimate).
"""

from __future__ import annotations

import collections
from datetime import datetime, timedelta

from hallctl import events as ev

RATE_WINDOW = timedelta(minutes=30)  # how far back the call rate for wait estimates looks
CALL_RECORD = 300  # recent calls kept (latest per ticket)


class CallRecord:
    """The latest ``TicketCalled`` of each recently called ticket, oldest dropped first."""

    def __init__(self, size: int = CALL_RECORD) -> None:
        self.size = size
        self._calls: collections.OrderedDict[str, ev.TicketCalled] = collections.OrderedDict()

    def remember(self, e: ev.TicketCalled) -> None:
        self._calls.pop(e.ticket_id, None)
        self._calls[e.ticket_id] = e
        while len(self._calls) > self.size:
            self._calls.popitem(last=False)

    def last(self, ticket_id: str) -> ev.TicketCalled | None:
        return self._calls.get(ticket_id)

    def recent(self, limit: int) -> list[ev.TicketCalled]:
        """Newest first."""
        return list(reversed(self._calls.values()))[:limit]


class CallRate:
    """First calls per category over the last ``window``: how fast each queue is being called now."""

    def __init__(self, window: timedelta = RATE_WINDOW) -> None:
        self.window = window
        self._calls: dict[str, collections.deque[datetime]] = {}

    def note(self, category: str, at: datetime) -> None:
        calls = self._calls.setdefault(category, collections.deque())
        calls.append(at)
        self._trim(calls, at)

    def _trim(self, calls: collections.deque[datetime], now: datetime) -> None:
        while calls and now - calls[0] > self.window:
            calls.popleft()

    def seconds_per_call(self, category: str, now: datetime) -> float | None:
        """Seconds between first calls, when there were at least three over at least five minutes' span.

        One quick burst must not promise a short wait, so the span counts as at least 300 s.
        """
        calls = self._calls.get(category)
        if calls is None:
            return None
        self._trim(calls, now)
        if len(calls) < 3:
            return None
        return max((now - calls[0]).total_seconds(), 300.0) / len(calls)
