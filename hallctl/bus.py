"""In-process event bus: one queue and one worker task per subscriber.

``publish`` is synchronous and never raises, so the service can announce a
committed change without waiting on anyone; a slow LED bus or a broken MQTT link
delays only its own queue. ``drain`` lets tests wait for delivery instead of
sleeping.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from hallctl.events import Event
from hallctl.tasks import cancel_and_wait

log = logging.getLogger(__name__)
HANDLER_ERRORS_KEPT = 100  # the last handler failures kept on the bus (older ones are in the log)

Handler = Callable[[Event], Awaitable[None] | None]


class Subscription:
    def __init__(self, name: str, handler: Handler, types: tuple[type[Event], ...] | None, maxsize: int) -> None:
        self.name = name
        self.handler = handler
        self.types = types
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0
        self.errors = 0
        self.task: asyncio.Task[None] | None = None

    def wants(self, event: Event) -> bool:
        return self.types is None or isinstance(event, self.types)


class Bus:
    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        # The last failures, for debugging; bounded so a handler failing on every event cannot grow it.
        self.handler_errors: collections.deque[tuple[str, BaseException]] = collections.deque(
            maxlen=HANDLER_ERRORS_KEPT
        )
        self._closed = False

    def subscribe(
        self,
        name: str,
        handler: Handler,
        types: tuple[type[Event], ...] | None = None,
        maxsize: int = 10000,
    ) -> Subscription:
        sub = Subscription(name, handler, types, maxsize)
        sub.task = asyncio.create_task(self._worker(sub), name=f"hallctl.bus.{name}")
        self._subs.append(sub)
        return sub

    async def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
        await cancel_and_wait(sub.task)

    def publish(self, event: Event) -> None:
        for sub in self._subs:
            if not sub.wants(event):
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                # Drop the oldest: a stuck screen should see the present, not the past.
                with contextlib.suppress(asyncio.QueueEmpty):
                    sub.queue.get_nowait()
                    sub.queue.task_done()
                sub.dropped += 1
                sub.queue.put_nowait(event)

    async def _worker(self, sub: Subscription) -> None:
        while True:
            event = await sub.queue.get()
            try:
                result = sub.handler(event)
                if result is not None:
                    await result
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                sub.errors += 1
                self.handler_errors.append((sub.name, exc))
                log.exception("bus subscriber %s failed on %s", sub.name, event.wire_name)
            finally:
                sub.queue.task_done()

    async def drain(self) -> None:
        """Wait until every subscriber has handled everything published so far."""
        for sub in list(self._subs):
            await sub.queue.join()

    def stats(self) -> dict[str, dict[str, Any]]:
        return {s.name: {"backlog": s.queue.qsize(), "dropped": s.dropped, "errors": s.errors} for s in self._subs}

    async def close(self) -> None:
        for sub in list(self._subs):
            await self.unsubscribe(sub)
