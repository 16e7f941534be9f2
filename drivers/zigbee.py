"""zigbee2mqtt temperature/humidity sensors: topics and payloads, no MQTT client.

The daemon owns the MQTT connection and hands payloads here, so parsing stays a
pure function that is easy to test with any bytes. Payloads come from other
software and from radio devices that drop keys at will (an SNZB-02 sends
temperature only when it changed), so every key is optional, but a key that is
present with the wrong type is an error: a string where a number belongs means
a converter is misconfigured, and guessing would feed the climate control
nonsense.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from drivers.errors import FrameError
from drivers.sensor_range import OutOfRange, check_range

DEFAULT_BASE_TOPIC = "zigbee2mqtt"


class PayloadError(FrameError):
    """A zigbee2mqtt payload that is not what zigbee2mqtt sends."""

    code = "bad_payload"

    def __init__(self, message: str, device: str = "zigbee2mqtt") -> None:
        super().__init__(device, message)


class ReadingOutOfRange(PayloadError):
    """A reading no working sensor gives (900 °C, 150 %RH): the Modbus sensors' limits, shared."""

    code = "out_of_range"


def _check_range(reading: ZigbeeReading) -> None:
    try:
        check_range("zigbee2mqtt", reading.temperature, reading.humidity)
    except OutOfRange as exc:
        raise ReadingOutOfRange(exc.message) from exc


@dataclasses.dataclass(frozen=True)
class ZigbeeReading:
    temperature: float | None = None  # °C
    humidity: float | None = None  # %RH
    battery: float | None = None  # %; converters halve a 0–200 attribute, so 97.5 happens
    linkquality: int | None = None  # LQI 0–255


def _json(payload: bytes) -> Any:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"payload is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # ValueError: also ints over 4300 digits
        raise PayloadError(f"payload is not JSON: {exc}") from exc


def _number(state: dict[str, Any], key: str) -> float | None:
    value = state.get(key)
    if value is None:
        return None
    # bool is an int subclass; True as a temperature is a broken converter, not 1 °C.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"{key!r} must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError as exc:  # a JSON integer too large for a float
        raise PayloadError(f"{key!r} is out of range") from exc
    if not math.isfinite(number):
        raise PayloadError(f"{key!r} must be finite, got {number!r}")
    return number


def _integer(state: dict[str, Any], key: str) -> int | None:
    value = _number(state, key)
    if value is None:
        return None
    if not value.is_integer():
        raise PayloadError(f"{key!r} must be a whole number, got {value!r}")
    return int(value)


def parse_state(payload: bytes) -> ZigbeeReading:
    """The state message on ``<base>/<friendly_name>``.

    Raises :class:`PayloadError`; its subclass :class:`ReadingOutOfRange` for a
    temperature or humidity no working sensor gives (the Modbus sensors' limits).
    """
    state = _json(payload)
    if not isinstance(state, dict):
        raise PayloadError(f"state payload must be a JSON object, got {type(state).__name__}")
    reading = ZigbeeReading(
        temperature=_number(state, "temperature"),
        humidity=_number(state, "humidity"),
        battery=_number(state, "battery"),
        linkquality=_integer(state, "linkquality"),
    )
    _check_range(reading)
    return reading


# zigbee2mqtt's ``output: attribute`` (or ``attribute_and_json``) publishes each attribute on
# ``<base>/<friendly_name>/<attribute>`` with a bare value; these two are readings.
ATTRIBUTES = ("temperature", "humidity")


def parse_attribute(attribute: str, payload: bytes) -> ZigbeeReading:
    """A bare number on ``<base>/<friendly_name>/temperature`` or ``.../humidity`` as a reading."""
    if attribute not in ATTRIBUTES:
        raise PayloadError(f"unknown attribute topic {attribute!r}")
    value = _json(payload)
    if isinstance(value, dict):
        raise PayloadError(f"{attribute} attribute payload must be a bare number, got a JSON object")
    number = _number({attribute: value}, attribute)
    reading = ZigbeeReading(temperature=number) if attribute == "temperature" else ZigbeeReading(humidity=number)
    _check_range(reading)
    return reading


def attribute_topic(base: str, friendly_name: str, attribute: str) -> str:
    return f"{state_topic(base, friendly_name)}/{attribute}"


_AVAILABILITY = {"online": True, "offline": False}


def parse_availability(payload: bytes) -> bool:
    """True for online. Accepts 2.x JSON ``{"state":"online"}`` and 1.x bare ``online``."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise PayloadError(f"availability payload is not UTF-8: {exc.reason}") from exc
    if text in _AVAILABILITY:
        return _AVAILABILITY[text]
    doc = _json(payload)
    state = doc.get("state") if isinstance(doc, dict) else None
    if isinstance(state, str) and state in _AVAILABILITY:
        return _AVAILABILITY[state]
    raise PayloadError(f"availability must be online/offline, got {text[:40]!r}")


def state_topic(base: str, friendly_name: str) -> str:
    """``zigbee2mqtt/<friendly_name>``; friendly names may contain ``/``."""
    return f"{base.rstrip('/')}/{friendly_name}"


def availability_topic(base: str, friendly_name: str) -> str:
    return f"{state_topic(base, friendly_name)}/availability"
