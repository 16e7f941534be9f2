"""Air conditioners already on MQTT: zigbee2mqtt AC/IR controllers and Home Assistant MQTT climate entities.

drivers import nothing from hallctl, so these drivers do not own an MQTT connection: they
publish through an :class:`MqttPort` (hallctl's MQTT component, or any client) and are fed
the messages on :attr:`Zigbee2MqttAc.topics` by whoever subscribed (``feed(topic, payload)``).

Read-back is the device's own state topic, never our command echoed: ``apply`` publishes,
then waits for state messages until one shows the command (→ the state), or the time is up.
No state message at all since the command is :class:`AcNoAck` (device off the network, IR
blaster unpowered, wrong topic); state that keeps saying something else is
:class:`AcMismatch` (a remote control, an IR code the unit ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from drivers.aircon import (
    AC_MODES,
    FAN_SPEEDS,
    AcCapabilities,
    AcCommand,
    AcMismatch,
    AcMode,
    AcNoAck,
    AcState,
    FanSpeed,
)

__all__ = ["HaClimateAc", "HaClimateTopics", "MqttPort", "Zigbee2MqttAc", "Zigbee2MqttKeys"]


class MqttPort(Protocol):
    """What an MQTT air conditioner needs from the MQTT connection: publishing (QoS 1, not retained)."""

    async def publish(self, topic: str, payload: str) -> None: ...


class _MqttAc:
    """State kept from the device's messages; ``apply`` waits on it."""

    unit_id: str
    capabilities: AcCapabilities

    def __init__(self, unit_id: str, port: MqttPort, timeout: float) -> None:
        self.unit_id = unit_id
        self.port = port
        self.timeout = timeout
        self._state: AcState | None = None
        self._messages = 0  # state messages seen, so "no answer" and "wrong answer" differ
        self._changed = asyncio.Event()
        self._last_mode: AcMode = "cool"

    @property
    def topics(self) -> tuple[str, ...]:
        """Topics to subscribe to and ``feed`` into this unit."""
        raise NotImplementedError

    def _update(self, state: AcState) -> None:
        self._state = state
        self._messages += 1
        self._changed.set()

    async def _wait(self, since: int, cmd: AcCommand | None) -> AcState:
        """Until a state message newer than ``since`` (matching ``cmd``, when given) arrives."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            self._changed.clear()  # cleared before the check: an update after it sets it again
            state = self._state
            if self._messages > since and state is not None and (cmd is None or state.matches(cmd)):
                return state
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._changed.wait()
        if self._messages <= since or self._state is None:
            raise AcNoAck(self.unit_id, f"no state message within {self.timeout:g} s")
        raise AcMismatch(self.unit_id, f"wrote {cmd}, device reports {self._state}", self._state)

    async def _publish_all(self, messages: list[tuple[str, str]]) -> None:
        for topic, payload in messages:
            await self.port.publish(topic, payload)

    def _commands(self, cmd: AcCommand) -> list[tuple[str, str]]:
        raise NotImplementedError

    def _refresh(self) -> list[tuple[str, str]]:
        return []

    async def apply(self, cmd: AcCommand) -> AcState:
        self.capabilities.check(self.unit_id, cmd)
        since = self._messages
        await self._publish_all(self._commands(cmd))
        return await self._wait(since, cmd)

    async def read(self) -> AcState:
        """A fresh state when the device can be asked (zigbee2mqtt ``/get``); else the last one it sent."""
        refresh = self._refresh()
        if refresh:
            since = self._messages
            await self._publish_all(refresh)
            return await self._wait(since, None)
        if self._state is None:
            return await self._wait(0, None)
        return self._state

    async def wait_for(self, predicate: Callable[[AcState], bool]) -> AcState:
        """The device's state once it satisfies ``predicate`` (now, or from a later message).

        :class:`AcNoAck` when nothing satisfying arrives within ``timeout``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            self._changed.clear()
            if self._state is not None and predicate(self._state):
                return self._state
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AcNoAck(self.unit_id, f"no such state within {self.timeout:g} s (last: {self._state})")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._changed.wait()

    async def release(self) -> None:
        """Nothing to hand back: the device keeps the last command, as with its own remote."""

    async def close(self) -> None:
        """The MQTT connection belongs to whoever passed the port."""


