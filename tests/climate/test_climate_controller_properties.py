"""Property tests of the pure climate controller (hallctl/climate/controller.py), like the queue engine's.

Sequences of generated inputs (temperatures jumping, modes and overrides changing,
sensors going stale, people coming and going) are fed tick by tick through
``decide`` with its own state carried over, and the rules of docs/climate.md are
checked on every decision; a simple room stepping with the commands checks that a
zone with enough capacity stays in its band during opening hours.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.aircon import AcCommand
from hallctl.climate.controller import (
    ALARM_SENSORS_STALE,
    ControlState,
    LearnedRates,
    Occupancy,
    OpeningState,
    Override,
    Reading,
    ZoneDecision,
    ZoneInputs,
    decide,
)
from hallctl.climate.schedule import opening_state
from hallctl.config import ClimateConfig, ClimateZoneConfig, parse_hours
from tests.core.core_helpers import SHANGHAI, T0

ZONE = ClimateZoneConfig(id="floor1", sensors=("s1", "s2", "s3"))
MODES = ("auto", "off", "cool", "heat", "dry", "fan_only")
HOURS = (parse_hours("mon-fri 09:00-17:00"),)
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def rules(**over: Any) -> ClimateConfig:
    return ClimateConfig(**over)


def opening(now: datetime) -> OpeningState:
    return opening_state(HOURS, (), SHANGHAI, now)


step_st = st.fixed_dictionaries(
    {
        "dt": st.integers(min_value=5, max_value=900),
        "temps": st.lists(st.one_of(st.none(), st.floats(min_value=5, max_value=40)), min_size=3, max_size=3),
        "stale": st.lists(st.booleans(), min_size=3, max_size=3),
        "humidity": st.one_of(st.none(), st.floats(min_value=10, max_value=95)),
        "people": st.integers(min_value=0, max_value=60),
        "mode": st.sampled_from(MODES),
        "target": st.floats(min_value=16, max_value=30),
        "override": st.one_of(
            st.none(), st.tuples(st.sampled_from(MODES), st.floats(min_value=16, max_value=30), st.integers(1, 120))
        ),
    }
)
rules_st = st.builds(
    ClimateConfig,
    cool_min_setpoint=st.floats(min_value=24, max_value=28),
    heat_max_setpoint=st.floats(min_value=16, max_value=22),
    min_on_s=st.sampled_from([0.0, 120.0, 420.0]),
    min_off_s=st.sampled_from([0.0, 300.0, 480.0]),
    hysteresis=st.sampled_from([0.3, 0.5, 1.0]),
)


def run(cfg: ClimateConfig, steps: list[dict[str, Any]]) -> list[tuple[ZoneInputs, ZoneDecision]]:
    """Feed ``steps`` through decide with its state and override carried over; every (inputs, decision)."""
    now = T0 - timedelta(hours=3)
    state = ControlState()
    rates = LearnedRates(cfg.default_warmup_c_per_h, cfg.default_cooldown_c_per_h)
    override: Override | None = None
    out = []
    for s in steps:
        now += timedelta(seconds=s["dt"])
        if s["override"] is not None:
            mode, target, minutes = s["override"]
            override = Override(mode, target, now + timedelta(minutes=minutes))
        readings = {
            sid: Reading(t, s["humidity"], now - timedelta(seconds=10), stale)
            for sid, t, stale in zip(ZONE.sensors, s["temps"], s["stale"], strict=True)
        }
        inp = ZoneInputs(
            zone=ZONE,
            rules=cfg,
            now=now,
            readings=readings,
            opening=opening(now),
            occupancy=Occupancy(waiting=s["people"], serving=0),
            mode=s["mode"],
            target=s["target"],
            override=override,
            rates=rates,
            previous=state,
        )
        d = decide(inp)
        out.append((inp, d))
        state, rates, override = d.state, d.rates, d.override
    return out


@PROPS
@given(cfg=rules_st, steps=st.lists(step_st, min_size=1, max_size=60))
def test_never_short_cycles(cfg: ClimateConfig, steps: list[dict[str, Any]]) -> None:
    """A compressor start is at least min_off after the last stop; a stop at least min_on after the start."""
    changed_at: datetime | None = None
    for inp, d in run(cfg, steps):
        before, after = inp.previous.compressor, d.state.compressor
        if (before is None) != (after is None):
            if changed_at is not None:
                held = (inp.now - changed_at).total_seconds()
                assert held >= (cfg.min_on_s if before is not None else cfg.min_off_s), (before, after, held, d.reason)
            changed_at = inp.now
        elif before is not None and after is not None and before != after:
            # heat <-> cool/dry never directly (the reversing valve): only cool <-> dry keeps running
            assert {before, after} == {"cool", "dry"}, d.reason


@PROPS
@given(cfg=rules_st, steps=st.lists(step_st, min_size=1, max_size=60))
def test_never_cools_below_nor_heats_above_the_limits(cfg: ClimateConfig, steps: list[dict[str, Any]]) -> None:
    for _inp, d in run(cfg, steps):
        c = d.command
        if c.power and c.mode in ("cool", "dry"):
            # Within float noise: a limit generated as 16.999999999999996 is 17 °C to any thermostat.
            assert c.setpoint >= cfg.cool_min_setpoint - 1e-9, d.reason
        if c.power and c.mode == "heat":
            assert c.setpoint <= cfg.heat_max_setpoint + 1e-9, d.reason
        assert d.action in ("cooling", "heating", "drying", "fan", "idle", "off")
        assert (d.action in ("cooling", "heating", "drying", "fan")) == c.power


@PROPS
@given(cfg=rules_st, steps=st.lists(step_st, min_size=1, max_size=40))
def test_overrides_expire(cfg: ClimateConfig, steps: list[dict[str, Any]]) -> None:
    """Past its end an override is dropped (the caller clears it) and the standing mode rules again."""
    for inp, d in run(cfg, steps):
        ov = inp.override
        if ov is not None and ov.until is not None and inp.now >= ov.until:
            assert d.override is None and d.mode == inp.mode and "override expired" in d.reason
        elif ov is not None:
            assert d.override == ov and d.mode == ov.mode


@PROPS
@given(
    cfg=rules_st,
    steps=st.lists(step_st, min_size=1, max_size=40),
    why=st.sampled_from(["stale", "old", "missing"]),
)
def test_all_sensors_stale_hold_a_safe_mode_and_alarm(
    cfg: ClimateConfig, steps: list[dict[str, Any]], why: str
) -> None:
    """No fresh temperature: the alarm, no compressor started blind, a running one only at its limit setpoint."""
    prepared = []
    for s in steps:
        s = dict(s)
        if why == "stale":
            s["stale"] = [True, True, True]
        elif why == "missing":
            s["temps"] = [None, None, None]
        prepared.append(s)
    results = run(cfg, prepared) if why != "old" else _run_old(cfg, prepared)
    for inp, d in results:
        assert ALARM_SENSORS_STALE in d.alarms and d.temperature is None
        if inp.previous.compressor is None:
            assert d.state.compressor is None, d.reason
        if d.command.power and d.command.mode in ("cool", "dry"):
            assert d.command.setpoint >= cfg.cool_min_setpoint
        if d.command.power and d.command.mode == "heat":
            assert d.command.setpoint <= cfg.heat_max_setpoint


def _run_old(cfg: ClimateConfig, steps: list[dict[str, Any]]) -> list[tuple[ZoneInputs, ZoneDecision]]:
    """As :func:`run`, but every reading is older than ``reading_max_age_s`` (a sensor that went silent)."""
    out: list[tuple[ZoneInputs, ZoneDecision]] = []
    for inp, _ in run(cfg, steps):
        late = inp.now - timedelta(seconds=cfg.reading_max_age_s + 1)
        old = {k: Reading(r.temperature, r.humidity, late, False) for k, r in inp.readings.items()}
        prev = out[-1][1].state if out else inp.previous
        fixed = dataclasses.replace(inp, readings=old, previous=prev)
        out.append((fixed, decide(fixed)))
    return out


@pytest.mark.parametrize(("ride_band", "setpoint"), [(False, 20.0), (True, 19.5)])
def test_auto_mode_heats_to_the_limit_not_to_the_26_degree_target(ride_band: bool, setpoint: float) -> None:
    """The bug of issue 13: auto with the default 26 °C target heated toward 26 °C in winter.

    Holding a setpoint it heats to the 20 °C limit; riding the band (the default) one swing
    above the band's low edge, 18 + 0.5 + 2 × 0.5.
    """
    now = T0.replace(hour=10)
    d = decide(
        ZoneInputs(
            zone=ZONE,
            rules=rules(ride_band=ride_band),
            now=now,
            readings={"s1": Reading(15.0, 40.0, now)},
            opening=opening(now),
            occupancy=Occupancy(waiting=5),
            mode="auto",
            target=26.0,
            override=None,
            rates=LearnedRates(3.0, 3.0),
            previous=ControlState(),
        )
    )
    assert d.command == AcCommand(power=True, mode="heat", setpoint=setpoint) and d.action == "heating"


def test_median_fusion_ignores_one_wild_sensor() -> None:
    now = T0.replace(hour=10)
    readings = {"s1": Reading(24.0, 50, now), "s2": Reading(24.4, 52, now), "s3": Reading(39.0, 90, now)}
    d = decide(
        ZoneInputs(
            ZONE,
            rules(),
            now,
            readings,
            opening(now),
            Occupancy(5),
            "auto",
            26.0,
            None,
            LearnedRates(3, 3),
            ControlState(),
        )
    )
    assert d.temperature == 24.4 and d.humidity == 52 and d.action == "idle"


# ---- a room with enough capacity stays in band during opening hours --------------------------------


def room_step(temp: float, outdoor: float, people: int, cmd: AcCommand, dt_h: float, capacity: float) -> float:
    """An RC room: leak toward outdoor, people's heat, and a unit that drives toward its setpoint."""
    drift = 0.1 * (outdoor - temp) + 0.03 * people
    temp += drift * dt_h
    if cmd.power and cmd.mode in ("cool", "dry") and temp > cmd.setpoint:
        temp = max(cmd.setpoint, temp - capacity * dt_h)
    elif cmd.power and cmd.mode == "heat" and temp < cmd.setpoint:
        temp = min(cmd.setpoint, temp + capacity * dt_h)
    return temp


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    outdoor=st.floats(min_value=-5, max_value=36),
    start=st.floats(min_value=8, max_value=34),
    people=st.lists(st.integers(min_value=0, max_value=40), min_size=14, max_size=14),
    target=st.floats(min_value=18, max_value=28),
    capacity=st.floats(min_value=8, max_value=12),
)
def test_room_stays_in_band_during_opening_hours(
    outdoor: float, start: float, people: list[int], target: float, capacity: float
) -> None:
    """05:00-18:00 in 30 s ticks: from wherever the night left it, in band from 09:00 to 17:00."""
    cfg = rules()
    zone = ClimateZoneConfig(id="floor1", sensors=("s1",))
    now = T0.replace(hour=5)
    temp = start
    state = ControlState()
    rates = LearnedRates(cfg.default_warmup_c_per_h, cfg.default_cooldown_c_per_h)
    dt = timedelta(seconds=30)
    cycles = 0
    while now < T0.replace(hour=18):
        hour_people = people[now.hour - 5] if 9 <= now.hour < 17 else 0
        d = decide(
            ZoneInputs(
                zone,
                cfg,
                now,
                {"s1": Reading(temp, 50.0, now)},
                opening(now),
                Occupancy(hour_people),
                "auto",
                target,
                None,
                rates,
                state,
            )
        )
        if d.state.compressor is not None and state.compressor is None:
            cycles += 1
        state, rates = d.state, d.rates
        temp = room_step(temp, outdoor, hour_people, d.command, dt.total_seconds() / 3600, capacity)
        now += dt
        if T0.replace(hour=9) <= now < T0.replace(hour=17):
            assert zone.comfort_low <= temp <= zone.comfort_high, (now, temp, d.reason)
    assert cycles <= 4 * 13  # never more than 4 starts an hour


