"""HallQueue's incremental indexes equal a from-scratch scan after any sequence of commands.

The engine used to answer "how many wait ahead", "how many tickets has this ID taken",
"whom does this window call" and the queue screen's figures by scanning every ticket.
HallQueue now keeps sorted lists and counters that ``apply`` updates. Here random
command sequences (many sharing one instant, so ties are common) are checked after
every step against the old scans, written out below, and against indexes rebuilt from
the tickets alone.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from hallctl import engine
from hallctl.config import Config
from hallctl.engine import HallQueue, Ticket, WindowStatus
from hallctl.errors import HallctlError
from tests.core.core_harness import EngineHall
from tests.core.core_helpers import T0, make_config

WINDOWS = {1: ("A",), 2: ("A", "C"), 3: ("B", "A"), 4: ("C", "B")}
CFG = make_config(
    queue={
        "priority_streak_cap": 2,
        "starvation_minutes": 30,
        "max_recalls": 1,
        "per_id_daily_limit": 2,
        "appointment_early_minutes": 30,
        "appointment_late_minutes": 15,
    },
    window=[{"number": n, "categories": list(c)} for n, c in WINDOWS.items()],
)
IDS = ("h1", "h2", "h3")


# ---- the scans HallQueue replaced -----------------------------------------------------------


def scan_waiting(q: HallQueue, cats: tuple[str, ...] | None = None) -> list[Ticket]:
    return [t for t in q.tickets.values() if t.state == "waiting" and (cats is None or t.category in cats)]


def scan_ahead(q: HallQueue, ticket: Ticket) -> int:
    key = ticket.order_key()
    return sum(1 for t in scan_waiting(q, (ticket.category,)) if t.id != ticket.id and t.order_key() < key)


def scan_id_uses(q: HallQueue, category: str, id_hash: str) -> int:
    return sum(
        1
        for t in q.tickets.values()
        if t.day == q.day
        and t.category == category
        and t.id_hash == id_hash
        and t.origin_id is None
        and t.state != "cancelled"
    )


def scan_category_day(q: HallQueue, prefix: str) -> dict[str, Any]:
    today = [t for t in q.tickets.values() if t.category == prefix and t.day == q.day]
    issued = max(today, key=lambda t: t.seq, default=None)
    called = max((t for t in today if t.called_at), key=lambda t: t.called_at or t.issued_at, default=None)
    waits = [t for t in today if t.first_called_at is not None]
    return {
        "waiting": sum(1 for t in today if t.state == "waiting"),
        "last_issued": issued.id if issued else None,
        "last_called": called.id if called else None,
        "waits": len(waits),
        "wait_sum_us": sum(
            (t.first_called_at - t.issued_at) // timedelta(microseconds=1)
            for t in waits
            if t.first_called_at is not None
        ),
        "fmean": statistics.fmean(t.wait_s for t in waits if t.wait_s is not None) if waits else None,
    }


def check_queue(q: HallQueue, cfg: Config, now: datetime) -> None:
    """Every indexed answer equals the scan's, and equals indexes rebuilt from the tickets."""
    for cats in (None, ("A",), ("A", "C"), ("B", "A")):
        assert [t.id for t in q.waiting(cats)] == [t.id for t in scan_waiting(q, cats)]
    for t in q.tickets.values():
        assert engine.waiting_ahead(q, t) == scan_ahead(q, t), t.number
    for prefix in "ABC":
        for h in IDS:
            assert q.id_uses(prefix, h) == scan_id_uses(q, prefix, h)
        got = q.category_day(prefix)
        want = scan_category_day(q, prefix)
        assert (
            got.waiting,
            got.last_issued.id if got.last_issued else None,
            got.last_called.id if got.last_called else None,
            got.waits,
            got.wait_sum_us,
        ) == (want["waiting"], want["last_issued"], want["last_called"], want["waits"], want["wait_sum_us"])
        if want["fmean"] is None:
            assert got.avg_wait_s is None
        else:
            assert got.avg_wait_s == pytest.approx(want["fmean"], abs=0.051)
    for n in WINDOWS:
        wcfg = cfg.window_by_number(n)
        assert wcfg is not None
        for streak in (0, cfg.queue.priority_streak_cap):
            status = WindowStatus(n, priority_streak=streak)
            got_t = q.next_for(wcfg, status, now, cfg)
            want_t = engine.choose_next(scan_waiting(q), wcfg, status, now, cfg)
            assert (got_t.id if got_t else None) == (want_t.id if want_t else None), (n, streak)
    rebuilt = HallQueue(day=q.day, tickets=dict(q.tickets))
    assert index_state(q) == index_state(rebuilt)


