"""The hall's calendar: which days it works, and the opening intervals of a category on a day.

One calendar for the queue's opening hours, appointments and the climate controller, so
they cannot disagree about whether 1 October is a working day. Statutory holidays (法定节假日)
and make-up working days (调休上班) come from the ``chinese-calendar`` package, which the
State Council's yearly notice updates; the hall's ``[calendar]`` overrides them.

Order of the rules for a date (first that applies wins):

1. ``closed_days``: closed.
2. ``open_days``: open with the hours of ``workday_hours_from`` (a weekend appointment day).
3. A statutory holiday: closed, unless the category is ``open_on_holidays``.
4. A weekend day that is a statutory working day (调休): the hours of ``workday_hours_from``.
5. Otherwise the category's weekly ``hours``.

A year the package has no data for, and that the hall does not list in ``own_years``, is
``unknown``: walk-in tickets follow the weekly hours (the building is open; staff decide),
but an appointment there is refused (``calendar_no_data``): a booking must not be promised
on what may turn out to be a holiday.

Pure: a data lookup, no clock and no I/O.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import chinese_calendar

from hallctl.config import DAYS, CalendarConfig, CategoryConfig, Config, OpeningSpan, parse_hours

DayKind = Literal["workday", "weekend", "holiday", "makeup", "open", "closed", "unknown"]

# Chinese names of the holidays chinese-calendar knows (its names are English).
HOLIDAY_NAMES_ZH = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}


@dataclasses.dataclass(frozen=True, slots=True)
class DayInfo:
    day: date
    kind: DayKind
    holiday: str | None = None  # the statutory holiday's English name (holiday and makeup days)

    @property
    def holiday_zh(self) -> str | None:
        return HOLIDAY_NAMES_ZH.get(self.holiday, self.holiday) if self.holiday else None


def statutory_years() -> tuple[int, int]:
    """The first and last year the installed ``chinese-calendar`` has holiday data for."""
    years = {d.year for d in chinese_calendar.holidays} | {d.year for d in chinese_calendar.workdays}
    return min(years), max(years)


def day_info(cfg: Config, day: date) -> DayInfo:
    return _day_info(cfg.calendar, day)


def _day_info(c: CalendarConfig, day: date) -> DayInfo:
    if day in c.closed_days:
        return DayInfo(day, "closed")
    if day in c.open_days:
        return DayInfo(day, "open")
    weekend = day.weekday() >= 5
    if c.statutory and day.year not in c.own_years:
        try:
            is_holiday, name = chinese_calendar.get_holiday_detail(day)
        except NotImplementedError:  # the package's "no available data for year N"
            return DayInfo(day, "unknown")
        if is_holiday and name is not None:
            return DayInfo(day, "holiday", name)
        if weekend and not is_holiday:
            return DayInfo(day, "makeup", name)
    return DayInfo(day, "weekend" if weekend else "workday")


def hours_weekday(cfg: Config, cat: CategoryConfig, info: DayInfo) -> int | None:
    """The weekday whose hours ``cat`` keeps on ``info``'s day, or None when it is closed."""
    if info.kind == "closed" or (info.kind == "holiday" and not cat.open_on_holidays):
        return None
    if info.kind in ("open", "makeup"):
        return DAYS.index(cfg.calendar.workday_hours_from)
    return info.day.weekday()


def intervals(cfg: Config, cat: CategoryConfig, day: date) -> list[tuple[datetime, datetime]]:
    """``cat``'s opening intervals on ``day`` (local, aware), in order; empty when it is closed."""
    return list(_intervals(cat.hours, cat.open_on_holidays, cfg.calendar, cfg.hall.timezone, day))


@functools.lru_cache(maxsize=4096)
def _intervals(
    hours: tuple[str, ...], open_on_holidays: bool, cal: CalendarConfig, timezone: str, day: date
) -> tuple[tuple[datetime, datetime], ...]:
    """Cached per (hours, calendar, day): every issue asks whether its category is open, and the
    answer for a day never changes while the config is the same (the calendar data is static)."""
    info = _day_info(cal, day)
    if info.kind == "closed" or (info.kind == "holiday" and not open_on_holidays):
        return ()
    weekday = DAYS.index(cal.workday_hours_from) if info.kind in ("open", "makeup") else day.weekday()
    tz = ZoneInfo(timezone)
    spans = _SPANS.get(hours)
    if spans is None:  # parsed once per distinct hours spec
        spans = _SPANS[hours] = tuple(parse_hours(h) for h in hours)
    out: list[tuple[datetime, datetime]] = []
    for span in spans:
        if weekday not in span.days:
            continue
        start = datetime.combine(day, span.start, tz)
        end = datetime.combine(day, span.end, tz) if span.end is not None else datetime.combine(day, time(0), tz)
        if span.end is None:
            end += timedelta(days=1)
        out.append((start, end))
    return tuple(sorted(out))


_SPANS: dict[tuple[str, ...], tuple[OpeningSpan, ...]] = {}


def is_open(cfg: Config, cat: CategoryConfig, now: datetime) -> bool:
    local = now.astimezone(cfg.hall.tz)
    return any(start <= local < end for start, end in intervals(cfg, cat, local.date()))


def slots(cfg: Config, cat: CategoryConfig, day: date) -> list[tuple[datetime, datetime]]:
    """The day's appointment slots of ``cat``: each opening interval cut into ``slot_minutes``.

    A slot never runs past the interval's close (a 09:00-11:45 morning with 30-minute slots
    ends its last slot at 11:30).
    """
    length = timedelta(minutes=cfg.appointments.slot_minutes)
    out: list[tuple[datetime, datetime]] = []
    for start, end in intervals(cfg, cat, day):
        at = start
        while at + length <= end:
            out.append((at, at + length))
            at += length
    return out


def capacity(cfg: Config, cat: CategoryConfig) -> int:
    return cfg.appointments.capacity if cat.appointment_capacity is None else cat.appointment_capacity
