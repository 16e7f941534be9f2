"""Unit tests of the pure queue engine (hallctl.engine): lifecycle, numbering, policy, refusals."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from hallctl import engine
from hallctl import events as ev
from hallctl.engine import Holder
from hallctl.errors import Conflict, NotFound, Refused
from tests.core.core_harness import EngineHall
from tests.core.core_helpers import SHANGHAI, T0, make_config


def hall(now: datetime = T0, **over: object) -> EngineHall:
    return EngineHall(make_config(**over), now)


# ---- lifecycle ------------------------------------------------------------------------------


def test_call_next_calls_oldest_and_announces() -> None:
    """call next takes the oldest waiting ticket and announces 请A001号到1号窗口办理."""
    h = hall()
    a1 = h.issue("A")
    h.advance(minutes=1)
    h.issue("A")
    t = h.call_next(1)
    assert t is not None and t.id == a1.id and t.state == "called" and t.window == 1
    called = [e for e in h.decisions[-1].events if isinstance(e, ev.TicketCalled)]
    assert called[0].announcement == "请A001号到1号窗口办理"
    assert h.q.window(1).current == a1.id


def test_call_next_with_empty_queue_returns_none() -> None:
    """call next on an empty queue calls nobody and leaves the window idle."""
    h = hall()
    assert h.call_next(1) is None
    assert h.q.window_state(1) == "idle"


def test_call_next_finishes_current_ticket() -> None:
    """with call_next_finishes_current, calling the next ticket finishes the current one."""
    h = hall()
    a1, a2 = h.issue("A"), h.issue("A")
    h.call_next(1)
    h.call_next(1)
    assert h.ticket(a1.id).state == "done"
    assert h.ticket(a2.id).state == "called"


def test_call_next_refused_when_busy_if_configured() -> None:
    """without call_next_finishes_current, call next while a ticket is current is a conflict."""
    h = hall(queue={"call_next_finishes_current": False})
    h.issue("A")
    h.issue("A")
    h.call_next(1)
    with pytest.raises(Conflict) as exc:
        h.call_next(1)
    assert exc.value.code == "window_busy"


def test_recall_counts_and_auto_no_show_after_max_recalls() -> None:
    """recall increments the count; the recall after max_recalls marks the ticket no-show."""
    h = hall(queue={"max_recalls": 2})
    a1 = h.issue("A")
    h.call_next(1)
    assert h.recall(1).result.recalls == 1
    assert h.recall(1).result.recalls == 2
    d = h.recall(1)
    assert d.result.state == "no_show" and d.result.end_reason == "no_show"
    assert any(isinstance(e, ev.TicketNoShow) and e.recalls == 2 for e in d.events)
    assert h.ticket(a1.id).state == "no_show"
    assert h.q.window(1).current is None


def test_a_recall_while_the_last_call_is_still_being_said_is_refused_with_the_wait() -> None:
    """The screen says a call (chime, sentence, twice) for about 12 s: a recall before the gap is refused."""
    h = hall(queue={"recall_min_gap_s": 15})
    h.issue("A")
    h.call_next(1)
    h.now += timedelta(seconds=5)
    with pytest.raises(Conflict) as exc:
        h.recall(1)
    assert exc.value.code == "recall_too_soon"
    assert "10秒" in exc.value.message and "10 s" in (exc.value.message_en or "")
    h.now += timedelta(seconds=10)
    d = h.recall(1)
    assert d.result.recalls == 1
    assert [e.recall for e in d.events if isinstance(e, ev.TicketCalled)] == [1]
    # The gap runs from the latest call, the recall itself included.
    h.now += timedelta(seconds=14)
    with pytest.raises(Conflict):
        h.recall(1)


def test_recall_without_called_ticket_conflicts() -> None:
    """recall at a window with no called ticket is a conflict, not a crash."""
    h = hall()
    with pytest.raises(Conflict):
        h.recall(1)


def test_call_specific_number() -> None:
    """call a specific number skips the queue order; unknown numbers are 404."""
    h = hall()
    h.issue("A")
    a2 = h.issue("A")
    t = h.call(1, "A002")
    assert t.id == a2.id and t.state == "called"
    with pytest.raises(NotFound):
        h.call(1, "A099")
    with pytest.raises(Conflict):
        h.call(2, "A002")  # already called at window 1


def test_start_finish_sets_serving_and_done() -> None:
    """start moves called → serving; finish moves serving → done and asks for an evaluation."""
    h = hall()
    a1 = h.issue("A")
    h.call_next(1)
    h.advance(minutes=2)
    assert h.start(1).state == "serving"
    h.advance(minutes=5)
    d = h.finish(1)
    done = h.ticket(a1.id)
    assert done.state == "done" and done.finished_at == h.now
    assert any(isinstance(e, ev.EvaluationRequested) for e in d.events)
    fin = next(e for e in d.events if isinstance(e, ev.TicketFinished))
    assert fin.service_s == 300.0
    assert h.q.window(1).last_finished == a1.id


def test_no_show_explicit() -> None:
    """no-show ends a called ticket and frees the window; a serving ticket cannot be a no-show."""
    h = hall()
    h.issue("A")
    h.call_next(1)
    assert h.no_show(1).state == "no_show"
    h.issue("A")
    h.call_next(1)
    h.start(1)
    with pytest.raises(Conflict):
        h.no_show(1)


def test_transfer_to_category_keeps_original_sort_time() -> None:
    """transfer to a category creates a follow-up numbered there that keeps its original place."""
    h = hall()
    a1 = h.issue("A")
    h.advance(minutes=10)
    b1 = h.issue("B")
    h.call_next(1)
    h.advance(minutes=5)
    new = h.transfer(1, to_category="B")
    assert h.ticket(a1.id).state == "transferred"
    assert new.category == "B" and new.number == "B002" and new.origin_id == a1.id
    assert new.sort_at == a1.sort_at < b1.sort_at
    assert h.next(3).id == new.id  # ahead of B001 issued later


def test_transfer_to_window_goes_first_there() -> None:
    """a ticket transferred to a window is called first at that window, and only there."""
    h = hall()
    h.issue("B")
    h.issue("A")
    a2 = h.issue("A")
    h.call(1, a2.number)
    new = h.transfer(1, to_window=3)
    assert new.target_window == 3 and new.category == "A"
    assert h.next(2).number == "A001"  # window 2 does not take tickets directed at 3
    assert h.next(3).id == new.id  # before B001, window 3's first category


def test_transfer_errors() -> None:
    """transfer needs a target, not the own window, and a known category."""
    h = hall()
    h.issue("A")
    h.call_next(1)
    with pytest.raises(Refused):
        h.transfer(1)
    with pytest.raises(Refused):
        h.transfer(1, to_window=1)
    with pytest.raises(NotFound):
        h.transfer(1, to_category="Z")


def test_pause_refuses_calls_and_resume_allows() -> None:
    """a paused window refuses call next until resumed."""
    h = hall()
    h.issue("A")
    h.pause(1, True)
    assert h.q.window_state(1) == "paused"
    with pytest.raises(Conflict) as exc:
        h.call_next(1)
    assert exc.value.code == "window_paused"
    h.pause(1, False)
    assert h.call_next(1) is not None


def test_cancel_only_waiting() -> None:
    """cancel ends a waiting ticket; a called ticket cannot be cancelled."""
    h = hall()
    a1, a2 = h.issue("A"), h.issue("A")
    assert h.cancel(a1.id).state == "cancelled"
    h.call_next(1)
    with pytest.raises(Conflict):
        h.cancel(a2.id)
    assert h.call_next(1) is None  # cancelled A001 is never called


def test_unknown_window_and_category() -> None:
    """unknown windows and categories are NotFound with stable codes."""
    h = hall()
    with pytest.raises(NotFound) as exc:
        h.call_next(99)
    assert exc.value.code == "unknown_window"
    with pytest.raises(NotFound) as exc:
        h.issue("Z")
    assert exc.value.code == "unknown_category"


# ---- numbering and the business day --------------------------------------------------------


def test_numbering_per_category() -> None:
    """each category counts on its own: A001, A002, B001, with the category's digits."""
    h = hall(
        category=[{"prefix": "A", "name": "a"}, {"prefix": "B", "name": "b", "digits": 4}],
        window=[{"number": 1, "categories": ["A", "B"]}],
    )
    assert [h.issue("A").number, h.issue("A").number, h.issue("B").number] == ["A001", "A002", "B0001"]


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2026, 11, 23, 2, 59, tzinfo=SHANGHAI), date(2026, 11, 22)),
        (datetime(2026, 11, 23, 3, 0, tzinfo=SHANGHAI), date(2026, 11, 23)),
        (datetime(2026, 11, 23, 23, 59, tzinfo=SHANGHAI), date(2026, 11, 23)),
    ],
)
def test_business_day_resets_at_configured_hour(local: datetime, expected: date) -> None:
    """the business day starts at day_reset_hour in Asia/Shanghai, not at UTC midnight."""
    cfg = make_config(hall={"day_reset_hour": 3})
    assert engine.business_day(local, cfg) == expected