def index_state(q: HallQueue) -> dict[str, Any]:
    """The indexes themselves, empty entries left out (an emptied list equals a missing one)."""
    names = (
        "_order",
        "_free_order",
        "_free_age",
        "_free_normal_age",
        "_directed",
        "_n_waiting",
        "_issued",
        "_called",
        "_waits",
        "_id_uses",
    )
    out: dict[str, Any] = {}
    for name in names:
        table = getattr(q, name)
        out[name] = {k: v for k, v in table.items() if v and v != [0, 0]}
    out["_ord"] = dict(q._ord)
    return out


# ---- random command sequences -----------------------------------------------------------------


class IndexMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = EngineHall(CFG, T0)
        self.codes = 0

    def _run(self, fn: Any, *args: Any, **kw: Any) -> Any:
        self.h.rollover()
        try:
            return fn(*args, **kw)
        except HallctlError:
            return None

    @rule(category=st.sampled_from("ABC"), green=st.booleans(), holder=st.sampled_from([None, *IDS]))
    def issue(self, category: str, green: bool, holder: str | None) -> None:
        self._run(self.h.issue, category, priority="green" if green else None, id_hash=holder)

    @rule(category=st.sampled_from("ABC"), offset=st.integers(-10, 25))
    def appointment(self, category: str, offset: int) -> None:
        self.codes += 1
        code = f"P{self.codes}"
        self._run(self.h.book, code, category, self.h.now + timedelta(minutes=offset))
        self._run(self.h.check_in, code)

    @rule(window=st.sampled_from(sorted(WINDOWS)))
    def call_next(self, window: int) -> None:
        self._run(self.h.call_next, window)

    @rule(window=st.sampled_from(sorted(WINDOWS)), data=st.data())
    def call_number(self, window: int, data: st.DataObject) -> None:
        numbers = sorted({t.number for t in self.h.q.tickets.values()})
        if numbers:
            self._run(self.h.call, window, data.draw(st.sampled_from(numbers)))

    @rule(window=st.sampled_from(sorted(WINDOWS)), action=st.sampled_from(["recall", "start", "finish", "no_show"]))
    def window_action(self, window: int, action: str) -> None:
        self._run(getattr(self.h, action), window)

    @rule(
        window=st.sampled_from(sorted(WINDOWS)),
        to_category=st.sampled_from([None, "A", "B", "C"]),
        to_window=st.sampled_from([None, *sorted(WINDOWS)]),
    )
    def transfer(self, window: int, to_category: str | None, to_window: int | None) -> None:
        self._run(self.h.transfer, window, to_category, to_window)

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        waiting = sorted(t.id for t in scan_waiting(self.h.q))
        if waiting:
            self._run(self.h.cancel, data.draw(st.sampled_from(waiting)))

    @rule(minutes=st.sampled_from([0, 0, 1, 5, 15, 30, 31, 60 * 24]))
    def advance(self, minutes: int) -> None:
        self.h.advance(minutes=minutes)
        self.h.rollover()

    @invariant()
    def indexes_match_scans(self) -> None:
        check_queue(self.h.q, CFG, self.h.now)


TestIndexMachine = IndexMachine.TestCase
TestIndexMachine.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# ---- the ticket table ---------------------------------------------------------------------------


