"""zigbee2mqtt temperature/humidity sensors: the devices side of readings that arrive over MQTT.

The MQTT component owns the one broker connection; this component only declares
which topics it wants (``ctx.subscribe_mqtt``) and turns their payloads into
sensor readings and device health on the service, like a serial driver would.

Readings are partial (an SNZB-02 reports temperature alone when only it changed; the
service keeps the last humidity); an impossible one (900 °C, 150 %RH) is refused with
the Modbus sensors' limits, logged and counted (health ``zigbee.out_of_range``).
zigbee2mqtt's ``output: attribute`` topics (``<base>/<name>/temperature`` with a bare
number) are subscribed and read like the JSON state.

Handling a reading never awaits: parse, then :meth:`HallService.sensor_reading` (in
memory), so a flood of readings costs microseconds each and cannot hold up a command
behind it on the one MQTT connection. Reading topics are registered as expendable: when
the MQTT client's backlog is over ``[sensors] max_backlog`` the bridge drops them unread
and this component counts them (health ``zigbee.shed``), so every message is either
applied, refused with a reason, or counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from drivers import zigbee
from hallctl.config import SensorConfig, zigbee_device_id
from hallctl.context import HallContext, MqttHandler
from hallctl.service.sensors import RateLimitedLog

log = logging.getLogger(__name__)


class ZigbeeSensors:
    name = "zigbee"

    def __init__(self, ctx: HallContext) -> None:
        self.ctx = ctx
        self.sensors = [s for s in ctx.cfg.sensor if s.source == "zigbee" and s.friendly_name]
        self.messages = 0  # reading messages received (applied, refused, unreadable or empty)
        self.readings = 0  # readings handed to the service (applied)
        self.shed = 0  # reading messages dropped unread by the MQTT component under overload
        self.out_of_range = 0  # impossible readings refused (900 °C, 150 %RH)
        self.unreadable = 0  # payloads that are not what zigbee2mqtt sends
        self._shed_log = RateLimitedLog(logger=log)

    def health(self) -> dict[str, Any]:
        return {
            "ok": True,
            "sensors": len(self.sensors),
            "messages": self.messages,
            "readings": self.readings,
            "shed": self.shed,
            "out_of_range": self.out_of_range,
            "unreadable": self.unreadable,
        }

    async def start(self) -> None:
        if self.sensors:
            self.ctx.report_health("zigbee", self.health)
        for s in self.sensors:
            assert s.friendly_name is not None
            self.ctx.subscribe_mqtt(
                zigbee.state_topic(s.zigbee_base, s.friendly_name), self._state_handler(s), self._on_shed
            )
            for attribute in zigbee.ATTRIBUTES:
                self.ctx.subscribe_mqtt(
                    zigbee.attribute_topic(s.zigbee_base, s.friendly_name, attribute),
                    self._attribute_handler(s, attribute),
                    self._on_shed,
                )
            self.ctx.subscribe_mqtt(
                zigbee.availability_topic(s.zigbee_base, s.friendly_name), self._availability_handler(s)
            )

    async def stop(self) -> None:
        self.ctx.forget_health("zigbee")

    def _on_shed(self, topic: str) -> None:
        self.shed += 1
        self._shed_log.warning("zigbee: overloaded, reading messages dropped unread (counted in health zigbee.shed)")

    def _availability_handler(self, sensor: SensorConfig) -> MqttHandler:
        async def handle(topic: str, payload: bytes) -> None:
            try:
                available = zigbee.parse_availability(payload)
            except zigbee.PayloadError as exc:
                log.warning("zigbee sensor %s: unreadable message on %s: %s", sensor.id, topic, exc)
                return
            self.ctx.service.device_health(
                zigbee_device_id(sensor.id),
                "zigbee_sensor",
                "ok" if available else "offline",
                "" if available else "zigbee2mqtt reports the sensor offline",
            )

        return handle

    def _state_handler(self, sensor: SensorConfig) -> MqttHandler:
        async def handle(topic: str, payload: bytes) -> None:
            self._reading(sensor, topic, lambda: zigbee.parse_state(payload))

        return handle

    def _attribute_handler(self, sensor: SensorConfig, attribute: str) -> MqttHandler:
        async def handle(topic: str, payload: bytes) -> None:
            self._reading(sensor, topic, lambda: zigbee.parse_attribute(attribute, payload))

        return handle

    def _reading(self, sensor: SensorConfig, topic: str, parse: Callable[[], zigbee.ZigbeeReading]) -> None:
        self.messages += 1
        try:
            reading = parse()
        except zigbee.ReadingOutOfRange as exc:
            self.out_of_range += 1
            log.warning("zigbee sensor %s: refused an impossible reading on %s: %s", sensor.id, topic, exc)
            return
        except zigbee.PayloadError as exc:
            self.unreadable += 1
            log.warning("zigbee sensor %s: unreadable message on %s: %s", sensor.id, topic, exc)
            return
        if reading.temperature is None and reading.humidity is None:
            return
        self.readings += 1
        self.ctx.service.sensor_reading(sensor.id, reading.temperature, reading.humidity)
