"""Modbus RTU sensor driver: the real pymodbus client on a real pty against pymodbus's server.

The simulated sensor is pymodbus's own RTU server over a SimDevice, relayed to a
pty at a stable path that the tests can unplug and plug back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC
from pathlib import Path

import pytest
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.register_message import ReadInputRegistersRequest

from drivers.base import Health
from drivers.modbus_sensor import ModbusSensor, OutOfRange, Reading
from drivers.reconnect import Backoff
from drivers.sim.modbus_sensor import ModbusSensorSim

WAIT = 5.0


class Recorder:
    def __init__(self) -> None:
        self.readings: asyncio.Queue[Reading] = asyncio.Queue()
        self.healths: asyncio.Queue[Health] = asyncio.Queue()

    async def reading(self, match: Callable[[Reading], bool] = lambda r: True) -> Reading:
        async with asyncio.timeout(WAIT):
            while True:
                reading = await self.readings.get()
                if match(reading):
                    return reading

    async def health(self, state: str, detail: str = "") -> Health:
        async with asyncio.timeout(WAIT):
            while True:
                health = await self.healths.get()
                if health.state == state and detail in health.detail:
                    return health


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[ModbusSensorSim]:
    async with ModbusSensorSim(str(tmp_path / "ttyUSB-sensor")) as sensor:
        yield sensor


@pytest.fixture
async def sensor(sim: ModbusSensorSim) -> AsyncIterator[tuple[ModbusSensor, Recorder]]:
    rec = Recorder()
    driver = ModbusSensor(
        "sensor-test",
        sim.path,
        on_reading=rec.readings.put_nowait,
        on_health=rec.healths.put_nowait,
        interval=0.05,
        timeout=0.2,
        retries=0,
        backoff=Backoff(initial=0.05, maximum=0.2),
    )
    task = asyncio.create_task(driver.run())
    yield driver, rec
    assert not task.done(), f"driver task ended on its own: {task!r}"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_reading_arrives(sensor: tuple[ModbusSensor, Recorder], sim: ModbusSensorSim) -> None:
    """23.5 °C / 54.6 %RH as the sensor reports it, stamped with an aware UTC time."""
    driver, rec = sensor
    reading = await rec.reading()
    assert (reading.temperature, reading.humidity) == (23.5, 54.6)
    assert reading.at.tzinfo is UTC
    assert driver.health() == Health("ok")


async def test_request_on_the_wire_is_fc04_registers_1_and_2(
    sensor: tuple[ModbusSensor, Recorder], sim: ModbusSensorSim
) -> None:
    """The bytes the driver puts on the pty are exactly the XY-MD02 read of T+RH."""
    _, rec = sensor
    await rec.reading()
    assert bytes(sim.received[:8]) == bytes.fromhex("01 04 00 01 00 02 20 0B")


def test_request_frame_from_pymodbus_framer() -> None:
    """Codec level: pymodbus's RTU framer encodes our request to the documented frame."""
    request = ReadInputRegistersRequest(address=0x0001, count=2, dev_id=1)
    frame = FramerRTU(DecodePDU(False)).buildFrame(request)
    assert frame == bytes.fromhex("01 04 00 01 00 02 20 0B")


async def test_negative_temperature_is_decoded_signed(
    sensor: tuple[ModbusSensor, Recorder], sim: ModbusSensorSim
) -> None:
    """0xFF33 is −20.5 °C (unheated hall in a northern winter), not 6533.1 °C."""
    _, rec = sensor
    await rec.reading()
    sim.set(-20.5, 54.6)
    reading = await rec.reading(lambda r: r.temperature != 23.5)
    assert reading.temperature == -20.5


async def test_out_of_range_is_degraded_without_reading(
    sensor: tuple[ModbusSensor, Recorder], sim: ModbusSensorSim
) -> None:
    """A ×100 clone (2350 for 23.5 °C) degrades health and never becomes a reading."""
    driver, rec = sensor
    await rec.reading()
    sim.set(23.5, 54.6, scale=100)
    health = await rec.health("degraded", "temperature 235")
    assert isinstance(driver.last_error, OutOfRange)
    assert driver.tracker.counters.bad_frames >= 1
    async with asyncio.timeout(WAIT):
        await sim.wait_for_requests(sim.requests + 3)  # several more ×100 replies
    late = [rec.readings.get_nowait() for _ in range(rec.readings.qsize())]
    assert all(r.temperature == 23.5 for r in late), late  # only readings from before set()
    assert driver.health() == health  # degraded, not offline: the sensor does answer
    sim.set(23.5, 54.6)
    await rec.health("ok")


async def test_unplug_goes_offline_and_replug_recovers(
    sensor: tuple[ModbusSensor, Recorder], sim: ModbusSensorSim
) -> None:
    """Pulling the adapter makes the sensor offline; plugging it back resumes readings by itself."""
    driver, rec = sensor
    await rec.reading()
    sim.unplug()
    await rec.health("offline")
    await rec.health("offline", "cannot open")  # the path is gone, reopening fails
    sim.set(19.0, 40.0)
    sim.plug()
    reading = await rec.reading(lambda r: r.temperature == 19.0)
    assert reading.humidity == 40.0
    assert driver.health() == Health("ok")
    assert driver.tracker.counters.reconnects >= 1


async def test_silent_sensor_is_offline_after_three_timeouts(
    sensor: tuple[ModbusSensor, Recorder], sim: ModbusSensorSim
) -> None:
    """A sensor that stops answering on a live bus: timeouts counted, offline at the third."""
    driver, rec = sensor
    await rec.reading()
    sim.silent = True
    await rec.health("offline", "no reply to 3 polls in a row")
    assert driver.tracker.counters.timeouts >= 3
    sim.silent = False
    await rec.health("ok")
    await rec.reading()


async def test_stale_readings_degrade_before_offline(sim: ModbusSensorSim) -> None:
    """With stale_after, a sensor gone quiet is degraded as soon as its data is too old."""
    rec = Recorder()
    driver = ModbusSensor(
        "sensor-test",
        sim.path,
        on_reading=rec.readings.put_nowait,
        on_health=rec.healths.put_nowait,
        interval=0.05,
        timeout=0.2,
        retries=0,
        stale_after=0.1,
        backoff=Backoff(initial=0.05, maximum=0.2),
    )
    task = asyncio.create_task(driver.run())
    try:
        await rec.reading()
        sim.silent = True  # each silent poll takes the 0.2 s timeout, longer than stale_after
        await rec.health("degraded", "no valid reading for 0.1 s")
        await rec.health("offline", "no reply")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
