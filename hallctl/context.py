"""What a component receives from the daemon: the hall's shared parts, not the daemon itself.

Components (devices, MQTT, the HTTP API, the simulators) get this small context
instead of the whole :class:`hallctl.daemon.Hall`, so none of them imports the
daemon and the import graph stays acyclic. Through it a component reaches the
queue service (the only writer, and the place to read hall state), the token
authenticator, the climate zones and supervision, the bus, the
config and the state directory, and it registers what it offers: HTTP routes, a
health section, a device's port (the simulation side does that for simulated
devices).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from fastapi import APIRouter

from hallctl import events as ev
from hallctl.auth import Authenticator
from hallctl.bus import Bus
from hallctl.climate_view import ClimateView, EnergyView
from hallctl.config import Config
from hallctl.errors import MqttUnavailable
from hallctl.service import HallService
from hallctl.store import Store
from hallctl.supervision import Supervision


class Component(Protocol):
    """A part of the daemon with a two-phase life: cheap constructor, ``start`` opens, ``stop`` closes."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


HealthSource = Callable[[], dict[str, Any]]
# Called with (topic, payload) for each message on a topic a component subscribed to.
MqttHandler = Callable[[str, bytes], Awaitable[None]]
# Publishes (topic, payload) at QoS 1, not retained, on the hall's broker; waits up to ``timeout`` s for a link.
MqttPublisher = Callable[[str, str, float], Awaitable[None]]
# Queues a replay of event-log rows (first, last seq) to the city feed; answers what will be sent.
CityReplay = Callable[[int, int], Awaitable[dict[str, Any]]]


@dataclasses.dataclass(frozen=True)
class LazyRoutes:
    """A router made at its first request under ``prefix`` (see :meth:`HallContext.add_lazy_routes`)."""

    prefix: str
    build: Callable[[], APIRouter]


@dataclasses.dataclass
class HallContext:
    cfg: Config
    service: HallService
    # hallctl.climate's components in a hall with zones, else stand-ins (hallctl.climate_view).
    climate: ClimateView
    # Today's kWh and comfort per zone (hallctl.climate.energy); read by the API.
    energy: EnergyView
    supervision: Supervision
    bus: Bus
    # Checks bearer tokens (the HTTP API, the pages); owns the token cache.
    auth: Authenticator
    # For a component's own durable data (the MQTT outbox), through typed methods; hall state
    # changes only through ``service``.
    store: Store
    state_dir: Path
    demo: bool = False
    routers: list[APIRouter | LazyRoutes] = dataclasses.field(default_factory=list)
    health_sources: dict[str, HealthSource] = dataclasses.field(default_factory=dict)
    # Where each device is reached when it is not its configured ``port`` (a simulator's pty).
    device_ports: dict[str, str] = dataclasses.field(default_factory=dict)
    # Topics (no wildcards) that components read from the hall's broker; the MQTT component subscribes.
    mqtt_handlers: dict[str, MqttHandler] = dataclasses.field(default_factory=dict)
    mqtt_shed: dict[str, Callable[[str], None]] = dataclasses.field(default_factory=dict)
    # Where each ``[[climate_unit]]`` is reached when it is not its configured port/address (a simulator's):
    # unit id -> serial path or tcp://host:port (modbus), host:port (bacnet). Filled by the simulation side.
    climate_unit_ports: dict[str, str] = dataclasses.field(default_factory=dict)
    # Set by the MQTT component when it is configured: how another component publishes on the hall's
    # broker without holding an MQTT client (only hallctl/mqtt/ does). See :meth:`publish_mqtt`.
    mqtt_publisher: MqttPublisher | None = None
    # The broker's loopback (host, port) once the MQTT component knows it, and an event for it: for
    # simulated MQTT devices, which are clients of the same broker.
    mqtt_broker: tuple[str, int] | None = None
    mqtt_broker_known: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    # Set by the city feed (hallctl/mqtt/citylog.py) when ``[city] feed`` is on: the ``city.replay`` command.
    city_replay: CityReplay | None = None
    # Awaited with the new config after a live edit (admin console) was taken: the device manager
    # swaps changed devices' drivers, so the edit answers once they run (hallctl/admin/edits.py).
    config_appliers: list[Callable[[Config], Awaitable[None]]] = dataclasses.field(default_factory=list)

    def add_routes(self, router: APIRouter) -> None:
        """Serve ``router`` on the HTTP API (registered before the API component starts)."""
        self.routers.append(router)

    def add_lazy_routes(self, prefix: str, build: Callable[[], APIRouter]) -> None:
        """Serve the router ``build`` makes, made at the first request under ``prefix`` (every one of its
        routes' paths starts with it) or the first OpenAPI document: for routes few ask for
        (hallctl/http/lazy.py). In the route order as if added with :meth:`add_routes` now."""
        self.routers.append(LazyRoutes(prefix, build))

    def report_health(self, name: str, source: HealthSource) -> None:
        """Add a section to ``GET /health``; ``{"ok": false}`` in it makes the hall ``degraded``."""
        self.health_sources[name] = source

    def subscribe_mqtt(self, topic: str, handler: MqttHandler, shed: Callable[[str], None] | None = None) -> None:
        """Have the MQTT component hand every message on ``topic`` to ``handler`` (register before it starts).

        With ``shed``, the topic's messages are expendable (sensor readings): when more than
        ``[sensors] max_backlog`` messages wait in the MQTT client, the component drops them
        unread and calls ``shed(topic)`` for each, so the owner counts them and commands
        behind them are not held up.
        """
        self.mqtt_handlers[topic] = handler
        if shed is not None:
            self.mqtt_shed[topic] = shed

    async def publish_mqtt(self, topic: str, payload: str, timeout: float) -> None:
        """Publish on the hall's broker through the MQTT component (:class:`MqttUnavailable` when it cannot)."""
        if self.mqtt_publisher is None:
            raise MqttUnavailable("mqtt_unavailable", "本系统未启用MQTT", "no MQTT component in this daemon")
        await self.mqtt_publisher(topic, payload, timeout)

    def forget_health(self, name: str) -> None:
        self.health_sources.pop(name, None)

    def health(self) -> dict[str, Any]:
        return {name: fn() for name, fn in self.health_sources.items()}

    def snapshot(self) -> list[ev.Event]:
        """Everything a screen or a retained topic needs to draw the present."""
        return [*self.service.snapshot(), *self.climate.snapshot()]
