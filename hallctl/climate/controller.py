"""The climate controller: one zone's inputs in, the command for its air conditioning out.

:func:`decide` is pure, like the queue engine: no I/O, no clock (``now`` is an
input), no randomness, so it can be property-tested and replayed by the bench
(``bench/climate_day.py``) against a fixed-thermostat baseline. The component
(:mod:`hallctl.climate.zones`) gathers :class:`ZoneInputs` every tick, calls
:func:`decide`, sends :attr:`ZoneDecision.command` to each unit of the zone and keeps
:attr:`ZoneDecision.state` for the next tick. The rules are in docs/climate.md; in short:

* setpoints: cooling never below ``cool_min_setpoint`` (26 °C), heating never above
  ``heat_max_setpoint`` (20 °C); in ``auto`` the zone heats toward the lower and cools
  toward the higher, so it never heats toward a 26 °C target in winter;
* opening hours keep the zone in its comfort band (inset by the hysteresis), an empty
  floor drifts to the edge of the band, people raise the cooling load estimate;
  outside hours only the setback band is held, and pre-conditioning starts as many
  minutes before opening as the learned warm-up/cool-down rate says it needs;
* hysteresis, and minimum on and off times of the compressor (no short cycling: with
  the defaults at most 3600 / (420 + 480) = 4 starts an hour);
* fused temperature = median of the fresh readings; no fresh reading → hold a safe
  mode and raise ``climate_sensors_stale``;
* a manual override replaces mode/target until it expires.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from drivers.aircon import AcCommand, AcMode
from hallctl.config import ClimateConfig, ClimateMode, ClimateZoneConfig

__all__ = [
    "ALARM_SENSORS_STALE",
    "Action",
    "ClimateMode",
    "CompressorMode",
    "ControlState",
    "LearnedRates",
    "Occupancy",
    "OpeningState",
    "Override",
    "Reading",
    "ZoneDecision",
    "ZoneInputs",
    "decide",
    "fuse",
    "setpoints",
]

Action = Literal["cooling", "heating", "drying", "fan", "idle", "off"]
CompressorMode = Literal["cool", "heat", "dry"]

ALARM_SENSORS_STALE = "climate_sensors_stale"
LEARN_SKIP_S = 300.0  # the first minutes of a run move the coil, not the room: not measured
LEARN_MIN_S = 600.0  # a shorter run is too noisy to learn a rate from


@dataclasses.dataclass(frozen=True, slots=True)
class Reading:
    """One sensor's last reading (from ``SensorState``); ``stale`` is the service's verdict."""

    temperature: float | None
    humidity: float | None
    at: datetime
    stale: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class OpeningState:
    """The zone's opening hours at ``now`` (:func:`hallctl.climate.schedule.opening_state`)."""

    open_now: bool
    minutes_to_open: float | None  # 0 when open; None: no opening within the next 8 days
    minutes_to_close: float | None  # None when closed


@dataclasses.dataclass(frozen=True, slots=True)
class Occupancy:
    """People in the zone from the queue: waiting in its categories, being served on its floor."""

    waiting: int = 0
    serving: int = 0

    @property
    def people(self) -> int:
        return self.waiting + self.serving


@dataclasses.dataclass(frozen=True, slots=True)
class Override:
    """A manual mode/target for a while (``climate.set`` with ``minutes`` or ``until``)."""

    mode: ClimateMode
    target: float | None  # None: keep the zone's target
    until: datetime | None  # None: until cleared


@dataclasses.dataclass(frozen=True, slots=True)
class LearnedRates:
    """How fast the zone's air conditioning moves its temperature, °C per hour (learned, persisted)."""

    warmup_c_per_h: float
    cooldown_c_per_h: float
    warmup_samples: int = 0
    cooldown_samples: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class ControlState:
    """What the controller remembers between ticks (the component keeps it; not persisted).

    ``compressor_since`` None means unknown and lets the next change happen at once;
    the component starts every zone as "off since start-up" so a restart never
    short-cycles a compressor that was running a minute ago.
    """

    command: AcCommand | None = None
    command_since: datetime | None = None
    compressor: CompressorMode | None = None  # None: off (or fan only)
    compressor_since: datetime | None = None
    run_start_at: datetime | None = None  # the present run's learning sample
    run_start_temp: float | None = None
    run_sampled: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class ZoneInputs:
    """Everything :func:`decide` looks at."""

    zone: ClimateZoneConfig
    rules: ClimateConfig
    now: datetime
    readings: Mapping[str, Reading]  # sensor id → last reading (the zone's sensors only)
    opening: OpeningState
    occupancy: Occupancy
    mode: ClimateMode  # the zone's standing mode and target (config, or climate.set without expiry)
    target: float
    override: Override | None
    rates: LearnedRates
    previous: ControlState


