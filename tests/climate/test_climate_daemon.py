"""The daemon's side of climate: today's energy over the API across a restart, and the simulated weather.

Both run the real daemon as a process (``tests.core.core_helpers.Daemon``) with a simulated
Modbus sensor behind a pty, read by the real driver.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.core.core_helpers import Daemon

pytestmark = pytest.mark.e2e

SENSOR_HALL: dict[str, Any] = {
    "device": [{"id": "th1", "kind": "modbus_sensor", "simulate": True, "options": {"interval": 1}}],
    "sensor": [{"id": "f1", "name": "一楼", "source": "modbus", "device": "th1"}],
}


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    made: list[Daemon] = []

    def make(**over: Any) -> Daemon:
        d = Daemon(tmp_path / f"daemon{len(made)}", **over)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()


def until(fn: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``fn`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.2)  # bounded poll of an external process's observable state
    raise AssertionError(f"{what}: not within {timeout}s (last {last!r})")


def zone_energy(d: Daemon, token: str, path: str = "/api/v1/climate/energy") -> Any:
    r = httpx.get(d.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    r.raise_for_status()
    return r.json() if path.endswith("energy") else r.text


def test_energy_api_gives_todays_figures_and_a_restart_keeps_them(daemons: Callable[..., Daemon]) -> None:
    zone = {
        "id": "f1",
        "name": "一楼",
        "sensors": ["f1"],
        "mode": "cool",
        "target": 16.0,  # far below the sensor: the zone is cooling the whole time
        # The sensor reads about 24.5 °C: above this band, so even an empty floor (which drifts to the
        # band's edge) cools.
        "comfort_low": 16.0,
        "comfort_high": 23.0,
    }
    unit = {
        "id": "vrf1",
        "zone": "f1",
        "kind": "mqtt",
        "command_topic": "zigbee2mqtt/ac1/set",
        "state_topic": "zigbee2mqtt/ac1",
        "rated_cooling_kw": 18.0,
        "rated_heating_kw": 19.0,
    }
    # The public-building floor (26 °C) and the compressor's rest after a start are the controller's own
    # tests; here the zone must cool at once from the simulated sensor's ~24 °C.
    rules = {"cool_min_setpoint": 16.0, "heat_max_setpoint": 15.0, "min_off_s": 0, "min_on_s": 0}
    d = daemons(**SENSOR_HALL, climate_zone=[zone], climate_unit=[unit], climate=rules)
    tokens = asyncio.run(d.create_tokens({"admin": ("admin", ())}))
    d.start()
    admin = tokens["admin"]

    def cooled() -> Any:
        (z,) = zone_energy(d, admin)
        return z if z["run_hours"]["cool"] > 2 / 3600 and z["kwh"] > 0 else None

    before = until(cooled, 30, "cooling counted")
    assert before["zone"] == "f1"
    # 18 kW for the counted cooling time (no part load reported: full load).
    assert before["kwh"] == pytest.approx(18.0 * before["run_hours"]["cool"], abs=0.0015)  # both rounded
    assert before["share_in_band"] == 0.0 and before["degree_hours"] > 0.0  # out of band while it cools
    csv = zone_energy(d, admin, "/api/v1/climate/energy.csv").splitlines()
    assert csv[0].startswith("day,zone,kwh,") and csv[1].split(",")[1] == "f1"
    d.stop()
    d.start()
    after = zone_energy(d, admin)[0]
    assert after["day"] == before["day"]
    assert after["kwh"] >= before["kwh"] and after["run_hours"]["cool"] >= before["run_hours"]["cool"]
    r = httpx.get(
        d.url + "/api/v1/climate/energy", params={"day": "2020-01-01"}, headers={"Authorization": f"Bearer {admin}"}
    )
    assert r.json() == [
        {
            "zone": "f1",
            "day": "2020-01-01",
            "kwh": 0.0,
            "run_hours": {"cool": 0.0, "heat": 0.0, "dry": 0.0, "fan_only": 0.0},
            "open_hours": 0.0,
            "in_band_hours": 0.0,
            "share_in_band": None,
            "degree_hours": 0.0,
        }
    ]


def test_simulate_weather_changes_what_the_simulated_sensor_reports(daemons: Callable[..., Daemon]) -> None:
    zone = {"id": "f1", "sensors": ["f1"], "mode": "off"}  # no air conditioning: the room follows the weather
    d = daemons(**SENSOR_HALL, climate_zone=[zone])
    tokens = asyncio.run(d.create_tokens({"admin": ("admin", ())}))
    d.start()
    admin = tokens["admin"]

    def reading() -> float | None:
        r = httpx.get(d.url + "/api/v1/climate", headers={"Authorization": f"Bearer {admin}"}, timeout=5)
        current: float | None = r.json()[0]["current"]
        return current

    start: float = until(reading, 20, "a first reading")
    for weather, sign in (("45", 1.0), ("-10", -1.0)):
        out = d.cli("simulate", "weather", weather, "--speed", "3600", "--url", d.url, "--token", admin)
        assert out.returncode == 0, out.stderr

        def moved(sign: float = sign) -> bool:
            t = reading()
            return t is not None and sign * (t - start) > 2.0

        until(moved, 40, f"sensor after weather {weather}")
    bad = d.cli("simulate", "weather", "spring", "--url", d.url, "--token", admin)
    assert bad.returncode == 2 and "summer, winter or a temperature" in bad.stderr
