"""The real drivers behind ``[[climate_unit]]``: the ``modbus``, ``bacnet`` and ``mqtt`` unit kinds.

One :class:`ClimateDrivers` per daemon owns what units share: a Modbus gateway per (port,
slave address) with the task that keeps its link up and polls it, a BACnet/IP application per
local address, and the bridge from the MQTT units to the daemon's MQTT component (which holds
the only MQTT client: units publish through ``ctx.publish_mqtt`` and get their state topics
through ``ctx.subscribe_mqtt``). It is a component of its own, started before the climate
component (whose ``start`` creates the units through :meth:`ClimateDrivers.make_unit`) and
stopped after it, so gateways outlive the release of their units.

Each unit is wrapped so that what its driver answers reaches the hall's device health
(``service.device_health``, kind ``ac_unit``) like any other device's; a Modbus gateway's link
health (port gone, nothing answering) is reported under the gateway's own name (kind
``ac_gateway``). A simulated unit (``simulate = true``) is reached where the simulation side
started its simulator (``ctx.climate_unit_ports``); this module never imports a simulator.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from drivers.aircon import AcCommand, AcNoAck, AcState, AcUnit, AcUnsupported
from drivers.errors import DeviceError
from hallctl.climate.units import UnitFactory, registered_kind
from hallctl.config import BacnetUnitConfig, ClimateUnitConfig, Config, ModbusUnitConfig, MqttUnitConfig
from hallctl.errors import MqttUnavailable

if TYPE_CHECKING:  # the drivers are imported by the kind that needs them: a hall without a unit loads none
    from drivers.ac_bacnet import BacnetLink, BacnetPoints
    from drivers.ac_modbus import ModbusAcGateway
    from drivers.base import Health

log = logging.getLogger(__name__)

UNIT_KIND = "ac_unit"
GATEWAY_KIND = "ac_gateway"
MODBUS_TIMEOUT_S = 1.0  # per request; a gateway answers in tens of milliseconds or not at all


class _Health(Protocol):
    def device_health(self, device: str, kind: str, state: str, detail: str = "") -> None: ...


class Hall(Protocol):
    """What the unit kinds need of the daemon (its :class:`hallctl.context.HallContext` has all of it)."""

    cfg: Config
    service: Any  # device_health(device, kind, state, detail): see _Health
    climate_unit_ports: dict[str, str]

    async def publish_mqtt(self, topic: str, payload: str, timeout: float) -> None: ...

    def subscribe_mqtt(self, topic: str, handler: Callable[[str, bytes], Awaitable[None]]) -> None: ...


class _HallMqtt:
    """The :class:`drivers.ac_mqtt.MqttPort` of one unit: the daemon's MQTT component, errors as no-ack."""

    def __init__(self, ctx: Hall, unit_id: str, timeout: float) -> None:
        self.ctx = ctx
        self.unit_id = unit_id
        self.timeout = timeout

    async def publish(self, topic: str, payload: str) -> None:
        try:
            await self.ctx.publish_mqtt(topic, payload, self.timeout)
        except MqttUnavailable as exc:
            raise AcNoAck(self.unit_id, exc.message) from exc


class TrackedUnit:
    """An :class:`AcUnit` whose answers (or silence) become the device health of the unit."""

    def __init__(self, unit: AcUnit, report: Any) -> None:
        self.inner = unit
        self.unit_id = unit.unit_id
        self._report = report

    async def _track(self, state: AcState) -> AcState:
        if state.error_code:
            self._report("error", f"unit reports error {state.error_text or state.error_code}")
        else:
            self._report("ok", "")
        return state

    async def apply(self, cmd: AcCommand) -> AcState:
        try:
            return await self._track(await self.inner.apply(cmd))
        except AcNoAck as exc:
            self._report("offline", exc.message)
            raise
        except DeviceError as exc:
            self._report("degraded", exc.message)
            raise

    async def read(self) -> AcState:
        try:
            return await self._track(await self.inner.read())
        except AcNoAck as exc:
            self._report("offline", exc.message)
            raise

    async def release(self) -> None:
        await self.inner.release()

    async def close(self) -> None:
        await self.inner.close()


