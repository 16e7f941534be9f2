"""Sensor readings as the hall sees them: live state on change (deadband, republish, stale) and
history per minute (flush, merge, old rows migrated, retention, a refused flush counted)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

from hallctl import events as ev
from hallctl.bus import Bus
from hallctl.service.sensors import SensorReadings, minute_of
from hallctl.store import SensorMinute, Store, split_sql
from tests.core.conftest import HallFactory
from tests.core.core_helpers import FakeClock, LiveHall, make_config

SENSORS: dict[str, Any] = {
    "sensor": [
        {"id": "s1", "source": "zigbee", "friendly_name": "th_s1", "stale_after_s": 300},
        {"id": "s2", "source": "zigbee", "friendly_name": "th_s2", "deadband_temperature": 0.5},
    ],
    "sensors": {"deadband_temperature": 0.1, "deadband_humidity": 1.0, "republish_s": 60},
}


class States:
    """The SensorState events the bus delivered (what MQTT, screens and climate zones get)."""

    def __init__(self, live: LiveHall) -> None:
        self.live = live
        self.seen: list[ev.SensorState] = []
        live.svc.bus.subscribe("test.sensors", self._on, (ev.SensorState,))

    def _on(self, e: ev.Event) -> None:
        assert isinstance(e, ev.SensorState)
        self.seen.append(e)

    async def after(self, sensor: str, temperature: float | None, humidity: float | None) -> int:
        """Apply a reading; how many states it published (0 or 1)."""
        before = len(self.seen)
        self.live.svc.sensor_reading(sensor, temperature, humidity)
        await self.live.svc.bus.drain()
        return len(self.seen) - before


async def test_state_is_published_outside_the_deadband_only(hall_factory: HallFactory, clock: FakeClock) -> None:
    live: LiveHall = await hall_factory(clock=clock, **SENSORS)
    states = States(live)
    assert await states.after("s1", 22.0, 40.0) == 1  # the first reading always
    assert await states.after("s1", 22.05, 40.5) == 0  # within 0.1 °C and 1 %RH
    assert live.svc.sensors["s1"].temperature == 22.05  # the present value moved all the same
    assert await states.after("s1", 22.1, None) == 1  # 0.1 °C from the last *published* 22.0
    assert (states.seen[-1].temperature, states.seen[-1].humidity) == (22.1, 40.5)
    assert await states.after("s1", 22.0, None) == 1  # 0.1 down (22.1 − 22.0 is 0.0999… in binary)
    assert await states.after("s1", None, 41.4) == 0
    assert await states.after("s1", None, 41.5) == 1  # 1 %RH from 40.5
    # A per-sensor deadband: s2 moves only at 0.5 °C.
    assert await states.after("s2", 20.0, None) == 1
    assert await states.after("s2", 20.4, None) == 0
    assert await states.after("s2", 20.5, None) == 1


async def test_a_steady_sensor_is_republished_and_a_silent_one_goes_stale(
    hall_factory: HallFactory, clock: FakeClock
) -> None:
    live: LiveHall = await hall_factory(clock=clock, **SENSORS)
    states = States(live)
    assert await states.after("s1", 22.0, 40.0) == 1
    clock.advance(seconds=30)
    assert await states.after("s1", 22.0, 40.0) == 0
    clock.advance(seconds=29)
    assert await states.after("s1", 22.02, 40.0) == 0
    clock.advance(seconds=2)  # 61 s since the last publish: the steady value goes out again
    assert await states.after("s1", 22.03, 40.0) == 1
    assert states.seen[-1].temperature == 22.03 and not states.seen[-1].stale
    # Staleness counts from the last reading, not the last publish.
    clock.advance(seconds=50)
    assert await states.after("s1", 22.0, 40.0) == 0  # within the deadband, 50 s after the publish
    clock.advance(seconds=255)  # 305 s since the publish, 255 since the reading: not stale
    live.svc.expire_stale_sensors()
    await live.svc.bus.drain()
    assert not live.svc.sensors["s1"].stale and not states.seen[-1].stale
    clock.advance(seconds=46)  # 301 s without a reading
    live.svc.expire_stale_sensors()
    await live.svc.bus.drain()
    assert live.svc.sensors["s1"].stale and states.seen[-1].stale
    assert await states.after("s1", 22.0, 40.0) == 1  # back: published at once, deadband or not
    assert not states.seen[-1].stale


async def test_finished_minutes_are_flushed_in_one_go_and_read_back(
    hall_factory: HallFactory, clock: FakeClock
) -> None:
    live: LiveHall = await hall_factory(clock=clock, **SENSORS)
    clock.set(minute_of(clock()) + timedelta(seconds=5))
    start = minute_of(clock())
    for t in (22.0, 21.0, 23.0):
        live.svc.sensor_reading("s1", t, 40.0)
        clock.advance(seconds=10)
    live.svc.sensor_reading("s2", None, 50.0)
    clock.advance(seconds=40)  # into the next minute
    live.svc.sensor_reading("s1", 24.0, None)
    sr = live.svc.sensor_readings
    assert await sr.flush() == 4  # the ended minute of s1 (3) and of s2 (1); the new one waits
    history = await live.svc.readings(start)
    got = {(m.sensor, m.minute): m for m in history}
    first = got[("s1", start)]
    assert (first.count, first.temperature_min, first.temperature_max, first.temperature_last) == (3, 21.0, 23.0, 23.0)
    assert first.temperature_avg == 22.0 and first.humidity_avg == 40.0
    assert got[("s2", start)].temperature_count == 0 and got[("s2", start)].humidity_last == 50.0
    assert got[("s1", start + timedelta(minutes=1))].count == 1  # the minute in progress, from memory
    r = await live.client.get("/api/v1/sensors/history", params={"hours": 1}, headers=live.auth("admin"))
    assert r.status_code == 200
    rows = [x for x in r.json() if x["sensor"] == "s1"]
    assert [x["count"] for x in rows] == [3, 1] and rows[0]["temperature"] == 22.0
    assert rows[0]["temperature_max"] == 23.0 and rows[1]["temperature_last"] == 24.0
    assert live.hall.health_extra()["sensors"]["stored"] == 4


async def test_a_minute_written_twice_is_merged(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "m.db"))
    await store.open()
    try:
        clock = FakeClock()
        m = minute_of(clock())
        await store.add_sensor_minutes([SensorMinute("s1", m, 2, 2, 20.0, 21.0, 22.0, 22.0)])
        await store.add_sensor_minutes([SensorMinute("s1", m, 2, 1, 19.0, 19.0, 19.0, 19.0, 1, 50.0, 50.0, 50.0, 50.0)])
        (got,) = await store.sensor_minutes(m)
        assert (got.count, got.temperature_count, got.temperature_min, got.temperature_max) == (4, 3, 19.0, 22.0)
        assert abs((got.temperature_avg or 0) - (21.0 * 2 + 19.0) / 3) < 1e-9 and got.temperature_last == 19.0
        assert (got.humidity_count, got.humidity_min, got.humidity_last) == (1, 50.0, 50.0)
        # Retention: minutes before the cutoff go.
        assert await store.purge_sensor_minutes(m + timedelta(minutes=1)) == 1
        assert await store.sensor_minutes(m) == []
    finally:
        await store.close()


async def test_a_refused_flush_is_kept_then_counted_never_silent(tmp_path: Path) -> None:
    cfg = make_config(store={"path": str(tmp_path / "r.db")}, **SENSORS)
    store = Store(cfg.store.path, busy_timeout_ms=50)
    await store.open()
    clock = FakeClock()
    bus = Bus()
    sr = SensorReadings(cfg, store, bus, clock)
    for _ in range(5):
        sr.reading("s1", 22.0, 40.0)
    clock.advance(minutes=1)
    other = sqlite3.connect(cfg.store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the database: the store refuses
    try:
        assert await sr.flush() == 0
        h = sr.health()
        assert h["ok"] is False and h["flush_failures"] == 1 and h["pending_minutes"] == 1 and h["not_stored"] == 0
        sr.reading("s1", 23.0, 40.0)
        assert await sr.flush(everything=True) == 0
        assert sr.abandon() == 6  # at stop: what could not be written is counted
        assert sr.health()["not_stored"] == 6 and sr.applied == 6
    finally:
        other.execute("ROLLBACK")
        other.close()
        await store.close()
        await bus.close()


async def test_migration_turns_old_readings_into_minutes(tmp_path: Path) -> None:
    """A database of schema 5 with per-reading rows opens as schema 6 with the same history per minute."""
    from importlib import resources

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for f in sorted(resources.files("hallctl.store.migrations").iterdir(), key=lambda f: f.name):
        if f.name.endswith(".sql") and int(f.name.split("_", 1)[0]) <= 5:
            for statement in split_sql(f.read_text(encoding="utf-8")):
                conn.execute(statement)
    conn.execute("PRAGMA user_version = 5")
    rows = [
        ("s1", "2026-11-23T01:00:05.100000+00:00", 22.0, 40.0),
        ("s1", "2026-11-23T01:00:35+00:00", 24.0, None),
        ("s1", "2026-11-23T01:00:50.5+00:00", None, 42.0),
        ("s1", "2026-11-23T01:01:10+00:00", 23.0, 41.0),
        ("s2", "2026-11-23T01:00:20+00:00", 19.5, 55.0),
    ]
    conn.executemany("INSERT INTO sensor_readings (sensor, at, temperature, humidity) VALUES (?,?,?,?)", rows)
    conn.close()
    store = Store(str(path))
    await store.open()
    try:
        got = {(m.sensor, m.minute.isoformat()): m for m in await store.sensor_minutes(FakeClock()() - timedelta(1))}
    finally:
        await store.close()
    first = got[("s1", "2026-11-23T01:00:00+00:00")]
    assert (first.count, first.temperature_count, first.temperature_avg, first.temperature_last) == (3, 2, 23.0, 24.0)
    assert (first.humidity_count, first.humidity_min, first.humidity_max, first.humidity_last) == (2, 40.0, 42.0, 42.0)
    assert got[("s1", "2026-11-23T01:01:00+00:00")].count == 1 and got[("s2", "2026-11-23T01:00:00+00:00")].count == 1
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert "sensor_readings" not in tables