@dataclasses.dataclass(frozen=True, slots=True)
class ZoneDecision:
    """What the zone's units should do now, and why."""

    command: AcCommand  # the same command for every unit of the zone
    action: Action
    reason: str
    alarms: tuple[str, ...]  # alarm codes (ALARM_SENSORS_STALE)
    state: ControlState  # give back as ``previous`` next tick
    rates: LearnedRates  # updated when a run was measured; persist when changed
    override: Override | None  # None when there was none or it expired (then clear it)
    mode: ClimateMode  # the effective mode (override's or standing)
    setpoint: float | None  # the setpoint commanded, None when the units are off
    temperature: float | None  # fused (median of fresh readings)
    humidity: float | None


def fuse(readings: Mapping[str, Reading], now: datetime, max_age_s: float) -> tuple[float | None, float | None]:
    """Median temperature and humidity of the fresh readings (stale or too old ones excluded)."""
    fresh = [r for r in readings.values() if not r.stale and 0 <= (now - r.at).total_seconds() <= max_age_s]
    temps = [r.temperature for r in fresh if r.temperature is not None]
    hums = [r.humidity for r in fresh if r.humidity is not None]
    return (
        float(statistics.median(temps)) if temps else None,
        float(statistics.median(hums)) if hums else None,
    )


def _ceil_half(v: float) -> float:
    return math.ceil(v * 2 - 1e-9) / 2


def _floor_half(v: float) -> float:
    return math.floor(v * 2 + 1e-9) / 2


def setpoints(target: float, zone: ClimateZoneConfig, rules: ClimateConfig, *, empty: bool) -> tuple[float, float]:
    """(cooling, heating) setpoints for an occupied zone, limits applied, in 0.5 °C steps.

    Cooling aims at the target but no lower than the limit, heating at the target
    but no higher than its limit, both inset by twice the hysteresis from the comfort
    band: a unit switched on at setpoint ± hysteresis still has one hysteresis of room
    for the drift while its minimum off time runs out. An empty
    floor aims at the band's edges instead (it saves energy, nobody is there).
    """
    inset = 2 * rules.hysteresis  # switched on at setpoint ± h, and h left for the minimum off time's drift
    cool_goal = zone.comfort_high - inset if empty else min(target, zone.comfort_high - inset)
    heat_goal = zone.comfort_low + inset if empty else max(target, zone.comfort_low + inset)
    cool = _ceil_half(max(rules.cool_min_setpoint, cool_goal))
    heat = _floor_half(min(rules.heat_max_setpoint, heat_goal))
    return cool, heat


def _learn(
    rates: LearnedRates, mode: CompressorMode, prev: ControlState, temp: float, now: datetime, rules: ClimateConfig
) -> LearnedRates:
    """Fold one measured run into the rate: an exponentially weighted mean, bounded."""
    if prev.run_start_at is None or prev.run_start_temp is None or mode == "dry":
        return rates
    seconds = (now - prev.run_start_at).total_seconds()
    if seconds < LEARN_MIN_S:
        return rates
    delta = temp - prev.run_start_temp if mode == "heat" else prev.run_start_temp - temp
    if delta <= 0:
        return rates  # the room did not move the way the unit pushed: a door, the sun; not a rate
    rate = min(max(delta / (seconds / 3600), rules.rate_min_c_per_h), rules.rate_max_c_per_h)
    a = rules.rate_alpha
    if mode == "heat":
        new = rates.warmup_c_per_h * (1 - a) + rate * a
        return dataclasses.replace(rates, warmup_c_per_h=round(new, 3), warmup_samples=rates.warmup_samples + 1)
    new = rates.cooldown_c_per_h * (1 - a) + rate * a
    return dataclasses.replace(rates, cooldown_c_per_h=round(new, 3), cooldown_samples=rates.cooldown_samples + 1)


