"""Air conditioners behind a Modbus gateway (RTU on RS-485, or Modbus TCP), driven by a register profile.

One :class:`ModbusAcGateway` owns the link (a pymodbus client, kept up by the shared
:class:`~drivers.reconnect.Supervisor`) and every indoor unit behind it; each unit is a
:class:`ModbusAcUnit` (the :class:`~drivers.aircon.AcUnit` the controller holds). Which register
means what comes from a :class:`~drivers.ac_profile.RegisterProfile`, so the code here never
knows a brand.

A write is trusted only once it is read back: ``apply`` writes (read-modify-write where a
field shares its register with others, as on the Daikin adaptor), then reads the unit until it
shows the command or ``readback_timeout_s`` passes, because gateways relay to their own bus
(DIII-NET, P1P2...) and the status registers follow some seconds later. Silence within the
client timeout is :class:`AcNoAck`; a different value after the read-back window is
:class:`AcMismatch`; a non-zero error code is :class:`AcFault`. All bus access goes through one
lock: RS-485 is half-duplex and a read-modify-write must not interleave with a poll.
"""

from __future__ import annotations

import asyncio
import logging
import os
import termios
from collections.abc import Callable, Iterable
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType

from drivers.ac_profile import Field, Location, RegisterProfile, Table
from drivers.aircon import AcCapabilities, AcCommand, AcFault, AcMismatch, AcNoAck, AcState
from drivers.base import HealthCallback, HealthTracker
from drivers.errors import DeviceError, DeviceOffline
from drivers.reconnect import Backoff, SupervisedDriver, Supervisor

__all__ = ["ModbusAcGateway", "ModbusAcUnit"]

log = logging.getLogger(__name__)

OFFLINE_AFTER = 3  # consecutive silent polls
READBACK_POLL = 0.2  # s between read-backs while a gateway relays a write
MAX_SPAN = 60  # registers read in one request when fields of one table sit close together

Client = AsyncModbusSerialClient | AsyncModbusTcpClient
StateCallback = Callable[[str, AcState], None]


