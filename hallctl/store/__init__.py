"""Durable state in SQLite: WAL, ``synchronous=FULL``, one writer thread.

Why these choices: an acknowledged ticket must survive ``kill -9`` and a power
cut, so every commit is fsynced (FULL) before the API answers; WAL lets the
screens and stats read while the writer works. All writes go through one
dedicated thread with its own connection, so the event loop never blocks on
fsync and SQLite never sees two writers. Each :class:`Decision` is written in one
transaction together with its event-log rows (and, for kiosks, the idempotency
record), so a crash can never leave half a state change.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from hallctl.engine import Appointment, Decision, HallQueue, Holder, Ticket, WindowStatus
from hallctl.errors import StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

TICKET_COLUMNS = (
    "id",
    "day",
    "category",
    "seq",
    "number",
    "priority",
    "priority_reason",
    "channel",
    "state",
    "issued_at",
    "sort_at",
    "appointment_slot",
    "appointment_code",
    "called_at",
    "first_called_at",
    "serving_at",
    "finished_at",
    "window",
    "staff",
    "recalls",
    "target_window",
    "origin_id",
    "holder_masked",
    "id_hash",
    "kiosk",
    "end_reason",
)
_DATETIME_FIELDS = {
    "issued_at",
    "sort_at",
    "appointment_slot",
    "called_at",
    "first_called_at",
    "serving_at",
    "finished_at",
}


def _ts(v: datetime | None) -> str | None:
    return v.isoformat() if v is not None else None


def _dt(v: str | None) -> datetime | None:
    return datetime.fromisoformat(v) if v is not None else None


def ticket_row(t: Ticket) -> tuple[Any, ...]:
    out: list[Any] = []
    for col in TICKET_COLUMNS:
        v = getattr(t, col)
        if isinstance(v, (datetime, date)):
            v = v.isoformat()
        out.append(v)
    return tuple(out)


def ticket_from_row(row: sqlite3.Row) -> Ticket:
    kw: dict[str, Any] = {}
    for col in TICKET_COLUMNS:
        v = row[col]
        if col in _DATETIME_FIELDS:
            v = _dt(v)
        elif col == "day":
            v = date.fromisoformat(v)
        kw[col] = v
    return Ticket(**kw)


def holder_from_row(row: sqlite3.Row) -> Holder:
    return Holder(
        name=row["name"],
        id_number=row["id_number"],
        sex=row["sex"] or "",
        birth=date.fromisoformat(row["birth"]) if row["birth"] else None,
        nation=row["nation"] or "",
        address=row["address"] or "",
        card_type=row["card_type"] or "resident",
        authority=row["authority"] or "",
        valid_to=date.fromisoformat(row["valid_to"]) if row["valid_to"] else None,
        photo=row["photo"],
    )


def _classify(exc: sqlite3.Error) -> StoreUnavailable:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return StoreUnavailable("store_locked", "数据库正忙，请稍后重试", "the database is locked; retry shortly")
    if "full" in text:
        return StoreUnavailable("store_full", "存储空间已满，请联系管理员", "the database or disk is full")
    return StoreUnavailable("store_error", "数据库写入失败，请稍后重试", f"database error: {type(exc).__name__}")


class Store:
    def __init__(
        self, path: str, *, busy_timeout_ms: int = 2000, max_size_mb: float | None = None, store_photo: bool = False
    ) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.max_size_mb = max_size_mb
        self.store_photo = store_photo
        self._writer_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hallctl-store-writer")
        self._reader_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hallctl-store-reader")
        self._w: sqlite3.Connection | None = None
        self._r: sqlite3.Connection | None = None
        self.write_errors = 0
        self.last_error: str | None = None

    # ---- lifecycle --------------------------------------------------------------

    def _connect(self, readonly: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if readonly:
            conn.execute("PRAGMA query_only = ON")
        return conn

    def _open_writer(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect(readonly=False)
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal" and self.path != ":memory:":
            raise StoreUnavailable("store_error", f"cannot enable WAL (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        if self.max_size_mb is not None:
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {max(1, int(self.max_size_mb * 1024 * 1024 / page_size))}")
        self._migrate(conn)
        self._w = conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        files = sorted(
            (f for f in resources.files("hallctl.store.migrations").iterdir() if f.name.endswith(".sql")),
            key=lambda f: f.name,
        )
        for f in files:
            number = int(f.name.split("_", 1)[0])
            if number <= version:
                continue
            log.info("store: applying migration %s", f.name)
            script = f.read_text(encoding="utf-8")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
                conn.execute("COMMIT")
            except sqlite3.Error:
                conn.execute("ROLLBACK")
                raise

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._writer_pool, self._open_writer)
            self._r = await loop.run_in_executor(self._reader_pool, self._connect, True)
        except sqlite3.Error as exc:
            raise StoreUnavailable("store_error", f"cannot open database {self.path}: {exc}") from exc

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for pool, attr in ((self._reader_pool, "_r"), (self._writer_pool, "_w")):
            conn: sqlite3.Connection | None = getattr(self, attr)
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    await loop.run_in_executor(pool, conn.close)
                setattr(self, attr, None)
        self._reader_pool.shutdown(wait=True)
        self._writer_pool.shutdown(wait=True)

    # ---- generic access ---------------------------------------------------------------

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one IMMEDIATE transaction on the writer thread."""

        def run() -> T:
            conn = self._w
            if conn is None:
                raise StoreUnavailable("store_closed", "the database is not open")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn)
                    conn.execute("COMMIT")
                    self.last_error = None
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                self.write_errors += 1
                self.last_error = str(exc)
                log.error("store: write failed: %s", exc)
                raise _classify(exc) from exc
            return result

        return await asyncio.get_running_loop().run_in_executor(self._writer_pool, run)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            conn = self._r
            if conn is None:
                raise StoreUnavailable("store_closed", "the database is not open")
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise _classify(exc) from exc

        return await asyncio.get_running_loop().run_in_executor(self._reader_pool, run)

    # ---- decisions -------------------------------------------------------------------

    def _write_decision(self, conn: sqlite3.Connection, d: Decision) -> None:
        placeholders = ",".join("?" * len(TICKET_COLUMNS))
        updates = ",".join(f"{c}=excluded.{c}" for c in TICKET_COLUMNS if c != "id")
        for t in d.tickets:
            conn.execute(
                f"INSERT INTO tickets ({','.join(TICKET_COLUMNS)}) VALUES ({placeholders}) "
                f"ON CONFLICT(id) DO UPDATE SET {updates}",
                ticket_row(t),
            )
        for ticket_id, h in d.holders:
            conn.execute(
                "INSERT OR REPLACE INTO holders (ticket_id, name, id_number, sex, birth, nation, address,"
                " card_type, authority, valid_to, photo, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
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
                    d.at.isoformat(),
                ),
            )
        for w in d.windows:
            conn.execute(
                "INSERT INTO windows (number, current_ticket, staff, paused, last_finished, priority_streak)"
                " VALUES (?,?,?,?,?,?) ON CONFLICT(number) DO UPDATE SET current_ticket=excluded.current_ticket,"
                " staff=excluded.staff, paused=excluded.paused, last_finished=excluded.last_finished,"
                " priority_streak=excluded.priority_streak",
                (w.number, w.current, w.staff, int(w.paused), w.last_finished, w.priority_streak),
            )
        for e in d.evaluations:
            conn.execute(
                "INSERT INTO evaluations (ticket_id, level, window, staff, channel, reasons, at)"
                " VALUES (?,?,?,?,?,?,?)",
                (e.ticket_id, e.level, e.window, e.staff, e.channel, json.dumps(list(e.reasons)), e.at.isoformat()),
            )
        for a in d.appointments:
            conn.execute(
                "INSERT INTO appointments (code, category, slot_start, slot_end, holder_masked, id_hash, state,"
                " ticket_id) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(code) DO UPDATE SET state=excluded.state,"
                " ticket_id=excluded.ticket_id",
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
        for row in d.log:
            conn.execute(
                "INSERT INTO event_log (at, kind, ticket_id, window, data) VALUES (?,?,?,?,?)",
                (d.at.isoformat(), row.kind, row.ticket_id, row.window, json.dumps(row.data, ensure_ascii=False)),
            )

    async def apply(self, d: Decision, *, idempotency: tuple[str, int, str] | None = None) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            self._write_decision(conn, d)
            if idempotency is not None:
                key, status, body = idempotency
                conn.execute(
                    "INSERT INTO idempotency (key, status, body, created_at) VALUES (?,?,?,?)",
                    (key, status, body, d.at.isoformat()),
                )

        await self.write(fn)

    async def load_queue(self, day: date) -> HallQueue:
        """Rebuild the engine's state: today's tickets, every still-active one, windows, counters."""

        def fn(conn: sqlite3.Connection) -> HallQueue:
            rows = conn.execute(
                "SELECT * FROM tickets WHERE day >= ? OR state IN ('waiting','called','serving')",
                (day.isoformat(),),
            ).fetchall()
            tickets = {t.id: t for t in map(ticket_from_row, rows)}
            q = HallQueue(day=day, tickets=tickets)
            for r in conn.execute(
                "SELECT day, category, MAX(seq) AS s FROM tickets WHERE day >= ? GROUP BY 1, 2", (day.isoformat(),)
            ):
                q.counters[(date.fromisoformat(r["day"]), r["category"])] = r["s"]
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
        def fn(conn: sqlite3.Connection) -> tuple[int, str] | None:
            r = conn.execute("SELECT status, body FROM idempotency WHERE key = ?", (key,)).fetchone()
            return (r["status"], r["body"]) if r else None

        return await self.read(fn)

    async def event_log(self, ticket_id: str) -> list[dict[str, Any]]:
        def fn(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            return [
                {
                    "seq": r["seq"],
                    "at": r["at"],
                    "kind": r["kind"],
                    "window": r["window"],
                    "data": json.loads(r["data"]),
                }
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

        return await self.write(fn)

    # ---- sensors ------------------------------------------------------------------------

    async def add_reading(self, sensor: str, at: datetime, temperature: float | None, humidity: float | None) -> None:
        await self.write(
            lambda c: c.execute(
                "INSERT INTO sensor_readings (sensor, at, temperature, humidity) VALUES (?,?,?,?)",
                (sensor, at.isoformat(), temperature, humidity),
            )
        )

    async def readings(self, since: datetime) -> list[dict[str, Any]]:
        def fn(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            return [
                dict(r)
                for r in conn.execute(
                    "SELECT sensor, at, temperature, humidity FROM sensor_readings WHERE at >= ? ORDER BY at",
                    (since.isoformat(),),
                )
            ]

        return await self.read(fn)

    # ---- backup ---------------------------------------------------------------------------

    async def backup(self, target: str) -> None:
        """SQLite's online backup: a consistent copy while the daemon keeps writing."""

        def fn() -> None:
            assert self._w is not None
            dest = sqlite3.connect(target)
            try:
                self._w.backup(dest)
            finally:
                dest.close()

        await asyncio.get_running_loop().run_in_executor(self._writer_pool, fn)


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies (BEGIN...END;) whole."""
    statements: list[str] = []
    buf: list[str] = []
    in_trigger = False
    for line in script.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        buf.append(line)
        upper = stripped.upper()
        if upper.startswith("CREATE TRIGGER"):
            in_trigger = True
        if (in_trigger and upper.endswith("END;")) or (not in_trigger and stripped.endswith(";")):
            statements.append("\n".join(buf))
            buf, in_trigger = [], False
    if buf:
        statements.append("\n".join(buf))
    return statements


def backup_file(source: str, target: str) -> None:
    """Offline variant for ``hallctl backup`` when the daemon is not running in this process."""
    src = sqlite3.connect(source)
    dest = sqlite3.connect(target)
    try:
        src.backup(dest)
    finally:
        dest.close()
        src.close()
