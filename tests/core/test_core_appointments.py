"""The hall calendar (holidays, 调休, overrides) and appointment slots, decided by the engine."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from hallctl import engine
from hallctl.climate.schedule import zone_opening
from hallctl.config import ConfigError
from hallctl.engine import calendar
from hallctl.errors import Conflict, HallctlError, NotFound, Refused
from tests.core.core_harness import EngineHall
from tests.core.core_helpers import SHANGHAI, T0, make_config

# A hall with office hours: weekdays, a lunch break, Saturday morning (5+X).
HOURS = ["mon-fri 09:00-12:00", "mon-fri 13:30-17:00", "sat 09:00-12:00"]
WINDOWS = [{"number": 1, "categories": ["A", "S"]}]
CATS: list[dict[str, Any]] = [
    {"prefix": "A", "name": "便民服务", "name_en": "Citizen", "hours": HOURS},
    {"prefix": "S", "name": "自助服务", "name_en": "Self-service", "open_on_holidays": True},
]


def hall(now: datetime = T0, **over: Any) -> EngineHall:
    over.setdefault("category", CATS)
    over.setdefault("window", WINDOWS)
    over.setdefault("appointments", {"slot_minutes": 30, "capacity": 2})
    return EngineHall(make_config(**over), now)


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=SHANGHAI)


def book(
    h: EngineHall, code: str, start: datetime, category: str = "A", id_hash: str | None = None
) -> engine.Appointment:
    d = engine.book(h.q, h.cfg, code, category, start, None, h.now, None, id_hash)
    h._apply(d)
    a: engine.Appointment = d.result
    return a


def refusal(h: EngineHall, start: datetime, category: str = "A") -> HallctlError:
    with pytest.raises(HallctlError) as exc:
        engine.book(h.q, h.cfg, "99999999", category, start, None, h.now)
    return exc.value


# ---- the calendar ----------------------------------------------------------------------------


def test_statutory_holiday_makeup_day_and_overrides() -> None:
    """1 Oct is National Day, Sun 20 Sep 2026 a 调休 working day; the hall's own days override both."""
    cfg = make_config(
        category=CATS, window=WINDOWS, calendar={"closed_days": ["2026-11-25"], "open_days": ["2026-11-29"]}
    )
    assert calendar.day_info(cfg, date(2026, 10, 1)).kind == "holiday"
    assert calendar.day_info(cfg, date(2026, 10, 1)).holiday_zh == "国庆节"
    assert calendar.day_info(cfg, date(2026, 9, 20)).kind == "makeup"
    assert calendar.day_info(cfg, date(2026, 11, 21)).kind == "weekend"
    assert calendar.day_info(cfg, date(2026, 11, 25)).kind == "closed"  # a Wednesday the hall closes
    assert calendar.day_info(cfg, date(2026, 11, 29)).kind == "open"  # a Sunday appointment day
    a, s = cfg.category
    # Closed on the holiday (even at 10:00 on a Thursday), the self-service category is not.
    assert not engine.is_open(a, at(date(2026, 10, 1), 10), cfg)
    assert engine.is_open(s, at(date(2026, 10, 1), 10), cfg)
    # The 调休 Sunday keeps Monday's hours: open at 10:00 and 14:00, not at lunch.
    assert engine.is_open(a, at(date(2026, 9, 20), 10), cfg)
    assert engine.is_open(a, at(date(2026, 9, 20), 14), cfg)
    assert not engine.is_open(a, at(date(2026, 9, 20), 12, 30), cfg)
    assert not engine.is_open(a, at(date(2026, 9, 13), 10), cfg)  # an ordinary Sunday
    assert not engine.is_open(a, at(date(2026, 11, 25), 10), cfg)
    assert engine.is_open(a, at(date(2026, 11, 29), 14), cfg)
    # Without the statutory calendar, 1 Oct is just a Thursday.
    plain = make_config(category=CATS, window=WINDOWS, calendar={"statutory": False})
    assert engine.is_open(plain.category[0], at(date(2026, 10, 1), 10), plain)


