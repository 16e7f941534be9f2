"""Climate zones: sensor readings in, each zone's state out.

The zones are a bus subscriber to :class:`~hallctl.events.SensorState` (the service
owns the readings) and the owner of their own state: mode and target come from
the config and from ``climate.set`` commands (kept across restarts through a
:class:`SetpointStore`, the store's typed methods); current temperature and humidity are
the mean of the zone's fresh sensors; the action follows from those. Out-of-band
temperatures raise one alert until the zone is back in band.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from hallctl import events as ev
from hallctl.bus import Bus, Subscription
from hallctl.config import ClimateZoneConfig, Config
from hallctl.errors import NotFound, Refused

log = logging.getLogger(__name__)

CLIMATE_MODES = ("auto", "off", "cool", "heat", "dry", "fan_only")


def climate_action(
    mode: str, target: float, current: float | None, humidity: float | None, humidity_high: float
) -> str:
    """What the air conditioning of a zone should be doing now (pure)."""
    if mode == "off":
        return "off"
    if current is None:
        return "idle"
    if mode == "fan_only":
        return "fan"
    if mode == "dry" or (mode == "auto" and humidity is not None and humidity > humidity_high):
        return "drying"
    if mode in ("cool", "auto") and current > target + 0.5:
        return "cooling"
    if mode in ("heat", "auto") and current < target - 0.5:
        return "heating"
    return "idle"


class SetpointStore(Protocol):
    """Where a zone's run-time mode and target are kept (the Store has these typed methods)."""

    async def climate_setpoints(self) -> dict[str, tuple[str, float]]: ...

    async def save_climate_setpoint(self, zone: str, mode: str, target: float, at: datetime) -> None: ...


class ClimateZones:
    """The climate component: one state per configured zone."""

    name = "climate"

    def __init__(
        self, cfg: Config, bus: Bus, clock: Callable[[], datetime], setpoints: SetpointStore | None = None
    ) -> None:
        self.cfg = cfg
        self.setpoints = setpoints
        self.bus = bus
        self.clock = clock
        self._zones: dict[str, ClimateZoneConfig] = {z.id: z for z in cfg.climate_zone}
        self._readings: dict[str, ev.SensorState] = {}
        self._out_of_band: set[str] = set()
        self._sub: Subscription | None = None
        now = clock()
        self.states: dict[str, ev.ClimateState] = {
            z.id: ev.ClimateState(
                at=now,
                zone=z.id,
                mode=z.mode,
                target=z.target,
                current=None,
                humidity=None,
                action="idle" if z.mode != "off" else "off",
            )
            for z in cfg.climate_zone
        }

    async def start(self) -> None:
        if self.setpoints is not None and self._zones:
            for zone_id, (mode, target) in (await self.setpoints.climate_setpoints()).items():
                z = self._zones.get(zone_id)
                if z is None:
                    continue  # a zone no longer in the config
                if mode not in CLIMATE_MODES or not (z.min_temp <= target <= z.max_temp):
                    log.warning(
                        "climate zone %s: stored setpoint %s/%s no longer valid; using the config", z.id, mode, target
                    )
                    continue
                prev = self.states[zone_id]
                self.states[zone_id] = dataclasses.replace(
                    prev, mode=mode, target=target, action="idle" if mode != "off" else "off"
                )
        if self._zones:
            self._sub = self.bus.subscribe("climate", self._on_sensor, (ev.SensorState,))
        for state in self.states.values():
            self.bus.publish(state)

    async def stop(self) -> None:
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await self.bus.unsubscribe(sub)

    def snapshot(self) -> list[ev.ClimateState]:
        return list(self.states.values())

    def _on_sensor(self, event: ev.Event) -> None:
        if not isinstance(event, ev.SensorState):
            return
        self._readings[event.sensor] = event
        for z in self._zones.values():
            if event.sensor in z.sensors:
                self._update(z)

    def _update(self, z: ClimateZoneConfig) -> None:
        fresh = [r for s in z.sensors if (r := self._readings.get(s)) is not None and not r.stale]
        temps = [r.temperature for r in fresh if r.temperature is not None]
        hums = [r.humidity for r in fresh if r.humidity is not None]
        current = round(statistics.fmean(temps), 1) if temps else None
        humidity = round(statistics.fmean(hums), 1) if hums else None
        prev = self.states[z.id]
        action = climate_action(prev.mode, prev.target, current, humidity, z.humidity_high)
        state = dataclasses.replace(prev, at=self.clock(), current=current, humidity=humidity, action=action)
        self.states[z.id] = state
        self.bus.publish(state)
        if current is not None and not (z.comfort_low <= current <= z.comfort_high):
            if z.id not in self._out_of_band:
                self._out_of_band.add(z.id)
                self.bus.publish(
                    ev.Alert(
                        at=self.clock(),
                        alert="climate_out_of_band",
                        severity="warning",
                        message=f"{z.name or z.id}温度{current}°C超出舒适范围",
                        subject=z.id,
                        data={"temperature": current, "humidity": humidity},
                    )
                )
        else:
            self._out_of_band.discard(z.id)

    async def set(self, zone_id: str, mode: str | None, target: float | None) -> ev.ClimateState:
        """``climate.set``: change a zone's mode and/or target, stored first, then published."""
        z = self._zones.get(zone_id)
        if z is None:
            raise NotFound("unknown_zone", f"no climate zone {zone_id}")
        if mode is not None and mode not in CLIMATE_MODES:
            raise Refused("bad_mode", f"unknown mode {mode!r}")
        if target is not None and not (z.min_temp <= target <= z.max_temp):
            raise Refused("bad_target", f"target must be within {z.min_temp}..{z.max_temp}")
        prev = self.states[zone_id]
        new_mode, new_target = mode or prev.mode, target if target is not None else prev.target
        if self.setpoints is not None:
            await self.setpoints.save_climate_setpoint(zone_id, new_mode, new_target, self.clock())
        self.states[zone_id] = dataclasses.replace(prev, at=self.clock(), mode=new_mode, target=new_target)
        self._update(z)
        return self.states[zone_id]
