"""A hall floor as a thermal room: what the simulated sensors read, and what the air conditioning moves.

Why a model at all: a climate controller tested against sensors that report a constant
proves nothing. This room warms in a summer afternoon, fills with people from the queue,
cools overnight through its envelope, and answers its air conditioning with the lag a
concrete building has, so pre-conditioning, setback and short-cycling have something real
to act on (in the tests, ``make demo`` and ``bench/climate_day.py``).

The model is the lumped RC network of ISO 13790's simple hourly method (5R1C) reduced to two
nodes, which is what that standard and most building-controls papers use when a room has to
be simulated quickly:

* ``t_air``: the indoor air with its furniture (the sensors read this node);
* ``t_mass``: the building's thermal mass (slabs, inner walls), coupled to the air by
  ``h_air_mass`` and to outdoors by the opaque envelope ``h_mass_out``;
* glazing (``h_air_out``), infiltration and occupant fresh air couple the air to outdoors;
* gains: people (sensible to the air, latent to the moisture balance), lighting and
  equipment while the hall is open, solar through the glazing by hour of day (split between
  air and mass), and the air conditioning (an :class:`AcLoad`).

It is stepped with an explicit time step (Euler, sub-stepped to ``max_substep_s`` so it stays
stable whatever step the caller asks for), is pure Python and deterministic: the same
parameters, weather and inputs give the same trajectory, so a bench run can be repeated.

The default parameters describe one floor of a mid-sized 政务服务中心 in Shanghai (hot summer,
cold winter; heat-pump air conditioning heats and cools); every one is a field of
:class:`RoomParams`, with the reasoning beside it. Nothing here imports ``hallctl``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Protocol

__all__ = [
    "SUMMER_SHANGHAI",
    "WINTER_SHANGHAI",
    "AcLoad",
    "PackagedUnit",
    "Room",
    "RoomParams",
    "Weather",
    "humidity_ratio",
    "relative_humidity",
    "saturation_pressure",
]

AIR_DENSITY = 1.2  # kg/m³ at about 20 °C
AIR_CP = 1005.0  # J/(kg·K)
LATENT_HEAT = 2.45e6  # J/kg, water at about 20 °C
P_ATM = 101325.0  # Pa


# ---- psychrometrics (Magnus form; good to ~0.5 % between -20 and 50 °C) -----------------------


def saturation_pressure(t: float) -> float:
    """Water vapour saturation pressure (Pa) at ``t`` °C (Magnus, Alduchov & Eskridge 1996)."""
    return 610.94 * math.exp(17.625 * t / (t + 243.04))


def humidity_ratio(t: float, rh: float) -> float:
    """kg of water per kg of dry air for air at ``t`` °C and ``rh`` % relative humidity."""
    pv = max(0.0, min(100.0, rh)) / 100.0 * saturation_pressure(t)
    return 0.622 * pv / (P_ATM - pv)


def relative_humidity(t: float, w: float) -> float:
    """% relative humidity of air at ``t`` °C holding ``w`` kg/kg (capped at 100: fog condenses)."""
    pv = w * P_ATM / (0.622 + w)
    return max(0.0, min(100.0, 100.0 * pv / saturation_pressure(t)))


# ---- weather ---------------------------------------------------------------------------------

# ASHRAE Handbook of Fundamentals (2009, ch. 14, table 6): the fraction of the daily temperature
# range below the day's maximum, for each hour 1..24 (local solar time); index 0 is hour 24/0.
_DAILY_RANGE_FRACTION = (
    0.82, 0.88, 0.92, 0.95, 0.98, 1.00, 0.98, 0.91, 0.74, 0.55, 0.38, 0.23,
    0.13, 0.05, 0.00, 0.00, 0.06, 0.14, 0.24, 0.39, 0.50, 0.59, 0.68, 0.75,
)  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class Weather:
    """One day's outdoor conditions, repeated every day: a daily temperature curve and a sun.

    ``fixed_temp`` replaces the curve by a constant (``hallctl simulate weather 35``).
    """

    name: str
    t_max: float  # °C, reached at 14:00–15:00
    daily_range: float  # K between the day's maximum and its minimum (about 05:00)
    humidity_ratio: float  # kg/kg outdoors, constant through the day (dew point barely moves)
    solar_peak_w: float  # W through the floor's glazing at solar noon on a clear day
    sunrise: float  # hours
    sunset: float  # hours
    fixed_temp: float | None = None

    def temperature(self, hour: float) -> float:
        """Outdoor dry-bulb (°C) at ``hour`` of the day (0..24, fractional), linear between hours."""
        if self.fixed_temp is not None:
            return self.fixed_temp
        h = hour % 24.0
        i = int(h)
        frac = h - i
        a = _DAILY_RANGE_FRACTION[i % 24]
        b = _DAILY_RANGE_FRACTION[(i + 1) % 24]
        return self.t_max - (a + (b - a) * frac) * self.daily_range

    def solar_w(self, hour: float) -> float:
        """Solar gain through the glazing (W) at ``hour``: a half sine between sunrise and sunset."""
        h = hour % 24.0
        if not self.sunrise < h < self.sunset:
            return 0.0
        return self.solar_peak_w * math.sin(math.pi * (h - self.sunrise) / (self.sunset - self.sunrise))

    def outdoor_rh(self, hour: float) -> float:
        return relative_humidity(self.temperature(hour), self.humidity_ratio)

    def at_temperature(self, t: float) -> Weather:
        """This weather with its curve replaced by a constant ``t`` °C (humidity ratio capped at saturation)."""
        return dataclasses.replace(
            self,
            name=f"{t:g}C",
            fixed_temp=t,
            humidity_ratio=min(self.humidity_ratio, humidity_ratio(t, 90.0)),
        )


# Shanghai, the design days of GB 50736-2012 (appendix A): summer air-conditioning design dry-bulb
# 34.4 °C with a wet-bulb of 27.9 °C (humidity ratio ≈ 0.0215 kg/kg at the peak, i.e. a dew point
# near 26 °C), a daily range of about 7 K; winter air-conditioning design −2.2 °C, a January day
# with a 7 K range peaking near 6 °C and a dew point near −5 °C. Sun: Shanghai (31° N) rises about
# 05:00 and sets 19:00 in July, 06:50 and 17:10 in January; the peak solar gain assumes
# 150 m² of glazing with a solar heat gain coefficient of 0.35 (low-e, GB 50189-2015 limits) and
# about 300 W/m² on the glazed façades in summer, less in winter.
SUMMER_SHANGHAI = Weather(
    name="summer",
    t_max=34.4,
    daily_range=7.0,
    humidity_ratio=0.0200,
    solar_peak_w=15000.0,
    sunrise=5.0,
    sunset=19.0,
)
WINTER_SHANGHAI = Weather(
    name="winter",
    t_max=6.0,
    daily_range=7.0,
    humidity_ratio=0.0026,
    solar_peak_w=9000.0,
    sunrise=6.8,
    sunset=17.2,
)


# ---- the air conditioning side ---------------------------------------------------------------


class AcLoad(Protocol):
    """What the room needs from an air conditioner: the heat it puts into the air now.

    Positive heats, negative cools (W, sensible). A simulator of a real unit (Modbus gateway,
    BACnet device, MQTT climate device) implements this from its own power/mode/setpoint/fan
    registers, so the room answers whatever the driver under test wrote; :class:`PackagedUnit`
    is the plain built-in one. ``dt_s`` is the time the answer will hold (the room's sub-step),
    for a unit's own timers (anti-short-cycle guards). ``latent_w`` is the moisture the coil condenses (W of latent
    heat, ≥ 0) while cooling or drying; a unit that does not model it returns 0.
    """

    def heat_w(self, room_temp: float, outdoor_temp: float, dt_s: float) -> float: ...

    def latent_w(self, room_temp: float, room_rh: float) -> float: ...


@dataclasses.dataclass
class PackagedUnit:
    """An inverter air conditioner (VRF outdoor unit with its indoor units, as one), built in.

    Commanded like any unit (``power``, ``mode``, ``setpoint``; fan ignored): when on it modulates
    its capacity on its return-air temperature with a 1.5 K proportional band, down to
    ``min_part_load``; below that it stops the compressor (thermo-off) until the demand is back
    above ``restart_part_load``, which is how real inverters avoid cycling at light load; and like
    every compressor it has anti-short-cycle timers (``min_on_s``, ``min_off_s``: a started
    compressor runs at least 5 minutes, a stopped one rests at least 3).

    Defaults: a 22 HP VRF (61.5 kW cooling / 69 kW heating nominal, the size a 600 m² hall floor
    gets at ~100 W/m² of design cooling load), rated COP 3.3 cooling and 3.6 heating (GB 21454-2021
    grade-3 levels). Capacity falls with outdoor temperature above 35 °C (cooling) and below 7 °C
    (heating) by 1.5 %/K and 2.5 %/K, the slope of the makers' capacity tables. The COP is best
    around half load (×1.25 at 50 %, ×1.0 at 100 % and at 25 %), the shape of the IPLV curves.
    """

    cooling_capacity_w: float = 61500.0
    heating_capacity_w: float = 69000.0
    cop_cooling: float = 3.3
    cop_heating: float = 3.6
    min_part_load: float = 0.15  # a 22 HP VRF modulates down to about 15 % (several indoor units)
    restart_part_load: float = 0.5
    min_on_s: float = 300.0
    min_off_s: float = 180.0
    band_k: float = 1.5
    sensible_heat_ratio: float = 0.75  # a DX coil at 26 °C / 55 % removes about a quarter as latent heat
    power: bool = False
    mode: str = "cool"  # cool | heat | dry | fan_only | auto
    setpoint: float = 26.0
    fan: str = "auto"
    running: bool = False  # compressor on (thermo-on)
    part_load: float = 0.0
    electric_w: float = 0.0
    starts: int = 0  # compressor starts so far (a cycle each)
    _since_s: float = 1e9  # seconds since the compressor last started or stopped
    _auto_mode: str = "cool"  # what ``auto`` is doing now

    def command(self, power: bool, mode: str = "cool", setpoint: float = 26.0, fan: str = "auto") -> None:
        self.power, self.mode, self.setpoint, self.fan = power, mode, setpoint, fan

    def _active_mode(self, room_temp: float) -> str:
        """``auto`` changes over between cooling and heating only 1 K past the setpoint (a changeover deadband)."""
        if self.mode != "auto":
            return self.mode
        if room_temp > self.setpoint + 1.0:
            self._auto_mode = "cool"
        elif room_temp < self.setpoint - 1.0:
            self._auto_mode = "heat"
        return self._auto_mode

    def heat_w(self, room_temp: float, outdoor_temp: float, dt_s: float = 0.0) -> float:
        self._since_s += dt_s
        mode = self._active_mode(room_temp)
        if not self.power or mode == "fan_only":
            return self._set(0.0, 0.0)  # switched off: the guard does not keep it running
        if mode in ("cool", "dry"):
            demand = (room_temp - self.setpoint) / self.band_k + 0.5
            capacity = self.cooling_capacity_w * (1.0 - 0.015 * max(0.0, outdoor_temp - 35.0))
            cop = self.cop_cooling
            sign = -1.0
            if mode == "dry":
                demand = min(demand, 0.4)  # dry mode: low capacity, long coil contact
        else:
            demand = (self.setpoint - room_temp) / self.band_k + 0.5
            capacity = self.heating_capacity_w * (1.0 - 0.025 * max(0.0, 7.0 - outdoor_temp))
            cop = self.cop_heating
            sign = 1.0
        demand = max(0.0, min(1.0, demand))
        threshold = self.min_part_load if self.running else self.restart_part_load
        if self.running and self._since_s < self.min_on_s:
            threshold = 0.0  # runs out its minimum on-time at minimum capacity
        if not self.running and self._since_s < self.min_off_s:
            return self._set(0.0, 0.0)
        if demand < threshold:
            return self._set(0.0, 0.0)
        plr = max(demand, self.min_part_load)
        self._set(plr, capacity * plr / (cop * _cop_factor(plr)))
        return sign * capacity * plr

    def _set(self, plr: float, electric_w: float) -> float:
        """Record the compressor's state; returns the heat (0 when stopped) for the early exits."""
        running = plr > 0.0
        if running and not self.running:
            self.starts += 1
        if running != self.running:
            self._since_s = 0.0
        self.running, self.part_load, self.electric_w = running, plr, electric_w
        return 0.0

    def latent_w(self, room_temp: float, room_rh: float) -> float:
        if not self.running or self._active_mode(room_temp) not in ("cool", "dry") or room_rh <= 40.0:
            return 0.0  # a coil above the room's dew point condenses nothing
        sensible = self.cooling_capacity_w * self.part_load
        shr = 0.6 if self.mode == "dry" else self.sensible_heat_ratio
        return sensible * (1.0 - shr) / shr * min(1.0, (room_rh - 40.0) / 20.0)