def test_walk_in_ticket_refused_on_a_holiday() -> None:
    """The queue uses the same calendar: on 1 Oct at 10:00 category A refuses a ticket."""
    h = hall(at(date(2026, 10, 1), 10))
    with pytest.raises(Refused) as exc:
        h.issue("A")
    assert exc.value.code == "category_closed"
    assert h.issue("S").category == "S"


def test_beyond_the_package_data_is_unknown_and_not_bookable() -> None:
    """A year chinese-calendar has no data for: walk-ins keep weekly hours, a booking is refused clearly."""
    first, last = calendar.statutory_years()
    assert first <= 2026 <= last
    beyond = date(last + 1, 3, 2)  # a Tuesday or so: whatever, its holidays are not known
    h = hall(at(date(last, 12, 30), 10), appointments={"max_days_ahead": 366})
    assert calendar.day_info(h.cfg, beyond).kind == "unknown"
    err = refusal(h, at(beyond, 9))
    assert err.code == "calendar_no_data" and f"{last + 1}年" in err.message and str(last + 1) in err.message_en
    # The hall may declare that year itself: then the weekly hours and its own days hold.
    own = hall(at(date(last, 12, 30), 10), appointments={"max_days_ahead": 366}, calendar={"own_years": [last + 1]})
    assert calendar.day_info(own.cfg, beyond).kind in ("workday", "weekend")


def test_calendar_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError) as exc:
        make_config(calendar={"closed_days": ["2026-12-01"], "open_days": ["2026-12-01"]})
    assert "open_days" in str(exc.value) and "2026-12-01" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        make_config(calendar={"workday_hours_from": "sun"})
    assert "calendar.workday_hours_from" in str(exc.value)


# ---- slots ------------------------------------------------------------------------------------


def test_slots_follow_opening_hours() -> None:
    """30-minute slots in 09:00-12:00 and 13:30-17:00 on a weekday, 09:00-12:00 on Saturday, none on Sunday."""
    h = hall()
    a = h.cfg.category[0]
    monday = [s.strftime("%H:%M") for s, _ in calendar.slots(h.cfg, a, date(2026, 11, 23))]
    assert monday[:2] == ["09:00", "09:30"] and monday[5] == "11:30" and monday[6] == "13:30"
    assert monday[-1] == "16:30" and len(monday) == 6 + 7
    assert len(calendar.slots(h.cfg, a, date(2026, 11, 28))) == 6
    assert calendar.slots(h.cfg, a, date(2026, 11, 29)) == []
    assert calendar.slots(h.cfg, a, date(2026, 10, 1)) == []
    assert len(calendar.slots(h.cfg, a, date(2026, 9, 20))) == 13  # 调休 Sunday: a weekday's slots


def test_booking_refused_at_night_on_a_holiday_and_off_the_grid() -> None:
    """03:00 is outside hours, 1 January a holiday, 09:10 not a slot; each refusal says why in zh and en."""
    h = hall(datetime(2025, 12, 20, 10, 0, tzinfo=SHANGHAI), appointments={"max_days_ahead": 60})
    night = refusal(h, at(date(2025, 12, 22), 3))
    assert night.code == "outside_hours" and "办公时间" in night.message and "opening hours" in night.message_en
    new_year = refusal(h, at(date(2026, 1, 1), 10))
    assert new_year.code == "closed_day" and "元旦" in new_year.message and "New Year" in new_year.message_en
    assert refusal(h, at(date(2025, 12, 22), 9, 10)).code == "outside_hours"
    assert refusal(h, at(date(2025, 12, 21), 10)).code == "closed_day"  # an ordinary Sunday
    assert refusal(h, at(date(2025, 12, 19), 10)).code == "slot_passed"
    assert refusal(h, at(date(2026, 3, 2), 10)).code == "too_far_ahead"
    # 4 Jan 2026 is a Sunday worked in lieu (调休): bookable.
    assert book(h, "10000001", at(date(2026, 1, 4), 9, 30)).slot_end == at(date(2026, 1, 4), 10)
    with pytest.raises(Refused) as exc:
        engine.book(h.q, h.cfg, "10000002", "A", at(date(2025, 12, 22), 9), at(date(2025, 12, 22), 10), h.now)
    assert exc.value.code == "bad_slot"


