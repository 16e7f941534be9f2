"""The service's appointment actions (预约): book, reschedule, cancel, check in by code, card or QR.

A mixin of :class:`hallctl.service.HallService` (its methods take the service as ``self``):
the same lock, write path and events as every other action, in a module of its own.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from hallctl import engine
from hallctl.engine import Decision, HallQueue, Holder, calendar
from hallctl.errors import HallctlError, NotFound, Refused
from hallctl.privacy import id_hash
from hallctl.service.outcomes import IssueOutcome

if TYPE_CHECKING:
    from hallctl.config import Config
    from hallctl.privacy import QrSigner
    from hallctl.service.keylock import KeyLock
    from hallctl.store import Store

log = logging.getLogger("hallctl.service")

APPOINTMENT_QR = "appt:"  # the subject prefix of a booking's QR token (a ticket's is its id)


class AppointmentActions:
    # What this mixin uses of the service (hallctl.service.HallService provides it).
    if TYPE_CHECKING:
        cfg: Config
        clock: Callable[[], datetime]
        qr: QrSigner
        _q: HallQueue
        _store: Store
        _id_secret: bytes

        async def run(
            self,
            decide: Callable[[HallQueue, datetime], Decision],
            idempotency: Callable[[Decision], tuple[str, int, str]] | None = None,
        ) -> Decision: ...

        def _sign(self, ticket_id: str, at: datetime) -> str: ...

        def _same_key(self, idempotency_key: str) -> KeyLock: ...

        def _masked_holder(self, holder: Holder | None) -> tuple[str | None, str | None]: ...

    async def book(
        self,
        category: str,
        slot_start: datetime,
        slot_end: datetime | None = None,
        holder: Holder | None = None,
        code: str | None = None,
        *,
        idempotency_key: str | None = None,
        render: Callable[[engine.Appointment], dict[str, Any]] | None = None,
    ) -> tuple[engine.Appointment, bool]:
        """Book a slot; the code is 8 digits (a kiosk keypad types it) unless the caller gave one.

        With ``idempotency_key`` a retry (a mini-program that lost the answer) gets the first
        booking back, ``(appointment, True)``, never a second place in the slot.
        """
        masked, hashed = self._masked_holder(holder)
        if holder is not None and not holder.name:
            masked = None  # booked with the ID number alone (a phone booking): nothing to mask
        tz = self.cfg.hall.tz
        start, end = slot_start.astimezone(tz), slot_end.astimezone(tz) if slot_end else None
        if idempotency_key is None:
            return await self._book(category, start, end, masked, hashed, code, None, render)
        async with self._same_key(idempotency_key):
            previous = await self._store.idempotent_response(idempotency_key)
            if previous is not None:
                return await self._appointment_replay(previous[1]), True
            return await self._book(category, start, end, masked, hashed, code, idempotency_key, render)

    async def _book(
        self,
        category: str,
        start: datetime,
        end: datetime | None,
        masked: str | None,
        hashed: str | None,
        code: str | None,
        idempotency_key: str | None,
        render: Callable[[engine.Appointment], dict[str, Any]] | None,
    ) -> tuple[engine.Appointment, bool]:
        def idem(d: Decision) -> tuple[str, int, str]:
            assert idempotency_key is not None and render is not None
            return idempotency_key, 201, json.dumps({"code": d.result.code, "body": render(d.result)})

        def decide(chosen: str) -> Callable[[HallQueue, datetime], Decision]:
            return lambda q, now: engine.book(q, self.cfg, chosen, category, start, end, now, masked, hashed)

        for attempt in range(5):  # a generated code that exists already: draw again
            try:
                d = await self.run(
                    decide(code or f"{secrets.randbelow(9 * 10**7) + 10**7:08d}"),
                    idempotency=idem if idempotency_key is not None and render is not None else None,
                )
            except HallctlError as exc:
                if code is None and exc.code == "appointment_exists" and attempt < 4:
                    continue
                raise
            result: engine.Appointment = d.result
            return result, False
        raise AssertionError("unreachable: the loop returns or raises")

    async def _appointment_replay(self, body: str) -> engine.Appointment:
        data = json.loads(body)
        return self.appointment(data["code"])

    def appointment(self, code: str) -> engine.Appointment:
        a = self._q.appointments.get(code)
        if a is None:
            raise NotFound("unknown_appointment", f"没有预约号{code}", f"no appointment {code}")
        return a

    def appointments(self, day: date | None = None) -> list[engine.Appointment]:
        """Bookings from the hall's today on (or of ``day``), by slot: what the guide desk lists."""
        tz = self.cfg.hall.tz
        today = self.clock().astimezone(tz).date()
        out = [
            a
            for a in self._q.appointments.values()
            if (a.slot_start.astimezone(tz).date() == day if day else a.slot_start.astimezone(tz).date() >= today)
        ]
        return sorted(out, key=lambda a: (a.slot_start, a.category, a.code))

    def slots(self, category: str, day: date) -> list[tuple[datetime, datetime, int, int]]:
        cat = self.cfg.category_by_prefix(category)
        if cat is None:
            raise NotFound("unknown_category", f"没有{category}类业务", f"no category with prefix {category!r}")
        return engine.slot_counts(self._q, self.cfg, cat, day)

    def day_info(self, day: date) -> calendar.DayInfo:
        return calendar.day_info(self.cfg, day)

    def appointment_qr(self, a: engine.Appointment) -> str:
        """The booking's QR token (``appt:<code>``), valid until its slot ends."""
        return self.qr.sign_until(f"{APPOINTMENT_QR}{a.code}", a.slot_end.timestamp())

    async def reschedule(self, code: str, slot_start: datetime, slot_end: datetime | None = None) -> engine.Appointment:
        tz = self.cfg.hall.tz
        start, end = slot_start.astimezone(tz), slot_end.astimezone(tz) if slot_end else None
        d = await self.run(lambda q, now: engine.reschedule(q, self.cfg, code, start, end, now))
        result: engine.Appointment = d.result
        return result

    async def cancel_appointment(self, code: str) -> engine.Appointment:
        d = await self.run(lambda q, now: engine.cancel_appointment(q, self.cfg, code, now))
        result: engine.Appointment = d.result
        return result

    async def check_in(self, code: str, kiosk: str | None = None) -> IssueOutcome:
        d = await self.run(lambda q, now: engine.check_in(q, self.cfg, code, now, kiosk, sign=self._sign))
        t, ahead, qr = d.result
        return IssueOutcome(t, ahead, qr)

    def code_for_card(self, id_number: str) -> str:
        """The code of today's booking made with this ID card (matched by its keyed hash)."""
        hashed = id_hash(self._id_secret, id_number)
        return engine.find_for_card(self._q, self.cfg, hashed, self.clock()).code

    def code_for_qr(self, token: str) -> str:
        """The code a booking's QR carries (signed by this hall, not expired)."""
        from hallctl.privacy import QrTokenError

        try:
            subject = self.qr.verify(token, now=self.clock().timestamp())
        except QrTokenError as exc:
            raise Refused(exc.code, "二维码无效或已过期", str(exc)) from exc
        if not subject.startswith(APPOINTMENT_QR):
            raise Refused(
                "not_an_appointment_qr",
                "这是取号凭条的二维码，不是预约二维码",
                "this QR is a ticket's, not a booking's",
            )
        return subject.removeprefix(APPOINTMENT_QR)
