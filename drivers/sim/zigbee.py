"""Payloads as zigbee2mqtt publishes them, for tests and the demo.

A simulated zigbee sensor is just these bytes published to the broker on the
topics from :mod:`drivers.zigbee`; both availability dialects are here because
halls run both zigbee2mqtt 1.x and 2.x. :class:`ZigbeeSensorSim` publishes them
for one device, as zigbee2mqtt does for a sensor it has paired.
"""

from __future__ import annotations

import contextlib
import json
import time

import aiomqtt


def z2m_payload(
    temperature: float | None,
    humidity: float | None,
    battery: int = 100,
    linkquality: int = 120,
    **extra: float,
) -> bytes:
    """A state message like an Aqara WSDCGQ11LM's; ``None`` leaves a key out, as devices do."""
    state: dict[str, float] = {"battery": battery, "linkquality": linkquality, **extra}
    if temperature is not None:
        state["temperature"] = temperature
    if humidity is not None:
        state["humidity"] = humidity
    return json.dumps(state, sort_keys=True, separators=(",", ":")).encode()


def availability_v2(online: bool) -> bytes:
    """zigbee2mqtt 2.x (and 1.x with ``legacy_availability_payload: false``)."""
    return json.dumps({"state": "online" if online else "offline"}).encode()


def availability_legacy(online: bool) -> bytes:
    """zigbee2mqtt 1.x default: the bare word."""
    return b"online" if online else b"offline"


class ZigbeeSensorSim:
    """One temperature/humidity sensor as zigbee2mqtt 2.x publishes it: ``<base>/<friendly name>``.

    Its availability (``…/availability``, retained) is ``online`` while connected; the state
    messages are QoS 0 and not retained, zigbee2mqtt's defaults. A reading is sent when it
    moved by a tenth of a degree or a whole percent, and at least every ``max_interval_s``
    (a sensor's reportable change and maximum reporting interval; a real one is nearer an hour,
    the simulation's is short so a subscriber that missed a message is not left waiting).
    """

    def __init__(
        self,
        host: str,
        port: int,
        friendly_name: str,
        base_topic: str = "zigbee2mqtt",
        *,
        max_interval_s: float = 5.0,
    ) -> None:
        self.host, self.port = host, port
        self.topic = f"{base_topic}/{friendly_name}"
        self.max_interval_s = max_interval_s
        self.last: tuple[float, float] | None = None
        self.last_at = 0.0
        self.published = 0
        self._client: aiomqtt.Client | None = None

    async def start(self) -> None:
        client = aiomqtt.Client(self.host, self.port, identifier=f"sim-z2m-{self.topic.replace('/', '-')}")
        await client.__aenter__()
        self._client = client
        await client.publish(f"{self.topic}/availability", availability_v2(True), qos=1, retain=True)

    async def report(self, temperature: float, humidity: float) -> bool:
        """Publish the reading if it moved past the reporting threshold; whether it was sent."""
        value = (round(temperature, 1), round(humidity))
        now = time.monotonic()
        if self._client is None or (value == self.last and now - self.last_at < self.max_interval_s):
            return False
        self.last, self.last_at = value, now
        await self._client.publish(self.topic, z2m_payload(value[0], float(value[1])), qos=0)
        self.published += 1
        return True

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(f"{self.topic}/availability", availability_v2(False), qos=1, retain=True)
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)
