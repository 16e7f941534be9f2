"""Appointment commands: slots, book, list, reschedule, cancel, check in (by code, card or QR)."""

from __future__ import annotations

from typing import Any

from hallctl.commands.args import (
    AppointmentArgs,
    AppointmentListArgs,
    BookArgs,
    CheckInArgs,
    FindCheckInArgs,
    RescheduleArgs,
    SlotsArgs,
)
from hallctl.commands.table import MQTT, Call, HttpRoute, command
from hallctl.commands.tickets import appointment_view, issued_view
from hallctl.context import HallContext
from hallctl.engine import Holder
from hallctl.errors import Refused

# The refusals of a slot (engine.appointments._slot_for), for the OpenAPI document.
SLOT_REFUSALS = (
    "bad_slot",
    "outside_hours",
    "closed_day",
    "calendar_no_data",
    "slot_passed",
    "too_far_ahead",
    "appointments_not_offered",
)


def no_id_over_mqtt(c: Call, id_number: str | None) -> None:
    """An ID number is not sent through the broker (other clients read ``hallctl/#``): HTTP only."""
    if id_number is not None and c.transport == MQTT:
        raise Refused(
            "personal_data_over_mqtt",
            "身份证号不能通过MQTT发送，请使用HTTP接口",
            "an ID number is not accepted over MQTT (other clients read the broker); use HTTP",
        )


def booked_view(ctx: HallContext, a: Any) -> dict[str, Any]:
    """A booking as its maker gets it: with the QR a kiosk or guide scans to check in."""
    return {**appointment_view(a), "qr": ctx.service.appointment_qr(a)}


@command(
    "appointment.slots",
    SlotsArgs,
    ("guide", "kiosk"),
    http=HttpRoute("GET", "/appointments/slots/{category}/{day}", errors={404: ("unknown_category",)}),
    mqtt="appointment/slots/{category}/{day}",
)
async def _slots(ctx: HallContext, a: SlotsArgs, c: Call) -> dict[str, Any]:
    svc = ctx.service
    info = svc.day_info(a.day)
    return {
        "category": a.category,
        "day": a.day.isoformat(),
        "day_kind": info.kind,
        "holiday": info.holiday,
        "holiday_zh": info.holiday_zh,
        "slots": [
            {"start": s.isoformat(), "end": e.isoformat(), "capacity": cap, "booked": n, "free": max(0, cap - n)}
            for s, e, cap, n in svc.slots(a.category, a.day)
        ]
        if info.kind != "unknown"
        else [],
    }


@command(
    "appointment.book",
    BookArgs,
    ("guide",),
    http=HttpRoute(
        "POST",
        "/appointments",
        201,
        body="appointment",
        idempotency=True,
        errors={
            404: ("unknown_category",),
            409: ("appointment_exists", "slot_full", "already_booked"),
            422: (*SLOT_REFUSALS, "bad_idempotency_key", "personal_data_over_mqtt"),
        },
    ),
    mqtt="appointment/book",
)
async def _book(ctx: HallContext, a: BookArgs, c: Call) -> dict[str, Any]:
    p = c.principal
    no_id_over_mqtt(c, a.id_number)
    key = c.idempotency_key
    if key is not None and not (1 <= len(key) <= 128):
        raise Refused("bad_idempotency_key", "请求标识须为1至128个字符", "Idempotency-Key must be 1..128 characters")
    holder = Holder(name=a.name or "", id_number=a.id_number) if a.id_number else None
    appt, replayed = await ctx.service.book(
        a.category,
        a.slot_start,
        a.slot_end,
        holder=holder,
        code=a.code,
        idempotency_key=f"{p.token_id}:appointment:{key}" if key is not None else None,
        render=appointment_view,
    )
    c.replayed = replayed
    return {"appointment": booked_view(ctx, appt)}


@command(
    "appointment.list",
    AppointmentListArgs,
    ("guide",),
    http=HttpRoute("GET", "/appointments"),
    mqtt="appointment/list",
)
async def _list(ctx: HallContext, a: AppointmentListArgs, c: Call) -> dict[str, Any]:
    return {"appointments": [appointment_view(x) for x in ctx.service.appointments()]}


@command(
    "appointment.reschedule",
    RescheduleArgs,
    ("guide",),
    http=HttpRoute(
        "POST",
        "/appointments/{code}/reschedule",
        body="appointment",
        errors={404: ("unknown_appointment",), 409: ("appointment_used", "slot_full"), 422: SLOT_REFUSALS},
    ),
    mqtt="appointment/{code}/reschedule",
)
async def _reschedule(ctx: HallContext, a: RescheduleArgs, c: Call) -> dict[str, Any]:
    appt = await ctx.service.reschedule(a.code, a.slot_start, a.slot_end)
    return {"appointment": booked_view(ctx, appt)}


@command(
    "appointment.cancel",
    AppointmentArgs,
    ("guide",),
    http=HttpRoute(
        "POST",
        "/appointments/{code}/cancel",
        body="appointment",
        errors={404: ("unknown_appointment",), 409: ("appointment_used",)},
    ),
    mqtt="appointment/{code}/cancel",
)
async def _cancel_appointment(ctx: HallContext, a: AppointmentArgs, c: Call) -> dict[str, Any]:
    return {"appointment": appointment_view(await ctx.service.cancel_appointment(a.code))}


CHECK_IN_ERRORS = {
    404: ("unknown_appointment", "unknown_category", "unknown_kiosk", "no_appointment_for_card"),
    409: ("appointment_used",),
    422: (
        "appointment_too_early",
        "category_closed",
        "bad_qr_token",
        "expired_qr_token",
        "not_an_appointment_qr",
        "personal_data_over_mqtt",
    ),
}


@command(
    "appointment.check_in",
    CheckInArgs,
    ("kiosk", "guide"),
    http=HttpRoute("POST", "/appointments/{code}/check-in", 201, body="ticket", errors=CHECK_IN_ERRORS),
    mqtt="appointment/{code}/check_in",
)
async def _check_in(ctx: HallContext, a: CheckInArgs, c: Call) -> dict[str, Any]:
    svc = ctx.service
    return {"ticket": issued_view(svc, await svc.check_in(a.code, a.kiosk))}


@command(
    "appointment.check_in_by",
    FindCheckInArgs,
    ("kiosk", "guide"),
    http=HttpRoute("POST", "/appointments/check-in", 201, body="ticket", errors=CHECK_IN_ERRORS),
    mqtt="appointment/check_in",
)
async def _check_in_by(ctx: HallContext, a: FindCheckInArgs, c: Call) -> dict[str, Any]:
    """By the ID card that booked (its keyed hash), or by the booking's QR: no code to type."""
    svc = ctx.service
    no_id_over_mqtt(c, a.id_number)
    code = svc.code_for_card(a.id_number) if a.id_number is not None else svc.code_for_qr(a.qr or "")
    out = await svc.check_in(code, a.kiosk)
    return {"ticket": {**issued_view(svc, out), "appointment_code": code}}
