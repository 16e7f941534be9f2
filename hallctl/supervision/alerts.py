"""The supervision component: watches the queue for overdue tickets and keeps recent alerts.

It reads the queue only through the service's queries and tells the hall through
the bus; it changes no queue state. Alerts are kept in memory (the last
:data:`KEEP`), for ``GET /alerts`` and the big screen; issue-level history is in
the event log.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from datetime import datetime

from hallctl import events as ev
from hallctl.bus import Bus, Subscription
from hallctl.config import Config
from hallctl.service import HallService
from hallctl.tasks import cancel_and_wait

log = logging.getLogger(__name__)

KEEP = 200


class Supervision:
    name = "supervision"

    def __init__(self, cfg: Config, service: HallService, bus: Bus, clock: Callable[[], datetime]) -> None:
        self.cfg = cfg
        self.service = service
        self.bus = bus
        self.clock = clock
        self.alerts: collections.deque[ev.Alert] = collections.deque(maxlen=KEEP)
        self._raised: set[tuple[str, str]] = set()
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._sub = self.bus.subscribe("supervision", self._remember, (ev.Alert,))
        self._task = asyncio.create_task(self._watch(), name="hallctl.supervision.watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await self.bus.unsubscribe(sub)

    def recent(self, n: int) -> list[ev.Alert]:
        return list(self.alerts)[-n:]

    def _remember(self, event: ev.Event) -> None:
        if isinstance(event, ev.Alert):
            self.alerts.append(event)

    def check(self) -> None:
        """Raise each overdue ticket's alert once (waiting past its limit, service past its limit)."""
        now = self.clock()
        live: set[tuple[str, str]] = set()
        for kind, t, minutes in self.service.overdue():
            key = (kind, t.id)
            live.add(key)
            if key in self._raised:
                continue
            self._raised.add(key)
            text = f"{t.number}已等候{minutes}分钟" if kind == "wait_exceeded" else f"{t.number}办理已超时"
            text_en = (
                f"{t.number} has waited {minutes} min"
                if kind == "wait_exceeded"
                else f"{t.number}: service over time ({minutes} min)"
            )
            self.bus.publish(
                ev.Alert(
                    at=now,
                    alert=kind,
                    severity="warning",
                    message=text,
                    message_en=text_en,
                    subject=t.number,
                    data={"category": t.category, "window": t.window, "minutes": minutes},
                )
            )
        self._raised &= live  # bounded: a ticket that is no longer overdue is forgotten

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.supervision.check_interval_s)
            self.check()
