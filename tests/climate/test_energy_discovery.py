"""Home Assistant sees each zone's energy as a meter its Energy dashboard accepts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hallctl import events as ev
from hallctl.mqtt import discovery, topics
from tests.core.core_helpers import make_config
from tests.mqtt import ha_schemas

ZONES = [
    {"id": "floor1", "name": "一楼"},
    {"id": "floor2"},
]
UNITS = [
    {
        "id": "vrf-1f",
        "zone": "floor1",
        "kind": "mqtt",
        "command_topic": "zigbee2mqtt/vrf-1f/set",
        "state_topic": "zigbee2mqtt/vrf-1f",
        "rated_cooling_kw": 18.6,
        "rated_heating_kw": 19.2,
    }
]


def test_the_energy_sensor_validates_and_is_an_energy_meter() -> None:
    cfg = make_config(climate_zone=ZONES, climate_unit=UNITS)
    msgs = {t: json.loads(p) for t, p in discovery.discovery_messages(cfg, version="1.0")}
    energy = {t: p for t, p in msgs.items() if t.endswith("_energy/config")}
    assert len(energy) == 2
    topic = "homeassistant/sensor/hallctl_test/climate_floor1_energy/config"
    body = energy[topic]
    ha_schemas.validate("sensor", body)
    assert body["device_class"] == "energy" and body["state_class"] == "total_increasing"
    assert body["unit_of_measurement"] == "kWh"  # among HA's units for device_class energy
    assert body["state_topic"] == "hallctl/test/climate/floor1/energy"
    assert body["default_entity_id"] == "sensor.hallctl_test_climate_floor1_energy"
    comfort = msgs["homeassistant/sensor/hallctl_test/climate_floor1_comfort/config"]
    ha_schemas.validate("sensor", comfort)
    # The state topic is retained state the MQTT component keeps (and clears when a zone goes away).
    assert "hallctl/test/climate/floor1/energy" in discovery.state_topics(cfg)


def test_the_energy_event_goes_to_the_topic_the_sensor_reads() -> None:
    event = ev.ClimateEnergy(
        at=datetime(2026, 7, 15, 8, tzinfo=UTC),
        zone="floor1",
        day="2026-07-15",
        kwh=12.5,
        cool_hours=3.0,
        heat_hours=0.0,
        dry_hours=0.0,
        fan_hours=0.0,
        open_hours=7.0,
        share_in_band=0.97,
        degree_hours=0.2,
    )
    out = topics.route("hallctl/test", event)
    assert out is not None and out.retain
    assert out.topic == "hallctl/test/climate/floor1/energy"
    assert json.loads(out.payload)["kwh"] == 12.5
