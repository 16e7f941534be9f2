"""The climate component in a running hall: overrides over HTTP, what survives a restart, units that fail.

The hall runs in-process with a fake clock (the controller's time) and its real bus,
store, API and tick loop; the air-conditioning units are in-memory fakes behind the
:class:`drivers.aircon.AcUnit` interface (the Modbus/BACnet/MQTT drivers have their
own tests against their simulators).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from drivers.aircon import AcCommand, AcNoAck, AcState
from hallctl import auth
from hallctl import events as ev
from hallctl.climate import units
from hallctl.config import ClimateUnitConfig, Config
from hallctl.daemon import Hall
from tests.core.core_helpers import T0, FakeClock, make_config

ZONE = {"id": "floor1", "name": "一楼", "sensors": ["s1"], "floor": 1}
SENSOR = {"id": "s1", "source": "zigbee", "friendly_name": "th1"}


class FakeUnit:
    """An AcUnit in memory: answers like a well-behaved gateway until told to hang, refuse or fault."""

    def __init__(self, cfg: ClimateUnitConfig) -> None:
        self.unit_id = cfg.id
        self.state = AcState(power=False, mode="cool", setpoint=26.0, fan="auto")
        self.writes: list[AcCommand] = []
        self.hang = False  # never answers (the driver's own timeout did not fire either)
        self.refuse = False  # the driver reports no acknowledgement
        self.error_code = 0
        self.drift_setpoint = 0.0  # another controller (a wall remote) changed the setpoint
        self.released = False

    async def _answer(self) -> None:
        if self.hang:
            await asyncio.Event().wait()
        if self.refuse:
            raise AcNoAck(self.unit_id, "no answer from the gateway")

    async def apply(self, cmd: AcCommand) -> AcState:
        await self._answer()
        self.writes.append(cmd)
        self.state = AcState(power=cmd.power, mode=cmd.mode, setpoint=cmd.setpoint, fan=cmd.fan)
        return await self.read()

    async def read(self) -> AcState:
        await self._answer()
        return dataclasses.replace(
            self.state, setpoint=self.state.setpoint + self.drift_setpoint, error_code=self.error_code
        )

    async def release(self) -> None:
        self.released = True

    async def close(self) -> None:
        pass


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeUnit]:
    made: dict[str, FakeUnit] = {}

    def factory(cfg: ClimateUnitConfig) -> FakeUnit:
        made[cfg.id] = FakeUnit(cfg)
        return made[cfg.id]

    monkeypatch.setitem(units._FACTORIES, "modbus", factory)
    return made


def hall_config(tmp_path: Path, **over: Any) -> Config:
    base: dict[str, Any] = {
        "store": {"path": str(tmp_path / "hall.db")},
        "category": [{"prefix": "A", "name": "便民服务", "hours": ["mon-fri 09:00-17:00"]}],
        "window": [{"number": 1, "categories": ["A"], "floor": 1}],
        "sensor": [SENSOR],
        "climate_zone": [ZONE],
    }
    base.update(over)
    return make_config(**base)


@asynccontextmanager
async def running(cfg: Config, clock: FakeClock, tmp_path: Path) -> AsyncIterator[tuple[Hall, httpx.AsyncClient]]:
    hall = Hall(cfg, clock=clock, state_dir=tmp_path / "state")
    await hall.start()
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{hall.api.port}", timeout=20)
    token = await auth.create_token(hall.store, "hvac")
    client.headers["Authorization"] = f"Bearer {token}"
    try:
        yield hall, client
    finally:
        await client.aclose()
        await hall.stop()


async def until(what: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not what():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.02)


async def reading(hall: Hall, temperature: float) -> None:
    """A sensor reading through the service, and the climate zone has seen it."""
    hall.service.sensor_reading("s1", temperature, 50.0)
    await until(lambda: hall.climate.states["floor1"].current == round(temperature, 1))


class Alerts:
    """The alerts the climate component raises, as it publishes them (raise requests: the alert service
    then stores each one, once per unresolved kind and subject, and publishes it again with its id)."""

    def __init__(self, hall: Hall) -> None:
        self.seen: list[ev.Alert] = []
        self.sub = hall.bus.subscribe("test-alerts", self._on, (ev.Alert,))

    def _on(self, event: ev.Event) -> None:
        if isinstance(event, ev.Alert) and event.id is None:
            self.seen.append(event)

    def of(self, kind: str) -> list[ev.Alert]:
        return [a for a in self.seen if a.alert == kind]


async def test_override_setpoint_and_learned_rate_survive_a_restart(tmp_path: Path) -> None:
    """climate.set standing and with an expiry, a measured cooling run: all three back after a restart."""
    clock = FakeClock(T0)  # Monday 09:00, open
    cfg = hall_config(tmp_path, climate={"tick_s": 600})
    async with running(cfg, clock, tmp_path) as (hall, client):
        r = await client.post("/api/v1/climate/floor1", json={"mode": "heat", "target": 21.0})
        assert r.status_code == 200, r.text
        r = await client.post("/api/v1/climate/floor1", json={"mode": "cool", "target": 25.0, "minutes": 120})
        assert r.status_code == 200, r.text
        state = r.json()["climate"]
        assert state["overridden"] is True and state["mode"] == "cool"
        assert datetime.fromisoformat(state["override_until"]) == clock() + timedelta(minutes=120)
        past = (clock() - timedelta(minutes=1)).isoformat()
        r = await client.post("/api/v1/climate/floor1", json={"mode": "cool", "until": past})
        assert r.status_code == 422 and r.json()["code"] == "bad_until", r.text
        # A cooling run: 30.0 → 25.9 °C in 56 minutes, measured from minute 6.
        await reading(hall, 30.0)
        assert hall.climate.states["floor1"].action == "cooling"
        assert hall.climate.states["floor1"].setpoint == 26.0  # the 25 °C asked for, limited to 26
        clock.advance(minutes=6)
        await reading(hall, 29.8)
        clock.advance(minutes=30)
        await reading(hall, 27.0)
        clock.advance(minutes=20)
        await reading(hall, 25.9)
        await hall.climate.tick()
        learned = hall.climate.rates("floor1")
        assert learned.cooldown_samples == 1 and learned.cooldown_c_per_h != cfg.climate.default_cooldown_c_per_h
    clock.advance(minutes=1)
    async with running(cfg, clock, tmp_path) as (hall, client):
        state = hall.climate.states["floor1"]
        assert (state.mode, state.target, state.overridden) == ("cool", 25.0, True)
        assert state.override_until == T0 + timedelta(minutes=120)
        assert hall.climate.rates("floor1") == learned
        # The override ends at its time; the standing heat/21 °C is back, and stays back after a restart.
        clock.set(T0 + timedelta(minutes=121))
        await hall.climate.tick()
        state = hall.climate.states["floor1"]
        assert (state.mode, state.target, state.overridden) == ("heat", 21.0, False)
    async with running(cfg, clock, tmp_path) as (hall, client):
        state = hall.climate.states["floor1"]
        assert (state.mode, state.target, state.overridden) == ("heat", 21.0, False)
        assert hall.climate.rates("floor1") == learned


async def test_a_unit_that_stops_answering_raises_an_alarm_within_the_ack_timeout(
    tmp_path: Path, fakes: dict[str, FakeUnit]
) -> None:
    """The tick loop reads each unit back; a silent one is alarmed once, a fault and a mismatch too."""
    clock = FakeClock(T0)
    unit = {"id": "ac1", "zone": "floor1", "kind": "modbus", "port": "tcp://127.0.0.1:1502"}
    cfg = hall_config(tmp_path, climate={"tick_s": 1, "ack_timeout_s": 0.5}, climate_unit=[unit])
    async with running(cfg, clock, tmp_path) as (hall, _client):
        alerts = Alerts(hall)
        ac = fakes["ac1"]
        await reading(hall, 29.0)
        # Held off for the minimum off time after start-up (it may have run before the restart).
        assert hall.climate.states["floor1"].action == "idle"
        assert "minimum off time" in hall.climate.states["floor1"].reason
        clock.advance(seconds=cfg.climate.min_off_s)
        await until(lambda: ac.state.power and ac.state.mode == "cool")
        # Nobody in the hall: the empty floor cools only to the band's edge (28 - 2 x 0.5).
        assert ac.writes[-1] == AcCommand(power=True, mode="cool", setpoint=27.0)
        ac.hang = True
        await until(lambda: bool(alerts.of("climate_unit_no_ack")), timeout=cfg.climate.tick_s + 0.5 + 10)
        first = alerts.of("climate_unit_no_ack")[0]
        assert first.subject == "ac1" and "0.5 s" in first.data["detail"], first
        assert first.message_en == "Air conditioner ac1 is not answering", first  # English-mode pages
        # One alert for one outage, however many ticks it lasts.
        writes, ticks = len(ac.writes), hall.climate.ticks
        await until(lambda: hall.climate.ticks >= ticks + 3)
        assert len(alerts.of("climate_unit_no_ack")) == 1 and len(ac.writes) == writes
        # Back, then refusing: a second outage is a second alert; then its own fault code; then a wall remote.
        ac.hang = False
        await until(lambda: len(ac.writes) > writes)  # written again: the last write never landed
        ac.refuse = True
        await until(lambda: len(alerts.of("climate_unit_no_ack")) == 2)
        ac.refuse = False
        ac.error_code = 17
        await until(lambda: bool(alerts.of("climate_unit_fault")))
        ac.error_code = 0
        ac.drift_setpoint = 2.0
        await until(lambda: bool(alerts.of("climate_unit_mismatch")))
        assert alerts.of("climate_unit_fault")[0].severity == "critical"
    assert ac.released


def test_unit_config_is_validated(tmp_path: Path) -> None:
    """A unit in an unknown zone, a real unit without its port, a BMS priority in the life-safety range."""
    from hallctl.config import ConfigError

    bad = [
        ({"id": "ac1", "zone": "nowhere", "kind": "modbus", "simulate": True}, "no [[climate_zone]]"),
        ({"id": "ac1", "zone": "floor1", "kind": "modbus"}, "needs 'port'"),
        (
            {
                "id": "ac1",
                "zone": "floor1",
                "kind": "bacnet",
                "address": "127.0.0.1",
                "device_instance": 5,
                "priority": 1,
            },
            "priority",
        ),
        (
            {"id": "ac1", "zone": "floor1", "kind": "mqtt", "command_topic": "z2m/+/set", "state_topic": "z2m/ac"},
            "command_topic",
        ),
        ({"id": "ac1", "zone": "floor1", "kind": "ir"}, "kind"),
    ]
    for unit, why in bad:
        with pytest.raises(ConfigError) as info:
            hall_config(tmp_path, climate_unit=[unit])
        assert why in str(info.value), (unit, info.value.lines)
