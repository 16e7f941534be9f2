"""The engine's live view of the hall (:class:`HallQueue`) and its indexes."""

from __future__ import annotations

import dataclasses
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from hallctl.config import Config, WindowConfig
from hallctl.engine.model import (
    ACTIVE,
    Appointment,
    Decision,
    Ticket,
    WindowStatus,
    waiting_time,
)


@dataclasses.dataclass(frozen=True, slots=True)
class CategoryDay:
    """What a category's screen shows for one business day, kept current by :meth:`HallQueue.apply`."""

    waiting: int
    last_issued: Ticket | None
    last_called: Ticket | None
    waits: int  # tickets called at least once
    wait_sum_us: int  # their waits (model.waiting_time), summed in microseconds (exact)

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
        self._queue._put(t)  # noqa: SLF001 -- the table is the queue's own index keeper (same module)

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
        self._build(value.values())

    def _build(self, tickets: Iterable[Ticket]) -> None:
        """File many tickets into empty indexes: append every entry, then sort each list once.

        The same entries as :meth:`_index` adds one by one, so the same lists (every entry is
        unique: it holds the ticket's arrival number), but one sort per list instead of a
        bisect and a list insert per ticket: loading 30,000 waiting tickets at start-up
        (issue 12, cold start) took 37 ms of CPU instead of 104-180 ms in one run.
        """
        ords, table = self._ord, self._tickets
        order, free_order, free_age = self._order, self._free_order, self._free_age
        free_normal_age, directed, issued, called = self._free_normal_age, self._directed, self._issued, self._called
        n_waiting, waits, id_uses = self._n_waiting, self._waits, self._id_uses
        for t in tickets:
            if t.id in ords:  # a second ticket under one id: the later replaces it, as _put does
                self._build_slow(t)
                continue
            n = ords[t.id] = len(ords)
            dict.__setitem__(table, t.id, t)
            cat = t.category
            dc = (t.day, cat)
            if t.state == "waiting":
                okey = (t.order_key(), n, t.id)
                age = (t.sort_at, t.seq, n, t.id)
                order.setdefault(cat, []).append(okey)
                if t.target_window is None:
                    free_order.setdefault(cat, []).append(okey)
                    free_age.setdefault(cat, []).append(age)
                    if t.priority == "normal":
                        free_normal_age.setdefault(cat, []).append(age)
                else:
                    directed.setdefault(t.target_window, []).append(age)
                n_waiting[dc] = n_waiting.get(dc, 0) + 1
            issued.setdefault(dc, []).append((t.seq, -n, t.id))
            if t.called_at is not None:
                called.setdefault(dc, []).append((t.called_at, -n, t.id))
            waited = waiting_time(t)
            if waited is not None:
                w = waits.setdefault(dc, [0, 0])
                w[0] += 1
                w[1] += _us(waited)
            if t.id_hash is not None and t.origin_id is None and t.state != "cancelled":
                key = (t.day, cat, t.id_hash)
                id_uses[key] = id_uses.get(key, 0) + 1
        for index in (order, free_order, free_age, free_normal_age, directed, issued, called):
            for items in index.values():
                items.sort()

    def _build_slow(self, t: Ticket) -> None:
        """A repeated id while building: sort what is there so far, then replace it the usual way."""
        for index in (self._order, self._free_order, self._free_age, self._free_normal_age, self._directed):
            for items in index.values():
                items.sort()
        for index2 in (self._issued, self._called):
            for items in index2.values():
                items.sort()
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
        waited = waiting_time(t)
        if waited is not None:
            waits = self._waits.setdefault(dc, [0, 0])
            waits[0] += sign
            waits[1] += sign * _us(waited)
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
        if d.new_day is not None:
            self._open_day(d.new_day)

    def _open_day(self, day: date) -> None:
        """Memory holds the business day's tickets and any still active; the store keeps the rest."""
        self.day = day
        self.tickets = {k: t for k, t in self._tickets.items() if t.day >= day or t.state in ACTIVE}
        self.counters = {k: v for k, v in self.counters.items() if k[0] >= day}

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
