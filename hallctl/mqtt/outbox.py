"""The MQTT outbox: events waiting for the broker, kept on disk in the store.

Why on disk: a ticket that was issued while the broker was unreachable must still
reach the calling screens and the city dashboard after the link comes back, even
if the daemon restarted in between. Why bounded: a broker that stays away for
weeks must not fill the disk; the oldest rows go first (the present matters more
than the past) and ``dropped`` counts them so health shows the loss.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from datetime import UTC, datetime

from hallctl.store import Store

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    topic: str
    payload: str
    qos: int


class Outbox:
    """Append, read in ``seq`` order, delete once acknowledged."""

    def __init__(self, store: Store, max_rows: int) -> None:
        self.store = store
        self.max_rows = max_rows
        self.size = 0
        self.dropped = 0

    async def load(self) -> int:
        """Count rows left from an earlier run; they are delivered first after connect."""

        def fn(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

        self.size = await self.store.read(fn)
        return self.size

    async def append(self, topic: str, payload: str, qos: int) -> None:
        max_rows = self.max_rows

        def fn(conn: sqlite3.Connection) -> tuple[int, int]:
            conn.execute(
                "INSERT INTO outbox (topic, payload, qos, created_at) VALUES (?,?,?,?)",
                (topic, payload, qos, datetime.now(UTC).isoformat()),
            )
            count = int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
            excess = count - max_rows
            if excess > 0:
                conn.execute("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", (excess,))
                return count - excess, excess
            return count, 0

        self.size, dropped = await self.store.write(fn)
        if dropped:
            self.dropped += dropped
            log.warning(
                "mqtt outbox full (%d rows): dropped the %d oldest, %d dropped so far",
                self.max_rows,
                dropped,
                self.dropped,
            )

    async def peek(self, limit: int) -> list[OutboxRow]:
        def fn(conn: sqlite3.Connection) -> list[OutboxRow]:
            return [
                OutboxRow(int(r["seq"]), str(r["topic"]), str(r["payload"]), int(r["qos"]))
                for r in conn.execute("SELECT seq, topic, payload, qos FROM outbox ORDER BY seq LIMIT ?", (limit,))
            ]

        return await self.store.read(fn)

    async def remove_through(self, seq: int) -> None:
        def fn(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM outbox WHERE seq <= ?", (seq,))
            return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

        self.size = await self.store.write(fn)
