"""The energy meter component: the climate zones' states in, today's kWh and comfort out.

It samples every zone on each :class:`~hallctl.events.ClimateState` and on a fixed tick
(so a quiet zone still accrues run time), feeds the pure :class:`EnergyLedger`, saves the
day's totals through the store's typed methods (every tick and at stop, so a restart
continues today's figures) and publishes a :class:`~hallctl.events.ClimateEnergy` per zone
(MQTT ``climate/<zone>/energy``, HA's Energy dashboard).

Each unit is sampled from what it last reported (its read-back :class:`drivers.aircon.AcState`
from the climate component: power, mode, and the compressor's running flag when the unit
reports one; ``running`` unknown counts as running while powered, at full load). A unit with
no read-back (not answered yet, or silent since) is taken to do what the zone's action says
(``cooling`` → cooling at full load, ``idle`` → on, compressor stopped): an upper estimate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Protocol

from drivers.aircon import AcState
from hallctl import events as ev
from hallctl.bus import Bus, Subscription
from hallctl.climate.energy import EnergyLedger, EnergySample, UnitRating, UnitSample, ZoneDay
from hallctl.config import ClimateZoneConfig, Config, parse_hours
from hallctl.errors import StoreUnavailable
from hallctl.store.rows import ClimateEnergyRow
from hallctl.tasks import cancel_and_wait

log = logging.getLogger(__name__)

_ACTION_MODE = {"cooling": "cool", "heating": "heat", "drying": "dry", "fan": "fan_only"}


class EnergyStore(Protocol):
    async def climate_energy(self, day: date) -> list[ClimateEnergyRow]: ...

    async def save_climate_energy(self, rows: list[ClimateEnergyRow], at: datetime) -> None: ...


def in_opening_hours(cfg: Config, now: datetime) -> bool:
    """Whether any category is open now: the hall's opening hours as the queue applies them."""
    local = now.astimezone(cfg.hall.tz)
    return any(
        span.contains(local.weekday(), local.time()) for c in cfg.category for span in (parse_hours(h) for h in c.hours)
    )


def zone_units(cfg: Config, z: ClimateZoneConfig, state: ev.ClimateState) -> tuple[UnitSample, ...]:
    """The zone's units as its action implies (no read-back yet; see the module docstring)."""
    mode = _ACTION_MODE.get(state.action)
    on = state.mode != "off"
    return tuple(
        UnitSample(u.id, power=on, mode=mode or (state.mode if state.mode in _ACTION_MODE.values() else "cool"),
                   running=mode is not None)
        for u in cfg.climate_unit if u.zone == z.id
    )  # fmt: skip


def sample_units(
    cfg: Config, z: ClimateZoneConfig, state: ev.ClimateState, readbacks: Mapping[str, AcState]
) -> tuple[UnitSample, ...]:
    """The zone's units as they reported themselves; those without a read-back as the action implies."""
    implied = {u.unit: u for u in zone_units(cfg, z, state)}
    out = []
    for unit_id, guess in implied.items():
        st = readbacks.get(unit_id)
        if st is None:
            out.append(guess)
            continue
        # ``auto`` on the unit: it is doing what the zone's action says, when that is a mode.
        mode = _ACTION_MODE.get(state.action, "cool") if st.mode == "auto" else st.mode
        out.append(UnitSample(unit_id, power=st.power, mode=mode, running=st.running if st.power else False))
    return tuple(out)


def to_row(zd: ZoneDay) -> ClimateEnergyRow:
    r = zd.run_s
    return ClimateEnergyRow(
        zd.day, zd.zone, r["cool"], r["heat"], r["dry"], r["fan_only"], zd.kwh, zd.open_s, zd.in_band_s, zd.degree_hours
    )


def from_row(row: ClimateEnergyRow) -> ZoneDay:
    return ZoneDay(
        zone=row.zone,
        day=row.day,
        run_s={"cool": row.run_cool_s, "heat": row.run_heat_s, "dry": row.run_dry_s, "fan_only": row.run_fan_s},
        kwh=row.kwh,
        open_s=row.open_s,
        in_band_s=row.in_band_s,
        degree_hours=row.degree_hours,
    )


