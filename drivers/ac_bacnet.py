"""Air conditioning run by a building-management system, commanded over BACnet/IP (bacpypes3).

A BMS exposes each air-handling or VRF zone as commandable points: an analog-value setpoint,
a binary-value on/off, a multi-state-value mode (and often fan speed), plus read-only room
temperature and fault points. hallctl commands them the BACnet way: it writes presentValue at
its own *command priority* and, on :meth:`BacnetAcUnit.release`, relinquishes that slot by
writing Null at the same priority, so the point falls back to whatever the BMS wants
(its schedule at 16, or its relinquish default). hallctl never writes without a priority
(that would land at 16, the BMS's own slot, and could not be relinquished cleanly).

Default priority 12: below 8 (*Manual Operator*, ASHRAE 135 clause 19.2.1.1), so a facility
manager's override at the BMS front end wins and hallctl sees it as a read-back mismatch
instead of fighting it; above 16, where BMS schedules and default programs write; clear of
6 (*Minimum On/Off*, reserved for the equipment's own protection) and of the life-safety
slots 1-2. Configurable 3..16 except 6.

One :class:`BacnetLink` (a bacpypes3 application bound to one local address and UDP port) serves
every unit on that BMS; each unit is a :class:`BacnetAcUnit` (an :class:`~drivers.aircon.AcUnit`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Mapping
from typing import Any

from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.basetypes import BinaryPV
from bacpypes3.ipv4.app import NormalApplication
from bacpypes3.local.device import DeviceObject
from bacpypes3.pdu import Address, IPv4Address
from bacpypes3.primitivedata import Null, ObjectIdentifier, Real, Unsigned

from drivers.aircon import (
    AC_MODES,
    FAN_SPEEDS,
    AcCapabilities,
    AcCommand,
    AcFault,
    AcMismatch,
    AcMode,
    AcNoAck,
    AcState,
    FanSpeed,
)

__all__ = ["DEFAULT_PRIORITY", "BacnetAcUnit", "BacnetLink", "BacnetPoints"]

log = logging.getLogger(__name__)

DEFAULT_PRIORITY = 12
FORBIDDEN_PRIORITIES = {1: "manual life safety", 2: "automatic life safety", 6: "minimum on/off"}
READBACK_POLL = 0.1


@dataclasses.dataclass(frozen=True)
class BacnetPoints:
    """Which BACnet objects of the BMS device are this unit's, and how its multi-states count.

    Multi-state values are 1-based in BACnet; the maps give the state number for each mode
    and fan speed (whatever the BMS integrator chose; the defaults are the simulator's).
    """

    setpoint: str = "analog-value,1"
    power: str = "binary-value,1"
    mode: str = "multi-state-value,1"
    fan: str | None = "multi-state-value,2"
    room_temperature: str | None = "analog-input,1"
    error_code: str | None = "analog-input,2"  # 0: no fault, otherwise the BMS's fault number
    mode_states: Mapping[AcMode, int] = dataclasses.field(
        default_factory=lambda: {"cool": 1, "heat": 2, "fan_only": 3, "dry": 4, "auto": 5}
    )
    fan_states: Mapping[FanSpeed, int] = dataclasses.field(
        default_factory=lambda: {"auto": 1, "low": 2, "medium": 3, "high": 4}
    )

    def __post_init__(self) -> None:
        for name in ("setpoint", "power", "mode", "fan", "room_temperature", "error_code"):
            value = getattr(self, name)
            if value is not None:
                try:
                    ObjectIdentifier(value)
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"points.{name}: {value!r} is not a BACnet object id ({exc})") from exc
        for name, states in (("mode_states", self.mode_states), ("fan_states", self.fan_states)):
            if len(set(states.values())) != len(states):
                raise ValueError(f"points.{name}: two names share one state number")
            if any(v < 1 for v in states.values()):
                raise ValueError(f"points.{name}: multi-state values start at 1")


def check_priority(priority: int) -> int:
    if not 1 <= priority <= 16:
        raise ValueError(f"priority: {priority} outside BACnet's 1..16")
    if priority in FORBIDDEN_PRIORITIES:
        raise ValueError(f"priority: {priority} is reserved for {FORBIDDEN_PRIORITIES[priority]}")
    return priority


class BacnetLink:
    """One bacpypes3 application on ``local_address`` (``"127.0.0.1:47808"``, or ``"0.0.0.0"``)."""

    def __init__(
        self, name: str, local_address: str = "0.0.0.0:47808", *, device_instance: int = 4194302, timeout: float = 3.0
    ) -> None:
        self.name = name
        self.local_address = local_address
        self.device_instance = device_instance
        self.timeout = timeout
        self._app: NormalApplication | None = None

    def app(self) -> NormalApplication:
        if self._app is None:
            host, _, port = self.local_address.partition(":")
            device = DeviceObject(
                objectIdentifier=("device", self.device_instance),
                objectName=f"hallctl-{self.name}",
                vendorIdentifier=999,
            )
            self._app = NormalApplication(device, IPv4Address(f"{host}/32:{port or 47808}"))
        return self._app

    def unit(
        self, unit_id: str, device_address: str, points: BacnetPoints | None = None, *, priority: int = DEFAULT_PRIORITY
    ) -> BacnetAcUnit:
        return BacnetAcUnit(self, unit_id, device_address, points or BacnetPoints(), priority=priority)

    async def call(self, device: str, what: str, request: Awaitable[Any]) -> Any:
        """One confirmed request, bounded by ``timeout``: silence is :class:`AcNoAck`."""
        try:
            async with asyncio.timeout(self.timeout):
                result = await request
        except TimeoutError as exc:
            raise AcNoAck(device, f"{what}: no answer within {self.timeout:g} s") from exc
        except ErrorRejectAbortNack as exc:
            raise AcMismatch(device, f"{what}: refused: {exc}") from exc
        if isinstance(result, ErrorRejectAbortNack):
            raise AcMismatch(device, f"{what}: refused: {result}")
        if isinstance(result, str) and result.startswith("-"):
            raise AcMismatch(device, f"{what}: {result.strip('-')}")  # bacpypes3's "-no object class-"
        return result

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None


class BacnetAcUnit:
    """One zone's points on a BMS device at ``device_address`` (``"192.168.1.20"`` or ``"host:port"``)."""

    def __init__(
        self,
        link: BacnetLink,
        unit_id: str,
        device_address: str,
        points: BacnetPoints,
        *,
        priority: int = DEFAULT_PRIORITY,
        readback_timeout: float = 2.0,
    ) -> None:
        self.link = link
        self.unit_id = unit_id
        self.address = Address(device_address)
        self.points = points
        self.priority = check_priority(priority)
        self.readback_timeout = readback_timeout
        self.capabilities = AcCapabilities(
            modes=tuple(m for m in AC_MODES if m in points.mode_states),
            fans=tuple(f for f in FAN_SPEEDS if f in points.fan_states) if points.fan else ("auto",),
            reports_room_temperature=points.room_temperature is not None,
            reports_errors=points.error_code is not None,
        )

    async def _read(self, obj: str) -> Any:
        return await self.link.call(
            self.unit_id,
            f"read {obj}",
            self.link.app().read_property(self.address, ObjectIdentifier(obj), "present-value"),
        )

    async def _write(self, obj: str, value: Any) -> None:
        await self.link.call(
            self.unit_id,
            f"write {obj} @{self.priority}",
            self.link.app().write_property(
                self.address, ObjectIdentifier(obj), "present-value", value, priority=self.priority
            ),
        )

    async def read(self) -> AcState:
        p = self.points
        power = int(await self._read(p.power)) == 1
        mode_state = int(await self._read(p.mode))
        mode = next((m for m, s in p.mode_states.items() if s == mode_state), None)
        fan: FanSpeed | None = "auto"
        if p.fan is not None:
            fan_state = int(await self._read(p.fan))
            fan = next((f for f, s in p.fan_states.items() if s == fan_state), None)
        if mode is None or fan is None:
            raise AcMismatch(self.unit_id, f"BMS reports mode state {mode_state}, fan {fan}: not in the points' maps")
        setpoint = float(await self._read(p.setpoint))
        room = float(await self._read(p.room_temperature)) if p.room_temperature else None
        error = round(float(await self._read(p.error_code))) if p.error_code else 0
        return AcState(power, mode, setpoint, fan, room, error, str(error) if error else "")

    async def apply(self, cmd: AcCommand) -> AcState:
        self.capabilities.check(self.unit_id, cmd)
        p = self.points
        if cmd.power:
            await self._write(p.mode, Unsigned(p.mode_states[cmd.mode]))
            await self._write(p.setpoint, Real(cmd.setpoint))
            if p.fan is not None:
                await self._write(p.fan, Unsigned(p.fan_states[cmd.fan]))
        await self._write(p.power, BinaryPV("active" if cmd.power else "inactive"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.readback_timeout
        while True:
            state = await self.read()
            if state.error_code:
                raise AcFault(self.unit_id, f"BMS reports fault {state.error_code}", state)
            if state.matches(cmd):
                return state
            if loop.time() >= deadline:
                raise AcMismatch(
                    self.unit_id,
                    f"wrote {cmd} at priority {self.priority}, read back {state} (higher priority?)",
                    state,
                )
            await asyncio.sleep(READBACK_POLL)

    async def release(self) -> None:
        """Relinquish: Null at our priority on every point we command, so the BMS's own value rules."""
        p = self.points
        for obj in (p.power, p.mode, p.setpoint, p.fan):
            if obj is not None:
                await self._write(obj, Null(()))

    async def close(self) -> None:
        """The link is shared by the units of one BMS; whoever made it closes it (``link.close()``)."""
