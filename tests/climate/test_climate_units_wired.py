"""The demo-like hall with simulated air conditioners: the controller's commands over the real transports.

A hall in this process with two floors: floor 1's unit behind a simulated Daikin DTA116A51 Modbus
gateway (RTU over a pty, the real :mod:`drivers.ac_modbus` driver), floor 2's a zigbee2mqtt AC
controller on the hall's own embedded Mosquitto (the real :mod:`drivers.ac_mqtt` driver fed by the
daemon's MQTT component). The simulated rooms (:mod:`hallctl.simulation.climate`) are cooled by
what the simulators hold, and their temperature reaches the controller through the simulated
Modbus sensors and the real sensor driver.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from drivers.aircon import AcState
from drivers.sim.ac_bacnet import BacnetAcSim
from drivers.sim.ac_modbus import ModbusAcSim
from drivers.sim.ac_mqtt import MqttAcSim
from hallctl import events as ev
from hallctl.daemon import Hall
from hallctl.simulation.devices import SimulatedDevices
from tests.core.core_helpers import T0, FakeClock, make_config

HallMaker = Callable[..., Awaitable[Hall]]

SENSORS: dict[str, Any] = {
    "device": [
        {"id": "th1", "kind": "modbus_sensor", "simulate": True, "options": {"interval": 0.5}},
        {"id": "th2", "kind": "modbus_sensor", "simulate": True, "options": {"interval": 0.5}},
    ],
    "sensor": [
        {"id": "f1", "source": "modbus", "device": "th1"},
        {"id": "f2", "floor": 2, "source": "modbus", "device": "th2"},
    ],
}
UNITS: list[dict[str, Any]] = [
    {
        "id": "ac1",
        "zone": "f1",
        "kind": "modbus",
        "simulate": True,
        "profile": "daikin_dta116a51",
        "rated_cooling_kw": 18.6,
        "rated_heating_kw": 19.2,
    },
    {
        "id": "ac2",
        "zone": "f2",
        "kind": "mqtt",
        "simulate": True,
        "state_topic": "zigbee2mqtt/ac_f2",
        "command_topic": "zigbee2mqtt/ac_f2/set",
        "rated_cooling_kw": 18.6,
        "rated_heating_kw": 19.2,
    },
]
# Fast: a tick a second, no compressor guards (the controller's own tests cover them), a short ack bound.
RULES = {"tick_s": 1, "min_on_s": 0, "min_off_s": 0, "ack_timeout_s": 3, "cool_min_setpoint": 20.0}


@pytest.fixture
async def halls(tmp_path: Path) -> AsyncIterator[HallMaker]:
    started: list[Hall] = []

    async def make(**over: Any) -> Hall:
        n = len(started)
        cfg = make_config(store={"path": str(tmp_path / f"hall{n}.db")}, **{**SENSORS, **over})
        hall = Hall(cfg, clock=FakeClock(), state_dir=tmp_path / f"state{n}")
        started.append(hall)
        await hall.start()
        return hall

    yield make
    for hall in reversed(started):
        await hall.stop()


async def until(fn: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``fn`` (bounded in time) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        await asyncio.sleep(0.1)  # a poll of observable state, bounded by the deadline
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


def simulation(hall: Hall) -> SimulatedDevices:
    part = hall.part("simulation")
    assert isinstance(part, SimulatedDevices)
    return part


def zones(**targets: float) -> list[dict[str, Any]]:
    return [
        # An empty floor drifts to its band's edge: the band's top is the target here.
        {"id": z, "sensors": [z], "mode": "cool", "target": t, "comfort_low": t - 4.0, "comfort_high": t}
        for z, t in targets.items()
    ]


async def test_a_command_lands_on_the_modbus_and_the_mqtt_simulator_and_is_read_back(halls: HallMaker) -> None:
    # The simulated sensors start at about 24.5 °C: a 21 °C target cools both floors at once.
    hall = await halls(climate_zone=zones(f1=21.0, f2=22.0), climate_unit=UNITS, climate=RULES)
    air = simulation(hall).aircon
    gateway, mqtt = air.sims["ac1"], await until(lambda: air.sims.get("ac2"), 10, "the MQTT simulator")
    assert isinstance(gateway, ModbusAcSim) and isinstance(mqtt, MqttAcSim)

    def landed(state: AcState | None, setpoint: float) -> bool:
        return state is not None and state.power and state.mode == "cool" and state.setpoint == setpoint

    want = {}
    for zone in ("f1", "f2"):
        d = await until(functools.partial(hall.climate.decision, zone), 10, "a decision")
        assert d.action == "cooling" and d.command.power, d
        want[zone] = d.command.setpoint
    await until(lambda: landed(gateway.unit_state(0), want["f1"]), 15, "the Modbus gateway's unit cooling")
    await until(lambda: landed(mqtt.unit_state(), want["f2"]), 15, "the MQTT unit cooling")
    # What the climate component holds is the driver's read-back, not the command echoed.
    await until(lambda: landed(hall.climate.unit_states("f1").get("ac1"), want["f1"]), 10, "ac1 read back")
    await until(lambda: landed(hall.climate.unit_states("f2").get("ac2"), want["f2"]), 10, "ac2 read back")
    assert gateway.units[0].commands >= 1 and mqtt.commands >= 1
    # Each unit's health is the hall's device health, like any device's.
    await until(lambda: hall.service.devices.get("ac1") and hall.service.devices["ac1"].state == "ok", 5, "ac1 ok")
    await until(lambda: hall.service.devices.get("ac2") and hall.service.devices["ac2"].state == "ok", 5, "ac2 ok")
    assert hall.service.devices["ac1-gateway"].state == "ok"


async def test_hot_weather_warms_the_room_then_the_zone_cools_it_through_the_simulated_unit(
    halls: HallMaker,
) -> None:
    hall = await halls(
        climate_zone=zones(f1=26.0),
        climate_unit=UNITS[:1],
        climate={**RULES, "cool_min_setpoint": 26.0},
    )
    sim = simulation(hall)
    gateway = sim.aircon.sims["ac1"]
    assert isinstance(gateway, ModbusAcSim)

    def current() -> float | None:
        return hall.climate.states["f1"].current

    start = await until(current, 10, "a first reading")
    assert start < 26.0, "the room starts in band (the sensor simulator's 24.5 °C)"
    sim.climate.set_weather(None, 35.0, 900.0)  # `hallctl simulate weather 35 --speed 900`
    peak = 0.0

    def cooling() -> bool:
        nonlocal peak
        peak = max(peak, current() or 0.0)
        return hall.climate.states["f1"].action == "cooling" and gateway.unit_state(0).power

    await until(cooling, 40, "the zone cooling through the gateway")
    assert peak >= 26.0, f"the room warmed first (peak {peak})"
    # The unit's heat is what lowers the room: it falls back below the target's upper edge.
    await until(lambda: (t := current()) is not None and t < peak - 0.3 and t <= 26.5, 40, "the room cooled down")
    assert gateway.unit_state(0).room_temperature == pytest.approx(sim.climate.rooms["f1"].t_air, abs=0.6)


async def test_a_unit_whose_simulator_goes_silent_raises_no_ack_within_the_configured_time(halls: HallMaker) -> None:
    hall = await halls(climate_zone=zones(f1=21.0), climate_unit=UNITS[:1], climate=RULES)
    alerts: list[tuple[float, ev.Alert]] = []

    def on_alert(e: ev.Event) -> None:
        if isinstance(e, ev.Alert):
            alerts.append((time.monotonic(), e))

    sub = hall.bus.subscribe("test.alerts", on_alert, (ev.Alert,))
    gateway = simulation(hall).aircon.sims["ac1"]
    assert isinstance(gateway, ModbusAcSim)
    await until(lambda: hall.climate.unit_states("f1").get("ac1"), 15, "a first read-back")
    assert not [a for _, a in alerts if a.alert.startswith("climate_unit")]
    gateway.set_silent(True)
    silenced = time.monotonic()
    # ack_timeout_s (3 s) after the next tick (1 s), with room for a loaded machine.
    _, alert = await until(
        lambda: next(((t, a) for t, a in alerts if a.alert == "climate_unit_no_ack"), None), 12, "no-ack alert"
    )
    assert alert.subject == "ac1" and alert.data["zone"] == "f1"
    await hall.bus.unsubscribe(sub)
    assert time.monotonic() - silenced < 12


async def kwh_and_cooling(hall: Hall) -> tuple[float, float]:
    """Today's kWh and cooling seconds of zone f1 so far (copied: the meter's totals are live)."""
    (zd,) = await hall.energy.totals(hall.energy.today())
    return zd.kwh, zd.run_s["cool"]


async def test_energy_counts_what_the_unit_reads_back_not_what_the_zone_asked(halls: HallMaker) -> None:
    hall = await halls(climate_zone=zones(f1=21.0), climate_unit=UNITS[:1], climate=RULES)
    clock = hall.service.clock
    assert isinstance(clock, FakeClock)
    gateway = simulation(hall).aircon.sims["ac1"]
    assert isinstance(gateway, ModbusAcSim)
    # A central remote holds the unit off: it ignores hallctl's writes (the zone still asks to cool).
    gateway.units[0].locked = True
    gateway.command(0, power=False)

    def held_off() -> bool:
        st = hall.climate.unit_states("f1").get("ac1")
        return st is not None and not st.power and hall.climate.states["f1"].action == "cooling"

    await until(held_off, 15, "the zone cooling while its unit reads back off")
    before = await kwh_and_cooling(hall)
    clock.advance(minutes=10)  # within the ledger's gap limit (15 min)
    assert await kwh_and_cooling(hall) == before, "an off unit uses nothing"
    # Released, it takes the command; then its 18.6 kW count while the room model's compressor runs
    # (the gateway's thermo bit; no part load reported: full load).
    gateway.units[0].locked = False

    def on() -> bool:
        st = hall.climate.unit_states("f1").get("ac1")
        return st is not None and st.power and st.mode == "cool" and st.running is True

    await until(on, 15, "the unit cooling once released")
    kwh, cooling_s = await kwh_and_cooling(hall)
    clock.advance(minutes=10)
    kwh_after, cooling_after = await kwh_and_cooling(hall)
    assert kwh_after - kwh == pytest.approx(18.6 / 6, rel=0.01) and cooling_after - cooling_s == 600


async def test_a_command_lands_on_the_bacnet_simulator_at_the_configured_priority(halls: HallMaker) -> None:
    unit = {"id": "bms1", "zone": "f1", "kind": "bacnet", "simulate": True, "device_instance": 1001, "priority": 9}
    hall = await halls(climate_zone=zones(f1=21.0), climate_unit=[unit], climate=RULES)
    device = simulation(hall).aircon.sims["bms1"]
    assert isinstance(device, BacnetAcSim)
    d = await until(functools.partial(hall.climate.decision, "f1"), 10, "a decision")
    assert d.command.power

    def landed() -> bool:
        st = hall.climate.unit_states("f1").get("bms1")
        return st is not None and st.power and st.mode == "cool" and st.setpoint == d.command.setpoint

    await until(landed, 15, "the BMS points commanded and read back")
    assert device.unit_state().power and device.unit_state().setpoint == d.command.setpoint
    # hallctl's write sits in its own priority slot, where release will relinquish it.
    assert device.priority_slot("setpoint", 9) == d.command.setpoint


async def test_the_simulated_rooms_follow_the_hall_calendar(halls: HallMaker) -> None:
    """Lights and equipment (the rooms' internal gains) are off on a day the hall calendar closes.

    The rooms used the categories' weekly hours before, so a holiday lit the hall as any Monday.
    """
    day = T0.date().isoformat()
    closed = await halls(climate_zone=zones(f1=26.0), calendar={"statutory": False, "closed_days": [day]})
    working = await halls(climate_zone=zones(f1=26.0), calendar={"statutory": False})
    for hall, lit in ((closed, False), (working, True)):
        rooms = simulation(hall).climate
        rooms.step(1.0)
        assert rooms.rooms["f1"].open is lit, (hall.cfg.calendar, rooms.sim_time)


async def test_a_simulated_zigbee_sensor_reads_its_room_through_the_broker(halls: HallMaker) -> None:
    """A zigbee sensor with ``simulate = true`` publishes its zone's room as zigbee2mqtt would.

    Before, only Modbus sensor simulators were driven by the rooms; a zigbee sensor in a
    simulated hall never published, so its zone went stale.
    """
    zigbee = {"id": "z2", "floor": 2, "source": "zigbee", "friendly_name": "hall/floor2/th", "simulate": True}
    hall = await halls(
        sensor=[*SENSORS["sensor"], zigbee],
        climate_zone=[{"id": "f2", "floor": 2, "sensors": ["z2"], "mode": "off"}],
    )
    rooms = simulation(hall).climate
    assert "f2" in rooms.rooms, "a zone with only a simulated zigbee sensor gets a room"

    def reading() -> float | None:
        st = hall.service.sensors.get("z2")
        return None if st is None or st.stale else st.temperature

    first = await until(reading, 15, "the zigbee sensor's first reading through the broker")
    assert first == pytest.approx(rooms.rooms["f2"].t_air, abs=0.15)
    rooms.set_weather(None, 35.0, 900.0)  # the room warms with nothing cooling it
    await until(lambda: (t := reading()) is not None and t >= first + 0.5, 30, "the reading following the room")
    # The zone's controller sees it (it ticks on each new reading), and it keeps following the room.
    await until(lambda: hall.climate.states["f2"].current == reading(), 10, "the zone's fused temperature")
    await until(lambda: reading() == pytest.approx(rooms.rooms["f2"].t_air, abs=0.3), 10, "still the room")
