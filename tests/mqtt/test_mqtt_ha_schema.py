"""Every discovery payload against Home Assistant's MQTT schemas (tests/mqtt/ha_schemas), and stable ids."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from hallctl import config
from hallctl.mqtt import discovery
from tests.mqtt import ha_schemas
from tests.mqtt.mqtt_helpers import hall_raw


def full_config(tmp_path: Path) -> config.Config:
    raw = hall_raw(tmp_path, "hz-01", "mqtt://127.0.0.1:1883")
    raw["device"] = [
        {"id": "printer-k1", "kind": "printer", "simulate": True},
        {"id": "led-3", "kind": "led_bus", "simulate": True},
    ]
    return config.parse(raw)


def messages(tmp_path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for topic, payload in discovery.discovery_messages(full_config(tmp_path), version="1.2.3"):
        component = topic.split("/")[1]
        out.append((topic, component, json.loads(payload)))
    return out


def test_every_discovery_payload_passes_home_assistants_schema(tmp_path: Path) -> None:
    msgs = messages(tmp_path)
    assert {c for _, c, _ in msgs} == {"sensor", "binary_sensor", "climate"}
    for topic, component, body in msgs:
        try:
            ha_schemas.validate(component, body)
        except ValidationError as exc:
            pytest.fail(f"{topic}: {exc}")


def test_no_object_id_and_english_default_entity_ids(tmp_path: Path) -> None:
    msgs = messages(tmp_path)
    ids = [body["default_entity_id"] for _, _, body in msgs]
    assert len(ids) == len(set(ids))
    for _, component, body in msgs:
        assert "object_id" not in body
        domain, _, object_part = body["default_entity_id"].partition(".")
        assert domain == component
        assert re.fullmatch(r"hallctl_hz_01_[a-z0-9_]+", object_part), object_part
        assert "__" not in object_part and not object_part.endswith("_")
    assert "sensor.hallctl_hz_01_queue_a_waiting" in ids
    assert "climate.hallctl_hz_01_climate_floor1" in ids
    assert "binary_sensor.hallctl_hz_01_device_printer_k1_paper" in ids


def test_unique_ids_are_the_ones_earlier_versions_published(tmp_path: Path) -> None:
    """HA keys its entity registry on unique_id: a changed one is a new entity and a dead old one."""
    unique = {body["unique_id"] for _, _, body in messages(tmp_path)}
    pinned = {
        "hallctl_hz-01_queue_A_waiting",
        "hallctl_hz-01_queue_B_avg_wait",
        "hallctl_hz-01_window_3_state",
        "hallctl_hz-01_sensor_floor1_temperature",
        "hallctl_hz-01_sensor_floor1_humidity",
        "hallctl_hz-01_device_printer-k1_state",
        "hallctl_hz-01_device_printer-k1_paper",
        "hallctl_hz-01_device_led-3_state",
        "hallctl_hz-01_climate_floor1",
    }
    assert pinned <= unique, pinned - unique


@pytest.mark.parametrize(
    ("component", "change"),
    [
        ("sensor", {"object_id": "hallctl_x"}),  # deprecated in HA 2025.10, gone in 2026.4
        ("sensor", {"state_topc": "typo"}),
        ("sensor", {"expire_after": "60"}),
        ("sensor", {"default_entity_id": "sensor.Shi Fan"}),
        ("climate", {"precision": 0.2}),
        ("climate", {"modes": ["cool", "blast"]}),
        ("binary_sensor", {"availability_mode": "some"}),
    ],
)
def test_the_schemas_refuse_what_home_assistant_refuses(tmp_path: Path, component: str, change: dict[str, Any]) -> None:
    body = next(b for _, c, b in messages(tmp_path) if c == component)
    ha_schemas.validate(component, body)
    with pytest.raises(ValidationError):
        ha_schemas.validate(component, {**body, **change})
