"""Daily and monthly reports (日报、月报) from event-log records and the config. Pure.

Breakdowns: the hall, department (进驻部门, from the categories and the staff), category,
window, staff member (by name), hour of issue, and for a month each day; attendance per
staff member and the windows' unstaffed time. The figures of a group of visits:

- ``issued``: tickets taken (a transfer's follow-up is not a new visitor; windows and staff
  issue nothing, so theirs is empty); ``called``, ``served`` (finished), ``no_show``,
  ``transferred`` (sent on to another window);
- ``avg_wait_s``, ``p90_wait_s``: :func:`hallctl.engine.waiting_time` of the called visits;
- ``avg_service_s``: the service time the engine logged when it finished the visit;
- ``service_level``: share of called visits whose wait was within their category's target;
- ``satisfaction`` (好评率): share of ratings 3-5 (基本满意 and above: all that is not 差评)
  among rated visits, one definition with ``GET /stats``; 未评价 is counted
  (``unrated``) but never a grade; ``bad_ratings`` (差评, level 1-2) and ``bad_cases``
  (those with a 核实整改 case, hallctl.supervision.cases; None when the source keeps no cases);
- ``wait_overtime``: called after the category's target wait; ``service_overtime``:
  served longer than the category's ``service_minutes``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any

from hallctl.config import Config
from hallctl.engine import is_bad_rating
from hallctl.reports.attendance import Attendance, StaffDay, attendance, day_bounds
from hallctl.reports.model import EventRecord, Visit, percentile, replay

NO_DEPARTMENT = "—"


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


def limits(cfg: Config) -> Callable[[Visit], tuple[float, float]]:
    """A visit's target wait and service limit in seconds, from its category in ``cfg``."""
    cats = {c.prefix: c for c in cfg.category}

    def of(v: Visit) -> tuple[float, float]:
        c = cats.get(v.category)
        return (c.target_wait_minutes if c else 15) * 60.0, (c.service_minutes if c else 20) * 60.0

    return of


def figures(
    visits: list[Visit], cfg: Config, *, issued: bool = True, cases: frozenset[str] | None = None
) -> dict[str, Any]:
    """The report's figures of one group of visits (the module docstring defines each)."""
    return figures_by(visits, limits(cfg), issued=issued, cases=cases)


def figures_by(
    visits: list[Visit],
    limit: Callable[[Visit], tuple[float, float]],
    *,
    issued: bool = True,
    cases: frozenset[str] | None = None,
) -> dict[str, Any]:
    """:func:`figures` with each visit's targets from ``limit``: the city pools visits of halls whose
    categories (and so targets) differ, and computes its total from them, never from averages."""
    called = [v for v in visits if v.first_called_at is not None]
    waits = [w for v in called if (w := v.wait_s) is not None]
    served = [v for v in visits if v.state == "done"]
    services = [v.service_s for v in served if v.service_s is not None]

    def target_s(v: Visit) -> float:
        return limit(v)[0]

    def limit_s(v: Visit) -> float:
        return limit(v)[1]

    within = sum(1 for v in called if (v.wait_s or 0.0) <= target_s(v))
    rated = [v.level for v in visits if v.level is not None]
    bad = [v for v in visits if v.level is not None and is_bad_rating(v.level)]
    return {
        "issued": sum(1 for v in visits if v.channel != "transfer") if issued else None,
        "called": len(called),
        "served": len(served),
        "no_show": sum(1 for v in visits if v.state == "no_show"),
        "transferred": sum(1 for v in visits if v.state == "transferred"),
        "avg_wait_s": _r(sum(waits) / len(waits)) if waits else None,
        "p90_wait_s": _r(percentile(waits, 0.9)),
        "avg_service_s": _r(sum(services) / len(services)) if services else None,
        "service_level": _r(within / len(called), 4) if called else None,
        "rated": len(rated),
        "unrated": sum(1 for v in visits if v.evaluated and v.level is None),
        "satisfaction": _r(sum(1 for lv in rated if not is_bad_rating(lv)) / len(rated), 4) if rated else None,
        "bad_ratings": len(bad),
        "bad_cases": sum(1 for v in bad if v.id in cases) if cases is not None else None,
        "wait_overtime": sum(1 for v in called if (v.wait_s or 0.0) > target_s(v)),
        "service_overtime": sum(1 for v in served if v.service_s is not None and v.service_s > limit_s(v)),
    }


def _group(visits: Iterable[Visit], key: Callable[[Visit], Any]) -> dict[Any, list[Visit]]:
    out: dict[Any, list[Visit]] = defaultdict(list)
    for v in visits:
        k = key(v)
        if k is not None:
            out[k].append(v)
    return out


def _staff_attendance(days: list[StaffDay]) -> dict[str, Any]:
    return {
        "days": len(days),
        "signed_in_s": _r(sum(d.total_s for d in days)),
        "late_days": sum(1 for d in days if d.late_s > 0),
        "late_s": _r(sum(d.late_s for d in days)),
        "early_days": sum(1 for d in days if d.early_s > 0),
        "early_s": _r(sum(d.early_s for d in days)),
        "no_sign_out_days": sum(1 for d in days if d.no_sign_out),
    }


def _iso(t: datetime | None, cfg: Config) -> str | None:
    return t.astimezone(cfg.hall.tz).isoformat(timespec="seconds") if t is not None else None


