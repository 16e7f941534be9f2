"""MQTT air conditioners (zigbee2mqtt, Home Assistant climate) against a simulated device through a real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import pytest

from drivers.ac_mqtt import HaClimateAc, HaClimateTopics, Zigbee2MqttAc
from drivers.aircon import AcCommand, AcMismatch, AcNoAck, AcUnit, AcUnsupported
from drivers.sim.ac_mqtt import MqttAcSim
from tests.mqtt.mqtt_helpers import Mosquitto


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    mosquitto = Mosquitto(tmp_path_factory.mktemp("mosquitto-ac"))
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


class AiomqttPort:
    """What hallctl's MQTT component does for these drivers: publish, and feed their topics back."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client

    async def publish(self, topic: str, payload: str) -> None:
        await self.client.publish(topic, payload, qos=1)


@contextlib.asynccontextmanager
async def connected(broker: Mosquitto, unit: Zigbee2MqttAc | HaClimateAc) -> AsyncIterator[None]:
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier=f"hallctl-{uuid.uuid4().hex[:8]}") as client:
        unit.port = AiomqttPort(client)
        for topic in unit.topics:
            await client.subscribe(topic, qos=1)

        async def pump() -> None:
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                unit.feed(str(message.topic), payload)

        task = asyncio.create_task(pump())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class NoPort:
    async def publish(self, topic: str, payload: str) -> None:
        raise AssertionError("not connected yet")


def names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"z2m-{tag}", f"ac_{tag}"


async def test_zigbee2mqtt_apply_reads_back(broker: Mosquitto, tmp_path: Path) -> None:
    base, name = names()
    async with MqttAcSim("127.0.0.1", broker.port, base_topic=base, friendly_name=name) as sim:
        unit = Zigbee2MqttAc("ac-1", NoPort(), name, base_topic=base, timeout=3.0)
        async with connected(broker, unit):
            for cmd in (
                AcCommand(True, "cool", 26.0, "auto"),
                AcCommand(True, "heat", 20.0, "low"),
                AcCommand(False),
            ):
                state = await unit.apply(cmd)
                assert state.matches(cmd)
                assert sim.unit_state().matches(cmd)
            await sim.set_room_temperature(24.5)
            assert (await unit.read()).room_temperature == 24.5


async def test_zigbee2mqtt_silent_device_is_no_ack(broker: Mosquitto) -> None:
    base, name = names()
    async with MqttAcSim("127.0.0.1", broker.port, base_topic=base, friendly_name=name) as sim:
        unit = Zigbee2MqttAc("ac-1", NoPort(), name, base_topic=base, timeout=0.5)
        async with connected(broker, unit):
            await unit.apply(AcCommand(True, "cool", 26.0))
            sim.silent = True
            loop = asyncio.get_running_loop()
            began = loop.time()
            with pytest.raises(AcNoAck):
                await unit.apply(AcCommand(True, "cool", 25.0))
            assert loop.time() - began < unit.timeout + 2.0
            with pytest.raises(AcNoAck):
                await unit.read()
            sim.silent = False
            assert (await unit.apply(AcCommand(True, "cool", 25.0))).setpoint == 25.0


async def test_zigbee2mqtt_ignored_command_is_a_mismatch(broker: Mosquitto) -> None:
    base, name = names()
    async with MqttAcSim("127.0.0.1", broker.port, base_topic=base, friendly_name=name) as sim:
        unit = Zigbee2MqttAc("ac-1", NoPort(), name, base_topic=base, timeout=0.5)
        async with connected(broker, unit):
            await unit.apply(AcCommand(True, "cool", 26.0))
            sim.locked = True
            with pytest.raises(AcMismatch) as mismatch:
                await unit.apply(AcCommand(True, "cool", 24.0))
            assert mismatch.value.state is not None and mismatch.value.state.setpoint == 26.0
            with pytest.raises(AcUnsupported):
                await unit.apply(AcCommand(True, "cool", 12.0))


