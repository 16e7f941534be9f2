"""A summer day and a winter day of the demo hall's floors: hallctl's climate controller against a plain thermostat.

Each floor (climate zone) of the demo hall is a thermal room (``drivers/sim/room.py``: a 600 m²
floor in Shanghai, its built-in 22 HP inverter unit) under the GB 50736 design days, with
people from a queue day (arrivals peaking mid-morning and mid-afternoon, served at the demo
hall's windows: waiting + being served + staff are in the room). The clock is simulated
(60 s steps, as fast as the CPU goes): two days are run and the second is measured, so the
building's mass starts from yesterday, not from an arbitrary temperature.

Two policies run the same day:

* **baseline**: a fixed-setpoint thermostat, the way a plain wall thermostat or Home
  Assistant's ``generic_thermostat`` runs a room: during opening hours the unit is switched
  on (full capacity) at ``target + 0.5 K`` and off at ``target − 0.5 K``, target 26 °C cooling in
  summer and 20 °C heating in winter; off outside opening hours.
* **controller**: ``hallctl.climate.controller.decide`` (:class:`HallController`), the demo
  zone's standing mode (``auto``, target 26 °C) within the public-building limits, the
  season's comfort band, ``[climate]`` defaults (``ride_band``: the room rides the band edge
  nearer outdoors, one swing back, then off). The unit is the same inverter either way, so
  the controller's gain comes from where it holds the room, the part load the unit picks on
  its way to the stop point (instead of being switched at full capacity), pre-conditioning
  only into the band, and setback; a unit at part load runs *longer* at lower power, so the
  run-time ratio is expected above the kWh ratio. The bench also prints the run time the
  controller's heat would take at full capacity: the least run time that heat allows.
* ``--placeholder`` runs the earlier stand-in policy instead (kept for comparison).

Figures per day (recorded with ``bench/figures.py``): the controller's share of opening hours
in the comfort band (summer 24–28 °C, winter 18–22 °C: GB 50736-2012 comfort levels I+II;
goal ≥ 95 % and not below the baseline's), its compressor run time and kWh as ratios to the
baseline's (goal ≤ 0.85), and its compressor starts per hour (the worst clock hour; goal ≤ 4).
kWh is the room model's electrical input (capacity / COP at the part load); the hall's own
estimate (``hallctl.climate.energy``: rated power × part load) is printed beside it.

Run: .venv/bin/python bench/climate_day.py [--step 60] [--no-record]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import sys
import time
import tomllib
from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import figures
from drivers.aircon import AcCommand
from drivers.sim.room import SUMMER_SHANGHAI, WINTER_SHANGHAI, PackagedUnit, Room, Weather
from hallctl import config
from hallctl.climate.controller import ControlState, LearnedRates, Occupancy, Override, Reading, ZoneInputs, decide
from hallctl.climate.energy import EnergyLedger, EnergySample, UnitRating, UnitSample
from hallctl.climate.schedule import opening_state
from hallctl.demo import DEMO_TOML

BENCH = "climate_day"
SH = ZoneInfo("Asia/Shanghai")
BANDS = {"summer": (24.0, 28.0), "winter": (18.0, 22.0)}
TARGETS = {"summer": 26.0, "winter": 20.0}
DAYS = {
    "summer": (SUMMER_SHANGHAI, datetime(2026, 7, 15, tzinfo=SH)),
    "winter": (WINTER_SHANGHAI, datetime(2026, 1, 14, tzinfo=SH)),
}
FALLBACK_HOURS = "mon-sun 09:00-17:00"
# Arrivals by hour as a share of the windows' capacity (a weekday at a district 政务服务中心: the morning
# peak, a lunch dip, the afternoon peak); each visitor brings 0.5 companions on average.
ARRIVAL_LOAD = {9: 0.8, 10: 1.1, 11: 0.95, 12: 0.5, 13: 0.55, 14: 0.95, 15: 1.0, 16: 0.6}
SERVICE_MIN = 12.0  # mean minutes at a window
COMPANIONS = 0.5
ZONE_SHARE = (0.6, 0.4)  # floor 1 is the busier


@dataclasses.dataclass(frozen=True, slots=True)
class Situation:
    """What a policy sees each minute (the controller's inputs, in the bench's terms)."""

    now: datetime
    zone: str
    season: str
    temperature: float  # the sensor's reading (0.1 °C)
    humidity: float
    outdoor: float
    in_hours: bool
    minutes_to_open: float | None  # until the next opening, when closed
    people: int  # in the room: visitors, companions, staff (what heats it)
    tickets: int  # waiting and at a window: all the hall's queue tells the controller
    band: tuple[float, float]


Policy = Callable[[Situation], AcCommand]


class Thermostat:
    """The baseline: on/off at the fixed target with ±0.5 K hysteresis during opening hours (generic_thermostat)."""

    tolerance = 0.5

    def __init__(self, season: str) -> None:
        self.target = TARGETS[season]
        self.mode: Any = "cool" if season == "summer" else "heat"
        self.on = False

    def __call__(self, s: Situation) -> AcCommand:
        if not s.in_hours:
            self.on = False
        elif self.mode == "cool":
            if s.temperature >= self.target + self.tolerance:
                self.on = True
            elif s.temperature <= self.target - self.tolerance:
                self.on = False
        else:
            if s.temperature <= self.target - self.tolerance:
                self.on = True
            elif s.temperature >= self.target + self.tolerance:
                self.on = False
        # A switch, not a setpoint: when on, the unit is asked for all it has.
        return AcCommand(self.on, self.mode, 16.0 if self.mode == "cool" else 30.0)


class Placeholder:
    """NOT hallctl's controller: the baseline's targets plus pre-conditioning, setback and an empty-floor drift.

    Pre-conditioning starts when the minutes to opening fall below the time the zone needs at
    the rate it last showed (initially 2 K/h), plus 15 minutes; outside hours and pre-conditioning
    the unit is off (setback). During hours the unit gets the target as its setpoint and
    modulates; with fewer than 10 people the setpoint drifts 1 K toward the band's edge.
    """

    def __init__(self, season: str) -> None:
        self.season = season
        self.target = TARGETS[season]
        self.mode: Any = "cool" if season == "summer" else "heat"
        self.rate_k_per_h = 2.0
        self._pre_start: tuple[datetime, float] | None = None

    def __call__(self, s: Situation) -> AcCommand:
        sign = 1.0 if self.mode == "cool" else -1.0
        if s.in_hours:
            if self._pre_start is not None:  # learn how fast the zone moved while pre-conditioning
                t0, temp0 = self._pre_start
                hours = (s.now - t0).total_seconds() / 3600.0
                if hours > 0.25:
                    self.rate_k_per_h = max(0.5, sign * (temp0 - s.temperature) / hours)
                self._pre_start = None
            setpoint = self.target + (sign * 1.0 if s.people < 10 else 0.0)
            return AcCommand(True, self.mode, setpoint)
        if self._pre_start is not None and s.minutes_to_open is not None:
            return AcCommand(True, self.mode, self.target)  # pre-conditioning holds until opening
        self._pre_start = None
        excess = sign * (s.temperature - self.target)
        if s.minutes_to_open is not None and excess > 0:
            need_min = excess / self.rate_k_per_h * 60.0 + 15.0
            if s.minutes_to_open <= need_min:
                self._pre_start = (s.now, s.temperature)
                return AcCommand(True, self.mode, self.target)
        return AcCommand(False, self.mode, self.target)


class HallController:
    """hallctl's controller: ``decide`` fed the bench's situation as :class:`ZoneInputs`, each minute.

    Its control state, learned rates and override are carried from one decision to the next
    exactly as the climate component carries them (``tests/climate`` ``run`` does the same).
    The zone is the demo hall's with the season's comfort band (what the figures measure);
    the rules are ``[climate]``'s defaults (the demo shortens its compressor guards for its
    accelerated rooms; a real hall keeps 420/480 s). Occupancy: the queue's tickets (waiting and
    at a window), as the running hall counts them; companions and staff heat the room but the
    controller does not see them.
    """

    def __init__(self, season: str, zone: config.ClimateZoneConfig, spans: list[config.OpeningSpan]) -> None:
        low, high = BANDS[season]
        self.zone = zone.model_copy(update={"sensors": ("bench",), "comfort_low": low, "comfort_high": high})
        self.rules = config.ClimateConfig()
        self.spans = spans
        self.state = ControlState()
        self.rates = LearnedRates(self.rules.default_warmup_c_per_h, self.rules.default_cooldown_c_per_h)
        self.override: Override | None = None

    def __call__(self, s: Situation) -> AcCommand:
        inputs = ZoneInputs(
            zone=self.zone,
            rules=self.rules,
            now=s.now,
            readings={"bench": Reading(s.temperature, s.humidity, s.now)},
            opening=opening_state(self.spans, self.rules.holidays, SH, s.now),
            occupancy=Occupancy(waiting=s.tickets),
            mode=self.zone.mode,
            target=self.zone.target,
            override=self.override,
            rates=self.rates,
            previous=self.state,
        )
        d = decide(inputs)
        self.state, self.rates, self.override = d.state, d.rates, d.override
        return d.command


# ---- the day ------------------------------------------------------------------------------------


def occupancy(windows: int, seed: int = 13) -> tuple[list[int], list[int]]:
    """People in the hall each minute of a day (waiting + at a window, their companions, one staff per
    open window), and the tickets among them (waiting + at a window: what the queue tells the controller)."""
    rng = random.Random(seed)
    arrivals = [0] * 1440
    for hour, load in ARRIVAL_LOAD.items():
        for _ in range(round(load * windows * 60 / SERVICE_MIN)):
            arrivals[hour * 60 + rng.randrange(60)] += 1
    queue: list[float] = []  # service minutes of those waiting
    busy: list[float] = []  # minutes left at each busy window
    people = [0] * 1440
    tickets = [0] * 1440
    for m in range(1440):
        for _ in range(arrivals[m]):
            queue.append(rng.expovariate(1.0 / SERVICE_MIN))
        busy = [b - 1 for b in busy if b > 1]
        while queue and len(busy) < windows:
            busy.append(queue.pop(0))
        staffed = windows if 9 * 60 <= m < 17 * 60 + 30 else (windows if queue or busy else 0)
        people[m] = round((len(queue) + len(busy)) * (1 + COMPANIONS)) + staffed
        tickets[m] = len(queue) + len(busy)
    return people, tickets


@dataclasses.dataclass
class DayResult:
    share_in_band: float
    run_h: float
    full_load_h: float  # equivalent full-load hours: Σ part load × time (the run time at full capacity)
    kwh: float
    kwh_ledger: float
    max_starts_per_hour: int
    starts: int
    degree_hours: float
    min_temp: float
    max_temp: float
    starts_by_hour: list[int]


def opening(cfg: config.Config) -> tuple[Callable[[datetime], bool], str, list[config.OpeningSpan]]:
    spans = [span for c in cfg.category for span in c.spans]
    always = all(len(s.days) == 7 and s.start == dtime(0) and s.end is None for s in spans)
    if always:
        spans = [config.parse_hours(FALLBACK_HOURS)]
        label = f"{FALLBACK_HOURS} (the demo hall sets no hours: open 24 h; a typical hall's hours used)"
    else:
        label = "the demo hall's category hours"

    def is_open(t: datetime) -> bool:
        local = t.astimezone(SH)
        return any(span.contains(local.weekday(), local.time()) for span in spans)

    return is_open, label, spans


def minutes_to_open(t: datetime, is_open: Callable[[datetime], bool]) -> float | None:
    for m in range(0, 24 * 60, 5):
        if is_open(t + timedelta(minutes=m)):
            return float(m)
    return None


def run_day(
    season: str,
    weather: Weather,
    day0: datetime,
    policy: Policy,
    zone: str,
    share: float,
    people_by_min: tuple[list[int], list[int]],
    is_open: Callable[[datetime], bool],
    step_s: float,
    part_load_power: tuple[tuple[float, float], ...] = (),
) -> DayResult:
    unit = PackagedUnit()
    start = day0 - timedelta(days=1)
    t_start = weather.temperature(0.0) + (3.0 if season == "summer" else 6.0)
    room = Room(weather=weather, hour=0.0, t_air=t_start, t_mass=t_start, rh=55.0, ac=unit)
    band = BANDS[season]
    rating = UnitRating(
        unit.cooling_capacity_w / unit.cop_cooling / 1000,
        unit.heating_capacity_w / unit.cop_heating / 1000,
        part_load_power,  # the demo unit's table from its config: the hall's estimate as the daemon makes it
    )
    ledger = EnergyLedger({zone: band}, {"vrf": rating}, SH, max_gap_s=2 * step_s + 1)
    steps = round(2 * 86400 / step_s)
    policy_every = max(1, round(60.0 / step_s))
    kwh = 0.0
    full_load_s = 0.0
    starts_by_hour = [0] * 24
    temps: list[float] = []
    cmd = AcCommand(False)
    for i in range(steps):
        now = start + timedelta(seconds=i * step_s)
        measured = now >= day0
        minute = int(now.astimezone(SH).hour * 60 + now.astimezone(SH).minute)
        open_now = is_open(now)
        room.people = round(people_by_min[0][minute] * share)
        room.open = open_now
        reading = round(room.t_air, 1)
        if i % policy_every == 0:
            situation = Situation(
                now=now,
                zone=zone,
                season=season,
                temperature=reading,
                humidity=round(room.rh, 1),
                outdoor=round(room.outdoor, 1),
                in_hours=open_now,
                minutes_to_open=None if open_now else minutes_to_open(now, is_open),
                people=room.people,
                tickets=round(people_by_min[1][minute] * share),
                band=band,
            )
            cmd = policy(situation)
            unit.command(cmd.power, cmd.mode, cmd.setpoint, cmd.fan)
        starts_before = unit.starts
        room.step(step_s)
        if not measured:
            continue
        kwh += unit.electric_w * step_s / 3.6e6
        full_load_s += unit.part_load * step_s if unit.running else 0.0
        starts_by_hour[now.astimezone(SH).hour] += unit.starts - starts_before
        if open_now:
            temps.append(room.t_air)
        ledger.add(
            EnergySample(
                now,
                zone,
                reading,
                open_now,
                (UnitSample("vrf", unit.power, unit.mode, unit.running, unit.part_load),),
            )
        )
    ledger.add(EnergySample(day0 + timedelta(days=1), zone, round(room.t_air, 1), False, ()))
    (zd,) = ledger.day(day0.date())
    run_s = sum(zd.run_s.values())
    return DayResult(
        share_in_band=zd.share_in_band or 0.0,
        run_h=run_s / 3600.0,
        full_load_h=full_load_s / 3600.0,
        kwh=kwh,
        kwh_ledger=zd.kwh,
        max_starts_per_hour=max(starts_by_hour),
        starts=sum(starts_by_hour),
        degree_hours=zd.degree_hours,
        min_temp=min(temps) if temps else math.nan,
        max_temp=max(temps) if temps else math.nan,
        starts_by_hour=starts_by_hour,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--step", type=float, default=60.0, help="simulated seconds per step")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--placeholder", action="store_true", help="the earlier stand-in policy, not hallctl's")
    args = ap.parse_args()
    raw: dict[str, Any] = tomllib.loads(DEMO_TOML)
    raw["store"] = {"path": ":memory:"}
    cfg = config.parse(raw)
    is_open, hours_label, spans = opening(cfg)
    zone_cfgs = {z.id: z for z in cfg.climate_zone} or {"floor1": config.ClimateZoneConfig(id="floor1")}
    zones = list(zone_cfgs)
    tables = {z: next((u.part_load_power for u in cfg.climate_unit if u.zone == z), ()) for z in zones}
    people = occupancy(len(cfg.window))
    if args.placeholder:
        label = "placeholder (NOT hallctl's controller)"

        def make_controller(season: str, zone: str) -> Policy:
            return Placeholder(season)
    else:
        label = "hallctl.climate.controller.decide"

        def make_controller(season: str, zone: str) -> Policy:
            return HallController(season, zone_cfgs[zone], spans)

    print(f"controller: {label}")
    print(f"opening hours: {hours_label}; zones: {', '.join(zones)}; peak people in the hall: {max(people[0])}")
    cpu0 = time.process_time()
    out: list[figures.Figure] = []
    for season, (weather, day0) in DAYS.items():
        base = [
            run_day(
                season, weather, day0, Thermostat(season), z, ZONE_SHARE[i % 2], people, is_open, args.step, tables[z]
            )
            for i, z in enumerate(zones)
        ]
        ctrl = [
            run_day(
                season,
                weather,
                day0,
                make_controller(season, z),
                z,
                ZONE_SHARE[i % 2],
                people,
                is_open,
                args.step,
                tables[z],
            )
            for i, z in enumerate(zones)
        ]
        print(f"\n{season} ({weather.name}, {day0.date()}, band {BANDS[season][0]}–{BANDS[season][1]} °C):")
        heads = ("in band", "K·h out", "run h", "kWh", "kWh est", "starts", "max/h")
        print(f"  {'':10} " + " ".join(f"{h:>8}" for h in heads) + "   min–max °C")
        for name, rows in (("baseline", base), ("controller", ctrl)):
            for z, r in zip(zones, rows, strict=True):
                print(
                    f"  {name[:4] + ' ' + z:10} {r.share_in_band:8.1%} {r.degree_hours:8.2f} {r.run_h:8.2f}"
                    f" {r.kwh:8.1f} {r.kwh_ledger:8.1f} {r.starts:8d} {r.max_starts_per_hour:8d}"
                    f"   {r.min_temp:4.1f}–{r.max_temp:4.1f}"
                )
        # The hall's figure is its worst floor for comfort and cycling, its sum for energy and run time.
        share_c = min(r.share_in_band for r in ctrl)
        share_b = min(r.share_in_band for r in base)
        run_ratio = sum(r.run_h for r in ctrl) / max(1e-9, sum(r.run_h for r in base))
        # The shortest the controller's runs could be for the heat it moved: all of it at full capacity.
        floor_ratio = sum(r.full_load_h for r in ctrl) / max(1e-9, sum(r.run_h for r in base))
        kwh_ratio = sum(r.kwh for r in ctrl) / max(1e-9, sum(r.kwh for r in base))
        cph = max(r.max_starts_per_hour for r in ctrl)
        print(
            f"  => controller in band {share_c:.1%} (baseline {share_b:.1%}); run time ×{run_ratio:.2f},"
            f" kWh ×{kwh_ratio:.2f} of baseline; worst hour {cph} compressor starts"
        )
        print(
            "     (kWh is the main figure: the same inverter modulating toward a setpoint runs longer at lower"
            " power than one switched at full capacity, so run time counts against the controller)"
        )
        print(
            f"     run time at full capacity for the heat the controller moved: ×{floor_ratio:.2f} of the baseline's"
            " run (the least run time this heat allows; the baseline runs at full capacity)"
        )
        detail = f"{label}; {season} design day Shanghai, {len(zones)} floors, step {args.step:g}s, 2nd of 2 days"
        out += [
            figures.Figure(BENCH, f"{season}: share of opening hours in band", round(100 * share_c, 1), "%",
                           goal=max(95.0, round(100 * share_b, 1)), compare=">=", issue_goal="climate",
                           detail=f"{detail}; baseline {share_b:.1%}"),
            figures.Figure(BENCH, f"{season}: compressor run time / baseline", round(run_ratio, 3), "ratio",
                           goal=0.85, issue_goal="climate",
                           detail=f"{detail}; penalises a modulating unit (longer at lower power): see kWh;"
                           f" at full capacity the same heat would take ×{floor_ratio:.2f}"),
            figures.Figure(BENCH, f"{season}: kWh / baseline", round(kwh_ratio, 3), "ratio", goal=0.85,
                           issue_goal="climate", detail=f"{detail}; room model's electrical input"),
            figures.Figure(BENCH, f"{season}: compressor starts per hour (worst hour)", float(cph), "1/h",
                           goal=4.0, issue_goal="climate", detail=detail),
        ]  # fmt: skip
    print(
        f"\nsimulated 2 seasons × 2 policies × {len(zones)} floors × 2 days in {time.process_time() - cpu0:.1f} s CPU"
    )
    if not args.no_record:
        figures.record(*out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