def build(
    records: Iterable[EventRecord],
    cfg: Config,
    first: date,
    last: date,
    now: datetime,
    *,
    kind: str,
    period: str,
    cases: frozenset[str] | None = None,
) -> dict[str, Any]:
    """The report of business days ``first``..``last`` (inclusive) from the hall's event records."""
    start, _ = day_bounds(cfg, first)
    _, end = day_bounds(cfg, last)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    rp = replay(records, cfg, start)
    visits = [v for v in rp.visits.values() if first <= v.day <= last]
    att: Attendance = attendance(rp.sessions, cfg, days, min(now, end))
    cats = {c.prefix: c for c in cfg.category}
    staff_cfg = {s.id: s for s in cfg.staff}
    windows_cfg = {w.number: w for w in cfg.window}

    def fig(vs: list[Visit], issued: bool = True) -> dict[str, Any]:
        return figures(vs, cfg, issued=issued, cases=cases)

    def cat_dept(v: Visit) -> str:
        c = cats.get(v.category)
        return c.department if c and c.department else NO_DEPARTMENT

    def staff_name(sid: str) -> str:
        s = staff_cfg.get(sid)
        return s.name if s else sid

    def staff_dept(sid: str) -> str:
        s = staff_cfg.get(sid)
        return s.department if s and s.department else NO_DEPARTMENT

    by_dept = _group(visits, cat_dept)
    by_cat = _group(visits, lambda v: v.category)
    by_window = _group(visits, lambda v: v.window)
    by_staff = _group(visits, lambda v: v.staff)
    by_hour = _group(visits, lambda v: v.issued_at.astimezone(cfg.hall.tz).hour)
    att_by_staff: dict[str, list[StaffDay]] = defaultdict(list)
    for sd in att.staff:
        att_by_staff[sd.staff].append(sd)
    unstaffed: dict[int, float] = defaultdict(float)
    open_s: dict[int, float] = defaultdict(float)
    for wd in att.windows:
        unstaffed[wd.window] += wd.unstaffed_s
        open_s[wd.window] += wd.open_s
    ratings = Counter(v.level for v in visits if v.evaluated)

    report: dict[str, Any] = {
        "kind": kind,
        "period": period,
        "hall": cfg.hall.id,
        "hall_name": cfg.hall.name,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "generated_at": _iso(now, cfg),
        "cases_known": cases is not None,
        "total": fig(visits),
        "by_department": [
            {"department": k, **fig(v)}
            for k, v in sorted(by_dept.items(), key=lambda kv: (kv[0] == NO_DEPARTMENT, kv[0]))
        ],
        "by_category": [
            {
                "category": c.prefix,
                "name": c.name,
                "name_en": c.name_en or c.prefix,
                "department": c.department or NO_DEPARTMENT,
                **fig(by_cat.get(c.prefix, [])),
            }
            for c in cfg.category
        ],
        "by_window": [
            {
                "window": n,
                "name": windows_cfg[n].name if n in windows_cfg else "",
                **fig(by_window.get(n, []), issued=False),
                "open_s": _r(open_s.get(n, 0.0)),
                "unstaffed_s": _r(unstaffed.get(n, 0.0)),
            }
            for n in sorted(set(windows_cfg) | set(by_window))
        ],
        "by_staff": [
            {
                "staff": sid,
                "name": staff_name(sid),
                "department": staff_dept(sid),
                **fig(by_staff.get(sid, []), issued=False),
                **_staff_attendance(att_by_staff.get(sid, [])),
            }
            for sid in sorted(set(by_staff) | set(att_by_staff), key=lambda s: (staff_name(s), s))
        ],
        "by_hour": [{"hour": h, **fig(by_hour[h])} for h in sorted(by_hour)],
        "ratings": {
            **{str(lv): ratings.get(lv, 0) for lv in (5, 4, 3, 2, 1)},
            "unrated": ratings.get(None, 0),
        },
        "attendance": [
            {
                "day": sd.day.isoformat(),
                "staff": sd.staff,
                "name": staff_name(sd.staff),
                "department": staff_dept(sd.staff),
                "first_in": _iso(sd.first_in, cfg),
                "last_out": _iso(sd.last_out, cfg),
                "signed_in_s": _r(sd.total_s),
                "windows": {str(w): _r(s) for w, s in sorted(sd.signed_s.items())},
                "opens": _iso(sd.opens, cfg),
                "closes": _iso(sd.closes, cfg),
                "late_s": _r(sd.late_s),
                "early_s": _r(sd.early_s),
                "no_sign_out": sd.no_sign_out,
            }
            for sd in att.staff
        ],
        "unstaffed": [
            {
                "day": wd.day.isoformat(),
                "window": wd.window,
                "open_s": _r(wd.open_s),
                "staffed_s": _r(wd.staffed_s),
                "unstaffed_s": _r(wd.unstaffed_s),
            }
            for wd in att.windows
            if wd.open_s > 0
        ],
    }
    if kind == "monthly":
        by_day = _group(visits, lambda v: v.day)
        report["by_day"] = [{"day": d.isoformat(), **fig(by_day.get(d, []))} for d in days]
    return report


def daily(
    records: Iterable[EventRecord], cfg: Config, day: date, now: datetime, *, cases: frozenset[str] | None = None
) -> dict[str, Any]:
    return build(records, cfg, day, day, now, kind="daily", period=day.isoformat(), cases=cases)


def month_days(month: str) -> tuple[date, date]:
    """``2026-11`` -> its first and last day; ValueError when it is not a month."""
    y, m = (int(p) for p in month.split("-", 1))
    first = date(y, m, 1)
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    return first, nxt - timedelta(days=1)


def monthly(
    records: Iterable[EventRecord], cfg: Config, month: str, now: datetime, *, cases: frozenset[str] | None = None
) -> dict[str, Any]:
    first, last = month_days(month)
    return build(records, cfg, first, last, now, kind="monthly", period=f"{first:%Y-%m}", cases=cases)