# -- zigbee2mqtt ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Zigbee2MqttKeys:
    """The exposes of a zigbee2mqtt thermostat/AC controller (names vary a little per device)."""

    system_mode: str = "system_mode"
    cooling_setpoint: str = "occupied_cooling_setpoint"
    heating_setpoint: str = "occupied_heating_setpoint"
    fan_mode: str | None = "fan_mode"
    local_temperature: str | None = "local_temperature"
    modes: Mapping[AcMode, str] = dataclasses.field(
        default_factory=lambda: {"cool": "cool", "heat": "heat", "dry": "dry", "fan_only": "fan_only", "auto": "auto"}
    )
    off: str = "off"
    fans: Mapping[FanSpeed, str] = dataclasses.field(
        default_factory=lambda: {"auto": "auto", "low": "low", "medium": "medium", "high": "high"}
    )


class Zigbee2MqttAc(_MqttAc):
    """A zigbee2mqtt device ``<base>/<name>``: commands to ``…/set``, state from ``<base>/<name>``."""

    def __init__(
        self,
        unit_id: str,
        port: MqttPort,
        friendly_name: str,
        *,
        base_topic: str = "zigbee2mqtt",
        keys: Zigbee2MqttKeys | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(unit_id, port, timeout)
        self.friendly_name = friendly_name
        self.base_topic = base_topic.rstrip("/")
        self.keys = keys or Zigbee2MqttKeys()
        self.capabilities = AcCapabilities(
            modes=tuple(m for m in AC_MODES if m in self.keys.modes),
            fans=tuple(f for f in FAN_SPEEDS if f in self.keys.fans) if self.keys.fan_mode else ("auto",),
            reports_room_temperature=self.keys.local_temperature is not None,
        )

    @property
    def state_topic(self) -> str:
        return f"{self.base_topic}/{self.friendly_name}"

    @property
    def topics(self) -> tuple[str, ...]:
        return (self.state_topic,)

    def _commands(self, cmd: AcCommand) -> list[tuple[str, str]]:
        k = self.keys
        body: dict[str, Any] = {k.system_mode: k.modes[cmd.mode] if cmd.power else k.off}
        if cmd.power:
            body[k.heating_setpoint if cmd.mode == "heat" else k.cooling_setpoint] = cmd.setpoint
            if k.fan_mode is not None:
                body[k.fan_mode] = k.fans[cmd.fan]
        return [(f"{self.state_topic}/set", json.dumps(body))]

    def _refresh(self) -> list[tuple[str, str]]:
        k = self.keys
        ask = {key: "" for key in (k.system_mode, k.cooling_setpoint, k.heating_setpoint, k.fan_mode) if key}
        return [(f"{self.state_topic}/get", json.dumps(ask))]

    def feed(self, topic: str, payload: bytes | str) -> None:
        """A message on one of :attr:`topics`; anything unparseable is ignored (z2m also sends availability)."""
        if topic != self.state_topic:
            return
        try:
            data = json.loads(payload)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        k = self.keys
        raw_mode = data.get(k.system_mode)
        if raw_mode is None:
            return
        power = raw_mode != k.off
        mode = next((m for m, v in k.modes.items() if v == raw_mode), None)
        if power and mode is None:
            return
        if mode is not None:
            self._last_mode = mode
        shown = mode or self._last_mode
        setpoint = data.get(k.heating_setpoint if shown == "heat" else k.cooling_setpoint)
        fan: FanSpeed | None = "auto"
        if k.fan_mode is not None:
            fan = next((f for f, v in k.fans.items() if v == data.get(k.fan_mode)), None)
        if not isinstance(setpoint, int | float) or fan is None:
            return
        room = data.get(k.local_temperature) if k.local_temperature else None
        self._update(
            AcState(power, shown, float(setpoint), fan, float(room) if isinstance(room, int | float) else None)
        )


# -- Home Assistant MQTT climate --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HaClimateTopics:
    """The MQTT climate entity's topics, as in its Home Assistant configuration (plain payloads, no templates)."""

    mode_command_topic: str
    temperature_command_topic: str
    mode_state_topic: str
    temperature_state_topic: str
    fan_mode_command_topic: str | None = None
    fan_mode_state_topic: str | None = None
    current_temperature_topic: str | None = None
    # HA's ``availability_topic``: the device's retained online/offline (its last will says offline).
    availability_topic: str | None = None
    payload_available: str = "online"
    payload_not_available: str = "offline"


class HaClimateAc(_MqttAc):
    """A Home Assistant MQTT climate entity: HVAC modes ``off/cool/heat/dry/fan_only/auto`` as HA names them."""

    def __init__(self, unit_id: str, port: MqttPort, topics: HaClimateTopics, *, timeout: float = 10.0) -> None:
        super().__init__(unit_id, port, timeout)
        self.config = topics
        self._values: dict[str, str] = {}
        self.available: bool | None = None  # None: no availability message yet (or none configured)
        self.capabilities = AcCapabilities(
            fans=FAN_SPEEDS if topics.fan_mode_command_topic else ("auto",),
            reports_room_temperature=topics.current_temperature_topic is not None,
        )

    @property
    def topics(self) -> tuple[str, ...]:
        t = self.config
        return tuple(
            x
            for x in (
                t.mode_state_topic,
                t.temperature_state_topic,
                t.fan_mode_state_topic,
                t.current_temperature_topic,
                t.availability_topic,
            )
            if x
        )

    async def apply(self, cmd: AcCommand) -> AcState:
        if self.config.availability_topic is not None and self.available is False:
            raise AcNoAck(self.unit_id, f"device reports {self.config.payload_not_available!r}: not commanded")
        return await super().apply(cmd)

    async def read(self) -> AcState:
        """The state the device last published; a Home Assistant MQTT climate has no "get".

        Its state topics are retained, so the broker hands the last state to every new
        subscription (a restarted hallctl knows the unit at once), and its availability topic
        is retained too, with a last will: a device that died reads as :class:`AcNoAck`
        instead of its last state forever.
        """
        t = self.config
        if t.availability_topic is not None:
            if self.available is None:
                await self.wait_available()
            if not self.available:
                raise AcNoAck(self.unit_id, f"device reports {t.payload_not_available!r} on {t.availability_topic}")
        return await super().read()

    async def wait_available(self) -> None:
        """Until the first availability message (a retained one arrives with the subscription)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while self.available is None:
            self._changed.clear()
            if self.available is not None:
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AcNoAck(
                    self.unit_id, f"no availability on {self.config.availability_topic} within {self.timeout:g} s"
                )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._changed.wait()

    def _commands(self, cmd: AcCommand) -> list[tuple[str, str]]:
        t = self.config
        if not cmd.power:
            return [(t.mode_command_topic, "off")]
        out = [(t.temperature_command_topic, f"{cmd.setpoint:g}")]
        if t.fan_mode_command_topic:
            out.append((t.fan_mode_command_topic, cmd.fan))
        out.append((t.mode_command_topic, cmd.mode))
        return out

    def feed(self, topic: str, payload: bytes | str) -> None:
        text = payload.decode() if isinstance(payload, bytes) else payload
        t = self.config
        names = {
            t.mode_state_topic: "mode",
            t.temperature_state_topic: "temperature",
            t.fan_mode_state_topic: "fan",
            t.current_temperature_topic: "current",
        }
        if t.availability_topic is not None and topic == t.availability_topic:
            word = text.strip()
            if word in (t.payload_available, t.payload_not_available):
                self.available = word == t.payload_available
                self._changed.set()
            return
        name = names.get(topic)
        if name is None:
            return
        self._values[name] = text.strip()
        v = self._values
        if "mode" not in v or "temperature" not in v:
            return
        power = v["mode"] != "off"
        mode = next((m for m in AC_MODES if m == v["mode"]), None)
        if power and mode is None:
            return
        if mode is not None:
            self._last_mode = mode
        fan = next((f for f in FAN_SPEEDS if f == v.get("fan", "auto")), None)
        try:
            setpoint = float(v["temperature"])
            room = float(v["current"]) if "current" in v else None
        except ValueError:
            return
        if fan is None:
            return
        self._update(AcState(power, mode or self._last_mode, setpoint, fan, room))
