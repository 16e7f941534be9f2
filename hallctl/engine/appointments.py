"""The engine's appointment decisions: slots and their capacity, booking, rescheduling, cancelling, check-in."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta

from hallctl.config import CategoryConfig, Config
from hallctl.engine import calendar
from hallctl.engine.decisions import Signer, category_config, finish_issue, new_ticket
from hallctl.engine.model import (
    Appointment,
    Decision,
    LogRow,
)
from hallctl.engine.queue import HallQueue
from hallctl.errors import Conflict, NotFound, Refused

BOOKED = ("booked", "checked_in")  # the states that hold a place in their slot


def _slot_for(
    q: HallQueue,
    cfg: Config,
    cat: CategoryConfig,
    slot_start: datetime,
    slot_end: datetime | None,
    now: datetime,
    *,
    moving: str | None = None,
) -> datetime:
    """Check that ``slot_start`` is one of ``cat``'s free slots; return the slot's end.

    ``moving`` (a code being rescheduled) does not count against the capacity of its own slot.
    """
    cap = calendar.capacity(cfg, cat)
    name_en = cat.name_en or cat.prefix
    if cap == 0:
        raise Refused("appointments_not_offered", f"{cat.name}不提供预约", f"{name_en} cannot be booked in advance")
    local = slot_start.astimezone(cfg.hall.tz)
    info = calendar.day_info(cfg, local.date())
    day = f"{local:%Y-%m-%d}"
    if info.kind == "unknown":
        raise Refused(
            "calendar_no_data",
            f"{local.year}年的节假日安排尚未发布，暂不能预约{day}",
            f"the holidays of {local.year} are not known yet (calendar data ends before it); {day} cannot be booked",
        )
    slot = next(((s, e) for s, e in calendar.slots(cfg, cat, local.date()) if s == local), None)
    if slot is None:
        if calendar.hours_weekday(cfg, cat, info) is None or not calendar.intervals(cfg, cat, local.date()):
            why = f"{info.holiday_zh}放假" if info.kind == "holiday" else "不办公"
            why_en = f"a public holiday ({info.holiday})" if info.kind == "holiday" else "a day the hall is closed"
            raise Refused(
                "closed_day", f"{day}{why}，{cat.name}不能预约", f"{day} is {why_en}: {name_en} cannot be booked"
            )
        raise Refused(
            "outside_hours",
            f"{local:%m-%d %H:%M}不是{cat.name}的预约时段，请在办公时间内选择时段",
            f"{local:%Y-%m-%d %H:%M} is not a slot of {name_en}; choose a slot within opening hours",
        )
    if slot_end is not None and slot_end != slot[1]:
        raise Refused(
            "bad_slot",
            f"时段应为{cfg.appointments.slot_minutes}分钟",
            f"slot_end must be slot_start + {cfg.appointments.slot_minutes} minutes (or left out)",
        )
    if slot[1] <= now:
        raise Refused("slot_passed", "该时段已过，请选择其他时段", "this slot is over; choose a later one")
    if (local.date() - now.astimezone(cfg.hall.tz).date()).days > cfg.appointments.max_days_ahead:
        n = cfg.appointments.max_days_ahead
        raise Refused("too_far_ahead", f"最多可预约{n}天内的时段", f"slots can be booked at most {n} days ahead")
    taken = sum(
        1
        for a in q.appointments.values()
        if a.category == cat.prefix and a.slot_start == slot_start and a.state in BOOKED and a.code != moving
    )
    if taken >= cap:
        raise Conflict("slot_full", f"{local:%H:%M}时段已约满，请选择其他时段", f"the {local:%H:%M} slot is full")
    return slot[1]


def slot_counts(q: HallQueue, cfg: Config, cat: CategoryConfig, day: date) -> list[tuple[datetime, datetime, int, int]]:
    """The day's slots of ``cat`` with (start, end, capacity, booked)."""
    cap = calendar.capacity(cfg, cat)
    booked: dict[datetime, int] = {}
    for a in q.appointments.values():
        if a.category == cat.prefix and a.state in BOOKED:
            booked[a.slot_start] = booked.get(a.slot_start, 0) + 1
    return [(s, e, cap, booked.get(s, 0)) for s, e in calendar.slots(cfg, cat, day)]


