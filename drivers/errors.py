"""Error types shared by every driver.

One family per layer (aiomqtt's habit): callers catch ``DeviceError`` and read
``code`` for the stable, snake_case reason that goes to health reports and MQTT.
Messages never carry personal data (no names, no ID numbers).
"""

from __future__ import annotations

from typing import ClassVar


class DeviceError(Exception):
    """Something went wrong talking to one device."""

    code: ClassVar[str] = "device_error"

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device
        self.message = message


class DeviceOffline(DeviceError):
    """The port is absent or the link dropped (unplugged, cable cut, host down)."""

    code = "device_offline"


class DeviceTimeout(DeviceError):
    """The device did not answer in time."""

    code = "device_timeout"


class FrameError(DeviceError):
    """Bytes arrived that do not form a valid frame (bad checksum, bad length, garbage)."""

    code = "frame_error"


class DeviceFault(DeviceError):
    """The device answered and reports that it cannot work (SAM fault, cutter jam...)."""

    code = "device_fault"