@dataclasses.dataclass(frozen=True, slots=True)
class _Thresholds:
    """Where a run starts and stops, and the setpoint the units get while it runs."""

    cool_start: float
    cool_stop: float
    cool_cmd: float
    heat_start: float
    heat_stop: float
    heat_cmd: float


def _thresholds(
    cool_sp: float, heat_sp: float, rules: ClimateConfig, zone: ClimateZoneConfig, *, ride: bool, empty: bool
) -> _Thresholds:
    """Start/stop points: around the setpoints, or riding the comfort band (``[climate] ride_band``).

    Riding the band, an occupied ``auto`` zone lets its room drift to the band edge nearer
    the outdoor air (cooling starts ``hysteresis`` below the high edge, heating above the
    low edge), runs the unit toward a setpoint one swing (2 × hysteresis) back into the
    band, never past the limits, and switches it off there, instead of holding a setpoint
    in the middle of the band that the unit keeps at a low part load all day. The unit
    An empty floor swings only one hysteresis, so it stays nearer the edge. The unit
    picks its own part load on the way: an inverter is most efficient near half load
    (bench/climate_day.py measured a full-capacity swing at 0.92 × the thermostat's kWh,
    this one at 0.78).
    A side of the band too narrow for a swing (a summer band whose low edge is above the
    heating limit) keeps the setpoints.
    """
    h = rules.hysteresis
    plain = _Thresholds(cool_sp + h, cool_sp, cool_sp, heat_sp - h, heat_sp, heat_sp)
    if not ride:
        return plain
    swing = h if empty else 2 * h
    cool_start = zone.comfort_high - h
    cool_stop = _ceil_half(max(rules.cool_min_setpoint, cool_start - swing))
    cool_cmd = cool_stop
    heat_start = zone.comfort_low + h
    heat_stop = _floor_half(min(rules.heat_max_setpoint, heat_start + swing))
    heat_cmd = heat_stop
    cool = (cool_start, cool_stop, cool_cmd) if cool_stop < cool_start else (plain.cool_start, cool_sp, cool_sp)
    heat = (heat_start, heat_stop, heat_cmd) if heat_start < heat_stop else (plain.heat_start, heat_sp, heat_sp)
    if heat[1] >= cool[1]:
        return plain
    return _Thresholds(*cool, *heat)


