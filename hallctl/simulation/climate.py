"""Simulated rooms behind the simulated sensors: the demo's floors warm, cool and fill with people.

Each climate zone gets a :class:`drivers.sim.room.Room`; a loop steps the rooms with the
simulated clock (``speed`` simulated seconds per real second, set with
``hallctl simulate weather ... --speed N``) and writes each room's air temperature and humidity
into the zone's simulated Modbus sensors, so the real driver reads the room through the real
protocol; a zigbee sensor with ``simulate = true`` (in the zone, or on its floor) is published on
the hall's broker as zigbee2mqtt would (:class:`drivers.sim.zigbee.ZigbeeSensorSim`), so the real
zigbee component reads it. People come from the queue (waiting tickets shared among the floors whose windows
serve their category, plus one person at each busy window and staff at each open one);
lighting and equipment follow the hall's opening hours on its calendar (the queue's: a statutory
holiday or a ``[calendar] closed_days`` day stays dark) at the simulated time.

The air conditioning side: a zone with simulated ``[[climate_unit]]`` s is cooled and heated by
them (:class:`hallctl.simulation.aircon.ZoneLoad`: what the driver wrote into each unit's
simulator drives the room, and the room's temperature goes back into the simulator), so the
controller's commands move the room through the real protocols. A zone without simulated units
keeps a built-in :class:`drivers.sim.room.PackagedUnit` commanded from the zone's published
:class:`~hallctl.events.ClimateState` (its mode and target), so ``climate.set`` still moves it.

A sensor someone set by hand (``hallctl simulate climate``, a test calling the simulator's
``set``) is left alone until the weather is set again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import Any

import aiomqtt

from drivers.sim.modbus_sensor import ModbusSensorSim
from drivers.sim.room import SUMMER_SHANGHAI, WINTER_SHANGHAI, AcLoad, PackagedUnit, Room, Weather
from drivers.sim.zigbee import ZigbeeSensorSim
from hallctl import events as ev
from hallctl.bus import Subscription
from hallctl.config import ClimateZoneConfig, SensorConfig
from hallctl.context import HallContext
from hallctl.engine import calendar
from hallctl.errors import Refused
from hallctl.simulation.aircon import SimulatedAirCon, ZoneLoad
from hallctl.tasks import cancel_and_wait

log = logging.getLogger(__name__)

WEATHERS = {"summer": SUMMER_SHANGHAI, "winter": WINTER_SHANGHAI}
TICK_S = 1.0  # real seconds between room steps and sensor updates
MAX_SPEED = 3600.0
MQTT_BROKER_WAIT_S = 30.0
START_TEMPERATURE = (24.5, 48.0)  # a zone with only zigbee sensors: the room starts here


def season_weather(now: datetime) -> Weather:
    """The weather of the season the hall is in (May–September: summer; otherwise winter)."""
    return SUMMER_SHANGHAI if 5 <= now.month <= 9 else WINTER_SHANGHAI


class SimulatedClimate:
    """The rooms of the hall's zones and the loop that steps them."""

    def __init__(self, ctx: HallContext, sims: dict[str, Any], aircon: SimulatedAirCon | None = None) -> None:
        self.ctx = ctx
        self.aircon = aircon
        self.loads: dict[str, ZoneLoad] = {}  # zone -> its simulated units, where it has some
        self.cfg = ctx.cfg
        self.sims = sims
        self.speed = 1.0
        now = ctx.service.clock().astimezone(self.cfg.hall.tz)
        self.sim_time = now
        self.weather = season_weather(now)
        self.rooms: dict[str, Room] = {}
        self.units: dict[str, PackagedUnit] = {}
        self._written: dict[str, tuple[float, float]] = {}  # device -> what the room last wrote
        self._pinned: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._sub: Subscription | None = None
        self.zigbee: dict[str, ZigbeeSensorSim] = {}  # simulated zigbee sensor id -> its publisher, once connected
        self._zigbee_zone: dict[str, str] = {}  # simulated zigbee sensor id -> the zone whose room it reads
        self._zigbee_task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[bool]] = set()

    def zone_devices(self, z: ClimateZoneConfig) -> list[str]:
        """The simulated Modbus sensor devices of a zone's sensors."""
        out = []
        for sid in z.sensors:
            s = next((s for s in self.cfg.sensor if s.id == sid), None)
            if s is not None and s.device is not None and isinstance(self.sims.get(s.device), ModbusSensorSim):
                out.append(s.device)
        return out

    def zigbee_zone(self, s: SensorConfig) -> str | None:
        """The zone whose room a simulated zigbee sensor reads: the zone listing it, else one on its floor."""
        listed = next((z.id for z in self.cfg.climate_zone if s.id in z.sensors), None)
        return listed or next((z.id for z in self.cfg.climate_zone if z.floor == s.floor), None)

    def start(self) -> None:
        hour = self.sim_time.hour + self.sim_time.minute / 60.0
        for s in self.cfg.sensor:
            if s.simulate and s.source == "zigbee" and (zone_id := self.zigbee_zone(s)) is not None:
                self._zigbee_zone[s.id] = zone_id
        for z in self.cfg.climate_zone:
            devices = self.zone_devices(z)
            if not devices and z.id not in self._zigbee_zone.values():
                continue
            start_at = START_TEMPERATURE
            if devices:
                first: ModbusSensorSim = self.sims[devices[0]]
                start_at = (first.temperature, first.humidity)
            for device in devices:  # the values they start with count as written: a later change is by hand
                sim: ModbusSensorSim = self.sims[device]
                self._written[device] = (sim.temperature, sim.humidity)
            load = self.aircon.zone_load(z.id) if self.aircon is not None else None
            ac: AcLoad
            if load is not None:
                self.loads[z.id] = ac = load
            else:
                ac = self.units[z.id] = PackagedUnit()
            self.rooms[z.id] = Room(weather=self.weather, hour=hour, t_air=start_at[0], rh=start_at[1], ac=ac)
            if load is not None:
                load.sync_room(start_at[0])
        if not self.rooms:
            return
        if self._zigbee_zone:
            self._zigbee_task = asyncio.create_task(self._start_zigbee(), name="simulation.climate.zigbee")
        for state in self.ctx.climate.snapshot():
            self._on_climate(state)
        self._sub = self.ctx.bus.subscribe("simulation.climate", self._on_climate, (ev.ClimateState,))
        self._task = asyncio.create_task(self._run(), name="simulation.climate")

    async def _start_zigbee(self) -> None:
        """Connect the simulated zigbee sensors once the hall's broker is known (the MQTT component starts later)."""
        try:
            async with asyncio.timeout(MQTT_BROKER_WAIT_S):
                await self.ctx.mqtt_broker_known.wait()
        except TimeoutError:
            log.error("simulated zigbee sensors: the hall's broker never came up")
            return
        assert self.ctx.mqtt_broker is not None
        host, port = self.ctx.mqtt_broker
        for sid in self._zigbee_zone:
            s = next(x for x in self.cfg.sensor if x.id == sid)
            assert s.friendly_name is not None  # the config requires it for a zigbee sensor
            sim = ZigbeeSensorSim(host, port, s.friendly_name, s.zigbee_base)
            try:
                await sim.start()
            except (OSError, TimeoutError, aiomqtt.MqttError) as exc:
                log.error("simulated zigbee sensor %s could not connect to the broker: %s", sid, exc)
                continue
            self.zigbee[sid] = sim
            room = self.rooms[self._zigbee_zone[sid]]
            await sim.report(room.t_air, room.rh)

    async def stop(self) -> None:
        await cancel_and_wait(self._zigbee_task)
        self._zigbee_task = None
        for task in list(self._pending):
            await cancel_and_wait(task)
        for sim in self.zigbee.values():
            await sim.stop()
        self.zigbee.clear()
        await cancel_and_wait(self._task)
        self._task = None
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await self.ctx.bus.unsubscribe(sub)

    def set_ac(self, zone: str, ac: AcLoad | None) -> None:
        """Put another unit (an actuator simulator) in a zone's room instead of the built-in one."""
        self.rooms[zone].ac = ac

    def _on_climate(self, event: ev.Event) -> None:
        if not isinstance(event, ev.ClimateState):
            return
        unit = self.units.get(event.zone)
        if unit is None:
            return
        mode = event.mode if event.mode in ("cool", "heat", "dry", "fan_only", "auto") else "cool"
        unit.command(event.mode != "off", mode, event.target)

    def set_weather(self, name: str | None, temperature: float | None, speed: float | None) -> dict[str, Any]:
        """``summer``/``winter`` (the design days) or a constant ``temperature``; optionally the clock's speed."""
        if name is not None:
            if name not in WEATHERS:
                raise Refused("unknown_weather", f"weather is one of {', '.join(WEATHERS)} or a temperature")
            self.weather = WEATHERS[name]
        if temperature is not None:
            self.weather = self.weather.at_temperature(temperature)
        if speed is not None:
            self.speed = speed
        for room in self.rooms.values():
            room.weather = self.weather
        self._pinned.clear()  # the rooms drive every sensor again
        self._written.clear()
        return self.status()

    def status(self) -> dict[str, Any]:
        return {
            "weather": self.weather.name,
            "outdoor": round(self.weather.temperature(self.sim_time.hour + self.sim_time.minute / 60.0), 1),
            "speed": self.speed,
            "sim_time": self.sim_time.isoformat(timespec="seconds"),
            "rooms": {
                z: {
                    "temperature": round(r.t_air, 2),
                    "humidity": round(r.rh, 1),
                    "people": r.people,
                    "ac_heat_w": round(r.ac_heat_w),
                }
                for z, r in self.rooms.items()
            },
            "units": self.unit_status(),
        }

    def unit_status(self) -> dict[str, dict[str, Any]]:
        """What each simulated air conditioner holds (as its driver wrote it) and what it draws."""
        air = self.aircon
        out: dict[str, dict[str, Any]] = {}
        if air is None:
            return out
        for uid, load in air.loads.items():
            st = air.unit_state(uid)
            if st is not None:
                out[uid] = {
                    "power": st.power,
                    "mode": st.mode,
                    "setpoint": st.setpoint,
                    "room_temperature": st.room_temperature,
                    "compressor": load.unit.running,
                    "electric_w": round(load.unit.electric_w),
                }
        return out

    def people_by_floor(self) -> dict[int, int]:
        """People in the hall per floor from the queue: waiting (shared by serving windows), served, staff."""
        svc = self.ctx.service
        people: dict[int, float] = {}
        for c in self.cfg.category:
            serving = [w for w in self.cfg.window if c.prefix in w.categories]
            if not serving:
                continue
            waiting = svc.queue_state(c.prefix).waiting
            for w in serving:
                people[w.floor] = people.get(w.floor, 0.0) + waiting / len(serving)
        for w in self.cfg.window:
            state = svc.window_state(w.number).state
            if state in ("called", "serving"):
                people[w.floor] = people.get(w.floor, 0.0) + 2  # the visitor and the clerk
            elif state != "closed":
                people[w.floor] = people.get(w.floor, 0.0) + 1
        return {f: round(n) for f, n in people.items()}

    def _open_at(self, t: datetime) -> bool:
        """Lights and equipment on: any category open on the hall calendar (holidays, 调休, ``[calendar]``)."""
        return any(calendar.is_open(self.cfg, c, t) for c in self.cfg.category)

    def step(self, sim_seconds: float) -> None:
        """Advance every room ``sim_seconds`` and write the sensors (the loop's body; tests call it too)."""
        self.sim_time += timedelta(seconds=sim_seconds)
        people = self.people_by_floor()
        open_now = self._open_at(self.sim_time)
        for z in self.cfg.climate_zone:
            room = self.rooms.get(z.id)
            if room is None:
                continue
            devices = self.zone_devices(z)
            floor = next((s.floor for s in self.cfg.sensor if s.id in z.sensors), 1)
            room.people = people.get(floor, 0)
            room.open = open_now
            room.step(sim_seconds)
            if (load := self.loads.get(z.id)) is not None:
                load.sync_room(room.t_air)
            for device in devices:
                sim: ModbusSensorSim = self.sims[device]
                written = self._written.get(device)
                if written is not None and (sim.temperature, sim.humidity) != written:
                    self._pinned.add(device)  # set by hand since: leave it
                if device in self._pinned:
                    continue
                value = (round(room.t_air, 1), round(room.rh, 1))
                sim.set(*value)
                self._written[device] = value
        for sid, zsim in self.zigbee.items():
            room = self.rooms[self._zigbee_zone[sid]]
            task = asyncio.get_running_loop().create_task(zsim.report(room.t_air, room.rh))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            self.step((now - last) * self.speed)
            last = now