def test_numbering_resets_at_day_reset_hour_and_keeps_history() -> None:
    """at the reset hour numbering starts again at 001; leftovers are cancelled, not deleted."""
    h = hall(now=datetime(2026, 11, 23, 16, 0, tzinfo=SHANGHAI), hall={"id": "x", "name": "x", "day_reset_hour": 3})
    first = h.issue("A")
    h.issue("A")
    h.call_next(1)
    h.now = datetime(2026, 11, 24, 2, 30, tzinfo=SHANGHAI)
    assert h.rollover() is None  # 02:30 still belongs to the 23rd
    assert h.issue("A").number == "A003"
    h.now = datetime(2026, 11, 24, 3, 0, tzinfo=SHANGHAI)
    d = h.rollover()
    assert d is not None and d.result == date(2026, 11, 24)
    cancelled = {t.id: t for t in d.tickets}
    assert all(t.state == "cancelled" and t.end_reason == "day_closed" for t in cancelled.values())
    assert len(cancelled) == 3  # the called A001 and the waiting A002, A003
    nxt = h.issue("A")
    assert nxt.number == "A001" and nxt.day == date(2026, 11, 24) and nxt.id != first.id
    assert h.q.window(1).current is None


def test_rollover_history_is_kept() -> None:
    """rollover writes cancellations only; it never drops a ticket row from the decision."""
    h = hall()
    a = h.issue("A")
    h.call_next(1)
    h.finish(1)
    b = h.issue("A")
    h.now = T0 + timedelta(days=1)
    d = h.rollover()
    assert d is not None
    assert [t.id for t in d.tickets] == [b.id]  # the done ticket is untouched
    assert any(row.kind == "day_opened" for row in d.log)
    assert a.id not in {t.id for t in d.tickets}


