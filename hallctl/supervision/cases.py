"""好差评 follow-up (差评核实整改): every rating of 2 or less opens a case that someone must close.

The national practice asks that a 差评 be verified, rectified and answered within 15 working
days; a case is due ``[supervision] case_working_days`` working days of the hall calendar
(statutory holidays, make-up days and the hall's own overrides) after the day of the rating.
A case left open past its due day is flagged overdue and raises one ``case_overdue`` alert.

The rating itself stays what it is (one per ticket, from the visitor's pad only); a case
adds the reason the visitor gave on the pad page (the serial pad protocol has no way to
send one: its key event carries the level alone), notes, who verified it and who closed it.
A case is opened from the ``EvaluationRecorded`` event, after the rating is durable; a
rating whose case was not written (a crash in between) gets it at the next start.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from hallctl import events as ev
from hallctl.bus import Bus
from hallctl.config import Config
from hallctl.engine import calendar
from hallctl.errors import Conflict, Forbidden, NotFound, Refused
from hallctl.store.supervision import CaseNote, CaseRow, SupervisionTables

log = logging.getLogger(__name__)

WORKING_KINDS = ("workday", "open", "makeup")
RECONCILE_DAYS = 60  # how far back a start looks for 差评 without a case


def is_working_day(cfg: Config, day: date) -> bool:
    """A day the hall works by its calendar; a year the statutory data does not cover counts Mon-Fri."""
    info = calendar.day_info(cfg, day)
    return info.kind in WORKING_KINDS or (info.kind == "unknown" and day.weekday() < 5)


def add_working_days(cfg: Config, start: date, n: int) -> date:
    """The ``n``-th working day after ``start`` (``start`` itself does not count)."""
    day = start
    for _ in range(n * 7 + 400):  # bounded: even a calendar of long closures ends
        day += timedelta(days=1)
        if is_working_day(cfg, day):
            n -= 1
            if n == 0:
                return day
    return day


def case_view(k: CaseRow, today: date) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(k):
        v = getattr(k, f.name)
        if isinstance(v, (datetime, date)):
            v = v.isoformat()
        elif f.name == "notes":
            v = [{"at": n.at.isoformat(), "by": n.by, "note": n.note} for n in k.notes]
        elif f.name == "reasons":
            v = list(v)
        out[f.name] = v
    out["overdue"] = is_overdue(k, today)
    return out


def is_overdue(k: CaseRow, today: date) -> bool:
    return k.state != "closed" and today > k.due_day


class Cases:
    def __init__(self, cfg: Config, store: SupervisionTables, bus: Bus, clock: Callable[[], datetime]) -> None:
        self.cfg = cfg
        self.store = store
        self.bus = bus
        self.clock = clock

    def today(self) -> date:
        return self.clock().astimezone(self.cfg.hall.tz).date()

    async def start(self) -> None:
        since = self.clock() - timedelta(days=RECONCILE_DAYS)
        for ticket_id, level, window, staff, reasons, at in await self.store.bad_ratings_without_case(since):
            number = await self.store.ticket_number(ticket_id) or ticket_id
            await self._open(ticket_id, number, window, staff, level, reasons, at)

    async def evaluated(self, e: ev.EvaluationRecorded) -> CaseRow | None:
        if e.level is None or e.level > 2:
            return None
        return await self._open(e.ticket_id, e.number, e.window, e.staff, e.level, (), e.at)

    async def _open(
        self,
        ticket_id: str,
        number: str,
        window: int,
        staff: str | None,
        level: int,
        reasons: tuple[str, ...],
        at: datetime,
    ) -> CaseRow | None:
        day = at.astimezone(self.cfg.hall.tz).date()
        due = add_working_days(self.cfg, day, self.cfg.supervision.case_working_days)
        k = await self.store.insert_case(ticket_id, number, window, staff, level, reasons, at, due)
        if k is not None:
            self._publish(k, "opened")
        return k

    def _publish(self, k: CaseRow, change: str) -> None:
        self.bus.publish(
            ev.CaseChanged(
                at=self.clock(),
                id=k.id,
                ticket_id=k.ticket_id,
                number=k.number,
                window=k.window,
                staff=k.staff,
                level=k.level,
                reasons=k.reasons,
                state=k.state,
                due_day=k.due_day.isoformat(),
                overdue=is_overdue(k, self.today()),
                change=change,
            )
        )

    async def get(self, case_id: int) -> CaseRow:
        k = await self.store.case(case_id)
        if k is None:
            raise NotFound("unknown_case", f"没有编号为{case_id}的差评工单", f"no case {case_id}")
        return k

    async def find(
        self,
        *,
        states: tuple[str, ...] = (),
        windows: tuple[int, ...] | None = None,
        overdue: bool | None = None,
        limit: int = 100,
    ) -> tuple[list[CaseRow], date]:
        """Cases newest first, and the day ``overdue`` was judged on (``case.list`` and the admin console)."""
        today = self.today()
        rows = await self.store.cases(states=states, windows=windows, limit=10_000 if overdue is not None else limit)
        if overdue is not None:
            rows = [k for k in rows if is_overdue(k, today) is overdue][:limit]
        return rows, today

    async def give_reason(self, ticket_id: str, reasons: tuple[str, ...], windows: tuple[int, ...] | None) -> CaseRow:
        """The visitor's reason for their 差评, from the pad page: once, from the configured list."""
        allowed = [r.name for r in self.cfg.supervision.bad_rating_reasons]
        bad = [r for r in reasons if r not in allowed]
        if bad or not reasons:
            raise Refused(
                "bad_reason", f"原因须从以下选择：{'、'.join(allowed)}", f"reasons must be among: {', '.join(allowed)}"
            )
        k = await self.store.case_of_ticket(ticket_id)
        if k is None:
            raise NotFound("no_case", "该号票没有差评工单", f"ticket {ticket_id} has no 差评 case")
        if windows is not None and k.window not in windows:
            raise Forbidden(
                "wrong_window",
                f"{k.number}号不是在本窗口评价的",
                f"ticket {k.number} was not rated at this pad's window",
            )
        if k.reasons:
            raise Conflict("reason_given", "已选择过原因", "the reason was already given")
        k = dataclasses.replace(k, reasons=tuple(dict.fromkeys(reasons)))
        await self.store.save_case(k)
        self._publish(k, "reason")
        return k

    async def act(self, case_id: int, action: str, by: str, note: str, token: int | None) -> CaseRow:
        """``note`` (any open case), ``verify`` (核实: open → verified), ``close`` (整改完毕: → closed)."""
        k = await self.get(case_id)
        if k.state == "closed":
            raise Conflict("case_closed", f"工单{case_id}已办结", f"case {case_id} is already closed")
        now = self.clock()
        notes = (*k.notes, CaseNote(now, by, note, token)) if note else k.notes
        if action == "verify":
            if k.state != "open":
                raise Conflict("case_verified", f"工单{case_id}已核实", f"case {case_id} is already verified")
            k = dataclasses.replace(k, state="verified", verified_at=now, verified_by=by, notes=notes)
        elif action == "close":
            k = dataclasses.replace(k, state="closed", closed_at=now, closed_by=by, closed_token=token, notes=notes)
        else:
            k = dataclasses.replace(k, notes=notes)
        await self.store.save_case(k)
        self._publish(k, {"verify": "verified", "close": "closed"}.get(action, "note"))
        return k

    async def check_overdue(self) -> list[CaseRow]:
        """Flag each unclosed case past its due day once, with a ``case_overdue`` alert."""
        today = self.today()
        flagged: list[CaseRow] = []
        for k in await self.store.cases(states=("open", "verified"), limit=10_000):
            if k.overdue_alerted or not is_overdue(k, today):
                continue
            k = dataclasses.replace(k, overdue_alerted=True)
            await self.store.save_case(k)
            flagged.append(k)
            self._publish(k, "overdue")
            self.bus.publish(
                ev.Alert(
                    at=self.clock(),
                    alert="case_overdue",
                    severity="warning",
                    message=f"差评工单{k.id}（{k.number}，{k.window}号窗口）已超过办理期限{k.due_day.isoformat()}",
                    message_en=f"差评 case {k.id} ({k.number}, window {k.window}) is past its due day {k.due_day}",
                    subject=f"case {k.id}",
                    data={"case": k.id, "number": k.number, "window": k.window, "due_day": k.due_day.isoformat()},
                    window=k.window,
                )
            )
        return flagged