def energy_event(at: datetime, zd: ZoneDay) -> ev.ClimateEnergy:
    share = zd.share_in_band
    return ev.ClimateEnergy(
        at=at,
        zone=zd.zone,
        day=zd.day.isoformat(),
        kwh=round(zd.kwh, 3),
        cool_hours=round(zd.run_s["cool"] / 3600.0, 3),
        heat_hours=round(zd.run_s["heat"] / 3600.0, 3),
        dry_hours=round(zd.run_s["dry"] / 3600.0, 3),
        fan_hours=round(zd.run_s["fan_only"] / 3600.0, 3),
        open_hours=round(zd.open_s / 3600.0, 3),
        share_in_band=None if share is None else round(share, 4),
        degree_hours=round(zd.degree_hours, 3),
    )


class EnergyMeter:
    name = "climate_energy"

    def __init__(
        self,
        cfg: Config,
        bus: Bus,
        clock: Callable[[], datetime],
        store: EnergyStore,
        *,
        tick_s: float = 60.0,
        states: Callable[[], list[ev.ClimateState]] | None = None,
        readbacks: Callable[[str], Mapping[str, AcState]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.bus = bus
        self.clock = clock
        self.store = store
        self.tick_s = tick_s
        self._initial = states  # the zones' present states (they were published before this started)
        self._readbacks = readbacks  # zone -> {unit id: its last read-back} (the climate component)
        self.zones = {z.id: z for z in cfg.climate_zone}
        ratings = {
            u.id: UnitRating(u.rated_cooling_kw, u.rated_heating_kw, u.part_load_power) for u in cfg.climate_unit
        }
        self.ledger = EnergyLedger(
            {z.id: (z.comfort_low, z.comfort_high) for z in cfg.climate_zone},
            ratings,
            cfg.hall.tz,
            day_reset_hour=cfg.hall.day_reset_hour,
            max_gap_s=max(900.0, 3 * tick_s),
        )
        self._states: dict[str, ev.ClimateState] = {}
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._dirty: dict[tuple[date, str], ZoneDay] = {}

    async def start(self) -> None:
        today = self.ledger.business_day(self.clock())
        self.ledger.restore(from_row(r) for r in await self.store.climate_energy(today) if r.zone in self.zones)
        self._sub = self.bus.subscribe("climate_energy", self._on_event, (ev.ClimateState,))
        for state in self._initial() if self._initial is not None else ():
            self._on_event(state)
        self._task = asyncio.create_task(self._ticker(), name="climate_energy")
        now = self.clock()
        for zd in self.ledger.day(today):
            self.bus.publish(energy_event(now, zd))

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await self.bus.unsubscribe(sub)
        self._sample_all()
        await self._save()

    def day(self, day: date) -> list[ZoneDay]:
        """The zones' totals of ``day`` as counted so far (today: up to the last sample)."""
        return self.ledger.day(day)

    def today(self) -> date:
        return self.ledger.business_day(self.clock())

    async def totals(self, day: date) -> list[ZoneDay]:
        """``day``'s totals: from memory when this process counted it, else as saved."""
        if any((day, z) in self.ledger.days for z in self.zones) or day == self.today():
            self._sample_all()
            return self.ledger.day(day)
        saved = {r.zone: from_row(r) for r in await self.store.climate_energy(day)}
        return [saved.get(z) or ZoneDay(z, day) for z in self.zones]

    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.ClimateState) and event.zone in self.zones:
            self._states[event.zone] = event
            self._sample(event.zone)

    def _sample(self, zone: str) -> None:
        state = self._states.get(zone)
        if state is None:
            return
        now = self.clock()
        sample = EnergySample(
            at=now,
            zone=zone,
            temperature=state.current,
            in_hours=in_opening_hours(self.cfg, now),
            units=sample_units(
                self.cfg, self.zones[zone], state, self._readbacks(zone) if self._readbacks is not None else {}
            ),
        )
        for zd in self.ledger.add(sample):
            self._dirty[(zd.day, zd.zone)] = zd

    def _sample_all(self) -> None:
        for zone in self.zones:
            self._sample(zone)

    async def _save(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, {}
        try:
            await self.store.save_climate_energy([to_row(zd) for zd in dirty.values()], self.clock())
        except StoreUnavailable as exc:  # retried next tick; the totals stay in memory meanwhile
            log.warning("climate energy: saving today's totals failed (%s); retrying next tick", exc)
            for k, zd in dirty.items():
                self._dirty.setdefault(k, zd)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            self._sample_all()
            await self._save()
            now = self.clock()
            today = self.ledger.business_day(now)
            for zd in self.ledger.day(today):
                self.bus.publish(energy_event(now, zd))
            # Yesterday stays in memory for the API until the store has it; then it is dropped.
            for key in [k for k in self.ledger.days if k[0] < today - timedelta(days=1)]:
                del self.ledger.days[key]
