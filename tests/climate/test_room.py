"""The thermal room model behaves like a room: physics sanity, not curve fitting."""

from __future__ import annotations

import dataclasses

from drivers.sim.room import SUMMER_SHANGHAI, WINTER_SHANGHAI, PackagedUnit, Room, RoomParams


def run(room: Room, hours: float, dt: float = 60.0, people: int | None = None) -> None:
    for _ in range(round(hours * 3600 / dt)):
        if people is not None:
            room.people = people
        room.step(dt)


def test_without_ac_the_room_converges_toward_a_constant_outdoor_temperature() -> None:
    dark = dataclasses.replace(WINTER_SHANGHAI, solar_peak_w=0.0)
    no_gains = RoomParams(standby_w_per_m2=0.0)
    for outdoor, start in ((5.0, 24.0), (35.0, 22.0)):
        room = Room(no_gains, dark.at_temperature(outdoor), t_air=start, t_mass=start)
        gaps = []
        for _ in range(8):
            run(room, 24)
            gaps.append(abs(room.t_air - outdoor))
        assert gaps == sorted(gaps, reverse=True), gaps  # monotonic, no overshoot
        assert gaps[-1] < 0.25 * abs(start - outdoor)
        assert (room.t_air - outdoor) * (start - outdoor) > 0  # still on the side it started from
    # With the hall's standby load and the sun it settles a few K above outdoors, not tens.
    room = Room(weather=WINTER_SHANGHAI.at_temperature(5.0), t_air=5.0, t_mass=5.0)
    run(room, 24 * 8)
    assert 5.0 < room.t_air < 10.0


def test_more_people_make_the_room_warmer_and_more_humid() -> None:
    rooms = {}
    for people in (0, 50, 150):
        room = Room(weather=SUMMER_SHANGHAI.at_temperature(28.0), t_air=26.0, rh=50.0)
        room.open = True
        run(room, 3, people=people)
        rooms[people] = room
    assert rooms[0].t_air < rooms[50].t_air < rooms[150].t_air
    # 100 W each: 100 more people is several K over three hours, not a fraction of a degree or tens of K.
    assert 1.0 < rooms[150].t_air - rooms[50].t_air < 10.0


def test_cooling_at_capacity_pulls_the_temperature_down_at_a_plausible_rate() -> None:
    unit = PackagedUnit()
    unit.command(True, "cool", 16.0)  # far below: the unit runs flat out
    room = Room(weather=SUMMER_SHANGHAI.at_temperature(32.0), t_air=32.0, t_mass=32.0, rh=60.0, ac=unit)
    run(room, 1)
    assert unit.running and unit.part_load == 1.0
    drop = 32.0 - room.t_air
    # 61.5 kW against a 600 m² concrete floor: a few K in the first hour (the mass holds it back).
    assert 2.0 < drop < 10.0, drop
    # Dehumidifies while it cools.
    assert room.rh < 70.0
    before = room.t_air
    run(room, 1)
    assert room.t_air < before  # still falling, slower
    assert before - room.t_air < drop


def test_heating_warms_a_winter_morning_and_the_unit_holds_its_setpoint() -> None:
    unit = PackagedUnit()
    unit.command(True, "heat", 20.0)
    room = Room(weather=WINTER_SHANGHAI, hour=6.0, t_air=12.0, t_mass=12.0, rh=45.0, ac=unit)
    run(room, 3)
    assert 19.0 < room.t_air < 21.5
    assert unit.electric_w > 0 and unit.electric_w < unit.heating_capacity_w / 2


def test_the_room_is_deterministic_and_the_time_step_barely_matters() -> None:
    def day(dt: float) -> tuple[float, float, float]:
        unit = PackagedUnit()
        unit.command(True, "cool", 26.0)
        room = Room(RoomParams(), SUMMER_SHANGHAI, hour=0.0, t_air=29.0, t_mass=29.0, ac=unit)
        for _ in range(round(24 * 3600 / dt)):
            room.open = 9 <= room.hour < 17
            room.people = 60 if room.open else 0
            room.step(dt)
        return room.t_air, room.t_mass, room.rh

    assert day(60.0) == day(60.0)
    a, b = day(60.0), day(10.0)
    assert abs(a[0] - b[0]) < 0.3 and abs(a[1] - b[1]) < 0.3


def test_a_large_step_is_sub_stepped_and_stays_stable() -> None:
    room = Room(dataclasses.replace(RoomParams(), max_substep_s=60.0), WINTER_SHANGHAI, t_air=20.0)
    room.step(6 * 3600)
    assert WINTER_SHANGHAI.temperature(6.0) - 2 < room.t_air < 20.0
    assert abs(room.hour - 6.0) < 1e-9


def test_weather_curves_peak_in_the_afternoon_and_the_sun_sets() -> None:
    for w in (SUMMER_SHANGHAI, WINTER_SHANGHAI):
        temps = [w.temperature(h) for h in range(24)]
        assert temps.index(max(temps)) in (14, 15)
        assert temps.index(min(temps)) in (4, 5, 6)
        assert w.solar_w(0.0) == 0.0 and w.solar_w(12.0) > 0.5 * w.solar_peak_w
    assert SUMMER_SHANGHAI.temperature(14) > 30.0 and WINTER_SHANGHAI.temperature(5) < 2.0


def test_auto_mode_does_not_flip_between_heating_and_cooling_around_its_setpoint() -> None:
    unit = PackagedUnit()
    unit.command(True, "auto", 26.0)
    room = Room(weather=SUMMER_SHANGHAI.at_temperature(26.0), t_air=26.0, t_mass=26.0, ac=unit)
    signs = set()
    for _ in range(120):
        room.step(60)
        if room.ac_heat_w:
            signs.add(room.ac_heat_w > 0)
    assert len(signs) <= 1
