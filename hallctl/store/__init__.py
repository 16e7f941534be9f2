"""Durable state in SQLite: the only place in hallctl that holds SQL.

:class:`Store` gives typed methods for everything the daemon and the CLI keep on
disk: decisions (tickets, windows, evaluations, appointments, the event log and
idempotency records, each :class:`Decision` in one transaction, so a crash can
never leave half a state change), lookups, day reports, tokens, the MQTT outbox
and retained topics, sensor history (per minute), retention and backups. The connection and
thread handling lives in :mod:`hallctl.store.database`, row mapping in
:mod:`hallctl.store.rows`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from hallctl import jsontext
from hallctl.citylog import EventLogRow
from hallctl.engine import Appointment, Decision, HallQueue, Holder, Ticket, WindowStatus
from hallctl.errors import HallctlError
from hallctl.store.admin import AdminTables
from hallctl.store.citylog import CityLogStore
from hallctl.store.database import backup_file, split_sql
from hallctl.store.inserts import Row
from hallctl.store.integrity import DaemonLock, StoreRefused
from hallctl.store.keyfilter import MIN_CAPACITY, KeyFilter
from hallctl.store.reports import ReportReads
from hallctl.store.rows import (
    INSERT_EVALUATION,
    INSERT_EVENT,
    INSERT_HOLDER,
    INSERT_IDEMPOTENCY,
    SENSOR_MINUTE_COLUMNS,
    TICKET_FIELDS,
    UPSERT_APPOINTMENT,
    UPSERT_TICKET,
    UPSERT_WINDOW,
    ClimateEnergyRow,
    ClimateOverrideRow,
    ClimateRatesRow,
    LogEntry,
    OutboxRow,
    SensorMinute,
    TicketOutcome,
    TokenRecord,
    holder_from_row,
    sensor_minute_from_row,
    sensor_minute_row,
    ticket_from_row,
    ticket_row,
    tickets_from_tuples,
    token_from_row,
)
from hallctl.store.supervision import AlertRow, CaseNote, CaseRow, SupervisionTables
from hallctl.tasks import cancel_and_wait

__all__ = [
    "AlertRow",
    "CaseNote",
    "CaseRow",
    "ClimateEnergyRow",
    "ClimateOverrideRow",
    "ClimateRatesRow",
    "DaemonLock",
    "EventLogRow",
    "LogEntry",
    "OutboxRow",
    "SensorMinute",
    "Store",
    "StoreHealth",
    "StoreRefused",
    "TicketOutcome",
    "TokenRecord",
    "backup_file",
    "split_sql",
]


@dataclasses.dataclass(frozen=True, slots=True)
class StoreHealth:
    ok: bool
    write_errors: int
    last_error: str | None
    damaged: bool = False  # the start-up check found damage and [store] on_damage = "continue" went on
    damage: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        out = dataclasses.asdict(self)
        out["damage"] = list(self.damage)
        return out


class Store(AdminTables, CityLogStore, ReportReads, SupervisionTables):
    def __init__(
        self, path: str, *, busy_timeout_ms: int = 2000, max_size_mb: float | None = None, store_photo: bool = False
    ) -> None:
        super().__init__(path, busy_timeout_ms=busy_timeout_ms, max_size_mb=max_size_mb)
        self.store_photo = store_photo
        # Idempotency keys the database may hold (None until built: every lookup reads the database).
        self.key_filter: KeyFilter | None = None
        self.key_filter_min_capacity = MIN_CAPACITY  # keys; a filter past its capacity is rebuilt larger
        self.key_reads_skipped = 0  # lookups the filter answered "not stored" without a read
        self._key_backlog: list[str] | None = None  # keys queued while a filter is being built
        self._key_loading: asyncio.Task[None] | None = None

    # ---- decisions -------------------------------------------------------------------

    def _decision_rows(self, d: Decision, idempotency: tuple[str, int, str] | None) -> list[Row]:
        """``d``'s rows in table order (tickets first: the others reference them); built on the loop."""
        rows: list[Row] = [(UPSERT_TICKET, ticket_row(t)) for t in d.tickets]
        at = d.at.isoformat()
        for ticket_id, h in d.holders:
            rows.append(
                (
                    INSERT_HOLDER,
                    (
                        ticket_id,
                        h.name,
                        h.id_number,
                        h.sex,
                        h.birth.isoformat() if h.birth else None,
                        h.nation,
                        h.address,
                        h.card_type,
                        h.authority,
                        h.valid_to.isoformat() if h.valid_to else None,
                        h.photo if self.store_photo else None,
                        at,
                    ),
                )
            )
        for w in d.windows:
            rows.append(
                (UPSERT_WINDOW, (w.number, w.current, w.staff, int(w.paused), w.last_finished, w.priority_streak))
            )
        for e in d.evaluations:
            rows.append(
                (
                    INSERT_EVALUATION,
                    (e.ticket_id, e.level, e.window, e.staff, e.channel, json.dumps(list(e.reasons)), e.at.isoformat()),
                )
            )
        for a in d.appointments:
            rows.append(
                (
                    UPSERT_APPOINTMENT,
                    (
                        a.code,
                        a.category,
                        a.slot_start.isoformat(),
                        a.slot_end.isoformat(),
                        a.holder_masked,
                        a.id_hash,
                        a.state,
                        a.ticket_id,
                    ),
                )
            )
        for row in d.log:
            rows.append((INSERT_EVENT, (at, row.kind, row.ticket_id, row.window, jsontext.dumps(row.data))))
        if idempotency is not None:
            key, status, body = idempotency
            self._note_key(key)  # now, in write order: before any later lookup can miss it
            rows.append((INSERT_IDEMPOTENCY, (key, status, body, at)))
        return rows

    def _note_key(self, key: str) -> None:
        f = self.key_filter
        if f is not None:
            f.add(key)
            if f.full and self._key_loading is None:
                self._key_loading = asyncio.ensure_future(self.load_key_filter())  # a larger one
        if self._key_backlog is not None:
            self._key_backlog.append(key)

    async def apply(self, d: Decision, *, idempotency: tuple[str, int, str] | None = None) -> None:
        """Commit ``d`` (and its idempotency record) durably; its numbers raise the high-water mark first."""
        await self.write_rows(self._decision_rows(d, idempotency), marks=d.counters or None)

    def submit_decision(self, d: Decision, *, idempotency: tuple[str, int, str] | None = None) -> asyncio.Future[None]:
        """Queue ``d`` in the service's chain of decisions (:meth:`Database.submit`); await it for durability.

        Chained: if a decision fails, the ones queued after it fail too (each was decided on
        the state the failed one would have left), until the service re-read its state and
        called :meth:`reset_chain`.
        """
        return self.submit_rows(self._decision_rows(d, idempotency), marks=d.counters or None, chain=True)

    async def load_queue(self, day: date) -> HallQueue:
        """Rebuild the engine's state: today's tickets, every still-active one, windows, counters."""

        def fn(conn: sqlite3.Connection) -> HallQueue:
            cur = conn.cursor()
            cur.row_factory = None  # plain tuples in TICKET_FIELDS order: see rows.tickets_from_tuples
            rows = cur.execute(
                f"SELECT {','.join(TICKET_FIELDS)} FROM tickets WHERE day >= ?"
                f" UNION ALL SELECT {','.join(TICKET_FIELDS)} FROM tickets"
                " WHERE day < ? AND state IN ('waiting','called','serving')",
                (day.isoformat(), day.isoformat()),
            ).fetchall()
            tickets = {t.id: t for t in tickets_from_tuples(rows)}
            q = HallQueue(day=day, tickets=tickets)
            for r in conn.execute(
                "SELECT day, category, MAX(seq) AS s FROM tickets WHERE day >= ? GROUP BY 1, 2", (day.isoformat(),)
            ):
                q.counters[(date.fromisoformat(r["day"]), r["category"])] = r["s"]
            # A number acknowledged once is never handed out again, even if the database lost it.
            for key, n in (self.high_water.marks if self.high_water is not None else {}).items():
                if key[0] >= day and n > q.counters.get(key, 0):
                    q.counters[key] = n
            for r in conn.execute("SELECT * FROM windows"):
                q.windows[r["number"]] = WindowStatus(
                    number=r["number"],
                    current=r["current_ticket"],
                    staff=r["staff"],
                    paused=bool(r["paused"]),
                    last_finished=r["last_finished"],
                    priority_streak=r["priority_streak"],
                )
            q.evaluated = {
                r[0]
                for r in conn.execute(
                    "SELECT e.ticket_id FROM evaluations e JOIN tickets t ON t.id = e.ticket_id WHERE t.day >= ?",
                    (day.isoformat(),),
                )
            }
            for r in conn.execute(
                "SELECT * FROM appointments WHERE state = 'booked' OR slot_start >= ?",
                ((datetime.combine(day, datetime.min.time())).isoformat(),),
            ):
                q.appointments[r["code"]] = Appointment(
                    code=r["code"],
                    category=r["category"],
                    slot_start=datetime.fromisoformat(r["slot_start"]),
                    slot_end=datetime.fromisoformat(r["slot_end"]),
                    holder_masked=r["holder_masked"],
                    id_hash=r["id_hash"],
                    state=r["state"],
                    ticket_id=r["ticket_id"],
                )
            return q

        return await self.read(fn)

    # ---- lookups ---------------------------------------------------------------------

    async def ticket(self, ticket_id: str) -> Ticket | None:
        def fn(conn: sqlite3.Connection) -> Ticket | None:
            r = conn.execute("SELECT * FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
            return ticket_from_row(r) if r else None

        return await self.read(fn)

    async def holder(self, ticket_id: str) -> Holder | None:
        def fn(conn: sqlite3.Connection) -> Holder | None:
            r = conn.execute("SELECT * FROM holders WHERE ticket_id = ?", (ticket_id,)).fetchone()
            return holder_from_row(r) if r else None

        return await self.read(fn)

    async def tickets(
        self, *, day: date | None = None, state: str | None = None, category: str | None = None, limit: int = 500
    ) -> list[Ticket]:
        def fn(conn: sqlite3.Connection) -> list[Ticket]:
            sql, args = "SELECT * FROM tickets WHERE 1=1", list[Any]()
            for col, val in (("day", day.isoformat() if day else None), ("state", state), ("category", category)):
                if val is not None:
                    sql += f" AND {col} = ?"
                    args.append(val)
            sql += " ORDER BY issued_at LIMIT ?"
            args.append(limit)
            return [ticket_from_row(r) for r in conn.execute(sql, args)]

        return await self.read(fn)

    async def idempotent_response(self, key: str) -> tuple[int, str] | None:
        """The stored answer of ``key``; a key the filter has certainly not seen is answered without a read."""
        f = self.key_filter
        if f is None:
            if self._key_loading is None:
                self._key_loading = asyncio.ensure_future(self.load_key_filter())
        elif not f.may_contain(key):
            self.key_reads_skipped += 1
            return None

        def fn(conn: sqlite3.Connection) -> tuple[int, str] | None:
            r = conn.execute("SELECT status, body FROM idempotency WHERE key = ?", (key,)).fetchone()
            return (r["status"], r["body"]) if r else None

        return await self.read(fn)

    @property
    def key_filter_loading(self) -> asyncio.Task[None] | None:
        """The filter being built in the background, if one is (tests and shutdown wait for it)."""
        return self._key_loading

    async def load_key_filter(self) -> None:
        """Build the filter of stored idempotency keys (at the first lookup, and again, larger, when it is full).

        The keys are read by the writer, in write order: every key queued before this read
        is in it (committed, or earlier in the same transaction), and every key queued after
        it is kept in a backlog and added before the filter is used. Until then lookups use
        the previous filter, or the database. A failed read leaves lookups on the database
        and is tried again at the next lookup.
        """
        self._key_backlog = []
        try:
            keys = await self.write(lambda conn: [str(r[0]) for r in conn.execute("SELECT key FROM idempotency")])
            # Built off the loop (hashing every key of the retention period takes a while).
            f = await asyncio.get_running_loop().run_in_executor(
                self._reader_pool, KeyFilter.of, keys, len(keys), self.key_filter_min_capacity
            )
        except HallctlError:
            self._key_backlog = None
            return
        finally:
            self._key_loading = None
        for key in self._key_backlog:
            f.add(key)
        self._key_backlog = None
        self.key_filter = f

    async def close(self) -> None:
        await cancel_and_wait(self._key_loading)
        self._key_loading = None
        await super().close()

    async def event_log(self, ticket_id: str) -> list[LogEntry]:
        def fn(conn: sqlite3.Connection) -> list[LogEntry]:
            return [
                LogEntry(r["seq"], r["at"], r["kind"], r["window"], json.loads(r["data"]))
                for r in conn.execute("SELECT * FROM event_log WHERE ticket_id = ? ORDER BY seq", (ticket_id,))
            ]

        return await self.read(fn)

    # ---- meta ------------------------------------------------------------------------

    async def meta(self, key: str) -> str | None:
        def fn(conn: sqlite3.Connection) -> str | None:
            r = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return str(r[0]) if r else None

        return await self.read(fn)

    async def meta_default(self, key: str, make: Callable[[], str]) -> str:
        """Read ``key``, creating it with ``make()`` the first time (e.g. signing secrets)."""

        def fn(conn: sqlite3.Connection) -> str:
            r = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if r:
                return str(r[0])
            value = make()
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
            return value

        return await self.write(fn)

    # ---- retention --------------------------------------------------------------------

    async def purge_personal_data(self, older_than: datetime) -> int:
        """Delete holder details and masked names older than the retention limit; keep statistics."""

        def fn(conn: sqlite3.Connection) -> int:
            cutoff = older_than.isoformat()
            n = conn.execute("DELETE FROM holders WHERE created_at < ?", (cutoff,)).rowcount
            conn.execute(
                "UPDATE tickets SET holder_masked = NULL, id_hash = NULL WHERE issued_at < ?"
                " AND (holder_masked IS NOT NULL OR id_hash IS NOT NULL)",
                (cutoff,),
            )
            conn.execute("UPDATE appointments SET holder_masked = NULL, id_hash = NULL WHERE slot_end < ?", (cutoff,))
            conn.execute("DELETE FROM idempotency WHERE created_at < ?", (cutoff,))
            return int(n)

        n = await self.write(fn)
        # secure_delete zeroed the rows; the WAL still holds the old pages until checkpointed.
        await self.checkpoint()
        return n

    # ---- sensors ------------------------------------------------------------------------

    async def add_sensor_minutes(self, minutes: list[SensorMinute]) -> None:
        """Write finished minutes in one transaction; a minute already stored is merged into.

        A minute is stored twice when the daemon flushed it at stop and read more of it
        after a restart: counts add up, min/max widen, averages are weighted by their
        counts, and the later write's last value wins.
        """
        cols = ",".join(SENSOR_MINUTE_COLUMNS)
        marks = ",".join("?" * len(SENSOR_MINUTE_COLUMNS))
        merge = ["count = count + excluded.count"]
        for q in ("temperature", "humidity"):
            n, xn = f"{q}_count", f"excluded.{q}_count"
            merge += [
                f"{q}_min = CASE WHEN {n} = 0 THEN excluded.{q}_min WHEN {xn} = 0 THEN {q}_min"
                f" ELSE min({q}_min, excluded.{q}_min) END",
                f"{q}_max = CASE WHEN {n} = 0 THEN excluded.{q}_max WHEN {xn} = 0 THEN {q}_max"
                f" ELSE max({q}_max, excluded.{q}_max) END",
                f"{q}_avg = CASE WHEN {n} + {xn} = 0 THEN NULL ELSE (coalesce({q}_avg, 0) * {n}"
                f" + coalesce(excluded.{q}_avg, 0) * {xn}) / ({n} + {xn}) END",
                f"{q}_last = coalesce(excluded.{q}_last, {q}_last)",
                f"{n} = {n} + {xn}",  # SQLite evaluates every SET expression on the old row
            ]
        sql = (
            f"INSERT INTO sensor_minutes ({cols}) VALUES ({marks})"
            f" ON CONFLICT (sensor, minute) DO UPDATE SET {', '.join(merge)}"
        )
        rows = [sensor_minute_row(m) for m in minutes]
        await self.write(lambda c: c.executemany(sql, rows))

    async def sensor_minutes(self, since: datetime, sensor: str | None = None) -> list[SensorMinute]:
        """Stored minutes starting at or after ``since`` (of one sensor, or all), oldest first."""
        cutoff = since.astimezone(UTC).replace(second=0, microsecond=0).isoformat()

        def fn(conn: sqlite3.Connection) -> list[SensorMinute]:
            if sensor is None:
                cur = conn.execute("SELECT * FROM sensor_minutes WHERE minute >= ? ORDER BY minute, sensor", (cutoff,))
            else:
                cur = conn.execute(
                    "SELECT * FROM sensor_minutes WHERE sensor = ? AND minute >= ? ORDER BY minute", (sensor, cutoff)
                )
            return [sensor_minute_from_row(r) for r in cur]

        return await self.read(fn)

    async def purge_sensor_minutes(self, cutoff: datetime) -> int:
        """Delete minutes that started before ``cutoff``; returns how many."""
        key = cutoff.astimezone(UTC).isoformat()
        return await self.write(
            lambda c: int(c.execute("DELETE FROM sensor_minutes WHERE minute < ?", (key,)).rowcount)
        )

    # ---- climate setpoints ------------------------------------------------------------

    async def climate_setpoints(self) -> dict[str, tuple[str, float]]:
        """Each zone's mode and target as last set at run time (zone -> (mode, target))."""
        return await self.read(
            lambda c: {
                str(r[0]): (str(r[1]), float(r[2]))
                for r in c.execute("SELECT zone, mode, target FROM climate_setpoints")
            }
        )

    async def save_climate_setpoint(self, zone: str, mode: str, target: float, at: datetime) -> None:
        await self.write(
            lambda c: c.execute(
                "INSERT INTO climate_setpoints (zone, mode, target, updated_at) VALUES (?,?,?,?)"
                " ON CONFLICT (zone) DO UPDATE SET mode = excluded.mode, target = excluded.target,"
                " updated_at = excluded.updated_at",
                (zone, mode, target, at.isoformat()),
            )
        )

    # ---- climate energy -----------------------------------------------------------------

    async def climate_energy(self, day: date) -> list[ClimateEnergyRow]:
        """Every zone's saved energy and comfort totals of ``day``."""
        return await self.read(
            lambda c: [
                ClimateEnergyRow(
                    date.fromisoformat(r["day"]),
                    r["zone"],
                    r["run_cool_s"],
                    r["run_heat_s"],
                    r["run_dry_s"],
                    r["run_fan_s"],
                    r["kwh"],
                    r["open_s"],
                    r["in_band_s"],
                    r["degree_hours"],
                )
                for r in c.execute(
                    "SELECT day, zone, run_cool_s, run_heat_s, run_dry_s, run_fan_s, kwh, open_s, in_band_s,"
                    " degree_hours FROM climate_energy WHERE day = ? ORDER BY zone",
                    (day.isoformat(),),
                )
            ]
        )

    async def save_climate_energy(self, rows: list[ClimateEnergyRow], at: datetime) -> None:
        """Replace the totals of these (day, zone) pairs, in one transaction."""

        def fn(c: sqlite3.Connection) -> None:
            c.executemany(
                "INSERT INTO climate_energy (day, zone, run_cool_s, run_heat_s, run_dry_s, run_fan_s, kwh, open_s,"
                " in_band_s, degree_hours, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (day, zone) DO UPDATE SET run_cool_s = excluded.run_cool_s,"
                " run_heat_s = excluded.run_heat_s, run_dry_s = excluded.run_dry_s, run_fan_s = excluded.run_fan_s,"
                " kwh = excluded.kwh, open_s = excluded.open_s, in_band_s = excluded.in_band_s,"
                " degree_hours = excluded.degree_hours, updated_at = excluded.updated_at",
                [
                    (
                        r.day.isoformat(),
                        r.zone,
                        r.run_cool_s,
                        r.run_heat_s,
                        r.run_dry_s,
                        r.run_fan_s,
                        r.kwh,
                        r.open_s,
                        r.in_band_s,
                        r.degree_hours,
                        at.isoformat(),
                    )
                    for r in rows
                ],
            )

        await self.write(fn)

    # ---- climate control: overrides and learned rates -------------------------------------

    async def climate_overrides(self) -> list[ClimateOverrideRow]:
        """Every zone's manual override (expired ones too: the controller clears them when it sees them)."""
        return await self.read(
            lambda c: [
                ClimateOverrideRow(
                    str(r[0]),
                    str(r[1]),
                    None if r[2] is None else float(r[2]),
                    None if r[3] is None else datetime.fromisoformat(r[3]),
                    datetime.fromisoformat(r[4]),
                )
                for r in c.execute("SELECT zone, mode, target, until, set_at FROM climate_overrides")
            ]
        )

    async def save_climate_override(self, row: ClimateOverrideRow) -> None:
        await self.write(
            lambda c: c.execute(
                "INSERT INTO climate_overrides (zone, mode, target, until, set_at) VALUES (?,?,?,?,?)"
                " ON CONFLICT (zone) DO UPDATE SET mode = excluded.mode, target = excluded.target,"
                " until = excluded.until, set_at = excluded.set_at",
                (
                    row.zone,
                    row.mode,
                    row.target,
                    None if row.until is None else row.until.isoformat(),
                    row.set_at.isoformat(),
                ),
            )
        )

    async def clear_climate_override(self, zone: str) -> None:
        await self.write(lambda c: c.execute("DELETE FROM climate_overrides WHERE zone = ?", (zone,)))

    async def climate_rates(self) -> list[ClimateRatesRow]:
        """Each zone's learned warm-up/cool-down rates."""
        return await self.read(
            lambda c: [
                ClimateRatesRow(str(r[0]), float(r[1]), float(r[2]), int(r[3]), int(r[4]), datetime.fromisoformat(r[5]))
                for r in c.execute(
                    "SELECT zone, warmup_c_per_h, cooldown_c_per_h, warmup_samples, cooldown_samples, updated_at"
                    " FROM climate_rates"
                )
            ]
        )

    async def save_climate_rates(self, row: ClimateRatesRow) -> None:
        await self.write(
            lambda c: c.execute(
                "INSERT INTO climate_rates (zone, warmup_c_per_h, cooldown_c_per_h, warmup_samples, cooldown_samples,"
                " updated_at) VALUES (?,?,?,?,?,?) ON CONFLICT (zone) DO UPDATE SET"
                " warmup_c_per_h = excluded.warmup_c_per_h, cooldown_c_per_h = excluded.cooldown_c_per_h,"
                " warmup_samples = excluded.warmup_samples, cooldown_samples = excluded.cooldown_samples,"
                " updated_at = excluded.updated_at",
                (
                    row.zone,
                    row.warmup_c_per_h,
                    row.cooldown_c_per_h,
                    row.warmup_samples,
                    row.cooldown_samples,
                    row.updated_at.isoformat(),
                ),
            )
        )

    # ---- day reports ------------------------------------------------------------------

    async def day_outcomes(self, day: date) -> list[TicketOutcome]:
        """Every ticket of ``day`` with its evaluation (level, or None when 未评价), for the day's report."""

        def fn(conn: sqlite3.Connection) -> list[TicketOutcome]:
            rows = conn.execute(
                "SELECT t.*, e.level AS level, e.ticket_id IS NOT NULL AS evaluated FROM tickets t"
                " LEFT JOIN evaluations e ON e.ticket_id = t.id WHERE t.day = ? ORDER BY t.issued_at",
                (day.isoformat(),),
            ).fetchall()
            return [TicketOutcome(ticket_from_row(r), r["level"], bool(r["evaluated"])) for r in rows]

        return await self.read(fn)

    # ---- tokens -------------------------------------------------------------------------

    async def insert_token(
        self,
        token_hash: str,
        role: str,
        windows: tuple[int, ...],
        label: str,
        at: datetime,
        kiosks: tuple[str, ...] = (),
    ) -> int:
        def fn(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO tokens (hash, role, windows, label, created_at, kiosks) VALUES (?,?,?,?,?,?)",
                (token_hash, role, json.dumps(list(windows)), label, at.isoformat(), json.dumps(list(kiosks))),
            )
            return int(cur.lastrowid or 0)

        return await self.write(fn)

    async def active_token(self, token_hash: str) -> TokenRecord | None:
        """The unrevoked token with this hash, if any."""

        def fn(conn: sqlite3.Connection) -> TokenRecord | None:
            r = conn.execute("SELECT * FROM tokens WHERE hash = ? AND revoked_at IS NULL", (token_hash,)).fetchone()
            return token_from_row(r) if r else None

        return await self.read(fn)

    async def tokens(self) -> list[TokenRecord]:
        return await self.read(lambda c: [token_from_row(r) for r in c.execute("SELECT * FROM tokens ORDER BY id")])

    async def revoke_token(self, token_id: int, at: datetime) -> bool:
        """Mark the token revoked; False when there is no such unrevoked token."""

        def fn(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (at.isoformat(), token_id)
            )
            return cur.rowcount > 0

        return await self.write(fn)

    # ---- MQTT outbox ----------------------------------------------------------------------

    async def outbox_count(self) -> int:
        return await self.read(lambda c: int(c.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]))

    async def outbox_append(self, topic: str, payload: str, qos: int, at: datetime, max_rows: int) -> tuple[int, int]:
        """Append a row, then drop the oldest beyond ``max_rows``: returns (rows now, rows dropped)."""

        def fn(conn: sqlite3.Connection) -> tuple[int, int]:
            conn.execute(
                "INSERT INTO outbox (topic, payload, qos, created_at) VALUES (?,?,?,?)",
                (topic, payload, qos, at.isoformat()),
            )
            count = int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
            excess = count - max_rows
            if excess > 0:
                conn.execute("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", (excess,))
                return count - excess, excess
            return count, 0

        return await self.write(fn)

    async def outbox_peek(self, limit: int) -> list[OutboxRow]:
        def fn(conn: sqlite3.Connection) -> list[OutboxRow]:
            return [
                OutboxRow(int(r["seq"]), str(r["topic"]), str(r["payload"]), int(r["qos"]))
                for r in conn.execute("SELECT seq, topic, payload, qos FROM outbox ORDER BY seq LIMIT ?", (limit,))
            ]

        return await self.read(fn)

    async def outbox_remove_through(self, seq: int) -> int:
        """Delete the rows up to ``seq`` (acknowledged); returns the rows left."""

        def fn(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM outbox WHERE seq <= ?", (seq,))
            return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

        return await self.write(fn)

    # ---- retained MQTT topics ---------------------------------------------------------------

    async def retained_topics(self) -> set[str]:
        return await self.read(lambda c: {str(r[0]) for r in c.execute("SELECT topic FROM mqtt_retained")})

    async def replace_retained_topics(self, topics: dict[str, str], at: datetime) -> None:
        """Record exactly these retained topics (topic -> kind), forgetting the others."""

        def fn(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM mqtt_retained")
            c.executemany(
                "INSERT INTO mqtt_retained (topic, kind, published_at) VALUES (?,?,?)",
                [(t, k, at.isoformat()) for t, k in topics.items()],
            )

        await self.write(fn)

    # ---- health ---------------------------------------------------------------------------

    def health(self) -> StoreHealth:
        hwm_error = self.high_water.last_error if self.high_water is not None else None
        return StoreHealth(
            ok=self.last_error is None and hwm_error is None and not self.damage,
            write_errors=self.write_errors,
            last_error=self.last_error or hwm_error,
            damaged=bool(self.damage),
            damage=tuple(self.damage),
        )