def test_rollover_applied_opens_the_new_day_in_memory() -> None:
    """applying the rollover (no service code) moves the day on and lets yesterday's finished tickets go."""
    h = hall()
    a = h.issue("A")
    h.call_next(1)
    h.finish(1)
    b = h.issue("A")
    h.now = T0 + timedelta(days=1)
    d = h.rollover()
    assert d is not None and h.q.day == d.result
    assert a.id not in h.q.tickets and b.id not in h.q.tickets  # finished / closed yesterday: only in the store
    assert all(key[0] >= h.q.day for key in h.q.counters)
    assert h.issue("A").number == "A001"


# ---- opening hours ------------------------------------------------------------------------


def test_closed_category_refuses_issue() -> None:
    """outside a category's opening hours issuing is refused with category_closed."""
    cats = [{"prefix": "A", "name": "便民", "hours": ["mon-fri 09:00-12:00", "mon-fri 13:30-17:00"]}]
    h = hall(category=cats, window=[{"number": 1, "categories": ["A"]}])
    h.now = datetime(2026, 11, 23, 12, 30, tzinfo=SHANGHAI)  # lunch
    with pytest.raises(Refused) as exc:
        h.issue("A")
    assert exc.value.code == "category_closed"
    h.now = datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI)  # Saturday
    with pytest.raises(Refused):
        h.issue("A")
    h.now = datetime(2026, 11, 23, 13, 30, tzinfo=SHANGHAI)
    assert h.issue("A").number == "A001"
    h.now = datetime(2026, 11, 23, 8, 59, tzinfo=SHANGHAI)
    assert h.issue("A", ignore_hours=True).number == "A002"


