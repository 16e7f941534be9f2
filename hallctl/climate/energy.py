"""Energy and comfort accounting per zone per day (pure: samples in, daily totals out).

Why here and pure: the figures a hall shows for 低碳管理 (today's kWh, how much of the
opening hours the hall was comfortable) must be the same whether they come from the
daemon's live samples, a restart's restored totals or the bench's simulated day, so one
function computes them from timestamped samples and nothing else.

A sample is what the zone looked like at one instant: each unit's reported state, the
zone's temperature (the fused reading, None when no sensor is fresh), and whether the hall
is within its opening hours. Between two samples the earlier one holds (zero-order hold),
for at most ``max_gap_s``: a longer gap (the daemon was down, the bus dropped events) is
not counted, because guessing across it would invent energy and comfort.

Figures, per zone and business day:

* ``run_s[mode]``: seconds during which at least one of the zone's units ran its
  compressor in ``mode`` (cool, heat, dry; ``fan_only`` counts the fan); a unit that reports
  no compressor state counts as running whenever it is on.
* ``kwh``: estimated electricity, each unit's rated input power for the mode
  (``rated_cooling_kw`` / ``rated_heating_kw``) times the input power at its part load (from the
  unit's ``part_load_power`` table, else the part load itself; full load when the unit does not
  report one); fan only is :data:`FAN_SHARE` of the cooling rating.
* ``open_s``, ``in_band_s``: seconds within opening hours with a known temperature, and of
  those the seconds inside the comfort band (inclusive).
* ``degree_hours``: K·h outside the band during opening hours (2 K above for 30 min = 1.0).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta, tzinfo

__all__ = [
    "FAN_SHARE",
    "RUN_MODES",
    "EnergyLedger",
    "EnergySample",
    "UnitRating",
    "UnitSample",
    "ZoneDay",
]

RUN_MODES = ("cool", "heat", "dry", "fan_only")
FAN_SHARE = 0.05  # an indoor unit's fan draws a few % of the unit's rated cooling input


@dataclasses.dataclass(frozen=True, slots=True)
class UnitRating:
    """A unit's rated electrical input (kW) when cooling and when heating at full load.

    ``part_load_power``: the maker's table of (load, input power) as fractions of full load,
    ending at (1.0, ·); empty means power proportional to load. An inverter draws less than
    its share at part load (its COP is best around half load), so without the table the
    estimate overstates what a modulating unit used.
    """

    rated_cooling_kw: float
    rated_heating_kw: float
    part_load_power: tuple[tuple[float, float], ...] = ()

    def power_fraction(self, plr: float) -> float:
        """Input power at part load ``plr`` as a fraction of the full-load input."""
        table = self.part_load_power
        if not table:
            return plr
        load0, power0 = 0.0, 0.0  # below the first point: in proportion, down to nothing at no load
        for load, power in table:
            if plr <= load:
                return power0 + (power - power0) * (plr - load0) / (load - load0)
            load0, power0 = load, power
        return power0


@dataclasses.dataclass(frozen=True, slots=True)
class UnitSample:
    """One unit's state at a sample (from its read-back :class:`drivers.aircon.AcState`)."""

    unit: str
    power: bool
    mode: str  # cool | heat | dry | fan_only (auto resolved to what it is doing, when known)
    running: bool | None = None  # compressor on; None: unknown (then ``power`` counts)
    part_load: float | None = None  # 0..1; None: unknown (then 1.0 while running)


@dataclasses.dataclass(frozen=True, slots=True)
class EnergySample:
    at: datetime  # aware
    zone: str
    temperature: float | None
    in_hours: bool
    units: tuple[UnitSample, ...] = ()


@dataclasses.dataclass
class ZoneDay:
    """One zone's totals for one business day."""

    zone: str
    day: date
    run_s: dict[str, float] = dataclasses.field(default_factory=lambda: dict.fromkeys(RUN_MODES, 0.0))
    kwh: float = 0.0
    open_s: float = 0.0
    in_band_s: float = 0.0
    degree_hours: float = 0.0

    @property
    def share_in_band(self) -> float | None:
        """Share (0..1) of the opening hours with a known temperature spent in band; None before any."""
        return self.in_band_s / self.open_s if self.open_s > 0 else None

    def to_dict(self) -> dict[str, object]:
        share = self.share_in_band
        return {
            "zone": self.zone,
            "day": self.day.isoformat(),
            "kwh": round(self.kwh, 4),
            "run_hours": {m: round(s / 3600.0, 4) for m, s in self.run_s.items()},
            "open_hours": round(self.open_s / 3600.0, 4),
            "in_band_hours": round(self.in_band_s / 3600.0, 4),
            "share_in_band": None if share is None else round(share, 4),
            "degree_hours": round(self.degree_hours, 3),
        }


