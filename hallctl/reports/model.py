"""The report core's input and its replay: event-log records in, one fact per visit and per sign-in session out.

Pure: no store, no service, no clock. A hall feeds it from its SQLite event log
(:mod:`hallctl.reports.source`); the city's ingestion can feed it the same events from
PostgreSQL, so a hall's and the city's daily and monthly reports are one code.

A ticket's staff member is whoever was signed in at the window when it was called (what
the engine writes on the ticket), found by replaying the sign-ins. Waiting time is the
engine's :func:`hallctl.engine.waiting_time`, applied to a ticket rebuilt from its rows, so
a report can never disagree with the queue screen or supervision on what a wait is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from hallctl.citylog import EventLogRow
from hallctl.config import Config
from hallctl.engine import Ticket, business_day, waiting_time


@dataclasses.dataclass(frozen=True, slots=True)
class EventRecord:
    """One row of a hall's event log: what happened (``kind``), when (aware), to which ticket, at which window."""

    at: datetime
    kind: str
    ticket_id: str | None = None
    window: int | None = None
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(slots=True)
class Visit:
    """One ticket's facts as the log tells them (a transfer's follow-up is a visit of its own)."""

    id: str
    number: str
    category: str
    channel: str
    priority: str
    issued_at: datetime
    day: date
    state: str = "waiting"
    first_called_at: datetime | None = None
    window: int | None = None
    staff: str | None = None
    service_s: float | None = None
    level: int | None = None
    evaluated: bool = False
    wait_s: float | None = None  # set once the replay is done (:meth:`settle`)

    def ticket(self) -> Ticket:
        """The engine's ticket of this visit, enough for :func:`waiting_time`."""
        return Ticket(
            id=self.id,
            day=self.day,
            category=self.category,
            seq=0,
            number=self.number,
            priority=self.priority,
            channel=self.channel,
            state=self.state,
            issued_at=self.issued_at,
            sort_at=self.issued_at,
            first_called_at=self.first_called_at,
        )

    def settle(self) -> None:
        """Fix the wait once the log is replayed: a report reads it many times (each breakdown)."""
        waited = waiting_time(self.ticket())
        self.wait_s = waited.total_seconds() if waited is not None else None


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    """A staff member signed in at a window from ``start`` to ``end`` (None: never signed out in the range)."""

    staff: str
    window: int
    start: datetime
    end: datetime | None
    carried: bool = False  # signed in before the range began (its start is the range's start)


@dataclasses.dataclass(slots=True)
class Replay:
    visits: dict[str, Visit]
    sessions: list[Session]


def category_of(number: str) -> str:
    """A ticket number's category prefix (``A012`` -> ``A``): rows written before the issue row named it."""
    return number.rstrip("0123456789")


def replay(records: Iterable[EventRecord], cfg: Config, start: datetime | None = None) -> Replay:
    """Walk the records in log order. Records before ``start`` only say who was signed in when it began."""
    visits: dict[str, Visit] = {}
    at_window: dict[int, tuple[str, datetime, bool]] = {}  # window -> (staff, since, carried)
    sessions: list[Session] = []

    def close(window: int, at: datetime) -> None:
        cur = at_window.pop(window, None)
        if cur is not None:
            sessions.append(Session(cur[0], window, cur[1], at, cur[2]))

    for r in records:
        if start is not None and r.at < start:
            if r.kind == "signed_in" and r.window is not None:
                at_window[r.window] = (str(r.data.get("staff")), start, True)
            elif r.kind == "signed_out" and r.window is not None:
                at_window.pop(r.window, None)
            continue
        if r.kind in ("signed_in", "signed_out"):
            if r.window is None:
                continue
            close(r.window, r.at)
            if r.kind == "signed_in" and r.data.get("staff"):
                at_window[r.window] = (str(r.data["staff"]), r.at, False)
            continue
        tid = r.ticket_id
        if tid is None:
            continue
        if r.kind == "issued":
            number = str(r.data.get("number", tid.rsplit("-", 1)[-1]))
            visits[tid] = Visit(
                id=tid,
                number=number,
                category=str(r.data.get("category") or category_of(number)),
                channel=str(r.data.get("channel", "")),
                priority=str(r.data.get("priority", "normal")),
                issued_at=r.at,
                day=business_day(r.at, cfg),
            )
            continue
        v = visits.get(tid)
        if v is None:  # a ticket of an earlier range (or a purged row): not this report's visit
            continue
        if r.kind in ("called", "recalled"):
            v.state = "called"
            v.window = r.window
            staff = r.data.get("staff")
            v.staff = str(staff) if staff else (at_window[r.window][0] if r.window in at_window else None)
            if v.first_called_at is None:
                v.first_called_at = r.at
        elif r.kind == "serving":
            v.state = "serving"
        elif r.kind == "finished":
            v.state = "done"
            s = r.data.get("service_s")
            v.service_s = float(s) if s is not None else None
        elif r.kind == "no_show":
            v.state = "no_show"
        elif r.kind == "cancelled":
            v.state = "cancelled"
        elif r.kind == "transferred":
            v.state = "transferred"
            new_id = str(r.data.get("new_ticket", ""))
            if new_id:
                number = new_id.rsplit("-", 1)[-1]
                visits[new_id] = Visit(
                    id=new_id,
                    number=number,
                    category=str(r.data.get("to_category") or category_of(number)),
                    channel="transfer",
                    priority=v.priority,
                    issued_at=r.at,
                    day=business_day(r.at, cfg),
                )
        elif r.kind == "evaluated":
            v.evaluated = True
            level = r.data.get("level")
            v.level = int(level) if level is not None else None
    for v in visits.values():
        v.settle()
    for window, (staff, since, carried) in sorted(at_window.items()):
        sessions.append(Session(staff, window, since, None, carried))
    return Replay(visits, sessions)


def percentile(values: list[float], q: float) -> float | None:
    """The hall's percentile (the same rank rule as :mod:`hallctl.reports.stats` and the big screen)."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def record(row: EventLogRow) -> EventRecord:
    """A report record from an event-log row, from the hall's store or the city's PostgreSQL copy."""
    at = datetime.fromisoformat(row.at)
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return EventRecord(at=at, kind=row.kind, ticket_id=row.ticket_id, window=row.window, data=row.data)