# ---- green channel ---------------------------------------------------------------------------


def test_elderly_needs_a_birth_date_the_number_agrees_with_and_a_possible_one() -> None:
    from hallctl.engine import birth_validated

    today = date(2026, 11, 23)
    assert birth_validated(_holder(date(1950, 1, 1)), today)
    mismatch = Holder(name="李小明", id_number="440106200105201234", birth=date(1900, 1, 1))
    assert not birth_validated(mismatch, today)
    future = date(2027, 12, 28)
    assert not birth_validated(_holder(future), today)
    assert not birth_validated(_holder(date(1899, 12, 31)), today)
    # Foreigners' cards carry no birth date in the number: plausibility only.
    assert birth_validated(
        Holder(name="A", id_number="X", birth=date(1950, 1, 1), card_type="foreign_permanent_2017"), today
    )


def _holder(birth: date) -> Holder:
    # The number carries the same birth date: only a birth date chip and number agree on gives priority.
    return Holder(name="张三丰", id_number=f"110101{birth:%Y%m%d}0012", birth=birth)


@pytest.mark.parametrize(
    ("birth", "today", "green"),
    [
        (date(1966, 11, 23), date(2026, 11, 23), True),  # 60 today
        (date(1966, 11, 24), date(2026, 11, 23), False),  # 60 tomorrow
        (date(1966, 2, 28), date(2026, 11, 23), True),
        (date(1966, 2, 28), date(2026, 2, 27), False),
        # 29 February birthdays: reached on 1 March in common years, on 29 February in leap years.
        (date(1964, 2, 29), date(2024, 2, 29), True),
        (date(1964, 2, 29), date(2024, 2, 28), False),
        (date(1966, 2, 28), date(2026, 2, 28), True),
    ],
)
def test_elderly_green_channel_from_birth_date(birth: date, today: date, green: bool) -> None:
    """holders aged 60 or more on the day (local date) get the green channel automatically."""
    now = datetime.combine(today, datetime.min.time(), SHANGHAI).replace(hour=10)
    h = hall(now=now)
    t = h.issue("A", holder=_holder(birth))
    assert (t.priority == "green") is green
    assert (t.priority_reason == "elderly") is green


def test_leap_day_birthday_in_common_year() -> None:
    """a 29 February birthday is reached on 1 March in a common year, not on 28 February."""
    assert engine.age_on(date(1964, 2, 29), date(2026, 2, 28)) == 61
    assert engine.age_on(date(1964, 2, 29), date(2026, 3, 1)) == 62
    cfg_age = {"elderly_age": 62}
    h = hall(now=datetime(2026, 2, 28, 10, tzinfo=SHANGHAI), queue=cfg_age)
    assert h.issue("A", holder=_holder(date(1964, 2, 29))).priority == "normal"
    h.now = datetime(2026, 3, 1, 10, tzinfo=SHANGHAI)
    h.rollover()
    assert h.issue("A", holder=_holder(date(1964, 2, 29))).priority == "green"


def test_auto_elderly_can_be_switched_off() -> None:
    """with auto_elderly_priority off, age alone gives no green channel."""
    h = hall(queue={"auto_elderly_priority": False})
    assert h.issue("A", holder=_holder(date(1940, 1, 1))).priority == "normal"


def test_guide_granted_green_goes_first() -> None:
    """a guide-granted green ticket is called before older normal tickets."""
    h = hall()
    h.issue("A")
    h.advance(minutes=1)
    g = h.issue("A", priority="green", priority_reason="disabled", channel="guide")
    assert g.priority == "green" and g.priority_reason == "disabled"
    assert h.next(1).id == g.id


# ---- appointments ------------------------------------------------------------------------------