class ModbusAcGateway(SupervisedDriver):
    """One gateway at ``url``: a serial path (RTU) or ``tcp://host:port`` (Modbus TCP).

    Run ``run()`` in a task (it keeps the link up and polls every unit every ``interval``
    seconds, reporting each state to ``on_state``); get units with :meth:`unit`.
    Health: ``ok`` while units answer, ``degraded`` when one reports a fault,
    ``offline`` when the port is gone or nothing answered three polls in a row.
    """

    kind: ClassVar[str] = "ac_modbus"

    def __init__(
        self,
        name: str,
        url: str,
        profile: RegisterProfile,
        *,
        device_id: int = 1,
        baudrate: int = 9600,
        parity: str = "N",
        stopbits: int = 1,
        timeout: float = 1.0,
        retries: int = 1,
        interval: float = 10.0,
        readback_timeout: float | None = None,
        on_state: StateCallback | None = None,
        on_health: HealthCallback | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.profile = profile
        self.device_id = device_id
        self.baudrate = baudrate
        self.parity = parity
        self.stopbits = stopbits
        self.timeout = timeout
        self.retries = retries
        self.interval = interval
        self.readback_timeout = profile.readback_timeout_s if readback_timeout is None else readback_timeout
        self._on_state = on_state
        self._health = HealthTracker(on_health)
        self._units: dict[int, ModbusAcUnit] = {}
        self._lock = asyncio.Lock()
        self._client: Client | None = None
        self.last_states: dict[str, AcState] = {}
        self._supervisor: Supervisor[Client] = Supervisor(
            name, self._health, self._connect, self._serve, self._disconnect, backoff
        )

    @property
    def tracker(self) -> HealthTracker:
        return self._health

    @property
    def no_ack_after(self) -> float:
        """Seconds after which an unanswered request is :class:`AcNoAck` (timeout × attempts)."""
        return self.timeout * (self.retries + 1)

    def unit(self, index: int, unit_id: str | None = None) -> ModbusAcUnit:
        """The indoor unit at ``index`` in the profile's layout (0-based), created once."""
        if not 0 <= index < self.profile.units:
            raise ValueError(
                f"{self.name}: unit index {index} outside 0..{self.profile.units - 1} ({self.profile.name})"
            )
        if index not in self._units:
            self._units[index] = ModbusAcUnit(self, index, unit_id or f"{self.name}.{index}")
        return self._units[index]

    # -- Supervisor hooks ----------------------------------------------------------------------

    async def _connect(self) -> Client:
        client: Client
        if self.url.startswith("tcp://"):
            parts = urlsplit(self.url)
            client = AsyncModbusTcpClient(
                parts.hostname or "127.0.0.1",
                port=parts.port or 502,
                timeout=self.timeout,
                retries=self.retries,
                reconnect_delay=0,
                name=self.name,
                trace_packet=self._trace,
            )
        else:
            if self.url.startswith("/") and not await asyncio.to_thread(os.path.exists, self.url):
                raise DeviceOffline(self.name, f"cannot open {self.url}: no such device")
            client = AsyncModbusSerialClient(
                self.url,
                framer=FramerType.RTU,
                baudrate=self.baudrate,
                parity=self.parity,
                bytesize=8,
                stopbits=self.stopbits,
                timeout=self.timeout,
                retries=self.retries,
                reconnect_delay=0,
                name=self.name,
                trace_packet=self._trace,
            )
        try:
            connected = await client.connect()
        except (ModbusException, OSError, termios.error) as exc:  # termios: a setting the port refuses
            client.close()
            raise DeviceOffline(self.name, f"cannot open {self.url}: {exc}") from exc
        if not connected:
            client.close()
            raise DeviceOffline(self.name, f"cannot open {self.url}")
        self._client = client
        return client

    async def _disconnect(self, client: Client) -> None:
        self._client = None
        client.close()

    def _trace(self, sending: bool, data: bytes) -> bytes:
        self._health.record_frame("tx" if sending else "rx", data)
        return data

    async def _serve(self, client: Client) -> None:
        silent = 0
        self._health.set("ok")
        while True:
            faults = []
            for unit in list(self._units.values()):
                try:
                    state = await unit.read()
                except AcNoAck as exc:
                    silent += 1
                    log.debug("%s: %s (%d in a row)", self.name, exc.message, silent)
                    if silent >= OFFLINE_AFTER:
                        raise DeviceOffline(self.name, f"no reply to {silent} polls in a row") from exc
                    continue
                except DeviceError as exc:
                    faults.append(exc.message)
                    continue
                silent = 0
                if state.error_code:
                    faults.append(f"{unit.unit_id}: error {state.error_text or state.error_code}")
            if faults:
                self._health.set("degraded", "; ".join(faults))
            elif silent == 0:
                self._health.set("ok")
            await asyncio.sleep(self.interval)

    # -- bus access (under the lock) -----------------------------------------------------------

    async def _wait_connected(self) -> Client:
        if self._client is None or not self._client.connected:
            try:
                async with asyncio.timeout(self.no_ack_after):
                    await self.connected.wait()
            except TimeoutError:
                pass
        client = self._client
        if client is None or not client.connected:
            detail = self._health.current.detail or "not connected"
            raise AcNoAck(self.name, f"gateway offline: {detail}")
        return client

    async def _call(self, what: str, request: Any) -> Any:
        try:
            reply = await request
        except ConnectionException as exc:
            raise AcNoAck(self.name, f"{what}: link lost: {exc}") from exc
        except ModbusIOException as exc:
            self._health.counters.timeouts += 1
            raise AcNoAck(self.name, f"{what}: no answer within {self.no_ack_after:g} s") from exc
        except ModbusException as exc:
            self._health.counters.bad_frames += 1
            raise AcNoAck(self.name, f"{what}: bad reply: {exc}") from exc
        if reply.isError():
            raise AcMismatch(
                self.name,
                f"{what}: exception reply, code {getattr(reply, 'exception_code', '?')} "
                f"(wrong register map, or no unit at that address?)",
            )
        return reply

    async def _read_table(self, client: Client, table: Table, addresses: Iterable[int]) -> dict[int, int]:
        """Read the given addresses of one table in as few requests as the spans allow."""
        values: dict[int, int] = {}
        ordered = sorted(set(addresses))
        spans: list[list[int]] = []
        for address in ordered:
            if spans and address - spans[-1][0] < MAX_SPAN:
                spans[-1].append(address)
            else:
                spans.append([address])
        for span in spans:
            start, count = span[0], span[-1] - span[0] + 1
            what = f"read {table} {start}+{count}"
            if table == "holding":
                reply = await self._call(
                    what, client.read_holding_registers(start, count=count, device_id=self.device_id)
                )
                raw: list[int] = list(reply.registers)
            elif table == "input":
                reply = await self._call(
                    what, client.read_input_registers(start, count=count, device_id=self.device_id)
                )
                raw = list(reply.registers)
            elif table == "coil":
                reply = await self._call(what, client.read_coils(start, count=count, device_id=self.device_id))
                raw = [int(b) for b in reply.bits]
            else:
                reply = await self._call(
                    what, client.read_discrete_inputs(start, count=count, device_id=self.device_id)
                )
                raw = [int(b) for b in reply.bits]
            if len(raw) < count:
                raise AcMismatch(self.name, f"{what}: got {len(raw)} values")
            for address in span:
                values[address] = raw[address - start]
        return values

    async def read_unit(self, index: int, unit_id: str) -> AcState:
        p = self.profile
        fields = [f for f in (p.power, p.mode, p.setpoint, p.fan, p.room_temperature, p.error_code, p.error_flag) if f]
        if p.running is not None:
            fields.append(p.running)
        wanted: dict[Table, set[int]] = {}
        for f in fields:
            wanted.setdefault(f.read.block.table, set()).add(f.read.address(index))
        async with self._lock:
            client = await self._wait_connected()
            image: dict[tuple[Table, int], int] = {}
            for table, addresses in wanted.items():
                for address, value in (await self._read_table(client, table, addresses)).items():
                    image[(table, address)] = value

        def raw(f: Field) -> int:
            return f.read.extract(image[(f.read.block.table, f.read.address(index))])

        mode_raw, fan_raw = raw(p.mode), raw(p.fan)
        mode, fan = p.mode_name(mode_raw), p.fan_name(fan_raw)
        if mode is None or fan is None:
            # A mode or fan hallctl cannot name (Daikin "ventilation", fan "low-medium"): the unit is
            # not where we put it, so report it as a mismatch rather than guess a near value.
            raise AcMismatch(unit_id, f"unit reports mode {mode_raw} / fan {fan_raw}, outside profile {p.name}")
        error_code, error_text = 0, ""
        if p.error_code is not None:
            code = raw(p.error_code)
            flagged = raw(p.error_flag) != 0 if p.error_flag is not None else code != 0
            if flagged:
                error_code = code or 1
                error_text = _error_text(p.error_code, code)
        state = AcState(
            power=raw(p.power) == p.power_on,
            mode=mode,
            setpoint=p.setpoint.decode_number(raw(p.setpoint)),
            fan=fan,
            room_temperature=p.room_temperature.decode_number(raw(p.room_temperature)) if p.room_temperature else None,
            error_code=error_code,
            error_text=error_text,
            running=raw(p.running) != 0 if p.running is not None else None,
        )
        self.last_states[unit_id] = state
        if self._on_state is not None:
            self._on_state(unit_id, state)
        return state

    async def write_unit(self, index: int, cmd: AcCommand) -> None:
        p = self.profile
        writes: list[tuple[Location, int]] = [(_w(p.power), p.power_on if cmd.power else p.power_off)]
        if cmd.power:
            writes += [
                (_w(p.mode), p.mode.values[cmd.mode]),
                (_w(p.setpoint), p.setpoint.encode_number(cmd.setpoint)),
                (_w(p.fan), p.fan.values[cmd.fan]),
            ]
            writes.append(writes.pop(0))  # power last: the unit starts in the mode it was given
        async with self._lock:
            client = await self._wait_connected()
            # Registers shared by several fields, or carrying fixed bits, are read first so the
            # write changes only our bits (Daikin's control register 0 also holds fan direction).
            partial = {
                loc.address(index)
                for loc, _ in writes
                if loc.block.table == "holding" and (loc.width < 16 or loc.set_bits)
            }
            current = await self._read_table(client, "holding", partial) if partial else {}
            registers: dict[int, int] = {}
            coils: dict[int, int] = {}
            order: list[tuple[Table, int]] = []
            for loc, value in writes:
                address = loc.address(index)
                if loc.block.table == "coil":
                    coils[address] = value
                    order.append(("coil", address))
                    continue
                base = registers.get(address, current.get(address, 0))
                registers[address] = loc.insert(base, value) if (loc.width < 16 or loc.set_bits) else value & 0xFFFF
                if ("holding", address) not in order:
                    order.append(("holding", address))
            if p.write_function == 16:
                run: list[int] = []
                for address in sorted(registers):
                    if run and address != run[-1] + 1:
                        await self._write_run(client, run, registers)
                        run = []
                    run.append(address)
                if run:
                    await self._write_run(client, run, registers)
            for table, address in order:
                if table == "coil":
                    await self._call(
                        f"write coil {address}",
                        client.write_coil(address, bool(coils[address]), device_id=self.device_id),
                    )
                elif p.write_function == 6:
                    await self._call(
                        f"write holding {address}",
                        client.write_register(address, registers[address], device_id=self.device_id),
                    )

    async def _write_run(self, client: Client, run: list[int], registers: dict[int, int]) -> None:
        await self._call(
            f"write holding {run[0]}+{len(run)}",
            client.write_registers(run[0], [registers[a] for a in run], device_id=self.device_id),
        )


def _w(field: Field) -> Location:
    assert field.write is not None  # the profile loader requires it for commanded fields
    return field.write


def _error_text(field: Field, code: int) -> str:
    if field.text == "number":
        return str(code)
    lo, hi = chr(code & 0xFF), chr(code >> 8 & 0xFF)
    chars = lo + hi if field.text == "ascii_lo_hi" else hi + lo
    return "".join(c for c in chars if c.isprintable() and c != "\x00").strip()


class ModbusAcUnit:
    """One indoor unit behind a :class:`ModbusAcGateway` (an :class:`~drivers.aircon.AcUnit`)."""

    def __init__(self, gateway: ModbusAcGateway, index: int, unit_id: str) -> None:
        self.gateway = gateway
        self.index = index
        self.unit_id = unit_id
        self.capabilities: AcCapabilities = gateway.profile.capabilities

    async def read(self) -> AcState:
        """The unit's state now; an error code is in the state (not raised), for polling."""
        return await self.gateway.read_unit(self.index, self.unit_id)

    async def apply(self, cmd: AcCommand) -> AcState:
        self.capabilities.check(self.unit_id, cmd)
        await self.gateway.write_unit(self.index, cmd)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.gateway.readback_timeout
        while True:
            state = await self.read()
            if state.error_code:
                raise AcFault(self.unit_id, f"unit reports error {state.error_text or state.error_code}", state)
            if state.matches(cmd):
                return state
            if loop.time() >= deadline:
                raise AcMismatch(self.unit_id, f"wrote {cmd}, read back {state}", state)
            await asyncio.sleep(READBACK_POLL)

    async def release(self) -> None:
        """Nothing to hand back: a Modbus gateway keeps the last command, as a wall remote would."""

    async def close(self) -> None:
        """The link belongs to the gateway; cancel the gateway's ``run()`` task to close it."""
