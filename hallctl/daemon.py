"""The daemon: components started in dependency order, stopped in reverse.

Order: store → bus → service → devices → mqtt → api. HTTP comes up last so no
request arrives before the queue is loaded; the store closes last so nothing
writes into a closed database. A core component that fails to start stops the
daemon with its reason; a device that fails only marks itself offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from fastapi import APIRouter

from hallctl.bus import Bus
from hallctl.config import Config
from hallctl.http.server import ApiServer
from hallctl.service import Clock, HallService, utcnow
from hallctl.store import Store

log = logging.getLogger(__name__)


class Component(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Hall:
    """One hall's daemon: every component and the state directory they share."""

    def __init__(
        self, cfg: Config, *, clock: Clock = utcnow, demo: bool = False, state_dir: Path | None = None
    ) -> None:
        self.cfg = cfg
        self.demo = demo
        self.state_dir = state_dir or Path(cfg.store.path).resolve().parent
        self.store = Store(
            cfg.store.path,
            busy_timeout_ms=cfg.store.busy_timeout_ms,
            max_size_mb=cfg.store.max_size_mb,
            store_photo=cfg.privacy.store_photo,
        )
        self.bus = Bus()
        self.service = HallService(cfg, self.store, self.bus, clock)
        self.routers: list[APIRouter] = []
        self.devices: Any = None  # the DeviceManager when devices are configured
        self.health_sources: dict[str, Callable[[], dict[str, Any]]] = {}
        self.components: list[Component] = []
        self.api = ApiServer(self)
        self._stack: contextlib.AsyncExitStack | None = None

    def health_extra(self) -> dict[str, Any]:
        return {name: fn() for name, fn in self.health_sources.items()}

    def _build(self) -> list[Component]:
        parts: list[Component] = []
        for factory in component_factories():
            part = factory(self)
            if part is not None:
                parts.append(part)
        parts.append(self.api)
        return parts

    async def start(self) -> None:
        self._stack = contextlib.AsyncExitStack()
        try:
            await self.store.open()
            self._stack.push_async_callback(self.store.close)
            self._stack.push_async_callback(self.bus.close)
            await self.service.start()
            self._stack.push_async_callback(self.service.stop)
            self.components = self._build()
            for part in self.components:
                log.debug("starting %s", part.name)
                await part.start()
                self._stack.push_async_callback(self._stop_part, part)
        except BaseException:
            await self.stop()
            raise

    @staticmethod
    async def _stop_part(part: Component) -> None:
        try:
            await part.stop()
        except Exception:
            log.exception("stopping %s failed", part.name)

    async def stop(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()

    async def run_until_signalled(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        try:
            await stop.wait()
        finally:
            log.info("stopping")
            await self.stop()


def component_factories() -> list[Callable[[Hall], Component | None]]:
    """Explicit registry, in start order; each factory returns None when its part is not configured."""
    from hallctl.devices.manager import devices_component
    from hallctl.mqtt.bridge import mqtt_component

    return [devices_component, mqtt_component]
