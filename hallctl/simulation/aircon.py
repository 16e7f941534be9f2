"""Simulated air conditioners for ``[[climate_unit]] simulate = true``, and their coupling to the rooms.

Each simulated unit gets the simulator of its kind speaking the real protocol: a Modbus gateway
(one per port + slave address, shared by its indoor units; RTU behind a pseudo-terminal under
``<state_dir>/dev/``, or Modbus TCP on loopback when the configured port is ``tcp://``), a
BACnet/IP device on loopback, or an MQTT device (zigbee2mqtt or Home Assistant style) on the
hall's own broker once the MQTT component knows it. Where each one listens goes into
``ctx.climate_unit_ports``, where the climate drivers find it, exactly like ``ctx.device_ports``
for the other simulated devices; so the real drivers run against them.

The room model couples to them through :class:`UnitLoad` (an :class:`drivers.sim.room.AcLoad`):
what the simulator holds (power, mode, setpoint, fan, as the driver wrote it) commands a
:class:`drivers.sim.room.PackagedUnit` sized from the unit's ``rated_cooling_kw`` /
``rated_heating_kw``, whose heat goes into the room; the room's air temperature goes back into
the simulator as the unit's return-air reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any

from drivers.ac_mqtt import HaClimateTopics
from drivers.ac_profile import load_profile
from drivers.aircon import AcState
from drivers.sim.ac_bacnet import BacnetAcSim
from drivers.sim.ac_modbus import ModbusAcSim
from drivers.sim.ac_mqtt import MqttAcSim
from drivers.sim.room import PackagedUnit
from hallctl.climate.drivers import bacnet_points
from hallctl.config import BacnetUnitConfig, ClimateUnitConfig, ModbusUnitConfig, MqttUnitConfig
from hallctl.context import HallContext
from hallctl.tasks import cancel_and_wait

log = logging.getLogger(__name__)

COP_COOLING = 3.3  # PackagedUnit's rated COPs: rated electrical input x COP = capacity
COP_HEATING = 3.6
MQTT_BROKER_WAIT_S = 30.0


class UnitLoad:
    """One simulated unit as the room sees it: its simulator's state drives a packaged unit."""

    def __init__(
        self,
        state: Callable[[], AcState | None],
        set_room: Callable[[float], None],
        rated_cooling_kw: float,
        rated_heating_kw: float,
        set_running: Callable[[bool], None] | None = None,
    ) -> None:
        self.state = state
        self.set_room = set_room
        self.set_running = set_running
        base = PackagedUnit()
        self.unit = PackagedUnit(
            cooling_capacity_w=rated_cooling_kw * 1000 * COP_COOLING if rated_cooling_kw else base.cooling_capacity_w,
            heating_capacity_w=rated_heating_kw * 1000 * COP_HEATING if rated_heating_kw else base.heating_capacity_w,
        )

    def heat_w(self, room_temp: float, outdoor_temp: float, dt_s: float) -> float:
        s = self.state()
        if s is None:
            self.unit.command(False)
        else:
            self.unit.command(s.power, s.mode, s.setpoint, s.fan)
        heat = self.unit.heat_w(room_temp, outdoor_temp, dt_s)
        if self.set_running is not None:  # the compressor's real state, for a gateway that reports it
            self.set_running(self.unit.running)
        return heat

    def latent_w(self, room_temp: float, room_rh: float) -> float:
        return self.unit.latent_w(room_temp, room_rh)


class ZoneLoad:
    """All the simulated units of one zone, summed (an :class:`drivers.sim.room.AcLoad`)."""

    def __init__(self, loads: list[UnitLoad]) -> None:
        self.loads = loads

    def heat_w(self, room_temp: float, outdoor_temp: float, dt_s: float) -> float:
        return sum(u.heat_w(room_temp, outdoor_temp, dt_s) for u in self.loads)

    def latent_w(self, room_temp: float, room_rh: float) -> float:
        return sum(u.latent_w(room_temp, room_rh) for u in self.loads)

    def sync_room(self, room_temp: float) -> None:
        """The room's air temperature into each simulator's return-air reading (once per room step)."""
        for u in self.loads:
            u.set_room(round(room_temp, 1))


