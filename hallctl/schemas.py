"""The typed shapes of the answers, for the OpenAPI and AsyncAPI documents.

The handlers build plain dicts (``hallctl.views``, the events' ``to_dict``); these models
describe them so that generated clients and schemathesis can check every answer. Events
are used as they are (pydantic reads the dataclasses), so a field added to an event shows
in the document without an edit here. ``tests/core/test_openapi_models.py`` validates real
answers against these models. Both transports use them (HTTP answers, MQTT replies), so
they live beside the command table rather than in either transport's package.

Errors: every error is ``application/problem+json`` (:class:`Problem`); which ``code``
values an operation can answer is listed per status in the document (``x-codes``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hallctl import events as ev


class Model(BaseModel):
    # Answers may grow fields (documented in docs/api.md); clients must ignore unknown ones.
    model_config = ConfigDict(extra="allow")


class ProblemError(Model):
    loc: list[str | int]
    msg: str
    type: str


class Problem(Model):
    """RFC 9457 problem details with hallctl's stable ``code``."""

    type: str = Field(description="`/problems/<code>`")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="Message in Chinese (or the only message)")
    detail_en: str | None = Field(default=None, description="English message when it differs")
    code: str = Field(description="Stable snake_case error code; the values per status are in `x-codes`")
    errors: list[ProblemError] | None = Field(default=None, description="Validation errors (invalid_arguments)")


class Ticket(Model):
    id: str
    number: str
    category: str
    day: str
    state: Literal["waiting", "called", "serving", "done", "no_show", "cancelled", "transferred"]
    priority: str
    priority_reason: str | None
    channel: str
    issued_at: str
    called_at: str | None
    serving_at: str | None
    finished_at: str | None
    window: int | None
    staff: str | None
    recalls: int
    holder: str | None = Field(description="Masked name")
    kiosk: str | None
    origin_id: str | None
    target_window: int | None
    appointment_code: str | None
    end_reason: str | None
    print_failed: bool = Field(description="The kiosk's printer did not print it (reprint clears it)")
    waiting_ahead: int | None = None
    position: int | None = None
    estimated_wait_s: float | None = None
    qr: str | None = None


class TicketDetail(Ticket):
    events: list[dict[str, Any]] | None = Field(default=None, description="The ticket's event log (admin only)")


class TicketResult(Model):
    """A window action's answer: the ticket it touched (null when there was none)."""

    ticket: Ticket | None


class ReprintResult(Model):
    ticket: Ticket
    queued: bool


class Holder(Model):
    name: str | None
    id_number: str | None
    sex: str | None = None
    birth: str | None = None
    nation: str | None = None
    address: str | None = None
    card_type: str | None = None
    authority: str | None = None
    valid_to: str | None = None


class ByQrResult(Model):
    ticket: Ticket
    holder: Holder | None = Field(description="Full over HTTP for a window/admin token; masked over MQTT")


class WindowResult(Model):
    window: ev.WindowState


class Evaluation(Model):
    ticket_id: str | None
    level: int = Field(ge=1, le=5)
    window: int
    staff: str | None
    at: str


class EvaluationResult(Model):
    evaluation: Evaluation


class Appointment(Model):
    code: str = Field(description="digits only (6-12), so a kiosk keypad can type it")
    category: str
    slot_start: str
    slot_end: str
    state: Literal["booked", "checked_in", "cancelled"]
    holder: str | None = Field(default=None, description="masked name of who booked (张*), if given")
    ticket_id: str | None = Field(default=None, description="the ticket of its check-in")
    qr: str | None = Field(default=None, description="book/reschedule only: the booking's QR token")


class AppointmentList(Model):
    appointments: list[Appointment]


class Slot(Model):
    start: str
    end: str
    capacity: int
    booked: int
    free: int


class Slots(Model):
    category: str
    day: str
    day_kind: Literal["workday", "weekend", "holiday", "makeup", "open", "closed", "unknown"]
    holiday: str | None
    holiday_zh: str | None
    slots: list[Slot]


class DisplayResult(Model):
    display: str
    text: str


class ClimateResult(Model):
    climate: ev.ClimateState


class HelpResult(Model):
    alert: ev.Alert


