"""The engine's data: tickets, windows, evaluations, appointments and the Decision.

Frozen dataclasses, so a decision can never change the state it was computed from;
only :meth:`hallctl.engine.queue.HallQueue.apply` moves memory forward, after the
store has committed.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from typing import Any, Literal

from hallctl import events as ev

Priority = Literal["green", "appointment", "normal"]
PRIORITY_RANK: dict[str, int] = {"green": 0, "appointment": 1, "normal": 2}
ACTIVE = ("waiting", "called", "serving")
TERMINAL = ("done", "no_show", "transferred", "cancelled")
LEVEL_LABELS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
UNRATED_LABEL = "未评价"


@dataclasses.dataclass(frozen=True, slots=True)
class Holder:
    """What the ID card said. Full personal data: store and window terminal only."""

    name: str
    id_number: str
    sex: str = ""
    birth: date | None = None
    nation: str = ""
    address: str = ""
    card_type: str = "resident"
    authority: str = ""
    valid_to: date | None = None
    photo: bytes | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Ticket:
    id: str
    day: date
    category: str
    seq: int
    number: str
    priority: str
    channel: str
    state: str
    issued_at: datetime
    sort_at: datetime
    priority_reason: str | None = None
    appointment_slot: datetime | None = None
    appointment_code: str | None = None
    called_at: datetime | None = None
    first_called_at: datetime | None = None
    serving_at: datetime | None = None
    finished_at: datetime | None = None
    window: int | None = None
    staff: str | None = None
    recalls: int = 0
    target_window: int | None = None
    origin_id: str | None = None
    holder_masked: str | None = None
    id_hash: str | None = None
    kiosk: str | None = None
    end_reason: str | None = None
    print_failed: bool = False  # its kiosk's printer could not print it (cleared when a reprint prints)
    from_window: int | None = None  # a transfer follow-up: the window that sent it
    transfer_note: str | None = None  # a transfer follow-up: the sending clerk's note for the next window

    def order_key(self) -> tuple[int, datetime, datetime, int]:
        slot = self.appointment_slot if self.priority == "appointment" and self.appointment_slot else self.sort_at
        return (PRIORITY_RANK.get(self.priority, 2), slot, self.sort_at, self.seq)

    @property
    def wait_s(self) -> float | None:
        """This ticket's waiting time in seconds (:func:`waiting_time`), None until first called."""
        waited = waiting_time(self)
        return waited.total_seconds() if waited is not None else None


def is_bad_rating(level: int) -> bool:
    """差评: 不满意 (2) and 非常不满意 (1) of the five 好差评 levels. Everything else (基本满意 and
    above) counts as 好评 in 好评率, so the statistics, reports and follow-up cases agree."""
    return level <= 2


def waiting_time(t: Ticket, now: datetime | None = None) -> timedelta | None:
    """How long ``t`` waited: the hall's one definition (queue state, supervision, statistics).

    A ticket waits from the moment it joined its current queue (``issued_at``; for a
    transfer follow-up that is the transfer, although its place in line still comes from
    the original issue via ``sort_at``) to its *first* call (``first_called_at``). A recall,
    or a no-show called back, neither restarts nor extends it. Measuring a follow-up from
    the original issue would count the first window's wait and service twice: they are
    already in the original ticket's figures.

    Before the first call the wait is still running: with ``now`` a waiting ticket has
    waited ``now - issued_at`` so far (what supervision checks); without ``now``, or for
    a ticket that ended uncalled (cancelled, closed at day end), it is None.
    """
    if t.first_called_at is not None:
        return t.first_called_at - t.issued_at
    if now is not None and t.state == "waiting":
        return now - t.issued_at
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class WindowStatus:
    number: int
    current: str | None = None
    staff: str | None = None
    paused: bool = False
    last_finished: str | None = None
    priority_streak: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Evaluation:
    ticket_id: str
    level: int | None
    window: int
    staff: str | None
    channel: str
    at: datetime
    reasons: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Appointment:
    code: str
    category: str
    slot_start: datetime
    slot_end: datetime
    holder_masked: str | None = None
    id_hash: str | None = None
    state: str = "booked"  # booked, checked_in, cancelled
    ticket_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class LogRow:
    kind: str
    ticket_id: str | None
    window: int | None
    data: dict[str, Any]


@dataclasses.dataclass(slots=True)
class Decision:
    at: datetime
    tickets: list[Ticket] = dataclasses.field(default_factory=list)
    windows: list[WindowStatus] = dataclasses.field(default_factory=list)
    holders: list[tuple[str, Holder]] = dataclasses.field(default_factory=list)
    evaluations: list[Evaluation] = dataclasses.field(default_factory=list)
    appointments: list[Appointment] = dataclasses.field(default_factory=list)
    log: list[LogRow] = dataclasses.field(default_factory=list)
    events: list[ev.Event] = dataclasses.field(default_factory=list)
    counters: dict[tuple[date, str], int] = dataclasses.field(default_factory=dict)
    new_day: date | None = None  # set by the day rollover: apply() opens that business day
    result: Any = None

    def touched_categories(self) -> set[str]:
        return {t.category for t in self.tickets}

    def touched_windows(self) -> set[int]:
        return {w.number for w in self.windows}
