"""Modbus air-conditioning gateways: real pymodbus client and server, over a pty (RTU) and loopback TCP.

The simulated gateway lays its registers out by the same profile as the driver, so the
round-trip tests alone could not catch a wrong profile; the wire-level tests pin the
registers to the values the cited manuals give, computed by hand.
"""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from drivers.ac_modbus import ModbusAcGateway
from drivers.ac_profile import ProfileError, load_profile, parse_profile, shipped_profiles
from drivers.aircon import AcCommand, AcFault, AcMismatch, AcNoAck, AcUnit, AcUnsupported
from drivers.base import DeviceDriver, Health
from drivers.reconnect import Backoff
from drivers.sim.ac_modbus import ModbusAcSim

WAIT = 5.0
TIMEOUT = 0.3  # the client's per-request timeout in these tests


HEALTHS: dict[int, asyncio.Queue[Health]] = {}


async def health_reaches(gw: ModbusAcGateway, state: str) -> None:
    """Until the gateway reports ``state`` (each change arrives through on_health)."""
    queue = HEALTHS[id(gw)]
    async with asyncio.timeout(WAIT):
        while (await queue.get()).state != state:
            pass


@pytest.fixture(params=["rtu", "tcp"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def start(sim: ModbusAcSim, transport: str, tmp_path: Path) -> None:
    if transport == "rtu":
        await sim.start_rtu(str(tmp_path / "ttyUSB-ac"))
    else:
        await sim.start_tcp()


@pytest.fixture
async def gateway_factory() -> AsyncIterator[Any]:
    tasks: list[asyncio.Task[None]] = []

    def make(sim: ModbusAcSim, **kw: Any) -> ModbusAcGateway:
        healths: asyncio.Queue[Health] = asyncio.Queue()
        gw = ModbusAcGateway(
            "ac-test",
            sim.url,
            sim.profile,
            timeout=TIMEOUT,
            retries=0,
            interval=0.05,
            backoff=Backoff(initial=0.05, maximum=0.2),
            on_health=healths.put_nowait,
            **kw,
        )
        HEALTHS[id(gw)] = healths
        tasks.append(asyncio.create_task(gw.run()))
        return gw

    yield make
    for task in tasks:
        assert not task.done(), f"gateway task ended on its own: {task!r}"
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.parametrize("profile_name", shipped_profiles())
async def test_apply_reads_back_through_every_shipped_profile(
    profile_name: str, transport: str, tmp_path: Path, gateway_factory: Any
) -> None:
    """Each shipped profile, each transport: the command lands on the unit and is read back."""
    profile = load_profile(profile_name)
    async with ModbusAcSim(profile, units=(0, 2)) as sim:
        await start(sim, transport, tmp_path)
        gw = gateway_factory(sim)
        unit = gw.unit(2)
        for cmd in (
            AcCommand(True, "cool", 26.0, "high"),
            AcCommand(True, "heat", 20.5, "low"),
            AcCommand(True, "dry", 25.0, "auto"),
            AcCommand(False),
        ):
            state = await unit.apply(cmd)
            assert state.matches(cmd), (cmd, state)
            assert sim.unit_state(2).matches(cmd)
        assert sim.unit_state(0).power is False  # the neighbour at index 0 was never touched
        assert sim.units[0].commands == 0
        sim.set_room_temperature(31.5, index=2)
        assert (await unit.read()).room_temperature == 31.5


async def test_daikin_registers_on_the_wire(tmp_path: Path, gateway_factory: Any) -> None:
    """DTA116A51 unit 1: holding 2003..2005 = on + 0x0060 + fan low (0x1000), cool (2), 26.0 °C × 10."""
    profile = load_profile("daikin_dta116a51")
    async with ModbusAcSim(profile, units=(0, 1)) as sim:
        await start(sim, "tcp", tmp_path)
        unit = gateway_factory(sim).unit(1)
        await unit.apply(AcCommand(True, "cool", 26.0, "low"))
        assert [sim.register("holding", a) for a in (2003, 2004, 2005)] == [0x1061, 0x0002, 260]
        assert sim.register("input", 2006) & 0x7001 == 0x1001  # status: on, fan low
        assert sim.register("input", 2008) == 260
        sim.set_error("U4", index=1)
        with pytest.raises(AcFault) as fault:
            await unit.apply(AcCommand(True, "cool", 26.0, "low"))
        assert sim.register("input", 3602) == ord("U") | ord("4") << 8
        assert sim.register("input", 3603) & 0x0100
        assert fault.value.state is not None and fault.value.state.error_text == "U4"


async def test_daikin_thermo_bit_is_the_compressor_not_the_power(tmp_path: Path, gateway_factory: Any) -> None:
    """A powered unit in thermo-off reads running False (status bit 7), so the energy meter counts no load.

    Before, the simulator reported ``running`` equal to power and the driver did not read it,
    so a powered unit at rest counted as full load in the demo's kWh.
    """
    profile = load_profile("daikin_dta116a51")
    async with ModbusAcSim(profile, units=(0, 1)) as sim:
        await start(sim, "tcp", tmp_path)
        unit = gateway_factory(sim).unit(1)
        state = await unit.apply(AcCommand(True, "cool", 26.0, "low"))
        assert state.power and state.running is False  # on, but the room is cool enough: thermo-off
        assert sim.register("input", 2006) & 0x0080 == 0
        sim.set_running(True, index=1)
        assert (await unit.read()).running is True
        assert sim.register("input", 2006) & 0x0080 == 0x0080
        await unit.apply(AcCommand(False))
        assert (await unit.read()).running is False  # switched off: the compressor stops with it
        assert sim.unit_state(0).running is False


async def test_coolmasternet_registers_on_the_wire(tmp_path: Path, gateway_factory: Any) -> None:
    """CoolMasterNet VA 2 (index 1): doc base 2 × 16 + 1 = 33, wire 32: mode, fan, set temp × 10, on/off."""
    profile = load_profile("coolmasternet")
    async with ModbusAcSim(profile, units=(1,)) as sim:
        await start(sim, "rtu", tmp_path)
        unit = gateway_factory(sim).unit(1)
        await unit.apply(AcCommand(True, "heat", 20.0, "medium"))
        assert [sim.register("holding", a) for a in (32, 33, 34, 35)] == [1, 1, 200, 1]
        await unit.apply(AcCommand(True, "fan_only", 24.0, "auto"))
        assert [sim.register("holding", a) for a in (32, 33, 34, 35)] == [5, 3, 240, 1]
        sim.set_room_temperature(23.4, index=1)
        await unit.read()
        assert sim.register("holding", 38) == 234


async def test_error_code_is_a_fault(transport: str, tmp_path: Path, gateway_factory: Any) -> None:
    """A unit that reports an error code: apply raises AcFault with the code; read() reports it."""
    async with ModbusAcSim(load_profile("generic")) as sim:
        await start(sim, transport, tmp_path)
        gw = gateway_factory(sim)
        unit = gw.unit(0)
        await unit.apply(AcCommand(True, "cool", 26.0))
        sim.set_error(17)
        with pytest.raises(AcFault, match="error 17") as fault:
            await unit.apply(AcCommand(True, "cool", 25.0))
        assert fault.value.state is not None and fault.value.state.error_code == 17
        assert (await unit.read()).error_code == 17
        await health_reaches(gw, "degraded")
        sim.set_error(0)
        assert (await unit.apply(AcCommand(True, "cool", 25.0))).error_code == 0


async def test_silent_gateway_is_no_ack_within_the_timeout(
    transport: str, tmp_path: Path, gateway_factory: Any
) -> None:
    """The gateway stops answering: apply raises AcNoAck, no later than the configured timeout allows."""
    async with ModbusAcSim(load_profile("coolmasternet")) as sim:
        await start(sim, transport, tmp_path)
        gw = gateway_factory(sim)
        unit = gw.unit(0)
        await unit.apply(AcCommand(True, "cool", 26.0))
        sim.set_silent(True)
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(AcNoAck):
            await unit.apply(AcCommand(True, "cool", 27.0))
        # one request timeout, plus scheduling slack on a loaded machine; never the read-back window
        assert loop.time() - began < gw.no_ack_after + 2.0
        await health_reaches(gw, "offline")
        sim.set_silent(False)
        async with asyncio.timeout(WAIT):
            while True:
                try:
                    state = await unit.apply(AcCommand(True, "cool", 27.0))
                    break
                except AcNoAck:
                    await asyncio.sleep(0.05)
        assert state.setpoint == 27.0


async def test_unplugged_adapter_is_no_ack_and_replug_recovers(tmp_path: Path, gateway_factory: Any) -> None:
    """Pulling the RS-485 adapter: the gateway goes offline, apply is AcNoAck; plugged back, it works again."""
    async with ModbusAcSim(load_profile("daikin_dta116a51")) as sim:
        await start(sim, "rtu", tmp_path)
        gw = gateway_factory(sim)
        unit = gw.unit(0)
        await unit.apply(AcCommand(True, "cool", 26.0))
        sim.unplug()
        await health_reaches(gw, "offline")
        with pytest.raises(AcNoAck, match="offline"):
            await unit.apply(AcCommand(True, "cool", 25.0))
        sim.plug()
        await health_reaches(gw, "ok")
        assert (await unit.apply(AcCommand(True, "cool", 25.0))).setpoint == 25.0
        assert gw.counters.reconnects >= 1


async def test_locked_unit_is_a_mismatch(tmp_path: Path, gateway_factory: Any) -> None:
    """A unit that answers but does not follow (held by a central remote): AcMismatch with its state."""
    async with ModbusAcSim(load_profile("daikin_dta116a51")) as sim:
        await start(sim, "tcp", tmp_path)
        unit = gateway_factory(sim, readback_timeout=0.3).unit(0)
        await unit.apply(AcCommand(True, "cool", 26.0))
        sim.units[0].locked = True
        with pytest.raises(AcMismatch) as mismatch:
            await unit.apply(AcCommand(True, "cool", 24.0))
        assert mismatch.value.state is not None and mismatch.value.state.setpoint == 26.0
        assert sim.unit_state(0).setpoint == 26.0


async def test_unsupported_command_is_refused_before_writing(tmp_path: Path, gateway_factory: Any) -> None:
    async with ModbusAcSim(load_profile("generic")) as sim:
        await start(sim, "tcp", tmp_path)
        unit = gateway_factory(sim).unit(0)
        with pytest.raises(AcUnsupported, match="setpoint 35"):
            await unit.apply(AcCommand(True, "cool", 35.0))
        assert sim.units[0].commands == 0


# -- the profile loader ------------------------------------------------------------------------


def generic_data() -> dict[str, Any]:
    path = Path(__file__).resolve().parents[2] / "drivers" / "ac_profiles" / "generic.toml"
    return tomllib.loads(path.read_text())


@pytest.mark.parametrize("profile_name", shipped_profiles())
def test_shipped_profiles_load(profile_name: str) -> None:
    profile = load_profile(profile_name)
    assert profile.name == profile_name
    assert {"cool", "heat"} <= set(profile.capabilities.modes)
    assert profile.source


def test_three_profiles_are_shipped() -> None:
    assert {"daikin_dta116a51", "coolmasternet", "generic"} <= set(shipped_profiles())


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (lambda d: d["fields"]["setpoint"].update(scale=0), "fields.setpoint.scale", "positive"),
        (lambda d: d["fields"]["mode"]["values"].update(frost=9), "fields.mode.values.frost", "not a mode"),
        (lambda d: d["fields"]["mode"]["values"].update(heat=1), "fields.mode.values", "share one raw value"),
        (lambda d: d["fields"]["power"]["write"].update(block="nowhere"), "fields.power.write.block", "no block"),
        (lambda d: d["fields"]["fan"]["write"].update(block="status"), "fields.fan.write.block", "cannot be written"),
        (lambda d: d["fields"].pop("setpoint"), "fields.setpoint", "missing"),
        (lambda d: d["blocks"]["control"].update(table="register"), "blocks.control.table", "must be one of"),
        (lambda d: d["blocks"]["control"].update(stride=0), "blocks.control.stride", "must be > 0"),
        (lambda d: d["gateway"].update(write_function=5), "gateway.write_function", "must be 6"),
        (lambda d: d["fields"]["mode"]["write"].update(shift=12, width=8), "fields.mode.write.width", "16-bit"),
        (lambda d: d["fields"]["power"].update(colour="red"), "fields.power.colour", "unknown key"),
    ],
)
def test_wrong_profile_names_the_key(change: Any, key: str, reason: str) -> None:
    data = generic_data()
    change(data)
    with pytest.raises(ProfileError) as err:
        parse_profile(data, "bad.toml")
    assert err.value.key == key
    assert reason in err.value.reason
    assert str(err.value).startswith(f"bad.toml: {key}: ")


def test_unknown_profile_name_lists_the_known_ones() -> None:
    with pytest.raises(ProfileError, match="coolmasternet"):
        load_profile("mitsubishi_nonexistent")


def test_gateway_and_unit_keep_their_contracts() -> None:
    """mypy checks these assignments: the gateway is a DeviceDriver, its units are AcUnits."""
    gw: DeviceDriver = ModbusAcGateway("gw", "tcp://127.0.0.1:1", load_profile("generic"))
    assert isinstance(gw, ModbusAcGateway)
    unit: AcUnit = gw.unit(3)
    assert unit.unit_id == "gw.3"
    with pytest.raises(ValueError, match=r"outside 0\.\.15"):
        gw.unit(16)
