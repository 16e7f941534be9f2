"""The MQTT outbox: events waiting for the broker, kept on disk in the store.

Why on disk: a ticket that was issued while the broker was unreachable must still
reach the calling screens and the city dashboard after the link comes back, even
if the daemon restarted in between. Why bounded: a broker that stays away for
weeks must not fill the disk; the oldest rows go first (the present matters more
than the past) and ``dropped`` counts them so health shows the loss.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from hallctl.store import OutboxRow, Store

log = logging.getLogger(__name__)

__all__ = ["Outbox", "OutboxRow"]


class Outbox:
    """Append, read in ``seq`` order, delete once acknowledged (the rows live in the store)."""

    def __init__(self, store: Store, max_rows: int) -> None:
        self.store = store
        self.max_rows = max_rows
        self.size = 0
        self.dropped = 0

    async def load(self) -> int:
        """Count rows left from an earlier run; they are delivered first after connect."""
        self.size = await self.store.outbox_count()
        return self.size

    async def append(self, topic: str, payload: str, qos: int) -> None:
        self.size, dropped = await self.store.outbox_append(topic, payload, qos, datetime.now(UTC), self.max_rows)
        if dropped:
            self.dropped += dropped
            log.warning(
                "mqtt outbox full (%d rows): dropped the %d oldest, %d dropped so far",
                self.max_rows,
                dropped,
                self.dropped,
            )

    async def peek(self, limit: int) -> list[OutboxRow]:
        return await self.store.outbox_peek(limit)

    async def remove_through(self, seq: int) -> None:
        self.size = await self.store.outbox_remove_through(seq)
