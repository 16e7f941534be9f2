"""The city's reports (docs/city.md#reports): one report code, two data sources.

A hall's daily or monthly report at the central is the hall's own report: the same pure
functions (:mod:`hallctl.reports.daily`) over the same event-log rows (read from PostgreSQL
as the hall reads its SQLite log, :meth:`CentralStore.report_rows`) with the hall's own
config (``[[hall]] config``). The cross-hall report has one row per hall (that hall's own
total) and a city total computed from every hall's visits together, each visit measured
against its own hall's targets: an average of averages would weigh a village with 20 visits
like the city centre with 3,000.

A hall without ``[[hall]] config`` is left out of the cross-hall report, and named in its
``omitted`` list: its business day (time zone, reset hour) and its categories' targets are
not known here, so its service level, overtime counts and even which day a ticket belongs to
would be guesses. Cases (差评整改工单) live in each hall's database, not in the event log:
``bad_cases`` is null here, never a false 0.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Literal

from hallctl.central.config import CentralConfig
from hallctl.central.store import CentralStore
from hallctl.citylog import EventLogRow
from hallctl.config import Config
from hallctl.errors import NotFound
from hallctl.reports import daily
from hallctl.reports.attendance import day_bounds
from hallctl.reports.model import Visit, record, replay

Kind = Literal["daily", "monthly"]
# The cross-hall report's breakdowns, in sheet order. Windows, staff, categories and attendance
# belong to one hall (window 1 of one hall is not window 1 of another): ask with ``hall``.
CITY_SHEETS: tuple[str, ...] = ("by_hall", "total", "by_day", "by_department", "by_hour", "ratings")
NO_CONFIG = "no_config"


class NoHallConfig(NotFound):
    """The central has no ``[[hall]] config`` for this hall, so it cannot compute the hall's report."""

    def __init__(self, hall: str) -> None:
        super().__init__(
            "no_hall_config",
            f"中心没有该大厅的配置文件（[[hall]] config）：{hall}",
            f"the central has no config for hall {hall} ([[hall]] config)",
        )


@dataclasses.dataclass(frozen=True, slots=True)
class HallRows:
    """One hall's report input: its config and its event-log rows of the period."""

    hall: str
    name: str
    name_en: str
    cfg: Config
    rows: list[EventLogRow]


def period_days(kind: Kind, period: str) -> tuple[date, date]:
    """A day (``2026-11-23``) or month (``2026-11``) as its first and last day; ValueError when it is none."""
    if kind == "daily":
        d = date.fromisoformat(period)
        return d, d
    return daily.month_days(period)


def hall_report(h: HallRows, kind: Kind, period: str, now: datetime) -> dict[str, Any]:
    """Exactly the hall's own report (its code, its config), from the central's copy of its rows."""
    records = [record(r) for r in h.rows]
    if kind == "daily":
        return daily.daily(records, h.cfg, date.fromisoformat(period), now, cases=None)
    return daily.monthly(records, h.cfg, period, now, cases=None)


