"""Daily statistics from the store: the hall's headline figures.

Waiting time is :func:`hallctl.engine.waiting_time` (the one definition the queue
state and supervision use too: from joining the current queue to the first call);
service time is finish minus start of
service (or the call when service was not started explicitly). Service level is
the share of called visitors whose wait was within their category's target.
Satisfaction (好评率) is the share of rated visits that were not 差评 (level ≥ 3);
unrated visits (未评价) are counted apart, never as a grade.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from hallctl.config import Config
from hallctl.engine import is_bad_rating, waiting_time
from hallctl.reports.model import percentile
from hallctl.service import HallService
from hallctl.store import Store, TicketOutcome


def _pct(values: list[float], q: float) -> float | None:
    found = percentile(values, q)  # the one rank rule, shared with the reports
    return None if found is None else round(found, 1)


def _summary(rows: list[dict[str, Any]], targets: dict[str, int]) -> dict[str, Any]:
    waits = [r["wait_s"] for r in rows if r["wait_s"] is not None]
    services = [r["service_s"] for r in rows if r["service_s"] is not None]
    called = [r for r in rows if r["wait_s"] is not None]
    within = [r for r in called if r["wait_s"] <= targets.get(r["category"], 15) * 60]
    rated = [r for r in rows if r["level"] is not None]
    return {
        "issued": len(rows),
        "called": len(called),
        "done": sum(1 for r in rows if r["state"] == "done"),
        "no_show": sum(1 for r in rows if r["state"] == "no_show"),
        "no_show_rate": round(sum(1 for r in rows if r["state"] == "no_show") / len(called), 3) if called else None,
        "avg_wait_s": round(sum(waits) / len(waits), 1) if waits else None,
        "p50_wait_s": _pct(waits, 0.5),
        "p90_wait_s": _pct(waits, 0.9),
        "avg_service_s": round(sum(services) / len(services), 1) if services else None,
        "service_level": round(len(within) / len(called), 3) if called else None,
        "evaluations": len(rated),
        "unrated": sum(1 for r in rows if r["evaluated"] and r["level"] is None),
        "satisfaction": round(sum(1 for r in rated if not is_bad_rating(r["level"])) / len(rated), 3)
        if rated
        else None,
        "bad_evaluations": sum(1 for r in rated if is_bad_rating(r["level"])),
    }


def outcome_row(o: TicketOutcome, cfg: Config) -> dict[str, Any]:
    """The figures of one ticket that a day's report sums up."""
    t = o.ticket
    waited = waiting_time(t)
    start = t.serving_at or t.called_at
    service = (t.finished_at - start).total_seconds() if t.finished_at and start and t.state == "done" else None
    return {
        "category": t.category,
        "window": t.window,
        "staff": t.staff,
        "state": t.state,
        "hour": t.issued_at.astimezone(cfg.hall.tz).hour,
        "wait_s": waited.total_seconds() if waited is not None else None,
        "service_s": service,
        "level": o.level,
        "evaluated": o.evaluated,
        # Counted once per visitor: a transfer's follow-up ticket carries the same reason.
        "green_reason": (t.priority_reason or "green_channel")
        if t.priority == "green" and t.channel != "transfer"
        else None,
    }


async def day_stats(store: Store, cfg: Config, day: date) -> dict[str, Any]:
    return summarize(await store.day_outcomes(day), cfg, day)


def summarize(outcomes: list[TicketOutcome], cfg: Config, day: date) -> dict[str, Any]:
    """A day's report from its tickets and evaluations: totals and per category, window, staff, hour."""
    rows = [outcome_row(o, cfg) for o in outcomes]
    targets = {c.prefix: c.target_wait_minutes for c in cfg.category}
    groups: dict[str, dict[Any, list[dict[str, Any]]]] = {
        k: defaultdict(list) for k in ("category", "window", "staff", "hour")
    }
    for r in rows:
        for key in groups:
            if r[key] is not None:
                groups[key][r[key]].append(r)
    green: dict[str, int] = defaultdict(int)
    for r in rows:
        if r["green_reason"] is not None:
            green[r["green_reason"]] += 1
    return {
        "day": day.isoformat(),
        "hall": cfg.hall.id,
        "total": _summary(rows, targets),
        "green_channel": dict(sorted(green.items())),
        "by_category": {k: _summary(v, targets) for k, v in sorted(groups["category"].items())},
        "by_window": {str(k): _summary(v, targets) for k, v in sorted(groups["window"].items())},
        "by_staff": {k: _summary(v, targets) for k, v in sorted(groups["staff"].items())},
        "by_hour": {f"{k:02d}": _summary(v, targets) for k, v in sorted(groups["hour"].items())},
    }


async def service_day_stats(svc: HallService, day: date | None = None) -> dict[str, Any]:
    """The day's report from a running hall (today by default), read through the service."""
    d = day or svc.day
    return summarize(await svc.day_outcomes(d), svc.cfg, d)
