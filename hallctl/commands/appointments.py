"""Appointment commands: book, cancel, check in."""

from __future__ import annotations

from typing import Any

from hallctl.commands.args import AppointmentArgs, BookArgs, CheckInArgs
from hallctl.commands.table import Call, HttpRoute, command
from hallctl.commands.tickets import appointment_view, issued_view
from hallctl.context import HallContext

# ---- appointments -----------------------------------------------------------------------------


@command(
    "appointment.book",
    BookArgs,
    ("guide",),
    http=HttpRoute(
        "POST",
        "/appointments",
        201,
        body="appointment",
        errors={404: ("unknown_category",), 409: ("appointment_exists",), 422: ("bad_slot",)},
    ),
    mqtt="appointment/book",
)
async def _book(ctx: HallContext, a: BookArgs, c: Call) -> dict[str, Any]:
    appt = await ctx.service.book(a.category, a.slot_start, a.slot_end, code=a.code)
    return {"appointment": appointment_view(appt)}


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


@command(
    "appointment.check_in",
    CheckInArgs,
    ("kiosk", "guide"),
    http=HttpRoute(
        "POST",
        "/appointments/{code}/check-in",
        201,
        body="ticket",
        errors={
            404: ("unknown_appointment", "unknown_category", "unknown_kiosk"),
            409: ("appointment_used",),
            422: ("appointment_too_early", "category_closed"),
        },
    ),
    mqtt="appointment/{code}/check_in",
)
async def _check_in(ctx: HallContext, a: CheckInArgs, c: Call) -> dict[str, Any]:
    svc = ctx.service
    return {"ticket": issued_view(svc, await svc.check_in(a.code, a.kiosk))}
