"""An MQTT air conditioner on a real broker: a zigbee2mqtt AC controller or a Home Assistant MQTT climate device.

It is an ordinary aiomqtt client, so the driver is tested through Mosquitto exactly as it meets
a device in a hall. The unit model (:meth:`MqttAcSim.unit_state`,
:meth:`MqttAcSim.set_room_temperature`) is what the room model couples to; ``silent`` makes the
device ignore commands and publish nothing (no-ack); ``locked`` makes it answer with its old
state (mismatch).

Like the devices it stands for, the Home Assistant kind publishes its state topics retained
(a client subscribing later gets the last state from the broker) and, when its topics name
an ``availability_topic``, announces ``online`` there retained, with ``offline`` as its last
will and on a clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from types import TracebackType
from typing import Literal, Self

import aiomqtt

from drivers.ac_mqtt import HaClimateTopics
from drivers.aircon import AC_MODES, FAN_SPEEDS, AcState


class MqttAcSim:
    """``kind="z2m"``: device ``<base>/<name>``; ``kind="ha"``: the topics of ``ha_topics``."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        kind: Literal["z2m", "ha"] = "z2m",
        friendly_name: str = "hall_ac_1",
        base_topic: str = "zigbee2mqtt",
        ha_topics: HaClimateTopics | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.kind = kind
        self.state_topic = f"{base_topic}/{friendly_name}"
        self.ha = ha_topics
        self.state = AcState(power=False, mode="cool", setpoint=26.0, fan="auto", room_temperature=28.0)
        self.silent = False
        self.locked = False
        self.commands = 0
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def unit_state(self) -> AcState:
        return self.state

    async def set_room_temperature(self, celsius: float) -> None:
        self.state = AcState(self.state.power, self.state.mode, self.state.setpoint, self.state.fan, celsius)
        await self._publish_state()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"drivers.sim.ac_mqtt.{self.state_topic}")
        async with asyncio.timeout(5.0):
            await self._ready.wait()

    def _availability(self) -> tuple[str, str, str] | None:
        ha = self.ha
        if self.kind != "ha" or ha is None or ha.availability_topic is None:
            return None
        return ha.availability_topic, ha.payload_available, ha.payload_not_available

    async def _run(self) -> None:
        avail = self._availability()
        will = aiomqtt.Will(avail[0], avail[2], qos=1, retain=True) if avail is not None else None
        async with aiomqtt.Client(
            self.host, self.port, identifier=f"sim-{self.state_topic.replace('/', '-')}", will=will
        ) as client:
            self._client = client
            if avail is not None:
                await client.publish(avail[0], avail[1], qos=1, retain=True)
            if self.kind == "z2m":
                await client.subscribe(f"{self.state_topic}/set", qos=1)
                await client.subscribe(f"{self.state_topic}/get", qos=1)
            else:
                assert self.ha is not None
                for topic in (
                    self.ha.mode_command_topic,
                    self.ha.temperature_command_topic,
                    self.ha.fan_mode_command_topic,
                ):
                    if topic:
                        await client.subscribe(topic, qos=1)
                await self._publish_state()  # on connect, as an HA-style device does: retained
            self._ready.set()
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                await self._handle(str(message.topic), payload)

    async def _handle(self, topic: str, payload: bytes) -> None:
        if self.silent:
            return
        if not topic.endswith("/get"):
            self.commands += 1
            if not self.locked:
                self._take(topic, payload)
        await self._publish_state()

    def _take(self, topic: str, payload: bytes) -> None:
        s = self.state
        power, mode, setpoint, fan = s.power, s.mode, s.setpoint, s.fan
        if self.kind == "z2m":
            data = json.loads(payload)
            raw_mode = data.get("system_mode")
            if raw_mode == "off":
                power = False
            elif raw_mode in AC_MODES:
                power, mode = True, raw_mode
            key = "occupied_heating_setpoint" if mode == "heat" else "occupied_cooling_setpoint"
            if isinstance(data.get(key), int | float):
                setpoint = float(data[key])
            if data.get("fan_mode") in FAN_SPEEDS:
                fan = data["fan_mode"]
        else:
            assert self.ha is not None
            text = payload.decode().strip()
            if topic == self.ha.mode_command_topic:
                if text == "off":
                    power = False
                elif text in AC_MODES:
                    power, mode = True, text
            elif topic == self.ha.temperature_command_topic:
                setpoint = float(text)
            elif topic == self.ha.fan_mode_command_topic and text in FAN_SPEEDS:
                fan = text
        self.state = AcState(power, mode, setpoint, fan, s.room_temperature)

    async def _publish_state(self) -> None:
        client, s = self._client, self.state
        if client is None or self.silent:
            return
        if self.kind == "z2m":
            body = {
                "system_mode": s.mode if s.power else "off",
                "occupied_cooling_setpoint": s.setpoint,
                "occupied_heating_setpoint": s.setpoint,
                "fan_mode": s.fan,
                "local_temperature": s.room_temperature,
            }
            await client.publish(self.state_topic, json.dumps(body), qos=1)
            return
        assert self.ha is not None
        await client.publish(self.ha.temperature_state_topic, f"{s.setpoint:g}", qos=1, retain=True)
        if self.ha.fan_mode_state_topic:
            await client.publish(self.ha.fan_mode_state_topic, s.fan, qos=1, retain=True)
        await client.publish(self.ha.mode_state_topic, s.mode if s.power else "off", qos=1, retain=True)
        if self.ha.current_temperature_topic and s.room_temperature is not None:  # last: a test's marker
            await client.publish(self.ha.current_temperature_topic, f"{s.room_temperature:g}", qos=1, retain=True)

    async def stop(self) -> None:
        avail, client = self._availability(), self._client
        if avail is not None and client is not None:  # a clean stop says so (the will covers a crash)
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(avail[0], avail[2], qos=1, retain=True)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task
            self._task = None
        self._client = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
