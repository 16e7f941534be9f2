"""Every driver kind keeps the one contract the daemon relies on: :class:`DeviceDriver`.

Checked twice: statically (mypy runs over the tests, so each assignment below to a
``DeviceDriver`` variable fails type checking if a driver loses or changes a member)
and at run time (a driver that lost ``run()`` or returns the wrong thing fails here).
"""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import pytest

from drivers.badge import BadgeReader
from drivers.base import DeviceDriver, ErrorCounters, Health, HealthCallback
from drivers.escpos import EscPosPrinter
from drivers.evalpad import EvalPad
from drivers.idcard import IdCardReader
from drivers.led import LedBus
from drivers.modbus_sensor import ModbusSensor
from drivers.reconnect import Backoff

# Members of the protocol, read from the protocol itself so a new member is checked too.
PROTOCOL_MEMBERS = {name for name in (*DeviceDriver.__annotations__, *vars(DeviceDriver)) if not name.startswith("_")}

EXPECTED_KINDS = {
    IdCardReader: "idcard",
    EscPosPrinter: "escpos",
    LedBus: "led",
    EvalPad: "evalpad",
    BadgeReader: "badge_reader",
    ModbusSensor: "modbus_sensor",
}


def make_all(port: str, on_health: HealthCallback | None = None) -> list[DeviceDriver]:
    """One driver of each kind; typed assignments make mypy check each against the protocol."""
    backoff = Backoff(initial=0.05, maximum=0.05)
    idcard: DeviceDriver = IdCardReader(
        "idcard-1", port, on_card=lambda card: None, on_health=on_health, backoff=backoff
    )
    printer: DeviceDriver = EscPosPrinter("printer-1", port, on_health=on_health, backoff=backoff)
    led: DeviceDriver = LedBus("led-1", port, on_health=on_health, backoff=backoff)
    pad: DeviceDriver = EvalPad("pad-1", port, on_key=lambda level: None, on_health=on_health, backoff=backoff)
    badge: DeviceDriver = BadgeReader(
        "badge-1", "no such reader", on_badge=lambda uid: None, on_removed=lambda: None, on_health=on_health
    )
    sensor: DeviceDriver = ModbusSensor(
        "sensor-1", port, on_reading=lambda reading: None, on_health=on_health, backoff=backoff
    )
    return [idcard, printer, led, pad, badge, sensor]


def test_protocol_members_are_the_documented_ones() -> None:
    assert sorted(PROTOCOL_MEMBERS) == ["connected", "counters", "health", "kind", "name", "run"]


def test_every_driver_kind_is_covered() -> None:
    drivers = make_all("/nonexistent/ttyX")
    assert {type(d) for d in drivers} == set(EXPECTED_KINDS)


@pytest.mark.parametrize("driver", make_all("/nonexistent/ttyX"), ids=lambda d: type(d).__name__)
def test_driver_satisfies_protocol_at_run_time(driver: DeviceDriver) -> None:
    cls = type(driver)
    missing = {m for m in PROTOCOL_MEMBERS if not hasattr(driver, m)}
    assert not missing, f"{cls.__name__} lacks {sorted(missing)}"
    assert cls.kind == EXPECTED_KINDS[cls]  # a class attribute, readable without an instance
    assert driver.name.endswith("-1")
    assert inspect.iscoroutinefunction(cls.run)
    health = driver.health()
    assert isinstance(health, Health)
    assert health.state == "offline"  # nothing opened yet
    assert isinstance(driver.counters, ErrorCounters)
    assert driver.counters.as_dict() == {"bad_frames": 0, "timeouts": 0, "garbage_bytes": 0, "reconnects": 0}
    assert isinstance(driver.connected, asyncio.Event)
    assert not driver.connected.is_set()


# The badge reader's "port" is a pcscd reader name; starting it would talk to a pcscd that
# parallel runs share, so its run() is covered by tests/drivers/test_badge.py under the lock.
SERIAL_KINDS = [cls for cls in EXPECTED_KINDS if cls is not BadgeReader]


@pytest.mark.parametrize("cls", SERIAL_KINDS, ids=lambda cls: cls.__name__)
async def test_run_on_an_absent_port_reports_offline_and_stops_only_when_cancelled(
    tmp_path: Path, cls: type[object]
) -> None:
    """``run()`` never raises a device problem: a missing port is a health state, retried."""
    seen: asyncio.Queue[Health] = asyncio.Queue()
    driver = next(d for d in make_all(str(tmp_path / "ttyGONE"), seen.put_nowait) if type(d) is cls)
    task = asyncio.create_task(driver.run())
    async with asyncio.timeout(5):
        health = await seen.get()
        while health.state != "offline":
            health = await seen.get()
    # Had run() raised or returned on the failure, the task would have ended before the
    # health report reached us: the report and the raise happen in the same step of the task.
    assert not task.done(), f"{cls.__name__}.run() ended on an absent port"
    assert not driver.connected.is_set()
    task.cancel()
    await asyncio.wait([task])
    assert task.cancelled()
