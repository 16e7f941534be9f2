"""When a zone is open: the queue's opening hours and the hall's holidays, as the controller sees them.

Pure (no clock, no I/O): the component passes ``now``. A zone is open when any of
its categories is open on the hall's calendar (:mod:`hallctl.engine.calendar`, the one
the queue and appointments use: statutory holidays, 调休 working days, ``[calendar]``
overrides); a date in ``[climate] holidays`` is, for the climate only, closed as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta, tzinfo

from hallctl.climate.controller import OpeningState
from hallctl.config import ClimateZoneConfig, Config, OpeningSpan
from hallctl.engine import calendar

HORIZON_DAYS = 8  # a week of hours plus today: any weekly schedule opens again within it


def zone_spans(cfg: Config, zone: ClimateZoneConfig) -> tuple[OpeningSpan, ...]:
    """The opening spans of the categories whose people are in ``zone``."""
    return tuple(span for prefix in zone_categories(cfg, zone) for span in _spans(cfg, prefix))


def _spans(cfg: Config, prefix: str) -> tuple[OpeningSpan, ...]:
    cat = cfg.category_by_prefix(prefix)
    return cat.spans if cat is not None else ()


def zone_categories(cfg: Config, zone: ClimateZoneConfig) -> tuple[str, ...]:
    """The zone's categories: configured, else those served on its floor, else every category."""
    if zone.categories:
        return zone.categories
    if zone.floor is not None:
        served = [c for w in cfg.window if w.floor == zone.floor for c in w.categories]
        served += [c for k in cfg.kiosk if k.floor == zone.floor for c in k.categories]
        if served:
            return tuple(dict.fromkeys(served))
    return tuple(c.prefix for c in cfg.category)


def _intervals(spans: Sequence[OpeningSpan], day: date, tz: tzinfo) -> Iterable[tuple[datetime, datetime]]:
    for span in spans:
        if day.weekday() not in span.days:
            continue
        start = datetime.combine(day, span.start, tz)
        if span.end is not None:
            yield start, datetime.combine(day, span.end, tz)
        else:  # "24:00": until the next midnight
            yield start, datetime.combine(day + timedelta(days=1), time(0), tz)


def zone_opening(cfg: Config, zone: ClimateZoneConfig, now: datetime) -> OpeningState:
    """The zone's opening on the hall calendar, less the climate's own ``[climate] holidays``."""
    closed_days = set(cfg.climate.holidays)
    cats = [c for p in zone_categories(cfg, zone) if (c := cfg.category_by_prefix(p)) is not None]
    local = now.astimezone(cfg.hall.tz)
    intervals: list[tuple[datetime, datetime]] = []
    for offset in range(-1, HORIZON_DAYS):
        day = local.date() + timedelta(days=offset)
        if day not in closed_days:
            for cat in cats:
                intervals.extend(calendar.intervals(cfg, cat, day))
    return _state(intervals, local)


def opening_state(spans: Sequence[OpeningSpan], holidays: Iterable[date], tz: tzinfo, now: datetime) -> OpeningState:
    """Open now? Minutes to the next opening and to the close of the present one (weekly spans only)."""
    closed_days = set(holidays)
    local = now.astimezone(tz)
    intervals: list[tuple[datetime, datetime]] = []
    for offset in range(-1, HORIZON_DAYS):
        day = local.date() + timedelta(days=offset)
        if day not in closed_days:
            intervals.extend(_intervals(spans, day, tz))
    return _state(intervals, local)


def _state(intervals: list[tuple[datetime, datetime]], local: datetime) -> OpeningState:
    intervals.sort()
    merged: list[tuple[datetime, datetime]] = []
    for start, end in intervals:  # touching spans (a lunch-less day in two specs, midnight) are one opening
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    for start, end in merged:
        if start <= local < end:
            return OpeningState(open_now=True, minutes_to_open=0.0, minutes_to_close=(end - local).total_seconds() / 60)
        if start > local:
            return OpeningState(
                open_now=False, minutes_to_open=(start - local).total_seconds() / 60, minutes_to_close=None
            )
    return OpeningState(open_now=False, minutes_to_open=None, minutes_to_close=None)