def test_opening_state_follows_hours_and_holidays() -> None:
    """The queue's hours, lunch breaks, the weekend and a holiday, as minutes to the next opening."""
    spans = (parse_hours("mon-fri 09:00-12:00"), parse_hours("mon-fri 13:30-17:00"))
    monday = T0.replace(hour=8)
    assert opening_state(spans, (), SHANGHAI, monday) == OpeningState(False, 60.0, None)
    assert opening_state(spans, (), SHANGHAI, T0.replace(hour=10)) == OpeningState(True, 0.0, 120.0)
    assert opening_state(spans, (), SHANGHAI, T0.replace(hour=12, minute=30)).minutes_to_open == 60.0
    # Monday a holiday: the next opening is Tuesday 09:00.
    assert opening_state(spans, (monday.date(),), SHANGHAI, monday).minutes_to_open == 25 * 60
    friday_evening = T0.replace(hour=18) + timedelta(days=4)
    assert opening_state(spans, (), SHANGHAI, friday_evening).minutes_to_open == (2 * 24 + 15) * 60
    assert opening_state((), (), SHANGHAI, monday) == OpeningState(False, None, None)


@pytest.mark.parametrize(("ride_band", "pace"), [(False, 1.0), (True, 1.0), (True, 0.6)])
def test_pre_cooling_starts_from_the_learned_rate(ride_band: bool, pace: float) -> None:
    """30 °C before a 09:00 opening, from the learned rate plus a 10 minute margin.

    Holding a setpoint it pre-cools to 26 °C: at 3 °C/h 80 + 10 minutes early, at 6 °C/h
    40 + 10. Riding the band it pre-cools only into the band, to 27.5 °C (where it would
    start cooling once open): 50 + 10 and 25 + 10 minutes early. Paced at 0.6 of the rate
    (the default) it starts earlier, 83 + 10 and 42 + 10, and gives the units a setpoint on
    the line that reaches 27.5 °C ten minutes before opening, so they cool at part load.
    """

    def at(hour: int, minute: int, rate: float) -> ZoneDecision:
        now = T0.replace(hour=hour, minute=minute)
        return decide(
            ZoneInputs(
                ZONE,
                rules(ride_band=ride_band, precondition_part_load=pace),
                now,
                {"s1": Reading(30.0, 50.0, now)},
                opening(now),
                Occupancy(),
                "auto",
                26.0,
                None,
                LearnedRates(3.0, rate),
                ControlState(),
            )
        )

    if not ride_band:
        assert at(7, 25, 3.0).action == "idle" and at(7, 35, 3.0).action == "cooling"
        assert "pre-cooling" in at(7, 35, 3.0).reason
        assert at(7, 35, 6.0).action == "idle" and at(8, 15, 6.0).action == "cooling"
        assert at(7, 35, 3.0).command.setpoint == 26.0
    elif pace == 1.0:
        assert at(7, 55, 3.0).action == "idle" and at(8, 5, 3.0).action == "cooling"
        assert "pre-cooling" in at(8, 5, 3.0).reason
        assert at(8, 20, 6.0).action == "idle" and at(8, 30, 6.0).action == "cooling"
        assert at(8, 5, 3.0).command.setpoint == 26.5
    else:
        assert at(7, 25, 3.0).action == "idle" and at(7, 30, 3.0).action == "cooling"
        assert at(8, 5, 6.0).action == "idle" and at(8, 10, 6.0).action == "cooling"
        # 80 minutes of line left at 1.8 °C/h: 27.5 + 2.4 = 29.9, a 29.5 °C setpoint; then lower.
        assert at(7, 30, 3.0).command == AcCommand(power=True, mode="cool", setpoint=29.5)
        assert at(8, 20, 3.0).command.setpoint == 28.0  # 27.5 + 1.8 x 0.5 = 28.4: the half degree below
        assert at(8, 50, 3.0).command.setpoint == 27.5  # the goal, from the margin on


