"""A Modbus air-conditioning gateway with indoor units behind it, over RTU (pty) or TCP (loopback).

The gateway is pymodbus's own server (framer and request handler) over a ``SimDevice`` whose
registers are laid out by the same :class:`~drivers.ac_profile.RegisterProfile` the driver uses,
so the wire is real Modbus and the register addresses, tables and bit fields are the profile's.
Behind the registers sits a simple unit model per indoor unit (:class:`SimUnit`): a write to the
control registers changes the unit, and every read renders the unit into the status registers,
the way a DIII-NET adaptor relays to its units. The room-model engineer couples to it with
:meth:`ModbusAcSim.unit_state` (what the unit is doing) and
:meth:`ModbusAcSim.set_room_temperature` (what its return-air sensor reads).

Faults: :meth:`ModbusAcSim.set_error` (the unit reports an error code), ``locked`` (a unit
ignores commands, e.g. a central remote holds it: read-back mismatch), ``silent`` (requests
arrive, nothing answers: no-ack).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import tty
from types import TracebackType
from typing import Self

from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.ac_profile import Field, RegisterProfile, Table
from drivers.aircon import AcMode, AcState, FanSpeed
from drivers.sim.pty import PtyPort

log = logging.getLogger(__name__)

_TABLE_OF_FC: dict[int, Table] = {
    1: "coil",
    5: "coil",
    15: "coil",
    2: "discrete",
    3: "holding",
    6: "holding",
    16: "holding",
    23: "holding",
    4: "input",
}
_TABLE_INDEX: dict[Table, int] = {"coil": 0, "discrete": 1, "holding": 2, "input": 3}


@dataclasses.dataclass
class SimUnit:
    """One indoor unit: what it was told, what its sensor reads, what fault it reports."""

    power: bool = False
    mode: AcMode = "cool"
    setpoint: float = 26.0
    fan: FanSpeed = "auto"
    room_temperature: float = 28.0
    error_raw: int = 0  # the gateway's error register value (0: none)
    locked: bool = False  # ignores commands (held by a central remote)
    running: bool = False  # compressor thermo-on, set by the room model's unit (set_running)
    commands: int = 0  # control writes that reached this unit


class ModbusAcSim:
    """Gateway at ``device_id`` with units at the given profile indices (default: index 0)."""

    def __init__(self, profile: RegisterProfile, units: tuple[int, ...] = (0,), device_id: int = 1) -> None:
        self.profile = profile
        self.device_id = device_id
        self.units: dict[int, SimUnit] = {i: SimUnit() for i in units}
        self.silent = False
        self.requests = 0
        self._speak = asyncio.Event()
        self._speak.set()
        self._regs: dict[Table, dict[int, int]] = {t: {} for t in _TABLE_INDEX}
        for index in units:
            for block in profile.blocks.values():
                # a unit's whole stride is valid (reserved registers read 0), at least its used offsets
                start, used = block.start(index), 1 + max(_offsets(profile, block.name), default=0)
                for address in range(start, start + max(block.stride, used)):
                    self._regs[block.table][address] = 0
        for index in units:
            self._render(index)
            self._write_controls(index)
        self._server: ModbusSerialServer | ModbusTcpServer | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._port: PtyPort | None = None
        self._fds: tuple[int, int] | None = None
        self.path: str | None = None
        self.port: int | None = None
        self._rtu = False

    # -- the API a test or the room model uses ---------------------------------------------------

    def unit_state(self, index: int = 0) -> AcState:
        """What the unit is doing now (the truth a room model heats or cools with)."""
        u = self.units[index]
        return AcState(
            u.power, u.mode, u.setpoint, u.fan, u.room_temperature, u.error_raw, running=u.power and u.running
        )

    def set_running(self, running: bool, index: int = 0) -> None:
        """Whether the unit's compressor runs (thermo-on): the room model's unit decides, the status bit shows it."""
        self.units[index].running = running

    def set_room_temperature(self, celsius: float, index: int = 0) -> None:
        """What the unit's return-air sensor reads (the room model drives this)."""
        self.units[index].room_temperature = celsius

    def set_error(self, code: int | str, index: int = 0) -> None:
        """The unit reports a fault: a number, or a maker's code like ``"U4"`` for ASCII profiles."""
        field = self.profile.error_code
        if field is None:
            raise ValueError(f"profile {self.profile.name} has no error register")
        if isinstance(code, str):
            chars = code.encode("ascii")[:2].ljust(2, b"\x00")
            raw = chars[0] | chars[1] << 8 if field.text != "ascii_hi_lo" else chars[1] | chars[0] << 8
        else:
            raw = code
        self.units[index].error_raw = raw

    def command(self, index: int = 0, **changes: object) -> None:
        """Change the unit as its own wall remote would (power=, mode=, setpoint=, fan=)."""
        unit = self.units[index]
        for key, value in changes.items():
            setattr(unit, key, value)
        self._write_controls(index)

    def register(self, table: Table, address: int) -> int:
        """A register's present value, for wire-level assertions against the cited map."""
        return self._regs[table][address]

    # -- registers <-> unit model ------------------------------------------------------------------

    def _fields(self) -> list[Field]:
        p = self.profile
        return [
            f
            for f in (p.power, p.mode, p.setpoint, p.fan, p.room_temperature, p.error_code, p.error_flag, p.running)
            if f
        ]

    def _put(self, table: Table, address: int, field_loc_shift: int, mask: int, value: int) -> None:
        old = self._regs[table].get(address, 0)
        self._regs[table][address] = (old & ~mask & 0xFFFF) | ((value << field_loc_shift) & mask)

    def _encode(self, field: Field, index: int) -> int:
        u, p = self.units[index], self.profile
        if field is p.power:
            return p.power_on if u.power else p.power_off
        if field is p.mode:
            return field.values[u.mode]
        if field is p.fan:
            return field.values[u.fan]
        if field is p.setpoint:
            return round(u.setpoint * field.scale) & ((1 << field.read.width) - 1)
        if field is p.room_temperature:
            return round(u.room_temperature * field.scale) & ((1 << field.read.width) - 1)
        if field is p.error_code:
            return u.error_raw
        if field is p.error_flag:
            return 1 if u.error_raw else 0
        if field is p.running:
            return 1 if u.running and u.power else 0
        raise AssertionError(field.name)

    def _render(self, index: int) -> None:
        """Status registers from the unit model (before every read)."""
        for f in self._fields():
            loc = f.read
            self._put(loc.block.table, loc.address(index), loc.shift, loc.mask, self._encode(f, index))

    def _write_controls(self, index: int) -> None:
        """Control registers from the unit model (after a local change), so a read-modify-write sees it."""
        p = self.profile
        for f in (p.power, p.mode, p.setpoint, p.fan):
            assert f.write is not None
            loc = f.write
            self._put(loc.block.table, loc.address(index), loc.shift, loc.mask, self._encode(f, index))

    def _take_command(self, index: int) -> None:
        """A control register of this unit was written: the unit follows unless it is locked."""
        unit, p = self.units[index], self.profile
        unit.commands += 1
        if unit.locked:
            self._write_controls(index)
            return

        def raw(f: Field) -> int:
            assert f.write is not None
            return f.write.extract(self._regs[f.write.block.table][f.write.address(index)])

        unit.power = raw(p.power) == p.power_on
        mode, fan = p.mode_name(raw(p.mode)), p.fan_name(raw(p.fan))
        if mode is not None:
            unit.mode = mode
        if fan is not None:
            unit.fan = fan
        sp = raw(p.setpoint)
        width = p.setpoint.write.width if p.setpoint.write else 16
        if p.setpoint.signed and sp & (1 << (width - 1)):
            sp -= 1 << width
        unit.setpoint = sp / p.setpoint.scale

    def _units_at(self, table: Table, start: int, count: int) -> set[int]:
        p = self.profile
        hit = set()
        for index in self.units:
            for f in (p.power, p.mode, p.setpoint, p.fan):
                assert f.write is not None
                if f.write.block.table == table and start <= f.write.address(index) < start + count:
                    hit.add(index)
        return hit

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> None:
        self.requests += 1
        await self._speak.wait()  # TCP: a silent gateway holds the request unanswered
        table = _TABLE_OF_FC.get(function_code)
        if table is None:
            return
        if set_values is not None:
            for i, value in enumerate(set_values):
                self._regs[table][address + i] = int(value)
            for index in self._units_at(table, address, len(set_values)):
                self._take_command(index)
        for index in self.units:
            self._render(index)
        for a, value in self._regs[table].items():
            if 0 <= a - start_address < len(registers):
                registers[a - start_address] = value
        if set_values is not None and table in ("holding", "input"):
            # pymodbus stores set_values after this; hand it what the unit kept (a locked unit
            # puts its own values back, as a gateway that refuses the change would).
            for i in range(len(set_values)):
                set_values[i] = self._regs[table][address + i]  # type: ignore[call-overload]

    def _device(self) -> SimDevice:
        blocks: list[list[SimData]] = [[], [], [], []]
        for table, regs in self._regs.items():
            addresses = sorted(regs)
            run: list[int] = []
            for a in [*addresses, -2]:
                if run and a != run[-1] + 1:
                    values = [regs[x] for x in run]
                    dt = DataType.BITS if table in ("coil", "discrete") else DataType.REGISTERS
                    blocks[_TABLE_INDEX[table]].append(SimData(run[0], values=values, datatype=dt))
                    run = []
                if a >= 0:
                    run.append(a)
        for i, dt in enumerate((DataType.BITS, DataType.BITS, DataType.REGISTERS, DataType.REGISTERS)):
            if not blocks[i]:
                blocks[i].append(SimData(0xFFF0, values=[0], datatype=dt))  # pymodbus wants each block
        return SimDevice(id=self.device_id, simdata=(blocks[0], blocks[1], blocks[2], blocks[3]), action=self._action)

    # -- silence --------------------------------------------------------------------------------

    def set_silent(self, silent: bool) -> None:
        """Stop (or resume) answering: RTU replies are lost on the line; TCP requests are held."""
        self.silent = silent
        if silent and not self._rtu:
            self._speak.clear()
        else:
            self._speak.set()

    # -- transports -----------------------------------------------------------------------------

    async def start_rtu(self, path: str) -> None:
        """Serve RTU on a pty; the driver opens ``path`` (a symlink, like /dev/ttyUSB0)."""
        self.path = path
        self._speak.set()
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._fds = (master, slave)
        self._server = ModbusSerialServer(self._device(), port=os.ttyname(slave), baudrate=9600)
        self._serve_task = asyncio.create_task(self._server.serve_forever(), name=f"drivers.sim.ac_modbus.{path}")
        asyncio.get_running_loop().add_reader(master, self._from_server)
        self._port = PtyPort(path)
        self._port.plug(self._to_server)
        self._rtu = True

    def _to_server(self, data: bytes) -> None:
        if self._fds is not None:
            with contextlib.suppress(BlockingIOError):
                os.write(self._fds[0], data)

    def _from_server(self) -> None:
        assert self._fds is not None
        try:
            data = os.read(self._fds[0], 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.debug("simulated AC gateway: server pty read failed: %s", exc)
            return
        if not self.silent and self._port is not None:
            self._port.write(data)

    def unplug(self) -> None:
        """RTU: the USB-RS485 adapter is pulled (the path disappears, the driver's tty dies)."""
        if self._port is not None:
            self._port.unplug()

    def plug(self) -> None:
        """RTU: a new tty appears behind the same path."""
        if self._port is not None:
            self._port.plug(self._to_server)

    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve Modbus TCP on loopback; returns the port (``url = f"tcp://127.0.0.1:{port}"``)."""
        server = ModbusTcpServer(self._device(), address=(host, port))
        await server.serve_forever(background=True)
        self._server = server
        sockets = getattr(server.transport, "sockets", None)
        assert sockets, "pymodbus server did not listen"
        self.port = int(sockets[0].getsockname()[1])
        return self.port

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}" if self.port is not None else str(self.path)

    async def stop(self) -> None:
        self._speak.set()  # release held requests so the server can close
        if self._port is not None:
            self._port.close()
            self._port = None
        if self._fds is not None:
            asyncio.get_running_loop().remove_reader(self._fds[0])
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
        if self._serve_task is not None:
            self._serve_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._serve_task
            self._serve_task = None
        if self._fds is not None:
            for fd in self._fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._fds = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def _offsets(profile: RegisterProfile, block: str) -> list[int]:
    p = profile
    out = []
    for f in (p.power, p.mode, p.setpoint, p.fan, p.room_temperature, p.error_code, p.error_flag, p.running):
        if f is None:
            continue
        for loc in (f.read, f.write):
            if loc is not None and loc.block.name == block:
                out.append(loc.offset)
    return out
