"""The climate component: each zone's inputs gathered, decided, applied to its units.

A bus subscriber to :class:`~hallctl.events.SensorState` (the service owns the
readings), :class:`~hallctl.events.QueueState` and :class:`~hallctl.events.WindowState`
(occupancy from the queue), and the owner of its own state: standing mode and target
(config, ``climate.set``), manual overrides with an expiry and learned rates, kept
across restarts through the store's typed methods (:class:`ClimateStore`).

Every ``[climate] tick_s`` (and at once when a reading or a command arrives) each zone's
:class:`~hallctl.climate.controller.ZoneInputs` go through the pure
:func:`~hallctl.climate.controller.decide`; the command goes to the zone's units
(:class:`drivers.aircon.AcUnit`), each bounded by ``ack_timeout_s``. A unit that does
not acknowledge, reports a fault or reads back something else raises one alert until
it is well again; so do stale sensors and an out-of-band temperature.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Protocol

from drivers.aircon import AcCommand, AcFault, AcMismatch, AcNoAck, AcState, AcUnit, AcUnsupported
from drivers.errors import DeviceError
from hallctl import events as ev
from hallctl.bus import Bus, Subscription
from hallctl.climate.controller import (
    ClimateMode,
    ControlState,
    LearnedRates,
    Occupancy,
    Override,
    Reading,
    ZoneDecision,
    ZoneInputs,
    decide,
)
from hallctl.climate.schedule import zone_categories, zone_opening, zone_spans
from hallctl.climate.units import UnitFactory, make_unit
from hallctl.climate_view import unknown_zone
from hallctl.config import CLIMATE_MODES, ClimateUnitConfig, ClimateZoneConfig, Config, OpeningSpan
from hallctl.errors import Refused
from hallctl.store.rows import ClimateOverrideRow, ClimateRatesRow
from hallctl.tasks import cancel_and_wait

log = logging.getLogger(__name__)

UNIT_ALERTS = {  # alert code, Chinese and English (English-mode pages show ``message_en``)
    AcNoAck: ("climate_unit_no_ack", "未应答", "is not answering"),
    AcFault: ("climate_unit_fault", "报告故障", "reports a fault"),
    AcMismatch: ("climate_unit_mismatch", "回读与指令不一致", "reads back other than commanded"),
    AcUnsupported: ("climate_unit_unsupported", "不支持该指令", "cannot do what was asked"),
}


class ClimateStore(Protocol):
    """What the climate component keeps across restarts (the Store has these typed methods)."""

    async def climate_setpoints(self) -> dict[str, tuple[str, float]]: ...

    async def save_climate_setpoint(self, zone: str, mode: str, target: float, at: datetime) -> None: ...

    async def climate_overrides(self) -> list[ClimateOverrideRow]: ...

    async def save_climate_override(self, row: ClimateOverrideRow) -> None: ...

    async def clear_climate_override(self, zone: str) -> None: ...

    async def climate_rates(self) -> list[ClimateRatesRow]: ...

    async def save_climate_rates(self, row: ClimateRatesRow) -> None: ...


@dataclasses.dataclass
class _Unit:
    cfg: ClimateUnitConfig
    unit: AcUnit
    applied: AcCommand | None = None  # acknowledged and read back
    alarm: str | None = None  # the alert raised and not yet cleared
    last: AcState | None = None


@dataclasses.dataclass
class _Zone:
    cfg: ClimateZoneConfig
    spans: tuple[OpeningSpan, ...]
    categories: frozenset[str]
    mode: ClimateMode
    target: float
    rates: LearnedRates
    control: ControlState
    override: Override | None = None
    decision: ZoneDecision | None = None
    alarms: frozenset[str] = frozenset()
    out_of_band: bool = False
    units: list[_Unit] = dataclasses.field(default_factory=list)


class ClimateZones:
    """The climate component: one controlled state per configured zone."""

    name = "climate"

    def __init__(
        self,
        cfg: Config,
        bus: Bus,
        clock: Callable[[], datetime],
        setpoints: ClimateStore | None = None,
        *,
        unit_factory: UnitFactory = make_unit,
        seed: Callable[[], Iterable[ev.Event]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.setpoints = setpoints
        self.bus = bus
        self.clock = clock
        self.unit_factory = unit_factory
        self.seed = seed
        rules = cfg.climate
        self._zones: dict[str, _Zone] = {
            z.id: _Zone(
                cfg=z,
                spans=zone_spans(cfg, z),
                categories=frozenset(zone_categories(cfg, z)),
                mode=z.mode,
                target=z.target,
                rates=LearnedRates(rules.default_warmup_c_per_h, rules.default_cooldown_c_per_h),
                control=ControlState(),
            )
            for z in cfg.climate_zone
        }
        self._readings: dict[str, Reading] = {}
        self._waiting: dict[str, int] = {}
        self._windows: dict[int, str] = {}  # window → state (called/serving count as people)
        self._window_floor = {w.number: w.floor for w in cfg.window}
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._dirty_rates: set[str] = set()
        self._expired: set[str] = set()
        self.ticks = 0  # ticks begun (observable by tests and health)
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

    # ---- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        if not self._zones:
            return
        if self.setpoints is not None:
            await self._load(self.setpoints)
        if self.seed is not None:
            for event in self.seed():
                self._observe(event)
        start = self.clock()
        for u in self.cfg.climate_unit:
            zone = self._zones[u.zone]
            try:
                zone.units.append(_Unit(u, self.unit_factory(u)))
            except DeviceError as exc:
                self._unit_alert(u, None, type(exc), str(exc))
        for zone in self._zones.values():
            # A unit may have run a minute before this restart: it waits its minimum off time.
            zone.control = ControlState(compressor_since=start if zone.units else None)
        self._sub = self.bus.subscribe("climate", self._on_event, (ev.SensorState, ev.QueueState, ev.WindowState))
        for zone in self._zones.values():
            self._decide(zone, publish=True)  # every zone's retained state at start
        self._task = asyncio.create_task(self._run(), name="climate")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await self.bus.unsubscribe(sub)
        for zone in self._zones.values():
            for u in zone.units:
                try:
                    await asyncio.wait_for(u.unit.release(), self.cfg.climate.ack_timeout_s)
                    await u.unit.close()
                except (DeviceError, TimeoutError) as exc:
                    log.warning("climate unit %s: release/close failed: %s", u.cfg.id, exc)

    async def _load(self, store: ClimateStore) -> None:
        for zone_id, (mode, target) in (await store.climate_setpoints()).items():
            zone = self._zones.get(zone_id)
            if zone is None:
                continue  # a zone no longer in the config
            z = zone.cfg
            if mode not in CLIMATE_MODES or not (z.min_temp <= target <= z.max_temp):
                log.warning(
                    "climate zone %s: stored setpoint %s/%s no longer valid; using the config", z.id, mode, target
                )
                continue
            zone.mode, zone.target = _mode(mode), target
        for row in await store.climate_overrides():
            zone = self._zones.get(row.zone)
            if zone is not None and row.mode in CLIMATE_MODES:
                zone.override = Override(_mode(row.mode), row.target, row.until)
        rules = self.cfg.climate
        for r in await store.climate_rates():
            zone = self._zones.get(r.zone)
            if zone is not None:
                lo, hi = rules.rate_min_c_per_h, rules.rate_max_c_per_h
                zone.rates = LearnedRates(
                    min(max(r.warmup_c_per_h, lo), hi),
                    min(max(r.cooldown_c_per_h, lo), hi),
                    r.warmup_samples,
                    r.cooldown_samples,
                )

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.cfg.climate.tick_s)
            self._wake.clear()
            try:
                await self.tick()
            except Exception:  # one bad tick must not end climate control for the day
                log.exception("climate tick failed")

    async def tick(self) -> None:
        """Decide every zone now, persist what changed, apply the commands to the units."""
        self.ticks += 1
        for zone in self._zones.values():
            self._decide(zone)
        await self._persist()
        await asyncio.gather(*(self._apply(zone) for zone in self._zones.values()))

    def snapshot(self) -> list[ev.ClimateState]:
        return list(self.states.values())

    def decision(self, zone_id: str) -> ZoneDecision | None:
        """The zone's last decision (for the energy accounting, the screens and tests)."""
        zone = self._zones.get(zone_id)
        return None if zone is None else zone.decision

    def unit_states(self, zone_id: str) -> dict[str, AcState]:
        """The last state each of the zone's units reported (read back from it), by unit id.

        A unit that has not answered yet, or whose last answer is older than its last failure,
        is absent: what the energy accounting and the screens show is only what a unit said.
        """
        zone = self._zones.get(zone_id)
        if zone is None:
            return {}
        return {u.cfg.id: u.last for u in zone.units if u.last is not None and u.alarm != "climate_unit_no_ack"}

    def rates(self, zone_id: str) -> LearnedRates:
        return self._zones[zone_id].rates

    # ---- inputs ------------------------------------------------------------------------------

    def _on_event(self, event: ev.Event) -> None:
        self._observe(event)
        if isinstance(event, ev.SensorState):
            for zone in self._zones.values():
                if event.sensor in zone.cfg.sensors:
                    self._decide(zone)
                    self._wake.set()

    def _observe(self, event: ev.Event) -> None:
        if isinstance(event, ev.SensorState):
            self._readings[event.sensor] = Reading(event.temperature, event.humidity, event.at, event.stale)
        elif isinstance(event, ev.QueueState):
            self._waiting[event.category] = event.waiting
        elif isinstance(event, ev.WindowState):
            self._windows[event.window] = event.state

    def _occupancy(self, zone: _Zone) -> Occupancy:
        waiting = sum(n for cat, n in self._waiting.items() if cat in zone.categories)
        floor = zone.cfg.floor
        serving = sum(
            1
            for number, state in self._windows.items()
            if state in ("called", "serving") and (floor is None or self._window_floor.get(number) == floor)
        )
        return Occupancy(waiting=waiting, serving=serving)

    def inputs(self, zone: _Zone, now: datetime) -> ZoneInputs:
        rules = self.cfg.climate
        return ZoneInputs(
            zone=zone.cfg,
            rules=rules,
            now=now,
            readings={s: r for s in zone.cfg.sensors if (r := self._readings.get(s)) is not None},
            opening=zone_opening(self.cfg, zone.cfg, now),
            occupancy=self._occupancy(zone),
            mode=zone.mode,
            target=zone.target,
            override=zone.override,
            rates=zone.rates,
            previous=zone.control,
        )

    # ---- deciding ----------------------------------------------------------------------------

    def _decide(self, zone: _Zone, *, publish: bool = False) -> None:
        now = self.clock()
        inputs = self.inputs(zone, now)
        d = decide(inputs)
        if d.rates != zone.rates:
            zone.rates = d.rates
            self._dirty_rates.add(zone.cfg.id)
        if zone.override is not None and d.override is None:
            zone.override = None
            self._expired.add(zone.cfg.id)
        zone.control, zone.decision = d.state, d
        for alarm in set(d.alarms) - zone.alarms:
            self._alert(
                alarm,
                "warning",
                f"{zone.cfg.name or zone.cfg.id}：全部温湿度传感器失联，空调保持安全模式",
                zone.cfg.id,
                {},
                f"{zone.cfg.name_en or zone.cfg.id}: no temperature sensor answers; "
                "the air conditioning holds a safe mode",
            )
        zone.alarms = frozenset(d.alarms)
        state = ev.ClimateState(
            at=now,
            zone=zone.cfg.id,
            mode=d.mode,
            target=zone.override.target
            if zone.override is not None and zone.override.target is not None
            else zone.target,
            current=None if d.temperature is None else round(d.temperature, 1),
            humidity=None if d.humidity is None else round(d.humidity, 1),
            action=d.action,
            setpoint=d.setpoint,
            overridden=zone.override is not None,
            override_until=None if zone.override is None else zone.override.until,
            occupancy=inputs.occupancy.people,
            open=inputs.opening.open_now,
            reason=d.reason,
            alarms=d.alarms,
        )
        prev = self.states.get(zone.cfg.id)
        self.states[zone.cfg.id] = state
        # Retained state goes to MQTT, SSE and HA: published when it changes, not every tick.
        if publish or prev is None or dataclasses.replace(prev, at=now) != state:
            self.bus.publish(state)
        self._band_alert(zone, state)

    def _band_alert(self, zone: _Zone, state: ev.ClimateState) -> None:
        z, current = zone.cfg, state.current
        if current is not None and not (z.comfort_low <= current <= z.comfort_high):
            if not zone.out_of_band:
                zone.out_of_band = True
                self._alert(
                    "climate_out_of_band",
                    "warning",
                    f"{z.name or z.id}温度{current}°C超出舒适范围",
                    z.id,
                    {"temperature": current, "humidity": state.humidity},
                    f"{z.name_en or z.id}: {current} °C is outside the comfort band "
                    f"{z.comfort_low:g}–{z.comfort_high:g} °C",
                )
        else:
            zone.out_of_band = False

    def _alert(
        self, alert: str, severity: str, message: str, subject: str, data: dict[str, object], message_en: str
    ) -> None:
        self.bus.publish(
            ev.Alert(
                at=self.clock(),
                alert=alert,
                severity=severity,
                message=message,
                message_en=message_en,
                subject=subject,
                data=data,
            )
        )

    async def _persist(self) -> None:
        store = self.setpoints
        dirty, self._dirty_rates = self._dirty_rates, set()
        expired, self._expired = self._expired, set()
        if store is None:
            return
        for zone_id in dirty:
            r = self._zones[zone_id].rates
            row = ClimateRatesRow(
                zone_id, r.warmup_c_per_h, r.cooldown_c_per_h, r.warmup_samples, r.cooldown_samples, self.clock()
            )
            await store.save_climate_rates(row)
        for zone_id in expired:
            if self._zones[zone_id].override is None:
                await store.clear_climate_override(zone_id)

    # ---- units -------------------------------------------------------------------------------

    async def _apply(self, zone: _Zone) -> None:
        if zone.decision is None or not zone.units:
            return
        cmd = zone.decision.command
        await asyncio.gather(*(self._apply_unit(u, cmd) for u in zone.units))

    async def _apply_unit(self, u: _Unit, cmd: AcCommand) -> None:
        """Write when the command changed (or never landed), else read back; alert on the first failure."""
        timeout = self.cfg.climate.ack_timeout_s
        try:
            try:
                if u.applied != cmd:
                    state = await asyncio.wait_for(u.unit.apply(cmd), timeout)
                else:
                    state = await asyncio.wait_for(u.unit.read(), timeout)
            except TimeoutError as exc:
                raise AcNoAck(u.cfg.id, f"no answer within {timeout:g} s") from exc
            u.last = state
            if state.error_code:
                raise AcFault(u.cfg.id, f"error code {state.error_code} {state.error_text}".strip())
            if not state.matches(cmd):
                raise AcMismatch(u.cfg.id, f"read back {state.mode}/{state.setpoint} power={state.power}")
        except (AcNoAck, AcFault, AcMismatch, AcUnsupported) as exc:
            u.applied = None  # write it again next tick
            self._unit_alert(u.cfg, u, type(exc), str(exc))
            return
        except DeviceError as exc:
            u.applied = None
            self._unit_alert(u.cfg, u, AcNoAck, str(exc))
            return
        u.applied = cmd
        if u.alarm is not None:
            log.info("climate unit %s answers again", u.cfg.id)
            u.alarm = None

    def _unit_alert(self, cfg: ClimateUnitConfig, u: _Unit | None, kind: type[DeviceError], detail: str) -> None:
        alert, what, what_en = UNIT_ALERTS.get(kind, UNIT_ALERTS[AcNoAck])
        if u is not None:
            if u.alarm == alert:
                return
            u.alarm = alert
        self._alert(
            alert,
            "critical" if alert != "climate_unit_mismatch" else "warning",
            f"空调{cfg.name or cfg.id}{what}",
            cfg.id,
            {"zone": cfg.zone, "detail": detail},
            f"Air conditioner {cfg.id} {what_en}",
        )

    # ---- commands ----------------------------------------------------------------------------

    async def set(
        self,
        zone_id: str,
        mode: str | None,
        target: float | None,
        *,
        until: datetime | None = None,
        minutes: float | None = None,
    ) -> ev.ClimateState:
        """``climate.set``: a standing mode/target, or with ``until``/``minutes`` an override that expires.

        ``minutes = 0`` ends an override. A standing change ends any override too: it is the newer wish.
        """
        zone = self._zones.get(zone_id)
        if zone is None:
            raise unknown_zone(zone_id)
        z = zone.cfg
        if mode is not None and mode not in CLIMATE_MODES:
            raise Refused("bad_mode", f"未知的空调模式{mode!r}", f"unknown mode {mode!r}")
        if target is not None and not (z.min_temp <= target <= z.max_temp):
            raise Refused(
                "bad_target",
                f"目标温度须在{z.min_temp}至{z.max_temp}°C之间",
                f"target must be within {z.min_temp}..{z.max_temp}",
            )
        now = self.clock()
        if minutes is not None:
            until = None if minutes == 0 else now + timedelta(minutes=minutes)
            if minutes == 0:
                zone.override = None
                if self.setpoints is not None:
                    await self.setpoints.clear_climate_override(zone_id)
        if until is not None:
            if until <= now:
                raise Refused("bad_until", "临时设定的结束时间须在将来", "the override's end is not in the future")
            base = zone.override
            new = Override(
                _mode(mode) if mode is not None else base.mode if base is not None else zone.mode,
                target if target is not None else base.target if base is not None else None,
                until,
            )
            if self.setpoints is not None:
                await self.setpoints.save_climate_override(
                    ClimateOverrideRow(zone_id, new.mode, new.target, until, now)
                )
            zone.override = new
        elif mode is not None or target is not None:
            new_mode, new_target = (
                _mode(mode) if mode is not None else zone.mode,
                target if target is not None else zone.target,
            )
            if self.setpoints is not None:
                await self.setpoints.save_climate_setpoint(zone_id, new_mode, new_target, now)
                if zone.override is not None:
                    await self.setpoints.clear_climate_override(zone_id)
            zone.mode, zone.target, zone.override = new_mode, new_target, None
        self._decide(zone)
        self._wake.set()
        return self.states[zone_id]


def _mode(value: str) -> ClimateMode:
    for m in CLIMATE_MODES:
        if m == value:
            return m
    raise Refused("bad_mode", f"未知的空调模式{value!r}", f"unknown mode {value!r}")