def _wanted(
    inp: ZoneInputs, mode: ClimateMode, target: float, temp: float, hum: float | None, occupied: bool
) -> tuple[CompressorMode | None, bool, float, float, str, _Thresholds, bool]:
    """The compressor mode the zone wants (before minimum times), fan-only flag, setpoints, reason, thresholds,
    and whether it is a paced pre-conditioning (its rate is the plan's, not the unit's: nothing to learn)."""
    r, z, prev = inp.rules, inp.zone, inp.previous.compressor
    h = r.hysteresis
    people = inp.occupancy.people
    can_cool, can_heat = mode in ("auto", "cool"), mode in ("auto", "heat")
    ride = r.ride_band and mode == "auto" and inp.override is None
    empty = occupied and people == 0 and inp.override is None
    cool_sp, heat_sp = setpoints(target, z, r, empty=empty)
    th = _thresholds(cool_sp, heat_sp, r, z, ride=ride, empty=empty)
    if th.cool_cmd != cool_sp or th.heat_cmd != heat_sp:
        cool_sp, heat_sp = th.cool_cmd, th.heat_cmd
    if mode == "off":
        return None, False, cool_sp, heat_sp, "mode off", th, False
    if not occupied:
        m = inp.opening.minutes_to_open
        if m is not None and m <= r.precondition_max_minutes:
            # In band at opening: to the start points when riding the band (it starts there anyway).
            cool_goal = th.cool_start if ride else cool_sp
            heat_goal = th.heat_start if ride else heat_sp
            # Paced: planned at a share of the learned rate, the units following a setpoint that moves
            # along that line to the goal at opening (less the margin); see _paced.
            pace = r.precondition_part_load
            cool_rate, heat_rate = pace * inp.rates.cooldown_c_per_h, pace * inp.rates.warmup_c_per_h
            need_cool = max(0.0, temp - cool_goal) / cool_rate * 60 if can_cool else 0.0
            need_heat = max(0.0, heat_goal - temp) / heat_rate * 60 if can_heat else 0.0
            margin = r.precondition_margin_minutes
            ahead_h = max(0.0, m - margin) / 60  # hours the line has left to the goal
            paced = pace < 1.0
            if need_cool > 0 and (m <= need_cool + margin or prev == "cool"):
                if paced:
                    cool_sp = max(cool_sp, _floor_half(cool_goal + cool_rate * ahead_h))
                why = f"pre-cooling: opens in {m:.0f} min, needs {need_cool:.0f}"
                return "cool", False, cool_sp, heat_sp, why, th, paced
            if need_heat > 0 and (m <= need_heat + margin or prev == "heat"):
                if paced:
                    heat_sp = min(heat_sp, _ceil_half(heat_goal - heat_rate * ahead_h))
                why = f"pre-heating: opens in {m:.0f} min, needs {need_heat:.0f}"
                return "heat", False, cool_sp, heat_sp, why, th, paced
        # Setback: only protect the building.
        sb_heat = _floor_half(min(r.setback_low + h, r.heat_max_setpoint))
        sb_cool = _ceil_half(max(r.setback_high - h, r.cool_min_setpoint))
        sb = _Thresholds(r.setback_high, sb_cool, sb_cool, r.setback_low, sb_heat, sb_heat)
        if can_heat and (temp <= r.setback_low or (prev == "heat" and temp < sb_heat)):
            return "heat", False, cool_sp, sb_heat, f"setback: {temp:.1f} °C below {r.setback_low}", sb, False
        if can_cool and (temp >= r.setback_high or (prev == "cool" and temp > sb_cool)):
            return "cool", False, sb_cool, heat_sp, f"setback: {temp:.1f} °C above {r.setback_high}", sb, False
        return None, False, cool_sp, heat_sp, "closed: setback", th, False
    if mode == "fan_only":
        return None, True, cool_sp, heat_sp, "fan only", th, False
    # People add heat: cooling starts earlier and heating stops earlier (never later, so the band holds).
    bias = r.occupancy_bias * min(people / r.busy_people, 1.0)
    if can_cool and (temp + bias >= th.cool_start or (prev == "cool" and temp > th.cool_stop)):
        return "cool", False, cool_sp, heat_sp, f"cooling: {temp:.1f} °C toward {th.cool_stop}", th, False
    if can_heat and (temp <= th.heat_start or (prev == "heat" and temp + bias < th.heat_stop)):
        return "heat", False, cool_sp, heat_sp, f"heating: {temp:.1f} °C toward {th.heat_stop}", th, False
    if mode in ("auto", "dry"):
        hh = z.humidity_high
        if hum is None and mode == "dry":
            return "dry", False, cool_sp, heat_sp, "drying (no humidity reading)", th, False
        if hum is not None and (hum >= hh or (prev == "dry" and hum > hh - r.humidity_hysteresis)):
            return "dry", False, cool_sp, heat_sp, f"drying: {hum:.0f} % above {hh:.0f} %", th, False
    return None, False, cool_sp, heat_sp, f"in band: {temp:.1f} °C", th, False