def _cop_factor(plr: float) -> float:
    """How much better than rated the COP is at part load ``plr`` (1.25 at 0.5, 1.0 at 1.0 and 0.25)."""
    return 1.0 + 2.0 * (plr - 0.25) * (1.0 - plr) if 0.25 <= plr <= 1.0 else 1.0


# ---- the room --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class RoomParams:
    """One hall floor; the defaults are a 600 m² floor, 4 m high, glazed front, concrete frame."""

    floor_area_m2: float = 600.0
    height_m: float = 4.0
    # Air node: the air's own capacity ×5 for furniture, counters, partitions (the usual multiplier
    # for furnished rooms in lumped models; without it the air swings unrealistically fast).
    furniture_factor: float = 5.0
    # Mass node: ISO 13790 "medium" class, 165 kJ/(m²·K) of floor area.
    mass_capacity_j_per_k_m2: float = 165000.0
    # Air↔mass: ISO 13790's h_ms = 9.1 W/(m²·K) over an effective mass area of 2.5 × floor area.
    h_air_mass_w_per_k_m2: float = 9.1 * 2.5
    # Glazing to the air: 150 m² at U = 2.8 W/(m²·K) (double low-e in aluminium frames).
    h_air_out_w_per_k: float = 420.0
    # Opaque envelope to the mass: 300 m² of wall at U = 0.6 plus a share of roof (GB 50189-2015, zone 夏热冬冷).
    h_mass_out_w_per_k: float = 250.0
    infiltration_ach: float = 0.3  # air changes per hour through doors and cracks, always
    fresh_air_m3h_per_person: float = 30.0  # GB 50736-2012 table 3.0.6-1, offices and halls
    # Fresh air comes through a fresh-air unit (新风机组) that dries it to this humidity ratio
    # (dew point ≈ 17 °C) when outdoors is wetter; its own energy is not the hall AC's. Infiltration is raw.
    fresh_air_max_w: float = 0.012
    person_sensible_w: float = 100.0  # seated/standing light activity at 26 °C (ASHRAE Fundamentals ch. 18)
    person_latent_w: float = 45.0  # the same activity's latent share (~66 g/h of water)
    lighting_w_per_m2: float = 9.0  # GB 50034-2013 office target value
    equipment_w_per_m2: float = 8.0  # counters' PCs, kiosks, screens, printers while open
    standby_w_per_m2: float = 1.5  # what stays on at night (network, emergency lighting)
    solar_to_air: float = 0.5  # the rest warms the floor (the mass node)
    max_substep_s: float = 60.0  # explicit Euler stays stable well below the air node's ~10 min constant

    @property
    def volume_m3(self) -> float:
        return self.floor_area_m2 * self.height_m

    @property
    def c_air(self) -> float:
        return AIR_DENSITY * AIR_CP * self.volume_m3 * self.furniture_factor

    @property
    def c_mass(self) -> float:
        return self.mass_capacity_j_per_k_m2 * self.floor_area_m2

    @property
    def h_air_mass(self) -> float:
        return self.h_air_mass_w_per_k_m2 * self.floor_area_m2