class Replay(Model):
    from_seq: int
    to_seq: int  # at most ``[city] replay_max`` rows after from_seq
    first_seq: int  # the event log's first row still held (0: empty); rows below are gone
    last_seq: int


class ReplayResult(Model):
    replay: Replay


# Answers of the command table's routes, by command name (the route answers ``result[route.body]``
# when the route names a body). A test checks every command has one.
# ---- supervision (hallctl/commands/supervision.py) ----------------------------------------------


class AlertRecord(Model):
    id: int
    alert: str = Field(description="the kind: wait_exceeded, service_overrun, window_paused, device_fault, ...")
    kind: str
    subject: str = Field(description="the category, window, device, zone, sensor or case it is about")
    window: int | None
    severity: str
    message: str
    message_en: str
    data: dict[str, Any]
    state: Literal["open", "acknowledged", "resolved"]
    level: int = Field(description="escalation level: 0 when raised")
    opened_at: str
    escalated_at: str | None
    acked_at: str | None
    acked_by: str | None
    acked_token: int | None
    ack_note: str | None
    resolved_at: str | None
    resolved_by: str | None
    resolved_token: int | None
    resolve_note: str | None


class AlertList(Model):
    alerts: list[AlertRecord]


class AlertResult(Model):
    alert: AlertRecord


class CaseNoteView(Model):
    at: str
    by: str | None = Field(description="null over MQTT")
    note: str | None = Field(description="null over MQTT")


class CaseRecord(Model):
    id: int
    ticket_id: str
    number: str
    window: int
    staff: str | None
    level: int
    reasons: list[str]
    opened_at: str
    due_day: str = Field(description="the last working day to close it (hall calendar)")
    state: Literal["open", "verified", "closed"]
    notes: list[CaseNoteView]
    verified_at: str | None
    verified_by: str | None
    closed_at: str | None
    closed_by: str | None
    closed_token: int | None
    overdue_alerted: bool
    overdue: bool


class CaseList(Model):
    cases: list[CaseRecord]
    today: str


class CaseResult(Model):
    case: CaseRecord


class ReasonCase(Model):
    id: int
    number: str
    reasons: list[str]
    due_day: str


class ReasonResult(Model):
    case: ReasonCase


COMMAND_RESPONSES: dict[str, type[BaseModel]] = {
    "ticket.issue": Ticket,
    "ticket.cancel": Ticket,
    "ticket.reprint": ReprintResult,
    "ticket.evaluate": EvaluationResult,
    "ticket.by_qr": ByQrResult,
    "window.call_next": TicketResult,
    "window.recall": TicketResult,
    "window.start": TicketResult,
    "window.finish": TicketResult,
    "window.no_show": TicketResult,
    "window.request_evaluation": TicketResult,
    "window.call": TicketResult,
    "window.transfer": TicketResult,
    "window.pause": WindowResult,
    "window.resume": WindowResult,
    "window.sign_in": WindowResult,
    "window.sign_out": WindowResult,
    "window.evaluate": EvaluationResult,
    "appointment.book": Appointment,
    "appointment.cancel": Appointment,
    "appointment.check_in": Ticket,
    "appointment.check_in_by": Ticket,
    "appointment.list": AppointmentList,
    "appointment.slots": Slots,
    "appointment.reschedule": Appointment,
    "display.show": DisplayResult,
    "climate.set": ClimateResult,
    "kiosk.help": HelpResult,
    "city.replay": ReplayResult,
    "alert.list": AlertList,
    "alert.ack": AlertResult,
    "alert.resolve": AlertResult,
    "case.list": CaseList,
    "case.act": CaseResult,
    "evaluation.reason": ReasonResult,
}


# ---- the reading routes ------------------------------------------------------------------------


class Category(Model):
    prefix: str
    name: str
    name_en: str | None
    hours: list[Any]
    open: bool
    waiting: int
    avg_wait_s: float | None
    target_wait_minutes: int
    description: str | None


class Window(Model):
    at: str
    window: int
    name: str
    state: str
    ticket: str | None
    staff: str | None
    staff_name: str | None
    categories: list[str]
    floor: int | str | None = None


