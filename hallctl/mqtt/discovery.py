"""Home Assistant MQTT discovery and the hall's retained topic set, as pure functions.

Why pure: what HA sees is decided by the config alone, so it is tested without a
broker, and the same functions tell the MQTT component which retained topics
exist *now*; anything it published before that is no longer in the set belongs
to a removed window, category, device, sensor or zone and gets cleared with an
empty retained message (HA deletes an entity whose config is empty).
"""

from __future__ import annotations

import json
import re
from typing import Any

from hallctl.config import CLIMATE_MODES, Config, zigbee_device_id

DEVICE_STATES = ("ok", "degraded", "offline", "error", "unknown")
WINDOW_STATES = ("closed", "idle", "called", "serving", "paused")
_ID_RE = re.compile(r"[^A-Za-z0-9_-]")
_ENTITY_RE = re.compile(r"[^a-z0-9_]+")


def root(cfg: Config) -> str:
    return f"hallctl/{cfg.hall.id}"


def status_topic(cfg: Config) -> str:
    return f"{root(cfg)}/status"


def safe_id(value: str) -> str:
    """HA accepts only letters, digits, ``_`` and ``-`` in node and object ids."""
    return _ID_RE.sub("_", value)


def entity_id_part(value: str) -> str:
    """An entity id's object part: lowercase ``[a-z0-9_]`` only, no leading, trailing or doubled ``_``."""
    return _ENTITY_RE.sub("_", value.lower()).strip("_") or "x"


def queue_topic(cfg: Config, prefix: str) -> str:
    return f"{root(cfg)}/queue/{prefix}/state"


def window_topic(cfg: Config, number: int) -> str:
    return f"{root(cfg)}/window/{number}/state"


def device_topic(cfg: Config, device: str) -> str:
    return f"{root(cfg)}/device/{device}/state"


def sensor_topic(cfg: Config, sensor: str) -> str:
    return f"{root(cfg)}/sensor/{sensor}/state"


def climate_topic(cfg: Config, zone: str) -> str:
    return f"{root(cfg)}/climate/{zone}/state"


def climate_energy_topic(cfg: Config, zone: str) -> str:
    return f"{root(cfg)}/climate/{zone}/energy"


def state_topics(cfg: Config) -> list[str]:
    """Every retained state topic the present config can produce."""
    out = [queue_topic(cfg, c.prefix) for c in cfg.category]
    out += [window_topic(cfg, w.number) for w in cfg.window]
    out += [device_topic(cfg, d.id) for d in cfg.device]
    out += [sensor_topic(cfg, s.id) for s in cfg.sensor]
    # zigbee2mqtt availability becomes a device state of its own
    out += [device_topic(cfg, zigbee_device_id(s.id)) for s in cfg.sensor if s.source == "zigbee"]
    out += [climate_topic(cfg, z.id) for z in cfg.climate_zone]
    out += [climate_energy_topic(cfg, z.id) for z in cfg.climate_zone]
    return out


def _hall_device(cfg: Config, version: str) -> dict[str, Any]:
    return {
        "identifiers": [f"hallctl_{safe_id(cfg.hall.id)}"],
        "name": cfg.hall.name,
        "manufacturer": "hallctl",
        "model": "Service hall controller",
        "sw_version": version,
    }


def _hw_device(cfg: Config, device_id: str, kind: str) -> dict[str, Any]:
    return {
        "identifiers": [f"hallctl_{safe_id(cfg.hall.id)}_{safe_id(device_id)}"],
        "name": f"{cfg.hall.name} {device_id}",
        "manufacturer": "hallctl",
        "model": kind,
        "via_device": f"hallctl_{safe_id(cfg.hall.id)}",
    }


