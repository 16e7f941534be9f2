"""What a working temperature/humidity sensor can report: one set of limits for every source.

The Modbus driver and the zigbee2mqtt parser refuse the same impossible readings
(a ×100 scale showing 235 °C, a broken element at 150 %RH), so the climate control
never averages nonsense whichever way a sensor is connected.
"""

from __future__ import annotations

from drivers.errors import FrameError

TEMPERATURE_RANGE = (-40.0, 125.0)  # the SHT20's rated range, °C; wider than any hall will see
HUMIDITY_RANGE = (0.0, 100.0)  # %RH


class OutOfRange(FrameError):
    """The sensor answered with values no working sensor gives (wrong scale, broken element)."""

    code = "out_of_range"


def check_range(device: str, temperature: float | None, humidity: float | None) -> None:
    """Raise :class:`OutOfRange` for a value outside the limits (None: not reported, fine)."""
    low, high = TEMPERATURE_RANGE
    if temperature is not None and not low <= temperature <= high:
        raise OutOfRange(device, f"temperature {temperature:g} °C outside {low:g}…{high:g}")
    low, high = HUMIDITY_RANGE
    if humidity is not None and not low <= humidity <= high:
        raise OutOfRange(device, f"humidity {humidity:g} %RH outside {low:g}…{high:g}")
