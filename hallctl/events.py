"""Typed facts the hall publishes once they are durable.

Each event is a frozen dataclass named as a past fact, with a ``wire_name`` that
is its MQTT event topic (``hallctl/<hall>/event/<wire_name>``) and its SSE event
name. Events carry masked personal data only: the bus feeds MQTT, screens and
logs, none of which may see a full name or ID number.
"""

from __future__ import annotations

import collections
import dataclasses
from datetime import datetime
from typing import Any, ClassVar

from hallctl import jsontext

# Retained state events map to state topics rather than event topics; the MQTT
# bridge and the SSE stream read ``kind`` to tell them apart.
STATE = "state"
EVENT = "event"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    wire_name: ClassVar[str] = "event"
    kind: ClassVar[str] = EVENT
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        """A fresh dict of the fields (the caller may change it)."""
        return {name: _jsonable(getattr(self, name)) for name in _field_names(type(self)) or ()}

    def wire_dict(self) -> dict[str, Any]:
        """The fields as JSON values, computed once per event; shared, so never change it."""
        return _wire(self).data

    def wire_json(self) -> str:
        """:meth:`wire_dict` as compact JSON text (UTF-8 kept as is), computed once per event.

        The one serialisation the sinks share: the SSE ``data:`` line, the WebSocket's
        ``data`` member and the MQTT payload of every event MQTT does not strip.
        """
        w = _wire(self)
        if w.text is None:
            w.text = jsontext.dumps(w.data)
        return w.text


@dataclasses.dataclass(slots=True)
class _Wire:
    event: Event  # kept so the id is not reused while the entry lives
    data: dict[str, Any]
    text: str | None = None


# An event is published once and read by several sinks (MQTT, SSE, WebSocket) one after
# another, so its wire forms are kept for the most recent events only: the cache is not a
# field of the (frozen, slotted, schema-generating) dataclasses, and a sink that lags by
# more than this many events just serialises again. The oldest entry is found in
# ``_wire_order``: ``next(iter(_wire_cache))`` walked over the holes that the entries taken
# out before it left at the dict's front, hundreds per event (issue 12's profiles: that one
# line was 0.6-0.9 % of the event loop's samples).
WIRE_CACHE_SIZE = 1024
_wire_cache: dict[int, _Wire] = {}
_wire_order: collections.deque[int] = collections.deque()


def _wire(event: Event) -> _Wire:
    key = id(event)
    w = _wire_cache.get(key)
    if w is not None and w.event is event:
        return w
    w = _Wire(event, event.to_dict())
    _wire_cache[key] = w
    _wire_order.append(key)
    if len(_wire_order) > WIRE_CACHE_SIZE:
        _wire_cache.pop(_wire_order.popleft(), None)
    return w


# Every event is serialised once per publish, field by field: the plain values (most of them)
# return at the first test, and a dataclass's field names are looked up once per class, not
# rebuilt by ``dataclasses.fields`` for every value (issue 12's profile of a call).
_PLAIN = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}


def _field_names(cls: type) -> tuple[str, ...] | None:
    """The field names of a dataclass ``cls`` in order, or None for any other class (cached per class)."""
    try:
        return _FIELD_NAMES[cls]
    except KeyError:
        names = tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else None
        _FIELD_NAMES[cls] = names
        return names