def test_capacity_enforced_and_freed_by_cancel_and_reschedule() -> None:
    """Two places per slot: a third booking is refused; a cancel or a reschedule frees a place at once."""
    h = hall()
    slot, other = at(date(2026, 11, 24), 9), at(date(2026, 11, 24), 10)
    book(h, "20000001", slot)
    book(h, "20000002", slot)
    with pytest.raises(Conflict) as exc:
        engine.book(h.q, h.cfg, "20000003", "A", slot, None, h.now)
    assert exc.value.code == "slot_full" and "约满" in exc.value.message
    counts = engine.slot_counts(h.q, h.cfg, h.cfg.category[0], date(2026, 11, 24))
    assert (counts[0][2], counts[0][3]) == (2, 2)
    d = h._apply(engine.reschedule(h.q, h.cfg, "20000001", other, None, h.now))
    assert d.result.slot_start == other and h.q.appointments["20000001"].slot_end == other + timedelta(minutes=30)
    assert [r.kind for r in d.log] == ["appointment_rescheduled"]
    book(h, "20000003", slot)  # the place the reschedule freed
    h._apply(engine.cancel_appointment(h.q, h.cfg, "20000002", h.now))
    book(h, "20000004", slot)  # the place the cancel freed
    # Rescheduling into its own (full) slot is not refused for its own place.
    h._apply(engine.reschedule(h.q, h.cfg, "20000003", slot, None, h.now))
    with pytest.raises(Conflict):
        engine.reschedule(h.q, h.cfg, "20000001", slot, None, h.now)  # that slot is full
    with pytest.raises(Refused):
        engine.reschedule(h.q, h.cfg, "20000001", at(date(2026, 10, 1), 9), None, h.now)
    with pytest.raises(NotFound):
        engine.reschedule(h.q, h.cfg, "00000000", slot, None, h.now)


def test_one_booking_per_card_per_category_and_day_and_card_lookup() -> None:
    """The same ID card cannot hold two places the same day; on the day its booking is found by its hash."""
    h = hall()
    book(h, "30000001", at(date(2026, 11, 23), 9, 30), id_hash="h-1")
    with pytest.raises(Conflict) as exc:
        book(h, "30000002", at(date(2026, 11, 23), 14), id_hash="h-1")
    assert exc.value.code == "already_booked"
    assert engine.find_for_card(h.q, h.cfg, "h-1", h.now).code == "30000001"
    with pytest.raises(NotFound) as nf:
        engine.find_for_card(h.q, h.cfg, "h-2", h.now)
    assert nf.value.code == "no_appointment_for_card"


def test_not_offered_when_capacity_is_zero() -> None:
    h = hall(category=[{**CATS[0], "appointment_capacity": 0}, CATS[1]])
    assert refusal(h, at(date(2026, 11, 24), 9)).code == "appointments_not_offered"


def test_climate_opening_follows_the_hall_calendar() -> None:
    """The climate controller's opening is the queue's: closed on 1 Oct, open on the 调休 Sunday;
    ``[climate] holidays`` still closes a day for the climate alone."""
    cfg = make_config(
        category=CATS[:1],
        window=[{"number": 1, "categories": ["A"]}],
        climate_zone=[{"id": "f1", "categories": ["A"]}],
        climate={"holidays": ["2026-11-24"]},
    )
    zone = cfg.climate_zone[0]
    holiday = zone_opening(cfg, zone, at(date(2026, 10, 1), 10))
    assert not holiday.open_now
    # Closed through the Golden Week: the next opening is Thursday 8 Oct at 09:00 (7 days later, 23 h).
    assert holiday.minutes_to_open == pytest.approx((6 * 24 + 23) * 60)
    assert zone_opening(cfg, zone, at(date(2026, 9, 20), 10)).open_now
    assert not zone_opening(cfg, zone, at(date(2026, 11, 24), 10)).open_now  # climate-only closed day
    assert engine.is_open(cfg.category[0], at(date(2026, 11, 24), 10), cfg)  # the queue is open that day
