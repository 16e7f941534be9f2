"""Hall temperature/humidity sensors on Modbus RTU (XY-MD02 / SHT20 clones).

The climate automation needs readings it can trust, so the driver rejects
values a working sensor cannot produce instead of passing them on: several
clone batches report ×100 instead of ×10, which would show 235 °C. Polling uses
pymodbus's RTU client; silence is counted, and after three silent polls in a
row the sensor is ``offline`` and the port is reopened, because a replugged USB
adapter is a new tty behind the same path and the old file descriptor is dead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType

from drivers.base import HealthCallback, HealthTracker
from drivers.errors import DeviceError, DeviceOffline, DeviceTimeout, FrameError
from drivers.reconnect import Backoff, SupervisedDriver, Supervisor
from drivers.sensor_range import HUMIDITY_RANGE, TEMPERATURE_RANGE, OutOfRange, check_range

__all__ = ["HUMIDITY_RANGE", "TEMPERATURE_RANGE", "ModbusSensor", "OutOfRange", "Reading"]

log = logging.getLogger(__name__)

TEMPERATURE_REGISTER = 0x0001  # input register, FC04; humidity follows at 0x0002
OFFLINE_AFTER = 3  # consecutive silent polls


@dataclasses.dataclass(frozen=True)
class Reading:
    temperature: float  # °C
    humidity: float  # %RH
    at: datetime  # UTC, when the reply arrived


class ModbusExceptionReply(FrameError):
    """The sensor answered with a Modbus exception (wrong register map, wrong model)."""

    code = "modbus_exception"


def to_int16(register: int) -> int:
    """Two's complement: ``0xFF33`` is −205, i.e. −20.5 °C at scale 10."""
    return register - 0x10000 if register & 0x8000 else register


class ModbusSensor(SupervisedDriver):
    """Polls one sensor every ``interval`` seconds and reports each valid :class:`Reading`.

    Health: ``ok`` after a valid reading; ``degraded`` when the sensor answers
    with nonsense (exception reply, out-of-range value) or, with ``stale_after``,
    when no valid reading arrived for that long; ``offline`` when the port is
    absent or the sensor stayed silent for three polls.
    """

    kind: ClassVar[str] = "modbus_sensor"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        device_id: int = 1,
        on_reading: Callable[[Reading], None],
        on_health: HealthCallback | None = None,
        baudrate: int = 9600,
        parity: str = "N",
        interval: float = 2.0,
        scale: int = 10,
        timeout: float = 1.0,
        retries: int = 1,
        stale_after: float | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.device_id = device_id
        self._on_reading = on_reading
        self.baudrate = baudrate
        self.parity = parity
        self.interval = interval
        self.scale = scale
        self.timeout = timeout
        self.retries = retries
        self.stale_after = stale_after
        self._health = HealthTracker(on_health)
        self.last_reading: Reading | None = None
        self.last_error: DeviceError | None = None
        self._supervisor: Supervisor[AsyncModbusSerialClient] = Supervisor(
            name, self._health, self._connect, self._serve, self._disconnect, backoff
        )

    # run, health, counters, connected: SupervisedDriver

    @property
    def tracker(self) -> HealthTracker:
        """The tracker behind ``health()`` and ``counters``; ``frames`` keeps recent raw frames."""
        return self._health

    # -- Supervisor hooks ----------------------------------------------------------------------

    async def _connect(self) -> AsyncModbusSerialClient:
        if self.url.startswith("/") and not await asyncio.to_thread(os.path.exists, self.url):
            # Checked here so an unplugged adapter does not make pymodbus log a
            # warning at every retry; the Supervisor logs the state change once.
            raise DeviceOffline(self.name, f"cannot open {self.url}: no such device")
        client = AsyncModbusSerialClient(
            self.url,
            framer=FramerType.RTU,
            baudrate=self.baudrate,  # pymodbus defaults to 19200; these sensors ship at 9600
            parity=self.parity,
            bytesize=8,
            stopbits=1,
            timeout=self.timeout,
            retries=self.retries,
            reconnect_delay=0,  # reconnection is the Supervisor's job, with our backoff
            name=self.name,
            trace_packet=self._trace,
        )
        try:
            connected = await client.connect()
        except (ModbusException, OSError) as exc:
            client.close()
            raise DeviceOffline(self.name, f"cannot open {self.url}: {exc}") from exc
        if not connected:
            client.close()
            raise DeviceOffline(self.name, f"cannot open {self.url}")
        return client

    async def _disconnect(self, client: AsyncModbusSerialClient) -> None:
        client.close()

    def _trace(self, sending: bool, data: bytes) -> bytes:
        self._health.record_frame("tx" if sending else "rx", data)
        return data

    async def _serve(self, client: AsyncModbusSerialClient) -> None:
        loop = asyncio.get_running_loop()
        silent = 0
        last_good = loop.time()
        while True:
            try:
                reading = await self.poll(client)
            except DeviceTimeout as exc:
                self.last_error = exc
                self._health.counters.timeouts += 1
                silent += 1
                log.debug("%s: %s (%d in a row)", self.name, exc.message, silent)
                if silent >= OFFLINE_AFTER:
                    raise DeviceOffline(self.name, f"no reply to {silent} polls in a row") from exc
            except FrameError as exc:
                self.last_error = exc
                self._health.counters.bad_frames += 1
                silent = 0
                if self._health.current.state != "degraded":
                    log.warning("%s: %s", self.name, exc.message)
                self._health.set("degraded", exc.message)
            else:
                silent = 0
                last_good = loop.time()
                self.last_reading = reading
                self._health.set("ok")
                self._on_reading(reading)
            if (
                self.stale_after is not None
                and loop.time() - last_good > self.stale_after
                and self._health.current.state == "ok"
            ):
                self._health.set("degraded", f"no valid reading for {self.stale_after:g} s")
            await asyncio.sleep(self.interval)

    # -- one poll ------------------------------------------------------------------------------

    async def poll(self, client: AsyncModbusSerialClient) -> Reading:
        """Read temperature and humidity once: FC04, input registers 1 and 2."""
        if not client.connected:
            raise DeviceOffline(self.name, "port closed (unplugged?)")
        try:
            reply: Any = await client.read_input_registers(TEMPERATURE_REGISTER, count=2, device_id=self.device_id)
        except ConnectionException as exc:
            raise DeviceOffline(self.name, f"link lost: {exc}") from exc
        except ModbusIOException as exc:
            raise DeviceTimeout(self.name, "no reply") from exc
        except ModbusException as exc:
            raise FrameError(self.name, f"bad reply: {exc}") from exc
        if reply.isError():
            raise ModbusExceptionReply(self.name, f"exception reply, code {getattr(reply, 'exception_code', '?')}")
        registers: list[int] = list(reply.registers)
        if len(registers) != 2:
            raise FrameError(self.name, f"expected 2 registers, got {len(registers)}")
        return self.decode(registers[0], registers[1])

    def decode(self, temperature_register: int, humidity_register: int) -> Reading:
        """Scale and range-check raw registers; raises :class:`OutOfRange`."""
        temperature = to_int16(temperature_register) / self.scale
        humidity = humidity_register / self.scale
        check_range(self.name, temperature, humidity)  # the limits every sensor source shares
        return Reading(temperature, humidity, datetime.now(UTC))
