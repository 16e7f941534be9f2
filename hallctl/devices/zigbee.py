"""zigbee2mqtt temperature/humidity sensors: the devices side of readings that arrive over MQTT.

The MQTT component owns the one broker connection; this component only declares
which topics it wants (``ctx.subscribe_mqtt``) and turns their payloads into
sensor readings and device health on the service, like a serial driver would.
"""

from __future__ import annotations

import logging

from drivers import zigbee
from hallctl.config import SensorConfig
from hallctl.context import HallContext, MqttHandler

log = logging.getLogger(__name__)


def zigbee_device_id(sensor_id: str) -> str:
    return f"zigbee-{sensor_id}"


class ZigbeeSensors:
    name = "zigbee"

    def __init__(self, ctx: HallContext) -> None:
        self.ctx = ctx
        self.sensors = [s for s in ctx.cfg.sensor if s.source == "zigbee" and s.friendly_name]

    async def start(self) -> None:
        for s in self.sensors:
            assert s.friendly_name is not None
            self.ctx.subscribe_mqtt(zigbee.state_topic(s.zigbee_base, s.friendly_name), self._state_handler(s))
            self.ctx.subscribe_mqtt(
                zigbee.availability_topic(s.zigbee_base, s.friendly_name), self._availability_handler(s)
            )

    async def stop(self) -> None:
        return None

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
            try:
                reading = zigbee.parse_state(payload)
            except zigbee.PayloadError as exc:
                log.warning("zigbee sensor %s: unreadable message on %s: %s", sensor.id, topic, exc)
                return
            if reading.temperature is None and reading.humidity is None:
                return
            await self.ctx.service.sensor_reading(sensor.id, reading.temperature, reading.humidity)

        return handle