def _jsonable(value: Any) -> Any:
    cls = type(value)
    if cls in _PLAIN:
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if not isinstance(value, type) and (names := _field_names(cls)) is not None:
        return {name: _jsonable(getattr(value, name)) for name in names}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TicketIssued(Event):
    wire_name: ClassVar[str] = "ticket_issued"
    ticket_id: str
    number: str
    category: str
    priority: str
    channel: str
    kiosk: str | None
    holder: str | None  # masked
    waiting_ahead: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TicketCalled(Event):
    wire_name: ClassVar[str] = "ticket_called"
    ticket_id: str
    number: str
    category: str
    window: int
    window_name: str
    recall: int
    announcement: str  # 请A008号到3号窗口办理 (the caption)
    announcement_en: str
    spoken: str = ""  # 请A零零八号到三号窗口办理: the caption word for word, numbers as the hall reads them


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TicketServing(Event):
    wire_name: ClassVar[str] = "ticket_serving"
    ticket_id: str
    number: str
    window: int
    staff: str | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TicketFinished(Event):
    wire_name: ClassVar[str] = "ticket_finished"
    ticket_id: str
    number: str
    category: str
    window: int
    staff: str | None
    wait_s: float | None
    service_s: float | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TicketNoShow(Event):
    wire_name: ClassVar[str] = "ticket_no_show"
    ticket_id: str
    number: str
    category: str
    window: int
    recalls: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TicketTransferred(Event):
    wire_name: ClassVar[str] = "ticket_transferred"
    ticket_id: str
    number: str
    new_ticket_id: str
    new_number: str
    from_window: int | None
    to_category: str
    to_window: int | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TicketCancelled(Event):
    wire_name: ClassVar[str] = "ticket_cancelled"
    ticket_id: str
    number: str
    category: str
    reason: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationRecorded(Event):
    wire_name: ClassVar[str] = "evaluation"
    ticket_id: str
    number: str
    window: int
    staff: str | None
    level: int | None  # None = 未评价 (timed out, never a default grade)
    label: str
    channel: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationRequested(Event):
    """A window finished a ticket: its pad should ask for a rating."""

    wire_name: ClassVar[str] = "evaluation_requested"
    ticket_id: str
    number: str
    window: int
    staff: str | None
    staff_name: str | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CardRead(Event):
    wire_name: ClassVar[str] = "card_read"
    kiosk: str
    holder: str  # masked name
    id_masked: str
    card_type: str
    elderly: bool
    offer: str  # opaque id for the kiosk page to issue with
    categories: tuple[str, ...]
    card_expired: bool = False  # accepted (people come to renew it), flagged; never priority by itself


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class KioskNotice(Event):
    """What a kiosk screen should tell the visitor (printer out, limit reached...)."""

    wire_name: ClassVar[str] = "kiosk_notice"
    kiosk: str
    code: str
    message: str
    message_en: str
    ticket_id: str | None = None
    number: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PrintJob:
    """One paper ticket, laid out by the decision that issued (or reprinted) it.

    ``waiting_ahead`` is the count the kiosk was answered with and ``qr`` the token the
    API answered with (signed once), so the slip cannot disagree with the screen. The
    printer sink only maps this onto its driver; it never asks the service for data.
    ``holder_masked`` is set only when ``privacy.print_masked_name`` allows it.
    """

    ticket_id: str
    hall_name: str
    category_name: str
    number: str
    waiting_ahead: int
    issued_at: datetime  # hall-local wall-clock time, printed as is
    qr: str
    holder_masked: str | None = None
    window_hint: str | None = None
    priority_label: str | None = None
    footer: str = ""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PrintRequested(Event):
    """Print (or reprint) a ticket at a kiosk's printer.

    Internal: it carries the QR token, so it never leaves the process (not on MQTT,
    not on the SSE/WebSocket streams).
    """

    wire_name: ClassVar[str] = "print_requested"
    ticket_id: str
    kiosk: str
    job: PrintJob


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StaffSignedIn(Event):
    wire_name: ClassVar[str] = "staff_signed_in"
    window: int
    staff: str
    staff_name: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StaffSignedOut(Event):
    wire_name: ClassVar[str] = "staff_signed_out"
    window: int
    staff: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Alert(Event):
    wire_name: ClassVar[str] = "alert"
    alert: str  # wait_exceeded, service_overrun, device_fault, climate_out_of_band, bad_evaluation
    severity: str
    message: str
    message_en: str = ""  # the English text for English-mode pages; "" when only ``message`` exists
    subject: str  # ticket number, window, device or zone the alert is about
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Set by the alert service (hallctl/supervision) once the alert is stored. An Alert without an
    # id is a request to raise one: it stays in the process (MQTT and the streams skip it) until the
    # service has deduplicated and stored it and published it again with its id.
    id: int | None = None
    state: str = "open"  # open, acknowledged, resolved
    level: int = 0  # escalation level
    window: int | None = None  # the window it concerns (the clerk's screen shows its own), if any


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AlertChanged(Event):
    """A stored alert was acknowledged or resolved (who and the note stay in the API: not on the bus)."""

    wire_name: ClassVar[str] = "alert_changed"
    id: int
    alert: str
    subject: str
    window: int | None
    severity: str
    message: str
    message_en: str
    state: str
    level: int
    change: str  # acknowledged, resolved


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AlertEscalated(Event):
    """An alert stayed unacknowledged past ``[supervision] escalate_after_s`` (again): one level up."""

    wire_name: ClassVar[str] = "alert_escalated"
    id: int
    alert: str
    subject: str
    window: int | None
    severity: str
    message: str
    message_en: str
    level: int
    open_s: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CaseChanged(Event):
    """A 好差评 follow-up case (核实整改) was opened or moved on; names and notes stay in the API."""

    wire_name: ClassVar[str] = "case_changed"
    id: int
    ticket_id: str
    number: str
    window: int
    staff: str | None
    level: int
    reasons: tuple[str, ...]
    state: str  # open, verified, closed
    due_day: str
    overdue: bool
    change: str  # opened, reason, note, verified, closed, overdue