def book(
    q: HallQueue,
    cfg: Config,
    code: str,
    category: str,
    slot_start: datetime,
    slot_end: datetime | None,
    now: datetime,
    holder_masked: str | None = None,
    id_hash: str | None = None,
) -> Decision:
    """Book a slot: inside the category's hours on a working day of the calendar, while it has room.

    One booking per ID card per category and day (the same person booking twice holds two
    places another visitor could use).
    """
    cat = category_config(cfg, category)
    if code in q.appointments:
        raise Conflict("appointment_exists", f"预约号{code}已存在", f"appointment {code} exists")
    end = _slot_for(q, cfg, cat, slot_start, slot_end, now)
    if id_hash is not None:
        day = slot_start.astimezone(cfg.hall.tz).date()
        for other in q.appointments.values():
            if (
                other.id_hash == id_hash
                and other.category == cat.prefix
                and other.state == "booked"
                and other.slot_start.astimezone(cfg.hall.tz).date() == day
            ):
                raise Conflict(
                    "already_booked",
                    f"该证件当天已预约{cat.name}（预约号{other.code}）",
                    f"this ID card already has a booking for {cat.name_en or cat.prefix} that day ({other.code})",
                )
    d = Decision(at=now)
    a = Appointment(code, category, slot_start, end, holder_masked, id_hash)
    d.appointments.append(a)
    d.log.append(
        LogRow("appointment_booked", None, None, {"code": code, "category": category, "slot": slot_start.isoformat()})
    )
    d.result = a
    return d


def reschedule(
    q: HallQueue, cfg: Config, code: str, slot_start: datetime, slot_end: datetime | None, now: datetime
) -> Decision:
    """Move a booked appointment to another slot; its old slot's place is free again at once."""
    a = _booked(q, code)
    cat = category_config(cfg, a.category)
    end = _slot_for(q, cfg, cat, slot_start, slot_end, now, moving=code)
    d = Decision(at=now)
    moved = dataclasses.replace(a, slot_start=slot_start, slot_end=end)
    d.appointments.append(moved)
    d.log.append(
        LogRow(
            "appointment_rescheduled",
            None,
            None,
            {"code": code, "category": a.category, "from": a.slot_start.isoformat(), "to": slot_start.isoformat()},
        )
    )
    d.result = moved
    return d


def _booked(q: HallQueue, code: str) -> Appointment:
    a = q.appointments.get(code)
    if a is None:
        raise NotFound("unknown_appointment", f"没有预约号{code}", f"no appointment {code}")
    if a.state != "booked":
        state = {"checked_in": "已签到", "cancelled": "已取消"}.get(a.state, a.state)
        state_en = {"checked_in": "checked in", "cancelled": "cancelled"}.get(a.state, a.state)
        raise Conflict("appointment_used", f"预约{code}{state}", f"appointment {code} is {state_en}")
    return a


def find_for_card(q: HallQueue, cfg: Config, id_hash: str, now: datetime) -> Appointment:
    """The booked appointment of this ID card that can be checked in now (the nearest slot today)."""
    today = now.astimezone(cfg.hall.tz).date()
    mine = [
        a
        for a in q.appointments.values()
        if a.id_hash == id_hash and a.state == "booked" and a.slot_start.astimezone(cfg.hall.tz).date() == today
    ]
    if not mine:
        raise NotFound("no_appointment_for_card", "该证件今天没有预约", "this ID card has no booking today")
    return min(mine, key=lambda a: abs((a.slot_start - now).total_seconds()))


def cancel_appointment(q: HallQueue, cfg: Config, code: str, now: datetime) -> Decision:
    """A booked appointment is called off: it becomes ``cancelled`` and can no longer be checked in."""
    a = _booked(q, code)
    d = Decision(at=now)
    cancelled = dataclasses.replace(a, state="cancelled")
    d.appointments.append(cancelled)
    d.log.append(LogRow("appointment_cancelled", None, None, {"code": code, "category": a.category}))
    d.result = cancelled
    return d


def check_in(
    q: HallQueue, cfg: Config, code: str, now: datetime, kiosk: str | None = None, sign: Signer | None = None
) -> Decision:
    """Turn an appointment into a ticket; within its limits it keeps its slot's place."""
    a = _booked(q, code)
    early = a.slot_start - timedelta(minutes=cfg.queue.appointment_early_minutes)
    late = a.slot_start + timedelta(minutes=cfg.queue.appointment_late_minutes)
    if now < early:
        local = early.astimezone(cfg.hall.tz)
        raise Refused("appointment_too_early", f"预约签到最早在{local:%H:%M}", f"check-in opens at {local:%H:%M}")
    cat = category_config(cfg, a.category)
    on_time = now <= late
    d = Decision(at=now)
    t = new_ticket(
        q,
        cfg,
        d,
        cat,
        now,
        priority="appointment" if on_time else "normal",
        priority_reason=None if on_time else "late_appointment",
        channel="appointment",
        kiosk=kiosk,
        appointment_slot=a.slot_start,
        appointment_code=code,
        holder_masked=a.holder_masked,
        id_hash=a.id_hash,
    )
    d.appointments.append(dataclasses.replace(a, state="checked_in", ticket_id=t.id))
    return finish_issue(q, cfg, d, t, None, sign)