def bacnet_points(points: Mapping[Any, str]) -> BacnetPoints:
    """A ``[[climate_unit]] points`` table over the driver's defaults (``error`` is its ``error_code``)."""
    from drivers.ac_bacnet import BacnetPoints

    d = BacnetPoints()
    return BacnetPoints(
        setpoint=points.get("setpoint", d.setpoint),
        power=points.get("power", d.power),
        mode=points.get("mode", d.mode),
        fan=points.get("fan", d.fan),
        room_temperature=points.get("room_temperature", d.room_temperature),
        error_code=points.get("error", d.error_code),
    )


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ClimateDrivers:
    """The unit kinds of this daemon and the links their units share."""

    name = "climate.drivers"

    def __init__(self, ctx: Hall) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg
        self.kinds: dict[str, UnitFactory] = {"modbus": self._modbus, "bacnet": self._bacnet, "mqtt": self._mqtt}
        self.gateways: dict[tuple[str, int], ModbusAcGateway] = {}
        self.links: dict[str, BacnetLink] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def register_kind(self, kind: str, factory: UnitFactory) -> None:
        """Another (or a replacement) driver for ``kind`` in this daemon (tests register fakes here)."""
        self.kinds[kind] = factory

    def make_unit(self, cfg: ClimateUnitConfig) -> AcUnit:
        """The driver for one unit (the climate component's ``unit_factory``); :class:`DeviceError` if none."""
        factory = registered_kind(cfg.kind) or self.kinds.get(cfg.kind)
        if factory is None:
            raise AcUnsupported(cfg.id, f"no driver for climate_unit kind {cfg.kind!r} in this build")
        unit = factory(cfg)
        svc: _Health = self.ctx.service
        svc.device_health(cfg.id, UNIT_KIND, "offline", "not yet commanded")

        def report(state: str, detail: str) -> None:
            svc.device_health(cfg.id, UNIT_KIND, state, detail)

        return TrackedUnit(unit, report)

    # ---- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Nothing to open yet: links open when the climate component creates their first unit."""

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task, result in zip(tasks, await asyncio.gather(*tasks, return_exceptions=True), strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("%s ended with %r", task.get_name(), result)
        for link in self.links.values():
            link.close()
        self.links.clear()
        self.gateways.clear()

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(coro, name=name))

    def _where(self, unit_id: str, configured: str | None, simulate: bool) -> str:
        where = self.ctx.climate_unit_ports.get(unit_id) or (None if simulate else configured)
        if where is None:
            raise AcNoAck(unit_id, "simulated unit, but no simulator was started for it")
        return where

    # ---- the kinds ---------------------------------------------------------------------------

    def _modbus(self, cfg: ClimateUnitConfig) -> AcUnit:
        assert isinstance(cfg, ModbusUnitConfig)
        from drivers.ac_modbus import ModbusAcGateway
        from drivers.ac_profile import ProfileError, load_profile

        url = self._where(cfg.id, cfg.port, cfg.simulate)
        key = (url, cfg.address)
        gw = self.gateways.get(key)
        if gw is None:
            try:
                profile = load_profile(cfg.profile)
            except (ProfileError, OSError) as exc:
                raise AcUnsupported(cfg.id, f"profile {cfg.profile!r}: {exc}") from exc
            name = f"{cfg.id}-gateway"
            svc: _Health = self.ctx.service

            def on_health(h: Health) -> None:
                svc.device_health(name, GATEWAY_KIND, h.state, h.detail)

            gw = ModbusAcGateway(
                name,
                url,
                profile,
                device_id=cfg.address,
                baudrate=cfg.baudrate,
                # a simulator's pseudo-terminal carries no parity bit (Linux refuses PARENB on a pty)
                parity="N" if cfg.simulate else cfg.parity,
                timeout=MODBUS_TIMEOUT_S,
                interval=self.cfg.climate.tick_s,
                # the read-back window fits inside the climate component's bound on one apply
                readback_timeout=min(profile.readback_timeout_s, self.cfg.climate.ack_timeout_s * 0.6),
                on_health=on_health,
            )
            self.gateways[key] = gw
            self._spawn(gw.run(), f"climate.gateway.{name}")
        elif gw.profile.name != load_profile(cfg.profile).name:
            raise AcUnsupported(cfg.id, f"gateway {url} already runs profile {gw.profile.name!r}, not {cfg.profile!r}")
        try:
            return gw.unit(cfg.indoor_unit, cfg.id)
        except ValueError as exc:
            raise AcUnsupported(cfg.id, str(exc)) from exc

    def _bacnet(self, cfg: ClimateUnitConfig) -> AcUnit:
        assert isinstance(cfg, BacnetUnitConfig)
        from drivers.ac_bacnet import BacnetLink

        device = self._where(cfg.id, cfg.address, cfg.simulate)
        local = f"127.0.0.1:{_free_udp_port()}" if cfg.simulate else cfg.local_address
        link = self.links.get(local if not cfg.simulate else "simulated")
        if link is None:
            link = BacnetLink(f"hall-{self.cfg.hall.id}", local, timeout=min(3.0, self.cfg.climate.ack_timeout_s / 3))
            self.links[local if not cfg.simulate else "simulated"] = link
        try:
            points = bacnet_points(cfg.points)
            return link.unit(cfg.id, device, points, priority=cfg.priority)
        except ValueError as exc:
            raise AcUnsupported(cfg.id, str(exc)) from exc

    def _mqtt(self, cfg: ClimateUnitConfig) -> AcUnit:
        assert isinstance(cfg, MqttUnitConfig)
        from drivers.ac_mqtt import HaClimateAc, HaClimateTopics, Zigbee2MqttAc

        timeout = self.cfg.climate.ack_timeout_s * 0.8  # the unit says "no ack" before the component's bound
        port = _HallMqtt(self.ctx, cfg.id, timeout)
        unit: Zigbee2MqttAc | HaClimateAc
        if cfg.style == "zigbee2mqtt":
            if cfg.command_topic != f"{cfg.state_topic}/set":
                raise AcUnsupported(cfg.id, "zigbee2mqtt: command_topic must be state_topic + '/set'")
            base, _, friendly = cfg.state_topic.rpartition("/")
            if not base:
                raise AcUnsupported(cfg.id, "zigbee2mqtt: state_topic must be <base>/<friendly name>")
            unit = Zigbee2MqttAc(cfg.id, port, friendly, base_topic=base, timeout=timeout)
        else:
            c, s = cfg.command_topic, cfg.state_topic
            topics = HaClimateTopics(
                mode_command_topic=f"{c}/mode",
                temperature_command_topic=f"{c}/temperature",
                mode_state_topic=f"{s}/mode",
                temperature_state_topic=f"{s}/temperature",
                fan_mode_command_topic=f"{c}/fan_mode",
                fan_mode_state_topic=f"{s}/fan_mode",
                current_temperature_topic=f"{s}/current_temperature",
                availability_topic=cfg.availability_topic,
            )
            unit = HaClimateAc(cfg.id, port, topics, timeout=timeout)
        feed = unit.feed

        async def on_message(topic: str, payload: bytes) -> None:
            feed(topic, payload)

        for topic in unit.topics:
            self.ctx.subscribe_mqtt(topic, on_message)
        return unit
