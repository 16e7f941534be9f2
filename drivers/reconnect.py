"""Keep a device connected: open, serve, and on loss back off and try again.

Every serial driver needs the same loop (unplug → ``offline`` → capped
exponential backoff with jitter → reopen → ``ok``), so it lives here once and
drivers supply only ``connect`` and ``serve``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from drivers.base import ErrorCounters, Health, HealthTracker
from drivers.errors import DeviceError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    initial: float = 0.5
    maximum: float = 10.0
    factor: float = 2.0
    jitter: float = 0.2  # +/- fraction, so many devices do not retry in lock-step

    def delays(self) -> BackoffIter:
        return BackoffIter(self)


class BackoffIter:
    def __init__(self, policy: Backoff) -> None:
        self._policy = policy
        self._next = policy.initial

    def reset(self) -> None:
        self._next = self._policy.initial

    def __next__(self) -> float:
        p = self._policy
        value = self._next
        self._next = min(p.maximum, self._next * p.factor)
        return max(0.0, value * (1.0 + random.uniform(-p.jitter, p.jitter)))


class Supervisor(Generic[T]):
    """Runs ``connect`` → ``serve(conn)`` → ``disconnect(conn)`` until cancelled.

    ``serve`` returns or raises :class:`DeviceError` when the link is lost; any
    ``DeviceError`` is logged once per state change, counted, and retried.
    """

    def __init__(
        self,
        name: str,
        health: HealthTracker,
        connect: Callable[[], Awaitable[T]],
        serve: Callable[[T], Awaitable[None]],
        disconnect: Callable[[T], Awaitable[None]],
        backoff: Backoff | None = None,
    ) -> None:
        self.name = name
        self._health = health
        self._connect = connect
        self._serve = serve
        self._disconnect = disconnect
        self._backoff = backoff or Backoff()
        self.connected = asyncio.Event()

    async def run(self) -> None:
        delays = self._backoff.delays()
        first = True
        while True:
            try:
                conn = await self._connect()
            except DeviceError as exc:
                if first or self._health.current.state != "offline":
                    log.warning("%s: offline: %s", self.name, exc.message)
                self._health.set("offline", exc.message)
                first = False
                await asyncio.sleep(next(delays))
                continue
            if not first:
                self._health.counters.reconnects += 1
                log.info("%s: connected again", self.name)
            first = False
            delays.reset()
            self.connected.set()
            try:
                await self._serve(conn)
                reason = "link closed"
            except DeviceError as exc:
                reason = exc.message
            finally:
                self.connected.clear()
                await self._disconnect(conn)
            log.warning("%s: lost: %s", self.name, reason)
            self._health.set("offline", reason)
            await asyncio.sleep(next(delays))


class SupervisedDriver:
    """The public surface every supervised driver shares: run, connected, health, counters.

    This is :class:`drivers.base.DeviceDriver` written once for drivers whose life is
    connect → serve → disconnect. Subclasses set ``kind`` (class level), ``name``,
    ``_health`` and ``_supervisor`` in ``__init__``.
    """

    kind: ClassVar[str]
    name: str
    _health: HealthTracker
    _supervisor: Supervisor[Any]

    async def run(self) -> None:
        """Keep the device connected until cancelled; reconnects by itself after unplugging."""
        await self._supervisor.run()

    @property
    def connected(self) -> asyncio.Event:
        return self._supervisor.connected

    def health(self) -> Health:
        return self._health.current

    @property
    def counters(self) -> ErrorCounters:
        return self._health.counters