# ---- retained state (MQTT state topics; SSE sends them too) ----------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class QueueState(Event):
    wire_name: ClassVar[str] = "queue_state"
    kind: ClassVar[str] = STATE
    category: str
    name: str
    waiting: int
    last_issued: str | None
    last_called: str | None
    avg_wait_s: float | None
    open: bool


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WindowState(Event):
    wire_name: ClassVar[str] = "window_state"
    kind: ClassVar[str] = STATE
    window: int
    name: str
    state: str  # closed, idle, called, serving, paused
    ticket: str | None
    staff: str | None
    staff_name: str | None
    categories: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeviceState(Event):
    wire_name: ClassVar[str] = "device_state"
    kind: ClassVar[str] = STATE
    device: str
    device_kind: str
    state: str  # ok, degraded, offline, error, unknown (connected, state not readable)
    detail: str  # the driver's words, English (logs, integrators)
    since: datetime
    detail_zh: str = ""  # the same in Chinese for the hall's pages (hallctl.device_text), or the detail as is


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SensorState(Event):
    wire_name: ClassVar[str] = "sensor_state"
    kind: ClassVar[str] = STATE
    sensor: str
    temperature: float | None
    humidity: float | None
    stale: bool


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClimateState(Event):
    wire_name: ClassVar[str] = "climate_state"
    kind: ClassVar[str] = STATE
    zone: str
    mode: str
    target: float
    current: float | None
    humidity: float | None
    action: str  # off, heating, cooling, drying, idle, fan
    # The controller's view (issue 13); defaults keep older producers valid.
    setpoint: float | None = None  # what the units are commanded to, None when off
    overridden: bool = False  # a manual override with an expiry is in force
    override_until: datetime | None = None
    occupancy: int | None = None  # people waiting and being served in the zone
    open: bool | None = None  # within the zone's opening hours
    reason: str = ""  # why the controller does what it does
    alarms: tuple[str, ...] = ()  # e.g. climate_sensors_stale


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClimateEnergy(Event):
    """A zone's energy and comfort so far today (hallctl.climate.energy); kWh only grows within a day."""

    wire_name: ClassVar[str] = "climate_energy"
    kind: ClassVar[str] = STATE
    zone: str
    day: str  # the business day, ISO
    kwh: float
    cool_hours: float
    heat_hours: float
    dry_hours: float
    fan_hours: float
    open_hours: float
    share_in_band: float | None  # of the opening hours with a known temperature; None before any
    degree_hours: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DisplayText(Event):
    """An operator asked a display to show a message (``cmd/display/<id>/show``)."""

    wire_name: ClassVar[str] = "display_text"
    display: str
    text: str
    seconds: float | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ConfigChanged(Event):
    """The hall's configuration was changed live (admin console); pages and devices re-read it.

    Carries what changed, never the values: a page fetches ``/ui/config.json`` again, a
    component reads the context's ``cfg`` (already the new one when this is published).
    """

    wire_name: ClassVar[str] = "config_changed"
    sections: tuple[str, ...]
    version: int


ALL_EVENTS: tuple[type[Event], ...] = (
    TicketIssued,
    TicketCalled,
    TicketServing,
    TicketFinished,
    TicketNoShow,
    TicketTransferred,
    TicketCancelled,
    EvaluationRecorded,
    EvaluationRequested,
    CardRead,
    KioskNotice,
    PrintRequested,
    StaffSignedIn,
    StaffSignedOut,
    Alert,
    AlertChanged,
    AlertEscalated,
    CaseChanged,
    QueueState,
    WindowState,
    DeviceState,
    SensorState,
    ClimateState,
    ClimateEnergy,
    DisplayText,
    ConfigChanged,
)
