"""The hall's data source for reports: its event log, read through the Store's typed method.

The computation (:mod:`hallctl.reports.daily`) never sees the store; the city feeds it
the same records from its own copy of the events.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

from hallctl.config import Config
from hallctl.reports import daily as core
from hallctl.reports.attendance import day_bounds
from hallctl.reports.model import EventRecord, record
from hallctl.store import EventLogRow, Store


async def rows(store: Store, cfg: Config, first: date, last: date) -> list[EventLogRow]:
    """The event-log rows of business days ``first``..``last`` (and who was signed in when they began)."""
    start, _ = day_bounds(cfg, first)
    _, end = day_bounds(cfg, last)
    return await store.report_events(start.astimezone(UTC), end.astimezone(UTC))


async def records(store: Store, cfg: Config, first: date, last: date) -> list[EventRecord]:
    return [record(r) for r in await rows(store, cfg, first, last)]


async def bad_rating_cases(store: Store, first: date, last: date) -> frozenset[str] | None:
    """The tickets whose 差评 has a 核实整改 case (hallctl.supervision.cases), for ``bad_cases``."""
    return await store.case_tickets(first, last)


# The computation runs in a thread: a busy month is some 150,000 rows and seconds of CPU
# (bench/reports.py), which must not hold the hall's one event loop.


async def daily_report(store: Store, cfg: Config, day: date, now: datetime) -> dict[str, Any]:
    found = await rows(store, cfg, day, day)
    cases = await bad_rating_cases(store, day, day)
    return await asyncio.to_thread(lambda: core.daily([record(r) for r in found], cfg, day, now, cases=cases))


async def monthly_report(store: Store, cfg: Config, month: str, now: datetime) -> dict[str, Any]:
    first, last = core.month_days(month)
    found = await rows(store, cfg, first, last)
    cases = await bad_rating_cases(store, first, last)
    return await asyncio.to_thread(lambda: core.monthly([record(r) for r in found], cfg, month, now, cases=cases))
