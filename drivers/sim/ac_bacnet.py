"""A BMS zone as a bacpypes3 BACnet/IP device on loopback: commandable points with a unit behind them.

The points are bacpypes3's own commandable local objects (priority array, relinquish
default, presentValue recalculated from the highest non-null slot), so the driver's
priority writes and relinquishes are checked against BACnet as bacpypes3 implements it.
The unit model reads those points: :meth:`BacnetAcSim.unit_state` is what the zone's unit
does now; :meth:`BacnetAcSim.set_room_temperature` sets the analog-input the room model
drives; :meth:`BacnetAcSim.set_error` sets the fault point; :meth:`BacnetAcSim.set_silent`
makes the device drop every request (no-ack).
"""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Any, Self

from bacpypes3.basetypes import PriorityValue
from bacpypes3.ipv4.app import NormalApplication
from bacpypes3.local.analog import AnalogInputObject, AnalogValueObjectCmd
from bacpypes3.local.binary import BinaryValueObjectCmd
from bacpypes3.local.cmd import Commandable
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.object import Object as _LocalObject
from bacpypes3.object import MultiStateValueObject as _MultiStateValueObject
from bacpypes3.pdu import IPv4Address

from drivers.ac_bacnet import BacnetPoints
from drivers.aircon import AcMode, AcState, FanSpeed


class MultiStateValueObjectCmd(Commandable, _LocalObject, _MultiStateValueObject):  # type: ignore[misc]
    """Commandable multi-state value (bacpypes3 ships the binary and analog ones only)."""


class _SilenceableApp(NormalApplication):  # type: ignore[misc]
    silent = False

    async def indication(self, apdu: Any) -> None:
        if self.silent:
            return  # the request arrived; nothing answers, as from a BMS controller that hung
        await super().indication(apdu)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BacnetAcSim:
    """Device ``device_instance`` at ``127.0.0.1:port`` with the points of :class:`BacnetPoints`."""

    def __init__(self, points: BacnetPoints | None = None, *, device_instance: int = 1001, port: int = 0) -> None:
        self.points = points or BacnetPoints()
        self.port = port or free_udp_port()
        p = self.points
        self.setpoint = AnalogValueObjectCmd(
            objectIdentifier=p.setpoint, objectName="zone setpoint", presentValue=26.0, units="degreesCelsius"
        )
        self.power = BinaryValueObjectCmd(objectIdentifier=p.power, objectName="zone on/off", presentValue="inactive")
        self.mode = MultiStateValueObjectCmd(
            objectIdentifier=p.mode,
            objectName="zone mode",
            presentValue=p.mode_states["cool"],
            numberOfStates=max(p.mode_states.values()),
        )
        objects: list[Any] = [self.setpoint, self.power, self.mode]
        self.fan: Any = None
        if p.fan is not None:
            self.fan = MultiStateValueObjectCmd(
                objectIdentifier=p.fan,
                objectName="zone fan",
                presentValue=p.fan_states["auto"],
                numberOfStates=max(p.fan_states.values()),
            )
            objects.append(self.fan)
        self.room: Any = None
        if p.room_temperature is not None:
            self.room = AnalogInputObject(
                objectIdentifier=p.room_temperature,
                objectName="zone temperature",
                presentValue=28.0,
                units="degreesCelsius",
            )
            objects.append(self.room)
        self.error: Any = None
        if p.error_code is not None:
            self.error = AnalogInputObject(objectIdentifier=p.error_code, objectName="zone fault", presentValue=0.0)
            objects.append(self.error)
        device = DeviceObject(
            objectIdentifier=("device", device_instance), objectName="simulated BMS zone", vendorIdentifier=999
        )
        self.app = _SilenceableApp(device, IPv4Address(f"127.0.0.1/32:{self.port}"))
        for obj in objects:
            self.app.add_object(obj)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def unit_state(self) -> AcState:
        p = self.points
        mode_state = int(self.mode.presentValue)
        mode: AcMode = next(m for m, s in p.mode_states.items() if s == mode_state)
        fan: FanSpeed = "auto"
        if self.fan is not None:
            fan = next(f for f, s in p.fan_states.items() if s == int(self.fan.presentValue))
        power = int(self.power.presentValue) == 1
        return AcState(
            power,
            mode,
            float(self.setpoint.presentValue),
            fan,
            float(self.room.presentValue) if self.room is not None else None,
            round(float(self.error.presentValue)) if self.error is not None else 0,
            running=power,
        )

    def priority_slot(self, obj: str, priority: int) -> Any:
        """What the priority array of ``obj`` ("setpoint", "power", "mode", "fan") holds at ``priority``.

        ``None`` when the slot is Null (relinquished), else the written value.
        """
        pv = getattr(self, obj).priorityArray[priority - 1]
        if pv.null is not None:
            return None
        return getattr(pv, pv._choice)

    def operator_override(self, obj: str, value: Any, priority: int = 8) -> None:
        """A facility manager commands the point at the BMS front end (priority 8 by default)."""
        target = getattr(self, obj)
        element = target._elements["presentValue"]
        target.priorityArray[priority - 1] = PriorityValue(element(value))

    def set_room_temperature(self, celsius: float) -> None:
        self.room.presentValue = celsius

    def set_error(self, code: int) -> None:
        self.error.presentValue = float(code)

    def set_silent(self, silent: bool) -> None:
        self.app.silent = silent

    def close(self) -> None:
        self.app.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