def discovery_messages(cfg: Config, *, prefix: str | None = None, version: str = "0") -> list[tuple[str, str]]:
    """``(topic, retained JSON payload)`` for every HA entity the config describes."""
    prefix = prefix or cfg.mqtt.discovery_prefix
    node = f"hallctl_{safe_id(cfg.hall.id)}"
    status = status_topic(cfg)
    hall_dev = _hall_device(cfg, version)
    origin = {"name": "hallctl", "sw_version": version}
    out: list[tuple[str, str]] = []

    def add(component: str, object_id: str, payload: dict[str, Any]) -> None:
        oid = safe_id(object_id)
        # unique_id is HA's registry key: never change its form (tests pin it). default_entity_id
        # (HA 2025.10+, replacing the deprecated object_id) names the entity in English whatever
        # the hall's Chinese names are: ``sensor.hallctl_<hall>_queue_a_waiting``.
        entity = f"{component}.{entity_id_part(f'{node}_{oid}')}"
        body: dict[str, Any] = {"unique_id": f"{node}_{oid}", "default_entity_id": entity, "origin": origin, "qos": 1}
        body.update(payload)
        body.setdefault("device", hall_dev)
        if "availability" not in body:
            body["availability_topic"] = status
        out.append((f"{prefix}/{component}/{node}/{oid}/config", json.dumps(body, ensure_ascii=False)))

    for c in cfg.category:
        topic = queue_topic(cfg, c.prefix)
        add(
            "sensor",
            f"queue_{c.prefix}_waiting",
            {
                "name": f"{c.name} 等候人数",
                "state_topic": topic,
                "value_template": "{{ value_json.waiting }}",
                "state_class": "measurement",
                "unit_of_measurement": "人",
                "icon": "mdi:account-clock",
            },
        )
        add(
            "sensor",
            f"queue_{c.prefix}_avg_wait",
            {
                "name": f"{c.name} 平均等候",
                "state_topic": topic,
                "value_template": "{{ value_json.avg_wait_s }}",
                "device_class": "duration",
                "state_class": "measurement",
                "unit_of_measurement": "s",
            },
        )
    for w in cfg.window:
        add(
            "sensor",
            f"window_{w.number}_state",
            {
                "name": f"{w.name or f'{w.number}号窗口'} 状态",
                "state_topic": window_topic(cfg, w.number),
                "value_template": "{{ value_json.state }}",
                "device_class": "enum",
                "options": list(WINDOW_STATES),
            },
        )
    for s in cfg.sensor:
        topic = sensor_topic(cfg, s.id)
        label = s.name or s.id
        for quantity, unit, name in (("temperature", "°C", "温度"), ("humidity", "%", "湿度")):
            add(
                "sensor",
                f"sensor_{s.id}_{quantity}",
                {
                    "name": f"{label} {name}",
                    "state_topic": topic,
                    "value_template": f"{{{{ value_json.{quantity} }}}}",
                    "device_class": quantity,
                    "state_class": "measurement",
                    "unit_of_measurement": unit,
                    "expire_after": int(s.stale_after_s),
                },
            )
    for d in cfg.device:
        topic = device_topic(cfg, d.id)
        dev = _hw_device(cfg, d.id, d.kind)
        # The state sensor stays available while the device is offline: "offline" is what it must show.
        add(
            "sensor",
            f"device_{d.id}_state",
            {
                "name": "状态",
                "state_topic": topic,
                "value_template": "{{ value_json.state }}",
                "device_class": "enum",
                "options": list(DEVICE_STATES),
                "json_attributes_topic": topic,
                "device": dev,
            },
        )
        if d.kind == "printer":
            add(
                "binary_sensor",
                f"device_{d.id}_paper",
                {
                    "name": "缺纸",
                    "state_topic": topic,
                    "device_class": "problem",
                    "device": dev,
                    "value_template": "{{ 'ON' if value_json.state != 'ok' and 'paper' in (value_json.detail or '')"
                    " else 'OFF' }}",
                    "availability": [
                        {"topic": status},
                        {
                            "topic": topic,
                            "value_template": "{{ 'offline' if value_json.state == 'offline' else 'online' }}",
                        },
                    ],
                    "availability_mode": "all",
                },
            )
    for z in cfg.climate_zone:
        state = climate_topic(cfg, z.id)
        cmd = f"{root(cfg)}/cmd/climate/{z.id}/set"
        add(
            "climate",
            f"climate_{z.id}",
            {
                "name": z.name or z.id,
                "modes": list(CLIMATE_MODES),
                "mode_state_topic": state,
                "mode_state_template": "{{ value_json.mode }}",
                "mode_command_topic": cmd,
                "mode_command_template": '{"mode": "{{ value }}"}',
                "temperature_state_topic": state,
                "temperature_state_template": "{{ value_json.target }}",
                "temperature_command_topic": cmd,
                "temperature_command_template": '{"target": {{ value }}}',
                "current_temperature_topic": state,
                "current_temperature_template": "{{ value_json.current }}",
                "current_humidity_topic": state,
                "current_humidity_template": "{{ value_json.humidity }}",
                "action_topic": state,
                "action_template": "{{ value_json.action }}",
                "min_temp": z.min_temp,
                "max_temp": z.max_temp,
                "temp_step": 0.5,
                "precision": 0.1,
                "temperature_unit": "C",
            },
        )
        # Today's estimated kWh: total_increasing (a drop at the day's start is a meter reset to HA),
        # so the Energy dashboard can take it as an individual device's consumption.
        energy = climate_energy_topic(cfg, z.id)
        add(
            "sensor",
            f"climate_{z.id}_energy",
            {
                "name": f"{z.name or z.id} 空调用电",
                "state_topic": energy,
                "value_template": "{{ value_json.kwh }}",
                "device_class": "energy",
                "state_class": "total_increasing",
                "unit_of_measurement": "kWh",
                "suggested_display_precision": 2,
                "json_attributes_topic": energy,
            },
        )
        add(
            "sensor",
            f"climate_{z.id}_comfort",
            {
                "name": f"{z.name or z.id} 舒适达标率",
                "state_topic": energy,
                "value_template": "{{ (value_json.share_in_band * 100) | round(1) if value_json.share_in_band"
                " is not none else none }}",
                "state_class": "measurement",
                "unit_of_measurement": "%",
                "icon": "mdi:thermometer-check",
            },
        )
    return out