def test_appointment_on_time_late_and_too_early() -> None:
    """on-time check-in → appointment priority by slot; late → normal; too early → refused."""
    h = hall(queue={"appointment_early_minutes": 30, "appointment_late_minutes": 15})
    h.book("P1", "A", T0 + timedelta(minutes=20))
    h.book("P2", "A", T0 + timedelta(minutes=10))
    h.book("P3", "A", T0 - timedelta(minutes=16))
    h.book("P4", "A", T0 + timedelta(minutes=31))
    normal = h.issue("A")
    t1, t2, t3 = h.check_in("P1"), h.check_in("P2"), h.check_in("P3")
    assert (t1.priority, t2.priority) == ("appointment", "appointment")
    assert t3.priority == "normal" and t3.priority_reason == "late_appointment"
    with pytest.raises(Refused) as exc:
        h.check_in("P4")
    assert exc.value.code == "appointment_too_early"
    with pytest.raises(Conflict):
        h.check_in("P1")  # used
    with pytest.raises(NotFound):
        h.check_in("NOPE")
    # Appointments are ordered by slot (P2 before P1), then normal tickets by issue time.
    assert [h.next(1).id for _ in range(4)] == [t2.id, t1.id, normal.id, t3.id]


def test_cancelled_appointment_cannot_be_checked_in() -> None:
    """cancelling a booked appointment marks it cancelled and logs it; check-in and a second cancel are refused."""
    h = hall()
    h.book("P1", "A", T0 + timedelta(minutes=10))
    d = h._apply(engine.cancel_appointment(h.q, h.cfg, "P1", h.now))
    assert d.result.state == "cancelled" and h.q.appointments["P1"].state == "cancelled"
    assert [(r.kind, r.data["code"]) for r in d.log] == [("appointment_cancelled", "P1")]
    with pytest.raises(Conflict) as exc:
        h.check_in("P1")
    assert exc.value.code == "appointment_used"
    with pytest.raises(Conflict) as exc:
        engine.cancel_appointment(h.q, h.cfg, "P1", h.now)
    assert exc.value.code == "appointment_used"
    h.book("P2", "A", T0 + timedelta(minutes=10))
    h.check_in("P2")
    with pytest.raises(Conflict):
        engine.cancel_appointment(h.q, h.cfg, "P2", h.now)  # already used for a ticket
    with pytest.raises(NotFound) as nf:
        engine.cancel_appointment(h.q, h.cfg, "NOPE", h.now)
    assert nf.value.code == "unknown_appointment"


# ---- anti-scalping -------------------------------------------------------------------------------


def test_per_id_daily_limit_refused_with_reason() -> None:
    """the (N+1)th ticket for one ID number in one category on one day is refused, clearly."""
    h = hall(queue={"per_id_daily_limit": 2})
    for _ in range(2):
        h.issue("A", id_hash="h1")
    with pytest.raises(Refused) as exc:
        h.issue("A", id_hash="h1")
    assert exc.value.code == "id_limit_reached"
    assert "上限" in exc.value.message and "limit" in exc.value.message_en
    assert h.issue("B", id_hash="h1").number == "B001"  # other category
    assert h.issue("A", id_hash="h2").number == "A003"  # other person


def test_per_id_limit_ignores_cancelled_and_resets_next_day() -> None:
    """cancelled tickets do not count against the limit, and the limit is per business day."""
    h = hall(queue={"per_id_daily_limit": 1})
    t = h.issue("A", id_hash="h1")
    h.cancel(t.id)
    h.issue("A", id_hash="h1")
    with pytest.raises(Refused):
        h.issue("A", id_hash="h1")
    h.now = T0 + timedelta(days=1)
    h.rollover()
    assert h.issue("A", id_hash="h1").number == "A001"


# ---- anti-starvation -------------------------------------------------------------------------------


def test_priority_streak_cap_lets_a_normal_through() -> None:
    """after priority_streak_cap priority calls in a row the oldest normal ticket goes next."""
    h = hall(queue={"priority_streak_cap": 2})
    n1 = h.issue("A")
    greens = [h.issue("A", priority="green") for _ in range(3)]
    order = [h.next(1).id for _ in range(4)]
    assert order == [greens[0].id, greens[1].id, n1.id, greens[2].id]


def test_starvation_minutes_puts_long_waiter_first_across_categories() -> None:
    """a ticket waiting longer than starvation_minutes goes next even from a later category."""
    h = hall(queue={"starvation_minutes": 30})
    c1 = h.issue("C")
    h.advance(minutes=20)
    a1 = h.issue("A")
    assert h.next(2).id == a1.id  # A is window 2's first category; C001 only 20 min
    h.issue("A")
    h.advance(minutes=10)
    assert h.next(2).id == c1.id  # C001 has now waited 30 minutes