def _running(u: UnitSample) -> bool:
    if not u.power:
        return False
    return u.running if u.running is not None else True


def _unit_kw(u: UnitSample, rating: UnitRating | None) -> float:
    if rating is None or not _running(u):
        return 0.0
    if u.mode == "fan_only":
        return rating.rated_cooling_kw * FAN_SHARE
    rated = rating.rated_heating_kw if u.mode == "heat" else rating.rated_cooling_kw
    plr = 1.0 if u.part_load is None else max(0.0, min(1.0, u.part_load))
    return rated * rating.power_fraction(plr)


class EnergyLedger:
    """Accumulates samples into :class:`ZoneDay` totals; the day boundary is the hall's business day."""

    def __init__(
        self,
        bands: Mapping[str, tuple[float, float]],
        ratings: Mapping[str, UnitRating],
        tz: tzinfo,
        *,
        day_reset_hour: int = 0,
        max_gap_s: float = 900.0,
    ) -> None:
        self.bands = dict(bands)
        self.ratings = dict(ratings)
        self.tz = tz
        self.day_reset_hour = day_reset_hour
        self.max_gap_s = max_gap_s
        self.days: dict[tuple[date, str], ZoneDay] = {}
        self._last: dict[str, EnergySample] = {}

    def business_day(self, at: datetime) -> date:
        return (at.astimezone(self.tz) - timedelta(hours=self.day_reset_hour)).date()

    def _next_boundary(self, at: datetime) -> datetime:
        day = self.business_day(at) + timedelta(days=1)
        local = datetime(day.year, day.month, day.day, self.day_reset_hour, tzinfo=self.tz)
        return local

    def zone_day(self, zone: str, day: date) -> ZoneDay:
        key = (day, zone)
        zd = self.days.get(key)
        if zd is None:
            zd = self.days[key] = ZoneDay(zone, day)
        return zd

    def restore(self, totals: Iterable[ZoneDay]) -> None:
        """Totals saved before a restart: accounting continues from them."""
        for zd in totals:
            self.days[(zd.day, zd.zone)] = zd

    def add(self, sample: EnergySample) -> list[ZoneDay]:
        """Count the interval since the zone's previous sample; returns the days it touched."""
        prev = self._last.get(sample.zone)
        if prev is not None and sample.at < prev.at:
            return []  # out of order: ignored, the earlier one already holds
        self._last[sample.zone] = sample
        if prev is None:
            return []
        gap = (sample.at - prev.at).total_seconds()
        if gap <= 0 or gap > self.max_gap_s:
            return []
        touched: list[ZoneDay] = []
        start = prev.at
        while start < sample.at:
            end = min(sample.at, self._next_boundary(start))
            zd = self.zone_day(prev.zone, self.business_day(start))
            self._count(zd, prev, (end - start).total_seconds())
            touched.append(zd)
            start = end
        return touched

    def _count(self, zd: ZoneDay, s: EnergySample, seconds: float) -> None:
        for mode in RUN_MODES:
            if any(_running(u) and u.mode == mode for u in s.units):
                zd.run_s[mode] += seconds
        kw = sum(_unit_kw(u, self.ratings.get(u.unit)) for u in s.units)
        zd.kwh += kw * seconds / 3600.0
        if s.in_hours and s.temperature is not None:
            low, high = self.bands.get(s.zone, (float("-inf"), float("inf")))
            zd.open_s += seconds
            if low <= s.temperature <= high:
                zd.in_band_s += seconds
            else:
                outside = low - s.temperature if s.temperature < low else s.temperature - high
                zd.degree_hours += outside * seconds / 3600.0

    def day(self, day: date) -> list[ZoneDay]:
        """Every zone's totals for ``day``, zones in band-config order (zones without samples at zero)."""
        zones = list(self.bands) + sorted({z for d, z in self.days if d == day and z not in self.bands})
        return [self.days.get((day, z)) or ZoneDay(z, day) for z in zones]
