"""The commands' argument models: one pydantic model per shape, unknown fields refused."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from hallctl.config import ClimateMode


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


# An evaluation's reasons: a few short tags from the pad page ("等候时间长"), never free text of any length.
Reason = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Reasons = Annotated[tuple[Reason, ...], Field(max_length=8)]


class IssueArgs(Args):
    category: str = Field(min_length=1, max_length=3)
    priority: Literal["green", "normal"] | None = None
    # One of ``[guide] green_reasons`` (checked against the config by the command).
    priority_reason: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    offer: str | None = Field(default=None, max_length=64)
    kiosk: str | None = Field(default=None, max_length=32)


class WindowArgs(Args):
    window: int = Field(ge=1, le=9999)  # always a path/topic parameter (a string there): lax


class CallArgs(WindowArgs):
    number: str = Field(min_length=2, max_length=32)
    # Call a ticket of another window's categories or transfers: admin only, logged with who.
    override: bool = Field(default=False, strict=True)


class TransferArgs(WindowArgs):
    to_category: str | None = Field(default=None, min_length=1, max_length=3)
    to_window: int | None = Field(default=None, ge=1, le=9999, strict=True)
    # For the receiving window (what is done, what is missing); shown in its queue list, not to visitors.
    note: str | None = Field(default=None, max_length=200)


class SignInArgs(WindowArgs):
    staff: str = Field(min_length=1, max_length=32)


class EvaluateArgs(WindowArgs):
    level: int = Field(ge=1, le=5, strict=True)
    ticket_id: str | None = Field(default=None, max_length=64)
    reasons: Reasons = ()


class TicketArgs(Args):
    ticket_id: str = Field(min_length=1, max_length=64)


class ReprintArgs(TicketArgs):
    kiosk: str | None = Field(default=None, max_length=32)


class TicketEvaluateArgs(TicketArgs):
    level: int = Field(ge=1, le=5, strict=True)
    reasons: Reasons = ()


class QrArgs(Args):
    code: str = Field(min_length=1, max_length=256)


# Digits only, so a kiosk's numeric keypad can type it; 6..12 digits (8 when the hall draws it).
AppointmentCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6,12}$")]


class BookArgs(Args):
    category: str = Field(min_length=1, max_length=3)
    slot_start: AwareDatetime
    slot_end: AwareDatetime | None = None  # slot_start + [appointments] slot_minutes when left out
    code: AppointmentCode | None = None
    # Who booked (optional): kept as masked name and keyed hash, so the same card can check in.
    name: str | None = Field(default=None, min_length=1, max_length=64)
    id_number: str | None = Field(default=None, pattern=r"^[0-9A-Za-z]{6,32}$")


class AppointmentArgs(Args):
    code: str = Field(min_length=1, max_length=64)


class CheckInArgs(AppointmentArgs):
    kiosk: str | None = Field(default=None, max_length=32)


class RescheduleArgs(AppointmentArgs):
    slot_start: AwareDatetime
    slot_end: AwareDatetime | None = None


class SlotsArgs(Args):
    category: str = Field(min_length=1, max_length=3)
    day: date


class AppointmentListArgs(Args):
    pass


class FindCheckInArgs(Args):
    """Check in without typing the code: the ID card that booked, or the booking's QR."""

    id_number: str | None = Field(default=None, pattern=r"^[0-9A-Za-z]{6,32}$")
    qr: str | None = Field(default=None, min_length=1, max_length=256)
    kiosk: str | None = Field(default=None, max_length=32)

    @model_validator(mode="after")
    def _one(self) -> FindCheckInArgs:
        if (self.id_number is None) == (self.qr is None):
            raise ValueError("give 'id_number' or 'qr' (one of them)")
        return self


class DisplayArgs(Args):
    display: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=64)
    seconds: float | None = Field(default=None, gt=0, le=3600, allow_inf_nan=False, strict=True)


class ClimateArgs(Args):
    zone: str = Field(min_length=1, max_length=32)
    mode: ClimateMode | None = None
    target: float | None = Field(default=None, ge=-50, le=100, allow_inf_nan=False, strict=True)
    # An override that expires: for ``minutes`` (0 ends the present override) or ``until`` a moment.
    minutes: float | None = Field(default=None, ge=0, le=7 * 24 * 60, allow_inf_nan=False, strict=True)
    until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_expiry(self) -> ClimateArgs:
        if self.minutes is not None and self.until is not None:
            raise ValueError("give 'minutes' or 'until', not both")
        return self
