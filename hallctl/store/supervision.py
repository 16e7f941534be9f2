"""Supervision's tables (电子监察 alerts, 好差评 follow-up cases): typed rows and their SQL.

A mixin of :class:`hallctl.store.Store`, kept apart so the supervision tables do not grow
the store's main module. Every write goes through the store's one writer thread
(:meth:`Database.write`); the partial unique index ``alerts_one_unresolved`` keeps one
unresolved alert per (kind, subject) even if two raises race.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

T = TypeVar("T")

ALERT_STATES = ("open", "acknowledged", "resolved")
CASE_STATES = ("open", "verified", "closed")


@dataclasses.dataclass(frozen=True, slots=True)
class AlertRow:
    id: int
    kind: str
    subject: str
    window: int | None
    severity: str
    message: str
    message_en: str
    data: dict[str, Any]
    state: str  # open, acknowledged, resolved
    level: int  # escalation level: 0 when raised, +1 each time it stays unacknowledged past the limit
    opened_at: datetime
    escalated_at: datetime | None = None
    acked_at: datetime | None = None
    acked_by: str | None = None
    acked_token: int | None = None
    ack_note: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolved_token: int | None = None
    resolve_note: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CaseNote:
    at: datetime
    by: str
    note: str
    token: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CaseRow:
    id: int
    ticket_id: str
    number: str
    window: int
    staff: str | None
    level: int
    reasons: tuple[str, ...]
    opened_at: datetime
    due_day: date
    state: str  # open, verified, closed
    notes: tuple[CaseNote, ...] = ()
    verified_at: datetime | None = None
    verified_by: str | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    closed_token: int | None = None
    overdue_alerted: bool = False


def _dt(v: str | None) -> datetime | None:
    return None if v is None else datetime.fromisoformat(v)


def _iso(v: datetime | None) -> str | None:
    return None if v is None else v.isoformat()


def alert_from_row(r: sqlite3.Row) -> AlertRow:
    return AlertRow(
        id=int(r["id"]),
        kind=r["kind"],
        subject=r["subject"],
        window=r["window"],
        severity=r["severity"],
        message=r["message"],
        message_en=r["message_en"],
        data=json.loads(r["data"]),
        state=r["state"],
        level=int(r["level"]),
        opened_at=datetime.fromisoformat(r["opened_at"]),
        escalated_at=_dt(r["escalated_at"]),
        acked_at=_dt(r["acked_at"]),
        acked_by=r["acked_by"],
        acked_token=r["acked_token"],
        ack_note=r["ack_note"],
        resolved_at=_dt(r["resolved_at"]),
        resolved_by=r["resolved_by"],
        resolved_token=r["resolved_token"],
        resolve_note=r["resolve_note"],
    )


def case_from_row(r: sqlite3.Row) -> CaseRow:
    notes = tuple(
        CaseNote(datetime.fromisoformat(n["at"]), n["by"], n["note"], n.get("token")) for n in json.loads(r["notes"])
    )
    return CaseRow(
        id=int(r["id"]),
        ticket_id=r["ticket_id"],
        number=r["number"],
        window=int(r["window"]),
        staff=r["staff"],
        level=int(r["level"]),
        reasons=tuple(json.loads(r["reasons"])),
        opened_at=datetime.fromisoformat(r["opened_at"]),
        due_day=date.fromisoformat(r["due_day"]),
        state=r["state"],
        notes=notes,
        verified_at=_dt(r["verified_at"]),
        verified_by=r["verified_by"],
        closed_at=_dt(r["closed_at"]),
        closed_by=r["closed_by"],
        closed_token=r["closed_token"],
        overdue_alerted=bool(r["overdue_alerted"]),
    )


def _notes_json(notes: tuple[CaseNote, ...]) -> str:
    return json.dumps(
        [{"at": n.at.isoformat(), "by": n.by, "note": n.note, "token": n.token} for n in notes], ensure_ascii=False
    )


class SupervisionTables:
    """The alert and case tables; mixed into ``Store``, which provides ``read`` and ``write``."""

    if TYPE_CHECKING:  # provided by hallctl.store.database.Database

        async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

        async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    # ---- alerts ---------------------------------------------------------------------------

    async def insert_alert(
        self,
        kind: str,
        subject: str,
        window: int | None,
        severity: str,
        message: str,
        message_en: str,
        data: dict[str, Any],
        at: datetime,
    ) -> AlertRow | None:
        """A new open alert; None when (kind, subject) already has an unresolved one (nothing written)."""

        def fn(c: sqlite3.Connection) -> AlertRow | None:
            cur = c.execute(
                "INSERT INTO alerts (kind, subject, window, severity, message, message_en, data, opened_at)"
                " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (
                    kind,
                    subject,
                    window,
                    severity,
                    message,
                    message_en,
                    json.dumps(data, ensure_ascii=False),
                    at.isoformat(),
                ),
            )
            if cur.rowcount == 0:
                return None
            row = c.execute("SELECT * FROM alerts WHERE id = ?", (cur.lastrowid,)).fetchone()
            return alert_from_row(row)

        result: AlertRow | None = await self.write(fn)
        return result

    async def save_alert(self, a: AlertRow) -> None:
        """Write an alert's state, escalation and who handled it (the rest never changes)."""
        await self.write(
            lambda c: c.execute(
                "UPDATE alerts SET state = ?, level = ?, escalated_at = ?, acked_at = ?, acked_by = ?, acked_token = ?,"
                " ack_note = ?, resolved_at = ?, resolved_by = ?, resolved_token = ?, resolve_note = ? WHERE id = ?",
                (
                    a.state,
                    a.level,
                    _iso(a.escalated_at),
                    _iso(a.acked_at),
                    a.acked_by,
                    a.acked_token,
                    a.ack_note,
                    _iso(a.resolved_at),
                    a.resolved_by,
                    a.resolved_token,
                    a.resolve_note,
                    a.id,
                ),
            )
        )

    async def alert(self, alert_id: int) -> AlertRow | None:
        def fn(c: sqlite3.Connection) -> AlertRow | None:
            r = c.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            return None if r is None else alert_from_row(r)

        result: AlertRow | None = await self.read(fn)
        return result

    async def alerts(
        self,
        *,
        states: tuple[str, ...] = (),
        kinds: tuple[str, ...] = (),
        windows: tuple[int, ...] | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AlertRow]:
        """Alerts matching every filter given, newest first. ``windows`` () matches nothing."""
        where: list[str] = []
        params: list[Any] = []
        for col, values in (("state", states), ("kind", kinds)):
            if values:
                where.append(f"{col} IN ({','.join('?' * len(values))})")
                params.extend(values)
        if windows is not None:
            where.append(f"window IN ({','.join('?' * len(windows))})" if windows else "0")
            params.extend(windows)
        if since is not None:
            where.append("opened_at >= ?")
            params.append(since.isoformat())
        sql = "SELECT * FROM alerts" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        result: list[AlertRow] = await self.read(lambda c: [alert_from_row(r) for r in c.execute(sql, params)])
        return result

    async def unresolved_alerts(self) -> list[AlertRow]:
        result: list[AlertRow] = await self.read(
            lambda c: [
                alert_from_row(r) for r in c.execute("SELECT * FROM alerts WHERE state != 'resolved' ORDER BY id")
            ]
        )
        return result

    # ---- 好差评 follow-up cases ----------------------------------------------------------------

    async def insert_case(
        self,
        ticket_id: str,
        number: str,
        window: int,
        staff: str | None,
        level: int,
        reasons: tuple[str, ...],
        at: datetime,
        due_day: date,
    ) -> CaseRow | None:
        """The case of a 差评; None when the ticket already has one (one rating, one case)."""

        def fn(c: sqlite3.Connection) -> CaseRow | None:
            cur = c.execute(
                "INSERT INTO evaluation_cases (ticket_id, number, window, staff, level, reasons, opened_at, due_day)"
                " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (ticket_id) DO NOTHING",
                (
                    ticket_id,
                    number,
                    window,
                    staff,
                    level,
                    json.dumps(list(reasons), ensure_ascii=False),
                    at.isoformat(),
                    due_day.isoformat(),
                ),
            )
            if cur.rowcount == 0:
                return None
            return case_from_row(c.execute("SELECT * FROM evaluation_cases WHERE id = ?", (cur.lastrowid,)).fetchone())

        result: CaseRow | None = await self.write(fn)
        return result

    async def save_case(self, k: CaseRow) -> None:
        await self.write(
            lambda c: c.execute(
                "UPDATE evaluation_cases SET reasons = ?, state = ?, notes = ?, verified_at = ?, verified_by = ?,"
                " closed_at = ?, closed_by = ?, closed_token = ?, overdue_alerted = ? WHERE id = ?",
                (
                    json.dumps(list(k.reasons), ensure_ascii=False),
                    k.state,
                    _notes_json(k.notes),
                    _iso(k.verified_at),
                    k.verified_by,
                    _iso(k.closed_at),
                    k.closed_by,
                    k.closed_token,
                    int(k.overdue_alerted),
                    k.id,
                ),
            )
        )

    async def case(self, case_id: int) -> CaseRow | None:
        def fn(c: sqlite3.Connection) -> CaseRow | None:
            r = c.execute("SELECT * FROM evaluation_cases WHERE id = ?", (case_id,)).fetchone()
            return None if r is None else case_from_row(r)

        result: CaseRow | None = await self.read(fn)
        return result

    async def case_of_ticket(self, ticket_id: str) -> CaseRow | None:
        def fn(c: sqlite3.Connection) -> CaseRow | None:
            r = c.execute("SELECT * FROM evaluation_cases WHERE ticket_id = ?", (ticket_id,)).fetchone()
            return None if r is None else case_from_row(r)

        result: CaseRow | None = await self.read(fn)
        return result

    async def cases(
        self, *, states: tuple[str, ...] = (), windows: tuple[int, ...] | None = None, limit: int = 100
    ) -> list[CaseRow]:
        where: list[str] = []
        params: list[Any] = []
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            params.extend(states)
        if windows is not None:
            where.append(f"window IN ({','.join('?' * len(windows))})" if windows else "0")
            params.extend(windows)
        sql = "SELECT * FROM evaluation_cases" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        result: list[CaseRow] = await self.read(lambda c: [case_from_row(r) for r in c.execute(sql, params)])
        return result

    async def case_tickets(self, first: date, last: date) -> frozenset[str]:
        """The tickets of business days ``first``..``last`` that have a 好差评 case (ticket ids begin
        with their business day, ``20261123-A001``)."""
        lo, hi = first.strftime("%Y%m%d"), (last + timedelta(days=1)).strftime("%Y%m%d")
        sql = "SELECT ticket_id FROM evaluation_cases WHERE ticket_id >= ? AND ticket_id < ?"
        found: frozenset[str] = await self.read(lambda c: frozenset(r[0] for r in c.execute(sql, (lo, hi))))
        return found

    async def bad_ratings_without_case(
        self, since: datetime
    ) -> list[tuple[str, int, int, str | None, tuple[str, ...], datetime]]:
        """差评 recorded since ``since`` that have no case yet (a crash between the rating and its case):
        (ticket_id, level, window, staff, reasons, at)."""

        def fn(c: sqlite3.Connection) -> list[tuple[str, int, int, str | None, tuple[str, ...], datetime]]:
            rows = c.execute(
                "SELECT e.ticket_id, e.level, e.window, e.staff, e.reasons, e.at FROM evaluations e"
                " LEFT JOIN evaluation_cases k ON k.ticket_id = e.ticket_id"
                " WHERE e.level IS NOT NULL AND e.level <= 2 AND k.id IS NULL AND e.at >= ? ORDER BY e.at",
                (since.isoformat(),),
            ).fetchall()
            return [
                (r[0], int(r[1]), int(r[2]), r[3], tuple(json.loads(r[4])), datetime.fromisoformat(r[5])) for r in rows
            ]

        result: list[tuple[str, int, int, str | None, tuple[str, ...], datetime]] = await self.read(fn)
        return result

    async def ticket_number(self, ticket_id: str) -> str | None:
        result: str | None = await self.read(
            lambda c: (lambda r: None if r is None else str(r[0]))(
                c.execute("SELECT number FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
            )
        )
        return result

    # ---- retention ----------------------------------------------------------------------------

    async def purge_supervision(self, cutoff: datetime) -> tuple[int, int]:
        """Delete alerts resolved and cases closed before ``cutoff``; open ones stay whatever their age.

        Returns (alerts, cases) deleted. Times are stored as UTC ISO strings, so the cutoff is too.
        """
        at = cutoff.astimezone(UTC).isoformat()

        def fn(c: sqlite3.Connection) -> tuple[int, int]:
            alerts = c.execute("DELETE FROM alerts WHERE state = 'resolved' AND resolved_at < ?", (at,)).rowcount
            cases = c.execute("DELETE FROM evaluation_cases WHERE state = 'closed' AND closed_at < ?", (at,)).rowcount
            return int(alerts), int(cases)

        result: tuple[int, int] = await self.write(fn)
        return result
