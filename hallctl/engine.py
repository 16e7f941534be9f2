"""The queue engine: pure decisions, no I/O.

Every public function takes the current :class:`HallQueue`, the config and the
time, and returns a :class:`Decision`: the rows to write (in one transaction),
the event-log rows, and the events to publish afterwards. Nothing here mutates
the state; the service applies a decision to memory only after the store has
committed it, so a failed write leaves memory exactly as the disk is.

Ordering policy (docs/queue-policy.md has the prose):

1. Tickets transferred *to this window* go first, oldest first.
2. Any ticket of the window's categories that has waited longer than
   ``queue.starvation_minutes`` goes next, oldest first (fairness across
   categories: a busy first category cannot starve the others).
3. Otherwise the first category, in the window's preference order, that has
   anyone waiting; inside it tickets sort by (priority class, appointment slot or
   issue time, issue time), with classes green < appointment < normal.
4. Anti-starvation inside a category: after ``queue.priority_streak_cap``
   priority calls in a row at this window, the oldest normal ticket goes next.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any, Literal

from hallctl import events as ev
from hallctl.config import CategoryConfig, Config, OpeningSpan, WindowConfig
from hallctl.errors import Conflict, NotFound, Refused

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

    def order_key(self) -> tuple[int, datetime, datetime, int]:
        slot = self.appointment_slot if self.priority == "appointment" and self.appointment_slot else self.sort_at
        return (PRIORITY_RANK.get(self.priority, 2), slot, self.sort_at, self.seq)

    @property
    def wait_s(self) -> float | None:
        if self.first_called_at is None:
            return None
        return (self.first_called_at - self.issued_at).total_seconds()


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
    result: Any = None

    def touched_categories(self) -> set[str]:
        return {t.category for t in self.tickets}

    def touched_windows(self) -> set[int]:
        return {w.number for w in self.windows}


@dataclasses.dataclass(frozen=True, slots=True)
class CategoryDay:
    """What a category's screen shows for one business day, kept current by :meth:`HallQueue.apply`."""

    waiting: int
    last_issued: Ticket | None
    last_called: Ticket | None
    waits: int  # tickets called at least once
    wait_sum_us: int  # their waits (first call - issue), summed in microseconds (exact)

    @property
    def avg_wait_s(self) -> float | None:
        return round(self.wait_sum_us / 1_000_000 / self.waits, 1) if self.waits else None


