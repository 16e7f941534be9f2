"""Home Assistant's MQTT discovery schemas for the platforms hallctl uses, as strict pydantic models.

Source: Home Assistant 2025.12, ``homeassistant/components/mqtt/`` — ``schemas.py``
(``MQTT_ENTITY_COMMON_SCHEMA``, ``MQTT_AVAILABILITY_SCHEMA``, ``MQTT_ENTITY_DEVICE_INFO_SCHEMA``,
``MQTT_ORIGIN_INFO_SCHEMA``), ``sensor.py``, ``binary_sensor.py`` and ``climate.py``
(``PLATFORM_SCHEMA_MODERN`` / ``DISCOVERY_SCHEMA``), with the keys' full names (hallctl sends
no abbreviations). The ``homeassistant`` package needs a newer Python than Debian 12's and
the stored source copy reachable from here was years old, so the keys and types were written
by hand from that source's documented keys (https://www.home-assistant.io/integrations/
sensor.mqtt/, binary_sensor.mqtt/, climate.mqtt/, mqtt/#discovery-messages). Every model
forbids unknown keys: ``object_id`` (deprecated in 2025.10, removed in 2026.4) is absent, so a
payload that still sends it fails. Update this file (and the version above) when HA changes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Device(Strict):
    identifiers: StrictStr | list[StrictStr] | None = None
    connections: list[tuple[StrictStr, StrictStr]] | None = None
    configuration_url: StrictStr | None = None
    hw_version: StrictStr | None = None
    manufacturer: StrictStr | None = None
    model: StrictStr | None = None
    model_id: StrictStr | None = None
    name: StrictStr | None = None
    serial_number: StrictStr | None = None
    suggested_area: StrictStr | None = None
    sw_version: StrictStr | None = None
    via_device: StrictStr | None = None


class Origin(Strict):
    name: StrictStr
    sw_version: StrictStr | None = None
    support_url: StrictStr | None = None


class AvailabilityEntry(Strict):
    topic: StrictStr
    payload_available: StrictStr | None = None
    payload_not_available: StrictStr | None = None
    value_template: StrictStr | None = None


# entity_id's object part: what HA's cv.entity_id accepts after the domain.
ENTITY_ID = r"^[a-z0-9_]+\.[a-z0-9_]+$"


class Entity(Strict):
    """MQTT_ENTITY_COMMON_SCHEMA + availability + JSON attributes (schemas.py)."""

    platform: Literal["mqtt"] | None = None
    name: StrictStr | None = None
    unique_id: StrictStr | None = None
    default_entity_id: str | None = Field(default=None, pattern=ENTITY_ID)
    device: Device | None = None
    origin: Origin | None = None
    enabled_by_default: StrictBool | None = None
    entity_category: Literal["config", "diagnostic"] | None = None
    entity_picture: StrictStr | None = None
    icon: str | None = Field(default=None, pattern=r"^[a-z0-9_-]+:[a-z0-9_-]+$")
    json_attributes_topic: StrictStr | None = None
    json_attributes_template: StrictStr | None = None
    encoding: StrictStr | None = None
    qos: Literal[0, 1, 2] | None = None
    availability_topic: StrictStr | None = None
    availability_template: StrictStr | None = None
    payload_available: StrictStr | None = None
    payload_not_available: StrictStr | None = None
    availability: list[AvailabilityEntry] | None = None
    availability_mode: Literal["all", "any", "latest"] | None = None


SENSOR_STATE_CLASSES = Literal["measurement", "measurement_angle", "total", "total_increasing"]


class Sensor(Entity):
    state_topic: StrictStr
    device_class: StrictStr | None = None
    expire_after: StrictInt | None = Field(default=None, ge=0)
    force_update: StrictBool | None = None
    last_reset_value_template: StrictStr | None = None
    options: list[StrictStr] | None = None
    suggested_display_precision: StrictInt | None = Field(default=None, ge=0)
    state_class: SENSOR_STATE_CLASSES | None = None
    unit_of_measurement: StrictStr | None = None
    value_template: StrictStr | None = None


class BinarySensor(Entity):
    state_topic: StrictStr
    device_class: StrictStr | None = None
    expire_after: StrictInt | None = Field(default=None, ge=0)
    force_update: StrictBool | None = None
    off_delay: StrictInt | None = Field(default=None, ge=0)
    payload_on: StrictStr | None = None
    payload_off: StrictStr | None = None
    value_template: StrictStr | None = None


Number = StrictInt | StrictFloat
CLIMATE_MODES = Literal["auto", "off", "cool", "heat", "dry", "fan_only", "heat_cool"]


class Climate(Entity):
    action_template: StrictStr | None = None
    action_topic: StrictStr | None = None
    current_humidity_template: StrictStr | None = None
    current_humidity_topic: StrictStr | None = None
    current_temperature_template: StrictStr | None = None
    current_temperature_topic: StrictStr | None = None
    fan_mode_command_template: StrictStr | None = None
    fan_mode_command_topic: StrictStr | None = None
    fan_mode_state_template: StrictStr | None = None
    fan_mode_state_topic: StrictStr | None = None
    fan_modes: list[StrictStr] | None = None
    initial: Number | None = None
    max_humidity: Number | None = None
    max_temp: Number | None = None
    min_humidity: Number | None = None
    min_temp: Number | None = None
    mode_command_template: StrictStr | None = None
    mode_command_topic: StrictStr | None = None
    mode_state_template: StrictStr | None = None
    mode_state_topic: StrictStr | None = None
    modes: list[CLIMATE_MODES] | None = None
    optimistic: StrictBool | None = None
    payload_on: StrictStr | None = None
    payload_off: StrictStr | None = None
    power_command_template: StrictStr | None = None
    power_command_topic: StrictStr | None = None
    precision: StrictFloat | None = None  # one of 0.1, 0.5, 1.0 (checked below)
    preset_mode_command_template: StrictStr | None = None
    preset_mode_command_topic: StrictStr | None = None
    preset_mode_state_topic: StrictStr | None = None
    preset_mode_value_template: StrictStr | None = None
    preset_modes: list[StrictStr] | None = None
    retain: StrictBool | None = None
    swing_mode_command_template: StrictStr | None = None
    swing_mode_command_topic: StrictStr | None = None
    swing_mode_state_template: StrictStr | None = None
    swing_mode_state_topic: StrictStr | None = None
    swing_modes: list[StrictStr] | None = None
    target_humidity_command_template: StrictStr | None = None
    target_humidity_command_topic: StrictStr | None = None
    target_humidity_state_template: StrictStr | None = None
    target_humidity_state_topic: StrictStr | None = None
    temperature_command_template: StrictStr | None = None
    temperature_command_topic: StrictStr | None = None
    temperature_high_command_template: StrictStr | None = None
    temperature_high_command_topic: StrictStr | None = None
    temperature_high_state_template: StrictStr | None = None
    temperature_high_state_topic: StrictStr | None = None
    temperature_low_command_template: StrictStr | None = None
    temperature_low_command_topic: StrictStr | None = None
    temperature_low_state_template: StrictStr | None = None
    temperature_low_state_topic: StrictStr | None = None
    temperature_state_template: StrictStr | None = None
    temperature_state_topic: StrictStr | None = None
    temperature_unit: Literal["C", "F"] | None = None
    temp_step: Number | None = None
    value_template: StrictStr | None = None

    @field_validator("precision")
    @classmethod
    def _precision(cls, v: float | None) -> float | None:
        if v is not None and v not in (0.1, 0.5, 1.0):
            raise ValueError("precision must be 0.1, 0.5 or 1.0")
        return v


PLATFORMS: dict[str, type[Entity]] = {"sensor": Sensor, "binary_sensor": BinarySensor, "climate": Climate}


def validate(component: str, payload: dict[str, Any]) -> Entity:
    """The payload as HA's schema for ``component`` reads it; raises pydantic's ValidationError."""
    return PLATFORMS[component].model_validate(payload)
