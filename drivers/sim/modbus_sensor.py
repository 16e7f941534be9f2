"""A Modbus RTU temperature/humidity sensor behind a pluggable pty.

The sensor itself is pymodbus's real server (framer and request handler) over a
``SimDevice``, so the driver is tested against Modbus as pymodbus implements it,
not against our own reading of the spec. The server opens one pty pair that
never goes away; the driver's side is a :class:`~drivers.sim.pty.PtyPort` at a
stable path, and the two are relayed. Unplugging removes only the driver's side,
which is what pulling a USB-RS485 adapter does. pymodbus answers unknown device
ids with exception 04 instead of silence, so a dead sensor on a live bus is made
in the relay instead (``silent``: requests arrive, replies are dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tty
from types import TracebackType
from typing import Self

from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.sim.pty import PtyPort

log = logging.getLogger(__name__)


class ModbusSensorSim:
    """XY-MD02-like sensor: input registers 0x0001 (temperature ×scale, signed), 0x0002 (RH)."""

    def __init__(
        self,
        path: str,
        device_id: int = 1,
        *,
        temperature: float = 23.5,
        humidity: float = 54.6,
        scale: int = 10,
    ) -> None:
        self.path = path
        self.device_id = device_id
        self.received = bytearray()  # every byte the driver sent, for wire-level assertions
        self.requests = 0  # FC04 requests answered so far
        self._request_seen = asyncio.Event()
        self.silent = False  # True: requests arrive, replies are lost (sensor without power)
        self._registers = [0, 0]
        self.set(temperature, humidity, scale=scale)
        self._port = PtyPort(path)
        self._server: ModbusSerialServer | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._server_master: int | None = None
        self._server_slave: int | None = None

    def set(self, temperature: float, humidity: float, *, scale: int = 10) -> None:
        """What the next reply says; ``scale=100`` imitates the clones that report ×100."""
        self.temperature, self.humidity = temperature, humidity  # as set, for whoever drives the sensor
        self._registers = [round(temperature * scale) & 0xFFFF, round(humidity * scale) & 0xFFFF]

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> None:
        # Called by pymodbus before it answers; refresh the block from the latest set().
        if function_code == 4:
            self.requests += 1
            self._request_seen.set()
            registers[1 - start_address : 3 - start_address] = self._registers

    async def wait_for_requests(self, count: int) -> None:
        """Until ``count`` read requests in total have reached the sensor: a test's clock."""
        while self.requests < count:
            self._request_seen.clear()
            await self._request_seen.wait()

    async def start(self) -> None:
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._server_master, self._server_slave = master, slave  # slave stays open: no EIO
        device = SimDevice(
            id=self.device_id,
            simdata=(
                [SimData(0, datatype=DataType.BITS)],
                [SimData(0, datatype=DataType.BITS)],
                [SimData(0x0101, values=[self.device_id, 9600, 0, 0], datatype=DataType.REGISTERS)],
                [SimData(0x0001, values=[0, 0], datatype=DataType.REGISTERS)],
            ),
            action=self._action,
        )
        self._server = ModbusSerialServer(device, port=os.ttyname(slave), baudrate=9600)
        self._serve_task = asyncio.create_task(
            self._server.serve_forever(), name=f"drivers.sim.modbus_sensor.{self.path}"
        )
        loop = asyncio.get_running_loop()
        loop.add_reader(master, self._from_server)
        self.plug()

    def _to_server(self, data: bytes) -> None:
        self.received += data
        if self._server_master is not None:
            with contextlib.suppress(BlockingIOError):
                os.write(self._server_master, data)

    def _from_server(self) -> None:
        assert self._server_master is not None
        try:
            data = os.read(self._server_master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.debug("simulated sensor: server pty read failed: %s", exc)
            return
        if not self.silent:
            self._port.write(data)  # dropped while unplugged, as on a cut cable

    def unplug(self) -> None:
        """The adapter is pulled: the path disappears and the driver's tty dies."""
        self._port.unplug()

    def plug(self) -> None:
        """A new tty appears behind the same path."""
        self._port.plug(self._to_server)

    @property
    def plugged(self) -> bool:
        return self._port.plugged

    async def stop(self) -> None:
        self._port.close()
        if self._server_master is not None:
            asyncio.get_running_loop().remove_reader(self._server_master)
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
        if self._serve_task is not None:
            self._serve_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._serve_task
            self._serve_task = None
        for fd in (self._server_master, self._server_slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._server_master = self._server_slave = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
