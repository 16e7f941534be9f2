"""Mapping between SQLite rows and typed objects (engine tickets, holders, tokens, outbox rows)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from hallctl.engine import Holder, Ticket
from hallctl.store.inserts import Insert

TICKET_COLUMNS = (
    "id",
    "day",
    "category",
    "seq",
    "number",
    "priority",
    "priority_reason",
    "channel",
    "state",
    "issued_at",
    "sort_at",
    "appointment_slot",
    "appointment_code",
    "called_at",
    "first_called_at",
    "serving_at",
    "finished_at",
    "window",
    "staff",
    "recalls",
    "target_window",
    "origin_id",
    "holder_masked",
    "id_hash",
    "kiosk",
    "end_reason",
    "print_failed",
    "from_window",
    "transfer_note",
)
_DATETIME_FIELDS = {
    "issued_at",
    "sort_at",
    "appointment_slot",
    "called_at",
    "first_called_at",
    "serving_at",
    "finished_at",
}


def _dt(v: str | None) -> datetime | None:
    return datetime.fromisoformat(v) if v is not None else None


def _ticket_row_function() -> Callable[[Ticket], tuple[Any, ...]]:
    """``ticket_row``, generated once from :data:`TICKET_COLUMNS`: one expression per column.

    Every decision's tickets are turned into rows on the event loop (issue 12's profile: a
    loop over the 29 columns with ``getattr`` and ``isinstance`` per value was the largest
    single item of the store's share of a kiosk ticket). The day and the datetime fields are
    the only non-SQLite values a :class:`Ticket` holds (its annotations say so; mypy checks).
    """
    parts = []
    for col in TICKET_COLUMNS:
        if col == "day":
            parts.append("t.day.isoformat()")
        elif col in _DATETIME_FIELDS:
            parts.append(f"None if t.{col} is None else t.{col}.isoformat()")
        else:
            parts.append(f"t.{col}")
    source = "def ticket_row(t):\n    return (\n" + "".join(f"        {p},\n" for p in parts) + "    )\n"
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # built from the table's own column list, nothing external
    row: Callable[[Ticket], tuple[Any, ...]] = namespace["ticket_row"]
    return row


ticket_row = _ticket_row_function()


def ticket_from_row(row: sqlite3.Row) -> Ticket:
    kw: dict[str, Any] = {}
    for col in TICKET_COLUMNS:
        v = row[col]
        if col in _DATETIME_FIELDS:
            v = _dt(v)
        elif col == "day":
            v = date.fromisoformat(v)
        elif col == "print_failed":
            v = bool(v)
        kw[col] = v
    return Ticket(**kw)


# The ticket's fields in the dataclass's own order: a row selected in this order is Ticket(*row).
TICKET_FIELDS = tuple(f.name for f in dataclasses.fields(Ticket))
assert set(TICKET_FIELDS) == set(TICKET_COLUMNS), "tickets table and Ticket disagree"

# The decision tables' statements, built once (the writer ran these joins for every ticket of
# every decision: issue 12's profile). Ranked in the order a batch writes them (hallctl.store.inserts):
# tickets first, as holders and evaluations reference them.
UPSERT_TICKET = Insert(
    0,
    f"INSERT INTO tickets ({','.join(TICKET_COLUMNS)})",
    len(TICKET_COLUMNS),
    f" ON CONFLICT(id) DO UPDATE SET {','.join(f'{c}=excluded.{c}' for c in TICKET_COLUMNS if c != 'id')}",
)
INSERT_HOLDER = Insert(
    1,
    "INSERT OR REPLACE INTO holders (ticket_id, name, id_number, sex, birth, nation, address,"
    " card_type, authority, valid_to, photo, created_at)",
    12,
)
UPSERT_WINDOW = Insert(
    2,
    "INSERT INTO windows (number, current_ticket, staff, paused, last_finished, priority_streak)",
    6,
    " ON CONFLICT(number) DO UPDATE SET current_ticket=excluded.current_ticket, staff=excluded.staff,"
    " paused=excluded.paused, last_finished=excluded.last_finished, priority_streak=excluded.priority_streak",
)
INSERT_EVALUATION = Insert(3, "INSERT INTO evaluations (ticket_id, level, window, staff, channel, reasons, at)", 7)
UPSERT_APPOINTMENT = Insert(
    4,
    "INSERT INTO appointments (code, category, slot_start, slot_end, holder_masked, id_hash, state, ticket_id)",
    8,
    " ON CONFLICT(code) DO UPDATE SET state=excluded.state, ticket_id=excluded.ticket_id,"
    " slot_start=excluded.slot_start, slot_end=excluded.slot_end",
)
INSERT_EVENT = Insert(5, "INSERT INTO event_log (at, kind, ticket_id, window, data)", 5)
INSERT_IDEMPOTENCY = Insert(6, "INSERT INTO idempotency (key, status, body, created_at)", 4)


def _positional_ticket() -> Callable[[list[Any]], Ticket]:
    """A :class:`Ticket` from its field values in order, as ``Ticket(*values)`` makes it, at half the cost.

    A frozen dataclass's ``__init__`` sets each of its 29 fields through ``object.__setattr__``
    (looked up and called per field): ≈70 ms for the 30,000 tickets of a full queue at start
    (issue 12, goal 4). This function, generated once, calls each slot's own setter instead: the
    same object (same type, still frozen, equal). Should ``Ticket`` ever validate or derive in
    ``__post_init__``, or stop having slots, the plain constructor is used.
    """
    fields = dataclasses.fields(Ticket)
    params = getattr(Ticket, "__dataclass_params__", None)
    slots = getattr(Ticket, "__slots__", ())
    if (
        hasattr(Ticket, "__post_init__")
        or params is None
        or not params.init
        or any(not f.init for f in fields)
        or tuple(slots) != tuple(f.name for f in fields)
    ):
        return lambda values: Ticket(*values)
    setters = {f"_s{i}": getattr(Ticket, f.name).__set__ for i, f in enumerate(fields)}
    body = "".join(f"    _s{i}(t, v[{i}])\n" for i in range(len(fields)))
    args = "".join(f", {name}={name}" for name in setters)
    source = f"def make(v, _new=_new, _cls=_cls{args}):\n    t = _new(_cls)\n{body}    return t\n"
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": Ticket, **setters}
    exec(source, namespace)  # built from the dataclass's own field list, nothing external
    make: Callable[[list[Any]], Ticket] = namespace["make"]
    return make


_make_ticket = _positional_ticket()


def tickets_from_tuples(rows: list[tuple[Any, ...]]) -> list[Ticket]:
    """Tickets from plain tuples in :data:`TICKET_FIELDS` order: the start-up load of a full queue.

    The same mapping as :func:`ticket_from_row`, by position, with the day parsed once per
    distinct value: 30,000 waiting tickets load in a fraction of the per-row path's time.
    """
    days: dict[str, date] = {}
    dt_idx = [i for i, c in enumerate(TICKET_FIELDS) if c in _DATETIME_FIELDS]
    day_i = TICKET_FIELDS.index("day")
    pf_i = TICKET_FIELDS.index("print_failed")
    fromiso = datetime.fromisoformat
    make = _make_ticket
    out: list[Ticket] = []
    for row in rows:
        vals = list(row)
        for i in dt_idx:
            v = vals[i]
            if v is not None:
                vals[i] = fromiso(v)
        d = vals[day_i]
        vals[day_i] = days[d] if d in days else days.setdefault(d, date.fromisoformat(d))
        vals[pf_i] = bool(vals[pf_i])
        out.append(make(vals))
    return out


def holder_from_row(row: sqlite3.Row) -> Holder:
    return Holder(
        name=row["name"],
        id_number=row["id_number"],
        sex=row["sex"] or "",
        birth=date.fromisoformat(row["birth"]) if row["birth"] else None,
        nation=row["nation"] or "",
        address=row["address"] or "",
        card_type=row["card_type"] or "resident",
        authority=row["authority"] or "",
        valid_to=date.fromisoformat(row["valid_to"]) if row["valid_to"] else None,
        photo=row["photo"],
    )


@dataclasses.dataclass(frozen=True, slots=True)
class TokenRecord:
    """A row of ``tokens`` (its hash stays in the database)."""

    id: int
    role: str
    windows: tuple[int, ...]
    label: str
    created_at: str
    revoked_at: str | None = None
    kiosks: tuple[str, ...] = ()  # kiosk tokens: the kiosks it acts for; () on older tokens: every kiosk


def token_from_row(row: sqlite3.Row) -> TokenRecord:
    return TokenRecord(
        id=int(row["id"]),
        role=str(row["role"]),
        windows=tuple(int(w) for w in json.loads(row["windows"])),
        label=str(row["label"]),
        created_at=str(row["created_at"]),
        revoked_at=row["revoked_at"],
        kiosks=tuple(str(k) for k in json.loads(row["kiosks"])),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxRow:
    """An MQTT event waiting for the broker."""

    seq: int
    topic: str
    payload: str
    qos: int


@dataclasses.dataclass(frozen=True, slots=True)
class TicketOutcome:
    """A ticket of a day and its evaluation, as a day's report needs them.

    ``evaluated`` is true when an evaluation row exists (``level`` is None for 未评价).
    """

    ticket: Ticket
    level: int | None
    evaluated: bool


@dataclasses.dataclass(frozen=True, slots=True)
class SensorMinute:
    """One sensor's readings of one minute, as history keeps them (``minute`` is its start, UTC).

    ``count`` is every reading of the minute; each quantity has its own count because a
    zigbee sensor may report one of them alone. A quantity without readings is None.
    """

    sensor: str
    minute: datetime
    count: int
    temperature_count: int = 0
    temperature_min: float | None = None
    temperature_avg: float | None = None
    temperature_max: float | None = None
    temperature_last: float | None = None
    humidity_count: int = 0
    humidity_min: float | None = None
    humidity_avg: float | None = None
    humidity_max: float | None = None
    humidity_last: float | None = None

    def to_dict(self) -> dict[str, Any]:
        # ``at``, ``temperature`` and ``humidity`` (the minute's averages) keep the shape readers
        # of the per-reading history knew; the rest is the minute's spread.
        return {
            "sensor": self.sensor,
            "at": self.minute.isoformat(),
            "count": self.count,
            "temperature": _round(self.temperature_avg),
            "temperature_min": self.temperature_min,
            "temperature_max": self.temperature_max,
            "temperature_last": self.temperature_last,
            "humidity": _round(self.humidity_avg),
            "humidity_min": self.humidity_min,
            "humidity_max": self.humidity_max,
            "humidity_last": self.humidity_last,
        }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


SENSOR_MINUTE_COLUMNS = tuple(f.name for f in dataclasses.fields(SensorMinute))


def sensor_minute_row(m: SensorMinute) -> tuple[Any, ...]:
    return tuple(m.minute.isoformat() if c == "minute" else getattr(m, c) for c in SENSOR_MINUTE_COLUMNS)


def sensor_minute_from_row(r: sqlite3.Row) -> SensorMinute:
    values = {c: r[c] for c in SENSOR_MINUTE_COLUMNS}
    values["minute"] = datetime.fromisoformat(r["minute"])
    return SensorMinute(**values)


@dataclasses.dataclass(frozen=True, slots=True)
class LogEntry:
    """A row of a ticket's event log."""

    seq: int
    at: str
    kind: str
    window: int | None
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, slots=True)
class ClimateEnergyRow:
    """One zone's energy and comfort totals of one business day (table ``climate_energy``)."""

    day: date
    zone: str
    run_cool_s: float
    run_heat_s: float
    run_dry_s: float
    run_fan_s: float
    kwh: float
    open_s: float
    in_band_s: float
    degree_hours: float


@dataclasses.dataclass(frozen=True, slots=True)
class ClimateOverrideRow:
    """A zone's manual override as stored (``until`` None: until cleared)."""

    zone: str
    mode: str
    target: float | None
    until: datetime | None
    set_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class ClimateRatesRow:
    """A zone's learned warm-up and cool-down rates (°C per hour) and how many runs taught them."""

    zone: str
    warmup_c_per_h: float
    cooldown_c_per_h: float
    warmup_samples: int
    cooldown_samples: int
    updated_at: datetime
