"""The event log read in sequence ranges, for the city feed (``hallctl/mqtt/citylog.py``).

Kept apart from the rest of the store: a mixin of typed methods the :class:`~hallctl.store.Store`
inherits, so the SQL stays in the store room and the feed never sees a connection.
"""

from __future__ import annotations

import json
import sqlite3

from hallctl.citylog import EventLogRow
from hallctl.store.database import Database

# The feed's position: every row up to this seq has been acknowledged by the hall's broker.
FEED_CURSOR = "city_feed_seq"


class CityLogStore(Database):
    async def log_rows(self, after: int, through: int | None, limit: int) -> list[EventLogRow]:
        """Event-log rows with ``after < seq <= through`` (no upper bound for None), in order, at most ``limit``."""

        def fn(conn: sqlite3.Connection) -> list[EventLogRow]:
            top = through if through is not None else 2**62
            cur = conn.execute(
                "SELECT seq, at, kind, ticket_id, window, data FROM event_log"
                " WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (after, top, limit),
            )
            return [EventLogRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in cur]

        return await self.read(fn)

    async def log_bounds(self) -> tuple[int, int]:
        """(first, last) seq still in the event log; (0, 0) when it is empty (retention may have cut the front)."""

        def fn(conn: sqlite3.Connection) -> tuple[int, int]:
            r = conn.execute("SELECT min(seq), max(seq) FROM event_log").fetchone()
            return (int(r[0]), int(r[1])) if r and r[0] is not None else (0, 0)

        return await self.read(fn)

    async def feed_cursor(self) -> int:
        def fn(conn: sqlite3.Connection) -> int:
            r = conn.execute("SELECT value FROM meta WHERE key = ?", (FEED_CURSOR,)).fetchone()
            return int(r[0]) if r else 0

        return await self.read(fn)

    async def save_feed_cursor(self, seq: int) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (FEED_CURSOR, str(seq)),
            )

        await self.write(fn)