def _us(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def _remove(items: list[Any], key: Any) -> None:
    i = bisect_left(items, key)
    if i == len(items) or items[i] != key:
        raise AssertionError(f"queue index out of step: {key!r} missing")
    del items[i]


class TicketTable(dict[str, Ticket]):
    """:attr:`HallQueue.tickets`: a dict whose every write goes through the queue's indexes."""

    __slots__ = ("_queue",)

    def __init__(self, queue: HallQueue) -> None:
        super().__init__()
        self._queue = queue

    def __setitem__(self, key: str, t: Ticket) -> None:
        if key != t.id:
            raise KeyError(f"ticket {t.id} filed under {key!r}")
        self._queue._put(t)

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("tickets change through HallQueue.apply, or by assigning HallQueue.tickets whole")

    __delitem__ = pop = popitem = clear = update = setdefault = __ior__ = _refuse


class HallQueue:
    """The engine's view of the hall: today's tickets and every still-active one.

    Beside the tickets it keeps indexes so that an issue or a call costs O(log n) (a
    bisect in a sorted list), not a scan of every ticket: waiting tickets per category
    in queue order and in age order, tickets directed to each window, per-ID ticket
    counts, and each category's day aggregates (:class:`CategoryDay`). Ties between
    equal keys are broken by the order tickets first entered :attr:`tickets`, so every
    answer equals what a scan of ``tickets.values()`` would give.

    The indexes change only with the tickets: through :meth:`apply` (after a commit), by
    assigning :attr:`tickets` whole (which rebuilds them), or by setting one item (a
    :class:`TicketTable` files it through the indexes; deleting is refused), so nothing
    can change a ticket behind the indexes' back.
    """

    def __init__(
        self,
        day: date,
        tickets: Mapping[str, Ticket] | None = None,
        windows: dict[int, WindowStatus] | None = None,
        counters: dict[tuple[date, str], int] | None = None,
        evaluated: set[str] | None = None,
        appointments: dict[str, Appointment] | None = None,
    ) -> None:
        self.day = day
        self.windows: dict[int, WindowStatus] = windows if windows is not None else {}
        self.counters: dict[tuple[date, str], int] = counters if counters is not None else {}
        self.evaluated: set[str] = evaluated if evaluated is not None else set()
        self.appointments: dict[str, Appointment] = appointments if appointments is not None else {}
        self._tickets = TicketTable(self)
        self.tickets = tickets or {}

    # ---- tickets and their indexes ---------------------------------------------------

    @property
    def tickets(self) -> TicketTable:
        return self._tickets

    @tickets.setter
    def tickets(self, value: Mapping[str, Ticket]) -> None:
        self._tickets = TicketTable(self)
        self._ord: dict[str, int] = {}
        # Waiting tickets, per category: all in queue order (waiting_ahead), the undirected
        # ones in queue order, in age order, and the normal-priority ones in age order
        # (choose_next); per window, the ones transferred to it, in age order.
        self._order: dict[str, list[tuple[Any, ...]]] = {}
        self._free_order: dict[str, list[tuple[Any, ...]]] = {}
        self._free_age: dict[str, list[tuple[Any, ...]]] = {}
        self._free_normal_age: dict[str, list[tuple[Any, ...]]] = {}
        self._directed: dict[int, list[tuple[Any, ...]]] = {}
        # Per (day, category): waiting count, issue order, call order, waits.
        self._n_waiting: dict[tuple[date, str], int] = {}
        self._issued: dict[tuple[date, str], list[tuple[Any, ...]]] = {}
        self._called: dict[tuple[date, str], list[tuple[Any, ...]]] = {}
        self._waits: dict[tuple[date, str], list[int]] = {}
        # Per (day, category, id_hash): tickets that count against the per-ID daily limit.
        self._id_uses: dict[tuple[date, str, str], int] = {}
        for t in value.values():
            self._put(t)

    def _put(self, t: Ticket) -> None:
        old = self._tickets.get(t.id)
        if old is not None:
            self._index(old, -1)
        else:
            self._ord[t.id] = len(self._ord)
        dict.__setitem__(self._tickets, t.id, t)
        self._index(t, +1)

    def _index(self, t: Ticket, sign: int) -> None:
        """Add (``sign`` = 1) or remove (-1) ``t``'s contribution to every index."""
        n = self._ord[t.id]
        dc = (t.day, t.category)

        def edit(table: dict[Any, list[tuple[Any, ...]]], key: Any, entry: tuple[Any, ...]) -> None:
            items = table.setdefault(key, [])
            if sign > 0:
                insort(items, entry)
            else:
                _remove(items, entry)

        if t.state == "waiting":
            okey = (t.order_key(), n, t.id)
            age = (t.sort_at, t.seq, n, t.id)
            edit(self._order, t.category, okey)
            if t.target_window is None:
                edit(self._free_order, t.category, okey)
                edit(self._free_age, t.category, age)
                if t.priority == "normal":
                    edit(self._free_normal_age, t.category, age)
            else:
                edit(self._directed, t.target_window, age)
            self._n_waiting[dc] = self._n_waiting.get(dc, 0) + sign
        edit(self._issued, dc, (t.seq, -n, t.id))
        if t.called_at is not None:
            edit(self._called, dc, (t.called_at, -n, t.id))
        if t.first_called_at is not None:
            waits = self._waits.setdefault(dc, [0, 0])
            waits[0] += sign
            waits[1] += sign * _us(t.first_called_at - t.issued_at)
        if t.id_hash is not None and t.origin_id is None and t.state != "cancelled":
            key = (t.day, t.category, t.id_hash)
            self._id_uses[key] = self._id_uses.get(key, 0) + sign

    def apply(self, d: Decision) -> None:
        for t in d.tickets:
            self._put(t)
        for w in d.windows:
            self.windows[w.number] = w
        for e in d.evaluations:
            self.evaluated.add(e.ticket_id)
        for a in d.appointments:
            self.appointments[a.code] = a
        for key, value in d.counters.items():
            self.counters[key] = max(self.counters.get(key, 0), value)

    # ---- reads -------------------------------------------------------------------------

    def window(self, number: int) -> WindowStatus:
        return self.windows.get(number, WindowStatus(number))

    def waiting(self, categories: Iterable[str] | None = None) -> list[Ticket]:
        """Waiting tickets (of these categories), in the order they entered :attr:`tickets`."""
        cats = self._order.keys() if categories is None else set(categories)
        entries = sorted(e[1:] for c in cats for e in self._order.get(c, ()))
        return [self._tickets[tid] for _, tid in entries]

    def ahead_of(self, ticket: Ticket) -> int:
        """Waiting tickets of ``ticket``'s category that go before it (it not counted)."""
        key = ticket.order_key()
        n = bisect_left(self._order.get(ticket.category, []), (key,))
        same = self._tickets.get(ticket.id)
        if same is not None and same.state == "waiting" and same.category == ticket.category and same.order_key() < key:
            n -= 1
        return n

    def id_uses(self, category: str, id_hash: str) -> int:
        """Today's tickets of this category for this ID that count against the daily limit."""
        return self._id_uses.get((self.day, category, id_hash), 0)

    def category_day(self, category: str) -> CategoryDay:
        dc = (self.day, category)
        issued = self._issued.get(dc)
        called = self._called.get(dc)
        waits = self._waits.get(dc, [0, 0])
        return CategoryDay(
            waiting=self._n_waiting.get(dc, 0),
            last_issued=self._tickets[issued[-1][2]] if issued else None,
            last_called=self._tickets[called[-1][2]] if called else None,
            waits=waits[0],
            wait_sum_us=waits[1],
        )

    def next_for(self, window: WindowConfig, status: WindowStatus, now: datetime, cfg: Config) -> Ticket | None:
        """:func:`choose_next` over the indexes: the same answer without a scan."""
        directed = self._directed.get(window.number)
        if directed:
            return self._tickets[directed[0][3]]
        heads = [lst[0] for c in window.categories if (lst := self._free_age.get(c))]
        if not heads:
            return None
        oldest = min(heads)
        if now - oldest[0] >= timedelta(minutes=cfg.queue.starvation_minutes):
            return self._tickets[oldest[3]]
        for cat in window.categories:
            if not self._free_age.get(cat):
                continue
            if status.priority_streak >= cfg.queue.priority_streak_cap:
                normal = self._free_normal_age.get(cat)
                if normal:
                    return self._tickets[normal[0][3]]
            return self._tickets[self._free_order[cat][0][2]]
        return None

    def find_number(self, number: str) -> Ticket | None:
        """Today's ticket with this number (``A012``), preferring an active one."""
        found = [t for t in self._tickets.values() if t.number == number and t.day == self.day]
        found.sort(key=lambda t: t.state not in ACTIVE)
        return found[0] if found else None

    def window_state(self, number: int) -> str:
        w = self.window(number)
        if w.current is not None:
            cur = self._tickets.get(w.current)
            if cur is not None and cur.state in ("called", "serving"):
                return cur.state
        return "paused" if w.paused else "idle"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HallQueue):
            return NotImplemented
        return (self.day, dict(self._tickets), self.windows, self.counters, self.evaluated, self.appointments) == (
            other.day,
            dict(other._tickets),
            other.windows,
            other.counters,
            other.evaluated,
            other.appointments,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"HallQueue(day={self.day}, tickets={len(self._tickets)}, windows={len(self.windows)})"


# ---- time -------------------------------------------------------------------


def business_day(now: datetime, cfg: Config) -> date:
    local = now.astimezone(cfg.hall.tz)
    return (local - timedelta(hours=cfg.hall.day_reset_hour)).date()


_SPANS: dict[tuple[str, ...], tuple[OpeningSpan, ...]] = {}


def is_open(cat: CategoryConfig, now: datetime, cfg: Config) -> bool:
    spans = _SPANS.get(cat.hours)
    if spans is None:  # parsed once per distinct hours spec, not on every issue
        spans = _SPANS[cat.hours] = cat.spans
    local = now.astimezone(cfg.hall.tz)
    return any(span.contains(local.weekday(), local.time()) for span in spans)


def age_on(birth: date, today: date) -> int:
    years = today.year - birth.year
    # A 29 February birthday is reached on 1 March in common years.
    if (today.month, today.day) < (birth.month, birth.day):
        years -= 1
    return years


def announcement(number: str, window: int) -> tuple[str, str]:
    return (f"请{number}号到{window}号窗口办理", f"Number {number}, please go to window {window}")


# ---- ordering policy ----------------------------------------------------------


def choose_next(
    waiting: Iterable[Ticket], window: WindowConfig, status: WindowStatus, now: datetime, cfg: Config
) -> Ticket | None:
    """Pick the ticket this window calls next (module docstring has the rules)."""
    cats = window.categories
    candidates = [
        t
        for t in waiting
        if t.state == "waiting"
        and (t.target_window == window.number or (t.target_window is None and t.category in cats))
    ]
    if not candidates:
        return None
    directed = [t for t in candidates if t.target_window == window.number]
    if directed:
        return min(directed, key=lambda t: (t.sort_at, t.seq))
    limit = timedelta(minutes=cfg.queue.starvation_minutes)
    overdue = [t for t in candidates if now - t.sort_at >= limit]
    if overdue:
        return min(overdue, key=lambda t: (t.sort_at, t.seq))
    for cat in cats:
        in_cat = [t for t in candidates if t.category == cat]
        if not in_cat:
            continue
        if status.priority_streak >= cfg.queue.priority_streak_cap:
            normal = [t for t in in_cat if t.priority == "normal"]
            if normal:
                return min(normal, key=lambda t: (t.sort_at, t.seq))
        return min(in_cat, key=Ticket.order_key)
    return None


def waiting_ahead(q: HallQueue, ticket: Ticket) -> int:
    return q.ahead_of(ticket)


# ---- commands -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class IssueRequest:
    category: str
    channel: str = "api"  # kiosk, api, appointment, guide
    kiosk: str | None = None
    holder: Holder | None = None
    holder_masked: str | None = None
    id_hash: str | None = None
    priority: str | None = None  # "green" when a guide or clerk grants the green channel
    priority_reason: str | None = None
    ignore_hours: bool = False


def _category(cfg: Config, prefix: str) -> CategoryConfig:
    cat = cfg.category_by_prefix(prefix)
    if cat is None:
        raise NotFound("unknown_category", f"no category with prefix {prefix!r}")
    return cat


def _window(cfg: Config, number: int) -> WindowConfig:
    w = cfg.window_by_number(number)
    if w is None:
        raise NotFound("unknown_window", f"no window {number}")
    return w


def _new_ticket(q: HallQueue, cfg: Config, d: Decision, cat: CategoryConfig, now: datetime, **fields: Any) -> Ticket:
    day = q.day
    key = (day, cat.prefix)
    seq = max(q.counters.get(key, 0), d.counters.get(key, 0)) + 1
    d.counters[key] = seq
    number = f"{cat.prefix}{seq:0{cat.digits}d}"
    fields.setdefault("sort_at", now)
    return Ticket(
        id=f"{day:%Y%m%d}-{number}",
        day=day,
        category=cat.prefix,
        seq=seq,
        number=number,
        state="waiting",
        issued_at=now,
        **fields,
    )


def issue(q: HallQueue, cfg: Config, req: IssueRequest, now: datetime) -> Decision:
    cat = _category(cfg, req.category)
    if not req.ignore_hours and not is_open(cat, now, cfg):
        raise Refused("category_closed", f"{cat.name} is closed now", f"{cat.name_en or cat.prefix} is closed now")
    if req.id_hash is not None:
        used = q.id_uses(cat.prefix, req.id_hash)
        if used >= cfg.queue.per_id_daily_limit:
            raise Refused(
                "id_limit_reached",
                f"今日该证件已在{cat.name}取号{used}次，已达上限",
                f"this ID card already took {used} tickets for {cat.name_en or cat.prefix} today (limit)",
            )
    priority: str = "normal"
    reason: str | None = None
    if req.priority == "green":
        priority, reason = "green", req.priority_reason or "green_channel"
    elif (
        cfg.queue.auto_elderly_priority
        and req.holder is not None
        and req.holder.birth is not None
        and age_on(req.holder.birth, now.astimezone(cfg.hall.tz).date()) >= cfg.queue.elderly_age
    ):
        priority, reason = "green", "elderly"
    d = Decision(at=now)
    t = _new_ticket(
        q,
        cfg,
        d,
        cat,
        now,
        priority=priority,
        priority_reason=reason,
        channel=req.channel,
        kiosk=req.kiosk,
        holder_masked=req.holder_masked,
        id_hash=req.id_hash,
    )
    return _finish_issue(q, d, t, req.holder)


def _finish_issue(q: HallQueue, d: Decision, t: Ticket, holder: Holder | None) -> Decision:
    d.tickets.append(t)
    if holder is not None:
        d.holders.append((t.id, holder))
    ahead = waiting_ahead(q, t)
    d.log.append(LogRow("issued", t.id, None, {"number": t.number, "priority": t.priority, "channel": t.channel}))
    d.events.append(
        ev.TicketIssued(
            at=d.at,
            ticket_id=t.id,
            number=t.number,
            category=t.category,
            priority=t.priority,
            channel=t.channel,
            kiosk=t.kiosk,
            holder=t.holder_masked,
            waiting_ahead=ahead,
        )
    )
    d.result = (t, ahead)
    return d


def _finish_current(q: HallQueue, cfg: Config, d: Decision, w: WindowStatus, now: datetime) -> WindowStatus:
    if w.current is None:
        return w
    cur = q.tickets.get(w.current)
    if cur is None or cur.state not in ("called", "serving"):
        return dataclasses.replace(w, current=None)
    done = dataclasses.replace(cur, state="done", finished_at=now, serving_at=cur.serving_at or cur.called_at)
    d.tickets.append(done)
    service_s = (now - done.serving_at).total_seconds() if done.serving_at else None
    d.log.append(LogRow("finished", done.id, w.number, {"number": done.number, "service_s": service_s}))
    d.events.append(
        ev.TicketFinished(
            at=now,
            ticket_id=done.id,
            number=done.number,
            category=done.category,
            window=w.number,
            staff=done.staff,
            wait_s=done.wait_s,
            service_s=service_s,
        )
    )
    staff = cfg.staff_by_id(w.staff) if w.staff else None
    d.events.append(
        ev.EvaluationRequested(
            at=now,
            ticket_id=done.id,
            number=done.number,
            window=w.number,
            staff=done.staff,
            staff_name=staff.name if staff else None,
        )
    )
    return dataclasses.replace(w, current=None, last_finished=done.id)


def _call(cfg: Config, d: Decision, w: WindowStatus, t: Ticket, now: datetime, *, recall: int = 0) -> WindowStatus:
    wcfg = _window(cfg, w.number)
    # A no-show called back by number is live again: its finish time and reason no longer hold.
    called = dataclasses.replace(
        t,
        state="called",
        called_at=now,
        first_called_at=t.first_called_at or now,
        window=w.number,
        staff=w.staff,
        recalls=recall,
        finished_at=None,
        end_reason=None,
    )
    d.tickets.append(called)
    text, text_en = announcement(called.number, w.number)
    d.log.append(LogRow("recalled" if recall else "called", t.id, w.number, {"number": t.number, "recall": recall}))
    d.events.append(
        ev.TicketCalled(
            at=now,
            ticket_id=t.id,
            number=t.number,
            category=t.category,
            window=w.number,
            window_name=wcfg.name or f"{w.number}号窗口",
            recall=recall,
            announcement=text,
            announcement_en=text_en,
        )
    )
    d.result = called
    return dataclasses.replace(w, current=t.id)


def call_next(q: HallQueue, cfg: Config, window: int, now: datetime) -> Decision:
    wcfg = _window(cfg, window)
    w = q.window(window)
    if w.paused:
        raise Conflict("window_paused", f"window {window} is paused; resume it first")
    d = Decision(at=now)
    if w.current is not None:
        if not cfg.queue.call_next_finishes_current:
            raise Conflict("window_busy", f"window {window} still has a ticket; finish it first")
        w = _finish_current(q, cfg, d, w, now)
    t = q.next_for(wcfg, w, now, cfg)
    if t is None:
        d.windows.append(w)
        d.result = None
        return d
    streak = w.priority_streak + 1 if t.priority != "normal" else 0
    w = _call(cfg, d, dataclasses.replace(w, priority_streak=streak), t, now)
    d.windows.append(w)
    return d


def call_ticket(q: HallQueue, cfg: Config, window: int, number: str, now: datetime) -> Decision:
    _window(cfg, window)
    w = q.window(window)
    t = q.tickets.get(number) or q.find_number(number)
    if t is None:
        raise NotFound("unknown_ticket", f"no ticket {number} today")
    if t.state not in ("waiting", "no_show"):
        raise Conflict("ticket_not_waiting", f"ticket {t.number} is {t.state}, not waiting")
    d = Decision(at=now)
    if w.current is not None:
        if not cfg.queue.call_next_finishes_current:
            raise Conflict("window_busy", f"window {window} still has a ticket; finish it first")
        w = _finish_current(q, cfg, d, w, now)
    d.windows.append(_call(cfg, d, w, t, now))
    return d


def _current(q: HallQueue, window: int, states: tuple[str, ...]) -> tuple[WindowStatus, Ticket]:
    w = q.window(window)
    t = q.tickets.get(w.current) if w.current else None
    if t is None or t.state not in states:
        raise Conflict("no_current_ticket", f"window {window} has no ticket in state {'/'.join(states)}")
    return w, t


def recall(q: HallQueue, cfg: Config, window: int, now: datetime) -> Decision:
    _window(cfg, window)
    w, t = _current(q, window, ("called",))
    if t.recalls >= cfg.queue.max_recalls:
        # Out of recalls: the visitor did not come. Mark no-show rather than call forever.
        return no_show(q, cfg, window, now)
    d = Decision(at=now)
    d.windows.append(_call(cfg, d, w, t, now, recall=t.recalls + 1))
    return d


def start(q: HallQueue, cfg: Config, window: int, now: datetime) -> Decision:
    _window(cfg, window)
    w, t = _current(q, window, ("called",))
    d = Decision(at=now)
    serving = dataclasses.replace(t, state="serving", serving_at=now, staff=w.staff)
    d.tickets.append(serving)
    d.windows.append(w)
    d.log.append(LogRow("serving", t.id, window, {"number": t.number}))
    d.events.append(ev.TicketServing(at=now, ticket_id=t.id, number=t.number, window=window, staff=w.staff))
    d.result = serving
    return d


def finish(q: HallQueue, cfg: Config, window: int, now: datetime) -> Decision:
    _window(cfg, window)
    w, _ = _current(q, window, ("called", "serving"))
    d = Decision(at=now)
    d.windows.append(_finish_current(q, cfg, d, w, now))
    d.result = d.tickets[-1]
    return d


def no_show(q: HallQueue, cfg: Config, window: int, now: datetime) -> Decision:
    _window(cfg, window)
    w, t = _current(q, window, ("called",))
    d = Decision(at=now)
    gone = dataclasses.replace(t, state="no_show", finished_at=now, end_reason="no_show")
    d.tickets.append(gone)
    d.windows.append(dataclasses.replace(w, current=None))
    d.log.append(LogRow("no_show", t.id, window, {"number": t.number, "recalls": t.recalls}))
    d.events.append(
        ev.TicketNoShow(at=now, ticket_id=t.id, number=t.number, category=t.category, window=window, recalls=t.recalls)
    )
    d.result = gone
    return d


def transfer(
    q: HallQueue,
    cfg: Config,
    window: int,
    to_category: str | None,
    to_window: int | None,
    now: datetime,
    holder: Holder | None = None,
) -> Decision:
    _window(cfg, window)
    w, t = _current(q, window, ("called", "serving"))
    if to_category is None and to_window is None:
        raise Refused("bad_transfer", "name a category or a window to transfer to")
    if to_window is not None:
        target = _window(cfg, to_window)
        if to_window == window:
            raise Refused("bad_transfer", "cannot transfer a ticket to its own window")
        to_category = to_category or (t.category if t.category in target.categories else target.categories[0])
    assert to_category is not None
    cat = _category(cfg, to_category)
    d = Decision(at=now)
    old = dataclasses.replace(t, state="transferred", finished_at=now, end_reason="transferred")
    d.tickets.append(old)
    new = _new_ticket(
        q,
        cfg,
        d,
        cat,
        now,
        sort_at=t.sort_at,
        priority=t.priority,
        priority_reason=t.priority_reason,
        channel="transfer",
        kiosk=t.kiosk,
        holder_masked=t.holder_masked,
        id_hash=t.id_hash,
        origin_id=t.id,
        target_window=to_window,
        appointment_slot=t.appointment_slot,
    )
    d.tickets.append(new)
    if holder is not None:
        d.holders.append((new.id, holder))
    d.windows.append(dataclasses.replace(w, current=None))
    d.log.append(
        LogRow(
            "transferred",
            t.id,
            window,
            {
                "number": t.number,
                "new_ticket": new.id,
                "to_category": cat.prefix,
                "to_window": to_window,
            },
        )
    )
    d.events.append(
        ev.TicketTransferred(
            at=now,
            ticket_id=t.id,
            number=t.number,
            new_ticket_id=new.id,
            new_number=new.number,
            from_window=window,
            to_category=cat.prefix,
            to_window=to_window,
        )
    )
    d.result = new
    return d


def pause(q: HallQueue, cfg: Config, window: int, now: datetime, paused: bool) -> Decision:
    _window(cfg, window)
    w = q.window(window)
    d = Decision(at=now)
    d.windows.append(dataclasses.replace(w, paused=paused))
    d.log.append(LogRow("paused" if paused else "resumed", None, window, {}))
    d.result = None
    return d


def sign_in(q: HallQueue, cfg: Config, window: int, staff: str | None, now: datetime) -> Decision:
    _window(cfg, window)
    w = q.window(window)
    d = Decision(at=now)
    d.windows.append(dataclasses.replace(w, staff=staff))
    if staff is not None:
        s = cfg.staff_by_id(staff)
        d.log.append(LogRow("signed_in", None, window, {"staff": staff}))
        d.events.append(ev.StaffSignedIn(at=now, window=window, staff=staff, staff_name=s.name if s else staff))
    elif w.staff is not None:
        d.log.append(LogRow("signed_out", None, window, {"staff": w.staff}))
        d.events.append(ev.StaffSignedOut(at=now, window=window, staff=w.staff))
    return d


def cancel(q: HallQueue, cfg: Config, ticket_id: str, now: datetime, reason: str = "cancelled") -> Decision:
    t = q.tickets.get(ticket_id)
    if t is None:
        raise NotFound("unknown_ticket", f"no active ticket {ticket_id}")
    if t.state != "waiting":
        raise Conflict("ticket_not_waiting", f"ticket {t.number} is {t.state}; only waiting tickets can be cancelled")
    d = Decision(at=now)
    d.tickets.append(dataclasses.replace(t, state="cancelled", finished_at=now, end_reason=reason))
    d.log.append(LogRow("cancelled", t.id, None, {"number": t.number, "reason": reason}))
    d.events.append(ev.TicketCancelled(at=now, ticket_id=t.id, number=t.number, category=t.category, reason=reason))
    d.result = d.tickets[-1]
    return d


def evaluate(
    q: HallQueue,
    cfg: Config,
    window: int,
    level: int | None,
    channel: str,
    now: datetime,
    ticket_id: str | None = None,
    reasons: tuple[str, ...] = (),
) -> Decision:
    """Record 好差评 for the ticket just finished (or being served) at ``window``.

    One rating per ticket (一次一评): a second press is refused, not overwritten.
    ``level=None`` records 未评价 when the pad timed out; never a default grade.
    """
    _window(cfg, window)
    if level is not None and level not in LEVEL_LABELS:
        raise Refused("bad_level", f"level must be 1..5, got {level}")
    w = q.window(window)
    if ticket_id is None:
        cur = q.tickets.get(w.current) if w.current else None
        ticket_id = cur.id if cur is not None and cur.state == "serving" else w.last_finished
    t = q.tickets.get(ticket_id) if ticket_id else None
    if t is None:
        raise Conflict("no_ticket_to_evaluate", f"window {window} has no finished ticket to evaluate")
    if t.window != window:
        raise Refused("ticket_not_at_window", f"ticket {t.number} was not served at window {window}")
    if t.state not in ("serving", "done"):
        raise Conflict("ticket_not_served", f"ticket {t.number} is {t.state}")
    if t.id in q.evaluated:
        raise Conflict("already_evaluated", f"ticket {t.number} already has an evaluation")
    d = Decision(at=now)
    e = Evaluation(ticket_id=t.id, level=level, window=window, staff=t.staff, channel=channel, at=now, reasons=reasons)
    d.evaluations.append(e)
    label = LEVEL_LABELS[level] if level is not None else UNRATED_LABEL
    d.log.append(LogRow("evaluated", t.id, window, {"level": level, "channel": channel}))
    d.events.append(
        ev.EvaluationRecorded(
            at=now,
            ticket_id=t.id,
            number=t.number,
            window=window,
            staff=t.staff,
            level=level,
            label=label,
            channel=channel,
        )
    )
    if level is not None and level <= 2:
        d.events.append(
            ev.Alert(
                at=now,
                alert="bad_evaluation",
                severity="warning",
                message=f"{t.number} 在{window}号窗口评价为{label}，需核实整改",
                subject=t.number,
                data={"window": window, "level": level, "staff": t.staff},
            )
        )
    d.result = e
    return d


def book(
    q: HallQueue,
    cfg: Config,
    code: str,
    category: str,
    slot_start: datetime,
    slot_end: datetime,
    now: datetime,
    holder_masked: str | None = None,
    id_hash: str | None = None,
) -> Decision:
    _category(cfg, category)
    if code in q.appointments:
        raise Conflict("appointment_exists", f"appointment {code} exists")
    if slot_end <= slot_start:
        raise Refused("bad_slot", "slot_end must be after slot_start")
    d = Decision(at=now)
    a = Appointment(code, category, slot_start, slot_end, holder_masked, id_hash)
    d.appointments.append(a)
    d.log.append(LogRow("appointment_booked", None, None, {"code": code, "category": category}))
    d.result = a
    return d


def check_in(q: HallQueue, cfg: Config, code: str, now: datetime, kiosk: str | None = None) -> Decision:
    """Turn an appointment into a ticket; within its limits it keeps its slot's place."""
    a = q.appointments.get(code)
    if a is None:
        raise NotFound("unknown_appointment", f"no appointment {code}")
    if a.state != "booked":
        raise Conflict("appointment_used", f"appointment {code} is {a.state}")
    early = a.slot_start - timedelta(minutes=cfg.queue.appointment_early_minutes)
    late = a.slot_start + timedelta(minutes=cfg.queue.appointment_late_minutes)
    if now < early:
        local = early.astimezone(cfg.hall.tz)
        raise Refused("appointment_too_early", f"预约签到最早在{local:%H:%M}", f"check-in opens at {local:%H:%M}")
    cat = _category(cfg, a.category)
    on_time = now <= late
    d = Decision(at=now)
    t = _new_ticket(
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
    return _finish_issue(q, d, t, None)


def rollover(q: HallQueue, cfg: Config, now: datetime) -> Decision | None:
    """A new business day: close what is still open from earlier days. History stays."""
    day = business_day(now, cfg)
    if day == q.day:
        return None
    d = Decision(at=now)
    for t in q.tickets.values():
        if t.state in ACTIVE and t.day < day:
            d.tickets.append(dataclasses.replace(t, state="cancelled", finished_at=now, end_reason="day_closed"))
            d.log.append(LogRow("cancelled", t.id, t.window, {"number": t.number, "reason": "day_closed"}))
            d.events.append(
                ev.TicketCancelled(at=now, ticket_id=t.id, number=t.number, category=t.category, reason="day_closed")
            )
    for w in q.windows.values():
        if w.current is not None or w.priority_streak or w.last_finished:
            d.windows.append(dataclasses.replace(w, current=None, priority_streak=0, last_finished=None))
    d.log.append(LogRow("day_opened", None, None, {"day": day.isoformat()}))
    d.result = day
    return d


def overdue(q: HallQueue, cfg: Config, now: datetime) -> list[tuple[str, Ticket]]:
    """Tickets past their supervision limits (电子监察): waiting too long, service too long."""
    out: list[tuple[str, Ticket]] = []
    for t in q.tickets.values():
        cat = cfg.category_by_prefix(t.category)
        if cat is None:
            continue
        wait_limit = cfg.supervision.wait_alert_minutes or 2 * cat.target_wait_minutes
        if t.state == "waiting" and now - t.sort_at > timedelta(minutes=wait_limit):
            out.append(("wait_exceeded", t))
        started = t.serving_at or t.called_at
        if t.state == "serving" and started and now - started > timedelta(minutes=cat.service_minutes):
            out.append(("service_overrun", t))
    return out
