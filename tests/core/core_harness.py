"""A small driver for the pure engine: applies each decision as the service would, with a fake time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hallctl import engine
from hallctl.config import Config
from hallctl.engine import Appointment, Decision, HallQueue, Holder, IssueRequest, Ticket


class EngineHall:
    def __init__(self, cfg: Config, now: datetime) -> None:
        self.cfg = cfg
        self.now = now.astimezone(UTC)
        self.q = HallQueue(day=engine.business_day(self.now, cfg))
        self.decisions: list[Decision] = []

    # time ---------------------------------------------------------------------------------
    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)

    def rollover(self) -> Decision | None:
        """What the service does before each command: open a new business day when one began."""
        d = engine.rollover(self.q, self.cfg, self.now)
        if d is not None:
            self.q.apply(d)
            self.decisions.append(d)
        return d

    def _apply(self, d: Decision) -> Decision:
        self.q.apply(d)
        self.decisions.append(d)
        return d

    # commands -----------------------------------------------------------------------------
    def issue(self, category: str = "A", **kw: Any) -> Ticket:
        d = self._apply(engine.issue(self.q, self.cfg, IssueRequest(category=category, **kw), self.now))
        t: Ticket = d.result[0]
        return t

    def issue_d(self, category: str = "A", **kw: Any) -> Decision:
        return self._apply(engine.issue(self.q, self.cfg, IssueRequest(category=category, **kw), self.now))

    def call_next(self, window: int) -> Ticket | None:
        d = self._apply(engine.call_next(self.q, self.cfg, window, self.now))
        result: Ticket | None = d.result
        return result

    def next(self, window: int) -> Ticket:
        """call next, expecting someone to be called."""
        t = self.call_next(window)
        assert t is not None, f"window {window} called nobody"
        return t

    def call(self, window: int, number: str) -> Ticket:
        return self._apply(engine.call_ticket(self.q, self.cfg, window, number, self.now)).result  # type: ignore[no-any-return]

    def recall(self, window: int) -> Decision:
        return self._apply(engine.recall(self.q, self.cfg, window, self.now))

    def start(self, window: int) -> Ticket:
        return self._apply(engine.start(self.q, self.cfg, window, self.now)).result  # type: ignore[no-any-return]

    def finish(self, window: int) -> Decision:
        return self._apply(engine.finish(self.q, self.cfg, window, self.now))

    def no_show(self, window: int) -> Ticket:
        return self._apply(engine.no_show(self.q, self.cfg, window, self.now)).result  # type: ignore[no-any-return]

    def transfer(
        self, window: int, to_category: str | None = None, to_window: int | None = None, holder: Holder | None = None
    ) -> Ticket:
        d = engine.transfer(self.q, self.cfg, window, to_category, to_window, self.now, holder=holder)
        return self._apply(d).result  # type: ignore[no-any-return]

    def transfer_d(
        self, window: int, to_category: str | None = None, to_window: int | None = None, note: str | None = None
    ) -> Decision:
        return self._apply(engine.transfer(self.q, self.cfg, window, to_category, to_window, self.now, note=note))

    def apply_sign_in(self, window: int, staff: str | None) -> Decision:
        return self._apply(engine.sign_in(self.q, self.cfg, window, staff, self.now))

    def pause(self, window: int, paused: bool = True) -> Decision:
        return self._apply(engine.pause(self.q, self.cfg, window, self.now, paused))

    def cancel(self, ticket_id: str) -> Ticket:
        return self._apply(engine.cancel(self.q, self.cfg, ticket_id, self.now)).result  # type: ignore[no-any-return]

    def evaluate(self, window: int, level: int | None, ticket_id: str | None = None) -> Decision:
        return self._apply(engine.evaluate(self.q, self.cfg, window, level, "pad", self.now, ticket_id))

    def book(self, code: str, category: str, slot_start: datetime, minutes: int = 30) -> Decision:
        """An appointment for ``slot_start`` as the store would load it (any time, any code).

        The check-in and ordering tests need bookings at arbitrary times (late, early, past);
        the booking policy itself (slots, hours, calendar, capacity) is engine.book's, tested
        in tests/core/test_core_appointments.py.
        """
        d = Decision(at=self.now)
        d.appointments.append(Appointment(code, category, slot_start, slot_start + timedelta(minutes=minutes)))
        d.result = d.appointments[0]
        return self._apply(d)

    def check_in(self, code: str) -> Ticket:
        t: Ticket = self._apply(engine.check_in(self.q, self.cfg, code, self.now)).result[0]
        return t

    # views ----------------------------------------------------------------------------------
    def ticket(self, ticket_id: str) -> Ticket:
        return self.q.tickets[ticket_id]

    def today(self) -> date:
        return self.q.day