def city_report(
    halls: list[HallRows], omitted: list[dict[str, str]], kind: Kind, period: str, now: datetime
) -> dict[str, Any]:
    """The cross-hall report: ``by_hall`` (each hall's own total) and the city's figures from all visits."""
    first, last = period_days(kind, period)
    pooled: list[Visit] = []
    limit: dict[int, tuple[float, float]] = {}  # by id(visit): ticket ids repeat across halls
    dept: dict[int, str] = {}
    hour: dict[int, int] = {}
    by_hall: list[dict[str, Any]] = []
    for h in halls:
        start, _ = day_bounds(h.cfg, first)
        visits = [
            v for v in replay([record(r) for r in h.rows], h.cfg, start).visits.values() if first <= v.day <= last
        ]
        of = daily.limits(h.cfg)
        cats = {c.prefix: c for c in h.cfg.category}
        for v in visits:
            limit[id(v)] = of(v)
            c = cats.get(v.category)
            dept[id(v)] = c.department if c and c.department else daily.NO_DEPARTMENT
            hour[id(v)] = v.issued_at.astimezone(h.cfg.hall.tz).hour
        name = h.name or h.cfg.hall.name
        by_hall.append(
            {
                "hall": h.hall,
                "name": name,
                "name_en": h.name_en or h.cfg.hall.name_en or name,
                **daily.figures(visits, h.cfg, cases=None),
            }
        )
        pooled.extend(visits)

    def fig(vs: list[Visit]) -> dict[str, Any]:
        return daily.figures_by(vs, lambda v: limit[id(v)], cases=None)

    def group(key: Callable[[Visit], Any]) -> dict[Any, list[Visit]]:
        out: dict[Any, list[Visit]] = defaultdict(list)
        for v in pooled:
            out[key(v)].append(v)
        return out

    by_dept = group(lambda v: dept[id(v)])
    by_hour = group(lambda v: hour[id(v)])
    ratings = Counter(v.level for v in pooled if v.evaluated)
    report: dict[str, Any] = {
        "kind": kind,
        "period": period,
        "scope": "city",
        "hall": None,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "generated_at": now.isoformat(timespec="seconds"),
        "cases_known": False,
        "halls": [h.hall for h in halls],
        "omitted": omitted,
        "total": fig(pooled),
        "by_hall": by_hall,
        "by_department": [
            {"department": k, **fig(v)}
            for k, v in sorted(by_dept.items(), key=lambda kv: (kv[0] == daily.NO_DEPARTMENT, kv[0]))
        ],
        "by_hour": [{"hour": k, **fig(by_hour[k])} for k in sorted(by_hour)],
        "ratings": {**{str(lv): ratings.get(lv, 0) for lv in (5, 4, 3, 2, 1)}, "unrated": ratings.get(None, 0)},
        "sheets": [s for s in CITY_SHEETS if s != "by_day" or kind == "monthly"],
    }
    if kind == "monthly":
        by_day = group(lambda v: v.day)
        days = [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]
        report["by_day"] = [{"day": d.isoformat(), **fig(by_day.get(d, []))} for d in days]
    return report


async def _rows(reader: CentralStore, cfg: CentralConfig, hall: str, first: date, last: date) -> HallRows:
    hcfg = cfg.hall_config(hall)
    if hcfg is None:
        raise NoHallConfig(hall)
    entry = next((h for h in cfg.hall if h.id == hall), None)
    start, _ = day_bounds(hcfg, first)
    _, end = day_bounds(hcfg, last)
    rows = await reader.report_rows(hall, start, end)
    return HallRows(hall, entry.name if entry else "", entry.name_en if entry else "", hcfg, rows)


async def report(
    reader: CentralStore, cfg: CentralConfig, kind: Kind, period: str, hall: str | None, now: datetime
) -> dict[str, Any]:
    """The report of one hall (``hall``) or of the city; the computation runs in a thread, as at the hall,
    so the ingestion sharing this loop keeps writing rows meanwhile. ValueError for a bad period."""
    first, last = period_days(kind, period)
    if hall is not None:
        h = await _rows(reader, cfg, hall, first, last)
        return await asyncio.to_thread(hall_report, h, kind, period, now)
    known = [h.id for h in cfg.hall if cfg.hall_config(h.id) is not None]
    seen = await reader.halls_with_rows(first, last)
    listed = [h.id for h in cfg.hall]
    names = {h.id: h.name for h in cfg.hall}
    omitted = [
        {"hall": hid, "name": names.get(hid, ""), "reason": NO_CONFIG}
        for hid in [*listed, *sorted(set(seen) - set(listed))]
        if hid not in known
    ]
    halls = [await _rows(reader, cfg, hid, first, last) for hid in known]
    return await asyncio.to_thread(city_report, halls, omitted, kind, period, now)