class Device(Model):
    at: str
    device: str
    device_kind: str
    state: str
    detail: str = Field(description="the driver's own words, English (paper_out, no status reply, ...)")
    since: str
    detail_zh: str = Field(default="", description="the detail in Chinese for the pages (as is when untranslated)")


class Kiosk(Model):
    id: str
    floor: int | str | None
    categories: list[str]
    hall: str
    hall_en: str | None
    printer: Device | None
    reader: Device | None


class WindowTicket(Ticket):
    """A ticket as the window terminal sees it: transfer origin and note, clocks against the limits."""

    from_window: int | None = Field(description="A transfer follow-up: the window that sent it")
    transfer_note: str | None = Field(description="A transfer follow-up: the sending clerk's note (staff only)")
    wait_s: int | None = Field(description="Waited so far (waiting) or until the first call")
    target_wait_s: int | None = Field(description="The category's target_wait_minutes in seconds")
    wait_over: bool = Field(description="wait_s is past the target")
    service_s: int | None = Field(description="A ticket being served: seconds since start")
    service_limit_s: int | None = Field(description="The category's service_minutes in seconds")
    service_over: bool = Field(description="service_s is past the limit")


class WindowQueue(Model):
    window: ev.WindowState
    current: WindowTicket | None = Field(description="The ticket called or served at the window now")
    waiting: list[WindowTicket]
    served_today: int
    history: list[Ticket]


class Summary(Model):
    issued: int
    called: int
    done: int
    no_show: int
    no_show_rate: float | None
    avg_wait_s: float | None
    p50_wait_s: float | None
    p90_wait_s: float | None
    avg_service_s: float | None
    service_level: float | None
    evaluations: int
    unrated: int
    satisfaction: float | None
    bad_evaluations: int


class Stats(Model):
    day: str
    hall: str
    total: Summary
    green_channel: dict[str, int] = Field(
        default_factory=dict,
        description="green-channel (绿色通道) tickets by reason (elderly, disabled, ... from [guide] green_reasons)",
    )
    by_category: dict[str, Summary]
    by_window: dict[str, Summary]
    by_staff: dict[str, Summary]
    by_hour: dict[str, Summary]


class ClimateEnergyDay(Model):
    """One zone's energy and comfort of one business day (``GET /climate/energy``)."""

    zone: str
    day: str
    kwh: float = Field(description="estimated: rated input power × part load while running")
    run_hours: dict[str, float] = Field(description="hours with a unit running, by mode (cool, heat, dry, fan_only)")
    open_hours: float = Field(description="opening hours with a known zone temperature")
    in_band_hours: float
    share_in_band: float | None = Field(description="in_band_hours / open_hours; null before any")
    degree_hours: float = Field(description="K·h outside the comfort band during opening hours")


class LiveStats(Model):
    day: str
    issued: int
    waiting: int
    serving: int
    done: int
    no_show: int
    avg_wait_s: float | None
    p90_wait_s: float | None
    categories: list[ev.QueueState]
    windows: list[ev.WindowState]
    alerts: list[ev.Alert]
    sensors: list[ev.SensorState]
    climate: list[ev.ClimateState]
    stats: Summary


class Reading(Model):
    """A sensor's minute: ``at`` is its start, ``temperature``/``humidity`` its averages."""

    sensor: str
    at: str
    count: int
    temperature: float | None
    temperature_min: float | None
    temperature_max: float | None
    temperature_last: float | None
    humidity: float | None
    humidity_min: float | None
    humidity_max: float | None
    humidity_last: float | None


class Call(Model):
    """A recent call, as its ``ticket_called`` event said it."""

    at: str
    ticket_id: str
    number: str
    category: str
    window: int
    window_name: str
    recall: int
    announcement: str
    announcement_en: str
    spoken: str = Field(description="the caption as the voice says it, numbers in words: 请A零零八号到三号窗口办理")


class Health(Model):
    """States for anyone; details (version, store errors, device details, bus) for an admin token only."""

    status: Literal["ok", "degraded"]
    hall: str
    day: str
    store: dict[str, Any]
    devices: dict[str, dict[str, Any]]
    version: str | None = None
    uptime_s: float | None = None
    bus: dict[str, Any] | None = None
