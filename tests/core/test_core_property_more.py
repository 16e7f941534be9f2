"""More engine properties: call by number, evaluations, the per-ID daily limit, appointment check-in.

A second hypothesis state machine over the pure engine (through ``EngineHall``). Each rule
predicts the outcome from simple reference rules written here from docs/queue-policy.md,
then compares with what the engine decided; the test's own model (who was cancelled,
which tickets were rated, which codes were booked) is kept apart from the engine's state.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from hallctl import events as ev
from hallctl.engine import LEVEL_LABELS, UNRATED_LABEL, Ticket, for_window
from hallctl.errors import HallctlError
from tests.core.core_harness import EngineHall
from tests.core.core_helpers import T0, make_config

LIMIT = 2
EARLY_MIN = 30
LATE_MIN = 15
WINDOWS = {1: ("A",), 2: ("A", "C"), 3: ("B", "A")}
CFG = make_config(
    queue={
        "per_id_daily_limit": LIMIT,
        "appointment_early_minutes": EARLY_MIN,
        "appointment_late_minutes": LATE_MIN,
        "max_recalls": 1,
        "starvation_minutes": 45,
    },
    window=[{"number": n, "categories": list(c)} for n, c in WINDOWS.items()],
)
IDS = ("h0", "h1")
LABELS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}  # docs/queue-policy.md
# Arrival relative to the slot start, in seconds; boundaries of the early/late limits drawn often.
SLOT_OFFSETS = st.one_of(
    st.integers(-45 * 60, 75 * 60),
    st.sampled_from([EARLY_MIN * 60, EARLY_MIN * 60 + 1, 0, -LATE_MIN * 60, -LATE_MIN * 60 - 1]),
)
windows = st.sampled_from(sorted(WINDOWS))


@dataclass
class Booking:
    code: str
    category: str
    slot: datetime
    used: bool = False


class MoreHallMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = EngineHall(CFG, T0)
        self.by_id: list[tuple[str, date, str, str]] = []  # (ticket id, day, category, id_hash) issued with an ID
        self.cancelled: set[str] = set()  # tickets this test cancelled
        self.rated: dict[str, int | None] = {}  # ticket id → level, as this test recorded them
        self.bookings: dict[str, Booking] = {}
        self.codes = 0

    # ---- running a command ---------------------------------------------------------------------------

    def attempt(self, fn: Any, *args: Any) -> tuple[Any, HallctlError | None]:
        """Run one command; a refused command must leave the engine's state exactly as it was."""
        before = (dict(self.h.q.tickets), dict(self.h.q.windows), set(self.h.q.evaluated), dict(self.h.q.appointments))
        n = len(self.h.decisions)
        try:
            return fn(*args), None
        except HallctlError as exc:
            after = (self.h.q.tickets, self.h.q.windows, self.h.q.evaluated, self.h.q.appointments)
            assert after == before and len(self.h.decisions) == n, f"{exc.code} changed the state"
            return None, exc

    def today(self) -> list[Ticket]:
        return [t for t in self.h.q.tickets.values() if t.day == self.h.q.day]

    # ---- issuing with an ID card: the per-ID daily limit -----------------------------------------------

    @rule(
        batch=st.lists(st.tuples(st.sampled_from("ABC"), st.sampled_from(IDS), st.booleans()), min_size=1, max_size=6)
    )
    def issue_with_id(self, batch: list[tuple[str, str, bool]]) -> None:
        for category, who, green in batch:
            self.issue_one(category, who, green)

    def issue_one(self, category: str, who: str, green: bool) -> None:
        day = self.h.q.day
        used = sum(1 for tid, d, c, h in self.by_id if (d, c, h) == (day, category, who) and tid not in self.cancelled)
        t, exc = self.attempt(lambda: self.h.issue(category, id_hash=who, priority="green" if green else None))
        event(f"issue with ID: {exc.code if exc else 'issued'}")
        if used >= LIMIT:
            assert exc is not None and exc.code == "id_limit_reached", f"ticket {used + 1} for one ID was issued"
            return
        assert exc is None, f"refused with {exc and exc.code} after {used} tickets"
        assert t.id_hash == who and t.category == category and t.state == "waiting"
        self.by_id.append((t.id, day, category, who))

    @rule(category=st.sampled_from("ABC"))
    def issue_without_id(self, category: str) -> None:
        t, exc = self.attempt(self.h.issue, category)
        assert exc is None and t.id_hash is None

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        waiting = sorted(t.id for t in self.h.q.waiting())
        if not waiting:
            return
        tid = data.draw(st.sampled_from(waiting))
        _, exc = self.attempt(self.h.cancel, tid)
        assert exc is None
        self.cancelled.add(tid)

    # ---- window commands ---------------------------------------------------------------------------------

    @rule(window=windows)
    def call_next(self, window: int) -> None:
        self.attempt(self.h.call_next, window)

    @rule(
        window=windows,
        start=st.booleans(),
        rate=st.sampled_from(["skip", None, 1, 2, 3, 4, 5]),
        again=st.sampled_from([None, 1, 5]),
    )
    def visit(self, window: int, start: bool, rate: str | int | None, again: int | None) -> None:
        """A whole visit at one window: call next, perhaps start, finish, perhaps rate (and press again)."""
        t, _ = self.attempt(self.h.call_next, window)
        if t is not None:
            if start:
                self.attempt(self.h.start, window)
            self.attempt(self.h.finish, window)
            if rate != "skip":
                assert not isinstance(rate, str)
                self.check_evaluate(window, rate, None, False)
                self.check_evaluate(window, again, None, False)

    @rule(window=windows)
    def absent_visitor(self, window: int) -> None:
        """Call next and mark the visitor absent (过号), so call-by-number has no-shows to bring back."""
        t, _ = self.attempt(self.h.call_next, window)
        if t is not None:
            self.attempt(self.h.no_show, window)

    @rule(window=windows)
    def start(self, window: int) -> None:
        self.attempt(self.h.start, window)

    @rule(window=windows)
    def finish(self, window: int) -> None:
        self.attempt(self.h.finish, window)

    @rule(window=windows)
    def no_show(self, window: int) -> None:
        self.attempt(self.h.no_show, window)

    @rule(window=windows)
    def recall(self, window: int) -> None:
        self.attempt(self.h.recall, window)

    @rule(window=windows, to_category=st.sampled_from("ABC"))
    def transfer(self, window: int, to_category: str) -> None:
        self.attempt(self.h.transfer, window, to_category)

    @rule(window=windows, data=st.data())
    def call_number(self, window: int, data: st.DataObject) -> None:
        """Call a specific number: waiting or no-show tickets of today only; the window's current one ends."""
        numbers = sorted({t.number for t in self.today()})
        number = data.draw(st.sampled_from([*numbers, "A999", "Z001"]), label="number")
        target = next((t for t in self.today() if t.number == number), None)
        w = self.h.q.window(window)
        prev = self.h.q.tickets.get(w.current) if w.current else None
        prev_active = prev if prev is not None and prev.state in ("called", "serving") else None
        now = self.h.now

        called, exc = self.attempt(self.h.call, window, number)
        event(f"call number: {exc.code if exc else 'called ' + target.state if target else '?'}")
        if target is None:
            assert exc is not None and exc.code == "unknown_ticket"
            return
        if target.state not in ("waiting", "no_show"):
            assert exc is not None and exc.code == "ticket_not_waiting", f"{target.state} ticket was called"
            return
        wcfg = CFG.window_by_number(window)
        assert wcfg is not None
        if not for_window(target, wcfg):  # another window's category, or transferred to another window
            assert exc is not None and exc.code == "not_for_this_window", f"{target.number} called at {window}"
            return
        assert exc is None, f"calling a {target.state} ticket refused: {exc and exc.code}"
        assert called.id == target.id and called.state == "called" and called.window == window
        assert called.called_at == now and called.first_called_at == (target.first_called_at or now)
        assert called.recalls == 0 and self.h.ticket(target.id) == called
        assert self.h.q.window(window).current == target.id
        d = self.h.decisions[-1]
        calls = [e for e in d.events if isinstance(e, ev.TicketCalled)]
        assert [(e.number, e.window, e.recall) for e in calls] == [(number, window, 0)]
        if prev_active is not None:
            done = self.h.ticket(prev_active.id)
            assert done.state == "done" and done.finished_at == now, "the window's current ticket was not finished"
            assert self.h.q.window(window).last_finished == prev_active.id
        else:
            assert not any(isinstance(e, ev.TicketFinished) for e in d.events)

    # ---- evaluations ---------------------------------------------------------------------------------------

    @rule(
        window=windows,
        level=st.sampled_from([None, 1, 2, 3, 4, 5, None, 1, 2, 3, 4, 5, 0, 6]),
        explicit=st.booleans(),
        data=st.data(),
    )
    def evaluate(self, window: int, level: int | None, explicit: bool, data: st.DataObject) -> None:
        ids = sorted(t.id for t in self.today())
        tid = data.draw(st.sampled_from(ids), label="ticket") if explicit and ids else None
        self.check_evaluate(window, level, tid, explicit)

    def check_evaluate(self, window: int, level: int | None, tid: str | None, explicit: bool) -> None:
        """Rate ``tid`` (explicit) or the window's serving / just-finished ticket, against the reference rules."""
        w = self.h.q.window(window)
        if not explicit:
            cur = self.h.q.tickets.get(w.current) if w.current else None
            tid = cur.id if cur is not None and cur.state == "serving" else w.last_finished
        t = self.h.q.tickets.get(tid) if tid else None
        if level is not None and level not in LABELS:
            expected = "bad_level"
        elif t is None:
            expected = "no_ticket_to_evaluate"
        elif t.window != window:
            expected = "ticket_not_at_window"
        elif t.state not in ("serving", "done"):
            expected = "ticket_not_served"
        elif t.id in self.rated:
            expected = "already_evaluated"
        else:
            expected = None

        d, exc = self.attempt(self.h.evaluate, window, level, tid if explicit else None)
        event(f"evaluate: {expected or 'recorded'}")
        if expected is not None:
            assert exc is not None and exc.code == expected, f"expected {expected}, got {exc and exc.code}"
            return
        assert exc is None, f"a valid rating was refused: {exc and exc.code}"
        e = d.result
        assert t is not None and e.ticket_id == t.id and e.level == level and e.window == window
        events = d.events
        recorded = [x for x in events if isinstance(x, ev.EvaluationRecorded)]
        assert [(x.ticket_id, x.level, x.label) for x in recorded] == [
            (t.id, level, LABELS[level] if level is not None else "未评价")
        ]
        alerts = [x for x in events if isinstance(x, ev.Alert)]
        if level is not None and level <= 2:
            assert [(a.alert, a.subject) for a in alerts] == [("bad_evaluation", t.number)], "差评 without alert"
        else:
            assert alerts == [], f"alert for level {level}"
        self.rated[t.id] = level

    # ---- appointments ---------------------------------------------------------------------------------------

    def check_in_expect(self, b: Booking | None) -> tuple[str | None, str | None]:
        """(error code, priority) by the documented rule for an arrival now."""
        if b is None:
            return "unknown_appointment", None
        if b.used:
            return "appointment_used", None
        now = self.h.now
        if now < b.slot - timedelta(minutes=EARLY_MIN):
            return "appointment_too_early", None
        if now <= b.slot + timedelta(minutes=LATE_MIN):
            return None, "appointment"
        return None, "normal"

    def do_check_in(self, code: str) -> None:
        b = self.bookings.get(code)
        expected, priority = self.check_in_expect(b)
        t, exc = self.attempt(self.h.check_in, code)
        event(f"check-in: {expected or priority}")
        if expected is not None:
            assert exc is not None and exc.code == expected, f"expected {expected}, got {exc and exc.code}"
            return
        assert exc is None and b is not None, f"check-in refused: {exc and exc.code}"
        assert t.priority == priority, f"arrived {self.h.now - b.slot} from the slot: {t.priority}"
        assert t.priority_reason == (None if priority == "appointment" else "late_appointment")
        assert t.appointment_slot == b.slot and t.appointment_code == code and t.channel == "appointment"
        assert t.category == b.category and t.state == "waiting" and t.sort_at == self.h.now
        assert self.h.q.appointments[code].state == "checked_in" and self.h.q.appointments[code].ticket_id == t.id
        b.used = True

    @rule(category=st.sampled_from("ABC"), offset_s=SLOT_OFFSETS, now=st.booleans())
    def book(self, category: str, offset_s: int, now: bool) -> None:
        """Book a slot ``offset_s`` from now; with ``now`` the visitor arrives at once."""
        self.codes += 1
        code = f"P{self.codes}"
        slot = self.h.now + timedelta(seconds=offset_s)
        self.h.book(code, category, slot)
        self.bookings[code] = Booking(code, category, slot)
        if now:
            self.do_check_in(code)

    @rule(data=st.data())
    def check_in(self, data: st.DataObject) -> None:
        self.do_check_in(data.draw(st.sampled_from([*sorted(self.bookings), "NOPE"]), label="code"))

    # ---- time ---------------------------------------------------------------------------------------------

    @rule(minutes=st.sampled_from([1, 5, 10, 15, 30]))
    def advance(self, minutes: int) -> None:
        self.h.advance(minutes=minutes)
        self.h.rollover()

    @rule()
    def next_day(self) -> None:
        self.h.advance(days=1)
        self.h.rollover()

    # ---- invariants --------------------------------------------------------------------------------------

    @invariant()
    def per_id_limit_never_exceeded(self) -> None:
        held = Counter(
            (t.day, t.category, t.id_hash)
            for t in self.h.q.tickets.values()
            if t.id_hash is not None and t.origin_id is None and t.state != "cancelled"
        )
        assert all(n <= LIMIT for n in held.values()), f"over the per-ID limit: {held}"

    @invariant()
    def one_evaluation_per_ticket(self) -> None:
        assert self.h.q.evaluated == set(self.rated)
        recorded = [e.ticket_id for d in self.h.decisions for e in d.evaluations]
        assert len(recorded) == len(set(recorded)) == len(self.rated), "a ticket was rated twice"

    @invariant()
    def called_tickets_are_current_at_their_window(self) -> None:
        for t in self.h.q.tickets.values():
            if t.state in ("called", "serving"):
                assert self.h.q.window(t.window or 0).current == t.id, f"{t.number} {t.state} but not current"

    @invariant()
    def check_ins_match_bookings(self) -> None:
        for code, b in self.bookings.items():
            a = self.h.q.appointments[code]
            assert (a.state == "checked_in") == b.used
            if b.used:
                t = self.h.q.tickets.get(a.ticket_id or "")
                assert t is None or (t.appointment_code == code and t.appointment_slot == b.slot)


TestMoreHallMachine = MoreHallMachine.TestCase
TestMoreHallMachine.settings = settings(
    max_examples=300,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_reference_labels_match_engine() -> None:
    """the test's label table (from the docs) is the engine's, and an unrated visit is 未评价."""
    assert LEVEL_LABELS == LABELS and UNRATED_LABEL == "未评价"


def test_called_back_no_show_is_not_left_marked_no_show() -> None:
    """a no-show called back by number and served ends done with no no_show end reason or stale finish time."""
    h = EngineHall(CFG, T0)
    t = h.issue("A")
    h.next(1)
    h.no_show(1)
    h.advance(minutes=5)
    called = h.call(1, t.number)
    assert (called.state, called.finished_at, called.end_reason) == ("called", None, None)
    h.advance(minutes=5)
    h.finish(1)
    done = h.ticket(t.id)
    assert (done.state, done.end_reason) == ("done", None)