def decide(inp: ZoneInputs) -> ZoneDecision:
    """The zone's command now. Pure: the same inputs give the same decision."""
    r, now, prev = inp.rules, inp.now, inp.previous
    override = inp.override
    notes: list[str] = []
    if override is not None and override.until is not None and now >= override.until:
        override = None
        notes.append("override expired")
    mode: ClimateMode = override.mode if override is not None else inp.mode
    target = override.target if override is not None and override.target is not None else inp.target
    # People still in the hall (a lunch break, a late queue) keep it occupied whatever the hours say.
    occupied = inp.opening.open_now or override is not None or inp.occupancy.people > 0
    temp, hum = fuse(inp.readings, now, r.reading_max_age_s)
    alarms: list[str] = []
    fan = False
    th: _Thresholds | None = None
    paced = False
    if temp is None:
        if inp.zone.sensors:
            alarms.append(ALARM_SENSORS_STALE)
        cool_sp, heat_sp = _ceil_half(max(r.cool_min_setpoint, target)), _floor_half(min(r.heat_max_setpoint, target))
        # Safe mode: keep the heating or cooling that runs, at the limit setpoint, and let the
        # unit's own return-air thermostat regulate; start nothing blind; off outside hours.
        wanted: CompressorMode | None = None
        if occupied and mode not in ("off", "fan_only"):
            if prev.compressor == "heat" and mode in ("auto", "heat"):
                wanted = "heat"
            elif prev.compressor in ("cool", "dry") and mode in ("auto", "cool", "dry"):
                wanted = "cool"
        fan = occupied and mode == "fan_only"
        why = "no fresh sensor reading: safe mode" if inp.zone.sensors else "no sensors: safe mode"
    else:
        wanted, fan, cool_sp, heat_sp, why, th, paced = _wanted(inp, mode, target, temp, hum, occupied)

    # Minimum on/off times, and heat <-> cool only through off (the reversing valve).
    compressor = prev.compressor
    elapsed = math.inf if prev.compressor_since is None else (now - prev.compressor_since).total_seconds()
    if compressor is not None and wanted != compressor:
        direct = wanted is not None and {compressor, wanted} == {"cool", "dry"}
        if elapsed < r.min_on_s:
            why += f"; held {compressor}: minimum on time {r.min_on_s:.0f} s"
            wanted, fan = compressor, False
        elif wanted is not None and not direct:
            why += f"; {compressor} off before {wanted}"
            wanted = None
    elif compressor is None and wanted is not None and elapsed < r.min_off_s:
        why += f"; held off: minimum off time {r.min_off_s:.0f} s"
        wanted = None

    last = prev.command
    if wanted == "heat":
        command = AcCommand(power=True, mode="heat", setpoint=heat_sp)
        action: Action = "heating"
    elif wanted in ("cool", "dry"):
        command = AcCommand(power=True, mode=wanted, setpoint=cool_sp)
        action = "cooling" if wanted == "cool" else "drying"
    elif fan:
        command = AcCommand(power=True, mode="fan_only", setpoint=last.setpoint if last else cool_sp)
        action = "fan"
    else:
        off_mode: AcMode = last.mode if last is not None else "cool"
        command = AcCommand(power=False, mode=off_mode, setpoint=last.setpoint if last is not None else cool_sp)
        action = "off" if mode == "off" else "idle"

    # The run's learning sample: start after the first minutes, fold in when it ends or reaches setpoint.
    rates = inp.rates
    same_run = (
        wanted is not None
        and compressor is not None
        and (wanted == compressor or {wanted, compressor} == {"cool", "dry"})
    )
    if not same_run:
        since = now if (wanted is None) != (compressor is None) else prev.compressor_since
        if compressor is not None and temp is not None and not prev.run_sampled:
            rates = _learn(rates, compressor, prev, temp, now, r)
        run_at: datetime | None = None
        run_temp: float | None = None
        sampled = False
    else:
        since = prev.compressor_since
        run_at, run_temp, sampled = prev.run_start_at, prev.run_start_temp, prev.run_sampled
        if wanted != compressor:  # cool <-> dry: a new measurement
            run_at, run_temp, sampled = None, None, False
        elif temp is not None and wanted in ("cool", "heat") and not sampled:
            running_s = math.inf if since is None else (now - since).total_seconds()
            if run_at is None and running_s >= LEARN_SKIP_S:
                run_at, run_temp = now, temp
            elif run_at is not None:
                cool_stop = cool_sp if th is None else th.cool_stop
                heat_stop = heat_sp if th is None else th.heat_stop
                reached = temp <= cool_stop if wanted == "cool" else temp >= heat_stop
                if reached:
                    rates = _learn(rates, wanted, prev, temp, now, r)
                    sampled = True
    if paced and wanted is not None:
        run_at, run_temp, sampled = None, None, True  # a paced run moves at the plan's rate: not learned from
    state = ControlState(
        command=command,
        command_since=prev.command_since if command == last else now,
        compressor=wanted,
        compressor_since=since,
        run_start_at=run_at,
        run_start_temp=run_temp,
        run_sampled=sampled,
    )
    reason = "; ".join([*notes, why])
    return ZoneDecision(
        command=command,
        action=action,
        reason=reason,
        alarms=tuple(alarms),
        state=state,
        rates=rates,
        override=override,
        mode=mode,
        setpoint=command.setpoint if command.power and command.mode != "fan_only" else None,
        temperature=None if temp is None else round(temp, 2),
        humidity=None if hum is None else round(hum, 1),
    )
