"""The event log read for reports: the rows of a time range, and each window's sign-in state before it.

Reports (hallctl/reports/) are computed from these rows alone, so the same computation can
run on another copy of the same events (the city's PostgreSQL ingestion, issue 16).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from hallctl.citylog import REPORT_KINDS, SIGN_KINDS, EventLogRow

T = TypeVar("T")


def _row(r: sqlite3.Row) -> EventLogRow:
    # The city feed's row shape (hallctl.citylog): the central serves the same rows from PostgreSQL,
    # so the report code reads either source unchanged.
    return EventLogRow(r["seq"], r["at"], r["kind"], r["ticket_id"], r["window"], json.loads(r["data"]))


class ReportReads:
    """Mixed into :class:`hallctl.store.Store`: typed reads of the event log for a range."""

    if TYPE_CHECKING:

        async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...  # Database's

    async def report_events(self, start: datetime, end: datetime) -> list[EventLogRow]:
        """The report's rows with ``start <= at < end``, in log order, preceded by the last
        sign-in or sign-out of each window before ``start`` (who was at the window when the range began)."""
        kinds = ",".join("?" * len(REPORT_KINDS))
        signs = ",".join("?" * len(SIGN_KINDS))
        lo, hi = start.isoformat(), end.isoformat()

        def fn(conn: sqlite3.Connection) -> list[EventLogRow]:
            before = conn.execute(
                f"SELECT * FROM event_log WHERE seq IN (SELECT MAX(seq) FROM event_log WHERE kind IN ({signs})"
                " AND at < ? GROUP BY window) ORDER BY seq",
                (*SIGN_KINDS, lo),
            ).fetchall()
            rows = conn.execute(
                f"SELECT * FROM event_log WHERE at >= ? AND at < ? AND kind IN ({kinds}) ORDER BY seq",
                (lo, hi, *REPORT_KINDS),
            ).fetchall()
            return [_row(r) for r in before] + [_row(r) for r in rows]

        return await self.read(fn)
