"""Attendance (考勤) from badge sign-in/out sessions against the windows' opening hours. Pure.

A window is open when any of its categories is (the hall calendar's hours: holidays, 调休
and the hall's own closed and open days included). Per staff member and day: the first
sign-in and the last sign-out, the time signed in at each window, late arrival (first
sign-in after the earliest opening of the windows they worked at that day) and early leave
(last sign-out before the latest closing of those windows). Per window and day: the open
time no one was signed in (空岗).

A session counts on the business day it began. One not signed out that day (never, or
only on a later day, or ended by a sign-in there the next morning) ends at the window's
last closing time that day (or at ``now``, for today): a forgotten sign-out is flagged
(``no_sign_out``), not counted as a night at the window nor as presence the next day.
So a sign-in carried over from before the range counts for nothing in it (it belongs to
its own day), although the engine still names that person as the window's staff.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import date, datetime, time, timedelta

from hallctl.config import Config, WindowConfig
from hallctl.engine import business_day, calendar
from hallctl.reports.model import Session

Span = tuple[datetime, datetime]


def day_bounds(cfg: Config, day: date) -> Span:
    """The business day ``day``: from ``day_reset_hour`` local to the same hour the next day."""
    start = datetime.combine(day, time(cfg.hall.day_reset_hour), cfg.hall.tz)
    return start, start + timedelta(days=1)


def merge(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def overlap_s(a: list[Span], b: list[Span]) -> float:
    """Seconds two sets of disjoint, sorted spans have in common."""
    total = 0.0
    for s1, e1 in a:
        for s2, e2 in b:
            lo, hi = max(s1, s2), min(e1, e2)
            if hi > lo:
                total += (hi - lo).total_seconds()
    return total


def span_s(spans: list[Span]) -> float:
    return sum((e - s).total_seconds() for s, e in spans)


def window_hours(cfg: Config, w: WindowConfig, day: date) -> list[Span]:
    """When window ``w`` is open on ``day``: the union of its categories' opening intervals."""
    spans: list[Span] = []
    for prefix in w.categories:
        cat = cfg.category_by_prefix(prefix)
        if cat is not None:
            spans += calendar.intervals(cfg, cat, day)
    return merge(spans)


@dataclasses.dataclass(slots=True)
class StaffDay:
    day: date
    staff: str
    first_in: datetime | None = None
    last_out: datetime | None = None  # None: still signed in at the end, or never signed out
    signed_s: dict[int, float] = dataclasses.field(default_factory=dict)  # per window
    opens: datetime | None = None  # earliest opening of the windows worked at
    closes: datetime | None = None
    late_s: float = 0.0
    early_s: float = 0.0
    no_sign_out: bool = False

    @property
    def total_s(self) -> float:
        return sum(self.signed_s.values())


@dataclasses.dataclass(slots=True)
class WindowDay:
    day: date
    window: int
    open_s: float
    staffed_s: float

    @property
    def unstaffed_s(self) -> float:
        return max(0.0, self.open_s - self.staffed_s)


@dataclasses.dataclass(slots=True)
class Attendance:
    staff: list[StaffDay]
    windows: list[WindowDay]


def attendance(sessions: list[Session], cfg: Config, days: list[date], now: datetime) -> Attendance:
    """Attendance of ``days`` (consecutive business days) from the range's sessions; nothing after ``now`` counts."""
    hours = {(w.number, d): window_hours(cfg, w, d) for w in cfg.window for d in days}
    staff_days: dict[tuple[date, str], StaffDay] = {}
    covered: dict[tuple[date, int], list[Span]] = defaultdict(list)
    wanted = set(days)
    for s in sessions:
        if s.carried:  # begun on an earlier day: that day's attendance, not this range's
            continue
        d = business_day(s.start, cfg)
        if d not in wanted:
            continue
        closes = [e for _, e in hours.get((s.window, d), [])]
        signed_out = s.end is not None and business_day(s.end, cfg) == d
        # Never signed out that day: up to the window's closing (or now), and flagged.
        fallback = max(s.start, min(max(closes), now)) if closes else s.start
        end = s.end if signed_out and s.end is not None else fallback
        end = min(end, max(s.start, now))
        sd = staff_days.setdefault((d, s.staff), StaffDay(d, s.staff))
        sd.signed_s[s.window] = sd.signed_s.get(s.window, 0.0) + (end - s.start).total_seconds()
        covered[(d, s.window)].append((s.start, end))
        sd.first_in = s.start if sd.first_in is None else min(sd.first_in, s.start)
        if not signed_out:
            sd.no_sign_out = True
        elif s.end is not None and (sd.last_out is None or s.end > sd.last_out):
            sd.last_out = s.end
    out_staff: list[StaffDay] = []
    for (d, _), sd in sorted(staff_days.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        spans = [sp for w in sd.signed_s for sp in hours.get((w, d), [])]
        if spans:
            sd.opens = min(s for s, _ in spans)
            sd.closes = max(e for _, e in spans)
            if sd.first_in is not None and sd.first_in > sd.opens:
                sd.late_s = (sd.first_in - sd.opens).total_seconds()
            if not sd.no_sign_out and sd.last_out is not None and sd.last_out < sd.closes <= now:
                sd.early_s = (sd.closes - sd.last_out).total_seconds()
        if sd.no_sign_out:
            sd.last_out = None
        out_staff.append(sd)
    out_windows: list[WindowDay] = []
    for d in days:
        for w in cfg.window:
            open_spans = [(s, min(e, now)) for s, e in hours[(w.number, d)] if s < now]
            staffed = overlap_s(merge(open_spans), merge(covered.get((d, w.number), [])))
            out_windows.append(WindowDay(d, w.number, span_s(merge(open_spans)), staffed))
    return Attendance(out_staff, out_windows)