class Room:
    """The thermal state of one floor, stepped by its owner (the simulation, a test, the bench).

    Inputs are plain attributes set between steps: ``people`` (from the queue), ``open`` (lights
    and equipment on), ``weather`` and ``ac`` (any :class:`AcLoad`, or None). ``hour`` is the
    local hour of day the room believes it is; :meth:`step` advances it.
    """

    def __init__(
        self,
        params: RoomParams | None = None,
        weather: Weather = SUMMER_SHANGHAI,
        *,
        hour: float = 0.0,
        t_air: float | None = None,
        t_mass: float | None = None,
        rh: float = 55.0,
        ac: AcLoad | None = None,
    ) -> None:
        self.params = params or RoomParams()
        self.weather = weather
        self.hour = hour % 24.0
        start = weather.temperature(hour) if t_air is None else t_air
        self.t_air = start
        self.t_mass = start if t_mass is None else t_mass
        self.w = humidity_ratio(self.t_air, rh)
        self.people = 0
        self.open = False
        self.ac = ac
        self.ac_heat_w = 0.0  # the last sensible heat the air conditioning put in (W, negative cooling)

    @property
    def rh(self) -> float:
        return relative_humidity(self.t_air, self.w)

    @property
    def outdoor(self) -> float:
        return self.weather.temperature(self.hour)

    def internal_w(self) -> float:
        p = self.params
        per_m2 = p.lighting_w_per_m2 + p.equipment_w_per_m2 if self.open else p.standby_w_per_m2
        return per_m2 * p.floor_area_m2

    def ventilation_w_per_k(self) -> float:
        return self._infiltration_kg_s() * AIR_CP + self._fresh_air_kg_s() * AIR_CP

    def _infiltration_kg_s(self) -> float:
        p = self.params
        return p.infiltration_ach * p.volume_m3 / 3600.0 * AIR_DENSITY

    def _fresh_air_kg_s(self) -> float:
        p = self.params
        return p.fresh_air_m3h_per_person * max(0, self.people) / 3600.0 * AIR_DENSITY

    def step(self, dt_s: float) -> None:
        """Advance ``dt_s`` seconds (sub-stepped for stability)."""
        if dt_s <= 0:
            return
        n = max(1, math.ceil(dt_s / self.params.max_substep_s))
        h = dt_s / n
        for _ in range(n):
            self._substep(h)

    def _substep(self, dt: float) -> None:
        p = self.params
        t_out = self.outdoor
        solar = self.weather.solar_w(self.hour)
        h_ve = self.ventilation_w_per_k()
        ac = self.ac.heat_w(self.t_air, t_out, dt) if self.ac is not None else 0.0
        self.ac_heat_w = ac
        q_air = (
            (p.h_air_out_w_per_k + h_ve) * (t_out - self.t_air)
            + p.h_air_mass * (self.t_mass - self.t_air)
            + p.person_sensible_w * max(0, self.people)
            + self.internal_w()
            + p.solar_to_air * solar
            + ac
        )
        q_mass = (
            p.h_air_mass * (self.t_air - self.t_mass)
            + p.h_mass_out_w_per_k * (t_out - self.t_mass)
            + (1.0 - p.solar_to_air) * solar
        )
        # Moisture: people add, ventilation exchanges with outdoors, the coil condenses.
        m_air = AIR_DENSITY * p.volume_m3
        w_out = self.weather.humidity_ratio
        rh = relative_humidity(self.t_air, self.w)
        latent_out = self.ac.latent_w(self.t_air, rh) if self.ac is not None else 0.0
        water = (
            p.person_latent_w * max(0, self.people) / LATENT_HEAT
            + self._infiltration_kg_s() * (w_out - self.w)
            + self._fresh_air_kg_s() * (min(w_out, p.fresh_air_max_w) - self.w)
            - latent_out / LATENT_HEAT
        )
        self.t_air += q_air * dt / p.c_air
        self.t_mass += q_mass * dt / p.c_mass
        self.w = max(0.0005, min(self.w + water * dt / m_air, humidity_ratio(self.t_air, 100.0)))
        self.hour = (self.hour + dt / 3600.0) % 24.0
