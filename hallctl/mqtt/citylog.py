"""The city feed: the hall's event log, row by row, on ``hallctl/<hall>/event/log`` (docs/city.md).

Why a feed of log rows and not the ``event/<name>`` topics: the event log is the hall's durable,
gap-free record (one ``seq`` per row), so the central can store exactly it, idempotently on
(hall, seq), see a gap as a missing number, and ask for it again (``city.replay``). The feed
*tails* the log after commits rather than riding on the bus: whatever the bus dropped for a
slow sink or a crash lost in memory is still read from the log.

- Live: every bus event wakes the tail; it reads rows after its cursor (``[city] batch`` at a
  time) and publishes them, up to ``WINDOW`` awaiting their PUBACK at once. The cursor (the last
  row the hall's broker acknowledged) is saved every ``cursor_save_s``, so after a crash at most
  that much is sent twice (the central ignores repeats); with no link it waits and retries.
- Replay: ``city.replay`` queues a (first, last) range (at most ``replay_queue`` waiting, else
  ``replay_busy``); a separate task sends at most ``replay_max`` rows of it at ``replay_rate``
  rows/s with ``"replay": true``. Neither path takes the service's lock: reads go through the
  store's reader, so the queue never waits for the city.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from typing import Any

from hallctl.citylog import LOG_EVENT, EventLogRow
from hallctl.context import HallContext
from hallctl.errors import Conflict, HallctlError
from hallctl.events import Event
from hallctl.tasks import cancel_and_wait

log = logging.getLogger(__name__)

WINDOW = 20  # publishes awaiting their PUBACK at once (Mosquitto's default receive maximum)
PUBLISH_WAIT_S = 5.0  # how long one publish waits for a link before the tail backs off
RETRY_S = (0.5, 10.0)  # backoff after a failed publish: from, to
# A row written without any bus event after it (none today) still goes out within this time.
IDLE_POLL_S = 30.0


class ReplayBusy(Conflict):
    """More replay requests wait than ``[city] replay_queue``: the central asks again later."""


class CityFeed:
    name = "city_feed"

    def __init__(self, ctx: HallContext) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg.city
        self.topic = f"hallctl/{ctx.cfg.hall.id}/event/{LOG_EVENT}"
        self.hall = ctx.cfg.hall.id
        self.cursor = 0
        self._saved = 0
        self._wake = asyncio.Event()
        self._replays: collections.deque[tuple[int, int]] = collections.deque()
        self._replay_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sub: Any = None
        self.sent = 0
        self.replayed = 0
        self.replays_refused = 0
        self.last_error: str | None = None
        ctx.city_replay = self.request_replay

    async def start(self) -> None:
        self.cursor = self._saved = await self.ctx.store.feed_cursor()
        self._sub = self.ctx.bus.subscribe("city_feed", self._on_event)
        self._tasks = [
            asyncio.create_task(self._tail(), name="hallctl.city.tail"),
            asyncio.create_task(self._replayer(), name="hallctl.city.replay"),
        ]
        self._wake.set()  # rows committed while the daemon was down (or before the feed was on)
        self.ctx.report_health("city_feed", self.health)

    async def stop(self) -> None:
        if self._sub is not None:
            await self.ctx.bus.unsubscribe(self._sub)
            self._sub = None
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []
        if self.cursor != self._saved:
            with contextlib.suppress(HallctlError):
                await self.ctx.store.save_feed_cursor(self.cursor)
        self.ctx.forget_health("city_feed")

    def health(self) -> dict[str, Any]:
        return {
            "ok": self.last_error is None,
            "cursor": self.cursor,
            "sent": self.sent,
            "replayed": self.replayed,
            "replays_waiting": len(self._replays),
            "replays_refused": self.replays_refused,
            "last_error": self.last_error,
        }

    def _on_event(self, event: Event) -> None:
        # Only a wake-up: what to send is read from the log, after the commit the event follows.
        self._wake.set()

    async def request_replay(self, first: int, last: int) -> dict[str, Any]:
        """Queue rows ``first..last`` (at most ``replay_max`` of them); what the hall still holds of them."""
        if len(self._replays) >= self.cfg.replay_queue:
            self.replays_refused += 1
            raise ReplayBusy("replay_busy", "重发请求过多，请稍后再试", "too many replays waiting; ask again later")
        lo, hi = await self.ctx.store.log_bounds()
        last = min(last, first + self.cfg.replay_max - 1)
        self._replays.append((first, last))
        self._replay_wake.set()
        # first_seq: rows below it are gone (retention); the central stops asking for them.
        return {"from_seq": first, "to_seq": last, "first_seq": lo, "last_seq": hi}

    async def _send(self, rows: list[EventLogRow], *, replay: bool) -> None:
        for i in range(0, len(rows), WINDOW):
            chunk = rows[i : i + WINDOW]
            await asyncio.gather(
                *(self.ctx.publish_mqtt(self.topic, r.wire(self.hall, replay=replay), PUBLISH_WAIT_S) for r in chunk)
            )

    async def _tail(self) -> None:
        delay = RETRY_S[0]
        last_save = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(IDLE_POLL_S, self.cfg.cursor_save_s)):
                    await self._wake.wait()
            self._wake.clear()
            while True:
                try:
                    rows = await self.ctx.store.log_rows(self.cursor, None, self.cfg.batch)
                    if not rows:
                        break
                    await self._send(rows, replay=False)
                except HallctlError as exc:
                    # No link (or the store refused a read): try again later from the same cursor.
                    self.last_error = f"{exc.code}: {exc.message}"
                    log.info("city feed: %s; retrying in %.1f s", self.last_error, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_S[1])
                    continue
                delay = RETRY_S[0]
                self.last_error = None
                self.cursor = rows[-1].seq
                self.sent += len(rows)
            if self.cursor != self._saved and time.monotonic() - last_save >= self.cfg.cursor_save_s:
                with contextlib.suppress(HallctlError):  # a later save (or stop) catches up
                    await self.ctx.store.save_feed_cursor(self.cursor)
                    self._saved = self.cursor
                last_save = time.monotonic()

    async def _replayer(self) -> None:
        while True:
            await self._replay_wake.wait()
            self._replay_wake.clear()
            while self._replays:
                first, last = self._replays[0]
                after = first - 1
                while after < last:
                    started = time.monotonic()
                    n = max(1, min(self.cfg.batch, int(self.cfg.replay_rate)))
                    try:
                        rows = await self.ctx.store.log_rows(after, last, n)
                        if not rows:
                            break
                        await self._send(rows, replay=True)
                    except HallctlError as exc:
                        self.last_error = f"replay: {exc.code}: {exc.message}"
                        log.info("city feed: %s; the central will ask again", self.last_error)
                        break
                    after = rows[-1].seq
                    self.replayed += len(rows)
                    # The rate limit: a batch of n rows takes at least n / replay_rate seconds.
                    rest = len(rows) / self.cfg.replay_rate - (time.monotonic() - started)
                    if rest > 0:
                        await asyncio.sleep(rest)
                self._replays.popleft()
