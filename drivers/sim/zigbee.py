"""Payloads as zigbee2mqtt publishes them, for tests and the demo.

A simulated zigbee sensor is just these bytes published to the broker on the
topics from :mod:`drivers.zigbee`; both availability dialects are here because
halls run both zigbee2mqtt 1.x and 2.x.
"""

from __future__ import annotations

import json


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