def test_ticket_table_files_writes_through_the_indexes_and_refuses_deletes() -> None:
    h = EngineHall(CFG, T0)
    a = h.issue("A")
    b = h.issue("A")
    q = h.q
    # A write by item keeps the indexes in step.
    called = dataclasses.replace(a, state="called", called_at=h.now, first_called_at=h.now, window=1)
    q.tickets[a.id] = called
    assert q.category_day("A").waiting == 1 and engine.waiting_ahead(q, b) == 0
    with pytest.raises(KeyError):
        q.tickets["other"] = b
    ops: tuple[Callable[[], object], ...] = (
        lambda: q.tickets.pop(a.id),
        lambda: q.tickets.clear(),
        lambda: q.tickets.update({}),
        lambda: q.tickets.__delitem__(a.id),
        lambda: q.tickets.popitem(),
        lambda: q.tickets.setdefault(a.id, a),
    )
    for op in ops:
        with pytest.raises(TypeError):
            op()
    check_queue(q, CFG, h.now)
    # Assigning the table whole (what the day rollover does) rebuilds the indexes.
    q.tickets = {b.id: q.tickets[b.id]}
    assert [t.id for t in q.waiting()] == [b.id] and q.category_day("A").last_called is None
    check_queue(q, CFG, h.now)


def test_queue_equality_and_copy_ignore_index_internals() -> None:
    h = EngineHall(CFG, T0)
    for c in "ABCA":
        h.issue(c)
    copy = HallQueue(day=h.q.day, tickets=dict(h.q.tickets), windows=dict(h.q.windows), counters=dict(h.q.counters))
    assert copy == h.q
    assert dict(copy.tickets) == dict(h.q.tickets) and copy.tickets == h.q.tickets


# ---- loading many tickets at once (the start-up load) ------------------------------------------

_DAY = T0.date()
_AT = st.sampled_from([T0 + timedelta(minutes=m) for m in (0, 0, 1, 2, 5)])  # many ties


@st.composite
def _tickets(draw: st.DrawFn) -> list[Ticket]:
    out: list[Ticket] = []
    for i in range(draw(st.integers(0, 40))):
        state = draw(st.sampled_from(["waiting", "waiting", "called", "serving", "done", "cancelled"]))
        priority = draw(st.sampled_from(["normal", "normal", "green", "appointment"]))
        at = draw(_AT)
        called = draw(st.one_of(st.none(), _AT)) if state != "waiting" else None
        out.append(
            Ticket(
                id=f"t{i}",
                day=draw(st.sampled_from([_DAY, _DAY, _DAY - timedelta(days=1)])),
                category=draw(st.sampled_from("ABC")),
                seq=draw(st.integers(1, 5)),  # repeated on purpose: ties on every key
                number=f"A{i:03d}",
                priority=priority,
                channel="kiosk",
                state=state,
                issued_at=at,
                sort_at=draw(_AT),
                appointment_slot=draw(st.one_of(st.none(), _AT)) if priority == "appointment" else None,
                called_at=called,
                first_called_at=called,
                target_window=draw(st.sampled_from([None, None, 1, 2])),
                origin_id=draw(st.sampled_from([None, None, "t0"])),
                id_hash=draw(st.sampled_from([None, *IDS])),
            )
        )
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tickets())
def test_loading_many_tickets_at_once_builds_the_indexes_filing_them_one_by_one_would(tickets: list[Ticket]) -> None:
    """The start-up load sorts each index once; every list and counter equals the one-at-a-time filing's."""
    at_once = HallQueue(day=_DAY, tickets={t.id: t for t in tickets})
    one_by_one = HallQueue(day=_DAY)
    for t in tickets:
        one_by_one.tickets[t.id] = t
    assert index_state(at_once) == index_state(one_by_one)
    assert [t.id for t in at_once.waiting()] == [t.id for t in one_by_one.waiting()]