async def test_home_assistant_climate_apply_reads_back(broker: Mosquitto) -> None:
    tag = uuid.uuid4().hex[:8]
    topics = HaClimateTopics(
        mode_command_topic=f"{tag}/ac/mode/set",
        temperature_command_topic=f"{tag}/ac/temperature/set",
        mode_state_topic=f"{tag}/ac/mode/state",
        temperature_state_topic=f"{tag}/ac/temperature/state",
        fan_mode_command_topic=f"{tag}/ac/fan/set",
        fan_mode_state_topic=f"{tag}/ac/fan/state",
        current_temperature_topic=f"{tag}/ac/current",
    )
    async with MqttAcSim("127.0.0.1", broker.port, kind="ha", ha_topics=topics) as sim:
        unit = HaClimateAc("ac-ha", NoPort(), topics, timeout=3.0)
        async with connected(broker, unit):
            for cmd in (AcCommand(True, "cool", 26.5, "high"), AcCommand(True, "dry", 25.0, "auto"), AcCommand(False)):
                state = await unit.apply(cmd)
                assert state.matches(cmd)
                assert sim.unit_state().matches(cmd)
            await sim.set_room_temperature(27.0)
            # HA has no "get": the state arrives when the device sends it
            assert (await unit.wait_for(lambda s: s.room_temperature == 27.0)).room_temperature == 27.0
            sim.silent = True
            unit.timeout = 0.5
            with pytest.raises(AcNoAck):
                await unit.apply(AcCommand(True, "cool", 26.0))


async def test_home_assistant_climate_state_is_retained_and_its_availability_says_when_it_is_gone(
    broker: Mosquitto,
) -> None:
    """HA's MQTT climate has no "get": a fresh subscriber gets the retained state, and offline is no-ack.

    A hallctl that (re)starts after the device last spoke knows the unit at once; a device that
    went away (its will, or a clean stop) is no-ack instead of its last state forever.
    """
    tag = uuid.uuid4().hex[:8]
    topics = HaClimateTopics(
        mode_command_topic=f"{tag}/ac/mode/set",
        temperature_command_topic=f"{tag}/ac/temperature/set",
        mode_state_topic=f"{tag}/ac/mode/state",
        temperature_state_topic=f"{tag}/ac/temperature/state",
        current_temperature_topic=f"{tag}/ac/current",
        availability_topic=f"{tag}/ac/availability",
    )
    cmd = AcCommand(True, "cool", 26.5)
    sim = MqttAcSim("127.0.0.1", broker.port, kind="ha", ha_topics=topics)
    await sim.start()
    try:
        first = HaClimateAc("ac-ha", NoPort(), topics, timeout=3.0)
        async with connected(broker, first):
            assert (await first.apply(cmd)).matches(cmd)
        commands = sim.commands
        restarted = HaClimateAc("ac-ha", NoPort(), topics, timeout=3.0)
        async with connected(broker, restarted):
            assert (await restarted.read()).matches(cmd)  # from the broker, the device said nothing new
            assert sim.commands == commands
            await sim.stop()
            await restarted.wait_for(lambda _s: restarted.available is False)
            with pytest.raises(AcNoAck, match="offline"):
                await restarted.read()
            with pytest.raises(AcNoAck):
                await restarted.apply(cmd)
        later = HaClimateAc("ac-ha", NoPort(), topics, timeout=3.0)
        async with connected(broker, later):
            with pytest.raises(AcNoAck, match="offline"):
                await later.read()  # the retained "offline" reaches a new subscriber too
            await sim.start()
            await later.wait_for(lambda _s: later.available is True)  # its retained "online" replaced
            assert (await later.read()).matches(cmd)
    finally:
        await sim.stop()


def test_units_keep_the_acunit_contract() -> None:
    topics = HaClimateTopics("m/set", "t/set", "m/state", "t/state")
    units: list[AcUnit] = [Zigbee2MqttAc("a", NoPort(), "ac"), HaClimateAc("b", NoPort(), topics)]  # mypy checks
    assert [u.unit_id for u in units] == ["a", "b"]
    assert units[0].topics == ("zigbee2mqtt/ac",)  # type: ignore[attr-defined]
