"""Air-conditioning units: what hallctl asks of one, and what one reports, whatever the transport.

Every actuator driver (a Modbus gateway in front of a VRF or split system, a BACnet/IP
building-management point set, an MQTT climate device) takes an :class:`AcCommand` and
answers with the :class:`AcState` it read back after writing, so the controller never
trusts a write it did not see land. The vocabulary is the smallest one every gateway in
the field can express (power, mode, setpoint, fan speed); anything a unit cannot do is
refused with :class:`AcUnsupported` at configuration time, not discovered in summer.

Errors say what a hall's IT person has to do: :class:`AcNoAck` (the unit or gateway
did not answer: cable, address, power), :class:`AcMismatch` (it answered but the value
read back is not the one written: another controller, a locked remote, a wrong register
map), :class:`AcFault` (the unit reports its own error code, e.g. a Daikin ``U4``).
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Protocol

from drivers.errors import DeviceError, DeviceFault, DeviceTimeout

__all__ = [
    "AC_MODES",
    "FAN_SPEEDS",
    "AcCapabilities",
    "AcCommand",
    "AcFault",
    "AcMismatch",
    "AcMode",
    "AcNoAck",
    "AcState",
    "AcUnit",
    "AcUnsupported",
    "FanSpeed",
]

AcMode = Literal["cool", "heat", "dry", "fan_only", "auto"]
FanSpeed = Literal["auto", "low", "medium", "high"]
AC_MODES: tuple[AcMode, ...] = ("cool", "heat", "dry", "fan_only", "auto")
FAN_SPEEDS: tuple[FanSpeed, ...] = ("auto", "low", "medium", "high")


@dataclasses.dataclass(frozen=True, slots=True)
class AcCommand:
    """What one indoor unit (or one BMS point set) should do now."""

    power: bool
    mode: AcMode = "cool"
    setpoint: float = 26.0  # °C
    fan: FanSpeed = "auto"


@dataclasses.dataclass(frozen=True, slots=True)
class AcState:
    """What the unit reports, read back from it (never echoed from the command)."""

    power: bool
    mode: AcMode
    setpoint: float
    fan: FanSpeed
    room_temperature: float | None = None  # the unit's own return-air sensor, if it has one
    error_code: int = 0  # 0: no fault; otherwise the gateway's code for the unit's fault
    error_text: str = ""  # the unit's fault as its maker writes it (e.g. "U4"), when known
    running: bool | None = None  # compressor/thermo-on, when the unit reports it

    def matches(self, cmd: AcCommand, setpoint_tolerance: float = 0.25) -> bool:
        """Whether this read-back shows ``cmd`` applied (mode/setpoint/fan ignored when off)."""
        if self.power != cmd.power:
            return False
        if not cmd.power:
            return True
        return self.mode == cmd.mode and abs(self.setpoint - cmd.setpoint) <= setpoint_tolerance and self.fan == cmd.fan


@dataclasses.dataclass(frozen=True, slots=True)
class AcCapabilities:
    """What a unit (as its driver is configured) can be asked, so a controller never plans a refusal.

    Drivers expose it as their ``capabilities`` attribute; :meth:`check` is what ``apply``
    calls before it writes anything.
    """

    modes: tuple[AcMode, ...] = AC_MODES
    fans: tuple[FanSpeed, ...] = FAN_SPEEDS
    setpoint_min: float = 16.0
    setpoint_max: float = 32.0
    reports_room_temperature: bool = False
    reports_errors: bool = False

    def check(self, unit_id: str, cmd: AcCommand) -> None:
        """Raise :class:`AcUnsupported` naming what ``cmd`` asks that the unit cannot do."""
        if not cmd.power:
            return
        if cmd.mode not in self.modes:
            raise AcUnsupported(unit_id, f"mode {cmd.mode!r} not supported (supported: {', '.join(self.modes)})")
        if cmd.fan not in self.fans:
            raise AcUnsupported(unit_id, f"fan speed {cmd.fan!r} not supported (supported: {', '.join(self.fans)})")
        if not self.setpoint_min <= cmd.setpoint <= self.setpoint_max:
            raise AcUnsupported(
                unit_id, f"setpoint {cmd.setpoint:g} °C outside {self.setpoint_min:g}..{self.setpoint_max:g} °C"
            )


class AcNoAck(DeviceTimeout):
    """The unit or its gateway did not acknowledge a write or answer a read in time."""

    code = "ac_no_ack"


class AcMismatch(DeviceError):
    """The value read back after a write differs from the value written."""

    code = "ac_mismatch"

    def __init__(self, device: str, message: str, state: AcState | None = None) -> None:
        super().__init__(device, message)
        self.state = state  # the last read-back, when there was one


class AcFault(DeviceFault):
    """The unit reports a fault of its own (its error code is in the state)."""

    code = "ac_fault"

    def __init__(self, device: str, message: str, state: AcState | None = None) -> None:
        super().__init__(device, message)
        self.state = state  # what the unit reported, with error_code/error_text


class AcUnsupported(DeviceError):
    """The unit (or its profile) cannot express what was asked (a mode, a fan speed)."""

    code = "ac_unsupported"


class AcUnit(Protocol):
    """One controllable unit, whatever carries its commands."""

    unit_id: str

    async def apply(self, cmd: AcCommand) -> AcState:
        """Write ``cmd``, read the unit back and return what it reports.

        Raises :class:`AcNoAck` when it does not answer, :class:`AcMismatch` when the
        read-back differs, :class:`AcFault` when it reports an error code.
        """
        ...

    async def read(self) -> AcState:
        """Read the unit's present state (polling, and read-back after a write)."""
        ...

    async def release(self) -> None:
        """Hand the unit back (BACnet: relinquish our priority; others: nothing to do)."""
        ...

    async def close(self) -> None: ...