def test_paced_pre_heating_follows_its_line_and_is_not_learned_from() -> None:
    """A 13 °C winter morning: the setpoint climbs along the line to 18.5 °C at 08:50, never past 20.

    The run moves at the plan's pace, not the unit's, so it leaves the learned rate alone.
    """
    zone = ClimateZoneConfig(id="floor1", sensors=("s1",), comfort_low=18.0, comfort_high=22.0)
    cfg = rules()
    rates = LearnedRates(3.0, 3.0)
    state = ControlState()
    now, temp = T0.replace(hour=5), 13.0
    setpoints: list[float] = []
    while now < T0.replace(hour=9):
        d = decide(
            ZoneInputs(
                zone,
                cfg,
                now,
                {"s1": Reading(temp, 40.0, now)},
                opening(now),
                Occupancy(),
                "auto",
                26.0,
                None,
                rates,
                state,
            )
        )
        if d.action == "heating":
            setpoints.append(d.command.setpoint)
            temp = min(temp + 1.8 / 60, d.command.setpoint)  # a room that keeps to the plan, a minute at a time
        state, rates = d.state, d.rates
        now += timedelta(minutes=1)
    # 5.5 K at 0.6 x 3 °C/h: 183 minutes + 10, limited to precondition_max_minutes (180): from 06:00.
    assert len(setpoints) == 180 and setpoints[0] == 13.5 and setpoints[-1] == 18.5
    assert setpoints == sorted(setpoints) and max(setpoints) <= cfg.heat_max_setpoint
    assert temp >= 18.4 and rates == LearnedRates(3.0, 3.0)


