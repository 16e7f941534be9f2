"""BACnet/IP air conditioning: the bacpypes3 client driver against a bacpypes3 device, both on loopback UDP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from drivers.ac_bacnet import DEFAULT_PRIORITY, BacnetAcUnit, BacnetLink, BacnetPoints, check_priority
from drivers.aircon import AcCommand, AcFault, AcMismatch, AcNoAck, AcUnit
from drivers.sim.ac_bacnet import BacnetAcSim, free_udp_port


@pytest.fixture
async def sim() -> AsyncIterator[BacnetAcSim]:
    async with BacnetAcSim() as device:
        yield device


@pytest.fixture
async def link() -> AsyncIterator[BacnetLink]:
    # 2 s, not less: a local request answers in milliseconds, but a loaded CI machine once held one
    # past 0.5 s (test_fault_point_is_a_fault failed with AcNoAck); only the silent-device test waits it out.
    client = BacnetLink("test", f"127.0.0.1:{free_udp_port()}", timeout=2.0)
    yield client
    client.close()


@pytest.fixture
def unit(link: BacnetLink, sim: BacnetAcSim) -> BacnetAcUnit:
    return link.unit("zone-1", sim.address)


async def test_apply_writes_at_our_priority_and_reads_back(unit: BacnetAcUnit, sim: BacnetAcSim) -> None:
    """Setpoint, on/off, mode and fan land in the priority array at 12 and presentValue follows."""
    state = await unit.apply(AcCommand(True, "heat", 20.0, "low"))
    assert state.matches(AcCommand(True, "heat", 20.0, "low"))
    assert sim.unit_state().matches(AcCommand(True, "heat", 20.0, "low"))
    assert sim.priority_slot("setpoint", DEFAULT_PRIORITY) == 20.0
    assert sim.priority_slot("mode", DEFAULT_PRIORITY) == 2
    assert sim.priority_slot("fan", DEFAULT_PRIORITY) == 2
    assert sim.priority_slot("power", 16) is None  # nothing written without a priority
    state = await unit.apply(AcCommand(False))
    assert state.power is False
    sim.set_room_temperature(22.5)
    assert (await unit.read()).room_temperature == 22.5


async def test_release_relinquishes_every_slot(unit: BacnetAcUnit, sim: BacnetAcSim) -> None:
    """release() writes Null at our priority: the slots are empty and the relinquish default rules again."""
    await unit.apply(AcCommand(True, "cool", 24.0, "high"))
    for point in ("setpoint", "power", "mode", "fan"):
        assert sim.priority_slot(point, DEFAULT_PRIORITY) is not None
    await unit.release()
    for point in ("setpoint", "power", "mode", "fan"):
        assert sim.priority_slot(point, DEFAULT_PRIORITY) is None, point
    assert sim.unit_state().setpoint == 26.0  # the device's relinquish default
    assert sim.unit_state().power is False


async def test_operator_override_at_higher_priority_is_a_mismatch(link: BacnetLink, sim: BacnetAcSim) -> None:
    """A manager's priority-8 override wins over hallctl's 12; the driver reports it, it does not fight."""
    unit = BacnetAcUnit(link, "zone-1", sim.address, BacnetPoints(), readback_timeout=0.3)
    sim.operator_override("setpoint", 23.0)
    with pytest.raises(AcMismatch, match="higher priority") as mismatch:
        await unit.apply(AcCommand(True, "cool", 26.0))
    assert mismatch.value.state is not None and mismatch.value.state.setpoint == 23.0
    assert sim.priority_slot("setpoint", DEFAULT_PRIORITY) == 26.0  # ours is waiting underneath


async def test_fault_point_is_a_fault(unit: BacnetAcUnit, sim: BacnetAcSim) -> None:
    sim.set_error(4)
    with pytest.raises(AcFault) as fault:
        await unit.apply(AcCommand(True, "cool", 26.0))
    assert fault.value.state is not None and fault.value.state.error_code == 4


async def test_silent_device_is_no_ack_within_the_timeout(unit: BacnetAcUnit, sim: BacnetAcSim) -> None:
    await unit.apply(AcCommand(True, "cool", 26.0))
    sim.set_silent(True)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(AcNoAck):
        await unit.apply(AcCommand(True, "cool", 25.0))
    assert loop.time() - began < unit.link.timeout + 2.0
    sim.set_silent(False)
    assert (await unit.apply(AcCommand(True, "cool", 25.0))).setpoint == 25.0


@pytest.mark.parametrize(("priority", "reason"), [(0, "outside"), (17, "outside"), (6, "minimum on/off"), (1, "life")])
def test_unsafe_priorities_are_refused(priority: int, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_priority(priority)


def test_points_are_checked() -> None:
    with pytest.raises(ValueError, match=r"points\.setpoint"):
        BacnetPoints(setpoint="analogue,1")
    with pytest.raises(ValueError, match="share one state"):
        BacnetPoints(mode_states={"cool": 1, "heat": 1})


def test_unit_keeps_the_acunit_contract(link: BacnetLink) -> None:
    unit: AcUnit = link.unit("zone-9", "127.0.0.1:47809")  # mypy checks the assignment
    assert unit.unit_id == "zone-9"