class SimulatedAirCon:
    """The simulators of the hall's simulated air-conditioning units."""

    def __init__(self, ctx: HallContext) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg
        self.dev_dir = ctx.state_dir / "dev"
        self.gateways: dict[tuple[str, int], ModbusAcSim] = {}
        self.sims: dict[str, Any] = {}  # unit id -> its simulator (a gateway is listed for each of its units)
        self.index: dict[str, int] = {}  # modbus unit id -> its index on the gateway
        self.loads: dict[str, UnitLoad] = {}
        self._mqtt: list[tuple[MqttUnitConfig, MqttAcSim | None]] = []
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def unit_state(self, unit_id: str) -> AcState | None:
        """What the simulated unit holds now (None before its simulator runs)."""
        sim = self.sims.get(unit_id)
        if sim is None:
            return None
        if isinstance(sim, ModbusAcSim):
            state: AcState = sim.unit_state(self.index[unit_id])
            return state
        if isinstance(sim, MqttAcSim | BacnetAcSim):
            return sim.unit_state()
        return None

    async def start(self) -> None:
        units = [u for u in self.cfg.climate_unit if u.simulate]
        for u in units:
            try:
                await self._start(u)
            except (OSError, RuntimeError, ValueError) as exc:
                log.error("simulator for climate unit %s (%s) could not start: %s", u.id, u.kind, exc)
                continue
            self.loads[u.id] = UnitLoad(
                functools.partial(self.unit_state, u.id),
                functools.partial(self._set_room, u.id),
                u.rated_cooling_kw,
                u.rated_heating_kw,
                functools.partial(self._set_running, u.id),
            )
        if self._mqtt:
            self._task = asyncio.create_task(self._start_mqtt(), name="simulation.aircon.mqtt")

    async def _start(self, u: ClimateUnitConfig) -> None:
        if isinstance(u, ModbusUnitConfig):
            port = u.port or f"ac-gateway-{u.address}"
            key = (port, u.address)
            sim = self.gateways.get(key)
            if sim is None:
                indices = tuple(
                    sorted(
                        {
                            x.indoor_unit
                            for x in self.cfg.climate_unit
                            if isinstance(x, ModbusUnitConfig)
                            and x.simulate
                            and (x.port or f"ac-gateway-{x.address}", x.address) == key
                        }
                    )
                )
                sim = ModbusAcSim(load_profile(u.profile), units=indices, device_id=u.address)
                if port.startswith("tcp://"):
                    await sim.start_tcp()
                else:
                    await sim.start_rtu(str(self.dev_dir / f"ac-{port.rsplit('/', 1)[-1]}-{u.address}"))
                self.gateways[key] = sim
            self.sims[u.id] = sim
            self.index[u.id] = u.indoor_unit
            self.ctx.climate_unit_ports[u.id] = sim.url
        elif isinstance(u, BacnetUnitConfig):
            bsim = BacnetAcSim(bacnet_points(u.points), device_instance=u.device_instance)
            self.sims[u.id] = bsim
            self.ctx.climate_unit_ports[u.id] = bsim.address
        elif isinstance(u, MqttUnitConfig):
            self._mqtt.append((u, None))  # a client of the hall's broker: started once the broker is known

    async def _start_mqtt(self) -> None:
        try:
            async with asyncio.timeout(MQTT_BROKER_WAIT_S):
                await self.ctx.mqtt_broker_known.wait()
        except TimeoutError:
            log.error("simulated MQTT air conditioners: the hall's broker never came up")
            return
        assert self.ctx.mqtt_broker is not None
        host, port = self.ctx.mqtt_broker
        for u, _ in self._mqtt:
            if u.style == "zigbee2mqtt":
                base, _, name = u.state_topic.rpartition("/")
                sim = MqttAcSim(host, port, kind="z2m", friendly_name=name, base_topic=base)
            else:
                c, s = u.command_topic, u.state_topic
                topics = HaClimateTopics(
                    f"{c}/mode",
                    f"{c}/temperature",
                    f"{s}/mode",
                    f"{s}/temperature",
                    f"{c}/fan_mode",
                    f"{s}/fan_mode",
                    f"{s}/current_temperature",
                    availability_topic=u.availability_topic,
                )
                sim = MqttAcSim(host, port, kind="ha", ha_topics=topics)
            try:
                await sim.start()
            except (OSError, TimeoutError) as exc:
                log.error("simulator for climate unit %s could not connect to the broker: %s", u.id, exc)
                continue
            self.sims[u.id] = sim

    def _set_room(self, unit_id: str, celsius: float) -> None:
        sim = self.sims.get(unit_id)
        if isinstance(sim, ModbusAcSim):
            sim.set_room_temperature(celsius, self.index[unit_id])
        elif isinstance(sim, BacnetAcSim):
            sim.set_room_temperature(celsius)
        elif isinstance(sim, MqttAcSim) and sim.unit_state().room_temperature != celsius:
            # A state message only when the reading moved by a tenth (what a real device does).
            task = asyncio.get_running_loop().create_task(self._publish_room(sim, celsius))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def _set_running(self, unit_id: str, running: bool) -> None:
        sim = self.sims.get(unit_id)
        if isinstance(sim, ModbusAcSim):
            sim.set_running(running, self.index[unit_id])

    @staticmethod
    async def _publish_room(sim: MqttAcSim, celsius: float) -> None:
        with contextlib.suppress(Exception):  # the broker going away at stop: the next step tries again
            await sim.set_room_temperature(celsius)

    def zone_load(self, zone: str) -> ZoneLoad | None:
        loads = [self.loads[u.id] for u in self.cfg.climate_unit if u.zone == zone and u.id in self.loads]
        return ZoneLoad(loads) if loads else None

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        done: set[int] = set()
        for sim in self.sims.values():
            if id(sim) in done:
                continue
            done.add(id(sim))
            if isinstance(sim, BacnetAcSim):
                sim.close()
            else:
                await sim.stop()
        self.sims.clear()
        self.gateways.clear()