def test_starvation_beats_green() -> None:
    """an overdue normal ticket is called before a fresh green one."""
    h = hall(queue={"starvation_minutes": 30})
    n = h.issue("A")
    h.advance(minutes=31)
    h.issue("A", priority="green")
    assert h.next(1).id == n.id


# ---- evaluations --------------------------------------------------------------------------------------


def test_evaluation_once_per_ticket() -> None:
    """one evaluation per ticket: a second is refused, not overwritten."""
    h = hall()
    h.issue("A")
    h.call_next(1)
    h.finish(1)
    d = h.evaluate(1, 5)
    assert d.result.level == 5
    rec = next(e for e in d.events if isinstance(e, ev.EvaluationRecorded))
    assert rec.label == "非常满意"
    with pytest.raises(Conflict) as exc:
        h.evaluate(1, 1)
    assert exc.value.code == "already_evaluated"


def test_unrated_evaluation_records_none() -> None:
    """level=None records 未评价, never a default grade, and raises no alert."""
    h = hall()
    h.issue("A")
    h.call_next(1)
    h.finish(1)
    d = h.evaluate(1, None)
    rec = next(e for e in d.events if isinstance(e, ev.EvaluationRecorded))
    assert rec.level is None and rec.label == "未评价"
    assert not any(isinstance(e, ev.Alert) for e in d.events)


@pytest.mark.parametrize(("level", "alert"), [(1, True), (2, True), (3, False), (5, False)])
def test_bad_evaluation_raises_alert(level: int, alert: bool) -> None:
    """ratings of 2 or less raise a bad_evaluation Alert event."""
    h = hall()
    h.issue("A")
    h.call_next(1)
    h.finish(1)
    d = h.evaluate(1, level)
    alerts = [e for e in d.events if isinstance(e, ev.Alert)]
    assert bool(alerts) is alert
    if alert:
        assert alerts[0].alert == "bad_evaluation" and alerts[0].subject == "A001"


def test_evaluation_wrong_window_and_bad_level() -> None:
    """evaluating another window's ticket or a level outside 1..5 is refused."""
    h = hall()
    t = h.issue("A")
    h.call_next(1)
    h.finish(1)
    with pytest.raises(Refused):
        h.evaluate(2, 4, ticket_id=t.id)
    with pytest.raises(Refused):
        h.evaluate(1, 6)


def test_two_tickets_directed_to_one_window_oldest_first() -> None:
    """of several tickets transferred to one window, the one with the oldest original time goes first."""
    h = hall()
    old = h.issue("A")
    h.advance(minutes=5)
    young = h.issue("A")
    h.call(1, young.number)
    t_young = h.transfer(1, to_window=3)
    h.call(2, old.number)
    t_old = h.transfer(2, to_window=3)
    assert t_old.seq > t_young.seq  # numbered later, but older by original issue time
    assert [h.next(3).id, h.next(3).id] == [t_old.id, t_young.id]


def test_overdue_oldest_first_across_categories() -> None:
    """several overdue tickets: the longest waiting goes first whatever its number in its category."""
    h = hall(queue={"starvation_minutes": 30})
    for _ in range(3):
        h.issue("A")
    h.advance(minutes=1)
    c1 = h.issue("C")  # C001 has a lower seq than A003 but is younger than every A ticket
    h.advance(minutes=40)
    got = [h.next(2).number for _ in range(4)]
    assert got == ["A001", "A002", "A003", c1.number]


def test_event_log_names_the_category_issued_and_the_staff_who_called() -> None:
    """The log alone says what was issued and who called it: the city's reports have no sign-ins to guess from."""
    h = hall()
    h.apply_sign_in(1, "0231")
    issued = h.issue_d("A")
    row = next(r for r in issued.log if r.kind == "issued")
    assert row.data["category"] == "A"
    t = h.call_next(1)
    assert t is not None
    called = next(r for r in h.decisions[-1].log if r.kind == "called")
    assert called.data["staff"] == "0231" and called.window == 1
    recalled = next(r for r in h.recall(1).log if r.kind == "recalled")
    assert recalled.data["staff"] == "0231"
