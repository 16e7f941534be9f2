"""zigbee2mqtt readings as real sensors send them: partial, impossible, and ``output: attribute``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drivers import zigbee
from tests.mqtt.mqtt_helpers import Mosquitto, listen, make_config, running


@pytest.mark.parametrize(
    "payload",
    [b'{"temperature":900}', b'{"humidity":150}', b'{"humidity":-3}', b'{"temperature":-60,"humidity":40}'],
)
def test_impossible_readings_are_refused_with_the_modbus_limits(payload: bytes) -> None:
    with pytest.raises(zigbee.ReadingOutOfRange):
        zigbee.parse_state(payload)


def test_attribute_payloads_are_bare_numbers() -> None:
    assert zigbee.parse_attribute("temperature", b"22.51") == zigbee.ZigbeeReading(temperature=22.51)
    assert zigbee.parse_attribute("humidity", b"48") == zigbee.ZigbeeReading(humidity=48.0)
    for bad in (b'"22"', b"{}", b"hot", b"true"):
        with pytest.raises(zigbee.PayloadError):
            zigbee.parse_attribute("temperature", bad)
    with pytest.raises(zigbee.ReadingOutOfRange):
        zigbee.parse_attribute("humidity", b"150")


async def test_partial_impossible_and_attribute_readings(mosquitto: Mosquitto, tmp_path: Path, hall_id: str) -> None:
    root = f"hallctl/{hall_id}"
    state = f"{root}/sensor/floor1/state"
    async with running(make_config(tmp_path, hall_id, mosquitto.url)) as hall, listen(mosquitto.url, state) as sub:

        async def reading(payload: bytes, topic: str = "zigbee2mqtt/hall_th_1") -> dict[str, object]:
            start = len(sub.messages)
            await sub.client.publish(topic, payload, qos=1)
            msg = await sub.topic(state, start=start)
            got: dict[str, object] = json.loads(msg.payload)
            return got

        first = await reading(b'{"temperature":22.5,"humidity":40.5,"linkquality":120}')
        assert (first["temperature"], first["humidity"]) == (22.5, 40.5)
        # An SNZB-02 reports temperature alone when only it changed: the humidity stays.
        partial = await reading(b'{"linkquality":116,"temperature":22.8}')
        assert (partial["temperature"], partial["humidity"]) == (22.8, 40.5)
        # Impossible readings are refused (no state message), then a bare attribute topic reads.
        for bad in (b'{"temperature":900}', b'{"humidity":150}', b'{"humidity":-1}'):
            await sub.client.publish("zigbee2mqtt/hall_th_1", bad, qos=1)
        attr = await reading(b"23.4", "zigbee2mqtt/hall_th_1/temperature")
        assert (attr["temperature"], attr["humidity"]) == (23.4, 40.5)
        hum = await reading(b"42", "zigbee2mqtt/hall_th_1/humidity")  # beyond the 1 %RH deadband
        assert (hum["temperature"], hum["humidity"]) == (23.4, 42.0)
        assert [m for m in sub.messages if json.loads(m.payload)["temperature"] == 900] == []
        z = hall.health_extra()["zigbee"]
        assert z["out_of_range"] == 3 and z["readings"] == 4, z
        assert hall.climate.states["floor1"].humidity == 42.0


async def test_a_setpoint_set_over_mqtt_survives_a_restart(mosquitto: Mosquitto, tmp_path: Path, hall_id: str) -> None:
    root = f"hallctl/{hall_id}"
    cfg = make_config(tmp_path, hall_id, mosquitto.url)
    default = cfg.climate_zone[0]
    async with running(cfg) as hall:
        state = await hall.climate.set("floor1", "heat", default.target + 1.5)
        assert state.mode == "heat"
    async with running(cfg) as hall, listen(mosquitto.url, f"{root}/climate/floor1/state") as sub:
        assert (hall.climate.states["floor1"].mode, hall.climate.states["floor1"].target) == (
            "heat",
            default.target + 1.5,
        )
        msg = await sub.topic(f"{root}/climate/floor1/state")
        assert json.loads(msg.payload)["target"] == default.target + 1.5
