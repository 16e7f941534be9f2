"""Energy and comfort accounting on hand-built sample sequences: the arithmetic a hall's figures rest on."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hallctl.climate.energy import FAN_SHARE, EnergyLedger, EnergySample, UnitRating, UnitSample
from hallctl.reports.energy import energy_csv

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 7, 15, 9, 0, tzinfo=SH)
RATINGS = {"vrf1": UnitRating(18.0, 19.0), "vrf2": UnitRating(10.0, 12.0)}


def ledger(max_gap_s: float = 4 * 3600) -> EnergyLedger:
    return EnergyLedger({"f1": (24.0, 27.0)}, RATINGS, SH, max_gap_s=max_gap_s)


def s(minutes: float, temp: float | None, *units: UnitSample, open_: bool = True) -> EnergySample:
    return EnergySample(T0 + timedelta(minutes=minutes), "f1", temp, open_, tuple(units))


def cool(unit: str, part_load: float | None = None, running: bool | None = True) -> UnitSample:
    return UnitSample(unit, True, "cool", running, part_load)


def test_run_hours_and_kwh_from_rated_power_times_part_load() -> None:
    led = ledger()
    for sample in (
        s(0, 26.0, cool("vrf1", 0.5), cool("vrf2", None)),  # 30 min: 18×0.5 + 10×1.0 (unknown part load) = 19 kW
        s(30, 26.0, cool("vrf1", 1.0), cool("vrf2", running=False)),  # 30 min: 18 kW; vrf2 on but thermo-off
        s(60, 26.0, UnitSample("vrf1", True, "heat", True, 0.25)),  # 60 min: 19 × 0.25 = 4.75 kW
        s(120, 26.0, UnitSample("vrf1", True, "fan_only", None)),  # 15 min: fan share of 18 kW
        s(135, 26.0, UnitSample("vrf1", False, "cool", None)),  # 15 min: off
        s(150, 26.0),
    ):
        led.add(sample)
    (zd,) = led.day(T0.date())
    assert zd.run_s == {"cool": 3600.0, "heat": 3600.0, "dry": 0.0, "fan_only": 900.0}
    assert zd.kwh == pytest.approx(19 * 0.5 + 18 * 0.5 + 4.75 + 18 * FAN_SHARE * 0.25)


def test_the_makers_part_load_table_sets_the_power_at_part_load() -> None:
    """An inverter at half load draws 40 % of its full-load input, not 50 %: the estimate follows the
    table (interpolated between its points, in proportion below the first), not the load."""
    table = ((0.25, 0.25), (0.5, 0.4), (0.75, 0.6), (1.0, 1.0))
    inverter = UnitRating(10.0, 12.0, table)
    assert inverter.power_fraction(0.5) == pytest.approx(0.4)
    assert inverter.power_fraction(0.625) == pytest.approx(0.5)
    assert inverter.power_fraction(0.1) == pytest.approx(0.1)
    assert inverter.power_fraction(1.0) == pytest.approx(1.0)
    assert UnitRating(10.0, 12.0).power_fraction(0.5) == 0.5  # no table: in proportion
    led = EnergyLedger({"f1": (24.0, 27.0)}, {"vrf1": inverter}, SH, max_gap_s=4 * 3600)
    led.add(s(0, 26.0, cool("vrf1", 0.5)))
    led.add(s(60, 26.0))
    (zd,) = led.day(T0.date())
    assert zd.kwh == pytest.approx(10.0 * 0.4)


def test_a_part_load_table_must_rise_and_end_at_full_load() -> None:
    from hallctl import config

    base = {"id": "ac1", "zone": "f1", "kind": "mqtt", "command_topic": "ac/set", "state_topic": "ac"}
    for table, why in (
        ([[0.5, 0.4], [0.25, 0.25], [1.0, 1.0]], "loads must increase"),
        ([[0.25, 0.25], [0.75, 0.6]], "must end at full load"),
        ([[0.0, 0.1], [1.0, 1.0]], "load must be in (0, 1]"),
    ):
        with pytest.raises(config.ConfigError) as exc:
            config.parse(
                {
                    "hall": {"id": "t", "name": "t"},
                    "category": [{"prefix": "A", "name": "A"}],
                    "window": [{"number": 1, "categories": ["A"]}],
                    "climate_zone": [{"id": "f1"}],
                    "climate_unit": [{**base, "part_load_power": table}],
                }
            )
        assert "climate_unit[0]" in str(exc.value) and "part_load_power" in str(exc.value) and why in str(exc.value)


def test_share_in_band_and_degree_hours_count_only_opening_hours_with_a_temperature() -> None:
    led = ledger()
    for sample in (
        s(0, 25.0),  # 60 min in band
        s(60, 29.0),  # 30 min, 2 K above 27: 1.0 K·h
        s(90, 23.0),  # 30 min, 1 K below 24: 0.5 K·h
        s(120, None),  # 30 min unknown: not counted either way
        s(150, 30.0, open_=False),  # 60 min closed: not counted
        s(210, 27.0),  # 30 min on the edge: in band (inclusive)
        s(240, 27.0),
    ):
        led.add(sample)
    (zd,) = led.day(T0.date())
    assert zd.open_s == 150 * 60
    assert zd.in_band_s == 90 * 60
    assert zd.share_in_band == pytest.approx(0.6)
    assert zd.degree_hours == pytest.approx(1.5)


def test_a_gap_longer_than_the_limit_is_not_guessed_across() -> None:
    led = ledger(max_gap_s=600)
    led.add(s(0, 25.0, cool("vrf1", 1.0)))
    led.add(s(60, 25.0, cool("vrf1", 1.0)))  # the daemon was down for an hour: nothing counted
    led.add(s(65, 25.0))
    (zd,) = led.day(T0.date())
    assert zd.run_s["cool"] == 300.0 and zd.kwh == pytest.approx(18 * 300 / 3600)
    assert led.add(s(10, 25.0)) == []  # out of order: ignored


def test_an_interval_across_the_day_boundary_is_split_between_the_days() -> None:
    led = EnergyLedger({"f1": (24.0, 27.0)}, RATINGS, SH, day_reset_hour=0, max_gap_s=3600)
    night = datetime(2026, 7, 15, 23, 40, tzinfo=SH)
    led.add(EnergySample(night, "f1", 26.0, False, (cool("vrf1", 1.0),)))
    touched = led.add(EnergySample(night + timedelta(minutes=30), "f1", 26.0, False, ()))
    assert [t.day.isoformat() for t in touched] == ["2026-07-15", "2026-07-16"]
    assert led.days[(night.date(), "f1")].run_s["cool"] == 20 * 60
    assert led.days[(night.date() + timedelta(days=1), "f1")].run_s["cool"] == 10 * 60


def test_restored_totals_continue_and_the_csv_has_one_row_per_zone() -> None:
    led = ledger()
    led.add(s(0, 26.0, cool("vrf1", 1.0)))
    led.add(s(60, 26.0))
    (zd,) = led.day(T0.date())
    again = ledger()
    again.restore([zd])
    again.add(s(60, 26.0, cool("vrf1", 1.0)))
    again.add(s(90, 26.0))
    (zd2,) = again.day(T0.date())
    assert zd2.kwh == pytest.approx(18 * 1.5) and zd2.run_s["cool"] == 5400
    text = energy_csv([zd2.to_dict()])
    lines = text.splitlines()
    assert lines[0].startswith("day,zone,kwh,run_hours_cool")
    assert lines[1].startswith("2026-07-15,f1,27.0,1.5,0.0")