def test_riding_the_band_drifts_to_the_edge_and_switches_off_at_one_swing() -> None:
    """Summer band 24–28 °C, people in: idle up to 27.5 °C, then cooling to 26.5 °C, then off.

    Holding a setpoint the same room is cooled from 26.5 °C to 26 °C and kept there; riding
    the band it rides 26.5–27.5 °C (the issue's "drift inside the band and switch off").
    An empty floor swings only to 27 °C.
    """
    zone = ClimateZoneConfig(id="floor1", sensors=("s1",), comfort_low=24.0, comfort_high=28.0)
    cfg = rules(min_on_s=0, min_off_s=0)
    now = T0.replace(hour=10)

    def step(temp: float, prev: ControlState, people: int = 5, ride: bool = True) -> ZoneDecision:
        return decide(
            ZoneInputs(
                zone,
                cfg.model_copy(update={"ride_band": ride}),
                now,
                {"s1": Reading(temp, 50.0, now)},
                opening(now),
                Occupancy(waiting=people),
                "auto",
                26.0,
                None,
                LearnedRates(3.0, 3.0),
                prev,
            )
        )

    assert step(26.6, ControlState(), ride=False).action == "cooling"
    d = step(27.0, ControlState())
    assert d.action == "idle", d.reason
    d = step(27.4, ControlState(), people=20)  # a full floor: 0.5 K of people bias starts it earlier
    assert d.action == "cooling" and d.command.setpoint == 26.5, d.reason
    d = step(27.5, ControlState())
    assert d.command == AcCommand(power=True, mode="cool", setpoint=26.5), d.reason
    d = step(26.7, d.state)
    assert d.action == "cooling", d.reason
    d = step(26.5, d.state)
    assert d.action == "idle" and not d.command.power, d.reason
    d = step(27.5, ControlState(), people=0)
    assert d.command == AcCommand(power=True, mode="cool", setpoint=27.0), d.reason
